//! The network the `partition` and `latency` nemeses break: every node in its own network
//! namespace ([`chaos::netns`], needs root; latency needs the kernel's netem), or every node
//! dialling every peer through a fault-injecting TCP proxy ([`chaos::proxy`], no privileges).
//! Clients (the workers) always reach the nodes directly, as a client outside the broken links.

use std::net::SocketAddr;

use chaos::netns::NetLab;
use chaos::proxy::ProxyMesh;
use testkit::LocalCluster;

/// How `--net` chose to break the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    Netns,
    Proxy,
}

impl NetKind {
    /// `auto`: namespaces where the process may create them (and, for latency, the kernel can
    /// shape traffic), else proxies.
    pub fn choose(net: &str, latency: bool) -> anyhow::Result<NetKind> {
        match net {
            "netns" => Ok(NetKind::Netns),
            "proxy" => Ok(NetKind::Proxy),
            "auto" if !chaos::netns::available() => Ok(NetKind::Proxy),
            "auto" if latency && !netem_works() => {
                tracing::warn!("this kernel cannot shape traffic (netem): --net auto uses proxies");
                Ok(NetKind::Proxy)
            }
            "auto" => Ok(NetKind::Netns),
            other => anyhow::bail!("--net: {other:?} is not one of auto, netns, proxy"),
        }
    }
}

/// True when a netem qdisc can be added here (tried on a throwaway one-node lab).
fn netem_works() -> bool {
    NetLab::new(1).is_ok_and(|mut lab| lab.shape(0, 1, 0.0).and_then(|_| lab.heal()).is_ok())
}

pub enum Net {
    Netns(NetLab),
    Proxy(ProxyMesh),
}

impl Net {
    /// Proxies between the nodes of `cluster` (created, not yet started): each node is told to
    /// dial every peer through its own proxy.
    pub async fn proxies(cluster: &mut LocalCluster, seed: u64) -> anyhow::Result<Net> {
        let targets: Vec<SocketAddr> =
            cluster.seeds().iter().map(|a| a.parse()).collect::<Result<_, _>>().map_err(anyhow::Error::from)?;
        let mesh = ProxyMesh::start(&targets, seed).await?;
        for i in 0..targets.len() {
            let args =
                mesh.dial_map(i).into_iter().flat_map(|(peer, via)| ["--dial-via".into(), format!("{peer}={via}")]);
            cluster.add_args(i, args);
        }
        Ok(Net::Proxy(mesh))
    }

    pub fn cut(&mut self, a: usize, b: usize) -> anyhow::Result<()> {
        match self {
            Net::Netns(lab) => lab.cut(a, b)?,
            Net::Proxy(mesh) => mesh.cut(a, b),
        }
        Ok(())
    }

    pub fn shape(&mut self, i: usize, delay_ms: u32, loss_pct: f64) -> anyhow::Result<()> {
        match self {
            Net::Netns(lab) => lab.shape(i, delay_ms, loss_pct)?,
            Net::Proxy(mesh) => mesh.shape(i, delay_ms, loss_pct),
        }
        Ok(())
    }

    pub fn heal(&mut self) -> anyhow::Result<()> {
        match self {
            Net::Netns(lab) => lab.heal()?,
            Net::Proxy(mesh) => mesh.heal(),
        }
        Ok(())
    }
}
