//! Builds the grid model from a scenario's `grid` section and `faults`.
//!
//! Names in the section (buses, lines, load shapes) are checked against the
//! feeder here, once it is loaded; a wrong name is a [`ScenarioError`] that
//! points at the field in the scenario file, with the closest valid name.

use std::collections::BTreeMap;

use crate::grid::dss::DssCircuit;
use crate::grid::fault::FaultKind;
use crate::grid::model::{FaultEffect, GridFault, GridSetup, Profile, short};
use crate::grid::network::{
    AngleReference, BranchKind, FaultResponse, LoadModel, Network, Pv, QControl,
};
use crate::grid::powerflow::Settings;
use crate::grid::solar::ClearSky;
use crate::kernel::{SimDuration, SimTime};
use crate::scenario::dto::{AngleReferenceFile, PvPlacementFile};
use crate::scenario::dto::{
    FaultFile, FeederFile, GridFile, LoadsFile, ProfilesFile, PvProfileFile, QControlFile,
};
use crate::scenario::locate::Seg;
use crate::scenario::{Scenario, ScenarioError};

/// Why the grid could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GridBuildError {
    /// A mistake in the scenario, located in its file.
    #[error(transparent)]
    Scenario(#[from] Box<ScenarioError>),
    /// The feeder file could not be imported.
    #[error("grid.feeder: {0}")]
    Feeder(String),
}

fn path(segs: &[&str]) -> Vec<Seg> {
    segs.iter().map(|s| Seg::Field((*s).to_string())).collect()
}

fn indexed(prefix: &[&str], i: usize, rest: &[&str]) -> Vec<Seg> {
    let mut p = path(prefix);
    p.push(Seg::Index(i));
    p.extend(path(rest));
    p
}

/// "did you mean `x`?" over `names`, if one is close.
fn suggest<'a>(names: impl Iterator<Item = &'a str>, wrong: &str) -> Option<String> {
    names
        .map(|n| (strsim::jaro_winkler(n, wrong), n))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, n)| format!("did you mean `{n}`?"))
}

struct Ctx<'a> {
    scenario: &'a Scenario,
}

impl Ctx<'_> {
    fn err(&self, at: Vec<Seg>, message: String, help: Option<String>) -> GridBuildError {
        GridBuildError::Scenario(Box::new(self.scenario.error_at(&at, message, help)))
    }

    fn bus(&self, net: &Network, name: &str, at: Vec<Seg>) -> Result<usize, GridBuildError> {
        let lower = name.to_ascii_lowercase();
        net.bus_index.get(&lower).copied().ok_or_else(|| {
            self.err(
                at,
                format!("the feeder has no bus `{name}`"),
                suggest(net.bus_index.keys().map(String::as_str), &lower),
            )
        })
    }

    fn line(&self, net: &Network, name: &str, at: Vec<Seg>) -> Result<usize, GridBuildError> {
        let lower = name.to_ascii_lowercase();
        net.branches
            .iter()
            .position(|b| b.name == lower && b.name.starts_with("line."))
            .ok_or_else(|| {
                let help = if lower.starts_with("line.") {
                    suggest(net.branches.iter().map(|b| b.name.as_str()), &lower)
                } else {
                    Some("write lines as `line.<name>`".into())
                };
                self.err(at, format!("the feeder has no line `{name}`"), help)
            })
    }
}

/// The output settings of a PV system, shared by `grid.pv` entries and
/// `grid.rooftop_pv`.
struct PvOutput<'a> {
    kw: f64,
    kva: Option<f64>,
    profile: &'a PvProfileFile,
    control: &'a QControlFile,
    fault: &'a crate::scenario::dto::FaultResponseFile,
}

impl PvOutput<'_> {
    /// The system at `bus` on `phases`.
    fn pv(&self, net: &Network, name: String, bus: usize, phases: [bool; 3]) -> Pv {
        let control = match self.control {
            QControlFile::UnityPf => QControl::Fixed { q_var: 0.0 },
            QControlFile::FixedKvar(q) => QControl::Fixed { q_var: q * 1e3 },
            QControlFile::Ieee1547 => QControl::ieee1547_default(),
            QControlFile::VoltVar(curve) => QControl::VoltVar {
                curve: curve.clone(),
            },
        };
        Pv {
            name,
            bus,
            phases,
            p_w: self.kw * 1e3,
            s_rated_va: self.kva.unwrap_or(1.1 * self.kw) * 1e3,
            v_nom: net.buses[bus].v_base_ln,
            control,
            fault_response: FaultResponse {
                current_limit_pu: self.fault.current_limit_pu,
                cessation_below_pu: self.fault.cessation_below_pu,
                angle: match self.fault.angle {
                    AngleReferenceFile::PreFault => AngleReference::PreFault,
                    AngleReferenceFile::Terminal => AngleReference::Terminal,
                },
            },
            held_current: None,
        }
    }

    /// Its output profile; a load shape is looked up in `shapes` (an error
    /// at `at` if absent).
    fn profile(
        &self,
        cx: &Ctx<'_>,
        shapes: Option<&BTreeMap<String, crate::grid::dss::LoadShapeDef>>,
        at: Vec<Seg>,
    ) -> Result<Profile, GridBuildError> {
        Ok(match self.profile {
            PvProfileFile::Constant => Profile::Flat,
            PvProfileFile::Shape(name) => {
                let lower = name.to_ascii_lowercase();
                let s = shapes.and_then(|s| s.get(&lower)).ok_or_else(|| {
                    cx.err(
                        at,
                        format!("the feeder has no loadshape `{name}`"),
                        shapes.and_then(|s| suggest(s.keys().map(String::as_str), &lower)),
                    )
                })?;
                Profile::Shape(s.clone())
            }
            PvProfileFile::ClearSky {
                latitude_deg,
                longitude_deg,
                utc_offset_h,
                day_of_year,
            } => Profile::ClearSky(ClearSky {
                latitude_deg: *latitude_deg,
                longitude_deg: *longitude_deg,
                utc_offset_h: *utc_offset_h,
                day_of_year: *day_of_year,
            }),
        })
    }
}

fn time(d: SimDuration) -> SimTime {
    SimTime::ZERO.saturating_add(d)
}

/// The feeder of a grid section, as imported (the circuit is `None` for a
/// synthetic feeder).
fn feeder(
    scenario: &Scenario,
    g: &GridFile,
) -> Result<(Network, Option<DssCircuit>), GridBuildError> {
    match &g.feeder {
        FeederFile::Dss(p) => {
            let full = scenario.resolve_path(p);
            let mut c =
                DssCircuit::load(&full).map_err(|e| GridBuildError::Feeder(e.to_string()))?;
            if let Some(d) = &g.districts {
                c = c.districts(d.layout());
            }
            let net = Network::from_dss(&c)
                .map_err(|e| GridBuildError::Feeder(format!("{}: {e}", full.display())))?;
            Ok((net, Some(c)))
        }
        FeederFile::Synthetic { buses, seed } => {
            Ok((Network::synthetic_radial(*buses, *seed), None))
        }
    }
}

/// Builds the grid model's setup from `scenario`, which must have a grid
/// section.
pub fn setup(scenario: &Scenario) -> Result<Option<GridSetup>, GridBuildError> {
    let Some(g) = &scenario.grid else {
        return Ok(None);
    };
    let cx = Ctx { scenario };
    let (mut net, circuit) = feeder(scenario, g)?;
    if g.loads == LoadsFile::ConstantPq {
        for l in &mut net.loads {
            l.model = LoadModel::Pq {
                vmin: 0.0,
                vmax: f64::INFINITY,
            };
        }
    }

    // Load profiles, by load element.
    let shapes = circuit.as_ref().map(|c| &c.loadshapes);
    let defs: BTreeMap<&str, &crate::grid::dss::LoadDef> = circuit
        .as_ref()
        .map(|c| c.loads.iter().map(|d| (d.name.as_str(), d)).collect())
        .unwrap_or_default();
    let mut load_profiles = Vec::with_capacity(net.loads.len());
    for l in &net.loads {
        let profile = match (g.profiles, defs.get(l.name.as_str()), shapes) {
            (ProfilesFile::Feeder, Some(d), Some(shapes)) => {
                match d.yearly.as_ref().or(d.daily.as_ref()) {
                    None => Profile::Flat,
                    Some(name) => {
                        let mut s = shapes.get(name).cloned().ok_or_else(|| {
                            GridBuildError::Feeder(format!(
                                "load.{} uses loadshape `{name}`, which the feeder does not define",
                                l.name
                            ))
                        })?;
                        if s.use_actual {
                            // Actual kW: as multipliers of the load's kW.
                            let kw = d.p_w / 1e3;
                            if kw > 0.0 {
                                s.mult.iter_mut().for_each(|m| *m /= kw);
                            }
                        }
                        Profile::Shape(s)
                    }
                }
            }
            _ => Profile::Flat,
        };
        load_profiles.push(profile);
    }

    // PV systems: those listed, then the rooftop ones.
    let mut pv_profiles = Vec::new();
    let mut pv_peak_w = Vec::new();
    for (i, p) in g.pv.iter().enumerate() {
        let bus = cx.bus(&net, &p.bus, indexed(&["grid", "pv"], i, &["bus"]))?;
        let phases = crate::scenario::parse_phases(&p.phases).unwrap_or([true; 3]);
        let out = PvOutput {
            kw: p.kw,
            kva: p.kva,
            profile: &p.profile,
            control: &p.control,
            fault: &p.fault_response,
        };
        let profile = out.profile(&cx, shapes, indexed(&["grid", "pv"], i, &["profile"]))?;
        net.pv.push(out.pv(&net, p.name.clone(), bus, phases));
        pv_profiles.push(profile);
        pv_peak_w.push(p.kw * 1e3);
    }
    if let Some(r) = &g.rooftop_pv {
        let out = PvOutput {
            kw: r.kw,
            kva: r.kva,
            profile: &r.profile,
            control: &r.control,
            fault: &r.fault_response,
        };
        let profile = out.profile(&cx, shapes, path(&["grid", "rooftop_pv", "profile"]))?;
        let share = r.share;
        let takes = |i: usize| ((i + 1) as f64 * share).floor() > (i as f64 * share).floor();
        // Each load's position with the loads grouped by their first
        // phase (a, then b, then c), in feeder order within a phase: the
        // stride over this order spreads the systems evenly within each
        // phase, and over the phases in proportion to their loads.
        let mut order: Vec<usize> = (0..net.loads.len()).collect();
        order.sort_by_key(|&i| (net.loads[i].phase, i));
        let mut rank = vec![0usize; net.loads.len()];
        for (j, &i) in order.iter().enumerate() {
            rank[i] = j;
        }
        let chosen: Vec<(String, usize, [bool; 3])> = net
            .loads
            .iter()
            .enumerate()
            .filter(|&(i, _)| match r.placement {
                PvPlacementFile::Balanced => takes(rank[i]),
                PvPlacementFile::OnePhase(_) | PvPlacementFile::Stride => takes(i),
            })
            .map(|(_, l)| {
                let mut phases = [false; 3];
                match &r.placement {
                    PvPlacementFile::OnePhase(p) => {
                        phases = crate::scenario::parse_phases(p).unwrap_or([true; 3]);
                    }
                    _ => {
                        phases[l.phase] = true;
                        if let Some(b) = l.to_phase {
                            phases[b] = true;
                        }
                    }
                }
                (format!("pv_{}", l.name), l.bus, phases)
            })
            .collect();
        for (name, bus, phases) in chosen {
            net.pv.push(out.pv(&net, name, bus, phases));
            pv_profiles.push(profile.clone());
            pv_peak_w.push(r.kw * 1e3);
        }
    }

    // Switches and their normal state.
    for (i, s) in g.switches.iter().enumerate() {
        let k = cx.line(&net, &s.line, indexed(&["grid", "switches"], i, &["line"]))?;
        net.branches[k].closed = !s.open;
    }
    let mut switching = Vec::new();
    for (i, s) in g.switching.iter().enumerate() {
        let k = cx.line(&net, &s.line, indexed(&["grid", "switching"], i, &["line"]))?;
        let close = s.action == crate::scenario::dto::SwitchAction::Close;
        switching.push((time(s.at), k, close));
    }

    // Faults; lines are split where a fault lies part-way along them.
    let mut splits: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    let mut faults = Vec::new();
    for (i, f) in scenario.faults.iter().enumerate() {
        let (at, duration, effect) = match f {
            FaultFile::Short(s) => {
                let kind = FaultKind::parse(&s.kind).expect("checked by validation");
                let bus = match (&s.bus, &s.line) {
                    (Some(b), _) => cx.bus(&net, b, indexed(&["faults"], i, &["bus"]))?,
                    (None, Some(l)) => {
                        let k = cx.line(&net, l, indexed(&["faults"], i, &["line"]))?;
                        let fr = s.fraction.unwrap_or(0.5);
                        split_at(&mut net, &mut splits, k, fr)
                            .map_err(|e| GridBuildError::Feeder(e.to_string()))?
                    }
                    (None, None) => unreachable!("validation requires a bus or a line"),
                };
                (s.at, s.duration, short(bus, kind, s.r_ohm))
            }
            FaultFile::OpenConductor(o) => {
                let branch = cx.line(&net, &o.line, indexed(&["faults"], i, &["line"]))?;
                let broken = crate::scenario::parse_phases(&o.phases).expect("checked");
                (o.at, o.duration, FaultEffect::Open { branch, broken })
            }
            // Faults of other models.
            _ => continue,
        };
        faults.push(GridFault {
            at: time(at),
            clear_at: duration.map(|d| time(at).saturating_add(d)),
            effect,
        });
    }

    let breakers = match &g.protection {
        Some(_) => feeder_heads(&net),
        None => Vec::new(),
    };
    Ok(Some(GridSetup {
        net,
        load_profiles,
        pv_profiles,
        pv_peak_w,
        profile_step: g.profile_step,
        clock_start: scenario.start,
        settings: Settings {
            tol_pu: g.solver.tol_pu,
            max_iter: g.solver.max_iter,
        },
        switching,
        faults,
        breakers,
        protection: g.protection.clone().unwrap_or_default(),
    }))
}

/// The feeders' head branches: the lines leaving the LV side of each
/// transformer at the source bus (or, without one, the lines leaving the
/// source bus).
pub fn feeder_heads(net: &Network) -> Vec<usize> {
    let src = net.source.bus;
    let boards: Vec<usize> = net
        .branches
        .iter()
        .filter(|b| matches!(b.kind, BranchKind::Transformer { .. }))
        .filter_map(|b| {
            if b.from == src {
                Some(b.to)
            } else if b.to == src {
                Some(b.from)
            } else {
                None
            }
        })
        .collect();
    let boards = if boards.is_empty() { vec![src] } else { boards };
    net.branches
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            !matches!(b.kind, BranchKind::Transformer { .. })
                && (boards.contains(&b.from) || boards.contains(&b.to))
        })
        .map(|(k, _)| k)
        .collect()
}

/// Splits line `k` at `fraction` of its original length, reusing the bus
/// of an earlier split at the same point; several splits of one line are
/// kept in order along it.
fn split_at(
    net: &mut Network,
    splits: &mut BTreeMap<(usize, u64), usize>,
    k: usize,
    fraction: f64,
) -> Result<usize, crate::grid::network::NetworkError> {
    if let Some(&bus) = splits.get(&(k, fraction.to_bits())) {
        return Ok(bus);
    }
    // Walk the sections of line k (the original index, then the `#2`
    // sections appended by earlier splits) to the one holding `fraction`.
    let mut points: Vec<f64> = splits
        .keys()
        .filter(|(line, _)| *line == k)
        .map(|(_, f)| f64::from_bits(*f))
        .collect();
    points.sort_by(f64::total_cmp);
    let below = points.iter().filter(|&&p| p < fraction).count();
    let (lo, hi) = (
        if below == 0 { 0.0 } else { points[below - 1] },
        points.get(below).copied().unwrap_or(1.0),
    );
    // The section from `lo` to `hi`: the original branch if lo = 0, else
    // the branch that starts at the bus of the split at `lo`.
    let section = if below == 0 {
        k
    } else {
        let start = splits[&(k, lo.to_bits())];
        net.branches
            .iter()
            .position(|b| b.from == start && b.name.starts_with(&net.branches[k].name))
            .expect("a split leaves a section starting at its bus")
    };
    let bus = net.split_line(section, (fraction - lo) / (hi - lo))?;
    splits.insert((k, fraction.to_bits()), bus);
    Ok(bus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(rooftop: &str) -> Scenario {
        let src =
            format!("(duration: \"1h\", grid: (feeder: Synthetic(buses: 60, seed: 3), {rooftop}))");
        Scenario::from_source("t.ron", &src, std::path::Path::new("."), "t").unwrap()
    }

    /// Rooftop PV goes on the given share of the customers, spread evenly in
    /// load order, on each load's own bus and phase, besides listed PV.
    #[test]
    fn rooftop_pv_covers_its_share_of_customers_evenly() {
        let none = setup(&scenario("")).unwrap().unwrap();
        assert!(none.net.pv.is_empty());
        let loads = none.net.loads.len();
        assert_eq!(loads, 20);
        for (share, want) in [(0.0, 0), (0.25, 5), (1.0 / 3.0, 6), (0.5, 10), (1.0, 20)] {
            let s = setup(&scenario(&format!(
                "rooftop_pv: (share: {share}, kw: 3.5, control: Ieee1547)"
            )))
            .unwrap()
            .unwrap();
            assert_eq!(s.net.pv.len(), want, "share {share}");
            // Spread over the phases as the loads are, within one system.
            for ph in 0..3 {
                let on = s.net.pv.iter().filter(|g| g.phases[ph]).count() as f64;
                let loads_on = s.net.loads.iter().filter(|l| l.phase == ph).count() as f64;
                assert!(
                    (on - loads_on * share).abs() <= 1.0,
                    "share {share} phase {ph}: {on}"
                );
            }
            assert_eq!(s.pv_profiles.len(), want);
            assert!(s.pv_peak_w.iter().all(|&w| w == 3500.0));
            for pv in &s.net.pv {
                let load = s
                    .net
                    .loads
                    .iter()
                    .find(|l| format!("pv_{}", l.name) == pv.name)
                    .expect("named after its load");
                assert_eq!(pv.bus, load.bus);
                let mut phases = [false; 3];
                phases[load.phase] = true;
                assert_eq!(pv.phases, phases);
                assert!((pv.s_rated_va - 1.1 * 3500.0).abs() < 1e-9);
            }
        }
        // A quarter: every fourth load, from the fourth.
        let s = setup(&scenario("rooftop_pv: (share: 0.25, kw: 1.0)"))
            .unwrap()
            .unwrap();
        let names: Vec<&str> = s.net.pv.iter().map(|p| p.name.as_str()).collect();
        let want: Vec<String> = (0..5)
            .map(|k| format!("pv_{}", none.net.loads[4 * k + 3].name))
            .collect();
        assert_eq!(names, want);
    }
}
