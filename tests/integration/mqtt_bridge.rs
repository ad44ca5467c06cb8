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
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // SIGTERM to its pid, then reap it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    std::fs::write(
        &conf,
        format!(
            "{}listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
            if root { "user root\n" } else { "" },
            pw.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Mosquitto {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(m)
}

/// Messages received: (topic, payload).
type Inbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A subscriber that collects every message on `filter`.
fn subscribe(port: u16, filter: &str) -> (Client, Inbox) {
    let mut opts = MqttOptions::new("test-subscriber", "127.0.0.1", port);
    opts.set_credentials(USER, PASS);
    opts.set_max_packet_size(1 << 22, 1 << 22);
    let (client, mut conn) = Client::new(opts, 64);
    client.subscribe(filter, QoS::AtLeastOnce).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
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
    let Some(dir) = refdata("ieee_eu_lv") else {
        return;
    };
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
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("127.0.0.1:{}", broker.port))
            && e.contains("refused the connection")
            && e.contains("password"),
        "{e}"
    );
    assert!(!out.join("summary.json").exists());

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
