//! The model lifecycle on a running 3-node cluster: a new version deployed as a shadow, promoted,
//! rejected when it reuses a version with other files, and rolled back — each time every node
//! runs what the meta group says, and answers carry that version.

mod common;

use std::time::{Duration, Instant};

use client::proto::traceo_client::TraceoClient;
use client::proto::{ModelAction, ModelFiles, ModelsResponse, ScoreRequest};
use client::Client;
use common::{event, now_ms, start_cluster};
use scoring::scorer::ModelBundle;

/// The built-in bundle under another version, its calibration shifted so scores differ.
fn variant(version: &str) -> ModelFiles {
    let b = ModelBundle::builtin();
    let mut manifest: serde_json::Value = serde_json::from_slice(&b.manifest_json).unwrap();
    manifest["model_version"] = version.into();
    let intercept = manifest["combiner"]["intercept"].as_f64().expect("combiner.intercept");
    manifest["combiner"]["intercept"] = (intercept + 4.0).into();
    ModelFiles {
        manifest_json: serde_json::to_vec(&manifest).unwrap(),
        iforest_onnx: b.iforest_onnx,
        autoencoder_onnx: b.autoencoder_onnx,
        gbt_onnx: b.gbt_onnx,
    }
}

/// Waits until every node of the cluster reports `check` true of its view.
async fn on_every_node(client: &Client, nodes: usize, what: &str, check: impl Fn(&ModelsResponse) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answers = client.models_all().await;
        let ok: Vec<&ModelsResponse> = answers.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let mut ids: Vec<u64> = ok.iter().filter(|m| check(m)).map(|m| m.node_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() == nodes {
            return;
        }
        assert!(Instant::now() < deadline, "not every node {what}: {answers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_model_version_reaches_every_node_and_rolls_back() {
    common::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, client) = start_cluster(dir.path(), 3, 6, 3).await;
    let builtin = ModelBundle::builtin();
    let builtin_version = scoring::scorer::ModelSet::load(&builtin).unwrap().version().to_owned();
    // Users spread over every shard, so every shard leader answers Score below.
    let users: Vec<String> = (0..24).map(|i| format!("user-{i}")).collect();
    let now = now_ms();
    let history: Vec<_> = users
        .iter()
        .flat_map(|u| (0..3).map(move |i| event(u, &format!("{u}-h{i}"), now - (3 - i) * 3_600_000)))
        .collect();
    client.ingest(&history).await.unwrap();
    let score_all = |label: &'static str| {
        let client = client.clone();
        let users = users.clone();
        async move {
            let mut out = Vec::new();
            for u in &users {
                let r = client.score(&event(u, &format!("{u}-{label}"), now)).await.unwrap();
                out.push((r.served_by, r.verdict.expect("verdict")));
            }
            out
        }
    };

    tracing::info!("--- shadow deployment");
    let r = client.deploy_model(variant("test-v2"), true).await.unwrap();
    assert_eq!((r.live.as_str(), r.shadow.as_str()), ("", "test-v2"), "{r:?}");
    on_every_node(&client, 3, "runs the shadow", |m| m.installed_shadow == "test-v2").await;
    for (_, v) in score_all("shadow").await {
        assert_eq!(v.model_version, builtin_version, "the live version still decides");
        assert_eq!(v.shadow_version, "test-v2");
        assert!(v.shadow_score.is_some());
    }

    tracing::info!("--- promote");
    let r = client.model_action(ModelAction::Promote).await.unwrap();
    assert_eq!((r.live.as_str(), r.shadow.as_str()), ("test-v2", ""), "{r:?}");
    on_every_node(&client, 3, "runs test-v2 live", |m| m.installed_live == "test-v2" && m.installed_shadow.is_empty())
        .await;
    let promoted = score_all("live").await;
    for (_, v) in &promoted {
        assert_eq!(v.model_version, "test-v2");
    }
    // Every node answers with it (each holds a replica of every shard: Score with stale_ok).
    for node in &cluster.nodes {
        let mut grpc = TraceoClient::connect(format!("http://{}", node.addr)).await.unwrap();
        let req = ScoreRequest { event: Some(event(&users[0], "direct", now)), stale_ok: true };
        let v = grpc.score(req).await.unwrap().into_inner().verdict.unwrap();
        assert_eq!(v.model_version, "test-v2", "node {}", node.addr);
    }

    tracing::info!("--- a restarted node loads the deployed version from its meta replica");
    cluster.kill(2).unwrap();
    cluster.restart(2).unwrap();
    on_every_node(&client, 3, "runs test-v2 after a restart", |m| m.installed_live == "test-v2").await;

    tracing::info!("--- refused deployments");
    let mut other = variant("test-v2");
    other.manifest_json.extend_from_slice(b" ");
    let err = client.deploy_model(other, false).await.unwrap_err().to_string();
    assert!(err.contains("different files"), "{err}");
    let mut broken = variant("test-v3");
    broken.gbt_onnx.truncate(100);
    let err = client.deploy_model(broken, false).await.unwrap_err().to_string();
    assert!(err.contains("field `files`"), "{err}");
    let r = client.model_action(ModelAction::ClearShadow).await.unwrap_err().to_string();
    assert!(r.contains("no shadow"), "{r}");

    tracing::info!("--- rollback");
    let r = client.model_action(ModelAction::Rollback).await.unwrap();
    assert_eq!(r.live, "", "back to the built-in models: {r:?}");
    on_every_node(&client, 3, "runs the built-in models", |m| m.installed_live == builtin_version).await;
    for ((_, before), (_, after)) in promoted.iter().zip(score_all("rolled-back").await) {
        assert_eq!(after.model_version, builtin_version);
        assert!(after.score <= before.score, "the shifted calibration scored higher: {before:?} vs {after:?}");
    }
    let err = client.model_action(ModelAction::Rollback).await.unwrap_err().to_string();
    assert!(err.contains("no earlier"), "{err}");
}
