//! Writers: turn a run's metrics into files. This is the only place a run
//! touches the file system.
//!
//! Every file is written **atomically**: to a temporary file in the same
//! directory, flushed, then renamed over the target. A reader (or an
//! interrupted sweep) therefore sees either the old file or the whole new one,
//! never a torn one.

use std::io::Write;
use std::path::Path;

use crate::metrics::{EventTrace, Summary, TimeSeries, Timing};

pub mod html;

/// Writes `bytes` to `path` atomically (temp file + rename), creating the
/// parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A time series as CSV text: a header of column names, then one row per
/// sample with numbers in Rust's shortest round-trip form.
pub fn series_csv(series: &TimeSeries) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(series.columns()).expect("in-memory write");
    for row in series.rows() {
        w.write_record(row.iter().map(|v| fmt_f64(*v)))
            .expect("in-memory write");
    }
    String::from_utf8(w.into_inner().expect("in-memory flush")).expect("CSV of numbers is UTF-8")
}

/// Shortest round-trip decimal form; integers print without a fraction.
fn fmt_f64(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The event trace as CSV: `t_ns,seq,event`.
pub fn trace_csv(trace: &EventTrace) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["t_ns", "seq", "event"])
        .expect("in-memory write");
    for r in trace.rows() {
        w.write_record([r.t_ns.to_string(), r.seq.to_string(), r.event.clone()])
            .expect("in-memory write");
    }
    String::from_utf8(w.into_inner().expect("in-memory flush")).expect("trace is UTF-8")
}

/// Everything one run writes.
#[derive(Debug)]
pub struct RunFiles<'a> {
    /// Headline metrics → `summary.json`.
    pub summary: &'a Summary,
    /// Wall-clock figures → `timing.json`.
    pub timing: &'a Timing,
    /// Time series → `<name>.csv` each.
    pub series: &'a [TimeSeries],
    /// The event trace → `events.csv`, if traced.
    pub trace: Option<&'a EventTrace>,
    /// The scenario as run → `scenario.resolved.ron`.
    pub resolved_scenario: &'a str,
    /// Other files, by name.
    pub files: &'a [(String, Vec<u8>)],
}

/// Writes a run's files into `dir`, each atomically: the plots as
/// `plots/<name>.svg` and `plots/<name>.png`, and `report.html`. Fails
/// (after writing the data files) when the report cannot be drawn, e.g.
/// without a font for the plots.
pub fn write_run(dir: &Path, files: &RunFiles<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(
        &dir.join("summary.json"),
        files.summary.to_json().as_bytes(),
    )?;
    write_atomic(&dir.join("timing.json"), files.timing.to_json().as_bytes())?;
    for s in files.series {
        write_atomic(
            &dir.join(format!("{}.csv", s.name())),
            series_csv(s).as_bytes(),
        )?;
    }
    if let Some(trace) = files.trace {
        write_atomic(&dir.join("events.csv"), trace_csv(trace).as_bytes())?;
    }
    write_atomic(
        &dir.join("scenario.resolved.ron"),
        files.resolved_scenario.as_bytes(),
    )?;
    for (name, bytes) in files.files {
        write_atomic(&dir.join(name), bytes)?;
    }
    let (page, plots) = html::report(files).map_err(std::io::Error::other)?;
    for p in &plots {
        let base = dir.join("plots");
        write_atomic(&base.join(format!("{}.svg", p.name)), p.svg.as_bytes())?;
        write_atomic(&base.join(format!("{}.png", p.name)), &p.png)?;
    }
    write_atomic(&dir.join("report.html"), page.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn csv_has_header_and_exact_numbers() {
        let mut s = TimeSeries::new("ts", &["t_s", "x.v_pu"]);
        s.push(&[0.0, 1.0]);
        s.push(&[60.0, 0.987_654_321]);
        assert_eq!(series_csv(&s), "t_s,x.v_pu\n0,1\n60,0.987654321\n");
    }
}
