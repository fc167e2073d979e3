//! The health of every node's Raft links at the end of a run, scraped from each node's
//! `/metrics`: per peer, the appends answered, their smoothed round trip and the appends that
//! timed out (a round trip above `heartbeat_ms` stalls replication; see docs/JEPSEN.md). Written
//! to `links.json`, so a run whose throughput sagged under latency shows why.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

/// One node's view of its link to one peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Link {
    pub answered: u64,
    pub timeouts: u64,
    pub round_trip_ms: f64,
}

/// Per node id, per peer id, from a Prometheus text page.
pub fn parse(page: &str) -> BTreeMap<String, Link> {
    let mut links: BTreeMap<String, Link> = BTreeMap::new();
    for line in page.lines() {
        let Some((name, rest)) = line.split_once("{peer=\"") else { continue };
        let Some((peer, value)) = rest.split_once("\"} ") else { continue };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let field = match name {
            "traceo_raft_appends_answered_total" => |l: &mut Link, v: f64| l.answered = v as u64,
            "traceo_raft_append_timeouts_total" => |l: &mut Link, v: f64| l.timeouts = v as u64,
            "traceo_raft_append_round_trip_seconds" => {
                |l: &mut Link, v: f64| l.round_trip_ms = (v * 1e4).round() / 10.0
            }
            _ => continue,
        };
        field(links.entry(peer.to_string()).or_default(), value);
    }
    links
}

/// GETs `/metrics` from an admin address, with short timeouts (a node may be gone).
fn metrics_page(admin: &str) -> std::io::Result<String> {
    let addr = admin.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut page = String::new();
    s.read_to_string(&mut page)?;
    Ok(page)
}

/// Every node's links, keyed by node address; nodes that do not answer are left out.
pub fn scrape(nodes: &[(String, String)]) -> BTreeMap<String, BTreeMap<String, Link>> {
    nodes
        .iter()
        .filter_map(|(addr, admin)| match metrics_page(admin) {
            Ok(page) => Some((addr.clone(), parse(&page))),
            Err(e) => {
                tracing::warn!("no metrics from {addr} ({admin}): {e}");
                None
            }
        })
        .collect()
}

/// Appends that timed out, summed over every node and peer.
pub fn total_timeouts(links: &BTreeMap<String, BTreeMap<String, Link>>) -> u64 {
    links.values().flat_map(|peers| peers.values()).map(|l| l.timeouts).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_page_gives_each_peer_link() {
        let page = "# HELP x\n\
            traceo_raft_appends_answered_total{peer=\"2\"} 120\n\
            traceo_raft_append_timeouts_total{peer=\"2\"} 3\n\
            traceo_raft_append_round_trip_seconds{peer=\"2\"} 0.01234\n\
            traceo_raft_append_timeouts_total{peer=\"3\"} 0\n\
            traceo_raft_leader{group=\"meta\"} 1\n\
            traceo_node_state{node=\"2\"} 0\n";
        let links = parse(page);
        assert_eq!(links["2"], Link { answered: 120, timeouts: 3, round_trip_ms: 12.3 });
        assert_eq!(links["3"], Link::default());
        assert_eq!(links.len(), 2);
        let all = BTreeMap::from([("a".to_string(), links.clone()), ("b".to_string(), links)]);
        assert_eq!(total_timeouts(&all), 6);
    }
}
