//! The live bridge to a real MQTT broker, and the replay of what came in
//! through it. An edge adapter: it runs beside the simulation as a
//! [`Driver`], never inside a model.
//!
//! - Every event message the simulated gateway publishes is published to
//!   the real broker too, on `gridtwin/<site>/<gateway>/events`, with the
//!   JSON of [`crate::gateway::schema`], at QoS 1.
//! - Commands arriving on `gridtwin/<site>/<gateway>/cmd/<lmu>` are injected
//!   into the simulation at the simulated time they are received: the
//!   simulated cloud issues them, and they travel the simulated broker,
//!   4G, gateway and mesh to the LMU.
//! - Live commands make a run non-reproducible, so each one is recorded
//!   with its simulated time in `bridge_commands.csv` (`t_ns,lmu,payload`).
//!   `--replay-commands FILE` injects them again at the same simulated
//!   instants, in the same order, which reproduces the run.
//! - With `--realtime X` the simulation is paced at X times wall-clock.
//!
//! The broker URL is `mqtt://USER:PASS@HOST:PORT` (`mqtts://` with the `tls`
//! feature); the user and password are taken as written (not
//! percent-decoded). A broker that refuses the credentials or cannot be
//! reached is an error that names the cause.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, ConnectionError, Event as MqttEvent, MqttOptions, Packet, QoS,
};

use crate::gateway::schema::{self, Action};
use crate::kernel::{SimDuration, SimTime, Simulation};
use crate::metrics::Summary;
use crate::world::gateway::GatewayEvent;
use crate::world::{Driver, Event, World, WorldError};

/// How long to wait for the broker's CONNACK and SUBACK.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long to wait at the end for the broker to acknowledge what was sent.
const DRAIN: Duration = Duration::from_secs(20);
/// Without pacing, the simulation stops this often (simulated) to take in
/// live commands.
const POLL_STEP: SimDuration = SimDuration::from_nanos(1_000_000_000);

/// Why the bridge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The URL is not an MQTT broker URL.
    #[error("--mqtt {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The broker refused the connection.
    #[error("the MQTT broker at {broker} refused the connection: {reason}")]
    Refused {
        /// host:port.
        broker: String,
        /// Why, from its CONNACK.
        reason: String,
    },
    /// The broker could not be reached, or the connection failed.
    #[error("the MQTT broker at {broker} is unreachable: {reason}")]
    Unreachable {
        /// host:port.
        broker: String,
        /// The transport's error.
        reason: String,
    },
    /// The replay file is unreadable or malformed.
    #[error("--replay-commands {path}: {reason}")]
    Replay {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One received command, as recorded and replayed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// Simulated time of receipt [ns].
    pub t_ns: u64,
    /// The LMU its topic names.
    pub lmu: u32,
    /// The JSON as received.
    pub payload: String,
}

/// Reads a `bridge_commands.csv`.
pub fn read_replay(path: &Path) -> Result<Vec<Recorded>, BridgeError> {
    let file = std::fs::File::open(path).map_err(|e| BridgeError::Replay {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse_replay(file, &path.display().to_string())
}

/// Parses a `bridge_commands.csv` from any reader (untrusted bytes);
/// `name` names it in errors.
pub fn parse_replay(input: impl std::io::Read, name: &str) -> Result<Vec<Recorded>, BridgeError> {
    let err = |reason: String| BridgeError::Replay {
        path: name.to_string(),
        reason,
    };
    let mut r = csv::Reader::from_reader(input);
    let mut out: Vec<Recorded> = Vec::new();
    for (i, row) in r.deserialize().enumerate() {
        let rec: Recorded = row.map_err(|e| err(format!("row {}: {e}", i + 2)))?;
        if out.last().is_some_and(|l| l.t_ns > rec.t_ns) {
            return Err(err(format!("row {}: times must not decrease", i + 2)));
        }
        out.push(rec);
    }
    Ok(out)
}

fn reason_of(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword => "bad user name or password".into(),
        // What mosquitto answers to a wrong password.
        ConnectReturnCode::NotAuthorized => {
            "not authorised (a wrong user name or password, or an account without access)".into()
        }
        ConnectReturnCode::BadClientId => "client id rejected".into(),
        ConnectReturnCode::ServiceUnavailable => "service unavailable".into(),
        ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not supported".into(),
        ConnectReturnCode::Success => "accepted".into(),
    }
}

/// A live connection: the client, and the thread that runs its event loop
/// and forwards commands.
struct Link {
    client: Client,
    commands: Receiver<Result<(String, Vec<u8>), String>>,
    acked: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    broker: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl Link {
    fn open(url: &str, client_id: &str, filter: &str) -> Result<Link, BridgeError> {
        let bad = |reason: String| BridgeError::Url {
            url: url.to_string(),
            reason,
        };
        let mut u = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !u.query_pairs().any(|(k, _)| k == "client_id") {
            u.query_pairs_mut().append_pair("client_id", client_id);
        }
        let mut opts = MqttOptions::try_from(u.clone()).map_err(|e| bad(e.to_string()))?;
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 22, 1 << 22);
        let broker = format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port().unwrap_or(1883)
        );
        let (client, mut conn) = Client::new(opts, 1024);
        let unreachable = |reason: String| BridgeError::Unreachable {
            broker: broker.clone(),
            reason,
        };
        // The handshake, on this thread: CONNACK, then the subscription.
        let deadline = Instant::now() + HANDSHAKE;
        let mut subscribed = false;
        while !subscribed {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match conn.recv_timeout(left) {
                Ok(ev) => ev,
                Err(_) => return Err(unreachable("no answer within 10 s".into())),
            };
            match ev {
                Ok(MqttEvent::Incoming(Packet::ConnAck(a))) => {
                    if a.code != ConnectReturnCode::Success {
                        return Err(BridgeError::Refused {
                            broker,
                            reason: reason_of(a.code),
                        });
                    }
                    client
                        .subscribe(filter, QoS::AtLeastOnce)
                        .map_err(|e| unreachable(e.to_string()))?;
                }
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => subscribed = true,
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => {
                    return Err(BridgeError::Refused {
                        broker,
                        reason: reason_of(code),
                    });
                }
                Err(e) => return Err(unreachable(e.to_string())),
            }
        }
        let (tx, rx) = mpsc::channel();
        let acked = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&acked);
        let thread = std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        if tx.send(Ok((p.topic.clone(), p.payload.to_vec()))).is_err() {
                            break;
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        Ok(Link {
            client,
            commands: rx,
            acked,
            thread: Some(thread),
            broker,
        })
    }

    /// Waits until `n` publishes are acknowledged (or the drain time
    /// passes), then disconnects.
    fn close(&mut self, n: u64) {
        let deadline = Instant::now() + DRAIN;
        while self.acked.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.client.disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The settings of a bridged or replayed run.
#[derive(Clone, Debug, Default)]
pub struct BridgeOptions {
    /// The broker URL, if bridging.
    pub mqtt: Option<String>,
    /// Carry on without the bridge when the broker fails.
    pub optional: bool,
    /// Pace the simulation at this many times wall-clock.
    pub realtime: Option<f64>,
    /// Commands to replay.
    pub replay: Vec<Recorded>,
}

/// The driver of a bridged, paced or replayed run.
#[derive(Debug)]
pub struct LiveDriver {
    opts: BridgeOptions,
    link: Option<Link>,
    /// Next event message to forward.
    cursor: usize,
    published: u64,
    received: Vec<Recorded>,
    invalid: u64,
    next_replay: usize,
    next_id: u64,
    wall_start: Instant,
    warnings: Vec<String>,
}

impl LiveDriver {
    /// A driver; nothing connects before the run starts.
    pub fn new(opts: BridgeOptions) -> LiveDriver {
        LiveDriver {
            opts,
            link: None,
            cursor: 0,
            published: 0,
            received: Vec::new(),
            invalid: 0,
            next_replay: 0,
            next_id: 0,
            wall_start: Instant::now(),
            warnings: Vec::new(),
        }
    }

    /// Warnings to show the user (e.g. a bridge disabled by
    /// `--mqtt-optional`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The commands received live, to write as `bridge_commands.csv`.
    pub fn received(&self) -> &[Recorded] {
        &self.received
    }

    fn fail(&mut self, e: BridgeError) -> Result<(), WorldError> {
        if self.opts.optional {
            self.warnings
                .push(format!("MQTT bridge disabled (--mqtt-optional): {e}"));
            self.link = None;
            Ok(())
        } else {
            Err(WorldError::Edge(e.to_string()))
        }
    }

    /// Injects a command for `lmu` at the current simulated time.
    fn inject(
        &mut self,
        world: &World,
        sim: &mut Simulation<Event>,
        lmu: u32,
        payload: &[u8],
    ) -> Result<bool, WorldError> {
        let Ok(msg) = schema::parse_command(payload) else {
            self.invalid += 1;
            return Ok(false);
        };
        let Some(gw) = world.gateway().and_then(|g| g.home_of(lmu)) else {
            self.invalid += 1;
            return Ok(false);
        };
        let id = msg.id.clone().unwrap_or_else(|| {
            self.next_id += 1;
            format!("b{}", self.next_id)
        });
        let action: Action = msg.action;
        sim.schedule_at(
            sim.now(),
            Event::Gateway(gw, Box::new(GatewayEvent::External { lmu, action, id })),
        )?;
        Ok(true)
    }
}

impl Driver for LiveDriver {
    fn start(&mut self, world: &mut World, _sim: &mut Simulation<Event>) -> Result<(), WorldError> {
        self.wall_start = Instant::now();
        let Some(url) = self.opts.mqtt.clone() else {
            return Ok(());
        };
        let Some(g) = world.gateway() else {
            return Err(WorldError::Edge(
                "--mqtt bridges the gateway's events, but the scenario has no `gateway` section"
                    .into(),
            ));
        };
        // One gateway: its commands; several (a town's districts): every
        // gateway's of the site.
        let (site, gw) = g.app(0).names();
        let filter = if g.len() == 1 {
            schema::command_filter(site, gw)
        } else {
            schema::command_filter(site, "+")
        };
        let client_id = format!("gridtwin-{site}-{gw}");
        world.keep_published();
        match Link::open(&url, &client_id, &filter) {
            Ok(l) => {
                self.link = Some(l);
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    fn next_stop(&mut self, now: SimTime, end: SimTime) -> SimTime {
        let mut stop = end;
        if let Some(r) = self.opts.replay.get(self.next_replay) {
            stop = stop.min(SimTime::from_nanos(r.t_ns).max(now));
        }
        match self.opts.realtime {
            Some(x) => loop {
                let target = SimTime::ZERO.saturating_add(SimDuration::from_nanos(
                    (self.wall_start.elapsed().as_secs_f64() * x * 1e9) as u64,
                ));
                if target > now || stop <= now {
                    return stop.min(target.max(now));
                }
                std::thread::sleep(Duration::from_millis(5));
            },
            None if self.link.is_some() => stop.min(now.saturating_add(POLL_STEP)),
            None => stop,
        }
    }

    fn after_step(
        &mut self,
        world: &mut World,
        sim: &mut Simulation<Event>,
    ) -> Result<(), WorldError> {
        let now = sim.now();
        // Replayed commands due now, in file order.
        while let Some(r) = self.opts.replay.get(self.next_replay).cloned() {
            if r.t_ns > now.as_nanos() {
                break;
            }
            self.next_replay += 1;
            self.inject(world, sim, r.lmu, r.payload.as_bytes())?;
        }
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        // Forward what the simulated gateway published.
        let mut failure = None;
        for (_, topic, payload) in &world.published()[self.cursor..] {
            if let Err(e) =
                link.client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
            {
                failure = Some(e.to_string());
                break;
            }
            self.published += 1;
        }
        self.cursor = world.published().len();
        // Take in what arrived.
        let mut incoming = Vec::new();
        while let Ok(m) = link.commands.try_recv() {
            match m {
                Ok(c) => incoming.push(c),
                Err(e) => failure = Some(e),
            }
        }
        let broker = link.broker.clone();
        let Some(gateways) = world.gateway() else {
            return Ok(());
        };
        // (command topic, LMU) pairs: the LMU a topic names, through the
        // gateway of its district only.
        let named: Vec<Option<u32>> = incoming
            .iter()
            .map(|(topic, _)| {
                gateways.apps().iter().enumerate().find_map(|(i, g)| {
                    let (site, gw) = g.names();
                    schema::lmu_of_topic(site, gw, topic)
                        .filter(|&l| gateways.home_of(l) == Some(i as u32))
                })
            })
            .collect();
        for ((_, payload), lmu) in incoming.into_iter().zip(named) {
            let Some(lmu) = lmu else {
                self.invalid += 1;
                continue;
            };
            if self.inject(world, sim, lmu, &payload)? {
                self.received.push(Recorded {
                    t_ns: now.as_nanos(),
                    lmu,
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                });
            }
        }
        if let Some(reason) = failure {
            return self.fail(BridgeError::Unreachable { broker, reason });
        }
        Ok(())
    }

    fn finish(&mut self, summary: &mut Summary, files: &mut Vec<(String, Vec<u8>)>) {
        let published = self.published;
        if let Some(mut link) = self.link.take() {
            link.close(published);
            summary.set_u64("bridge.messages_published", published);
            summary.set_u64("bridge.commands_received", self.received.len() as u64);
            summary.set_u64("bridge.commands_invalid", self.invalid);
        }
        if self.opts.mqtt.is_some() {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &self.received {
                w.serialize(r).expect("writing CSV to memory cannot fail");
            }
            if self.received.is_empty() {
                w.write_record(["t_ns", "lmu", "payload"])
                    .expect("writing CSV to memory cannot fail");
            }
            files.push((
                "bridge_commands.csv".into(),
                w.into_inner().expect("writing CSV to memory cannot fail"),
            ));
        }
        if !self.opts.replay.is_empty() {
            summary.set_u64("replay.commands", self.next_replay as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_file_round_trips_and_mistakes_name_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        let rows = vec![
            Recorded {
                t_ns: 5,
                lmu: 3,
                payload: r#"{"action":"open","id":"x,y"}"#.into(),
            },
            Recorded {
                t_ns: 9,
                lmu: 4,
                payload: r#"{"action":"close"}"#.into(),
            },
        ];
        let mut w = csv::Writer::from_path(&p).unwrap();
        for r in &rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(read_replay(&p).unwrap(), rows);
        std::fs::write(&p, "t_ns,lmu,payload\n9,1,{}\n5,1,{}\n").unwrap();
        let e = read_replay(&p).unwrap_err().to_string();
        assert!(e.contains("row 3") && e.contains("decrease"), "{e}");
        std::fs::write(&p, "t_ns,lmu,payload\nsoon,1,{}\n").unwrap();
        let e = read_replay(&p).unwrap_err().to_string();
        assert!(e.contains("row 2"), "{e}");
    }

    #[test]
    fn an_unreachable_broker_is_named_in_the_error() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Link::open(&format!("mqtt://u:p@127.0.0.1:{port}"), "t", "x/#").unwrap_err();
        let s = e.to_string();
        assert!(
            matches!(e, BridgeError::Unreachable { .. })
                && s.contains(&format!("127.0.0.1:{port}")),
            "{s}"
        );
        let e = Link::open("http://example.invalid", "t", "x/#").unwrap_err();
        assert!(matches!(e, BridgeError::Url { .. }), "{e}");
    }
}
