//! Gateway and cloud benchmarks.
//!
//! - `gateway/round_json/100`: building one published round of 100 LMU
//!   records (each from its telemetry, as the gateway does) into an
//!   `EventMessage` and serialising it with `serde_json::to_vec`. The
//!   baseline in the same group is `gateway/round_json/10`, a round of 10
//!   records, so the cost per record can be read from the two.
//! - `gateway/cloud_ingest/100`: `Cloud::ingest` of that 100-record
//!   message into a fresh cloud store (parse, ingestion latency draw,
//!   dedup insert, end-to-end latency, one rule checked per record).
//! - `gateway/mqtt_qos1/1000`: a connected MQTT client handing 1000 rounds
//!   of 4 KB to the broker at QoS 1, every packet carried both ways at the
//!   same instant until both sides are quiet, reported as messages per
//!   second of wall time. The baseline in the same group is
//!   `gateway/mqtt_qos0/1000`, the same at QoS 0 (no PUBACKs, no in-flight
//!   bookkeeping).
//! - `gateway/scenario_hour`: one simulated hour of a 20-LMU line mesh
//!   reporting every minute, with the gateway, MQTT over LTE and the cloud,
//!   through `world::run`. The baseline in the same group is
//!   `gateway/scenario_hour_no_gateway`, the same scenario without its
//!   gateway section, so the ratio is the gateway's share of a run.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gridtwin::gateway::buffer::Overflow;
use gridtwin::gateway::cloud::{Cloud, CloudSettings, Condition, Rule};
use gridtwin::gateway::mqtt::{Broker, Client, ClientSettings, exchange_instantly, packets};
use gridtwin::gateway::schema::{Action, EVENTS_SCHEMA, EventMessage, Record};
use gridtwin::kernel::{SimDuration, SimTime};
use gridtwin::scenario::Scenario;
use gridtwin_lmu::node::Telemetry;
use rumqttc::QoS;

/// Plausible telemetry of LMU `lmu` in round `round`.
fn telemetry(lmu: u32, round: u32) -> Telemetry {
    let dv = |base: u16| [base + (lmu % 7) as u16, base + 3, base - (lmu % 5) as u16];
    Telemetry {
        t_ms: u64::from(round) * 60_000 + u64::from(lmu) * 37,
        seq: round,
        epoch: 0,
        v_min_dv: dv(2260),
        v_max_dv: dv(2350),
        v_mean_dv: dv(2301),
        import_wh: 1520.5 + lmu as f32,
        export_wh: 12.25,
        pq_events: [1, 0, 0],
        pq_intervals: [round / 10, round / 10],
        closed: true,
        fault_latched: false,
        frames: [round, round, 0],
    }
}

/// One published round of `n` records, built and serialised.
fn round_json(telemetry: &[Telemetry], round: u64) -> Vec<u8> {
    let msg = EventMessage {
        schema: EVENTS_SCHEMA.into(),
        site: "village".into(),
        gateway: "gw0".into(),
        round,
        late: false,
        round_start_s: round as f64 * 60.0,
        published_s: round as f64 * 60.0 + 30.25,
        missing: vec![17],
        records: telemetry
            .iter()
            .enumerate()
            .map(|(i, t)| Record::from_telemetry(i as u32, t.t_ms as f64 / 1000.0, t))
            .collect(),
    };
    serde_json::to_vec(&msg).expect("an event serialises")
}

fn json(c: &mut Criterion) {
    let mut g = c.benchmark_group("gateway");
    g.measurement_time(Duration::from_secs(3));
    for n in [10u32, 100] {
        let t: Vec<Telemetry> = (0..n).map(|i| telemetry(i, 12)).collect();
        eprintln!(
            "round of {n} records: {} bytes of JSON",
            round_json(&t, 12).len()
        );
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(format!("round_json/{n}"), |b| {
            b.iter(|| black_box(round_json(black_box(&t), 12)))
        });
    }

    let t: Vec<Telemetry> = (0..100).map(|i| telemetry(i, 12)).collect();
    let payload = round_json(&t, 12);
    let settings = CloudSettings {
        ingest_median: SimDuration::from_millis(20).expect("fits"),
        ingest_sigma_ln: 0.5,
        v_nominal_v: 230.0,
        rules: vec![Rule {
            when: Condition::VoltageAbove(1.10),
            then: Action::LimitPv { percent: 50 },
            cooldown: SimDuration::from_mins(15).expect("fits"),
        }],
    };
    let now = SimTime::from_nanos(750_250_000_000);
    g.throughput(Throughput::Elements(100));
    g.bench_function("cloud_ingest/100", |b| {
        b.iter_batched(
            || Cloud::new(settings.clone(), 1),
            |mut cloud| {
                let fired = cloud.ingest(now, black_box(&payload), |_| {});
                assert_eq!(cloud.stored(), 100);
                black_box((fired, cloud))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

const USER: &str = "gw0";
const PASSWORD: &str = "secret";
const TOPIC: &str = "gridtwin/village/gw0/events";

fn client_settings(qos: QoS) -> ClientSettings {
    let secs = |s| SimDuration::from_secs(s).expect("fits");
    ClientSettings {
        client_id: "gw0".into(),
        username: USER.into(),
        password: PASSWORD.into(),
        keep_alive: secs(60),
        ping_timeout: secs(10),
        connect_timeout: secs(10),
        backoff_min: secs(1),
        backoff_max: secs(60),
        qos,
        max_inflight: 20,
        retransmit_after: secs(20),
        clean_session: false,
        command_filter: "gridtwin/village/gw0/cmd/+".into(),
        buffer_bytes: 1 << 20,
        overflow: Overflow::DropOldest,
    }
}

/// A client connected and subscribed to a broker.
fn session(qos: QoS) -> (Client, Broker) {
    let mut c = Client::new(client_settings(qos));
    let mut b = Broker::new([(USER.to_string(), PASSWORD.to_string())]);
    let out = packets(&c.link(SimTime::ZERO, true));
    exchange_instantly(&mut c, &mut b, SimTime::ZERO, out);
    assert!(c.is_connected());
    (c, b)
}

/// Publishes `n` rounds of `payload`, one a millisecond, each carried to
/// the broker and acknowledged before the next.
fn publish_rounds(c: &mut Client, b: &mut Broker, payload: &[u8], n: u32) -> usize {
    let mut delivered = 0;
    for i in 0..n {
        let now = SimTime::from_nanos(1_000_000_000 + u64::from(i) * 1_000_000);
        let out = packets(&c.publish(now, TOPIC, payload.to_vec(), 20));
        delivered += black_box(exchange_instantly(c, b, now, out)).len();
    }
    delivered
}

fn mqtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("gateway");
    g.measurement_time(Duration::from_secs(4));
    let payload = vec![b'x'; 4096];
    let n = 1000u32;
    g.throughput(Throughput::Elements(u64::from(n)));
    for (name, qos) in [
        ("mqtt_qos0", QoS::AtMostOnce),
        ("mqtt_qos1", QoS::AtLeastOnce),
    ] {
        g.bench_function(format!("{name}/{n}"), |bch| {
            bch.iter_batched(
                || session(qos),
                |(mut c, mut b)| {
                    let got = publish_rounds(&mut c, &mut b, &payload, n);
                    assert_eq!(got, n as usize);
                    black_box((c, b))
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

const MESH: &str = "mesh: (nodes: Line(count: 21, spacing_m: 300.0), report_interval: \"1min\")";

fn scenario(gateway: bool) -> Scenario {
    let src = format!(
        "(duration: \"1h\", {MESH}{})",
        if gateway { ", gateway: ()" } else { "" }
    );
    Scenario::from_source("bench.ron", &src, Path::new("scenarios"), "bench").expect("valid")
}

fn run(c: &mut Criterion) {
    let mut g = c.benchmark_group("gateway");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for (name, gateway) in [("scenario_hour_no_gateway", false), ("scenario_hour", true)] {
        let sc = scenario(gateway);
        let out = gridtwin::world::run(&sc, 1, &mut ()).expect("runs");
        eprintln!(
            "{name}: {:?} events, {:?} records stored",
            out.summary.get("kernel.events"),
            out.summary.get("gateway.records_stored")
        );
        g.bench_function(name, |b| {
            b.iter(|| black_box(gridtwin::world::run(&sc, 1, &mut ()).expect("runs").summary))
        });
    }
    g.finish();
}

criterion_group!(benches, json, mqtt, run);
criterion_main!(benches);
