//! Tests of the ledger's state machine and blocks.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::block::{Block, BlockError, Ledger, merkle_root};
use super::crypto::{Verifier, key_for};
use super::state::{Account, Destination, Metered, Plant, Role, State, TxError};
use super::tx::{AccountId, Certs, PlantId, Tx, TxBody};

const OPERATOR: AccountId = AccountId(0);
const PRODUCER: AccountId = AccountId(1);
const CONSUMER: AccountId = AccountId(2);
const PROSUMER: AccountId = AccountId(3);
const AUDITOR: AccountId = AccountId(4);
const PLANT_METER: AccountId = AccountId(5);
const CONSUMER_METER: AccountId = AccountId(6);
const PROSUMER_METER: AccountId = AccountId(7);
const PLANT: PlantId = PlantId(0);

fn key(a: AccountId) -> SigningKey {
    key_for(1, "account", u64::from(a.0))
}

fn validator_key(i: u32) -> SigningKey {
    key_for(1, "validator", u64::from(i))
}

fn genesis() -> State {
    let roles = [
        (OPERATOR, Role::Operator),
        (PRODUCER, Role::Producer),
        (CONSUMER, Role::Consumer),
        (PROSUMER, Role::Prosumer),
        (AUDITOR, Role::Auditor),
        (PLANT_METER, Role::Meter(Metered::Plant(PLANT))),
        (CONSUMER_METER, Role::Meter(Metered::Consumer(CONSUMER))),
        (PROSUMER_METER, Role::Meter(Metered::Consumer(PROSUMER))),
    ];
    State::genesis(
        roles.map(|(a, role)| {
            (
                a,
                Account {
                    role,
                    key: key(a).verifying_key(),
                },
            )
        }),
        [(
            PLANT,
            Plant {
                owner: PRODUCER,
                meter: PLANT_METER,
                destination: Destination::LocalMarket,
            },
        )],
    )
}

/// Signs transactions with each account's next nonce.
struct Wallets {
    nonces: std::collections::BTreeMap<AccountId, u64>,
}

impl Wallets {
    fn new() -> Wallets {
        Wallets {
            nonces: Default::default(),
        }
    }

    fn tx(&mut self, from: AccountId, body: TxBody) -> Tx {
        let n = self.nonces.entry(from).or_default();
        let t = Tx::signed(&key(from), from, *n, body);
        *n += 1;
        t
    }
}

fn certs(first: u64, count: u64) -> Certs {
    Certs {
        plant: PLANT,
        first,
        count,
    }
}

/// A state where the plant metered 10.5 kWh in interval 0 and issued 10
/// certificates to its producer, and the consumer metered 4 kWh.
fn issued() -> (State, Wallets) {
    let mut s = genesis();
    let mut w = Wallets::new();
    for t in [
        w.tx(
            PLANT_METER,
            TxBody::Reading {
                interval: 0,
                wh: 10_500,
            },
        ),
        w.tx(
            PLANT_METER,
            TxBody::Issue {
                plant: PLANT,
                interval: 0,
                kwh: 10,
            },
        ),
        w.tx(
            CONSUMER_METER,
            TxBody::Reading {
                interval: 0,
                wh: 4_000,
            },
        ),
    ] {
        s.apply(&t).unwrap();
    }
    (s, w)
}

#[test]
fn issue_transfer_and_claim_trace_each_kwh_to_its_plant() {
    let (mut s, mut w) = issued();
    assert_eq!(s.issued(PLANT, 0), 10);
    s.apply(&w.tx(
        PRODUCER,
        TxBody::Transfer {
            to: CONSUMER,
            certs: certs(2, 5),
        },
    ))
    .unwrap();
    s.apply(&w.tx(
        CONSUMER,
        TxBody::Claim {
            certs: certs(3, 3),
            interval: 0,
        },
    ))
    .unwrap();
    assert_eq!(s.claimed(CONSUMER, 0), 3);
    assert_eq!(s.claims_by_origin()[&(CONSUMER, PLANT)], 3);
    // The producer keeps 0..2 and 7..10; the consumer 2..3 and 6..7.
    let held = |a| -> Vec<(u64, u64)> {
        s.holdings(a)
            .iter()
            .map(|(c, _)| (c.first, c.count))
            .collect()
    };
    assert_eq!(held(PRODUCER), vec![(0, 2), (7, 3)]);
    assert_eq!(held(CONSUMER), vec![(2, 1), (6, 1)]);
    assert!(s.check().is_empty(), "{:?}", s.check());
}

#[test]
fn issuing_beyond_metered_generation_is_refused() {
    let (mut s, mut w) = issued();
    // 10.5 kWh metered, 10 issued: not even one more whole kWh.
    let e = s
        .apply(&w.tx(
            PLANT_METER,
            TxBody::Issue {
                plant: PLANT,
                interval: 0,
                kwh: 1,
            },
        ))
        .unwrap_err();
    assert_eq!(
        e,
        TxError::ExceedsGeneration {
            interval: 0,
            asked: 1,
            left: 0
        }
    );
    // Nor without a reading at all.
    let e = s
        .apply(&Tx::signed(
            &key(PLANT_METER),
            PLANT_METER,
            2,
            TxBody::Issue {
                plant: PLANT,
                interval: 1,
                kwh: 1,
            },
        ))
        .unwrap_err();
    assert!(
        matches!(e, TxError::ExceedsGeneration { left: 0, .. }),
        "{e}"
    );
}

#[test]
fn a_double_claim_is_refused() {
    let (mut s, mut w) = issued();
    s.apply(&w.tx(
        PRODUCER,
        TxBody::Transfer {
            to: CONSUMER,
            certs: certs(0, 3),
        },
    ))
    .unwrap();
    s.apply(&w.tx(
        CONSUMER,
        TxBody::Claim {
            certs: certs(0, 2),
            interval: 0,
        },
    ))
    .unwrap();
    let e = s
        .apply(&w.tx(
            CONSUMER,
            TxBody::Claim {
                certs: certs(1, 2),
                interval: 0,
            },
        ))
        .unwrap_err();
    assert_eq!(
        e,
        TxError::AlreadyClaimed {
            plant: PLANT,
            first: 1,
            end: 3
        }
    );
    assert_eq!(s.claimed(CONSUMER, 0), 2);
}

#[test]
fn claiming_beyond_metered_consumption_is_refused() {
    let (mut s, mut w) = issued();
    s.apply(&w.tx(
        PRODUCER,
        TxBody::Transfer {
            to: CONSUMER,
            certs: certs(0, 6),
        },
    ))
    .unwrap();
    // 4 kWh metered.
    let e = s
        .apply(&w.tx(
            CONSUMER,
            TxBody::Claim {
                certs: certs(0, 5),
                interval: 0,
            },
        ))
        .unwrap_err();
    assert_eq!(
        e,
        TxError::ExceedsConsumption {
            interval: 0,
            asked: 5,
            left: 4
        }
    );
}

#[test]
fn a_transfer_from_an_empty_wallet_is_refused() {
    let (mut s, mut w) = issued();
    let e = s
        .apply(&w.tx(
            CONSUMER,
            TxBody::Transfer {
                to: PROSUMER,
                certs: certs(0, 1),
            },
        ))
        .unwrap_err();
    assert_eq!(
        e,
        TxError::NotHeld {
            plant: PLANT,
            first: 0,
            end: 1
        }
    );
    // Nor ids never issued.
    let e = s
        .apply(&Tx::signed(
            &key(PRODUCER),
            PRODUCER,
            0,
            TxBody::Transfer {
                to: CONSUMER,
                certs: certs(8, 5),
            },
        ))
        .unwrap_err();
    assert!(matches!(e, TxError::NotHeld { .. }), "{e}");
}

#[test]
fn roles_submit_only_their_own_kinds() {
    let (mut s, mut w) = issued();
    let e = s
        .apply(&w.tx(AUDITOR, TxBody::Reading { interval: 0, wh: 1 }))
        .unwrap_err();
    assert_eq!(
        e,
        TxError::Unauthorised {
            role: "auditor",
            kind: "reading"
        }
    );
    // A consumer's meter cannot issue; the operator cannot claim.
    let e = s
        .apply(&w.tx(
            CONSUMER_METER,
            TxBody::Issue {
                plant: PLANT,
                interval: 0,
                kwh: 1,
            },
        ))
        .unwrap_err();
    assert!(matches!(e, TxError::Unauthorised { .. }), "{e}");
    // Only the operator revokes, and only held certificates.
    let e = s
        .apply(&Tx::signed(
            &key(PRODUCER),
            PRODUCER,
            0,
            TxBody::Revoke { certs: certs(0, 1) },
        ))
        .unwrap_err();
    assert!(matches!(e, TxError::Unauthorised { .. }), "{e}");
    s.apply(&w.tx(OPERATOR, TxBody::Revoke { certs: certs(0, 1) }))
        .unwrap();
    assert!(s.check().is_empty());
}

#[test]
fn a_replayed_transaction_is_refused_by_its_nonce() {
    let mut s = genesis();
    let t = Tx::signed(
        &key(PLANT_METER),
        PLANT_METER,
        0,
        TxBody::Reading { interval: 0, wh: 1 },
    );
    s.apply(&t).unwrap();
    assert_eq!(
        s.apply(&t).unwrap_err(),
        TxError::BadNonce { got: 0, want: 1 }
    );
}

fn ledger() -> Ledger {
    Ledger::new(
        genesis(),
        (0..4).map(|i| validator_key(i).verifying_key()).collect(),
    )
}

#[test]
fn forged_signatures_are_refused_and_found_in_a_batch() {
    let mut l = ledger();
    let mut w = Wallets::new();
    let good = w.tx(
        PLANT_METER,
        TxBody::Reading {
            interval: 0,
            wh: 5_000,
        },
    );
    // Signed by the consumer's key in the plant meter's name.
    let forged = Tx::signed(
        &key(CONSUMER),
        PLANT_METER,
        1,
        TxBody::Issue {
            plant: PLANT,
            interval: 0,
            kwh: 5,
        },
    );
    let also_good = w.tx(CONSUMER_METER, TxBody::Reading { interval: 0, wh: 1 });
    let (block, refused, _) = l.propose(
        vec![good, forged.clone(), also_good],
        0,
        0,
        &validator_key(0),
    );
    assert_eq!(refused, vec![(forged, TxError::BadSignature)]);
    assert_eq!(block.txs.len(), 2);
    l.validate(block).unwrap();
    // Three transactions, each once (the validator's check of the two kept
    // hits the cache), and the block's signature.
    let st = l.verifier().stats();
    assert_eq!((st.verified, st.failed, st.cache_hits), (4, 1, 2));
}

#[test]
fn signatures_are_verified_once_then_cached() {
    let mut v = Verifier::new();
    let mut w = Wallets::new();
    let txs: Vec<Tx> = (0..5)
        .map(|i| w.tx(PLANT_METER, TxBody::Reading { interval: i, wh: 1 }))
        .collect();
    let refs: Vec<&Tx> = txs.iter().collect();
    let keys = vec![key(PLANT_METER).verifying_key(); 5];
    let (ok, cpu) = v.verify(&refs, &keys);
    assert!(ok.iter().all(|&x| x));
    assert!(!cpu.is_zero());
    let (ok, cpu) = v.verify(&refs, &keys);
    assert!(ok.iter().all(|&x| x) && cpu.is_zero());
    assert_eq!(
        (v.stats().verified, v.stats().batched, v.stats().cache_hits),
        (5, 5, 5)
    );
}

/// A ledger with three blocks of readings, issues, transfers and claims.
fn chain() -> Ledger {
    let mut l = ledger();
    let mut w = Wallets::new();
    let batches = vec![
        vec![
            w.tx(
                PLANT_METER,
                TxBody::Reading {
                    interval: 0,
                    wh: 8_000,
                },
            ),
            w.tx(
                CONSUMER_METER,
                TxBody::Reading {
                    interval: 0,
                    wh: 3_000,
                },
            ),
        ],
        vec![w.tx(
            PLANT_METER,
            TxBody::Issue {
                plant: PLANT,
                interval: 0,
                kwh: 8,
            },
        )],
        vec![
            w.tx(
                PRODUCER,
                TxBody::Transfer {
                    to: CONSUMER,
                    certs: certs(0, 3),
                },
            ),
            w.tx(
                CONSUMER,
                TxBody::Claim {
                    certs: certs(0, 3),
                    interval: 0,
                },
            ),
        ],
    ];
    for (k, txs) in batches.into_iter().enumerate() {
        let p = k as u32 % 4;
        let (b, refused, _) = l.propose(txs, p, k as u64 * 2_000_000_000, &validator_key(p));
        assert!(refused.is_empty(), "{refused:?}");
        l.validate(b).unwrap();
    }
    l
}

#[test]
fn a_tampered_block_is_found_by_the_hash_chain() {
    let l = chain();
    assert_eq!(l.audit(), Ok(()));
    assert_eq!(l.state().claimed(CONSUMER, 0), 3);

    // A transaction rewritten in a stored block: the Merkle root no longer
    // matches (the proposer's signature covers the root).
    let mut t = l.clone();
    if let Some(b) = t.block_mut(1)
        && let TxBody::Issue { kwh, .. } = &mut b.txs[0].body
    {
        *kwh = 7;
    }
    assert_eq!(t.audit(), Err(BlockError::Root(2)));

    // A header rewritten (and re-rooted): the signature fails.
    let mut t = l.clone();
    if let Some(b) = t.block_mut(1) {
        b.txs.clear();
        b.header.tx_root = merkle_root(&b.txs);
    }
    assert_eq!(t.audit(), Err(BlockError::Signature(2)));

    // A whole block replaced by a validly signed forgery: the next block's
    // previous hash no longer matches.
    let mut t = l.clone();
    let forged = Block::new(2, l.blocks()[0].hash(), 1, 0, Vec::new(), &validator_key(1));
    if let Some(b) = t.block_mut(1) {
        *b = forged;
    }
    assert_eq!(t.audit(), Err(BlockError::Prev(3)));
}

#[test]
fn a_block_out_of_place_or_from_a_stranger_is_refused() {
    let mut l = chain();
    let b = Block::new(9, l.tip(), 0, 0, Vec::new(), &validator_key(0));
    assert!(matches!(
        l.validate(b),
        Err((BlockError::Height { got: 9, want: 4 }, _))
    ));
    let b = Block::new(4, l.tip(), 0, 0, Vec::new(), &key(CONSUMER));
    assert!(matches!(l.validate(b), Err((BlockError::Signature(4), _))));
    let b = Block::new(4, l.tip(), 7, 0, Vec::new(), &validator_key(0));
    assert!(matches!(
        l.validate(b),
        Err((BlockError::Proposer(4, 7), _))
    ));
}

#[derive(Clone, Debug)]
enum Op {
    Issue(u64),
    Transfer(bool, u64, u64),
    Claim(bool, u64, u64),
    Revoke(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..6).prop_map(Op::Issue),
        (any::<bool>(), 0u64..40, 1u64..8).prop_map(|(a, f, c)| Op::Transfer(a, f, c)),
        (any::<bool>(), 0u64..40, 1u64..8).prop_map(|(a, f, c)| Op::Claim(a, f, c)),
        (0u64..40, 1u64..5).prop_map(|(f, c)| Op::Revoke(f, c)),
    ]
}

proptest! {
    /// Whatever mix of operations, valid or not, is thrown at the state,
    /// every invariant holds after each one, refused operations change
    /// nothing, and every certificate ever issued is accounted for.
    #[test]
    fn invariants_hold_under_any_sequence_of_operations(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = genesis();
        let mut w = Wallets::new();
        for i in 0..8u32 {
            for t in [
                w.tx(PLANT_METER, TxBody::Reading { interval: i, wh: 5_000 }),
                w.tx(CONSUMER_METER, TxBody::Reading { interval: i, wh: 3_000 }),
                w.tx(PROSUMER_METER, TxBody::Reading { interval: i, wh: 2_000 }),
            ] {
                s.apply(&t).unwrap();
            }
        }
        let mut interval = 0u32;
        for o in ops {
            let holder = |a: bool| if a { CONSUMER } else { PROSUMER };
            let t = match o {
                Op::Issue(k) => {
                    interval = (interval + 1) % 8;
                    w.tx(PLANT_METER, TxBody::Issue { plant: PLANT, interval, kwh: k })
                }
                Op::Transfer(a, f, c) => {
                    // From the producer to a holder, or between holders.
                    let from = if f % 2 == 0 { PRODUCER } else { holder(!a) };
                    w.tx(from, TxBody::Transfer { to: holder(a), certs: certs(f, c) })
                }
                Op::Claim(a, f, c) => {
                    w.tx(holder(a), TxBody::Claim { certs: certs(f, c), interval: (f % 8) as u32 })
                }
                Op::Revoke(f, c) => w.tx(OPERATOR, TxBody::Revoke { certs: certs(f, c) }),
            };
            let before = format!("{:?}", s.holdings(PRODUCER));
            match s.apply(&t) {
                Ok(()) => {}
                Err(_) => {
                    // Refused: nothing moved, and the signer's nonce is
                    // re-used by the next transaction.
                    prop_assert_eq!(before, format!("{:?}", s.holdings(PRODUCER)));
                    *w.nonces.get_mut(&t.from).unwrap() -= 1;
                }
            }
            let v = s.check();
            prop_assert!(v.is_empty(), "{:?}", v);
        }
    }
}
