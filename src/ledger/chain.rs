//! The ledger in a run: validators reaching consensus (Tendermint-style BFT
//! or Aura round robin) on blocks of the workload's transactions.
//!
//! Transactions wait in a mempool from their submission. A proposer builds
//! its block from the oldest (up to the block limit) on the committed
//! state, leaving out those that fail (they are dropped and counted as
//! failed when its block commits). A proposal's value is its block's hash;
//! a validator accepts it only if the block validates on the committed
//! state, and is charged the block's batched signature checks as CPU time.
//! The first decision of a height commits its block to the chain (every
//! correct validator decides the same one: that is what the safety tests
//! check; a different decision would be counted in
//! `ledger.conflicting_finals`). The state's invariants are checked after
//! every block.
//!
//! Under Aura a leader builds on the tip of its best chain, which may hold
//! blocks not yet final: the state after each of those is kept (shared
//! when a block is empty) until its height is final, and a block is valid
//! only on its parent's state. A block commits when the first validator
//! finalises it (more than n/2 distinct authors above it).
//!
//! Metrics follow the Hyperledger Performance and Scale Working Group's
//! definitions: transaction latency from submission to the block's first
//! decision (final: BFT decisions are never undone); throughput of
//! committed transactions over the run; success rate = committed /
//! (committed + failed).

use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use super::aura::{AuraApp, AuraBehaviour, AuraEvent, AuraNet, AuraSettings};
use super::bft::{App, Behaviour, Signed};
use super::block::{Base, Block, Ledger};
use super::consensus::{BftNet, ConsensusSettings, NetEvent, SigCache, validator_keys};
use super::crypto::BATCH_VERIFY_NS;
use super::state::State;
use super::tx::{Hash, Tx};
use super::workload::{Readings, Workload, WorkloadSettings};
use crate::kernel::{SimDuration, SimTime};
use crate::metrics::{Summary, percentile};

/// µ-currency per currency unit.
pub const MICRO: f64 = 1e6;

/// The settings of a ledger in a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainSettings {
    /// The validators, their network and faults (`timing.commit` is the
    /// block interval).
    pub consensus: ConsensusSettings,
    /// Most transactions in a block.
    pub max_block_txs: usize,
    /// The synthetic workload.
    pub workload: WorkloadSettings,
    /// The consensus protocol.
    pub protocol: Protocol,
}

/// The consensus protocol of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Tendermint-style BFT ([`super::bft`]).
    Bft,
    /// Aura round robin ([`super::aura`]): the slot is the block
    /// interval, and only crashes, partitions and equivocation apply.
    Aura,
}

/// The consensus application: blocks behind hashes.
#[derive(Debug)]
pub struct Chain {
    ledger: Ledger,
    keys: Vec<SigningKey>,
    sigs: SigCache,
    now: SimTime,
    max_txs: usize,
    mempool: Vec<(Tx, SimTime)>,
    blocks: BTreeMap<Hash, Block>,
    /// Transactions a proposer left out, by the block it proposed.
    left_out: BTreeMap<Hash, Vec<Hash>>,
    valid: BTreeMap<Hash, bool>,
    decided: BTreeMap<u64, (Hash, SimTime)>,
    /// Under Aura: the state after each block not yet final, by its hash,
    /// with its height.
    branch: BTreeMap<Hash, (u64, Arc<State>)>,
    /// The committed state, shared.
    tip_state: Arc<State>,
    /// From each block's proposal to its commit [s].
    finality_s: Vec<f64>,
    conflicting: u64,
    submitted: u64,
    failed: u64,
    latencies_s: Vec<f64>,
}

impl Chain {
    fn commit(&mut self, h: u64, v: &Hash, now: SimTime) {
        let Some(block) = self.blocks.get(v).cloned() else {
            return;
        };
        if block.header.height != self.ledger.next_height() {
            return;
        }
        if self.ledger.validate(block.clone()).is_err() {
            return;
        }
        let _ = h;
        self.finality_s.push(
            now.saturating_since(SimTime::from_nanos(block.header.time_ns))
                .as_secs_f64(),
        );
        if !block.txs.is_empty() {
            self.tip_state = Arc::new(self.ledger.state().clone());
        }
        let height = block.header.height;
        self.branch.retain(|_, (bh, _)| *bh > height);
        let included: BTreeMap<Hash, ()> = block.txs.iter().map(|t| (t.hash(), ())).collect();
        let dropped: BTreeMap<Hash, ()> = self
            .left_out
            .get(v)
            .map(|l| l.iter().map(|x| (*x, ())).collect())
            .unwrap_or_default();
        let mut keep = Vec::with_capacity(self.mempool.len());
        for (t, at) in std::mem::take(&mut self.mempool) {
            let th = t.hash();
            if included.contains_key(&th) {
                self.latencies_s
                    .push(now.saturating_since(at).as_secs_f64());
            } else if dropped.contains_key(&th) {
                self.failed += 1;
            } else {
                keep.push((t, at));
            }
        }
        self.mempool = keep;
        // Proposals of this height are settled: forget them.
        self.blocks
            .retain(|_, b| b.header.height > block.header.height);
        let blocks = &self.blocks;
        self.left_out.retain(|k, _| blocks.contains_key(k));
        self.valid.clear();
    }
}

impl Chain {
    /// Builds validator `who`'s block on `base` (state, parent hash,
    /// height) from the oldest pending transactions (`variant` > 0: an
    /// equivocator's extra block, empty); keeps it and returns its hash.
    fn build_on(&mut self, who: u32, base: (Arc<State>, Hash, u64), variant: u32) -> Hash {
        let Some(key) = self.keys.get(who as usize).cloned() else {
            return [0; 32];
        };
        let candidates: Vec<Tx> = if variant == 0 {
            self.mempool
                .iter()
                .take(self.max_txs)
                .map(|(t, _)| t.clone())
                .collect()
        } else {
            Vec::new()
        };
        let (state, prev, height) = base;
        let base = Base {
            state: &state,
            prev,
            height,
        };
        let (block, refused, _) =
            self.ledger
                .propose_on(base, candidates, who, self.now.as_nanos(), &key);
        let hash = block.hash();
        self.left_out
            .insert(hash, refused.iter().map(|(t, _)| t.hash()).collect());
        self.blocks.insert(hash, block);
        hash
    }

    /// The state after the block `parent` (`None`: genesis), its hash and
    /// the next height, if it is the committed tip or a block above it.
    fn base_after(&self, parent: Option<&Hash>) -> Option<(Arc<State>, Hash, u64)> {
        let tip = self.ledger.tip();
        match parent {
            None if self.ledger.next_height() == 1 => Some((self.tip_state.clone(), [0; 32], 1)),
            None => None,
            Some(p) if *p == tip => Some((self.tip_state.clone(), tip, self.ledger.next_height())),
            Some(p) => self.branch.get(p).map(|(h, st)| (st.clone(), *p, h + 1)),
        }
    }

    fn decide(&mut self, h: u64, v: &Hash, now: SimTime) {
        match self.decided.get(&h) {
            Some((d, _)) => {
                if d != v {
                    self.conflicting += 1;
                }
            }
            None => {
                self.decided.insert(h, (*v, now));
                self.commit(h, v, now);
            }
        }
    }
}

impl AuraApp for Chain {
    fn build(
        &mut self,
        who: u32,
        parent: Option<&Hash>,
        _height: u64,
        _slot: u64,
        variant: u32,
    ) -> Hash {
        match self.base_after(parent) {
            Some(base) => self.build_on(who, base, variant),
            // A parent below the committed tip: nothing valid builds there.
            None => [0; 32],
        }
    }

    fn valid(&mut self, parent: Option<&Hash>, height: u64, payload: &Hash) -> bool {
        if let Some(&ok) = self.valid.get(payload) {
            return ok;
        }
        let ok = match (self.base_after(parent), self.blocks.get(payload)) {
            (Some((state, prev, h)), Some(block)) if h == height => {
                let base = Base {
                    state: &state,
                    prev,
                    height: h,
                };
                match self.ledger.check_on(base, block) {
                    Ok((next, _)) => {
                        let after = next.map_or(state.clone(), Arc::new);
                        self.branch.insert(*payload, (height, after));
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        };
        // A block whose parent is unknown here may become valid later.
        if ok || self.blocks.contains_key(payload) {
            self.valid.insert(*payload, ok);
        }
        ok
    }

    fn cost_ns(&mut self, payload: &Hash) -> u64 {
        self.blocks
            .get(payload)
            .map_or(0, |b| BATCH_VERIFY_NS * b.txs.len() as u64)
    }

    fn clock(&mut self, now: SimTime) {
        self.now = now;
    }

    fn finalised(&mut self, _who: u32, height: u64, payload: &Hash, now: SimTime) {
        self.decide(height, payload, now);
    }
}

impl App for Chain {
    fn propose(&mut self, who: u32, h: u64, variant: u32) -> Hash {
        let base = (
            self.tip_state.clone(),
            self.ledger.tip(),
            self.ledger.next_height(),
        );
        let hash = self.build_on(who, base, variant);
        if self.blocks.get(&hash).is_some_and(|b| b.header.height != h) {
            self.blocks.remove(&hash);
        }
        hash
    }

    fn valid(&mut self, h: u64, v: &Hash) -> bool {
        if let Some((d, _)) = self.decided.get(&h) {
            return d == v;
        }
        if let Some(&ok) = self.valid.get(v) {
            return ok;
        }
        let ok = match self.blocks.get(v) {
            Some(b) if b.header.height == h && h == self.ledger.next_height() => {
                self.ledger.check(b).is_ok()
            }
            _ => false,
        };
        self.valid.insert(*v, ok);
        ok
    }

    fn verify(&mut self, m: &Signed) -> bool {
        self.sigs.verify(m)
    }

    fn clock(&mut self, now: SimTime) {
        self.now = now;
    }

    fn value_cost_ns(&mut self, v: &Hash) -> u64 {
        self.blocks
            .get(v)
            .map_or(0, |b| BATCH_VERIFY_NS * b.txs.len() as u64)
    }

    fn decided(&mut self, _who: u32, h: u64, v: &Hash, now: SimTime) {
        self.decide(h, v, now);
    }

    fn pending(&mut self) -> bool {
        !self.mempool.is_empty()
    }
}

/// An event of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// An event of the BFT validators' network.
    Net(NetEvent),
    /// An event of the Aura validators' network.
    Aura(AuraEvent),
    /// The end of metering interval `k`: readings and issues.
    Meter(u64),
    /// The matching of interval `k`.
    Settle(u64),
}

/// The validators, under one protocol or the other.
#[derive(Debug)]
enum Engine {
    Bft(BftNet<Chain>),
    Aura(AuraNet<Chain>),
}

impl Engine {
    fn app(&self) -> &Chain {
        match self {
            Engine::Bft(n) => n.app(),
            Engine::Aura(n) => n.app(),
        }
    }

    fn app_mut(&mut self) -> &mut Chain {
        match self {
            Engine::Bft(n) => n.app_mut(),
            Engine::Aura(n) => n.app_mut(),
        }
    }
}

/// The ledger with its validators and workload.
#[derive(Debug)]
pub struct ChainModel {
    engine: Engine,
    workload: Workload,
    interval: SimDuration,
    settle_after: SimDuration,
    correct: Vec<u32>,
    n: u32,
}

impl ChainModel {
    /// Builds the chain, its validators and its workload.
    pub fn new(s: ChainSettings, seed: u64) -> ChainModel {
        let (workload, genesis) = Workload::new(s.workload.clone(), seed);
        let keys = validator_keys(s.consensus.n, seed);
        let vks: Vec<_> = keys.iter().map(SigningKey::verifying_key).collect();
        let chain = Chain {
            tip_state: Arc::new(genesis.clone()),
            ledger: Ledger::new(genesis, vks.clone()),
            sigs: SigCache::new(vks),
            keys: keys.clone(),
            now: SimTime::ZERO,
            max_txs: s.max_block_txs,
            mempool: Vec::new(),
            blocks: BTreeMap::new(),
            left_out: BTreeMap::new(),
            valid: BTreeMap::new(),
            decided: BTreeMap::new(),
            branch: BTreeMap::new(),
            finality_s: Vec::new(),
            conflicting: 0,
            submitted: 0,
            failed: 0,
            latencies_s: Vec::new(),
        };
        let c = &s.consensus;
        let correct = (0..c.n)
            .filter(|i| {
                c.behaviour.get(i).is_none_or(|b| *b == Behaviour::Correct)
                    && !c.delay.contains_key(i)
            })
            .collect();
        let n = c.n;
        let engine = match s.protocol {
            Protocol::Bft => Engine::Bft(BftNet::with_app(s.consensus, seed, &keys, chain)),
            Protocol::Aura => {
                let a = AuraSettings {
                    slot: s.consensus.timing.commit,
                    net: s.consensus.net,
                    behaviour: s
                        .consensus
                        .behaviour
                        .iter()
                        .filter(|(_, b)| **b == Behaviour::Equivocate)
                        .map(|(&i, _)| (i, AuraBehaviour::Equivocate))
                        .collect(),
                    faults: s.consensus.faults,
                };
                Engine::Aura(AuraNet::with_app(a, seed, &keys, chain))
            }
        };
        ChainModel {
            engine,
            workload,
            interval: s.workload.interval,
            settle_after: s.workload.settle_after,
            correct,
            n,
        }
    }

    /// The committed chain.
    pub fn ledger(&self) -> &Ledger {
        &self.engine.app().ledger
    }

    /// The events that start the ledger.
    pub fn start(&self) -> Vec<(SimTime, LedgerEvent)> {
        let mut ev: Vec<(SimTime, LedgerEvent)> = match &self.engine {
            Engine::Bft(n) => n
                .start()
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Net(e)))
                .collect(),
            Engine::Aura(n) => n
                .start()
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Aura(e)))
                .collect(),
        };
        ev.push((
            SimTime::ZERO.saturating_add(self.interval),
            LedgerEvent::Meter(0),
        ));
        ev
    }

    /// Transactions enter the mempool; validators waiting for them wake.
    fn submit(&mut self, now: SimTime, txs: Vec<Tx>) -> Vec<(SimTime, LedgerEvent)> {
        let app = self.engine.app_mut();
        app.submitted += txs.len() as u64;
        app.mempool.extend(txs.into_iter().map(|t| (t, now)));
        match &mut self.engine {
            Engine::Bft(n) => n
                .wake(now)
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Net(e)))
                .collect(),
            Engine::Aura(_) => Vec::new(),
        }
    }

    /// Handles an event at `now`.
    pub fn handle(&mut self, now: SimTime, ev: LedgerEvent) -> Vec<(SimTime, LedgerEvent)> {
        match (ev, &mut self.engine) {
            (LedgerEvent::Net(e), Engine::Bft(n)) => n
                .step(now, e)
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Net(e)))
                .collect(),
            (LedgerEvent::Aura(e), Engine::Aura(n)) => n
                .step(now, e)
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Aura(e)))
                .collect(),
            (LedgerEvent::Net(_) | LedgerEvent::Aura(_), _) => Vec::new(),
            (LedgerEvent::Meter(k), _) => {
                let txs = self.workload.meter(k);
                self.metered(now, k, txs)
            }
            (LedgerEvent::Settle(k), _) => {
                let txs = self.workload.settle(k);
                self.submit(now, txs)
            }
        }
    }

    /// The end of metering interval `k` with the consumers' and prosumers'
    /// readings given (by the grid's meters), instead of the synthetic
    /// ones of [`LedgerEvent::Meter`].
    pub fn meter_with(
        &mut self,
        now: SimTime,
        k: u64,
        readings: &Readings,
    ) -> Vec<(SimTime, LedgerEvent)> {
        let txs = self.workload.meter_with(k, readings);
        self.metered(now, k, txs)
    }

    fn metered(&mut self, now: SimTime, k: u64, txs: Vec<Tx>) -> Vec<(SimTime, LedgerEvent)> {
        let mut ev = self.submit(now, txs);
        ev.push((
            now.saturating_add(self.settle_after),
            LedgerEvent::Settle(k),
        ));
        ev.push((now.saturating_add(self.interval), LedgerEvent::Meter(k + 1)));
        ev
    }

    /// `blocks.csv`: each committed block's height, transactions and
    /// finality (from its proposal to its commit) [s].
    pub fn blocks_csv(&self) -> Vec<u8> {
        let app = self.engine.app();
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["height", "txs", "finality_s"]).expect(io);
        for (b, f) in app.ledger.blocks().iter().zip(&app.finality_s) {
            w.write_record([
                b.header.height.to_string(),
                b.txs.len().to_string(),
                f.to_string(),
            ])
            .expect(io);
        }
        w.into_inner().expect(io)
    }

    /// `market.csv`: each settled interval's supplier matching and P2P
    /// market (`interval,start_s,cleared_kwh,price_per_kwh,matched_kwh`;
    /// the price is empty when nothing traded).
    pub fn market_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record([
            "interval",
            "start_s",
            "cleared_kwh",
            "price_per_kwh",
            "matched_kwh",
        ])
        .expect(io);
        let len = self.interval.as_secs_f64();
        for (k, st) in self.state().settlements() {
            w.write_record([
                k.to_string(),
                (f64::from(*k) * len).to_string(),
                st.market.kwh.to_string(),
                st.market
                    .price
                    .map_or(String::new(), |p| (p as f64 / MICRO).to_string()),
                st.matched_kwh.to_string(),
            ])
            .expect(io);
        }
        w.into_inner().expect(io)
    }

    /// The committed state.
    pub fn state(&self) -> &super::state::State {
        self.engine.app().ledger.state()
    }

    /// The metering interval.
    pub fn interval(&self) -> SimDuration {
        self.interval
    }

    /// The workload (its participants and DR enrolments).
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Writes the `ledger.*` metrics; returns `wallets.csv` and the first
    /// invariant violation, if any.
    pub fn finish(mut self, end: SimTime, summary: &mut Summary) -> (Vec<u8>, Option<String>) {
        // Protocol-specific figures: messages, rounds, conflicts, evidence.
        let (messages, rounds, conflicts, evidence) = match &mut self.engine {
            Engine::Bft(n) => {
                n.collect_evidence();
                let rec = n.record();
                let rounds: u64 = n.nodes().iter().map(|v| v.stats().rounds).sum();
                (
                    rec.messages,
                    Some(rounds as f64 / f64::from(self.n)),
                    rec.conflicts(&self.correct).len() as u64,
                    rec.evidence.len() as u64,
                )
            }
            Engine::Aura(n) => {
                // Heights two correct validators finalised differently.
                let mut by_h: BTreeMap<u64, Hash> = BTreeMap::new();
                let mut conflicts = std::collections::BTreeSet::new();
                for &w in &self.correct {
                    for (&h, (v, _)) in &n.finals[w as usize] {
                        if *by_h.entry(h).or_insert(*v) != *v {
                            conflicts.insert(h);
                        }
                    }
                }
                (n.messages, None, conflicts.len() as u64, 0)
            }
        };
        let app = self.engine.app();
        let heights = app.decided.len() as u64;
        summary.set_u64("ledger.validators", u64::from(self.n));
        summary.set_u64("ledger.blocks_final", app.ledger.blocks().len() as u64);
        summary.set_u64("ledger.tx_submitted", app.submitted);
        summary.set_u64("ledger.tx_committed", app.ledger.stats().committed);
        summary.set_u64("ledger.tx_failed", app.failed);
        summary.set_u64("ledger.tx_pending_at_end", app.mempool.len() as u64);
        let done = app.ledger.stats().committed + app.failed;
        if done > 0 {
            summary.set_f64(
                "ledger.success_rate",
                app.ledger.stats().committed as f64 / done as f64,
            );
        }
        if end > SimTime::ZERO {
            summary.set_f64(
                "ledger.throughput_tps",
                app.ledger.stats().committed as f64 / end.as_secs_f64(),
            );
        }
        let mut lat = app.latencies_s.clone();
        lat.sort_by(f64::total_cmp);
        for (k, p) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            if let Some(v) = percentile(&lat, p) {
                summary.set_f64(&format!("ledger.tx_latency_{k}_s"), v);
            }
        }
        // Finality: from a block's proposal to its commit.
        let mut fin = app.finality_s.clone();
        fin.sort_by(f64::total_cmp);
        if let Some(v) = percentile(&fin, 0.5) {
            summary.set_f64("ledger.finality_p50_s", v);
        }
        if heights > 0 {
            if let Some(r) = rounds {
                summary.set_f64("ledger.rounds_per_height", r / heights as f64);
            }
            summary.set_f64(
                "ledger.messages_per_block",
                messages as f64 / heights as f64,
            );
        }
        summary.set_u64("ledger.conflicting_finals", conflicts + app.conflicting);
        summary.set_u64("ledger.evidence", evidence);
        let violations = app.ledger.violations();
        summary.set_u64("ledger.invariant_violations", violations.len() as u64);
        // Traced kWh: claimed (each to its plant) over claimable consumption.
        let origin = app.ledger.state().claims_by_origin();
        let claimed: u64 = origin.values().sum();
        let consumed = self.workload.consumed_kwh();
        if consumed > 0 {
            summary.set_f64("ledger.traced_kwh_share", claimed as f64 / consumed as f64);
        }
        summary.set_u64("ledger.traced_kwh", claimed);
        let state = app.ledger.state();
        let (mut mkwh, mut mvalue) = (0u64, 0u128);
        for st in state.settlements().values() {
            mkwh += st.market.kwh;
            mvalue += u128::from(st.market.kwh) * u128::from(st.market.price.unwrap_or(0));
        }
        summary.set_u64("market.cleared_kwh", mkwh);
        if mkwh > 0 {
            summary.set_f64(
                "market.mean_price_per_kwh",
                mvalue as f64 / mkwh as f64 / MICRO,
            );
        }
        let settled: Vec<_> = state.dr_events().iter().filter_map(|e| e.settled).collect();
        summary.set_u64("dr.events", state.dr_events().len() as u64);
        summary.set_f64(
            "dr.reduced_kwh",
            settled.iter().map(|s| s.0).sum::<u64>() as f64 / 1000.0,
        );
        summary.set_f64(
            "dr.rewards",
            settled.iter().map(|s| s.1).sum::<u64>() as f64 / MICRO,
        );
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["wallet", "plant", "kwh", "share"])
            .expect(io);
        for c in self
            .workload
            .consumers()
            .into_iter()
            .chain(self.workload.prosumers())
        {
            let total: u64 = origin
                .range((c, super::tx::PlantId(0))..=(c, super::tx::PlantId(u32::MAX)))
                .map(|(_, v)| v)
                .sum();
            for (&(_, p), &kwh) in
                origin.range((c, super::tx::PlantId(0))..=(c, super::tx::PlantId(u32::MAX)))
            {
                w.write_record([
                    c.0.to_string(),
                    p.0.to_string(),
                    kwh.to_string(),
                    (kwh as f64 / total as f64).to_string(),
                ])
                .expect(io);
            }
        }
        let first = violations
            .first()
            .map(|(h, v)| format!("ledger invariant broken after block {h}: {}", v.0));
        (w.into_inner().expect(io), first)
    }
}
