//! Figures a researcher can put in a paper, built once for every experiment: scatter plots with
//! their Pareto front, curves, grouped bars; mean ± sd error bars or bands from seeds; log axes
//! with SI tick labels; the Okabe-Ito colour-blind-safe palette with a distinct marker per series;
//! the legend beside the plot, never over the data; the paper's numbers as distinct reference
//! marks (open stars, or dashed lines for a single value); image-like maps side by side, each
//! with its colour bar (viridis) and marker overlays. Each figure is written as SVG, PNG and
//! PDF (the PDF is the SVG converted with svg2pdf, so the two are the same drawing).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ReportError;

/// Okabe & Ito (2008), the palette of colour-blind-safe figures: black last, yellow (weak on
/// white) late.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

/// A marker shape per series index, so series differ without colour too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
    InvertedTriangle,
    Plus,
    Pentagon,
}

const MARKERS: [Marker; 8] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::InvertedTriangle,
    Marker::Cross,
    Marker::Plus,
    Marker::Pentagon,
];

/// One axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub label: String,
    /// Logarithmic (base 10) scale; every value must be positive.
    pub log: bool,
    /// Fixed range; `None`: the data's, padded.
    pub range: Option<(f64, f64)>,
}

impl Axis {
    pub fn linear(label: &str) -> Self {
        Self {
            label: label.into(),
            log: false,
            range: None,
        }
    }
    pub fn log(label: &str) -> Self {
        Self {
            label: label.into(),
            log: true,
            range: None,
        }
    }
    pub fn with_range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
}

/// A point with the spread of `y` over seeds (sample sd), when there were several.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub sd: Option<f64>,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y, sd: None }
    }
    /// Mean ± sd of per-seed values at `x` (no spread for a single value).
    pub fn seeds(x: f64, ys: &[f64]) -> Self {
        let n = ys.len().max(1) as f64;
        let m = ys.iter().sum::<f64>() / n;
        let sd = (ys.len() > 1)
            .then(|| (ys.iter().map(|y| (y - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self { x, y: m, sd }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Markers only (the points are separate configurations, not a function of x); spreads as
    /// error bars.
    Scatter,
    /// Markers joined in x order (a quantity that varies with x); spreads as error bars.
    Curve,
    /// A line without markers (dense curves: training steps); spreads as a shaded band.
    Dense,
}

/// Which corner is better, for the Pareto front of a scatter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Better {
    /// Low x and high y (e.g. FLOPs vs accuracy).
    LowXHighY,
    /// Low x and low y (e.g. FLOPs vs loss).
    LowXLowY,
}

/// One named series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub style: Style,
    pub points: Vec<Point>,
    /// Draw the series' Pareto front (a step line through the non-dominated points).
    pub pareto: Option<Better>,
}

impl Series {
    pub fn new(name: &str, style: Style, points: Vec<Point>) -> Self {
        Self {
            name: name.into(),
            style,
            points,
            pareto: None,
        }
    }
    pub fn with_pareto(mut self, better: Better) -> Self {
        self.pareto = Some(better);
        self
    }
}

/// A number from the paper: an open star at `(x, y)`, or a dashed horizontal line at `y` when
/// it has no x.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub name: String,
    pub x: Option<f64>,
    pub y: f64,
}

/// An x-y figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub references: Vec<Reference>,
    /// A line under the plot (what the error bars are, what data).
    pub caption: Option<String>,
}

/// Grouped bars: one group per category, one bar per series, with ± sd whiskers.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    pub title: String,
    pub y: Axis,
    pub groups: Vec<String>,
    /// `(series name, per group: mean and spread, or None for no bar)`.
    pub series: Vec<(String, Vec<Option<Point>>)>,
    pub references: Vec<Reference>,
    pub caption: Option<String>,
}

/// A figure of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Xy(Figure),
    Bars(Bars),
    Maps(Maps),
}

/// Image-like data side by side (e.g. a radar frame's range-azimuth map, its ConfMap, the ground
/// truth and the detections): 1 to 4 panels, each with its own colour bar, and one legend beside
/// them for the marker series of all panels.
#[derive(Debug, Clone, PartialEq)]
pub struct Maps {
    pub title: String,
    pub panels: Vec<MapPanel>,
    pub caption: Option<String>,
}

/// One map: `rows × cols` values, row-major.
///
/// The axes are uniform: cell `(i, j)` is the rectangle spanning the `j`-th of `cols` equal parts
/// of `x`'s range and the `i`-th of `rows` equal parts of `y`'s range, row 0 at the bottom (the
/// low end of `y`, as for range from the sensor). A non-uniform grid (e.g. bins of `sin θ`) is to
/// be labelled in bins, or resampled by the caller. A range of `None` labels the axis in bins
/// (`0..cols`, `0..rows`); log axes are refused.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPanel {
    pub title: String,
    pub rows: usize,
    pub cols: usize,
    /// NaN is drawn as a neutral grey (no data); ±∞ take the ends of the scale.
    pub values: Vec<f64>,
    pub x: Axis,
    pub y: Axis,
    pub scale: ColorScale,
    pub colorbar_label: Option<String>,
    /// Overlays in data coordinates; those outside the axes' ranges are not drawn.
    pub markers: Vec<MapMarker>,
}

impl MapPanel {
    /// A panel labelled in bins, on the default scale, without markers.
    pub fn new(title: &str, rows: usize, cols: usize, values: Vec<f64>) -> Self {
        Self {
            title: title.into(),
            rows,
            cols,
            values,
            x: Axis::linear("column"),
            y: Axis::linear("row"),
            scale: ColorScale::default(),
            colorbar_label: None,
            markers: Vec::new(),
        }
    }
}

/// A point drawn over a map. Its look (palette colour and marker shape) belongs to its series,
/// numbered in order of first appearance over all panels, so that a series looks the same in
/// every panel and the legend names it once.
#[derive(Debug, Clone, PartialEq)]
pub struct MapMarker {
    pub x: f64,
    pub y: f64,
    pub series: String,
}

impl MapMarker {
    pub fn new(series: &str, x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            series: series.into(),
        }
    }
}

/// A sequential colour map.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ColorMap {
    /// Perceptually uniform, legible to the colour-blind and in greyscale (its luminance rises
    /// monotonically from dark purple to yellow).
    #[default]
    Viridis,
}

/// Viridis at ten evenly spaced points (van der Walt & Smith; the values of R's `viridis(10)`),
/// interpolated linearly in between: within a few units of the full 256-entry table.
const VIRIDIS: [RGBColor; 10] = [
    RGBColor(0x44, 0x01, 0x54),
    RGBColor(0x48, 0x28, 0x78),
    RGBColor(0x3e, 0x4a, 0x89),
    RGBColor(0x31, 0x68, 0x8e),
    RGBColor(0x26, 0x82, 0x8e),
    RGBColor(0x1f, 0x9e, 0x89),
    RGBColor(0x35, 0xb7, 0x79),
    RGBColor(0x6d, 0xcd, 0x59),
    RGBColor(0xb4, 0xde, 0x2c),
    RGBColor(0xfd, 0xe7, 0x25),
];

/// Cells without data: a grey with no hue, so it reads as none of viridis' values.
pub const NO_DATA: RGBColor = RGBColor(189, 189, 189);

/// How values become colours.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColorScale {
    pub map: ColorMap,
    /// Values at the two ends (values beyond them take the end colours); `None`: the panel's
    /// finite minimum and maximum.
    pub range: Option<(f64, f64)>,
}

impl ColorScale {
    pub fn with_range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    /// The colour at fraction `t` of the scale (clamped to [0, 1]; NaN gives [`NO_DATA`]).
    pub fn at(&self, t: f64) -> RGBColor {
        if t.is_nan() {
            return NO_DATA;
        }
        let table: &[RGBColor] = match self.map {
            ColorMap::Viridis => &VIRIDIS,
        };
        let f = t.clamp(0.0, 1.0) * (table.len() - 1) as f64;
        let k = (f.floor() as usize).min(table.len() - 2);
        let w = f - k as f64;
        let (a, b) = (table[k], table[k + 1]);
        let mix = |x: u8, y: u8| (x as f64 + w * (y as f64 - x as f64)).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

const W: u32 = 960;
const H: u32 = 540;
const LEGEND_W: u32 = 230;
const FONT: &str = "sans-serif";

/// `1.5k`, `30k`, `2M`, `0.001`: tick labels without trailing `.0` or scientific notation.
pub fn si(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    let (div, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / div;
    // Enough decimals for the value (ticks are round), trailing zeros trimmed.
    let mut s = format!("{x:.4}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".into();
    }
    s + suffix
}

/// Ticks of a log axis over `[lo, hi]`: 1, 2 and 5 × 10^k, or every integer multiple when that
/// gives fewer than three.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let pick = |ms: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        for e in a..=b {
            for m in ms {
                let v = m * 10f64.powi(e);
                if v >= lo && v <= hi {
                    out.push(v);
                }
            }
        }
        out
    };
    let t = pick(&[1.0, 2.0, 5.0]);
    if t.len() >= 3 {
        t
    } else {
        pick(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// Whether a log axis over [lo, hi] labels every tick: when it spans too little for three of
/// 1, 2 and 5 × 10^k, its ticks are the denser 1-9 × 10^k and each needs its label.
fn labels_every_log_tick(lo: f64, hi: f64) -> bool {
    log_ticks(lo, hi).iter().any(|&v| {
        let m = v / 10f64.powf(v.log10().floor());
        ![1.0, 2.0, 5.0].iter().any(|k| (m - k).abs() < 1e-6 * k)
    })
}

/// A tick label: on a log axis only at 1, 2 and 5 × 10^k (the other grid lines stay unlabelled)
/// unless `log` is false, which [`labels_every_log_tick`] asks for on a short log axis.
fn tick(v: f64, log: bool) -> String {
    if log && v > 0.0 {
        let m = v / 10f64.powf(v.log10().floor());
        if ![1.0, 2.0, 5.0].iter().any(|k| (m - k).abs() < 1e-6 * k) {
            return String::new();
        }
    }
    si(v)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The data range of an axis, padded (in log space for a log axis).
fn span(vals: impl Iterator<Item = f64>, axis: &Axis) -> Result<(f64, f64), String> {
    if let Some(r) = axis.range {
        return Ok(r);
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        if axis.log && v <= 0.0 {
            return Err(format!(
                "`{}` is a log axis but has the value {v}",
                axis.label
            ));
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return Ok(if axis.log { (1.0, 10.0) } else { (0.0, 1.0) });
    }
    if axis.log {
        let (l, h) = (lo.log10(), hi.log10());
        let pad = if h - l < 1e-9 { 0.3 } else { 0.06 * (h - l) };
        Ok((10f64.powf(l - pad), 10f64.powf(h + pad)))
    } else {
        let pad = if hi - lo < 1e-12 {
            0.5 * lo.abs().max(1.0)
        } else {
            0.06 * (hi - lo)
        };
        Ok((lo - pad, hi + pad))
    }
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    m: Marker,
    c: RGBColor,
    size: i32,
    filled: bool,
) -> Result<(), String> {
    let (x, y) = at;
    let style = if filled {
        c.filled()
    } else {
        c.stroke_width(2)
    };
    let poly = |pts: Vec<(i32, i32)>| -> Result<(), String> {
        if filled {
            area.draw(&Polygon::new(pts, style)).map_err(err)
        } else {
            let mut closed = pts.clone();
            closed.push(pts[0]);
            area.draw(&PathElement::new(closed, style)).map_err(err)
        }
    };
    let s = size;
    match m {
        Marker::Circle => area.draw(&Circle::new(at, s, style)).map_err(err),
        Marker::Square => poly(vec![
            (x - s, y - s),
            (x + s, y - s),
            (x + s, y + s),
            (x - s, y + s),
        ]),
        Marker::Triangle => poly(vec![(x, y - s - 1), (x + s + 1, y + s), (x - s - 1, y + s)]),
        Marker::InvertedTriangle => {
            poly(vec![(x, y + s + 1), (x + s + 1, y - s), (x - s - 1, y - s)])
        }
        Marker::Diamond => poly(vec![
            (x, y - s - 2),
            (x + s + 1, y),
            (x, y + s + 2),
            (x - s - 1, y),
        ]),
        Marker::Pentagon => {
            let r = s as f64 + 1.0;
            poly(
                (0..5)
                    .map(|k| {
                        let a = -std::f64::consts::FRAC_PI_2
                            + k as f64 * 2.0 * std::f64::consts::PI / 5.0;
                        (
                            x + (r * a.cos()).round() as i32,
                            y + (r * a.sin()).round() as i32,
                        )
                    })
                    .collect(),
            )
        }
        Marker::Cross => {
            let st = c.stroke_width(3);
            area.draw(&PathElement::new(vec![(x - s, y - s), (x + s, y + s)], st))
                .map_err(err)?;
            area.draw(&PathElement::new(vec![(x - s, y + s), (x + s, y - s)], st))
                .map_err(err)
        }
        Marker::Plus => {
            let st = c.stroke_width(3);
            area.draw(&PathElement::new(vec![(x - s - 1, y), (x + s + 1, y)], st))
                .map_err(err)?;
            area.draw(&PathElement::new(vec![(x, y - s - 1), (x, y + s + 1)], st))
                .map_err(err)
        }
    }
}

/// An open five-pointed star: the paper's numbers.
fn draw_star<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    size: f64,
) -> Result<(), String> {
    let pts: Vec<(i32, i32)> = (0..=10)
        .map(|k| {
            let r = if k % 2 == 0 { size } else { size * 0.45 };
            let a = -std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::PI / 5.0;
            (
                at.0 + (r * a.cos()).round() as i32,
                at.1 + (r * a.sin()).round() as i32,
            )
        })
        .collect();
    area.draw(&Polygon::new(pts.clone(), WHITE.filled()))
        .map_err(err)?;
    area.draw(&PathElement::new(pts, BLACK.stroke_width(2)))
        .map_err(err)
}

/// One legend entry: what it looks like and its name.
enum Key {
    Series(usize, Style),
    Star,
    Dashed,
    Front(usize),
    Bar(usize),
    /// A map overlay of series `i`, with the halo it has over the map.
    OnMap(usize),
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Key, String)],
) -> Result<(), String> {
    let mut y = 40;
    for (key, name) in entries {
        let (x0, x1, yc) = (8, 40, y);
        match key {
            Key::Series(i, style) => {
                let c = PALETTE[i % PALETTE.len()];
                if *style != Style::Scatter {
                    area.draw(&PathElement::new(
                        vec![(x0, yc), (x1, yc)],
                        c.stroke_width(2),
                    ))
                    .map_err(err)?;
                }
                if *style != Style::Dense {
                    draw_marker(
                        area,
                        ((x0 + x1) / 2, yc),
                        MARKERS[i % MARKERS.len()],
                        c,
                        5,
                        true,
                    )?;
                }
            }
            Key::Front(i) => {
                let c = PALETTE[i % PALETTE.len()];
                area.draw(&PathElement::new(
                    vec![
                        (x0, yc + 5),
                        ((x0 + x1) / 2, yc + 5),
                        ((x0 + x1) / 2, yc - 5),
                        (x1, yc - 5),
                    ],
                    c.mix(0.6).stroke_width(1),
                ))
                .map_err(err)?;
            }
            Key::Star => draw_star(area, ((x0 + x1) / 2, yc), 8.0)?,
            Key::Dashed => {
                for k in 0..4 {
                    let a = x0 + k * 9;
                    area.draw(&PathElement::new(
                        vec![(a, yc), (a + 5, yc)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(err)?;
                }
            }
            Key::Bar(i) => {
                let c = PALETTE[i % PALETTE.len()];
                area.draw(&Rectangle::new(
                    [(x0 + 6, yc - 7), (x1 - 6, yc + 7)],
                    c.filled(),
                ))
                .map_err(err)?;
            }
            Key::OnMap(i) => draw_map_marker(area, ((x0 + x1) / 2, yc), *i)?,
        }
        // Long names wrap at about 24 characters.
        let mut line = String::new();
        let mut lines = Vec::new();
        for w in name.split_whitespace() {
            if !line.is_empty() && line.len() + w.len() > 24 {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
        lines.push(line);
        for (k, l) in lines.iter().enumerate() {
            area.draw(&Text::new(
                l.clone(),
                (x1 + 8, yc - 8 + 17 * k as i32),
                (FONT, 15).into_font().color(&BLACK),
            ))
            .map_err(err)?;
        }
        y += 12 + 17 * lines.len() as i32 + 6;
    }
    Ok(())
}

/// The non-dominated points of `pts`, in x order.
pub fn pareto_front(pts: &[Point], better: Better) -> Vec<Point> {
    let mut sorted: Vec<Point> = pts
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut front: Vec<Point> = Vec::new();
    for p in sorted {
        let dominated = front.last().is_some_and(|q| match better {
            Better::LowXHighY => q.y >= p.y,
            Better::LowXLowY => q.y <= p.y,
        });
        if !dominated {
            front.push(p);
        }
    }
    front
}

fn draw_xy<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, f: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(W - LEGEND_W);
    let xs = f
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .chain(f.references.iter().filter_map(|r| r.x));
    let ys = f
        .series
        .iter()
        .flat_map(|s| {
            s.points.iter().flat_map(|p| {
                let sd = p.sd.unwrap_or(0.0);
                [p.y - sd, p.y + sd]
            })
        })
        .chain(f.references.iter().map(|r| r.y));
    let (x0, x1) = span(xs, &f.x)?;
    let (y0, y1) = span(ys, &f.y)?;
    let lx = || (x0..x1).log_scale().with_key_points(log_ticks(x0, x1));
    let ly = || (y0..y1).log_scale().with_key_points(log_ticks(y0, y1));
    let sparse = (
        f.x.log && !labels_every_log_tick(x0, x1),
        f.y.log && !labels_every_log_tick(y0, y1),
    );
    match (f.x.log, f.y.log) {
        (false, false) => xy_in(&plot, f, x0..x1, y0..y1, sparse)?,
        (true, false) => xy_in(&plot, f, lx(), y0..y1, sparse)?,
        (false, true) => xy_in(&plot, f, x0..x1, ly(), sparse)?,
        (true, true) => xy_in(&plot, f, lx(), ly(), sparse)?,
    }
    let mut entries = Vec::new();
    for (i, s) in f.series.iter().enumerate() {
        entries.push((Key::Series(i, s.style), s.name.clone()));
        if s.pareto.is_some() {
            entries.push((Key::Front(i), format!("{}: Pareto front", s.name)));
        }
    }
    for r in &f.references {
        entries.push((
            if r.x.is_some() {
                Key::Star
            } else {
                Key::Dashed
            },
            r.name.clone(),
        ));
    }
    draw_legend(&legend, &entries)?;
    root.present().map_err(err)
}

fn xy_in<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    f: &Figure,
    x: X,
    y: Y,
    sparse: (bool, bool),
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let caption_h = if f.caption.is_some() { 24 } else { 0 };
    let (top, bottom) = area.split_vertically(H - caption_h);
    // Which axes label only 1, 2 and 5 × 10^k.
    let (log_x, log_y) = sparse;
    let mut chart = ChartBuilder::on(&top)
        .caption(&f.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&f.x.label)
        .y_desc(&f.y.label)
        .x_label_formatter(&|v| tick(*v, log_x))
        .y_label_formatter(&|v| tick(*v, log_y))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0, 0, 0).mix(0.08))
        .draw()
        .map_err(err)?;
    let xr = chart.x_range();
    let plotting = chart.plotting_area();
    for r in &f.references {
        if r.x.is_none() {
            // A dashed horizontal line across the plot, dashed in pixels (even on a log axis).
            let a = plotting.map_coordinate(&(xr.start, r.y));
            let b = plotting.map_coordinate(&(xr.end, r.y));
            let mut x = a.0;
            while x < b.0 {
                let e = (x + 8).min(b.0);
                area.draw(&PathElement::new(
                    vec![(x, a.1), (e, a.1)],
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?;
                x += 14;
            }
        }
    }
    for (i, s) in f.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let m = MARKERS[i % MARKERS.len()];
        let mut pts: Vec<Point> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .collect();
        if s.style != Style::Scatter {
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
        if s.style == Style::Dense && pts.iter().any(|p| p.sd.is_some()) {
            let mut band: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (p.x, p.y + p.sd.unwrap_or(0.0)))
                .collect();
            band.extend(pts.iter().rev().map(|p| (p.x, p.y - p.sd.unwrap_or(0.0))));
            plotting
                .draw(&Polygon::new(band, c.mix(0.2).filled()))
                .map_err(err)?;
        }
        if s.style != Style::Scatter {
            plotting
                .draw(&PathElement::new(
                    pts.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>(),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
        }
        if let Some(b) = s.pareto {
            let front = pareto_front(&pts, b);
            let mut steps = Vec::new();
            for (k, p) in front.iter().enumerate() {
                if k > 0 {
                    steps.push((p.x, front[k - 1].y));
                }
                steps.push((p.x, p.y));
            }
            plotting
                .draw(&PathElement::new(steps, c.mix(0.6).stroke_width(1)))
                .map_err(err)?;
        }
        if s.style != Style::Dense {
            for p in &pts {
                if let Some(sd) = p.sd.filter(|sd| *sd > 0.0) {
                    let (lo, hi) = (p.y - sd, p.y + sd);
                    let a = plotting.map_coordinate(&(p.x, lo));
                    let b = plotting.map_coordinate(&(p.x, hi));
                    let st = c.stroke_width(2);
                    area.draw(&PathElement::new(vec![a, b], st)).map_err(err)?;
                    area.draw(&PathElement::new(vec![(a.0 - 4, a.1), (a.0 + 4, a.1)], st))
                        .map_err(err)?;
                    area.draw(&PathElement::new(vec![(b.0 - 4, b.1), (b.0 + 4, b.1)], st))
                        .map_err(err)?;
                }
                let at = plotting.map_coordinate(&(p.x, p.y));
                draw_marker(area, at, m, c, 5, true)?;
            }
        }
    }
    for r in &f.references {
        if let Some(x) = r.x {
            let at = plotting.map_coordinate(&(x, r.y));
            draw_star(area, at, 10.0)?;
        }
    }
    if let Some(c) = &f.caption {
        bottom
            .draw(&Text::new(
                c.clone(),
                (16, 2),
                (FONT, 14).into_font().color(&RGBColor(60, 60, 60)),
            ))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, b: &Bars) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let (plot, legend) = root.split_horizontally(W - LEGEND_W);
    let caption_h = if b.caption.is_some() { 24 } else { 0 };
    let (top, bottom) = plot.split_vertically(H - caption_h);
    let ys = b
        .series
        .iter()
        .flat_map(|(_, v)| {
            v.iter().flatten().flat_map(|p| {
                let sd = p.sd.unwrap_or(0.0);
                [p.y - sd, p.y + sd]
            })
        })
        .chain(b.references.iter().map(|r| r.y))
        .chain(std::iter::once(0.0));
    let (mut y0, y1) = span(ys, &b.y)?;
    if b.y.range.is_none()
        && y0 < 0.0
        && b.series
            .iter()
            .all(|(_, v)| v.iter().flatten().all(|p| p.y >= 0.0))
    {
        y0 = 0.0;
    }
    let ng = b.groups.len().max(1);
    let mut chart = ChartBuilder::on(&top)
        .caption(&b.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..ng as f64, y0..y1)
        .map_err(err)?;
    let groups = b.groups.clone();
    chart
        .configure_mesh()
        .y_desc(&b.y.label)
        .x_labels(ng * 2 + 1)
        .x_label_formatter(&|v| {
            let k = v - v.floor();
            if (k - 0.5).abs() < 1e-6 {
                groups.get(v.floor() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| si(*v))
        .disable_x_mesh()
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0, 0, 0).mix(0.08))
        .draw()
        .map_err(err)?;
    let ns = b.series.len().max(1);
    let width = 0.8 / ns as f64;
    for (si_, (_, vals)) in b.series.iter().enumerate() {
        let c = PALETTE[si_ % PALETTE.len()];
        for (g, p) in vals.iter().enumerate() {
            let Some(p) = p else { continue };
            let x0 = g as f64 + 0.1 + si_ as f64 * width;
            let base = y0.max(0.0).min(y1);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, base), (x0 + width * 0.92, p.y)],
                    c.filled(),
                )))
                .map_err(err)?;
            if let Some(sd) = p.sd.filter(|s| *s > 0.0) {
                let xm = x0 + width * 0.46;
                let st = BLACK.stroke_width(2);
                chart
                    .draw_series([
                        PathElement::new(vec![(xm, p.y - sd), (xm, p.y + sd)], st),
                        PathElement::new(
                            vec![(xm - width * 0.15, p.y - sd), (xm + width * 0.15, p.y - sd)],
                            st,
                        ),
                        PathElement::new(
                            vec![(xm - width * 0.15, p.y + sd), (xm + width * 0.15, p.y + sd)],
                            st,
                        ),
                    ])
                    .map_err(err)?;
            }
        }
    }
    for r in &b.references {
        match r.x {
            None => {
                chart
                    .draw_series((0..ng * 20).step_by(2).map(|k| {
                        let a = k as f64 / 20.0;
                        PathElement::new(vec![(a, r.y), (a + 0.05, r.y)], BLACK.stroke_width(2))
                    }))
                    .map_err(err)?;
            }
            Some(g) => {
                let at = chart.plotting_area().map_coordinate(&(g + 0.5, r.y));
                draw_star(&top, at, 10.0)?;
            }
        }
    }
    if let Some(c) = &b.caption {
        bottom
            .draw(&Text::new(
                c.clone(),
                (16, 2),
                (FONT, 14).into_font().color(&RGBColor(60, 60, 60)),
            ))
            .map_err(err)?;
    }
    let mut entries: Vec<(Key, String)> = b
        .series
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (Key::Bar(i), n.clone()))
        .collect();
    for r in &b.references {
        entries.push((
            if r.x.is_some() {
                Key::Star
            } else {
                Key::Dashed
            },
            r.name.clone(),
        ));
    }
    draw_legend(&legend, &entries)?;
    root.present().map_err(err)
}

const MAP_W: u32 = 460;
const MAP_H: u32 = 400;
const MAP_TITLE_H: u32 = 40;
/// Right of each map: gap, colour bar, its tick labels and label.
const COLORBAR_GAP: i32 = 14;
const COLORBAR_W: i32 = 16;
const COLORBAR_LABELS: i32 = 76;

/// The shapes of map overlays, in series order: a cross second, as a second series (detections)
/// often lands on the first (ground truth), and a cross leaves a circle under it visible.
const MAP_MARKERS: [Marker; 8] = [
    Marker::Circle,
    Marker::Cross,
    Marker::Triangle,
    Marker::Square,
    Marker::Plus,
    Marker::Diamond,
    Marker::InvertedTriangle,
    Marker::Pentagon,
];

/// A map marker of series `i`: its palette colour inside a white then a black ring, so that it
/// stands out on the dark and the light end of the colour map alike.
fn draw_map_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    i: usize,
) -> Result<(), String> {
    let (m, c) = (
        MAP_MARKERS[i % MAP_MARKERS.len()],
        PALETTE[i % PALETTE.len()],
    );
    let (x, y) = at;
    if matches!(m, Marker::Cross | Marker::Plus) {
        // Strokes: the rings are wider strokes under the coloured one, a pixel longer each.
        for (s, st) in [
            (7, BLACK.stroke_width(7)),
            (6, WHITE.stroke_width(5)),
            (5, c.stroke_width(3)),
        ] {
            let arms = if m == Marker::Cross {
                [
                    [(x - s, y - s), (x + s, y + s)],
                    [(x - s, y + s), (x + s, y - s)],
                ]
            } else {
                [
                    [(x - s - 1, y), (x + s + 1, y)],
                    [(x, y - s - 1), (x, y + s + 1)],
                ]
            };
            for a in arms {
                area.draw(&PathElement::new(a.to_vec(), st)).map_err(err)?;
            }
        }
        return Ok(());
    }
    for (r, ring) in [(2, BLACK), (1, WHITE)] {
        for (dx, dy) in [
            (-1, -1),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            draw_marker(area, (x + r * dx, y + r * dy), m, ring, 5, true)?;
        }
    }
    draw_marker(area, at, m, c, 5, true)
}

/// What a map panel spans: its x, y and value ranges.
struct MapGeom {
    x: (f64, f64),
    y: (f64, f64),
    v: (f64, f64),
}

/// Checks every panel before anything is drawn, so that a bad panel is an error naming it
/// rather than a panic or a half-drawn figure.
fn map_geometry(m: &Maps) -> Result<Vec<MapGeom>, String> {
    if m.panels.is_empty() || m.panels.len() > 4 {
        return Err(format!(
            "maps `{}`: {} panels, expected 1 to 4 side by side",
            m.title,
            m.panels.len()
        ));
    }
    m.panels
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let name = format!("map panel {} `{}`", k + 1, p.title);
            if p.rows == 0 || p.cols == 0 {
                return Err(format!("{name}: {} × {} cells", p.rows, p.cols));
            }
            if p.rows.checked_mul(p.cols) != Some(p.values.len()) {
                return Err(format!(
                    "{name}: {} values for {} × {} cells",
                    p.values.len(),
                    p.rows,
                    p.cols
                ));
            }
            let range = |a: &Axis, n: usize| -> Result<(f64, f64), String> {
                if a.log {
                    return Err(format!("{name}: `{}` is a log axis", a.label));
                }
                match a.range {
                    None => Ok((0.0, n as f64)),
                    Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok((lo, hi)),
                    Some((lo, hi)) => Err(format!(
                        "{name}: `{}` has the range {lo}..{hi}, expected finite and increasing",
                        a.label
                    )),
                }
            };
            let v = match p.scale.range {
                Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
                Some((lo, hi)) => {
                    return Err(format!(
                        "{name}: colour range {lo}..{hi}, expected finite and increasing"
                    ))
                }
                None => {
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for &v in p.values.iter().filter(|v| v.is_finite()) {
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                    if lo > hi {
                        (0.0, 1.0)
                    } else if lo == hi {
                        (lo - 0.5, hi + 0.5)
                    } else {
                        (lo, hi)
                    }
                }
            };
            Ok(MapGeom {
                x: range(&p.x, p.cols)?,
                y: range(&p.y, p.rows)?,
                v,
            })
        })
        .collect()
}

/// The marker series of all panels, in order of first appearance.
fn map_series(m: &Maps) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for mk in m.panels.iter().flat_map(|p| &p.markers) {
        if !names.contains(&mk.series.as_str()) {
            names.push(&mk.series);
        }
    }
    names
}

fn draw_maps<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, m: &Maps) -> Result<(), String> {
    let geom = map_geometry(m)?;
    let series = map_series(m);
    root.fill(&WHITE).map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    let (plot, legend) = if series.is_empty() {
        (root.clone(), None)
    } else {
        let (p, l) = root.split_horizontally(w - LEGEND_W);
        (p, Some(l))
    };
    let caption_h = if m.caption.is_some() { 24 } else { 0 };
    let (top, bottom) = plot.split_vertically(h - caption_h);
    let title_h = if m.title.is_empty() { 0 } else { MAP_TITLE_H };
    let (head, body) = top.split_vertically(title_h);
    if title_h > 0 {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let style = (FONT, 22)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let hw = head.dim_in_pixel().0 as i32;
        head.draw(&Text::new(m.title.clone(), (hw / 2, 10), style))
            .map_err(err)?;
    }
    let areas = body.split_evenly((1, m.panels.len()));
    for ((p, g), area) in m.panels.iter().zip(&geom).zip(&areas) {
        draw_map_panel(&root, area, p, g, &series)?;
    }
    if let Some(c) = &m.caption {
        bottom
            .draw(&Text::new(
                c.clone(),
                (16, 2),
                (FONT, 14).into_font().color(&RGBColor(60, 60, 60)),
            ))
            .map_err(err)?;
    }
    if let Some(l) = legend {
        let entries: Vec<(Key, String)> = series
            .iter()
            .enumerate()
            .map(|(i, n)| (Key::OnMap(i), n.to_string()))
            .collect();
        draw_legend(&l, &entries)?;
    }
    root.present().map_err(err)
}

/// One panel in `area`; `root` (origin at the canvas' corner) takes the drawing in pixels, where
/// cells are snapped to whole pixels so that neighbours meet without seams.
fn draw_map_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    p: &MapPanel,
    g: &MapGeom,
    series: &[&str],
) -> Result<(), String> {
    let ((x0, x1), (y0, y1), (v0, v1)) = (g.x, g.y, g.v);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18))
        .margin(10)
        .margin_right(COLORBAR_GAP + COLORBAR_W + COLORBAR_LABELS)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&p.x.label)
        .y_desc(&p.y.label)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&|v| si(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(err)?;
    let plotting = chart.plotting_area();
    // Cell edges in pixels; row edges run bottom-up (row 0 at y0).
    let bx: Vec<i32> = (0..=p.cols)
        .map(|j| {
            plotting
                .map_coordinate(&(x0 + (x1 - x0) * j as f64 / p.cols as f64, y0))
                .0
        })
        .collect();
    let by: Vec<i32> = (0..=p.rows)
        .map(|i| {
            plotting
                .map_coordinate(&(x0, y0 + (y1 - y0) * i as f64 / p.rows as f64))
                .1
        })
        .collect();
    let scale = |v: f64| p.scale.at((v - v0) / (v1 - v0));
    // Top row first, left to right: each run of equal colour reaches one pixel into its right
    // and lower neighbours, which are drawn later and cover it, so that no background shows
    // between cells in any renderer. Cells thinner than a pixel are skipped (one cell per pixel).
    for i in (0..p.rows).rev() {
        let (top, bot) = (by[i + 1], by[i] + i32::from(i > 0));
        if by[i + 1] == by[i] {
            continue;
        }
        let row = &p.values[i * p.cols..(i + 1) * p.cols];
        let mut j = 0;
        while j < p.cols {
            let c = scale(row[j]);
            let mut e = j + 1;
            while e < p.cols && scale(row[e]) == c {
                e += 1;
            }
            if bx[e] > bx[j] {
                let right = bx[e] + i32::from(e < p.cols);
                root.draw(&Rectangle::new([(bx[j], top), (right, bot)], c.filled()))
                    .map_err(err)?;
            }
            j = e;
        }
    }
    let (ul, br) = (
        plotting.map_coordinate(&(x0, y1)),
        plotting.map_coordinate(&(x1, y0)),
    );
    root.draw(&Rectangle::new([ul, br], BLACK.stroke_width(1)))
        .map_err(err)?;
    for mk in &p.markers {
        let inside = mk.x >= x0 && mk.x <= x1 && mk.y >= y0 && mk.y <= y1;
        if let (true, Some(i)) = (inside, series.iter().position(|s| *s == mk.series)) {
            draw_map_marker(root, plotting.map_coordinate(&(mk.x, mk.y)), i)?;
        }
    }
    // The colour bar: as tall as the map, its own axis on the right.
    let bar = root.clone().shrink(
        (br.0 + COLORBAR_GAP, ul.1),
        ((COLORBAR_W + COLORBAR_LABELS) as u32, (br.1 - ul.1) as u32),
    );
    let mut cb = ChartBuilder::on(&bar)
        .set_label_area_size(LabelAreaPosition::Right, COLORBAR_LABELS)
        .build_cartesian_2d(0.0..1.0, v0..v1)
        .map_err(err)?;
    // The gradient first, so the tick labels are drawn over it, never under it.
    let strip = cb.plotting_area();
    let ((sx0, sy0), (sx1, sy1)) = (
        strip.map_coordinate(&(0.0, v1)),
        strip.map_coordinate(&(1.0, v0)),
    );
    for y in sy0..=sy1 {
        let t = (sy1 - y) as f64 / (sy1 - sy0).max(1) as f64;
        root.draw(&Rectangle::new(
            [(sx0, y), (sx1, y + 1)],
            p.scale.at(t).filled(),
        ))
        .map_err(err)?;
    }
    root.draw(&Rectangle::new(
        [(sx0, sy0), (sx1, sy1)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    // The tick labels plotters picks, kept to place the bar's label just beyond the widest.
    let ticks = std::cell::RefCell::new(Vec::new());
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .set_tick_mark_size(LabelAreaPosition::Right, 5)
        .y_labels(6)
        .y_label_formatter(&|v| {
            let t = si(*v);
            ticks.borrow_mut().push(t.clone());
            t
        })
        .label_style((FONT, 15))
        .draw()
        .map_err(err)?;
    if let Some(l) = &p.colorbar_label {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let tick_font = TextStyle::from((FONT, 15).into_font());
        let widest = ticks
            .borrow()
            .iter()
            .filter_map(|t| root.estimate_text_size(t, &tick_font).ok())
            .map(|(w, _)| w as i32)
            .max()
            .unwrap_or(0);
        // Reading upwards, as the y axis' label does.
        let style = (FONT, 17)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            l.clone(),
            (sx1 + 22 + widest, (sy0 + sy1) / 2),
            style,
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn draw_chart<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> Result<(), String> {
    match c {
        Chart::Xy(f) => draw_xy(root, f),
        Chart::Bars(b) => draw_bars(root, b),
        Chart::Maps(m) => draw_maps(root, m),
    }
}

/// The canvas in pixels: maps grow with their panels (each keeps a square-ish plot and room for
/// its colour bar), the other kinds are one size.
fn canvas(c: &Chart) -> (u32, u32) {
    match c {
        Chart::Maps(m) => {
            let legend = if map_series(m).is_empty() {
                0
            } else {
                LEGEND_W
            };
            let title = if m.title.is_empty() { 0 } else { MAP_TITLE_H };
            let caption = if m.caption.is_some() { 24 } else { 0 };
            (
                MAP_W * m.panels.len().clamp(1, 4) as u32 + legend,
                MAP_H + title + caption,
            )
        }
        Chart::Xy(_) | Chart::Bars(_) => (W, H),
    }
}

/// The chart as an SVG document.
pub fn to_svg(c: &Chart) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, canvas(c)).into_drawing_area();
        draw_chart(root, c)?;
    }
    Ok(svg)
}

/// Draws the chart into a PNG file at `path` (960×540, or wider for maps with several panels).
pub fn write_png(c: &Chart, path: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(path, canvas(c)).into_drawing_area();
    draw_chart(root, c)
}

static FONT_ONCE: std::sync::Once = std::sync::Once::new();

/// DejaVu Sans (permissive licence, `assets/`), compiled in so that plotting needs no system
/// fonts; registered with plotters once per process.
pub(crate) fn font() -> &'static [u8] {
    let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
    FONT_ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
    bytes
}

/// The SVG as a one-page PDF, its text in the embedded DejaVu Sans (svg2pdf: the PDF is the same
/// drawing as the SVG, vector throughout).
pub fn svg_to_pdf(svg: &str) -> Result<Vec<u8>, String> {
    use svg2pdf::usvg;
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(font().to_vec());
    db.set_sans_serif_family("DejaVu Sans");
    let opts = usvg::Options {
        fontdb: std::sync::Arc::new(db),
        font_family: "DejaVu Sans".into(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opts).map_err(err)?;
    svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| format!("{e:?}"))
}

/// Writes `<stem>.svg`, `<stem>.png` and `<stem>.pdf`, each atomically.
pub fn write_chart(stem: &Path, c: &Chart) -> Result<(), ReportError> {
    font();
    let fail = |ext: &str, msg: String| ReportError::Plot {
        path: stem.with_extension(ext).display().to_string(),
        msg,
    };
    let svg = to_svg(c).map_err(|m| fail("svg", m))?;
    let pdf = svg_to_pdf(&svg).map_err(|m| fail("pdf", m))?;
    kiln_core::atomic_write(&stem.with_extension("svg"), svg.as_bytes())?;
    kiln_core::atomic_write(&stem.with_extension("pdf"), &pdf)?;
    let png = stem.with_extension("png");
    let tmp = stem.with_extension(format!("{}.tmp.png", std::process::id()));
    if let Some(d) = tmp.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    write_png(c, &tmp).map_err(|m| fail("png", m))?;
    std::fs::rename(&tmp, &png).map_err(|e| fail("png", e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_tick_labels() {
        assert_eq!(si(30000.0), "30k");
        assert_eq!(si(1500.0), "1500");
        assert_eq!(si(2.5e6), "2.5M");
        assert_eq!(si(0.001), "0.001");
        assert_eq!(si(0.5), "0.5");
        assert_eq!(si(-20000.0), "-20k");
        assert_eq!(tick(300.0, true), "");
        assert_eq!(tick(200.0, true), "200");
        assert_eq!(
            log_ticks(15.0, 1200.0),
            [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert!(!labels_every_log_tick(15.0, 1200.0));
        // Less than a decade: 40k..90k gets 40k, 50k, …, 90k, each labelled (not only 50k).
        assert_eq!(log_ticks(38e3, 95e3).len(), 6);
        assert!(labels_every_log_tick(38e3, 95e3));
    }

    #[test]
    fn pareto_front_keeps_the_non_dominated_points() {
        let pts = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.45), (4.0, 0.3), (0.5, 0.6)]
            .map(|(x, y)| Point::new(x, y));
        let f: Vec<(f64, f64)> = pareto_front(&pts, Better::LowXLowY)
            .iter()
            .map(|p| (p.x, p.y))
            .collect();
        assert_eq!(f, [(0.5, 0.6), (1.0, 0.5), (2.0, 0.4), (4.0, 0.3)]);
        let g: Vec<f64> = pareto_front(&pts, Better::LowXHighY)
            .iter()
            .map(|p| p.x)
            .collect();
        assert_eq!(g, [0.5]);
    }

    #[test]
    fn seeds_give_mean_and_sample_sd() {
        let p = Point::seeds(1.0, &[1.0, 2.0, 3.0]);
        assert_eq!((p.y, p.sd), (2.0, Some(1.0)));
        assert_eq!(Point::seeds(1.0, &[4.0]).sd, None);
    }

    #[test]
    fn every_kind_writes_svg_png_and_pdf() {
        let dir = tempfile::tempdir().unwrap();
        let xy = Chart::Xy(Figure {
            title: "loss vs FLOPs".into(),
            x: Axis::log("FLOPs"),
            y: Axis::linear("loss"),
            series: vec![Series::new(
                "search",
                Style::Scatter,
                vec![
                    Point::seeds(2e4, &[0.5, 0.52]),
                    Point::seeds(3e5, &[0.45, 0.44]),
                ],
            )
            .with_pareto(Better::LowXLowY)],
            references: vec![Reference {
                name: "paper".into(),
                x: None,
                y: 0.44,
            }],
            caption: Some("mean ± sd over 2 seeds".into()),
        });
        let bars = Chart::Bars(Bars {
            title: "accuracy".into(),
            y: Axis::linear("accuracy (%)"),
            groups: vec!["a".into(), "b".into()],
            series: vec![(
                "kiln".into(),
                vec![Some(Point::seeds(0.0, &[60.0, 62.0])), None],
            )],
            references: vec![Reference {
                name: "paper".into(),
                x: Some(0.0),
                y: 68.4,
            }],
            caption: None,
        });
        for (name, c) in [("xy", &xy), ("bars", &bars)] {
            let stem = dir.path().join(name);
            write_chart(&stem, c).unwrap();
            let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
            assert!(svg.contains("<svg") && svg.contains("paper"), "{name}");
            let png = std::fs::read(stem.with_extension("png")).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            let pdf = std::fs::read(stem.with_extension("pdf")).unwrap();
            assert!(pdf.starts_with(b"%PDF") && pdf.windows(8).any(|w| w == b"FontFile"));
        }
        // A log axis refuses a non-positive value with a message naming the axis.
        let mut bad = xy.clone();
        if let Chart::Xy(f) = &mut bad {
            f.series[0].points[0].x = 0.0;
        }
        let e = write_chart(&dir.path().join("bad"), &bad).unwrap_err();
        assert!(e.to_string().contains("`FLOPs` is a log axis"), "{e}");
    }

    /// Two panels as in the radar figure: a smooth confidence map with ground truth and
    /// detections, and a noisy frame with a no-data stripe.
    fn radar_like() -> Chart {
        let n = 64;
        let blobs = [(20.0, 40.0, 4.0), (44.0, 18.0, 6.0)];
        let conf: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = ((k / n) as f64, (k % n) as f64);
                blobs
                    .iter()
                    .map(|(bi, bj, s)| {
                        (-((i - bi).powi(2) + (j - bj).powi(2)) / (2.0 * s * s)).exp()
                    })
                    .fold(0.0, f64::max)
            })
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let frame: Vec<f64> = conf
            .iter()
            .enumerate()
            .map(|(k, c)| {
                if (k % n) == 50 {
                    return f64::NAN;
                }
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                -30.0 + 25.0 * c + 8.0 * (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        // Cell (i, j) centre in metres and degrees.
        let at = |i: f64, j: f64| (-60.0 + 120.0 * (j + 0.5) / 64.0, 25.0 * (i + 0.5) / 64.0);
        let gt: Vec<MapMarker> = blobs
            .iter()
            .map(|(i, j, _)| {
                let (x, y) = at(*i, *j);
                MapMarker::new("ground truth", x, y)
            })
            .collect();
        let det: Vec<MapMarker> = [(21.0, 41.0), (43.0, 17.0), (55.0, 5.0)]
            .iter()
            .map(|(i, j)| {
                let (x, y) = at(*i, *j);
                MapMarker::new("detections", x, y)
            })
            .collect();
        let axes = |mut p: MapPanel| {
            p.x = Axis::linear("azimuth (°)").with_range(-60.0, 60.0);
            p.y = Axis::linear("range (m)").with_range(0.0, 25.0);
            p
        };
        let mut a = axes(MapPanel::new("ConfMap", n, n, conf));
        a.scale = ColorScale::default().with_range(0.0, 1.0);
        a.colorbar_label = Some("confidence".into());
        a.markers = gt.iter().chain(&det).cloned().collect();
        let mut b = axes(MapPanel::new("radar frame", n, n, frame));
        b.colorbar_label = Some("power (dB)".into());
        b.markers = det;
        Chart::Maps(Maps {
            title: "a radar frame with its ConfMap, ground truth and detections".into(),
            panels: vec![a, b],
            caption: Some("64 × 64 range-azimuth bins; grey: no data".into()),
        })
    }

    #[test]
    fn maps_write_svg_png_and_pdf() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("maps");
        let maps = radar_like();
        write_chart(&stem, &maps).unwrap();
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("ground truth") && svg.contains("ConfMap"));
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // IHDR: width and height, big-endian, right after the signature and chunk header.
        let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
        assert_eq!(
            (be(&png[16..20]), be(&png[20..24])),
            (2 * MAP_W + LEGEND_W, MAP_H + MAP_TITLE_H + 24)
        );
        assert_eq!(canvas(&maps), (be(&png[16..20]), be(&png[20..24])));
        let pdf = std::fs::read(stem.with_extension("pdf")).unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        // One bare panel: no title, legend or caption; finer than its pixels; no finite value.
        let mut bare = MapPanel::new("", 3, 1000, vec![f64::NAN; 3000]);
        bare.values[5] = f64::INFINITY;
        let bare = Chart::Maps(Maps {
            title: String::new(),
            panels: vec![bare],
            caption: None,
        });
        write_chart(&dir.path().join("bare"), &bare).unwrap();
        assert_eq!(canvas(&bare), (MAP_W, MAP_H));
        // Set to a file stem to keep the example for a look (e.g. /tmp/maps-example).
        if let Some(out) = std::env::var_os("KILN_MAPS_EXAMPLE") {
            write_chart(Path::new(&out), &maps).unwrap();
        }
    }

    #[test]
    fn bad_maps_are_errors_naming_the_panel() {
        let dir = tempfile::tempdir().unwrap();
        let fail = |c: &Chart| {
            write_chart(&dir.path().join("bad"), c)
                .unwrap_err()
                .to_string()
        };
        let Chart::Maps(good) = radar_like() else {
            unreachable!()
        };
        let mut m = good.clone();
        m.panels[1].values.pop();
        let e = fail(&Chart::Maps(m));
        assert!(
            e.contains("map panel 2 `radar frame`") && e.contains("4095 values"),
            "{e}"
        );
        let mut m = good.clone();
        m.panels[0].x.range = Some((f64::NAN, 1.0));
        let e = fail(&Chart::Maps(m));
        assert!(
            e.contains("map panel 1 `ConfMap`") && e.contains("azimuth"),
            "{e}"
        );
        let mut m = good.clone();
        m.panels[0].scale.range = Some((1.0, f64::INFINITY));
        assert!(fail(&Chart::Maps(m)).contains("map panel 1 `ConfMap`: colour range"));
        let mut m = good.clone();
        m.panels[1].rows = usize::MAX;
        assert!(fail(&Chart::Maps(m)).contains("map panel 2"));
        let mut m = good;
        m.panels.clear();
        assert!(fail(&Chart::Maps(m)).contains("0 panels"));
    }

    #[test]
    fn viridis_runs_dark_to_light() {
        let s = ColorScale::default();
        assert_eq!(s.at(0.0), RGBColor(0x44, 0x01, 0x54));
        assert_eq!(s.at(1.0), RGBColor(0xfd, 0xe7, 0x25));
        assert_eq!((s.at(-3.0), s.at(7.0)), (s.at(0.0), s.at(1.0)));
        assert_eq!(s.at(f64::NAN), NO_DATA);
        // Relative luminance (sRGB, WCAG): rising, so the map reads the same in greyscale.
        let lum = |c: RGBColor| {
            let lin = |u: u8| {
                let v = u as f64 / 255.0;
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
        };
        let l: Vec<f64> = (0..=100).map(|k| lum(s.at(k as f64 / 100.0))).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
    }
}
