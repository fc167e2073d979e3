//! Model latency: per-row cost of each scoring model, one event at a time and in batches of 256.
//!
//! Reads `scoring/models/{iforest,gbt,autoencoder}.onnx` and the rows of `golden.json` (or the same
//! layout under `TRACEO_MODELS_DIR`). Targets: all models together <= 100 µs per event one at a
//! time, and >= 100,000 events/s per core in batches. After criterion's runs, a summary table of
//! µs/row and rows/s is printed, in CPU time per core (and wall time, which on a shared machine
//! also counts the time other processes held the core).
//!
//! Run with the workspace's shared optimized dev profile (plain `cargo bench` uses the `bench`
//! profile, which rebuilds every dependency):
//! `cargo bench -p traceo-scoring --bench models --profile dev`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use scoring::model::{NeuralModel, TreeEnsemble};

const BATCH: usize = 256;

struct Models {
    iforest: TreeEnsemble,
    gbt: TreeEnsemble,
    autoencoder: NeuralModel,
    n_features: usize,
    /// At least `BATCH` rows, row-major.
    rows: Vec<f32>,
}

fn load() -> Models {
    let dir = std::env::var_os("TRACEO_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run scoring/train/run first)", p.display()))
    };
    let iforest = TreeEnsemble::from_onnx(&read("iforest.onnx")).expect("iforest.onnx");
    let gbt = TreeEnsemble::from_onnx(&read("gbt.onnx")).expect("gbt.onnx");
    let autoencoder = NeuralModel::from_onnx(&read("autoencoder.onnx")).expect("autoencoder.onnx");
    let n_features = iforest.n_features();
    let golden: serde_json::Value = serde_json::from_slice(&read("golden.json")).expect("golden.json");
    let inputs = golden["inputs"].as_array().expect("golden.json inputs");
    let mut rows: Vec<f32> = Vec::new();
    // Repeat the golden rows (real events and edge cases) up to a batch.
    while rows.len() < BATCH * n_features {
        for row in inputs {
            for v in row.as_array().expect("row") {
                rows.push(v.as_f64().map_or(f32::NAN, |v| v as f32));
            }
        }
    }
    Models { iforest, gbt, autoencoder, n_features, rows }
}

fn row(m: &Models, i: usize) -> &[f32] {
    let n = m.rows.len() / m.n_features;
    let i = i % n;
    &m.rows[i * m.n_features..(i + 1) * m.n_features]
}

fn benches(c: &mut Criterion, m: &Models) {
    let nf = m.n_features;
    let batch = &m.rows[..BATCH * nf];
    let mut g = c.benchmark_group("single");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("iforest", |b| {
        b.iter(|| {
            i += 1;
            m.iforest.predict_one(black_box(row(m, i))).unwrap()
        })
    });
    g.bench_function("gbt", |b| {
        b.iter(|| {
            i += 1;
            m.gbt.predict_one(black_box(row(m, i))).unwrap()
        })
    });
    g.bench_function("autoencoder", |b| {
        b.iter(|| {
            i += 1;
            m.autoencoder.predict_one(black_box(row(m, i))).unwrap()
        })
    });
    g.bench_function("all", |b| {
        b.iter(|| {
            i += 1;
            let r = black_box(row(m, i));
            (m.iforest.predict_one(r).unwrap(), m.gbt.predict_one(r).unwrap(), m.autoencoder.predict_one(r).unwrap())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut out = vec![0.0f32; BATCH];
    g.bench_function(BenchmarkId::new("iforest", BATCH), |b| {
        b.iter(|| m.iforest.predict_batch(black_box(batch), nf, &mut out).unwrap())
    });
    g.bench_function(BenchmarkId::new("gbt", BATCH), |b| {
        b.iter(|| m.gbt.predict_batch(black_box(batch), nf, &mut out).unwrap())
    });
    g.bench_function(BenchmarkId::new("autoencoder", BATCH), |b| {
        b.iter(|| m.autoencoder.predict_batch(black_box(batch), nf).unwrap())
    });
    g.bench_function(BenchmarkId::new("all", BATCH), |b| {
        b.iter(|| {
            m.iforest.predict_batch(black_box(batch), nf, &mut out).unwrap();
            m.gbt.predict_batch(black_box(batch), nf, &mut out).unwrap();
            m.autoencoder.predict_batch(black_box(batch), nf).unwrap()
        })
    });
    g.finish();
}

/// This thread's CPU time (Linux `/proc/thread-self/schedstat`), if available: unlike wall time,
/// it does not count the time other processes on a shared machine take the core away.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(s.split_whitespace().next()?.parse().ok()?))
}

/// Time per call of `f`, wall and CPU: the median over `rounds` rounds of ~`per_round` each.
struct PerCall {
    wall: Duration,
    cpu: Option<Duration>,
}

fn time_per_call(mut f: impl FnMut(), per_round: Duration, rounds: usize) -> PerCall {
    let mut calls = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..calls {
            f();
        }
        if t.elapsed() >= per_round / 4 {
            break;
        }
        calls *= 2;
    }
    let mut wall = Vec::with_capacity(rounds);
    let mut cpu = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (t, c) = (Instant::now(), thread_cpu_time());
        for _ in 0..calls {
            f();
        }
        wall.push(t.elapsed() / calls);
        if let (Some(c0), Some(c1)) = (c, thread_cpu_time()) {
            cpu.push((c1 - c0) / calls);
        }
    }
    wall.sort();
    cpu.sort();
    PerCall { wall: wall[rounds / 2], cpu: (cpu.len() == rounds).then(|| cpu[rounds / 2]) }
}

fn summary(m: &Models) -> serde_json::Value {
    let nf = m.n_features;
    let batch = &m.rows[..BATCH * nf];
    let (round, rounds) = (Duration::from_millis(200), 9);
    let mut out = vec![0.0f32; BATCH];
    let mut i = 0usize;
    let mut single = |f: &dyn Fn(&[f32])| {
        time_per_call(
            || {
                i += 1;
                f(black_box(row(m, i)))
            },
            round,
            rounds,
        )
    };
    let s_if = single(&|r| {
        black_box(m.iforest.predict_one(r).unwrap());
    });
    let s_gbt = single(&|r| {
        black_box(m.gbt.predict_one(r).unwrap());
    });
    let s_ae = single(&|r| {
        black_box(m.autoencoder.predict_one(r).unwrap());
    });
    let b_if = time_per_call(|| m.iforest.predict_batch(black_box(batch), nf, &mut out).unwrap(), round, rounds);
    let b_gbt = time_per_call(|| m.gbt.predict_batch(black_box(batch), nf, &mut out).unwrap(), round, rounds);
    let b_ae = time_per_call(
        || {
            black_box(m.autoencoder.predict_batch(black_box(batch), nf).unwrap());
        },
        round,
        rounds,
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let per_row = |d: Duration| us(d) / BATCH as f64;
    // Per-core figures use CPU time where the platform gives it.
    let core = |p: &PerCall| p.cpu.unwrap_or(p.wall);
    println!();
    println!(
        "models: iforest {} trees / {} nodes, gbt {} trees / {} nodes, autoencoder; {} features",
        m.iforest.n_trees(),
        m.iforest.n_nodes(),
        m.gbt.n_trees(),
        m.gbt.n_nodes(),
        nf
    );
    println!(
        "{} time per row (wall time in brackets; it includes time other processes took the core)",
        if s_if.cpu.is_some() { "CPU" } else { "wall" }
    );
    println!("{:<12} {:>22} {:>24} {:>14}", "model", "single µs/row", "batch-256 µs/row", "batch rows/s");
    for (name, s, b) in [("iforest", &s_if, &b_if), ("gbt", &s_gbt, &b_gbt), ("autoencoder", &s_ae, &b_ae)] {
        println!(
            "{name:<12} {:>12.2} [{:>7.2}] {:>14.3} [{:>7.3}] {:>14.0}",
            us(core(s)),
            us(s.wall),
            per_row(core(b)),
            per_row(b.wall),
            1e6 / per_row(core(b))
        );
    }
    let s_all = us(core(&s_if)) + us(core(&s_gbt)) + us(core(&s_ae));
    // Tail latency of one event through all three models, each call timed on its own (wall).
    let mut calls: Vec<Duration> = (0..20_000)
        .map(|i| {
            let r = black_box(row(m, i));
            let t = Instant::now();
            black_box((m.iforest.predict_one(r).unwrap(), m.gbt.predict_one(r).unwrap()));
            black_box(m.autoencoder.predict_one(r).unwrap());
            t.elapsed()
        })
        .collect();
    calls.sort();
    let (p50, p99) = (us(calls[calls.len() / 2]), us(calls[calls.len() * 99 / 100]));
    let b_all = per_row(core(&b_if)) + per_row(core(&b_gbt)) + per_row(core(&b_ae));
    println!("{:<12} {:>12.2} {:>9} {:>14.3} {:>9} {:>14.0}", "all", s_all, "", b_all, "", 1e6 / b_all);
    println!("all three, one event per call, 20,000 calls (wall): p50 {p50:.1} µs, p99 {p99:.1} µs");
    println!(
        "targets: single p99 {} (<= 100 µs/event), batched {} (>= 100,000 events/s/core)",
        if p99 <= 100.0 { "met" } else { "MISSED" },
        if 1e6 / b_all >= 100_000.0 { "met" } else { "MISSED" }
    );
    let model = |s: &PerCall, b: &PerCall| serde_json::json!({ "single_us": us(core(s)), "batch_us_per_row": per_row(core(b)), "batch_rows_per_s": 1e6 / per_row(core(b)) });
    serde_json::json!({
        "iforest": model(&s_if, &b_if),
        "gbt": model(&s_gbt, &b_gbt),
        "autoencoder": model(&s_ae, &b_ae),
        "all_single_us": s_all,
        "all_single_p50_us": p50,
        "all_single_p99_us": p99,
        "all_batch_us_per_row": b_all,
        "all_batch_rows_per_s": 1e6 / b_all,
        "time": if s_if.cpu.is_some() { "cpu" } else { "wall" },
    })
}

/// This process's resident memory (Linux `/proc/self/statm`), bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// Resident memory a node spends on one loaded model set: the built-in bundle compiled as the
/// server does ([`ModelSet::load`]) and run once on a full batch (so scratch buffers count).
fn models_resident_mib() -> Option<f64> {
    use scoring::features::N_FEATURES;
    use scoring::scorer::{ModelBundle, ModelSet};
    let bundle = ModelBundle::builtin();
    let before = resident_bytes()?;
    let set = ModelSet::load(&bundle).expect("built-in models load");
    let rows = vec![[0.5f32; N_FEATURES]; BATCH];
    black_box(set.outputs(&rows).expect("a batch scores"));
    let after = resident_bytes()?;
    drop(set);
    Some(after.saturating_sub(before) as f64 / 1048576.0)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once in test mode.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    // First, before anything else grows the heap.
    let resident = models_resident_mib();
    let m = load();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    benches(&mut c, &m);
    c.final_summary();
    if bench_mode {
        let mut out = summary(&m);
        if let Some(mib) = resident {
            println!("resident memory of the loaded models: {mib:.1} MiB (target < 50 MiB)");
            out["models_resident_mib"] = ((mib * 10.0).round() / 10.0).into();
        }
        let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        let path = dir.join("criterion").join("models-summary.json");
        let written = std::fs::create_dir_all(path.parent().expect("a parent"))
            .and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json") + "\n"));
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}
