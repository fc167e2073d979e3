//! The model-lifecycle RPCs: deploy, promote / clear shadow / roll back, and the registry view.
//! Changes are meta commands; the node that commits one waits until it runs the result itself,
//! so the answer names what is installed, and every other node follows through its own meta
//! replica ([`crate::control::model_watch`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::proto::{
    DeployModelRequest, ModelAction, ModelActionRequest, ModelsResponse, StoredModel as StoredModelProto,
};
use raft::model_registry::{bundle_bytes, ModelCommand, ModelSlot, MAX_BUNDLE_BYTES};
use raft::{CommandResult, MetaCommand};
use scoring::scorer::ModelSet;
use tonic::Status;

use super::errors;
use super::shards::meta_write;
use crate::shared::{now_ms, Shared};

/// How long a model change waits for this node to install it before answering anyway.
const INSTALL_WAIT: Duration = Duration::from_secs(15);

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
        CommandResult::Rejected(why) => Err(errors::invalid(why)),
        other => Err(errors::unexpected(other)),
    }
}

pub async fn deploy(shared: &Arc<Shared>, req: DeployModelRequest) -> Result<ModelsResponse, Status> {
    let files = req.files.ok_or_else(|| errors::invalid_field("files", "required"))?;
    let bundle = convert::bundle_from_proto(files);
    let size = bundle_bytes(&bundle);
    if size > MAX_BUNDLE_BYTES {
        return Err(errors::invalid_field(
            "files",
            format!("{size} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have"),
        ));
    }
    // Compile it here first: a bundle that does not load on this build never reaches the log.
    let (bundle, set) = tokio::task::spawn_blocking(move || {
        let set = ModelSet::load(&bundle);
        (bundle, set)
    })
    .await
    .map_err(|e| errors::internal("loading the bundle", e))?;
    let set = set.map_err(|e| errors::invalid_field("files", e))?;
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
        _ => return Err(errors::invalid_field("action", format!("{} is not an action", req.action))),
    };
    tracing::info!(?cmd, "model action");
    applied(meta_write(shared, MetaCommand::Models(cmd)).await?)?;
    Ok(installed(shared).await)
}
