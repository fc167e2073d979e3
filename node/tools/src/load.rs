//! A load driver shared by `demo` and `bench`: concurrent client tasks ingesting batches from the
//! seeded behaviour generator, with per-request latency and per-event outcomes counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::proto::Action;
use client::{Client, Outcome};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sim::{Generator, GeneratorConfig};

use convert::event_to_proto;
use testkit::now_ms;

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub clients: usize,
    pub batch: usize,
    /// Stop after this long…
    pub duration: Option<Duration>,
    /// …or after this many events, whichever comes first.
    pub max_events: Option<u64>,
    pub users: usize,
    pub seed: u64,
    pub progress: bool,
    /// Stops the load when set (besides `duration` / `max_events`).
    pub stop: Option<Arc<AtomicBool>>,
    /// Latency is also recorded per phase: the value of this counter when a request starts
    /// (phases 0..[`PHASES`]).
    pub phase: Option<Arc<AtomicUsize>>,
}

/// Phases whose latency [`LoadReport::phase_latency_us`] keeps apart.
pub const PHASES: usize = 3;

#[derive(Debug, Default)]
pub struct LoadReport {
    pub elapsed: Duration,
    pub requests: u64,
    pub events_ok: u64,
    pub duplicates: u64,
    pub events_failed: u64,
    pub events_indeterminate: u64,
    /// Applied events whose answer carried a verdict, and how many of those were challenged or
    /// blocked.
    pub verdicts: u64,
    pub challenged: u64,
    pub blocked: u64,
    /// Request latency in microseconds.
    pub latency_us: Option<Histogram<u64>>,
    /// The same, per phase (see [`LoadOptions::phase`]).
    pub phase_latency_us: Vec<Histogram<u64>>,
    pub users_written: usize,
    /// The user with the most acknowledged events (for showing a profile).
    pub busiest_user: Option<String>,
    /// A few errors, for the summary.
    pub sample_errors: Vec<String>,
}

impl LoadReport {
    pub fn events_per_s(&self) -> f64 {
        self.events_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency_us.as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }
    /// Latency quantile `q` of requests started in `phase`, and how many there were.
    pub fn phase_latency_ms(&self, phase: usize, q: f64) -> (f64, u64) {
        self.phase_latency_us.get(phase).map_or((0.0, 0), |h| (h.value_at_quantile(q) as f64 / 1000.0, h.len()))
    }
    pub fn errors(&self) -> u64 {
        self.events_failed + self.events_indeterminate
    }
}

struct Shared {
    generator: Mutex<Generator>,
    sent: AtomicU64,
    users: Mutex<HashMap<String, u64>>,
}

pub async fn run_load(client: Client, opts: LoadOptions) -> LoadReport {
    // Event times run from 60 days ago towards now, never into the future.
    let span_days = 60.0;
    let generator = Generator::new(GeneratorConfig {
        seed: opts.seed,
        users: opts.users,
        start_ms: now_ms() - (span_days * 86_400_000.0) as i64,
        ..GeneratorConfig::default()
    });
    let shared = Arc::new(Shared {
        generator: Mutex::new(generator),
        sent: AtomicU64::new(0),
        users: Mutex::new(HashMap::new()),
    });
    let bar = if opts.progress { progress_bar(&opts) } else { ProgressBar::hidden() };
    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let mut tasks = Vec::new();
    for _ in 0..opts.clients.max(1) {
        let client = client.clone();
        let shared = shared.clone();
        let opts = opts.clone();
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let mut report = new_report();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d)
                    || opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    break;
                }
                let phase = opts.phase.as_ref().map_or(0, |p| p.load(Ordering::Relaxed)).min(PHASES - 1);
                let want = opts.batch as u64;
                let prev = shared.sent.fetch_add(want, Ordering::Relaxed);
                let take = match opts.max_events {
                    Some(max) if prev >= max => break,
                    Some(max) => want.min(max - prev),
                    None => want,
                };
                let batch: Vec<_> = {
                    let mut g = shared.generator.lock().expect("generator lock");
                    (0..take).map(|_| g.next_event()).collect()
                };
                let protos: Vec<_> = batch.iter().map(event_to_proto).collect();
                let t0 = Instant::now();
                let outcomes = client.ingest(&protos).await;
                let us = t0.elapsed().as_micros() as u64;
                report.requests += 1;
                if let Some(h) = report.latency_us.as_mut() {
                    let _ = h.record(us.max(1));
                }
                if let Some(h) = report.phase_latency_us.get_mut(phase) {
                    let _ = h.record(us.max(1));
                }
                match outcomes {
                    Ok(outcomes) => {
                        let mut users = Vec::new();
                        for (o, ev) in outcomes.iter().zip(&batch) {
                            match o {
                                Outcome::Ok { duplicate, verdict } => {
                                    if let Some(v) = verdict {
                                        report.verdicts += 1;
                                        report.challenged += u64::from(v.action == Action::Challenge as i32);
                                        report.blocked += u64::from(v.action == Action::Block as i32);
                                    }
                                    report.events_ok += 1;
                                    report.duplicates += *duplicate as u64;
                                    users.push(ev.user_id.clone());
                                }
                                Outcome::Failed { reason } => {
                                    report.events_failed += 1;
                                    keep_error(&mut report, reason);
                                }
                                Outcome::Indeterminate { reason } => {
                                    report.events_indeterminate += 1;
                                    keep_error(&mut report, reason);
                                }
                            }
                        }
                        let mut seen = shared.users.lock().expect("users lock");
                        for u in users {
                            *seen.entry(u).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        report.events_failed += take;
                        keep_error(&mut report, &e.to_string());
                    }
                }
                bar.set_message(format!("{} events ok", shared.sent.load(Ordering::Relaxed)));
                if opts.max_events.is_some() {
                    bar.inc(take);
                } else {
                    bar.set_position(started.elapsed().as_secs());
                }
            }
            report
        }));
    }
    let mut total = new_report();
    for t in tasks {
        if let Ok(r) = t.await {
            total.requests += r.requests;
            total.events_ok += r.events_ok;
            total.duplicates += r.duplicates;
            total.events_failed += r.events_failed;
            total.events_indeterminate += r.events_indeterminate;
            total.verdicts += r.verdicts;
            total.challenged += r.challenged;
            total.blocked += r.blocked;
            if let (Some(a), Some(b)) = (total.latency_us.as_mut(), r.latency_us.as_ref()) {
                let _ = a.add(b);
            }
            for (a, b) in total.phase_latency_us.iter_mut().zip(&r.phase_latency_us) {
                let _ = a.add(b);
            }
            for e in r.sample_errors {
                keep_error(&mut total, &e);
            }
        }
    }
    total.elapsed = started.elapsed();
    let users = shared.users.lock().expect("users lock");
    total.users_written = users.len();
    total.busiest_user = users.iter().max_by_key(|(u, n)| (**n, *u)).map(|(u, _)| u.clone());
    bar.finish_and_clear();
    total
}

fn new_report() -> LoadReport {
    let hist = || Histogram::new(3).expect("3 significant digits is valid");
    LoadReport {
        latency_us: Some(hist()),
        phase_latency_us: (0..PHASES).map(|_| hist()).collect(),
        ..LoadReport::default()
    }
}

fn keep_error(report: &mut LoadReport, e: &str) {
    if report.sample_errors.len() < 5 && !report.sample_errors.iter().any(|x| x == e) {
        report.sample_errors.push(e.to_string());
    }
}

fn progress_bar(opts: &LoadOptions) -> ProgressBar {
    let (len, template) = match (opts.max_events, opts.duration) {
        (Some(n), _) => (n, "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} events ({per_sec}, eta {eta})"),
        (None, Some(d)) => (d.as_secs().max(1), "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} s  {msg}"),
        (None, None) => (0, "{spinner} [{elapsed_precise}] {msg}"),
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
