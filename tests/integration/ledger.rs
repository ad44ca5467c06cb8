//! The ledger in a run: BFT validators with Byzantine members and faults
//! from the timeline certify a synthetic neighbourhood's kWh.

use gridtwin::scenario::Scenario;
use gridtwin::world;

use crate::{at, num};

fn scenario(src: &str) -> Scenario {
    Scenario::from_source("t.ron", src, &at("scenarios"), "t").unwrap()
}

const BASE: &str = "duration: \"45min\", outputs: (sample_interval: \"15min\")";

fn ledger(extra: &str, faults: &str) -> String {
    format!(
        "({BASE}, ledger: (validators: 7, backhaul: (latency: \"20ms\", jitter: \"10ms\", loss: 0.01), \
         workload: (plants: 6, consumers: 18, interval: \"15min\", settle_after: \"3min\", start_h: 11.0, plant_peak_kw: 15.0){extra}), \
         faults: [{faults}])"
    )
}

/// The shipped study, shortened: one equivocating and one silent validator
/// of seven. No two correct validators finalise different blocks, the
/// state's invariants hold after every block, the equivocation is on
/// record, and certificates flow to the consumers.
#[test]
fn two_byzantine_validators_of_seven_break_nothing() {
    let src = ledger(
        ", byzantine: [(validator: 2, mode: Equivocate), (validator: 5, mode: Silent)]",
        "",
    );
    let a = world::run(&scenario(&src), 1, &mut ()).unwrap();
    let s = &a.summary;
    assert_eq!(num(s, "ledger.conflicting_finals"), 0.0);
    assert_eq!(num(s, "ledger.invariant_violations"), 0.0);
    assert!(num(s, "ledger.evidence") > 0.0);
    // A block about every 2.1 s; heights led by the silent validator take
    // a second round.
    let blocks = num(s, "ledger.blocks_final");
    assert!((900.0..1300.0).contains(&blocks), "{blocks}");
    assert!(num(s, "ledger.tx_committed") > 100.0);
    assert_eq!(num(s, "ledger.success_rate"), 1.0);
    assert!(num(s, "ledger.traced_kwh") > 0.0);
    // Prosumers' midday surplus clears on the P2P market within the
    // tariffs (0.08 to 0.30 by default).
    assert!(num(s, "market.cleared_kwh") > 0.0);
    let p = num(s, "market.mean_price_per_kwh");
    assert!((0.08..=0.30).contains(&p), "{p}");
    // Latency: up to a block interval waiting, plus a commit.
    assert!(num(s, "ledger.tx_latency_p99_s") < 6.0);
    assert!(a.violation.is_none());
    let wallets = &a.files.iter().find(|(n, _)| n == "wallets.csv").unwrap().1;
    assert!(String::from_utf8_lossy(wallets).lines().count() > 1);
    // The same at any thread count.
    let b = world::run(&scenario(&src), 4, &mut ()).unwrap();
    assert_eq!(a.summary, b.summary);
}

/// The evening peak triggers the operator's demand-response incentive:
/// enrolled consumers shed load against their baseline and are paid on
/// chain, at the posted rate, by the operator.
#[test]
fn demand_response_in_the_evening_peak_is_paid_on_chain() {
    let src = String::from(
        "(duration: \"75min\", outputs: (sample_interval: \"15min\"), ledger: (validators: 4, \
         workload: (plants: 4, consumers: 16, interval: \"15min\", settle_after: \"3min\", start_h: 17.5, \
         dr: (threshold_kw: 0.0, duration: 1, baseline: 2, rate: 0.20, participation: 0.75, reduction: 0.4))))",
    );
    let a = world::run(&scenario(&src), 1, &mut ()).unwrap();
    let s = &a.summary;
    assert_eq!(num(s, "ledger.invariant_violations"), 0.0);
    assert!(num(s, "dr.events") >= 1.0);
    let kwh = num(s, "dr.reduced_kwh");
    let paid = num(s, "dr.rewards");
    assert!(kwh > 0.0, "{kwh}");
    // Rewards are floored to whole µ-units per consumer: within 1e-5 of
    // rate × energy.
    assert!((paid - 0.20 * kwh).abs() < 1e-5, "{paid} for {kwh} kWh");
}

/// Validator faults from the timeline: a crash and a partition that leaves
/// no side a quorum. Blocks stop during the partition and resume after
/// it; nothing conflicts.
#[test]
fn validator_crashes_and_partitions_from_the_timeline() {
    let clean = world::run(&scenario(&ledger("", "")), 1, &mut ()).unwrap();
    let faulty = world::run(
        &scenario(&ledger(
            "",
            "ValidatorCrash((at: \"5min\", validator: 3, duration: \"10min\")), \
             ValidatorPartition((at: \"20min\", groups: [0, 0, 0, 1, 1, 1, 1], duration: \"5min\"))",
        )),
        1,
        &mut (),
    )
    .unwrap();
    let (c, f) = (
        num(&clean.summary, "ledger.blocks_final"),
        num(&faulty.summary, "ledger.blocks_final"),
    );
    // Five minutes without a quorum (≈ 140 blocks) and slower heights
    // while validator 3 is down (its turns take a second round).
    assert!(f < c - 100.0 && f > c - 400.0, "{f} vs {c}");
    assert_eq!(num(&faulty.summary, "ledger.conflicting_finals"), 0.0);
    assert_eq!(num(&faulty.summary, "ledger.invariant_violations"), 0.0);
    assert!(
        num(&faulty.summary, "ledger.rounds_per_height")
            > num(&clean.summary, "ledger.rounds_per_height")
    );
}

#[test]
fn ledger_mistakes_are_positioned() {
    let e = Scenario::from_source(
        "t.ron",
        "(ledger: (validators: 4), faults: [ValidatorCrash((at: \"1min\", validator: 4))])",
        &at("scenarios"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("validators 0 to 3, not 4") && e.contains("t.ron:1:"),
        "{e}"
    );
    let e = Scenario::from_source(
        "t.ron",
        "(ledger: (validators: 4, byzantine: [(validator: 1, mode: Silent), (validator: 1, mode: Equivocate)]))",
        &at("scenarios"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("listed twice"), "{e}");
}

fn aura(n: u32, extra: &str, faults: &str) -> String {
    format!(
        "(duration: \"20min\", outputs: (sample_interval: \"10min\"), ledger: (validators: {n}, consensus: Aura, \
         backhaul: (latency: \"20ms\", jitter: \"0ms\"){extra}, \
         workload: (plants: 4, consumers: 12, interval: \"10min\", settle_after: \"2min\", start_h: 11.0, plant_peak_kw: 15.0)), \
         faults: [{faults}])"
    )
}

/// The same chain under Aura round robin. Without faults a block is final
/// the moment the third distinct author builds on it (n = 5: more than 5/2
/// authors above it): that author's own block, 3 slots = 6 s after the
/// proposal, exactly. A crashed validator leaves its slots empty, so
/// finality waits longer, but the chain stays safe and the state sound.
#[test]
fn aura_runs_the_chain_and_finalises_after_a_majority_of_authors() {
    let a = world::run(&scenario(&aura(5, "", "")), 1, &mut ()).unwrap();
    let s = &a.summary;
    assert_eq!(num(s, "ledger.conflicting_finals"), 0.0);
    assert_eq!(num(s, "ledger.invariant_violations"), 0.0);
    assert_eq!(num(s, "ledger.success_rate"), 1.0);
    assert!(num(s, "ledger.tx_committed") > 50.0);
    assert!(num(s, "ledger.traced_kwh") > 0.0);
    let fin = num(s, "ledger.finality_p50_s");
    assert!((fin - 6.0).abs() < 1e-9, "{fin}");
    // One block per 2 s slot, slots 0 to 600 (the end instant is in the
    // run), the last three not yet final.
    assert_eq!(num(s, "ledger.blocks_final"), 20.0 * 30.0 + 1.0 - 3.0);
    let crashed = world::run(
        &scenario(&aura(
            5,
            "",
            "ValidatorCrash((at: \"5min\", validator: 1, duration: \"10min\"))",
        )),
        1,
        &mut (),
    )
    .unwrap();
    let c = &crashed.summary;
    assert_eq!(num(c, "ledger.conflicting_finals"), 0.0);
    assert_eq!(num(c, "ledger.invariant_violations"), 0.0);
    assert!(num(c, "ledger.blocks_final") < num(s, "ledger.blocks_final"));
    assert!(num(c, "ledger.tx_committed") > 50.0);
}

/// Aura's documented limit: its n/2 finality is not Byzantine-safe. An
/// equivocating validator that reaches both sides of a partition signs a
/// block for each, and each side, with three distinct authors of five,
/// finalises its own block at the same heights. (The run's
/// ledger commits the first final block of each height, so its state
/// stays sound; the conflict is counted.)
#[test]
fn aura_under_equivocation_can_finalise_conflicting_blocks() {
    let src = aura(
        5,
        ", byzantine: [(validator: 0, mode: Equivocate)]",
        "ValidatorPartition((at: \"0s\", groups: [0, 0, 0, 1, 1], bridges: [0]))",
    );
    let a = world::run(&scenario(&src), 1, &mut ()).unwrap();
    assert!(num(&a.summary, "ledger.conflicting_finals") > 0.0);
    assert_eq!(num(&a.summary, "ledger.invariant_violations"), 0.0);
}

/// With `wait_for_txs`, validators start a height only when transactions
/// are pending (or 5 minutes on): the chain orders the same transactions
/// in a small fraction of the blocks, and a burst is ordered as soon as it
/// arrives instead of at the next block interval.
#[test]
fn waiting_for_transactions_skips_empty_blocks() {
    let every = world::run(&scenario(&ledger("", "")), 1, &mut ()).unwrap();
    let lazy = world::run(
        &scenario(&ledger(", wait_for_txs: \"5min\"", "")),
        1,
        &mut (),
    )
    .unwrap();
    let (e, l) = (&every.summary, &lazy.summary);
    assert_eq!(num(l, "ledger.invariant_violations"), 0.0);
    assert_eq!(num(l, "ledger.success_rate"), 1.0);
    assert_eq!(num(l, "ledger.tx_committed"), num(e, "ledger.tx_committed"));
    // 45 minutes: a few bursts (3 meter readings and 2 settlements) take
    // a handful of heights each, and at most 9 empty heights at the
    // 5-minute deadline; against ~1250 with a block every 2 s.
    let blocks = num(l, "ledger.blocks_final");
    assert!(blocks < 60.0, "{blocks}");
    assert!(num(e, "ledger.blocks_final") > 20.0 * blocks);
    assert!(num(l, "ledger.tx_latency_p50_s") < num(e, "ledger.tx_latency_p50_s"));
}

/// With a grid, the ledger is fed by the grid's meters: every customer of
/// the EU LV feeder is a consumer (those with PV prosumers), metered
/// hourly; demand-response incentives shed the enrolled customers' loads
/// in the grid, which draws less energy, and the meters' reduction is paid
/// on chain. Compared with the same day without DR (same seed).
#[test]
fn grid_metering_feeds_the_ledger_and_demand_response_sheds_grid_load() {
    let dir = crate::refdata("ieee_eu_lv");
    let src = |dr: &str| {
        format!(
            "(duration: \"22h\", outputs: (sample_interval: \"1h\"),
              grid: (feeder: Dss({:?}),
                     pv: [(name: \"pv_34\", bus: \"34\", phases: \"a\", kw: 4.0, profile: ClearSky(latitude_deg: 52.0))]),
              ledger: (validators: 4, wait_for_txs: \"5min\",
                       workload: (plants: 4, preferences: 2, interval: \"1h\", settle_after: \"5min\"{dr})))",
            dir.join("dss/Master.dss")
        )
    };
    let with = world::run(
        &scenario(&src(
            ", dr: (threshold_kw: 25.0, duration: 2, baseline: 3, participation: 0.5, reduction: 0.3)",
        )),
        1,
        &mut (),
    )
    .unwrap();
    let without = world::run(&scenario(&src("")), 1, &mut ()).unwrap();
    let (w, o) = (&with.summary, &without.summary);
    for s in [w, o] {
        assert_eq!(num(s, "ledger.invariant_violations"), 0.0);
        assert!(num(s, "ledger.traced_kwh") > 0.0);
    }
    // 55 customers: 54 consumers and one prosumer (bus 34's PV) in the
    // wallets (those that claimed anything).
    let wallets = &with
        .files
        .iter()
        .find(|(n, _)| n == "wallets.csv")
        .unwrap()
        .1;
    assert!(String::from_utf8_lossy(wallets).lines().count() > 10);
    assert!(num(w, "dr.events") >= 1.0);
    let paid_kwh = num(w, "dr.reduced_kwh");
    assert!(paid_kwh > 0.0, "{paid_kwh}");
    // The grid saw the shedding: less energy drawn by the loads.
    let shed = num(o, "grid.energy_load_kwh") - num(w, "grid.energy_load_kwh");
    assert!(shed > 1.0, "{shed} kWh");
    assert_eq!(num(o, "dr.events"), 0.0);

    // The customer view: a row per customer; the traced kWh split by kind
    // adds up, never exceeds the consumption, and the DR rewards of the
    // rows add up to the chain's (to rounding in the last µ-unit).
    let csv = &with
        .files
        .iter()
        .find(|(n, _)| n == "customers.csv")
        .unwrap()
        .1;
    let mut r = csv::Reader::from_reader(&csv[..]);
    let head = r.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 55);
    let f = |row: &csv::StringRecord, name: &str| row[col(name)].parse::<f64>().unwrap();
    let mut rewards = 0.0;
    for row in &rows {
        let traced = f(row, "traced_kwh");
        assert_eq!(
            traced,
            f(row, "origin_community_kwh") + f(row, "origin_rooftop_kwh")
        );
        assert!(traced <= f(row, "consumption_kwh") + 1e-9);
        rewards += f(row, "dr_rewards");
        assert!(f(row, "net_bill").is_finite());
    }
    assert!((rewards - num(w, "dr.rewards")).abs() < 1e-6);
}
