//! Peer RPC over tonic, the client side: [`PeerNetworkFactory`], one per group, sharing one
//! connection per peer address ([`ChannelPool`]). The server side is [`crate::peer_service`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::keys::GroupId;
use storage::{decode, encode};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::link_stats::LinkStats;
use crate::net_faults::{Fate, NetFaults};
use crate::proto::raft_peer_client::RaftPeerClient;
use crate::proto::RaftMessage;
use crate::transfer::{CampaignOrder, MoveLimiter};
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Largest peer message accepted (snapshot chunks and append batches stay well below).
pub const MAX_PEER_MESSAGE_BYTES: usize = 64 << 20;

/// One lazily connected, multiplexed channel per peer address, shared by all groups.
#[derive(Clone, Default)]
pub struct ChannelPool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Rate limit and counters of snapshot bytes sent (replica moves and repairs).
    pub moves: Arc<MoveLimiter>,
    /// Round trips and timeouts of appends, per peer.
    pub links: Arc<LinkStats>,
    /// Injected faults (tests), applied to messages from `node`.
    faults: Option<(NodeId, Arc<NetFaults>)>,
    /// Peer address -> the address actually dialled (a fault-injecting proxy, in tests).
    via: Arc<HashMap<String, String>>,
}

impl ChannelPool {
    /// A pool whose messages from `node` pass through `faults` (if any).
    pub fn with_faults(node: NodeId, faults: Option<Arc<NetFaults>>) -> ChannelPool {
        ChannelPool {
            channels: Default::default(),
            moves: Default::default(),
            links: Default::default(),
            faults: faults.map(|f| (node, f)),
            via: Default::default(),
        }
    }

    /// The same pool, dialling each peer address in `via` through its mapped address instead.
    pub fn dialling_via(mut self, via: HashMap<String, String>) -> ChannelPool {
        self.via = Arc::new(via);
        self
    }

    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut map = self.channels.lock().expect("channel pool lock");
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let dial = self.via.get(addr).map_or(addr, String::as_str);
        let ch = Endpoint::from_shared(format!("http://{dial}"))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }
}

pub struct PeerNetworkFactory {
    pub group: GroupId,
    pub pool: ChannelPool,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        PeerClient { group: self.group, target, node: node.clone(), pool: self.pool.clone() }
    }
}

pub struct PeerClient {
    group: GroupId,
    target: NodeId,
    node: NodeInfo,
    pool: ChannelPool,
}

#[derive(Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

/// An injected network fault, as an error.
#[derive(Debug)]
struct Injected(&'static str);

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "injected fault: {}", self.0)
    }
}

impl std::error::Error for Injected {}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let watch = matches!(rpc, Rpc::Append).then(|| self.pool.links.watch(self.target, &self.node.addr, timeout));
        let fate = self.pool.faults.as_ref().map(|(from, f)| f.decide(*from, self.target));
        if fate == Some(Fate::DropRequest) {
            tokio::time::sleep(timeout.min(Duration::from_millis(50))).await;
            return Err(RPCError::Unreachable(Unreachable::new(&Injected("request dropped"))));
        }
        let channel = self.pool.get(&self.node.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let payload = encode(req);
        if matches!(rpc, Rpc::Snapshot) {
            self.pool.moves.admit(payload.len() as u64).await;
        }
        let send = send(channel, rpc, RaftMessage { group: self.group, payload }, timeout);
        let reply = match fate {
            Some(Fate::Deliver { delay }) if !delay.is_zero() => {
                // A slow link: the message is on its way, and giving up on the call does not
                // recall it (the peer still handles it, late), as on a real network.
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(send.await);
                });
                rx.await.unwrap_or_else(|_| Err(Status::cancelled("delayed send abandoned")))
            }
            _ => send.await,
        };
        if fate == Some(Fate::DropReply) {
            return Err(RPCError::Network(NetworkError::new(&Injected("reply dropped"))));
        }
        let payload = match reply {
            Ok(r) => {
                if let Some(w) = watch {
                    w.answered();
                }
                r.into_inner().payload
            }
            // Refused or dropped connections: the peer is down; openraft backs off.
            Err(s) if s.code() == tonic::Code::Unavailable => return Err(RPCError::Unreachable(Unreachable::new(&s))),
            Err(s) => return Err(RPCError::Network(NetworkError::new(&s))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            decode(&payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e)))
    }
}

/// Sends one peer message and waits for the reply.
async fn send(
    channel: Channel,
    rpc: Rpc,
    message: RaftMessage,
    timeout: Duration,
) -> Result<Response<RaftMessage>, Status> {
    let mut client = RaftPeerClient::new(channel)
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    match rpc {
        Rpc::Append => client.append_entries(request).await,
        Rpc::Vote => client.vote(request).await,
        Rpc::Snapshot => client.install_snapshot(request).await,
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(Rpc::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(Rpc::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl()).await
    }
}

/// Sends a leadership hand-over order for `group` to the node at `addr`.
pub async fn send_campaign_order(
    pool: &ChannelPool,
    addr: &str,
    group: GroupId,
    order: &CampaignOrder,
) -> anyhow::Result<()> {
    let channel = pool.get(addr)?;
    let mut request = Request::new(RaftMessage { group, payload: encode(order) });
    request.set_timeout(Duration::from_secs(2));
    RaftPeerClient::new(channel).campaign(request).await?;
    Ok(())
}
