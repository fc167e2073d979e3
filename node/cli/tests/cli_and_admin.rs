//! The command line against a running node (`traceo ingest`, `traceo profile`, `traceo cluster
//! status`) and the admin port (`/healthz`, `/readyz`, `/metrics`).

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::{now_ms, start_cluster};

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let status = body.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body)
}

fn traceo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::binary()).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_file_profile_status_and_admin_endpoints() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, _client) = start_cluster(dir.path(), 1, 4, 1).await;
    let seeds = cluster.nodes[0].addr.clone();
    let admin = cluster.nodes[0].admin_addr.clone();
    let t = now_ms() - 60_000;

    // A file with a bad line is refused whole, naming the line and the field.
    let bad = dir.path().join("bad.jsonl");
    let good_line = |id: &str| {
        format!(
            r#"{{"event_id":"{id}","user_id":"carol","time_ms":{t},"kind":"login","outcome":"success","geo":{{"lat":48.85,"lon":2.35,"country":"FR"}}}}"#
        )
    };
    let bad_line = format!(
        r#"{{"event_id":"x","user_id":"carol","time_ms":{t},"kind":"login","outcome":"success","ip":"999.1.1.1"}}"#
    );
    std::fs::write(&bad, format!("{}\n{}\n", good_line("f1"), bad_line)).unwrap();
    let (ok, _, err) = traceo(&["ingest", bad.to_str().unwrap(), "--seeds", &seeds]);
    assert!(!ok);
    assert!(err.contains("line 2") && err.contains("`ip`"), "stderr: {err}");
    let (ok, _, err) = traceo(&["profile", "carol", "--seeds", &seeds]);
    assert!(!ok && err.contains("no profile"), "nothing of the bad file may be written: {err}");

    // A good file is applied; replaying it changes nothing.
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, format!("{}\n\n{}\n", good_line("f1"), good_line("f2"))).unwrap();
    let (ok, out, err) = traceo(&["ingest", good.to_str().unwrap(), "--seeds", &seeds]);
    assert!(ok, "{err}");
    assert!(out.contains("2 applied"), "{out}");
    let (ok, out, _) = traceo(&["ingest", good.to_str().unwrap(), "--seeds", &seeds]);
    assert!(ok && out.contains("0 applied, 2 already present"), "{out}");

    let (ok, out, err) = traceo(&["profile", "carol", "--seeds", &seeds]);
    assert!(ok, "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["events_applied"], 2);
    assert_eq!(p["countries"][0]["key"], "FR");

    // The analyst's override: compare-and-set from the command line, read back in the profile.
    let over = |args: &[&str]| traceo(&[&["override", "--user", "carol", "--seeds", &seeds][..], args].concat());
    let (ok, _, err) = over(&["--action", "block"]);
    assert!(!ok && err.contains("--note"), "an action needs a note: {err}");
    let (ok, out, err) = over(&["--action", "block", "--note", "T-1", "--if-none"]);
    assert!(ok && out.contains("override of carol written"), "{out}{err}");
    let (ok, _, err) = over(&["--action", "allow", "--note", "T-2", "--if-none"]);
    assert!(!ok && err.contains("not written: the override of carol is now BLOCK (T-1)"), "{err}");
    let (ok, out, _) = traceo(&["profile", "carol", "--seeds", &seeds]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["analyst_override"]["note"], "T-1", "{out}");
    let (ok2, _, err) = over(&["--clear", "--if-note", "T-1", "--if-action", "allow"]);
    assert!(ok && !ok2 && err.contains("now BLOCK (T-1)"), "the action differs: {err}");
    let (ok, out, err) = over(&["--clear", "--if-note", "T-1", "--if-action", "block"]);
    assert!(ok && out.contains("written"), "{out}{err}");
    let (_, out, _) = traceo(&["profile", "carol", "--seeds", &seeds]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(p["analyst_override"].is_null(), "cleared: {out}");

    let (ok, out, err) = traceo(&["cluster", "status", "--seeds", &seeds]);
    assert!(ok, "{err}");
    assert!(out.contains("shards 4") && out.contains(" up "), "{out}");
    assert!(out.contains("moves: 0 in flight, 0 planned"), "{out}");

    let (ok, out, err) = traceo(&["cluster", "rebalance", "--dry-run", "--seeds", &seeds]);
    assert!(ok, "{err}");
    assert!(
        out.contains("moving now (voters -> target): 0") && out.contains("planned (target -> desired): 0"),
        "{out}"
    );
    let (ok, _, err) = traceo(&["cluster", "decommission", "99", "--seeds", &seeds]);
    assert!(!ok && err.contains("no node 99"), "{err}");
    let (ok, _, err) = traceo(&["cluster", "decommission", "1", "--seeds", &seeds]);
    assert!(!ok && err.contains("replication factor"), "the only node cannot leave: {err}");

    assert_eq!(http_get(&admin, "/healthz").0, 200);
    assert_eq!(http_get(&admin, "/readyz").0, 200);
    let (code, metrics) = http_get(&admin, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("traceo_ingest_events_total{status=\"APPLIED\"} 2"), "{metrics}");
    assert!(metrics.contains("traceo_ingest_events_total{status=\"DUPLICATE\"} 2"), "{metrics}");
    assert!(metrics.contains("traceo_raft_leader{group=\"meta\"} 1"), "{metrics}");
    assert!(metrics.contains("traceo_placement_moves_in_flight 0"), "{metrics}");
    assert!(metrics.contains("traceo_node_replicas{node=\"1\"} 4"), "{metrics}");
    assert!(metrics.contains("traceo_node_state{node=\"1\"} 0"), "{metrics}");
    cluster.terminate_all(std::time::Duration::from_secs(10));
}

/// The value of the sample `name` (with its labels) in a Prometheus text page.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_links_are_reported_and_a_paused_peer_shows_in_cluster_status() {
    use std::time::{Duration, Instant};
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start_cluster(dir.path(), 3, 2, 3).await;
    let seeds = cluster.seeds().join(",");
    // Node ids are given at bootstrap: find each id's process.
    let status = client.cluster_status().await.unwrap();
    let index = |id: u64| {
        let n = status.nodes.iter().find(|n| n.id == id).expect("node in status");
        cluster.index_of_addr(&n.addr).expect("node of this cluster")
    };
    let ids: Vec<u64> = status.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), 3);
    let admin = |id: u64| cluster.nodes[index(id)].admin_addr.clone();
    let metric = |page: &str, name: &str, p: u64| sample(page, &format!("traceo_raft_{name}{{peer=\"{p}\"}}"));
    let meta_leader = || {
        let (_, page) = http_get(&cluster.nodes[0].admin_addr, "/metrics");
        sample(&page, "traceo_raft_leader{group=\"meta\"}").expect("meta leader reported") as u64
    };

    // The meta leader appends (heartbeats at least) to both other nodes: each link is reported.
    let leader = meta_leader();
    let peers: Vec<u64> = ids.iter().copied().filter(|&p| p != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = http_get(&admin(leader), "/metrics");
        if peers.iter().all(|&p| metric(&page, "appends_answered_total", p).is_some_and(|n| n > 0.0)) {
            for &p in &peers {
                let rtt = metric(&page, "append_round_trip_seconds", p).unwrap();
                assert!(rtt > 0.0 && rtt < 1.0, "loopback round trip to node {p}: {rtt} s");
                assert!(metric(&page, "append_timeouts_total", p).is_some(), "timeouts to node {p}: {page}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "links of node {leader} not reported: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A paused peer answers nothing: appends to it go unanswered within heartbeat_ms. Pause a
    // node that does not lead the meta group now, so its leader (another node) appends to it.
    let leader = meta_leader();
    let paused = ids.iter().copied().find(|&p| p != leader).unwrap();
    let pid = cluster.pid(index(paused)).expect("running").to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let (_, page) = http_get(&admin(leader), "/metrics");
    let unanswered = metric(&page, "append_timeouts_total", paused).unwrap_or(0.0);
    assert!(unanswered >= 5.0, "appends from {leader} to paused node {paused} unanswered: {unanswered}\n{page}");
    let (ok, out, err) = traceo(&["cluster", "status", "--seeds", &seeds]);
    assert!(ok, "{err}");
    assert!(out.contains("raft links with appends unanswered within heartbeat_ms"), "{out}");
    assert!(out.contains(&format!("  {leader} -> {paused}: ")), "{out}");
    cluster.terminate_all(Duration::from_secs(10));
}
