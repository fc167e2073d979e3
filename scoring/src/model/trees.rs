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

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

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

/// The tree-ensemble attributes, decoded and type-checked, before the trees are assembled.
#[derive(Debug, Default)]
struct Attributes {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    modes: Vec<String>,
    values: Vec<f64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_tree_ids: Vec<i64>,
    target_node_ids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f64>,
    base_values: Vec<f64>,
    n_targets: i64,
    aggregate: String,
    post_transform: String,
}

impl Attributes {
    fn of(node: &pb::NodeProto) -> Result<Attributes, ModelError> {
        let by_name: HashMap<&str, &pb::AttributeProto> = node.attribute.iter().map(|a| (a.name.as_str(), a)).collect();
        let a = Getter(&by_name);
        Ok(Attributes {
            tree_ids: a.ints("nodes_treeids")?.ok_or(ModelError::MissingAttribute { attribute: "nodes_treeids" })?,
            node_ids: a.ints("nodes_nodeids")?.ok_or(ModelError::MissingAttribute { attribute: "nodes_nodeids" })?,
            feature_ids: a
                .ints("nodes_featureids")?
                .ok_or(ModelError::MissingAttribute { attribute: "nodes_featureids" })?,
            modes: a.strings("nodes_modes")?.ok_or(ModelError::MissingAttribute { attribute: "nodes_modes" })?,
            values: a
                .floats("nodes_values", "nodes_values_as_tensor")?
                .ok_or(ModelError::MissingAttribute { attribute: "nodes_values" })?,
            true_ids: a
                .ints("nodes_truenodeids")?
                .ok_or(ModelError::MissingAttribute { attribute: "nodes_truenodeids" })?,
            false_ids: a
                .ints("nodes_falsenodeids")?
                .ok_or(ModelError::MissingAttribute { attribute: "nodes_falsenodeids" })?,
            missing_true: a.ints("nodes_missing_value_tracks_true")?.unwrap_or_default(),
            target_tree_ids: a
                .ints("target_treeids")?
                .ok_or(ModelError::MissingAttribute { attribute: "target_treeids" })?,
            target_node_ids: a
                .ints("target_nodeids")?
                .ok_or(ModelError::MissingAttribute { attribute: "target_nodeids" })?,
            target_ids: a.ints("target_ids")?.ok_or(ModelError::MissingAttribute { attribute: "target_ids" })?,
            target_weights: a
                .floats("target_weights", "target_weights_as_tensor")?
                .ok_or(ModelError::MissingAttribute { attribute: "target_weights" })?,
            base_values: a.floats("base_values", "base_values_as_tensor")?.unwrap_or_default(),
            n_targets: a.int("n_targets")?.unwrap_or(1),
            aggregate: a.string("aggregate_function")?.unwrap_or_else(|| "SUM".into()),
            post_transform: a.string("post_transform")?.unwrap_or_else(|| "NONE".into()),
        })
    }
}

/// Typed access to a node's attributes, with errors naming the attribute.
struct Getter<'a>(&'a HashMap<&'a str, &'a pb::AttributeProto>);

impl Getter<'_> {
    /// The attribute if present, after checking its declared type (an `UNDEFINED` type, written by
    /// some old exporters, is accepted).
    fn get(&self, name: &'static str, ty: AttributeType) -> Result<Option<&pb::AttributeProto>, ModelError> {
        let Some(attr) = self.0.get(name).copied() else { return Ok(None) };
        let found = AttributeType::try_from(attr.r#type).unwrap_or(AttributeType::Undefined);
        if found != ty && found != AttributeType::Undefined {
            return Err(ModelError::Attribute {
                attribute: name,
                reason: format!("expected type {}, found {}", ty.as_str_name(), found.as_str_name()),
            });
        }
        Ok(Some(attr))
    }

    fn ints(&self, name: &'static str) -> Result<Option<Vec<i64>>, ModelError> {
        Ok(self.get(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    fn int(&self, name: &'static str) -> Result<Option<i64>, ModelError> {
        Ok(self.get(name, AttributeType::Int)?.map(|a| a.i))
    }

    fn string(&self, name: &'static str) -> Result<Option<String>, ModelError> {
        self.get(name, AttributeType::String)?.map(|a| utf8(name, &a.s)).transpose()
    }

    fn strings(&self, name: &'static str) -> Result<Option<Vec<String>>, ModelError> {
        self.get(name, AttributeType::Strings)?.map(|a| a.strings.iter().map(|s| utf8(name, s)).collect()).transpose()
    }

    /// A list of reals given either as `FLOATS` (`name`) or as a float/double tensor (`tensor_name`).
    fn floats(&self, name: &'static str, tensor_name: &'static str) -> Result<Option<Vec<f64>>, ModelError> {
        let floats = self.get(name, AttributeType::Floats)?;
        let tensor = self.get(tensor_name, AttributeType::Tensor)?;
        match (floats, tensor) {
            (Some(_), Some(_)) => Err(ModelError::Attribute {
                attribute: tensor_name,
                reason: format!("given together with `{name}`; a model must set only one of them"),
            }),
            (Some(a), None) => Ok(Some(a.floats.iter().map(|&f| f as f64).collect())),
            (None, Some(a)) => {
                let t = a.t.as_ref().ok_or(ModelError::Attribute {
                    attribute: tensor_name,
                    reason: "the attribute holds no tensor".into(),
                })?;
                tensor_reals(tensor_name, t).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}

fn utf8(name: &'static str, bytes: &[u8]) -> Result<String, ModelError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ModelError::Attribute { attribute: name, reason: "a string is not valid UTF-8".into() })
}

/// The values of a float or double tensor attribute (typed fields or little-endian `raw_data`).
fn tensor_reals(name: &'static str, t: &pb::TensorProto) -> Result<Vec<f64>, ModelError> {
    use pb::tensor_proto::DataType;
    let bad = |reason: String| ModelError::Attribute { attribute: name, reason };
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(bad("the tensor's data is stored externally; embed it in the model".into()));
    }
    let values: Vec<f64> = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(bad(format!("float raw_data of {} bytes is not a multiple of 4", t.raw_data.len())));
            }
            t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()
        }
        Ok(DataType::Float) => t.float_data.iter().map(|&f| f as f64).collect(),
        Ok(DataType::Double) if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(8) {
                return Err(bad(format!("double raw_data of {} bytes is not a multiple of 8", t.raw_data.len())));
            }
            t.raw_data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect()
        }
        Ok(DataType::Double) => t.double_data.clone(),
        _ => return Err(bad(format!("expected a FLOAT or DOUBLE tensor, found data_type {}", t.data_type))),
    };
    let declared: i64 = t.dims.iter().product();
    if !t.dims.is_empty() && declared != values.len() as i64 {
        return Err(bad(format!("tensor of dims {:?} holds {} values", t.dims, values.len())));
    }
    Ok(values)
}

/// The largest `f32` that is `<= t`.
fn f32_at_most(t: f64) -> f32 {
    let f = t as f32;
    if f as f64 > t {
        f.next_down()
    } else {
        f
    }
}

/// The smallest `f32` that is `>= t`.
fn f32_at_least(t: f64) -> f32 {
    let f = t as f32;
    if (f as f64) < t {
        f.next_up()
    } else {
        f
    }
}

/// `Step::Mask` form of a branch: the outcome bits that send a row to the ONNX true child, and the
/// `f32` threshold to compare with, such that for every `f32` x, `outcome(x, threshold) & mask != 0`
/// equals the ONNX comparison of `x as f64` with `t` (or NaN routing).
fn mask_branch(mode: &str, nan_true: bool, t: f64) -> Option<(u8, f32)> {
    use flag::{EQ, GT, LT, NAN};
    // Whether some f32 equals t (false for a NaN t).
    let exact = (t as f32) as f64 == t;
    let (mask, threshold) = match mode {
        _ if t.is_nan() && mode.starts_with("BRANCH_") => {
            // A NaN threshold fails every comparison but NEQ.
            (if mode == "BRANCH_NEQ" { LT | EQ | GT } else { 0 }, 0.0)
        }
        "BRANCH_LEQ" => (LT | EQ, f32_at_most(t)),
        "BRANCH_LT" => (LT, f32_at_least(t)),
        "BRANCH_GTE" => (EQ | GT, f32_at_least(t)),
        "BRANCH_GT" => (GT, f32_at_most(t)),
        "BRANCH_EQ" if exact => (EQ, t as f32),
        "BRANCH_EQ" => (0, 0.0),
        "BRANCH_NEQ" if exact => (LT | GT, t as f32),
        "BRANCH_NEQ" => (LT | EQ | GT, 0.0),
        _ => return None,
    };
    // A NaN x goes true when the node says so, and under NEQ always (NaN != t holds).
    let nan = if nan_true || mode == "BRANCH_NEQ" { NAN } else { 0 };
    Some((mask | nan, threshold))
}

/// `Step::Le`/`Step::LeNan` form of an ordered branch (`LEQ`, `LT`, `GTE`, `GT`): a threshold `t'`
/// such that for every non-NaN `f32` x, `x <= t'` holds exactly when x goes to the child returned
/// as the "<=" one; whether that child is the ONNX false child (`swapped`); and whether a NaN x goes
/// to it. `None` for other modes.
fn le_branch(mode: &str, nan_true: bool, t: f64) -> Option<LeBranch> {
    // Largest f32 x with x < t; NaN (never) when there is none.
    let below = |t: f64| {
        let f = f32_at_most(t);
        if (f as f64) < t {
            f
        } else if f == f32::NEG_INFINITY {
            f32::NAN
        } else {
            f.next_down()
        }
    };
    let (swapped, threshold) = match mode {
        // x <= t; a NaN t holds for no x.
        "BRANCH_LEQ" => (false, if t.is_nan() { f32::NAN } else { f32_at_most(t) }),
        "BRANCH_LT" => (false, if t.is_nan() { f32::NAN } else { below(t) }),
        // x > t is !(x <= t), x >= t is !(x < t) (for non-NaN x); a NaN t: the false child always.
        "BRANCH_GT" => (true, if t.is_nan() { f32::INFINITY } else { f32_at_most(t) }),
        "BRANCH_GTE" => (true, if t.is_nan() { f32::INFINITY } else { below(t) }),
        _ => return None,
    };
    // NaN goes to the ONNX true child when nan_true; the "<=" child is the ONNX true one unless swapped.
    Some(LeBranch { threshold, swapped, nan_to_le: nan_true != swapped })
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct LeBranch {
    threshold: f32,
    swapped: bool,
    nan_to_le: bool,
}

/// Assembles the flat ensemble from decoded attributes.
fn build(a: &Attributes, declared_features: Option<usize>) -> Result<TreeEnsemble, ModelError> {
    let n = a.tree_ids.len();
    for (attribute, len) in [
        ("nodes_nodeids", a.node_ids.len()),
        ("nodes_featureids", a.feature_ids.len()),
        ("nodes_modes", a.modes.len()),
        ("nodes_values", a.values.len()),
        ("nodes_truenodeids", a.true_ids.len()),
        ("nodes_falsenodeids", a.false_ids.len()),
    ] {
        if len != n {
            return Err(ModelError::Attribute {
                attribute,
                reason: format!("has {len} entries but nodes_treeids has {n}"),
            });
        }
    }
    if !a.missing_true.is_empty() && a.missing_true.len() != n {
        return Err(ModelError::Attribute {
            attribute: "nodes_missing_value_tracks_true",
            reason: format!("has {} entries but nodes_treeids has {n}", a.missing_true.len()),
        });
    }
    let nt = a.target_ids.len();
    for (attribute, len) in [
        ("target_treeids", a.target_tree_ids.len()),
        ("target_nodeids", a.target_node_ids.len()),
        ("target_weights", a.target_weights.len()),
    ] {
        if len != nt {
            return Err(ModelError::Attribute {
                attribute,
                reason: format!("has {len} entries but target_ids has {nt}"),
            });
        }
    }
    if a.n_targets != 1 {
        return Err(ModelError::Unsupported {
            attribute: "n_targets",
            value: a.n_targets.to_string(),
            supported: "only single-target regressors",
        });
    }
    let aggregate = match a.aggregate.as_str() {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => {
            return Err(ModelError::Unsupported {
                attribute: "aggregate_function",
                value: other.into(),
                supported: "SUM, AVERAGE, MIN, MAX",
            })
        }
    };
    if a.post_transform != "NONE" {
        return Err(ModelError::Unsupported {
            attribute: "post_transform",
            value: a.post_transform.clone(),
            supported: "only NONE: onnxruntime 1.32 ignores LOGISTIC and SOFTMAX on single-target \
                        regressors and applies PROBIT only to scores in (0, 1); apply it to the score instead",
        });
    }
    let base_value = match a.base_values.as_slice() {
        [] => 0.0,
        [b] => *b as f32,
        more => {
            return Err(ModelError::Attribute {
                attribute: "base_values",
                reason: format!("has {} values for a single-target model", more.len()),
            })
        }
    };

    // Index nodes by (tree id, node id), trees in order of first appearance.
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
    let mut tree_order: Vec<i64> = Vec::new();
    let mut tree_members: HashMap<i64, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let key = (a.tree_ids[i], a.node_ids[i]);
        if index.insert(key, i).is_some() {
            return Err(ModelError::Attribute {
                attribute: "nodes_nodeids",
                reason: format!("node {} of tree {} is defined twice", key.1, key.0),
            });
        }
        tree_members
            .entry(key.0)
            .or_insert_with(|| {
                tree_order.push(key.0);
                Vec::new()
            })
            .push(i);
    }
    if tree_order.is_empty() {
        return Err(ModelError::Attribute { attribute: "nodes_treeids", reason: "the ensemble has no trees".into() });
    }

    // Leaf weights: one per leaf at most; a leaf without weight votes 0.
    let mut weight: Vec<Option<f32>> = vec![None; n];
    for j in 0..nt {
        let key = (a.target_tree_ids[j], a.target_node_ids[j]);
        let &i = index.get(&key).ok_or_else(|| ModelError::Attribute {
            attribute: "target_nodeids",
            reason: format!("weight {j} is for node {} of tree {}, which does not exist", key.1, key.0),
        })?;
        if a.modes[i] != "LEAF" {
            return Err(ModelError::Attribute {
                attribute: "target_nodeids",
                reason: format!(
                    "weight {j} is for node {} of tree {}, which is a {}, not a LEAF",
                    key.1, key.0, a.modes[i]
                ),
            });
        }
        if a.target_ids[j] != 0 {
            return Err(ModelError::Attribute {
                attribute: "target_ids",
                reason: format!("weight {j} is for target {} of a single-target model", a.target_ids[j]),
            });
        }
        let w = a.target_weights[j] as f32;
        if w.is_nan() {
            return Err(ModelError::Attribute { attribute: "target_weights", reason: format!("weight {j} is NaN") });
        }
        if weight[i].replace(w).is_some() {
            return Err(ModelError::Attribute {
                attribute: "target_nodeids",
                reason: format!(
                    "node {} of tree {} has several weights (the ONNX spec sums them, onnxruntime uses only \
                     the first): merge them into one",
                    key.1, key.0
                ),
            });
        }
    }

    // Features: the declared input width, else what the branches use.
    let mut max_feature: Option<usize> = None;
    for i in 0..n {
        if a.modes[i] == "LEAF" {
            continue;
        }
        let f = a.feature_ids[i];
        if f < 0 || f > u32::MAX as i64 {
            return Err(ModelError::Attribute {
                attribute: "nodes_featureids",
                reason: format!("node {} of tree {} uses feature {f}", a.node_ids[i], a.tree_ids[i]),
            });
        }
        max_feature = max_feature.max(Some(f as usize));
    }
    let n_features = match (declared_features, max_feature) {
        (Some(d), Some(m)) if m >= d => {
            return Err(ModelError::Attribute {
                attribute: "nodes_featureids",
                reason: format!("a branch uses feature {m} but the input X has {d} features"),
            })
        }
        (Some(d), _) => d,
        (None, m) => m.map_or(0, |m| m + 1),
    };

    // The step form: `<=` unless a branch is EQ/NEQ, with NaN routing only if some branch needs it.
    let branches = || (0..n).filter(|&i| a.modes[i] != "LEAF");
    let nan_true = |i: usize| a.missing_true.get(i).is_some_and(|&m| m != 0);
    let mut step = Step::Le;
    for i in branches() {
        match le_branch(&a.modes[i], nan_true(i), a.values[i]) {
            Some(b) if b.nan_to_le => step = Step::LeNan,
            Some(_) => {}
            None => {
                step = Step::Mask;
                break;
            }
        }
    }

    // Lay each tree out in preorder, the test's "no" child right after its parent.
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    let mut roots: Vec<u32> = Vec::with_capacity(tree_order.len());
    let mut visited = vec![false; n];
    let mut is_child = vec![false; n];
    let child = |i: usize, attribute: &'static str, id: i64| -> Result<usize, ModelError> {
        index.get(&(a.tree_ids[i], id)).copied().ok_or_else(|| ModelError::Attribute {
            attribute,
            reason: format!(
                "node {} of tree {} points to node {id}, which does not exist",
                a.node_ids[i], a.tree_ids[i]
            ),
        })
    };
    for &tree in &tree_order {
        let members = &tree_members[&tree];
        for &i in members {
            if a.modes[i] != "LEAF" {
                is_child[child(i, "nodes_truenodeids", a.true_ids[i])?] = true;
                is_child[child(i, "nodes_falsenodeids", a.false_ids[i])?] = true;
            }
        }
        let tops: Vec<usize> = members.iter().copied().filter(|&i| !is_child[i]).collect();
        let [root] = tops.as_slice() else {
            let ids: Vec<i64> = tops.iter().map(|&i| a.node_ids[i]).collect();
            return Err(ModelError::Attribute {
                attribute: "nodes_nodeids",
                reason: format!("tree {tree} must have exactly one root (a node no branch points to), found {ids:?}"),
            });
        };
        roots.push(u32::try_from(nodes.len()).map_err(|_| too_many())?);
        let first = nodes.len();
        // (original node index, flat index of the parent whose true child it is)
        let mut stack: Vec<(usize, Option<usize>)> = vec![(*root, None)];
        while let Some((i, parent)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                return Err(ModelError::Attribute {
                    attribute: "nodes_truenodeids",
                    reason: format!(
                        "node {} of tree {tree} is reached twice: the tree has a cycle or a shared node",
                        a.node_ids[i]
                    ),
                });
            }
            let at = nodes.len();
            let at32 = u32::try_from(at).map_err(|_| too_many())?;
            if let Some(p) = parent {
                nodes[p].true_child = at32;
            }
            if a.modes[i] == "LEAF" {
                nodes.push(Node {
                    threshold: weight[i].unwrap_or(0.0),
                    feature: 0,
                    true_child: at32,
                    flags: flag::LEAF,
                });
                continue;
            }
            let unknown_mode = || ModelError::Attribute {
                attribute: "nodes_modes",
                reason: format!("node {} of tree {tree} has unknown mode {:?}", a.node_ids[i], a.modes[i]),
            };
            let (onnx_true, onnx_false) =
                (child(i, "nodes_truenodeids", a.true_ids[i])?, child(i, "nodes_falsenodeids", a.false_ids[i])?);
            let feature = a.feature_ids[i] as u32;
            let (threshold, flags, yes, no) = if step == Step::Mask {
                let (mask, threshold) = mask_branch(&a.modes[i], nan_true(i), a.values[i]).ok_or_else(unknown_mode)?;
                (threshold, mask, onnx_true, onnx_false)
            } else {
                let b = le_branch(&a.modes[i], nan_true(i), a.values[i]).ok_or_else(unknown_mode)?;
                let flags = if b.nan_to_le { flag::NAN_TRUE } else { 0 };
                let (yes, no) = if b.swapped { (onnx_false, onnx_true) } else { (onnx_true, onnx_false) };
                (b.threshold, flags, yes, no)
            };
            nodes.push(Node { threshold, feature, true_child: 0, flags });
            stack.push((yes, Some(at)));
            stack.push((no, None));
        }
        if nodes.len() - first != members.len() {
            return Err(ModelError::Attribute {
                attribute: "nodes_nodeids",
                reason: format!(
                    "tree {tree} has {} nodes but only {} are reachable from its root",
                    members.len(),
                    nodes.len() - first
                ),
            });
        }
    }

    Ok(TreeEnsemble { nodes, roots, step, n_features, aggregate, base_value, metadata: Metadata::new() })
}

fn too_many() -> ModelError {
    ModelError::Attribute { attribute: "nodes_nodeids", reason: "more than 2^32 nodes".into() }
}

#[cfg(test)]
#[path = "trees_tests.rs"]
mod tests;
