//! Builds the mesh from a scenario's `mesh` section and carries the LMUs'
//! frames over it: each frame's bytes travel with it, and its arrival is
//! handed back to the world.

use gridtwin_lmu::frame::FrameKind;
use std::collections::{BTreeMap, BTreeSet};

use crate::grid::network::{BranchKind, Network};
use crate::kernel::{SimDuration, SimTime};
use crate::mesh::phy::{self, RadioProfile};
use crate::mesh::propagation::{
    F_2G4_HZ, Fading, Friis, LogDistance, PathLoss, Position, Shadowing, TwoRayExact, TwoRayGround,
};
use crate::mesh::radio::{MacSettings, Radio, RadioConfig};
use crate::mesh::routing::{ANY_ROOT, Delivery, Mesh, MeshEvent, RoutingSettings};
use crate::metrics::Summary;
use crate::scenario::Scenario;
use crate::scenario::dto::{FadingFile, FaultFile, MeshFile, MeshNodesFile, PropagationFile};
use crate::scenario::locate::Seg;

use super::grid::GridBuildError;

/// A frame that reached its destination node.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    /// When.
    pub at: SimTime,
    /// The sending node.
    pub src: u32,
    /// The node it reached.
    pub dst: u32,
    /// The mesh's handle of the frame.
    pub tag: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Frames not delivered within this long are forgotten (the mesh gives up
/// on a frame within seconds; this only bounds memory).
const FORGET_AFTER: SimDuration = SimDuration::from_nanos(3_600_000_000_000);

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
    /// The coordinators: nodes 0 to `coordinators - 1`, each a root.
    coordinators: u32,
    /// The grid bus of each node, when the nodes sit on the grid.
    buses: Vec<Option<usize>>,
    interval: SimDuration,
    next_tag: u64,
    /// Frames under way: tag → (sent at, destination, bytes).
    in_transit: BTreeMap<u64, (SimTime, u32, Vec<u8>)>,
    /// Frames between LMUs (FLISR's reports, verdicts, restores and
    /// acknowledgements): when each was sent, and its tag (`None`: its
    /// sender's radio was down, so it never left).
    peer_sent: Vec<(SimTime, Option<u64>)>,
    /// Tags of the frames between LMUs that arrived.
    peer_arrived: BTreeSet<u64>,
    sent: u64,
    /// Frames delivered to the coordinator: (when, sender, latency [s]),
    /// in order of delivery.
    latencies_s: Vec<(SimTime, u32, f64)>,
}

/// Node positions, the coordinators first, the grid bus of each, and how
/// many coordinators.
type Placement = (Vec<Position>, Vec<Option<usize>>, u32);

fn positions(m: &MeshFile, grid: Option<&Network>) -> Result<Placement, GridBuildError> {
    let h = m.pole_height_m;
    match (&m.nodes, grid) {
        (MeshNodesFile::Line { count, spacing_m }, _) => Ok((
            (0..*count)
                .map(|i| Position::new(f64::from(i) * spacing_m, 0.0, h))
                .collect(),
            vec![None; *count as usize],
            1,
        )),
        (MeshNodesFile::GridJunctions, Some(net)) => {
            let mut degree = vec![0usize; net.buses.len()];
            for b in &net.branches {
                degree[b.from] += 1;
                degree[b.to] += 1;
            }
            // A coordinator at every transformer's LV bus (a town of
            // districts has one per district), in the feeder's order.
            let mut lvs: Vec<usize> = net
                .branches
                .iter()
                .filter(|b| matches!(b.kind, BranchKind::Transformer { .. }))
                .map(|b| b.to)
                .collect();
            if lvs.is_empty() {
                lvs.push(net.source.bus);
            }
            let at = |b: usize| net.buses[b].xy.map(|(x, y)| Position::new(x, y, h));
            let mut out = Vec::with_capacity(net.buses.len() / 4);
            let mut buses = Vec::with_capacity(net.buses.len() / 4);
            for &lv in &lvs {
                let coordinator = at(lv)
                    .or_else(|| {
                        // Without coordinates at the transformer, the nearest
                        // bus downstream that has them.
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
                out.push(coordinator);
                buses.push(Some(lv));
            }
            let mut is_lv = vec![false; net.buses.len()];
            for &lv in &lvs {
                is_lv[lv] = true;
            }
            for b in (0..net.buses.len()).filter(|&b| !is_lv[b] && degree[b] >= 3) {
                if let Some(p) = at(b) {
                    out.push(p);
                    buses.push(Some(b));
                }
            }
            Ok((out, buses, lvs.len() as u32))
        }
        (MeshNodesFile::GridJunctions, None) => Err(GridBuildError::Feeder(
            "mesh.nodes = GridJunctions needs a grid".into(),
        )),
    }
}

/// Each node's channel (0-based) when `channels` are shared out among the
/// districts, the coordinators `0..coordinators` at their centres; empty
/// for one channel. District by district, each takes the channel whose
/// nearest district already on it is farthest away (the first of equals),
/// so the first `channels` districts take one each and the rest reuse them
/// as far apart as the layout allows. An LMU takes its district's.
fn node_channels(
    channels: u8,
    pos: &[Position],
    buses: &[Option<usize>],
    grid: Option<&Network>,
    coordinators: u32,
) -> Vec<u8> {
    if channels <= 1 || coordinators <= 1 {
        return Vec::new();
    }
    let d = coordinators as usize;
    let mut of_district: Vec<u8> = Vec::with_capacity(d);
    for k in 0..d {
        let nearest = |c: u8| {
            (0..k)
                .filter(|&j| of_district[j] == c)
                .map(|j| {
                    let (a, b) = (&pos[k], &pos[j]);
                    (a.x - b.x).hypot(a.y - b.y)
                })
                .fold(f64::INFINITY, f64::min)
        };
        let mut best = (0u8, f64::NEG_INFINITY);
        for c in 0..channels {
            let far = nearest(c);
            if far > best.1 {
                best = (c, far);
            }
        }
        of_district.push(best.0);
    }
    super::lmu::homes(grid, buses, coordinators)
        .iter()
        .enumerate()
        .map(|(n, h)| of_district[h.unwrap_or(n as u32) as usize])
        .collect()
}

impl MeshApp {
    /// Builds the mesh; `grid` is the feeder, when the scenario has one.
    pub fn build(
        scenario: &Scenario,
        m: &MeshFile,
        grid: Option<&Network>,
    ) -> Result<MeshApp, GridBuildError> {
        let (pos, buses, coordinators) = positions(m, grid)?;
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
        let channels = node_channels(m.channels, &pos, &buses, grid, coordinators);
        let radio = Radio::on_channels(
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
            &channels,
            scenario.seed,
        );
        let routing = RoutingSettings {
            trickle_imin: m.trickle_imin,
            trickle_doublings: m.trickle_doublings,
            dao_interval: m.dao_interval,
            ..RoutingSettings::default()
        };
        let nodes = radio.len() as u32;
        for (i, &n) in m.waveform_lmus.iter().enumerate() {
            if n == 0 || n >= nodes {
                return Err(GridBuildError::Scenario(Box::new(scenario.error_at(
                    &[
                        Seg::Field("mesh".into()),
                        Seg::Field("waveform_lmus".into()),
                        Seg::Index(i),
                    ],
                    format!(
                        "the mesh has LMUs 1 to {}, not LMU {n}",
                        nodes.saturating_sub(1)
                    ),
                    None,
                ))));
            }
        }
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
                FaultFile::CoordinatorOutage(o) => faults.push((
                    t(o.at),
                    o.duration.map(|d| t(o.at).saturating_add(d)),
                    MeshFault::Crash(0),
                )),
                // The LMUs carry them out; the node must exist.
                FaultFile::SensorFault(sf) => {
                    check(sf.node, "node")?;
                }
                // Faults of other models.
                _ => {}
            }
        }
        Ok(MeshApp {
            faults,
            mesh: Mesh::new(radio, (0..coordinators).collect(), routing, scenario.seed),
            coordinators,
            buses,
            interval: m.report_interval,
            next_tag: 0,
            in_transit: BTreeMap::new(),
            peer_sent: Vec::new(),
            peer_arrived: BTreeSet::new(),
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

    /// How many coordinators: nodes 0 to this − 1 (the LMUs follow).
    pub fn coordinators(&self) -> u32 {
        self.coordinators
    }

    /// Whether node `n` is a coordinator (a root of the mesh).
    pub fn is_root(&self, n: u32) -> bool {
        n < self.coordinators
    }

    /// The coordinator a command for LMU `n` leaves from: the root of the
    /// DODAG it belongs to (whose DAOs gave that root a route to it), else
    /// the first.
    pub fn root_for(&self, n: u32) -> u32 {
        self.mesh.root_of(n).unwrap_or(0)
    }

    /// The grid bus a node sits at, if the nodes sit on the grid.
    pub fn bus_of(&self, node: u32) -> Option<usize> {
        self.buses.get(node as usize).copied().flatten()
    }

    /// Whether a node is up (not crashed).
    pub fn is_up(&self, node: u32) -> bool {
        self.mesh.radio().is_up(node)
    }

    /// The tag of the last frame sent, if any.
    pub fn last_tag(&self) -> Option<u64> {
        self.next_tag.checked_sub(1)
    }

    /// Frames between LMUs sent in `[from, until]` that never arrived.
    pub fn peer_frames_lost(&self, from: SimTime, until: SimTime) -> u64 {
        let start = self.peer_sent.partition_point(|(t, _)| *t < from);
        self.peer_sent[start..]
            .iter()
            .take_while(|(t, _)| *t <= until)
            .filter(|(_, tag)| tag.is_none_or(|t| !self.peer_arrived.contains(&t)))
            .count() as u64
    }

    /// Whether node `n` has routes up to its coordinator and down from it.
    pub fn routed(&self, n: u32) -> bool {
        self.mesh.routed_both_ways(n)
    }

    /// The LMUs' telemetry interval.
    pub fn report_interval(&self) -> SimDuration {
        self.interval
    }

    /// The events that start the mesh's routing at zero.
    pub fn start(&mut self) -> Vec<(SimTime, MeshEvent)> {
        self.mesh.start(SimTime::ZERO)
    }

    /// The node a fault crashes, if it is a crash.
    pub fn crashed_by(&self, fault: usize) -> Option<u32> {
        match self.faults.get(fault) {
            Some((_, _, MeshFault::Crash(n))) => Some(*n),
            _ => None,
        }
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
    pub fn handle(
        &mut self,
        now: SimTime,
        e: MeshEvent,
    ) -> (Vec<(SimTime, MeshEvent)>, Vec<Arrival>) {
        let (ev, del) = self.mesh.handle(now, e);
        (ev, self.delivered(del))
    }

    /// Sends a frame from `src` to `dst` at `now`. A crashed node sends
    /// nothing.
    pub fn send(
        &mut self,
        now: SimTime,
        src: u32,
        dst: u32,
        bytes: Vec<u8>,
    ) -> (Vec<(SimTime, MeshEvent)>, Vec<Arrival>) {
        let peer = dst != ANY_ROOT && !self.is_root(dst) && !self.is_root(src);
        if !self.mesh.radio().is_up(src) {
            if peer {
                self.peer_sent.push((now, None));
            }
            return (Vec::new(), Vec::new());
        }
        // Forget frames the mesh gave up on long ago (tags grow with time).
        while let Some((_, (t, _, _))) = self.in_transit.first_key_value() {
            if now.saturating_since(*t) < FORGET_AFTER {
                break;
            }
            self.in_transit.pop_first();
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        if peer {
            self.peer_sent.push((now, Some(tag)));
        }
        if dst == ANY_ROOT || self.is_root(dst) {
            self.sent += 1;
        }
        let octets = bytes.len();
        // FLISR traffic (reports, acks, switching) goes ahead of telemetry.
        let urgent = matches!(
            gridtwin_lmu::frame::Packet::new_checked(&bytes[..]).map(|p| p.kind()),
            Ok(Some(
                FrameKind::FaultReport | FrameKind::Ack | FrameKind::Switch
            ))
        );
        self.in_transit.insert(tag, (now, dst, bytes));
        let (ev, del) = self.mesh.send_class(now, src, dst, octets, tag, urgent);
        (ev, self.delivered(del))
    }

    fn delivered(&mut self, del: Vec<Delivery>) -> Vec<Arrival> {
        let mut out = Vec::new();
        for d in del {
            // The mesh may deliver a frame twice (a lost ACK); the copy
            // carries the same bytes.
            let Some((t0, dst)) = self.in_transit.get(&d.tag).map(|x| (x.0, x.1)) else {
                continue;
            };
            if dst != d.dst && !(dst == ANY_ROOT && self.is_root(d.dst)) {
                continue;
            }
            let Some((_, _, bytes)) = self.in_transit.remove(&d.tag) else {
                continue;
            };
            if self.is_root(d.dst) {
                self.latencies_s
                    .push((d.at, d.src, d.at.saturating_since(t0).as_secs_f64()));
            }
            if !self.is_root(d.dst) {
                self.peer_arrived.insert(d.tag);
            }
            out.push(Arrival {
                at: d.at,
                src: d.src,
                dst: d.dst,
                tag: d.tag,
                bytes,
            });
        }
        out
    }

    /// Writes the `mesh.*` headline metrics; returns the mesh's files:
    /// `mesh_nodes.csv`, `mesh_links.csv` and `latencies.csv` (see
    /// [`MeshApp::nodes_csv`], [`MeshApp::links_csv`],
    /// [`MeshApp::latencies_csv`]). `grid` names the nodes' buses.
    pub fn finish(self, grid: Option<&Network>, summary: &mut Summary) -> Vec<(String, Vec<u8>)> {
        let files = vec![
            ("mesh_nodes.csv".to_string(), self.nodes_csv(grid)),
            ("mesh_links.csv".to_string(), self.links_csv()),
            ("latencies.csv".to_string(), self.latencies_csv()),
        ];
        let r = self.mesh.radio().stats();
        let s = self.mesh.stats();
        summary.set_u64("mesh.nodes", self.len() as u64);
        summary.set_u64("mesh.frames_sent", self.sent);
        summary.set_u64("mesh.frames_delivered", self.latencies_s.len() as u64);
        if self.sent > 0 {
            summary.set_f64("mesh.pdr", self.latencies_s.len() as f64 / self.sent as f64);
        }
        let mut latencies: Vec<f64> = self.latencies_s.iter().map(|x| x.2).collect();
        latencies.sort_by(f64::total_cmp);
        for (k, p) in [("p50", 0.50), ("p99", 0.99)] {
            if let Some(v) = crate::metrics::percentile(&latencies, p) {
                summary.set_f64(&format!("mesh.latency_{k}_s"), v);
            }
        }
        summary.set_u64("mesh.route_repairs", s.parent_changes);
        summary.set_u64("mesh.mac_transmissions", r.transmissions);
        summary.set_u64("mesh.mac_retry_failures", r.retry_failures);
        summary.set_u64("mesh.mac_access_failures", r.access_failures);
        summary.set_u64("mesh.dio_sent", s.dio);
        summary.set_u64("mesh.dao_sent", s.dao);
        summary.set_u64("mesh.dao_loops", s.dao_loops);
        summary.set_u64("mesh.data_loops", s.data_loops);
        summary.set_u64("mesh.dis_sent", s.dis);
        summary.set_u64("mesh.data_dropped", s.data_dropped);
        files
    }

    /// `mesh_nodes.csv`: one row per node, `node,bus,x_m,y_m,parent`: its
    /// grid bus's name (empty off the grid), its pole's position [m] and
    /// its preferred parent at the end of the run (empty for the
    /// coordinator and for a detached node).
    pub fn nodes_csv(&self, grid: Option<&Network>) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["node", "bus", "x_m", "y_m", "parent"])
            .expect(io);
        for n in 0..self.len() as u32 {
            let bus = match (self.bus_of(n), grid) {
                (Some(b), Some(net)) => net.buses.get(b).map_or(String::new(), |x| x.name.clone()),
                _ => String::new(),
            };
            let (x, y) = self
                .mesh
                .radio()
                .position(n)
                .map_or((f64::NAN, f64::NAN), |p| (p.x, p.y));
            let parent = if self.is_root(n) {
                None
            } else {
                self.mesh.parent(n)
            };
            w.write_record([
                n.to_string(),
                bus,
                x.to_string(),
                y.to_string(),
                parent.map_or(String::new(), |p| p.to_string()),
            ])
            .expect(io);
        }
        w.into_inner().expect(io)
    }

    /// `mesh_links.csv`: one row per pair of nodes that exchanged unicast
    /// data frames, `a,b,sent,delivered,pdr` with `a < b`: transmissions
    /// both ways (retries included), those received intact, and their
    /// ratio, the link's packet delivery ratio per transmission.
    pub fn links_csv(&self) -> Vec<u8> {
        let mut pairs: BTreeMap<(u32, u32), (u64, u64)> = BTreeMap::new();
        for (&(a, b), c) in self.mesh.radio().link_counts() {
            let e = pairs.entry((a.min(b), a.max(b))).or_default();
            e.0 += c.sent;
            e.1 += c.received;
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["a", "b", "sent", "delivered", "pdr"])
            .expect(io);
        for ((a, b), (sent, got)) in pairs {
            if sent == 0 {
                continue;
            }
            w.write_record([
                a.to_string(),
                b.to_string(),
                sent.to_string(),
                got.to_string(),
                (got as f64 / sent as f64).to_string(),
            ])
            .expect(io);
        }
        w.into_inner().expect(io)
    }

    /// `latencies.csv`: one row per application frame delivered to the
    /// coordinator, in order of delivery, `t_s,node,latency_s`: when it
    /// arrived [s], its sender, and its end-to-end latency from the
    /// sender's application to the coordinator [s].
    pub fn latencies_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["t_s", "node", "latency_s"]).expect(io);
        for (t, n, l) in &self.latencies_s {
            w.write_record([t.as_secs_f64().to_string(), n.to_string(), l.to_string()])
                .expect(io);
        }
        w.into_inner().expect(io)
    }
}
