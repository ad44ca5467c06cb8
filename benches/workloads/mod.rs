//! The benchmark workloads shared by the criterion benches and by the
//! instruction-count gate (`benches/gate.rs`): each has a *setup*, whose
//! cost is never measured, and a *run*, which is what both measure.
//!
//! Every workload is deterministic: fixed seeds, fixed inputs, no clock
//! read on a path whose cost depends on it. Sizes are arguments, so the gate
//! can run short variants of the criterion workloads.
//!
//! The EU LV workloads read the feeder in the repository's
//! `data/ieee_eu_lv/` ([`eu_lv_master`]).

// Each bench binary uses only some of the workloads.
#![allow(dead_code)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use gridtwin::grid::dss::DssCircuit;
use gridtwin::grid::network::Network;
use gridtwin::grid::powerflow::{Settings, Solver};
use gridtwin::kernel::queue::EventQueue;
use gridtwin::kernel::rng::stream;
use gridtwin::kernel::{Context, Handler, RunLimits, SimDuration, SimTime, Simulation};
use gridtwin::ledger::block::{Block, Ledger};
use gridtwin::ledger::crypto::key_for;
use gridtwin::ledger::state::{Account, Destination, Metered, Plant, Role, State};
use gridtwin::ledger::tx::{AccountId, Certs, PlantId, Tx, TxBody};
use gridtwin::mesh::phy::RadioProfile;
use gridtwin::mesh::propagation::{F_2G4_HZ, Fading, LogDistance, Position, Shadowing};
use gridtwin::mesh::radio::{
    BROADCAST, DEFAULT_CUTOFF_MARGIN_DB, MacFrame, MacSettings, Radio, RadioConfig, RadioEvent,
    RadioOutput, RadioStats,
};
use gridtwin::metrics::Value;
use gridtwin::scenario::Scenario;
use gridtwin_lmu::dsp::{Analyzer, Measurement, PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::{FrameKind, Keys, MAX_FRAME, Security};
use gridtwin_lmu::node::Message;
use gridtwin_lmu::{Config, Input, Instant, Lmu, Outputs};
use rand::RngExt;
use rand_distr::{Distribution, Exp};

// ---------------------------------------------------------------------
// Kernel: the hold model.

/// A future-event list in the hold model's steady state: `n` pending
/// events, and a table of exponential delays (mean 1 s, whole ns) read in
/// order.
pub struct Hold {
    queue: EventQueue<u32>,
    delays: Vec<u64>,
    next: usize,
}

/// The kernel's queue prefilled with `n` events and warmed up by
/// `max(n, 10⁴)` holds, with `holds` more delays drawn for the run.
pub fn hold_setup(n: usize, holds: usize) -> Hold {
    let exp = Exp::new(1.0 / 1e9).expect("positive rate");
    let mut rng = stream(2024, "bench", 0, "exp");
    let warm = n.max(10_000);
    let delays: Vec<u64> = (0..n + warm + holds)
        .map(|_| exp.sample(&mut rng) as u64)
        .collect();
    let mut queue = EventQueue::new();
    for (i, &d) in delays[..n].iter().enumerate() {
        queue
            .schedule(SimTime::from_nanos(d), i as u32)
            .expect("not in the past");
    }
    let mut h = Hold {
        queue,
        delays,
        next: n,
    };
    h.run(warm);
    h
}

impl Hold {
    /// `holds` holds: pop the next event, schedule it again a delay later.
    pub fn run(&mut self, holds: usize) -> u64 {
        let mut last = 0;
        for _ in 0..holds {
            let (id, payload) = self.queue.pop().expect("the queue holds n events");
            let at = id.time() + SimDuration::from_nanos(self.delays[self.next]);
            self.next += 1;
            self.queue
                .schedule(at, black_box(payload))
                .expect("not in the past");
            last = id.time().as_nanos();
        }
        last
    }
}

// ---------------------------------------------------------------------
// Grid: power flow.

/// The EU LV feeder's `Master.dss`, in the repository's `data/`.
pub fn eu_lv_master() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/ieee_eu_lv/dss/Master.dss")
}

/// The EU LV feeder at pure constant PQ (nominal loads), its solver, the
/// nominal loads [W, var], and each minute's multiplier per load.
pub struct EuLv {
    /// The network; its loads are what the next solve sees.
    pub net: Network,
    /// The factorised solver.
    pub solver: Solver,
    /// Per load: nominal (P [W], Q [var]).
    pub nominal: Vec<(f64, f64)>,
    /// Per minute 1..=1440 (index 0..1440): each load's multiplier.
    pub by_minute: Vec<Vec<f64>>,
    /// The last solution (warm start).
    pub last: Vec<[num_complex::Complex64; 3]>,
}

/// Imports the EU LV feeder from `master`, its loads at pure constant PQ
/// (the IEEE definition).
pub fn eu_lv_load(master: &Path) -> (DssCircuit, Network) {
    let c = DssCircuit::load(master).expect("EU LV imports");
    let mut net = Network::from_dss(&c).expect("EU LV models");
    let pq = net
        .loads
        .iter()
        .map(|l| (l.name.clone(), (l.p_w / 1e3, l.q_var / 1e3)))
        .collect();
    net.set_constant_pq(&pq).expect("own loads");
    (c, net)
}

/// Loads the EU LV feeder from `master` and solves it once at nominal.
pub fn eu_lv_setup(master: &Path) -> EuLv {
    let (c, net) = eu_lv_load(master);
    let nominal: Vec<(f64, f64)> = net.loads.iter().map(|l| (l.p_w, l.q_var)).collect();
    let mults: Vec<Vec<f64>> = net
        .loads
        .iter()
        .map(|l| {
            let def = c.loads.iter().find(|d| d.name == l.name).expect("load");
            let shape = &c.loadshapes[def.yearly.as_ref().expect("shape")];
            (1..=1440)
                .map(|m| shape.at(f64::from(m) * 60.0).expect("point"))
                .collect()
        })
        .collect();
    let by_minute = (0..1440)
        .map(|m| mults.iter().map(|per_load| per_load[m]).collect())
        .collect();
    let solver = Solver::new(&net).expect("radial");
    let last = solver
        .solve(&net, Settings::default(), None)
        .expect("converges")
        .v;
    EuLv {
        net,
        solver,
        nominal,
        by_minute,
        last,
    }
}

impl EuLv {
    /// Sets every load to its demand at `minute` (0-based).
    pub fn set_minute(&mut self, minute: usize) {
        let row = &self.by_minute[minute % 1440];
        for (i, l) in self.net.loads.iter_mut().enumerate() {
            l.p_w = self.nominal[i].0 * row[i];
            l.q_var = self.nominal[i].1 * row[i];
        }
    }

    /// A warm re-solve after a load change to `minute`; returns the
    /// iterations it took.
    pub fn resolve(&mut self, minute: usize) -> usize {
        self.set_minute(minute);
        let sol = self
            .solver
            .solve(&self.net, Settings::default(), Some(&self.last))
            .expect("converges");
        self.last = sol.v;
        sol.iterations
    }

    /// `minutes` one-minute steps from midnight, each warm-started from the
    /// previous one (the first from a cold start); returns the phase-a
    /// voltage of the first LV bus at the end [V].
    pub fn day(&mut self, minutes: usize) -> f64 {
        let settings = Settings::default();
        let mut v = self
            .solver
            .solve(&self.net, settings, None)
            .expect("converges")
            .v;
        for m in 0..minutes {
            self.set_minute(m);
            v = self
                .solver
                .solve(&self.net, settings, Some(&v))
                .expect("converges")
                .v;
        }
        v[1][0].norm()
    }
}

/// A cold solve of a synthetic radial feeder of `net.buses` buses,
/// factorisation included; returns the iterations.
pub fn radial_solve(net: &Network) -> usize {
    let solver = Solver::new(net).expect("radial");
    solver
        .solve(net, Settings::default(), None)
        .expect("converges")
        .iterations
}

// ---------------------------------------------------------------------
// Radio: one reception under interference.

/// Interferers around the receiver.
pub const INTERFERERS: usize = 20;

/// A receiver (node 0), a sender 100 m away (node 1), and
/// [`INTERFERERS`] nodes on a 1.5 km ring (2..), with the default
/// calibration's path loss (log-distance, exponent 2.44 from Friis at
/// 1 m), σ = 4 dB shadowing, no fading, the default MAC.
pub fn reception_setup() -> Radio {
    let mut pos = vec![Position::new(0.0, 0.0, 8.0), Position::new(100.0, 0.0, 8.0)];
    for k in 0..INTERFERERS {
        let a = std::f64::consts::TAU * k as f64 / INTERFERERS as f64;
        pos.push(Position::new(1500.0 * a.cos(), 1500.0 * a.sin(), 8.0));
    }
    let cfg = RadioConfig {
        profile: RadioProfile::NRF52840,
        loss: Box::new(LogDistance::friis_referenced(2.44, F_2G4_HZ)),
        shadowing: Shadowing { sigma_db: 4.0 },
        fading: Fading::None,
        cutoff_margin_db: DEFAULT_CUTOFF_MARGIN_DB,
        mac: MacSettings::default(),
    };
    Radio::new(cfg, pos, 1)
}

fn broadcast(src: u32, payload_octets: usize) -> MacFrame {
    MacFrame {
        src,
        dst: BROADCAST,
        payload_octets,
        tag: 0,
        attempts: 0,
        urgent: false,
    }
}

/// One reception: node 1 sends a 100-octet frame to the receiver (3.7 ms
/// on air) and the interferers start 20-octet frames one every 150 µs
/// from 100 µs on, so the receiver's SINR changes at every start and end;
/// each change closes a constant-SINR segment, and the frame's end turns
/// the segments into a packet error rate and one draw. Every event is
/// handled in time order; returns the channel's counters and whether the
/// receiver got the frame.
pub fn reception(radio: Radio) -> (RadioStats, bool) {
    reception_n(radio, INTERFERERS)
}

/// [`reception`] with only the first `interferers` of the ring sending.
pub fn reception_n(mut radio: Radio, interferers: usize) -> (RadioStats, bool) {
    let mut got = false;
    let mut queue: EventQueue<RadioEvent> = EventQueue::new();
    let (ev, _) = radio.transmit_now(SimTime::ZERO, broadcast(1, 100));
    for (t, e) in ev {
        queue.schedule(t, e).expect("future");
    }
    let mut next_start = 0;
    loop {
        let start = (next_start < interferers)
            .then(|| SimTime::from_nanos(100_000 + 150_000 * next_start as u64));
        let due = queue.peek().map(|(id, _)| id.time());
        match (start, due) {
            (Some(s), Some(d)) if s < d => {}
            (Some(_), None) => {}
            (_, Some(_)) => {
                let (id, e) = queue.pop().expect("peeked");
                let (ev, out) = radio.handle(id.time(), e);
                got |= out
                    .iter()
                    .any(|o| matches!(o, RadioOutput::Delivered { at: 0, .. }));
                for (t, e) in ev {
                    queue.schedule(t, e).expect("future");
                }
                continue;
            }
            (None, None) => break,
        }
        let s = start.expect("matched");
        let (ev, _) = radio.transmit_now(s, broadcast(2 + next_start as u32, 20));
        next_start += 1;
        for (t, e) in ev {
            queue.schedule(t, e).expect("future");
        }
    }
    (radio.stats(), got)
}

// ---------------------------------------------------------------------
// Mesh: a second of traffic.

/// `side × side` nodes on a 200 m grid, 8 m up.
pub fn town(side: usize) -> Vec<Position> {
    (0..side * side)
        .map(|i| Position::new((i % side) as f64 * 200.0, (i / side) as f64 * 200.0, 8.0))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Radio(RadioEvent),
    Send(u32, u32),
}

struct Net(Radio, u64);

impl Handler for Net {
    type Event = Ev;
    fn handle(&mut self, e: Ev, cx: &mut Context<'_, Ev>) {
        let now = cx.now();
        let (ev, out) = match e {
            Ev::Radio(r) => self.0.handle(now, r),
            Ev::Send(src, dst) => self.0.send(
                now,
                MacFrame {
                    src,
                    dst,
                    payload_octets: 20,
                    tag: 0,
                    attempts: 0,
                    urgent: false,
                },
            ),
        };
        self.1 += out.len() as u64;
        for (t, e) in ev {
            cx.schedule_at(t, Ev::Radio(e)).expect("future");
        }
    }
}

/// One simulated second on the `side × side` town `radio`: every node
/// sends one 20-octet frame to a grid neighbour at a random instant
/// (CSMA-CA, ACKs, retries); returns the MAC's outputs.
pub fn second_of_traffic(radio: Radio, side: usize) -> u64 {
    let mut sim = Simulation::new();
    let mut rng = stream(1, "bench", 0, "traffic");
    for i in 0..(side * side) as u32 {
        let dst = if (i as usize) % side + 1 < side {
            i + 1
        } else {
            i - 1
        };
        let at = rng.random_range(0..1_000_000_000u64);
        sim.schedule_at(SimTime::from_nanos(at), Ev::Send(i, dst))
            .expect("future");
    }
    let mut net = Net(radio, 0);
    sim.run(
        &mut net,
        RunLimits {
            stop_at: SimTime::from_nanos(2_000_000_000),
            max_events: None,
        },
        &mut (),
    );
    net.1
}

// ---------------------------------------------------------------------
// LMU firmware.

/// The mesh and gateway keys of the LMU workloads.
pub const KEYS: Keys = Keys {
    mesh: [5; 32],
    gateway: [6; 32],
};

/// One 64-sample cycle of three voltages (325 V peak, 5th harmonic) and
/// three currents (14 A peak, 3rd harmonic).
pub fn waveform() -> Waveform {
    let mut w = Waveform {
        v: [[0.0; SAMPLES_PER_CYCLE]; 3],
        i: [[0.0; SAMPLES_PER_CYCLE]; 3],
    };
    for k in 0..3 {
        for n in 0..SAMPLES_PER_CYCLE {
            let th = std::f32::consts::TAU * n as f32 / SAMPLES_PER_CYCLE as f32
                - k as f32 * std::f32::consts::TAU / 3.0;
            w.v[k][n] = 325.0 * th.cos() + 15.0 * (5.0 * th).cos();
            w.i[k][n] = 14.0 * (th - 0.3).cos() + 2.0 * (3.0 * th).cos();
        }
    }
    w
}

/// The DSP of one waveform cycle (RMS, powers, harmonics, THD, frequency,
/// unbalance).
pub fn dsp_cycle(a: &mut Analyzer, w: &Waveform) -> Measurement {
    a.waveform(w)
}

/// A balanced phasor frame at `v_pu` of 230 V and `i_a` [A].
pub fn phasors(v_pu: f32, i_a: f32) -> PhasorFrame {
    PhasorFrame::balanced(230.0 * v_pu, i_a, 20.0)
}

/// An LMU that saw a fault and now sits on a dead feeder, and the sealed
/// FLISR report of its downstream neighbour (frame bytes, length).
pub fn flisr_setup() -> (Lmu, [u8; MAX_FRAME], usize) {
    let mut cfg = Config::new(1);
    cfg.downstream.push(2).expect("room");
    let mut n = Lmu::new(cfg, KEYS);
    let mut out = Outputs::default();
    n.handle(
        Instant::from_millis(0),
        Input::Phasors(&phasors(0.4, 3000.0)),
        &mut out,
    );
    n.handle(
        Instant::from_millis(120),
        Input::Phasors(&phasors(0.0, 0.0)),
        &mut out,
    );
    let mut child = Security::new(2, KEYS, 0, &[]);
    let mut payload = [0u8; 64];
    let used = Message::Report { saw: false }
        .encode(&mut payload)
        .expect("fits")
        .len();
    let mut buf = [0u8; MAX_FRAME];
    let len = child
        .seal(FrameKind::FaultReport, 1, &payload[..used], &mut buf)
        .expect("fits");
    (n, buf, len)
}

/// The LMU handles the received report: authentication (HMAC-SHA256),
/// replay check, decode, judgement, and the sealed answers it sends.
pub fn flisr_report(n: &mut Lmu, frame: &[u8]) -> Outputs {
    let mut out = Outputs::default();
    n.handle(Instant::from_millis(130), Input::Frame(frame), &mut out);
    out
}

// ---------------------------------------------------------------------
// Ledger.

/// Plants, and so 5 transactions each, in the block workload.
pub const PLANTS: u32 = 200;

/// The genesis state and 1 000 signed transactions (readings, issuances,
/// transfers, claims). Accounts: 0 the producer; 1..=200 plant meters;
/// 201..=400 consumers; 401..=600 consumer meters.
pub fn ledger_txs() -> (State, Vec<Tx>) {
    let key = |a: u32| key_for(7, "account", u64::from(a));
    let mut accounts = vec![(
        AccountId(0),
        Account {
            role: Role::Producer,
            key: key(0).verifying_key(),
        },
    )];
    let mut plants = Vec::new();
    for i in 0..PLANTS {
        let (meter, consumer, cmeter) = (1 + i, 201 + i, 401 + i);
        for (id, role) in [
            (meter, Role::Meter(Metered::Plant(PlantId(i)))),
            (consumer, Role::Consumer),
            (cmeter, Role::Meter(Metered::Consumer(AccountId(consumer)))),
        ] {
            let key = key(id).verifying_key();
            accounts.push((AccountId(id), Account { role, key }));
        }
        plants.push((
            PlantId(i),
            Plant {
                owner: AccountId(0),
                meter: AccountId(meter),
                destination: Destination::LocalMarket,
            },
        ));
    }
    let genesis = State::genesis(accounts, plants);
    let mut txs = Vec::new();
    for i in 0..PLANTS {
        let (meter, consumer, cmeter) = (1 + i, 201 + i, 401 + i);
        let certs = Certs {
            plant: PlantId(i),
            first: 0,
            count: 3,
        };
        txs.push(Tx::signed(
            &key(meter),
            AccountId(meter),
            0,
            TxBody::Reading {
                interval: 0,
                wh: 5_000,
            },
        ));
        txs.push(Tx::signed(
            &key(meter),
            AccountId(meter),
            1,
            TxBody::Issue {
                plant: PlantId(i),
                interval: 0,
                kwh: 5,
            },
        ));
        txs.push(Tx::signed(
            &key(cmeter),
            AccountId(cmeter),
            0,
            TxBody::Reading {
                interval: 0,
                wh: 4_000,
            },
        ));
        txs.push(Tx::signed(
            &key(0),
            AccountId(0),
            u64::from(i),
            TxBody::Transfer {
                to: AccountId(consumer),
                certs,
            },
        ));
        txs.push(Tx::signed(
            &key(consumer),
            AccountId(consumer),
            0,
            TxBody::Claim { certs, interval: 0 },
        ));
    }
    (genesis, txs)
}

/// A fresh ledger at genesis (one validator) and the proposed block of the
/// 1 000 transactions, to be validated.
pub fn block_setup() -> (Ledger, Block) {
    let (genesis, txs) = ledger_txs();
    let validator = key_for(7, "validator", 0);
    let mut proposer = Ledger::new(genesis.clone(), vec![validator.verifying_key()]);
    let (block, refused, _) = proposer.propose(txs, 0, 0, &validator);
    assert!(refused.is_empty(), "{refused:?}");
    (Ledger::new(genesis, vec![validator.verifying_key()]), block)
}

/// A validator's whole check of the block: its signature, Merkle root,
/// every transaction signature (batched, nothing cached), applying each
/// to the state, the invariants.
pub fn validate_block(mut ledger: Ledger, block: Block) -> Ledger {
    ledger.validate(block).expect("valid block");
    assert_eq!(ledger.stats().committed, 1000);
    ledger
}

// ---------------------------------------------------------------------
// The whole twin.

/// `scenarios/default.ron` as the CLI loads it, with its duration cut to
/// `duration` (e.g. `"1h"`) and the faults it schedules later than that
/// (the first is at 10:00) left out, as a scenario must.
pub fn default_scenario(duration: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.ron");
    Scenario::load(&path)
        .expect("the default scenario is valid")
        .varied(
            "bench",
            &[
                ("duration".into(), format!("{duration:?}")),
                ("faults".into(), "[]".into()),
            ],
        )
        .expect("a shorter duration is valid")
}

/// Builds and runs `scenario` through `world::run`, the call the
/// CLI's `run` makes (outputs are built in memory, not written); returns
/// the events handled.
pub fn run_scenario(scenario: &Scenario) -> u64 {
    let out = gridtwin::world::run(scenario, 1, &mut ()).expect("runs");
    match out.summary.get("kernel.events") {
        Some(Value::U64(n)) => *n,
        _ => 0,
    }
}
