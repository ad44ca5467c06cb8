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
use gridtwin::ledger::state::{Account, Destination, Metered, Plant, Role, State};
use gridtwin::ledger::tx::{AccountId, Certs, PlantId, Tx, TxBody};

const PLANTS: u32 = 200;

/// Accounts: 0 the producer; 1..=200 plant meters; 201..=400 consumers;
/// 401..=600 consumer meters.
fn setup() -> (State, Vec<Tx>) {
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
        accounts.push((
            AccountId(meter),
            Account {
                role: Role::Meter(Metered::Plant(PlantId(i))),
                key: key(meter).verifying_key(),
            },
        ));
        accounts.push((
            AccountId(consumer),
            Account {
                role: Role::Consumer,
                key: key(consumer).verifying_key(),
            },
        ));
        accounts.push((
            AccountId(cmeter),
            Account {
                role: Role::Meter(Metered::Consumer(AccountId(consumer))),
                key: key(cmeter).verifying_key(),
            },
        ));
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

fn bench(c: &mut Criterion) {
    let (genesis, txs) = setup();
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
