//! Builds the ledger of a run from the scenario's `ledger` section and its
//! validator faults.

use std::collections::BTreeMap;

use crate::kernel::SimTime;
use crate::ledger::bft::{Behaviour, Timing};
use crate::ledger::chain::MICRO;
use crate::ledger::chain::{ChainModel, ChainSettings, Protocol};
use crate::ledger::consensus::ConsensusSettings;
use crate::ledger::net::NetSettings;
use crate::ledger::net::{BRIDGE, ValidatorFault};
use crate::ledger::workload::{DrSettings, WorkloadSettings};
use crate::scenario::Scenario;
use crate::scenario::dto::{ByzantineModeFile, ConsensusFile, FaultFile, LedgerFile};

/// The ledger model of a scenario.
pub fn build(scenario: &Scenario, l: &LedgerFile) -> ChainModel {
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
    ChainModel::new(
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
                plants: w.plants,
                consumers: w.consumers,
                interval: w.interval,
                plant_peak_kw: w.plant_peak_kw,
                consumer_mean_kw: w.consumer_mean_kw,
                preferences: w.preferences,
                start_h: w.start_h,
                prosumers: w.prosumers,
                prosumer_peak_kw: w.prosumer_peak_kw,
                prosumer_mean_kw: w.prosumer_mean_kw,
                tariffs: crate::ledger::market::Tariffs {
                    feed_in: micro(w.feed_in_tariff),
                    grid: micro(w.grid_tariff),
                },
                dr: w.dr.as_ref().map(|d| DrSettings {
                    threshold_kw: d.threshold_kw,
                    duration: d.duration,
                    baseline: d.baseline,
                    rate: micro(d.rate),
                    participation: d.participation,
                    reduction: d.reduction,
                }),
            },
            settle_after: w.settle_after,
            protocol: match l.consensus {
                ConsensusFile::Bft => Protocol::Bft,
                ConsensusFile::Aura => Protocol::Aura,
            },
        },
        scenario.seed,
    )
}

/// A price [currency/kWh] in whole µ-units (validated finite and ≥ 0).
fn micro(x: f64) -> u64 {
    (x * MICRO).round() as u64
}
