//! The state machine of one group. Shards fold events into profiles (deduplicating exactly by
//! user and event id); the meta group applies [`MetaCommand`]s to its
//! [`MetaState`]. Each `apply` call writes everything it changed, with the last applied log id and
//! membership, in one RocksDB batch, so a crash never separates data from the applied index.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use scoring::features::{Observation, SourceWindow};
use scoring::Profile;
use storage::keys::{group_key, GroupId};
use storage::{decode, encode, Batch, Cf, Engine};
use tokio::sync::watch;

use crate::command::{Applied, Command, CommandResult, MetaCommand};
use crate::meta::MetaState;
use crate::model_registry::ModelCommand;
use crate::sm_tags::{TAG_APPLIED, TAG_MEMBERSHIP, TAG_META_STATE, TAG_MODEL};
use crate::snapshot;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}
fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

/// Recently applied profiles of one shard, owned by its state machine (the only writer of the
/// shard's profiles). An entry always equals what the last successful apply wrote: applying takes
/// profiles out and puts them back only after the batch is written; installing a snapshot clears
/// it. It saves a RocksDB read and a decode per event for active users.
type ProfileCache = Arc<Mutex<lru::LruCache<String, Profile>>>;
/// The node's window of failed logins per source address, fed by every shard it applies.
pub type SharedSources = Arc<Mutex<SourceWindow>>;

#[derive(Clone)]
enum Kind {
    /// A shard: its profile cache and the node's source window (shared by the node's shards).
    Shard(ProfileCache, SharedSources),
    /// The meta group publishes its state to the node after every apply.
    Meta(watch::Sender<Arc<MetaState>>),
}

/// State machine of one group on the shared engine. Clones share everything.
#[derive(Clone)]
pub struct StateMachine {
    engine: Arc<Engine>,
    group: GroupId,
    kind: Kind,
}

/// Key of a user's profile in `profiles`.
pub fn profile_key(shard: GroupId, user_id: &str) -> Vec<u8> {
    group_key(shard, user_id.as_bytes())
}

/// Key of an applied event in `dedupe`: user and event id, so ids need only be unique per user.
/// Ids carry no control characters (validated), so the NUL separator is unambiguous.
pub fn dedupe_key(shard: GroupId, user_id: &str, event_id: &str) -> Vec<u8> {
    let mut suffix = Vec::with_capacity(user_id.len() + 1 + event_id.len());
    suffix.extend_from_slice(user_id.as_bytes());
    suffix.push(0);
    suffix.extend_from_slice(event_id.as_bytes());
    group_key(shard, &suffix)
}

/// Key of a deployed model bundle in `sm_meta`, beside the meta state.
fn model_key(meta_group: GroupId, version: &str) -> Vec<u8> {
    let mut suffix = vec![TAG_MODEL];
    suffix.extend_from_slice(version.as_bytes());
    group_key(meta_group, &suffix)
}

/// Reads a deployed model bundle from this node's meta replica.
pub fn read_model_bundle(
    engine: &Engine,
    version: &str,
) -> Result<Option<scoring::scorer::ModelBundle>, storage::StorageError> {
    match engine.get(Cf::SmMeta, &model_key(crate::META_GROUP, version))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(decode(&bytes)?)),
    }
}

/// Writes the bundle a model command stored and deletes the ones it evicted.
fn store_model_bundles(group: GroupId, cmd: &MetaCommand, before: &[String], after: &MetaState, batch: &mut Batch) {
    let MetaCommand::Models(ModelCommand::Deploy { version, bundle, .. }) = cmd else { return };
    if !before.contains(version) && after.models.get(version).is_some() {
        batch.put(Cf::SmMeta, model_key(group, version), encode(bundle));
    }
    for gone in before.iter().filter(|v| after.models.get(v).is_none()) {
        batch.delete(Cf::SmMeta, model_key(group, gone));
    }
}

/// Reads a user's profile as last applied on this replica.
pub fn read_profile(engine: &Engine, shard: GroupId, user_id: &str) -> Result<Option<Profile>, storage::StorageError> {
    match engine.get(Cf::Profiles, &profile_key(shard, user_id))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(decode(&bytes)?)),
    }
}

impl StateMachine {
    /// A shard's state machine, caching up to `cached_profiles` profiles (0: no cache).
    /// Applying an event also observes it against the profile before it ([`Observation`]: the
    /// scoring features, returned in [`Applied::New`]) and records it in `sources`.
    pub fn shard(engine: Arc<Engine>, group: GroupId, cached_profiles: usize, sources: SharedSources) -> StateMachine {
        let cap = NonZeroUsize::new(cached_profiles).unwrap_or(NonZeroUsize::MIN);
        StateMachine { engine, group, kind: Kind::Shard(Arc::new(Mutex::new(lru::LruCache::new(cap))), sources) }
    }

    /// The meta group's state machine; its state is loaded now and published on every change.
    pub fn meta(
        engine: Arc<Engine>,
        group: GroupId,
    ) -> Result<(StateMachine, watch::Receiver<Arc<MetaState>>), storage::StorageError> {
        let state: MetaState = match engine.get(Cf::SmMeta, &group_key(group, &[TAG_META_STATE]))? {
            Some(b) => decode(&b)?,
            None => MetaState::default(),
        };
        let (tx, rx) = watch::channel(Arc::new(state));
        Ok((StateMachine { engine, group, kind: Kind::Meta(tx) }, rx))
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    fn meta_key(&self, tag: u8) -> Vec<u8> {
        group_key(self.group, &[tag])
    }

    fn sources(&self) -> Option<&SharedSources> {
        match &self.kind {
            Kind::Shard(_, s) => Some(s),
            Kind::Meta(_) => None,
        }
    }

    fn cache(&self) -> Option<&ProfileCache> {
        match &self.kind {
            Kind::Shard(c, _) => Some(c),
            Kind::Meta(_) => None,
        }
    }

    fn reload_meta(&self) -> Result<(), storage::StorageError> {
        if let Kind::Meta(tx) = &self.kind {
            let state = match self.engine.get(Cf::SmMeta, &self.meta_key(TAG_META_STATE))? {
                Some(b) => decode(&b)?,
                None => MetaState::default(),
            };
            tx.send_replace(Arc::new(state));
        }
        Ok(())
    }

    /// Brings `user_id`'s profile into `profiles` (this apply's working set): from the cache, the
    /// engine, or new.
    fn load_profile(&self, profiles: &mut HashMap<String, Profile>, user_id: &str) -> Result<(), StorageError> {
        if !profiles.contains_key(user_id) {
            let cached = self.cache().and_then(|c| c.lock().expect("profile cache").pop(user_id));
            let p = match cached {
                Some(p) => p,
                None => read_profile(&self.engine, self.group, user_id)
                    .map_err(sm_read_err)?
                    .unwrap_or_else(|| Profile::new(user_id)),
            };
            profiles.insert(user_id.to_owned(), p);
        }
        Ok(())
    }

    fn apply_ingest(
        &self,
        events: &[scoring::Event],
        batch: &mut Batch,
        profiles: &mut HashMap<String, Profile>,
        applied_now: &mut std::collections::HashSet<Vec<u8>>,
        index: u64,
    ) -> Result<Vec<Applied>, StorageError> {
        let mut out = Vec::with_capacity(events.len());
        let mut sources = self.sources().map(|s| s.lock().expect("source window"));
        for ev in events {
            let dk = dedupe_key(self.group, &ev.user_id, &ev.event_id);
            let seen = applied_now.contains(&dk) || self.engine.get(Cf::Dedupe, &dk).map_err(sm_read_err)?.is_some();
            if seen {
                out.push(Applied::Duplicate);
                continue;
            }
            self.load_profile(profiles, &ev.user_id)?;
            let profile = profiles.get_mut(&ev.user_id).expect("inserted above");
            let failed = sources.as_ref().map_or(0, |w| w.failed_users(ev));
            let observed = Observation::observe(profile, ev, failed);
            if let Some(w) = sources.as_mut() {
                w.record(ev);
            }
            profile.fold(ev);
            batch.put(Cf::Dedupe, dk.clone(), encode(&index));
            applied_now.insert(dk);
            out.push(Applied::New(Box::new(observed)));
        }
        Ok(out)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let engine = self.engine.clone();
        let group = self.group;
        let built = tokio::task::spawn_blocking(move || snapshot::build(&engine, group))
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&e))))??;
        Ok(built)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied: Option<LogId> =
            match self.engine.get(Cf::SmMeta, &self.meta_key(TAG_APPLIED)).map_err(sm_read_err)? {
                Some(b) => decode(&b).map_err(sm_read_err)?,
                None => None,
            };
        let membership = match self.engine.get(Cf::SmMeta, &self.meta_key(TAG_MEMBERSHIP)).map_err(sm_read_err)? {
            Some(b) => decode(&b).map_err(sm_read_err)?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Batch::new();
        let mut profiles = HashMap::new();
        let mut applied_now = std::collections::HashSet::new();
        let mut results = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        let mut meta = match &self.kind {
            Kind::Meta(tx) => Some((**tx.borrow()).clone()),
            Kind::Shard(..) => None,
        };
        for entry in entries {
            last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => CommandResult::None,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    CommandResult::None
                }
                EntryPayload::Normal(Command::Ingest(events)) => {
                    if meta.is_some() {
                        CommandResult::Rejected("ingest proposed to the meta group".into())
                    } else {
                        let applied = self.apply_ingest(
                            &events,
                            &mut batch,
                            &mut profiles,
                            &mut applied_now,
                            entry.log_id.index,
                        )?;
                        CommandResult::Ingest(applied)
                    }
                }
                EntryPayload::Normal(Command::Feedback { user_id, feedback }) => {
                    if meta.is_some() {
                        CommandResult::Rejected("feedback proposed to the meta group".into())
                    } else {
                        self.load_profile(&mut profiles, &user_id)?;
                        profiles.get_mut(&user_id).expect("loaded above").apply_feedback(&feedback);
                        CommandResult::FeedbackApplied
                    }
                }
                EntryPayload::Normal(Command::SetOverride { user_id, write }) => {
                    if meta.is_some() {
                        CommandResult::Rejected("override proposed to the meta group".into())
                    } else {
                        self.load_profile(&mut profiles, &user_id)?;
                        let profile = profiles.get_mut(&user_id).expect("loaded above");
                        CommandResult::Override(profile.write_override(&write))
                    }
                }
                EntryPayload::Normal(Command::Meta(cmd)) => match meta.as_mut() {
                    Some(state) => {
                        let before: Vec<String> = state.models.stored.iter().map(|m| m.version.clone()).collect();
                        let result = state.apply(&cmd);
                        store_model_bundles(self.group, &cmd, &before, state, &mut batch);
                        result
                    }
                    None => CommandResult::Rejected("meta command proposed to a shard".into()),
                },
            };
            results.push(result);
        }
        for (user, profile) in &profiles {
            batch.put(Cf::Profiles, profile_key(self.group, user), encode(profile));
        }
        if let Some(state) = &meta {
            batch.put(Cf::SmMeta, self.meta_key(TAG_META_STATE), encode(state));
        }
        if let Some(m) = &membership {
            batch.put(Cf::SmMeta, self.meta_key(TAG_MEMBERSHIP), encode(m));
        }
        if last_applied.is_some() {
            batch.put(Cf::SmMeta, self.meta_key(TAG_APPLIED), encode(&last_applied));
        }
        self.engine.write(batch, false).map_err(sm_write_err)?;
        if let (Some(state), Kind::Meta(tx)) = (meta, &self.kind) {
            tx.send_replace(Arc::new(state));
        }
        if let Some(cache) = self.cache() {
            let mut cache = cache.lock().expect("profile cache");
            for (user, profile) in profiles {
                cache.put(user, profile);
            }
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<std::io::Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<std::io::Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let engine = self.engine.clone();
        let group = self.group;
        let meta_owned = meta.clone();
        let data = snapshot.into_inner();
        tokio::task::spawn_blocking(move || snapshot::install(&engine, group, &meta_owned, data))
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&e))))??;
        if let Some(cache) = self.cache() {
            cache.lock().expect("profile cache").clear();
        }
        self.reload_meta().map_err(sm_read_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::current(&self.engine, self.group)
    }
}
