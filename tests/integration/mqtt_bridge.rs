//! The live bridge against a real broker: Debian's mosquitto, started on
//! 127.0.0.1 at a free port with password authentication, and stopped by
//! its process id. Skipped with a notice when mosquitto is missing, except
//! under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridtwin::gateway::schema::{EVENTS_SCHEMA, EventMessage};
use gridtwin::metrics::{Summary, Value};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use crate::{at, refdata, stderr};

const USER: &str = "twin";
const PASS: &str = "s3cret";

/// A mosquitto process of our own.
struct Mosquitto {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Stops it: SIGTERM to its pid (with persistence it saves its state),
    /// then reaps it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts it (again) on its port, and waits until it accepts.
    fn start(&mut self) {
        assert!(self.child.is_none());
        self.child = Some(
            Command::new(&self.bin)
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Starts mosquitto with one account, or `None` (skip) without it.
fn mosquitto() -> Option<Mosquitto> {
    mosquitto_with(false)
}

/// Starts mosquitto with one account, keeping its sessions and queued
/// messages across a restart in its own folder when `persistence`.
fn mosquitto_with(persistence: bool) -> Option<Mosquitto> {
    let (Some(bin), Some(passwd)) = (find("mosquitto"), find("mosquitto_passwd")) else {
        let msg = "mosquitto not found (apt-get install mosquitto)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("notice: skipping: {msg}");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let ok = Command::new(passwd)
        .args(["-b", "-c"])
        .arg(&pw)
        .args([USER, PASS])
        .status()
        .unwrap();
    assert!(ok.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let conf = dir.path().join("mosquitto.conf");
    let persist = if persistence {
        // The trailing slash is mosquitto's.
        format!(
            "persistence true\npersistence_location {}/\n",
            dir.path().display()
        )
    } else {
        "persistence false\n".to_string()
    };
    std::fs::write(
        &conf,
        format!(
            "{}listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n{persist}",
            if root { "user root\n" } else { "" },
            pw.display()
        ),
    )
    .unwrap();
    let mut m = Mosquitto {
        child: None,
        port,
        bin,
        conf,
        _dir: dir,
    };
    m.start();
    Some(m)
}

/// Messages received: (topic, payload).
type Inbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A subscriber that collects every message on `filter`.
fn subscribe(port: u16, filter: &str) -> (Client, Inbox) {
    subscriber(port, filter, "test-subscriber", false)
}

/// A subscriber under client id `id`. With `persistent` it keeps its
/// session at the broker (`clean_session = false`) and rides out broker
/// restarts: it polls again after each error, which reconnects.
fn subscriber(port: u16, filter: &str, id: &str, persistent: bool) -> (Client, Inbox) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_credentials(USER, PASS);
    opts.set_max_packet_size(1 << 22, 1 << 22);
    opts.set_clean_session(!persistent);
    let (client, mut conn) = Client::new(opts, 64);
    client.subscribe(filter, QoS::AtLeastOnce).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(ev) = conn.recv() {
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    sink.lock()
                        .unwrap()
                        .push((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) if persistent => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the test subscriber is subscribed");
    (client, got)
}

fn summary(dir: &Path) -> Summary {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut s = Summary::new();
    for (k, x) in v.as_object().unwrap() {
        match x {
            serde_json::Value::Number(n) if n.is_u64() => s.set_u64(k, n.as_u64().unwrap()),
            serde_json::Value::Number(n) => s.set_f64(k, n.as_f64().unwrap()),
            serde_json::Value::String(t) => s.set_text(k, t),
            _ => s.set_f64(k, f64::NAN),
        }
    }
    s
}

fn u(s: &Summary, k: &str) -> u64 {
    match s.get(k) {
        Some(Value::U64(x)) => *x,
        other => panic!("{k}: {other:?}"),
    }
}

/// The run exited 1 with every `stderr_has` in its error, and still wrote
/// `out/summary.json` saying `sim.partial: true` with a `sim.failure` that
/// names `failure_has`. Returns the summary.
fn failed_with_partial_results(
    o: &std::process::Output,
    out: &Path,
    stderr_has: &[&str],
    failure_has: &str,
) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let e = stderr(o);
    assert!(stderr_has.iter().all(|x| e.contains(x)), "{e}");
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["sim.partial"], serde_json::Value::Bool(true), "{text}");
    assert!(
        v["sim.failure"].as_str().unwrap().contains(failure_has),
        "{text}"
    );
    v
}

fn gridtwin_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gridtwin"));
    c.current_dir(at("")).env("NO_COLOR", "1");
    c
}

/// Acceptance: a short run with --mqtt delivers every event with a valid
/// schema to our own subscriber; a command we publish reaches the LMU and
/// opens its section; the recorded command replays to the same results.
#[test]
fn the_bridge_publishes_every_event_and_injects_a_command_that_replays_identically() {
    let dir = refdata("ieee_eu_lv");
    let Some(broker) = mosquitto() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sc = tmp.path().join("bridge.ron");
    std::fs::write(
        &sc,
        format!(
            "(duration: \"30min\", \
              grid: (feeder: Dss(\"{}\"), profile_step: \"1min\"), \
              mesh: (nodes: GridJunctions, report_interval: \"2min\"), \
              gateway: (site: \"test\", id: \"gw1\", aggregation: WaitForAll(deadline: \"20s\")))",
            dir.join("dss/Master.dss").display()
        ),
    )
    .unwrap();
    let scenario = gridtwin::scenario::Scenario::load(&sc).expect("the bridge scenario is valid");
    let (lmu, customers) = crate::gateway::leaf_lmu_with_most_customers(&scenario);

    let (sub, got) = subscribe(broker.port, "gridtwin/test/gw1/#");
    let out = tmp.path().join("live");
    let url = format!("mqtt://{USER}:{PASS}@127.0.0.1:{}", broker.port);
    let child = gridtwin_bin()
        .arg("run")
        .arg(&sc)
        .args(["--mqtt", &url, "--realtime", "150", "--quiet", "--out"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first round is out (the bridge is up and subscribed), an
    // operator opens the LMU's contactor.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !got
        .lock()
        .unwrap()
        .iter()
        .any(|(t, _)| t.ends_with("/events"))
    {
        assert!(Instant::now() < deadline, "no event arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    sub.publish(
        format!("gridtwin/test/gw1/cmd/{lmu}"),
        QoS::AtLeastOnce,
        false,
        br#"{"action":"open","id":"op-1"}"#.to_vec(),
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::thread::sleep(Duration::from_millis(300));

    let s = summary(&out);
    let events: Vec<EventMessage> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == "gridtwin/test/gw1/events")
        .map(|(_, p)| serde_json::from_slice(p).expect("every event has the schema"))
        .collect();
    assert_eq!(events.len() as u64, u(&s, "bridge.messages_published"));
    assert!(events.len() >= 10, "{}", events.len());
    assert!(
        events
            .iter()
            .all(|e| e.schema == EVENTS_SCHEMA && e.site == "test" && e.gateway == "gw1")
    );
    // The command's effect: carried out, the contactor opened, the section
    // de-energised.
    assert_eq!(u(&s, "bridge.commands_received"), 1);
    assert_eq!(u(&s, "gateway.commands_delivered"), 1);
    assert_eq!(u(&s, "lmu.contactor_operations"), 1);
    assert_eq!(u(&s, "grid.customer_interruptions"), customers as u64);
    let cmds = std::fs::read_to_string(out.join("commands.csv")).unwrap();
    assert!(cmds.contains("op-1,bridge,"), "{cmds}");

    // The recorded command replays to the same results, without a broker.
    let recorded = out.join("bridge_commands.csv");
    assert_eq!(
        std::fs::read_to_string(&recorded).unwrap().lines().count(),
        2
    );
    let again = tmp.path().join("replay");
    let o = gridtwin_bin()
        .arg("run")
        .arg(&sc)
        .arg("--replay-commands")
        .arg(&recorded)
        .args(["--quiet", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = |s: &Summary| -> Vec<(String, Value)> {
        s.iter()
            .filter(|(k, _)| !k.starts_with("bridge.") && !k.starts_with("replay."))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    assert_eq!(strip(&summary(&again)), strip(&s));
    assert_eq!(
        std::fs::read(again.join("grid.csv")).unwrap(),
        std::fs::read(out.join("grid.csv")).unwrap()
    );
}

/// Acceptance: a wrong password is a clear error; with --mqtt-optional the
/// run carries on without the bridge. An unreachable broker is named.
#[test]
fn refused_or_unreachable_brokers_are_clear_errors_unless_optional() {
    let Some(broker) = mosquitto() else {
        return;
    };
    let sc = "scenarios/tests/gateway.ron";
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let wrong = format!("mqtt://{USER}:wrong@127.0.0.1:{}", broker.port);
    let o = gridtwin_bin()
        .args(["run", sc, "--mqtt", &wrong, "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    // A failed run writes what it has: here, nothing ran.
    let broker_at = format!("127.0.0.1:{}", broker.port);
    let v = failed_with_partial_results(
        &o,
        &out,
        &[&broker_at, "refused the connection", "password"],
        "refused",
    );
    assert_eq!(v["kernel.events"], 0, "{v}");

    let o = gridtwin_bin()
        .args([
            "run",
            sc,
            "--mqtt",
            &wrong,
            "--mqtt-optional",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: MQTT bridge disabled"),
        "{}",
        stderr(&o)
    );
    assert!(summary(&out).get("bridge.messages_published").is_none());

    drop(broker);
    // Nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = gridtwin_bin()
        .args([
            "run",
            sc,
            "--mqtt",
            &format!("mqtt://{USER}:{PASS}@127.0.0.1:{port}"),
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is unreachable"), "{}", stderr(&o));
}

/// Issue 20: the default day at 3600× real time through a mosquitto that
/// is stopped 8 s in and started again 4 s later (its sessions persisted).
/// The run rides it out: it exits 0, and every round message of the day
/// reaches the broker and our subscriber, none dropped.
#[test]
fn issue_20_a_broker_restart_costs_no_event() {
    let Some(mut broker) = mosquitto_with(true) else {
        return;
    };
    let (_sub, got) = subscriber(broker.port, "gridtwin/village/gw0/events", "watcher", true);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live");
    let url = format!("mqtt://{USER}:{PASS}@127.0.0.1:{}", broker.port);
    let child = gridtwin_bin()
        .args(["run", "scenarios/default.ron", "--mqtt", &url])
        .args(["--realtime", "3600", "--quiet", "--out"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(8));
    broker.stop();
    std::thread::sleep(Duration::from_secs(4));
    broker.start();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let s = summary(&out);
    let rows = std::fs::read_to_string(out.join("gateway.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(
        rows, 288,
        "the default day publishes a round every 5 minutes"
    );
    assert_eq!(u(&s, "bridge.messages_forwarded"), rows as u64);
    assert_eq!(u(&s, "bridge.messages_published"), rows as u64);
    assert_eq!(u(&s, "bridge.messages_dropped"), 0);
    assert_eq!(u(&s, "bridge.messages_pending_at_end"), 0);
    assert!(
        u(&s, "bridge.connection_losses") >= 1,
        "the broker went away"
    );
    assert!(u(&s, "bridge.reconnects") >= 1);
    // Our subscriber has every round (QoS 1 may bring one twice).
    let deadline = Instant::now() + Duration::from_secs(30);
    let distinct = || {
        got.lock()
            .unwrap()
            .iter()
            .map(|(_, p)| {
                let e: EventMessage = serde_json::from_slice(p).expect("events have the schema");
                (e.round, e.late, e.published_s.to_bits())
            })
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    while distinct() < rows && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(distinct(), rows);
}

/// A broker that goes away and stays away longer than
/// `--mqtt-outage-limit` fails the run, which writes what it has:
/// `sim.partial: true`, the reason, and every event message accounted for.
#[test]
fn a_broker_that_stays_away_fails_the_run_with_its_results() {
    let Some(mut broker) = mosquitto() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let url = format!("mqtt://{USER}:{PASS}@127.0.0.1:{}", broker.port);
    // Ten simulated minutes at 10× real time: a minute of wall time.
    let child = gridtwin_bin()
        .args(["run", "scenarios/tests/gateway.ron", "--mqtt", &url])
        .args([
            "--realtime",
            "10",
            "--mqtt-outage-limit",
            "2s",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first round goes out at about 1 simulated minute (6 s).
    std::thread::sleep(Duration::from_secs(10));
    broker.stop();
    let o = child.wait_with_output().unwrap();
    let v = failed_with_partial_results(
        &o,
        &out,
        &["has been away for more than 2 s", "partial results"],
        "away",
    );
    let text = v.to_string();
    let end = v["sim.end_s"].as_f64().unwrap();
    assert!(end > 0.0 && end < 600.0, "stopped part-way: {end}");
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {text}"));
    assert_eq!(
        n("bridge.messages_forwarded"),
        n("bridge.messages_published")
            + n("bridge.messages_dropped")
            + n("bridge.messages_pending_at_end")
    );
    assert!(n("bridge.messages_published") >= 1, "{text}");
    // The other results are there too.
    for f in [
        "gateway.csv",
        "timeseries.csv",
        "report.html",
        "bridge_commands.csv",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The report says, first, that it is partial and why.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        page.contains("<strong>Partial results.</strong>") && page.contains("away for more than"),
        "report.html does not say the run is partial"
    );
}
