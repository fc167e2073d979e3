//! Decoding a `TreeEnsembleRegressor` node's attributes and laying the trees out flat for
//! [`TreeEnsemble`]: type checks with errors naming the attribute, branch modes normalised to the
//! evaluator's three step forms, trees reordered into depth-first preorder.

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::{flag, Aggregate, Node, Step, TreeEnsemble};
use crate::model::{Metadata, ModelError};

/// The tree-ensemble attributes, decoded and type-checked, before the trees are assembled.
#[derive(Debug, Default)]
pub(super) struct Attributes {
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
    pub(super) fn of(node: &pb::NodeProto) -> Result<Attributes, ModelError> {
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
pub(super) fn mask_branch(mode: &str, nan_true: bool, t: f64) -> Option<(u8, f32)> {
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
pub(super) fn le_branch(mode: &str, nan_true: bool, t: f64) -> Option<LeBranch> {
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
pub(super) struct LeBranch {
    pub(super) threshold: f32,
    pub(super) swapped: bool,
    pub(super) nan_to_le: bool,
}

/// Assembles the flat ensemble from decoded attributes.
pub(super) fn build(a: &Attributes, declared_features: Option<usize>) -> Result<TreeEnsemble, ModelError> {
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
