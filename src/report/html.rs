//! `report.html`: one self-contained page per run (no network, no external
//! file): the headline table, the plots inline as SVG, the customer table,
//! and the scenario with its seed. Every plot is also written as
//! `plots/<name>.svg` and `plots/<name>.png`. Everything is drawn from the
//! run's own outputs (`summary.json`, `grid.csv`, `flisr.csv`,
//! `customers.csv`, `market.csv`, `blocks.csv`, `profile.csv`,
//! `lmu_voltages.csv`, `breakers.csv`, `interruptions.csv`,
//! `mesh_nodes.csv`, `mesh_links.csv`, `latencies.csv`), so the page shows
//! exactly what the files hold.
//!
//! # Fonts
//! Text is laid out (SVG) and rasterised (PNG) with one TrueType font:
//! DejaVu Sans 2.37, built into the binary (the `dejavu` crate), so plots
//! are the same bytes on every machine and need no system font. Setting
//! `GRIDTWIN_FONT` to a `.ttf` file uses that instead; if it cannot be
//! read, [`report`] fails with [`ReportError::Font`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::RunFiles;
use crate::metrics::{TimeSeries, Value};

/// One plot of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// Its name: the files are `plots/<name>.svg` and `plots/<name>.png`.
    pub name: String,
    /// The SVG document.
    pub svg: String,
    /// The same plot as a PNG image (8-bit RGB).
    pub png: Vec<u8>,
    /// Width and height of both [px].
    pub size: (u32, u32),
}

/// Why the report could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// No usable font for the plots' text.
    #[error("no font for the report's plots: {0}")]
    Font(String),
}

/// Registers `bytes` (a TrueType or OpenType font, named `what` in
/// errors) for every family the plots name.
fn register(what: &str, bytes: &'static [u8]) -> Result<(), String> {
    for family in ["sans-serif", "serif", "monospace"] {
        plotters::style::register_font(family, FontStyle::Normal, bytes)
            .map_err(|_| format!("{what} is not a TrueType or OpenType font"))?;
    }
    Ok(())
}

/// Reads the font file at `path` and registers it.
fn install_font(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "GRIDTWIN_FONT names {}, which cannot be read ({e}); unset it to use the built-in \
             DejaVu Sans",
            path.display()
        )
    })?;
    register(
        &path.display().to_string(),
        Box::leak(bytes.into_boxed_slice()),
    )
}

/// Registers the plots' font with plotters once (the file `GRIDTWIN_FONT`
/// names, else the built-in DejaVu Sans); the same outcome on every later
/// call. Every chart with text needs it, SVG included (text is laid out
/// with it).
pub fn font() -> Result<(), ReportError> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| match std::env::var_os("GRIDTWIN_FONT") {
        Some(p) => install_font(Path::new(&p)),
        None => register("the built-in DejaVu Sans", dejavu::sans::regular()),
    })
    .clone()
    .map_err(ReportError::Font)
}

/// Draws one figure twice, as SVG and as an RGB bitmap encoded to PNG,
/// and pushes it onto `$plots` if both drew; `$body` draws on `$area`
/// (a `DrawingArea` of either backend) and yields an `Option<()>`.
macro_rules! figure {
    ($plots:expr, $name:expr, $size:expr, |$area:ident| $body:expr) => {{
        let size: (u32, u32) = $size;
        let drawn = (|| -> Option<Plot> {
            let mut svg = String::new();
            {
                let $area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                $area.fill(&WHITE).ok()?;
                $body?;
                $area.present().ok()?;
            }
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let $area = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                $area.fill(&WHITE).ok()?;
                $body?;
                $area.present().ok()?;
            }
            Some(Plot {
                name: $name.to_string(),
                svg,
                png: encode_png(&rgb, size)?,
                size,
            })
        })();
        if let Some(p) = drawn {
            $plots.push(p);
        }
    }};
}

/// An RGB bitmap as a PNG file.
fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, w, h);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let mut w = e.write_header().ok()?;
        w.write_image_data(rgb).ok()?;
        w.finish().ok()?;
    }
    Some(out)
}

/// The files the plots are drawn from (besides `grid.csv`).
const PLOT_FILES: [&str; 10] = [
    "profile.csv",
    "lmu_voltages.csv",
    "flisr.csv",
    "breakers.csv",
    "interruptions.csv",
    "mesh_nodes.csv",
    "latencies.csv",
    "market.csv",
    "blocks.csv",
    "customers.csv",
];

/// The report and its plots: (`report.html`, plots). Fails without a font
/// when there is something to plot.
pub fn report(f: &RunFiles<'_>) -> Result<(String, Vec<Plot>), ReportError> {
    // A run with nothing to plot needs no font.
    if f.series.iter().any(|s| s.name() == "grid")
        || PLOT_FILES.iter().any(|n| file(f, n).is_some())
    {
        font()?;
    }
    let mut plots: Vec<Plot> = Vec::new();
    let faults = fault_times_h(file(f, "flisr.csv"));
    let end_h = match f.summary.get("sim.end_s") {
        Some(Value::F64(Some(s))) => s / 3600.0,
        _ => 0.0,
    };
    if let Some(g) = f.series.iter().find(|s| s.name() == "grid") {
        figure!(plots, "voltage_envelope", SIZE, |a| voltage_envelope(
            &a, g, &faults
        ));
        figure!(plots, "customers_off", SIZE, |a| customers_off(
            &a, g, &faults
        ));
    }
    if let Some(t) = table(file(f, "profile.csv")) {
        figure!(plots, "voltage_profile", (800, 640), |a| voltage_profile(
            &a, &t
        ));
    }
    if let Some(t) = table(file(f, "lmu_voltages.csv")) {
        let lmus = lmu_panels(&t).len().clamp(1, MAX_LMU_PANELS) as u32;
        figure!(plots, "lmu_voltages", (800, 40 + 240 * lmus), |a| {
            lmu_voltages(&a, &t, &faults)
        });
    }
    {
        let flisr = table(file(f, "flisr.csv"));
        let breakers = table(file(f, "breakers.csv"));
        let ints = table(file(f, "interruptions.csv"));
        let rows =
            flisr.as_ref().map_or(0, |t| t.rows.len()) + breaker_ids(breakers.as_ref()).len();
        let h = TIMELINE_BOTTOM_PX + 110 + 50 * (rows.clamp(1, 20) as u32 + LEGEND_ROWS);
        figure!(plots, "interruption_timeline", (800, h), |a| {
            interruption_timeline(&a, flisr.as_ref(), breakers.as_ref(), ints.as_ref(), end_h)
        });
    }
    if let (Some(n), Some(l)) = (
        table(file(f, "mesh_nodes.csv")),
        table(file(f, "mesh_links.csv")),
    ) {
        figure!(plots, "mesh_map", (800, 680), |a| mesh_map(&a, &n, &l));
    }
    if let Some(t) = table(file(f, "latencies.csv")) {
        figure!(plots, "latency_cdf", SIZE, |a| latency_cdf(&a, &t));
    }
    if let Some(b) = file(f, "market.csv") {
        figure!(plots, "market_prices", SIZE, |a| market_prices(&a, b));
    }
    if let Some(b) = file(f, "blocks.csv") {
        figure!(plots, "finality_histogram", SIZE, |a| finality_histogram(
            &a, b
        ));
    }
    if let Some(b) = file(f, "customers.csv") {
        figure!(plots, "origin_shares", SIZE, |a| origin_shares(&a, b));
    }
    let mut h = String::new();
    let seed = f.summary.get("sim.seed").map_or(String::new(), show);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>gridtwin run report</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}\n\
         table {{ border-collapse: collapse; }}\n\
         td, th {{ border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }}\n\
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         pre {{ background: #f4f4f4; padding: 1em; overflow-x: auto; }}\n\
         </style>\n</head>\n<body>\n<h1>gridtwin run report</h1>\n<p>Seed {seed}. \
         SAIFI, SAIDI and CAIDI count sustained interruptions (longer than 3 minutes, \
         IEEE 1366 / EN 50160); shorter ones count in MAIFI.</p>\n"
    );
    if f.summary.get("sim.partial") == Some(&Value::Bool(true)) {
        let get = |k: &str| f.summary.get(k).map_or_else(|| "?".to_string(), show);
        let _ = writeln!(
            h,
            "<p style=\"background: #fde8e8; border: 2px solid #b00; padding: 0.6em;\">\
             <strong>Partial results.</strong> The run failed at t = {} s of {} s: {}. \
             Everything below covers the run up to then.</p>",
            escape(&get("sim.end_s")),
            escape(&get("sim.duration_s")),
            escape(&get("sim.failure"))
        );
    }
    h.push_str("<h2>Headline metrics</h2>\n<table>\n<tr><th>metric</th><th>value</th></tr>\n");
    for (k, v) in f.summary.iter() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(k),
            escape(&show(v))
        );
    }
    h.push_str("</table>\n");
    if !plots.is_empty() {
        h.push_str("<h2>Plots</h2>\n");
        for p in &plots {
            let _ = writeln!(h, "<figure id=\"plot-{}\">", escape(&p.name));
            h.push_str(strip_xml_header(&p.svg));
            h.push_str("\n</figure>\n");
        }
    }
    if let Some(c) = file(f, "customers.csv") {
        h.push_str("<h2>Customers</h2>\n");
        h.push_str(&csv_table(c, 100));
    }
    if let Some(c) = file(f, "flisr.csv") {
        h.push_str("<h2>Faults: detection, isolation, restoration</h2>\n");
        h.push_str(&csv_table(c, 100));
    }
    let _ = write!(
        h,
        "<h2>Scenario</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        escape(f.resolved_scenario)
    );
    Ok((h, plots))
}

fn file<'a>(f: &'a RunFiles<'_>, name: &str) -> Option<&'a [u8]> {
    f.files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_slice())
}

/// A metric as text: numbers in their shortest exact form, `null` when
/// undefined.
fn show(v: &Value) -> String {
    match v {
        Value::U64(x) => x.to_string(),
        Value::F64(Some(x)) => x.to_string(),
        Value::F64(None) => "null".to_string(),
        Value::Text(t) => t.clone(),
        Value::Bool(b) => b.to_string(),
    }
}

/// Text safe inside HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

fn strip_xml_header(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// A CSV as an HTML table, at most `rows` rows.
fn csv_table(bytes: &[u8], rows: usize) -> String {
    let mut r = csv::Reader::from_reader(bytes);
    let mut h = String::from("<table>\n<tr>");
    if let Ok(head) = r.headers() {
        for c in head {
            let _ = write!(h, "<th>{}</th>", escape(c));
        }
    }
    h.push_str("</tr>\n");
    for rec in r.records().take(rows).flatten() {
        h.push_str("<tr>");
        for c in &rec {
            let class = if c.parse::<f64>().is_ok() {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(h, "<td{class}>{}</td>", escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h
}

fn fault_times_h(flisr: Option<&[u8]>) -> Vec<f64> {
    let Some(b) = flisr else { return Vec::new() };
    let mut r = csv::Reader::from_reader(b);
    r.records()
        .flatten()
        .filter_map(|rec| rec.get(1)?.parse::<f64>().ok())
        .map(|s| s / 3600.0)
        .collect()
}

/// A CSV file's header and records.
struct Table {
    head: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    /// The index of column `name`.
    fn col(&self, name: &str) -> Option<usize> {
        self.head.iter().position(|h| h == name)
    }
}

/// A finite number from a cell (empty or unparsable cells give none).
fn num(r: &csv::StringRecord, k: usize) -> Option<f64> {
    r.get(k)?.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A CSV file as a [`Table`]; none when absent or unreadable.
fn table(bytes: Option<&[u8]>) -> Option<Table> {
    let mut r = csv::Reader::from_reader(bytes?);
    let head = r.headers().ok()?.iter().map(str::to_string).collect();
    Some(Table {
        head,
        rows: r.records().flatten().collect(),
    })
}

/// Column `name` of a series against its time in hours.
fn column(s: &TimeSeries, name: &str) -> Option<Vec<(f64, f64)>> {
    let k = s.columns().iter().position(|c| c == name)?;
    Some(
        s.rows()
            .filter(|r| r[k].is_finite())
            .map(|r| (r[0] / 3600.0, r[k]))
            .collect(),
    )
}

fn range(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    Some((lo - pad, hi + pad))
}

/// The size of a one-chart plot [px].
const SIZE: (u32, u32) = (800, 360);

/// Phase colours (a, b, c), told apart by colour-blind readers too.
const PHASE: [RGBColor; 3] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
];

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A formatter of axis labels.
type Fmt<'a> = &'a dyn Fn(&f64) -> String;

/// A chart's frame: title, axis ranges and titles (with units), and how
/// its labels and legend are laid out.
struct Frame<'a> {
    title: &'a str,
    x: (f64, f64),
    y: (f64, f64),
    x_desc: &'a str,
    y_desc: &'a str,
    x_fmt: Option<Fmt<'a>>,
    y_fmt: Option<Fmt<'a>>,
    y_labels: usize,
    y_label_area: u32,
    legend: SeriesLabelPosition,
}

fn frame<'a>(title: &'a str, x: (f64, f64), y: (f64, f64), desc: (&'a str, &'a str)) -> Frame<'a> {
    Frame {
        title,
        x,
        y,
        x_desc: desc.0,
        y_desc: desc.1,
        x_fmt: None,
        y_fmt: None,
        y_labels: 10,
        y_label_area: 60,
        legend: SeriesLabelPosition::UpperRight,
    }
}

/// One chart on `area`: a titled frame with labelled axes, what `draw`
/// adds, and the legend.
fn plot<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    f: Frame<'_>,
    draw: impl FnOnce(&mut Chart<'_, DB>) -> Option<()>,
) -> Option<()> {
    let mut c = ChartBuilder::on(area)
        .caption(f.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(f.y_label_area)
        .build_cartesian_2d(f.x.0..f.x.1, f.y.0..f.y.1)
        .ok()?;
    let mut mesh = c.configure_mesh();
    mesh.x_desc(f.x_desc)
        .y_desc(f.y_desc)
        .y_labels(f.y_labels)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14));
    if let Some(g) = f.x_fmt {
        mesh.x_label_formatter(g);
    }
    if let Some(g) = f.y_fmt {
        mesh.y_label_formatter(g);
    }
    mesh.draw().ok()?;
    draw(&mut c)?;
    c.configure_series_labels()
        .position(f.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .ok()?;
    Some(())
}

/// A legend entry: a short line in `style`.
fn line_key<S: Into<ShapeStyle> + Copy>(
    style: S,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style)
}

/// A legend entry: a filled square in `colour`.
fn box_key(colour: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled())
}

/// A point of a confidence-interval plot: x position, mean, and its 95 %
/// interval.
pub type CiPoint = (usize, f64, Option<(f64, f64)>);

/// One series of a confidence-interval plot: its legend label and points.
pub type CiSeries = (String, Vec<CiPoint>);

/// Colours of the series of a confidence-interval plot, in turn.
const SERIES: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
];

/// A metric's mean against a parameter's values (categorical, in the
/// order given), with 95 % confidence bars, one line per series; as a
/// [`Plot`] named `name`. Registers the font first.
pub fn ci_plot(
    name: &str,
    title: &str,
    (x_desc, x_labels): (&str, &[String]),
    y_desc: &str,
    series: &[CiSeries],
) -> Result<Option<Plot>, ReportError> {
    font()?;
    let lows = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, m, ci)| ci.map_or(m, |c| c.0)));
    let highs = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, m, ci)| ci.map_or(m, |c| c.1)));
    let Some((lo, hi)) = range(lows.chain(highs)) else {
        return Ok(None);
    };
    let n = x_labels.len().max(1) as f64;
    let label = |x: &f64| {
        let k = x.round();
        if (x - k).abs() < 1e-9 && k >= 0.0 {
            x_labels.get(k as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut plots = Vec::new();
    figure!(plots, name, SIZE, |area| {
        let mut f = frame(title, (-0.5, n - 0.5), (lo, hi), (x_desc, y_desc));
        f.x_fmt = Some(&label);
        plot(&area, f, |c| {
            for (k, (key, pts)) in series.iter().enumerate() {
                let colour = SERIES[k % SERIES.len()];
                let xy: Vec<(f64, f64)> = pts.iter().map(|&(i, m, _)| (i as f64, m)).collect();
                c.draw_series(LineSeries::new(xy.clone(), colour.stroke_width(2)))
                    .ok()?
                    .label(key.as_str())
                    .legend(line_key(colour.stroke_width(2)));
                c.draw_series(xy.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                    .ok()?;
                c.draw_series(pts.iter().filter_map(|&(i, m, ci)| {
                    let (a, b) = ci?;
                    Some(ErrorBar::new_vertical(i as f64, a, m, b, colour, 10))
                }))
                .ok()?;
            }
            Some(())
        })
    });
    Ok(plots.pop())
}

/// Draws `items` on chart `c` with a legend entry, unless there are none
/// (an empty series would still show in the legend).
macro_rules! labelled {
    ($c:expr, $items:expr, $label:expr, $legend:expr) => {
        if !$items.is_empty() {
            $c.draw_series($items).ok()?.label($label).legend($legend);
        }
    };
}

/// Faults as red vertical lines on a chart.
macro_rules! fault_lines {
    ($chart:expr, $faults:expr, $lo:expr, $hi:expr) => {
        for (i, &t) in $faults.iter().enumerate() {
            let s = $chart
                .draw_series(LineSeries::new([(t, $lo), (t, $hi)], RED.stroke_width(2)))
                .ok()?;
            if i == 0 {
                s.label("fault").legend(line_key(RED.stroke_width(2)));
            }
        }
    };
}

/// Runs of consecutive defined points (a gap where a value is missing).
fn runs(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) => out.last_mut().expect("never empty").push((x, y)),
            None if out.last().is_some_and(|r| !r.is_empty()) => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn voltage_envelope<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    g: &TimeSeries,
    faults: &[f64],
) -> Option<()> {
    let lo = column(g, "v_min_pu")?;
    let hi = column(g, "v_max_pu")?;
    let t_end = lo.last()?.0.max(1e-6);
    let (y0, y1) = range(lo.iter().chain(&hi).map(|p| p.1))?;
    plot(
        area,
        frame(
            "Feeder voltage envelope",
            (0.0, t_end),
            (y0, y1),
            ("time [h]", "voltage [pu]"),
        ),
        |c| {
            c.draw_series(LineSeries::new(hi.iter().copied(), BLUE))
                .ok()?
                .label("highest bus voltage")
                .legend(line_key(BLUE));
            c.draw_series(LineSeries::new(lo.iter().copied(), GREEN))
                .ok()?
                .label("lowest bus voltage")
                .legend(line_key(GREEN));
            fault_lines!(c, faults, y0, y1);
            Some(())
        },
    )
}

fn customers_off<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    g: &TimeSeries,
    faults: &[f64],
) -> Option<()> {
    let off = column(g, "customers_off")?;
    let t_end = off.last()?.0.max(1e-6);
    let top = off.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    plot(
        area,
        frame(
            "Customers without supply (sampled)",
            (0.0, t_end),
            (0.0, top),
            ("time [h]", "customers off"),
        ),
        |c| {
            c.draw_series(LineSeries::new(off.iter().copied(), BLACK))
                .ok()?
                .label("customers off")
                .legend(line_key(BLACK));
            fault_lines!(c, faults, 0.0, top);
            Some(())
        },
    )
}

fn market_prices<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bytes: &[u8]) -> Option<()> {
    let mut r = csv::Reader::from_reader(bytes);
    let pts: Vec<(f64, f64)> = r
        .records()
        .flatten()
        .filter_map(|rec| {
            let t: f64 = rec.get(1)?.parse().ok()?;
            let p: f64 = rec.get(3)?.parse().ok()?;
            Some((t / 3600.0, p))
        })
        .collect();
    if pts.is_empty() {
        return None;
    }
    let x = range(pts.iter().map(|p| p.0))?;
    let y = range(pts.iter().map(|p| p.1))?;
    plot(
        area,
        frame(
            "P2P market clearing prices",
            x,
            y,
            ("interval start [h]", "price [currency/kWh]"),
        ),
        |c| {
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
                .ok()?
                .label("uniform clearing price")
                .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
            Some(())
        },
    )
}

/// How long blocks took to become final, as a histogram of 30 bins.
fn finality_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bytes: &[u8],
) -> Option<()> {
    let mut r = csv::Reader::from_reader(bytes);
    let v: Vec<f64> = r
        .records()
        .flatten()
        .filter_map(|rec| rec.get(2)?.parse().ok())
        .filter(|x: &f64| x.is_finite())
        .collect();
    let (lo, hi) = range(v.iter().copied())?;
    let lo = lo.max(0.0);
    const BINS: usize = 30;
    let width = (hi - lo) / BINS as f64;
    let mut count = [0u32; BINS];
    for x in &v {
        let k = (((x - lo) / width) as usize).min(BINS - 1);
        count[k] += 1;
    }
    let top = f64::from(count.iter().copied().max()?) * 1.1;
    plot(
        area,
        frame(
            "Block finality",
            (lo, hi),
            (0.0, top.max(1.0)),
            ("from proposal to commit [s]", "blocks"),
        ),
        |c| {
            c.draw_series(count.iter().enumerate().map(|(k, &n)| {
                let x0 = lo + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, f64::from(n))], BLUE.filled())
            }))
            .ok()?
            .label(format!("{} blocks", v.len()))
            .legend(box_key(BLUE));
            Some(())
        },
    )
}

/// Each customer's consumption by traced origin: community plants,
/// rooftop PV, untraced.
fn origin_shares<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bytes: &[u8]) -> Option<()> {
    let mut r = csv::Reader::from_reader(bytes);
    let head = r.headers().ok()?.clone();
    let col = |n: &str| head.iter().position(|h| h == n);
    let (ce, cc, cr) = (
        col("consumption_kwh")?,
        col("origin_community_kwh")?,
        col("origin_rooftop_kwh")?,
    );
    let rows: Vec<(f64, f64, f64)> = r
        .records()
        .flatten()
        .filter_map(|rec| {
            let e: f64 = rec.get(ce)?.parse().ok()?;
            let c: f64 = rec.get(cc)?.parse().ok()?;
            let p: f64 = rec.get(cr)?.parse().ok()?;
            (e > 0.0).then(|| (c / e, p / e, (1.0 - (c + p) / e).max(0.0)))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let n = rows.len() as f64;
    plot(
        area,
        frame(
            "Traced origin of each customer's consumption",
            (0.0, n),
            (0.0, 100.0),
            (
                "customer (in customers.csv order)",
                "share of consumption [%]",
            ),
        ),
        |c| {
            let colours = [GREEN, BLUE, RGBColor(200, 200, 200)];
            let names = ["community plants", "rooftop PV", "untraced"];
            for (k, (colour, name)) in colours.iter().zip(names).enumerate() {
                let bars = rows.iter().enumerate().map(|(i, &(a, b, u))| {
                    let parts = [a, b, u];
                    let base: f64 = parts[..k].iter().sum::<f64>() * 100.0;
                    let top = base + parts[k] * 100.0;
                    Rectangle::new(
                        [(i as f64 + 0.1, base), (i as f64 + 0.9, top)],
                        colour.filled(),
                    )
                });
                c.draw_series(bars)
                    .ok()?
                    .label(name)
                    .legend(box_key(*colour));
            }
            Some(())
        },
    )
}

/// Phase voltages (a, b, c) [pu], none when dead.
type Phases = [Option<f64>; 3];

/// One snapshot of `profile.csv`.
struct Snap<'a> {
    /// `lowest` or `highest`.
    label: &'a str,
    /// Its time [h].
    at_h: f64,
    /// Per (feeder, bus): the distance [m] and the phase voltages [pu].
    buses: BTreeMap<(&'a str, &'a str), (f64, Phases)>,
    /// The branches: (feeder, upper bus, lower bus).
    edges: Vec<(&'a str, &'a str, &'a str)>,
}

/// The voltage along every feeder at the run's lowest and highest voltage
/// (`profile.csv`): one panel per snapshot, a line per branch and phase,
/// against the distance from the LV board.
fn voltage_profile<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, t: &Table) -> Option<()> {
    let (cs, ct, cf, cb, cp, cd) = (
        t.col("snapshot")?,
        t.col("t_s")?,
        t.col("feeder")?,
        t.col("bus")?,
        t.col("parent")?,
        t.col("distance_m")?,
    );
    let cv = [t.col("va_pu")?, t.col("vb_pu")?, t.col("vc_pu")?];
    // Per snapshot: its time [h] and, per (feeder, bus), the distance and
    // the phase voltages.
    let mut snaps: Vec<Snap<'_>> = Vec::new();
    for r in &t.rows {
        let (Some(s), Some(f), Some(b), Some(p), Some(d)) =
            (r.get(cs), r.get(cf), r.get(cb), r.get(cp), num(r, cd))
        else {
            continue;
        };
        if snaps.last().is_none_or(|x| x.label != s) {
            snaps.push(Snap {
                label: s,
                at_h: num(r, ct).unwrap_or(0.0) / 3600.0,
                buses: BTreeMap::new(),
                edges: Vec::new(),
            });
        }
        let snap = snaps.last_mut()?;
        snap.buses.insert((f, b), (d, cv.map(|k| num(r, k))));
        if !p.is_empty() {
            snap.edges.push((f, p, b));
        }
    }
    snaps.truncate(2);
    let d_max = range(snaps.iter().flat_map(|s| s.buses.values().map(|v| v.0)))?.1;
    let (y0, y1) = range(
        snaps
            .iter()
            .flat_map(|s| s.buses.values().flat_map(|v| v.1.into_iter().flatten())),
    )?;
    // Feeders in their first appearance order, for the legend.
    let mut feeders: Vec<&str> = Vec::new();
    for s in &snaps {
        for (f, _, _) in &s.edges {
            if !feeders.contains(f) {
                feeders.push(f);
            }
        }
    }
    let panels = area.split_evenly((snaps.len().max(1), 1));
    for (
        Snap {
            label,
            at_h,
            buses,
            edges,
        },
        panel,
    ) in snaps.iter().zip(&panels)
    {
        let title = format!("Voltage along the feeders at the {label} voltage (t = {at_h:.2} h)");
        plot(
            panel,
            frame(
                &title,
                (0.0, d_max),
                (y0, y1),
                (
                    "distance from the LV board along the lines [m]",
                    "voltage [pu]",
                ),
            ),
            |c| {
                for (fi, feeder) in feeders.iter().enumerate() {
                    for (k, colour) in PHASE.iter().enumerate() {
                        // Later feeders in lighter shades of the phase colour.
                        let shade = colour.mix(1.0 - 0.3 * (fi % 3) as f64);
                        let segs: Vec<[(f64, f64); 2]> = edges
                            .iter()
                            .filter(|(f, _, _)| f == feeder)
                            .filter_map(|(f, p, b)| {
                                let (dp, vp) = buses.get(&(*f, *p))?;
                                let (db, vb) = buses.get(&(*f, *b))?;
                                Some([(*dp, vp[k]?), (*db, vb[k]?)])
                            })
                            .collect();
                        let s = c
                            .draw_series(
                                segs.into_iter()
                                    .map(|s| PathElement::new(s, shade.stroke_width(1))),
                            )
                            .ok()?;
                        let phase = ["a", "b", "c"][k];
                        if feeders.len() == 1 {
                            s.label(format!("phase {phase}"));
                        } else if fi < 3 {
                            s.label(format!("{feeder}, phase {phase}"));
                        } else {
                            continue;
                        }
                        s.legend(line_key(shade.stroke_width(2)));
                    }
                }
                Some(())
            },
        )?;
    }
    Some(())
}

/// At most this many watched LMUs get a panel.
const MAX_LMU_PANELS: usize = 4;

/// The watched LMUs of `lmu_voltages.csv`, by node id: their bus and
/// samples (time [h], phase voltages [pu]).
type LmuSamples<'a> = BTreeMap<u32, (&'a str, Vec<(f64, [Option<f64>; 3])>)>;

fn lmu_panels(t: &Table) -> LmuSamples<'_> {
    let mut out: LmuSamples<'_> = BTreeMap::new();
    let (Some(ct), Some(cl), Some(cb)) = (t.col("t_s"), t.col("lmu"), t.col("bus")) else {
        return out;
    };
    let cv = [t.col("va_pu"), t.col("vb_pu"), t.col("vc_pu")];
    for r in &t.rows {
        let (Some(time), Some(lmu), Some(bus)) = (
            num(r, ct),
            r.get(cl).and_then(|x| x.parse::<u32>().ok()),
            r.get(cb),
        ) else {
            continue;
        };
        out.entry(lmu)
            .or_insert_with(|| (bus, Vec::new()))
            .1
            .push((time / 3600.0, cv.map(|k| k.and_then(|k| num(r, k)))));
    }
    out
}

/// The watched LMUs' phase voltages over time, a panel each, with the
/// faults marked.
fn lmu_voltages<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    t: &Table,
    faults: &[f64],
) -> Option<()> {
    let lmus = lmu_panels(t);
    if lmus.is_empty() {
        return None;
    }
    let t_end = lmus
        .values()
        .filter_map(|(_, s)| s.last().map(|x| x.0))
        .fold(1e-6, f64::max);
    let (y0, y1) = range(
        lmus.values()
            .flat_map(|(_, s)| s.iter().flat_map(|x| x.1.into_iter().flatten())),
    )?;
    // Headroom for the legend.
    let y1 = y1 + (y1 - y0) * 0.3;
    let panels = area.split_evenly((lmus.len().min(MAX_LMU_PANELS), 1));
    for ((lmu, (bus, samples)), panel) in lmus.iter().zip(&panels) {
        let title = format!("LMU {lmu} at bus {bus}: phase voltages");
        plot(
            panel,
            frame(&title, (0.0, t_end), (y0, y1), ("time [h]", "voltage [pu]")),
            |c| {
                // Shade the samples with every phase dead, up to the next.
                let grey = RGBColor(215, 215, 215);
                let dead: Vec<_> = samples
                    .iter()
                    .zip(samples.iter().skip(1).map(|s| s.0).chain([t_end]))
                    .filter(|(s, _)| s.1.iter().all(Option::is_none))
                    .map(|(s, next)| Rectangle::new([(s.0, y0), (next, y1)], grey.filled()))
                    .collect();
                labelled!(c, dead, "no supply (every phase dead)", box_key(grey));
                for (k, colour) in PHASE.iter().enumerate() {
                    let mut first = true;
                    for run in runs(samples.iter().map(|s| (s.0, s.1[k]))) {
                        // A lone sample between dead ones shows as a dot.
                        let dot = (run.len() == 1).then(|| Circle::new(run[0], 3, colour.filled()));
                        c.draw_series(dot).ok()?;
                        let s = c
                            .draw_series(LineSeries::new(run, colour.stroke_width(1)))
                            .ok()?;
                        if first {
                            s.label(format!("phase {}", ["a", "b", "c"][k]))
                                .legend(line_key(colour.stroke_width(2)));
                            first = false;
                        }
                    }
                }
                fault_lines!(c, faults, y0, y1);
                Some(())
            },
        )?;
    }
    Some(())
}

/// The breakers named in `breakers.csv`, in order.
fn breaker_ids(t: Option<&Table>) -> Vec<String> {
    let Some(t) = t else { return Vec::new() };
    let Some(k) = t.col("breaker") else {
        return Vec::new();
    };
    let mut ids: Vec<String> = t
        .rows
        .iter()
        .filter_map(|r| r.get(k).map(str::to_string))
        .collect();
    ids.sort_by_key(|x| x.parse::<u64>().unwrap_or(u64::MAX));
    ids.dedup();
    ids
}

/// The rows kept free below the timeline's bars for its legend.
const LEGEND_ROWS: u32 = 2;

/// The height of the timeline's customers-off panel [px].
const TIMELINE_BOTTOM_PX: u32 = 240;

/// One fault of `flisr.csv`, its instants [h].
struct FaultRow {
    label: String,
    at: f64,
    detect: Option<f64>,
    isolate: Option<f64>,
    restore: Option<f64>,
}

/// One breaker of `breakers.csv`: its open intervals and lockouts [h].
struct BreakerRow {
    label: String,
    open: Vec<(f64, f64)>,
    lockouts: Vec<f64>,
}

/// The FLISR timeline: per fault, inception → isolation → restoration of
/// the healthy customers; per feeder-head breaker, its open intervals;
/// below, the customers off supply (exact, from `interruptions.csv`).
fn interruption_timeline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    flisr: Option<&Table>,
    breakers: Option<&Table>,
    interruptions: Option<&Table>,
    end_h: f64,
) -> Option<()> {
    let mut faults: Vec<FaultRow> = Vec::new();
    if let Some(t) = flisr {
        let (ca, cb) = (t.col("at_s")?, t.col("bus")?);
        let (cd, ci, cr) = (t.col("detect_s")?, t.col("isolate_s")?, t.col("restore_s")?);
        for (i, r) in t.rows.iter().enumerate() {
            let Some(at) = num(r, ca) else { continue };
            let h = |k| num(r, k).map(|s| (at + s) / 3600.0);
            faults.push(FaultRow {
                label: format!("fault {i} (bus {})", r.get(cb).unwrap_or("?")),
                at: at / 3600.0,
                detect: h(cd),
                isolate: h(ci),
                restore: h(cr),
            });
        }
    }
    let ids = breaker_ids(breakers);
    let mut brk: Vec<BreakerRow> = ids
        .iter()
        .map(|b| BreakerRow {
            label: format!("breaker {b}"),
            open: Vec::new(),
            lockouts: Vec::new(),
        })
        .collect();
    if let Some(t) = breakers {
        let (ct, cb, co) = (t.col("t_s")?, t.col("breaker")?, t.col("op")?);
        let mut open: Vec<Option<f64>> = vec![None; ids.len()];
        for r in &t.rows {
            let (Some(time), Some(b), Some(op)) = (num(r, ct), r.get(cb), r.get(co)) else {
                continue;
            };
            let Some(j) = ids.iter().position(|x| x == b) else {
                continue;
            };
            let time = time / 3600.0;
            match op {
                "trip" => open[j] = Some(time),
                "lockout" => {
                    open[j] = Some(time);
                    brk[j].lockouts.push(time);
                }
                "reclose" => {
                    if let Some(o) = open[j].take() {
                        brk[j].open.push((o, time));
                    }
                }
                _ => {}
            }
        }
        for (j, o) in open.into_iter().enumerate() {
            if let Some(o) = o {
                brk[j].open.push((o, end_h.max(o)));
            }
        }
    }
    // Customers off: a step at every start and end.
    let mut steps: Vec<(f64, i64)> = Vec::new();
    if let Some(t) = interruptions {
        let (cs, ce) = (t.col("start_s")?, t.col("end_s")?);
        for r in &t.rows {
            if let Some(s) = num(r, cs) {
                steps.push((s / 3600.0, 1));
                if let Some(e) = num(r, ce) {
                    steps.push((e / 3600.0, -1));
                }
            }
        }
    }
    if faults.is_empty() && brk.is_empty() && steps.is_empty() {
        return None;
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let end_h = end_h.max(steps.last().map_or(0.0, |s| s.0)).max(1e-6);
    let mut off = vec![(0.0, 0.0)];
    let mut n = 0i64;
    for (t, d) in &steps {
        off.push((*t, n as f64));
        n += d;
        off.push((*t, n as f64));
    }
    off.push((end_h, n as f64));
    // Bars narrower than this show at this width [h].
    let w_min = end_h * 0.005;
    let bar = |a: f64, b: f64| (a, b.max(a + w_min));
    let rows: Vec<String> = faults
        .iter()
        .map(|f| f.label.clone())
        .chain(brk.iter().map(|b| b.label.clone()))
        .collect();
    let n_rows = rows.len().max(1) as f64;
    let label_of = |y: &f64| {
        let k = y.round();
        if (y - k).abs() < 1e-6 && k >= 0.0 {
            rows.get(k as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let (top, bottom) =
        area.split_vertically(area.dim_in_pixel().1.saturating_sub(TIMELINE_BOTTOM_PX));
    let mut f = frame(
        "Faults, isolation, restoration and breaker operations",
        (0.0, end_h),
        (-0.6 - f64::from(LEGEND_ROWS), n_rows - 0.4),
        ("time [h]", ""),
    );
    f.y_fmt = Some(&label_of);
    f.y_labels = rows.len().max(1) + LEGEND_ROWS as usize + 1;
    f.y_label_area = 130;
    f.legend = SeriesLabelPosition::LowerRight;
    let red = RGBColor(200, 30, 30);
    let orange = RGBColor(240, 160, 40);
    let grey = RGBColor(110, 110, 110);
    plot(&top, f, |c| {
        let h = 0.25;
        let isolating: Vec<_> = faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let (a, b) = bar(f.at, f.isolate.unwrap_or(f.at));
                Rectangle::new([(a, i as f64 - h), (b, i as f64 + h)], red.filled())
            })
            .collect();
        labelled!(c, isolating, "fault → section isolated", box_key(red));
        let restoring: Vec<_> = faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (a, b) = bar(f.isolate?, f.restore?);
                Some(Rectangle::new(
                    [(a, i as f64 - h), (b, i as f64 + h)],
                    orange.filled(),
                ))
            })
            .collect();
        labelled!(
            c,
            restoring,
            "isolated → healthy customers restored",
            box_key(orange)
        );
        let detected: Vec<_> = faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some(Cross::new((f.detect?, i as f64), 4, BLACK.stroke_width(1))))
            .collect();
        labelled!(c, detected, "detected", |(x, y)| Cross::new(
            (x + 8, y),
            4,
            BLACK.stroke_width(1)
        ));
        let nf = faults.len();
        let open: Vec<_> = brk
            .iter()
            .enumerate()
            .flat_map(|(j, b)| {
                b.open.iter().map(move |&(o, cl)| {
                    let (a, e) = bar(o, cl);
                    let y = (nf + j) as f64;
                    Rectangle::new([(a, y - h), (e, y + h)], grey.filled())
                })
            })
            .collect();
        labelled!(c, open, "breaker open (trip → reclose)", box_key(grey));
        let locked: Vec<_> = brk
            .iter()
            .enumerate()
            .flat_map(|(j, b)| {
                b.lockouts.iter().map(move |&t| {
                    let y = (nf + j) as f64;
                    TriangleMarker::new((t, y + 0.3), 6, BLACK.filled())
                })
            })
            .collect();
        labelled!(c, locked, "lockout", |(x, y)| TriangleMarker::new(
            (x + 8, y),
            6,
            BLACK.filled()
        ));
        // Each fault's figures beside it.
        for (i, f) in faults.iter().enumerate() {
            let secs = |x: Option<f64>| {
                x.map_or("never".to_string(), |x| {
                    format!("{:.1} s", (x - f.at) * 3600.0)
                })
            };
            let text = format!(
                "detected {}, isolated {}, restored {}",
                secs(f.detect),
                secs(f.isolate),
                secs(f.restore)
            );
            let right = f.at > end_h / 2.0;
            let pos = Pos::new(if right { HPos::Right } else { HPos::Left }, VPos::Top);
            let x = if right {
                f.at - w_min
            } else {
                f.at + 2.0 * w_min
            };
            let style = TextStyle::from(("sans-serif", 13).into_font()).pos(pos);
            c.draw_series(std::iter::once(Text::new(
                text,
                (x, i as f64 + 0.45),
                style,
            )))
            .ok()?;
        }
        Some(())
    })?;
    let top_n = off.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    plot(
        &bottom,
        frame(
            "Customers without supply (every interruption)",
            (0.0, end_h),
            (0.0, top_n),
            ("time [h]", "customers off"),
        ),
        |c| {
            c.draw_series(LineSeries::new(off.iter().copied(), BLACK))
                .ok()?
                .label("customers off")
                .legend(line_key(BLACK));
            let times: Vec<f64> = faults.iter().map(|f| f.at).collect();
            fault_lines!(c, times, 0.0, top_n);
            Some(())
        },
    )
}

/// Link colours by packet delivery ratio: (lowest PDR of the class,
/// colour, legend).
const PDR_CLASSES: [(f64, RGBColor, &str); 4] = [
    (0.9, RGBColor(26, 150, 65), "link PDR ≥ 0.9"),
    (0.7, RGBColor(120, 190, 60), "link PDR 0.7–0.9"),
    (0.5, RGBColor(240, 150, 40), "link PDR 0.5–0.7"),
    (0.0, RGBColor(215, 25, 28), "link PDR < 0.5"),
];

/// The mesh on its poles: the links that carried unicast frames coloured
/// by their delivery ratio, the routing tree (each node to its parent at
/// the end of the run) over them, and the nodes.
fn mesh_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    nodes: &Table,
    links: &Table,
) -> Option<()> {
    let (cn, cx, cy, cp) = (
        nodes.col("node")?,
        nodes.col("x_m")?,
        nodes.col("y_m")?,
        nodes.col("parent")?,
    );
    // node → (x, y, parent), positions relative to the coordinator (the
    // first node) [m].
    let mut at: BTreeMap<u32, (f64, f64, Option<u32>)> = BTreeMap::new();
    for r in &nodes.rows {
        let (Some(n), Some(x), Some(y)) = (
            r.get(cn).and_then(|x| x.parse::<u32>().ok()),
            num(r, cx),
            num(r, cy),
        ) else {
            continue;
        };
        at.insert(n, (x, y, r.get(cp).and_then(|p| p.parse().ok())));
    }
    let (&root, &(ox, oy, _)) = at.iter().next()?;
    for p in at.values_mut() {
        (p.0, p.1) = (p.0 - ox, p.1 - oy);
    }
    let (ca, cb, cr) = (links.col("a")?, links.col("b")?, links.col("pdr")?);
    let mut classes: Vec<Vec<[(f64, f64); 2]>> = vec![Vec::new(); PDR_CLASSES.len()];
    for r in &links.rows {
        let id = |k| r.get(k).and_then(|x| x.parse::<u32>().ok());
        let (Some(a), Some(b), Some(pdr)) = (id(ca), id(cb), num(r, cr)) else {
            continue;
        };
        let (Some(pa), Some(pb)) = (at.get(&a), at.get(&b)) else {
            continue;
        };
        let k = PDR_CLASSES
            .iter()
            .position(|c| pdr >= c.0)
            .unwrap_or(PDR_CLASSES.len() - 1);
        classes[k].push([(pa.0, pa.1), (pb.0, pb.1)]);
    }
    // Equal scales on both axes: widen the narrower range to the plot
    // area's aspect ratio (about 700 × 560 px).
    let (mut x0, mut x1) = range(at.values().map(|p| p.0))?;
    let (mut y0, mut y1) = range(at.values().map(|p| p.1))?;
    let (w, h) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
    let aspect = 700.0 / 560.0;
    if w / h < aspect {
        let grow = (h * aspect - w) / 2.0;
        (x0, x1) = (x0 - grow, x1 + grow);
    } else {
        let grow = (w / aspect - h) / 2.0;
        (y0, y1) = (y0 - grow, y1 + grow);
    }
    let title = format!("Mesh: {} nodes, link delivery and routing tree", at.len());
    let mut f = frame(
        &title,
        (x0, x1),
        (y0, y1),
        (
            "east of the coordinator [m]",
            "north of the coordinator [m]",
        ),
    );
    f.legend = SeriesLabelPosition::LowerRight;
    plot(area, f, |c| {
        for ((_, colour, name), segs) in PDR_CLASSES.iter().zip(&classes) {
            let s = c
                .draw_series(
                    segs.iter()
                        .map(|&s| PathElement::new(s, colour.mix(0.8).stroke_width(5))),
                )
                .ok()?;
            if !segs.is_empty() {
                s.label(*name).legend(line_key(colour.stroke_width(5)));
            }
        }
        let tree = at.values().filter_map(|&(x, y, p)| {
            let q = at.get(&p?)?;
            Some(PathElement::new(
                [(x, y), (q.0, q.1)],
                BLACK.stroke_width(1),
            ))
        });
        c.draw_series(tree)
            .ok()?
            .label("routing tree (parent at the end)")
            .legend(line_key(BLACK.stroke_width(1)));
        let attached = at
            .iter()
            .filter(|(n, p)| **n != root && p.2.is_some())
            .map(|(_, p)| Circle::new((p.0, p.1), 3, BLACK.filled()));
        c.draw_series(attached)
            .ok()?
            .label("LMU (pole)")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, BLACK.filled()));
        let detached: Vec<_> = at
            .iter()
            .filter(|(n, p)| **n != root && p.2.is_none())
            .map(|(_, p)| Circle::new((p.0, p.1), 4, RED.stroke_width(2)))
            .collect();
        labelled!(c, detached, "LMU without a route", |(x, y)| Circle::new(
            (x + 8, y),
            4,
            RED.stroke_width(2)
        ));
        let r = at.get(&root)?;
        c.draw_series(std::iter::once(TriangleMarker::new(
            (r.0, r.1),
            9,
            BLUE.filled(),
        )))
        .ok()?
        .label("coordinator")
        .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, BLUE.filled()));
        Some(())
    })
}

/// The empirical CDF of the end-to-end latency of every frame delivered
/// to the coordinator; on a log scale when the tail is long.
fn latency_cdf<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, t: &Table) -> Option<()> {
    let k = t.col("latency_s")?;
    let mut v: Vec<f64> = t.rows.iter().filter_map(|r| num(r, k)).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let p50 = crate::metrics::percentile(&v, 0.5)?;
    let p99 = crate::metrics::percentile(&v, 0.99)?;
    let lo = v[0].max(1e-6);
    let hi = v[v.len() - 1].max(lo * 1.01);
    let log = hi / lo > 100.0;
    let x = |s: f64| if log { s.max(1e-6).log10() } else { s };
    let (x0, x1) = if log {
        (lo.log10().floor(), hi.log10().ceil())
    } else {
        (0.0, hi * 1.05)
    };
    // The CDF as a staircase, one step per distinct latency.
    let mut pts = vec![(x(v[0]), 0.0)];
    for (i, &s) in v.iter().enumerate() {
        if v.get(i + 1) != Some(&s) {
            let below = pts.last().map_or(0.0, |p| p.1);
            pts.push((x(s), below));
            pts.push((x(s), (i + 1) as f64 / n));
        }
    }
    pts.push((x1, 1.0));
    let sig = |s: f64| {
        let e = s.abs().log10().floor() as i32;
        let d = (1 - e).max(0) as usize;
        format!("{s:.d$}")
    };
    let fmt = |e: &f64| sig(10f64.powf(*e));
    let desc = if log {
        "latency [s], log scale"
    } else {
        "latency [s]"
    };
    let mut f = frame(
        "End-to-end latency, LMU application to coordinator",
        (x0, x1),
        (0.0, 1.02),
        (desc, "share of frames delivered within"),
    );
    if log {
        f.x_fmt = Some(&fmt);
    }
    f.legend = SeriesLabelPosition::LowerRight;
    plot(area, f, |c| {
        c.draw_series(LineSeries::new(pts.iter().copied(), BLUE.stroke_width(2)))
            .ok()?
            .label(format!("empirical CDF of {} frames", v.len()))
            .legend(line_key(BLUE.stroke_width(2)));
        for (p, label, colour) in [(p50, "median", BLACK), (p99, "99th percentile", RED)] {
            c.draw_series(LineSeries::new(
                [(x(p), 0.0), (x(p), 1.02)],
                colour.stroke_width(1),
            ))
            .ok()?
            .label(format!("{label}: {} s", sig(p)))
            .legend(line_key(colour.stroke_width(1)));
        }
        Some(())
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_font_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.ttf");
        let err = install_font(&missing).unwrap_err();
        assert!(
            err.contains("none.ttf") && err.contains("built-in DejaVu Sans"),
            "{err}"
        );
        let bad = dir.path().join("bad.ttf");
        std::fs::write(&bad, b"not a font").unwrap();
        let err = install_font(&bad).unwrap_err();
        assert!(err.contains("bad.ttf is not a TrueType"), "{err}");
        // The built-in font is one.
        assert!(register("DejaVu", dejavu::sans::regular()).is_ok());
    }

    #[test]
    fn runs_split_at_missing_values() {
        let pts = [
            (0.0, Some(1.0)),
            (1.0, None),
            (2.0, Some(2.0)),
            (3.0, Some(3.0)),
        ];
        assert_eq!(
            runs(pts.into_iter()),
            vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]
        );
    }

    /// Every new plot draws from small hand-made files, as SVG and as a PNG
    /// of the same size; files without their columns draw nothing.
    #[test]
    fn each_plot_draws_from_its_files() {
        font().unwrap();
        let mut plots: Vec<Plot> = Vec::new();
        let profile = table(Some(
            b"snapshot,t_s,feeder,bus,parent,distance_m,va_pu,vb_pu,vc_pu\n\
              lowest,60,line.l1,lv,,0,1.0,1.0,1.0\n\
              lowest,60,line.l1,b2,lv,50,0.98,0.99,\n\
              highest,120,line.l1,lv,,0,1.02,1.02,1.02\n\
              highest,120,line.l1,b2,lv,50,1.03,1.01,1.0\n",
        ))
        .unwrap();
        figure!(plots, "voltage_profile", (800, 640), |a| voltage_profile(
            &a, &profile
        ));
        let nodes = table(Some(
            b"node,bus,x_m,y_m,parent\n0,lv,0,0,\n1,b2,100,0,0\n2,b3,200,50,1\n3,b4,50,80,\n",
        ))
        .unwrap();
        let links = table(Some(b"a,b,sent,delivered,pdr\n0,1,10,10,1\n1,2,10,6,0.6\n")).unwrap();
        figure!(plots, "mesh_map", (800, 680), |a| mesh_map(
            &a, &nodes, &links
        ));
        let lat = table(Some(b"t_s,node,latency_s\n1,1,0.004\n2,2,0.5\n3,1,0.006\n")).unwrap();
        figure!(plots, "latency_cdf", SIZE, |a| latency_cdf(&a, &lat));
        let flisr = table(Some(
            b"fault,at_s,bus,detect_s,isolate_s,restore_s,minimal,minimal_set,opened\n\
              0,3600,b2,0,0.5,3,true,1,1\n",
        ));
        let brk = table(Some(
            b"t_s,breaker,branch,op\n3600.1,0,line.l1,trip\n3603.1,0,line.l1,reclose\n",
        ));
        let ints = table(Some(
            b"customer,bus,start_s,end_s,duration_s,sustained\nc1,b2,3600.1,,3599.9,true\n",
        ));
        figure!(plots, "interruption_timeline", (800, 600), |a| {
            interruption_timeline(&a, flisr.as_ref(), brk.as_ref(), ints.as_ref(), 2.0)
        });
        let lmu = table(Some(
            b"t_s,lmu,bus,va_pu,vb_pu,vc_pu\n0,3,b2,1,1,1\n60,3,b2,,,\n120,3,b2,1.01,1,0.99\n",
        ))
        .unwrap();
        figure!(plots, "lmu_voltages", (800, 280), |a| lmu_voltages(
            &a,
            &lmu,
            &[0.01]
        ));
        let names: Vec<&str> = plots.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "voltage_profile",
                "mesh_map",
                "latency_cdf",
                "interruption_timeline",
                "lmu_voltages"
            ]
        );
        for p in &plots {
            let (w, h) = p.size;
            assert!(
                p.svg
                    .starts_with(&format!("<svg width=\"{w}\" height=\"{h}\"")),
                "{}",
                p.name
            );
            let r = png::Decoder::new(std::io::Cursor::new(&p.png))
                .read_info()
                .unwrap();
            assert_eq!((r.info().width, r.info().height), p.size, "{}", p.name);
        }
        // Files without the columns: no plot, no panic.
        let wrong = table(Some(b"a,b\n1,2\n")).unwrap();
        let mut none: Vec<Plot> = Vec::new();
        figure!(none, "x", SIZE, |a| voltage_profile(&a, &wrong));
        figure!(none, "x", SIZE, |a| mesh_map(&a, &wrong, &wrong));
        figure!(none, "x", SIZE, |a| latency_cdf(&a, &wrong));
        figure!(none, "x", SIZE, |a| lmu_voltages(&a, &wrong, &[]));
        assert!(none.is_empty());
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
