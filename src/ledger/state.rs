//! The ledger's state machine: accounts with roles and keys, meter readings,
//! kWh certificates held in ranges, and the transactions that change them.
//! Exact and deterministic (ordered maps only).
//!
//! # Certificates
//! A plant's certificates are numbered 0, 1, 2, … in issue order; each is
//! one kWh. They are stored as ranges with one owner, interval and status,
//! split when part of a range moves and merged again when neighbours agree,
//! so a plant's hour of output is one range however many kWh it holds.
//!
//! # Permissions
//! | role | may submit |
//! |---|---|
//! | meter (a device) | readings; issue, for its own plant only |
//! | producer | transfer |
//! | consumer, prosumer | transfer, claim |
//! | producer, consumer, prosumer | payments |
//! | consumer, prosumer | preferences, bids, DR enrolment |
//! | producer, prosumer | asks, for their own plant |
//! | operator | revoke, payments, settlements, DR offers and settlements |
//! | validator, auditor | nothing (validators sign blocks; auditors read) |
//!
//! # Contracts
//! Supplier preference, the P2P market and demand response run on-chain as
//! native transitions ([`contracts`]): the operator's `Settle` of an
//! interval matches it and clears its market; `DrSettle` pays an event's
//! rewards. Money is an integer balance per account [µ-currency].
//!
//! # Invariants (checked after every block, [`State::check`])
//! 1. For each plant and interval, the ids issued are held, claimed or
//!    revoked, each exactly once: the plant's ranges partition
//!    `0 .. next sequence`, and per interval they add up to what was issued.
//! 2. The kWh issued for a plant-interval never exceed its metered
//!    generation.
//! 3. A consumer's claims in an interval never exceed their metered
//!    consumption.
//! 4. No id is claimed twice (follows from 1; claims are also recounted
//!    from the ranges and compared with the running totals).
//! 5. Money is conserved: balances plus bids in escrow equal the genesis
//!    supply.

use std::collections::BTreeMap;

/// The state's maps: persistent B-trees (imbl's `OrdMap`), ordered as
/// `BTreeMap` is, whose clones share structure. A block is validated on a
/// copy of the state; with these, the copy costs O(1) instead of the whole
/// history of readings and certificates, which grows all day.
pub(crate) type Map<K, V> = imbl::OrdMap<K, V>;

use ed25519_dalek::VerifyingKey;

use super::market::Tariffs;
use super::tx::{AccountId, Certs, PlantId, Tx, TxBody};

pub mod contracts;

pub use contracts::{DrEvent, MarketResult, Settlement, Totals};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The grid operator.
    Operator,
    /// A plant owner.
    Producer,
    /// A consumer.
    Consumer,
    /// A consumer that also produces.
    Prosumer,
    /// A block validator.
    Validator,
    /// Reads, never writes.
    Auditor,
    /// A meter, reading for a plant (generation) or a consumer.
    Meter(Metered),
}

impl Role {
    /// A name for errors and tables.
    pub fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Prosumer => "prosumer",
            Role::Validator => "validator",
            Role::Auditor => "auditor",
            Role::Meter(_) => "meter",
        }
    }
}

/// What a meter measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metered {
    /// A plant's generation.
    Plant(PlantId),
    /// A consumer's consumption.
    Consumer(AccountId),
}

/// Where a plant's output goes (the producer's choice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The owner's own consumption.
    SelfConsumption,
    /// The neighbourhood's P2P market.
    LocalMarket,
    /// Direct supply contracts to these consumers.
    Direct(Vec<AccountId>),
    /// The wholesale market (it leaves the neighbourhood).
    Wholesale,
}

/// A member of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its role.
    pub role: Role,
    /// Its public key.
    pub key: VerifyingKey,
}

/// A registered plant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plant {
    /// The owner.
    pub owner: AccountId,
    /// Its meter (the only account that may issue for it).
    pub meter: AccountId,
    /// Where its output goes.
    pub destination: Destination,
}

/// A certificate range's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Held by an account.
    Held(AccountId),
    /// Retired against this account's consumption in this interval.
    Claimed(AccountId, u32),
    /// Revoked.
    Revoked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    end: u64,
    /// The generation interval.
    interval: u32,
    status: Status,
}

/// Why a transaction was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The signature does not verify against the account's key.
    #[error("forged: the signature does not verify")]
    BadSignature,
    /// No such account.
    #[error("unknown account {0:?}")]
    UnknownAccount(AccountId),
    /// No such plant.
    #[error("unknown plant {0:?}")]
    UnknownPlant(PlantId),
    /// The account's role may not submit this kind.
    #[error("a {role} may not submit a {kind}")]
    Unauthorised {
        /// The role.
        role: &'static str,
        /// The transaction kind.
        kind: &'static str,
    },
    /// Only a plant's registered meter may issue for it.
    #[error("{meter:?} is not the meter of {plant:?}")]
    NotTheMeter {
        /// The signer.
        meter: AccountId,
        /// The plant.
        plant: PlantId,
    },
    /// The nonce is not the account's next.
    #[error("nonce {got}, expected {want}")]
    BadNonce {
        /// In the transaction.
        got: u64,
        /// The account's next.
        want: u64,
    },
    /// A reading for that interval exists already.
    #[error("interval {0} already has a reading")]
    DuplicateReading(u32),
    /// Issuing more than the metered generation.
    #[error(
        "issuing {asked} kWh for interval {interval}: only {left} kWh of metered generation left"
    )]
    ExceedsGeneration {
        /// The interval.
        interval: u32,
        /// Asked for.
        asked: u64,
        /// Metered and not yet issued.
        left: u64,
    },
    /// Claiming more than the metered consumption.
    #[error(
        "claiming {asked} kWh for interval {interval}: only {left} kWh of metered consumption left"
    )]
    ExceedsConsumption {
        /// The interval.
        interval: u32,
        /// Asked for.
        asked: u64,
        /// Metered and not yet claimed.
        left: u64,
    },
    /// Some of the certificates are not held by the signer (an empty
    /// wallet, someone else's, or claimed or revoked already).
    #[error("certificates {first}..{end} of {plant:?} are not all held by the sender")]
    NotHeld {
        /// The plant.
        plant: PlantId,
        /// First id.
        first: u64,
        /// One past the last.
        end: u64,
    },
    /// Certificates already claimed.
    #[error("certificates {first}..{end} of {plant:?} include ones already claimed")]
    AlreadyClaimed {
        /// The plant.
        plant: PlantId,
        /// First id.
        first: u64,
        /// One past the last.
        end: u64,
    },
    /// A zero-sized operation.
    #[error("an empty {0}")]
    Empty(&'static str),
    /// Not enough money.
    #[error("needs {need} µ, has {have} µ")]
    InsufficientFunds {
        /// Needed [µ-currency].
        need: u64,
        /// Held [µ-currency].
        have: u64,
    },
    /// The interval is settled already.
    #[error("interval {0} is settled already")]
    AlreadySettled(u32),
    /// The account has an order for that interval already.
    #[error("one order per account and interval: interval {0} has one")]
    DuplicateOrder(u32),
    /// The plant is not the sender's, or does not sell on the market.
    #[error("{account:?} may not sell {plant:?}'s output on the market")]
    NotTheSeller {
        /// The sender.
        account: AccountId,
        /// The plant.
        plant: PlantId,
    },
    /// A preference naming too many plants, or one twice.
    #[error("a preference ranks at most {max} distinct plants")]
    BadPreference {
        /// The most.
        max: usize,
    },
    /// No such demand-response event.
    #[error("no demand-response event {0}")]
    UnknownEvent(u32),
    /// A demand-response event's intervals make no sense.
    #[error(
        "a DR event needs first ≤ last, at most {max} intervals, and a baseline of 1..={max} intervals before it"
    )]
    BadEvent {
        /// The most intervals.
        max: u32,
    },
    /// Enrolment after the event's first interval was metered, or twice.
    #[error("enrolment in DR event {0} is closed or done")]
    EnrolmentClosed(u32),
    /// The event is settled already.
    #[error("DR event {0} is settled already")]
    EventSettled(u32),
}

/// A broken invariant: a bug, never a rejected transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

/// The ledger's state.
#[derive(Clone, Debug, Default)]
pub struct State {
    accounts: Map<AccountId, Account>,
    plants: Map<PlantId, Plant>,
    nonces: Map<AccountId, u64>,
    /// Metered generation per plant-interval [Wh].
    generation: Map<(PlantId, u32), u64>,
    /// Metered consumption per consumer-interval [Wh].
    consumption: Map<(AccountId, u32), u64>,
    /// Issued per plant-interval [kWh].
    issued: Map<(PlantId, u32), u64>,
    /// Claimed per consumer-interval [kWh].
    claimed: Map<(AccountId, u32), u64>,
    next_seq: Map<PlantId, u64>,
    ranges: Map<(PlantId, u64), Range>,
    /// First id issued per plant-interval.
    issue_start: Map<(PlantId, u32), u64>,
    /// The contracts' state.
    contracts: contracts::Book,
}

impl State {
    /// A genesis state with these members and plants.
    pub fn genesis(
        accounts: impl IntoIterator<Item = (AccountId, Account)>,
        plants: impl IntoIterator<Item = (PlantId, Plant)>,
    ) -> State {
        State {
            accounts: accounts.into_iter().collect(),
            plants: plants.into_iter().collect(),
            ..State::default()
        }
    }

    /// Sets the genesis balances [µ-currency] and the market's tariffs.
    pub fn with_money(
        mut self,
        balances: impl IntoIterator<Item = (AccountId, u64)>,
        tariffs: Tariffs,
    ) -> State {
        self.contracts.balances = balances.into_iter().collect();
        self.contracts.supply = self.contracts.balances.values().sum();
        self.contracts.tariffs = tariffs;
        self
    }

    /// An account.
    pub fn account(&self, a: AccountId) -> Option<&Account> {
        self.accounts.get(&a)
    }

    /// A plant.
    pub fn plant(&self, p: PlantId) -> Option<&Plant> {
        self.plants.get(&p)
    }

    /// The next nonce of an account.
    pub fn nonce(&self, a: AccountId) -> u64 {
        self.nonces.get(&a).copied().unwrap_or(0)
    }

    /// kWh issued for a plant-interval.
    pub fn issued(&self, p: PlantId, interval: u32) -> u64 {
        self.issued.get(&(p, interval)).copied().unwrap_or(0)
    }

    /// kWh claimed by a consumer for an interval.
    pub fn claimed(&self, a: AccountId, interval: u32) -> u64 {
        self.claimed.get(&(a, interval)).copied().unwrap_or(0)
    }

    /// The ranges held by `owner`, in order: (plant, first, count,
    /// generation interval).
    pub fn holdings(&self, owner: AccountId) -> Vec<(Certs, u32)> {
        self.ranges
            .iter()
            .filter(|(_, r)| r.status == Status::Held(owner))
            .map(|(&(plant, first), r)| {
                (
                    Certs {
                        plant,
                        first,
                        count: r.end - first,
                    },
                    r.interval,
                )
            })
            .collect()
    }

    /// Claimed kWh by (consumer, plant), for tracing consumption to its
    /// origin.
    pub fn claims_by_origin(&self) -> BTreeMap<(AccountId, PlantId), u64> {
        let mut out = BTreeMap::new();
        for (&(plant, first), r) in &self.ranges {
            if let Status::Claimed(by, _) = r.status {
                *out.entry((by, plant)).or_default() += r.end - first;
            }
        }
        out
    }

    /// Whether `tx` may be applied (everything but its signature, which the
    /// caller verifies).
    pub fn check_tx(&self, tx: &Tx) -> Result<(), TxError> {
        let acc = self
            .accounts
            .get(&tx.from)
            .ok_or(TxError::UnknownAccount(tx.from))?;
        let want = self.nonce(tx.from);
        if tx.nonce != want {
            return Err(TxError::BadNonce {
                got: tx.nonce,
                want,
            });
        }
        let kind = tx.body.kind();
        let unauthorised = || TxError::Unauthorised {
            role: acc.role.name(),
            kind,
        };
        match &tx.body {
            TxBody::Reading { interval, .. } => {
                let dup = match acc.role {
                    Role::Meter(Metered::Plant(p)) => self.generation.contains_key(&(p, *interval)),
                    Role::Meter(Metered::Consumer(c)) => {
                        self.consumption.contains_key(&(c, *interval))
                    }
                    _ => return Err(unauthorised()),
                };
                if dup {
                    return Err(TxError::DuplicateReading(*interval));
                }
            }
            TxBody::Issue {
                plant,
                interval,
                kwh,
            } => {
                if !matches!(acc.role, Role::Meter(Metered::Plant(_))) {
                    return Err(unauthorised());
                }
                let p = self
                    .plants
                    .get(plant)
                    .ok_or(TxError::UnknownPlant(*plant))?;
                if p.meter != tx.from {
                    return Err(TxError::NotTheMeter {
                        meter: tx.from,
                        plant: *plant,
                    });
                }
                if *kwh == 0 {
                    return Err(TxError::Empty(kind));
                }
                let metered = self
                    .generation
                    .get(&(*plant, *interval))
                    .copied()
                    .unwrap_or(0);
                let left = (metered / 1000).saturating_sub(self.issued(*plant, *interval));
                if *kwh > left {
                    return Err(TxError::ExceedsGeneration {
                        interval: *interval,
                        asked: *kwh,
                        left,
                    });
                }
            }
            TxBody::Transfer { to, certs } => {
                if !matches!(acc.role, Role::Producer | Role::Consumer | Role::Prosumer) {
                    return Err(unauthorised());
                }
                if !self.accounts.contains_key(to) {
                    return Err(TxError::UnknownAccount(*to));
                }
                self.check_held(tx.from, certs)?;
            }
            TxBody::Claim { certs, interval } => {
                if !matches!(acc.role, Role::Consumer | Role::Prosumer) {
                    return Err(unauthorised());
                }
                self.check_held(tx.from, certs)?;
                let metered = self
                    .consumption
                    .get(&(tx.from, *interval))
                    .copied()
                    .unwrap_or(0);
                let left = (metered / 1000).saturating_sub(self.claimed(tx.from, *interval));
                if certs.count > left {
                    return Err(TxError::ExceedsConsumption {
                        interval: *interval,
                        asked: certs.count,
                        left,
                    });
                }
            }
            TxBody::Revoke { certs } => {
                if acc.role != Role::Operator {
                    return Err(unauthorised());
                }
                self.check_status(certs, |s| matches!(s, Status::Held(_)))?;
            }
            body => self.check_contract(tx.from, acc.role, body)?,
        }
        Ok(())
    }

    fn check_held(&self, owner: AccountId, c: &Certs) -> Result<(), TxError> {
        self.check_status(c, |s| s == Status::Held(owner))
    }

    /// Every id of `c` is in a range whose status passes `ok`.
    fn check_status(&self, c: &Certs, ok: impl Fn(Status) -> bool) -> Result<(), TxError> {
        if c.count == 0 {
            return Err(TxError::Empty("certificate range"));
        }
        if !self.plants.contains_key(&c.plant) {
            return Err(TxError::UnknownPlant(c.plant));
        }
        let (first, end) = (c.first, c.end());
        let mut at = first;
        let mut claimed = false;
        let start = self
            .ranges
            .range(..=(c.plant, first))
            .next_back()
            .filter(|((p, _), _)| *p == c.plant)
            .map_or(first, |(&(_, f), _)| f);
        for (&(p, f), r) in self.ranges.range((c.plant, start)..) {
            if p != c.plant || f >= end {
                break;
            }
            if r.end <= at {
                continue;
            }
            if f > at {
                break; // a gap: ids never issued
            }
            if matches!(r.status, Status::Claimed(..)) {
                claimed = true;
            }
            if !ok(r.status) {
                at = u64::MAX;
                break;
            }
            at = r.end;
            if at >= end {
                break;
            }
        }
        if at >= end && at != u64::MAX {
            return Ok(());
        }
        if claimed {
            Err(TxError::AlreadyClaimed {
                plant: c.plant,
                first,
                end,
            })
        } else {
            Err(TxError::NotHeld {
                plant: c.plant,
                first,
                end,
            })
        }
    }

    /// Applies a checked transaction ([`State::check_tx`] first).
    pub fn apply(&mut self, tx: &Tx) -> Result<(), TxError> {
        self.check_tx(tx)?;
        *self.nonces.entry(tx.from).or_default() += 1;
        let role = self.accounts[&tx.from].role;
        match &tx.body {
            TxBody::Reading { interval, wh } => match role {
                Role::Meter(Metered::Plant(p)) => {
                    self.generation.insert((p, *interval), *wh);
                }
                Role::Meter(Metered::Consumer(c)) => {
                    self.consumption.insert((c, *interval), *wh);
                }
                _ => {}
            },
            TxBody::Issue {
                plant,
                interval,
                kwh,
            } => {
                let owner = self.plants[plant].owner;
                let seq = self.next_seq.entry(*plant).or_default();
                let first = *seq;
                *seq += kwh;
                *self.issued.entry((*plant, *interval)).or_default() += kwh;
                self.issue_start.entry((*plant, *interval)).or_insert(first);
                self.ranges.insert(
                    (*plant, first),
                    Range {
                        end: first + kwh,
                        interval: *interval,
                        status: Status::Held(owner),
                    },
                );
                self.merge_around(*plant, first);
            }
            TxBody::Transfer { to, certs } => self.set_status(certs, |_| Status::Held(*to)),
            TxBody::Claim { certs, interval } => {
                *self.claimed.entry((tx.from, *interval)).or_default() += certs.count;
                let by = tx.from;
                self.set_status(certs, |_| Status::Claimed(by, *interval));
            }
            TxBody::Revoke { certs } => self.set_status(certs, |_| Status::Revoked),
            body => self.apply_contract(tx.from, body),
        }
        Ok(())
    }

    /// Splits the ranges at `at` so that a range starts there.
    fn split(&mut self, plant: PlantId, at: u64) {
        let Some((&(p, f), &r)) = self.ranges.range(..=(plant, at)).next_back() else {
            return;
        };
        if p != plant || f == at || r.end <= at {
            return;
        }
        self.ranges.insert((p, f), Range { end: at, ..r });
        self.ranges.insert((p, at), r);
    }

    fn set_status(&mut self, c: &Certs, status: impl Fn(Status) -> Status) {
        self.split(c.plant, c.first);
        self.split(c.plant, c.end());
        let keys: Vec<(PlantId, u64)> = self
            .ranges
            .range((c.plant, c.first)..(c.plant, c.end()))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            if let Some(r) = self.ranges.get_mut(k) {
                r.status = status(r.status);
            }
        }
        self.merge_around(c.plant, c.end());
        for k in keys.iter().rev() {
            self.merge_around(k.0, k.1);
        }
    }

    /// Merges the range starting at `first` into its left neighbour when
    /// they agree (interval and status).
    fn merge_around(&mut self, plant: PlantId, first: u64) {
        let Some(&r) = self.ranges.get(&(plant, first)) else {
            return;
        };
        let Some((&(p, f), &l)) = self.ranges.range(..(plant, first)).next_back() else {
            return;
        };
        if p == plant && l.end == first && l.interval == r.interval && l.status == r.status {
            self.ranges.remove(&(plant, first));
            self.ranges.insert((p, f), Range { end: r.end, ..l });
        }
    }

    /// Checks every invariant; returns the violations (none, unless there
    /// is a bug).
    pub fn check(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        // 1. Each plant's ranges partition 0..next_seq, and per interval add
        //    up to what was issued.
        let mut at: BTreeMap<PlantId, u64> = BTreeMap::new();
        let mut per_interval: BTreeMap<(PlantId, u32), u64> = BTreeMap::new();
        let mut claims: BTreeMap<(AccountId, u32), u64> = BTreeMap::new();
        for (&(p, f), r) in &self.ranges {
            let expect = at.get(&p).copied().unwrap_or(0);
            if f != expect || r.end <= f {
                v.push(Violation(format!(
                    "{p:?}: a range starts at {f} (ends {}), expected one at {expect}",
                    r.end
                )));
            }
            at.insert(p, r.end.max(expect));
            *per_interval.entry((p, r.interval)).or_default() += r.end - f;
            if let Status::Claimed(by, i) = r.status {
                *claims.entry((by, i)).or_default() += r.end - f;
            }
        }
        for (p, &n) in &self.next_seq {
            if at.get(p).copied().unwrap_or(0) != n {
                v.push(Violation(format!(
                    "{p:?}: ranges cover 0..{}, issued 0..{n}",
                    at.get(p).copied().unwrap_or(0)
                )));
            }
        }
        if !per_interval.iter().eq(self.issued.iter()) {
            v.push(Violation(
                "per-interval certificates differ from the issued totals".into(),
            ));
        }
        // 2. Issued ≤ metered generation.
        for (&(p, i), &kwh) in &self.issued {
            let wh = self.generation.get(&(p, i)).copied().unwrap_or(0);
            if kwh * 1000 > wh {
                v.push(Violation(format!(
                    "{p:?} interval {i}: {kwh} kWh issued, {wh} Wh metered"
                )));
            }
        }
        // 3. Claims ≤ metered consumption; 4. claims counted once.
        if !claims.iter().eq(self.claimed.iter()) {
            v.push(Violation(
                "claims recounted from the certificates differ from the running totals".into(),
            ));
        }
        for (&(a, i), &kwh) in &claims {
            let wh = self.consumption.get(&(a, i)).copied().unwrap_or(0);
            if kwh * 1000 > wh {
                v.push(Violation(format!(
                    "{a:?} interval {i}: {kwh} kWh claimed, {wh} Wh metered"
                )));
            }
        }
        // 5. Money is conserved.
        let money = self.contracts.money();
        if money != self.contracts.supply {
            v.push(Violation(format!(
                "money: {money} µ in balances and escrow, {} µ at genesis",
                self.contracts.supply
            )));
        }
        v
    }

    /// Certificate ranges stored (a measure of fragmentation).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }
}
