//! Peer RPC over tonic, the server side: one [`PeerService`] per node, dispatching every message
//! to the group whose id it carries (appends, votes, snapshots, hand-over orders) or, for a meta
//! proposal forwarded by another node, proposing it here.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::keys::GroupId;
use storage::{decode, encode};
use tonic::{Request, Response, Status};

use crate::multi::MultiRaft;
use crate::network::MAX_PEER_MESSAGE_BYTES;
use crate::proto::raft_peer_server::RaftPeer;
use crate::proto::RaftMessage;
use crate::transfer::{obey, CampaignOrder};

/// The node's peer service: finds the addressed group and hands it the message.
#[derive(Clone)]
pub struct PeerService {
    multi: Arc<MultiRaft>,
}

impl PeerService {
    pub fn new(multi: Arc<MultiRaft>) -> PeerService {
        PeerService { multi }
    }

    pub fn into_server(self) -> crate::proto::raft_peer_server::RaftPeerServer<PeerService> {
        crate::proto::raft_peer_server::RaftPeerServer::new(self)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
    }

    fn raft(&self, group: GroupId) -> Result<crate::Raft, Status> {
        self.multi
            .group(group)
            .map(|g| g.raft.clone())
            .ok_or_else(|| Status::not_found(format!("group {group} is not hosted on this node")))
    }
}

fn decode_req<T: DeserializeOwned>(m: &RaftMessage) -> Result<T, Status> {
    decode(&m.payload).map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn reply<T: Serialize>(group: GroupId, value: &T) -> Response<RaftMessage> {
    Response::new(RaftMessage { group, payload: encode(value) })
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        let raft = self.raft(m.group)?;
        let res = raft.append_entries(decode_req(&m)?).await;
        Ok(reply(m.group, &res))
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        let raft = self.raft(m.group)?;
        let res = raft.vote(decode_req(&m)?).await;
        Ok(reply(m.group, &res))
    }

    async fn install_snapshot(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        let raft = self.raft(m.group)?;
        let res = raft.install_snapshot(decode_req(&m)?).await;
        Ok(reply(m.group, &res))
    }

    async fn campaign(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        let raft = self.raft(m.group)?;
        let order: CampaignOrder = decode_req(&m)?;
        obey(&raft, self.multi.node_id(), &order);
        Ok(reply(m.group, &()))
    }

    async fn propose_meta(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let m = request.into_inner();
        let cmd: crate::MetaCommand = decode_req(&m)?;
        let res = crate::meta_propose::propose_here(&self.multi, cmd).await;
        Ok(reply(m.group, &res))
    }
}
