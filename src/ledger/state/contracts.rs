//! The chain's contracts, as native state transitions: supplier preference,
//! the P2P market, and demand response. Every validator runs them on the
//! same committed state, with integer arithmetic only, so they agree.
//!
//! # Settling an interval (`Settle`, by the operator)
//! Certificates generated in interval `k` are matched to consumption metered
//! in `k` (each consumer's *need*: whole kWh metered and not yet claimed):
//! 1. **Self-consumption:** a self-consumption plant's certificates go to
//!    its owner's own need first.
//! 2. **Direct supply contracts:** a plant under contracts serves only its
//!    named consumers.
//! 3. **Supplier preference** (Energy Web Green Proofs' matching rule): in
//!    round `r` every consumer with need left asks the `r`-th plant of its
//!    ranking (plants selling on the local market only); a plant with too
//!    little left splits it in proportion to the requests (whole kWh, the
//!    remainders to the largest fractions, ties to the lower account id);
//!    what is not met is carried to round `r + 1`.
//! 4. **P2P market:** the interval's asks (capped at what each seller still
//!    holds of that interval) and bids (capped at each buyer's need left;
//!    bids below the feed-in tariff cannot trade) clear in a uniform-price
//!    double auction ([`crate::ledger::market`]). Each trade moves the
//!    seller's certificates to the buyer, claimed, and pays the seller at
//!    the clearing price out of the buyer's escrow; the rest of every
//!    escrow is refunded.
//!
//! Matched certificates are transferred and claimed in one step: they go
//! straight from the plant owner's wallet to `Claimed(consumer, k)`.
//!
//! # Demand response (`DrOffer`, `DrEnroll`, `DrSettle`)
//! The operator posts an event over intervals `first..=last` with a rate
//! per kWh and a baseline window of the `baseline` intervals before it.
//! Consumers enrol before their meter reads the event's first interval.
//! At `DrSettle`, each enrolled consumer with every reading in place is
//! paid `rate × max(0, baseline − actual)`, where the baseline is its mean
//! consumption over the window times the event's length [Wh, floored];
//! the operator pays, and the settlement fails as a whole if it cannot.

use std::collections::{BTreeMap, BTreeSet};

use super::Map;

use super::{Destination, Role, State, Status, TxError};
use crate::ledger::market::{Order, Tariffs, clear};
use crate::ledger::tx::{AccountId, Certs, MAX_PREFERENCES, PlantId, TxBody};

/// Longest demand-response event and baseline window [intervals].
pub const MAX_DR_INTERVALS: u32 = 96;

/// An interval's settlement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Matched by self-consumption, direct contracts and supplier
    /// preference [kWh].
    pub matched_kwh: u64,
    /// The P2P market's outcome.
    pub market: MarketResult,
}

/// An interval's P2P market outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketResult {
    /// Traded [kWh].
    pub kwh: u64,
    /// The clearing price [µ-currency/kWh], if anything traded.
    pub price: Option<u64>,
}

/// An account's running totals from the contracts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bought on the P2P market [kWh].
    pub bought_kwh: u64,
    /// Paid on the P2P market [µ-currency].
    pub paid: u64,
    /// Sold on the P2P market [kWh].
    pub sold_kwh: u64,
    /// Earned on the P2P market [µ-currency].
    pub earned: u64,
    /// Reduced below DR baselines [Wh].
    pub dr_reduced_wh: u64,
    /// DR rewards received [µ-currency].
    pub dr_rewards: u64,
}

/// A demand-response event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrEvent {
    /// First interval.
    pub first: u32,
    /// Last interval.
    pub last: u32,
    /// Reward per kWh reduced [µ-currency/kWh].
    pub rate: u64,
    /// Baseline window before `first` [intervals].
    pub baseline: u32,
    /// Enrolled consumers.
    pub enrolled: BTreeSet<AccountId>,
    /// Once settled: the energy reduced [Wh] and the rewards paid
    /// [µ-currency].
    pub settled: Option<(u64, u64)>,
}

/// The contracts' part of the state.
#[derive(Clone, Debug, Default)]
pub(super) struct Book {
    pub(super) balances: Map<AccountId, u64>,
    /// Money at genesis [µ-currency].
    pub(super) supply: u64,
    pub(super) tariffs: Tariffs,
    preferences: Map<AccountId, Vec<PlantId>>,
    /// Per interval: each buyer's (kWh, limit price).
    bids: Map<u32, Map<AccountId, (u64, u64)>>,
    /// Per interval: each seller's (plant, kWh, limit price).
    asks: Map<u32, Map<AccountId, (PlantId, u64, u64)>>,
    settled: Map<u32, Settlement>,
    totals: Map<AccountId, Totals>,
    events: Vec<DrEvent>,
}

impl Book {
    /// Balances plus bids in escrow [µ-currency].
    pub(super) fn money(&self) -> u64 {
        let escrow: u64 = self
            .bids
            .values()
            .flat_map(|m| m.values())
            .map(|&(kwh, price)| kwh * price)
            .sum();
        self.balances.values().sum::<u64>() + escrow
    }

    fn balance(&self, a: AccountId) -> u64 {
        self.balances.get(&a).copied().unwrap_or(0)
    }

    fn debit(&mut self, a: AccountId, x: u64) {
        let b = self.balances.entry(a).or_default();
        *b = b.saturating_sub(x);
    }

    fn credit(&mut self, a: AccountId, x: u64) {
        *self.balances.entry(a).or_default() += x;
    }
}

fn funds(have: u64, need: u64) -> Result<(), TxError> {
    if need > have {
        Err(TxError::InsufficientFunds { need, have })
    } else {
        Ok(())
    }
}

impl State {
    /// An account's balance [µ-currency].
    pub fn balance(&self, a: AccountId) -> u64 {
        self.contracts.balance(a)
    }

    /// An interval's settlement, once settled.
    pub fn settlement(&self, interval: u32) -> Option<&Settlement> {
        self.contracts.settled.get(&interval)
    }

    /// Every settled interval, in order.
    pub fn settlements(&self) -> &Map<u32, Settlement> {
        &self.contracts.settled
    }

    /// An account's market and DR totals.
    pub fn totals(&self, a: AccountId) -> Totals {
        self.contracts.totals.get(&a).copied().unwrap_or_default()
    }

    /// The demand-response events, in posting order.
    pub fn dr_events(&self) -> &[DrEvent] {
        &self.contracts.events
    }

    /// A consumer's supplier preference.
    pub fn preference(&self, a: AccountId) -> &[PlantId] {
        self.contracts
            .preferences
            .get(&a)
            .map_or(&[], Vec::as_slice)
    }

    /// Whole kWh `a` metered in interval `k` and has not claimed.
    fn need(&self, a: AccountId, k: u32) -> u64 {
        let wh = self.consumption.get(&(a, k)).copied().unwrap_or(0);
        (wh / 1000).saturating_sub(self.claimed(a, k))
    }

    /// The runs of `plant`'s certificates generated in `k` and held by
    /// `owner`, in id order: (first, end).
    fn held_runs(&self, plant: PlantId, owner: AccountId, k: u32) -> Vec<(u64, u64)> {
        let Some(&start) = self.issue_start.get(&(plant, k)) else {
            return Vec::new();
        };
        let from = self
            .ranges
            .range(..=(plant, start))
            .next_back()
            .filter(|((p, _), _)| *p == plant)
            .map_or(start, |(&(_, f), _)| f);
        self.ranges
            .range((plant, from)..=(plant, u64::MAX))
            .filter(|(_, r)| r.interval == k && r.status == Status::Held(owner))
            .map(|(&(_, f), r)| (f, r.end))
            .collect()
    }

    fn held_kwh(&self, plant: PlantId, owner: AccountId, k: u32) -> u64 {
        self.held_runs(plant, owner, k)
            .iter()
            .map(|(f, e)| e - f)
            .sum()
    }

    /// Moves the lowest `n` certificates of `plant` from `k` held by `owner`
    /// to `Claimed(to, k)`; returns how many moved.
    fn hand_over(
        &mut self,
        plant: PlantId,
        owner: AccountId,
        k: u32,
        n: u64,
        to: AccountId,
    ) -> u64 {
        let mut left = n;
        for (f, e) in self.held_runs(plant, owner, k) {
            if left == 0 {
                break;
            }
            let count = (e - f).min(left);
            self.set_status(
                &Certs {
                    plant,
                    first: f,
                    count,
                },
                |_| Status::Claimed(to, k),
            );
            left -= count;
        }
        let moved = n - left;
        *self.claimed.entry((to, k)).or_default() += moved;
        moved
    }

    /// The rewards of DR event `e`: (consumer, reduced Wh, reward µ).
    fn dr_rewards(&self, e: &DrEvent) -> Vec<(AccountId, u64, u64)> {
        let len = u64::from(e.last - e.first + 1);
        let sum = |a: AccountId, from: u32, to: u32| -> Option<u64> {
            (from..=to)
                .map(|i| self.consumption.get(&(a, i)).copied())
                .sum()
        };
        e.enrolled
            .iter()
            .filter_map(|&a| {
                let base = sum(a, e.first - e.baseline, e.first - 1)?;
                let actual = sum(a, e.first, e.last)?;
                let expect = (u128::from(base) * u128::from(len) / u128::from(e.baseline)) as u64;
                let reduced = expect.saturating_sub(actual);
                let reward = (u128::from(reduced) * u128::from(e.rate) / 1000) as u64;
                Some((a, reduced, reward))
            })
            .collect()
    }

    /// Checks a contract transaction (`check_tx` has checked the account
    /// and nonce).
    pub(super) fn check_contract(
        &self,
        from: AccountId,
        role: Role,
        body: &TxBody,
    ) -> Result<(), TxError> {
        let kind = body.kind();
        let allow = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(TxError::Unauthorised {
                    role: role.name(),
                    kind,
                })
            }
        };
        let consumer = matches!(role, Role::Consumer | Role::Prosumer);
        let operator = role == Role::Operator;
        let c = &self.contracts;
        match body {
            TxBody::Prefer { plants } => {
                allow(consumer)?;
                let distinct: BTreeSet<_> = plants.iter().collect();
                if plants.len() > MAX_PREFERENCES || distinct.len() != plants.len() {
                    return Err(TxError::BadPreference {
                        max: MAX_PREFERENCES,
                    });
                }
                if let Some(p) = plants.iter().find(|p| !self.plants.contains_key(*p)) {
                    return Err(TxError::UnknownPlant(*p));
                }
            }
            TxBody::Pay { to, amount } => {
                allow(consumer || operator || role == Role::Producer)?;
                if !self.accounts.contains_key(to) {
                    return Err(TxError::UnknownAccount(*to));
                }
                if *amount == 0 {
                    return Err(TxError::Empty(kind));
                }
                funds(c.balance(from), *amount)?;
            }
            TxBody::Bid {
                interval,
                kwh,
                price,
            } => {
                allow(consumer)?;
                if *kwh == 0 {
                    return Err(TxError::Empty(kind));
                }
                if c.settled.contains_key(interval) {
                    return Err(TxError::AlreadySettled(*interval));
                }
                if c.bids.get(interval).is_some_and(|b| b.contains_key(&from)) {
                    return Err(TxError::DuplicateOrder(*interval));
                }
                funds(c.balance(from), kwh.checked_mul(*price).unwrap_or(u64::MAX))?;
            }
            TxBody::Ask {
                plant,
                interval,
                kwh,
                ..
            } => {
                allow(matches!(role, Role::Producer | Role::Prosumer))?;
                let p = self
                    .plants
                    .get(plant)
                    .ok_or(TxError::UnknownPlant(*plant))?;
                let sells = matches!(
                    p.destination,
                    Destination::SelfConsumption | Destination::LocalMarket
                );
                if p.owner != from || !sells {
                    return Err(TxError::NotTheSeller {
                        account: from,
                        plant: *plant,
                    });
                }
                if *kwh == 0 {
                    return Err(TxError::Empty(kind));
                }
                if c.settled.contains_key(interval) {
                    return Err(TxError::AlreadySettled(*interval));
                }
                if c.asks.get(interval).is_some_and(|a| a.contains_key(&from)) {
                    return Err(TxError::DuplicateOrder(*interval));
                }
            }
            TxBody::Settle { interval } => {
                allow(operator)?;
                if c.settled.contains_key(interval) {
                    return Err(TxError::AlreadySettled(*interval));
                }
            }
            TxBody::DrOffer {
                first,
                last,
                baseline,
                ..
            } => {
                allow(operator)?;
                let ok = first <= last
                    && last - first < MAX_DR_INTERVALS
                    && (1..=MAX_DR_INTERVALS).contains(baseline)
                    && baseline <= first;
                if !ok {
                    return Err(TxError::BadEvent {
                        max: MAX_DR_INTERVALS,
                    });
                }
            }
            TxBody::DrEnroll { event } => {
                allow(consumer)?;
                let e = c
                    .events
                    .get(*event as usize)
                    .ok_or(TxError::UnknownEvent(*event))?;
                if e.settled.is_some()
                    || e.enrolled.contains(&from)
                    || self.consumption.contains_key(&(from, e.first))
                {
                    return Err(TxError::EnrolmentClosed(*event));
                }
            }
            TxBody::DrSettle { event } => {
                allow(operator)?;
                let e = c
                    .events
                    .get(*event as usize)
                    .ok_or(TxError::UnknownEvent(*event))?;
                if e.settled.is_some() {
                    return Err(TxError::EventSettled(*event));
                }
                let total: u64 = self.dr_rewards(e).iter().map(|r| r.2).sum();
                funds(c.balance(from), total)?;
            }
            // The certificate transactions are checked by `check_tx`.
            TxBody::Reading { .. }
            | TxBody::Issue { .. }
            | TxBody::Transfer { .. }
            | TxBody::Claim { .. }
            | TxBody::Revoke { .. } => {}
        }
        Ok(())
    }

    /// Applies a checked contract transaction.
    pub(super) fn apply_contract(&mut self, from: AccountId, body: &TxBody) {
        match body {
            TxBody::Prefer { plants } => {
                self.contracts.preferences.insert(from, plants.clone());
            }
            TxBody::Pay { to, amount } => {
                self.contracts.debit(from, *amount);
                self.contracts.credit(*to, *amount);
            }
            &TxBody::Bid {
                interval,
                kwh,
                price,
            } => {
                self.contracts.debit(from, kwh * price);
                self.contracts
                    .bids
                    .entry(interval)
                    .or_default()
                    .insert(from, (kwh, price));
            }
            &TxBody::Ask {
                plant,
                interval,
                kwh,
                price,
            } => {
                self.contracts
                    .asks
                    .entry(interval)
                    .or_default()
                    .insert(from, (plant, kwh, price));
            }
            &TxBody::Settle { interval } => self.settle(interval),
            &TxBody::DrOffer {
                first,
                last,
                rate,
                baseline,
            } => self.contracts.events.push(DrEvent {
                first,
                last,
                rate,
                baseline,
                enrolled: BTreeSet::new(),
                settled: None,
            }),
            &TxBody::DrEnroll { event } => {
                if let Some(e) = self.contracts.events.get_mut(event as usize) {
                    e.enrolled.insert(from);
                }
            }
            &TxBody::DrSettle { event } => {
                let Some(e) = self.contracts.events.get(event as usize) else {
                    return;
                };
                let rewards = self.dr_rewards(e);
                let (mut reduced, mut paid) = (0, 0);
                for (a, wh, reward) in rewards {
                    self.contracts.debit(from, reward);
                    self.contracts.credit(a, reward);
                    let t = self.contracts.totals.entry(a).or_default();
                    t.dr_reduced_wh += wh;
                    t.dr_rewards += reward;
                    reduced += wh;
                    paid += reward;
                }
                if let Some(e) = self.contracts.events.get_mut(event as usize) {
                    e.settled = Some((reduced, paid));
                }
            }
            TxBody::Reading { .. }
            | TxBody::Issue { .. }
            | TxBody::Transfer { .. }
            | TxBody::Claim { .. }
            | TxBody::Revoke { .. } => {}
        }
    }

    /// Grants `reqs` (consumer, kWh) from `plant`'s interval-`k`
    /// certificates, in proportion when short.
    fn grant(&mut self, plant: PlantId, k: u32, reqs: &[(AccountId, u64)]) -> u64 {
        let owner = self.plants[&plant].owner;
        let left = self.held_kwh(plant, owner, k);
        let total: u64 = reqs.iter().map(|r| r.1).sum();
        let grants = if total <= left {
            reqs.to_vec()
        } else {
            proportional(reqs, left)
        };
        grants
            .into_iter()
            .filter(|g| g.1 > 0)
            .map(|(a, n)| self.hand_over(plant, owner, k, n, a))
            .sum()
    }

    fn settle(&mut self, k: u32) {
        let mut matched = 0;
        // Consumers of the interval, by account id.
        let consumers: Vec<AccountId> = self
            .consumption
            .keys()
            .filter(|(_, i)| *i == k)
            .map(|(a, _)| *a)
            .collect();
        let plants: Vec<(PlantId, AccountId, Destination)> = self
            .plants
            .iter()
            .map(|(&p, pl)| (p, pl.owner, pl.destination.clone()))
            .collect();
        // 1. Self-consumption.
        for (p, owner, d) in &plants {
            if *d == Destination::SelfConsumption {
                let n = self.need(*owner, k).min(self.held_kwh(*p, *owner, k));
                if n > 0 {
                    matched += self.hand_over(*p, *owner, k, n, *owner);
                }
            }
        }
        // 2. Direct supply contracts.
        for (p, _, d) in &plants {
            if let Destination::Direct(to) = d {
                let named: BTreeSet<AccountId> = to.iter().copied().collect();
                let reqs: Vec<(AccountId, u64)> = named
                    .into_iter()
                    .map(|a| (a, self.need(a, k)))
                    .filter(|r| r.1 > 0)
                    .collect();
                if !reqs.is_empty() {
                    matched += self.grant(*p, k, &reqs);
                }
            }
        }
        // 3. Supplier preference, in rounds.
        for r in 0..MAX_PREFERENCES {
            let mut asks: BTreeMap<PlantId, Vec<(AccountId, u64)>> = BTreeMap::new();
            for &a in &consumers {
                let need = self.need(a, k);
                let Some(&p) = self.preference(a).get(r) else {
                    continue;
                };
                let local = self
                    .plants
                    .get(&p)
                    .is_some_and(|pl| pl.destination == Destination::LocalMarket);
                if need > 0 && local {
                    asks.entry(p).or_default().push((a, need));
                }
            }
            if asks.is_empty() && consumers.iter().all(|&a| self.preference(a).len() <= r) {
                break;
            }
            for (p, reqs) in asks {
                matched += self.grant(p, k, &reqs);
            }
        }
        // 4. The P2P market.
        let tariffs = self.contracts.tariffs;
        let bids_in = self.contracts.bids.remove(&k).unwrap_or_default();
        let asks_in = self.contracts.asks.remove(&k).unwrap_or_default();
        let asks: Vec<Order> = asks_in
            .iter()
            .map(|(&a, &(p, kwh, price))| Order {
                account: a,
                kwh: kwh.min(self.held_kwh(p, a, k)),
                price,
            })
            .collect();
        let bids: Vec<Order> = bids_in
            .iter()
            .filter(|(_, (_, price))| *price >= tariffs.feed_in)
            .map(|(&a, &(kwh, price))| Order {
                account: a,
                kwh: kwh.min(self.need(a, k)),
                price,
            })
            .collect();
        let c = clear(&bids, &asks, tariffs);
        let price = c.price.unwrap_or(0);
        let mut spent: BTreeMap<AccountId, u64> = BTreeMap::new();
        let mut traded = 0;
        for tr in &c.trades {
            let plant = asks_in[&tr.seller].0;
            let n = self.hand_over(plant, tr.seller, k, tr.kwh, tr.buyer);
            traded += n;
            let value = n * price;
            *spent.entry(tr.buyer).or_default() += value;
            self.contracts.credit(tr.seller, value);
            let s = self.contracts.totals.entry(tr.seller).or_default();
            s.sold_kwh += n;
            s.earned += value;
            let b = self.contracts.totals.entry(tr.buyer).or_default();
            b.bought_kwh += n;
            b.paid += value;
        }
        // Refund what escrow was not spent.
        for (a, (kwh, limit)) in bids_in {
            let refund = (kwh * limit).saturating_sub(spent.get(&a).copied().unwrap_or(0));
            self.contracts.credit(a, refund);
        }
        self.contracts.settled.insert(
            k,
            Settlement {
                matched_kwh: matched,
                market: MarketResult {
                    kwh: traded,
                    price: c.price.filter(|_| traded > 0),
                },
            },
        );
    }
}

/// Splits `left` whole units among requests in proportion (largest
/// remainders; ties to the lower id).
pub fn proportional(reqs: &[(AccountId, u64)], left: u64) -> Vec<(AccountId, u64)> {
    let total: u64 = reqs.iter().map(|r| r.1).sum();
    if total == 0 {
        return reqs.iter().map(|&(j, _)| (j, 0)).collect();
    }
    let mut g: Vec<(AccountId, u64, u64)> = reqs
        .iter()
        .map(|&(j, r)| {
            let num = u128::from(r) * u128::from(left.min(total));
            let q = (num / u128::from(total)) as u64;
            let rem = (num % u128::from(total)) as u64;
            (j, q, rem)
        })
        .collect();
    let mut rest = left.min(total) - g.iter().map(|x| x.1).sum::<u64>();
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by(|&a, &b| g[b].2.cmp(&g[a].2).then(g[a].0.cmp(&g[b].0)));
    for i in order {
        if rest == 0 {
            break;
        }
        g[i].1 += 1;
        rest -= 1;
    }
    g.into_iter().map(|(j, q, _)| (j, q)).collect()
}
