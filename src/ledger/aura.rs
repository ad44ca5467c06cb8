//! Proof-of-authority round robin (Aura-style), one validator as a sans-IO
//! state machine, and a kernel-driven network of them.
//!
//! Time is cut into slots of fixed length; the leader of slot `s` is
//! validator `s mod n`. The leader builds a block on the tip of its best
//! chain (the longest; on a tie the one it saw first) and broadcasts it.
//! A block is accepted if its author leads its slot, its slot is after its
//! parent's and not in the future, and its signature verifies.
//!
//! **Finality:** a block is final once more than `n/2` distinct validators
//! have built on it, i.e. authored blocks after it on the best chain. With
//! honest validators that is safe under crashes and partitions: two
//! conflicting final blocks would need two disjoint majorities of authors.
//! **It is not Byzantine-safe:** an equivocating validator signs blocks on
//! both branches, so two branches can each gather more than `n/2` authors
//! with its help. Use BFT ([`super::bft`]) where validators may lie.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypto::{VERIFY_NS, key_for};
use super::net::{Backhaul, NetSettings, ValidatorFault};
use super::tx::{CHAIN_ID, Hash};
use crate::kernel::{Context, Handler, RunLimits, SimDuration, SimTime, Simulation};

/// A block header of the Aura chain (the transactions behind it are the
/// ledger's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuraBlock {
    /// The parent's hash (zeros for the first).
    pub parent: Hash,
    /// Height (1 for the first).
    pub height: u64,
    /// Slot.
    pub slot: u64,
    /// Author.
    pub author: u32,
    /// What it carries (the ledger block's hash, or a variant).
    pub payload: Hash,
    /// The author's signature of the other fields.
    #[serde(with = "serde_big_array::BigArray")]
    pub sig: [u8; 64],
}

impl AuraBlock {
    fn signing_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(&(
            CHAIN_ID,
            b"aura",
            self.parent,
            self.height,
            self.slot,
            self.author,
            self.payload,
        ))
        .expect("headers serialise")
    }

    /// The block's hash.
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(self.signing_bytes());
        h.update(self.sig);
        h.finalize().into()
    }
}

/// How an Aura validator behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuraBehaviour {
    /// By the protocol.
    Correct,
    /// Signs two blocks in each of its slots: one for the validators with
    /// ids below n/2, one for the rest.
    Equivocate,
}

/// The application under Aura: what a block carries.
pub trait AuraApp {
    /// The payload of a block validator `who` builds at `height` in `slot`
    /// on the block carrying `parent` (`None`: the first block);
    /// `variant` distinguishes an equivocator's blocks.
    fn build(
        &mut self,
        who: u32,
        parent: Option<&Hash>,
        height: u64,
        slot: u64,
        variant: u32,
    ) -> Hash;
    /// Whether `payload` is valid at `height` on the block carrying
    /// `parent`.
    fn valid(&mut self, parent: Option<&Hash>, height: u64, payload: &Hash) -> bool;
    /// CPU time to check a payload, beyond the block's signature [ns].
    fn cost_ns(&mut self, _payload: &Hash) -> u64 {
        0
    }
    /// The simulated time, before the calls of one step.
    fn clock(&mut self, _now: SimTime) {}
    /// Validator `who` finalised the block carrying `payload` at `height`.
    fn finalised(&mut self, _who: u32, _height: u64, _payload: &Hash, _now: SimTime) {}
}

/// Payloads that stand for blocks: a hash of (height, author, slot,
/// variant), always valid.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyntheticPayloads;

impl AuraApp for SyntheticPayloads {
    fn build(&mut self, who: u32, _: Option<&Hash>, height: u64, slot: u64, variant: u32) -> Hash {
        Sha256::digest(postcard::to_stdvec(&(height, who, slot, variant)).unwrap_or_default())
            .into()
    }

    fn valid(&mut self, _: Option<&Hash>, _: u64, _: &Hash) -> bool {
        true
    }
}

/// A message between Aura validators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuraMsg {
    /// A block.
    Block(AuraBlock),
    /// A request for the block with this hash (sync of missed blocks).
    Want(Hash),
}

/// What an Aura validator asks of its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum AuraOut {
    /// Send to a validator.
    Send(u32, AuraMsg),
    /// Call [`AuraNode::slot`] at this time.
    Slot(SimTime, u64),
    /// The block at this height became final.
    Final(u64, Hash),
}

#[derive(Clone, Debug)]
struct Meta {
    parent: Hash,
    height: u64,
    slot: u64,
    author: u32,
    block: AuraBlock,
}

/// One Aura validator.
#[derive(Debug)]
pub struct AuraNode {
    id: u32,
    n: u32,
    key: SigningKey,
    keys: Vec<VerifyingKey>,
    slot_len: SimDuration,
    behaviour: AuraBehaviour,
    blocks: BTreeMap<Hash, Meta>,
    best: Option<Hash>,
    finalized: u64,
    final_chain: BTreeMap<u64, Hash>,
    /// Blocks waiting for their parent, by parent.
    orphans: BTreeMap<Hash, Vec<AuraBlock>>,
    /// An equivocator's two forks: the tip it builds on for the lower and
    /// the upper half of the validators.
    fork_tip: [Option<Hash>; 2],
    refused: u64,
}

impl AuraNode {
    /// Validator `id` of `n` (with everyone's keys).
    pub fn new(
        id: u32,
        key: SigningKey,
        keys: Vec<VerifyingKey>,
        slot_len: SimDuration,
        behaviour: AuraBehaviour,
    ) -> AuraNode {
        AuraNode {
            id,
            n: keys.len() as u32,
            key,
            keys,
            slot_len,
            behaviour,
            blocks: BTreeMap::new(),
            best: None,
            finalized: 0,
            final_chain: BTreeMap::new(),
            orphans: BTreeMap::new(),
            fork_tip: [None; 2],
            refused: 0,
        }
    }

    /// Final blocks by height.
    pub fn final_chain(&self) -> &BTreeMap<u64, Hash> {
        &self.final_chain
    }

    /// Blocks refused (bad author, slot or signature).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The best chain's height.
    pub fn height(&self) -> u64 {
        self.best
            .and_then(|b| self.blocks.get(&b))
            .map_or(0, |m| m.height)
    }

    fn slot_at(&self, now: SimTime) -> u64 {
        now.as_nanos() / self.slot_len.as_nanos().max(1)
    }

    /// The payload of a block this validator holds.
    pub fn payload(&self, h: &Hash) -> Option<Hash> {
        self.blocks.get(h).map(|m| m.block.payload)
    }

    /// Whether this validator holds the block.
    pub fn has(&self, h: &Hash) -> bool {
        self.blocks.contains_key(h)
    }

    /// Slot `s` begins: lead it if it is ours.
    pub fn slot(&mut self, now: SimTime, s: u64, app: &mut dyn AuraApp) -> Vec<AuraOut> {
        let mut out = vec![AuraOut::Slot(
            SimTime::from_nanos((s + 1).saturating_mul(self.slot_len.as_nanos())),
            s + 1,
        )];
        if s % u64::from(self.n) != u64::from(self.id) {
            return out;
        }
        let variants = if self.behaviour == AuraBehaviour::Equivocate {
            2
        } else {
            1
        };
        let mut made = Vec::new();
        for v in 0..variants {
            // An equivocator extends each half's fork; anyone else its best
            // chain.
            let tip = if variants > 1 {
                self.fork_tip[v]
            } else {
                self.best
            };
            let (parent, height, under) =
                match tip.and_then(|b| self.blocks.get(&b).map(|m| (b, m))) {
                    Some((b, m)) => (b, m.height + 1, Some(m.block.payload)),
                    None => ([0; 32], 1, None),
                };
            let payload = app.build(self.id, under.as_ref(), height, s, v as u32);
            let mut b = AuraBlock {
                parent,
                height,
                slot: s,
                author: self.id,
                payload,
                sig: [0; 64],
            };
            b.sig = self.key.sign(&b.signing_bytes()).to_bytes();
            made.push(b);
        }
        for to in 0..self.n {
            if to != self.id {
                // An equivocator's first block to the lower half of the
                // ids, its second to the upper half.
                let half = usize::from(made.len() > 1 && to * 2 >= self.n);
                let b = &made[half];
                out.push(AuraOut::Send(to, AuraMsg::Block(b.clone())));
            }
        }
        for (v, own) in made.into_iter().enumerate() {
            if variants > 1 {
                self.fork_tip[v] = Some(own.hash());
            }
            out.extend(self.import(now, own));
        }
        out
    }

    /// A message from validator `from` arrives.
    pub fn receive(
        &mut self,
        now: SimTime,
        from: u32,
        msg: AuraMsg,
        app: &mut dyn AuraApp,
    ) -> Vec<AuraOut> {
        let b = match msg {
            // An equivocator keeps its forks apart: it never serves sync.
            AuraMsg::Want(_) if self.behaviour == AuraBehaviour::Equivocate => {
                return Vec::new();
            }
            AuraMsg::Want(h) => {
                return self
                    .blocks
                    .get(&h)
                    .map(|m| AuraOut::Send(from, AuraMsg::Block(m.block.clone())))
                    .into_iter()
                    .collect();
            }
            AuraMsg::Block(b) => b,
        };
        let signed = b.slot % u64::from(self.n) == u64::from(b.author)
            && b.slot <= self.slot_at(now)
            && self.keys.get(b.author as usize).is_some_and(|k| {
                k.verify_strict(
                    &b.signing_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&b.sig),
                )
                .is_ok()
            });
        if !signed {
            self.refused += 1;
            return Vec::new();
        }
        if b.height > 1 && !self.blocks.contains_key(&b.parent) {
            // A gap: keep it, and ask the sender for its parent.
            let want = b.parent;
            let list = self.orphans.entry(want).or_default();
            if !list.contains(&b) {
                list.push(b);
            }
            return vec![AuraOut::Send(from, AuraMsg::Want(want))];
        }
        let mut out = Vec::new();
        let mut ready = vec![b];
        while let Some(b) = ready.pop() {
            let parent_ok = (b.parent == [0; 32] && b.height == 1)
                || self
                    .blocks
                    .get(&b.parent)
                    .is_some_and(|p| p.height + 1 == b.height && p.slot < b.slot);
            let under = self.blocks.get(&b.parent).map(|m| m.block.payload);
            if !parent_ok || !app.valid(under.as_ref(), b.height, &b.payload) {
                self.refused += 1;
                continue;
            }
            let h = b.hash();
            out.extend(self.import(now, b));
            if let Some(children) = self.orphans.remove(&h) {
                ready.extend(children);
            }
        }
        out
    }

    fn import(&mut self, _now: SimTime, b: AuraBlock) -> Vec<AuraOut> {
        let h = b.hash();
        if self.blocks.contains_key(&h) {
            return Vec::new();
        }
        let height = b.height;
        let half = usize::from(b.author * 2 >= self.n);
        if self.behaviour == AuraBehaviour::Equivocate
            && b.author != self.id
            && self.fork_tip[half]
                .and_then(|t| self.blocks.get(&t))
                .is_none_or(|m| m.height < height)
        {
            self.fork_tip[half] = Some(h);
        }
        self.blocks.insert(
            h,
            Meta {
                parent: b.parent,
                height: b.height,
                slot: b.slot,
                author: b.author,
                block: b,
            },
        );
        if height > self.height() {
            self.best = Some(h);
        }
        self.finality()
    }

    /// Walks down the best chain counting distinct authors above each
    /// block; the highest block with more than n/2 above it is final.
    fn finality(&mut self) -> Vec<AuraOut> {
        let mut out = Vec::new();
        let mut authors = std::collections::BTreeSet::new();
        let mut at = self.best;
        let mut chain = Vec::new();
        let mut found = false;
        while let Some(h) = at {
            let Some(m) = self.blocks.get(&h) else { break };
            if m.height <= self.finalized {
                break;
            }
            chain.push((m.height, h));
            if authors.len() * 2 > self.n as usize {
                // More than n/2 distinct authors above this block: it is
                // final, and every block below it.
                found = true;
                break;
            }
            authors.insert(m.author);
            at = Some(m.parent).filter(|p| *p != [0; 32]);
        }
        if found && let Some(&(top, _)) = chain.last() {
            // `chain.last()` is the highest block with a majority above
            // it; finalise it and what lies below it, down to the last
            // final height.
            let mut at = chain.last().map(|c| c.1);
            let mut newly = Vec::new();
            while let Some(h) = at {
                let Some(m) = self.blocks.get(&h) else { break };
                if m.height <= self.finalized {
                    break;
                }
                newly.push((m.height, h));
                at = Some(m.parent).filter(|p| *p != [0; 32]);
            }
            newly.reverse();
            for (ht, h) in newly {
                self.final_chain.insert(ht, h);
                out.push(AuraOut::Final(ht, h));
            }
            self.finalized = top;
        }
        out
    }
}

/// An event of the Aura network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuraEvent {
    /// A slot begins at a validator.
    Slot(u32, u64),
    /// A message reaches a validator's input queue: (to, from, message).
    Arrive(u32, u32, AuraMsg),
    /// The validator's CPU is done checking the message: handle it.
    Handle(u32, u32, AuraMsg),
    /// Fault `i` starts or ends.
    Fault(usize, bool),
}

/// A network of Aura validators, each with one CPU: checking a block it
/// does not hold costs [`VERIFY_NS`] for its signature plus the payload's
/// [`AuraApp::cost_ns`].
#[derive(Debug)]
pub struct AuraNet<A: AuraApp = SyntheticPayloads> {
    nodes: Vec<AuraNode>,
    up: Vec<bool>,
    busy: Vec<SimTime>,
    net: Backhaul,
    faults: Vec<ValidatorFault>,
    app: A,
    /// Messages sent, over all validators.
    pub messages: u64,
    /// When each validator finalised each height.
    pub finals: Vec<BTreeMap<u64, (Hash, SimTime)>>,
    /// When each validator took in each block (for the finality check).
    pub arrivals: Vec<BTreeMap<Hash, SimTime>>,
}

/// The settings of an Aura network.
#[derive(Clone, Debug, PartialEq)]
pub struct AuraSettings {
    /// Slot length (the block interval).
    pub slot: SimDuration,
    /// The backhaul.
    pub net: NetSettings,
    /// Misbehaving validators (missing: correct).
    pub behaviour: BTreeMap<u32, AuraBehaviour>,
    /// Crashes and partitions.
    pub faults: Vec<ValidatorFault>,
}

impl AuraNet<SyntheticPayloads> {
    /// Runs `n` validators with synthetic payloads until `end`.
    pub fn run(
        n: u32,
        slot_len: SimDuration,
        net: NetSettings,
        behaviour: BTreeMap<u32, AuraBehaviour>,
        faults: Vec<ValidatorFault>,
        seed: u64,
        end: SimTime,
    ) -> AuraNet {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| key_for(seed, "validator", u64::from(i)))
            .collect();
        let s = AuraSettings {
            slot: slot_len,
            net,
            behaviour,
            faults,
        };
        let mut me = AuraNet::with_app(s, seed, &keys, SyntheticPayloads);
        let mut sim = Simulation::new();
        for (t, e) in me.start() {
            let _ = sim.schedule_at(t, e);
        }
        sim.run(
            &mut me,
            RunLimits {
                stop_at: end,
                max_events: None,
            },
            &mut (),
        );
        me
    }
}

impl<A: AuraApp> AuraNet<A> {
    /// Validators with these keys, carrying `app`'s payloads.
    pub fn with_app(s: AuraSettings, seed: u64, keys: &[SigningKey], app: A) -> AuraNet<A> {
        let n = keys.len();
        let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        AuraNet {
            nodes: keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let b = s
                        .behaviour
                        .get(&(i as u32))
                        .copied()
                        .unwrap_or(AuraBehaviour::Correct);
                    AuraNode::new(i as u32, k.clone(), vks.clone(), s.slot, b)
                })
                .collect(),
            up: vec![true; n],
            busy: vec![SimTime::ZERO; n],
            net: Backhaul::new(n, s.net, seed),
            faults: s.faults,
            app,
            messages: 0,
            finals: vec![BTreeMap::new(); n],
            arrivals: vec![BTreeMap::new(); n],
        }
    }

    /// The events that start the network: every validator's first slot,
    /// and the faults.
    pub fn start(&self) -> Vec<(SimTime, AuraEvent)> {
        let mut out: Vec<(SimTime, AuraEvent)> = (0..self.nodes.len() as u32)
            .map(|i| (SimTime::ZERO, AuraEvent::Slot(i, 0)))
            .collect();
        for (k, f) in self.faults.iter().enumerate() {
            let (at, until) = f.window();
            out.push((at, AuraEvent::Fault(k, true)));
            if let Some(u) = until {
                out.push((u, AuraEvent::Fault(k, false)));
            }
        }
        out
    }

    /// The validators.
    pub fn nodes(&self) -> &[AuraNode] {
        &self.nodes
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, to feed it.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    fn outs(&mut self, now: SimTime, from: u32, outs: Vec<AuraOut>) -> Vec<(SimTime, AuraEvent)> {
        let mut ev = Vec::new();
        for o in outs {
            match o {
                AuraOut::Send(to, m) => {
                    self.messages += 1;
                    if let Some(d) = self.net.delay(from as usize, to as usize) {
                        ev.push((now.saturating_add(d), AuraEvent::Arrive(to, from, m)));
                    }
                }
                AuraOut::Slot(at, s) => ev.push((at, AuraEvent::Slot(from, s))),
                AuraOut::Final(h, hash) => {
                    self.finals[from as usize].entry(h).or_insert((hash, now));
                    if let Some(p) = self.nodes[from as usize].payload(&hash) {
                        self.app.finalised(from, h, &p, now);
                    }
                }
            }
        }
        ev
    }

    /// Handles one event at `now`; returns the events it schedules.
    pub fn step(&mut self, now: SimTime, ev: AuraEvent) -> Vec<(SimTime, AuraEvent)> {
        self.app.clock(now);
        match ev {
            AuraEvent::Slot(i, s) => {
                if self.up[i as usize] {
                    let outs = self.nodes[i as usize].slot(now, s, &mut self.app);
                    self.outs(now, i, outs)
                } else {
                    // A crashed validator's clock still ticks.
                    let next = SimTime::from_nanos(
                        (s + 1).saturating_mul(self.nodes[i as usize].slot_len.as_nanos()),
                    );
                    vec![(next, AuraEvent::Slot(i, s + 1))]
                }
            }
            AuraEvent::Arrive(i, from, m) => {
                let k = i as usize;
                if !self.up[k] {
                    return Vec::new();
                }
                let cost = match &m {
                    AuraMsg::Block(b) if !self.nodes[k].has(&b.hash()) => {
                        VERIFY_NS + self.app.cost_ns(&b.payload)
                    }
                    _ => 0,
                };
                let done = now
                    .max(self.busy[k])
                    .saturating_add(SimDuration::from_nanos(cost));
                self.busy[k] = done;
                vec![(done, AuraEvent::Handle(i, from, m))]
            }
            AuraEvent::Handle(i, from, m) => {
                if !self.up[i as usize] {
                    return Vec::new();
                }
                if let AuraMsg::Block(b) = &m {
                    self.arrivals[i as usize].entry(b.hash()).or_insert(now);
                }
                let outs = self.nodes[i as usize].receive(now, from, m, &mut self.app);
                self.outs(now, i, outs)
            }
            AuraEvent::Fault(k, on) => {
                match self.faults.get(k).cloned() {
                    Some(ValidatorFault::Crash { node, .. }) => self.up[node as usize] = !on,
                    Some(ValidatorFault::Partition { groups, .. }) => {
                        self.net.partition(on.then_some(groups));
                    }
                    None => {}
                }
                Vec::new()
            }
        }
    }
}

impl<A: AuraApp> Handler for AuraNet<A> {
    type Event = AuraEvent;

    fn handle(&mut self, ev: AuraEvent, cx: &mut Context<'_, AuraEvent>) {
        for (t, e) in self.step(cx.now(), ev) {
            let _ = cx.schedule_at(t, e);
        }
    }
}
