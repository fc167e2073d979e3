//! Evaluation metrics for a binary detector: ROC AUC, average precision (PR AUC), TPR at a fixed
//! FPR, and a ROC curve for plotting.
//!
//! Conventions:
//! - a higher score means "more malicious"; label `true` is the positive (malicious) class;
//! - a threshold `t` flags every event with `score >= t`, and thresholds are the distinct score
//!   values, so tied scores are always flagged together (ties are never split);
//! - ±infinity is an ordinary score; NaN is rejected: [`Ranking::new`] and [`Summary::compute`]
//!   return [`RocError::NanScore`], and the free functions return `None` (an empty curve for
//!   [`roc_curve`]). They never panic on any input.
//!
//! Every metric derives from one descending sort of the scores, done by [`Ranking::new`] in
//! O(n log n); the free functions each build their own [`Ranking`], so to compute several metrics
//! over the same data build one [`Ranking`] (or call [`Summary::compute`]) instead.
//!
//! Pure functions: no I/O, no randomness.

use serde::{Deserialize, Serialize};

/// At most this many points are returned by [`roc_curve`] / [`Ranking::roc_curve`].
pub const ROC_CURVE_MAX_POINTS: usize = 1000;

/// Why metrics could not be computed over some scores and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RocError {
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("score at index {index} is NaN")]
    NanScore { index: usize },
    #[error("no positive (malicious) labels: TPR, ROC AUC and precision are undefined")]
    NoPositives,
    #[error("no negative (benign) labels: FPR and ROC AUC are undefined")]
    NoNegatives,
}

/// Scores ranked once, descending, as cumulative counts at each distinct threshold.
///
/// Holds both classes (construction fails otherwise), so every metric on it is defined.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// `(false positives, true positives)` flagged at each distinct threshold, highest threshold
    /// first, preceded by `(0, 0)` (a threshold above every score); the last entry is
    /// `(negatives, positives)`.
    points: Vec<(u64, u64)>,
    positives: u64,
    negatives: u64,
}

impl Ranking {
    /// Sorts the scores (O(n log n)) and groups ties.
    ///
    /// Errors if the lengths differ, a score is NaN, or either class is absent.
    pub fn new(scores: &[f64], labels: &[bool]) -> Result<Ranking, RocError> {
        if scores.len() != labels.len() {
            return Err(RocError::LengthMismatch { scores: scores.len(), labels: labels.len() });
        }
        if let Some(index) = scores.iter().position(|s| s.is_nan()) {
            return Err(RocError::NanScore { index });
        }
        let mut ranked: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
        // No NaN left, so `total_cmp` is the usual order except that it puts -0.0 below 0.0; the
        // grouping below compares with `==`, which merges them again.
        ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));

        let mut points = Vec::with_capacity(ranked.len() + 1);
        points.push((0u64, 0u64));
        let (mut fp, mut tp) = (0u64, 0u64);
        for (i, &(score, label)) in ranked.iter().enumerate() {
            if label {
                tp += 1;
            } else {
                fp += 1;
            }
            let last_of_group = ranked.get(i + 1).is_none_or(|next| next.0 != score);
            if last_of_group {
                points.push((fp, tp));
            }
        }
        if tp == 0 {
            return Err(RocError::NoPositives);
        }
        if fp == 0 {
            return Err(RocError::NoNegatives);
        }
        Ok(Ranking { points, positives: tp, negatives: fp })
    }

    pub fn positives(&self) -> u64 {
        self.positives
    }

    pub fn negatives(&self) -> u64 {
        self.negatives
    }

    /// Area under the ROC curve: the probability that a random positive scores above a random
    /// negative, a tied pair counting 1/2 (the Mann–Whitney U statistic over `P·N`).
    ///
    /// Computed exactly in integers (trapezoids over tie groups), then divided once.
    pub fn roc_auc(&self) -> f64 {
        // Twice the area, in units of one (negative, positive) pair: each group of `dfp` negatives
        // ranks below the `tp` positives of earlier groups (1 each) and ties with the `dtp`
        // positives of its own group (1/2 each).
        let twice_pairs: u128 = self
            .points
            .windows(2)
            .map(|w| {
                let (fp0, tp0) = w[0];
                let (fp1, tp1) = w[1];
                u128::from(fp1 - fp0) * u128::from(tp0 + tp1)
            })
            .sum();
        twice_pairs as f64 / (2.0 * self.positives as f64 * self.negatives as f64)
    }

    /// Average precision, scikit-learn's `average_precision_score`: `Σ (R_k − R_{k−1}) · P_k`
    /// over the distinct thresholds, highest first, with recall `R` and precision `P` at each.
    pub fn average_precision(&self) -> f64 {
        let sum: f64 = self
            .points
            .windows(2)
            .filter(|w| w[1].1 > w[0].1)
            .map(|w| {
                let (fp, tp) = w[1];
                (tp - w[0].1) as f64 * (tp as f64 / (tp + fp) as f64)
            })
            .sum();
        sum / self.positives as f64
    }

    /// The largest TPR over thresholds whose FPR is at most `max_fpr` (the threshold above every
    /// score, with TPR 0 and FPR 0, counts). `None` if `max_fpr` is NaN or negative.
    pub fn tpr_at_fpr(&self, max_fpr: f64) -> Option<f64> {
        if max_fpr.is_nan() || max_fpr < 0.0 {
            return None;
        }
        // FPR and TPR both grow along `points`; `fp / n` is a correctly rounded division, so an
        // FPR exactly equal to `max_fpr` (e.g. 10 / 1000 vs 0.01) compares equal.
        let n = self.negatives as f64;
        let within = self.points.partition_point(|&(fp, _)| fp as f64 / n <= max_fpr);
        // `points[0]` has FPR 0, so `within >= 1`.
        let (_, tp) = self.points[within - 1];
        Some(tp as f64 / self.positives as f64)
    }

    /// The ROC curve as `(fpr, tpr)` at each distinct threshold, from `(0, 0)` to `(1, 1)`,
    /// downsampled to at most [`ROC_CURVE_MAX_POINTS`] points; both ends are always kept.
    ///
    /// Downsampling keeps a point once the curve has moved far enough from the last kept one,
    /// measured as `|Δfpr| + |Δlog₁₀ fpr| / 4 + |Δtpr|` (log clamped to 1e-4), so detail survives
    /// both on a linear axis and on a log FPR axis from 1e-4 to 1. Curves that already fit are
    /// returned whole.
    pub fn roc_curve(&self) -> Vec<(f64, f64)> {
        let (n, p) = (self.negatives as f64, self.positives as f64);
        let rates = self.points.iter().map(|&(fp, tp)| (fp as f64 / n, tp as f64 / p));
        if self.points.len() <= ROC_CURVE_MAX_POINTS {
            return rates.collect();
        }
        // Each coordinate of the metric is monotone along the curve and spans at most 1, so the
        // whole curve is at most 3 long; keeping interior points at least `step` apart keeps at
        // most 3 / step of them. The `- 3` leaves room for both ends and for rounding.
        let step = 3.0 / (ROC_CURVE_MAX_POINTS - 3) as f64;
        let log_x = |fpr: f64| (fpr.max(1e-4).log10() + 4.0) / 4.0;
        let last = self.points.len() - 1;
        let mut out = Vec::with_capacity(ROC_CURVE_MAX_POINTS);
        let mut kept = (0.0, 0.0);
        for (i, (fpr, tpr)) in rates.enumerate() {
            let dist = (fpr - kept.0) + (log_x(fpr) - log_x(kept.0)) + (tpr - kept.1);
            if i == 0 || i == last || dist >= step {
                out.push((fpr, tpr));
                kept = (fpr, tpr);
            }
        }
        out
    }

    /// All the [`Summary`] metrics from this one ranking.
    pub fn summary(&self) -> Summary {
        Summary {
            roc_auc: self.roc_auc(),
            pr_auc: self.average_precision(),
            tpr_at_1pct_fpr: self.tpr_at_fpr(0.01).unwrap_or(0.0),
            tpr_at_0_1pct_fpr: self.tpr_at_fpr(0.001).unwrap_or(0.0),
            positives: self.positives,
            negatives: self.negatives,
        }
    }
}

/// The headline numbers of a detector evaluation, from one sort of the scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// See [`roc_auc`].
    pub roc_auc: f64,
    /// Average precision, see [`average_precision`].
    pub pr_auc: f64,
    /// [`tpr_at_fpr`] with `max_fpr` 0.01.
    pub tpr_at_1pct_fpr: f64,
    /// [`tpr_at_fpr`] with `max_fpr` 0.001.
    pub tpr_at_0_1pct_fpr: f64,
    pub positives: u64,
    pub negatives: u64,
}

impl Summary {
    /// Errors as [`Ranking::new`]: mismatched lengths, a NaN score, or a missing class.
    pub fn compute(scores: &[f64], labels: &[bool]) -> Result<Summary, RocError> {
        Ok(Ranking::new(scores, labels)?.summary())
    }
}

/// ROC AUC (see [`Ranking::roc_auc`]); `None` if the lengths differ, a score is NaN, or there are
/// no positives or no negatives.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    Ranking::new(scores, labels).ok().map(|r| r.roc_auc())
}

/// Average precision, the PR AUC of scikit-learn's `average_precision_score` (see
/// [`Ranking::average_precision`]); `None` as for [`roc_auc`].
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    Ranking::new(scores, labels).ok().map(|r| r.average_precision())
}

/// The largest TPR over thresholds whose FPR is at most `max_fpr` (see [`Ranking::tpr_at_fpr`]);
/// `None` as for [`roc_auc`], or if `max_fpr` is NaN or negative.
pub fn tpr_at_fpr(scores: &[f64], labels: &[bool], max_fpr: f64) -> Option<f64> {
    Ranking::new(scores, labels).ok().and_then(|r| r.tpr_at_fpr(max_fpr))
}

/// The ROC curve as `(fpr, tpr)` points (see [`Ranking::roc_curve`]); empty where [`roc_auc`]
/// would be `None`.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    Ranking::new(scores, labels).map(|r| r.roc_curve()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_reversed_and_all_tied() {
        let labels = [false, false, true, true];
        let perfect = [0.1, 0.2, 0.8, 0.9];
        assert_eq!(roc_auc(&perfect, &labels), Some(1.0));
        assert_eq!(average_precision(&perfect, &labels), Some(1.0));
        assert_eq!(tpr_at_fpr(&perfect, &labels, 0.0), Some(1.0));

        let reversed = [0.9, 0.8, 0.2, 0.1];
        assert_eq!(roc_auc(&reversed, &labels), Some(0.0));
        assert_eq!(tpr_at_fpr(&reversed, &labels, 0.0), Some(0.0));
        assert_eq!(tpr_at_fpr(&reversed, &labels, 0.5), Some(0.0));
        assert_eq!(tpr_at_fpr(&reversed, &labels, 1.0), Some(1.0));
        // sklearn: average_precision_score([0,0,1,1], [.9,.8,.2,.1]) = (1/2)(1/3) + (1/2)(2/4).
        assert!(close(average_precision(&reversed, &labels).unwrap(), 5.0 / 12.0));

        let tied = [0.5; 4];
        assert_eq!(roc_auc(&tied, &labels), Some(0.5));
        // One threshold, precision = prevalence.
        assert_eq!(average_precision(&tied, &labels), Some(0.5));
        // The tie is never split: FPR jumps from 0 straight to 1.
        assert_eq!(tpr_at_fpr(&tied, &labels, 0.99), Some(0.0));
        assert_eq!(roc_curve(&tied, &labels), vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn small_example_matches_sklearn() {
        // sklearn: roc_auc_score = 0.75, average_precision_score = 0.8333…
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        assert!(close(roc_auc(&scores, &labels).unwrap(), 0.75));
        assert!(close(average_precision(&scores, &labels).unwrap(), 5.0 / 6.0));
        assert_eq!(roc_curve(&scores, &labels), vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.49), Some(0.5));
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.5), Some(1.0));
    }

    #[test]
    fn ties_across_classes_match_sklearn() {
        // Positives: 0.9, 0.7 (tied with a negative), 0.7, 0.2 (tied with two negatives).
        // Negatives: 0.8, 0.7, 0.2, 0.2, 0.1, 0.0.
        let scores = [0.9, 0.8, 0.7, 0.7, 0.7, 0.2, 0.2, 0.2, 0.1, -0.0, 0.2];
        let labels = [true, false, true, false, true, false, false, true, false, false, false];
        // Mann–Whitney by hand, P = 4, N = 7 (the 0.2 at the end is a negative too):
        //   0.9 beats all 7 → 7; each 0.7 beats 0.2×3, 0.1, 0.0 (5) and ties one (½) → 5.5 × 2;
        //   0.2 beats 0.1 and 0.0 (2) and ties three (1.5) → 3.5. Total 21.5 / 28.
        let labels_n = labels.iter().filter(|&&l| !l).count();
        assert_eq!(labels_n, 7);
        assert!(close(roc_auc(&scores, &labels).unwrap(), 21.5 / 28.0));
        // sklearn average_precision_score on the same data:
        //   thresholds 0.9 (P 1/1, ΔR 1/4), 0.7 (P 3/5, ΔR 2/4), 0.2 (P 4/9, ΔR 1/4).
        let ap = (1.0 + 2.0 * 3.0 / 5.0 + 4.0 / 9.0) / 4.0;
        assert!(close(average_precision(&scores, &labels).unwrap(), ap));
        assert!(close(ap, 0.6611111111111111));
        // FPR per threshold: 0.9 → 0, 0.8 → 1/7, 0.7 → 2/7, 0.2 → 5/7, 0.1 → 6/7, 0.0 → 1.
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.0), Some(0.25));
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.2), Some(0.25));
        assert_eq!(tpr_at_fpr(&scores, &labels, 2.0 / 7.0), Some(0.75));
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.7), Some(0.75));
        assert_eq!(tpr_at_fpr(&scores, &labels, 5.0 / 7.0), Some(1.0));
        assert_eq!(roc_curve(&scores, &labels).len(), 7);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let scores = [0.0, -0.0, 0.0, -0.0];
        let labels = [true, false, false, true];
        assert_eq!(roc_auc(&scores, &labels), Some(0.5));
        assert_eq!(roc_curve(&scores, &labels), vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn infinities_are_ordinary_scores() {
        let scores = [f64::INFINITY, f64::NEG_INFINITY, 0.0, f64::INFINITY];
        let labels = [true, false, false, false];
        assert!(close(roc_auc(&scores, &labels).unwrap(), 2.5 / 3.0));
    }

    #[test]
    fn tpr_at_fpr_exact_boundary() {
        // 1000 negatives ranked 0..1000, 10 positives above the 990 lowest negatives: at a 1% FPR
        // (10 negatives flagged, exactly 0.01) every positive is flagged; one fewer allowed
        // negative and none are.
        let mut scores: Vec<f64> = (0..1000).map(f64::from).collect();
        let mut labels = vec![false; 1000];
        scores.extend([989.5; 10]);
        labels.extend([true; 10]);
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.01), Some(1.0));
        assert_eq!(tpr_at_fpr(&scores, &labels, 0.0099), Some(0.0));
    }

    #[test]
    fn invalid_inputs() {
        assert_eq!(roc_auc(&[0.1, f64::NAN], &[true, false]), None);
        assert_eq!(Summary::compute(&[0.1, f64::NAN], &[true, false]), Err(RocError::NanScore { index: 1 }));
        assert_eq!(Summary::compute(&[0.1], &[true, false]), Err(RocError::LengthMismatch { scores: 1, labels: 2 }));
        assert_eq!(Summary::compute(&[0.1, 0.2], &[false, false]), Err(RocError::NoPositives));
        assert_eq!(Summary::compute(&[0.1, 0.2], &[true, true]), Err(RocError::NoNegatives));
        assert_eq!(Summary::compute(&[], &[]), Err(RocError::NoPositives));
        assert_eq!(average_precision(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(tpr_at_fpr(&[0.1, 0.2], &[true, false], f64::NAN), None);
        assert_eq!(tpr_at_fpr(&[0.1, 0.2], &[true, false], -0.1), None);
        assert!(roc_curve(&[0.1, 0.2], &[false, false]).is_empty());
    }

    #[test]
    fn summary_fields_and_json_names() {
        let s = Summary::compute(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(s.positives, 2);
        assert_eq!(s.negatives, 2);
        assert!(close(s.roc_auc, 0.75));
        assert!(close(s.pr_auc, 5.0 / 6.0));
        assert_eq!(s.tpr_at_1pct_fpr, 0.5);
        assert_eq!(s.tpr_at_0_1pct_fpr, 0.5);
        let json = serde_json::to_value(s).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["negatives", "positives", "pr_auc", "roc_auc", "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr"]);
    }

    #[test]
    fn roc_curve_downsampled_keeps_ends_and_shape() {
        // 200,000 distinct scores from a fixed LCG: half benign, half malicious and shifted up.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 200_000;
        let labels: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let scores: Vec<f64> = labels.iter().map(|&l| next() + if l { 0.3 } else { 0.0 }).collect();
        let ranking = Ranking::new(&scores, &labels).unwrap();
        let curve = ranking.roc_curve();
        assert!(curve.len() <= ROC_CURVE_MAX_POINTS, "{} points", curve.len());
        assert!(curve.len() > ROC_CURVE_MAX_POINTS / 2, "{} points", curve.len());
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
        assert!(curve.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // Trapezoid area of the downsampled curve stays close to the exact AUC.
        let area: f64 = curve.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
        assert!((area - ranking.roc_auc()).abs() < 1e-3, "{area} vs {}", ranking.roc_auc());
        // Low-FPR detail survives for a log axis: some kept points lie below 1e-3 FPR.
        assert!(curve.iter().filter(|p| p.0 > 0.0 && p.0 < 1e-3).count() >= 10);
    }

    /// `P(pos > neg) + ½ P(pos == neg)` over all pairs, the O(n²) definition.
    fn pairwise_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
        let pos: Vec<f64> = scores.iter().zip(labels).filter(|p| *p.1).map(|p| *p.0).collect();
        let neg: Vec<f64> = scores.iter().zip(labels).filter(|p| !*p.1).map(|p| *p.0).collect();
        if pos.is_empty() || neg.is_empty() {
            return None;
        }
        let mut wins = 0.0;
        for &p in &pos {
            for &n in &neg {
                wins += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        Some(wins / (pos.len() * neg.len()) as f64)
    }

    proptest! {
        #[test]
        fn roc_auc_equals_pairwise_definition(
            // Few distinct scores so ties are common.
            data in prop::collection::vec((-4i32..=4, any::<bool>()), 0..40),
        ) {
            let scores: Vec<f64> = data.iter().map(|d| f64::from(d.0) / 2.0).collect();
            let labels: Vec<bool> = data.iter().map(|d| d.1).collect();
            let fast = roc_auc(&scores, &labels);
            let slow = pairwise_auc(&scores, &labels);
            prop_assert_eq!(fast.is_some(), slow.is_some());
            if let (Some(f), Some(s)) = (fast, slow) {
                prop_assert!((f - s).abs() < 1e-12, "{} vs {}", f, s);
            }
        }

        #[test]
        fn metrics_stay_in_range(data in prop::collection::vec((any::<f64>(), any::<bool>()), 2..60)) {
            let scores: Vec<f64> = data.iter().map(|d| if d.0.is_nan() { 0.0 } else { d.0 }).collect();
            let labels: Vec<bool> = data.iter().map(|d| d.1).collect();
            if let Ok(r) = Ranking::new(&scores, &labels) {
                let s = r.summary();
                for v in [s.roc_auc, s.pr_auc, s.tpr_at_1pct_fpr, s.tpr_at_0_1pct_fpr] {
                    prop_assert!((0.0..=1.0).contains(&v), "{:?}", s);
                }
                prop_assert!(close(s.roc_auc, pairwise_auc(&scores, &labels).unwrap()));
                let curve = r.roc_curve();
                prop_assert_eq!(curve.first(), Some(&(0.0, 0.0)));
                prop_assert_eq!(curve.last(), Some(&(1.0, 1.0)));
            }
        }
    }
}
