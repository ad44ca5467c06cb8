//! Tests of the on-chain contracts: supplier preference, the P2P market,
//! demand response, and payments. Expected figures are worked out by hand
//! in the comments, from the rules in [`super::state::contracts`].

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::crypto::key_for;
use super::market::Tariffs;
use super::state::{Account, Destination, Metered, Plant, Role, State, TxError};
use super::tx::{AccountId, PlantId, Tx, TxBody};

const OPERATOR: AccountId = AccountId(0);
const PRODUCERS: [AccountId; 2] = [AccountId(1), AccountId(2)];
const CONSUMERS: [AccountId; 3] = [AccountId(20), AccountId(21), AccountId(22)];
const PROSUMER: AccountId = AccountId(40);
const AUDITOR: AccountId = AccountId(60);
const P0: PlantId = PlantId(0);
const P1: PlantId = PlantId(1);
const ROOF: PlantId = PlantId(2);
const FUNDS: u64 = 2_000_000;
const T: Tariffs = Tariffs {
    feed_in: 80_000,
    grid: 300_000,
};

fn plant_meter(p: PlantId) -> AccountId {
    AccountId(10 + p.0)
}

fn meter_of(a: AccountId) -> AccountId {
    AccountId(a.0 + 10)
}

fn genesis() -> State {
    let mut roles = vec![
        (OPERATOR, Role::Operator),
        (AUDITOR, Role::Auditor),
        (PROSUMER, Role::Prosumer),
        (meter_of(PROSUMER), Role::Meter(Metered::Consumer(PROSUMER))),
    ];
    for (i, p) in PRODUCERS.iter().enumerate() {
        roles.push((*p, Role::Producer));
        roles.push((
            plant_meter(PlantId(i as u32)),
            Role::Meter(Metered::Plant(PlantId(i as u32))),
        ));
    }
    roles.push((plant_meter(ROOF), Role::Meter(Metered::Plant(ROOF))));
    for c in CONSUMERS {
        roles.push((c, Role::Consumer));
        roles.push((meter_of(c), Role::Meter(Metered::Consumer(c))));
    }
    let plant = |owner, p, destination| {
        (
            p,
            Plant {
                owner,
                meter: plant_meter(p),
                destination,
            },
        )
    };
    let mut funds = vec![(OPERATOR, 1_000_000_000)];
    funds.extend(CONSUMERS.map(|c| (c, FUNDS)));
    funds.push((PROSUMER, FUNDS));
    State::genesis(
        roles.into_iter().map(|(a, role)| {
            (
                a,
                Account {
                    role,
                    key: key_for(3, "account", u64::from(a.0)).verifying_key(),
                },
            )
        }),
        [
            plant(PRODUCERS[0], P0, Destination::LocalMarket),
            plant(PRODUCERS[1], P1, Destination::LocalMarket),
            plant(PROSUMER, ROOF, Destination::SelfConsumption),
        ],
    )
    .with_money(funds, T)
}

/// Signs with each account's next nonce, and applies.
struct Chain {
    state: State,
    nonces: BTreeMap<AccountId, u64>,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            state: genesis(),
            nonces: BTreeMap::new(),
        }
    }

    fn tx(&mut self, from: AccountId, body: TxBody) -> Tx {
        let n = self.nonces.get(&from).copied().unwrap_or(0);
        Tx::signed(&key_for(3, "account", u64::from(from.0)), from, n, body)
    }

    /// Applies (advancing the nonce only when it applied).
    fn try_apply(&mut self, from: AccountId, body: TxBody) -> Result<(), TxError> {
        let t = self.tx(from, body);
        self.state.apply(&t)?;
        *self.nonces.entry(from).or_default() += 1;
        Ok(())
    }

    fn apply(&mut self, from: AccountId, body: TxBody) {
        let kind = body.kind();
        self.try_apply(from, body)
            .unwrap_or_else(|e| panic!("{kind} from {from:?}: {e}"));
        assert!(self.state.check().is_empty(), "{:?}", self.state.check());
    }

    fn generate(&mut self, p: PlantId, interval: u32, wh: u64) {
        self.apply(plant_meter(p), TxBody::Reading { interval, wh });
        if wh >= 1000 {
            self.apply(
                plant_meter(p),
                TxBody::Issue {
                    plant: p,
                    interval,
                    kwh: wh / 1000,
                },
            );
        }
    }

    fn consume(&mut self, a: AccountId, interval: u32, wh: u64) {
        self.apply(meter_of(a), TxBody::Reading { interval, wh });
    }

    /// Claimed kWh by (consumer, plant).
    fn claims(&self) -> BTreeMap<(u32, u32), u64> {
        self.state
            .claims_by_origin()
            .into_iter()
            .map(|((a, p), n)| ((a.0, p.0), n))
            .collect()
    }
}

#[test]
fn supplier_preference_matches_in_rounds_with_proportional_splits() {
    let mut c = Chain::new();
    c.generate(P0, 0, 10_400);
    c.generate(P1, 0, 4_000);
    let [a, b, d] = CONSUMERS;
    c.consume(a, 0, 6_000);
    c.consume(b, 0, 9_000);
    c.consume(d, 0, 3_700);
    c.apply(
        a,
        TxBody::Prefer {
            plants: vec![P0, P1],
        },
    );
    c.apply(
        b,
        TxBody::Prefer {
            plants: vec![P0, P1],
        },
    );
    c.apply(
        d,
        TxBody::Prefer {
            plants: vec![P1, P0],
        },
    );
    c.apply(OPERATOR, TxBody::Settle { interval: 0 });
    // Round 0: P0 (10 kWh) gets 6 + 9 = 15 asked, so splits 10·6/15 = 4
    // and 10·9/15 = 6; P1 (4 kWh) serves d's 3 in full, 1 left.
    // Round 1: a's 2 and b's 3 go to P1, which has 1: 2/5 and 3/5 of it
    // floor to 0, and the largest remainder (b's) takes the unit.
    let want: BTreeMap<(u32, u32), u64> =
        [((a.0, 0), 4), ((b.0, 0), 6), ((b.0, 1), 1), ((d.0, 1), 3)].into();
    assert_eq!(c.claims(), want);
    assert_eq!(c.state.settlement(0).unwrap().matched_kwh, 14);
    // Nothing is left with the producers of interval 0.
    assert!(c.state.holdings(PRODUCERS[0]).is_empty());
    assert!(c.state.holdings(PRODUCERS[1]).is_empty());
    // Settling twice is refused.
    assert_eq!(
        c.try_apply(OPERATOR, TxBody::Settle { interval: 0 }),
        Err(TxError::AlreadySettled(0))
    );
}

#[test]
fn the_market_clears_on_chain_with_escrow_payment_and_refunds() {
    let mut c = Chain::new();
    let [a, b, d] = CONSUMERS;
    // The prosumer makes 8 kWh and uses 3: 5 kWh of surplus, asked at 0.10.
    c.generate(ROOF, 0, 8_000);
    c.consume(PROSUMER, 0, 3_000);
    for (who, wh) in [(a, 4_000), (b, 3_000), (d, 2_000)] {
        c.consume(who, 0, wh);
    }
    let ask = |kwh, price| TxBody::Ask {
        plant: ROOF,
        interval: 0,
        kwh,
        price,
    };
    let bid = |kwh, price| TxBody::Bid {
        interval: 0,
        kwh,
        price,
    };
    c.apply(PROSUMER, ask(5, 100_000));
    assert_eq!(
        c.try_apply(PROSUMER, ask(1, 100_000)),
        Err(TxError::DuplicateOrder(0))
    );
    c.apply(a, bid(4, 250_000));
    c.apply(b, bid(3, 120_000));
    // Below the feed-in tariff: it cannot trade, and is refunded.
    c.apply(d, bid(2, 50_000));
    // Escrow is held: a's 4 × 0.25.
    assert_eq!(c.state.balance(a), FUNDS - 1_000_000);
    c.apply(OPERATOR, TxBody::Settle { interval: 0 });
    // Self-consumption first: the prosumer claims 3 of its own.
    // Bids 4 @ 0.25 (a) then 3 @ 0.12 (b) meet 5 @ 0.10: 5 kWh trade, the
    // last match is b's 0.12 against 0.10, so the price is 0.11.
    let s = *c.state.settlement(0).unwrap();
    assert_eq!(s.matched_kwh, 3);
    assert_eq!((s.market.kwh, s.market.price), (5, Some(110_000)));
    let want: BTreeMap<(u32, u32), u64> =
        [((PROSUMER.0, 2), 3), ((a.0, 2), 4), ((b.0, 2), 1)].into();
    assert_eq!(c.claims(), want);
    assert_eq!(c.state.balance(a), FUNDS - 4 * 110_000);
    assert_eq!(c.state.balance(b), FUNDS - 110_000);
    assert_eq!(c.state.balance(d), FUNDS);
    assert_eq!(c.state.balance(PROSUMER), FUNDS + 5 * 110_000);
    let t = c.state.totals(PROSUMER);
    assert_eq!((t.sold_kwh, t.earned), (5, 550_000));
    assert_eq!(c.state.totals(a).bought_kwh, 4);
    // Orders after the settlement are refused.
    assert_eq!(
        c.try_apply(b, bid(1, 200_000)),
        Err(TxError::AlreadySettled(0))
    );
}

#[test]
fn orders_and_payments_are_permissioned_and_funded() {
    let mut c = Chain::new();
    let [a, ..] = CONSUMERS;
    // A bid beyond the wallet.
    assert_eq!(
        c.try_apply(
            a,
            TxBody::Bid {
                interval: 0,
                kwh: 100,
                price: 300_000,
            }
        ),
        Err(TxError::InsufficientFunds {
            need: 30_000_000,
            have: FUNDS
        })
    );
    // Selling someone else's plant, or a consumer asking at all.
    let ask = TxBody::Ask {
        plant: P0,
        interval: 0,
        kwh: 1,
        price: 0,
    };
    assert_eq!(
        c.try_apply(PROSUMER, ask.clone()),
        Err(TxError::NotTheSeller {
            account: PROSUMER,
            plant: P0
        })
    );
    assert!(matches!(
        c.try_apply(a, ask),
        Err(TxError::Unauthorised { .. })
    ));
    // An auditor may not pay; a consumer may, within its balance.
    let pay = |amount| TxBody::Pay {
        to: PROSUMER,
        amount,
    };
    assert!(matches!(
        c.try_apply(AUDITOR, pay(1)),
        Err(TxError::Unauthorised {
            role: "auditor",
            ..
        })
    ));
    assert!(matches!(
        c.try_apply(a, pay(FUNDS + 1)),
        Err(TxError::InsufficientFunds { .. })
    ));
    c.apply(a, pay(700));
    assert_eq!(c.state.balance(PROSUMER), FUNDS + 700);
    // Only consumers rank plants, at most 16, each once.
    assert!(matches!(
        c.try_apply(PRODUCERS[0], TxBody::Prefer { plants: vec![P0] }),
        Err(TxError::Unauthorised { .. })
    ));
    assert!(matches!(
        c.try_apply(
            a,
            TxBody::Prefer {
                plants: vec![P0, P0]
            }
        ),
        Err(TxError::BadPreference { .. })
    ));
    assert_eq!(
        c.try_apply(
            a,
            TxBody::Prefer {
                plants: vec![PlantId(9)]
            }
        ),
        Err(TxError::UnknownPlant(PlantId(9)))
    );
    // Only the operator settles.
    assert!(matches!(
        c.try_apply(a, TxBody::Settle { interval: 0 }),
        Err(TxError::Unauthorised { .. })
    ));
}

#[test]
fn demand_response_pays_the_reduction_below_the_baseline() {
    let mut c = Chain::new();
    let [a, b, d] = CONSUMERS;
    for k in 0..4 {
        c.consume(a, k, 4_000);
        c.consume(b, k, 2_000);
        c.consume(d, k, 1_000);
    }
    let offer = TxBody::DrOffer {
        first: 4,
        last: 5,
        rate: 200_000,
        baseline: 4,
    };
    // Only the operator posts incentives, and they must make sense.
    assert!(matches!(
        c.try_apply(a, offer.clone()),
        Err(TxError::Unauthorised { .. })
    ));
    assert!(matches!(
        c.try_apply(
            OPERATOR,
            TxBody::DrOffer {
                first: 2,
                last: 3,
                rate: 1,
                baseline: 4
            }
        ),
        Err(TxError::BadEvent { .. })
    ));
    c.apply(OPERATOR, offer);
    c.apply(a, TxBody::DrEnroll { event: 0 });
    c.apply(b, TxBody::DrEnroll { event: 0 });
    assert_eq!(
        c.try_apply(a, TxBody::DrEnroll { event: 0 }),
        Err(TxError::EnrolmentClosed(0))
    );
    assert_eq!(
        c.try_apply(a, TxBody::DrEnroll { event: 7 }),
        Err(TxError::UnknownEvent(7))
    );
    // a sheds: 3.0 + 2.5 kWh against a baseline of 2 × 4 kWh; b uses more.
    c.consume(a, 4, 3_000);
    c.consume(b, 4, 2_500);
    c.consume(d, 4, 500);
    // d's meter has read the event's first interval: too late to enrol.
    assert_eq!(
        c.try_apply(d, TxBody::DrEnroll { event: 0 }),
        Err(TxError::EnrolmentClosed(0))
    );
    c.consume(a, 5, 2_500);
    c.consume(b, 5, 2_500);
    c.apply(OPERATOR, TxBody::DrSettle { event: 0 });
    // a: 8000 − 5500 = 2500 Wh at 0.20/kWh = 0.5; b: nothing.
    assert_eq!(c.state.dr_events()[0].settled, Some((2_500, 500_000)));
    assert_eq!(c.state.balance(a), FUNDS + 500_000);
    assert_eq!(c.state.balance(b), FUNDS);
    assert_eq!(c.state.balance(OPERATOR), 1_000_000_000 - 500_000);
    assert_eq!(c.state.totals(a).dr_reduced_wh, 2_500);
    assert_eq!(
        c.try_apply(OPERATOR, TxBody::DrSettle { event: 0 }),
        Err(TxError::EventSettled(0))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the generation, consumption, preferences and orders: the
    /// settlement keeps every invariant (money conserved, claims within
    /// metered consumption, each id once), sellers earn what buyers pay,
    /// and no consumer is matched more than it consumed.
    #[test]
    fn settlements_keep_the_invariants(
        output in proptest::collection::vec(0u64..20_000, 3),
        use_wh in proptest::collection::vec(0u64..12_000, 4),
        prefs in proptest::collection::vec(proptest::collection::vec(0u32..3, 0..3), 3),
        bids in proptest::collection::vec((0u64..8, 0u64..400_000), 4),
        ask in (0u64..10, 0u64..400_000),
    ) {
        let mut c = Chain::new();
        for (i, &wh) in output.iter().enumerate() {
            c.generate(PlantId(i as u32), 0, wh);
        }
        let buyers: Vec<AccountId> = CONSUMERS.iter().copied().chain([PROSUMER]).collect();
        for (who, &wh) in buyers.iter().zip(&use_wh) {
            c.consume(*who, 0, wh);
        }
        for (who, p) in CONSUMERS.iter().zip(&prefs) {
            let mut plants: Vec<PlantId> = Vec::new();
            for &x in p {
                if !plants.contains(&PlantId(x)) {
                    plants.push(PlantId(x));
                }
            }
            c.apply(*who, TxBody::Prefer { plants });
        }
        for (who, &(kwh, price)) in buyers.iter().zip(&bids) {
            let _ = c.try_apply(*who, TxBody::Bid { interval: 0, kwh, price });
        }
        // The prosumer both bids and asks (it may buy its own surplus back:
        // harmless, and it must not break anything).
        let _ = c.try_apply(PROSUMER, TxBody::Ask { plant: ROOF, interval: 0, kwh: ask.0, price: ask.1 });
        c.apply(OPERATOR, TxBody::Settle { interval: 0 });
        prop_assert!(c.state.check().is_empty());
        let paid: u64 = buyers.iter().map(|&a| c.state.totals(a).paid).sum();
        let earned: u64 = buyers.iter().map(|&a| c.state.totals(a).earned).sum();
        prop_assert_eq!(paid, earned);
        for (who, &wh) in buyers.iter().zip(&use_wh) {
            prop_assert!(c.state.claimed(*who, 0) <= wh / 1000);
        }
        let money: u64 = buyers.iter().map(|&a| c.state.balance(a)).sum();
        prop_assert_eq!(money, 4 * FUNDS);
    }
}
