//! The LMUs in the loop: one instance of the LMU crate (the firmware) per
//! mesh node, the coordinator excepted. The host only feeds each LMU its
//! inputs (grid measurements as phasors, received frames, timer expiries)
//! and hands its outputs to the world, which carries them out: frames go
//! on the mesh, contactor commands become switching of the grid, set-points
//! change the section's PV or load.
//!
//! # Placement on the grid
//! An LMU at junction bus *b* measures the phase voltages of *b* and the
//! current of the branch that feeds *b* from the source side; that branch
//! is its contactor. Its *section*, for set-points, is everything the
//! contactor feeds: the buses below *b* in the radial tree.
//!
//! Time: the LMU's clock is the simulated time, in microseconds.

use std::collections::VecDeque;

use gridtwin_lmu::dsp::{PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::Keys;
use gridtwin_lmu::hil::WireInput;
use gridtwin_lmu::node::{Config, Input, LogEvent, Outputs, Setpoint};
use gridtwin_lmu::protection::ProtectionSettings;
use gridtwin_lmu::{Command, Instant, Lmu};
use num_complex::Complex32;
use rand::RngExt;

use crate::grid::network::Network;
use crate::grid::powerflow::{Blocks, Solution, branch_flow, branch_flow_with};
use crate::hil::{Board, HilError, OnReset};
use crate::kernel::rng::stream;
use crate::kernel::{EventId, SimDuration, SimTime};
use crate::metrics::Summary;

/// The keys of the simulated system. They are fixed: they protect frames
/// between models of one run, and the run is public anyway.
pub const KEYS: Keys = Keys {
    mesh: [0x4d; 32],
    gateway: [0x47; 32],
};

/// The LMU's clock at simulated time `t`.
pub fn instant(t: SimTime) -> Instant {
    Instant::from_micros(t.as_nanos() / 1_000)
}

/// Simulated time at the LMU's clock reading `i` (rounded up to whole
/// microseconds, as the LMU counts them).
pub fn sim_time(i: Instant) -> SimTime {
    SimTime::from_nanos(i.total_micros().saturating_mul(1_000))
}

/// Where an LMU sits on the grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Place {
    /// Its bus.
    pub bus: usize,
    /// The branch that feeds the bus (its contactor), and whether the bus
    /// is that branch's `to` end.
    pub feeder: Option<(usize, bool)>,
    /// PV systems in its section.
    pub pvs: Vec<usize>,
    /// Loads in its section.
    pub loads: Vec<usize>,
    /// The nearest LMU towards the source (node index), if any but the
    /// coordinator.
    pub upstream: Option<u32>,
    /// The LMUs whose nearest LMU towards the source is this one.
    pub downstream: Vec<u32>,
}

/// The radial tree of a network, breadth-first from the source over every
/// branch (open or closed).
#[derive(Clone, Debug, PartialEq)]
pub struct RadialTree {
    /// Each bus's parent bus and the branch to it (`None`: the source, or
    /// unreachable).
    pub parent: Vec<Option<(usize, usize)>>,
    /// Buses in breadth-first order from the source.
    pub order: Vec<usize>,
}

impl RadialTree {
    /// The tree of `net`.
    pub fn of(net: &Network) -> RadialTree {
        let n = net.buses.len();
        let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        for (k, br) in net.branches.iter().enumerate() {
            adj[br.from].push((br.to, k));
            adj[br.to].push((br.from, k));
        }
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut q = VecDeque::from([net.source.bus]);
        seen[net.source.bus] = true;
        while let Some(b) = q.pop_front() {
            order.push(b);
            for &(c, k) in &adj[b] {
                if !seen[c] {
                    seen[c] = true;
                    parent[c] = Some((b, k));
                    q.push_back(c);
                }
            }
        }
        RadialTree { parent, order }
    }
}

/// The district of each mesh node (node *i* at `buses[i]`, nodes below
/// `coordinators` the coordinators): the coordinator at the transformer
/// that feeds its bus, found up the radial tree; `None` for a coordinator.
/// Without a grid, or where no coordinator feeds a node, it is the first
/// coordinator's.
pub fn homes(
    net: Option<&Network>,
    buses: &[Option<usize>],
    coordinators: u32,
) -> Vec<Option<u32>> {
    let mut district: Vec<Option<u32>> = Vec::new();
    if let Some(net) = net {
        let RadialTree { parent, order } = RadialTree::of(net);
        district = vec![None; net.buses.len()];
        for (i, b) in buses.iter().enumerate().take(coordinators as usize) {
            if let Some(b) = b {
                district[*b] = Some(i as u32);
            }
        }
        // Breadth-first, so every parent is settled before its children.
        for &b in &order {
            if district[b].is_none()
                && let Some((p, _)) = parent[b]
            {
                district[b] = district[p];
            }
        }
    }
    (0..buses.len() as u32)
        .map(|n| {
            (n >= coordinators).then(|| {
                buses[n as usize]
                    .and_then(|b| district.get(b).copied().flatten())
                    .unwrap_or(0)
            })
        })
        .collect()
}

/// The mesh node at each of `n` buses (node *i* at `buses[i]`).
fn nodes_at(n: usize, buses: &[Option<usize>]) -> Vec<Option<u32>> {
    let mut node_at = vec![None; n];
    for (i, b) in buses.iter().enumerate() {
        if let Some(b) = b {
            node_at[*b] = Some(i as u32);
        }
    }
    node_at
}

/// The nearest LMU above bus `b` in the radial tree (`parent`), if any: the
/// first node met on the way up, unless it is a coordinator (nodes below
/// `coordinators`), which has no contactor.
fn nearest_lmu_above(
    parent: &[Option<(usize, usize)>],
    node_at: &[Option<u32>],
    coordinators: u32,
    b: usize,
) -> Option<u32> {
    let mut x = b;
    while let Some((p, _)) = parent[x] {
        if let Some(m) = node_at[p] {
            return (m >= coordinators).then_some(m);
        }
        x = p;
    }
    None
}

/// Places an LMU at each bus on a radial network (node *i* at `buses[i]`,
/// nodes below `coordinators` the coordinators): its feeding branch, its
/// section, and its FLISR neighbours. `None` buses get no place.
pub fn place(net: &Network, buses: &[Option<usize>], coordinators: u32) -> Vec<Option<Place>> {
    let n = net.buses.len();
    let RadialTree { parent, order } = RadialTree::of(net);
    let node_at = nodes_at(n, buses);
    let ups: Vec<Option<u32>> = buses
        .iter()
        .map(|b| b.and_then(|b| nearest_lmu_above(&parent, &node_at, coordinators, b)))
        .collect();
    let mut downstream: Vec<Vec<u32>> = vec![Vec::new(); buses.len()];
    for (j, u) in ups.iter().enumerate() {
        if let Some(u) = u {
            downstream[*u as usize].push(j as u32);
        }
    }
    // A section is a subtree of the radial tree: number the buses in
    // depth-first pre-order, so that the subtree of `b` is the buses
    // numbered from `pre[b]` to `last[b]`.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &x in &order {
        if let Some((p, _)) = parent[x] {
            children[p].push(x);
        }
    }
    let mut pre = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let mut next = 0usize;
    let mut stack: Vec<(usize, usize)> = order.first().map(|&r| (r, 0)).into_iter().collect();
    while let Some(&mut (x, ref mut k)) = stack.last_mut() {
        if *k == 0 {
            pre[x] = next;
            next += 1;
        }
        if let Some(&c) = children[x].get(*k) {
            *k += 1;
            stack.push((c, 0));
        } else {
            last[x] = next - 1;
            stack.pop();
        }
    }
    // Loads and PV by pre-order number, so a section's are one range.
    let by_pre = |at: &dyn Fn(usize) -> usize, count: usize| {
        let mut v: Vec<(usize, usize)> = (0..count).map(|i| (pre[at(i)], i)).collect();
        v.sort_unstable();
        v
    };
    let loads_pre = by_pre(&|i| net.loads[i].bus, net.loads.len());
    let pvs_pre = by_pre(&|i| net.pv[i].bus, net.pv.len());
    let within = |b: usize, sorted: &[(usize, usize)], bus_of: &dyn Fn(usize) -> usize| {
        let mut v: Vec<usize> = if pre[b] == usize::MAX {
            Vec::new()
        } else {
            let lo = sorted.partition_point(|&(p, _)| p < pre[b]);
            let hi = sorted.partition_point(|&(p, _)| p <= last[b]);
            sorted[lo..hi].iter().map(|&(_, i)| i).collect()
        };
        // Unreachable buses belong only to a section at themselves.
        v.extend(
            sorted
                .iter()
                .rev()
                .take_while(|&&(p, _)| p == usize::MAX)
                .map(|&(_, i)| i)
                .filter(|&i| bus_of(i) == b),
        );
        v.sort_unstable();
        v
    };
    buses
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let b = (*b)?;
            Some(Place {
                bus: b,
                feeder: parent[b].map(|(_, k)| (k, net.branches[k].to == b)),
                pvs: within(b, &pvs_pre, &|i| net.pv[i].bus),
                loads: within(b, &loads_pre, &|i| net.loads[i].bus),
                upstream: ups[i],
                downstream: std::mem::take(&mut downstream[i]),
            })
        })
        .collect()
}

/// What one LMU call asks of the world.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    /// Frames: (destination node, bytes).
    pub frames: Vec<(u32, Vec<u8>)>,
    /// Switch the contactor branch: (branch, close).
    pub switch: Option<(usize, bool)>,
    /// A set-point for the section.
    pub setpoint: Option<Setpoint>,
    /// Commands carried out.
    pub executed: Vec<Command>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Calls into the firmware.
    pub calls: u64,
    /// Telemetry reports generated.
    pub reports: u64,
    /// Contactor operations.
    pub contactor_ops: u64,
    /// Commands carried out.
    pub commands_executed: u64,
    /// Frames the firmware rejected (forged, replayed, …).
    pub frames_rejected: u64,
    /// Reboots.
    pub reboots: u64,
    /// Contactors opened as the upstream boundary of a faulted section.
    pub isolations: u64,
    /// Contactors opened as a downstream boundary, on a verdict.
    pub isolations_downstream: u64,
    /// Measurements fed as sampled waveforms (the rest are phasors).
    pub waveform_inputs: u64,
}

/// Whether an LMU's record meets EN 50160: at least 95 % of its completed
/// 10-minute intervals within every limit (the standard's criterion over a
/// week, applied to the run); `None` before its first interval.
pub fn en50160_compliant(intervals: u32, compliant: u32) -> Option<bool> {
    (intervals > 0).then(|| u64::from(compliant) * 100 >= u64::from(intervals) * 95)
}

/// A FLISR step an LMU took, for the per-fault metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlisrMark {
    /// It saw forward fault current.
    Detected,
    /// It located the fault in its section.
    Located,
    /// Its contactor opened.
    Opened,
    /// Its contactor closed.
    Closed,
}

impl FlisrMark {
    /// Its name in `flisr_marks.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlisrMark::Detected => "detected",
            FlisrMark::Located => "located",
            FlisrMark::Opened => "opened",
            FlisrMark::Closed => "closed",
        }
    }
}

/// A faulty sensor of one LMU, from the scenario's fault timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorFault {
    /// The LMU's node.
    pub node: u32,
    /// The current sensor (else the voltage sensor).
    pub current: bool,
    /// Drift rate [per hour, as a fraction]; `None`: stuck.
    pub drift_per_h: Option<f64>,
    /// Start.
    pub at: SimTime,
    /// End, if it ends.
    pub until: Option<SimTime>,
    /// A stuck sensor's frozen reading.
    frozen: Option<[Complex32; 3]>,
}

impl SensorFault {
    /// A sensor fault; `drift_per_h` `None` for a stuck sensor.
    pub fn new(
        node: u32,
        current: bool,
        drift_per_h: Option<f64>,
        at: SimTime,
        until: Option<SimTime>,
    ) -> SensorFault {
        SensorFault {
            node,
            current,
            drift_per_h,
            at,
            until,
            frozen: None,
        }
    }

    /// What the faulty sensor reads at `now` when the truth is `x`.
    fn read(&mut self, now: SimTime, x: [Complex32; 3]) -> [Complex32; 3] {
        if now < self.at || self.until.is_some_and(|u| now >= u) {
            return x;
        }
        match self.drift_per_h {
            None => *self.frozen.get_or_insert(x),
            Some(r) => {
                let h = now.saturating_since(self.at).as_secs_f64() / 3600.0;
                let g = (1.0 + r * h).max(0.0) as f32;
                x.map(|z| z * g)
            }
        }
    }
}

#[derive(Debug)]
struct Node {
    lmu: Option<Lmu>,
    /// Whether it has ever booted.
    booted: bool,
    epoch: u32,
    place: Option<Place>,
    /// The pending timer event: (when, id).
    timer: Option<(SimTime, EventId)>,
    /// Inputs fed to its LMU.
    inputs: u64,
    /// The board that runs this LMU in the loop, if any; `lmu` is then
    /// its in-process shadow.
    board: Option<Attached>,
}

/// A board in the loop, running one LMU.
#[derive(Debug)]
struct Attached {
    board: Board,
    /// When its LMU next wants a timer, as it said.
    poll_at: Option<SimTime>,
}

/// One step on which a board and its in-process shadow disagreed.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// When.
    pub at: SimTime,
    /// The LMU's node.
    pub node: u32,
    /// The step's sequence number on the wire.
    pub seq: u32,
    /// The parts of the outputs that differ (`frames`, `contactor`,
    /// `setpoint`, `report`, `events`, `overflowed`, `poll_at`).
    pub parts: Vec<&'static str>,
    /// The input, as sent (postcard).
    pub input: Vec<u8>,
    /// The shadow's outputs and next timer (postcard).
    pub shadow: Vec<u8>,
    /// The board's outputs and next timer (postcard).
    pub board: Vec<u8>,
}

/// Boards in the loop: what the host keeps beside the LMUs.
#[derive(Debug, Default)]
struct Hil {
    on_reset: OnReset,
    divergences: Vec<Divergence>,
    /// The first failure, for the world to halt the run with.
    failure: Option<HilError>,
    /// Resets after which the LMU was booted again: (time, node).
    resets: Vec<(SimTime, u32)>,
}

/// What a HIL run adds to the summary, the timing and the files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HilReport {
    /// Boards in the loop.
    pub boards: u64,
    /// Lock-step exchanges answered.
    pub steps: u64,
    /// Steps on which a board and its shadow disagreed.
    pub divergences: u64,
    /// Requests sent again after a timeout.
    pub retries: u64,
    /// Garbled frames from the boards, dropped (the link resynchronised).
    pub resyncs: u64,
    /// Garbled frames the boards dropped, as they counted them (boards
    /// that said goodbye).
    pub board_resyncs: u64,
    /// Boards whose link closed before their goodbye arrived, so their
    /// own counts are unknown.
    pub unseen_goodbyes: u64,
    /// Board resets seen.
    pub resets: u64,
    /// Resets after which the LMU was booted again (`--on-reset reinit`):
    /// (time, node).
    pub reinits: Vec<(SimTime, u32)>,
    /// Round-trip time of each step [s], every board's, in order.
    pub rtts_s: Vec<f64>,
    /// `hil_divergences.csv`.
    pub divergences_csv: Vec<u8>,
}

/// The LMUs of a mesh, by node index (node 0, the coordinator, has none).
#[derive(Debug)]
pub struct LmuHost {
    nodes: Vec<Node>,
    interval: SimDuration,
    out: Outputs,
    stats: HostStats,
    /// FLISR steps: (time, node, step).
    marks: Vec<(SimTime, u32, FlisrMark)>,
    /// Faulty sensors.
    sensor_faults: Vec<SensorFault>,
    /// Whether each node's LMU takes waveforms rather than phasors.
    waveform: Vec<bool>,
    /// Boards in the loop, if any.
    hil: Option<Hil>,
    /// The first LMU's node: nodes below are coordinators, with none.
    first: u32,
    /// Each node's feeder branch's admittance blocks, kept between solves
    /// with the conductors they were computed for (an open-conductor fault
    /// changes them).
    blocks: Vec<Option<([bool; 3], Blocks)>>,
    /// Each node's protection settings (`None`: the firmware's defaults).
    protection: Vec<Option<ProtectionSettings>>,
}

/// Resolution of the LMU's simulated ADC [bits] (the nRF52840's SAADC
/// without oversampling).
pub const ADC_BITS: u32 = 12;

/// Voltage input range of the ADC front end: ± this peak [V] (a 230 V
/// phase peaks at 325 V; the range leaves room for swells).
pub const ADC_V_PEAK: f64 = 500.0;

/// Current input range of the ADC front end: ± this peak [A]; fault
/// currents beyond it clip, as on a real board.
pub const ADC_I_PEAK: f64 = 2000.0;

/// One cycle of samples, as the board's ADC would take them, of the
/// steady-state sinusoids with these RMS phasors (fundamental only, at the
/// nominal 50 Hz, the cycle aligned to the 50 Hz grid so consecutive cycles
/// agree in phase): `x[n] = √2·|X|·cos(2πn/N + ∠X)`, quantised to
/// [`ADC_BITS`] over ± [`ADC_V_PEAK`] and ± [`ADC_I_PEAK`], clipping
/// beyond.
pub fn sampled(v: &[Complex32; 3], i: &[Complex32; 3]) -> Waveform {
    let half = f64::from(1u32 << (ADC_BITS - 1));
    let adc = |x: Complex32, peak: f64| {
        let mut out = [0.0f32; SAMPLES_PER_CYCLE];
        let (mag, ang) = (
            f64::from(x.norm()) * std::f64::consts::SQRT_2,
            f64::from(x.arg()),
        );
        for (k, o) in out.iter_mut().enumerate() {
            let th = std::f64::consts::TAU * k as f64 / SAMPLES_PER_CYCLE as f64 + ang;
            let code = (mag * th.cos() / peak * half)
                .round()
                .clamp(-half, half - 1.0);
            *o = (code * peak / half) as f32;
        }
        out
    };
    Waveform {
        v: v.map(|x| adc(x, ADC_V_PEAK)),
        i: i.map(|x| adc(x, ADC_I_PEAK)),
    }
}

/// The gateway's id in node-index space: frames to the gateway go to the
/// coordinator.
pub const GATEWAY_NODE: u32 = u32::MAX;

impl LmuHost {
    /// One LMU per node but the coordinators (nodes below `first`), each
    /// powered off until [`LmuHost::power_on`].
    pub fn new(places: Vec<Option<Place>>, interval: SimDuration, first: u32) -> LmuHost {
        let mut host = LmuHost {
            nodes: Vec::new(),
            interval,
            out: Outputs::default(),
            stats: HostStats::default(),
            marks: Vec::new(),
            sensor_faults: Vec::new(),
            waveform: Vec::new(),
            hil: None,
            first,
            blocks: vec![None; places.len()],
            protection: Vec::new(),
        };
        for place in places {
            host.nodes.push(Node {
                lmu: None,
                epoch: 0,
                place,
                timer: None,
                inputs: 0,
                booted: false,
                board: None,
            });
        }
        host
    }

    /// Sets each node's protection settings (index = node; `None` keeps
    /// the firmware's defaults). They travel to a board in the loop in
    /// its `Configure` message.
    pub fn set_protection(&mut self, settings: Vec<Option<ProtectionSettings>>) {
        self.protection = settings;
    }

    /// Node `n`'s protection settings, if set (else the firmware's
    /// defaults apply).
    pub fn protection(&self, n: u32) -> Option<&ProtectionSettings> {
        self.protection.get(n as usize)?.as_ref()
    }

    /// The configuration of node `id`'s LMU in boot epoch `epoch`.
    fn config(&self, id: u32, epoch: u32, place: Option<&Place>) -> Config {
        let mut cfg = Config::new(id as u16);
        if let Some(Some(s)) = self.protection.get(id as usize) {
            cfg.protection = *s;
        }
        if let Some(p) = place {
            cfg.upstream = p.upstream.map(|u| u as u16);
            for &d in &p.downstream {
                // Beyond MAX_NEIGHBOURS the firmware cannot track more.
                let _ = cfg.downstream.push(d as u16);
            }
        }
        cfg.report_interval = gridtwin_lmu::Duration::from_micros(self.interval.as_nanos() / 1_000);
        cfg.boot_epoch = epoch;
        cfg
    }

    /// Boots node `n`'s LMU in `epoch`: in-process, and on its board if it
    /// has one.
    fn boot(&mut self, n: u32, epoch: u32) {
        let cfg = self.config(n, epoch, self.nodes[n as usize].place.as_ref());
        let node = &mut self.nodes[n as usize];
        node.epoch = epoch;
        node.booted = true;
        node.lmu = Some(Lmu::new(cfg.clone(), KEYS));
        if let Some(a) = &mut node.board {
            a.poll_at = None;
            if let Err(e) = a.board.configure(cfg, KEYS)
                && let Some(h) = &mut self.hil
            {
                h.failure.get_or_insert(e);
            }
        }
    }

    /// Hands node `n`'s LMU to a board in the loop: from its next boot on,
    /// the board's outputs are carried out, and the in-process LMU runs in
    /// its shadow on the same inputs, each step compared bit for bit.
    /// Attach before the run starts. Errors if node `n` has no LMU (the
    /// coordinator, or beyond the mesh).
    pub fn attach(&mut self, n: u32, board: Board, on_reset: OnReset) -> Result<(), String> {
        if n < self.first || n as usize >= self.nodes.len() {
            return Err(format!(
                "there is no LMU {n}: LMUs are nodes {} to {} (below are coordinators)",
                self.first,
                self.nodes.len().saturating_sub(1)
            ));
        }
        let node = &mut self.nodes[n as usize];
        if node.board.is_some() {
            return Err(format!("LMU {n} is given two boards"));
        }
        node.board = Some(Attached {
            board,
            poll_at: None,
        });
        self.hil.get_or_insert_with(Hil::default).on_reset = on_reset;
        Ok(())
    }

    /// The first failure of a board in the loop, if any (taken).
    pub fn take_hil_failure(&mut self) -> Option<HilError> {
        self.hil.as_mut()?.failure.take()
    }

    /// Ends every board's session (the emulated boards exit) and reports
    /// what the boards did; `None` without boards. Fails if a board does
    /// not take its leave.
    pub fn hil_finish(&mut self) -> Option<Result<HilReport, HilError>> {
        let hil = self.hil.take()?;
        let mut r = HilReport {
            divergences: hil.divergences.len() as u64,
            ..HilReport::default()
        };
        for node in &mut self.nodes {
            let Some(a) = node.board.take() else {
                continue;
            };
            let s = a.board.stats();
            r.boards += 1;
            r.steps += s.steps;
            r.retries += s.retries;
            r.resyncs += s.resyncs;
            r.resets += s.resets;
            r.rtts_s.extend(&s.rtts_s);
            match a.board.shutdown() {
                Ok(Some(w)) => {
                    r.board_resyncs += u64::from(w.framing + w.crc + w.decode + w.overflow);
                }
                Ok(None) => r.unseen_goodbyes += 1,
                Err(e) => return Some(Err(e)),
            }
        }
        r.divergences_csv = divergences_csv(&hil.divergences);
        r.reinits = hil.resets;
        Some(Ok(r))
    }

    /// Feeds these LMUs (node indices) sampled waveforms instead of
    /// phasors; indices out of range are ignored.
    pub fn set_waveform_lmus(&mut self, nodes: &[u32]) {
        self.waveform = vec![false; self.nodes.len()];
        for &n in nodes {
            if let Some(w) = self.waveform.get_mut(n as usize) {
                *w = true;
            }
        }
    }

    /// Gives LMUs faulty sensors.
    pub fn set_sensor_faults(&mut self, faults: Vec<SensorFault>) {
        self.sensor_faults = faults;
    }

    /// Counters so far.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// Whether node `n`'s record meets EN 50160 (`None`: no LMU, or no
    /// interval completed yet).
    pub fn en50160(&self, n: u32) -> Option<bool> {
        let pq = self.nodes.get(n as usize)?.lmu.as_ref()?.pq_summary();
        en50160_compliant(pq.intervals, pq.compliant_intervals)
    }

    /// Writes `pq.*` (EN 50160 compliance per LMU: at least 95 % of its
    /// completed 10-minute intervals within every limit) and returns
    /// `lmus.csv`, one row per LMU (with the inputs it was fed).
    pub fn pq_finish(&self, net: &Network, summary: &mut Summary) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record([
            "lmu",
            "bus",
            "intervals",
            "compliant_intervals",
            "en50160_compliant",
            "dips",
            "swells",
            "interruptions",
            "inputs",
        ])
        .expect(io);
        let (mut judged, mut compliant) = (0u64, 0u64);
        for (n, node) in self.nodes.iter().enumerate() {
            let (Some(lmu), Some(place)) = (&node.lmu, &node.place) else {
                continue;
            };
            let pq = lmu.pq_summary();
            let ok = en50160_compliant(pq.intervals, pq.compliant_intervals);
            if let Some(ok) = ok {
                judged += 1;
                compliant += u64::from(ok);
            }
            w.write_record([
                n.to_string(),
                net.buses[place.bus].name.clone(),
                pq.intervals.to_string(),
                pq.compliant_intervals.to_string(),
                ok.map_or(String::new(), |b| b.to_string()),
                pq.dips.to_string(),
                pq.swells.to_string(),
                pq.interruptions.to_string(),
                node.inputs.to_string(),
            ])
            .expect(io);
        }
        if judged > 0 {
            summary.set_f64(
                "pq.en50160_compliant_share",
                compliant as f64 / judged as f64,
            );
        }
        summary.set_u64("pq.lmus_judged", judged);
        w.into_inner().expect(io)
    }

    /// The FLISR steps so far: (time, node, step), in time order.
    pub fn marks(&self) -> &[(SimTime, u32, FlisrMark)] {
        &self.marks
    }

    /// The first LMU's node (the coordinators come before).
    pub fn first(&self) -> u32 {
        self.first
    }

    /// Node count, the coordinators included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Where node `n` sits.
    pub fn place(&self, n: u32) -> Option<&Place> {
        self.nodes.get(n as usize)?.place.as_ref()
    }

    /// Whether node `n`'s contactor is closed (`None`: no LMU running).
    pub fn is_closed(&self, n: u32) -> Option<bool> {
        Some(self.nodes.get(n as usize)?.lmu.as_ref()?.is_closed())
    }

    /// When each LMU first powers on: at a jittered instant within one
    /// report interval, from its own stream, so that reports spread out.
    pub fn start(&self, seed: u64) -> Vec<(SimTime, u32)> {
        (self.first..self.nodes.len() as u32)
            .map(|n| {
                let mut rng = stream(seed, "lmu", u64::from(n), "report-phase");
                let at = rng.random_range(0..self.interval.as_nanos().max(1));
                (SimTime::from_nanos(at), n)
            })
            .collect()
    }

    /// The LMU nodes that are not ready for a fault now: never booted yet,
    /// or running without a route both ways (`routed`).
    pub fn unready(&self, routed: impl Fn(u32) -> bool) -> usize {
        (self.first..self.nodes.len() as u32)
            .filter(|&n| {
                let node = &self.nodes[n as usize];
                !node.booted || (node.lmu.is_some() && !routed(n))
            })
            .count()
    }

    /// Node `n` powers on for the first time (boot epoch 0).
    pub fn power_on(&mut self, n: u32) {
        if n < self.first || n as usize >= self.nodes.len() || self.nodes[n as usize].lmu.is_some()
        {
            return;
        }
        self.boot(n, 0);
    }

    /// The node crashes: its firmware stops.
    pub fn crash(&mut self, n: u32) {
        if let Some(node) = self.nodes.get_mut(n as usize) {
            node.lmu = None;
        }
    }

    /// The node reboots with the next boot epoch (its counters restart).
    pub fn reboot(&mut self, n: u32) {
        if n < self.first || n as usize >= self.nodes.len() {
            return;
        }
        self.boot(n, self.nodes[n as usize].epoch + 1);
        self.stats.reboots += 1;
    }

    /// The pending timer of node `n`.
    pub fn timer(&self, n: u32) -> Option<(SimTime, EventId)> {
        self.nodes.get(n as usize)?.timer
    }

    /// Records node `n`'s pending timer.
    pub fn set_timer(&mut self, n: u32, t: Option<(SimTime, EventId)>) {
        if let Some(node) = self.nodes.get_mut(n as usize) {
            node.timer = t;
        }
    }

    /// When node `n` wants its next timer input (as its board said, for a
    /// board in the loop).
    pub fn poll_at(&self, n: u32) -> Option<SimTime> {
        let node = self.nodes.get(n as usize)?;
        let l = node.lmu.as_ref()?;
        match &node.board {
            Some(a) => a.poll_at,
            None => l.poll_at().map(sim_time),
        }
    }

    /// Inputs fed to node `n`'s LMU so far.
    pub fn inputs(&self, n: u32) -> u64 {
        self.nodes.get(n as usize).map_or(0, |node| node.inputs)
    }

    /// Feeds every LMU on the grid its measurement from a solution, in node
    /// order; returns each node's effects.
    pub fn measure(&mut self, now: SimTime, net: &Network, sol: &Solution) -> Vec<(u32, Effects)> {
        let mut out = Vec::new();
        for n in self.first..self.nodes.len() as u32 {
            let Some(place) = &self.nodes[n as usize].place else {
                continue;
            };
            let c32 = |z: num_complex::Complex64| Complex32::new(z.re as f32, z.im as f32);
            let v = sol.v[place.bus].map(c32);
            // Current flowing into the bus through the contactor, i.e.
            // downstream.
            let i = match place.feeder {
                Some((k, to_end)) => {
                    let br = &net.branches[k];
                    let f = if br.closed {
                        let cached = &mut self.blocks[n as usize];
                        if cached.as_ref().is_none_or(|c| c.0 != br.phases) {
                            *cached = Some((br.phases, br.blocks()));
                        }
                        let (_, b) = cached.as_ref().expect("filled above");
                        branch_flow_with(br, b, &sol.v)
                    } else {
                        branch_flow(br, &sol.v)
                    };
                    if to_end {
                        f.i_to.map(|z| -c32(z))
                    } else {
                        f.i_from.map(|z| -c32(z))
                    }
                }
                None => [Complex32::new(0.0, 0.0); 3],
            };
            let (mut v, mut i) = (v, i);
            for f in self.sensor_faults.iter_mut().filter(|f| f.node == n) {
                if f.current {
                    i = f.read(now, i);
                } else {
                    v = f.read(now, v);
                }
            }
            let effects = if self.waveform.get(n as usize).copied().unwrap_or(false) {
                let w = sampled(&v, &i);
                self.stats.waveform_inputs += 1;
                self.call(now, n, Input::Waveform(&w))
            } else {
                let frame = PhasorFrame {
                    v,
                    i,
                    frequency_hz: 50.0,
                    v_harmonics: None,
                    i_harmonics: None,
                };
                self.call(now, n, Input::Phasors(&frame))
            };
            if let Some(e) = effects {
                out.push((n, e));
            }
        }
        out
    }

    /// Feeds node `n` one input; `None` if it has no running LMU (or its
    /// board failed: see [`LmuHost::take_hil_failure`]).
    pub fn call(&mut self, now: SimTime, n: u32, input: Input<'_>) -> Option<Effects> {
        let node = self.nodes.get_mut(n as usize)?;
        let lmu = node.lmu.as_mut()?;
        self.out.clear();
        lmu.handle(instant(now), input, &mut self.out);
        self.stats.calls += 1;
        node.inputs += 1;
        if node.board.is_some() {
            self.board_step(now, n, &input)?;
        }
        let node = &mut self.nodes[n as usize];
        let mut e = Effects::default();
        for f in &self.out.frames {
            let dst = match f.dst {
                gridtwin_lmu::frame::GATEWAY => GATEWAY_NODE,
                d => u32::from(d),
            };
            e.frames.push((dst, f.bytes.to_vec()));
        }
        if self.out.report.is_some() {
            self.stats.reports += 1;
        }
        if let (Some(c), Some((k, _))) = (
            self.out.contactor,
            node.place.as_ref().and_then(|p| p.feeder),
        ) {
            self.stats.contactor_ops += 1;
            let close = c == gridtwin_lmu::node::Contactor::Close;
            e.switch = Some((k, close));
            let mark = if close {
                FlisrMark::Closed
            } else {
                FlisrMark::Opened
            };
            self.marks.push((now, n, mark));
        }
        e.setpoint = self.out.setpoint;
        for ev in &self.out.events {
            match ev {
                LogEvent::Executed(c) => {
                    self.stats.commands_executed += 1;
                    e.executed.push(*c);
                }
                LogEvent::Rejected(_) => self.stats.frames_rejected += 1,
                LogEvent::Isolated { upstream: true } => self.stats.isolations += 1,
                LogEvent::Isolated { upstream: false } => {
                    self.stats.isolations_downstream += 1;
                }
                LogEvent::FaultDetected { .. } => self.marks.push((now, n, FlisrMark::Detected)),
                LogEvent::FaultLocated => self.marks.push((now, n, FlisrMark::Located)),
                _ => {}
            }
        }
        Some(e)
    }

    /// Node `n`'s board takes the input its shadow just took (whose
    /// outputs are in `self.out`); the board's outputs replace the
    /// shadow's, and any difference is recorded. On a board reset, per
    /// the policy: the failure is kept, or both LMUs boot in the next
    /// epoch and take the input again. `None` on failure.
    fn board_step(&mut self, now: SimTime, n: u32, input: &Input<'_>) -> Option<()> {
        let wire = WireInput::from_input(input);
        let now_us = instant(now).total_micros();
        let mut rebooted = false;
        loop {
            let hil = self.hil.as_mut()?;
            let node = &mut self.nodes[n as usize];
            let a = node.board.as_mut()?;
            match a.board.step(now_us, wire.clone()) {
                Ok(got) => {
                    let board_poll = got.poll_at_us.map(|us| sim_time(Instant::from_micros(us)));
                    let shadow_poll = node.lmu.as_ref().and_then(Lmu::poll_at).map(sim_time);
                    let parts = differing_parts(&self.out, shadow_poll, &got.outputs, board_poll);
                    if !parts.is_empty() {
                        hil.divergences.push(Divergence {
                            at: now,
                            node: n,
                            seq: a.board.seq(),
                            parts,
                            input: bits(&wire),
                            shadow: bits(&(&self.out, shadow_poll.map(SimTime::as_nanos))),
                            board: bits(&(&got.outputs, board_poll.map(SimTime::as_nanos))),
                        });
                    }
                    a.poll_at = board_poll;
                    self.out = got.outputs;
                    return Some(());
                }
                Err(HilError::Reset { .. }) if hil.on_reset == OnReset::Reinit && !rebooted => {
                    // The board lost its LMU: boot both anew, in the next
                    // epoch, and feed them this input again.
                    hil.resets.push((now, n));
                    rebooted = true;
                    self.reboot(n);
                    let lmu = self.nodes[n as usize].lmu.as_mut()?;
                    self.out.clear();
                    lmu.handle(instant(now), *input, &mut self.out);
                }
                Err(e) => {
                    hil.failure.get_or_insert(e);
                    return None;
                }
            }
        }
    }
}

/// Postcard bytes of a value (floats by their bits).
fn bits<T: serde::Serialize + ?Sized>(x: &T) -> Vec<u8> {
    postcard::to_stdvec(x).expect("in-memory postcard encoding cannot fail")
}

/// The parts of two LMUs' outputs that differ, bit for bit.
fn differing_parts(
    a: &Outputs,
    a_poll: Option<SimTime>,
    b: &Outputs,
    b_poll: Option<SimTime>,
) -> Vec<&'static str> {
    let differ = [
        ("frames", bits(&a.frames) != bits(&b.frames)),
        ("contactor", bits(&a.contactor) != bits(&b.contactor)),
        ("setpoint", bits(&a.setpoint) != bits(&b.setpoint)),
        ("report", bits(&a.report) != bits(&b.report)),
        ("events", bits(&a.events) != bits(&b.events)),
        ("overflowed", a.overflowed != b.overflowed),
        ("poll_at", a_poll != b_poll),
    ];
    differ
        .into_iter()
        .filter_map(|(name, d)| d.then_some(name))
        .collect()
}

/// `hil_resets.csv`: the board resets after which the LMU was booted
/// again, one row each.
pub fn resets_csv(resets: &[(SimTime, u32)]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = "writing CSV to memory cannot fail";
    w.write_record(["t_s", "lmu"]).expect(io);
    for (t, n) in resets {
        w.write_record([format!("{:.6}", t.as_secs_f64()), n.to_string()])
            .expect(io);
    }
    w.into_inner().expect(io)
}

/// `hil_divergences.csv`: one row per divergent step, with the input and
/// both outputs in postcard hex (decode them with the LMU crate's types:
/// `WireInput`, and `(Outputs, Option<u64>)` with the next timer in ns).
fn divergences_csv(ds: &[Divergence]) -> Vec<u8> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = "writing CSV to memory cannot fail";
    w.write_record(["t_s", "lmu", "seq", "parts", "input", "shadow", "board"])
        .expect(io);
    for d in ds {
        w.write_record([
            format!("{:.6}", d.at.as_secs_f64()),
            d.node.to_string(),
            d.seq.to_string(),
            d.parts.join(" "),
            hex(&d.input),
            hex(&d.shadow),
            hex(&d.board),
        ])
        .expect(io);
    }
    w.into_inner().expect(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridtwin_lmu::dsp::Analyzer;

    /// `place` finds sections by depth-first numbering; it must give what
    /// the definition gives: a section is the bus and every bus whose chain
    /// of parents reaches it (walked here bus by bus), the downstream LMUs
    /// those whose upstream LMU ([`nearest_lmu_above`], which `place` uses
    /// too) it is. Checked on random radial
    /// feeders of 300 buses with LMUs on a random fifth of them, a
    /// coordinator at the transformer, and a bus cut off from the source.
    #[test]
    fn place_gives_the_sections_of_the_definition() {
        use rand::RngExt;
        for seed in 1..=8u64 {
            let mut net = Network::synthetic_radial(300, seed);
            // A bus with a load and no branch: unreachable.
            let lone = net.buses.len();
            let mut b = net.buses[2].clone();
            b.name = "lone".into();
            net.buses.push(b);
            let mut load = net.loads[0].clone();
            load.bus = lone;
            net.loads.push(load);
            let mut rng = crate::kernel::rng::stream(seed, "test", 0, "place");
            let lv = net
                .branches
                .iter()
                .find(|b| matches!(b.kind, crate::grid::network::BranchKind::Transformer { .. }))
                .unwrap()
                .to;
            let mut buses = vec![Some(lv)];
            buses.extend(
                (0..net.buses.len())
                    .filter(|&b| b != lv && b != net.source.bus && rng.random_range(0..5) == 0)
                    .map(Some),
            );
            buses.push(Some(lone));
            buses.push(None);
            let got = place(&net, &buses, 1);
            let RadialTree { parent, order } = RadialTree::of(&net);
            let node_at = nodes_at(net.buses.len(), &buses);
            let up = |b: usize| nearest_lmu_above(&parent, &node_at, 1, b);
            for (i, b) in buses.iter().enumerate() {
                let Some(b) = *b else {
                    assert!(got[i].is_none());
                    continue;
                };
                let mut inside = vec![false; net.buses.len()];
                inside[b] = true;
                for &x in &order {
                    if let Some((p, _)) = parent[x]
                        && inside[p]
                    {
                        inside[x] = true;
                    }
                }
                let g = got[i].as_ref().unwrap();
                let loads: Vec<usize> = (0..net.loads.len())
                    .filter(|&l| inside[net.loads[l].bus])
                    .collect();
                assert_eq!(g.loads, loads, "seed {seed}, LMU {i}");
                assert!(net.pv.is_empty() && g.pvs.is_empty());
                assert_eq!(g.upstream, up(b), "seed {seed}, LMU {i}");
                let down: Vec<u32> = (0..buses.len() as u32)
                    .filter(|&j| buses[j as usize].and_then(up) == Some(i as u32))
                    .collect();
                assert_eq!(g.downstream, down, "seed {seed}, LMU {i}");
            }
            assert_eq!(
                got[buses.len() - 2].as_ref().unwrap().loads,
                vec![net.loads.len() - 1]
            );
        }
    }

    fn polar(mag: f32, deg: f32) -> Complex32 {
        Complex32::from_polar(mag, deg.to_radians())
    }

    /// The sampled cycle, analysed by the firmware's own DSP, gives back
    /// the phasors it was made from within the ADC's resolution: half a
    /// step (500 V / 2048, 2000 A / 2048) on each sample bounds the error
    /// of the RMS and of the fundamental phasor by that much, so angles
    /// within asin(half a step / |X|); frequency 50 Hz (cycles aligned),
    /// and a clean sinusoid has THD below 0.5 % (quantisation noise
    /// alone).
    #[test]
    fn sampled_waveforms_measure_as_their_phasors_within_adc_resolution() {
        let v = [polar(238.0, 0.0), polar(241.5, -121.0), polar(236.2, 119.5)];
        let i = [polar(40.0, -20.0), polar(85.0, -140.0), polar(12.5, 95.0)];
        let w = sampled(&v, &i);
        let mut a = Analyzer::new();
        let _ = a.waveform(&w);
        let m = a.waveform(&w);
        let (dv, di) = (ADC_V_PEAK / 2048.0, ADC_I_PEAK / 2048.0);
        for k in 0..3 {
            let p = &m.phases[k];
            assert!((f64::from(p.v_rms) - f64::from(v[k].norm())).abs() <= dv / 2.0);
            assert!((f64::from(p.i_rms) - f64::from(i[k].norm())).abs() <= di / 2.0);
            let dang = |a: Complex32, b: Complex32| (a * b.conj()).arg().to_degrees().abs();
            let bound = |half_step: f64, x: Complex32| {
                (half_step / f64::from(x.norm())).asin().to_degrees() as f32
            };
            assert!(dang(p.v1, v[k]) <= bound(dv / 2.0, v[k]), "phase {k} V");
            assert!(dang(p.i1, i[k]) <= bound(di / 2.0, i[k]), "phase {k} I");
            assert!(p.thd_v_pct < 0.5, "{}", p.thd_v_pct);
        }
        assert!((m.frequency_hz - 50.0).abs() < 1e-3, "{}", m.frequency_hz);
    }

    /// A fault current beyond the ADC's range clips: the measured RMS is
    /// that of a clipped sinusoid, below the true value but above the
    /// range's RMS, and the clipping shows as harmonic distortion.
    #[test]
    fn fault_currents_beyond_the_adc_range_clip() {
        let v = [polar(120.0, 0.0), polar(240.0, -120.0), polar(240.0, 120.0)];
        let big = polar(4000.0, -60.0);
        let i = [big, polar(10.0, -120.0), polar(10.0, 120.0)];
        let w = sampled(&v, &i);
        assert!(w.i[0].iter().all(|x| f64::from(x.abs()) <= ADC_I_PEAK));
        let m = Analyzer::new().waveform(&w);
        let rms = f64::from(m.phases[0].i_rms);
        assert!(
            rms < 4000.0 && rms > ADC_I_PEAK / std::f64::consts::SQRT_2,
            "{rms}"
        );
        assert!(m.phases[0].thd_i_pct > 5.0, "{}", m.phases[0].thd_i_pct);
    }
}
