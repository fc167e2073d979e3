//! Which scoring models the cluster runs: part of the meta group's state.
//!
//! A deployed [`ModelBundle`] travels in the meta group's log; its bytes are stored beside the
//! meta state (one key per version, written by the state machine in the same batch, so they are
//! in the meta group's snapshots too) and only its [`StoredModel`] summary lives here. Every node
//! replicates the meta group, watches this registry and hot-swaps its compiled models to match.
//!
//! `live: None` means the models built into the binary. Deploying a live version pushes the one
//! it replaces onto `history`; rolling back pops it. At most [`MAX_STORED_MODELS`] bundles are
//! kept: the oldest one no slot refers to is dropped first.

use scoring::scorer::ModelBundle;
use serde::{Deserialize, Serialize};

/// Bundles kept in the meta group (each at most [`MAX_BUNDLE_BYTES`]).
pub const MAX_STORED_MODELS: usize = 6;
/// Earlier live versions remembered for rollback.
pub const MAX_HISTORY: usize = MAX_STORED_MODELS - 2;
/// Largest bundle accepted for deployment (all files together).
pub const MAX_BUNDLE_BYTES: usize = 6 << 20;

/// Which slot a deployment fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSlot {
    /// Answers every request.
    Live,
    /// Scored beside the live set; its score is reported, never acted on.
    Shadow,
}

/// A change to the registry (a meta command).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelCommand {
    /// Stores `bundle` (checked to load by the node that proposed it) as `version`, into `slot`.
    /// `at_ms`: the proposer's clock, for display only.
    Deploy { version: String, bundle: ModelBundle, slot: ModelSlot, at_ms: i64 },
    /// The shadow version becomes live.
    Promote,
    /// No shadow any more.
    ClearShadow,
    /// The previous live version becomes live again.
    Rollback,
}

/// A stored bundle, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModel {
    pub version: String,
    /// xxh3-64 over the bundle's files: the same version deployed twice must be the same bytes.
    pub digest: u64,
    pub bytes: u64,
    pub deployed_at_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRegistry {
    /// Oldest deployment first.
    pub stored: Vec<StoredModel>,
    /// `None`: the binary's built-in models.
    pub live: Option<String>,
    pub shadow: Option<String>,
    /// Earlier live versions, most recent last (`None` = built-in).
    pub history: Vec<Option<String>>,
}

/// xxh3-64 over each file, with its length, in a fixed order.
pub fn bundle_digest(b: &ModelBundle) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [&b.manifest_json, &b.iforest_onnx, &b.autoencoder_onnx, &b.gbt_onnx] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.digest()
}

pub fn bundle_bytes(b: &ModelBundle) -> usize {
    b.manifest_json.len() + b.iforest_onnx.len() + b.autoencoder_onnx.len() + b.gbt_onnx.len()
}

impl ModelRegistry {
    pub fn get(&self, version: &str) -> Option<&StoredModel> {
        self.stored.iter().find(|m| m.version == version)
    }

    fn set_live(&mut self, version: Option<String>) {
        if self.live == version {
            return;
        }
        let old = std::mem::replace(&mut self.live, version);
        self.history.push(old);
        if self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
    }

    /// Applies `cmd`; `Err` is the reason it was a no-op. Returns whether the bundle's bytes must
    /// be written (a version not stored before).
    pub fn apply(&mut self, cmd: &ModelCommand) -> Result<bool, String> {
        match cmd {
            ModelCommand::Deploy { version, bundle, slot, at_ms } => {
                if version.is_empty() {
                    return Err("model version must not be empty".into());
                }
                let digest = bundle_digest(bundle);
                let new = match self.get(version) {
                    Some(m) if m.digest != digest => {
                        return Err(format!(
                            "model version {version} is already stored with different files; \
                             give the new bundle its own model_version"
                        ))
                    }
                    Some(_) => false,
                    None => {
                        self.stored.push(StoredModel {
                            version: version.clone(),
                            digest,
                            bytes: bundle_bytes(bundle) as u64,
                            deployed_at_ms: *at_ms,
                        });
                        true
                    }
                };
                match slot {
                    ModelSlot::Live => {
                        self.set_live(Some(version.clone()));
                        if self.shadow.as_ref() == Some(version) {
                            self.shadow = None;
                        }
                    }
                    ModelSlot::Shadow => self.shadow = Some(version.clone()),
                }
                self.evict();
                Ok(new)
            }
            ModelCommand::Promote => {
                let Some(shadow) = self.shadow.take() else {
                    return Err("there is no shadow model to promote".into());
                };
                self.set_live(Some(shadow));
                Ok(false)
            }
            ModelCommand::ClearShadow => match self.shadow.take() {
                Some(_) => Ok(false),
                None => Err("there is no shadow model".into()),
            },
            ModelCommand::Rollback => {
                let Some(previous) = self.history.pop() else {
                    return Err("no earlier live model version to roll back to".into());
                };
                self.live = previous;
                if self.shadow.is_some() && self.shadow == self.live {
                    self.shadow = None;
                }
                Ok(false)
            }
        }
    }

    /// Drops the oldest bundles no slot refers to, down to [`MAX_STORED_MODELS`]; history entries
    /// of dropped versions go too.
    fn evict(&mut self) {
        while self.stored.len() > MAX_STORED_MODELS {
            let referenced = |v: &str| {
                self.live.as_deref() == Some(v)
                    || self.shadow.as_deref() == Some(v)
                    || self.history.iter().any(|h| h.as_deref() == Some(v))
            };
            let victim = self
                .stored
                .iter()
                .position(|m| !referenced(&m.version))
                // Everything referenced: the oldest history entry goes first.
                .or_else(|| {
                    let oldest = self.history.iter().flatten().next()?.clone();
                    self.stored.iter().position(|m| m.version == oldest)
                });
            let Some(i) = victim else { return };
            let gone = self.stored.remove(i).version;
            self.history.retain(|h| h.as_deref() != Some(gone.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(tag: u8) -> ModelBundle {
        ModelBundle { manifest_json: vec![tag], iforest_onnx: vec![], autoencoder_onnx: vec![], gbt_onnx: vec![] }
    }

    fn deploy(v: &str, tag: u8, slot: ModelSlot) -> ModelCommand {
        ModelCommand::Deploy { version: v.into(), bundle: bundle(tag), slot, at_ms: 1 }
    }

    #[test]
    fn deploy_promote_and_roll_back() {
        let mut r = ModelRegistry::default();
        assert_eq!(r.apply(&deploy("a", 1, ModelSlot::Live)), Ok(true));
        assert_eq!(r.apply(&deploy("b", 2, ModelSlot::Shadow)), Ok(true));
        assert_eq!((r.live.as_deref(), r.shadow.as_deref()), (Some("a"), Some("b")));
        assert_eq!(r.apply(&ModelCommand::Promote), Ok(false));
        assert_eq!((r.live.as_deref(), r.shadow.as_deref()), (Some("b"), None));
        assert!(r.apply(&ModelCommand::Promote).is_err());
        assert_eq!(r.apply(&ModelCommand::Rollback), Ok(false));
        assert_eq!(r.live.as_deref(), Some("a"));
        assert_eq!(r.apply(&ModelCommand::Rollback), Ok(false));
        assert_eq!(r.live, None, "back to the built-in models");
        assert!(r.apply(&ModelCommand::Rollback).is_err());
    }

    #[test]
    fn a_version_is_immutable() {
        let mut r = ModelRegistry::default();
        r.apply(&deploy("a", 1, ModelSlot::Live)).unwrap();
        assert_eq!(r.apply(&deploy("a", 1, ModelSlot::Shadow)), Ok(false), "same bytes: reused");
        let err = r.apply(&deploy("a", 9, ModelSlot::Live)).unwrap_err();
        assert!(err.contains("different files"), "{err}");
        assert!(r.apply(&deploy("", 1, ModelSlot::Live)).is_err());
    }

    #[test]
    fn storage_is_bounded_and_keeps_what_is_referenced() {
        let mut r = ModelRegistry::default();
        for i in 0..20u8 {
            r.apply(&deploy(&format!("v{i}"), i, ModelSlot::Live)).unwrap();
            assert!(r.stored.len() <= MAX_STORED_MODELS);
            assert!(r.history.len() <= MAX_HISTORY);
            assert!(r.live.as_deref().and_then(|v| r.get(v)).is_some(), "live is stored");
            for h in r.history.iter().flatten() {
                assert!(r.get(h).is_some(), "history entry {h} is stored");
            }
        }
        // Every rollback target is still there.
        while r.apply(&ModelCommand::Rollback).is_ok() {
            assert!(r.live.as_deref().is_none_or(|v| r.get(v).is_some()));
        }
    }
}
