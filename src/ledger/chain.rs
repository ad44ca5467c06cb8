//! The ledger in a run: validators reaching BFT consensus on blocks of the
//! workload's transactions.
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
//! Metrics follow the Hyperledger Performance and Scale Working Group's
//! definitions: transaction latency from submission to the block's first
//! decision (final: BFT decisions are never undone); throughput of
//! committed transactions over the run; success rate = committed /
//! (committed + failed).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;

use super::bft::{App, Behaviour, Signed};
use super::block::{Block, Ledger};
use super::consensus::{BftNet, ConsensusSettings, NetEvent, SigCache, validator_keys};
use super::crypto::BATCH_VERIFY_NS;
use super::tx::{Hash, Tx};
use super::workload::{Workload, WorkloadSettings};
use crate::kernel::{SimDuration, SimTime};
use crate::metrics::{Summary, percentile};

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
    /// From an interval's end to its matching.
    pub settle_after: SimDuration,
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
        self.valid.clear();
    }
}

impl App for Chain {
    fn propose(&mut self, who: u32, h: u64, variant: u32) -> Hash {
        let Some(key) = self.keys.get(who as usize) else {
            return [0; 32];
        };
        let candidates: Vec<Tx> = if variant == 0 {
            self.mempool
                .iter()
                .take(self.max_txs)
                .map(|(t, _)| t.clone())
                .collect()
        } else {
            // An equivocator's second proposal: an empty block.
            Vec::new()
        };
        let mut scratch = self.ledger.clone();
        let (block, refused, _) = scratch.propose(candidates, who, self.now.as_nanos(), key);
        let hash = block.hash();
        if block.header.height == h {
            self.left_out
                .insert(hash, refused.iter().map(|(t, _)| t.hash()).collect());
            self.blocks.insert(hash, block);
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
                self.ledger.clone().validate(b.clone()).is_ok()
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

/// An event of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// An event of the validators' network.
    Net(NetEvent),
    /// The end of metering interval `k`: readings and issues.
    Meter(u64),
    /// The matching of interval `k`.
    Settle(u64),
}

/// The ledger with its validators and workload.
#[derive(Debug)]
pub struct ChainModel {
    net: BftNet<Chain>,
    workload: Workload,
    interval: SimDuration,
    settle_after: SimDuration,
    correct: Vec<u32>,
}

impl ChainModel {
    /// Builds the chain, its validators and its workload.
    pub fn new(s: ChainSettings, seed: u64) -> ChainModel {
        let (workload, genesis) = Workload::new(s.workload.clone(), seed);
        let keys = validator_keys(s.consensus.n, seed);
        let vks: Vec<_> = keys.iter().map(SigningKey::verifying_key).collect();
        let chain = Chain {
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
        ChainModel {
            net: BftNet::with_app(s.consensus, seed, &keys, chain),
            workload,
            interval: s.workload.interval,
            settle_after: s.settle_after,
            correct,
        }
    }

    /// The validators.
    pub fn nodes(&self) -> &[super::bft::Node] {
        self.net.nodes()
    }

    /// The events that start the ledger.
    pub fn start(&self) -> Vec<(SimTime, LedgerEvent)> {
        let mut ev: Vec<(SimTime, LedgerEvent)> = self
            .net
            .start()
            .into_iter()
            .map(|(t, e)| (t, LedgerEvent::Net(e)))
            .collect();
        ev.push((
            SimTime::ZERO.saturating_add(self.interval),
            LedgerEvent::Meter(0),
        ));
        ev
    }

    fn submit(&mut self, now: SimTime, txs: Vec<Tx>) {
        let app = self.net.app_mut();
        app.submitted += txs.len() as u64;
        app.mempool.extend(txs.into_iter().map(|t| (t, now)));
    }

    /// Handles an event at `now`.
    pub fn handle(&mut self, now: SimTime, ev: LedgerEvent) -> Vec<(SimTime, LedgerEvent)> {
        match ev {
            LedgerEvent::Net(e) => self
                .net
                .step(now, e)
                .into_iter()
                .map(|(t, e)| (t, LedgerEvent::Net(e)))
                .collect(),
            LedgerEvent::Meter(k) => {
                let txs = self.workload.meter(k);
                self.submit(now, txs);
                vec![
                    (
                        now.saturating_add(self.settle_after),
                        LedgerEvent::Settle(k),
                    ),
                    (now.saturating_add(self.interval), LedgerEvent::Meter(k + 1)),
                ]
            }
            LedgerEvent::Settle(k) => {
                let txs = self.workload.settle(k);
                self.submit(now, txs);
                Vec::new()
            }
        }
    }

    /// Writes the `ledger.*` metrics; returns `wallets.csv` and the first
    /// invariant violation, if any.
    pub fn finish(mut self, end: SimTime, summary: &mut Summary) -> (Vec<u8>, Option<String>) {
        self.net.collect_evidence();
        let rec = self.net.record().clone();
        let app = self.net.app();
        let heights = app.decided.len() as u64;
        summary.set_u64("ledger.validators", self.net.nodes().len() as u64);
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
        // Finality: from the proposer's round-0 start to the first decision.
        let mut fin: Vec<f64> = app
            .decided
            .iter()
            .filter_map(|(h, (_, t))| {
                rec.height_start
                    .get(h)
                    .map(|s| t.saturating_since(*s).as_secs_f64())
            })
            .collect();
        fin.sort_by(f64::total_cmp);
        if let Some(v) = percentile(&fin, 0.5) {
            summary.set_f64("ledger.finality_p50_s", v);
        }
        if heights > 0 {
            let rounds: u64 = self.net.nodes().iter().map(|n| n.stats().rounds).sum();
            summary.set_f64(
                "ledger.rounds_per_height",
                rounds as f64 / self.net.nodes().len() as f64 / heights as f64,
            );
            summary.set_f64(
                "ledger.messages_per_block",
                rec.messages as f64 / heights as f64,
            );
        }
        let conflicts = rec.conflicts(&self.correct).len() as u64 + app.conflicting;
        summary.set_u64("ledger.conflicting_finals", conflicts);
        summary.set_u64("ledger.evidence", rec.evidence.len() as u64);
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
        let (mkwh, mvalue) = self.workload.market();
        summary.set_u64("market.cleared_kwh", mkwh);
        if mkwh > 0 {
            summary.set_f64("market.mean_price_per_kwh", mvalue / mkwh as f64);
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record(["wallet", "plant", "kwh", "share"])
            .expect(io);
        for c in self.workload.consumers() {
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
