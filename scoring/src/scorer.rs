//! The verdict on one event: rules and models combined, calibrated to 0–100, an action, and the
//! reasons ordered by how much each contributed.
//!
//! A [`ModelBundle`] is what gets deployed: the manifest (`manifest.json` of the training
//! pipeline: feature names, the combiner's weights, the isolation forest's normaliser) and the
//! three ONNX files. [`ModelSet::load`] checks that the bundle was trained on exactly this
//! build's [`FEATURE_NAMES`] and compiles every model once. The combiner is a logistic
//! regression over four inputs, fitted by the pipeline on held-out users:
//!
//! `logit = intercept + w_rules·rule_points + w_if·iforest + w_ae·ln(ae_mse + ε) + w_gbt·gbt_margin`
//!
//! and the score is the logit calibrated by benign false-positive rate ([`Calibration`]: 40 = 1%
//! of benign events score this high, 60 = 0.1%, 80 = 0.01%), or `100·sigmoid(logit)` for a
//! manifest without calibration. Without a model set the score is rules-only,
//! `100·(1 − 2^(−points/40))`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detectors::{points, Reason};
use crate::features::{FEATURE_NAMES, N_FEATURES};
use crate::model::{ModelError, NeuralModel, TreeEnsemble};

/// The files of one model version, as deployed through the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelBundle {
    pub manifest_json: Vec<u8>,
    pub iforest_onnx: Vec<u8>,
    pub autoencoder_onnx: Vec<u8>,
    pub gbt_onnx: Vec<u8>,
}

impl ModelBundle {
    /// The model version this binary was built with (`scoring/models/`).
    pub fn builtin() -> ModelBundle {
        ModelBundle {
            manifest_json: include_bytes!("../models/manifest.json").to_vec(),
            iforest_onnx: include_bytes!("../models/iforest.onnx").to_vec(),
            autoencoder_onnx: include_bytes!("../models/autoencoder.onnx").to_vec(),
            gbt_onnx: include_bytes!("../models/gbt.onnx").to_vec(),
        }
    }
}

/// The parts of `manifest.json` the server uses (the file also carries documentation and
/// validation metrics, which are ignored here).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Manifest {
    pub model_version: String,
    pub feature_names: Vec<String>,
    pub iforest_c: f64,
    #[serde(default = "default_epsilon")]
    pub autoencoder_log_epsilon: f64,
    pub combiner: Combiner,
    #[serde(default)]
    pub calibration: Calibration,
}

/// Maps the combiner's log-odds to the 0–100 score by benign false-positive rate:
/// `score = 20·log10(1 / FPR)`, so 40 means 1% of benign events score this high, 60 means 0.1%,
/// 80 means 0.01%. `knots` are `[logit, score]` pairs measured on benign validation events,
/// increasing in both; between knots the score is interpolated linearly, beyond the last it
/// continues on the last segment's slope (clamped to 100), below the first it falls to 0 over
/// the first knot's score in logit units.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
pub struct Calibration {
    #[serde(default)]
    pub knots: Vec<[f64; 2]>,
}

impl Calibration {
    /// The score of a logit, or `None` without knots.
    pub fn score(&self, logit: f64) -> Option<f64> {
        let k = &self.knots;
        let first = k.first()?;
        if logit <= first[0] {
            return Some((first[1] - (first[0] - logit)).max(0.0));
        }
        let last = k[k.len() - 1];
        let segment = k.windows(2).find(|w| logit <= w[1][0]);
        let score = match segment {
            Some(w) => w[0][1] + (logit - w[0][0]) * (w[1][1] - w[0][1]) / (w[1][0] - w[0][0]),
            None if k.len() >= 2 => {
                let p = k[k.len() - 2];
                last[1] + (logit - last[0]) * (last[1] - p[1]) / (last[0] - p[0])
            }
            None => last[1],
        };
        Some(score.clamp(0.0, 100.0))
    }
}

fn default_epsilon() -> f64 {
    1e-6
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Combiner {
    pub intercept: f64,
    /// By input name: `rules_score`, `iforest_score`, `autoencoder_log_mse`, `gbt_margin`.
    pub weights: BTreeMap<String, f64>,
    /// Typical (median) value of each input on benign validation events; contributions are
    /// measured from here. Missing: 0.
    #[serde(default)]
    pub baselines: BTreeMap<String, f64>,
}

impl Combiner {
    fn weight(&self, name: &str) -> f64 {
        self.weights.get(name).copied().unwrap_or(0.0)
    }

    fn baseline(&self, name: &str) -> f64 {
        self.baselines.get(name).copied().unwrap_or(0.0)
    }
}

/// The models' outputs for one event, as the combiner takes them.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelOutputs {
    /// Isolation-forest anomaly score `2^(−E[h]/c)`, in (0, 1].
    pub iforest: f64,
    /// ln(autoencoder reconstruction MSE + ε).
    pub autoencoder: f64,
    /// Gradient-boosted trees' margin (log-odds of malicious).
    pub gbt: f64,
}

/// A deployed model version, compiled and ready.
#[derive(Clone, Debug)]
pub struct ModelSet {
    manifest: Manifest,
    iforest: TreeEnsemble,
    autoencoder: NeuralModel,
    gbt: TreeEnsemble,
}

impl ModelSet {
    /// Parses and checks the manifest, compiles the three models.
    pub fn load(bundle: &ModelBundle) -> Result<ModelSet, ModelError> {
        let manifest: Manifest = serde_json::from_slice(&bundle.manifest_json)
            .map_err(|e| ModelError::Graph(format!("manifest.json: {e}")))?;
        if manifest.feature_names != FEATURE_NAMES {
            return Err(ModelError::Graph(format!(
                "manifest.json: feature_names {:?} differ from this build's {:?}: retrain the models",
                manifest.feature_names, FEATURE_NAMES
            )));
        }
        let knots = &manifest.calibration.knots;
        if knots.iter().any(|k| !k[0].is_finite() || !k[1].is_finite())
            || knots.windows(2).any(|w| w[1][0] <= w[0][0] || w[1][1] < w[0][1])
        {
            return Err(ModelError::Graph("manifest.json: calibration knots must increase".into()));
        }
        if !(manifest.iforest_c.is_finite() && manifest.iforest_c > 0.0) {
            return Err(ModelError::Graph(format!(
                "manifest.json: iforest_c must be positive, got {}",
                manifest.iforest_c
            )));
        }
        let load_trees = |name: &str, bytes: &[u8]| -> Result<TreeEnsemble, ModelError> {
            let t = TreeEnsemble::from_onnx(bytes).map_err(|e| ModelError::Graph(format!("{name}: {e}")))?;
            if t.n_features() != N_FEATURES {
                return Err(ModelError::FeatureCount { expected: N_FEATURES, got: t.n_features() });
            }
            Ok(t)
        };
        let iforest = load_trees("iforest.onnx", &bundle.iforest_onnx)?;
        let gbt = load_trees("gbt.onnx", &bundle.gbt_onnx)?;
        let autoencoder = NeuralModel::from_onnx(&bundle.autoencoder_onnx)
            .map_err(|e| ModelError::Graph(format!("autoencoder.onnx: {e}")))?;
        if autoencoder.n_features() != N_FEATURES {
            return Err(ModelError::FeatureCount { expected: N_FEATURES, got: autoencoder.n_features() });
        }
        Ok(ModelSet { manifest, iforest, autoencoder, gbt })
    }

    pub fn version(&self) -> &str {
        &self.manifest.model_version
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Runs the three models over a row-major batch of feature vectors.
    pub fn outputs(&self, rows: &[[f32; N_FEATURES]]) -> Result<Vec<ModelOutputs>, ModelError> {
        let flat: &[f32] = rows.as_flattened();
        let mut iforest = vec![0.0; rows.len()];
        let mut gbt = vec![0.0; rows.len()];
        self.iforest.predict_batch(flat, N_FEATURES, &mut iforest)?;
        self.gbt.predict_batch(flat, N_FEATURES, &mut gbt)?;
        let ae = self.autoencoder.predict_batch(flat, N_FEATURES)?;
        let c = self.manifest.iforest_c;
        let eps = self.manifest.autoencoder_log_epsilon;
        Ok((0..rows.len())
            .map(|i| ModelOutputs {
                iforest: (-f64::from(iforest[i]) / c).exp2(),
                autoencoder: (f64::from(ae[i]).max(0.0) + eps).ln(),
                gbt: f64::from(gbt[i]),
            })
            .collect())
    }

    /// The combiner's log-odds and each input's contribution relative to its benign baseline.
    fn logit(&self, rule_points: f64, m: &ModelOutputs) -> (f64, [(&'static str, f64, f64); 4]) {
        let c = &self.manifest.combiner;
        let inputs = [
            ("rules_score", rule_points),
            ("iforest_score", m.iforest),
            ("autoencoder_log_mse", m.autoencoder),
            ("gbt_margin", m.gbt),
        ];
        let logit = c.intercept + inputs.iter().map(|(n, x)| c.weight(n) * x).sum::<f64>();
        let contrib = inputs.map(|(n, x)| (n, x, c.weight(n) * (x - c.baseline(n))));
        (logit, contrib)
    }
}

/// What to do about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Challenge,
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Challenge => "challenge",
            Action::Block => "block",
        }
    }
}

/// Score thresholds of the actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// At or above: ask for step-up authentication (`require_mfa`).
    pub mfa_at: u8,
    /// At or above: challenge.
    pub challenge_at: u8,
    /// At or above: block.
    pub block_at: u8,
}

impl Default for Policy {
    fn default() -> Self {
        // With the calibrated score: step-up at 1% benign FPR, challenge at 0.1%, block at 0.01%.
        Policy { mfa_at: 40, challenge_at: 60, block_at: 80 }
    }
}

impl Policy {
    /// Checks the thresholds are ordered and within 0–100, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_at > 100 {
            return Err(format!("block_at: must be at most 100, got {}", self.block_at));
        }
        if self.challenge_at > self.block_at {
            return Err(format!("challenge_at ({}) must not exceed block_at ({})", self.challenge_at, self.block_at));
        }
        if self.mfa_at > self.challenge_at {
            return Err(format!("mfa_at ({}) must not exceed challenge_at ({})", self.mfa_at, self.challenge_at));
        }
        Ok(())
    }
}

/// The answer for one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// 0 (benign) to 100 (certainly malicious).
    pub score: u8,
    pub action: Action,
    pub require_mfa: bool,
    /// Ordered by contribution, largest first.
    pub reasons: Vec<Reason>,
    /// The model version that scored it (`rules-only` without models).
    pub model_version: String,
}

/// Rules-only score: 40 points ≈ 50.
pub fn rules_score(rule_points: f64) -> f64 {
    100.0 * (1.0 - (-rule_points / 40.0).exp2())
}

/// The combiner's log-odds: the full scorer's ranking (the 0–100 score is a monotone, clamped
/// function of it, so ranking metrics are computed on this).
pub fn combined_logit(models: &ModelSet, rule_points: f64, outputs: &ModelOutputs) -> f64 {
    models.logit(rule_points, outputs).0
}

/// The full score, 0–100 as a real number (for evaluation); rules-only without models.
pub fn combined_score(models: Option<&ModelSet>, rule_points: f64, outputs: Option<&ModelOutputs>) -> f64 {
    match (models, outputs) {
        (Some(set), Some(m)) => {
            let logit = set.logit(rule_points, m).0;
            set.manifest.calibration.score(logit).unwrap_or_else(|| 100.0 / (1.0 + (-logit).exp()))
        }
        _ => rules_score(rule_points),
    }
}

/// Combines the rule reasons and (if present) the models into a verdict.
pub fn verdict(
    models: Option<&ModelSet>,
    mut reasons: Vec<Reason>,
    outputs: Option<&ModelOutputs>,
    policy: &Policy,
) -> Verdict {
    let rule_points = points(&reasons);
    let score = combined_score(models, rule_points, outputs);
    let model_version = match (models, outputs) {
        (Some(set), Some(m)) => {
            let (_, contrib) = set.logit(rule_points, m);
            let w_rules = set.manifest.combiner.weight("rules_score");
            for r in &mut reasons {
                r.points *= w_rules;
            }
            for (name, x, c) in contrib.into_iter().skip(1) {
                if c >= 0.5 {
                    reasons.push(model_reason(name, x, c));
                }
            }
            set.version().to_owned()
        }
        _ => "rules-only".to_owned(),
    };
    reasons.sort_by(|a, b| b.points.total_cmp(&a.points));
    let score = score.round().clamp(0.0, 100.0) as u8;
    let action = if score >= policy.block_at {
        Action::Block
    } else if score >= policy.challenge_at {
        Action::Challenge
    } else {
        Action::Allow
    };
    Verdict { score, action, require_mfa: score >= policy.mfa_at, reasons, model_version }
}

fn model_reason(name: &str, x: f64, contribution: f64) -> Reason {
    let (code, evidence) = match name {
        "gbt_margin" => {
            ("model_classifier", format!("gradient-boosted classifier: P(malicious) = {:.2}", 1.0 / (1.0 + (-x).exp())))
        }
        "iforest_score" => ("model_isolation_forest", format!("isolation-forest anomaly score {x:.2}")),
        _ => ("model_autoencoder", format!("autoencoder reconstruction error {:.3}", x.exp())),
    };
    Reason { code: code.to_owned(), points: contribution, evidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_interpolates_and_extrapolates() {
        let c = Calibration { knots: vec![[-5.0, 40.0], [-2.0, 60.0], [0.0, 80.0]] };
        assert_eq!(c.score(-5.0), Some(40.0));
        assert_eq!(c.score(-3.5), Some(50.0));
        assert_eq!(c.score(-1.0), Some(70.0));
        assert_eq!(c.score(1.0), Some(90.0));
        assert_eq!(c.score(10.0), Some(100.0));
        assert_eq!(c.score(-6.0), Some(39.0));
        assert_eq!(c.score(-100.0), Some(0.0));
        assert_eq!(Calibration::default().score(1.0), None);
    }

    #[test]
    fn builtin_models_load_and_policy_is_ordered() {
        let set = ModelSet::load(&ModelBundle::builtin()).unwrap();
        assert!(!set.version().is_empty());
        assert!(set.manifest().calibration.knots.len() >= 5);
        Policy::default().validate().unwrap();
        let bad = Policy { challenge_at: 90, ..Policy::default() };
        assert!(bad.validate().unwrap_err().contains("challenge_at"));
    }

    #[test]
    fn verdict_actions_follow_the_policy() {
        let p = Policy::default();
        let reasons = |pts: f64| vec![Reason { code: "x".into(), points: pts, evidence: String::new() }];
        let v = verdict(None, reasons(0.0), None, &p);
        assert_eq!((v.score, v.action, v.require_mfa), (0, Action::Allow, false));
        let v = verdict(None, reasons(200.0), None, &p);
        assert_eq!((v.action, v.require_mfa, v.model_version.as_str()), (Action::Block, true, "rules-only"));
    }
}
