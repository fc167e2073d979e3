//! `traceo ingest FILE.jsonl`: replays a file of events (one JSON object per line, see
//! docs/EVENTS.md). The whole file is parsed and validated before anything is sent, so a bad line
//! writes nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::{Client, ClientOptions, Outcome};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::files::EventReader;
use crate::SeedArgs;
use convert::event_to_proto;
use testkit::now_ms;

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// JSON-lines file of events.
    pub file: PathBuf,
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Events per request.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let mut events = Vec::new();
    for item in EventReader::open(&args.file)? {
        let (line, ev) = item.map_err(|e| anyhow::anyhow!("{e:#}; nothing was sent"))?;
        events.push((line, event_to_proto(&ev)));
    }
    let limits = client::Limits::default();
    for (line, ev) in &events {
        client::validate::validate_event(ev, *line, now_ms(), &limits).map_err(|e| {
            anyhow::anyhow!("{} line {line}: field `{}`: {}; nothing was sent", args.file.display(), e.field, e.reason)
        })?;
    }
    let client = Client::connect(args.seeds.seeds.clone(), ClientOptions::default()).await?;
    let bar = ProgressBar::new(events.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})") {
        bar.set_style(style);
    }
    let started = Instant::now();
    let batches: Vec<Vec<client::proto::Event>> =
        events.chunks(args.batch.max(1)).map(|c| c.iter().map(|(_, e)| e.clone()).collect()).collect();
    let results: Vec<_> = stream::iter(batches)
        .map(|b| {
            let client = client.clone();
            let bar = bar.clone();
            async move {
                let r = client.ingest(&b).await;
                bar.inc(b.len() as u64);
                r
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let (mut ok, mut dup, mut failed, mut indeterminate) = (0u64, 0u64, 0u64, 0u64);
    for r in results {
        for o in r? {
            match o {
                Outcome::Ok { duplicate: false, .. } => ok += 1,
                Outcome::Ok { duplicate: true, .. } => dup += 1,
                Outcome::Failed { .. } => failed += 1,
                Outcome::Indeterminate { .. } => indeterminate += 1,
            }
        }
    }
    let secs = started.elapsed().max(Duration::from_millis(1)).as_secs_f64();
    println!(
        "{} events: {ok} applied, {dup} already present, {failed} failed, {indeterminate} indeterminate ({:.0} events/s)",
        events.len(),
        (ok + dup) as f64 / secs
    );
    anyhow::ensure!(
        failed + indeterminate == 0,
        "{} events without a definite success: run the same command again (ids make it idempotent)",
        failed + indeterminate
    );
    Ok(())
}
