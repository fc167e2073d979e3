//! The health of every node's Raft links at the end of a run, from each node's cluster status:
//! per peer, the appends answered, their smoothed round trip and the appends unanswered within
//! `heartbeat_ms` (a round trip above it stalls replication; see docs/JEPSEN.md). Written to
//! `links.json`, so a run whose throughput sagged under latency shows why.

use std::collections::BTreeMap;

use serde::Serialize;

/// One node's view of its link to one peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Link {
    pub answered: u64,
    pub timeouts: u64,
    pub round_trip_ms: f64,
}

/// Node address -> peer id -> link.
pub type Links = BTreeMap<String, BTreeMap<String, Link>>;

/// Every answering node's links; nodes that do not answer are left out.
pub async fn collect(client: &client::Client) -> Links {
    let mut all = Links::new();
    for (addr, status) in client.cluster_status_all().await {
        match status {
            Ok(s) => {
                let peers = s.links.iter().map(|l| {
                    let link = Link {
                        answered: l.answered,
                        timeouts: l.timeouts,
                        round_trip_ms: (l.round_trip_ms * 10.0).round() / 10.0,
                    };
                    (l.peer.to_string(), link)
                });
                all.insert(addr, peers.collect());
            }
            Err(e) => tracing::warn!("no cluster status from {addr}: {}", e.message()),
        }
    }
    all
}

/// Appends unanswered within `heartbeat_ms`, summed over every node and peer.
pub fn total_timeouts(links: &Links) -> u64 {
    links.values().flat_map(|peers| peers.values()).map(|l| l.timeouts).sum()
}
