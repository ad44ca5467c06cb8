//! Builds the mesh from a scenario's `mesh` section and runs the LMUs'
//! telemetry over it.

use std::collections::BTreeMap;

use rand::RngExt;

use crate::grid::network::{BranchKind, Network};
use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};
use crate::mesh::phy::{self, RadioProfile};
use crate::mesh::propagation::{
    F_2G4_HZ, Fading, Friis, LogDistance, PathLoss, Position, Shadowing, TwoRayExact, TwoRayGround,
};
use crate::mesh::radio::{MacSettings, Radio, RadioConfig};
use crate::mesh::routing::{Delivery, Mesh, MeshEvent, RoutingSettings};
use crate::metrics::Summary;
use crate::scenario::Scenario;
use crate::scenario::dto::{FadingFile, FaultFile, MeshFile, MeshNodesFile, PropagationFile};
use crate::scenario::locate::Seg;

use super::grid::GridBuildError;

/// When an LMU's first report is due: (time, node).
pub type ReportDue = (SimTime, u32);

/// A fault of the mesh.
#[derive(Clone, Debug, PartialEq)]
pub enum MeshFault {
    /// A jammer at a position with a power [dBm].
    Jammer(Position, f64),
    /// Extra loss [dB] between two nodes.
    Degrade(u32, u32, f64),
    /// A node down (and back up when it ends).
    Crash(u32),
}

/// The mesh with its application traffic.
#[derive(Debug)]
pub struct MeshApp {
    faults: Vec<(SimTime, Option<SimTime>, MeshFault)>,
    mesh: Mesh,
    root: u32,
    interval: SimDuration,
    octets: usize,
    next_tag: u64,
    sent_at: BTreeMap<u64, SimTime>,
    sent: u64,
    latencies_s: Vec<f64>,
}

/// Node positions: the coordinator first.
fn positions(m: &MeshFile, grid: Option<&Network>) -> Result<Vec<Position>, GridBuildError> {
    let h = m.pole_height_m;
    match (&m.nodes, grid) {
        (MeshNodesFile::Line { count, spacing_m }, _) => Ok((0..*count)
            .map(|i| Position::new(f64::from(i) * spacing_m, 0.0, h))
            .collect()),
        (MeshNodesFile::GridJunctions, Some(net)) => {
            let mut degree = vec![0usize; net.buses.len()];
            for b in &net.branches {
                degree[b.from] += 1;
                degree[b.to] += 1;
            }
            let lv = net
                .branches
                .iter()
                .find(|b| matches!(b.kind, BranchKind::Transformer { .. }))
                .map(|b| b.to)
                .unwrap_or(net.source.bus);
            let at = |b: usize| net.buses[b].xy.map(|(x, y)| Position::new(x, y, h));
            let coordinator = at(lv)
                .or_else(|| {
                    // Without coordinates at the transformer, the nearest bus
                    // downstream that has them.
                    net.branches
                        .iter()
                        .find(|b| b.from == lv)
                        .and_then(|b| at(b.to))
                })
                .ok_or_else(|| {
                    GridBuildError::Feeder(
                        "mesh.nodes = GridJunctions needs bus coordinates (buscoords) in the feeder"
                            .into(),
                    )
                })?;
            let mut out = vec![coordinator];
            out.extend(
                (0..net.buses.len())
                    .filter(|&b| b != lv && degree[b] >= 3)
                    .filter_map(at),
            );
            Ok(out)
        }
        (MeshNodesFile::GridJunctions, None) => Err(GridBuildError::Feeder(
            "mesh.nodes = GridJunctions needs a grid".into(),
        )),
    }
}

impl MeshApp {
    /// Builds the mesh; `grid` is the feeder, when the scenario has one.
    pub fn build(
        scenario: &Scenario,
        m: &MeshFile,
        grid: Option<&Network>,
    ) -> Result<MeshApp, GridBuildError> {
        let pos = positions(m, grid)?;
        let profile = RadioProfile {
            tx_dbm: m.tx_dbm,
            sensitivity_dbm: m.sensitivity_dbm,
            antenna_gains_dbi: 0.0,
        };
        let loss: Box<dyn PathLoss> = match m.propagation {
            PropagationFile::Calibrated => Box::new(LogDistance::friis_referenced(
                phy::calibrate_exponent(profile, m.shadowing_sigma_db, 750.0, 0.5, 160.0),
                F_2G4_HZ,
            )),
            PropagationFile::LogDistance(n) => Box::new(LogDistance::friis_referenced(n, F_2G4_HZ)),
            PropagationFile::Friis => Box::new(Friis { f_hz: F_2G4_HZ }),
            PropagationFile::TwoRay => Box::new(TwoRayGround { f_hz: F_2G4_HZ }),
            PropagationFile::TwoRayExact => Box::new(TwoRayExact { f_hz: F_2G4_HZ }),
        };
        let fading = match m.fading {
            FadingFile::None => Fading::None,
            FadingFile::Rayleigh => Fading::Rayleigh,
            FadingFile::Nakagami(k) => Fading::Nakagami { m: k },
        };
        let radio = Radio::new(
            RadioConfig {
                profile,
                loss,
                shadowing: Shadowing {
                    sigma_db: m.shadowing_sigma_db,
                },
                fading,
                cutoff_margin_db: m.cutoff_margin_db,
                mac: MacSettings::default(),
            },
            pos,
            scenario.seed,
        );
        let routing = RoutingSettings {
            trickle_imin: m.trickle_imin,
            trickle_doublings: m.trickle_doublings,
            dao_interval: m.dao_interval,
            ..RoutingSettings::default()
        };
        let nodes = radio.len() as u32;
        let mut faults = Vec::new();
        for (i, f) in scenario.faults.iter().enumerate() {
            let t = |d: SimDuration| SimTime::ZERO.saturating_add(d);
            let check = |n: u32, name: &str| {
                if n < nodes {
                    Ok(n)
                } else {
                    Err(GridBuildError::Scenario(Box::new(scenario.error_at(
                        &[
                            Seg::Field("faults".into()),
                            Seg::Index(i),
                            Seg::Field(name.into()),
                        ],
                        format!(
                            "the mesh has {nodes} nodes (0 to {}), not node {n}",
                            nodes - 1
                        ),
                        None,
                    ))))
                }
            };
            match f {
                FaultFile::Jammer(j) => faults.push((
                    t(j.at),
                    j.duration.map(|d| t(j.at).saturating_add(d)),
                    MeshFault::Jammer(Position::new(j.x_m, j.y_m, j.height_m), j.power_dbm),
                )),
                FaultFile::LinkDegradation(l) => faults.push((
                    t(l.at),
                    l.duration.map(|d| t(l.at).saturating_add(d)),
                    MeshFault::Degrade(check(l.a, "a")?, check(l.b, "b")?, l.extra_db),
                )),
                FaultFile::NodeCrash(c) => faults.push((
                    t(c.at),
                    c.reboot_after.map(|d| t(c.at).saturating_add(d)),
                    MeshFault::Crash(check(c.node, "node")?),
                )),
                FaultFile::Short(_)
                | FaultFile::OpenConductor(_)
                | FaultFile::CellularOutage(_)
                | FaultFile::BrokerOutage(_) => {}
            }
        }
        Ok(MeshApp {
            faults,
            mesh: Mesh::new(radio, 0, routing, scenario.seed),
            root: 0,
            interval: m.report_interval,
            octets: m.report_octets,
            next_tag: 0,
            sent_at: BTreeMap::new(),
            sent: 0,
            latencies_s: Vec::new(),
        })
    }

    /// Node count, the coordinator included.
    pub fn len(&self) -> usize {
        self.mesh.radio().len()
    }

    /// Whether the mesh has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events that start the mesh at zero: routing timers, then each
    /// LMU's first report at a jittered instant within one interval (from
    /// the LMU's own stream).
    pub fn start(&mut self, seed: u64) -> (Vec<(SimTime, MeshEvent)>, Vec<ReportDue>) {
        let ev = self.mesh.start(SimTime::ZERO);
        let reports = (0..self.len() as u32)
            .filter(|&n| n != self.root)
            .map(|n| {
                let mut rng = stream(seed, "lmu", u64::from(n), "report-phase");
                let at = rng.random_range(0..self.interval.as_nanos().max(1));
                (SimTime::from_nanos(at), n)
            })
            .collect();
        (ev, reports)
    }

    /// The faults' start and end events: (time, fault index, starting).
    pub fn fault_events(&self) -> Vec<(SimTime, usize, bool)> {
        let mut ev = Vec::new();
        for (i, (on, off, _)) in self.faults.iter().enumerate() {
            ev.push((*on, i, true));
            if let Some(off) = off {
                ev.push((*off, i, false));
            }
        }
        ev
    }

    /// Starts or ends fault `i`.
    pub fn fault(&mut self, now: SimTime, i: usize, starting: bool) -> Vec<(SimTime, MeshEvent)> {
        let Some((_, _, f)) = self.faults.get(i).cloned() else {
            return Vec::new();
        };
        match f {
            MeshFault::Jammer(at, dbm) => {
                self.mesh.jam(now, &at, dbm, starting);
                Vec::new()
            }
            MeshFault::Degrade(a, b, db) => {
                self.mesh
                    .degrade_link(now, a, b, if starting { db } else { 0.0 });
                Vec::new()
            }
            MeshFault::Crash(n) => self.mesh.set_up(now, n, !starting),
        }
    }

    /// Handles a mesh event.
    pub fn handle(&mut self, now: SimTime, e: MeshEvent) -> Vec<(SimTime, MeshEvent)> {
        let (ev, del) = self.mesh.handle(now, e);
        self.delivered(del);
        ev
    }

    /// An LMU's report is due: send it and return when the next is.
    pub fn report(&mut self, now: SimTime, node: u32) -> (Vec<(SimTime, MeshEvent)>, SimTime) {
        // A crashed LMU sends nothing until it reboots.
        if !self.mesh.radio().is_up(node) {
            return (Vec::new(), now.saturating_add(self.interval));
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        self.sent += 1;
        self.sent_at.insert(tag, now);
        let (ev, del) = self.mesh.send(now, node, self.root, self.octets, tag);
        self.delivered(del);
        (ev, now.saturating_add(self.interval))
    }

    fn delivered(&mut self, del: Vec<Delivery>) {
        for d in del {
            if d.dst == self.root
                && let Some(t0) = self.sent_at.remove(&d.tag)
            {
                self.latencies_s
                    .push(d.at.saturating_since(t0).as_secs_f64());
            }
        }
    }

    /// Writes the `mesh.*` headline metrics.
    pub fn finish(mut self, summary: &mut Summary) {
        let r = self.mesh.radio().stats();
        let s = self.mesh.stats();
        summary.set_u64("mesh.nodes", self.len() as u64);
        summary.set_u64("mesh.frames_sent", self.sent);
        summary.set_u64("mesh.frames_delivered", self.latencies_s.len() as u64);
        if self.sent > 0 {
            summary.set_f64("mesh.pdr", self.latencies_s.len() as f64 / self.sent as f64);
        }
        self.latencies_s.sort_by(f64::total_cmp);
        let pct = |p: f64, v: &[f64]| -> Option<f64> {
            // Nearest rank.
            let k = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v.get(k - 1).copied()
        };
        if !self.latencies_s.is_empty() {
            summary.set_f64(
                "mesh.latency_p50_s",
                pct(0.50, &self.latencies_s).unwrap_or(0.0),
            );
            summary.set_f64(
                "mesh.latency_p99_s",
                pct(0.99, &self.latencies_s).unwrap_or(0.0),
            );
        }
        summary.set_u64("mesh.route_repairs", s.parent_changes);
        summary.set_u64("mesh.mac_transmissions", r.transmissions);
        summary.set_u64("mesh.mac_retry_failures", r.retry_failures);
        summary.set_u64("mesh.mac_access_failures", r.access_failures);
        summary.set_u64("mesh.dio_sent", s.dio);
        summary.set_u64("mesh.dao_sent", s.dao);
        summary.set_u64("mesh.data_dropped", s.data_dropped);
    }
}
