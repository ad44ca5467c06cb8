//! The customer view: one row of `customers.csv` per customer of the
//! feeder, what the seed's end-user platform shows a person.
//!
//! - supply: sustained and momentary interruptions, minutes without supply;
//! - quality: EN 50160 compliance at the connection point, judged by the
//!   nearest LMU at or above the customer's bus;
//! - energy: consumption [kWh] and, for a prosumer, its PV's output;
//! - origin (with a ledger): the kWh claimed against its consumption, by
//!   plant (`plant:kWh` pairs) and by kind (community plants, rooftop PV);
//! - money (with a ledger): P2P purchases and sales [kWh and currency], DR
//!   reduction and rewards, and the net bill.
//!
//! **Net bill** [currency]: what the customer takes from the grid beyond
//! its own rooftop certificates, less its P2P purchases, at the grid
//! tariff; plus its P2P payments; less its P2P earnings, its DR rewards,
//! and its export beyond its own use and P2P sales at the feed-in tariff:
//! `(import − bought)·grid + paid − earned − rewards − export·feed_in`, with
//! `import = max(0, consumption − own)` and
//! `export = max(0, pv − own − sold)`.

use super::ledger::GridMeters;
use super::lmu::{LmuHost, RadialTree};
use crate::grid::model::CustomerRecord;
use crate::grid::network::Network;
use crate::ledger::chain::{ChainModel, MICRO};
use crate::ledger::tx::PlantId;

/// `customers.csv`.
pub fn csv(
    net: &Network,
    records: &[CustomerRecord],
    lmus: Option<&LmuHost>,
    ledger: Option<(&ChainModel, &GridMeters)>,
) -> Vec<u8> {
    // The nearest LMU at or above each bus.
    let tree = RadialTree::of(net);
    let mut lmu_at: Vec<Option<u32>> = vec![None; net.buses.len()];
    if let Some(h) = lmus {
        for n in h.first()..h.len() as u32 {
            if let Some(p) = h.place(n) {
                lmu_at[p.bus] = Some(n);
            }
        }
    }
    let judge = |bus: usize| -> Option<bool> {
        let h = lmus?;
        let mut b = bus;
        loop {
            if let Some(n) = lmu_at[b] {
                return h.en50160(n);
            }
            b = tree.parent[b]?.0;
        }
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = "writing CSV to memory cannot fail";
    w.write_record([
        "customer",
        "bus",
        "interruptions",
        "momentary_interruptions",
        "minutes_off",
        "en50160_compliant",
        "consumption_kwh",
        "pv_kwh",
        "traced_kwh",
        "origin_by_plant",
        "origin_community_kwh",
        "origin_rooftop_kwh",
        "p2p_bought_kwh",
        "p2p_paid",
        "p2p_sold_kwh",
        "p2p_earned",
        "dr_reduced_kwh",
        "dr_rewards",
        "net_bill",
    ])
    .expect(io);
    let origin = ledger.map(|(c, _)| c.state().claims_by_origin());
    for (i, r) in records.iter().enumerate() {
        let mut row = vec![
            r.name.clone(),
            net.buses[r.bus].name.clone(),
            r.interruptions.to_string(),
            r.momentary.to_string(),
            r.minutes_off.to_string(),
            judge(r.bus).map_or(String::new(), |b| b.to_string()),
            r.energy_kwh.to_string(),
            r.pv_kwh.to_string(),
        ];
        let account = ledger.and_then(|(c, m)| m.account_of(c, i).map(|a| (c, a)));
        match (account, &origin) {
            (Some((chain, a)), Some(origin)) => {
                let w = chain.workload();
                let mine: Vec<(PlantId, u64)> = origin
                    .range((a, PlantId(0))..=(a, PlantId(u32::MAX)))
                    .map(|(&(_, p), &k)| (p, k))
                    .collect();
                let traced: u64 = mine.iter().map(|x| x.1).sum();
                let by_kind = |kind: &str| -> u64 {
                    mine.iter()
                        .filter(|(p, _)| w.plant_kind(*p) == kind)
                        .map(|x| x.1)
                        .sum()
                };
                // Its own rooftop certificates: the rooftop plant it owns.
                let own: u64 = mine
                    .iter()
                    .filter(|(p, _)| chain.state().plant(*p).is_some_and(|pl| pl.owner == a))
                    .map(|x| x.1)
                    .sum();
                let t = chain.state().totals(a);
                let tariffs = w.tariffs();
                let (grid, feed_in) = (tariffs.grid as f64 / MICRO, tariffs.feed_in as f64 / MICRO);
                let own = own as f64;
                let import = (r.energy_kwh - own).max(0.0);
                let export = (r.pv_kwh - own - t.sold_kwh as f64).max(0.0);
                let (paid, earned, rewards) = (
                    t.paid as f64 / MICRO,
                    t.earned as f64 / MICRO,
                    t.dr_rewards as f64 / MICRO,
                );
                let bill = (import - t.bought_kwh as f64).max(0.0) * grid + paid
                    - earned
                    - rewards
                    - export * feed_in;
                row.extend([
                    traced.to_string(),
                    mine.iter()
                        .map(|(p, k)| format!("{}:{k}", p.0))
                        .collect::<Vec<_>>()
                        .join(" "),
                    by_kind("community").to_string(),
                    by_kind("rooftop").to_string(),
                    t.bought_kwh.to_string(),
                    paid.to_string(),
                    t.sold_kwh.to_string(),
                    earned.to_string(),
                    (t.dr_reduced_wh as f64 / 1e3).to_string(),
                    rewards.to_string(),
                    bill.to_string(),
                ]);
            }
            _ => row.extend(std::iter::repeat_n(String::new(), 11)),
        }
        w.write_record(&row).expect(io);
    }
    w.into_inner().expect(io)
}
