//! Ledger benchmarks, with real ed25519 signatures.
//!
//! - `ledger/verify/single`: one strict signature verification of a
//!   transaction (its signed bytes re-encoded, as the verifier does);
//! - `ledger/verify/batch_1000`: batch verification of 1 000 transactions'
//!   signatures (the baseline for the per-signature cost of a block);
//! - `ledger/validate_block/1000`: a validator's whole check of a block of
//!   1 000 transactions (readings, issues, transfers and claims): its
//!   signature, Merkle root, every transaction signature (batched, nothing
//!   cached), applying each to the state, and the invariants; reported as
//!   blocks per second.
//!
//! The simulated CPU costs in `src/ledger/crypto.rs` (`VERIFY_NS`,
//! `BATCH_VERIFY_NS`) come from the first two.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridtwin::ledger::block::Ledger;
use gridtwin::ledger::crypto::{Verifier, key_for};
use gridtwin::ledger::tx::Tx;

mod workloads;

fn bench(c: &mut Criterion) {
    let (genesis, txs) = workloads::ledger_txs();
    assert_eq!(txs.len(), 1000);
    let keys: Vec<_> = txs
        .iter()
        .map(|t| genesis.account(t.from).unwrap().key)
        .collect();
    let refs: Vec<&Tx> = txs.iter().collect();

    let mut g = c.benchmark_group("ledger/verify");
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter(|| {
            let mut v = Verifier::new();
            black_box(v.verify(black_box(&refs[..1]), &keys[..1]))
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("batch_1000", |b| {
        b.iter(|| {
            let mut v = Verifier::new();
            let (ok, _) = v.verify(black_box(&refs), &keys);
            assert!(ok.iter().all(|&x| x));
        })
    });
    g.finish();

    let validator = key_for(7, "validator", 0);
    let mut proposer = Ledger::new(genesis.clone(), vec![validator.verifying_key()]);
    let (block, refused, _) = proposer.propose(txs.clone(), 0, 0, &validator);
    assert!(refused.is_empty(), "{refused:?}");
    let fresh = Ledger::new(genesis, vec![validator.verifying_key()]);
    let mut g = c.benchmark_group("ledger/validate_block");
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    g.bench_function("1000", |b| {
        b.iter(|| {
            let mut l = fresh.clone();
            l.validate(black_box(block.clone())).unwrap();
            assert_eq!(l.stats().committed, 1000);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
