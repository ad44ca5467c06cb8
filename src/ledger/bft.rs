//! Tendermint-style BFT consensus, one validator as a sans-IO state machine.
//!
//! It follows Algorithm 1 of Buchman, Kwon and Milosevic, "The latest
//! gossip on BFT consensus" (arXiv:1807.04938); the comments give its line
//! numbers. For `n` validators of equal power and `f = ⌊(n−1)/3⌋`:
//! - a round has a proposer, `(h + r) mod n`, then a prevote and a
//!   precommit step; a quorum is `⌊2n/3⌋ + 1` distinct validators;
//! - a validator locks on a value it precommits and prevotes for nothing
//!   else until a later round's quorum of prevotes unlocks it;
//! - a value is decided with a quorum of precommits for it in one round;
//! - timeouts grow each round (`base + r · delta`), and `f + 1` messages of
//!   a higher round make a validator jump to it;
//! - after deciding, the next height starts `commit` later (the block
//!   interval).
//!
//! Every message is signed (ed25519). Values are block hashes; the
//! [`App`] proposes and validates them, and verifies signatures (with a
//! cache shared by everyone: each signature is verified once). A validator
//! that hears of a height it has passed answers with a commit certificate
//! (the decided value and its quorum of precommits), which lets a validator
//! that fell behind (e.g. across a partition) catch up. Two different
//! signed votes of one validator for the same height, round and step are
//! equivocation: both are kept as evidence.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::tx::Hash;
use crate::kernel::{SimDuration, SimTime};

/// A round's step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted.
    Prevote,
    /// Precommitted.
    Precommit,
}

/// What a signed message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// The round's proposal, with the round in which it was last seen
    /// valid by the proposer.
    Proposal {
        /// The value.
        value: Hash,
        /// Its valid round.
        valid_round: Option<u32>,
    },
    /// A prevote (`None` is nil).
    Prevote(Option<Hash>),
    /// A precommit (`None` is nil).
    Precommit(Option<Hash>),
}

/// A signed consensus message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// Height.
    pub h: u64,
    /// Round.
    pub r: u32,
    /// Sender.
    pub from: u32,
    /// Content.
    pub kind: Kind,
    /// ed25519 signature of [`Signed::signing_bytes`].
    #[serde(with = "serde_big_array::BigArray")]
    pub sig: [u8; 64],
}

impl Signed {
    /// A message signed with `key`.
    pub fn new(h: u64, r: u32, from: u32, kind: Kind, key: &SigningKey) -> Signed {
        let mut m = Signed {
            h,
            r,
            from,
            kind,
            sig: [0; 64],
        };
        m.sig = key.sign(&m.signing_bytes()).to_bytes();
        m
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(&(
            super::tx::CHAIN_ID,
            b"bft",
            self.h,
            self.r,
            self.from,
            self.kind,
        ))
        .expect("messages serialise")
    }
}

/// A decided value with its quorum of precommits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Height.
    pub h: u64,
    /// The decided value.
    pub value: Hash,
    /// The precommits for it, one round.
    pub precommits: Vec<Signed>,
}

/// A message between validators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// A proposal or vote.
    Vote(Signed),
    /// A commit certificate for a validator that fell behind.
    Commit(Commit),
}

impl Msg {
    /// Its size on the wire [bytes] (postcard).
    pub fn size(&self) -> usize {
        postcard::to_stdvec(self).map_or(0, |v| v.len())
    }
}

/// The application under consensus.
pub trait App {
    /// A value to propose at height `h` (validator `who`; `variant`
    /// distinguishes the extra values an equivocating proposer makes).
    fn propose(&mut self, who: u32, h: u64, variant: u32) -> Hash;
    /// Whether `v` is a valid value at height `h`.
    fn valid(&mut self, h: u64, v: &Hash) -> bool;
    /// Whether the message's signature is its sender's (cached by the
    /// caller: each signature is verified once).
    fn verify(&mut self, m: &Signed) -> bool;
    /// The simulated time, before the calls of one step.
    fn clock(&mut self, _now: SimTime) {}
    /// CPU time to check a proposed value, beyond the message's signature
    /// [ns] (e.g. a block's transactions).
    fn value_cost_ns(&mut self, _v: &Hash) -> u64 {
        0
    }
    /// Validator `who` decided `v` at height `h` at `now`.
    fn decided(&mut self, _who: u32, _h: u64, _v: &Hash, _now: SimTime) {}
    /// Whether transactions wait to be ordered (a validator that waits for
    /// transactions starts a height only then).
    fn pending(&mut self) -> bool {
        true
    }
}

/// Timeouts: `base + r · delta` for round `r`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Propose timeout base.
    pub propose: SimDuration,
    /// Prevote timeout base.
    pub prevote: SimDuration,
    /// Precommit timeout base.
    pub precommit: SimDuration,
    /// Growth per round, for each.
    pub delta: SimDuration,
    /// From a decision to the next height's round 0 (the block interval).
    pub commit: SimDuration,
    /// While a height is undecided, a validator sends its own messages of
    /// that height again this often (peers that missed them, e.g. across
    /// a partition, get them; the others drop the copies).
    pub rebroadcast: SimDuration,
}

impl Default for Timing {
    /// 1 s, 500 ms, 500 ms, growing by 500 ms a round; a new height 2 s
    /// after each decision.
    fn default() -> Self {
        let ms = |x: u64| SimDuration::from_nanos(x * 1_000_000);
        Timing {
            propose: ms(1000),
            prevote: ms(500),
            precommit: ms(500),
            delta: ms(500),
            commit: ms(2000),
            rebroadcast: ms(1000),
        }
    }
}

impl Timing {
    fn of(&self, base: SimDuration, r: u32) -> SimDuration {
        SimDuration::from_nanos(
            base.as_nanos()
                .saturating_add(self.delta.as_nanos().saturating_mul(u64::from(r))),
        )
    }
}

/// How a validator behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// By the protocol.
    Correct,
    /// Sends nothing.
    Silent,
    /// Proposes two values and votes for both, each to half of the others.
    Equivocate,
}

/// What a validator asks of its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// Send to one validator.
    Send(u32, Msg),
    /// Call [`Node::timeout`] at this time.
    Timeout(SimTime, u64, u32, Step),
    /// Call [`Node::start_height`] at this time (after a decision).
    NextHeight(SimTime, u64),
    /// Call [`Node::rebroadcast`] at this time.
    Rebroadcast(SimTime, u64),
    /// Decided `value` at height `h` in round `r`.
    Decide(u64, Hash, u32),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages refused (bad signature, wrong proposer, unknown sender).
    pub refused: u64,
    /// Rounds started.
    pub rounds: u64,
}

/// One validator.
#[derive(Debug)]
pub struct Node {
    id: u32,
    n: u32,
    key: SigningKey,
    timing: Timing,
    behaviour: Behaviour,
    h: u64,
    round: u32,
    step: Step,
    /// Waiting for the next height after a decision.
    between: bool,
    locked: Option<(Hash, u32)>,
    valid: Option<(Hash, u32)>,
    proposals: BTreeMap<u32, (Hash, Option<u32>)>,
    /// The signed proposal of each round (for evidence).
    proposal_msgs: BTreeMap<u32, Signed>,
    /// Signatures of every vote seen (each is handled and passed on once).
    seen: BTreeSet<[u8; 64]>,
    gossip: bool,
    /// Votes by round and validator: an equivocator's conflicting votes
    /// are all kept (a value's count includes every validator with a
    /// signed vote for it, as Tendermint's vote sets do for a claimed
    /// majority; with at most f such validators quorums still intersect in
    /// a correct one).
    prevotes: BTreeMap<u32, BTreeMap<u32, Vec<Signed>>>,
    precommits: BTreeMap<u32, BTreeMap<u32, Vec<Signed>>>,
    /// Senders heard from, per round (rule 55).
    heard: BTreeMap<u32, BTreeSet<u32>>,
    fired: BTreeSet<(u32, u8)>,
    future: BTreeMap<u64, Vec<Signed>>,
    commits: BTreeMap<u64, Commit>,
    decided: Vec<(u64, Hash)>,
    evidence: Vec<(Signed, Signed)>,
    helped: BTreeSet<(u64, u32)>,
    /// Its own messages of the current height.
    mine: Vec<Signed>,
    stats: NodeStats,
}

impl Node {
    /// Validator `id` of `n`, before height 1.
    pub fn new(id: u32, n: u32, key: SigningKey, timing: Timing, behaviour: Behaviour) -> Node {
        Node {
            id,
            n,
            key,
            timing,
            behaviour,
            h: 0,
            round: 0,
            step: Step::Propose,
            between: true,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            proposal_msgs: BTreeMap::new(),
            seen: BTreeSet::new(),
            gossip: true,
            prevotes: BTreeMap::new(),
            precommits: BTreeMap::new(),
            heard: BTreeMap::new(),
            fired: BTreeSet::new(),
            future: BTreeMap::new(),
            commits: BTreeMap::new(),
            decided: Vec::new(),
            evidence: Vec::new(),
            helped: BTreeSet::new(),
            mine: Vec::new(),
            stats: NodeStats::default(),
        }
    }

    /// Its id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Turns vote gossip off (on by default): every message then goes
    /// only from its signer to each validator.
    pub fn without_gossip(mut self) -> Node {
        self.gossip = false;
        self
    }

    /// Whether it has handled this message already (a relayed copy costs
    /// only a lookup).
    pub fn knows(&self, m: &Signed) -> bool {
        self.seen.contains(&m.sig)
    }

    /// Its behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// The height it works on.
    pub fn height(&self) -> u64 {
        self.h
    }

    /// Its round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Every decision: (height, value), in order.
    pub fn decided(&self) -> &[(u64, Hash)] {
        &self.decided
    }

    /// Equivocation evidence it has seen.
    pub fn evidence(&self) -> &[(Signed, Signed)] {
        &self.evidence
    }

    /// Counters so far.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    fn quorum(&self) -> usize {
        (2 * self.n as usize) / 3 + 1
    }

    fn weak(&self) -> usize {
        (self.n as usize - 1) / 3 + 1
    }

    /// The proposer of a height and round.
    pub fn proposer(n: u32, h: u64, r: u32) -> u32 {
        ((h + u64::from(r)) % u64::from(n)) as u32
    }

    fn send_all(&mut self, m: &Signed, out: &mut Vec<Out>) {
        for to in 0..self.n {
            if to != self.id {
                self.stats.sent += 1;
                out.push(Out::Send(to, Msg::Vote(m.clone())));
            }
        }
    }

    /// Signs and broadcasts a message, recording it as received from
    /// itself. An equivocator sends `kind` to even ids and `alt` to odd
    /// ones.
    fn broadcast(&mut self, kind: Kind, alt: Option<Kind>, out: &mut Vec<Out>) {
        if self.behaviour == Behaviour::Silent {
            return;
        }
        let m = Signed::new(self.h, self.round, self.id, kind, &self.key);
        match (self.behaviour, alt) {
            (Behaviour::Equivocate, Some(alt)) if alt != kind => {
                let m2 = Signed::new(self.h, self.round, self.id, alt, &self.key);
                for to in 0..self.n {
                    if to != self.id {
                        self.stats.sent += 1;
                        let pick = if to % 2 == 0 { &m } else { &m2 };
                        out.push(Out::Send(to, Msg::Vote(pick.clone())));
                    }
                }
            }
            _ => self.send_all(&m, out),
        }
        self.mine.push(m.clone());
        self.record(m);
    }

    /// The last height decided (0 for none).
    pub fn last_decided(&self) -> u64 {
        self.decided.last().map_or(0, |d| d.0)
    }

    /// Restarts after a crash at `now`: the round state is lost; it starts
    /// the height after its last decision afresh (peers' commit
    /// certificates catch it up if the others went on).
    pub fn restart(&mut self, now: SimTime, app: &mut dyn App) -> Vec<Out> {
        self.between = true;
        self.future.clear();
        let h = self.last_decided() + 1;
        self.start_height(now, h, app)
    }

    /// Starts height `h` at `now` (round 0). Heights already decided, or
    /// not next, are ignored.
    pub fn start_height(&mut self, now: SimTime, h: u64, app: &mut dyn App) -> Vec<Out> {
        let mut out = Vec::new();
        if h != self.last_decided() + 1 || (!self.between && h <= self.h) {
            return out;
        }
        self.h = h;
        self.between = false;
        self.locked = None;
        self.valid = None;
        self.proposals.clear();
        self.proposal_msgs.clear();
        self.seen.clear();
        self.prevotes.clear();
        self.precommits.clear();
        self.heard.clear();
        self.fired.clear();
        self.mine.clear();
        out.push(Out::Rebroadcast(
            now.saturating_add(self.timing.rebroadcast),
            h,
        ));
        self.start_round(now, 0, app, &mut out);
        // Messages that came early.
        if let Some(early) = self.future.remove(&h) {
            for m in early {
                self.record(m);
            }
        }
        self.future = self.future.split_off(&h);
        self.progress(now, app, &mut out);
        out
    }

    /// StartRound (lines 11–21).
    fn start_round(&mut self, now: SimTime, r: u32, app: &mut dyn App, out: &mut Vec<Out>) {
        self.round = r;
        self.step = Step::Propose;
        self.stats.rounds += 1;
        if Node::proposer(self.n, self.h, r) == self.id {
            let (value, vr) = match self.valid {
                Some((v, vr)) => (v, Some(vr)),
                None => (app.propose(self.id, self.h, 0), None),
            };
            let alt = (self.behaviour == Behaviour::Equivocate).then(|| Kind::Proposal {
                value: app.propose(self.id, self.h, 1),
                valid_round: None,
            });
            self.broadcast(
                Kind::Proposal {
                    value,
                    valid_round: vr,
                },
                alt,
                out,
            );
        }
        out.push(Out::Timeout(
            now.saturating_add(self.timing.of(self.timing.propose, r)),
            self.h,
            r,
            Step::Propose,
        ));
    }

    /// Records a message of the current height (no rules run).
    fn record(&mut self, m: Signed) {
        self.heard.entry(m.r).or_default().insert(m.from);
        match m.kind {
            Kind::Proposal { value, valid_round } => {
                if Node::proposer(self.n, m.h, m.r) != m.from {
                    return;
                }
                match self.proposal_msgs.get(&m.r) {
                    None => {
                        self.proposals.insert(m.r, (value, valid_round));
                        self.proposal_msgs.insert(m.r, m);
                    }
                    Some(first) if first.kind != m.kind => {
                        self.evidence.push((first.clone(), m));
                    }
                    Some(_) => {}
                }
            }
            Kind::Prevote(_) | Kind::Precommit(_) => {
                let book = if matches!(m.kind, Kind::Prevote(_)) {
                    &mut self.prevotes
                } else {
                    &mut self.precommits
                };
                let votes = book.entry(m.r).or_default().entry(m.from).or_default();
                match votes.first() {
                    None => votes.push(m),
                    Some(first) if !votes.iter().any(|v| v.kind == m.kind) => {
                        self.evidence.push((first.clone(), m.clone()));
                        votes.push(m);
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// A message from another validator arrives.
    pub fn receive(&mut self, now: SimTime, msg: Msg, app: &mut dyn App) -> Vec<Out> {
        let mut out = Vec::new();
        match msg {
            Msg::Commit(c) => self.on_commit(now, c, app, &mut out),
            Msg::Vote(m) => {
                if m.from >= self.n || !app.verify(&m) {
                    self.stats.refused += 1;
                    return out;
                }
                if !self.seen.insert(m.sig) {
                    return out;
                }
                // Gossip: pass a message on once, to everyone but its
                // signer, so that what one validator hears all do.
                if self.gossip && self.behaviour == Behaviour::Correct && m.h >= self.h {
                    for to in 0..self.n {
                        if to != self.id && to != m.from {
                            self.stats.sent += 1;
                            out.push(Out::Send(to, Msg::Vote(m.clone())));
                        }
                    }
                }
                if m.h < self.h || (m.h == self.h && self.between) {
                    // It is behind: send it the commits from its height
                    // on (up to 100), once per height.
                    if self.behaviour == Behaviour::Correct && self.helped.insert((m.h, m.from)) {
                        for (_, c) in self.commits.range(m.h..m.h.saturating_add(100)) {
                            self.stats.sent += 1;
                            out.push(Out::Send(m.from, Msg::Commit(c.clone())));
                        }
                    }
                    return out;
                }
                if m.h > self.h {
                    self.future.entry(m.h).or_default().push(m);
                    return out;
                }
                self.record(m);
                self.progress(now, app, &mut out);
            }
        }
        out
    }

    fn on_commit(&mut self, now: SimTime, c: Commit, app: &mut dyn App, out: &mut Vec<Out>) {
        if c.h < self.h || (c.h == self.h && self.between) {
            return;
        }
        let mut from = BTreeSet::new();
        for p in &c.precommits {
            if p.h == c.h
                && p.kind == Kind::Precommit(Some(c.value))
                && p.from < self.n
                && app.verify(p)
            {
                from.insert(p.from);
            }
        }
        if from.len() < self.quorum() || !app.valid(c.h, &c.value) {
            self.stats.refused += 1;
            return;
        }
        // Catch up: decide it, and move to the next height at once.
        if c.h != self.last_decided() + 1 {
            return;
        }
        self.h = c.h;
        let round = c.precommits.first().map_or(0, |p| p.r);
        self.decide(now, c.value, round, c.precommits, SimDuration::ZERO, out);
    }

    /// Validators with a vote for `want` (`None`: any vote).
    fn count(votes: Option<&BTreeMap<u32, Vec<Signed>>>, want: Option<Option<Hash>>) -> usize {
        votes.map_or(0, |v| {
            v.values()
                .filter(|ms| {
                    ms.iter().any(|m| match (want, m.kind) {
                        (None, _) => true,
                        (Some(w), Kind::Prevote(x) | Kind::Precommit(x)) => x == w,
                        _ => false,
                    })
                })
                .count()
        })
    }

    fn first_time(&mut self, r: u32, rule: u8) -> bool {
        self.fired.insert((r, rule))
    }

    fn decide(
        &mut self,
        now: SimTime,
        v: Hash,
        r: u32,
        precommits: Vec<Signed>,
        wait: SimDuration,
        out: &mut Vec<Out>,
    ) {
        let h = self.h;
        self.decided.push((h, v));
        self.commits.insert(
            h,
            Commit {
                h,
                value: v,
                precommits,
            },
        );
        out.push(Out::Decide(h, v, r));
        self.between = true;
        out.push(Out::NextHeight(now.saturating_add(wait), h + 1));
    }

    /// Runs the `upon` rules until none fires.
    fn progress(&mut self, now: SimTime, app: &mut dyn App, out: &mut Vec<Out>) {
        let q = self.quorum();
        loop {
            if self.between {
                return;
            }
            let r = self.round;
            // Line 49: decide, in any round.
            let rounds: Vec<u32> = self.precommits.keys().copied().collect();
            let mut decided = false;
            for pr in rounds {
                if let Some(&(v, _)) = self.proposals.get(&pr)
                    && Node::count(self.precommits.get(&pr), Some(Some(v))) >= q
                    && app.valid(self.h, &v)
                {
                    let pcs: Vec<Signed> = self.precommits[&pr]
                        .values()
                        .filter_map(|ms| ms.iter().find(|m| m.kind == Kind::Precommit(Some(v))))
                        .cloned()
                        .collect();
                    let wait = self.timing.commit;
                    self.decide(now, v, pr, pcs, wait, out);
                    decided = true;
                    break;
                }
            }
            if decided {
                return;
            }
            // Line 55: f + 1 messages of a higher round.
            if let Some(&hr) = self
                .heard
                .iter()
                .filter(|(hr, s)| **hr > r && s.len() >= self.weak())
                .map(|(hr, _)| hr)
                .next_back()
            {
                self.start_round(now, hr, app, out);
                continue;
            }
            let proposal = self.proposals.get(&r).copied();
            if self.step == Step::Propose
                && let Some((v, vr)) = proposal
            {
                match vr {
                    // Line 22.
                    None => {
                        let ok = app.valid(self.h, &v) && self.locked.is_none_or(|(lv, _)| lv == v);
                        self.prevote(ok.then_some(v), Some(v), out);
                        continue;
                    }
                    // Line 28.
                    Some(vr)
                        if vr < r && Node::count(self.prevotes.get(&vr), Some(Some(v))) >= q =>
                    {
                        let ok = app.valid(self.h, &v)
                            && self.locked.is_none_or(|(lv, lr)| lr <= vr || lv == v);
                        self.prevote(ok.then_some(v), Some(v), out);
                        continue;
                    }
                    _ => {}
                }
            }
            // Line 34.
            if self.step == Step::Prevote
                && Node::count(self.prevotes.get(&r), None) >= q
                && self.first_time(r, 34)
            {
                out.push(Out::Timeout(
                    now.saturating_add(self.timing.of(self.timing.prevote, r)),
                    self.h,
                    r,
                    Step::Prevote,
                ));
            }
            // Line 36.
            if self.step >= Step::Prevote
                && let Some((v, _)) = proposal
                && Node::count(self.prevotes.get(&r), Some(Some(v))) >= q
                && !self.fired.contains(&(r, 36))
                && app.valid(self.h, &v)
            {
                self.fired.insert((r, 36));
                if self.step == Step::Prevote {
                    self.locked = Some((v, r));
                    self.precommit(Some(v), out);
                }
                self.valid = Some((v, r));
                continue;
            }
            // Line 44.
            if self.step == Step::Prevote && Node::count(self.prevotes.get(&r), Some(None)) >= q {
                self.precommit(None, out);
                continue;
            }
            // Line 47.
            if Node::count(self.precommits.get(&r), None) >= q && self.first_time(r, 47) {
                out.push(Out::Timeout(
                    now.saturating_add(self.timing.of(self.timing.precommit, r)),
                    self.h,
                    r,
                    Step::Precommit,
                ));
            }
            return;
        }
    }

    fn prevote(&mut self, v: Option<Hash>, alt_value: Option<Hash>, out: &mut Vec<Out>) {
        self.step = Step::Prevote;
        let alt = self.equivocal(v, alt_value).map(Kind::Prevote);
        self.broadcast(Kind::Prevote(v), alt, out);
    }

    fn precommit(&mut self, v: Option<Hash>, out: &mut Vec<Out>) {
        self.step = Step::Precommit;
        let alt = self.equivocal(v, None).map(Kind::Precommit);
        self.broadcast(Kind::Precommit(v), alt, out);
    }

    /// What an equivocator tells the other half: the other proposal it
    /// made, or nil.
    fn equivocal(&self, v: Option<Hash>, seen: Option<Hash>) -> Option<Option<Hash>> {
        if self.behaviour != Behaviour::Equivocate {
            return None;
        }
        Some(match (v, seen) {
            (Some(_), _) => None,
            (None, s) => s,
        })
    }

    /// Sends its own messages of height `h` again, if `h` is still
    /// undecided, and asks to be called again.
    pub fn rebroadcast(&mut self, now: SimTime, h: u64) -> Vec<Out> {
        let mut out = Vec::new();
        if h != self.h || self.between || self.behaviour == Behaviour::Silent {
            return out;
        }
        for m in self.mine.clone() {
            self.send_all(&m, &mut out);
        }
        out.push(Out::Rebroadcast(
            now.saturating_add(self.timing.rebroadcast),
            h,
        ));
        out
    }

    /// A timeout scheduled by [`Out::Timeout`] (lines 57–66).
    pub fn timeout(
        &mut self,
        now: SimTime,
        h: u64,
        r: u32,
        step: Step,
        app: &mut dyn App,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        if h != self.h || r != self.round || self.between {
            return out;
        }
        match step {
            Step::Propose if self.step == Step::Propose => self.prevote(None, None, &mut out),
            Step::Prevote if self.step == Step::Prevote => self.precommit(None, &mut out),
            Step::Precommit => self.start_round(now, r + 1, app, &mut out),
            _ => return out,
        }
        self.progress(now, app, &mut out);
        out
    }
}
