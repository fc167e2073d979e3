//! Network faults between real processes, with Linux network namespaces (needs root and
//! iproute2; no iptables): each node gets a namespace with one veth on a shared bridge and its
//! own address `10.A.B.(i+1)`; the host side of the bridge is `.254`, so a test process in the
//! root namespace reaches every node.
//!
//! - A **partition** adds blackhole routes in both namespaces of every cut pair (packets between
//!   them vanish, as on a dead link: connections time out rather than being refused).
//! - **Latency and loss** are `tc netem` on a node's veth.
//! - [`NetLab::heal`] removes them all. Dropping the [`NetLab`] deletes its namespaces and
//!   bridge; names carry the creating process id, and [`NetLab::new`] first removes leftovers of
//!   dead processes.

use std::collections::BTreeSet;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
#[error("{command}: {reason}")]
pub struct NetError {
    pub command: String,
    pub reason: String,
}

const PREFIX: &str = "tj";

fn ip(args: &[&str]) -> Result<(), NetError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetError { command: command.clone(), reason: e.to_string() })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError { command, reason: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
    }
}

/// Runs `ip` inside namespace `ns`.
fn ip_in(ns: &str, args: &[&str]) -> Result<(), NetError> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

fn tc_in(ns: &str, args: &[&str]) -> Result<(), NetError> {
    let mut all = vec!["netns", "exec", ns, "tc"];
    all.extend_from_slice(args);
    ip(&all)
}

/// Namespaces, bridge and addresses of one test cluster.
pub struct NetLab {
    tag: String,
    subnet: String,
    nodes: usize,
    /// Cut pairs (i < j) currently blackholed.
    cut: BTreeSet<(usize, usize)>,
    /// Nodes with a netem qdisc.
    shaped: BTreeSet<usize>,
}

impl NetLab {
    /// Creates `nodes` namespaces on a fresh bridge. Fails without root.
    pub fn new(nodes: usize) -> Result<NetLab, NetError> {
        cleanup_stale();
        let pid = std::process::id();
        let tag = format!("{PREFIX}{}", pid % 100_000);
        let subnet = format!("10.{}.{}", 100 + (pid / 250) % 100, pid % 250);
        let lab = NetLab { tag, subnet, nodes, cut: BTreeSet::new(), shaped: BTreeSet::new() };
        let br = lab.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}.254/24", lab.subnet), "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..nodes {
            let (ns, host, peer) = (lab.namespace(i), format!("{}-v{i}", lab.tag), format!("{}-p{i}", lab.tag));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
            ip(&["link", "set", &peer, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &br])?;
            ip(&["link", "set", &host, "up"])?;
            ip_in(&ns, &["addr", "add", &format!("{}/24", lab.ip(i)), "dev", &peer])?;
            ip_in(&ns, &["link", "set", &peer, "up"])?;
            ip_in(&ns, &["link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    fn bridge(&self) -> String {
        format!("{}-br", self.tag)
    }

    /// Namespace of node `i`.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}-n{i}", self.tag)
    }

    /// Address of node `i`.
    pub fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// The command that runs a program inside node `i`'s namespace (same pid as the program).
    pub fn wrapper(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.namespace(i)]
    }

    /// Cuts every link between `a` and `b` (both directions).
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), NetError> {
        let pair = (a.min(b), a.max(b));
        if a == b || self.cut.contains(&pair) {
            return Ok(());
        }
        ip_in(&self.namespace(a), &["route", "add", "blackhole", &format!("{}/32", self.ip(b))])?;
        ip_in(&self.namespace(b), &["route", "add", "blackhole", &format!("{}/32", self.ip(a))])?;
        self.cut.insert(pair);
        Ok(())
    }

    /// Cuts every link between a node of one group and a node of another.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<(), NetError> {
        for (gi, g) in groups.iter().enumerate() {
            for h in &groups[gi + 1..] {
                for &a in g {
                    for &b in h {
                        self.cut(a, b)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `delay_ms` (± a quarter of it) and `loss_pct` packet loss to node `i`'s traffic.
    pub fn shape(&mut self, i: usize, delay_ms: u32, loss_pct: f64) -> Result<(), NetError> {
        let dev = format!("{}-p{i}", self.tag);
        let (delay, jitter, loss) = (format!("{delay_ms}ms"), format!("{}ms", delay_ms / 4), format!("{loss_pct}%"));
        tc_in(
            &self.namespace(i),
            &["qdisc", "replace", "dev", &dev, "root", "netem", "delay", &delay, &jitter, "loss", &loss],
        )?;
        self.shaped.insert(i);
        Ok(())
    }

    /// Removes every cut and every shaping.
    pub fn heal(&mut self) -> Result<(), NetError> {
        for (a, b) in std::mem::take(&mut self.cut) {
            ip_in(&self.namespace(a), &["route", "del", "blackhole", &format!("{}/32", self.ip(b))])?;
            ip_in(&self.namespace(b), &["route", "del", "blackhole", &format!("{}/32", self.ip(a))])?;
        }
        for i in std::mem::take(&mut self.shaped) {
            let dev = format!("{}-p{i}", self.tag);
            tc_in(&self.namespace(i), &["qdisc", "del", "dev", &dev, "root"])?;
        }
        Ok(())
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

/// Deletes namespaces and bridges of this module whose creating process is gone.
fn cleanup_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    let mut dead = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some((pid, _)) = rest.split_once("-n") else { continue };
        let alive = pid.parse::<u32>().is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = ip(&["netns", "del", name]);
            dead.insert(format!("{PREFIX}{pid}-br"));
        }
    }
    for br in dead {
        let _ = ip(&["link", "del", &br]);
    }
}

/// Whether this process may create namespaces (root, with `ip` installed).
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    //! These tests need root, iproute2 and python3; a missing one fails under CI and is reported
    //! as skipped elsewhere ([`crate::prerequisite`]).

    use super::*;
    use crate::prerequisite::require;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    fn python3() -> bool {
        Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
    }

    /// Two namespaces: a TCP connection from node 0 to node 1 works, a cut stops it, heal
    /// restores it. Needs root, iproute2 and python3 (see the module docs for when they are
    /// missing).
    #[test]
    fn cut_and_heal_between_namespaces() {
        if !require("root and iproute2 (network namespaces)", available()) || !require("python3", python3()) {
            return;
        }
        let mut lab = NetLab::new(2).expect("namespaces");
        // A listener inside node 1's namespace: a child process, so this test's own namespace
        // never changes.
        let server_ip = lab.ip(1);
        let mut server = Command::new("ip")
            .args(["netns", "exec", &lab.namespace(1), "python3", "-c"])
            .arg(format!(
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{server_ip}',9000))\ns.listen()\nwhile True:\n  c,_=s.accept(); c.sendall(b'ok'); c.close()"
            ))
            .spawn()
            .expect("python3 in the namespace");
        std::thread::sleep(Duration::from_millis(500));
        let probe = |lab: &NetLab| -> bool {
            // From node 0's namespace, with a short timeout.
            let out = Command::new("ip")
                .args(["netns", "exec", &lab.namespace(0), "python3", "-c"])
                .arg(format!(
                    "import socket\ntry:\n  s=socket.create_connection(('{}',9000),timeout=1); print(s.recv(2).decode())\nexcept Exception: print('no')",
                    lab.ip(1)
                ))
                .output()
                .expect("probe");
            String::from_utf8_lossy(&out.stdout).trim() == "ok"
        };
        assert!(probe(&lab), "connected before the cut");
        lab.partition(&[vec![0], vec![1]]).unwrap();
        assert!(!probe(&lab), "cut");
        lab.heal().unwrap();
        assert!(probe(&lab), "healed");
        // The host reaches nodes through the bridge.
        let mut s = TcpStream::connect_timeout(&format!("{server_ip}:9000").parse().unwrap(), Duration::from_secs(1))
            .expect("host to node");
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        let _ = s.write(b"");
        let _ = server.kill();
        let _ = server.wait();
    }
}
