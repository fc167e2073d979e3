//! `traceo eval EVENTS LABELS`: replays a labelled events file through the server's scoring code
//! (profiles built from the file's own history) and reports detection quality for the full scorer,
//! rules alone and each model alone: ROC AUC, PR AUC, TPR at 1% and 0.1% FPR, overall and per
//! scenario, the flag rate of each benign look-alike, and a ROC plot.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use scoring::detectors::{detect, points, RuleConfig};
use scoring::features::N_FEATURES;
use scoring::scorer::{combined_logit, rules_score, ModelBundle, ModelOutputs, ModelSet};
use serde::Serialize;
use sim::labels::{is_attack, BENIGN_LOOKALIKES};
use sim::replay::Replay;
use sim::roc::{Ranking, Summary};

use crate::files::{label_of, progress, read_labels, EventReader};
use crate::roc_plot::write_roc_png;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// JSON-lines events (docs/EVENTS.md), in the order they were applied.
    pub events: PathBuf,
    /// JSON-lines labels (docs/SCORING.md); unlisted events are benign.
    pub labels: PathBuf,
    /// Print one JSON object (the report) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Directory for eval.json and roc.png (default: the events file's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A model directory (manifest.json, iforest.onnx, autoencoder.onnx, gbt.onnx) instead of the
    /// models built into this binary.
    #[arg(long)]
    pub models: Option<PathBuf>,
}

/// The scorers compared, in report order.
const SCORERS: [&str; 5] = ["full", "rules", "gbt", "iforest", "autoencoder"];

#[derive(Serialize)]
struct ScorerReport {
    #[serde(flatten)]
    overall: Summary,
    per_scenario: BTreeMap<String, Summary>,
}

#[derive(Serialize)]
struct Lookalike {
    events: u64,
    /// Share of the scenario's events scored above the full scorer's 1%-FPR threshold.
    flagged_at_1pct_fpr: f64,
}

#[derive(Serialize)]
struct Report {
    events: u64,
    users: usize,
    malicious: u64,
    model_version: String,
    roc_auc: f64,
    pr_auc: f64,
    tpr_at_1pct_fpr: f64,
    tpr_at_0_1pct_fpr: f64,
    /// The full scorer per attack scenario: that scenario's events against every benign event.
    per_scenario: BTreeMap<String, Summary>,
    benign_lookalikes: BTreeMap<String, Lookalike>,
    scorers: BTreeMap<String, ScorerReport>,
    /// Replay plus scoring, seconds.
    seconds: f64,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let bundle = match &args.models {
        Some(dir) => read_bundle(dir)?,
        None => ModelBundle::builtin(),
    };
    let models = ModelSet::load(&bundle).context("loading the models")?;
    let labels = read_labels(&args.labels)?;
    let rules = RuleConfig::default();
    let mut replay = Replay::new();
    let (mut rows, mut rule_points, mut truth, mut scenarios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut names: Vec<String> = Vec::new();
    let bar = progress(EventReader::file_len(&args.events));
    for item in EventReader::open(&args.events)? {
        let (_, ev) = item?;
        let Some(o) = replay.step(&ev) else { continue };
        let (malicious, scenario) = label_of(&labels, &ev.event_id);
        rows.push(o.features());
        rule_points.push(points(&detect(&o, &rules)));
        truth.push(malicious);
        let idx = names.iter().position(|n| n == scenario).unwrap_or_else(|| {
            names.push(scenario.to_owned());
            names.len() - 1
        });
        scenarios.push(idx as u16);
        if rows.len().is_multiple_of(10_000) {
            bar.set_position(rows.len() as u64);
        }
    }
    bar.set_message("scoring with the models");
    let outputs = model_outputs(&models, &rows)?;
    bar.finish_and_clear();
    let mut scores: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    scores.insert("full", (0..rows.len()).map(|i| combined_logit(&models, rule_points[i], &outputs[i])).collect());
    scores.insert("rules", rule_points.iter().map(|&p| rules_score(p)).collect());
    scores.insert("gbt", outputs.iter().map(|m| m.gbt).collect());
    scores.insert("iforest", outputs.iter().map(|m| m.iforest).collect());
    scores.insert("autoencoder", outputs.iter().map(|m| m.autoencoder).collect());

    let mut reports = BTreeMap::new();
    for name in SCORERS {
        let s = &scores[name];
        let overall = Ranking::new(s, &truth).context("the labels need both malicious and benign events")?.summary();
        let mut per_scenario = BTreeMap::new();
        for (k, scenario) in names.iter().enumerate().filter(|(_, n)| is_attack(n)) {
            let (sub_s, sub_t): (Vec<f64>, Vec<bool>) =
                (0..s.len()).filter(|&i| !truth[i] || scenarios[i] as usize == k).map(|i| (s[i], truth[i])).unzip();
            if let Ok(r) = Ranking::new(&sub_s, &sub_t) {
                per_scenario.insert(scenario.clone(), r.summary());
            }
        }
        reports.insert(name.to_owned(), ScorerReport { overall, per_scenario });
    }
    let full = &scores["full"];
    let threshold = benign_quantile(full, &truth, 0.99);
    let mut benign_lookalikes = BTreeMap::new();
    for (k, scenario) in names.iter().enumerate().filter(|(_, n)| BENIGN_LOOKALIKES.contains(&n.as_str())) {
        let idx: Vec<usize> = (0..full.len()).filter(|&i| scenarios[i] as usize == k).collect();
        let flagged = idx.iter().filter(|&&i| full[i] > threshold).count();
        benign_lookalikes.insert(
            scenario.clone(),
            Lookalike { events: idx.len() as u64, flagged_at_1pct_fpr: flagged as f64 / idx.len().max(1) as f64 },
        );
    }
    let f = reports["full"].overall;
    let report = Report {
        events: rows.len() as u64,
        users: replay.users(),
        malicious: truth.iter().filter(|&&t| t).count() as u64,
        model_version: models.version().to_owned(),
        roc_auc: f.roc_auc,
        pr_auc: f.pr_auc,
        tpr_at_1pct_fpr: f.tpr_at_1pct_fpr,
        tpr_at_0_1pct_fpr: f.tpr_at_0_1pct_fpr,
        per_scenario: reports["full"].per_scenario.clone(),
        benign_lookalikes,
        scorers: reports,
        seconds: started.elapsed().as_secs_f64(),
    };
    let out = match &args.out {
        Some(d) => d.clone(),
        None => args.events.parent().map(PathBuf::from).unwrap_or_default(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(out.join("eval.json"), &json)
        .with_context(|| format!("writing {}", out.join("eval.json").display()))?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = SCORERS
        .iter()
        .map(|n| {
            let r = &report.scorers[*n].overall;
            let curve = Ranking::new(&scores[n], &truth).map(|r| r.roc_curve()).unwrap_or_default();
            (format!("{n} (AUC {:.4}, TPR@1% {:.3})", r.roc_auc, r.tpr_at_1pct_fpr), curve)
        })
        .collect();
    let title = format!(
        "Traceo eval: {} events, {} malicious, model {}",
        report.events, report.malicious, report.model_version
    );
    write_roc_png(&out.join("roc.png"), &title, &curves)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_tables(&report);
        println!("\nwrote {} and {}", out.join("eval.json").display(), out.join("roc.png").display());
    }
    Ok(())
}

/// Runs the models over all rows, on every core, in batches.
fn model_outputs(models: &ModelSet, rows: &[[f32; N_FEATURES]]) -> anyhow::Result<Vec<ModelOutputs>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = rows.len().div_ceil(threads).max(1);
    let parts: Vec<anyhow::Result<Vec<ModelOutputs>>> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(per)
            .map(|part| {
                s.spawn(move || -> anyhow::Result<Vec<ModelOutputs>> {
                    let mut out = Vec::with_capacity(part.len());
                    for batch in part.chunks(1024) {
                        out.extend(models.outputs(batch)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a scoring thread panicked"))))
            .collect()
    });
    let mut out = Vec::with_capacity(rows.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// The `q` quantile of the benign events' scores.
fn benign_quantile(scores: &[f64], truth: &[bool], q: f64) -> f64 {
    let mut neg: Vec<f64> = scores.iter().zip(truth).filter(|(_, &t)| !t).map(|(&s, _)| s).collect();
    if neg.is_empty() {
        return f64::INFINITY;
    }
    neg.sort_by(f64::total_cmp);
    neg[((neg.len() as f64 * q) as usize).min(neg.len() - 1)]
}

/// Reads a model directory into a bundle.
pub fn read_bundle(dir: &std::path::Path) -> anyhow::Result<ModelBundle> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    Ok(ModelBundle {
        manifest_json: read("manifest.json")?,
        iforest_onnx: read("iforest.onnx")?,
        autoencoder_onnx: read("autoencoder.onnx")?,
        gbt_onnx: read("gbt.onnx")?,
    })
}

fn print_tables(r: &Report) {
    println!(
        "{} events ({} malicious) for {} users, model {}, {:.1} s\n",
        r.events, r.malicious, r.users, r.model_version, r.seconds
    );
    println!("{:<12} {:>8} {:>8} {:>10} {:>11}", "scorer", "ROC AUC", "PR AUC", "TPR@1%FPR", "TPR@0.1%FPR");
    for name in SCORERS {
        let s = &r.scorers[name].overall;
        println!(
            "{name:<12} {:>8.4} {:>8.4} {:>10.3} {:>11.3}",
            s.roc_auc, s.pr_auc, s.tpr_at_1pct_fpr, s.tpr_at_0_1pct_fpr
        );
    }
    println!("\nfull scorer per scenario (its events against all benign events)");
    println!(
        "{:<22} {:>7} {:>8} {:>8} {:>10} {:>11}",
        "scenario", "events", "ROC AUC", "PR AUC", "TPR@1%FPR", "TPR@0.1%FPR"
    );
    for (name, s) in &r.per_scenario {
        println!(
            "{name:<22} {:>7} {:>8.4} {:>8.4} {:>10.3} {:>11.3}",
            s.positives, s.roc_auc, s.pr_auc, s.tpr_at_1pct_fpr, s.tpr_at_0_1pct_fpr
        );
    }
    println!("\nbenign look-alikes flagged at the 1%-FPR threshold");
    for (name, l) in &r.benign_lookalikes {
        println!("{name:<26} {:>7} events {:>6.2}%", l.events, 100.0 * l.flagged_at_1pct_fpr);
    }
}
