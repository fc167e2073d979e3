//! Runtimes for the trained scoring models.
//!
//! What it owns: turning the bytes of an ONNX model produced by the offline training pipeline
//! (`scoring/train/`) into something that scores feature rows, fast and without surprises.
//! - [`trees`]: [`TreeEnsemble`], our own evaluator for `ai.onnx.ml` `TreeEnsembleRegressor` graphs
//!   (the isolation forest and the gradient-boosted trees). The tree attributes are decoded from the
//!   ONNX `ModelProto` and laid out flat, one node array per ensemble, for cache-friendly traversal.
//! - [`neural`]: [`NeuralModel`], the autoencoder, run by `tract` (plain MatMul/Add/Relu graphs that
//!   tract optimizes well; tract does not implement `TreeEnsembleRegressor`).
//!
//! Both read the model's `metadata_props` (`model_version`, `feature_names`, `iforest_c`, ...) into a
//! [`Metadata`] map, and both take rows as a flat row-major `&[f32]` of `n_features` columns.
//!
//! What it must not do: no I/O. Callers read the files (or embed them) and pass the bytes; nothing
//! here opens a file, spawns a thread or reads the clock.

use std::collections::BTreeMap;

use prost::Message;
use thiserror::Error;
use tract_onnx::pb;

pub mod neural;
pub mod trees;

pub use neural::NeuralModel;
pub use trees::{Aggregate, TreeEnsemble};

/// The `metadata_props` of an ONNX model, key → value.
pub type Metadata = BTreeMap<String, String>;

/// Why a model could not be loaded, or a prediction could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// The bytes are not a protobuf-encoded ONNX `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// The graph is not of the shape this runtime expects (wrong node count, missing input, ...).
    #[error("unsupported graph: {0}")]
    Graph(String),
    /// The graph uses an operator this runtime does not evaluate.
    #[error("unsupported operator {domain}:{op_type} (expected {expected})")]
    Operator { domain: String, op_type: String, expected: &'static str },
    /// A required attribute of the tree-ensemble node is absent.
    #[error("attribute `{attribute}` is missing")]
    MissingAttribute { attribute: &'static str },
    /// An attribute is present but malformed or inconsistent with the others.
    #[error("attribute `{attribute}`: {reason}")]
    Attribute { attribute: &'static str, reason: String },
    /// An attribute holds a value this runtime does not implement (e.g. `post_transform = LOGISTIC`).
    #[error("attribute `{attribute}` = {value} is not supported ({supported})")]
    Unsupported { attribute: &'static str, value: String, supported: &'static str },
    /// A row does not have the number of features the model was trained on.
    #[error("wrong feature count: model takes {expected} features, row has {got}")]
    FeatureCount { expected: usize, got: usize },
    /// A batch is not a whole number of rows, or the output buffer does not fit it.
    #[error("bad batch: {0}")]
    Batch(String),
    /// tract failed to load, optimize or run the neural model (its full error chain).
    #[error("tract: {0}")]
    Tract(String),
}

/// Decodes an ONNX `ModelProto`.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<pb::ModelProto, ModelError> {
    pb::ModelProto::decode(bytes).map_err(|e| ModelError::Decode(e.to_string()))
}

/// The model's `metadata_props` as a map (a repeated key keeps its last value, as onnxruntime does).
pub(crate) fn metadata_of(model: &pb::ModelProto) -> Metadata {
    model.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
}

/// The graph's single input, with its declared dimensions: `Some(n)` for a fixed size, `None` for a
/// symbolic or absent one.
pub(crate) fn single_input(graph: &pb::GraphProto) -> Result<(String, Vec<Option<usize>>), ModelError> {
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        return Err(ModelError::Graph(format!("expected exactly one graph input, found {}", inputs.len())));
    };
    let mut dims = Vec::new();
    if let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        if let Some(shape) = &t.shape {
            for d in &shape.dim {
                dims.push(match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Some(v as usize),
                    _ => None,
                });
            }
        }
    }
    Ok((input.name.clone(), dims))
}

/// Checks a flat row-major batch and returns its row count.
pub(crate) fn batch_rows(rows: &[f32], n_features: usize, expected: usize) -> Result<usize, ModelError> {
    if n_features != expected {
        return Err(ModelError::FeatureCount { expected, got: n_features });
    }
    if n_features == 0 {
        return Err(ModelError::Batch("a model with zero features cannot take a batch".into()));
    }
    if !rows.len().is_multiple_of(n_features) {
        return Err(ModelError::Batch(format!(
            "{} values is not a whole number of rows of {n_features} features",
            rows.len()
        )));
    }
    Ok(rows.len() / n_features)
}
