//! ROC curves drawn to a PNG, for detector evaluation reports.
//!
//! Pure Rust: plotters' bitmap backend with its `ab_glyph` text renderer, and DejaVu Sans embedded
//! in the binary by the `dejavu` crate, so no system fonts, fontconfig or freetype are needed.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

/// Image size in pixels.
pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 700;

/// The left end of the log FPR axis; smaller FPRs (0 included) are drawn at this edge.
const MIN_FPR: f64 = 1e-4;

/// The name the embedded font is registered under, and that every text style asks for.
const FONT: &str = "sans-serif";

/// Tableau's 10 categorical colours: distinct, and readable on white.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded DejaVu Sans with plotters (once per process).
fn register_fonts() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded DejaVu Sans font could not be loaded"))
    }
}

/// An FPR tick label as a percentage: 1e-4 → "0.01%", 0.1 → "10%".
fn percent_label(fpr: &f64) -> String {
    let pct = fpr * 100.0;
    if !(pct > 0.0 && pct.is_finite()) {
        return format!("{pct}%");
    }
    // Enough decimals for the first significant digit; the epsilon absorbs 0.1 vs 0.09999….
    let decimals = if pct >= 1.0 { 0 } else { (-pct.log10() - 1e-9).ceil() as usize };
    format!("{pct:.decimals$}%")
}

/// Draws ROC curves, each a `(name, points)` with points `(fpr, tpr)` in order (as from
/// `sim::roc::roc_curve`), into a `WIDTH`×`HEIGHT` PNG at `path`.
///
/// The FPR axis is logarithmic from 1e-4 to 1, where a security detector's operating points lie;
/// points below 1e-4 (FPR 0 included) are drawn at the left edge. The chance diagonal
/// (TPR = FPR) is drawn dashed, and a legend in rows under the chart names every curve.
/// Non-finite points are skipped. Errors if the file cannot be written.
pub fn write_roc_png(path: &Path, title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    register_fonts()?;
    draw(path, title, curves).map_err(|e| anyhow!("{e}")).with_context(|| format!("drawing {}", path.display()))
}

/// One legend entry: a line sample and a name.
struct LegendEntry<'a> {
    name: &'a str,
    style: ShapeStyle,
    dashed: bool,
}

/// Legend layout, in pixels.
const LEGEND_FONT_SIZE: u32 = 17;
const LEGEND_ROW: i32 = 26;
const LEGEND_SAMPLE: i32 = 30;
const LEGEND_GAP: i32 = 8;
const LEGEND_SPACING: i32 = 32;
/// Left and right ends of the legend rows: under the plotting area (margin + y label area).
const LEGEND_LEFT: i32 = 90;
const LEGEND_RIGHT: i32 = WIDTH as i32 - 40;

fn draw(path: &Path, title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;

    let chance_style = ShapeStyle::from(BLACK.mix(0.6)).stroke_width(1);
    let mut legend = vec![LegendEntry { name: "chance", style: chance_style, dashed: true }];
    legend.extend(curves.iter().enumerate().map(|(i, (name, _))| LegendEntry {
        name,
        style: COLORS[i % COLORS.len()].stroke_width(2),
        dashed: false,
    }));

    // The legend goes in rows under the chart rather than inside it, so it never hides a curve.
    let legend_font =
        TextStyle::from((FONT, LEGEND_FONT_SIZE).into_font()).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    let mut positions = Vec::with_capacity(legend.len());
    let (mut x, mut row) = (LEGEND_LEFT, 0);
    for entry in &legend {
        let (text_width, _) = root.estimate_text_size(entry.name, &legend_font)?;
        let width = LEGEND_SAMPLE + LEGEND_GAP + i32::try_from(text_width).unwrap_or(i32::MAX / 2);
        if x > LEGEND_LEFT && x + width > LEGEND_RIGHT {
            (x, row) = (LEGEND_LEFT, row + 1);
        }
        positions.push((x, row * LEGEND_ROW));
        x += width + LEGEND_SPACING;
    }
    // At most half the image; rows past that are cut off.
    let legend_height = ((row + 1) * LEGEND_ROW + 14).min(HEIGHT as i32 / 2);
    let (upper, lower) = root.split_vertically(HEIGHT as i32 - legend_height);

    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FONT, 28))
        .margin(20)
        .margin_right(40)
        .margin_bottom(4)
        .x_label_area_size(60)
        .y_label_area_size(70)
        // Starting a hair below MIN_FPR makes its tick ("0.01%") certain despite rounding in
        // plotters' log arithmetic.
        .build_cartesian_2d((MIN_FPR * (1.0 - 1e-9)..1.0).log_scale(), 0.0..1.0)?;

    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(11)
        .x_label_formatter(&percent_label)
        .y_label_formatter(&|tpr| format!("{tpr:.1}"))
        .x_desc("False positive rate (log scale)")
        .y_desc("True positive rate")
        .label_style((FONT, 17))
        .axis_desc_style((FONT, 19))
        .light_line_style(BLACK.mix(0.06))
        .bold_line_style(BLACK.mix(0.2))
        .draw()?;

    // TPR = FPR, sampled densely enough to look smooth on the log axis.
    let chance = (0..=200).map(|k| {
        let fpr = MIN_FPR.powf(1.0 - f64::from(k) / 200.0);
        (fpr, fpr)
    });
    chart.draw_series(DashedLineSeries::new(chance, 6, 5, chance_style))?;

    for (entry, (_, points)) in legend[1..].iter().zip(curves) {
        let points = points
            .iter()
            .filter(|(fpr, tpr)| fpr.is_finite() && tpr.is_finite())
            .map(|&(fpr, tpr)| (fpr.clamp(MIN_FPR, 1.0), tpr.clamp(0.0, 1.0)));
        chart.draw_series(LineSeries::new(points, entry.style))?;
    }

    for (entry, &(x, y)) in legend.iter().zip(&positions) {
        let mid = y + LEGEND_ROW / 2;
        let sample = if entry.dashed { vec![(0, 8), (14, 22), (28, 30)] } else { vec![(0, LEGEND_SAMPLE)] };
        for (from, to) in sample {
            let style = if entry.dashed { entry.style } else { entry.style.stroke_width(3) };
            lower.draw(&PathElement::new(vec![(x + from, mid), (x + to, mid)], style))?;
        }
        lower.draw(&Text::new(entry.name, (x + LEGEND_SAMPLE + LEGEND_GAP, mid), &legend_font))?;
    }

    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width and height from a PNG's signature and IHDR chunk.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert!(bytes.len() > 24, "{} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
        let be = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        (be(16), be(20))
    }

    /// A detector whose malicious scores sit `shift` above benign ones, from a fixed LCG.
    fn synthetic_curve(shift: f64, seed: u64) -> Vec<(f64, f64)> {
        let mut state = seed;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let labels: Vec<bool> = (0..40_000).map(|i| i % 8 == 0).collect();
        // Sum of 4 uniforms: roughly normal, so the curve has a realistic shape.
        let scores: Vec<f64> =
            labels.iter().map(|&l| (0..4).map(|_| uniform()).sum::<f64>() + if l { shift } else { 0.0 }).collect();
        sim::roc::roc_curve(&scores, &labels)
    }

    #[test]
    fn writes_png_of_the_right_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let curves = vec![
            ("rules (AUC 0.71)".to_string(), synthetic_curve(0.4, 1)),
            ("gradient boosting (AUC 0.93)".to_string(), synthetic_curve(1.2, 2)),
            ("autoencoder (AUC 0.98)".to_string(), synthetic_curve(1.9, 3)),
        ];
        write_roc_png(&path, "Detector ROC, held-out week", &curves).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
        // A blank 1000×700 canvas compresses to a few KB; text and curves make it much larger.
        assert!(bytes.len() > 20_000, "suspiciously small PNG: {} bytes", bytes.len());
    }

    #[test]
    fn degenerate_curves_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let curves = vec![
            (String::new(), vec![]),
            ("nan and out of range".to_string(), vec![(f64::NAN, 0.5), (0.0, 0.0), (2.0, -1.0), (1.0, 1.0)]),
        ];
        write_roc_png(&path, "", &curves).unwrap();
        assert_eq!(png_size(&std::fs::read(&path).unwrap()), (WIDTH, HEIGHT));
        // No curves at all: just the axes and the chance diagonal.
        write_roc_png(&path, "no curves", &[]).unwrap();
        assert_eq!(png_size(&std::fs::read(&path).unwrap()), (WIDTH, HEIGHT));
    }

    #[test]
    fn percent_labels() {
        let labels: Vec<String> = [1e-4, 1e-3, 1e-2, 0.1, 1.0].iter().map(percent_label).collect();
        assert_eq!(labels, ["0.01%", "0.1%", "1%", "10%", "100%"]);
        assert_eq!(percent_label(&0.0005), "0.05%");
        assert_eq!(percent_label(&0.0), "0%");
    }

    #[test]
    fn unwritable_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("roc.png");
        assert!(write_roc_png(&path, "t", &[]).is_err());
    }
}
