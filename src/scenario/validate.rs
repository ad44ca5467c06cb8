//! DTOs → [`Scenario`]: cross-field checks, and turning ron's errors into
//! positioned diagnostics with help.

use std::path::Path;

use super::dto::{
    FaultFile, FeederFile, GridFile, PvProfileFile, QControlFile, ScenarioFile, TraceFile,
};
use super::error::{ScenarioDiagnostic, ScenarioError, offset_of};
use super::locate::{Seg, locate, path_to_string};
use super::{OutputSettings, Scenario, Trace};
use crate::kernel::SimDuration;

/// A mistake found after parsing, at a path in the file.
pub(super) struct Invalid {
    pub(super) path: Vec<Seg>,
    pub(super) message: String,
    pub(super) help: Option<String>,
}

fn field(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|s| Seg::Field((*s).to_string())).collect()
}

pub(super) fn validate(
    dto: ScenarioFile,
    file: &str,
    src: &str,
    base_dir: &Path,
    default_name: &str,
) -> Result<Scenario, ScenarioError> {
    check(&dto, default_name).map_err(|inv| invalid_at(file, src, inv))?;
    Ok(Scenario {
        base_dir: base_dir.to_path_buf(),
        name: dto.name.unwrap_or_else(|| default_name.to_string()),
        seed: dto.seed,
        start: dto.start,
        duration: dto.duration,
        max_events: dto.max_events,
        outputs: OutputSettings {
            sample_interval: dto.outputs.sample_interval,
            trace: match dto.outputs.trace {
                TraceFile::Off => Trace::Off,
                TraceFile::Events => Trace::Events,
            },
            watch_lmus: dto.outputs.watch_lmus.clone(),
        },
        grid: dto.grid,
        mesh: dto.mesh,
        gateway: dto.gateway,
        ledger: dto.ledger,
        faults: dto.faults,
        origin: super::Origin {
            file: file.to_string(),
            src: src.to_string(),
        },
    })
}

fn check(dto: &ScenarioFile, default_name: &str) -> Result<(), Invalid> {
    let name = dto.name.as_deref().unwrap_or(default_name);
    let name_ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(Invalid {
            path: field(&["name"]),
            message: format!("invalid scenario name {name:?}"),
            help: Some(
                "the name becomes a folder name: use letters, digits, `_`, `-` and `.`".into(),
            ),
        });
    }
    if dto.start >= SimDuration::from_hours(24).expect("24 h fits") {
        return Err(Invalid {
            path: field(&["start"]),
            message: format!("the start {} is not a time of day (under 24 h)", dto.start),
            help: Some("give the time of day at which the run begins, e.g. \"11h58min\"".into()),
        });
    }
    if dto.duration.is_zero() {
        return Err(Invalid {
            path: field(&["duration"]),
            message: "the duration must be longer than zero".into(),
            help: Some("write e.g. \"1h\" or \"24h\"".into()),
        });
    }
    if dto.max_events == Some(0) {
        return Err(Invalid {
            path: field(&["max_events"]),
            message: "the event budget must be at least 1".into(),
            help: Some("leave `max_events` out for no budget".into()),
        });
    }
    let sample = dto.outputs.sample_interval;
    if sample.is_zero() {
        return Err(Invalid {
            path: field(&["outputs", "sample_interval"]),
            message: "the sample interval must be longer than zero".into(),
            help: None,
        });
    }
    if sample > dto.duration {
        return Err(Invalid {
            path: field(&["outputs", "sample_interval"]),
            message: format!(
                "the sample interval {sample} is longer than the duration {}",
                dto.duration
            ),
            help: Some("shorten `outputs.sample_interval` or lengthen `duration`".into()),
        });
    }
    if let Some(grid) = &dto.grid {
        check_grid(grid)?;
    }
    if let Some(mesh) = &dto.mesh {
        check_mesh(mesh, dto.grid.is_some())?;
    }
    if let Some(g) = &dto.gateway {
        if dto.mesh.is_none() {
            return Err(bad(
                field(&["gateway"]),
                "the gateway takes the LMUs' traffic from the mesh's coordinator, but the scenario has no `mesh`".into(),
                Some("add a `mesh` section (`mesh: ()` for its defaults)"),
            ));
        }
        check_gateway(g, dto.duration)?;
    }
    if let Some(l) = &dto.ledger {
        check_ledger(l)?;
    }
    for (i, f) in dto.faults.iter().enumerate() {
        check_fault(f, i, dto.duration)?;
        if let (Some(l), FaultFile::ValidatorCrash(c)) = (&dto.ledger, f)
            && c.validator >= l.validators
        {
            return Err(bad(
                at(
                    &[Seg::Field("faults".into()), Seg::Index(i)],
                    &["validator"],
                ),
                format!(
                    "the ledger has validators 0 to {}, not {}",
                    l.validators - 1,
                    c.validator
                ),
                None,
            ));
        }
        if let (Some(l), FaultFile::ValidatorPartition(pf)) = (&dto.ledger, f)
            && pf.groups.len() != l.validators as usize
        {
            return Err(bad(
                at(&[Seg::Field("faults".into()), Seg::Index(i)], &["groups"]),
                format!(
                    "{} groups given for {} validators: give one per validator",
                    pf.groups.len(),
                    l.validators
                ),
                None,
            ));
        }
        if let (Some(l), FaultFile::ValidatorPartition(pf)) = (&dto.ledger, f)
            && let Some(b) = pf.bridges.iter().find(|&&b| b >= l.validators)
        {
            return Err(bad(
                at(&[Seg::Field("faults".into()), Seg::Index(i)], &["bridges"]),
                format!(
                    "bridge {b} is not one of validators 0 to {}",
                    l.validators - 1
                ),
                None,
            ));
        }
        let p = vec![Seg::Field("faults".into()), Seg::Index(i)];
        let (needs, present) = match f {
            FaultFile::Short(_) | FaultFile::OpenConductor(_) => ("grid", dto.grid.is_some()),
            FaultFile::CellularOutage(_)
            | FaultFile::BrokerOutage(_)
            | FaultFile::GatewayOutage(_) => ("gateway", dto.gateway.is_some()),
            FaultFile::ValidatorCrash(_) | FaultFile::ValidatorPartition(_) => {
                ("ledger", dto.ledger.is_some())
            }
            _ => ("mesh", dto.mesh.is_some()),
        };
        if !present {
            return Err(bad(
                p,
                format!(
                    "this fault acts on the {needs}, but the scenario has no `{needs}` section"
                ),
                Some(&format!("add a `{needs}` section or remove the fault")),
            ));
        }
    }
    Ok(())
}

fn at(path: &[Seg], more: &[&str]) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.extend(more.iter().map(|s| Seg::Field((*s).to_string())));
    p
}

fn bad(path: Vec<Seg>, message: String, help: Option<&str>) -> Invalid {
    Invalid {
        path,
        message,
        help: help.map(str::to_string),
    }
}

/// `"abc"`, `"a"`, `"ca"`…: each of a, b, c at most once, at least one.
pub(crate) fn parse_phases(s: &str) -> Option<[bool; 3]> {
    let mut mask = [false; 3];
    for c in s.chars() {
        let k = match c {
            'a' => 0,
            'b' => 1,
            'c' => 2,
            _ => return None,
        };
        if mask[k] {
            return None;
        }
        mask[k] = true;
    }
    mask.iter().any(|&m| m).then_some(mask)
}

fn check_grid(g: &GridFile) -> Result<(), Invalid> {
    let root = field(&["grid"]);
    if let FeederFile::Synthetic { buses, .. } = g.feeder
        && buses < 2
    {
        return Err(bad(
            at(&root, &["feeder", "buses"]),
            format!("a synthetic feeder needs at least 2 buses, not {buses}"),
            None,
        ));
    }
    if let Some(p) = &g.protection {
        let pr = at(&root, &["protection"]);
        if !(p.pickup_a.is_finite() && p.pickup_a > 0.0) {
            return Err(bad(
                at(&pr, &["pickup_a"]),
                format!("pick-up {} A: give a current > 0", p.pickup_a),
                None,
            ));
        }
        if p.trip_delay.is_zero() || p.reset.is_zero() {
            return Err(bad(
                pr,
                "`trip_delay` and `reset` must be longer than zero".into(),
                None,
            ));
        }
        if p.reclose.len() > 4 || p.reclose.iter().any(|d| d.is_zero()) {
            return Err(bad(
                at(&pr, &["reclose"]),
                "give at most 4 reclose shots, each after a dead time > 0".into(),
                Some("e.g. [\"3s\", \"15s\"]; [] trips to lockout at once"),
            ));
        }
    }
    if g.profile_step.is_zero() {
        return Err(bad(
            at(&root, &["profile_step"]),
            "the profile step must be longer than zero".into(),
            Some("write e.g. \"1min\" or \"15min\""),
        ));
    }
    if !(g.solver.tol_pu > 0.0 && g.solver.tol_pu < 1.0) {
        return Err(bad(
            at(&root, &["solver", "tol_pu"]),
            format!("tolerance {} pu must lie in (0, 1)", g.solver.tol_pu),
            Some("the default is 1e-10"),
        ));
    }
    if g.solver.max_iter == 0 {
        return Err(bad(
            at(&root, &["solver", "max_iter"]),
            "at least one iteration is needed".into(),
            None,
        ));
    }
    for (i, pv) in g.pv.iter().enumerate() {
        let mut p = root.clone();
        p.extend([Seg::Field("pv".into()), Seg::Index(i)]);
        if g.pv[..i].iter().any(|o| o.name == pv.name) {
            return Err(bad(
                at(&p, &["name"]),
                format!("PV name `{}` is used twice", pv.name),
                None,
            ));
        }
        if parse_phases(&pv.phases).is_none() {
            return Err(bad(
                at(&p, &["phases"]),
                format!("phases `{}`: write one to three of a, b, c", pv.phases),
                Some("e.g. \"abc\" or \"b\""),
            ));
        }
        check_pv_output(&p, pv.kw, pv.kva, &pv.profile, &pv.control)?;
        check_fault_response(&p, &pv.fault_response)?;
    }
    if let Some(r) = &g.rooftop_pv {
        let p = at(&root, &["rooftop_pv"]);
        if !(0.0..=1.0).contains(&r.share) {
            return Err(bad(
                at(&p, &["share"]),
                format!("share {} must lie in [0, 1]", r.share),
                Some("e.g. 0.333 for a third of the customers"),
            ));
        }
        check_pv_output(&p, r.kw, r.kva, &r.profile, &r.control)?;
        check_fault_response(&p, &r.fault_response)?;
        if let super::dto::PvPlacementFile::OnePhase(ph) = &r.placement
            && !matches!(ph.as_str(), "a" | "b" | "c")
        {
            return Err(bad(
                at(&p, &["placement"]),
                format!("phase `{ph}`: write one of a, b, c"),
                Some("e.g. OnePhase(\"b\")"),
            ));
        }
    }
    if let Some(d) = &g.districts {
        let p = at(&root, &["districts"]);
        if !(1..=10_000).contains(&d.count) {
            return Err(bad(
                at(&p, &["count"]),
                format!("count {} must lie in 1 to 10 000", d.count),
                None,
            ));
        }
        if d.columns == Some(0) {
            return Err(bad(
                at(&p, &["columns"]),
                "columns must be at least 1".into(),
                Some("or leave it out for a square town"),
            ));
        }
        if !(d.spacing_m.is_finite() && d.spacing_m > 0.0) {
            return Err(bad(
                at(&p, &["spacing_m"]),
                format!("spacing_m {} must be a positive distance", d.spacing_m),
                Some("e.g. 2000.0: beyond radio range, districts keep their meshes apart"),
            ));
        }
        if !matches!(g.feeder, FeederFile::Dss(_)) {
            return Err(bad(
                p,
                "districts copy an OpenDSS feeder; this feeder is synthetic".into(),
                Some("use feeder: Dss(\"Master.dss\"), or drop districts"),
            ));
        }
    }
    for (i, s) in g.switching.iter().enumerate() {
        if !g.switches.iter().any(|w| w.line == s.line) {
            let mut p = root.clone();
            p.extend([Seg::Field("switching".into()), Seg::Index(i)]);
            return Err(bad(
                at(&p, &["line"]),
                format!("`{}` is not listed in grid.switches", s.line),
                Some("add it to `switches` first"),
            ));
        }
    }
    Ok(())
}

/// An inverter's fault response, at `p`.
fn check_fault_response(p: &[Seg], f: &super::dto::FaultResponseFile) -> Result<(), Invalid> {
    if !(f.current_limit_pu.is_finite() && f.current_limit_pu > 0.0) {
        return Err(bad(
            at(p, &["fault_response", "current_limit_pu"]),
            format!("current_limit_pu {} must be positive", f.current_limit_pu),
            Some("inverters feed about 1.1–1.5 × rated current into a fault"),
        ));
    }
    if !(0.0..1.0).contains(&f.cessation_below_pu) {
        return Err(bad(
            at(p, &["fault_response", "cessation_below_pu"]),
            format!(
                "cessation_below_pu {} must lie in [0, 1)",
                f.cessation_below_pu
            ),
            Some("0 rides through; e.g. 0.5 for momentary cessation below half voltage"),
        ));
    }
    Ok(())
}

/// The output settings shared by `grid.pv` entries and `grid.rooftop_pv`,
/// at `p`.
fn check_pv_output(
    p: &[Seg],
    kw: f64,
    kva: Option<f64>,
    profile: &PvProfileFile,
    control: &QControlFile,
) -> Result<(), Invalid> {
    if !(kw.is_finite() && kw >= 0.0) {
        return Err(bad(at(p, &["kw"]), format!("kw {} must be ≥ 0", kw), None));
    }
    if let Some(kva) = kva
        && !(kva.is_finite() && kva > 0.0 && kva >= kw)
    {
        return Err(bad(
            at(p, &["kva"]),
            format!("kva {kva} must be positive and at least kw ({})", kw),
            None,
        ));
    }
    if let PvProfileFile::ClearSky {
        latitude_deg,
        day_of_year,
        ..
    } = *profile
    {
        if !(-90.0..=90.0).contains(&latitude_deg) {
            return Err(bad(
                at(p, &["profile", "latitude_deg"]),
                format!("latitude {latitude_deg}° is not in [−90, 90]"),
                None,
            ));
        }
        if !(1..=366).contains(&day_of_year) {
            return Err(bad(
                at(p, &["profile", "day_of_year"]),
                format!("day {day_of_year} is not in 1–366"),
                None,
            ));
        }
    }
    if let QControlFile::VoltVar(curve) = control {
        let increasing = curve.windows(2).all(|w| w[0].0 < w[1].0);
        if curve.len() < 2 || !increasing || curve.iter().any(|(_, q)| q.abs() > 1.0) {
            return Err(bad(
                at(p, &["control"]),
                "a volt-var curve needs at least two points in increasing voltage, with |Q| ≤ 1 pu"
                    .into(),
                Some("e.g. VoltVar([(0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44)])"),
            ));
        }
    }
    Ok(())
}

fn check_mesh(m: &super::dto::MeshFile, has_grid: bool) -> Result<(), Invalid> {
    use super::dto::{FadingFile, LmuProtectionFile, MeshNodesFile, PropagationFile};
    let root = field(&["mesh"]);
    let prot = at(&root, &["lmu_protection"]);
    let positive = |x: f64| x.is_finite() && x > 0.0;
    match &m.lmu_protection {
        LmuProtectionFile::Fixed(f) => {
            for (name, v) in [
                ("delta_phase_a", f.delta_phase_a),
                ("delta_earth_a", f.delta_earth_a),
                ("fault_detect_a", f.fault_detect_a),
            ] {
                if !positive(v) {
                    return Err(bad(
                        at(&prot, &[name]),
                        format!("{name} {v} must be a positive current [A]"),
                        None,
                    ));
                }
            }
        }
        LmuProtectionFile::Derived(d) => {
            if !(d.margin.is_finite() && d.margin >= 1.0) {
                return Err(bad(
                    at(&prot, &["margin"]),
                    format!("margin {} must be at least 1", d.margin),
                    Some("e.g. 1.5: pickups 1.5 × above healthy values and below fault currents"),
                ));
            }
            if !has_grid {
                return Err(bad(
                    prot.clone(),
                    "`Derived` settings come from the grid, but the scenario has no `grid`".into(),
                    Some("use `Fixed(...)`, or add a `grid` section"),
                ));
            }
        }
    }
    let r = m.lmu_protection.r_fault_ohm();
    if !(r.is_finite() && r >= 0.0) {
        return Err(bad(
            at(&prot, &["r_fault_ohm"]),
            format!("r_fault_ohm {r} must be a resistance ≥ 0 [Ω]"),
            None,
        ));
    }
    match m.nodes {
        MeshNodesFile::GridJunctions if !has_grid => {
            return Err(bad(
                at(&root, &["nodes"]),
                "`GridJunctions` places LMUs on the grid, but the scenario has no `grid`".into(),
                Some("add a `grid` section, or use `Line(count: 20, spacing_m: 300.0)`"),
            ));
        }
        MeshNodesFile::Line { count, spacing_m }
            if count < 2 || spacing_m.is_nan() || spacing_m <= 0.0 =>
        {
            return Err(bad(
                at(&root, &["nodes"]),
                format!(
                    "a line needs at least 2 nodes and a positive spacing, not {count} × {spacing_m} m"
                ),
                None,
            ));
        }
        _ => {}
    }
    if let PropagationFile::LogDistance(n) = m.propagation
        && !(1.0..=6.0).contains(&n)
    {
        return Err(bad(
            at(&root, &["propagation"]),
            format!("exponent {n} is not in 1–6"),
            None,
        ));
    }
    if let FadingFile::Nakagami(k) = m.fading
        && (k.is_nan() || k < 0.5)
    {
        return Err(bad(
            at(&root, &["fading"]),
            format!("Nakagami m = {k} must be ≥ 0.5"),
            None,
        ));
    }
    let checks: [(&str, bool, String); 5] = [
        (
            "channels",
            (1..=16).contains(&m.channels),
            format!("{} (802.15.4 has 16 channels at 2.4 GHz)", m.channels),
        ),
        (
            "pole_height_m",
            m.pole_height_m > 0.0 && m.pole_height_m.is_finite(),
            format!("{} m", m.pole_height_m),
        ),
        (
            "shadowing_sigma_db",
            (0.0..=20.0).contains(&m.shadowing_sigma_db),
            format!("{} dB", m.shadowing_sigma_db),
        ),
        (
            "cutoff_margin_db",
            (0.0..=100.0).contains(&m.cutoff_margin_db),
            format!("{} dB", m.cutoff_margin_db),
        ),
        (
            "report_interval",
            !m.report_interval.is_zero() && !m.dao_interval.is_zero() && !m.trickle_imin.is_zero(),
            "zero".into(),
        ),
    ];
    for (name, ok, value) in checks {
        if !ok {
            return Err(bad(
                at(&root, &[name]),
                format!("`{name}` {value} is out of range"),
                None,
            ));
        }
    }
    Ok(())
}

fn check_action(a: &super::dto::ActionFile, path: Vec<Seg>) -> Result<(), Invalid> {
    use super::dto::ActionFile;
    match *a {
        ActionFile::LimitPv { percent } | ActionFile::ReduceLoad { percent, .. }
            if percent > 100 =>
        {
            Err(bad(path, format!("{percent} % is more than 100 %"), None))
        }
        ActionFile::SetReportInterval(d) if d < SimDuration::from_secs(1).expect("fits") => Err(
            bad(path, format!("a report interval of {d} is below 1 s"), None),
        ),
        ActionFile::ReduceLoad { duration, .. }
            if duration.as_nanos() / 60_000_000_000 > u64::from(u16::MAX) =>
        {
            Err(bad(
                path,
                format!("a load reduction of {duration} is longer than 65535 min"),
                None,
            ))
        }
        _ => Ok(()),
    }
}

fn check_gateway(g: &super::dto::GatewayFile, duration: SimDuration) -> Result<(), Invalid> {
    use super::dto::{AggregationFile, ConditionFile};
    let root = field(&["gateway"]);
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    for (f, v) in [("site", &g.site), ("id", &g.id)] {
        if !name_ok(v) {
            return Err(bad(
                at(&root, &[f]),
                format!("`{v}` is not a topic level: use letters, digits, `_`, `-`, `.`"),
                None,
            ));
        }
    }
    let (AggregationFile::WaitForAll { deadline } | AggregationFile::FixedDeadline { deadline }) =
        g.aggregation;
    if deadline.is_zero() {
        return Err(bad(
            at(&root, &["aggregation"]),
            "the deadline must be after the round's end (> 0)".into(),
            None,
        ));
    }
    if g.uart_baud < 1200 {
        return Err(bad(
            at(&root, &["uart_baud"]),
            format!("{} bit/s is below 1200", g.uart_baud),
            None,
        ));
    }
    if g.buffer_bytes == 0 {
        return Err(bad(
            at(&root, &["buffer_bytes"]),
            "the buffer needs at least one byte".into(),
            None,
        ));
    }
    let m = &g.mqtt;
    let mq = at(&root, &["mqtt"]);
    if m.qos > 1 {
        return Err(bad(
            at(&mq, &["qos"]),
            format!("QoS {} is not modelled: use 0 or 1", m.qos),
            None,
        ));
    }
    if m.max_inflight == 0 {
        return Err(bad(
            at(&mq, &["max_inflight"]),
            "the in-flight window needs at least 1".into(),
            None,
        ));
    }
    let ka = m.keep_alive.as_nanos();
    if !(1_000_000_000..=65_535_000_000_000).contains(&ka) {
        return Err(bad(
            at(&mq, &["keep_alive"]),
            format!("keep-alive {} is not within 1 s to 65535 s", m.keep_alive),
            None,
        ));
    }
    for (f, d) in [
        ("ping_timeout", m.ping_timeout),
        ("connect_timeout", m.connect_timeout),
        ("backoff_min", m.backoff_min),
        ("retransmit_after", m.retransmit_after),
    ] {
        if d.is_zero() {
            return Err(bad(at(&mq, &[f]), format!("`{f}` must be > 0"), None));
        }
    }
    if m.backoff_max < m.backoff_min {
        return Err(bad(
            at(&mq, &["backoff_max"]),
            "`backoff_max` is below `backoff_min`".into(),
            None,
        ));
    }
    let c = &g.cloud;
    let cl = at(&root, &["cloud"]);
    if !(c.ingest_sigma_ln.is_finite() && c.ingest_sigma_ln >= 0.0) {
        return Err(bad(
            at(&cl, &["ingest_sigma_ln"]),
            "σ must be ≥ 0".into(),
            None,
        ));
    }
    if !(c.v_nominal_v.is_finite() && c.v_nominal_v > 0.0) {
        return Err(bad(
            at(&cl, &["v_nominal_v"]),
            "the declared voltage must be > 0 V".into(),
            None,
        ));
    }
    for (i, cmd) in c.commands.iter().enumerate() {
        let p = at(&cl, &["commands"]);
        let mut p = p;
        p.push(Seg::Index(i));
        if cmd.at > duration {
            return Err(bad(
                at(&p, &["at"]),
                format!(
                    "the command at {} comes after the end of the run ({duration})",
                    cmd.at
                ),
                None,
            ));
        }
        if cmd.lmu == 0 {
            return Err(bad(
                at(&p, &["lmu"]),
                "node 0 is the coordinator, not an LMU".into(),
                None,
            ));
        }
        check_action(&cmd.action, at(&p, &["action"]))?;
    }
    for (i, r) in c.rules.iter().enumerate() {
        let mut p = at(&cl, &["rules"]);
        p.push(Seg::Index(i));
        let (ConditionFile::VoltageAbove(v) | ConditionFile::VoltageBelow(v)) = r.when;
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(
                at(&p, &["when"]),
                format!("a threshold of {v} pu must be > 0"),
                None,
            ));
        }
        check_action(&r.then, at(&p, &["then"]))?;
    }
    Ok(())
}

fn check_ledger(l: &super::dto::LedgerFile) -> Result<(), Invalid> {
    let root = field(&["ledger"]);
    if !(1..=64).contains(&l.validators) {
        return Err(bad(
            at(&root, &["validators"]),
            format!("{} validators: give 1 to 64", l.validators),
            None,
        ));
    }
    for (k, d) in [
        ("block_interval", l.block_interval),
        ("timeout_propose", l.timeout_propose),
        ("timeout_vote", l.timeout_vote),
    ] {
        if d.is_zero() {
            return Err(bad(at(&root, &[k]), format!("`{k}` must be > 0"), None));
        }
    }
    if l.wait_for_txs.is_some_and(|d| d.is_zero()) {
        return Err(bad(
            at(&root, &["wait_for_txs"]),
            "`wait_for_txs` must be > 0 (leave it out for a block every interval)".into(),
            None,
        ));
    }
    if l.max_block_txs == 0 {
        return Err(bad(
            at(&root, &["max_block_txs"]),
            "a block needs room for at least one transaction".into(),
            None,
        ));
    }
    if !(0.0..1.0).contains(&l.backhaul.loss) {
        return Err(bad(
            at(&root, &["backhaul", "loss"]),
            format!("loss {} is not in [0, 1)", l.backhaul.loss),
            None,
        ));
    }
    let mut seen = Vec::new();
    for (i, b) in l.byzantine.iter().enumerate() {
        let mut p = at(&root, &["byzantine"]);
        p.push(Seg::Index(i));
        if b.validator >= l.validators || seen.contains(&b.validator) {
            return Err(bad(
                at(&p, &["validator"]),
                format!(
                    "validator {} is not one of 0 to {}, or is listed twice",
                    b.validator,
                    l.validators - 1
                ),
                None,
            ));
        }
        seen.push(b.validator);
        if l.consensus == super::dto::ConsensusFile::Aura
            && b.mode != super::dto::ByzantineModeFile::Equivocate
        {
            return Err(bad(
                at(&p, &["mode"]),
                "Aura models crashes, partitions and equivocation only: a silent or delaying validator needs `consensus: Bft` (or a ValidatorCrash fault)".into(),
                None,
            ));
        }
    }
    let w = &l.workload;
    let wr = at(&root, &["workload"]);
    if w.plants == 0 || w.consumers == 0 || w.preferences == 0 || w.preferences > w.plants {
        return Err(bad(
            wr,
            format!(
                "a workload needs plants, consumers, and 1 to `plants` preferences (got {}, {}, {})",
                w.plants, w.consumers, w.preferences
            ),
            None,
        ));
    }
    if w.interval.is_zero()
        || w.settle_after >= w.interval.checked_mul(4).unwrap_or(SimDuration::MAX)
    {
        return Err(bad(
            at(&wr, &["settle_after"]),
            "the interval must be > 0 and the matching within four intervals of it".into(),
            None,
        ));
    }
    if !(w.plant_peak_kw.is_finite()
        && w.plant_peak_kw >= 0.0
        && w.consumer_mean_kw.is_finite()
        && w.consumer_mean_kw >= 0.0
        && (0.0..24.0).contains(&w.start_h)
        && w.prosumer_peak_kw.is_finite()
        && w.prosumer_peak_kw >= 0.0
        && w.prosumer_mean_kw.is_finite()
        && w.prosumer_mean_kw >= 0.0)
    {
        return Err(bad(
            wr,
            "powers must be finite and ≥ 0, and `start_h` within 0–24 h".into(),
            None,
        ));
    }
    if !(w.feed_in_tariff.is_finite()
        && w.grid_tariff.is_finite()
        && 0.0 <= w.feed_in_tariff
        && w.feed_in_tariff <= w.grid_tariff
        && w.grid_tariff <= 1000.0)
    {
        return Err(bad(
            at(&wr, &["feed_in_tariff"]),
            format!(
                "tariffs {} and {}: need 0 ≤ feed-in ≤ grid ≤ 1000 per kWh",
                w.feed_in_tariff, w.grid_tariff
            ),
            None,
        ));
    }
    if let Some(d) = &w.dr {
        let dr = at(&wr, &["dr"]);
        let max = crate::ledger::state::contracts::MAX_DR_INTERVALS;
        for (k, v) in [("duration", d.duration), ("baseline", d.baseline)] {
            if !(1..=max).contains(&v) {
                return Err(bad(
                    at(&dr, &[k]),
                    format!("`{k}` {v}: give 1 to {max} intervals"),
                    None,
                ));
            }
        }
        for (k, v) in [
            ("participation", d.participation),
            ("reduction", d.reduction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(
                    at(&dr, &[k]),
                    format!("`{k}` {v} is not a fraction in [0, 1]"),
                    None,
                ));
            }
        }
        if !(d.rate.is_finite() && (0.0..=1000.0).contains(&d.rate)) {
            return Err(bad(
                at(&dr, &["rate"]),
                format!("rate {} per kWh: give 0 to 1000", d.rate),
                None,
            ));
        }
        if !d.threshold_kw.is_finite() {
            return Err(bad(
                at(&dr, &["threshold_kw"]),
                "the threshold must be finite".into(),
                None,
            ));
        }
    }
    Ok(())
}

fn check_fault(f: &FaultFile, i: usize, duration: SimDuration) -> Result<(), Invalid> {
    let p = vec![Seg::Field("faults".into()), Seg::Index(i)];
    let at_time = match f {
        FaultFile::Short(s) => s.at,
        FaultFile::OpenConductor(o) => o.at,
        FaultFile::Jammer(j) => j.at,
        FaultFile::LinkDegradation(l) => l.at,
        FaultFile::NodeCrash(c) => c.at,
        FaultFile::SensorFault(sf) => sf.at,
        FaultFile::CellularOutage(o)
        | FaultFile::BrokerOutage(o)
        | FaultFile::GatewayOutage(o)
        | FaultFile::CoordinatorOutage(o) => o.at,
        FaultFile::ValidatorCrash(c) => c.at,
        FaultFile::ValidatorPartition(pf) => pf.at,
    };
    if at_time > duration {
        return Err(bad(
            at(&p, &["at"]),
            format!("the fault at {at_time} comes after the end of the run ({duration})"),
            None,
        ));
    }
    match f {
        FaultFile::Short(s) => {
            if crate::grid::fault::FaultKind::parse(&s.kind).is_none() {
                return Err(bad(
                    at(&p, &["kind"]),
                    format!("unknown fault kind `{}`", s.kind),
                    Some(&format!(
                        "valid kinds: {}",
                        crate::grid::fault::FaultKind::NAMES.join(", ")
                    )),
                ));
            }
            match (&s.bus, &s.line) {
                (Some(_), None) if s.fraction.is_some() => {
                    return Err(bad(
                        at(&p, &["fraction"]),
                        "`fraction` applies to a fault on a `line`, not at a `bus`".into(),
                        None,
                    ));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(bad(
                        p.clone(),
                        "give exactly one of `bus` or `line`".into(),
                        None,
                    ));
                }
            }
            if let Some(fr) = s.fraction
                && !(fr > 0.0 && fr < 1.0)
            {
                return Err(bad(
                    at(&p, &["fraction"]),
                    format!("fraction {fr} must lie strictly between 0 and 1"),
                    None,
                ));
            }
            if !(s.r_ohm.is_finite() && s.r_ohm >= 0.0) {
                return Err(bad(
                    at(&p, &["r_ohm"]),
                    format!("fault resistance {} Ω must be ≥ 0", s.r_ohm),
                    None,
                ));
            }
            if s.duration.is_some_and(|d| d.is_zero()) {
                return Err(bad(
                    at(&p, &["duration"]),
                    "a fault lasts longer than zero; leave `duration` out for a permanent one"
                        .into(),
                    None,
                ));
            }
        }
        FaultFile::Jammer(j) => {
            if !(j.power_dbm.is_finite()
                && j.x_m.is_finite()
                && j.y_m.is_finite()
                && j.height_m > 0.0)
            {
                return Err(bad(
                    p.clone(),
                    "a jammer needs a finite position, height and power".into(),
                    None,
                ));
            }
        }
        FaultFile::LinkDegradation(l) => {
            if !(l.extra_db.is_finite() && l.extra_db >= 0.0) || l.a == l.b {
                return Err(bad(
                    p.clone(),
                    "link degradation needs two different nodes and extra_db ≥ 0".into(),
                    None,
                ));
            }
        }
        FaultFile::NodeCrash(_) => {}
        FaultFile::SensorFault(sf) => {
            if sf.node == 0 {
                return Err(bad(
                    at(&p, &["node"]),
                    "node 0 is the coordinator, which has no LMU sensors".into(),
                    None,
                ));
            }
            if let super::dto::SensorModeFile::Drift { pct_per_h } = sf.mode
                && !(pct_per_h.is_finite() && pct_per_h.abs() <= 1000.0)
            {
                return Err(bad(
                    at(&p, &["mode"]),
                    format!("drift {pct_per_h} %/h: give a finite rate within ±1000 %/h"),
                    None,
                ));
            }
        }
        FaultFile::ValidatorCrash(_) | FaultFile::ValidatorPartition(_) => {}
        FaultFile::CellularOutage(o)
        | FaultFile::BrokerOutage(o)
        | FaultFile::GatewayOutage(o)
        | FaultFile::CoordinatorOutage(o) => {
            if o.duration.is_some_and(|d| d.is_zero()) {
                return Err(bad(
                    at(&p, &["duration"]),
                    "an outage lasts longer than zero; leave `duration` out for one to the end"
                        .into(),
                    None,
                ));
            }
        }
        FaultFile::OpenConductor(o) => {
            let ok = parse_phases(&o.phases).is_some_and(|m| m.iter().filter(|&&x| x).count() < 3);
            if !ok {
                return Err(bad(
                    at(&p, &["phases"]),
                    format!(
                        "phases `{}`: an open conductor breaks one or two of a, b, c",
                        o.phases
                    ),
                    Some("to open all three, use a switch"),
                ));
            }
            if o.duration.is_some_and(|d| d.is_zero()) {
                return Err(bad(
                    at(&p, &["duration"]),
                    "a fault lasts longer than zero; leave `duration` out for a permanent one"
                        .into(),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// Positions a post-parse mistake at its field, or at the nearest enclosing
/// field that is written, or at the start of the file.
pub(super) fn invalid_at(file: &str, src: &str, inv: Invalid) -> ScenarioError {
    let span = (0..=inv.path.len())
        .rev()
        .find_map(|n| locate(src, &inv.path[..n]))
        .unwrap_or_else(|| first_token(src));
    ScenarioError::Invalid(Box::new(ScenarioDiagnostic::new(
        file,
        src,
        span,
        inv.message,
        Some(path_to_string(&inv.path)),
        "here",
        inv.help,
    )))
}

/// The span of the first non-comment, non-space character.
fn first_token(src: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with("//") {
            let at = offset + (line.len() - t.len());
            return (at, at + 1);
        }
        offset += line.len();
    }
    (0, 0)
}

/// Turns a ron error (syntax, unknown field, bad value) into a diagnostic.
pub(super) fn ron_error(
    file: &str,
    src: &str,
    e: ron::error::SpannedError,
    field: Option<String>,
) -> ScenarioError {
    use ron::error::Error as E;
    let start = offset_of(src, e.span.start.line, e.span.start.col);
    let end = offset_of(src, e.span.end.line, e.span.end.col).max(start);
    let (message, label, help) = match &e.code {
        // ron's `outer` names the Rust type, which means nothing to the
        // user; the field path (`at outputs.x`) says where instead.
        E::NoSuchStructField {
            expected, found, ..
        } => (
            format!("unknown field `{found}`"),
            "unknown field",
            Some(choices_help("fields", expected, found)),
        ),
        E::NoSuchEnumVariant {
            expected, found, ..
        } => (
            format!("unknown variant `{found}`"),
            "unknown variant",
            Some(choices_help("variants", expected, found)),
        ),
        E::MissingStructField { field, .. } => (
            format!("missing field `{field}`"),
            "in this section",
            Some(format!("`{field}` has no default: write it here")),
        ),
        E::DuplicateStructField { field, .. } => (
            format!("field `{field}` is given twice"),
            "second time",
            Some("remove one of them".to_string()),
        ),
        E::Message(m) => (m.clone(), "here", None),
        other => (other.to_string(), "here", None),
    };
    // A field name alone is not a useful path for a syntax error at the top.
    let field = field.filter(|f| !f.is_empty());
    ScenarioError::Invalid(Box::new(ScenarioDiagnostic::new(
        file,
        src,
        (start, end),
        message,
        field,
        label,
        help,
    )))
}

/// "valid fields: a, b, c; did you mean `b`?"
fn choices_help(what: &str, expected: &[&str], found: &str) -> String {
    let mut help = if expected.is_empty() {
        format!("no {what} are allowed here")
    } else {
        format!("valid {what}: {}", expected.join(", "))
    };
    let best = expected
        .iter()
        .map(|c| (strsim::jaro_winkler(c, found), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, suggestion)) = best {
        help.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    help
}
