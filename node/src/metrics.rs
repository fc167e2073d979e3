//! Prometheus metrics of a node, defined in one registry and rendered on the admin port. The
//! counters are bumped where things happen; the gauges are filled by
//! [`crate::control::sampler`].

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub ingest_requests: IntCounter,
    pub ingest_events: IntCounterVec,
    pub rpc_latency: HistogramVec,
    pub raft_term: IntGaugeVec,
    pub raft_leader: IntGaugeVec,
    pub raft_last_log: IntGaugeVec,
    pub raft_last_applied: IntGaugeVec,
    pub raft_follower_lag: IntGaugeVec,
    pub append_answered: IntGaugeVec,
    pub append_timeouts: IntGaugeVec,
    pub append_round_trip: GaugeVec,
    pub log_syncs: IntGauge,
    pub log_appends: IntGauge,
    pub memtable_bytes: IntGauge,
    pub live_bytes: IntGaugeVec,
    pub rss_bytes: IntGauge,
    pub moves_in_flight: IntGauge,
    pub moves_planned: IntGauge,
    pub snapshot_bytes_sent: IntGauge,
    pub shards_led: IntGauge,
    pub node_replicas: IntGaugeVec,
    pub node_state: IntGaugeVec,
}

fn must<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new_custom(Some("traceo".into()), None).expect("valid prefix");
        let group = &["group"];
        Metrics {
            ingest_requests: must(&r, IntCounter::new("ingest_requests_total", "Ingest requests received").unwrap()),
            ingest_events: must(
                &r,
                IntCounterVec::new(Opts::new("ingest_events_total", "Events answered, by status"), &["status"])
                    .unwrap(),
            ),
            rpc_latency: must(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("rpc_latency_seconds", "Latency of client RPCs handled by this node")
                        .buckets(prometheus::exponential_buckets(0.0002, 2.0, 16).unwrap()),
                    &["rpc"],
                )
                .unwrap(),
            ),
            raft_term: must(&r, IntGaugeVec::new(Opts::new("raft_term", "Current term per group"), group).unwrap()),
            raft_leader: must(
                &r,
                IntGaugeVec::new(Opts::new("raft_leader", "Leader node id per group (0 unknown)"), group).unwrap(),
            ),
            raft_last_log: must(
                &r,
                IntGaugeVec::new(Opts::new("raft_last_log_index", "Last log index per group"), group).unwrap(),
            ),
            raft_last_applied: must(
                &r,
                IntGaugeVec::new(Opts::new("raft_last_applied_index", "Last applied index per group"), group).unwrap(),
            ),
            raft_follower_lag: must(
                &r,
                IntGaugeVec::new(
                    Opts::new("raft_follower_lag_entries", "Entries a follower is behind (on the leader)"),
                    &["group", "follower"],
                )
                .unwrap(),
            ),
            append_answered: must(
                &r,
                IntGaugeVec::new(
                    Opts::new("raft_appends_answered_total", "Appends (heartbeats included) a peer answered"),
                    &["peer"],
                )
                .unwrap(),
            ),
            append_timeouts: must(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "raft_append_timeouts_total",
                        "Appends to a peer unanswered within heartbeat_ms (peer unreachable, or its round trip is longer)",
                    ),
                    &["peer"],
                )
                .unwrap(),
            ),
            append_round_trip: must(
                &r,
                GaugeVec::new(
                    Opts::new("raft_append_round_trip_seconds", "Smoothed round trip of answered appends to a peer"),
                    &["peer"],
                )
                .unwrap(),
            ),
            log_syncs: must(&r, IntGauge::new("log_syncs_total", "WAL fsyncs (group commits)").unwrap()),
            log_appends: must(&r, IntGauge::new("log_appends_total", "Raft log appends made durable").unwrap()),
            memtable_bytes: must(&r, IntGauge::new("rocksdb_memtable_bytes", "RocksDB memtable bytes").unwrap()),
            live_bytes: must(
                &r,
                IntGaugeVec::new(Opts::new("rocksdb_live_data_bytes", "Estimated live bytes per family"), &["cf"])
                    .unwrap(),
            ),
            rss_bytes: must(&r, IntGauge::new("process_resident_bytes", "Resident memory of the node").unwrap()),
            moves_in_flight: must(
                &r,
                IntGauge::new("placement_moves_in_flight", "Shards whose voters differ from their target").unwrap(),
            ),
            moves_planned: must(
                &r,
                IntGauge::new("placement_moves_planned", "Shard changes the placement driver has yet to start")
                    .unwrap(),
            ),
            snapshot_bytes_sent: must(
                &r,
                IntGauge::new("snapshot_bytes_sent_total", "Snapshot bytes this node sent to other replicas").unwrap(),
            ),
            shards_led: must(&r, IntGauge::new("shards_led", "Shard groups this node leads").unwrap()),
            node_replicas: must(
                &r,
                IntGaugeVec::new(
                    Opts::new("node_replicas", "Shards whose target placement includes the node"),
                    &["node"],
                )
                .unwrap(),
            ),
            node_state: must(
                &r,
                IntGaugeVec::new(
                    Opts::new("node_state", "Node standing: 0 active, 1 draining, 2 dead, 3 removed"),
                    &["node"],
                )
                .unwrap(),
            ),
            registry: r,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Resident set size of a process, from `/proc/<pid>/statm` (Linux).
fn resident_bytes_of(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub fn resident_bytes() -> Option<u64> {
    resident_bytes_of("self")
}
