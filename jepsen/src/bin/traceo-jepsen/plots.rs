//! Charts of a run's history, as 1200×600 PNGs: the latency of every operation over the run
//! (log scale, coloured by outcome, marker by operation) and the completions per second by
//! outcome. Both shade the nemesis' fault periods in light grey, labelled with what it did.
//!
//! Pure Rust, like `node`'s ROC plots: plotters' bitmap backend with its `ab_glyph` text renderer
//! and DejaVu Sans embedded by the `dejavu` crate, so no system fonts are needed.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context};
use jepsen::history::{History, OpF, OpType, NEMESIS};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DynElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

/// Image size in pixels.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 600;
/// The legend column right of the chart, in pixels.
const LEGEND_WIDTH: u32 = 140;
/// The name the embedded font is registered under, and that every text style asks for.
const FONT: &str = "sans-serif";
/// Outcomes in drawing and legend order, with their colours.
const OUTCOMES: [(OpType, &str, RGBColor); 3] = [
    (OpType::Ok, "ok", RGBColor(44, 160, 44)),
    (OpType::Fail, "fail", RGBColor(214, 39, 40)),
    (OpType::Info, "info", RGBColor(255, 127, 14)),
];
/// Latencies below this (1 µs, in ms) are drawn at it: the log axis has no 0.
const MIN_LATENCY_MS: f64 = 1e-3;
/// Nemesis labels and the empty-history note.
const DARK_GREY: RGBColor = RGBColor(80, 80, 80);

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Registers the embedded DejaVu Sans with plotters (once per process).
fn register_fonts() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ok.then_some(()).ok_or_else(|| anyhow!("the embedded DejaVu Sans font could not be loaded"))
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The end of the run: the latest timestamp in the history (0 when empty).
fn end_ns(h: &History) -> u64 {
    h.ops.iter().map(|o| o.time_ns).max().unwrap_or(0)
}

/// The nemesis' fault periods as `(start_s, end_s, label)`, in start order: from each
/// "start X" to the first later "stop X…" (e.g. "stop kill n2 (restarted)" ends "start kill n2").
/// A fault never stopped ends at the history's last timestamp. The label is X ("kill n2").
pub fn nemesis_periods(h: &History) -> Vec<(f64, f64, String)> {
    let mut open: Vec<(f64, String)> = Vec::new();
    let mut periods = Vec::new();
    for op in h.ops.iter().filter(|o| o.process == NEMESIS || o.f == OpF::Nemesis) {
        let Some(text) = op.value.as_str() else { continue };
        if let Some(what) = text.strip_prefix("start ") {
            open.push((secs(op.time_ns), what.to_string()));
        } else if let Some(what) = text.strip_prefix("stop ") {
            let stops = |(_, x): &(f64, String)| {
                what.strip_prefix(x.as_str()).is_some_and(|r| r.is_empty() || r.starts_with(' '))
            };
            if let Some(i) = open.iter().position(stops) {
                let (start, label) = open.remove(i);
                periods.push((start, secs(op.time_ns), label));
            }
        }
    }
    let end = secs(end_ns(h));
    periods.extend(open.into_iter().map(|(start, label)| (start, end.max(start), label)));
    periods.sort_by(|a, b| a.0.total_cmp(&b.0));
    periods
}

/// Every client operation as `(completion_s, latency_ms, outcome, f)`. One never completed is an
/// `info` completing at the end of the run.
fn completions(h: &History) -> Vec<(f64, f64, OpType, OpF)> {
    let end = end_ns(h);
    h.pairs()
        .into_iter()
        .map(|(i, c)| {
            let (t, kind) = c.map_or((end, OpType::Info), |c| (h.ops[c].time_ns, h.ops[c].kind));
            let kind = if kind == OpType::Invoke { OpType::Info } else { kind };
            (secs(t), t.saturating_sub(h.ops[i].time_ns) as f64 / 1e6, kind, h.ops[i].f)
        })
        .collect()
}

/// Draws the history's operations' latencies over time into a 1200×600 PNG at `path`.
pub fn latency_png(h: &History, path: &Path) -> anyhow::Result<()> {
    register_fonts()?;
    draw_latency(h, path).map_err(|e| anyhow!("{e}")).with_context(|| format!("drawing {}", path.display()))
}

/// Draws completions per second by outcome (1-second buckets) into a 1200×600 PNG at `path`.
pub fn throughput_png(h: &History, path: &Path) -> anyhow::Result<()> {
    register_fonts()?;
    draw_throughput(h, path).map_err(|e| anyhow!("{e}")).with_context(|| format!("drawing {}", path.display()))
}

/// An operation's marker: append ●, read ▲, write ✕, cas ○.
fn marker<DB: DrawingBackend, C: Clone + 'static>(f: OpF, at: C, color: RGBColor) -> DynElement<'static, DB, C> {
    let style = ShapeStyle::from(color.mix(0.7));
    match f {
        OpF::Append => Circle::new(at, 3, style.filled()).into_dyn(),
        OpF::Read => TriangleMarker::new(at, 4, style.filled()).into_dyn(),
        OpF::Write => Cross::new(at, 4, style.stroke_width(2)).into_dyn(),
        OpF::Cas | OpF::Nemesis => Circle::new(at, 4, style.stroke_width(1)).into_dyn(),
    }
}

/// A legend entry: a name, its colour, and the operation whose marker it shows (`None`: a line).
type Entry = (String, RGBColor, Option<OpF>);

/// A tick label without float noise: 1000, 2.5, 0.001.
fn tick(v: &f64) -> String {
    format!("{}", (v * 1000.0).round() / 1000.0 + 0.0)
}

/// Draws one chart into `path`: `title`, axes of `x1` seconds by `y` (described by `y_desc`),
/// the nemesis periods shaded and labelled, then the data by `plot`, and `entries` in a legend
/// column right of the chart. No entries means no operations, which a note in the chart says.
fn draw_chart<YS, Y>(
    h: &History,
    path: &Path,
    (title, y_desc): (&str, &str),
    (x1, y): (f64, YS),
    entries: &[Entry],
    plot: impl FnOnce(&mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<RangedCoordf64, Y>>) -> DrawResult<()>,
) -> DrawResult<()>
where
    YS: AsRangedCoord<CoordDescType = Y, Value = f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, side) = root.margin(8, 0, 0, 0).titled(title, (FONT, 26))?.split_horizontally(WIDTH - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&left)
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x1, y)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()?;

    let (periods, y_range) = (nemesis_periods(h), chart.y_range());
    let fill = RGBColor(128, 128, 128).mix(0.18).filled();
    let shade = |(s, e, _): &(f64, f64, String)| Rectangle::new([(*s, y_range.start), (*e, y_range.end)], fill);
    chart.draw_series(periods.iter().map(shade))?;
    let font = TextStyle::from((FONT, 14).into_font()).color(&DARK_GREY);
    chart.draw_series(periods.iter().enumerate().map(|(i, (s, _, label))| {
        // Staggered in 3 rows, so that the labels of close periods do not overwrite each other.
        EmptyElement::at((*s, y_range.end)) + Text::new(label.clone(), (4, 4 + 16 * (i % 3) as i32), font.clone())
    }))?;

    plot(&mut chart)?;
    if entries.is_empty() {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let note = TextStyle::from((FONT, 22).into_font()).color(&DARK_GREY).pos(Pos::new(HPos::Center, VPos::Center));
        let at = (w as i32 / 2, h as i32 / 2);
        chart.plotting_area().strip_coord_spec().draw(&Text::new("no operations in this history", at, note))?;
    }
    let font = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, color, f)) in entries.iter().enumerate() {
        let y = 30 + 24 * i as i32;
        match f {
            Some(f) => side.draw(&marker(*f, (16, y), *color))?,
            None => side.draw(&PathElement::new(vec![(6, y), (26, y)], color.stroke_width(3)))?,
        }
        side.draw(&Text::new(name.as_str(), (34, y), font.clone()))?;
    }
    root.present()?;
    Ok(())
}

fn draw_latency(h: &History, path: &Path) -> DrawResult<()> {
    let ops = completions(h);
    let mut groups: Vec<(Entry, Vec<(f64, f64)>)> = Vec::new();
    for (outcome, name, color) in OUTCOMES {
        for f in [OpF::Append, OpF::Read, OpF::Write, OpF::Cas] {
            let of = |o: &&(f64, f64, OpType, OpF)| o.2 == outcome && o.3 == f;
            let points: Vec<(f64, f64)> = ops.iter().filter(of).map(|o| (o.0, o.1.max(MIN_LATENCY_MS))).collect();
            if !points.is_empty() {
                groups.push(((format!("{name} {f:?}").to_lowercase(), color, Some(f)), points));
            }
        }
    }
    let latencies = ops.iter().map(|o| o.1.max(MIN_LATENCY_MS));
    let (lo, hi) = latencies.fold((f64::INFINITY, 0.0_f64), |(lo, hi), l| (lo.min(l), hi.max(l)));
    let y = if ops.is_empty() { 0.1..1000.0 } else { (lo / 2.0).max(MIN_LATENCY_MS)..hi * 2.0 };
    let entries: Vec<Entry> = groups.iter().map(|g| g.0.clone()).collect();
    let axes = ((secs(end_ns(h)) * 1.02).max(1.0), y.log_scale());
    draw_chart(h, path, ("latency per operation", "latency (ms, log scale)"), axes, &entries, |chart| {
        for ((_, color, f), points) in groups {
            let f = f.unwrap_or(OpF::Append);
            chart.draw_series(points.into_iter().map(|p| marker(f, p, color)))?;
        }
        Ok(())
    })
}

fn draw_throughput(h: &History, path: &Path) -> DrawResult<()> {
    let ops = completions(h);
    let buckets = (secs(end_ns(h)).ceil() as usize).max(1);
    let mut counts = vec![vec![0u32; buckets]; OUTCOMES.len()];
    for &(t, _, kind, _) in &ops {
        let row = OUTCOMES.iter().position(|o| o.0 == kind).unwrap_or(2);
        counts[row][(t.floor() as usize).min(buckets - 1)] += 1;
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(0);
    let y = 0.0..(f64::from(max) * 1.15).max(1.0);
    let some = OUTCOMES.iter().filter(|_| !ops.is_empty());
    let entries: Vec<Entry> = some.map(|&(_, name, color)| (name.to_string(), color, None)).collect();
    draw_chart(h, path, ("throughput", "completions per second"), (buckets as f64, y), &entries, |chart| {
        for ((_, _, color), row) in OUTCOMES.iter().zip(&counts).filter(|_| !ops.is_empty()) {
            // A step per bucket: the count holds for the whole second it was counted in.
            let steps =
                row.iter().enumerate().flat_map(|(b, &c)| [(b as f64, f64::from(c)), ((b + 1) as f64, f64::from(c))]);
            chart.draw_series(LineSeries::new(steps, color.stroke_width(2)))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jepsen::history::Op;

    fn op(process: i64, kind: OpType, f: OpF, value: &str, ms: u64) -> Op {
        let value = serde_json::Value::from(value);
        Op { index: 0, process, kind, f, key: "k1".into(), value, time_ns: ms * 1_000_000, node: String::new() }
    }

    fn nemesis(h: &mut History, what: &str, ms: u64) {
        h.push(op(NEMESIS, OpType::Info, OpF::Nemesis, what, ms));
    }

    /// ~10 s of appends and reads, some failed or unknown, one never completed; a kill from 2 s
    /// to 4 s and a pause from 6 s to 7.5 s.
    fn synthetic() -> History {
        let mut ops = Vec::new();
        for i in 0..100u64 {
            let f = if i % 2 == 0 { OpF::Append } else { OpF::Read };
            let kind = match (i % 7, i % 11) {
                (0, _) => OpType::Fail,
                (_, 0) => OpType::Info,
                _ => OpType::Ok,
            };
            let (start, latency) = (i * 97, 1 + (i * 37) % 50 + if (20..40).contains(&i) { 300 } else { 0 });
            ops.push(op(i as i64, OpType::Invoke, f, "", start));
            if i != 99 {
                ops.push(op(i as i64, kind, f, "", start + latency));
            }
        }
        let faults = [("start kill n2,n4", 2000), ("stop kill n2,n4 (restarted)", 4000), ("start pause n3", 6000)];
        for (what, ms) in faults.into_iter().chain([("stop pause n3 (resumed)", 7500)]) {
            ops.push(op(NEMESIS, OpType::Info, OpF::Nemesis, what, ms));
        }
        ops.sort_by_key(|o| o.time_ns);
        History { ops: ops.into_iter().enumerate().map(|(i, o)| Op { index: i as u64, ..o }).collect() }
    }

    /// Asserts `bytes` is a 1200×600 PNG.
    fn assert_png(bytes: &[u8]) {
        assert!(bytes.len() > 24, "{} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
        let be = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        assert_eq!((be(16), be(20)), (WIDTH, HEIGHT));
    }

    /// Draws `h` both ways into a fresh directory; returns the two PNGs' bytes.
    fn draw_both(h: &History, name: &str) -> (Vec<u8>, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("traceo-plots-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (lat, thr) = (dir.join("latency.png"), dir.join("throughput.png"));
        latency_png(h, &lat).unwrap();
        throughput_png(h, &thr).unwrap();
        let out = (std::fs::read(&lat).unwrap(), std::fs::read(&thr).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
        assert_png(&out.0);
        assert_png(&out.1);
        out
    }

    #[test]
    fn nemesis_periods_pair_starts_with_stops() {
        let mut h = synthetic();
        let periods = vec![(2.0, 4.0, "kill n2,n4".to_string()), (6.0, 7.5, "pause n3".to_string())];
        assert_eq!(nemesis_periods(&h), periods);
        // A fault still on at the end lasts until the last timestamp; stops of other faults
        // (even with a common prefix) do not end it.
        nemesis(&mut h, "start kill n1", 9700);
        nemesis(&mut h, "stop kill n1,n5", 9800);
        h.push(op(500, OpType::Invoke, OpF::Read, "", 10_500));
        let mut more = periods.clone();
        more.push((9.7, 10.5, "kill n1".to_string()));
        assert_eq!(nemesis_periods(&h), more);
        assert_eq!(nemesis_periods(&History::default()), vec![]);
    }

    #[test]
    fn draws_latency_and_throughput() {
        let (lat, thr) = draw_both(&synthetic(), "full");
        // A blank 1200×600 canvas compresses to a few KB; axes, text and points add a lot.
        assert!(lat.len() > 20_000 && thr.len() > 20_000, "{} and {} bytes", lat.len(), thr.len());
    }

    #[test]
    fn empty_and_nemesis_only_histories_still_draw() {
        draw_both(&History::default(), "empty");
        let mut h = History::default();
        nemesis(&mut h, "start pause n3", 1000);
        nemesis(&mut h, "stop pause n3 (resumed)", 2500);
        nemesis(&mut h, "start kill n1", 3000);
        draw_both(&h, "nemesis-only");
    }

    #[test]
    fn unwritable_path_is_an_error() {
        let path = std::env::temp_dir().join("traceo-plots-missing-dir").join("x").join("latency.png");
        assert!(latency_png(&synthetic(), &path).is_err());
        assert!(throughput_png(&synthetic(), &path).is_err());
    }
}
