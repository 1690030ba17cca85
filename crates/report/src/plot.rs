//! The simple plots: named curves ([`line_plot`], drawn by [`crate::figure`]) and heatmaps of
//! fractions, written as SVG, PNG and PDF.

use std::path::Path;

use plotters::prelude::*;

use crate::ReportError;

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Writes `<stem>.svg`, `<stem>.png` and `<stem>.pdf`: the series as curves (markers joined in x
/// order; a plain line when a series has more than 40 points), in kiln's figure style
/// ([`crate::figure`]).
pub fn line_plot(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), ReportError> {
    use crate::figure::{self, Axis, Chart, Figure, Point, Style};
    let fig = Figure {
        title: title.into(),
        x: Axis::linear(x_label),
        y: Axis::linear(y_label),
        series: series
            .iter()
            .map(|s| {
                let style = if s.points.len() > 40 {
                    Style::Dense
                } else {
                    Style::Curve
                };
                figure::Series::new(
                    &s.name,
                    style,
                    s.points.iter().map(|&(x, y)| Point::new(x, y)).collect(),
                )
            })
            .collect(),
        references: Vec::new(),
        caption: None,
    };
    figure::write_chart(stem, &Chart::Xy(fig))
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    rows: &[(String, Vec<f64>)],
    col_labels: &[String],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (w, h) = root.dim_in_pixel();
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let nrows = rows.len().max(1);
    let ncols = col_labels.len().max(1);
    let left = 140i32;
    let top = 30i32;
    let cw = ((w as i32 - left - 20) / ncols as i32).max(8);
    let ch = ((h as i32 - top - 60) / nrows as i32).max(8);
    for (c, label) in col_labels.iter().enumerate() {
        root.draw(&Text::new(
            label.clone(),
            (left + c as i32 * cw + cw / 3, top - 18),
            ("sans-serif", 13),
        ))
        .map_err(|e| e.to_string())?;
    }
    for (r, (label, vals)) in rows.iter().enumerate() {
        let y = top + r as i32 * ch;
        root.draw(&Text::new(
            label.clone(),
            (8, y + ch / 3),
            ("sans-serif", 13),
        ))
        .map_err(|e| e.to_string())?;
        for (c, &v) in vals.iter().enumerate() {
            let x = left + c as i32 * cw;
            let v = v.clamp(0.0, 1.0);
            let color = RGBColor(
                (255.0 * (1.0 - v)) as u8,
                (255.0 * (1.0 - 0.6 * v)) as u8,
                255,
            );
            root.draw(&Rectangle::new(
                [(x, y), (x + cw - 2, y + ch - 2)],
                color.filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Text::new(
                format!("{:.0}%", 100.0 * v),
                (x + cw / 4, y + ch / 3),
                ("sans-serif", 12),
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

/// A heatmap of fractions in [0, 1] (e.g. kept heads/neurons per layer): one row per
/// `(label, values)`, one column per `col_labels` entry. Writes `<stem>.svg`, `.png` and `.pdf`.
pub fn heatmap(
    stem: &Path,
    title: &str,
    rows: &[(String, Vec<f64>)],
    col_labels: &[String],
) -> Result<(), ReportError> {
    crate::figure::font();
    let err = |p: &Path, msg: String| ReportError::Plot {
        path: p.display().to_string(),
        msg,
    };
    let height = 90 + 34 * rows.len() as u32;
    let svg_path = stem.with_extension("svg");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        draw_heatmap(root, title, rows, col_labels).map_err(|m| err(&svg_path, m))?;
    }
    kiln_core::atomic_write(&svg_path, svg.as_bytes())?;
    let pdf_path = stem.with_extension("pdf");
    let pdf = crate::figure::svg_to_pdf(&svg).map_err(|m| err(&pdf_path, m))?;
    kiln_core::atomic_write(&pdf_path, &pdf)?;
    let png_path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("{}.tmp.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, (900, height)).into_drawing_area();
        draw_heatmap(root, title, rows, col_labels).map_err(|m| err(&png_path, m))?;
    }
    std::fs::rename(&tmp, &png_path).map_err(|e| err(&png_path, e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("curve");
        let s = vec![
            Series {
                name: "train loss".into(),
                points: vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.3)],
            },
            Series {
                name: "flat".into(),
                points: vec![(0.0, 0.2), (2.0, 0.2)],
            },
        ];
        line_plot(&stem, "Loss", "step", "loss", &s).unwrap();
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("train loss"));
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(std::fs::read(stem.with_extension("pdf"))
            .unwrap()
            .starts_with(b"%PDF"));
    }
}
