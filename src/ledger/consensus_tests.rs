//! BFT consensus: timing against its closed form, safety under Byzantine
//! validators over hundreds of seeds, liveness after a partition heals,
//! crash recovery and equivocation evidence.

use std::collections::BTreeMap;

use super::bft::{Behaviour, Node, Timing};
use super::consensus::{BftNet, ConsensusSettings};
use super::crypto::VERIFY_NS;
use super::net::NetSettings;
use super::net::ValidatorFault;
use crate::kernel::{SimDuration, SimTime};

fn ms(x: u64) -> SimDuration {
    SimDuration::from_nanos(x * 1_000_000)
}

fn at_s(x: u64) -> SimTime {
    SimTime::from_nanos(x * 1_000_000_000)
}

fn settings(n: u32) -> ConsensusSettings {
    ConsensusSettings {
        n,
        timing: Timing::default(),
        net: NetSettings {
            latency: ms(20),
            jitter: SimDuration::ZERO,
            loss: 0.0,
        },
        behaviour: BTreeMap::new(),
        delay: BTreeMap::new(),
        faults: Vec::new(),
        gossip: true,
        wait_for_txs: None,
    }
}

fn everyone(n: u32) -> Vec<u32> {
    (0..n).collect()
}

/// Analytical check: with no faults and a fixed delay δ, every validator
/// decides each height 3δ + 2(q − 1)·c after its proposer started round 0
/// (see `consensus.rs` for the derivation). Tolerance 1 %.
#[test]
fn bft_commit_latency_matches_its_closed_form() {
    for n in [4u32, 7, 10] {
        let net = BftNet::run(settings(n), 1, at_s(30));
        let rec = net.record();
        let q = (2 * n as u64) / 3 + 1;
        let want = 3.0 * 0.020 + 2.0 * (q - 1) as f64 * VERIFY_NS as f64 * 1e-9;
        let heights = rec.common_height(&everyone(n));
        // A height every 2 s of block interval plus its commit latency.
        assert!(heights >= 13, "n = {n}: {heights} heights");
        for h in 1..=heights {
            let start = rec.height_start[&h];
            for d in &rec.decisions {
                let (_, round, t) = d[&h];
                assert_eq!(round, 0);
                let got = t.saturating_since(start).as_secs_f64();
                assert!(
                    (got - want).abs() <= 0.01 * want,
                    "n = {n}, h = {h}: {got} s, closed form {want} s"
                );
            }
        }
        // Messages per block: the proposer signs 3 messages and the others
        // 2 each (2n + 1); each goes to n − 1 peers, and each of them
        // relays it once to the n − 2 others: (2n + 1)(n − 1)².
        let per = rec.messages as f64 / heights as f64;
        let nn = f64::from(n);
        let expect = (2.0 * nn + 1.0) * (nn - 1.0) * (nn - 1.0);
        assert!(
            (per - expect).abs() <= 0.1 * expect,
            "n = {n}: {per} vs {expect}"
        );
    }
}

/// Safety: with f < n/3 Byzantine validators (equivocating, silent or
/// delaying) and a lossy, jittery backhaul, no two correct validators ever
/// decide different values at one height. Hundreds of seeds.
#[test]
fn bft_is_safe_with_fewer_than_a_third_byzantine_over_hundreds_of_seeds() {
    let mut runs = 0;
    let mut decided = 0u64;
    let mut evidence = 0usize;
    for n in [4u32, 7, 10] {
        let f = (n - 1) / 3;
        for seed in 0..100u64 {
            let mut s = settings(n);
            s.net = NetSettings {
                latency: ms(10 + seed % 30),
                jitter: ms(seed % 40),
                loss: (seed % 5) as f64 * 0.01,
            };
            // f Byzantine validators, behaviours in turn, at seed-chosen
            // places.
            let mut bad = Vec::new();
            for k in 0..f {
                let who = ((seed + u64::from(k) * 3) % u64::from(n)) as u32;
                if bad.contains(&who) {
                    continue;
                }
                bad.push(who);
                match (seed + u64::from(k)) % 3 {
                    0 => {
                        s.behaviour.insert(who, Behaviour::Equivocate);
                    }
                    1 => {
                        s.behaviour.insert(who, Behaviour::Silent);
                    }
                    _ => {
                        s.delay.insert(who, ms(1500));
                    }
                }
            }
            let net = BftNet::run(s, seed, at_s(15));
            let correct: Vec<u32> = (0..n).filter(|i| !bad.contains(i)).collect();
            let rec = net.record();
            assert!(
                rec.conflicts(&correct).is_empty(),
                "n = {n}, seed {seed}: conflicting decisions at {:?}",
                rec.conflicts(&correct)
            );
            decided += rec.common_height(&correct);
            evidence += rec.evidence.len();
            // Evidence only ever names a Byzantine validator.
            for (who, _, _) in &rec.evidence {
                assert!(
                    bad.contains(who),
                    "n = {n}, seed {seed}: evidence against {who}"
                );
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 300);
    // And it was live: on average several heights per 15 s run.
    assert!(decided as f64 / 300.0 > 3.0, "{decided}");
    assert!(evidence > 0);
}

/// Liveness: a partition that leaves no side a quorum stops every decision;
/// once it heals, a new height is final within
/// `B = Σ_{k=1}^{2} (tp(R+k) + tv(R+k) + tc(R+k)) + 4δ`, R being the highest
/// round reached before the heal: the validators behind reach round R + 1
/// on f + 1 messages of it by the time the leaders' round R times out, and
/// a round in which all are together decides (all proposers are correct
/// here).
#[test]
fn bft_decides_within_its_bound_after_a_partition_heals() {
    let n = 7;
    let heal = at_s(40);
    let mut s = settings(n);
    s.net.jitter = ms(10);
    s.faults.push(ValidatorFault::Partition {
        groups: vec![0, 0, 0, 0, 1, 1, 1],
        at: at_s(5),
        until: Some(heal),
    });
    let before = BftNet::run(s.clone(), 3, heal);
    let h0 = before.record().common_height(&everyone(n));
    let max_h = before.nodes().iter().map(Node::height).max().unwrap();
    // Nobody decided during the partition (4 and 3 are both short of 5).
    assert_eq!(
        before.nodes().iter().map(Node::last_decided).max().unwrap(),
        h0
    );
    let r = before
        .nodes()
        .iter()
        .filter(|x| x.height() == max_h)
        .map(Node::round)
        .max()
        .unwrap();
    let t = Timing::default();
    let of = |base: SimDuration, r: u32| base.as_secs_f64() + t.delta.as_secs_f64() * f64::from(r);
    let round = |r: u32| of(t.propose, r) + of(t.prevote, r) + of(t.precommit, r);
    let bound = round(r + 1) + round(r + 2) + 4.0 * 0.030;
    let after = BftNet::run(s, 3, at_s(40 + bound.ceil() as u64 + 5));
    let first = after
        .record()
        .decisions
        .iter()
        .filter_map(|d| d.get(&(h0 + 1)).map(|x| x.2))
        .min()
        .expect("a new height after the heal");
    let took = first.saturating_since(heal).as_secs_f64();
    assert!(
        took <= bound,
        "decided {took} s after the heal; bound {bound} s (R = {r})"
    );
    assert!(after.record().conflicts(&everyone(n)).is_empty());
}

/// A minority cut off falls behind while the majority goes on; after the
/// heal it catches up from the others' commit certificates.
#[test]
fn bft_a_minority_catches_up_after_a_partition() {
    let n = 7;
    let mut s = settings(n);
    s.faults.push(ValidatorFault::Partition {
        groups: vec![0, 0, 0, 0, 0, 1, 1],
        at: at_s(5),
        until: Some(at_s(35)),
    });
    let net = BftNet::run(s, 4, at_s(45));
    let rec = net.record();
    let majority = rec.common_height(&[0, 1, 2, 3, 4]);
    assert!(majority >= 15, "{majority}");
    assert!(rec.common_height(&[5, 6]) >= majority - 1);
    assert!(rec.conflicts(&everyone(n)).is_empty());
}

/// Crash faults: with one validator of four down for 20 s, the others keep
/// deciding (its turns as proposer time out), and once back it catches up.
#[test]
fn bft_rides_out_a_crash_and_the_validator_catches_up() {
    let n = 4;
    let mut s = settings(n);
    s.faults.push(ValidatorFault::Crash {
        node: 2,
        at: at_s(5),
        until: Some(at_s(25)),
    });
    let net = BftNet::run(s, 5, at_s(40));
    let rec = net.record();
    let live = rec.common_height(&[0, 1, 3]);
    assert!(live >= 12, "{live}");
    assert!(rec.common_height(&[2]) >= live - 1);
    assert!(rec.conflicts(&everyone(n)).is_empty());
    // Some heights needed a second round (validator 2's turn to propose).
    assert!(rec.decisions[0].values().any(|(_, r, _)| *r > 0));
}

/// An equivocating validator (two proposals, conflicting votes) leaves
/// evidence naming it, and the others stay in agreement.
#[test]
fn bft_equivocation_is_recorded_as_evidence() {
    let n = 4;
    let mut s = settings(n);
    s.behaviour.insert(1, Behaviour::Equivocate);
    let net = BftNet::run(s, 6, at_s(20));
    let rec = net.record();
    assert!(
        rec.evidence.iter().any(|(who, _, _)| *who == 1),
        "{:?}",
        rec.evidence
    );
    assert!(rec.evidence.iter().all(|(who, _, _)| *who == 1));
    assert!(rec.conflicts(&[0, 2, 3]).is_empty());
    assert!(rec.common_height(&[0, 2, 3]) >= 5);
}
