//! Aura: the finality rule exactly, safety and progress under crashes and
//! partitions, and the documented limit under equivocation.

use std::collections::BTreeMap;

use super::aura::{AuraBehaviour, AuraNet};
use super::net::{BRIDGE, NetSettings, ValidatorFault};
use crate::kernel::{SimDuration, SimTime};

fn ms(x: u64) -> SimDuration {
    SimDuration::from_nanos(x * 1_000_000)
}

fn at_s(x: u64) -> SimTime {
    SimTime::from_nanos(x * 1_000_000_000)
}

fn fixed() -> NetSettings {
    NetSettings {
        latency: ms(20),
        jitter: SimDuration::ZERO,
        loss: 0.0,
    }
}

/// Every final chain agrees with every other on the heights they share.
fn agree(net: &AuraNet, who: &[usize]) -> bool {
    let mut by_h = BTreeMap::new();
    for &w in who {
        for (h, (hash, _)) in &net.finals[w] {
            if *by_h.entry(*h).or_insert(*hash) != *hash {
                return false;
            }
        }
    }
    true
}

/// With no faults, a block becomes final at a validator exactly when the
/// block that gives it more than n/2 distinct authors above it arrives
/// there: with round-robin leaders, the block ⌊n/2⌋ + 1 heights higher.
#[test]
fn aura_finality_comes_exactly_with_a_majority_of_authors_above() {
    for n in [4u32, 5, 7] {
        let net = AuraNet::run(
            n,
            ms(2000),
            fixed(),
            BTreeMap::new(),
            Vec::new(),
            1,
            at_s(60),
        );
        let need = u64::from(n / 2 + 1);
        for v in 0..n as usize {
            let finals = &net.finals[v];
            let chain = net.nodes()[v].final_chain();
            assert!(finals.len() >= 20, "n = {n}: {} final", finals.len());
            for (&h, &(_, t)) in finals {
                // The block at h + need on this validator's chain (final
                // by now, or its best chain's) arrived at t (or was made
                // there at t, by its author).
                let Some(above) = chain.get(&(h + need)) else {
                    continue;
                };
                let arrived = net.arrivals[v].get(above).copied();
                let made = SimTime::from_nanos((h + need - 1) * 2_000_000_000);
                assert_eq!(
                    t,
                    arrived.unwrap_or(made),
                    "n = {n}, validator {v}, h = {h}"
                );
            }
        }
        assert!(agree(&net, &(0..n as usize).collect::<Vec<_>>()));
    }
}

/// Crash faults: with fewer than half the validators down, blocks keep
/// becoming final, and every final chain agrees; the crashed validator
/// syncs the blocks it missed when it is back.
#[test]
fn aura_is_safe_and_live_under_crash_faults() {
    for seed in 0..20u64 {
        let n = 5;
        let faults = vec![
            ValidatorFault::Crash {
                node: (seed % 5) as u32,
                at: at_s(10),
                until: Some(at_s(40)),
            },
            ValidatorFault::Crash {
                node: ((seed + 2) % 5) as u32,
                at: at_s(20),
                until: None,
            },
        ];
        let net_s = NetSettings {
            latency: ms(20),
            jitter: ms(30),
            loss: 0.01,
        };
        let net = AuraNet::run(n, ms(2000), net_s, BTreeMap::new(), faults, seed, at_s(90));
        let all: Vec<usize> = (0..5).collect();
        assert!(agree(&net, &all), "seed {seed}");
        let alive = ((seed + 4) % 5) as usize;
        assert!(
            net.finals[alive].len() >= 25,
            "seed {seed}: {}",
            net.finals[alive].len()
        );
        let back = (seed % 5) as usize;
        let last = |v: usize| net.finals[v].keys().next_back().copied().unwrap_or(0);
        assert!(
            last(back) + 3 >= last(alive),
            "seed {seed}: {} vs {}",
            last(back),
            last(alive)
        );
    }
}

/// A partition: only the side with more than n/2 validators can finalise;
/// after the heal the minority's fork is abandoned and everyone agrees.
#[test]
fn aura_partitions_finalise_only_on_the_majority_side() {
    let n = 5;
    let faults = vec![ValidatorFault::Partition {
        groups: vec![0, 0, 0, 1, 1],
        at: at_s(10),
        until: Some(at_s(50)),
    }];
    let during = AuraNet::run(
        n,
        ms(2000),
        fixed(),
        BTreeMap::new(),
        faults.clone(),
        2,
        at_s(49),
    );
    let minority_final = during.finals[3].keys().next_back().copied().unwrap_or(0);
    let majority_final = during.finals[0].keys().next_back().copied().unwrap_or(0);
    assert!(
        majority_final > minority_final + 5,
        "{majority_final} vs {minority_final}"
    );
    let after = AuraNet::run(n, ms(2000), fixed(), BTreeMap::new(), faults, 2, at_s(80));
    assert!(agree(&after, &(0..5).collect::<Vec<_>>()));
    let last = |v: usize| after.finals[v].keys().next_back().copied().unwrap_or(0);
    assert!(last(3) + 3 >= last(0), "{} vs {}", last(3), last(0));
}

/// The documented limit: Aura's n/2 finality is not Byzantine-safe. A
/// partition splits the honest validators {1, 2} | {3, 4}; the equivocating
/// validator 0 reaches both sides and signs a different block for each in
/// its slots. Each side then has three distinct authors (0 and its own
/// two), more than n/2 = 2.5, and the two sides finalise conflicting
/// blocks at the same heights. (BFT, with its 2/3 quorums, does not: see
/// `consensus_tests`.)
#[test]
fn aura_is_not_safe_under_equivocation() {
    let n = 5;
    let mut behaviour = BTreeMap::new();
    behaviour.insert(0, AuraBehaviour::Equivocate);
    let faults = vec![ValidatorFault::Partition {
        groups: vec![BRIDGE, 0, 0, 1, 1],
        at: SimTime::ZERO,
        until: None,
    }];
    let net = AuraNet::run(n, ms(2000), fixed(), behaviour, faults, 3, at_s(60));
    let honest: Vec<usize> = (1..5).collect();
    assert!(!agree(&net, &honest), "no conflicting finals");
    // Each side on its own agrees, and finalises.
    assert!(agree(&net, &[1, 2]) && agree(&net, &[3, 4]));
    assert!(net.finals[1].len() >= 5 && net.finals[3].len() >= 5);
    // Without the equivocator's help neither side could: the same split
    // with an honest validator 0 finalises on one side at most.
    let net = AuraNet::run(
        n,
        ms(2000),
        fixed(),
        BTreeMap::new(),
        vec![ValidatorFault::Partition {
            groups: vec![BRIDGE, 0, 0, 1, 1],
            at: SimTime::ZERO,
            until: None,
        }],
        3,
        at_s(60),
    );
    assert!(agree(&net, &honest));
}
