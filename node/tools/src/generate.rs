//! `traceo generate`: writes a labelled, reproducible behaviour data set (events + labels).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use scoring::calendar::MS_PER_DAY;
use sim::{Generator, GeneratorConfig};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Seed of the population and of every event (user ids embed it, so two seeds never share
    /// users: train and test on different seeds).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated users.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Simulated days, starting 2026-01-05 (attacks start after the first week).
    #[arg(long, default_value_t = 28)]
    pub days: u32,
    /// Average events per user per day.
    #[arg(long, default_value_t = 20.0)]
    pub events_per_day: f64,
    /// Incidents of each attack scenario per 1,000 user-days (0: benign only).
    #[arg(long, default_value_t = 1.0)]
    pub attack_rate: f64,
    /// Output directory: writes events.jsonl (docs/EVENTS.md) and labels.jsonl (docs/SCORING.md).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.users == 0 {
        anyhow::bail!("--users: must be at least 1");
    }
    if args.days == 0 {
        anyhow::bail!("--days: must be at least 1");
    }
    if !(args.events_per_day.is_finite() && args.events_per_day > 0.0) {
        anyhow::bail!("--events-per-day: must be a positive number, got {}", args.events_per_day);
    }
    if !(args.attack_rate.is_finite() && args.attack_rate >= 0.0) {
        anyhow::bail!("--attack-rate: must be zero or positive, got {}", args.attack_rate);
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let cfg = GeneratorConfig {
        seed: args.seed,
        users: args.users,
        events_per_user_per_day: args.events_per_day,
        attacks_per_1000_user_days: args.attack_rate,
        horizon_days: args.days,
        ..GeneratorConfig::default()
    };
    let end = cfg.start_ms + i64::from(args.days) * MS_PER_DAY;
    let expected = (args.users as f64 * f64::from(args.days) * args.events_per_day) as u64;
    let mut generator = Generator::new(cfg);
    let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let path = args.out.join(name);
        Ok(BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?))
    };
    let (mut events, mut labels) = (create("events.jsonl")?, create("labels.jsonl")?);
    let bar = ProgressBar::new(expected);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/~{len} events ({per_sec}, eta {eta})") {
        bar.set_style(style);
    }
    let (mut n, mut malicious) = (0u64, 0u64);
    loop {
        let (ev, label) = generator.next_labelled();
        if ev.time_ms >= end {
            break;
        }
        serde_json::to_writer(&mut events, &ev)?;
        events.write_all(b"\n")?;
        serde_json::to_writer(&mut labels, &label)?;
        labels.write_all(b"\n")?;
        n += 1;
        malicious += u64::from(label.label);
        if n.is_multiple_of(10_000) {
            bar.set_position(n);
        }
    }
    events.flush()?;
    labels.flush()?;
    bar.finish_and_clear();
    println!(
        "wrote {n} events ({malicious} malicious) for {} users over {} days to {}",
        args.users,
        args.days,
        args.out.display()
    );
    Ok(())
}
