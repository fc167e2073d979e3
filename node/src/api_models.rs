//! The model-lifecycle RPCs: deploy, promote / clear shadow / roll back, and the registry view.
//! Changes are meta commands; the node that commits one waits until it runs the result itself,
//! so the answer names what is installed, and every other node follows through its own meta
//! replica ([`crate::model_watch`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::proto::{
    DeployModelRequest, ModelAction, ModelActionRequest, ModelsResponse, StoredModel as StoredModelProto,
};
use openraft::error::{ClientWriteError, RaftError};
use raft::model_registry::{bundle_bytes, ModelCommand, ModelSlot, MAX_BUNDLE_BYTES};
use raft::{Command, CommandResult, MetaCommand};
use scoring::scorer::ModelSet;
use tonic::Status;

use crate::api::not_leader;
use crate::shared::{now_ms, Shared};

/// How long a model change waits for this node to install it before answering anyway.
const INSTALL_WAIT: Duration = Duration::from_secs(15);

/// Proposes `cmd` to `raft` (group `what`) and returns the applied result; not the leader:
/// FAILED_PRECONDITION pointing at it.
pub async fn raft_write(raft: &raft::Raft, what: &str, cmd: Command) -> Result<CommandResult, Status> {
    match raft.client_write(cmd).await {
        Ok(r) => Ok(r.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(not_leader(what, f.leader_id.zip(f.leader_node)))
        }
        Err(e) => Err(Status::unavailable(format!("{what}: {e}"))),
    }
}

/// Proposes `cmd` to the meta group on its leader and returns the applied result.
pub async fn meta_write(shared: &Shared, cmd: MetaCommand) -> Result<CommandResult, Status> {
    raft_write(&shared.multi.meta_raft(), "the meta group", Command::Meta(cmd)).await
}

/// The registry as this node's meta replica has it, and what this node runs.
pub fn models(shared: &Shared) -> ModelsResponse {
    let registry = shared.multi.meta().borrow().models.clone();
    let scoring = &shared.scoring;
    ModelsResponse {
        live: registry.live.clone().unwrap_or_default(),
        shadow: registry.shadow.clone().unwrap_or_default(),
        history: registry.history.iter().map(|h| h.clone().unwrap_or_default()).collect(),
        stored: registry
            .stored
            .iter()
            .map(|m| StoredModelProto {
                version: m.version.clone(),
                bytes: m.bytes,
                deployed_at_ms: m.deployed_at_ms,
                digest: format!("{:016x}", m.digest),
            })
            .collect(),
        builtin_version: scoring.builtin_version(),
        node_id: shared.multi.node_id(),
        installed_live: scoring.live_version(),
        installed_shadow: scoring.shadow_version(),
    }
}

/// Waits (bounded) until this node runs what its meta replica's registry names, then answers.
async fn installed(shared: &Shared) -> ModelsResponse {
    let started = Instant::now();
    loop {
        let view = models(shared);
        let want_live = if view.live.is_empty() { view.builtin_version.clone() } else { view.live.clone() };
        let done = (view.installed_live == want_live || want_live.is_empty()) && view.installed_shadow == view.shadow;
        if done || !shared.scoring.enabled() || started.elapsed() > INSTALL_WAIT {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn applied(result: CommandResult) -> Result<(), Status> {
    match result {
        CommandResult::ModelsSet { .. } => Ok(()),
        // The registry refused it: final, so INVALID_ARGUMENT (clients do not retry those).
        CommandResult::Rejected(why) => Err(Status::invalid_argument(why)),
        other => Err(Status::internal(format!("unexpected result {other:?}"))),
    }
}

pub async fn deploy(shared: &Arc<Shared>, req: DeployModelRequest) -> Result<ModelsResponse, Status> {
    let files = req.files.ok_or_else(|| Status::invalid_argument("field `files`: required"))?;
    let bundle = crate::convert::bundle_from_proto(files);
    let size = bundle_bytes(&bundle);
    if size > MAX_BUNDLE_BYTES {
        return Err(Status::invalid_argument(format!(
            "field `files`: {size} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have"
        )));
    }
    // Compile it here first: a bundle that does not load on this build never reaches the log.
    let (bundle, set) = tokio::task::spawn_blocking(move || {
        let set = ModelSet::load(&bundle);
        (bundle, set)
    })
    .await
    .map_err(|e| Status::internal(format!("loading the bundle: {e}")))?;
    let set = set.map_err(|e| Status::invalid_argument(format!("field `files`: {e}")))?;
    let version = set.version().to_owned();
    let slot = if req.shadow { ModelSlot::Shadow } else { ModelSlot::Live };
    tracing::info!(%version, ?slot, bytes = size, "deploying scoring model");
    let cmd = ModelCommand::Deploy { version, bundle, slot, at_ms: now_ms() };
    applied(meta_write(shared, MetaCommand::Models(cmd)).await?)?;
    // Committed with these very bytes: this node need not compile them again.
    shared.scoring.precompiled(Arc::new(set));
    Ok(installed(shared).await)
}

pub async fn action(shared: &Arc<Shared>, req: ModelActionRequest) -> Result<ModelsResponse, Status> {
    let cmd = match ModelAction::try_from(req.action) {
        Ok(ModelAction::Promote) => ModelCommand::Promote,
        Ok(ModelAction::ClearShadow) => ModelCommand::ClearShadow,
        Ok(ModelAction::Rollback) => ModelCommand::Rollback,
        _ => return Err(Status::invalid_argument(format!("field `action`: {} is not an action", req.action))),
    };
    tracing::info!(?cmd, "model action");
    applied(meta_write(shared, MetaCommand::Models(cmd)).await?)?;
    Ok(installed(shared).await)
}
