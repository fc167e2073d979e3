//! `traceo features`: the model training data. Replays a labelled events file through the same
//! feature code as the server and writes one CSV row per event.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use scoring::detectors::{detect, points, RuleConfig};
use scoring::features::FEATURE_NAMES;
use sim::replay::Replay;

use crate::files::{label_of, progress, read_labels, EventReader};

#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// JSON-lines events (docs/EVENTS.md), in the order they were applied.
    pub events: PathBuf,
    /// JSON-lines labels (docs/SCORING.md); unlisted events are benign.
    pub labels: PathBuf,
    /// CSV to write: event_id,user_id,label,scenario,rules_score, then the model features.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    let labels = read_labels(&args.labels)?;
    let file = File::create(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    writeln!(out, "event_id,user_id,label,scenario,rules_score,{}", FEATURE_NAMES.join(","))?;
    let bar = progress(EventReader::file_len(&args.events));
    let rules = RuleConfig::default();
    let mut replay = Replay::new();
    let mut rows = 0u64;
    let mut read = 0u64;
    for item in EventReader::open(&args.events)? {
        let (_, ev) = item?;
        read += 1;
        if read.is_multiple_of(10_000) {
            bar.set_position(read);
        }
        let Some(o) = replay.step(&ev) else { continue };
        let (malicious, scenario) = label_of(&labels, &ev.event_id);
        let score = points(&detect(&o, &rules));
        write!(out, "{},{},{},{},{score}", csv(&ev.event_id), csv(&ev.user_id), u8::from(malicious), csv(scenario))?;
        for x in o.features() {
            write!(out, ",{x}")?;
        }
        out.write_all(b"\n")?;
        rows += 1;
    }
    out.flush()?;
    bar.finish_and_clear();
    println!("wrote {rows} rows for {} users to {}", replay.users(), args.out.display());
    Ok(())
}

/// Quotes a CSV field when it needs it.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
