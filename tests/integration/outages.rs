//! Records are conserved through any mix of outages (issue 20): every
//! report a gateway receives reaches the cloud, is dropped by its bounded
//! buffer (counted), or is still pending in it at the end; nothing
//! vanishes. The run itself checks this per gateway and fails (after
//! writing its results) when it does not hold; these tests draw outages as
//! a researcher would and assert it over every draw.

use gridtwin::metrics::Summary;
use gridtwin::scenario::Scenario;
use gridtwin::world;
use proptest::prelude::*;

use crate::{at, num};

/// The default study with its faults replaced by `faults` (RON entries)
/// and its duration set.
fn default_with(faults: &[String], duration: &str) -> Scenario {
    let src = std::fs::read_to_string(at("scenarios/default.ron")).unwrap();
    let (a, b) = (
        src.find("    faults: [").unwrap(),
        src.find("    outputs:").unwrap(),
    );
    let mut s = String::new();
    s.push_str(&src[..a]);
    s.push_str("    faults: [\n");
    for f in faults {
        s.push_str(&format!("        {f},\n"));
    }
    s.push_str("    ],\n");
    s.push_str(&src[b..]);
    let s = s.replacen("duration: \"24h\"", &format!("duration: \"{duration}\""), 1);
    Scenario::from_source("default.ron", &s, &at("scenarios"), "default").unwrap()
}

/// The conservation equation over the run's headline counts.
fn conserved(s: &Summary) -> Result<(), String> {
    let (received, stored, dropped, pending) = (
        num(s, "gateway.reports_received"),
        num(s, "gateway.records_stored"),
        num(s, "gateway.records_dropped"),
        num(s, "gateway.records_pending_at_end"),
    );
    if received == stored + dropped + pending && received > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "received {received} != stored {stored} + dropped {dropped} + pending {pending}"
        ))
    }
}

/// The mix the issue reported: a coordinator outage, a gateway outage and
/// a broker outage in one day, beside the default study's crash and fault.
/// The 1 MiB buffer holds far more than the 68 minutes of rounds the
/// broker outage keeps back, so nothing is dropped, and everything the
/// gateway received is stored.
#[test]
fn issue_20_a_day_of_three_outages_stores_every_record() {
    let faults = [
        r#"NodeCrash((at: "10h", node: 5, reboot_after: "1h"))"#,
        r#"Short((at: "12h", bus: "f2p34", kind: "slg-a", r_ohm: 0.01))"#,
        r#"CoordinatorOutage((at: "15375s", duration: "20min"))"#,
        r#"GatewayOutage((at: "29744s", duration: "27min"))"#,
        r#"BrokerOutage((at: "53809s", duration: "68min"))"#,
    ]
    .map(String::from);
    let out = world::run(&default_with(&faults, "24h"), 1, &mut ()).unwrap();
    assert_eq!(out.violation, None);
    let s = &out.summary;
    conserved(s).unwrap();
    assert_eq!(num(s, "gateway.records_dropped"), 0.0);
    assert_eq!(num(s, "gateway.records_pending_at_end"), 0.0);
    assert_eq!(
        num(s, "gateway.records_stored"),
        num(s, "gateway.reports_received")
    );
    assert_eq!(
        num(s, "gateway.records_published"),
        num(s, "gateway.reports_received")
    );
    // Every outage happened: the gateway's, the broker's (its session was
    // lost and re-established), and the mesh lost what was sent to the
    // coordinator meanwhile.
    assert_eq!(num(s, "gateway.outages"), 1.0);
    assert!(num(s, "gateway.mqtt_connection_losses") >= 2.0);
}

/// One drawn outage: (kind, start [s], duration [s], node for a crash).
fn outage() -> impl Strategy<Value = String> {
    (0u8..5, 0u64..21_600, 30u64..5_400, 1u32..40).prop_map(|(kind, at, dur, node)| match kind {
        0 => format!(r#"CoordinatorOutage((at: "{at}s", duration: "{dur}s"))"#),
        1 => format!(r#"GatewayOutage((at: "{at}s", duration: "{dur}s"))"#),
        2 => format!(r#"CellularOutage((at: "{at}s", duration: "{dur}s"))"#),
        3 => format!(r#"BrokerOutage((at: "{at}s", duration: "{dur}s"))"#),
        _ => format!(r#"NodeCrash((at: "{at}s", node: {node}, reboot_after: "{dur}s"))"#),
    })
}

proptest! {
    // Each case is six simulated hours of the village (under a second
    // optimised); proptest records a failing draw's seed in
    // proptest-regressions/ so that it replays first next time.
    #![proptest_config(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    })]

    /// Random mixes of one to five outages of every kind, anywhere in six
    /// hours, overlapping or not, some still running at the end: the
    /// gateway's records are conserved in every draw, and the run's own
    /// check agrees. Without a buffer overflow (1 MiB holds hours of
    /// rounds), nothing is dropped.
    #[test]
    fn records_are_conserved_through_any_mix_of_outages(
        faults in proptest::collection::vec(outage(), 1..6),
    ) {
        let out = world::run(&default_with(&faults, "6h"), 1, &mut ()).unwrap();
        prop_assert_eq!(out.violation.as_deref(), None, "{:?}", faults);
        let s = &out.summary;
        prop_assert!(conserved(s).is_ok(), "{:?}: {:?}", faults, conserved(s));
        prop_assert_eq!(num(s, "gateway.records_dropped"), 0.0, "{:?}", faults);
    }
}
