//! Builds the ledger of a run from the scenario's `ledger` section and its
//! validator faults.

use std::collections::BTreeMap;

use crate::grid::model::{GridEvent, GridModel};
use crate::kernel::SimTime;
use crate::ledger::bft::{Behaviour, Timing};
use crate::ledger::chain::{ChainModel, ChainSettings, Protocol};
use crate::ledger::consensus::ConsensusSettings;
use crate::ledger::net::NetSettings;
use crate::ledger::net::{BRIDGE, ValidatorFault};
use crate::ledger::tx::AccountId;
use crate::ledger::workload::Readings;
use crate::ledger::workload::WorkloadSettings;
use crate::scenario::Scenario;
use crate::scenario::dto::{ByzantineModeFile, ConsensusFile, FaultFile, LedgerFile};

/// The grid's meters feeding the ledger: every customer of the feeder is a
/// ledger consumer, or a prosumer when a PV system sits at its bus (the
/// first customer there owns it). Each metering interval, the energy each
/// drew and each PV injected since the last reading become the readings;
/// the interval's mean net demand of the feeder triggers demand response; and an enrolled consumer's loads shed the DR reduction for
/// the event's intervals, which the grid (and so the meters) then sees.
#[derive(Clone, Debug, PartialEq)]
pub struct GridMeters {
    /// Consumer `j` is grid customer `consumers[j]`.
    consumers: Vec<usize>,
    /// Prosumer `q` is a grid customer and its PV systems.
    prosumers: Vec<(usize, Vec<usize>)>,
    last_customer_wh: Vec<f64>,
    last_pv_wh: Vec<f64>,
    /// Whether each consumer's loads are shed now.
    shed: Vec<bool>,
}

impl GridMeters {
    /// The meters of `grid`'s customers and PV systems.
    pub fn of(grid: &GridModel) -> GridMeters {
        let customers = grid.customers();
        let mut owner: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (p, pv) in grid.network().pv.iter().enumerate() {
            if let Some(c) = customers.iter().position(|c| c.bus == pv.bus) {
                owner.entry(c).or_default().push(p);
            }
        }
        let consumers: Vec<usize> = (0..customers.len())
            .filter(|c| !owner.contains_key(c))
            .collect();
        GridMeters {
            shed: vec![false; consumers.len()],
            consumers,
            prosumers: owner.into_iter().collect(),
            last_customer_wh: vec![0.0; customers.len()],
            last_pv_wh: vec![0.0; grid.network().pv.len()],
        }
    }

    /// The readings of the interval of `hours` that ends at `now` (the grid
    /// brought up to `now` first). The net demand is the interval's mean:
    /// the customers' energy less the PV's, over its length (losses aside).
    pub fn read(&mut self, grid: &GridModel, now: SimTime, hours: f64) -> Readings {
        let (cust, pv) = grid.meters_at(now);
        let wh = |now: f64, last: f64| (now - last).max(0.0).round() as u64;
        let used: f64 = cust
            .iter()
            .zip(&self.last_customer_wh)
            .map(|(a, b)| a - b)
            .sum();
        let made: f64 = pv.iter().zip(&self.last_pv_wh).map(|(a, b)| a - b).sum();
        let r = Readings {
            consumer_wh: self
                .consumers
                .iter()
                .map(|&c| wh(cust[c], self.last_customer_wh[c]))
                .collect(),
            prosumer_wh: self
                .prosumers
                .iter()
                .map(|(c, pvs)| {
                    let made: u64 = pvs.iter().map(|&p| wh(pv[p], self.last_pv_wh[p])).sum();
                    (made, wh(cust[*c], self.last_customer_wh[*c]))
                })
                .collect(),
            net_kw: (hours > 0.0).then(|| (used - made) / 1000.0 / hours),
        };
        self.last_customer_wh = cust;
        self.last_pv_wh = pv;
        r
    }

    /// Sheds or restores each consumer's loads for interval `k + 1` (which
    /// starts now) by its DR enrolment; returns the grid's events.
    pub fn demand_response(
        &mut self,
        grid: &mut GridModel,
        chain: &ChainModel,
        now: SimTime,
        k: u64,
    ) -> Vec<(SimTime, GridEvent)> {
        let w = chain.workload();
        let factor = 1.0 - w.dr_reduction();
        let mut ev = Vec::new();
        for (j, &c) in self.consumers.iter().enumerate() {
            let want = w.shedding(j as u32, k + 1);
            if want != self.shed[j] {
                self.shed[j] = want;
                let loads = grid.customer_loads(c);
                ev.extend(grid.set_load_scale(now, &loads, if want { factor } else { 1.0 }));
            }
        }
        ev
    }

    /// The ledger account of grid customer `c`.
    pub fn account_of(&self, chain: &ChainModel, c: usize) -> Option<AccountId> {
        let w = chain.workload();
        if let Some(j) = self.consumers.iter().position(|&x| x == c) {
            return Some(w.consumer(j as u32));
        }
        self.prosumers
            .iter()
            .position(|(x, _)| *x == c)
            .map(|q| w.prosumer(q as u32))
    }

    /// Consumers and prosumers.
    pub fn counts(&self) -> (u32, u32) {
        (self.consumers.len() as u32, self.prosumers.len() as u32)
    }
}

/// The ledger model of a scenario, fed by the grid's meters when there is
/// a grid.
pub fn build(
    scenario: &Scenario,
    l: &LedgerFile,
    grid: Option<&GridModel>,
) -> (ChainModel, Option<GridMeters>) {
    let meters = grid.map(GridMeters::of);
    let t = |d| SimTime::ZERO.saturating_add(d);
    let mut behaviour = BTreeMap::new();
    let mut delay = BTreeMap::new();
    for b in &l.byzantine {
        match b.mode {
            ByzantineModeFile::Equivocate => {
                behaviour.insert(b.validator, Behaviour::Equivocate);
            }
            ByzantineModeFile::Silent => {
                behaviour.insert(b.validator, Behaviour::Silent);
            }
            ByzantineModeFile::Delay(d) => {
                delay.insert(b.validator, d);
            }
        }
    }
    let mut faults = Vec::new();
    for f in &scenario.faults {
        match f {
            FaultFile::ValidatorCrash(c) => faults.push(ValidatorFault::Crash {
                node: c.validator,
                at: t(c.at),
                until: c.duration.map(|d| t(c.at).saturating_add(d)),
            }),
            FaultFile::ValidatorPartition(p) => faults.push(ValidatorFault::Partition {
                groups: {
                    let mut g = p.groups.clone();
                    for &b in &p.bridges {
                        if let Some(x) = g.get_mut(b as usize) {
                            *x = BRIDGE;
                        }
                    }
                    g
                },
                at: t(p.at),
                until: p.duration.map(|d| t(p.at).saturating_add(d)),
            }),
            // Faults of other models.
            _ => {}
        }
    }
    let w = &l.workload;
    let chain = ChainModel::new(
        ChainSettings {
            consensus: ConsensusSettings {
                n: l.validators,
                timing: Timing {
                    propose: l.timeout_propose,
                    prevote: l.timeout_vote,
                    precommit: l.timeout_vote,
                    delta: l.timeout_delta,
                    commit: l.block_interval,
                    ..Timing::default()
                },
                net: NetSettings {
                    latency: l.backhaul.latency,
                    jitter: l.backhaul.jitter,
                    loss: l.backhaul.loss,
                },
                behaviour,
                delay,
                faults,
                gossip: true,
                wait_for_txs: l.wait_for_txs,
            },
            max_block_txs: l.max_block_txs,
            workload: WorkloadSettings {
                consumers: meters.as_ref().map_or(w.consumers, |m| m.counts().0),
                prosumers: meters.as_ref().map_or(w.prosumers, |m| m.counts().1),
                ..w.clone()
            },
            protocol: match l.consensus {
                ConsensusFile::Bft => Protocol::Bft,
                ConsensusFile::Aura => Protocol::Aura,
            },
        },
        scenario.seed,
    );
    (chain, meters)
}
