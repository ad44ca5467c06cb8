//! A network of BFT validators driven by the kernel: the backhaul, each
//! validator's CPU, faults (crash and recovery, partitions, Byzantine
//! behaviour, delay), and the safety and liveness record.
//!
//! Each validator handles one message at a time. Checking a new signature
//! costs [`VERIFY_NS`] of its CPU; a relayed copy of a message it has
//! already handled costs nothing (a cache lookup). Values are opaque block
//! hashes here; the ledger puts blocks behind them.
//!
//! # Timing without faults
//! With a fixed link delay δ, no jitter and idle CPUs (δ large against the
//! CPU time of one round's messages), every validator decides a height
//! `3δ + 2(q − 1)·c` after its proposer started round 0, `q = ⌊2n/3⌋ + 1`,
//! `c` = [`VERIFY_NS`]: the proposal takes δ and one check; the prevotes δ
//! and `q − 1` checks at the proposer (which prevoted at once) or `q − 2`
//! after the proposer's own prevote at the others, who handled it δ earlier
//! along with the proposal; the precommits δ and `q − 1` checks. See the
//! test `bft_commit_latency_matches_its_closed_form`.

use std::collections::BTreeMap;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::bft::{App, Behaviour, Kind, Msg, Node, Out, Signed, Step, Timing};
use super::crypto::{VERIFY_NS, key_for};
use super::net::{Backhaul, NetSettings, ValidatorFault};
use super::tx::Hash;
use crate::kernel::{Context, Handler, RunLimits, SimDuration, SimTime, Simulation};

/// The settings of a validator network.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsensusSettings {
    /// Validators.
    pub n: u32,
    /// Timeouts and block interval.
    pub timing: Timing,
    /// The backhaul.
    pub net: NetSettings,
    /// Behaviour of each validator (missing: correct).
    pub behaviour: BTreeMap<u32, Behaviour>,
    /// Extra delay on every message a validator sends (a slow or
    /// malicious one).
    pub delay: BTreeMap<u32, SimDuration>,
    /// Crashes and partitions.
    pub faults: Vec<ValidatorFault>,
    /// Pass votes on (gossip).
    pub gossip: bool,
    /// `None`: a new height starts a block interval after each decision,
    /// empty or not. `Some(d)`: a validator waits for pending transactions
    /// before it starts a height, at most `d` after the block interval
    /// (CometBFT's `create_empty_blocks = false` with
    /// `create_empty_blocks_interval = d`).
    pub wait_for_txs: Option<SimDuration>,
}

/// An event of the validator network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A message reaches a validator's input queue.
    Arrive(u32, Msg),
    /// The validator's CPU is done with the message: handle it.
    Handle(u32, Msg),
    /// A timeout.
    Timeout(u32, u64, u32, Step),
    /// A validator starts a height.
    Height(u32, u64),
    /// A validator sends its messages of a height again.
    Rebroadcast(u32, u64),
    /// Fault `i` starts (`true`) or ends.
    Fault(usize, bool),
}

/// The record of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// Decisions of each validator: height → (value, round, time).
    pub decisions: Vec<BTreeMap<u64, (Hash, u32, SimTime)>>,
    /// When the proposer of each height started its round 0.
    pub height_start: BTreeMap<u64, SimTime>,
    /// Messages sent, over all validators.
    pub messages: u64,
    /// Distinct equivocation evidence (validator, height, round).
    pub evidence: Vec<(u32, u64, u32)>,
}

impl Record {
    /// Heights at which two validators in `who` decided different values.
    pub fn conflicts(&self, who: &[u32]) -> Vec<u64> {
        let mut by_h: BTreeMap<u64, Hash> = BTreeMap::new();
        let mut out = Vec::new();
        for &w in who {
            for (&h, (v, _, _)) in &self.decisions[w as usize] {
                match by_h.get(&h) {
                    Some(x) if x != v => out.push(h),
                    None => {
                        by_h.insert(h, *v);
                    }
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The highest height every validator in `who` decided.
    pub fn common_height(&self, who: &[u32]) -> u64 {
        who.iter()
            .map(|&w| {
                self.decisions[w as usize]
                    .keys()
                    .next_back()
                    .copied()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0)
    }
}

/// Verifies consensus signatures once each, for every validator: results
/// cached by the hash of the signed bytes and the signature.
#[derive(Debug, Default)]
pub struct SigCache {
    keys: Vec<VerifyingKey>,
    cache: BTreeMap<Hash, bool>,
}

impl SigCache {
    /// A cache for these validators' keys.
    pub fn new(keys: Vec<VerifyingKey>) -> SigCache {
        SigCache {
            keys,
            cache: BTreeMap::new(),
        }
    }

    /// Whether `m` is signed by its sender.
    pub fn verify(&mut self, m: &Signed) -> bool {
        let bytes = m.signing_bytes();
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        hasher.update(m.sig);
        let k: Hash = hasher.finalize().into();
        if let Some(&ok) = self.cache.get(&k) {
            return ok;
        }
        let ok = self.keys.get(m.from as usize).is_some_and(|key| {
            key.verify_strict(&bytes, &ed25519_dalek::Signature::from_bytes(&m.sig))
                .is_ok()
        });
        self.cache.insert(k, ok);
        ok
    }
}

/// The application of the bare consensus harness: values are hashes of
/// (height, proposer, variant); a value is valid at its height if some
/// validator proposed it.
#[derive(Debug)]
pub struct HashValues {
    sigs: SigCache,
    proposed: BTreeMap<(u64, Hash), ()>,
}

impl App for HashValues {
    fn propose(&mut self, who: u32, h: u64, variant: u32) -> Hash {
        let v: Hash =
            Sha256::digest(postcard::to_stdvec(&(h, who, variant)).unwrap_or_default()).into();
        self.proposed.insert((h, v), ());
        v
    }

    fn valid(&mut self, h: u64, v: &Hash) -> bool {
        self.proposed.contains_key(&(h, *v))
    }

    fn verify(&mut self, m: &Signed) -> bool {
        self.sigs.verify(m)
    }
}

/// The validators' keys for a seed.
pub fn validator_keys(n: u32, seed: u64) -> Vec<SigningKey> {
    (0..n)
        .map(|i| key_for(seed, "validator", u64::from(i)))
        .collect()
}

/// A network of validators around an application.
#[derive(Debug)]
pub struct BftNet<A: App = HashValues> {
    settings: ConsensusSettings,
    nodes: Vec<Node>,
    up: Vec<bool>,
    busy: Vec<SimTime>,
    net: Backhaul,
    app: A,
    record: Record,
    /// Validators waiting for transactions: the height each will start.
    parked: BTreeMap<u32, u64>,
}

impl BftNet<HashValues> {
    /// Validators with keys from `seed`, agreeing on opaque values.
    pub fn new(settings: ConsensusSettings, seed: u64) -> BftNet<HashValues> {
        let keys = validator_keys(settings.n, seed);
        let app = HashValues {
            sigs: SigCache::new(keys.iter().map(SigningKey::verifying_key).collect()),
            proposed: BTreeMap::new(),
        };
        BftNet::with_app(settings, seed, &keys, app)
    }

    /// Runs until `end`.
    pub fn run(settings: ConsensusSettings, seed: u64, end: SimTime) -> BftNet<HashValues> {
        let mut net = BftNet::new(settings, seed);
        let mut sim = Simulation::new();
        for (t, e) in net.start() {
            let _ = sim.schedule_at(t, e);
        }
        sim.run(
            &mut net,
            RunLimits {
                stop_at: end,
                max_events: None,
            },
            &mut (),
        );
        net.collect_evidence();
        net
    }
}

impl<A: App> BftNet<A> {
    /// Validators with these keys around `app`.
    pub fn with_app(
        settings: ConsensusSettings,
        seed: u64,
        keys: &[SigningKey],
        app: A,
    ) -> BftNet<A> {
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let b = settings
                    .behaviour
                    .get(&(i as u32))
                    .copied()
                    .unwrap_or(Behaviour::Correct);
                let node = Node::new(i as u32, settings.n, k.clone(), settings.timing, b);
                if settings.gossip {
                    node
                } else {
                    node.without_gossip()
                }
            })
            .collect();
        let n = settings.n as usize;
        BftNet {
            net: Backhaul::new(n, settings.net, seed),
            nodes,
            up: vec![true; n],
            busy: vec![SimTime::ZERO; n],
            app,
            record: Record {
                decisions: vec![BTreeMap::new(); n],
                ..Record::default()
            },
            settings,
            parked: BTreeMap::new(),
        }
    }

    /// The validators.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// What happened.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, to change.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The events that start the network: every validator's height 1 at
    /// zero, then the faults.
    pub fn start(&self) -> Vec<(SimTime, NetEvent)> {
        let mut ev: Vec<(SimTime, NetEvent)> = (0..self.settings.n)
            .map(|i| (SimTime::ZERO, NetEvent::Height(i, 1)))
            .collect();
        for (k, f) in self.settings.faults.iter().enumerate() {
            let (at, until) = f.window();
            ev.push((at, NetEvent::Fault(k, true)));
            if let Some(u) = until {
                ev.push((u, NetEvent::Fault(k, false)));
            }
        }
        ev
    }

    /// Gathers the evidence every validator has seen into the record.
    pub fn collect_evidence(&mut self) {
        for node in &self.nodes {
            for (a, b) in node.evidence() {
                let e = (a.from, a.h, a.r);
                if !self.record.evidence.contains(&e) && b.from == a.from {
                    self.record.evidence.push(e);
                }
            }
        }
        self.record.evidence.sort_unstable();
    }

    fn outs(&mut self, now: SimTime, from: u32, outs: Vec<Out>, cx: &mut Vec<(SimTime, NetEvent)>) {
        let extra = self
            .settings
            .delay
            .get(&from)
            .copied()
            .unwrap_or(SimDuration::ZERO);
        for o in outs {
            match o {
                Out::Send(to, m) => {
                    self.record.messages += 1;
                    if let Some(d) = self.net.delay(from as usize, to as usize) {
                        let at = now.saturating_add(d).saturating_add(extra);
                        cx.push((at, NetEvent::Arrive(to, m)));
                    }
                }
                Out::Timeout(at, h, r, step) => {
                    cx.push((at, NetEvent::Timeout(from, h, r, step)));
                }
                Out::NextHeight(at, h) => {
                    cx.push((at, NetEvent::Height(from, h)));
                }
                Out::Rebroadcast(at, h) => {
                    cx.push((at, NetEvent::Rebroadcast(from, h)));
                }
                Out::Decide(h, v, r) => {
                    self.app.decided(from, h, &v, now);
                    self.record.decisions[from as usize]
                        .entry(h)
                        .or_insert((v, r, now));
                }
            }
        }
    }
}

impl<A: App> Handler for BftNet<A> {
    type Event = NetEvent;

    fn handle(&mut self, ev: NetEvent, cx: &mut Context<'_, NetEvent>) {
        for (t, e) in self.step(cx.now(), ev) {
            let _ = cx.schedule_at(t, e);
        }
    }
}

impl<A: App> BftNet<A> {
    /// Transactions arrived at `now`: validators waiting for them start
    /// their heights.
    pub fn wake(&mut self, now: SimTime) -> Vec<(SimTime, NetEvent)> {
        let parked = std::mem::take(&mut self.parked);
        let mut out = Vec::new();
        self.app.clock(now);
        for (who, h) in parked {
            self.parked.insert(who, h);
            self.step_into(now, NetEvent::Height(who, h), &mut out);
        }
        out
    }

    /// Handles one event at `now`; returns the events it schedules.
    pub fn step(&mut self, now: SimTime, ev: NetEvent) -> Vec<(SimTime, NetEvent)> {
        let mut out = Vec::new();
        self.app.clock(now);
        self.step_into(now, ev, &mut out);
        out
    }

    fn step_into(&mut self, now: SimTime, ev: NetEvent, cx: &mut Vec<(SimTime, NetEvent)>) {
        match ev {
            NetEvent::Arrive(to, m) => {
                let i = to as usize;
                if !self.up[i] {
                    return;
                }
                let fresh = match &m {
                    Msg::Vote(s) => !self.nodes[i].knows(s),
                    Msg::Commit(c) => !c.precommits.is_empty(),
                };
                let cost = match (&m, fresh) {
                    (_, false) => 0,
                    (Msg::Vote(s), true) => {
                        VERIFY_NS
                            + match s.kind {
                                Kind::Proposal { value, .. } => self.app.value_cost_ns(&value),
                                _ => 0,
                            }
                    }
                    (Msg::Commit(c), true) => VERIFY_NS * c.precommits.len() as u64,
                };
                let start = now.max(self.busy[i]);
                let done = start.saturating_add(SimDuration::from_nanos(cost));
                self.busy[i] = done;
                cx.push((done, NetEvent::Handle(to, m)));
            }
            NetEvent::Handle(to, m) => {
                if !self.up[to as usize] {
                    return;
                }
                let outs = self.nodes[to as usize].receive(now, m, &mut self.app);
                self.outs(now, to, outs, cx);
            }
            NetEvent::Timeout(who, h, r, step) => {
                if !self.up[who as usize] {
                    return;
                }
                let outs = self.nodes[who as usize].timeout(now, h, r, step, &mut self.app);
                self.outs(now, who, outs, cx);
            }
            NetEvent::Height(who, h) => {
                if !self.up[who as usize] {
                    return;
                }
                if let Some(wait) = self.settings.wait_for_txs {
                    let node = &self.nodes[who as usize];
                    // The next height, not yet started (else `start_height`
                    // ignores the event).
                    let fresh = h == node.last_decided() + 1 && node.height() < h;
                    // Woken by transactions, or at its deadline.
                    let released = self.parked.get(&who) == Some(&h);
                    if fresh && !released && !self.app.pending() {
                        // Nothing to order: wait for transactions, or
                        // start an empty height at the deadline.
                        self.parked.insert(who, h);
                        cx.push((now.saturating_add(wait), NetEvent::Height(who, h)));
                        return;
                    }
                    if released {
                        self.parked.remove(&who);
                    }
                }
                if Node::proposer(self.settings.n, h, 0) == who {
                    self.record.height_start.entry(h).or_insert(now);
                }
                let outs = self.nodes[who as usize].start_height(now, h, &mut self.app);
                self.outs(now, who, outs, cx);
            }
            NetEvent::Rebroadcast(who, h) => {
                if !self.up[who as usize] {
                    return;
                }
                let outs = self.nodes[who as usize].rebroadcast(now, h);
                self.outs(now, who, outs, cx);
            }
            NetEvent::Fault(k, on) => match self.settings.faults.get(k).cloned() {
                Some(ValidatorFault::Crash { node, .. }) => {
                    let i = node as usize;
                    self.up[i] = !on;
                    if !on {
                        // Recovery: from the last decided height, with its
                        // round state lost; peers' commits catch it up.
                        let outs = self.nodes[i].restart(now, &mut self.app);
                        self.outs(now, node, outs, cx);
                    }
                }
                Some(ValidatorFault::Partition { groups, .. }) => {
                    self.net.partition(on.then_some(groups));
                }
                None => {}
            },
        }
    }
}
