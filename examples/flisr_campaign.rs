//! A FLISR fault campaign: `N` short circuits drawn at random over a
//! scenario's feeders and day, one per run, and what FLISR made of them.
//!
//! ```text
//! cargo run --release --example flisr_campaign -- SCENARIO [N] [SEED] [--all-models]
//! ```
//!
//! Each run keeps the scenario's grid and mesh (and, with `--all-models`,
//! its gateway and ledger), drops its faults, and has one drawn short
//! circuit (see `gridtwin::campaign`). It prints the minimal share, the
//! unsafe isolations, lockouts, spurious starts and missed detections, the
//! isolation and restoration times, and every fault that was not isolated
//! minimally, as a line to reproduce it.

use std::path::Path;
use std::time::Instant;

use gridtwin::campaign::{self, Outcome, Settings};
use gridtwin::scenario::Scenario;
use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all_models = args.iter().any(|a| a == "--all-models");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let path = pos
        .first()
        .ok_or("usage: flisr_campaign SCENARIO [N] [SEED]")?;
    let n: u64 = pos.get(1).map_or(Ok(100), |x| x.parse())?;
    let seed: u64 = pos.get(2).map_or(Ok(1), |x| x.parse())?;
    let sc = Scenario::load(Path::new(path.as_str())).map_err(|e| format!("{e:?}"))?;
    let mut base = sc.to_file_in(None);
    base.faults.clear();
    if !all_models {
        base.gateway = None;
        base.ledger = None;
    }
    let setup = gridtwin::world::grid::setup(&sc)?.ok_or("the scenario has no grid")?;
    let (buses, lines) = campaign::candidates(&setup.net, &setup.breakers);
    let s = Settings::default();
    if let Some(r) = args.iter().find_map(|a| a.strip_prefix("--dump=")) {
        // The scenario of one replication, to run alone.
        let r: u64 = r.parse()?;
        let d = campaign::draw(seed, r, &buses, &lines, &s);
        let file = campaign::scenario(&base, &d, r, &s);
        let config = ron::ser::PrettyConfig::new()
            .struct_names(false)
            .extensions(ron::extensions::Extensions::IMPLICIT_SOME);
        println!("{}", ron::ser::to_string_pretty(&file, config)?);
        return Ok(());
    }
    let wall = Instant::now();
    let out: Vec<Result<Outcome, String>> = (0..n)
        .into_par_iter()
        .map(|r| campaign::run_one(&base, &sc.base_dir, &buses, &lines, seed, r, &s))
        .collect();
    let wall_s = wall.elapsed().as_secs_f64();
    let mut ok = Vec::new();
    for o in out {
        match o {
            Ok(o) => ok.push(o),
            Err(e) => println!("run failed: {e}"),
        }
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| ok.iter().filter(|o| f(o)).count();
    let lossless = count(&|o| o.frames_lost == 0 && o.tripped);
    println!("{path}: {} faults (seed {seed}) in {wall_s:.1} s", ok.len());
    println!(
        "  minimal {} ({:.2} %), minimal where the breaker tripped and no frame was lost {} of {lossless}, below the breaker's pickup {}",
        count(&|o| o.is_minimal()),
        100.0 * count(&|o| o.is_minimal()) as f64 / ok.len().max(1) as f64,
        count(&|o| o.is_minimal() && o.frames_lost == 0 && o.tripped),
        count(&|o| !o.tripped),
    );
    println!(
        "  unsafe isolations {}, lockouts {} (above every LMU: {}), spurious starts {}, faults in warm-up {}",
        count(&|o| o.unsafe_isolation),
        count(&|o| o.lockout),
        count(&|o| o.path.is_empty()),
        ok.iter().map(|o| o.spurious).sum::<u64>(),
        count(&|o| o.in_warm_up),
    );
    println!(
        "  detection as designed (path = detected) {}",
        count(&|o| o.path == o.detected)
    );
    for (name, f) in [
        (
            "isolate_s",
            (|o: &Outcome| o.isolate_s) as fn(&Outcome) -> Option<f64>,
        ),
        ("restore_s", |o| o.restore_s),
    ] {
        let mut v: Vec<f64> = ok.iter().filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            continue;
        }
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!(
            "  {name}: n {} p50 {:.3} p95 {:.3} max {:.3}",
            v.len(),
            q(0.5),
            q(0.95),
            q(1.0)
        );
    }
    for o in &ok {
        if (!o.is_minimal() && o.tripped)
            || o.unsafe_isolation
            || o.spurious > 0
            || o.path != o.detected
        {
            println!(
                "  {} minimal [{}] opened [{}] path [{}] detected [{}] lost {} unsafe {} lockout {} spurious {}",
                o.reproduce(),
                join(&o.minimal),
                join(&o.opened),
                join(&o.path),
                join(&o.detected),
                o.frames_lost,
                o.unsafe_isolation,
                o.lockout,
                o.spurious
            );
        }
    }
    Ok(())
}

fn join(s: &std::collections::BTreeSet<u32>) -> String {
    s.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}
