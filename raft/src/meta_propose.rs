//! Meta commands proposed by a node's background tasks (members reports, node states, placement
//! changes): proposed locally when this node leads the meta group, else sent once to the leader
//! it knows of (`ProposeMeta` peer RPC), which proposes it only if it still leads.

use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};
use storage::keys::META_GROUP;
use tonic::Request;

use crate::command::{Command, CommandResult, MetaCommand};
use crate::multi::MultiRaft;
use crate::proto::raft_peer_client::RaftPeerClient;
use crate::proto::RaftMessage;
use crate::types::NodeInfo;

/// Why a meta proposal was not applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeError {
    #[error("not the meta leader (leader: {0:?})")]
    NotLeader(Option<NodeInfo>),
    #[error("meta group: {0}")]
    Raft(String),
    #[error("sending to the meta leader: {0}")]
    Transport(String),
}

/// Proposes `cmd` if this node leads the meta group.
pub async fn propose_here(multi: &MultiRaft, cmd: MetaCommand) -> Result<CommandResult, ProposeError> {
    match multi.meta_raft().client_write(Command::Meta(cmd)).await {
        Ok(r) => Ok(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(ProposeError::NotLeader(f.leader_node)),
        Err(e) => Err(ProposeError::Raft(e.to_string())),
    }
}

/// Proposes `cmd` here or on the meta leader this node knows of.
pub async fn propose(multi: &MultiRaft, cmd: MetaCommand) -> Result<CommandResult, ProposeError> {
    match propose_here(multi, cmd.clone()).await {
        Err(ProposeError::NotLeader(Some(leader))) => {
            let channel = multi.pool().get(&leader.addr).map_err(|e| ProposeError::Transport(e.to_string()))?;
            let mut request = Request::new(RaftMessage { group: META_GROUP, payload: storage::encode(&cmd) });
            request.set_timeout(Duration::from_secs(5));
            let reply = RaftPeerClient::new(channel)
                .propose_meta(request)
                .await
                .map_err(|s| ProposeError::Transport(s.message().to_string()))?;
            storage::decode::<Result<CommandResult, ProposeError>>(&reply.into_inner().payload)
                .map_err(|e| ProposeError::Transport(e.to_string()))?
        }
        other => other,
    }
}
