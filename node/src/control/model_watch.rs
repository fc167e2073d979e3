//! Keeps this node's scoring models equal to the meta group's [`raft::ModelRegistry`]: on every
//! change of the replicated registry (a deploy, promotion or rollback applied by this node's meta
//! replica) the named versions are compiled, off the async runtime, and hot-swapped. A version
//! that fails to load here is retried every few seconds; the slot keeps what it had meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::shared::Shared;

const RETRY: Duration = Duration::from_secs(3);

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut meta = shared.multi.meta();
    loop {
        let registry = meta.borrow_and_update().models.clone();
        let s = shared.clone();
        let synced = tokio::task::spawn_blocking(move || s.scoring.sync(&registry, s.multi.engine())).await;
        let failed = match synced {
            Ok(Ok(())) => false,
            Ok(Err(e)) => {
                tracing::error!("scoring models: {e}");
                true
            }
            Err(e) => {
                tracing::error!("scoring models: sync task failed: {e}");
                true
            }
        };
        tokio::select! {
            changed = meta.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RETRY), if failed => {}
            _ = stop.changed() => return,
        }
    }
}
