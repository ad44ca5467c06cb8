//! The ledger's participants: plants with meters, consumers and prosumers
//! with meters, their market orders, and the operator's settlements and
//! demand-response events. Readings are synthetic for a ledger studied
//! alone ([`Workload::meter`]) or given, e.g. by the grid's meters
//! ([`Workload::meter_with`]); the plants' output is synthetic either way. The contracts
//! themselves run on-chain ([`super::state::contracts`]); this module only
//! submits what the participants would.
//!
//! Producers choose where each plant's output goes ([`Destination`]): a
//! wholesale plant's certificates stay with its producer (its energy
//! leaves the neighbourhood); a plant under direct supply contracts serves
//! its named consumers; the rest sell on the local market, where consumers
//! rank them. Prosumers' rooftop plants serve their own demand first.
//!
//! At the start every consumer registers its ranking (`Prefer`). At the end
//! of each metering interval every meter posts its reading and each plant
//! meter issues one certificate per whole kWh; each prosumer asks to sell
//! its expected surplus (or bids for its deficit) and each consumer bids
//! for its demand on the P2P market, at its own limit price. After the
//! settlement delay (when the readings are final) the operator settles the
//! interval on-chain.
//!
//! **Demand response:** when the neighbourhood's net demand in an interval
//! exceeds the threshold, the operator posts an incentive over the next
//! intervals (one event at a time); each consumer enrols with its
//! participation probability and, while the event lasts, reduces its
//! demand by the given fraction. The event settles after its last interval.
//!
//! Output shapes: a plant's generation follows a half-sine from 06:00 to
//! 18:00 at its peak, scaled by a weather factor (0.6–1) per interval; a
//! consumer's demand is its mean power with ±30 % noise per interval. Each
//! entity's randomness is its own stream. Certificates are whole kWh and
//! claims are per interval, so only whole kWh of an interval's consumption
//! can be traced: consumers here are small businesses or building meters
//! (several kW), not single flats.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::crypto::key_for;
use super::market::Tariffs;
use super::state::{Account, Destination, Metered, Plant, Role, State};
use super::tx::{AccountId, PlantId, Tx, TxBody};
use serde::{Deserialize, Serialize};

use super::chain::MICRO;
use crate::kernel::SimDuration;
use crate::kernel::rng::stream;

/// Genesis balance of each consumer and prosumer [µ-currency].
pub const CONSUMER_FUNDS: u64 = 1_000_000_000;
/// Genesis balance of the operator, who pays DR rewards [µ-currency].
pub const OPERATOR_FUNDS: u64 = 1_000_000_000_000;

/// One interval's readings of the consumers and prosumers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    /// Each consumer's consumption [Wh].
    pub consumer_wh: Vec<u64>,
    /// Each prosumer's generation and consumption [Wh].
    pub prosumer_wh: Vec<(u64, u64)>,
    /// The neighbourhood's net demand [kW] as the grid measures it at the
    /// transformer, if known (else the readings' net, plants included).
    pub net_kw: Option<f64>,
}

/// The operator's demand-response policy: when the net demand of an
/// interval exceeds `threshold_kw`, an incentive is posted over the next
/// `duration` intervals, starting two intervals later. (The scenario's
/// `ledger.workload.dr`.)
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `threshold_kw` | net demand of the neighbourhood [kW] | `100.0` |
/// | `duration` | event length [intervals], 1 to 96 | `4` |
/// | `baseline` | baseline window before the event [intervals], 1 to 96 | `4` |
/// | `rate` | reward per kWh reduced [currency/kWh] | `0.20` |
/// | `participation` | probability a consumer enrols, 0 to 1 | `0.5` |
/// | `reduction` | fraction of demand an enrolled consumer sheds, 0 to 1 | `0.3` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrSettings {
    /// Net demand above which an event is posted [kW].
    pub threshold_kw: f64,
    /// Length of an event [intervals].
    pub duration: u32,
    /// Baseline window before an event [intervals].
    pub baseline: u32,
    /// Reward [currency/kWh].
    pub rate: f64,
    /// Probability that a consumer enrols.
    pub participation: f64,
    /// Fraction of its demand an enrolled consumer sheds.
    pub reduction: f64,
}

impl Default for DrSettings {
    fn default() -> Self {
        DrSettings {
            threshold_kw: 100.0,
            duration: 4,
            baseline: 4,
            rate: 0.20,
            participation: 0.5,
            reduction: 0.3,
        }
    }
}

/// The ledger's participants and how they behave (the scenario's
/// `ledger.workload`). With a grid, its meters stand for the consumers and
/// prosumers, whose counts and mean powers here are then not used.
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `plants` | count (one producer each) | `8` |
/// | `consumers` | count | `24` |
/// | `interval` | metering interval | `"15min"` |
/// | `plant_peak_kw` | a plant's peak output [kW] | `50.0` |
/// | `consumer_mean_kw` | a consumer's mean demand [kW] | `6.0` |
/// | `preferences` | plants each consumer ranks | `3` |
/// | `settle_after` | from an interval's end to its matching | `"5min"` |
/// | `start_h` | local time of day at the start of the run [h] | `0.0` |
/// | `prosumers` | count: a rooftop plant and a demand each; they consume their own output first and sell the surplus on the P2P market | `6` |
/// | `prosumer_peak_kw`, `prosumer_mean_kw` | a prosumer's peak output and mean demand [kW] | `12.0`, `3.0` |
/// | `feed_in_tariff`, `grid_tariff` | the market's price bounds [currency/kWh] | `0.08`, `0.30` |
/// | `dr` | the operator's demand-response policy, see [`DrSettings`] | none |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSettings {
    /// Plants (one producer each).
    pub plants: u32,
    /// Consumers.
    pub consumers: u32,
    /// Metering interval.
    pub interval: SimDuration,
    /// Peak output of a plant [kW].
    pub plant_peak_kw: f64,
    /// Mean demand of a consumer [kW].
    pub consumer_mean_kw: f64,
    /// Plants each consumer ranks.
    pub preferences: u32,
    /// From an interval's end to its settlement.
    pub settle_after: SimDuration,
    /// Local time of day at the start of the run [h].
    pub start_h: f64,
    /// Prosumers (a rooftop plant and a demand each).
    pub prosumers: u32,
    /// Peak output of a prosumer's plant [kW].
    pub prosumer_peak_kw: f64,
    /// Mean demand of a prosumer [kW].
    pub prosumer_mean_kw: f64,
    /// What the grid pays for export [currency/kWh].
    pub feed_in_tariff: f64,
    /// What the grid charges for import [currency/kWh].
    pub grid_tariff: f64,
    /// The operator's demand-response policy, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dr: Option<DrSettings>,
}

impl Default for WorkloadSettings {
    fn default() -> Self {
        WorkloadSettings {
            plants: 8,
            consumers: 24,
            interval: SimDuration::from_mins(15).expect("fits"),
            plant_peak_kw: 50.0,
            consumer_mean_kw: 6.0,
            preferences: 3,
            settle_after: SimDuration::from_mins(5).expect("fits"),
            start_h: 0.0,
            prosumers: 6,
            prosumer_peak_kw: 12.0,
            prosumer_mean_kw: 3.0,
            feed_in_tariff: 0.08,
            grid_tariff: 0.30,
            dr: None,
        }
    }
}

/// An amount [currency] in whole µ-units (validated finite and ≥ 0).
pub fn micro(x: f64) -> u64 {
    (x * MICRO).round() as u64
}

impl WorkloadSettings {
    /// The market's tariffs [µ-currency/kWh].
    pub fn tariffs(&self) -> Tariffs {
        Tariffs {
            feed_in: micro(self.feed_in_tariff),
            grid: micro(self.grid_tariff),
        }
    }
}

/// A price drawn uniformly between the tariffs [µ-currency/kWh].
fn price_between(t: Tariffs, rng: &mut Xoshiro256PlusPlus) -> u64 {
    t.feed_in + (t.grid.saturating_sub(t.feed_in) as f64 * rng.random::<f64>()) as u64
}

/// Who is who: account ids are laid out as operator 0, then producers,
/// plant meters, consumers, consumer meters, prosumers, their plant meters
/// and their consumption meters.
#[derive(Clone, Debug)]
pub struct Workload {
    s: WorkloadSettings,
    keys: BTreeMap<AccountId, SigningKey>,
    nonces: BTreeMap<AccountId, u64>,
    plant_rng: Vec<Xoshiro256PlusPlus>,
    consumer_rng: Vec<Xoshiro256PlusPlus>,
    prosumer_rng: Vec<Xoshiro256PlusPlus>,
    ranking: Vec<Vec<PlantId>>,
    /// Each consumer's bid limit [µ-currency/kWh].
    bid_price: Vec<u64>,
    /// Whether each consumer enrols in DR events.
    enrols: Vec<bool>,
    /// Metered consumption so far [kWh, whole per interval].
    consumed_kwh: u64,
    /// DR events posted: (first, last) intervals.
    events: Vec<(u64, u64)>,
    /// DR events not yet settled, by their last interval.
    open_events: BTreeMap<u64, u32>,
}

impl Workload {
    /// A workload and its genesis state.
    pub fn new(s: WorkloadSettings, seed: u64) -> (Workload, State) {
        let p = s.plants;
        let c = s.consumers;
        let mut keys = BTreeMap::new();
        let mut accounts = Vec::new();
        let mut add = |id: u32, role: Role, keys: &mut BTreeMap<AccountId, SigningKey>| {
            let k = key_for(seed, "account", u64::from(id));
            accounts.push((
                AccountId(id),
                Account {
                    role,
                    key: k.verifying_key(),
                },
            ));
            keys.insert(AccountId(id), k);
        };
        add(0, Role::Operator, &mut keys);
        // Where each plant's output goes: every fourth (from the first,
        // when there are several) sells wholesale, out of the
        // neighbourhood; every fourth from the second supplies two named
        // consumers directly; the rest sell on the local market.
        let consumer_id = |j: u32| AccountId(1 + 2 * p + j);
        let destinations: Vec<Destination> = (0..p)
            .map(|i| match i % 4 {
                0 if p > 1 => Destination::Wholesale,
                1 if c > 0 => {
                    Destination::Direct(vec![consumer_id(i % c), consumer_id((i + 1) % c)])
                }
                _ => Destination::LocalMarket,
            })
            .collect();
        let mut plants = Vec::new();
        for i in 0..p {
            add(1 + i, Role::Producer, &mut keys);
            add(
                1 + p + i,
                Role::Meter(Metered::Plant(PlantId(i))),
                &mut keys,
            );
            plants.push((
                PlantId(i),
                Plant {
                    owner: AccountId(1 + i),
                    meter: AccountId(1 + p + i),
                    destination: destinations[i as usize].clone(),
                },
            ));
        }
        for j in 0..c {
            add(1 + 2 * p + j, Role::Consumer, &mut keys);
            add(
                1 + 2 * p + c + j,
                Role::Meter(Metered::Consumer(AccountId(1 + 2 * p + j))),
                &mut keys,
            );
        }
        let q = s.prosumers;
        let base = 1 + 2 * p + 2 * c;
        for k in 0..q {
            let pro = AccountId(base + k);
            add(base + k, Role::Prosumer, &mut keys);
            add(
                base + q + k,
                Role::Meter(Metered::Plant(PlantId(p + k))),
                &mut keys,
            );
            add(
                base + 2 * q + k,
                Role::Meter(Metered::Consumer(pro)),
                &mut keys,
            );
            plants.push((
                PlantId(p + k),
                Plant {
                    owner: pro,
                    meter: AccountId(base + q + k),
                    destination: Destination::SelfConsumption,
                },
            ));
        }
        let ranking = (0..c)
            .map(|j| {
                let mut rng = stream(seed, "consumer", u64::from(j), "preference");
                // Only plants selling on the local market can be ranked.
                let mut order: Vec<u32> = (0..p)
                    .filter(|&i| destinations[i as usize] == Destination::LocalMarket)
                    .collect();
                // Fisher–Yates from the consumer's own stream.
                for k in (1..order.len()).rev() {
                    let r = rng.random_range(0..=k);
                    order.swap(k, r);
                }
                order.truncate(s.preferences.max(1) as usize);
                order.into_iter().map(PlantId).collect()
            })
            .collect();
        let t = s.tariffs();
        let participation = s.dr.as_ref().map_or(0.0, |d| d.participation);
        let mut funds = vec![(AccountId(0), OPERATOR_FUNDS)];
        funds.extend((0..c).map(|j| (consumer_id(j), CONSUMER_FUNDS)));
        funds.extend((0..q).map(|k| (AccountId(base + k), CONSUMER_FUNDS)));
        let w = Workload {
            plant_rng: (0..p)
                .map(|i| stream(seed, "plant", u64::from(i), "output"))
                .collect(),
            consumer_rng: (0..c)
                .map(|j| stream(seed, "consumer", u64::from(j), "demand"))
                .collect(),
            prosumer_rng: (0..q)
                .map(|k| stream(seed, "prosumer", u64::from(k), "energy"))
                .collect(),
            ranking,
            bid_price: (0..c)
                .map(|j| price_between(t, &mut stream(seed, "consumer", u64::from(j), "bid")))
                .collect(),
            enrols: (0..c)
                .map(|j| {
                    stream(seed, "consumer", u64::from(j), "dr").random::<f64>() < participation
                })
                .collect(),
            consumed_kwh: 0,
            events: Vec::new(),
            open_events: BTreeMap::new(),
            keys,
            nonces: BTreeMap::new(),
            s,
        };
        let genesis = State::genesis(accounts, plants).with_money(funds, t);
        (w, genesis)
    }

    fn plant_meter(&self, i: u32) -> AccountId {
        AccountId(1 + self.s.plants + i)
    }

    /// Consumer `j`'s account.
    pub fn consumer(&self, j: u32) -> AccountId {
        AccountId(1 + 2 * self.s.plants + j)
    }

    fn consumer_meter(&self, j: u32) -> AccountId {
        AccountId(1 + 2 * self.s.plants + self.s.consumers + j)
    }

    /// The kind of plant `p`: a community plant outside the feeder, or a
    /// prosumer's rooftop PV.
    pub fn plant_kind(&self, p: PlantId) -> &'static str {
        if p.0 < self.s.plants {
            "community"
        } else {
            "rooftop"
        }
    }

    /// The market's tariffs.
    pub fn tariffs(&self) -> Tariffs {
        self.s.tariffs()
    }

    /// Consumer accounts, in order.
    pub fn consumers(&self) -> Vec<AccountId> {
        (0..self.s.consumers).map(|j| self.consumer(j)).collect()
    }

    /// Prosumer accounts, in order.
    pub fn prosumers(&self) -> Vec<AccountId> {
        (0..self.s.prosumers).map(|k| self.prosumer(k)).collect()
    }

    /// Prosumer `k`'s account.
    pub fn prosumer(&self, k: u32) -> AccountId {
        AccountId(1 + 2 * self.s.plants + 2 * self.s.consumers + k)
    }

    fn prosumer_meters(&self, k: u32) -> (AccountId, AccountId) {
        let q = self.s.prosumers;
        let p = self.prosumer(k).0;
        (AccountId(p + q), AccountId(p + 2 * q))
    }

    /// Metered consumption so far [kWh, whole per interval].
    pub fn consumed_kwh(&self) -> u64 {
        self.consumed_kwh
    }

    /// The DR events posted so far: (first, last) intervals.
    pub fn dr_events(&self) -> &[(u64, u64)] {
        &self.events
    }

    /// The DR reduction an enrolled consumer applies (0 without DR).
    pub fn dr_reduction(&self) -> f64 {
        self.s.dr.as_ref().map_or(0.0, |d| d.reduction)
    }

    /// Whether consumer `j` sheds load in interval `k` (it enrolled in an
    /// event covering `k`).
    pub fn shedding(&self, j: u32, k: u64) -> bool {
        self.enrols[j as usize] && self.events.iter().any(|&(f, l)| (f..=l).contains(&k))
    }

    fn tx(&mut self, from: AccountId, body: TxBody) -> Tx {
        let n = self.nonces.entry(from).or_default();
        let key = &self.keys[&from];
        let t = Tx::signed(key, from, *n, body);
        *n += 1;
        t
    }

    /// The participants' transactions at the end of interval `k`, with
    /// synthetic readings (see the module): readings, issues, market
    /// orders, and DR offers and enrolments (at `k = 0` first the
    /// consumers' preferences).
    pub fn meter(&mut self, k: u64) -> Vec<Tx> {
        let m = self.synthetic(k);
        self.meter_with(k, &m)
    }

    fn sun(&self, k: u64) -> f64 {
        let hours = self.s.interval.as_secs_f64() / 3600.0;
        let mid_h = (self.s.start_h + (k as f64 + 0.5) * hours) % 24.0;
        if (6.0..18.0).contains(&mid_h) {
            (std::f64::consts::PI * (mid_h - 6.0) / 12.0).sin()
        } else {
            0.0
        }
    }

    /// Synthetic readings of interval `k` for the consumers and prosumers.
    fn synthetic(&mut self, k: u64) -> Readings {
        let hours = self.s.interval.as_secs_f64() / 3600.0;
        let sun = self.sun(k);
        let reduction = self.s.dr.as_ref().map_or(0.0, |d| d.reduction);
        let consumer_wh = (0..self.s.consumers)
            .map(|j| {
                let noise = 0.7 + 0.6 * self.consumer_rng[j as usize].random::<f64>();
                let shed = if self.shedding(j, k) { reduction } else { 0.0 };
                (self.s.consumer_mean_kw * noise * (1.0 - shed) * hours * 1000.0).round() as u64
            })
            .collect();
        let prosumer_wh = (0..self.s.prosumers)
            .map(|q| {
                let rng = &mut self.prosumer_rng[q as usize];
                let weather = 0.6 + 0.4 * rng.random::<f64>();
                let noise = 0.7 + 0.6 * rng.random::<f64>();
                let gen_wh =
                    (self.s.prosumer_peak_kw * sun * weather * hours * 1000.0).round() as u64;
                let use_wh = (self.s.prosumer_mean_kw * noise * hours * 1000.0).round() as u64;
                (gen_wh, use_wh)
            })
            .collect();
        Readings {
            consumer_wh,
            prosumer_wh,
            net_kw: None,
        }
    }

    /// The participants' transactions at the end of interval `k` with the
    /// consumers' and prosumers' readings given (e.g. by the grid's
    /// meters); the plants' output stays synthetic.
    pub fn meter_with(&mut self, k: u64, m: &Readings) -> Vec<Tx> {
        let interval = k as u32;
        let hours = self.s.interval.as_secs_f64() / 3600.0;
        let sun = self.sun(k);
        let mut out = Vec::new();
        if k == 0 {
            for j in 0..self.s.consumers {
                let plants = self.ranking[j as usize].clone();
                let a = self.consumer(j);
                out.push(self.tx(a, TxBody::Prefer { plants }));
            }
        }
        let mut net_wh: i64 = 0;
        for i in 0..self.s.plants {
            let weather = 0.6 + 0.4 * self.plant_rng[i as usize].random::<f64>();
            let wh = (self.s.plant_peak_kw * sun * weather * hours * 1000.0).round() as u64;
            net_wh -= wh as i64;
            let meter = self.plant_meter(i);
            self.generation(meter, PlantId(i), interval, wh, &mut out);
        }
        for j in 0..self.s.consumers {
            let wh = m.consumer_wh.get(j as usize).copied().unwrap_or(0);
            net_wh += wh as i64;
            self.consumed_kwh += wh / 1000;
            let meter = self.consumer_meter(j);
            out.push(self.tx(meter, TxBody::Reading { interval, wh }));
            if wh >= 1000 {
                let a = self.consumer(j);
                let price = self.bid_price[j as usize];
                let bid = TxBody::Bid {
                    interval,
                    kwh: wh / 1000,
                    price,
                };
                out.push(self.tx(a, bid));
            }
        }
        let t = self.s.tariffs();
        for q in 0..self.s.prosumers {
            let (gen_wh, use_wh) = m.prosumer_wh.get(q as usize).copied().unwrap_or((0, 0));
            let price = price_between(t, &mut self.prosumer_rng[q as usize]);
            net_wh += use_wh as i64 - gen_wh as i64;
            let (pm, cm) = self.prosumer_meters(q);
            let plant = PlantId(self.s.plants + q);
            self.generation(pm, plant, interval, gen_wh, &mut out);
            out.push(self.tx(
                cm,
                TxBody::Reading {
                    interval,
                    wh: use_wh,
                },
            ));
            self.consumed_kwh += use_wh / 1000;
            // Sell the surplus beyond its own use, or bid for the deficit.
            let (gen_kwh, use_kwh) = (gen_wh / 1000, use_wh / 1000);
            let pro = self.prosumer(q);
            if gen_kwh > use_kwh {
                let kwh = gen_kwh - use_kwh;
                let ask = TxBody::Ask {
                    plant,
                    interval,
                    kwh,
                    price,
                };
                out.push(self.tx(pro, ask));
            } else if use_kwh > gen_kwh {
                let kwh = use_kwh - gen_kwh;
                out.push(self.tx(
                    pro,
                    TxBody::Bid {
                        interval,
                        kwh,
                        price,
                    },
                ));
            }
        }
        let net_kw = m.net_kw.unwrap_or(net_wh as f64 / 1000.0 / hours);
        self.demand_response(k, net_kw, &mut out);
        out
    }

    /// A plant meter's reading of `wh` and its issue of one certificate per
    /// whole kWh.
    fn generation(
        &mut self,
        meter: AccountId,
        plant: PlantId,
        interval: u32,
        wh: u64,
        out: &mut Vec<Tx>,
    ) {
        out.push(self.tx(meter, TxBody::Reading { interval, wh }));
        if wh >= 1000 {
            let kwh = wh / 1000;
            out.push(self.tx(
                meter,
                TxBody::Issue {
                    plant,
                    interval,
                    kwh,
                },
            ));
        }
    }

    /// Posts a DR event over the next intervals when the net demand of
    /// interval `k` exceeds the threshold and no event is open, and enrols
    /// the participating consumers.
    fn demand_response(&mut self, k: u64, net_kw: f64, out: &mut Vec<Tx>) {
        let Some(d) = self.s.dr.clone() else {
            return;
        };
        let first = k + 2;
        let last = first + u64::from(d.duration.max(1)) - 1;
        if net_kw <= d.threshold_kw || !self.open_events.is_empty() || first < u64::from(d.baseline)
        {
            return;
        }
        let event = self.events.len() as u32;
        out.push(self.tx(
            AccountId(0),
            TxBody::DrOffer {
                first: first as u32,
                last: last as u32,
                rate: micro(d.rate),
                baseline: d.baseline,
            },
        ));
        self.events.push((first, last));
        self.open_events.insert(last, event);
        for j in 0..self.s.consumers {
            if self.enrols[j as usize] {
                let a = self.consumer(j);
                out.push(self.tx(a, TxBody::DrEnroll { event }));
            }
        }
    }

    /// The operator's settlement of interval `k` (and of the DR event that
    /// ends with it).
    pub fn settle(&mut self, k: u64) -> Vec<Tx> {
        let mut out = vec![self.tx(AccountId(0), TxBody::Settle { interval: k as u32 })];
        if let Some(event) = self.open_events.remove(&k) {
            out.push(self.tx(AccountId(0), TxBody::DrSettle { event }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkloadSettings {
        WorkloadSettings {
            plants: 4,
            consumers: 12,
            interval: SimDuration::from_mins(15).unwrap(),
            plant_peak_kw: 60.0,
            consumer_mean_kw: 6.0,
            preferences: 3,
            start_h: 0.0,
            prosumers: 4,
            prosumer_peak_kw: 12.0,
            prosumer_mean_kw: 3.0,
            feed_in_tariff: 0.08,
            grid_tariff: 0.30,
            dr: Some(DrSettings {
                threshold_kw: 70.0,
                duration: 4,
                baseline: 4,
                rate: 0.20,
                participation: 0.5,
                reduction: 0.3,
            }),
            ..WorkloadSettings::default()
        }
    }

    #[test]
    fn a_day_of_workload_applies_cleanly_and_traces_consumption() {
        let (mut w, mut state) = Workload::new(settings(), 1);
        for k in 0..96 {
            for t in w.meter(k) {
                state
                    .apply(&t)
                    .unwrap_or_else(|e| panic!("{:?}: {e}", t.body));
            }
            for t in w.settle(k) {
                state
                    .apply(&t)
                    .unwrap_or_else(|e| panic!("{:?}: {e}", t.body));
            }
            assert!(state.check().is_empty(), "{:?}", state.check());
        }
        let origin = state.claims_by_origin();
        let claimed: u64 = origin.values().sum();
        // Midday supply exceeds demand, nights have none: some but not
        // all consumption is traced.
        assert!(
            claimed > 0 && claimed < w.consumed_kwh(),
            "{claimed} of {}",
            w.consumed_kwh()
        );
        // Plant 0 sells wholesale: none of its kWh is claimed here. Plant 1
        // supplies consumers 1 and 2 (accounts 10, 11) directly, and no one
        // else.
        assert!(origin.keys().all(|(_, p)| p.0 != 0));
        let direct: Vec<u32> = origin
            .keys()
            .filter(|(_, p)| p.0 == 1)
            .map(|(a, _)| a.0)
            .collect();
        assert!(
            !direct.is_empty() && direct.iter().all(|a| [10, 11].contains(a)),
            "{direct:?}"
        );
        // Prosumers' midday surplus traded on-chain, within the tariffs,
        // and every interval settled.
        assert_eq!(state.settlements().len(), 96);
        let traded: u64 = state.settlements().values().map(|s| s.market.kwh).sum();
        assert!(traded > 0);
        for s in state.settlements().values() {
            if let Some(p) = s.market.price {
                assert!((80_000..=300_000).contains(&p), "{p}");
            }
        }
        // Sellers earned what buyers paid.
        let everyone: Vec<AccountId> = w.consumers().into_iter().chain(w.prosumers()).collect();
        let paid: u64 = everyone.iter().map(|&a| state.totals(a).paid).sum();
        let earned: u64 = everyone.iter().map(|&a| state.totals(a).earned).sum();
        assert_eq!(paid, earned);
        assert!(paid > 0);
        // The evening peak triggered DR; participants shed and were paid.
        let ev = state.dr_events();
        assert!(!ev.is_empty() && ev.len() == w.dr_events().len());
        let (reduced, rewards) = ev
            .iter()
            .filter_map(|e| e.settled)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert!(reduced > 0 && rewards > 0, "{reduced} Wh, {rewards} µ");
        assert_eq!(
            state.balance(AccountId(0)),
            OPERATOR_FUNDS - rewards,
            "the operator paid the rewards"
        );
    }
}
