//! Scoring on the node: the live model set (and an optional shadow candidate), the rules and
//! policy, and a bounded pool that runs model batches off the async runtime.
//!
//! The state machine hands back an [`Observation`] per applied event; this turns them into
//! verdicts. Models are compiled once per version ([`ModelSet::load`]) and swapped atomically
//! (an `Arc` behind a lock held for a pointer copy), so a batch in flight finishes on the version
//! it started with and the next one sees the new version.
//!
//! Which versions are live and shadow is the meta group's [`ModelRegistry`]; [`ScoringService::sync`]
//! makes this node match it. Compiled sets are kept in a `moka` cache keyed by version (a version's
//! files never change: the registry refuses a redeploy with other bytes), so promoting or rolling
//! back to a recently used version swaps without compiling.

use std::sync::{Arc, RwLock};

use raft::model_registry::{ModelRegistry, MAX_STORED_MODELS};

use client::proto;
use scoring::detectors::{detect, RuleConfig};
use scoring::features::{Observation, N_FEATURES};
use scoring::scorer::{combined_score, verdict, ModelBundle, ModelOutputs, ModelSet, Policy, Verdict};
use tokio::sync::Semaphore;

use crate::config::ScoringConfig;

/// Batches up to this many events are scored on the calling (async) thread: about 30 µs of
/// model time (docs/SCORING.md), well under what may run between two awaits.
const INLINE_ROWS: usize = 4;

pub struct ScoringService {
    live: RwLock<Option<Arc<ModelSet>>>,
    shadow: RwLock<Option<Arc<ModelSet>>>,
    /// The models built into the binary (`None`: scoring without models was asked for).
    builtin: Option<Arc<ModelSet>>,
    /// Compiled deployed versions.
    compiled: moka::sync::Cache<String, Arc<ModelSet>>,
    /// Off: applied events get no verdict and no models are loaded (`Score` uses the rules).
    enabled: bool,
    rules: RuleConfig,
    policy: Policy,
    /// Bounds model batches running at once (the blocking pool's share for scoring).
    pool: Arc<Semaphore>,
}

impl ScoringService {
    /// Starts with the models built into the binary, unless the config turns them (or scoring)
    /// off.
    pub fn new(config: &ScoringConfig) -> anyhow::Result<ScoringService> {
        let load = config.enabled && config.builtin_models;
        let builtin = if load { Some(Arc::new(ModelSet::load(&ModelBundle::builtin())?)) } else { None };
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(ScoringService {
            live: RwLock::new(builtin.clone()),
            shadow: RwLock::new(None),
            builtin,
            compiled: moka::sync::Cache::new(MAX_STORED_MODELS as u64 + 2),
            enabled: config.enabled,
            rules: config.rules.clone(),
            policy: config.policy.clone(),
            pool: Arc::new(Semaphore::new(workers.max(1))),
        })
    }

    /// Whether applied events are scored.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn live(&self) -> Option<Arc<ModelSet>> {
        self.live.read().expect("models lock").clone()
    }

    pub fn shadow(&self) -> Option<Arc<ModelSet>> {
        self.shadow.read().expect("models lock").clone()
    }

    /// Replaces the live (and shadow) model sets; `None` = rules only / no shadow.
    pub fn install(&self, live: Option<Arc<ModelSet>>, shadow: Option<Arc<ModelSet>>) {
        *self.live.write().expect("models lock") = live;
        *self.shadow.write().expect("models lock") = shadow;
    }

    pub fn live_version(&self) -> String {
        self.live().map_or_else(|| "rules-only".to_owned(), |m| m.version().to_owned())
    }

    /// The shadow version scored beside the live one, or "".
    pub fn shadow_version(&self) -> String {
        self.shadow().map(|m| m.version().to_owned()).unwrap_or_default()
    }

    /// Version of the models built into the binary ("" when disabled).
    pub fn builtin_version(&self) -> String {
        self.builtin.as_ref().map(|m| m.version().to_owned()).unwrap_or_default()
    }

    /// Compiled set of a deployed `version`, read from this node's meta replica when not cached.
    fn compiled(&self, version: &str, engine: &storage::Engine) -> Result<Arc<ModelSet>, String> {
        if let Some(set) = self.compiled.get(version) {
            return Ok(set);
        }
        let bundle = raft::state_machine::read_model_bundle(engine, version)
            .map_err(|e| format!("reading model {version}: {e}"))?
            .ok_or_else(|| format!("model {version} is not stored on this node"))?;
        let set = Arc::new(ModelSet::load(&bundle).map_err(|e| format!("loading model {version}: {e}"))?);
        self.compiled.insert(version.to_owned(), set.clone());
        Ok(set)
    }

    /// Keeps a set compiled elsewhere (the node that accepted a deployment checked it loads).
    pub fn precompiled(&self, set: Arc<ModelSet>) {
        self.compiled.insert(set.version().to_owned(), set);
    }

    /// Installs what `registry` names (compiling on this thread: call it on a blocking one).
    /// A version that fails to load leaves that slot as it was, and the error is returned.
    pub fn sync(&self, registry: &ModelRegistry, engine: &storage::Engine) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let live = match &registry.live {
            None => Ok(self.builtin.clone()),
            Some(v) => self.compiled(v, engine).map(Some),
        };
        let shadow = match &registry.shadow {
            None => Ok(None),
            Some(v) => self.compiled(v, engine).map(Some),
        };
        let (live, shadow, result) = match (live, shadow) {
            (Ok(l), Ok(s)) => (l, s, Ok(())),
            (Err(e), s) => (self.live(), s.unwrap_or_else(|_| self.shadow()), Err(e)),
            (Ok(l), Err(e)) => (l, self.shadow(), Err(e)),
        };
        let changed = (self.live_version(), self.shadow_version());
        self.install(live, shadow);
        if changed != (self.live_version(), self.shadow_version()) {
            tracing::info!(live = %self.live_version(), shadow = %self.shadow_version(), "scoring models installed");
        }
        result
    }

    /// Verdicts for the events of an ingest (none when scoring is off): see [`Self::verdicts`].
    pub async fn ingest_verdicts(
        self: &Arc<Self>,
        observations: Vec<Option<Observation>>,
    ) -> Vec<Option<proto::Verdict>> {
        if !self.enabled {
            return vec![None; observations.len()];
        }
        self.verdicts(observations).await
    }

    /// Verdicts for a batch of observations (`None` entries stay `None`), computed on the
    /// blocking pool. A model failure degrades that batch to rules only, logged.
    pub async fn verdicts(self: &Arc<Self>, observations: Vec<Option<Observation>>) -> Vec<Option<proto::Verdict>> {
        let rows = observations.iter().flatten().count();
        if rows == 0 {
            return vec![None; observations.len()];
        }
        // A few rows cost tens of µs: cheaper here than a hand-off to a blocking thread.
        if rows <= INLINE_ROWS {
            return self.score_now(&observations);
        }
        let Ok(_permit) = self.pool.clone().acquire_owned().await else {
            return vec![None; observations.len()];
        };
        let this = self.clone();
        let n = observations.len();
        tokio::task::spawn_blocking(move || this.score_now(&observations)).await.unwrap_or_else(|e| {
            tracing::error!("scoring task failed: {e}");
            vec![None; n]
        })
    }

    /// Scores synchronously (the caller is on a blocking thread or the batch is tiny).
    pub fn score_now(&self, observations: &[Option<Observation>]) -> Vec<Option<proto::Verdict>> {
        let present: Vec<&Observation> = observations.iter().flatten().collect();
        let rows: Vec<[f32; N_FEATURES]> = present.iter().map(|o| o.features()).collect();
        let (live, shadow) = (self.live(), self.shadow());
        let outputs = |set: &Option<Arc<ModelSet>>| -> Option<Vec<ModelOutputs>> {
            let set = set.as_ref()?;
            match set.outputs(&rows) {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::error!(version = set.version(), "model failed, scoring with rules only: {e}");
                    None
                }
            }
        };
        let (live_out, shadow_out) = (outputs(&live), outputs(&shadow));
        let mut verdicts = present.iter().enumerate().map(|(i, o)| {
            let reasons = detect(o, &self.rules);
            let shadow_score = shadow.as_deref().zip(shadow_out.as_ref()).map(|(set, out)| {
                combined_score(Some(set), scoring::detectors::points(&reasons), Some(&out[i])).round() as u32
            });
            let live_set = live_out.as_ref().and(live.as_deref());
            let mut v = verdict(live_set, reasons, live_out.as_ref().map(|out| &out[i]), &self.policy);
            scoring::analyst_override::apply(&mut v, o.analyst_override.as_ref());
            let mut p = verdict_to_proto(&v);
            if let Some(s) = shadow_score {
                p.shadow_score = Some(s);
                p.shadow_version = shadow.as_ref().map(|s| s.version().to_owned()).unwrap_or_default();
            }
            p
        });
        observations.iter().map(|o| o.as_ref().and_then(|_| verdicts.next())).collect()
    }
}

pub fn verdict_to_proto(v: &Verdict) -> proto::Verdict {
    proto::Verdict {
        score: u32::from(v.score),
        action: convert::action_to_proto(v.action) as i32,
        require_mfa: v.require_mfa,
        reasons: v
            .reasons
            .iter()
            .map(|r| proto::Reason { code: r.code.clone(), points: r.points, evidence: r.evidence.clone() })
            .collect(),
        model_version: v.model_version.clone(),
        shadow_score: None,
        shadow_version: String::new(),
    }
}
