//! The workers and the list-append workload: workers append unique event ids to a few hot users
//! (each append is an ingested event) and read users' applied ids in order (the profile's
//! `recent_event_ids`, a linearizable read on the shard leader). The register workload's
//! operations are in [`crate::register`].
//!
//! Reads go, like a Jepsen client bound to one node, to the worker's own node and follow that
//! node's `traceo-leader-addr` redirect (a follower must not answer a linearizable read itself):
//! this is what makes a node that serves stale reads visible. Appends go through the client
//! crate (leader-routed, retried), as applications send them.
//!
//! A key takes at most [`APPENDS_PER_KEY`] appends (a register key [`crate::register::WRITES_PER_KEY`]
//! writes), then retires and a fresh key replaces it (as in Jepsen's list-append and independent
//! registers), so every read returns the key's whole list (the profile keeps the last 64 ids),
//! and a register key's history stays short enough for the linearizability search.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::proto::{Event, EventKind, Geo, Outcome as ProtoOutcome, Profile};
use client::{Client, ClientError, Outcome};
use jepsen::history::{OpF, OpType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::recorder::Recorder;

pub const APPENDS_PER_KEY: u32 = 60;

/// The hot keys, and every key ever used (for the final read).
pub struct Keys {
    active: Vec<(String, u32)>,
    next: u64,
    /// Writes a key takes before it retires.
    limit: u32,
    pub all: Vec<String>,
}

impl Keys {
    pub fn new(hot: usize, run: &str, limit: u32) -> Keys {
        let mut k = Keys { active: Vec::new(), next: 0, limit, all: Vec::new() };
        for _ in 0..hot.max(1) {
            let name = k.fresh(run);
            k.active.push((name, 0));
        }
        k
    }

    fn fresh(&mut self, run: &str) -> String {
        let name = format!("{run}-k{}", self.next);
        self.next += 1;
        self.all.push(name.clone());
        name
    }

    /// A key to write (append) to; retires it once it has taken its share.
    pub fn for_write(&mut self, rng: &mut ChaCha8Rng, run: &str) -> String {
        let i = rng.gen_range(0..self.active.len());
        let (key, n) = &mut self.active[i];
        *n += 1;
        let key = key.clone();
        if self.active[i].1 >= self.limit {
            let fresh = self.fresh(run);
            self.active[i] = (fresh, 0);
        }
        key
    }

    pub fn for_read(&self, rng: &mut ChaCha8Rng) -> String {
        self.active[rng.gen_range(0..self.active.len())].0.clone()
    }
}

pub struct Worker {
    pub id: usize,
    /// The node this worker sends its reads to first.
    pub home: String,
    pub client: Client,
    pub keys: Arc<Mutex<Keys>>,
    pub recorder: Arc<Recorder>,
    pub processes: Arc<AtomicI64>,
    pub rng: ChaCha8Rng,
    pub run: String,
    /// Time between this worker's operations (the run's rate spread over the workers).
    pub interval: Duration,
    pub read_fraction: f64,
    /// The register workload (else list-append).
    pub register: bool,
    /// Register: the value this worker last saw per key (what its compare-and-set expects).
    pub seen: std::collections::HashMap<String, Value>,
}

fn append_event(user: &str, id: &str) -> Event {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    Event {
        event_id: id.to_owned(),
        user_id: user.to_owned(),
        time_ms: now as i64,
        kind: EventKind::Login as i32,
        outcome: ProtoOutcome::Success as i32,
        ip: Some("198.51.100.7".into()),
        geo: Some(Geo { lat: 59.91, lon: 10.75, country: "NO".into() }),
        ..Default::default()
    }
}

impl Worker {
    /// Runs operations until `until`.
    pub async fn run(mut self, until: Instant) {
        let mut process = self.processes.fetch_add(1, Ordering::Relaxed);
        let mut seq = 0u64;
        let mut next = Instant::now();
        while Instant::now() < until {
            next += self.interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            } else {
                next = Instant::now();
            }
            let read = self.rng.gen_bool(self.read_fraction);
            let view = if self.register { crate::register::view } else { recent_ids };
            let indeterminate = if read {
                let key = self.keys.lock().expect("keys").for_read(&mut self.rng);
                if let Some(v) = node_read_op(&self.home, &self.recorder, process, &key, view).await {
                    self.seen.insert(key, v);
                }
                false
            } else {
                let key = self.keys.lock().expect("keys").for_write(&mut self.rng, &self.run);
                seq += 1;
                let id = format!("{}-w{}-{seq}", self.run, self.id);
                if self.register {
                    let expected = self.rng.gen_bool(0.5).then(|| self.seen.get(&key).cloned().unwrap_or(Value::Null));
                    let (v, unknown) =
                        crate::register::write_op(&self.client, &self.recorder, process, &key, &id, expected).await;
                    if let Some(v) = v {
                        self.seen.insert(key, v);
                    }
                    unknown
                } else {
                    append_op(&self.client, &self.recorder, process, &key, &id).await
                }
            };
            if indeterminate {
                // Jepsen's rule: a process with an operation of unknown fate is never reused.
                process = self.processes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One append; true when its fate is unknown.
pub async fn append_op(client: &Client, rec: &Recorder, process: i64, key: &str, id: &str) -> bool {
    let v = Value::String(id.to_owned());
    rec.record(process, OpType::Invoke, OpF::Append, key, v.clone(), "");
    let (kind, unknown) = match client.ingest(&[append_event(key, id)]).await {
        Ok(out) => match out.first() {
            Some(Outcome::Ok { .. }) => (OpType::Ok, false),
            Some(Outcome::Failed { .. }) => (OpType::Fail, false),
            _ => (OpType::Info, true),
        },
        Err(ClientError::InvalidArgument(_)) | Err(ClientError::Rejected(_)) => (OpType::Fail, false),
        Err(_) => (OpType::Info, true),
    };
    rec.record(process, kind, OpF::Append, key, v, "");
    unknown
}

/// What a list-append read returns: the profile's applied event ids, in apply order.
pub fn recent_ids(p: Option<Profile>) -> Value {
    serde_json::json!(p.map(|p| p.recent_event_ids).unwrap_or_default())
}

/// One linearizable read of a key through the client; returns what `view` makes of the profile
/// when it succeeded.
pub async fn read_op(
    client: &Client,
    rec: &Recorder,
    process: i64,
    key: &str,
    view: fn(Option<Profile>) -> Value,
) -> Option<Value> {
    rec.record(process, OpType::Invoke, OpF::Read, key, Value::Null, "");
    match client.get_profile(key, false).await {
        Ok(p) => {
            let v = view(p);
            rec.record(process, OpType::Ok, OpF::Read, key, v.clone(), "");
            Some(v)
        }
        Err(_) => {
            // A read changes nothing: failing it is always safe.
            rec.record(process, OpType::Fail, OpF::Read, key, Value::Null, "");
            None
        }
    }
}

/// One read sent to `home`, following up to three leader redirects by hand; the node that
/// answered is recorded.
pub async fn node_read_op(
    home: &str,
    rec: &Recorder,
    process: i64,
    key: &str,
    view: fn(Option<Profile>) -> Value,
) -> Option<Value> {
    rec.record(process, OpType::Invoke, OpF::Read, key, Value::Null, home);
    let mut addr = home.to_owned();
    for _ in 0..4 {
        match get_profile_at(&addr, key).await {
            Ok(p) => {
                let v = view(p);
                rec.record(process, OpType::Ok, OpF::Read, key, v.clone(), &addr);
                return Some(v);
            }
            Err(Some(leader)) => addr = leader,
            Err(None) => break,
        }
    }
    rec.record(process, OpType::Fail, OpF::Read, key, Value::Null, &addr);
    None
}

/// `Err(Some(leader))`: redirected; `Err(None)`: failed.
async fn get_profile_at(addr: &str, key: &str) -> Result<Option<Profile>, Option<String>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|_| None)?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1));
    let channel = endpoint.connect().await.map_err(|_| None)?;
    let mut grpc = client::proto::traceo_client::TraceoClient::new(channel);
    let req = client::proto::GetProfileRequest { user_id: key.to_owned(), stale_ok: false };
    match grpc.get_profile(req).await {
        Ok(r) => {
            let r = r.into_inner();
            Ok(if r.found { r.profile } else { None })
        }
        Err(s) => Err(s.metadata().get(client::LEADER_ADDR_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)),
    }
}
