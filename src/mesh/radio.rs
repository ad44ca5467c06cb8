//! The shared channel and the 802.15.4 MAC of every node: transmissions,
//! receptions under interference, unslotted CSMA-CA, acknowledgements,
//! retries and duplicate detection.
//!
//! The model is driven by the event scheduler like every other: each
//! [`Radio::handle`] takes one [`RadioEvent`] at `now` and returns the
//! events to schedule and what was delivered.
//!
//! # Channel
//! Links are fixed for a replication: the mean received power of every
//! ordered pair within the cut-off is computed once (path loss plus the
//! link's shadowing). A link is kept when that power is at least the noise
//! floor minus [`RadioConfig::cutoff_margin_db`] (default
//! [`DEFAULT_CUTOFF_MARGIN_DB`], where one ignored interferer adds at most
//! 1 % to the noise); a spatial grid of cell size
//! the largest distance at which a link can still pass (mean loss plus 4σ
//! of shadowing) keeps the precomputation local. A transmission then costs
//! its neighbours, never all nodes.
//!
//! # Reception
//! An idle receiver locks on the first frame it hears whose SNR could pass
//! the preamble threshold (weaker frames are interference only); at the end of the
//! preamble it keeps the frame only if [`phy::preamble_locks`] (SINR over
//! −5 dB, and [`phy::CAPTURE_SIR_DB`] over the interference present during
//! the preamble). The PSDU's success probability is the product over
//! constant-SINR segments; one uniform draw from the receiver's own stream
//! decides. Per-packet fading, if configured, scales the locked signal.
//! A transmitting node receives nothing (half duplex).
//!
//! # MAC (IEEE 802.15.4-2006 §7.5.1.4, unslotted)
//! `NB = 0, BE = macMinBE`; wait a random `0..2^BE − 1` unit backoff periods
//! (320 µs); CCA for 8 symbols (mode 1: busy when the received power is at
//! least sensitivity + 10 dB, as ns-3); idle: turn around (192 µs) and
//! send; busy: `NB += 1, BE = min(BE + 1, macMaxBE)`, and give up after
//! `macMaxCSMABackoffs`. A unicast frame wants an ACK (5-octet PSDU, sent a
//! turnaround after reception, without CSMA) within macAckWaitDuration (54
//! symbols); without it the frame is retried up to `macMaxFrameRetries`
//! times. A receiver remembers the last sequence number per sender and
//! acknowledges, but does not deliver twice, a duplicate.

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::phy::{self, RadioProfile};
use super::propagation::{Fading, PathLoss, Position, Shadowing};
use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};

/// With per-packet fading, a link may carry a frame when its mean power is
/// up to this much below the lock threshold [dB] (a Rayleigh gain exceeds
/// 10 dB with probability e⁻¹⁰ ≈ 4.5e-5).
pub const FADING_MARGIN_DB: f64 = 10.0;

/// Default cut-off: links more than this below the noise floor are
/// ignored [dB]. An ignored interferer adds at most 1 % to the noise; the
/// test `the_link_cut_off_changes_nothing_measurable` shows the traffic's
/// outcome unchanged against a 60 dB margin (10 dB already shifts it by
/// almost a percentage point).
pub const DEFAULT_CUTOFF_MARGIN_DB: f64 = 20.0;

/// Broadcast MAC address.
pub const BROADCAST: u32 = u32::MAX;
/// MAC header and FCS octets (short addresses, PAN ID compression).
pub const MAC_OVERHEAD: usize = 11;
/// ACK PSDU octets.
pub const ACK_OCTETS: usize = 5;

/// MAC settings (802.15.4 defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacSettings {
    /// macMinBE.
    pub min_be: u8,
    /// macMaxBE.
    pub max_be: u8,
    /// macMaxCSMABackoffs.
    pub max_csma_backoffs: u8,
    /// macMaxFrameRetries.
    pub max_frame_retries: u8,
    /// Frames a node may queue before dropping new ones.
    pub queue_limit: usize,
}

impl Default for MacSettings {
    fn default() -> Self {
        MacSettings {
            min_be: 3,
            max_be: 5,
            max_csma_backoffs: 4,
            max_frame_retries: 3,
            queue_limit: 32,
        }
    }
}

/// The radio configuration of a mesh.
#[derive(Debug)]
pub struct RadioConfig {
    /// Transmitter and receiver.
    pub profile: RadioProfile,
    /// Path loss.
    pub loss: Box<dyn PathLoss>,
    /// Per-link shadowing.
    pub shadowing: Shadowing,
    /// Per-packet fading.
    pub fading: Fading,
    /// Links weaker than the noise floor by more than this are ignored [dB].
    pub cutoff_margin_db: f64,
    /// MAC settings.
    pub mac: MacSettings,
}

impl Default for RadioConfig {
    /// The default calibration: an nRF52840 over log-distance path loss
    /// with the exponent that gives 20-octet frames a mean PDR of 50 % at
    /// 750 m under σ = 4 dB shadowing, no fading, the default cut-off and
    /// MAC.
    fn default() -> Self {
        let profile = RadioProfile::NRF52840;
        let sigma_db = 4.0;
        let n = phy::calibrate_exponent(profile, sigma_db, 750.0, 0.5, 160.0);
        RadioConfig {
            profile,
            loss: Box::new(super::propagation::LogDistance::friis_referenced(
                n,
                super::propagation::F_2G4_HZ,
            )),
            shadowing: Shadowing { sigma_db },
            fading: Fading::None,
            cutoff_margin_db: DEFAULT_CUTOFF_MARGIN_DB,
            mac: MacSettings::default(),
        }
    }
}

/// A frame handed to the MAC.
#[derive(Clone, Debug, PartialEq)]
pub struct MacFrame {
    /// Sender.
    pub src: u32,
    /// Receiver, or [`BROADCAST`].
    pub dst: u32,
    /// Payload octets (the PSDU adds [`MAC_OVERHEAD`]).
    pub payload_octets: usize,
    /// An upper-layer handle, returned with the delivery or the failure.
    pub tag: u64,
    /// Transmissions it took; set by the MAC when it reports the frame
    /// acknowledged or failed (0 when handed in).
    pub attempts: u8,
    /// Urgent (protection traffic): queued ahead of every non-urgent frame
    /// not yet in service.
    pub urgent: bool,
}

/// An event of the radio model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RadioEvent {
    /// A backoff period ends: do the CCA.
    BackoffEnd(u32),
    /// The CCA ends.
    CcaEnd(u32),
    /// The turnaround before a transmission ends: start sending.
    TxStart(u32),
    /// A transmission ends.
    TxEnd(u64),
    /// No ACK came for the frame with this sequence number.
    AckTimeout {
        /// Sender.
        node: u32,
        /// Sequence number.
        seq: u8,
    },
}

/// What a handled event produced for the upper layer.
#[derive(Clone, Debug, PartialEq)]
pub enum RadioOutput {
    /// A frame arrived at `at` (once, duplicates removed).
    Delivered {
        /// Receiving node.
        at: u32,
        /// The frame.
        frame: MacFrame,
        /// Its received signal strength [dBm] (the mean power of the link,
        /// what an RSSI reading averages to).
        rssi_dbm: f64,
        /// The sender's index among the receiver's own links
        /// ([`Radio::links_of`]), if the receiver has a link back to it.
        back: Option<u32>,
    },
    /// A unicast frame was acknowledged.
    Acked(MacFrame),
    /// A frame was given up, and why.
    Failed(MacFrame, TxFailure),
}

/// Why the MAC gave a frame up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxFailure {
    /// No ACK after every retry: the link failed.
    NoAck,
    /// The channel stayed busy through every CSMA backoff (congestion, not
    /// the link).
    ChannelAccess,
    /// The transmit queue was full.
    QueueFull,
    /// The node is down.
    Down,
}

#[derive(Clone, Debug)]
struct Tx {
    src: u32,
    frame: Option<MacFrame>,
    ack_for: Option<(u32, u8)>,
    seq: u8,
}

#[derive(Clone, Debug)]
struct Locked {
    tx: u64,
    signal_mw: f64,
    /// The success probability of the PSDU bits received so far: the
    /// product of each closed constant-SINR segment's PSR, in order (as
    /// `phy::psr_segments` of the segments).
    psr: f64,
    /// When the frame started and when it ends. Its preamble ends
    /// [`phy::preamble_duration`] after the start: the lock is decided
    /// then, lazily, at the first change the receiver sees at or after that
    /// instant (nothing it hears changes in between, so the outcome is the
    /// same as deciding on time, without an event per receiver and frame).
    span: (SimTime, SimTime),
    since: SimTime,
    preamble_interference_mw: f64,
    /// The locked frame's own mean power at this receiver [mW], to take
    /// out of the power on air.
    own_mw: f64,
    synced: bool,
}

/// A receiver's channel state, kept apart from its MAC's so that a
/// transmission's pass over its neighbours streams through one dense
/// array.
#[derive(Clone, Debug, Default)]
struct Rx {
    /// The mean power of every transmission on air here [mW] (jammers
    /// included), kept as transmissions start and end.
    air: f64,
    /// Cannot lock on a frame: down, or transmitting (half duplex).
    deaf: bool,
    /// The frame it is receiving.
    locked: Option<Locked>,
}

/// From a frame's start to its PSDU's: preamble, SFD and PHR.
fn psdu_offset() -> SimDuration {
    SimDuration::from_nanos(
        (phy::PREAMBLE_SYMBOLS + phy::SFD_SYMBOLS + phy::PHR_SYMBOLS) * phy::SYMBOL_US * 1000,
    )
}

impl Rx {
    /// Interference at a locked receiver: the power on air but its own
    /// frame's [mW].
    fn interference(&self) -> f64 {
        let own = self.locked.as_ref().map_or(0.0, |l| l.own_mw);
        (self.air - own).max(0.0)
    }

    /// What a locked receiver does before the power on air changes at
    /// `now`: decide its lock if the preamble has ended, then close its
    /// constant-SINR segment (noise [mW]).
    fn settle(&mut self, now: SimTime, noise_mw: f64, stats: &mut RadioStats) {
        if self.locked.is_some() {
            self.resolve_preamble(now, noise_mw, stats);
            self.close_segment(now, noise_mw);
        }
    }

    /// While the locked frame's preamble lasts, the largest interference
    /// it meets is remembered for the lock decision.
    fn note_preamble_interference(&mut self) {
        let i = self.interference();
        if let Some(l) = &mut self.locked
            && !l.synced
        {
            l.preamble_interference_mw = l.preamble_interference_mw.max(i);
        }
    }

    /// Ends the current constant-SINR segment at `now`: the PSDU bits sent
    /// during it, at its SINR, multiply the frame's PSR.
    fn close_segment(&mut self, now: SimTime, noise_mw: f64) {
        let i = self.interference();
        let Some(l) = &mut self.locked else {
            return;
        };
        let (start, end) = l.span;
        let a = l.since.max(start.saturating_add(psdu_offset()));
        let b = now.min(end);
        if b > a {
            let bits = b.saturating_since(a).as_secs_f64() * phy::BIT_RATE;
            l.psr *= phy::psr(l.signal_mw / (noise_mw + i), bits);
        }
        l.since = now;
    }

    /// Decides the lock if its frame's preamble has ended by `now` (see
    /// `Locked::span`).
    fn resolve_preamble(&mut self, now: SimTime, noise_mw: f64, stats: &mut RadioStats) {
        let i_now = self.interference();
        let Some(l) = &mut self.locked else { return };
        if l.synced || now < l.span.0.saturating_add(phy::preamble_duration()) {
            return;
        }
        let i = l.preamble_interference_mw.max(i_now);
        if phy::preamble_locks(l.signal_mw, noise_mw, i) {
            l.synced = true;
        } else {
            self.locked = None;
            stats.sync_failures += 1;
        }
    }
}

#[derive(Clone, Debug, Default)]
struct NodeState {
    up: bool,
    transmitting: Option<u64>,
    queue: VecDeque<(MacFrame, u8)>,
    /// CSMA state of the head-of-line frame: (NB, BE), or None when idle.
    csma: Option<(u8, u8)>,
    awaiting_ack: Option<u8>,
    pending_ack: Option<(u32, u8)>,
    seq: u8,
    last_seq_from: BTreeMap<u32, u8>,
}

/// A link from a node to a neighbour within the cut-off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// The neighbour.
    pub to: u32,
    /// Whether the neighbour could lock on the node's frames (mean power,
    /// plus [`FADING_MARGIN_DB`] with fading, above the preamble threshold
    /// over noise); otherwise they only interfere there.
    pub lockable: bool,
    /// Mean received power at the neighbour [mW].
    pub mw: f64,
    /// The index of this link's reverse among the neighbour's links
    /// (`u32::MAX` if the neighbour has no link back).
    back: u32,
}

/// Counters of the channel and the MAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RadioStats {
    /// Transmissions started (data and ACK).
    pub transmissions: u64,
    /// Frames that lost sync at the end of the preamble.
    pub sync_failures: u64,
    /// Frames received with errors.
    pub corrupted: u64,
    /// Frames received intact (before duplicate removal).
    pub received: u64,
    /// Duplicates removed.
    pub duplicates: u64,
    /// Channel-access failures.
    pub access_failures: u64,
    /// Frames given up after retries.
    pub retry_failures: u64,
    /// Frames dropped at a full queue.
    pub queue_drops: u64,
}

/// The channel and every node's MAC.
#[derive(Debug)]
pub struct Radio {
    cfg: RadioConfig,
    positions: Vec<Position>,
    /// Per node: the links from it, by neighbour id.
    links: Vec<Vec<Link>>,
    /// Scratch: the receivers of the frame ending now that received it,
    /// with the link's power [mW] and its reverse's index.
    receivers: Vec<(u32, f64, u32)>,
    /// Per node: its receiver's channel state.
    rx: Vec<Rx>,
    /// Mean power above which a frame can be locked on [mW].
    lockable_mw: f64,
    /// Links whose power a fault changed: their original power [mW].
    original: BTreeMap<(u32, u32), f64>,
    noise_mw: f64,
    cca_mw: f64,
    nodes: Vec<NodeState>,
    rngs: Vec<Xoshiro256PlusPlus>,
    txs: BTreeMap<u64, Tx>,
    next_tx: u64,
    stats: RadioStats,
    /// Per directed link (sender, addressee): unicast data transmissions
    /// started, and those the addressee received intact (retries and
    /// duplicates included).
    link_counts: BTreeMap<(u32, u32), LinkCounts>,
}

/// Unicast data frames over one directed link, counted per transmission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Transmissions started (retries included) [frames].
    pub sent: u64,
    /// Transmissions the addressee received intact [frames].
    pub received: u64,
}

impl Radio {
    /// A radio network of nodes at `positions`, all up, on one channel.
    pub fn new(cfg: RadioConfig, positions: Vec<Position>, seed: u64) -> Radio {
        Radio::on_channels(cfg, positions, &[], seed)
    }

    /// A radio network of nodes at `positions`, all up, node `i` on
    /// channel `channels[i]` (empty: all on one). Radios on different
    /// channels neither hear nor disturb one another: the channels are
    /// taken as orthogonal (802.15.4 asks a receiver to reject a signal two
    /// channels off by 30 dB, and a channel plan keeps neighbours apart).
    pub fn on_channels(
        cfg: RadioConfig,
        positions: Vec<Position>,
        channels: &[u8],
        seed: u64,
    ) -> Radio {
        let noise_dbm = phy::noise_floor_dbm(cfg.profile.sensitivity_dbm);
        let links = Self::links(&cfg, &positions, channels, seed, noise_dbm);
        let margin = if cfg.fading == Fading::None {
            0.0
        } else {
            FADING_MARGIN_DB
        };
        let lockable = phy::lin(noise_dbm + phy::PREAMBLE_SINR_DB - margin);
        // Without fading a link's power never changes, so whether its
        // frames clear the preamble threshold over noise is known now (the
        // test `tx_start` makes with fading, at a gain of exactly 1).
        let noise_mw = phy::lin(noise_dbm);
        let steady = cfg.fading == Fading::None;
        let back = |from: usize, to: u32| {
            links[to as usize]
                .binary_search_by_key(&(from as u32), |&(j, _)| j)
                .map_or(u32::MAX, |k| k as u32)
        };
        let links = links
            .iter()
            .enumerate()
            .map(|(from, l)| {
                l.iter()
                    .map(|&(to, mw)| Link {
                        to,
                        mw,
                        lockable: mw > lockable
                            && (!steady || phy::db(mw / noise_mw) > phy::PREAMBLE_SINR_DB),
                        back: back(from, to),
                    })
                    .collect()
            })
            .collect();
        let n = positions.len();
        Radio {
            noise_mw,
            cca_mw: phy::lin(cfg.profile.sensitivity_dbm + 10.0),
            nodes: (0..n)
                .map(|_| NodeState {
                    up: true,
                    ..NodeState::default()
                })
                .collect(),
            rngs: (0..n)
                .map(|i| stream(seed, "node", i as u64, "radio"))
                .collect(),
            txs: BTreeMap::new(),
            next_tx: 0,
            stats: RadioStats::default(),
            link_counts: BTreeMap::new(),
            links,
            receivers: Vec::new(),
            rx: vec![Rx::default(); n],
            lockable_mw: lockable,
            original: BTreeMap::new(),
            positions,
            cfg,
        }
    }

    /// The links of every node, through a spatial grid.
    fn links(
        cfg: &RadioConfig,
        pos: &[Position],
        channels: &[u8],
        seed: u64,
        noise_dbm: f64,
    ) -> Vec<Vec<(u32, f64)>> {
        let channel = |i: usize| channels.get(i).copied().unwrap_or(0);
        let cutoff_dbm = noise_dbm - cfg.cutoff_margin_db;
        let budget_db = cfg.profile.tx_dbm + cfg.profile.antenna_gains_dbi - cutoff_dbm
            + 4.0 * cfg.shadowing.sigma_db;
        // The largest distance at which a link may pass, by bisection on
        // the (monotone) mean loss along the ground.
        let h = pos.first().map_or(8.0, |p| p.z);
        let loss_at = |d: f64| {
            cfg.loss
                .loss_db(&Position::new(0.0, 0.0, h), &Position::new(d, 0.0, h))
        };
        let (mut lo, mut hi) = (1.0f64, 1.0f64);
        while loss_at(hi) < budget_db && hi < 1e7 {
            hi *= 2.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if loss_at(mid) < budget_db {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let cell = hi.max(1.0);
        let shadow = cfg.shadowing.field(seed);
        let key = |p: &Position| ((p.x / cell).floor() as i64, (p.y / cell).floor() as i64);
        let mut grid: BTreeMap<(i64, i64), Vec<u32>> = BTreeMap::new();
        for (i, p) in pos.iter().enumerate() {
            grid.entry(key(p)).or_default().push(i as u32);
        }
        pos.iter()
            .enumerate()
            .map(|(i, p)| {
                let (cx, cy) = key(p);
                let mut out = Vec::new();
                for dx in -1..=1 {
                    for dy in -1..=1 {
                        for &j in grid.get(&(cx + dx, cy + dy)).map_or(&[][..], |v| &v[..]) {
                            if j as usize == i || channel(j as usize) != channel(i) {
                                continue;
                            }
                            let q = &pos[j as usize];
                            let rx_dbm = cfg.profile.tx_dbm + cfg.profile.antenna_gains_dbi
                                - cfg.loss.loss_db(p, q)
                                + shadow.link_db(i as u32, j);
                            if rx_dbm >= cutoff_dbm {
                                out.push((j, phy::lin(rx_dbm)));
                            }
                        }
                    }
                }
                out.sort_by_key(|&(j, _)| j);
                out
            })
            .collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> RadioStats {
        self.stats
    }

    /// Unicast data transmissions and receptions per directed link
    /// (sender, addressee) so far, in link order.
    pub fn link_counts(&self) -> &BTreeMap<(u32, u32), LinkCounts> {
        &self.link_counts
    }

    /// A node's position [m], if it exists.
    pub fn position(&self, node: u32) -> Option<&Position> {
        self.positions.get(node as usize)
    }

    /// The receivers' noise floor [dBm].
    pub fn noise_dbm(&self) -> f64 {
        phy::db(self.noise_mw)
    }

    /// Node count.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The nodes within the cut-off of `node`, with their mean received
    /// power [mW].
    pub fn links_of(&self, node: u32) -> &[Link] {
        &self.links[node as usize]
    }

    /// Switches a node off (crash) or on (reboot); a crashed node loses its
    /// queue and state.
    pub fn set_up(&mut self, node: u32, up: bool) {
        let s = &mut self.nodes[node as usize];
        if !up {
            *s = NodeState::default();
            self.rx[node as usize].locked = None;
        }
        s.up = up;
        self.rx[node as usize].deaf = !up || s.transmitting.is_some();
    }

    /// Switches a jammer on or off at `now`: a continuous interferer of
    /// `power_dbm` at `position`, whose power at each node follows the path
    /// loss (no shadowing). Receptions under way see the change from `now`.
    pub fn jam(&mut self, now: SimTime, position: &Position, power_dbm: f64, on: bool) {
        for r in 0..self.positions.len() as u32 {
            let p =
                phy::lin(power_dbm - self.cfg.loss.loss_db(position, &self.positions[r as usize]));
            let rx = &mut self.rx[r as usize];
            rx.settle(now, self.noise_mw, &mut self.stats);
            rx.air = if on {
                rx.air + p
            } else {
                (rx.air - p).max(0.0)
            };
            if on {
                rx.note_preamble_interference();
            }
        }
    }

    /// Adds `extra_db` of loss to the link between `a` and `b`, both ways
    /// (0 restores it). Only links within the cut-off can be degraded.
    pub fn degrade_link(&mut self, now: SimTime, a: u32, b: u32, extra_db: f64) {
        for (src, dst) in [(a, b), (b, a)] {
            let l = &self.links[src as usize];
            let Ok(k) = l.binary_search_by_key(&dst, |x| x.to) else {
                continue;
            };
            let base = *self.original.entry((src, dst)).or_insert(l[k].mw);
            let new = base * phy::lin(-extra_db);
            let old = l[k].mw;
            // A frame of src on air now: its receiver's air changes too.
            if self.nodes[src as usize].transmitting.is_some() {
                let rx = &mut self.rx[dst as usize];
                rx.settle(now, self.noise_mw, &mut self.stats);
                rx.air = (rx.air + new - old).max(0.0);
            }
            let link = &mut self.links[src as usize][k];
            link.mw = new;
            link.lockable = new > self.lockable_mw;
        }
    }

    /// Whether a node is up.
    pub fn is_up(&self, node: u32) -> bool {
        self.nodes[node as usize].up
    }

    /// Queues a frame at its sender; returns the events to schedule.
    pub fn send(
        &mut self,
        now: SimTime,
        frame: MacFrame,
    ) -> (Vec<(SimTime, RadioEvent)>, Vec<RadioOutput>) {
        let mut ev = Vec::new();
        let mut out = Vec::new();
        let s = frame.src as usize;
        let limit = self.cfg.mac.queue_limit;
        let node = &mut self.nodes[s];
        if !node.up {
            out.push(RadioOutput::Failed(frame, TxFailure::Down));
            return (ev, out);
        }
        if node.queue.len() >= limit {
            self.stats.queue_drops += 1;
            out.push(RadioOutput::Failed(frame, TxFailure::QueueFull));
            return (ev, out);
        }
        if frame.urgent {
            // Behind the frame in service (the front) and earlier urgent
            // ones, ahead of the rest.
            let at = node
                .queue
                .iter()
                .skip(1)
                .position(|(f, _)| !f.urgent)
                .map_or(node.queue.len(), |p| p + 1);
            node.queue.insert(at, (frame, 0));
        } else {
            node.queue.push_back((frame, 0));
        }
        self.kick(now, s as u32, &mut ev);
        (ev, out)
    }

    /// Starts CSMA for the head-of-line frame if the MAC is idle.
    fn kick(&mut self, now: SimTime, node: u32, ev: &mut Vec<(SimTime, RadioEvent)>) {
        let min_be = self.cfg.mac.min_be;
        let s = &mut self.nodes[node as usize];
        if s.csma.is_some()
            || s.awaiting_ack.is_some()
            || s.transmitting.is_some()
            || s.queue.is_empty()
        {
            return;
        }
        s.csma = Some((0, min_be));
        self.backoff(now, node, min_be, ev);
    }

    fn backoff(&mut self, now: SimTime, node: u32, be: u8, ev: &mut Vec<(SimTime, RadioEvent)>) {
        let slots = self.rngs[node as usize].random_range(0..(1u64 << be));
        let d = SimDuration::from_nanos(slots * phy::UNIT_BACKOFF_SYMBOLS * phy::SYMBOL_US * 1000);
        ev.push((now.saturating_add(d), RadioEvent::BackoffEnd(node)));
    }

    /// Handles one event at `now`.
    pub fn handle(
        &mut self,
        now: SimTime,
        e: RadioEvent,
    ) -> (Vec<(SimTime, RadioEvent)>, Vec<RadioOutput>) {
        let mut ev = Vec::new();
        let mut out = Vec::new();
        match e {
            RadioEvent::BackoffEnd(n) => {
                if self.nodes[n as usize].up && self.nodes[n as usize].csma.is_some() {
                    let cca = SimDuration::from_nanos(phy::CCA_SYMBOLS * phy::SYMBOL_US * 1000);
                    ev.push((now.saturating_add(cca), RadioEvent::CcaEnd(n)));
                }
            }
            RadioEvent::CcaEnd(n) => self.cca_end(now, n, &mut ev, &mut out),
            RadioEvent::TxStart(n) => self.tx_start(now, n, &mut ev),
            RadioEvent::TxEnd(tx) => self.tx_end(now, tx, &mut ev, &mut out),
            RadioEvent::AckTimeout { node, seq } => {
                let s = &mut self.nodes[node as usize];
                if s.awaiting_ack == Some(seq) {
                    s.awaiting_ack = None;
                    self.retry(now, node, &mut ev, &mut out);
                }
            }
        }
        (ev, out)
    }

    /// What a pass over a transmission's links works on, borrowed apart:
    /// the links, the receivers, their random streams and the counters.
    fn parts(
        &mut self,
    ) -> (
        &[Vec<Link>],
        &mut [Rx],
        &mut [Xoshiro256PlusPlus],
        &mut RadioStats,
    ) {
        (&self.links, &mut self.rx, &mut self.rngs, &mut self.stats)
    }

    fn turnaround() -> SimDuration {
        SimDuration::from_nanos(phy::TURNAROUND_SYMBOLS * phy::SYMBOL_US * 1000)
    }

    fn cca_end(
        &mut self,
        now: SimTime,
        n: u32,
        ev: &mut Vec<(SimTime, RadioEvent)>,
        out: &mut Vec<RadioOutput>,
    ) {
        let busy =
            self.rx[n as usize].air >= self.cca_mw || self.nodes[n as usize].transmitting.is_some();
        let mac = self.cfg.mac;
        let s = &mut self.nodes[n as usize];
        let Some((nb, be)) = s.csma else { return };
        if !s.up {
            return;
        }
        if !busy {
            s.csma = None;
            ev.push((
                now.saturating_add(Self::turnaround()),
                RadioEvent::TxStart(n),
            ));
            return;
        }
        let nb = nb + 1;
        if nb > mac.max_csma_backoffs {
            s.csma = None;
            if let Some((mut f, tries)) = s.queue.pop_front() {
                f.attempts = tries;
                s.seq = s.seq.wrapping_add(1);
                self.stats.access_failures += 1;
                out.push(RadioOutput::Failed(f, TxFailure::ChannelAccess));
            }
            self.kick(now, n, ev);
            return;
        }
        let be = (be + 1).min(mac.max_be);
        s.csma = Some((nb, be));
        self.backoff(now, n, be, ev);
    }

    /// Sends the node's next frame at once, without CSMA (for tests of
    /// the channel, and for frames that must go out at a fixed time).
    pub fn transmit_now(
        &mut self,
        now: SimTime,
        frame: MacFrame,
    ) -> (Vec<(SimTime, RadioEvent)>, Vec<RadioOutput>) {
        let mut ev = Vec::new();
        let n = frame.src;
        self.nodes[n as usize].queue.push_front((frame, 0));
        self.tx_start(now, n, &mut ev);
        (ev, Vec::new())
    }

    fn tx_start(&mut self, now: SimTime, n: u32, ev: &mut Vec<(SimTime, RadioEvent)>) {
        let s = &mut self.nodes[n as usize];
        if !s.up || s.transmitting.is_some() {
            return;
        }
        let (octets, frame, ack_for, seq) = if let Some((to, seq)) = s.pending_ack.take() {
            (ACK_OCTETS, None, Some((to, seq)), seq)
        } else if let Some((f, _)) = s.queue.front() {
            (
                f.payload_octets + MAC_OVERHEAD,
                Some(f.clone()),
                None,
                s.seq,
            )
        } else {
            return;
        };
        let id = self.next_tx;
        self.next_tx += 1;
        s.transmitting = Some(id);
        // Half duplex: a receiver that starts sending drops its reception.
        let rx = &mut self.rx[n as usize];
        rx.locked = None;
        rx.deaf = true;
        let end = now.saturating_add(phy::frame_duration(octets.min(phy::MAX_PSDU)));
        self.txs.insert(
            id,
            Tx {
                src: n,
                frame,
                ack_for,
                seq,
            },
        );
        self.stats.transmissions += 1;
        if let Some(f) = self.txs.get(&id).and_then(|t| t.frame.as_ref())
            && f.dst != BROADCAST
        {
            self.link_counts.entry((n, f.dst)).or_default().sent += 1;
        }
        ev.push((end, RadioEvent::TxEnd(id)));
        // Every receiver in range: a locked one closes its segment at the
        // old SINR; each counts the frame's power; an idle one that could
        // synchronise on it locks on it. (Each receiver's state is its own,
        // so one pass in link order does what a pass for the power and a
        // pass for the locks would.)
        let noise = self.noise_mw;
        let fading = self.cfg.fading;
        let (links, rx, rngs, stats) = self.parts();
        for link in &links[n as usize] {
            let (r, p) = (link.to as usize, link.mw);
            let rs = &mut rx[r];
            rs.settle(now, noise, stats);
            rs.air += p;
            if rs.locked.is_some() {
                rs.note_preamble_interference();
                continue;
            }
            if !link.lockable || rs.deaf {
                continue;
            }
            // A frame the receiver could never synchronise to (below the
            // preamble threshold over noise alone) is interference only;
            // without fading, only links above it are lockable.
            let gain = if fading == Fading::None {
                1.0
            } else {
                let gain = phy::lin(fading.draw_db(&mut rngs[r]));
                if phy::db(p * gain / noise) <= phy::PREAMBLE_SINR_DB {
                    continue;
                }
                gain
            };
            rs.locked = Some(Locked {
                tx: id,
                signal_mw: p * gain,
                psr: 1.0,
                span: (now, end),
                since: now,
                preamble_interference_mw: (rs.air - p).max(0.0),
                own_mw: p,
                synced: false,
            });
        }
    }

    fn tx_end(
        &mut self,
        now: SimTime,
        id: u64,
        ev: &mut Vec<(SimTime, RadioEvent)>,
        out: &mut Vec<RadioOutput>,
    ) {
        let Some(tx) = self.txs.get(&id).cloned() else {
            return;
        };
        let src = tx.src as usize;
        // Locked receivers that hear it close their segment while it is
        // still on air; those locked on it finish, the others lose its
        // interference. The MAC then handles, in link order, the frames
        // received intact (each receiver's draw is from its own stream, so
        // handling them after the pass changes no draw).
        let noise = self.noise_mw;
        let mut receivers = std::mem::take(&mut self.receivers);
        let (links, rx, rngs, stats) = self.parts();
        for link in &links[src] {
            let r = link.to as usize;
            let rs = &mut rx[r];
            rs.settle(now, noise, stats);
            rs.air = (rs.air - link.mw).max(0.0);
            if rs.locked.as_ref().is_none_or(|l| l.tx != id) {
                continue;
            }
            // (A locked receiver is not transmitting: deaf means down.)
            let l = rs.locked.take().expect("checked above");
            if !l.synced || rs.deaf {
                continue;
            }
            let u: f64 = rngs[r].random();
            if u >= l.psr {
                stats.corrupted += 1;
                continue;
            }
            stats.received += 1;
            // Only the addressee, or every receiver of a broadcast, does
            // anything with it.
            let to = tx.ack_for.map(|a| a.0).or(tx.frame.as_ref().map(|f| f.dst));
            if to == Some(link.to) || to == Some(BROADCAST) {
                receivers.push((link.to, link.mw, link.back));
            }
        }
        for &(r, mw, back) in &receivers {
            self.received(now, r, mw, back, &tx, ev, out);
        }
        receivers.clear();
        self.receivers = receivers;
        self.txs.remove(&id);
        let s = &mut self.nodes[src];
        s.transmitting = None;
        self.rx[src].deaf = !s.up;
        if !s.up {
            return;
        }
        match (&tx.frame, tx.ack_for) {
            (Some(f), None) if f.dst != BROADCAST => {
                // Wait for the ACK: macAckWaitDuration = 54 symbols.
                s.awaiting_ack = Some(tx.seq);
                let wait = SimDuration::from_nanos(54 * phy::SYMBOL_US * 1000);
                ev.push((
                    now.saturating_add(wait),
                    RadioEvent::AckTimeout {
                        node: tx.src,
                        seq: tx.seq,
                    },
                ));
            }
            (Some(_), None) => {
                // Broadcast: done.
                s.queue.pop_front();
                s.seq = s.seq.wrapping_add(1);
                self.kick(now, tx.src, ev);
            }
            _ => self.kick(now, tx.src, ev),
        }
    }

    /// Frame `tx` arrived intact at its addressee (or at a receiver of a
    /// broadcast) `r`, over a link of mean power `mw` [mW] whose reverse
    /// is `r`'s link `back`.
    #[allow(clippy::too_many_arguments)]
    fn received(
        &mut self,
        now: SimTime,
        r: u32,
        mw: f64,
        back: u32,
        tx: &Tx,
        ev: &mut Vec<(SimTime, RadioEvent)>,
        out: &mut Vec<RadioOutput>,
    ) {
        let rs = &mut self.nodes[r as usize];
        if let Some((to, seq)) = tx.ack_for {
            // An ACK for r's outstanding frame?
            if to == r && rs.awaiting_ack == Some(seq) {
                rs.awaiting_ack = None;
                if let Some((mut f, tries)) = rs.queue.pop_front() {
                    f.attempts = tries + 1;
                    out.push(RadioOutput::Acked(f));
                }
                rs.seq = rs.seq.wrapping_add(1);
                self.kick(now, r, ev);
            }
            return;
        }
        let Some(f) = &tx.frame else { return };
        if f.dst != r && f.dst != BROADCAST {
            return;
        }
        if f.dst == r {
            self.link_counts.entry((tx.src, r)).or_default().received += 1;
        }
        let dup = f.dst != BROADCAST && rs.last_seq_from.get(&tx.src) == Some(&tx.seq);
        if f.dst != BROADCAST {
            rs.last_seq_from.insert(tx.src, tx.seq);
            // ACK after a turnaround, without CSMA.
            rs.pending_ack = Some((tx.src, tx.seq));
            ev.push((
                now.saturating_add(Self::turnaround()),
                RadioEvent::TxStart(r),
            ));
        }
        if dup {
            self.stats.duplicates += 1;
        } else {
            out.push(RadioOutput::Delivered {
                at: r,
                frame: f.clone(),
                rssi_dbm: phy::db(mw),
                back: (back != u32::MAX).then_some(back),
            });
        }
    }

    fn retry(
        &mut self,
        now: SimTime,
        n: u32,
        ev: &mut Vec<(SimTime, RadioEvent)>,
        out: &mut Vec<RadioOutput>,
    ) {
        let max = self.cfg.mac.max_frame_retries;
        let s = &mut self.nodes[n as usize];
        let Some((_, tries)) = s.queue.front_mut() else {
            return;
        };
        if *tries >= max {
            let (mut f, tries) = s.queue.pop_front().expect("front exists");
            f.attempts = tries + 1;
            s.seq = s.seq.wrapping_add(1);
            self.stats.retry_failures += 1;
            out.push(RadioOutput::Failed(f, TxFailure::NoAck));
        } else {
            *tries += 1;
        }
        self.kick(now, n, ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Context, Handler, RunLimits, Simulation};

    /// A radio driven by the kernel, collecting outputs.
    struct Net {
        radio: Radio,
        outputs: Vec<(SimTime, RadioOutput)>,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Radio(RadioEvent),
        Send(u32, u32, u64),
        SendNow(u32, u32, u64),
    }

    impl Handler for Net {
        type Event = Ev;
        fn handle(&mut self, e: Ev, cx: &mut Context<'_, Ev>) {
            let now = cx.now();
            let frame = |src, dst, tag| MacFrame {
                src,
                dst,
                payload_octets: 20,
                tag,
                attempts: 0,
                urgent: false,
            };
            let (ev, out) = match e {
                Ev::Radio(r) => self.radio.handle(now, r),
                Ev::Send(src, dst, tag) => self.radio.send(now, frame(src, dst, tag)),
                Ev::SendNow(src, dst, tag) => self.radio.transmit_now(now, frame(src, dst, tag)),
            };
            for (t, e) in ev {
                cx.schedule_at(t, Ev::Radio(e)).unwrap();
            }
            self.outputs.extend(out.into_iter().map(|o| (now, o)));
        }
    }

    fn config(sigma_db: f64, margin_db: f64) -> RadioConfig {
        RadioConfig {
            shadowing: Shadowing { sigma_db },
            cutoff_margin_db: margin_db,
            ..RadioConfig::default()
        }
    }

    fn run(radio: Radio, sends: &[(u64, Ev)], until_us: u64) -> Net {
        let mut net = Net {
            radio,
            outputs: Vec::new(),
        };
        let mut sim = Simulation::new();
        for (t, e) in sends {
            sim.schedule_at(SimTime::from_nanos(t * 1000), e.clone())
                .unwrap();
        }
        sim.run(
            &mut net,
            RunLimits {
                stop_at: SimTime::from_nanos(until_us * 1000),
                max_events: None,
            },
            &mut (),
        );
        net
    }

    fn line(xs: &[f64]) -> Vec<Position> {
        xs.iter().map(|&x| Position::new(x, 0.0, 8.0)).collect()
    }

    fn delivered(net: &Net, at: u32) -> Vec<u64> {
        net.outputs
            .iter()
            .filter_map(|(_, o)| match o {
                RadioOutput::Delivered { at: a, frame, .. } if *a == at => Some(frame.tag),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_unicast_frame_is_delivered_once_and_acknowledged() {
        let radio = Radio::new(config(0.0, 10.0), line(&[0.0, 200.0]), 1);
        let net = run(radio, &[(0, Ev::Send(0, 1, 7))], 100_000);
        assert_eq!(delivered(&net, 1), vec![7]);
        assert!(
            net.outputs
                .iter()
                .any(|(_, o)| matches!(o, RadioOutput::Acked(f) if f.tag == 7))
        );
        let s = net.radio.stats();
        assert_eq!((s.transmissions, s.received), (2, 2), "{s:?}");
        // The data frame counts on its link; the ACK does not.
        let links: Vec<_> = net.radio.link_counts().iter().collect();
        assert_eq!(
            links,
            vec![(
                &(0, 1),
                &LinkCounts {
                    sent: 1,
                    received: 1
                }
            )]
        );
    }

    #[test]
    fn without_an_ack_a_frame_is_retried_then_failed() {
        let mut radio = Radio::new(config(0.0, 10.0), line(&[0.0, 200.0]), 1);
        radio.set_up(1, false);
        let net = run(radio, &[(0, Ev::Send(0, 1, 9))], 1_000_000);
        assert!(
            net.outputs
                .iter()
                .any(|(_, o)| matches!(o, RadioOutput::Failed(f, _) if f.tag == 9))
        );
        let s = net.radio.stats();
        // The first attempt and macMaxFrameRetries = 3 retries.
        assert_eq!((s.transmissions, s.retry_failures), (4, 1), "{s:?}");
        // Four transmissions over the link, none received.
        assert_eq!(
            net.radio.link_counts().get(&(0, 1)),
            Some(&LinkCounts {
                sent: 4,
                received: 0
            })
        );
    }

    /// A and B, 400 m apart, cannot sense each other (−95.6 dBm < the
    /// −90 dBm CCA threshold) but both reach R between them.
    #[test]
    fn hidden_terminals_at_equal_power_both_fail_and_ten_db_captures() {
        let radio = Radio::new(config(0.0, 10.0), line(&[0.0, 200.0, 400.0]), 1);
        assert!(
            radio
                .links_of(0)
                .iter()
                .any(|l| l.to == 2 && phy::db(l.mw) < -90.0)
        );
        let net = run(
            radio,
            &[
                (0, Ev::SendNow(0, BROADCAST, 1)),
                (0, Ev::SendNow(2, BROADCAST, 2)),
            ],
            100_000,
        );
        assert!(delivered(&net, 1).is_empty(), "{:?}", net.outputs);
        assert_eq!(net.radio.stats().sync_failures, 1);

        // R at 100 m from A and 300 m from B: A is 11.6 dB stronger.
        let radio = Radio::new(config(0.0, 10.0), line(&[0.0, 100.0, 400.0]), 1);
        let p = |j: u32| radio.links_of(1).iter().find(|l| l.to == j).unwrap().mw;
        assert!(phy::db(p(0) / p(2)) > 10.0);
        let net = run(
            radio,
            &[
                (0, Ev::SendNow(0, BROADCAST, 1)),
                (0, Ev::SendNow(2, BROADCAST, 2)),
            ],
            100_000,
        );
        assert_eq!(delivered(&net, 1), vec![1]);
    }

    #[test]
    fn csma_defers_to_a_neighbour_it_can_hear() {
        // Two senders 50 m apart, both to a sink: CSMA serialises them.
        let radio = Radio::new(config(0.0, 10.0), line(&[0.0, 50.0, 150.0]), 3);
        let net = run(
            radio,
            &[(0, Ev::Send(0, 2, 1)), (0, Ev::Send(1, 2, 2))],
            1_000_000,
        );
        let mut got = delivered(&net, 2);
        got.sort_unstable();
        assert_eq!(got, vec![1, 2], "{:?}", net.radio.stats());
    }

    /// The cut-off ignores links more than 20 dB below the noise floor
    /// (each ignored interferer adds at most 1 % to the noise). Against a
    /// 60 dB margin (every link of the area) the outcome of the same traffic
    /// is the same within its statistical error: sample paths diverge after
    /// the first differing draw, so the comparison is over 8 seeds × 600
    /// frames; the tolerance, 2 percentage points, is about 2.5 standard
    /// errors of the difference.
    #[test]
    fn the_link_cut_off_changes_nothing_measurable() {
        // Two towns of 30 LMUs, 250 m apart on a grid, 20 km apart: the
        // links between towns fall under the cut-off.
        let pos: Vec<Position> = (0..60)
            .map(|i| {
                let town = if i < 30 { 0.0 } else { 20_000.0 };
                let k = i % 30;
                Position::new(town + (k % 6) as f64 * 250.0, (k / 6) as f64 * 250.0, 8.0)
            })
            .collect();
        let sends: Vec<(u64, Ev)> = (0..600u64)
            .map(|k| {
                let src = (k * 7 % 60) as u32;
                let dst = if src % 30 == 29 { src - 1 } else { src + 1 };
                (k * 3_000, Ev::Send(src, dst, k))
            })
            .collect();
        let share = |margin: f64| {
            let mut acked = 0usize;
            let mut links = 0usize;
            for seed in 1..=8 {
                let net = run(
                    Radio::new(config(4.0, margin), pos.clone(), seed),
                    &sends,
                    5_000_000,
                );
                links += (0..60).map(|i| net.radio.links_of(i).len()).sum::<usize>();
                acked += net
                    .outputs
                    .iter()
                    .filter(|(_, o)| matches!(o, RadioOutput::Acked(_)))
                    .count();
            }
            (acked as f64 / (8.0 * 600.0), links)
        };
        let (near, near_links) = share(DEFAULT_CUTOFF_MARGIN_DB);
        let (far, far_links) = share(60.0);
        eprintln!(
            "cut-off {DEFAULT_CUTOFF_MARGIN_DB} dB: {near:.4} acked over {near_links} links; 60 dB: {far:.4} over {far_links}"
        );
        assert!(far_links > near_links);
        assert!((near - far).abs() < 0.02, "{near} vs {far}");
    }

    /// S sends to R; J, as far from S as R on the other side, transmits
    /// exactly when R's ACK reaches S, so the ACK is lost. S retries; R
    /// acknowledges the retry but delivers the frame only once.
    #[test]
    fn a_retry_after_a_lost_ack_is_delivered_once() {
        let radio = Radio::new(
            config(0.0, DEFAULT_CUTOFF_MARGIN_DB),
            line(&[0.0, 200.0, -200.0]),
            2,
        );
        // Data: (12 + 2·31) symbols = 1184 µs; the ACK starts 192 µs later.
        let net = run(
            radio,
            &[
                (0, Ev::SendNow(0, 1, 5)),
                (1_376, Ev::SendNow(2, BROADCAST, 6)),
            ],
            200_000,
        );
        assert_eq!(delivered(&net, 1), vec![5]);
        let s = net.radio.stats();
        assert_eq!(s.duplicates, 1, "{s:?}");
        assert!(
            net.outputs
                .iter()
                .any(|(_, o)| matches!(o, RadioOutput::Acked(f) if f.tag == 5))
        );
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    fn radio() -> Radio {
        Radio::new(
            RadioConfig {
                shadowing: Shadowing { sigma_db: 0.0 },
                ..RadioConfig::default()
            },
            vec![Position::new(0.0, 0.0, 8.0), Position::new(200.0, 0.0, 8.0)],
            1,
        )
    }

    /// Drives one unicast 0 → 1 to completion from `t0`; whether it was
    /// acknowledged.
    fn unicast(r: &mut Radio, t0: SimTime) -> bool {
        let mut queue: std::collections::BTreeMap<(SimTime, u64), RadioEvent> = Default::default();
        let mut seq = 0u64;
        let (ev, _) = r.send(
            t0,
            MacFrame {
                src: 0,
                dst: 1,
                payload_octets: 20,
                tag: 1,
                attempts: 0,
                urgent: false,
            },
        );
        for (t, e) in ev {
            queue.insert((t, seq), e);
            seq += 1;
        }
        while let Some(((t, _), e)) = queue.pop_first() {
            let (ev, out) = r.handle(t, e);
            for o in out {
                match o {
                    RadioOutput::Acked(_) => return true,
                    RadioOutput::Failed(..) => return false,
                    RadioOutput::Delivered { .. } => {}
                }
            }
            for (t, e) in ev {
                queue.insert((t, seq), e);
                seq += 1;
            }
        }
        false
    }

    #[test]
    fn a_jammer_blocks_the_link_while_it_is_on() {
        let mut r = radio();
        assert!(unicast(&mut r, SimTime::ZERO));
        // A jammer beside the receiver, +20 dBm: far above the signal.
        let at = Position::new(210.0, 0.0, 8.0);
        let t = SimTime::from_nanos(1_000_000_000);
        r.jam(t, &at, 20.0, true);
        assert!(!unicast(&mut r, t));
        let t = SimTime::from_nanos(2_000_000_000);
        r.jam(t, &at, 20.0, false);
        assert!(unicast(&mut r, t));
    }

    #[test]
    fn a_degraded_link_fails_until_restored() {
        let mut r = radio();
        assert!(unicast(&mut r, SimTime::ZERO));
        let t = SimTime::from_nanos(1_000_000_000);
        r.degrade_link(t, 0, 1, 40.0);
        assert!(!unicast(&mut r, t));
        let t = SimTime::from_nanos(2_000_000_000);
        r.degrade_link(t, 0, 1, 0.0);
        assert!(unicast(&mut r, t));
    }

    /// Nodes on different channels have no link, so no frame and no
    /// interference passes between them; on one channel they do.
    #[test]
    fn radios_on_different_channels_do_not_hear_one_another() {
        let cfg = || RadioConfig {
            shadowing: Shadowing { sigma_db: 0.0 },
            ..RadioConfig::default()
        };
        let pos = vec![
            Position::new(0.0, 0.0, 8.0),
            Position::new(200.0, 0.0, 8.0),
            Position::new(100.0, 50.0, 8.0),
        ];
        let mut apart = Radio::on_channels(cfg(), pos.clone(), &[3, 7, 3], 1);
        assert!(apart.links_of(0).iter().all(|l| l.to == 2));
        assert!(apart.links_of(1).is_empty());
        assert!(!unicast(&mut apart, SimTime::ZERO));
        let mut together = Radio::on_channels(cfg(), pos, &[3, 3, 3], 1);
        assert_eq!(together.links_of(1).len(), 2);
        assert!(unicast(&mut together, SimTime::ZERO));
    }
}
