//! The gateway and the cloud in a run: store-and-forward through a
//! cellular outage, rounds with a dead LMU, commands down to an LMU's
//! contactor, credentials and broker outages.

use gridtwin::gateway::schema::EventMessage;
use gridtwin::kernel::{RunLimits, SimTime};
use gridtwin::metrics::Summary;
use gridtwin::scenario::Scenario;
use gridtwin::world::{self, World};

use crate::{at, num, refdata};

fn scenario(src: &str) -> Scenario {
    Scenario::from_source("t.ron", src, &at("scenarios"), "t").unwrap()
}

fn run(src: &str) -> Summary {
    world::run(&scenario(src), 1, &mut ()).unwrap().summary
}

/// Runs a scenario to its end keeping every published event message.
fn run_keeping(src: &str) -> (World, Vec<EventMessage>) {
    let sc = scenario(src);
    let (mut w, mut sim) = world::build(&sc).unwrap();
    w.keep_published();
    sim.run(
        &mut w,
        RunLimits {
            stop_at: SimTime::ZERO.saturating_add(sc.duration),
            max_events: None,
        },
        &mut (),
    );
    let msgs = w
        .published()
        .iter()
        .map(|(_, _, p)| serde_json::from_slice(p).unwrap())
        .collect();
    (w, msgs)
}

/// Ten LMUs in a line, one report a minute, for three hours; the cellular
/// link is down from 1 h to 2 h.
fn outage(buffer_bytes: usize) -> String {
    format!(
        "(duration: \"3h\", \
          mesh: (nodes: Line(count: 11, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (buffer_bytes: {buffer_bytes}, aggregation: WaitForAll(deadline: \"20s\")), \
          faults: [CellularOutage((at: \"1h\", duration: \"1h\"))])"
    )
}

/// Acceptance: a 1-hour outage loses nothing when the buffer holds it; a
/// small buffer drops rounds, counted, and exactly the dropped records are
/// missing from the cloud store.
#[test]
fn a_one_hour_outage_loses_nothing_with_a_big_buffer_and_counts_every_drop_with_a_small_one() {
    let big = run(&outage(1 << 20));
    let received = num(&big, "gateway.reports_received");
    // 10 LMUs × 179 reports (the first one interval after power-on); a few
    // are lost on the mesh before its routes settle.
    assert_eq!(num(&big, "mesh.frames_sent"), 10.0 * 179.0);
    assert_eq!(received, num(&big, "mesh.frames_delivered"));
    assert!(received > 0.95 * 1790.0, "{received}");
    assert_eq!(num(&big, "gateway.cellular_outages"), 1.0);
    assert_eq!(num(&big, "gateway.records_dropped"), 0.0);
    assert_eq!(num(&big, "gateway.records_pending_at_end"), 0.0);
    assert_eq!(num(&big, "gateway.records_stored"), received);
    // An hour of rounds waited in the buffer.
    let peak = num(&big, "gateway.buffer_peak_bytes");
    assert!(peak > 50.0 * 3000.0 && peak <= (1 << 20) as f64, "{peak}");
    // The session came back: a second connection.
    assert!(num(&big, "gateway.mqtt_connections") >= 2.0);
    // Records waited up to an hour for the link.
    assert!(num(&big, "gateway.e2e_latency_p99_s") > 3000.0);

    let small = run(&outage(20_000));
    let (stored, dropped) = (
        num(&small, "gateway.records_stored"),
        num(&small, "gateway.records_dropped"),
    );
    assert!(dropped > 400.0, "{dropped}");
    assert_eq!(num(&small, "gateway.records_pending_at_end"), 0.0);
    assert_eq!(num(&small, "gateway.reports_received"), received);
    assert_eq!(stored + dropped, received);
    assert!(num(&small, "gateway.buffer_peak_bytes") <= 20_000.0);
}

/// The policies differ in which rounds survive: drop-oldest keeps the end
/// of the outage, drop-newest its start.
#[test]
fn drop_oldest_keeps_the_latest_rounds_and_drop_newest_the_earliest() {
    let keep = |policy: &str| {
        let src = outage(20_000).replace(
            "buffer_bytes: 20000,",
            &format!("buffer_bytes: 20000, overflow: {policy},"),
        );
        let (w, msgs) = run_keeping(&src);
        assert!(w.gateway().unwrap().app(0).client().stats().acked > 0);
        // Rounds of the outage hour (60 to 119) that reached the cloud: the
        // store has every record of them or none.
        let cloud = w.gateway().unwrap().cloud();
        let mut kept: Vec<u64> = msgs
            .iter()
            .filter(|m| (60..120).contains(&m.round) && !m.records.is_empty())
            .filter(|m| m.records.iter().all(|r| cloud.has(r.lmu, r.epoch, r.seq)))
            .map(|m| m.round)
            .collect();
        kept.sort_unstable();
        kept
    };
    let oldest = keep("DropOldest");
    let newest = keep("DropNewest");
    assert!(!oldest.is_empty() && !newest.is_empty());
    assert!(
        oldest.iter().min() > newest.iter().max(),
        "{oldest:?} vs {newest:?}"
    );
}

/// Acceptance: with one LMU dead, every round goes at its deadline and
/// names it.
#[test]
fn with_one_lmu_dead_every_round_is_published_at_its_deadline_naming_it() {
    let (_, msgs) = run_keeping(
        "(duration: \"30min\", \
          mesh: (nodes: Line(count: 6, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (aggregation: WaitForAll(deadline: \"15s\")), \
          faults: [NodeCrash((at: \"0s\", node: 3))])",
    );
    let rounds: Vec<&EventMessage> = msgs.iter().filter(|m| !m.late).collect();
    // Rounds 0..=28 have their deadline within the run.
    assert_eq!(rounds.len(), 29);
    for m in rounds.iter().skip(1) {
        assert_eq!(m.missing, vec![3], "round {}", m.round);
        assert_eq!(m.records.len(), 4);
        let due = (m.round + 1) as f64 * 60.0 + 15.0;
        assert!((m.published_s - due).abs() < 1e-9, "{m:?}");
    }
    // Round 0 is before any report: everyone is missing.
    assert_eq!(rounds[0].missing, vec![1, 2, 3, 4, 5]);
}

/// Without a dead LMU, wait-for-all publishes a round as soon as its last
/// report is in, before the deadline.
#[test]
fn wait_for_all_publishes_a_complete_round_before_its_deadline() {
    let s = run("(duration: \"30min\", \
          mesh: (nodes: Line(count: 6, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (aggregation: WaitForAll(deadline: \"15s\")))");
    // Rounds 0 to 28 by their deadlines, and round 29 complete before the
    // end; round 0 precedes every report.
    assert_eq!(num(&s, "gateway.rounds"), 30.0);
    assert_eq!(num(&s, "gateway.rounds_complete"), 29.0);
    // A report waits at most one interval plus the mesh and uplink.
    assert!(num(&s, "gateway.e2e_latency_p99_s") < 62.0);
    assert_eq!(
        num(&s, "gateway.records_stored"),
        num(&s, "gateway.reports_received")
    );
}

/// Wrong credentials: every CONNECT is refused, nothing reaches the cloud,
/// and the records wait in the buffer (counted as pending, not lost).
#[test]
fn refused_credentials_keep_everything_in_the_buffer() {
    let s = run("(duration: \"20min\", \
          mesh: (nodes: Line(count: 4, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (mqtt: (password: \"wrong\")))");
    assert!(num(&s, "gateway.mqtt_auth_failures") >= 5.0);
    assert_eq!(num(&s, "gateway.mqtt_connections"), 0.0);
    assert_eq!(num(&s, "gateway.records_stored"), 0.0);
    assert_eq!(
        num(&s, "gateway.records_pending_at_end"),
        num(&s, "gateway.records_published")
    );
}

/// A broker outage: the connection is reset, the client reconnects with
/// back-off once the broker is back, and nothing is lost.
#[test]
fn a_broker_outage_is_ridden_out() {
    let s = run("(duration: \"1h\", \
          mesh: (nodes: Line(count: 4, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (), \
          faults: [BrokerOutage((at: \"10min\", duration: \"10min\"))])");
    assert!(num(&s, "gateway.mqtt_connection_losses") >= 1.0);
    assert!(num(&s, "gateway.mqtt_connections") >= 2.0);
    assert_eq!(num(&s, "gateway.records_dropped"), 0.0);
    assert_eq!(num(&s, "gateway.records_pending_at_end"), 0.0);
    assert_eq!(
        num(&s, "gateway.records_stored"),
        num(&s, "gateway.reports_received")
    );
}

/// Acceptance: a scheduled "open contactor" travels cloud → broker → 4G →
/// gateway → UART → mesh to its LMU, which opens; the grid sees its section
/// de-energised, and nothing else.
#[test]
fn a_scheduled_open_reaches_its_lmu_and_the_grid_de_energises_its_section() {
    let dir = refdata("ieee_eu_lv");
    let feeder = dir.join("dss/Master.dss");
    let base = |commands: &str| {
        format!(
            "(duration: \"40min\", \
              grid: (feeder: Dss(\"{}\"), profile_step: \"1min\"), \
              mesh: (nodes: GridJunctions, report_interval: \"5min\"), \
              gateway: (cloud: (commands: [{commands}])), \
              outputs: (sample_interval: \"1min\"))",
            feeder.display()
        )
    };
    let (lmu, expect_off) = leaf_lmu_with_most_customers(&scenario(&base("")));
    assert!(expect_off > 0);

    let sc = scenario(&base(&format!("(at: \"20min\", lmu: {lmu}, action: Open)")));
    let out = world::run(&sc, 1, &mut ()).unwrap();
    let s = &out.summary;
    assert_eq!(num(s, "gateway.commands_issued"), 1.0);
    assert_eq!(num(s, "gateway.commands_delivered"), 1.0);
    assert_eq!(num(s, "lmu.contactor_operations"), 1.0);
    // 4G both ways, the UART and a few mesh hops: well under 5 s.
    let latency = num(s, "gateway.command_latency_max_s");
    assert!(latency > 0.0 && latency < 5.0, "{latency}");
    // Before the command nobody is off; from it on, exactly the section.
    let gs = out.series.iter().find(|t| t.name() == "grid").unwrap();
    let col = gs
        .columns()
        .iter()
        .position(|c| c == "customers_off")
        .unwrap();
    for row in gs.rows() {
        let off = row[col];
        if row[0] < 20.0 * 60.0 {
            assert_eq!(off, 0.0, "t = {}", row[0]);
        } else if row[0] >= 21.0 * 60.0 {
            assert_eq!(off, expect_off as f64, "t = {}", row[0]);
        }
    }
    assert_eq!(num(s, "grid.customer_interruptions"), expect_off as f64);
}

/// The same run twice gives the same summary, whatever the thread count.
#[test]
fn gateway_runs_are_deterministic() {
    let sc = scenario(&outage(20_000));
    let a = world::run(&sc, 1, &mut ()).unwrap();
    let b = world::run(&sc, 3, &mut ()).unwrap();
    assert_eq!(a.summary, b.summary);
}

/// The LMU at the end of a branch (no LMU below it: a section cut off by
/// one contactor) that serves the most customers, short of all, and how
/// many it serves.
pub(crate) fn leaf_lmu_with_most_customers(sc: &Scenario) -> (u32, usize) {
    let (w, _) = world::build(sc).unwrap();
    let grid = w.grid().unwrap();
    let host = w.lmus().unwrap();
    let customers_of = |n: u32| {
        let place = host.place(n).unwrap();
        let mut names: Vec<&str> = place
            .loads
            .iter()
            .map(|&l| grid.network().loads[l].name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    let total = grid.customers().len();
    let lmu = (1..host.len() as u32)
        .filter(|&n| customers_of(n) < total && host.place(n).unwrap().downstream.is_empty())
        .max_by_key(|&n| (customers_of(n), std::cmp::Reverse(n)))
        .unwrap();
    (lmu, customers_of(lmu))
}

/// A demand-response request from the operator reduces the load of the
/// LMU's section for its duration, then the load comes back.
#[test]
fn a_demand_response_command_reduces_the_sections_load_for_its_duration() {
    let dir = refdata("ieee_eu_lv");
    let src = |commands: &str| {
        format!(
            "(duration: \"40min\", \
              grid: (feeder: Dss(\"{}\"), profiles: Flat, profile_step: \"1min\"), \
              mesh: (nodes: GridJunctions, report_interval: \"5min\"), \
              gateway: (cloud: (commands: [{commands}])), \
              outputs: (sample_interval: \"1min\"))",
            dir.join("dss/Master.dss").display()
        )
    };
    let (lmu, _) = leaf_lmu_with_most_customers(&scenario(&src("")));
    let load_kw = |out: &world::RunOutput| -> Vec<(f64, f64)> {
        let g = out.series.iter().find(|t| t.name() == "grid").unwrap();
        let c = g.columns().iter().position(|c| c == "p_load_kw").unwrap();
        g.rows().map(|r| (r[0], r[c])).collect()
    };
    let base = world::run(&scenario(&src("")), 1, &mut ()).unwrap();
    let dr = world::run(
        &scenario(&src(&format!(
            "(at: \"10min\", lmu: {lmu}, action: ReduceLoad(percent: 50, duration: \"15min\"))"
        ))),
        1,
        &mut (),
    )
    .unwrap();
    assert_eq!(num(&dr.summary, "gateway.commands_delivered"), 1.0);
    for ((t, a), (_, b)) in load_kw(&base).into_iter().zip(load_kw(&dr)) {
        if !(11.0 * 60.0..=25.0 * 60.0).contains(&t) {
            // Before the command and after its 15 minutes: as without it
            // (the load model's voltage dependence moves it by < 0.1 %).
            assert!((a - b).abs() <= 1e-3 * a, "t = {t}: {a} vs {b}");
        } else {
            // Half the section's load is shed.
            assert!(b < a - 0.1, "t = {t}: {a} vs {b}");
        }
    }
    assert!(num(&dr.summary, "grid.energy_load_kwh") < num(&base.summary, "grid.energy_load_kwh"));
}

/// A setting changed from the cloud: LMU 2 reports every 20 s instead of
/// every minute from the moment the command reaches it.
#[test]
fn a_setting_command_changes_the_lmus_report_interval() {
    let src = |commands: &str| {
        format!(
            "(duration: \"20min\", \
              mesh: (nodes: Line(count: 4, spacing_m: 300.0), report_interval: \"1min\"), \
              gateway: (cloud: (commands: [{commands}])))"
        )
    };
    let base = run(&src(""));
    let s = run(&src(
        "(at: \"5min\", lmu: 2, action: SetReportInterval(\"20s\"))",
    ));
    assert_eq!(num(&s, "gateway.commands_delivered"), 1.0);
    // About 15 minutes at three reports a minute instead of one: ≈ 30 more.
    let more = num(&s, "lmu.reports") - num(&base, "lmu.reports");
    assert!((28.0..=31.0).contains(&more), "{more}");
}

/// The gateway itself is down from 1 h to 1 h 30 min: the coordinator's
/// frames meanwhile are lost and counted (10 LMUs × 30 reports, within
/// one report either way per LMU for the edges); nothing it had accepted
/// is lost: every record it accepted is published once, and the rounds
/// whose deadlines fell in the outage are published when it is back,
/// each naming the LMUs whose reports were lost.
#[test]
fn a_gateway_outage_loses_what_arrives_meanwhile_and_nothing_accepted() {
    let src = "(duration: \"3h\", \
          mesh: (nodes: Line(count: 11, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (aggregation: WaitForAll(deadline: \"20s\")), \
          faults: [GatewayOutage((at: \"1h\", duration: \"30min\"))])";
    let s = run(src);
    let (_, msgs) = run_keeping(src);
    assert_eq!(num(&s, "gateway.outages"), 1.0);
    let lost = num(&s, "gateway.frames_lost_down");
    assert!((290.0..=310.0).contains(&lost), "{lost} frames lost");
    assert_eq!(num(&s, "gateway.records_dropped"), 0.0);
    assert_eq!(num(&s, "gateway.records_pending_at_end"), 0.0);
    assert_eq!(num(&s, "gateway.records_duplicate_in_cloud"), 0.0);
    assert_eq!(
        num(&s, "gateway.records_stored"),
        num(&s, "gateway.records_published")
    );
    assert_eq!(
        num(&s, "gateway.reports_received") + lost,
        num(&s, "mesh.frames_delivered")
    );
    // Nothing is published while it is down; the overdue rounds go out at
    // the instant it is back.
    let (down, back) = (3600.0, 5400.0);
    assert!(
        msgs.iter()
            .all(|m| m.published_s <= down || m.published_s >= back)
    );
    let overdue: Vec<&EventMessage> = msgs.iter().filter(|m| m.published_s == back).collect();
    assert!(
        overdue.len() >= 25,
        "{} rounds published on return",
        overdue.len()
    );
    assert!(overdue.iter().all(|m| !m.missing.is_empty()));
}

/// An LMU that crashes at 10 min and reboots 10 minutes later: its reports
/// stop (the rounds of the crash name it missing), and after the reboot
/// (its radio rejoins the mesh within seconds, soliciting DIOs) they come
/// back in a new boot epoch, counted from sequence 0 again, and the
/// firmware counts the reboot.
#[test]
fn a_crashed_lmu_goes_silent_then_reports_again_in_a_new_epoch() {
    let src = "(duration: \"40min\", \
          mesh: (nodes: Line(count: 6, spacing_m: 300.0), report_interval: \"1min\"), \
          gateway: (aggregation: WaitForAll(deadline: \"15s\")), \
          faults: [NodeCrash((at: \"10min\", node: 3, reboot_after: \"10min\"))])";
    assert_eq!(num(&run(src), "lmu.reboots"), 1.0);
    let (_, msgs) = run_keeping(src);
    let of3 = |m: &EventMessage| m.records.iter().find(|r| r.lmu == 3).cloned();
    for m in msgs.iter().filter(|m| !m.late) {
        // Round r covers reports generated in [r, r + 1) minutes.
        match m.round {
            11..=19 => assert!(m.missing.contains(&3), "round {}", m.round),
            2..=9 => assert_eq!(of3(m).map(|r| r.epoch), Some(0), "round {}", m.round),
            22..=37 => assert_eq!(of3(m).map(|r| r.epoch), Some(1), "round {}", m.round),
            _ => {}
        }
    }
    let first_after = msgs
        .iter()
        .filter_map(of3)
        .find(|r| r.epoch == 1)
        .expect("reports after the reboot");
    assert_eq!(first_after.seq, 0, "{first_after:?}");
    assert!(first_after.generated_s >= 20.0 * 60.0 + 60.0);
}
