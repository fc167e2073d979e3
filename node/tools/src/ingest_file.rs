//! `traceo ingest FILE.jsonl`: replays a file of events (one JSON object per line, see
//! docs/EVENTS.md). The whole file is parsed and validated before anything is sent, so a bad line
//! writes nothing.

use std::collections::HashMap;
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

/// Every event of the file (with its line number) passes the API's validation, and no
/// `(user_id, event_id)` appears twice: a repeat would be refused with its batch after earlier
/// batches were written. The error names the line (and the first one of a repeat).
fn check_file(events: &[(usize, client::proto::Event)], now_ms: i64, limits: &client::Limits) -> Result<(), String> {
    let mut first_line: HashMap<(&str, &str), usize> = HashMap::with_capacity(events.len());
    for (line, ev) in events {
        client::validate::validate_event(ev, *line, now_ms, limits)
            .map_err(|e| format!("line {line}: field `{}`: {}", e.field, e.reason))?;
        if let Some(first) = first_line.insert((ev.user_id.as_str(), ev.event_id.as_str()), *line) {
            return Err(format!(
                "line {line}: field `event_id`: {:?} of user {:?} is already on line {first}",
                ev.event_id, ev.user_id
            ));
        }
    }
    Ok(())
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let mut events = Vec::new();
    for item in EventReader::open(&args.file)? {
        let (line, ev) = item.map_err(|e| anyhow::anyhow!("{e:#}; nothing was sent"))?;
        events.push((line, event_to_proto(&ev)));
    }
    check_file(&events, now_ms(), &client::Limits::default())
        .map_err(|e| anyhow::anyhow!("{} {e}; nothing was sent", args.file.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    fn event(user: &str, id: &str) -> client::proto::Event {
        client::proto::Event {
            event_id: id.into(),
            user_id: user.into(),
            time_ms: NOW,
            kind: client::proto::EventKind::Login as i32,
            outcome: client::proto::Outcome::Success as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_repeat_anywhere_in_the_file_is_refused_before_anything_is_sent() {
        let limits = client::Limits::default();
        // Lines 1 and 250 are more than a batch (200) apart: a per-batch check would have sent
        // the first batch before it saw the repeat.
        let mut events: Vec<_> = (1..=300).map(|i| (i, event("u", &format!("e{i}")))).collect();
        check_file(&events, NOW, &limits).unwrap();
        events[249].1.event_id = "e1".into();
        let err = check_file(&events, NOW, &limits).unwrap_err();
        assert_eq!(err, "line 250: field `event_id`: \"e1\" of user \"u\" is already on line 1");
        // The same event id for another user is another event.
        events[249].1.user_id = "v".into();
        check_file(&events, NOW, &limits).unwrap();
    }

    #[test]
    fn an_invalid_event_names_its_line_and_field() {
        let events = vec![(1, event("u", "e1")), (2, client::proto::Event { kind: 42, ..event("u", "e2") })];
        let err = check_file(&events, NOW, &client::Limits::default()).unwrap_err();
        assert!(err.starts_with("line 2: field `kind`: "), "{err}");
    }
}
