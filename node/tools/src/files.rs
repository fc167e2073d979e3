//! Reading the documented JSON-lines files: events (docs/EVENTS.md) and labels (docs/SCORING.md).
//! Errors name the file, the line and the field.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use scoring::Event;
use sim::LabelRecord;

/// Parses one JSON line into `T`, naming the field on error.
pub fn parse_line<T: serde::de::DeserializeOwned>(path: &Path, line_no: usize, line: &str) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(line)).map_err(|e| {
        let field = e.path().to_string();
        anyhow::anyhow!("{} line {line_no}: field `{field}`: {}", path.display(), e.inner())
    })
}

/// Streams the events of a JSON-lines file, skipping blank lines.
pub struct EventReader {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    line_no: usize,
}

impl EventReader {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(EventReader { path: path.to_owned(), lines: BufReader::new(file).lines(), line_no: 0 })
    }

    /// Size of the file in bytes (for progress bars).
    pub fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

impl Iterator for EventReader {
    /// (line number, event) or an error naming the line and field.
    type Item = anyhow::Result<(usize, Event)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.line_no += 1;
            let line = match line {
                Ok(l) => l,
                Err(e) => return Some(Err(anyhow::anyhow!("{} line {}: {e}", self.path.display(), self.line_no))),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_line(&self.path, self.line_no, &line).map(|ev| (self.line_no, ev)));
        }
    }
}

/// Reads a labels file into a map by event id. A repeated event id is an error.
pub fn read_labels(path: &Path) -> anyhow::Result<HashMap<String, LabelRecord>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{} line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: LabelRecord = parse_line(path, i + 1, &line)?;
        if rec.label > 1 {
            anyhow::bail!("{} line {}: field `label`: must be 0 or 1, got {}", path.display(), i + 1, rec.label);
        }
        if let Some(prev) = out.insert(rec.event_id.clone(), rec) {
            anyhow::bail!("{} line {}: field `event_id`: {:?} is labelled twice", path.display(), i + 1, prev.event_id);
        }
    }
    Ok(out)
}

/// The label of an event: its line in the labels file, or benign `normal`.
pub fn label_of<'a>(labels: &'a HashMap<String, LabelRecord>, event_id: &str) -> (bool, &'a str) {
    labels.get(event_id).map_or((false, sim::labels::NORMAL), |l| (l.malicious(), l.scenario.as_str()))
}

/// A progress bar over events; the length is unknown up front, so it counts.
pub fn progress(file_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} events ({per_sec}) {msg}") {
        bar.set_style(style);
    }
    bar.set_message(format!("of a {:.0} MB file", file_bytes as f64 / 1e6));
    bar
}
