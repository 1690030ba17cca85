//! Line plots with plotters, rendered to SVG and PNG. The font (DejaVu Sans, permissive licence,
//! `assets/`) is compiled in, so plotting works on machines without fontconfig.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::ReportError;

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |a: f64, b: f64| {
        if (b - a).abs() < 1e-12 {
            (a - 0.5, b + 0.5)
        } else {
            (a - 0.05 * (b - a), b + 0.05 * (b - a))
        }
    };
    let (x0, x1) = pad(x0, x1);
    let (y0, y1) = pad(y0, y1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Writes `<stem>.svg` and `<stem>.png` (800x500).
pub fn line_plot(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), ReportError> {
    register_font();
    let err = |p: &Path, msg: String| ReportError::Plot {
        path: p.display().to_string(),
        msg,
    };
    let svg_path = stem.with_extension("svg");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        draw(root, title, x_label, y_label, series).map_err(|m| err(&svg_path, m))?;
    }
    kiln_core::atomic_write(&svg_path, svg.as_bytes())?;

    let png_path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("{}.tmp.png", std::process::id()));
    if let Some(d) = tmp.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    {
        let root = BitMapBackend::new(&tmp, (800, 500)).into_drawing_area();
        draw(root, title, x_label, y_label, series).map_err(|m| err(&png_path, m))?;
    }
    std::fs::rename(&tmp, &png_path).map_err(|e| err(&png_path, e.to_string()))?;
    Ok(())
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
/// `(label, values)`, one column per `col_labels` entry. Writes `<stem>.svg` and `<stem>.png`.
pub fn heatmap(
    stem: &Path,
    title: &str,
    rows: &[(String, Vec<f64>)],
    col_labels: &[String],
) -> Result<(), ReportError> {
    register_font();
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
    }
}
