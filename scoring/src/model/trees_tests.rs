//! Unit tests for the tree-ensemble evaluator, on hand-built ONNX models.

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

use super::*;

/// A node of a hand-built tree.
#[derive(Clone, Copy)]
enum N {
    /// id, mode, feature, threshold, true id, false id, NaN goes true
    B(i64, &'static str, i64, f32, i64, i64, bool),
    /// id, weight (`None`: a leaf without weight)
    L(i64, Option<f32>),
}

fn ints(name: &str, v: Vec<i64>) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v, ..Default::default() }
}
fn floats(name: &str, v: Vec<f32>) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Floats as i32, floats: v, ..Default::default() }
}
fn strings(name: &str, v: Vec<&str>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: v.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}
fn string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: v.into(), ..Default::default() }
}
fn double_tensor(name: &str, v: Vec<f64>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(pb::TensorProto {
            dims: vec![v.len() as i64],
            data_type: pb::tensor_proto::DataType::Double as i32,
            double_data: v,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The attributes of an ensemble of `trees` (tree ids 0, 1, ...).
fn tree_attributes(trees: &[&[N]]) -> Vec<pb::AttributeProto> {
    let (mut tids, mut nids, mut feats, mut modes, mut vals, mut ts, mut fs, mut miss) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut wt, mut wn, mut wi, mut ww) = (vec![], vec![], vec![], vec![]);
    for (t, nodes) in trees.iter().enumerate() {
        for node in nodes.iter() {
            tids.push(t as i64);
            match *node {
                N::B(id, mode, f, thr, tr, fa, nan) => {
                    nids.push(id);
                    feats.push(f);
                    modes.push(mode);
                    vals.push(thr);
                    ts.push(tr);
                    fs.push(fa);
                    miss.push(nan as i64);
                }
                N::L(id, w) => {
                    nids.push(id);
                    feats.push(0);
                    modes.push("LEAF");
                    vals.push(0.0);
                    ts.push(0);
                    fs.push(0);
                    miss.push(0);
                    if let Some(w) = w {
                        wt.push(t as i64);
                        wn.push(id);
                        wi.push(0);
                        ww.push(w);
                    }
                }
            }
        }
    }
    vec![
        ints("nodes_treeids", tids),
        ints("nodes_nodeids", nids),
        ints("nodes_featureids", feats),
        strings("nodes_modes", modes),
        floats("nodes_values", vals),
        ints("nodes_truenodeids", ts),
        ints("nodes_falsenodeids", fs),
        ints("nodes_missing_value_tracks_true", miss),
        ints("target_treeids", wt),
        ints("target_nodeids", wn),
        ints("target_ids", wi),
        floats("target_weights", ww),
        pb::AttributeProto { name: "n_targets".into(), r#type: AttributeType::Int as i32, i: 1, ..Default::default() },
    ]
}

/// Replaces (or adds) attributes by name.
fn with(mut attrs: Vec<pb::AttributeProto>, extra: Vec<pb::AttributeProto>) -> Vec<pb::AttributeProto> {
    for e in extra {
        attrs.retain(|a| a.name != e.name);
        attrs.push(e);
    }
    attrs
}

fn without(mut attrs: Vec<pb::AttributeProto>, name: &str) -> Vec<pb::AttributeProto> {
    attrs.retain(|a| a.name != name);
    attrs
}

fn onnx_bytes(op_type: &str, n_features: Option<i64>, attrs: Vec<pb::AttributeProto>) -> Vec<u8> {
    use pb::tensor_shape_proto::{dimension, Dimension};
    let dim = |d: dimension::Value| Dimension { value: Some(d), ..Default::default() };
    let features = match n_features {
        Some(f) => dim(dimension::Value::DimValue(f)),
        None => dim(dimension::Value::DimParam("F".into())),
    };
    let input = pb::ValueInfoProto {
        name: "X".into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim: vec![dim(dimension::Value::DimParam("N".into())), features] }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = pb::NodeProto {
        input: vec!["X".into()],
        output: vec!["Y".into()],
        op_type: op_type.into(),
        domain: "ai.onnx.ml".into(),
        attribute: attrs,
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: "ai.onnx.ml".into(), version: 3 }],
        graph: Some(pb::GraphProto {
            node: vec![node],
            input: vec![input],
            output: vec![pb::ValueInfoProto { name: "Y".into(), ..Default::default() }],
            ..Default::default()
        }),
        metadata_props: vec![
            pb::StringStringEntryProto { key: "model_version".into(), value: "t-1".into() },
            pb::StringStringEntryProto { key: "iforest_c".into(), value: "10.24".into() },
        ],
        ..Default::default()
    };
    model.encode_to_vec()
}

fn load(n_features: Option<i64>, attrs: Vec<pb::AttributeProto>) -> Result<TreeEnsemble, ModelError> {
    TreeEnsemble::from_onnx(&onnx_bytes("TreeEnsembleRegressor", n_features, attrs))
}

/// One stump on feature 0 at threshold 1.0: true → 10, false → 20.
fn stump(mode: &'static str, nan_true: bool) -> TreeEnsemble {
    let tree = [N::B(0, mode, 0, 1.0, 1, 2, nan_true), N::L(1, Some(10.0)), N::L(2, Some(20.0))];
    load(Some(1), tree_attributes(&[&tree])).unwrap()
}

#[test]
fn every_branch_mode_and_nan_routing() {
    let nan = f32::NAN;
    // (mode, x, expected for nan_true = false, expected for nan_true = true)
    let cases: &[(&str, f32, f32, f32)] = &[
        ("BRANCH_LEQ", 0.0, 10.0, 10.0),
        ("BRANCH_LEQ", 1.0, 10.0, 10.0),
        ("BRANCH_LEQ", 2.0, 20.0, 20.0),
        ("BRANCH_LEQ", nan, 20.0, 10.0),
        ("BRANCH_LT", 0.0, 10.0, 10.0),
        ("BRANCH_LT", 1.0, 20.0, 20.0),
        ("BRANCH_LT", 2.0, 20.0, 20.0),
        ("BRANCH_LT", nan, 20.0, 10.0),
        ("BRANCH_GTE", 0.0, 20.0, 20.0),
        ("BRANCH_GTE", 1.0, 10.0, 10.0),
        ("BRANCH_GTE", 2.0, 10.0, 10.0),
        ("BRANCH_GTE", nan, 20.0, 10.0),
        ("BRANCH_GT", 0.0, 20.0, 20.0),
        ("BRANCH_GT", 1.0, 20.0, 20.0),
        ("BRANCH_GT", 2.0, 10.0, 10.0),
        ("BRANCH_GT", nan, 20.0, 10.0),
        ("BRANCH_EQ", 0.0, 20.0, 20.0),
        ("BRANCH_EQ", 1.0, 10.0, 10.0),
        ("BRANCH_EQ", nan, 20.0, 10.0),
        ("BRANCH_NEQ", 0.0, 10.0, 10.0),
        ("BRANCH_NEQ", 1.0, 20.0, 20.0),
        // NaN != 1.0 holds: true either way, as in onnxruntime.
        ("BRANCH_NEQ", nan, 10.0, 10.0),
        ("BRANCH_LEQ", f32::INFINITY, 20.0, 20.0),
        ("BRANCH_GT", f32::NEG_INFINITY, 20.0, 20.0),
    ];
    for &(mode, x, plain, nan_true) in cases {
        for (flag, expected) in [(false, plain), (true, nan_true)] {
            let got = stump(mode, flag).predict_one(&[x]).unwrap();
            assert_eq!(got, expected, "{mode} x={x} nan_true={flag}");
        }
    }
}

/// Two trees, one over a second feature, node ids out of order and the root not first.
fn two_trees() -> Vec<pb::AttributeProto> {
    let t0 = [
        N::L(4, Some(1.0)),
        N::B(7, "BRANCH_LEQ", 0, 0.5, 4, 2, false),
        N::B(2, "BRANCH_LT", 1, -1.0, 3, 5, true),
        N::L(3, Some(2.0)),
        N::L(5, Some(4.0)),
    ];
    let t1 = [N::B(0, "BRANCH_GT", 1, 0.0, 1, 2, false), N::L(1, Some(8.0)), N::L(2, Some(16.0))];
    tree_attributes(&[&t0, &t1])
}

/// Leaf values of `two_trees` for a row.
fn two_trees_leaves(row: [f32; 2]) -> [f32; 2] {
    let a = if row[0] <= 0.5 {
        1.0
    } else if row[1] < -1.0 || row[1].is_nan() {
        2.0
    } else {
        4.0
    };
    let b = if row[1] > 0.0 { 8.0 } else { 16.0 };
    [a, b]
}

const ROWS: [[f32; 2]; 6] = [[0.0, 0.0], [1.0, -2.0], [1.0, f32::NAN], [1.0, 3.0], [f32::NAN, 1.0], [0.5, -1.0]];

#[test]
fn sum_of_trees_plus_base_value() {
    let e = load(Some(2), with(two_trees(), vec![floats("base_values", vec![0.25])])).unwrap();
    assert_eq!((e.n_trees(), e.n_nodes(), e.n_features()), (2, 8, 2));
    assert_eq!(e.base_value(), 0.25);
    for row in ROWS {
        let [a, b] = two_trees_leaves(row);
        assert_eq!(e.predict_one(&row).unwrap(), a + b + 0.25, "{row:?}");
    }
}

#[test]
fn average_min_and_max() {
    for (agg, f) in [
        ("AVERAGE", (|a: f32, b: f32| (a + b) / 2.0) as fn(f32, f32) -> f32),
        ("MIN", |a: f32, b: f32| a.min(b)),
        ("MAX", |a: f32, b: f32| a.max(b)),
    ] {
        let e = load(
            Some(2),
            with(two_trees(), vec![string("aggregate_function", agg), floats("base_values", vec![-1.0])]),
        )
        .unwrap();
        for row in ROWS {
            let [a, b] = two_trees_leaves(row);
            assert_eq!(e.predict_one(&row).unwrap(), f(a, b) - 1.0, "{agg} {row:?}");
        }
    }
}

#[test]
fn a_leaf_without_weight_votes_zero() {
    // As onnxruntime 1.32 does, under MIN and MAX too.
    let t0 = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::L(1, None), N::L(2, Some(4.0))];
    let t1 = [N::L(0, Some(3.0))];
    let attrs = with(tree_attributes(&[&t0, &t1]), vec![floats("base_values", vec![0.5])]);
    for (agg, empty, four) in [("SUM", 3.5, 7.5), ("AVERAGE", 2.0, 4.0), ("MIN", 0.5, 3.5), ("MAX", 3.5, 4.5)] {
        let e = load(Some(1), with(attrs.clone(), vec![string("aggregate_function", agg)])).unwrap();
        assert_eq!(e.predict_one(&[-1.0]).unwrap(), empty, "{agg}");
        assert_eq!(e.predict_one(&[1.0]).unwrap(), four, "{agg}");
    }
}

#[test]
fn batch_matches_single_rows_bit_for_bit() {
    // A deeper mixed-mode ensemble over more rows than one block.
    let mut trees: Vec<Vec<N>> = Vec::new();
    let modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"];
    for t in 0..7usize {
        // A complete tree of depth 3: branches 0..7, leaves 7..15.
        let mut nodes = Vec::new();
        for i in 0..7i64 {
            let mode = modes[(t + i as usize) % modes.len()];
            let thr = ((t as i64 + i) % 5 - 2) as f32 * 0.5;
            nodes.push(N::B(i, mode, (i + t as i64) % 3, thr, 2 * i + 1, 2 * i + 2, (i + t as i64) % 2 == 0));
        }
        for i in 7..15i64 {
            nodes.push(N::L(i, Some((i * 7 + t as i64) as f32 * 0.125 - 3.0)));
        }
        trees.push(nodes);
    }
    let refs: Vec<&[N]> = trees.iter().map(|t| t.as_slice()).collect();
    let e = load(Some(3), with(tree_attributes(&refs), vec![floats("base_values", vec![0.1])])).unwrap();
    let n = 300;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let rows: Vec<f32> = (0..n * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 11 {
                0 => f32::NAN,
                k => (k as f32 - 5.0) * 0.5,
            }
        })
        .collect();
    let mut out = vec![0.0; n];
    e.predict_batch(&rows, 3, &mut out).unwrap();
    for (row, got) in rows.chunks(3).zip(&out) {
        assert_eq!(e.predict_one(row).unwrap().to_bits(), got.to_bits());
    }
    let distinct: std::collections::BTreeSet<u32> = out.iter().map(|v| v.to_bits()).collect();
    assert!(distinct.len() > 10, "the fixture should exercise many paths, got {}", distinct.len());
}

#[test]
fn double_tensor_thresholds_keep_comparisons_exact() {
    // 0.1 is not an f32: as f64, 0.1f32 (0.100000001...) is > 0.1, so LEQ must send it false.
    let x = 0.1f32;
    let tree = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::L(1, Some(1.0)), N::L(2, Some(2.0))];
    for (mode, expected) in [
        ("BRANCH_LEQ", 2.0),
        ("BRANCH_LT", 2.0),
        ("BRANCH_GTE", 1.0),
        ("BRANCH_GT", 1.0),
        ("BRANCH_EQ", 2.0),
        ("BRANCH_NEQ", 1.0),
    ] {
        let attrs = with(
            tree_attributes(&[&tree]),
            vec![
                strings("nodes_modes", vec![mode, "LEAF", "LEAF"]),
                double_tensor("nodes_values_as_tensor", vec![0.1, 0.0, 0.0]),
            ],
        );
        let e = load(Some(1), without(attrs, "nodes_values")).unwrap();
        let reference = match mode {
            "BRANCH_LEQ" => (x as f64) <= 0.1,
            "BRANCH_LT" => (x as f64) < 0.1,
            "BRANCH_GTE" => (x as f64) >= 0.1,
            "BRANCH_GT" => (x as f64) > 0.1,
            "BRANCH_EQ" => (x as f64) == 0.1,
            _ => (x as f64) != 0.1,
        };
        assert_eq!(expected, if reference { 1.0 } else { 2.0 });
        assert_eq!(e.predict_one(&[x]).unwrap(), expected, "{mode}");
    }
    // Weights and base values as double tensors too.
    let attrs = with(
        tree_attributes(&[&tree]),
        vec![
            double_tensor("target_weights_as_tensor", vec![1.5, 2.5]),
            double_tensor("base_values_as_tensor", vec![1.0]),
        ],
    );
    let e = load(Some(1), without(attrs, "target_weights")).unwrap();
    assert_eq!(e.predict_one(&[0.0]).unwrap(), 2.5);
    assert_eq!(e.predict_one(&[1.0]).unwrap(), 3.5);
}

#[test]
fn metadata_and_feature_count() {
    let e = load(Some(2), two_trees()).unwrap();
    assert_eq!(e.metadata().get("model_version").map(String::as_str), Some("t-1"));
    assert_eq!(e.metadata().get("iforest_c").map(String::as_str), Some("10.24"));
    // Without a fixed input width, the width is what the branches use.
    assert_eq!(load(None, two_trees()).unwrap().n_features(), 2);
    // A declared width wider than the branches use is kept.
    assert_eq!(load(Some(5), two_trees()).unwrap().n_features(), 5);
}

#[test]
fn input_validation() {
    let e = load(Some(2), two_trees()).unwrap();
    assert_eq!(e.predict_one(&[1.0]), Err(ModelError::FeatureCount { expected: 2, got: 1 }));
    assert_eq!(e.predict_one(&[1.0, 2.0, 3.0]), Err(ModelError::FeatureCount { expected: 2, got: 3 }));
    let mut out = [0.0; 2];
    assert_eq!(e.predict_batch(&[0.0; 4], 3, &mut out), Err(ModelError::FeatureCount { expected: 2, got: 3 }));
    assert!(matches!(e.predict_batch(&[0.0; 5], 2, &mut out), Err(ModelError::Batch(_))));
    assert!(matches!(e.predict_batch(&[0.0; 6], 2, &mut out), Err(ModelError::Batch(_))));
    e.predict_batch(&[], 2, &mut []).unwrap();
}

fn load_err(n_features: Option<i64>, attrs: Vec<pb::AttributeProto>) -> ModelError {
    load(n_features, attrs).unwrap_err()
}

#[test]
fn malformed_models_name_the_attribute() {
    let attr_of = |e: ModelError| match e {
        ModelError::Attribute { attribute, .. } | ModelError::MissingAttribute { attribute } => attribute,
        ModelError::Unsupported { attribute, .. } => attribute,
        other => panic!("expected an attribute error, got {other:?}"),
    };
    let t = two_trees;
    assert_eq!(attr_of(load_err(Some(2), without(t(), "nodes_modes"))), "nodes_modes");
    assert_eq!(attr_of(load_err(Some(2), without(t(), "target_weights"))), "target_weights");
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![ints("nodes_featureids", vec![0; 3])]))), "nodes_featureids");
    assert_eq!(
        attr_of(load_err(Some(2), with(t(), vec![ints("nodes_missing_value_tracks_true", vec![0])]))),
        "nodes_missing_value_tracks_true"
    );
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![ints("target_ids", vec![0])]))), "target_treeids");
    // Wrong attribute type.
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![floats("nodes_treeids", vec![0.0])]))), "nodes_treeids");
    // Unknown mode.
    let modes = vec!["LEAF", "BRANCH_LEQ", "BRANCH_SOMETIMES", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF"];
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![strings("nodes_modes", modes)]))), "nodes_modes");
    // A feature beyond the declared input width.
    assert_eq!(attr_of(load_err(Some(1), t())), "nodes_featureids");
    // Unsupported aggregate, post transform, target count.
    assert_eq!(
        attr_of(load_err(Some(2), with(t(), vec![string("aggregate_function", "MEDIAN")]))),
        "aggregate_function"
    );
    for post in ["LOGISTIC", "SOFTMAX", "PROBIT"] {
        assert_eq!(attr_of(load_err(Some(2), with(t(), vec![string("post_transform", post)]))), "post_transform");
    }
    assert!(load(Some(2), with(t(), vec![string("post_transform", "NONE")])).is_ok());
    let two_targets =
        pb::AttributeProto { name: "n_targets".into(), r#type: AttributeType::Int as i32, i: 2, ..Default::default() };
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![two_targets]))), "n_targets");
    assert_eq!(attr_of(load_err(Some(2), with(t(), vec![floats("base_values", vec![1.0, 2.0])]))), "base_values");
    // Both the plain and the tensor form.
    assert_eq!(
        attr_of(load_err(Some(2), with(t(), vec![double_tensor("nodes_values_as_tensor", vec![0.0; 8])]))),
        "nodes_values_as_tensor"
    );
}

#[test]
fn malformed_trees_are_rejected() {
    let reason = |e: ModelError| match e {
        ModelError::Attribute { attribute, reason } => format!("{attribute}: {reason}"),
        other => panic!("expected an attribute error, got {other:?}"),
    };
    // A dangling child.
    let tree = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 9, false), N::L(1, Some(1.0))];
    let r = reason(load_err(Some(1), tree_attributes(&[&tree])));
    assert!(r.starts_with("nodes_falsenodeids") && r.contains("node 9"), "{r}");
    // A node defined twice.
    let tree = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::L(1, Some(1.0)), N::L(2, Some(2.0)), N::L(1, Some(3.0))];
    assert!(reason(load_err(Some(1), tree_attributes(&[&tree]))).contains("defined twice"));
    // A shared child (a DAG, not a tree).
    let tree = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 1, false), N::L(1, Some(1.0))];
    assert!(reason(load_err(Some(1), tree_attributes(&[&tree]))).contains("reached twice"));
    // A cycle: no root at all.
    let tree = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::B(1, "BRANCH_LEQ", 0, 0.0, 0, 2, false), N::L(2, None)];
    assert!(reason(load_err(Some(1), tree_attributes(&[&tree]))).contains("exactly one root"));
    // Two roots.
    let tree = [N::L(0, Some(1.0)), N::L(1, Some(2.0))];
    assert!(reason(load_err(Some(1), tree_attributes(&[&tree]))).contains("[0, 1]"));
    // A weight on a branch.
    let mut attrs = tree_attributes(&[&[N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::L(1, None), N::L(2, None)]]);
    attrs = with(
        attrs,
        vec![
            ints("target_treeids", vec![0]),
            ints("target_nodeids", vec![0]),
            ints("target_ids", vec![0]),
            floats("target_weights", vec![1.0]),
        ],
    );
    assert!(reason(load_err(Some(1), attrs)).contains("not a LEAF"));
    // Several weights on one leaf (the spec sums them, onnxruntime takes the first).
    let mut attrs = tree_attributes(&[&[N::L(0, Some(1.0))]]);
    attrs = with(
        attrs,
        vec![
            ints("target_treeids", vec![0, 0]),
            ints("target_nodeids", vec![0, 0]),
            ints("target_ids", vec![0, 0]),
            floats("target_weights", vec![1.0, 2.0]),
        ],
    );
    assert!(reason(load_err(Some(1), attrs)).contains("several weights"));
    // No trees.
    assert!(reason(load_err(Some(1), tree_attributes(&[]))).contains("no trees"));
}

#[test]
fn wrong_operator_or_bytes() {
    let bytes = onnx_bytes("TreeEnsembleClassifier", Some(2), two_trees());
    assert!(matches!(
        TreeEnsemble::from_onnx(&bytes),
        Err(ModelError::Operator { ref op_type, .. }) if op_type == "TreeEnsembleClassifier"
    ));
    assert!(matches!(TreeEnsemble::from_onnx(b"\xff\xff\xff not a model"), Err(ModelError::Decode(_))));
    assert!(matches!(TreeEnsemble::from_onnx(&[]), Err(ModelError::Graph(_))));
}

#[test]
fn layout_is_preorder_with_the_no_child_next() {
    let e = load(Some(2), two_trees()).unwrap();
    // LT with NaN routing and a GT (whose NaN goes to its false child, the "<=" one): `LeNan`.
    assert_eq!(e.step, Step::LeNan);
    // Tree 0: 7 (x0 <= 0.5) → no: 2 (x1 < -1 i.e. x1 <= next_down(-1), NaN yes) → no 5, yes 3; yes 4.
    // Tree 1: 0 (x1 > 0, i.e. !(x1 <= 0)) → no = its true child 1, yes = its false child 2.
    let flags: Vec<u8> = e.nodes.iter().map(|n| n.flags).collect();
    use flag::{LEAF, NAN_TRUE};
    assert_eq!(flags, [0, NAN_TRUE, LEAF, LEAF, LEAF, NAN_TRUE, LEAF, LEAF]);
    let values: Vec<f32> = e.nodes.iter().map(|n| n.threshold).collect();
    assert_eq!(values, [0.5, (-1.0f32).next_down(), 4.0, 2.0, 1.0, 0.0, 8.0, 16.0]);
    let true_children: Vec<u32> = e.nodes.iter().map(|n| n.true_child).collect();
    // Leaves point to themselves.
    assert_eq!(true_children, [4, 3, 2, 3, 4, 7, 6, 7]);
    assert_eq!(e.roots, [0, 5]);
    assert_eq!(std::mem::size_of::<Node>(), 16);
    // sklearn's shape: LEQ only, no NaN routing.
    let t = [N::B(0, "BRANCH_LEQ", 0, 0.0, 1, 2, false), N::L(1, Some(1.0)), N::L(2, Some(2.0))];
    assert_eq!(load(Some(1), tree_attributes(&[&t])).unwrap().step, Step::Le);
    let t = [N::B(0, "BRANCH_NEQ", 0, 0.0, 1, 2, false), N::L(1, Some(1.0)), N::L(2, Some(2.0))];
    assert_eq!(load(Some(1), tree_attributes(&[&t])).unwrap().step, Step::Mask);
}

const MODES: [&str; 6] = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"];
const THRESHOLDS: [f64; 13] = [
    0.0,
    1.0,
    0.1,
    -0.1,
    1e-45,
    3.4e38,
    3.4028235677973366e38,
    1e39,
    -1e39,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    16777217.0,
];
const XS: [f32; 13] = [
    0.0,
    -0.0,
    1.0,
    0.1,
    -0.1,
    1e-45,
    f32::MAX,
    -f32::MAX,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    16777216.0,
    16777218.0,
];

/// The ONNX decision, in f64: does `x` go to the true child?
fn onnx_goes_true(mode: &str, nan_true: bool, t: f64, x: f32) -> bool {
    let xd = x as f64;
    let holds = match mode {
        "BRANCH_LEQ" => xd <= t,
        "BRANCH_LT" => xd < t,
        "BRANCH_GTE" => xd >= t,
        "BRANCH_GT" => xd > t,
        "BRANCH_EQ" => xd == t,
        _ => xd != t,
    };
    holds || (nan_true && x.is_nan())
}

#[test]
fn every_step_form_matches_f64_comparisons() {
    // For thresholds that are and are not f32s, infinities, NaN thresholds and NaN routing, each step
    // form's f32 test must agree with the ONNX comparison done in f64.
    for mode in MODES {
        for nan_true in [false, true] {
            for t in THRESHOLDS {
                let (mask, t32) = mask_branch(mode, nan_true, t).unwrap();
                assert!(!t32.is_nan());
                let le = le_branch(mode, nan_true, t);
                assert_eq!(le.is_some(), !matches!(mode, "BRANCH_EQ" | "BRANCH_NEQ"));
                for x in XS {
                    let expected = onnx_goes_true(mode, nan_true, t, x);
                    let node = Node { threshold: t32, feature: 0, true_child: 0, flags: mask };
                    let ctx = format!("{mode} nan_true={nan_true} t={t:e} x={x:e}");
                    assert_eq!(test::<{ Step::Mask as u8 }>(x, &node), expected, "mask {ctx}");
                    let Some(b) = le else { continue };
                    let flags = if b.nan_to_le { flag::NAN_TRUE } else { 0 };
                    let node = Node { threshold: b.threshold, feature: 0, true_child: 0, flags };
                    let to_le = test::<{ Step::LeNan as u8 }>(x, &node);
                    assert_eq!(to_le != b.swapped, expected, "le {ctx} {b:?}");
                    if !x.is_nan() {
                        assert_eq!(test::<{ Step::Le as u8 }>(x, &node), to_le, "le without NaN {ctx}");
                    }
                }
            }
        }
    }
    assert_eq!(mask_branch("BRANCH_SOMETIMES", false, 0.0), None);
    assert_eq!(le_branch("BRANCH_EQ", false, 0.0), None);
}

#[test]
fn ensembles_in_every_step_form_agree_with_a_reference_walk() {
    // Random complete trees over random modes; each ensemble is checked row by row against a direct
    // walk of the ONNX semantics.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let modes_sets: [&[&str]; 4] = [&["BRANCH_LEQ"], &["BRANCH_LT", "BRANCH_GT"], &MODES[..4], &MODES];
    for (set, modes) in modes_sets.iter().enumerate() {
        for nan in [false, true] {
            let mut trees: Vec<Vec<N>> = Vec::new();
            for _ in 0..5 {
                let mut nodes = Vec::new();
                for i in 0..15i64 {
                    let mode = modes[next() as usize % modes.len()];
                    let thr = (next() % 9) as f32 * 0.5 - 2.0;
                    nodes.push(N::B(i, mode, (next() % 3) as i64, thr, 2 * i + 1, 2 * i + 2, nan && next() % 2 == 0));
                }
                for i in 15..31i64 {
                    nodes.push(N::L(i, Some((next() % 1000) as f32 / 8.0 - 60.0)));
                }
                trees.push(nodes);
            }
            let refs: Vec<&[N]> = trees.iter().map(|t| t.as_slice()).collect();
            let e = load(Some(3), tree_attributes(&refs)).unwrap();
            let expected_step = match (set, nan) {
                (0, false) => Some(Step::Le),
                (3, _) => Some(Step::Mask),
                _ => None,
            };
            if let Some(step) = expected_step {
                assert_eq!(e.step, step, "set {set} nan {nan}");
            }
            for _ in 0..400 {
                let row: Vec<f32> = (0..3)
                    .map(|_| if nan && next() % 7 == 0 { f32::NAN } else { (next() % 11) as f32 * 0.5 - 2.5 })
                    .collect();
                let mut expected = 0.0f32;
                for tree in &trees {
                    let mut id = 0usize;
                    loop {
                        match tree[id] {
                            N::L(_, w) => {
                                expected += w.unwrap();
                                break;
                            }
                            N::B(_, mode, f, thr, t, fl, nt) => {
                                let go = onnx_goes_true(mode, nt, thr as f64, row[f as usize]);
                                id = if go { t } else { fl } as usize;
                            }
                        }
                    }
                }
                assert_eq!(e.predict_one(&row).unwrap(), expected, "set {set} nan {nan} {row:?}");
            }
        }
    }
}
