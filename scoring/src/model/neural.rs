//! The neural (autoencoder) model, run by tract.
//!
//! The graph is loaded from bytes, its input is pinned to `f32 [N, F]` with a symbolic batch size
//! `N` (so one plan serves single events and batches alike), optimized and made runnable once, at
//! load time. The graph must map each row to one score: an output of `N` values (`[N, 1]` or `[N]`).
//!
//! Cost: for a graph this small, tract's per-call overhead (a run state, per-node dispatch, output
//! allocation) dominates a single row — tens of µs — while a batch of 256 costs ~1 µs a row.
//! Neither pinning a second plan to `[1, F]` nor reusing run states measurably helped.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;

use super::{batch_rows, decode_model, metadata_of, single_input, Metadata, ModelError};

fn tract_err(context: &str) -> impl Fn(TractError) -> ModelError + '_ {
    move |e| ModelError::Tract(format!("{context}: {e:#}"))
}

/// A neural scoring model (an ONNX graph tract can run), loaded and optimized once.
#[derive(Debug, Clone)]
pub struct NeuralModel {
    plan: Arc<TypedRunnableModel>,
    n_features: usize,
    metadata: Metadata,
}

impl NeuralModel {
    /// Loads, pins to `f32 [N, F]`, optimizes and plans the model in `bytes`. `F` is taken from the
    /// graph's declared input shape, which must fix it.
    pub fn from_onnx(bytes: &[u8]) -> Result<NeuralModel, ModelError> {
        let proto = decode_model(bytes)?;
        let graph = proto.graph.as_ref().ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
        let (name, dims) = single_input(graph)?;
        let n_features = match dims.as_slice() {
            [_, Some(f)] => *f,
            _ => {
                return Err(ModelError::Graph(format!(
                    "input `{name}` must be declared [N, F] with a fixed F, found {dims:?}"
                )))
            }
        };
        let model = tract_onnx::onnx().model_for_proto_model(&proto).map_err(tract_err("loading the graph"))?;
        let batch = model.sym("N");
        let plan = model
            .with_input_fact(0, f32::fact(dims!(batch, n_features)).into())
            .map_err(tract_err("pinning the input to f32 [N, F]"))?
            .into_optimized()
            .map_err(tract_err("optimizing"))?
            .into_runnable()
            .map_err(tract_err("planning"))?;
        let outputs = plan.model().output_outlets().map_err(tract_err("reading outputs"))?.len();
        if outputs != 1 {
            return Err(ModelError::Graph(format!("expected exactly one graph output, found {outputs}")));
        }
        Ok(NeuralModel { plan, n_features, metadata: metadata_of(&proto) })
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The model's `metadata_props`.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Scores a row-major batch of rows of `n_features` values each: one score per row.
    pub fn predict_batch(&self, rows: &[f32], n_features: usize) -> Result<Vec<f32>, ModelError> {
        let n = batch_rows(rows, n_features, self.n_features)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let input = Tensor::from_shape(&[n, n_features], rows).map_err(tract_err("building the input"))?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(tract_err("running"))?;
        let view = outputs[0].try_as_plain_ram().map_err(tract_err("reading the output"))?;
        let output = view.as_slice::<f32>().map_err(tract_err("reading the output"))?;
        if output.len() != n {
            return Err(ModelError::Graph(format!(
                "the output has shape {:?} ({} values) for {n} rows; expected one score per row",
                outputs[0].shape(),
                output.len()
            )));
        }
        Ok(output.to_vec())
    }

    /// Scores one row of [`Self::n_features`] values.
    pub fn predict_one(&self, row: &[f32]) -> Result<f32, ModelError> {
        if row.len() != self.n_features {
            return Err(ModelError::FeatureCount { expected: self.n_features, got: row.len() });
        }
        Ok(self.predict_batch(row, self.n_features)?[0])
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tract_onnx::pb;

    use super::*;

    /// `Y = relu(X @ W + b)` summed over two outputs: a `[N, 2]` → `[N, 1]` graph via ReduceSum.
    fn mlp_bytes(fixed_features: bool) -> Vec<u8> {
        use pb::tensor_shape_proto::{dimension, Dimension};
        let dim = |d: dimension::Value| Dimension { value: Some(d), ..Default::default() };
        let value_info = |name: &str, dims: Vec<Dimension>| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto { dim: dims }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let tensor = |name: &str, dims: Vec<i64>, data: Vec<f32>| pb::TensorProto {
            name: name.into(),
            dims,
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: data,
            ..Default::default()
        };
        let node = |op: &str, inputs: &[&str], output: &str| pb::NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        };
        let features = if fixed_features {
            dim(dimension::Value::DimValue(2))
        } else {
            dim(dimension::Value::DimParam("F".into()))
        };
        let graph = pb::GraphProto {
            node: vec![
                node("MatMul", &["X", "W"], "m"),
                node("Add", &["m", "b"], "a"),
                node("Relu", &["a"], "r"),
                pb::NodeProto {
                    attribute: vec![pb::AttributeProto {
                        name: "keepdims".into(),
                        r#type: pb::attribute_proto::AttributeType::Int as i32,
                        i: 1,
                        ..Default::default()
                    }],
                    ..node("ReduceSum", &["r", "axes"], "Y")
                },
            ],
            initializer: vec![
                tensor("W", vec![2, 2], vec![1.0, -1.0, 2.0, 0.5]),
                tensor("b", vec![2], vec![0.5, 0.0]),
                pb::TensorProto {
                    name: "axes".into(),
                    dims: vec![1],
                    data_type: pb::tensor_proto::DataType::Int64 as i32,
                    int64_data: vec![1],
                    ..Default::default()
                },
            ],
            input: vec![value_info("X", vec![dim(dimension::Value::DimParam("N".into())), features])],
            output: vec![value_info(
                "Y",
                vec![dim(dimension::Value::DimParam("N".into())), dim(dimension::Value::DimValue(1))],
            )],
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
            graph: Some(graph),
            metadata_props: vec![pb::StringStringEntryProto { key: "model_version".into(), value: "nn-1".into() }],
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn reference(x: [f32; 2]) -> f32 {
        let h0 = (x[0] * 1.0 + x[1] * 2.0 + 0.5).max(0.0);
        let h1 = (-x[0] + x[1] * 0.5).max(0.0);
        h0 + h1
    }

    #[test]
    fn runs_single_rows_and_batches() {
        let m = NeuralModel::from_onnx(&mlp_bytes(true)).unwrap();
        assert_eq!(m.n_features(), 2);
        assert_eq!(m.metadata().get("model_version").map(String::as_str), Some("nn-1"));
        let rows = [[0.0, 0.0], [1.0, 2.0], [-3.0, 1.0], [2.0, -4.0], [0.25, 0.5]];
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let batch = m.predict_batch(&flat, 2).unwrap();
        for (row, got) in rows.iter().zip(&batch) {
            assert!((got - reference(*row)).abs() < 1e-6, "{row:?}: {got}");
            assert!((m.predict_one(row).unwrap() - got).abs() < 1e-6);
        }
        assert_eq!(m.predict_batch(&[], 2).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn rejects_bad_inputs_and_models() {
        let m = NeuralModel::from_onnx(&mlp_bytes(true)).unwrap();
        assert_eq!(m.predict_one(&[1.0]), Err(ModelError::FeatureCount { expected: 2, got: 1 }));
        assert_eq!(m.predict_batch(&[1.0; 6], 3), Err(ModelError::FeatureCount { expected: 2, got: 3 }));
        assert!(matches!(m.predict_batch(&[1.0; 5], 2), Err(ModelError::Batch(_))));
        assert!(matches!(NeuralModel::from_onnx(&mlp_bytes(false)), Err(ModelError::Graph(_))));
        assert!(matches!(NeuralModel::from_onnx(b"\xff\xff not onnx"), Err(ModelError::Decode(_))));
    }

    #[test]
    fn models_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NeuralModel>();
        assert_send_sync::<super::super::TreeEnsemble>();
    }
}
