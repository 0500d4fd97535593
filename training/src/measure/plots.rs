//! PNG line charts of training curves, ROC curves and calibration, drawn with plotters. The
//! labels use a subset of DejaVu Sans compiled into the binary (assets/), so the plots look the
//! same on any machine and need no system fonts.

use crate::measure::metrics::CalibrationBin;
use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::ops::Range;
use std::path::Path;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

/// One line of a chart.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// An axis: its label and range.
pub struct Axis<'a> {
    pub label: &'a str,
    pub range: Range<f64>,
}

/// The range of `values` with 5% of room on each side (a unit range around a constant).
pub fn padded(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    lo - pad..hi + pad
}

/// The unlabelled value axis of `lines`: their points' range, stretched to take in `include`.
pub fn value_axis(lines: &[Line], include: &[f64]) -> Axis<'static> {
    Axis {
        label: "",
        range: padded(
            lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .chain(include.iter().copied()),
        ),
    }
}

/// Draws `lines` into a 720×480 PNG at `path` (written to a temporary file, then renamed);
/// `diagonal` adds the y = x reference of ROC and calibration plots.
pub fn line_chart(
    path: &Path,
    title: &str,
    x: Axis,
    y: Axis,
    lines: &[Line],
    diagonal: bool,
) -> Result<()> {
    static FONTS: std::sync::Once = std::sync::Once::new();
    FONTS.call_once(|| {
        // a font that does not parse leaves the labels empty, not the plot undrawn
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let tmp = path.with_extension("tmp.png");
    draw(&tmp, title, x, y, lines, diagonal)
        .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// ROC curves on the unit square, with the diagonal of chance.
pub fn roc_chart(path: &Path, title: &str, lines: &[Line]) -> Result<()> {
    let unit = |label| Axis {
        label,
        range: 0.0..1.0,
    };
    line_chart(
        path,
        title,
        unit("false positive rate"),
        unit("true positive rate"),
        lines,
        true,
    )
}

/// Calibration bins (mean predicted against observed), with the diagonal of perfect calibration;
/// both axes end a little above the largest value.
pub fn calibration_chart(
    path: &Path,
    title: &str,
    bins: &[CalibrationBin],
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    let points: Vec<(f64, f64)> = bins
        .iter()
        .map(|b| (b.mean_predicted, b.observed))
        .collect();
    let top = points
        .iter()
        .flat_map(|&(x, y)| [x, y])
        .fold(0.0f64, f64::max) // nan-ok: an axis's extent
        .mul_add(1.1, 0.01)
        .min(1.0);
    let axis = |label| Axis {
        label,
        range: 0.0..top,
    };
    let name = format!("{} equal-count bins of the predictions", bins.len());
    line_chart(
        path,
        title,
        axis(x_label),
        axis(y_label),
        &[Line::new(name, points)],
        true,
    )
}

fn draw(
    path: &Path,
    title: &str,
    x: Axis,
    y: Axis,
    lines: &[Line],
    diagonal: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x_range, y_range) = (x.range.clone(), y.range.clone());
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x.range, y.range)?;
    chart
        .configure_mesh()
        .x_desc(x.label)
        .y_desc(y.label)
        .label_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if diagonal {
        let lo = x_range.start.max(y_range.start);
        let hi = x_range.end.min(y_range.end);
        chart.draw_series(LineSeries::new(
            [(lo, lo), (hi, hi)],
            BLACK.mix(0.35).stroke_width(1),
        ))?;
    }
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    if lines.len() > 1 || lines.first().is_some_and(|l| !l.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_with_drawn_labels() {
        let dir = std::env::temp_dir().join(format!("bedside-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roc.png");
        let lines = [Line::new(
            "model (AUROC 0.84)",
            vec![(0.0, 0.0), (0.1, 0.6), (1.0, 1.0)],
        )];
        let axis = |label| Axis {
            label,
            range: 0.0..1.0,
        };
        line_chart(
            &path,
            "ROC",
            axis("false positive rate"),
            axis("true positive rate"),
            &lines,
            true,
        )
        .unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // with the font, the labels put dark pixels into the margins; decoded with the same crate
        let image = image::load_from_memory(&png).unwrap().to_luma8();
        let dark_in_caption = (0..720)
            .flat_map(|x| (0..30).map(move |y| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y)[0] < 100)
            .count();
        assert!(
            dark_in_caption > 20,
            "no caption drawn ({dark_in_caption} dark pixels)"
        );
        assert!(!dir.join("roc.tmp.png").exists());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn padded_ranges() {
        let r = padded([0.0, 10.0]);
        assert!((r.start + 0.5).abs() < 1e-12 && (r.end - 10.5).abs() < 1e-12);
        assert_eq!(padded([3.0]), 2.5..3.5);
        assert_eq!(padded([f64::NAN]), 0.0..1.0);
    }
}
