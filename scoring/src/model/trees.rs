//! Our own evaluator for `ai.onnx.ml` `TreeEnsembleRegressor` models.
//!
//! The isolation forest and the gradient-boosted trees are exported as ONNX graphs whose only node is
//! a `TreeEnsembleRegressor`. tract does not implement that operator (and its `TreeEnsembleClassifier`
//! is two orders of magnitude slower than onnxruntime), so we read the node's attributes from the
//! ONNX bytes ourselves and evaluate them with the semantics onnxruntime implements:
//! - modes `BRANCH_LEQ`, `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`, `BRANCH_EQ`, `BRANCH_NEQ`, `LEAF`;
//!   a branch goes to its true child when `x <mode> threshold` holds, or when `x` is NaN and
//!   `nodes_missing_value_tracks_true` is set for the node (otherwise a NaN fails every comparison
//!   but `NEQ`, and so goes to the false child);
//! - `aggregate_function` `SUM` (default), `AVERAGE` (sum / number of trees), `MIN`, `MAX`; a leaf
//!   that carries no weight votes 0 (onnxruntime 1.32 does the same, under MIN/MAX too);
//! - `base_values` (one value, added after aggregation), `post_transform` `NONE`;
//! - thresholds, weights and base values given as `FLOATS` or as `*_as_tensor` (float or double; a
//!   double threshold is rounded toward the side that keeps every comparison with an `f32` input
//!   exact).
//!
//! Rejected because onnxruntime departs from the ONNX spec there, so no evaluator could match both:
//! a `post_transform` other than `NONE` (onnxruntime 1.32 ignores `LOGISTIC` and `SOFTMAX` on
//! single-target regressors), and a leaf with several weights (the spec sums them, onnxruntime uses
//! only the first). Apply a sigmoid to the score yourself, and merge weights before export.
//!
//! Layout: all nodes of all trees live in one `Vec<Node>` of 16-byte nodes, each tree in depth-first
//! preorder with one child immediately after its parent, so only the other child's index is stored;
//! `roots` holds each tree's first index. A leaf stores its weight in the threshold slot and points
//! to itself. Every step is branch-free (a compare and a conditional move), in one of three forms
//! chosen at load time for the whole ensemble:
//! - `x <= t`: when every branch is `LEQ`/`LT`/`GTE`/`GT` and NaN needs no routing of its own. `LT`
//!   becomes `<=` the largest `f32` below its threshold, and `GT`/`GTE` the negation of `LEQ`/`LT`
//!   with the children swapped, so a node stores only `t` (sklearn's `LEQ` without missing values
//!   lands here);
//! - `x <= t, or x is NaN and the node sends NaN to the "<=" child`: the same with NaN routing;
//! - a 4-bit mask over the comparison's outcome (less, equal, greater, NaN), for `EQ`/`NEQ`.
//!
//! Walks advance in lockstep (see [`TreeEnsemble`]); batches go tree by tree over blocks of rows so
//! a tree stays in cache while the block is scored. Per row the trees are always combined in model
//! order, so [`TreeEnsemble::predict_one`] and [`TreeEnsemble::predict_batch`] agree bit for bit.

use self::build::{build, Attributes};
#[cfg(test)]
use self::build::{le_branch, mask_branch};
use super::{batch_rows, decode_model, metadata_of, single_input, Metadata, ModelError};

/// How the trees' leaf values are combined (`aggregate_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// Per-node flags.
mod flag {
    /// Outcomes of comparing `x` with the threshold, one bit each (exactly one holds), for
    /// `Step::Mask`; a node's low four bits are the outcomes that send a row to its true child.
    pub const LT: u8 = 1;
    pub const EQ: u8 = 2;
    pub const GT: u8 = 4;
    /// `x` is NaN.
    pub const NAN: u8 = 8;
    /// `Step::LeNan`: a NaN goes to the true child (the `<=` one).
    pub const NAN_TRUE: u8 = 16;
    /// A leaf: it stays where it is.
    pub const LEAF: u8 = 128;
}

/// How a branch decides, for the whole ensemble (the `Node::true_child` is the decision's "yes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `x <= threshold`.
    Le,
    /// `x <= threshold`, or `x` is NaN and the node has `flag::NAN_TRUE`.
    LeNan,
    /// The outcome of comparing `x` with the threshold is among the node's `flag::{LT, EQ, GT, NAN}`.
    Mask,
}

/// One node of the flat layout (16 bytes, four to a cache line).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Node {
    /// Branch threshold, or the leaf's value.
    threshold: f32,
    /// Feature index (0 for a leaf).
    feature: u32,
    /// Index of the child taken when the step's test holds; the other child is the next node. A
    /// leaf points to itself.
    true_child: u32,
    flags: u8,
}

/// The one-hot `flag::{LT, EQ, GT, NAN}` outcome of comparing `x` with `t` (`t` is never NaN).
#[inline(always)]
fn outcome(x: f32, t: f32) -> u8 {
    (x < t) as u8 | ((x == t) as u8) << 1 | ((x > t) as u8) << 2 | (x.is_nan() as u8) << 3
}

/// Whether `x` takes `node`'s true child, under step form `S` (a `Step` as `u8`).
#[inline(always)]
fn test<const S: u8>(x: f32, node: &Node) -> bool {
    if S == Step::Le as u8 {
        x <= node.threshold
    } else if S == Step::LeNan as u8 {
        (x <= node.threshold) | (x.is_nan() & (node.flags & flag::NAN_TRUE != 0))
    } else {
        outcome(x, node.threshold) & node.flags & 0x0f != 0
    }
}

/// Rows scored together, tree by tree, in `predict_batch`.
const BLOCK_ROWS: usize = 128;
/// Trees walked together for one row in `predict_one`.
const BLOCK_TREES: usize = 64;

/// A tree ensemble (`ai.onnx.ml` `TreeEnsembleRegressor`, one target) ready to score rows.
///
/// Traversal is branch-free and in lockstep: a set of independent walks (the trees of one row, or
/// the rows of a block for one tree) each advance one level per pass, until all stand on leaves. A
/// step is a compare and a conditional move, so the CPU overlaps the walks instead of stalling on
/// each unpredictable branch.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    step: Step,
    n_features: usize,
    aggregate: Aggregate,
    base_value: f32,
    metadata: Metadata,
}

impl TreeEnsemble {
    /// Loads the ensemble from the bytes of an ONNX model whose graph's only node is an
    /// `ai.onnx.ml` `TreeEnsembleRegressor` with one target.
    pub fn from_onnx(bytes: &[u8]) -> Result<TreeEnsemble, ModelError> {
        let model = decode_model(bytes)?;
        let graph = model.graph.as_ref().ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
        let node = match graph.node.as_slice() {
            [node] => node,
            nodes => {
                let ops: Vec<&str> = nodes.iter().map(|n| n.op_type.as_str()).collect();
                return Err(ModelError::Graph(format!(
                    "expected a graph whose only node is ai.onnx.ml:TreeEnsembleRegressor, found {} nodes {ops:?}",
                    nodes.len()
                )));
            }
        };
        if node.op_type != "TreeEnsembleRegressor" || node.domain != "ai.onnx.ml" {
            return Err(ModelError::Operator {
                domain: node.domain.clone(),
                op_type: node.op_type.clone(),
                expected: "ai.onnx.ml:TreeEnsembleRegressor",
            });
        }
        let (_, dims) = single_input(graph)?;
        let declared_features = match dims.as_slice() {
            [] => None,
            [_, f] => *f,
            _ => return Err(ModelError::Graph(format!("expected a rank-2 input [N, F], found rank {}", dims.len()))),
        };
        let mut ensemble = build(&Attributes::of(node)?, declared_features)?;
        ensemble.metadata = metadata_of(&model);
        Ok(ensemble)
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Total number of nodes (branches and leaves) over all trees.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn aggregate(&self) -> Aggregate {
        self.aggregate
    }

    /// The base value added to the aggregated score (0 when the model sets none).
    pub fn base_value(&self) -> f32 {
        self.base_value
    }

    /// The model's `metadata_props`.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Scores one row of [`Self::n_features`] values.
    pub fn predict_one(&self, row: &[f32]) -> Result<f32, ModelError> {
        if row.len() != self.n_features {
            return Err(ModelError::FeatureCount { expected: self.n_features, got: row.len() });
        }
        Ok(match self.step {
            Step::Le => self.score_row::<{ Step::Le as u8 }>(row),
            Step::LeNan => self.score_row::<{ Step::LeNan as u8 }>(row),
            Step::Mask => self.score_row::<{ Step::Mask as u8 }>(row),
        })
    }

    /// Scores a row-major batch of rows of `n_features` values each into `out`, one score per row.
    /// Each score is bit-identical to [`Self::predict_one`]'s: trees are combined in model order.
    pub fn predict_batch(&self, rows: &[f32], n_features: usize, out: &mut [f32]) -> Result<(), ModelError> {
        let n = batch_rows(rows, n_features, self.n_features)?;
        if out.len() != n {
            return Err(ModelError::Batch(format!("{n} rows need an output of {n} scores, got {}", out.len())));
        }
        for (rows, out) in rows.chunks(BLOCK_ROWS * n_features).zip(out.chunks_mut(BLOCK_ROWS)) {
            match self.step {
                Step::Le => self.score_block::<{ Step::Le as u8 }>(rows, out),
                Step::LeNan => self.score_block::<{ Step::LeNan as u8 }>(rows, out),
                Step::Mask => self.score_block::<{ Step::Mask as u8 }>(rows, out),
            }
        }
        Ok(())
    }

    /// One row, its trees walked `BLOCK_TREES` at a time.
    fn score_row<const S: u8>(&self, row: &[f32]) -> f32 {
        let mut acc = self.initial();
        let mut lanes = [0u32; BLOCK_TREES];
        for roots in self.roots.chunks(BLOCK_TREES) {
            let lanes = &mut lanes[..roots.len()];
            lanes.copy_from_slice(roots);
            self.descend::<S>(lanes, row, 0);
            for &leaf in lanes.iter() {
                acc = self.combine(acc, self.nodes[leaf as usize].threshold);
            }
        }
        self.finalize(acc)
    }

    /// Up to `BLOCK_ROWS` rows, one tree at a time.
    fn score_block<const S: u8>(&self, rows: &[f32], out: &mut [f32]) {
        let mut lanes = [0u32; BLOCK_ROWS];
        let lanes = &mut lanes[..out.len()];
        out.fill(self.initial());
        for &root in &self.roots {
            lanes.fill(root);
            self.descend::<S>(lanes, rows, self.n_features);
            for (acc, &leaf) in out.iter_mut().zip(lanes.iter()) {
                *acc = self.combine(*acc, self.nodes[leaf as usize].threshold);
            }
        }
        for acc in out.iter_mut() {
            *acc = self.finalize(*acc);
        }
    }

    /// Advances every lane (a node index; lane `k`'s row starts at `rows[k * stride]`) one level
    /// per pass until all lanes are on leaves. Lanes go in groups of 8, unrolled, so the CPU has
    /// independent walks to overlap.
    #[inline(always)]
    fn descend<const S: u8>(&self, lanes: &mut [u32], rows: &[f32], stride: usize) {
        let (groups, rest) = lanes.as_chunks_mut::<8>();
        let rest_start = groups.len() * 8;
        loop {
            let mut all_leaves = true;
            for (g, group) in groups.iter_mut().enumerate() {
                for (j, lane) in group.iter_mut().enumerate() {
                    all_leaves &= self.advance::<S>(lane, rows, (g * 8 + j).wrapping_mul(stride));
                }
            }
            for (j, lane) in rest.iter_mut().enumerate() {
                all_leaves &= self.advance::<S>(lane, rows, (rest_start + j).wrapping_mul(stride));
            }
            if all_leaves {
                return;
            }
        }
    }

    /// One step of one walk, whose row starts at `rows[start]`; whether it was already on a leaf.
    #[inline(always)]
    fn advance<const S: u8>(&self, lane: &mut u32, rows: &[f32], start: usize) -> bool {
        let node = self.nodes[*lane as usize];
        let leaf = node.flags & flag::LEAF != 0;
        // Features are checked against the row width at load; a leaf reads feature 0.
        let x = rows[start.wrapping_add(node.feature as usize)];
        // A conditional move, not a branch: which way a row goes is unpredictable by nature.
        *lane = std::hint::select_unpredictable(leaf | test::<S>(x, &node), node.true_child, lane.wrapping_add(1));
        leaf
    }

    fn initial(&self) -> f32 {
        match self.aggregate {
            Aggregate::Sum | Aggregate::Average => 0.0,
            // NaN stands for "no vote yet" (weights are checked not to be NaN).
            Aggregate::Min | Aggregate::Max => f32::NAN,
        }
    }

    #[inline(always)]
    fn combine(&self, acc: f32, v: f32) -> f32 {
        match self.aggregate {
            Aggregate::Sum | Aggregate::Average => acc + v,
            Aggregate::Min if acc.is_nan() || v < acc => v,
            Aggregate::Max if acc.is_nan() || v > acc => v,
            Aggregate::Min | Aggregate::Max => acc,
        }
    }

    fn finalize(&self, acc: f32) -> f32 {
        match self.aggregate {
            Aggregate::Sum | Aggregate::Min | Aggregate::Max => acc + self.base_value,
            Aggregate::Average => acc / self.roots.len() as f32 + self.base_value,
        }
    }
}

#[path = "trees_build.rs"]
mod build;

#[cfg(test)]
#[path = "trees_tests.rs"]
mod tests;
