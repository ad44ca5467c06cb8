//! The LMU node: measurement, protection, power quality, FLISR, telemetry
//! and secure frames behind one sans-IO interface.
//!
//! ```text
//!   Lmu::handle(now, Input::{Waveform | Phasors | Frame | Timer | Command}, &mut Outputs)
//!   Lmu::poll_at() -> Option<Instant>      // when to deliver Input::Timer next
//! ```
//!
//! # FLISR
//! Sections: LMU *i*'s contactor sits at the upstream end of section *Sᵢ*,
//! which runs down to the contactors of *i*'s downstream LMUs. Contactors
//! are not breakers: the feeder-head breaker interrupts the fault, and the
//! LMUs act in its dead time, while no current flows.
//!
//! Only the LMUs on the path from the source to the fault speak, so the
//! traffic grows with the depth of the fault, not with the size of the
//! feeder: a whole feeder's LMUs reporting at the instant the breaker
//! trips would swamp a shared radio channel (see the mesh study in
//! `gridtwin`'s runs).
//!
//! 1. **Detect.** Every LMU on the path from the source to the fault sees
//!    forward fault current within a cycle and latches it. The latch is
//!    supervised: it holds only while the start lasts, until the feeder
//!    goes dead; a start that resets with the voltage still there is
//!    forgotten.
//! 2. **Report.** When the breaker has tripped (every phase below
//!    `dead_pu`), each LMU that saw the fault tells its upstream neighbour
//!    (reliably: acknowledged, retried). LMUs that saw nothing stay silent.
//! 3. **Locate.** An LMU that saw the fault and hears from a downstream
//!    neighbour that it saw it too knows the fault lies further down. One
//!    that hears nothing by `decide_timeout` (a leaf section: at once) is
//!    the upstream boundary of the faulted section: it opens, and tells
//!    each downstream neighbour `Verdict { isolate: true }`.
//! 4. **Isolate.** A downstream LMU told to isolate opens.
//! 5. **Restore.** Upstream: the breaker recloses (outside the LMUs).
//!    Downstream: an LMU that opened as a downstream boundary asks its
//!    designated normally-open tie (`restore_via`) to close; a tie closes
//!    only if it was not itself told to isolate and saw no fault current.
//!
//! **Lost messages.** A lost report makes the LMU above it open too: a
//! larger outage, never an energised fault. A lost verdict leaves a
//! downstream boundary closed, so it never asks its tie to close and its
//! subtree stays dead: again a larger outage, never a fault fed through a
//! tie. A fault above every LMU (between the breaker and the first LMUs)
//! is not isolated by them: the breaker recloses onto it and locks out.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::dsp::{Analyzer, Measurement, PhasorFrame, Waveform};
use crate::frame::{
    FrameError, FrameKind, GATEWAY, Keys, MAX_FRAME, MAX_PAYLOAD, RejectCounts, Security,
};
use crate::pq::{PqEvent, PqMonitor};
use crate::protection::{Direction, Protection, ProtectionSettings};
use crate::time::{Duration, Instant};

/// Most grid neighbours (downstream LMUs) of one LMU.
pub const MAX_NEIGHBOURS: usize = 8;
/// Most frames one call may emit.
pub const MAX_OUT_FRAMES: usize = 12;
/// Most log events one call may emit.
pub const MAX_LOG_EVENTS: usize = 8;
/// Most reliable messages awaiting acknowledgement.
pub const MAX_PENDING: usize = 12;

/// FLISR timing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlisrSettings {
    /// Base wait before retransmitting an unacknowledged message; it
    /// doubles with each retransmission, with jitter (see `backoff`).
    pub retry_interval: Duration,
    /// Retransmissions after the first send.
    pub max_retries: u8,
    /// From voltage loss until an LMU that saw the fault, and heard from
    /// no downstream LMU that saw it too, opens as the boundary.
    pub decide_timeout: Duration,
    /// How long a latched fault indication stays valid after the last
    /// measurement that saw the fault.
    pub fault_memory: Duration,
    /// Below this voltage on every phase the feeder is dead [pu].
    pub dead_pu: f32,
}

impl Default for FlisrSettings {
    /// Retransmissions after 50, 100, 200 and 400 ms (each up to half
    /// again, at random) and 800 ms; a decision 0.8 s after voltage loss,
    /// well inside a recloser's usual 2–5 s dead time, by when a report has
    /// had four tries.
    fn default() -> Self {
        FlisrSettings {
            retry_interval: Duration::from_millis(50),
            max_retries: 5,
            decide_timeout: Duration::from_millis(800),
            fault_memory: Duration::from_secs(10),
            dead_pu: 0.1,
        }
    }
}

/// An LMU's configuration. It crosses the HIL wire in
/// [`crate::hil::HostMsg::Configure`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Node id (not [`GATEWAY`] nor [`crate::frame::BROADCAST`]).
    pub id: u16,
    /// The LMU upstream, or `None` for the first after the feeder head.
    pub upstream: Option<u16>,
    /// The LMUs at the downstream ends of this LMU's section.
    pub downstream: Vec<u16, MAX_NEIGHBOURS>,
    /// A normally-open tie.
    pub normally_open: bool,
    /// The tie that back-feeds this LMU's subtree when it opens as a
    /// downstream boundary.
    pub restore_via: Option<u16>,
    /// Other LMUs this one accepts frames from (e.g. those that restore
    /// through it).
    pub peers: Vec<u16, MAX_NEIGHBOURS>,
    /// Protection settings.
    pub protection: ProtectionSettings,
    /// FLISR timing.
    pub flisr: FlisrSettings,
    /// Interval between telemetry reports.
    pub report_interval: Duration,
    /// Boot epoch from non-volatile storage (incremented by the caller at
    /// every boot).
    pub boot_epoch: u32,
}

impl Config {
    /// A configuration with default settings.
    pub fn new(id: u16) -> Config {
        Config {
            id,
            upstream: None,
            downstream: Vec::new(),
            normally_open: false,
            restore_via: None,
            peers: Vec::new(),
            protection: ProtectionSettings::default(),
            flisr: FlisrSettings::default(),
            report_interval: Duration::from_secs(60),
            boot_epoch: 0,
        }
    }
}

/// A command from the operator (locally or through the gateway).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Open the contactor.
    Open,
    /// Close the contactor (refused while a fault is latched).
    Close,
    /// Send a telemetry report now.
    Report,
    /// Change the telemetry report interval (a setting).
    SetReportInterval {
        /// The new interval [s], at least 1.
        secs: u32,
    },
    /// Limit the active power of the PV inverters in this LMU's section.
    LimitPv {
        /// Share of their rating [%]; 100 lifts the limit.
        percent: u8,
    },
    /// Demand response: reduce the flexible load in this LMU's section.
    ReduceLoad {
        /// Reduction [%] of the section's load.
        percent: u8,
        /// For how long [min].
        minutes: u16,
    },
}

/// The application messages carried in frames.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// To the upstream LMU: whether this LMU saw the fault.
    Report {
        /// Saw forward fault current.
        saw: bool,
    },
    /// To a downstream LMU: whether to open.
    Verdict {
        /// Open as a boundary of the faulted section.
        isolate: bool,
    },
    /// To a tie: close to back-feed the requester's subtree.
    Restore,
    /// Acknowledges the frame with this counter.
    Ack {
        /// The acknowledged frame's counter.
        counter: u64,
    },
    /// Telemetry, to the gateway.
    Telemetry(Telemetry),
    /// From the gateway.
    Command(Command),
}

impl Message {
    /// Encodes the message (postcard) into `buf`; `None` if it does not fit.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Option<&'a mut [u8]> {
        postcard::to_slice(self, buf).ok()
    }

    /// Decodes a message, or `None` for bytes that are not one.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        postcard::from_bytes(bytes).ok()
    }

    /// The frame kind that carries it.
    pub fn kind(&self) -> FrameKind {
        match self {
            Message::Report { .. } => FrameKind::FaultReport,
            Message::Verdict { .. } | Message::Restore => FrameKind::Switch,
            Message::Ack { .. } => FrameKind::Ack,
            Message::Telemetry(_) => FrameKind::Telemetry,
            Message::Command(_) => FrameKind::Command,
        }
    }
}

/// A periodic report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// When it was generated: the node's clock [ms].
    pub t_ms: u64,
    /// Report sequence number since boot.
    pub seq: u32,
    /// Boot epoch.
    pub epoch: u32,
    /// Lowest per-phase RMS voltage over the interval [0.1 V].
    pub v_min_dv: [u16; 3],
    /// Highest per-phase RMS voltage [0.1 V].
    pub v_max_dv: [u16; 3],
    /// Mean per-phase RMS voltage [0.1 V].
    pub v_mean_dv: [u16; 3],
    /// Energy passed downstream since boot [Wh].
    pub import_wh: f32,
    /// Energy passed upstream since boot [Wh].
    pub export_wh: f32,
    /// Dips, swells, interruptions since boot.
    pub pq_events: [u16; 3],
    /// Compliant and total EN 50160 10-minute intervals.
    pub pq_intervals: [u32; 2],
    /// Contactor closed.
    pub closed: bool,
    /// A fault indication is latched.
    pub fault_latched: bool,
    /// Frames sent, received and accepted, and rejected.
    pub frames: [u32; 3],
}

/// A voltage in tenths of a volt, saturating (an `as` cast of a float
/// saturates and maps NaN to 0).
fn decivolts(v: f32) -> u16 {
    (v * 10.0 + 0.5) as u16
}

/// A frame to transmit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutFrame {
    /// Destination node.
    pub dst: u16,
    /// The sealed frame.
    pub bytes: Vec<u8, MAX_FRAME>,
}

/// A contactor command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Contactor {
    /// Open it.
    Open,
    /// Close it.
    Close,
}

/// A set-point for the equipment of this LMU's section (inverters,
/// flexible loads), carried out by whoever drives the LMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setpoint {
    /// Limit PV active power to a share of rating [%] (100: no limit).
    PvLimit {
        /// Share of rating [%].
        percent: u8,
    },
    /// Reduce flexible load by a share [%] for a time [min].
    LoadReduction {
        /// Reduction [%].
        percent: u8,
        /// Duration [min].
        minutes: u16,
    },
}

/// Something worth logging.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LogEvent {
    /// Forward fault current seen.
    FaultDetected {
        /// Direction.
        direction: Direction,
    },
    /// The feeder went dead.
    VoltageLost,
    /// The feeder came back.
    VoltageRestored,
    /// This LMU is the upstream boundary of the faulted section.
    FaultLocated,
    /// Opened as a boundary of the faulted section.
    Isolated {
        /// As its upstream boundary (else as a downstream one, on a
        /// verdict).
        upstream: bool,
    },
    /// A tie closed to restore.
    Restored,
    /// A close was refused (a fault is latched).
    CloseRefused,
    /// A power-quality event began.
    Pq(PqEvent),
    /// A received frame was rejected.
    Rejected(FrameError),
    /// A command (local or from the gateway) was carried out.
    Executed(Command),
}

/// Outputs of one call: fixed capacities, overflow counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// Frames to send.
    pub frames: Vec<OutFrame, MAX_OUT_FRAMES>,
    /// Contactor command, if any.
    pub contactor: Option<Contactor>,
    /// A set-point for the section's equipment, if any.
    pub setpoint: Option<Setpoint>,
    /// A telemetry report, if one is due.
    pub report: Option<Telemetry>,
    /// Log events.
    pub events: Vec<LogEvent, MAX_LOG_EVENTS>,
    /// Outputs dropped for lack of room.
    pub overflowed: u16,
}

impl Outputs {
    /// Empties the outputs for the next call.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.contactor = None;
        self.setpoint = None;
        self.report = None;
        self.events.clear();
        self.overflowed = 0;
    }

    fn log(&mut self, e: LogEvent) {
        if self.events.push(e).is_err() {
            self.overflowed = self.overflowed.saturating_add(1);
        }
    }
}

/// An input.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// One cycle of samples.
    Waveform(&'a Waveform),
    /// Phasors.
    Phasors(&'a PhasorFrame),
    /// A received frame (untrusted bytes).
    Frame(&'a [u8]),
    /// The time from [`Lmu::poll_at`] has come.
    Timer,
    /// A local command.
    Command(Command),
}

/// A reliable message awaiting its acknowledgement.
#[derive(Clone, Debug)]
struct Pending {
    dst: u16,
    msg: Message,
    counter: u64,
    tries: u8,
    next: Instant,
}

/// Where this LMU stands in the current outage.
#[derive(Clone, Debug, Default)]
struct Round {
    /// Reports from downstream LMUs: (id, saw).
    reports: Vec<(u16, bool), MAX_NEIGHBOURS>,
    /// The verdict from upstream, if any.
    verdict: Option<bool>,
    /// Whether this LMU has decided (as the upstream boundary's judge).
    judged: bool,
    /// Whether this LMU has opened in this round.
    opened: bool,
    /// Whether it was told (or decided) to isolate.
    isolate: bool,
}

/// Telemetry accumulated over an interval.
#[derive(Clone, Copy, Debug)]
struct Interval {
    v_min: [f32; 3],
    v_max: [f32; 3],
    v_sum: [f32; 3],
    n: u32,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            v_min: [f32::INFINITY; 3],
            v_max: [0.0; 3],
            v_sum: [0.0; 3],
            n: 0,
        }
    }
}

/// One line monitoring unit.
#[derive(Clone, Debug)]
pub struct Lmu {
    cfg: Config,
    security: Security,
    analyzer: Analyzer,
    protection: Protection,
    pq: PqMonitor,
    closed: bool,
    fault_seen: Option<Instant>,
    /// A forward start at the last measurement.
    starting: bool,
    dead_since: Option<Instant>,
    round: Round,
    pending: Vec<Pending, MAX_PENDING>,
    last_measurement: Option<Instant>,
    interval: Interval,
    import_wh: f32,
    export_wh: f32,
    next_report: Option<Instant>,
    report_seq: u32,
    sent: u32,
    received: u32,
    overflowed: u32,
}

impl Lmu {
    /// A node with its configuration and keys; the contactor starts in its
    /// normal state.
    pub fn new(cfg: Config, keys: Keys) -> Lmu {
        let mut peers: Vec<u16, { 2 * MAX_NEIGHBOURS + 2 }> = Vec::new();
        let _ = peers.push(GATEWAY);
        if let Some(u) = cfg.upstream {
            let _ = peers.push(u);
        }
        for &d in cfg.downstream.iter().chain(cfg.peers.iter()) {
            let _ = peers.push(d);
        }
        if let Some(t) = cfg.restore_via {
            let _ = peers.push(t);
        }
        Lmu {
            security: Security::new(cfg.id, keys, cfg.boot_epoch, &peers),
            analyzer: Analyzer::new(),
            protection: Protection::new(cfg.protection),
            pq: PqMonitor::new(cfg.protection.v_nominal),
            closed: !cfg.normally_open,
            fault_seen: None,
            starting: false,
            dead_since: None,
            round: Round::default(),
            pending: Vec::new(),
            last_measurement: None,
            interval: Interval::default(),
            import_wh: 0.0,
            export_wh: 0.0,
            next_report: None,
            report_seq: 0,
            sent: 0,
            received: 0,
            overflowed: 0,
            cfg,
        }
    }

    /// Node id.
    pub fn id(&self) -> u16 {
        self.cfg.id
    }

    /// Whether the contactor is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Frames rejected, by reason.
    pub fn rejected(&self) -> RejectCounts {
        self.security.rejected()
    }

    /// Outputs dropped for lack of room since boot.
    pub fn overflowed(&self) -> u32 {
        self.overflowed
    }

    /// Its EN 50160 counts so far.
    pub fn pq_summary(&self) -> crate::pq::PqSummary {
        self.pq.summary()
    }

    /// When the node next wants [`Input::Timer`], if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut t = self.next_report;
        let mut earliest = |x: Instant| {
            t = Some(t.map_or(x, |y| if x < y { x } else { y }));
        };
        for p in &self.pending {
            earliest(p.next);
        }
        if let Some(x) = self.decide_due() {
            earliest(x);
        }
        t
    }

    /// When an LMU that saw the fault decides that no LMU below saw it:
    /// `decide_timeout` after voltage loss, if the fault is still latched
    /// then and it has not judged. The same instant for [`Lmu::poll_at`]
    /// and the timer, so a due timer always makes progress.
    fn decide_due(&self) -> Option<Instant> {
        let d = self.dead_since?;
        let at = d + self.cfg.flisr.decide_timeout;
        (!self.round.judged && self.fault_latched(at)).then_some(at)
    }

    /// Handles one input at `now`, appending to `out`.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Outputs) {
        let before = out.overflowed;
        if self.next_report.is_none() {
            self.next_report = Some(now + self.cfg.report_interval);
        }
        match input {
            Input::Waveform(w) => {
                let m = self.analyzer.waveform(w);
                self.measured(now, &m, out);
            }
            Input::Phasors(p) => {
                let m = self.analyzer.phasors(p);
                self.measured(now, &m, out);
            }
            Input::Frame(bytes) => self.frame(now, bytes, out),
            Input::Timer => {}
            Input::Command(c) => self.command(now, c, out),
        }
        self.timers(now, out);
        self.overflowed = self
            .overflowed
            .saturating_add(u32::from(out.overflowed - before));
    }

    fn fault_latched(&self, now: Instant) -> bool {
        self.fault_seen
            .is_some_and(|t| now.saturating_duration_since(t) <= self.cfg.flisr.fault_memory)
    }

    fn measured(&mut self, now: Instant, m: &Measurement, out: &mut Outputs) {
        // Telemetry and energy.
        let dt_h = self.last_measurement.map_or(0.0, |l| {
            now.saturating_duration_since(l).total_micros() as f32 / 3.6e9
        });
        self.last_measurement = Some(now);
        let p: f32 = m.phases.iter().map(|x| x.p_w).sum();
        if p >= 0.0 {
            self.import_wh += p * dt_h;
        } else {
            self.export_wh -= p * dt_h;
        }
        let iv = &mut self.interval;
        for (k, ph) in m.phases.iter().enumerate() {
            if let (Some(lo), Some(hi), Some(sum)) = (
                iv.v_min.get_mut(k),
                iv.v_max.get_mut(k),
                iv.v_sum.get_mut(k),
            ) {
                *lo = lo.min(ph.v_rms);
                *hi = hi.max(ph.v_rms);
                *sum += ph.v_rms;
            }
        }
        iv.n = iv.n.saturating_add(1);
        if let Some(e) = self.pq.update(now, m) {
            out.log(LogEvent::Pq(e));
        }

        // Protection: latch forward fault passage, supervised: the latch
        // holds only while the start does, until the feeder goes dead. A
        // start that resets while the voltage stays (a load step, inrush,
        // a fault elsewhere that the breaker did not clear through this
        // LMU) was no fault passage, and is forgotten.
        let status = self.protection.update(now, m);
        let un = self.cfg.protection.v_nominal;
        let dead = m
            .phases
            .iter()
            .all(|x| x.v_rms < self.cfg.flisr.dead_pu * un);
        let forward = status.fault() && status.direction == Direction::Forward;
        if forward {
            // Logged once per start, however long it lasts.
            if !self.starting && !self.fault_latched(now) {
                out.log(LogEvent::FaultDetected {
                    direction: status.direction,
                });
            }
            // `fault_memory` runs from the last measurement that saw it.
            self.fault_seen = Some(now);
        } else if !dead && self.dead_since.is_none() {
            self.fault_seen = None;
        }
        self.starting = forward;

        // Dead or alive.
        match (dead, self.dead_since) {
            (true, None) => {
                self.dead_since = Some(now);
                out.log(LogEvent::VoltageLost);
                self.on_dead(now, out);
            }
            (false, Some(_)) => {
                self.dead_since = None;
                // The round ends with supply back; the next starts clean.
                self.round = Round::default();
                self.pending.clear();
                out.log(LogEvent::VoltageRestored);
                // A fault indication outlives the outage only while the
                // breaker is still open; once supply is back it is spent.
                self.fault_seen = None;
            }
            _ => {}
        }
    }

    /// The feeder just went dead: an LMU that saw the fault reports it
    /// upstream and judges at once if it heads a leaf section; one that saw
    /// nothing stays silent and acts only on a verdict (which may have come
    /// early).
    fn on_dead(&mut self, now: Instant, out: &mut Outputs) {
        let saw = self.fault_latched(now);
        if !saw {
            // No fault below this LMU: nothing to judge.
            self.round.judged = true;
            if self.round.verdict == Some(true) {
                self.isolate(now, true, out);
            }
            return;
        }
        if let Some(u) = self.cfg.upstream {
            self.send_reliable(now, u, Message::Report { saw: true }, out);
        }
        if self.cfg.downstream.is_empty() {
            // A leaf section: nothing downstream to hear from.
            self.judge(now, out);
        } else {
            self.try_judge(now, out);
        }
    }

    fn frame(&mut self, now: Instant, bytes: &[u8], out: &mut Outputs) {
        let repr = match self.security.open(bytes) {
            Ok(r) => r,
            Err(e) => {
                out.log(LogEvent::Rejected(e));
                return;
            }
        };
        if repr.dst != self.cfg.id && repr.dst != crate::frame::BROADCAST {
            return;
        }
        let Some(msg) = Message::decode(repr.payload) else {
            out.log(LogEvent::Rejected(FrameError::Malformed));
            return;
        };
        if msg.kind() != repr.kind {
            out.log(LogEvent::Rejected(FrameError::Malformed));
            return;
        }
        self.received = self.received.saturating_add(1);
        let from = repr.src;
        let reliable = matches!(
            msg,
            Message::Report { .. } | Message::Verdict { .. } | Message::Restore
        );
        if reliable {
            self.send(
                now,
                from,
                Message::Ack {
                    counter: repr.counter.0,
                },
                out,
            );
        }
        match msg {
            Message::Ack { counter } => {
                self.pending
                    .retain(|p| !(p.dst == from && p.counter == counter));
            }
            Message::Report { saw } => {
                if self.cfg.downstream.contains(&from) {
                    match self.round.reports.iter_mut().find(|(id, _)| *id == from) {
                        Some(r) => r.1 = saw,
                        None => {
                            let _ = self.round.reports.push((from, saw));
                        }
                    }
                    self.try_judge(now, out);
                }
            }
            Message::Verdict { isolate } => {
                if self.cfg.upstream == Some(from) && self.round.verdict.is_none() {
                    self.round.verdict = Some(isolate);
                    // Contactors switch only while the feeder is dead; an
                    // early verdict waits for the breaker to trip.
                    if isolate && self.dead_since.is_some() {
                        self.isolate(now, true, out);
                    }
                }
            }
            Message::Restore => {
                if self.cfg.normally_open
                    && !self.closed
                    && !self.round.isolate
                    && !self.fault_latched(now)
                {
                    self.closed = true;
                    out.contactor = Some(Contactor::Close);
                    out.log(LogEvent::Restored);
                }
            }
            Message::Command(c) => {
                if from == GATEWAY {
                    self.command(now, c, out);
                }
            }
            Message::Telemetry(_) => {}
        }
    }

    fn command(&mut self, now: Instant, c: Command, out: &mut Outputs) {
        match c {
            Command::Open => {
                if self.closed {
                    self.closed = false;
                    out.contactor = Some(Contactor::Open);
                }
            }
            Command::Close => {
                if self.fault_latched(now) || self.round.isolate {
                    out.log(LogEvent::CloseRefused);
                    return;
                }
                if !self.closed {
                    self.closed = true;
                    out.contactor = Some(Contactor::Close);
                }
            }
            Command::Report => self.report(now, out),
            Command::SetReportInterval { secs } => {
                self.cfg.report_interval = Duration::from_secs(u64::from(secs.max(1)));
                self.next_report = Some(now + self.cfg.report_interval);
            }
            Command::LimitPv { percent } => {
                out.setpoint = Some(Setpoint::PvLimit {
                    percent: percent.min(100),
                });
            }
            Command::ReduceLoad { percent, minutes } => {
                out.setpoint = Some(Setpoint::LoadReduction {
                    percent: percent.min(100),
                    minutes,
                });
            }
        }
        out.log(LogEvent::Executed(c));
    }

    /// Judges as soon as a downstream LMU says it saw the fault too.
    fn try_judge(&mut self, now: Instant, out: &mut Outputs) {
        if self.round.judged || self.dead_since.is_none() || !self.fault_latched(now) {
            return;
        }
        if self.round.reports.iter().any(|(_, s)| *s) {
            self.judge(now, out);
        }
    }

    /// Decides whether this LMU bounds the faulted section from upstream:
    /// it saw the fault, and no downstream LMU reported seeing it. If so it
    /// opens and tells its downstream LMUs to isolate; if not, the fault
    /// lies below and it does nothing.
    fn judge(&mut self, now: Instant, out: &mut Outputs) {
        self.round.judged = true;
        if self.round.reports.iter().any(|(_, s)| *s) {
            return;
        }
        out.log(LogEvent::FaultLocated);
        self.isolate(now, false, out);
        let downstream = self.cfg.downstream.clone();
        for d in downstream {
            self.send_reliable(now, d, Message::Verdict { isolate: true }, out);
        }
    }

    /// Opens as a boundary; a downstream boundary then asks its tie to
    /// restore its subtree.
    fn isolate(&mut self, now: Instant, downstream_boundary: bool, out: &mut Outputs) {
        self.round.isolate = true;
        if !self.round.opened {
            self.round.opened = true;
            if self.closed {
                self.closed = false;
                out.contactor = Some(Contactor::Open);
            }
            out.log(LogEvent::Isolated {
                upstream: !downstream_boundary,
            });
            if downstream_boundary
                && !self.fault_latched(now)
                && let Some(t) = self.cfg.restore_via
            {
                self.send_reliable(now, t, Message::Restore, out);
            }
        }
    }

    fn timers(&mut self, now: Instant, out: &mut Outputs) {
        // Retransmissions.
        let f = self.cfg.flisr;
        let mut i = 0;
        while i < self.pending.len() {
            let due = self.pending.get(i).is_some_and(|p| p.next <= now);
            if !due {
                i += 1;
                continue;
            }
            let Some(p) = self.pending.get(i).cloned() else {
                break;
            };
            if p.tries >= f.max_retries {
                self.pending.swap_remove(i);
                continue;
            }
            let counter = self.security.next_counter().0;
            self.send(now, p.dst, p.msg, out);
            if let Some(q) = self.pending.get_mut(i) {
                q.tries += 1;
                q.counter = counter;
                q.next = now + backoff(f.retry_interval, self.cfg.id, counter, q.tries);
            }
            i += 1;
        }
        // FLISR timeouts.
        if self.decide_due().is_some_and(|t| now >= t) {
            self.judge(now, out);
        }
        // Telemetry.
        if self.next_report.is_some_and(|t| now >= t) {
            self.report(now, out);
        }
    }

    fn report(&mut self, now: Instant, out: &mut Outputs) {
        let iv = self.interval;
        let n = iv.n.max(1) as f32;
        let pq = self.pq.summary();
        let rej = self.security.rejected();
        let rejected = rej
            .truncated
            .saturating_add(rej.malformed)
            .saturating_add(rej.forged)
            .saturating_add(rej.replayed)
            .saturating_add(rej.unknown_sender);
        let t = Telemetry {
            t_ms: now.total_millis(),
            seq: self.report_seq,
            epoch: self.cfg.boot_epoch,
            v_min_dv: if iv.n == 0 {
                [0; 3]
            } else {
                iv.v_min.map(decivolts)
            },
            v_max_dv: iv.v_max.map(decivolts),
            v_mean_dv: iv.v_sum.map(|s| decivolts(s / n)),
            import_wh: self.import_wh,
            export_wh: self.export_wh,
            pq_events: [pq.dips, pq.swells, pq.interruptions],
            pq_intervals: [pq.compliant_intervals, pq.intervals],
            closed: self.closed,
            fault_latched: self.fault_latched(now),
            frames: [self.sent, self.received, rejected],
        };
        self.report_seq = self.report_seq.wrapping_add(1);
        self.interval = Interval::default();
        self.next_report = Some(now + self.cfg.report_interval);
        out.report = Some(t);
        self.send(now, GATEWAY, Message::Telemetry(t), out);
    }

    /// Seals and queues one frame.
    fn send(&mut self, _now: Instant, dst: u16, msg: Message, out: &mut Outputs) {
        let mut payload = [0u8; MAX_PAYLOAD];
        let Some(used) = msg.encode(&mut payload) else {
            out.overflowed = out.overflowed.saturating_add(1);
            return;
        };
        let len = used.len();
        let mut buf = [0u8; MAX_FRAME];
        let body = payload.get(..len).unwrap_or(&[]);
        match self.security.seal(msg.kind(), dst, body, &mut buf) {
            Ok(n) => {
                let mut bytes = Vec::new();
                if bytes
                    .extend_from_slice(buf.get(..n).unwrap_or(&[]))
                    .is_err()
                    || out.frames.push(OutFrame { dst, bytes }).is_err()
                {
                    out.overflowed = out.overflowed.saturating_add(1);
                } else {
                    self.sent = self.sent.saturating_add(1);
                }
            }
            Err(_) => out.overflowed = out.overflowed.saturating_add(1),
        }
    }

    /// Sends a message that must be acknowledged, retrying until it is.
    fn send_reliable(&mut self, now: Instant, dst: u16, msg: Message, out: &mut Outputs) {
        let counter = self.security.next_counter().0;
        self.send(now, dst, msg, out);
        let p = Pending {
            dst,
            msg,
            counter,
            tries: 0,
            next: now + backoff(self.cfg.flisr.retry_interval, self.cfg.id, counter, 0),
        };
        if self.pending.push(p).is_err() {
            out.overflowed = out.overflowed.saturating_add(1);
        }
    }
}

/// The wait before retransmission `k` (0 for the first) of a reliable
/// message: `base · 2^k`, stretched by a factor in [1, 1.5) drawn from the
/// sender, its frame counter and `k` (CoAP's confirmable rule, RFC 7252
/// §4.8), so that LMUs that sent at one instant do not retry in step.
fn backoff(base: Duration, id: u16, counter: u64, k: u8) -> Duration {
    let mut h = (u64::from(id) << 48) ^ (counter << 8) ^ u64::from(k);
    // SplitMix64's finaliser: a fixed, well-mixed hash.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let us = base.total_micros() << k.min(16);
    Duration::from_micros(us + us * (h % 1024) / 2048)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BROADCAST, Counter, HEADER_LEN};

    const KEYS: Keys = Keys {
        mesh: [1; 32],
        gateway: [2; 32],
    };

    fn frame(v_pu: f32, i_a: f32) -> PhasorFrame {
        PhasorFrame::balanced(230.0 * v_pu, i_a, 20.0)
    }

    fn at_ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// The node's state must fit the nRF52840's 256 KiB of RAM with room
    /// for the stack, radio buffers and the board glue: the bound is 8 KiB.
    #[test]
    fn the_node_fits_in_8_kib() {
        let size = core::mem::size_of::<Lmu>();
        assert!(size <= 8 * 1024, "Lmu is {size} bytes");
        assert!(core::mem::size_of::<Outputs>() <= 2 * 1024);
    }

    #[test]
    fn telemetry_is_reported_every_interval_with_the_interval_statistics() {
        let mut cfg = Config::new(5);
        cfg.report_interval = Duration::from_secs(1);
        let mut n = Lmu::new(cfg, KEYS);
        let mut out = Outputs::default();
        let mut reports = std::vec::Vec::new();
        for k in 0..=100u64 {
            out.clear();
            let pu = if k == 30 { 0.85 } else { 1.0 };
            // 10 A in phase with 230 V on each phase: 6.9 kW.
            n.handle(at_ms(k * 20), Input::Phasors(&frame(pu, 10.0)), &mut out);
            if let Some(r) = out.report {
                reports.push(r);
                // The same report goes to the gateway as a frame.
                assert!(out.frames.iter().any(|f| f.dst == GATEWAY));
            }
        }
        assert_eq!(reports.len(), 2, "{reports:?}");
        let r = reports[0];
        assert_eq!(r.seq, 0);
        assert_eq!(r.v_min_dv, [1955; 3]);
        assert_eq!(r.v_max_dv, [2300; 3]);
        // 6.9 kW·cos 20° for 1 s: 1.8 Wh (tolerance 1 %).
        let want = 3.0 * 230.0 * 10.0 * (20.0f32).to_radians().cos() / 3600.0;
        assert!(
            (r.import_wh - want).abs() < 0.01 * want,
            "{} vs {want}",
            r.import_wh
        );
        assert_eq!(r.pq_events, [1, 0, 0]);
        assert!(r.closed && !r.fault_latched);
        assert_eq!(reports[1].seq, 1);
    }

    #[test]
    fn the_contactor_never_closes_while_a_fault_is_latched() {
        let mut n = Lmu::new(Config::new(5), KEYS);
        let mut out = Outputs::default();
        n.handle(at_ms(0), Input::Command(Command::Open), &mut out);
        assert_eq!(out.contactor, Some(Contactor::Open));
        out.clear();
        n.handle(at_ms(20), Input::Phasors(&frame(0.5, 3000.0)), &mut out);
        assert!(
            out.events
                .iter()
                .any(|e| matches!(e, LogEvent::FaultDetected { .. }))
        );
        out.clear();
        n.handle(at_ms(40), Input::Command(Command::Close), &mut out);
        assert_eq!(out.contactor, None);
        assert!(out.events.contains(&LogEvent::CloseRefused));
        // After the fault memory runs out, closing is allowed.
        out.clear();
        n.handle(at_ms(11_000), Input::Command(Command::Close), &mut out);
        assert_eq!(out.contactor, Some(Contactor::Close));
    }

    /// A verdict from the upstream LMU, sealed as it would send it.
    fn verdict_from(up: u16, to: u16, epoch: u32, isolate: bool) -> std::vec::Vec<u8> {
        let mut s = Security::new(up, KEYS, epoch, &[]);
        let mut payload = [0u8; MAX_PAYLOAD];
        let used = postcard::to_slice(&Message::Verdict { isolate }, &mut payload).unwrap();
        let mut buf = [0u8; MAX_FRAME];
        let n = s.seal(FrameKind::Switch, to, used, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// A command from `src`, sealed with the key `src` would use.
    fn command_from(src: u16, to: u16, c: Command) -> std::vec::Vec<u8> {
        let mut s = Security::new(src, KEYS, 0, &[]);
        let mut payload = [0u8; MAX_PAYLOAD];
        let used = postcard::to_slice(&Message::Command(c), &mut payload).unwrap();
        let mut buf = [0u8; MAX_FRAME];
        let n = s.seal(FrameKind::Command, to, used, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn gateway_commands_are_carried_out_and_others_ignored() {
        let mut n = Lmu::new(Config::new(5), KEYS);
        let mut out = Outputs::default();
        n.handle(at_ms(0), Input::Phasors(&frame(1.0, 1.0)), &mut out);
        // A neighbour (mesh key) may not command the contactor.
        out.clear();
        let f = command_from(4, 5, Command::Open);
        n.handle(at_ms(10), Input::Frame(&f), &mut out);
        assert_eq!(out.contactor, None);
        assert!(n.is_closed());
        // The gateway may.
        out.clear();
        let f = command_from(GATEWAY, 5, Command::Open);
        n.handle(at_ms(20), Input::Frame(&f), &mut out);
        assert_eq!(out.contactor, Some(Contactor::Open));
        assert!(out.events.contains(&LogEvent::Executed(Command::Open)));
        // Set-points pass through to the section's equipment, clamped.
        let mut s = Security::new(GATEWAY, KEYS, 0, &[]);
        let mut seal = |c: Command| {
            let mut payload = [0u8; MAX_PAYLOAD];
            let used = postcard::to_slice(&Message::Command(c), &mut payload).unwrap();
            let mut buf = [0u8; MAX_FRAME];
            let k = s.seal(FrameKind::Command, 5, used, &mut buf).unwrap();
            buf[..k].to_vec()
        };
        // The first gateway counter was used above; start past it.
        let _ = seal(Command::Report);
        out.clear();
        n.handle(
            at_ms(30),
            Input::Frame(&seal(Command::LimitPv { percent: 140 })),
            &mut out,
        );
        assert_eq!(out.setpoint, Some(Setpoint::PvLimit { percent: 100 }));
        out.clear();
        n.handle(
            at_ms(40),
            Input::Frame(&seal(Command::ReduceLoad {
                percent: 20,
                minutes: 30,
            })),
            &mut out,
        );
        assert_eq!(
            out.setpoint,
            Some(Setpoint::LoadReduction {
                percent: 20,
                minutes: 30
            })
        );
        // A new report interval takes effect from now.
        out.clear();
        n.handle(
            at_ms(50),
            Input::Frame(&seal(Command::SetReportInterval { secs: 2 })),
            &mut out,
        );
        assert_eq!(n.poll_at(), Some(at_ms(2_050)));
    }

    fn dead_node() -> (Lmu, Outputs) {
        let mut cfg = Config::new(5);
        cfg.upstream = Some(4);
        let mut n = Lmu::new(cfg, KEYS);
        let mut out = Outputs::default();
        n.handle(at_ms(0), Input::Phasors(&frame(0.0, 0.0)), &mut out);
        (n, out)
    }

    #[test]
    fn a_genuine_verdict_opens_the_contactor() {
        let (mut n, mut out) = dead_node();
        out.clear();
        n.handle(
            at_ms(30),
            Input::Frame(&verdict_from(4, 5, 0, true)),
            &mut out,
        );
        assert_eq!(out.contactor, Some(Contactor::Open));
        // The verdict is acknowledged.
        assert!(out.frames.iter().any(|f| f.dst == 4));
    }

    #[test]
    fn forged_replayed_and_truncated_frames_are_rejected_counted_and_ignored() {
        let (mut n, mut out) = dead_node();
        let good = verdict_from(4, 5, 0, false);
        // Forged: a flipped payload bit.
        let mut forged = verdict_from(4, 5, 0, true);
        forged[HEADER_LEN] ^= 1;
        // Truncated.
        let truncated = &good[..good.len() - 3];
        // From an unknown sender, correctly sealed.
        let stranger = verdict_from(9, 5, 0, true);
        for bytes in [&forged[..], truncated, &stranger[..]] {
            out.clear();
            n.handle(at_ms(30), Input::Frame(bytes), &mut out);
            assert_eq!(out.contactor, None);
            assert!(
                out.frames.is_empty(),
                "a rejected frame is not acknowledged"
            );
        }
        out.clear();
        n.handle(at_ms(40), Input::Frame(&good), &mut out);
        assert!(out.frames.iter().any(|f| f.dst == 4));
        // Replayed: the same bytes again, now saying nothing new; and a
        // replay of an older isolate verdict is refused too.
        out.clear();
        n.handle(at_ms(50), Input::Frame(&good), &mut out);
        assert!(out.frames.is_empty());
        let r = n.rejected();
        assert_eq!(
            (r.forged, r.truncated, r.unknown_sender, r.replayed),
            (1, 1, 1, 1)
        );
        assert!(n.is_closed());
    }

    #[test]
    fn a_frame_for_another_node_is_ignored() {
        let (mut n, mut out) = dead_node();
        out.clear();
        n.handle(
            at_ms(30),
            Input::Frame(&verdict_from(4, 6, 0, true)),
            &mut out,
        );
        assert_eq!(out.contactor, None);
        let _ = (BROADCAST, Counter::new(0, 0));
    }

    #[test]
    fn outputs_overflow_is_counted_not_a_panic() {
        let mut cfg = Config::new(1);
        for d in 2..10 {
            cfg.downstream.push(d).unwrap();
        }
        let mut n = Lmu::new(cfg, KEYS);
        let mut out = Outputs::default();
        // It sees the fault, the feeder dies, and no LMU below reports: at
        // its decision it tells all eight downstream LMUs to isolate.
        n.handle(at_ms(0), Input::Phasors(&frame(0.4, 3000.0)), &mut out);
        n.handle(at_ms(100), Input::Phasors(&frame(0.0, 0.0)), &mut out);
        let decide = n.poll_at().unwrap();
        out.clear();
        // Fill the frame list so the verdicts cannot all fit.
        for _ in 0..MAX_OUT_FRAMES - 2 {
            out.frames
                .push(OutFrame {
                    dst: 0,
                    bytes: Vec::new(),
                })
                .unwrap();
        }
        n.handle(decide, Input::Timer, &mut out);
        assert!(out.overflowed > 0);
        assert_eq!(n.overflowed(), u32::from(out.overflowed));
    }

    /// The supervised latch: a start that resets while the voltage stays
    /// is forgotten, so a fault elsewhere moments later (the breaker trips
    /// for it) finds the LMU with nothing to report. Without supervision
    /// the old start would still be latched (10 s of `fault_memory`) and
    /// the LMU would report a fault below it.
    #[test]
    fn a_start_that_resets_before_the_voltage_goes_is_forgotten() {
        let mut cfg = Config::new(5);
        cfg.upstream = Some(4);
        let mut n = Lmu::new(cfg, KEYS);
        let mut out = Outputs::default();
        n.handle(at_ms(0), Input::Phasors(&frame(1.0, 20.0)), &mut out);
        // A 1 s surge of 250 A more (a motor start): a forward start.
        n.handle(at_ms(60_000), Input::Phasors(&frame(1.0, 270.0)), &mut out);
        assert!(
            out.events
                .iter()
                .any(|e| matches!(e, LogEvent::FaultDetected { .. }))
        );
        n.handle(at_ms(61_000), Input::Phasors(&frame(1.0, 20.0)), &mut out);
        // 2.77 s later a fault elsewhere sags the voltage; the breaker
        // trips 100 ms on.
        out.clear();
        n.handle(at_ms(63_770), Input::Phasors(&frame(0.6, 15.0)), &mut out);
        n.handle(at_ms(63_870), Input::Phasors(&frame(0.0, 0.0)), &mut out);
        assert!(
            out.frames.is_empty(),
            "nothing to report, nothing to judge: {:?}",
            out.events
        );
        assert_eq!(out.contactor, None);
    }

    /// A bolted fault that starts half-way through a cycle of samples is
    /// detected by the end of that cycle.
    #[test]
    fn a_fault_starting_mid_cycle_is_detected_in_that_cycle() {
        use crate::dsp::SAMPLES_PER_CYCLE;
        let cycle = |fault_from: Option<usize>| {
            let mut w = Waveform {
                v: [[0.0; SAMPLES_PER_CYCLE]; 3],
                i: [[0.0; SAMPLES_PER_CYCLE]; 3],
            };
            for k in 0..3 {
                for n in 0..SAMPLES_PER_CYCLE {
                    let th = core::f32::consts::TAU * n as f32 / SAMPLES_PER_CYCLE as f32
                        - k as f32 * core::f32::consts::TAU / 3.0;
                    let faulted = fault_from.is_some_and(|f| n >= f);
                    let (vm, im) = if faulted {
                        (150.0, 4500.0)
                    } else {
                        (325.0, 30.0)
                    };
                    w.v[k][n] = vm * libm::cosf(th);
                    w.i[k][n] = im * libm::cosf(th - 0.5);
                }
            }
            w
        };
        let mut n = Lmu::new(Config::new(5), KEYS);
        let mut out = Outputs::default();
        n.handle(at_ms(0), Input::Waveform(&cycle(None)), &mut out);
        assert!(out.events.is_empty());
        n.handle(
            at_ms(20),
            Input::Waveform(&cycle(Some(SAMPLES_PER_CYCLE / 2))),
            &mut out,
        );
        assert!(
            out.events.iter().any(|e| matches!(
                e,
                LogEvent::FaultDetected {
                    direction: Direction::Forward
                }
            )),
            "{:?}",
            out.events
        );
    }
}
