//! Golden test: our model runtimes against onnxruntime's outputs on the same rows.
//!
//! The training pipeline (`scoring/train/`) writes `scoring/models/{iforest,gbt,autoencoder}.onnx`
//! and `golden.json` (input rows and onnxruntime's outputs). Every output must match within
//! `|ours - expected| <= tolerance * max(1, |expected|)`. `TRACEO_MODELS_DIR` points the test at
//! another directory of the same layout.
//!
//! In `golden.json`, a `null` input is a NaN feature and a `null` output an expected NaN.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scoring::model::{NeuralModel, TreeEnsemble};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    feature_names: Vec<String>,
    inputs: Vec<Vec<Option<f64>>>,
    outputs: BTreeMap<String, Vec<Option<f64>>>,
    tolerance: f64,
}

fn models_dir() -> PathBuf {
    // The runtime CARGO_MANIFEST_DIR (set by cargo and nextest) first: a test binary shared
    // through a target directory by two checkouts keeps the path it was compiled in.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    std::env::var_os("TRACEO_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(manifest).join("models"))
}

/// Compares one model's scores with the expected ones, and prints the max absolute error and the
/// max scaled error `|ours - expected| / max(1, |expected|)` (what the tolerance bounds).
fn check(name: &str, got: &[f32], expected: &[Option<f64>], tolerance: f64) {
    assert_eq!(got.len(), expected.len(), "{name}: {} scores for {} expected", got.len(), expected.len());
    let (mut max_abs, mut max_scaled) = (0.0f64, 0.0f64);
    let mut failures = Vec::new();
    for (i, (&g, e)) in got.iter().zip(expected).enumerate() {
        match e {
            None if g.is_nan() => {}
            None => failures.push(format!("row {i}: got {g}, expected NaN")),
            Some(e) => {
                let err = (g as f64 - e).abs();
                if err.is_nan() || err > tolerance * e.abs().max(1.0) {
                    failures.push(format!("row {i}: got {g}, expected {e} (error {err:e})"));
                }
                if !err.is_nan() {
                    max_abs = max_abs.max(err);
                    max_scaled = max_scaled.max(err / e.abs().max(1.0));
                }
            }
        }
    }
    println!(
        "{name:<12} {} rows: max abs error {max_abs:.3e}, max scaled error {max_scaled:.3e} (tolerance {tolerance:e})",
        got.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {} rows out of tolerance:\n{}",
        failures.len(),
        got.len(),
        failures.join("\n")
    );
}

#[test]
fn models_match_onnxruntime() {
    let dir = models_dir();
    let golden_path = dir.join("golden.json");
    let text = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run the training pipeline (scoring/train/run) to produce the models and \
             golden outputs, or set TRACEO_MODELS_DIR",
            golden_path.display()
        )
    });
    let golden: Golden = serde_json::from_str(&text).expect("golden.json does not parse");
    let n_features = golden.feature_names.len();
    assert!(!golden.inputs.is_empty(), "golden.json has no input rows");
    let rows: Vec<f32> = golden
        .inputs
        .iter()
        .flat_map(|row| {
            assert_eq!(row.len(), n_features, "a golden input row does not have {n_features} features");
            row.iter().map(|v| v.map_or(f32::NAN, |v| v as f32))
        })
        .collect();
    let n = golden.inputs.len();
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let expected = |name: &str| {
        golden.outputs.get(name).unwrap_or_else(|| panic!("golden.json has no outputs for {name}")).as_slice()
    };
    let feature_csv = golden.feature_names.join(",");

    for name in ["iforest", "gbt"] {
        let model = TreeEnsemble::from_onnx(&read(&format!("{name}.onnx")))
            .unwrap_or_else(|e| panic!("{name}.onnx does not load: {e}"));
        assert_eq!(model.n_features(), n_features, "{name}: feature count");
        if let Some(names) = model.metadata().get("feature_names") {
            assert!(
                names == &feature_csv
                    || serde_json::from_str::<Vec<String>>(names).ok() == Some(golden.feature_names.clone()),
                "{name}: metadata feature_names differ from golden.json's"
            );
        }
        let mut got = vec![0.0f32; n];
        model.predict_batch(&rows, n_features, &mut got).unwrap();
        for (row, &batch) in rows.chunks(n_features).zip(&got) {
            assert_eq!(model.predict_one(row).unwrap().to_bits(), batch.to_bits(), "{name}: single != batch");
        }
        println!(
            "{name:<12} {} trees, {} nodes, metadata {:?}",
            model.n_trees(),
            model.n_nodes(),
            model.metadata().keys().collect::<Vec<_>>()
        );
        check(name, &got, expected(name), golden.tolerance);
    }

    let model = NeuralModel::from_onnx(&read("autoencoder.onnx"))
        .unwrap_or_else(|e| panic!("autoencoder.onnx does not load: {e}"));
    assert_eq!(model.n_features(), n_features, "autoencoder: feature count");
    let got = model.predict_batch(&rows, n_features).unwrap();
    check("autoencoder", &got, expected("autoencoder"), golden.tolerance);
    // One row at a time goes through the same plan with N = 1.
    let single: Vec<f32> = rows.chunks(n_features).map(|row| model.predict_one(row).unwrap()).collect();
    check("autoencoder1", &single, expected("autoencoder"), golden.tolerance);
}
