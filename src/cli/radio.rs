//! `gridtwin radio …`: inspection of the radio model.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use plotters::prelude::*;

use crate::mesh::curve::{Curves, Model, curves};
use crate::mesh::phy::RadioProfile;
use crate::report::write_atomic;

/// Radio model inspection.
#[derive(Debug, Args)]
pub struct RadioArgs {
    /// Which inspection.
    #[command(subcommand)]
    pub command: RadioCommand,
}

/// The inspections.
#[derive(Debug, Subcommand)]
pub enum RadioCommand {
    /// Write the calibration curves of a radio model.
    ///
    /// Writes into the --out directory: pdr_vs_distance.csv (distance_m,pdr:
    /// 20-octet frames, mean over shadowing), pathloss_vs_distance.csv
    /// (distance_m,loss_db), per_vs_snr.csv (snr_db,ber,per_20B,per_127B),
    /// and an SVG plot of each.
    Curve(CurveArgs),
}

/// Arguments of `radio curve`.
#[derive(Debug, Args)]
pub struct CurveArgs {
    /// Path-loss model.
    #[arg(long, default_value = "calibrated", value_parser = clap::builder::PossibleValuesParser::new(Model::NAMES))]
    pub model: String,
    /// Log-normal shadowing standard deviation [dB].
    #[arg(long = "sigma-db", default_value_t = 4.0)]
    pub sigma_db: f64,
}

/// Why an inspection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RadioCliError {
    /// A usage mistake.
    #[error("{0}")]
    Usage(String),
    /// Writing failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl RadioCliError {
    /// Bad input (exit 2) or a failure (exit 1).
    pub fn is_input_error(&self) -> bool {
        matches!(self, RadioCliError::Usage(_))
    }
}

/// Runs a radio subcommand; `out` is the global `--out`.
pub fn execute(args: &RadioArgs, out: Option<&Path>) -> Result<(), RadioCliError> {
    match &args.command {
        RadioCommand::Curve(a) => curve(a, out),
    }
}

fn write(path: &Path, text: &str) -> Result<(), RadioCliError> {
    write_atomic(path, text.as_bytes()).map_err(|e| RadioCliError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn curve(a: &CurveArgs, out: Option<&Path>) -> Result<(), RadioCliError> {
    let dir = out.ok_or_else(|| RadioCliError::Usage("radio curve needs --out DIR".into()))?;
    if !(a.sigma_db.is_finite() && (0.0..=20.0).contains(&a.sigma_db)) {
        return Err(RadioCliError::Usage(format!(
            "--sigma-db {} must lie in 0..=20",
            a.sigma_db
        )));
    }
    let model = Model::parse(&a.model)
        .ok_or_else(|| RadioCliError::Usage(format!("unknown model {}", a.model)))?;
    std::fs::create_dir_all(dir).map_err(|e| RadioCliError::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let c = curves(model, RadioProfile::NRF52840, a.sigma_db);
    let mut pdr = String::from("distance_m,pdr\n");
    let mut pl = String::from("distance_m,loss_db\n");
    for &(d, loss, p) in &c.by_distance {
        pdr.push_str(&format!("{d},{p}\n"));
        pl.push_str(&format!("{d},{loss}\n"));
    }
    let mut per = String::from("snr_db,ber,per_20B,per_127B\n");
    for &(snr, b, p20, p127) in &c.by_snr {
        per.push_str(&format!("{snr},{b},{p20},{p127}\n"));
    }
    write(&dir.join("pdr_vs_distance.csv"), &pdr)?;
    write(&dir.join("pathloss_vs_distance.csv"), &pl)?;
    write(&dir.join("per_vs_snr.csv"), &per)?;
    let title = match c.exponent {
        Some(n) => format!("{} (n = {n:.4}), σ = {} dB", a.model, a.sigma_db),
        None => format!("{}, σ = {} dB", a.model, a.sigma_db),
    };
    plots(dir, &c, &title)
}

/// One line chart as SVG text.
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    y_log: bool,
) -> Result<String, String> {
    crate::report::html::font().map_err(|e| e.to_string())?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let pts = series.iter().flat_map(|(_, s)| s.iter());
        let (x0, x1) = pts
            .clone()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let ys = pts.map(|p| if y_log { p.1.max(1e-12).log10() } else { p.1 });
        let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        let mut ch = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| e.to_string())?;
        ch.configure_mesh()
            .x_desc(x_label)
            .y_desc(if y_log {
                format!("log10 {y_label}")
            } else {
                y_label.to_string()
            })
            .draw()
            .map_err(|e| e.to_string())?;
        let colours = [&BLUE, &RED, &GREEN];
        for (k, (name, s)) in series.iter().enumerate() {
            let colour = colours[k % colours.len()];
            ch.draw_series(LineSeries::new(
                s.iter()
                    .map(|&(x, y)| (x, if y_log { y.max(1e-12).log10() } else { y })),
                colour,
            ))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        if series.len() > 1 {
            ch.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn plots(dir: &Path, c: &Curves, title: &str) -> Result<(), RadioCliError> {
    let err = |name: &str, e: String| RadioCliError::Write {
        path: dir.join(name),
        reason: e,
    };
    let pdr: Vec<(f64, f64)> = c.by_distance.iter().map(|&(d, _, p)| (d, p)).collect();
    let pl: Vec<(f64, f64)> = c.by_distance.iter().map(|&(d, l, _)| (d, l)).collect();
    let p20: Vec<(f64, f64)> = c.by_snr.iter().map(|&(s, _, p, _)| (s, p)).collect();
    let p127: Vec<(f64, f64)> = c.by_snr.iter().map(|&(s, _, _, p)| (s, p)).collect();
    let ber: Vec<(f64, f64)> = c.by_snr.iter().map(|&(s, b, _, _)| (s, b)).collect();
    let files = [
        (
            "pdr_vs_distance.svg",
            chart(
                &format!("PDR of 20-octet frames: {title}"),
                "distance [m]",
                "mean PDR",
                &[("PDR", pdr)],
                false,
            ),
        ),
        (
            "pathloss_vs_distance.svg",
            chart(
                &format!("Path loss: {title}"),
                "distance [m]",
                "loss [dB]",
                &[("loss", pl)],
                false,
            ),
        ),
        (
            "per_vs_snr.svg",
            chart(
                "802.15.4 O-QPSK (Annex E)",
                "SINR [dB]",
                "error rate",
                &[
                    ("BER", ber),
                    ("PER 20 octets", p20),
                    ("PER 127 octets", p127),
                ],
                true,
            ),
        ),
    ];
    for (name, svg) in files {
        let svg = svg.map_err(|e| err(name, e))?;
        write(&dir.join(name), &svg)?;
    }
    Ok(())
}
