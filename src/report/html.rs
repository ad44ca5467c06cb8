//! `report.html`: one self-contained page per run (no network, no external
//! file): the headline table, the plots inline as SVG, the customer table,
//! and the scenario with its seed. The plots are also written as
//! `plots/<name>.svg`. Everything is drawn from the run's own outputs
//! (`summary.json`, `grid.csv`, `flisr.csv`, `customers.csv`,
//! `market.csv`, `blocks.csv`), so the page shows exactly what the files
//! hold.

use std::fmt::Write as _;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::RunFiles;
use crate::metrics::{TimeSeries, Value};

/// The report and its plots: (`report.html`, [(name, SVG)]).
pub fn report(f: &RunFiles<'_>) -> (String, Vec<(String, String)>) {
    let mut plots = Vec::new();
    let faults = fault_times_h(file(f, "flisr.csv"));
    if let Some(g) = f.series.iter().find(|s| s.name() == "grid") {
        if let Some(svg) = voltage_envelope(g, &faults) {
            plots.push(("voltage_envelope".to_string(), svg));
        }
        if let Some(svg) = customers_off(g, &faults) {
            plots.push(("customers_off".to_string(), svg));
        }
    }
    if let Some(svg) = file(f, "market.csv").and_then(market_prices) {
        plots.push(("market_prices".to_string(), svg));
    }
    if let Some(svg) = file(f, "blocks.csv").and_then(finality_histogram) {
        plots.push(("finality_histogram".to_string(), svg));
    }
    if let Some(svg) = file(f, "customers.csv").and_then(origin_shares) {
        plots.push(("origin_shares".to_string(), svg));
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
        for (_, svg) in &plots {
            h.push_str("<figure>\n");
            h.push_str(strip_xml_header(svg));
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
    (h, plots)
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

const SIZE: (u32, u32) = (800, 360);

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One SVG chart: a titled frame with labelled axes, what `draw` adds, and
/// the legend.
fn plot(
    title: &str,
    x: (f64, f64),
    y: (f64, f64),
    desc: (&str, &str),
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Option<()>,
) -> Option<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .ok()?;
        c.configure_mesh()
            .x_desc(desc.0)
            .y_desc(desc.1)
            .draw()
            .ok()?;
        draw(&mut c)?;
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// Faults as red vertical lines on a chart.
macro_rules! fault_lines {
    ($chart:expr, $faults:expr, $lo:expr, $hi:expr) => {
        for (i, &t) in $faults.iter().enumerate() {
            let s = $chart
                .draw_series(LineSeries::new([(t, $lo), (t, $hi)], RED.stroke_width(2)))
                .ok()?;
            if i == 0 {
                s.label("fault")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
            }
        }
    };
}

fn voltage_envelope(g: &TimeSeries, faults: &[f64]) -> Option<String> {
    let lo = column(g, "v_min_pu")?;
    let hi = column(g, "v_max_pu")?;
    let t_end = lo.last()?.0.max(1e-6);
    let (y0, y1) = range(lo.iter().chain(&hi).map(|p| p.1))?;
    plot(
        "Feeder voltage envelope",
        (0.0, t_end),
        (y0, y1),
        ("time [h]", "voltage [pu]"),
        |c| {
            c.draw_series(LineSeries::new(hi.iter().copied(), BLUE))
                .ok()?
                .label("highest bus voltage")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
            c.draw_series(LineSeries::new(lo.iter().copied(), GREEN))
                .ok()?
                .label("lowest bus voltage")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
            fault_lines!(c, faults, y0, y1);
            Some(())
        },
    )
}

fn customers_off(g: &TimeSeries, faults: &[f64]) -> Option<String> {
    let off = column(g, "customers_off")?;
    let t_end = off.last()?.0.max(1e-6);
    let top = off.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    plot(
        "Customers without supply (sampled)",
        (0.0, t_end),
        (0.0, top),
        ("time [h]", "customers off"),
        |c| {
            c.draw_series(LineSeries::new(off.iter().copied(), BLACK))
                .ok()?
                .label("customers off")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
            fault_lines!(c, faults, 0.0, top);
            Some(())
        },
    )
}

fn market_prices(bytes: &[u8]) -> Option<String> {
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
        "P2P market clearing prices",
        x,
        y,
        ("interval start [h]", "price [currency/kWh]"),
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
fn finality_histogram(bytes: &[u8]) -> Option<String> {
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
        "Block finality",
        (lo, hi),
        (0.0, top.max(1.0)),
        ("from proposal to commit [s]", "blocks"),
        |c| {
            c.draw_series(count.iter().enumerate().map(|(k, &n)| {
                let x0 = lo + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, f64::from(n))], BLUE.filled())
            }))
            .ok()?
            .label(format!("{} blocks", v.len()))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], BLUE.filled()));
            Some(())
        },
    )
}

/// Each customer's consumption by traced origin: community plants,
/// rooftop PV, untraced.
fn origin_shares(bytes: &[u8]) -> Option<String> {
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
        "Traced origin of each customer's consumption",
        (0.0, n),
        (0.0, 100.0),
        (
            "customer (in customers.csv order)",
            "share of consumption [%]",
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
                let colour = *colour;
                c.draw_series(bars).ok()?.label(name).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled())
                });
            }
            Some(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
