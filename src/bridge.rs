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
//! reached at the start is an error that names the cause (unless
//! `--mqtt-optional`).
//!
//! # Surviving the broker
//! Once connected, the bridge rides out a broker outage as the twin's own
//! gateway does:
//! - the connection is retried with exponential back-off (0.1 s doubling
//!   to 2 s), on a persistent session (`clean_session = false`, so the
//!   broker keeps the subscription and queues the commands meanwhile);
//! - the event messages wait in a store-and-forward buffer bounded in
//!   bytes ([`BridgeOptions::buffer_bytes`], oldest dropped first, every
//!   drop counted), and at most [`WINDOW`] of them are handed to the
//!   client unacknowledged. Those the broker has not acknowledged when the
//!   connection drops are kept: the client sends them again on a resumed
//!   session, and the bridge queues them again when the broker lost the
//!   session (a restart without persistence);
//! - the run fails on the broker only when it stays away longer than
//!   [`BridgeOptions::outage_limit`] (wall-clock), and then, like every
//!   failed run, writes the results it has (`sim.partial: true`).
//!
//! The `bridge.*` keys account for every event message:
//! `messages_forwarded = messages_published + messages_dropped +
//! messages_pending_at_end`, published meaning acknowledged by the broker
//! (QoS 1 PUBACK). They are counts of the live run, which depends on the
//! broker and the wall clock, so they are the one part of a bridged run's
//! summary that a replay does not reproduce.
//!
//! At the start the bridge connects once with a clean session under its
//! client id, to discard a session an earlier run may have left at the
//! broker (with commands meant for that run), then opens its own
//! persistent one.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event as MqttEvent, MqttOptions,
    Outgoing, Packet, Publish, QoS,
};

use crate::gateway::buffer::{Buffer, Overflow, Queued};
use crate::gateway::schema::{self, Action};
use crate::kernel::{SimDuration, SimTime, Simulation};
use crate::metrics::Summary;
use crate::world::gateway::GatewayEvent;
use crate::world::{Driver, Event, World, WorldError};

/// How long to wait for the broker's CONNACK and SUBACK.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long to wait at the end for a connected broker to acknowledge what
/// the bridge holds.
const DRAIN: Duration = Duration::from_secs(20);
/// The first and the longest pause between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Event messages handed to the client and not yet acknowledged, at most.
pub const WINDOW: usize = 64;
/// The default bound of the bridge's store-and-forward buffer [bytes].
pub const DEFAULT_BUFFER_BYTES: usize = 64 << 20;
/// The default longest broker outage a run rides out (wall-clock).
pub const DEFAULT_OUTAGE_LIMIT: Duration = Duration::from_secs(300);
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
    /// The broker went away during the run and did not come back within
    /// the limit.
    #[error(
        "the MQTT broker at {broker} has been away for more than {limit_s} s \
         (--mqtt-outage-limit): {reason}"
    )]
    Away {
        /// host:port.
        broker: String,
        /// The limit [s].
        limit_s: f64,
        /// The last transport error.
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

/// What the connection's thread tells the run.
#[derive(Debug, Default)]
struct LinkState {
    /// Whether a session is established.
    connected: bool,
    /// Since when it is not (wall-clock), once it had been.
    down_since: Option<Instant>,
    /// The broker resumed without the session: the messages it had not
    /// acknowledged are gone from the client and must be sent again.
    session_lost: bool,
    /// PUBACKs received, in order (MQTT 3.1.1 §4.6: a broker acknowledges
    /// QoS 1 messages in the order it received them).
    acked: u64,
    /// Connections lost.
    losses: u64,
    /// Sessions established after a loss.
    reconnects: u64,
    /// The last transport error.
    last_error: String,
}

/// A live connection: the client, and the thread that runs its event
/// loop, reconnects, and forwards commands.
struct Link {
    client: Client,
    commands: Receiver<(String, Vec<u8>)>,
    state: Arc<Mutex<LinkState>>,
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

/// Waits for the CONNACK (and, with `filter`, the SUBACK) of a new
/// connection; the errors name the broker and the cause.
fn handshake(
    client: &Client,
    conn: &mut Connection,
    broker: &str,
    filter: Option<&str>,
) -> Result<(), BridgeError> {
    let unreachable = |reason: String| BridgeError::Unreachable {
        broker: broker.to_string(),
        reason,
    };
    let refused = |code| BridgeError::Refused {
        broker: broker.to_string(),
        reason: reason_of(code),
    };
    let deadline = Instant::now() + HANDSHAKE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = conn
            .recv_timeout(left)
            .map_err(|_| unreachable("no answer within 10 s".into()))?;
        match ev {
            Ok(MqttEvent::Incoming(Packet::ConnAck(a))) => {
                if a.code != ConnectReturnCode::Success {
                    return Err(refused(a.code));
                }
                let Some(filter) = filter else {
                    return Ok(());
                };
                client
                    .subscribe(filter, QoS::AtLeastOnce)
                    .map_err(|e| unreachable(e.to_string()))?;
            }
            Ok(MqttEvent::Incoming(Packet::SubAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(refused(code)),
            Err(e) => return Err(unreachable(e.to_string())),
        }
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
        // A clean session first, ended at once: whatever an earlier run
        // left under this client id is discarded.
        opts.set_clean_session(true);
        {
            let (client, mut conn) = Client::new(opts.clone(), 8);
            handshake(&client, &mut conn, &broker, None)?;
            let _ = client.disconnect();
            let deadline = Instant::now() + HANDSHAKE;
            while Instant::now() < deadline {
                match conn.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(Ok(MqttEvent::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => {
                        break;
                    }
                    Ok(Ok(_)) => {}
                }
            }
        }
        // Then the run's own session, kept by the broker across outages.
        opts.set_clean_session(false);
        let (client, mut conn) = Client::new(opts, 4 * WINDOW);
        handshake(&client, &mut conn, &broker, Some(filter))?;
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(Mutex::new(LinkState {
            connected: true,
            ..LinkState::default()
        }));
        let shared = Arc::clone(&state);
        let resubscribe = client.clone();
        let filter = filter.to_string();
        let thread = std::thread::spawn(move || {
            let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
            let mut backoff = BACKOFF.0;
            loop {
                let ev = match conn.recv() {
                    Ok(ev) => ev,
                    // Every client handle is gone: the run is over.
                    Err(_) => break,
                };
                match ev {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(a))) => {
                        if a.code != ConnectReturnCode::Success {
                            lock().last_error = reason_of(a.code);
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(BACKOFF.1);
                            continue;
                        }
                        backoff = BACKOFF.0;
                        let mut st = lock();
                        st.connected = true;
                        st.down_since = None;
                        st.reconnects += 1;
                        if !a.session_present {
                            // The broker forgot us: subscribe again, and
                            // the client has dropped what it held.
                            st.session_lost = true;
                            let _ = resubscribe.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            break;
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => lock().acked += 1,
                    Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        {
                            let mut st = lock();
                            if st.connected {
                                st.connected = false;
                                st.losses += 1;
                                st.down_since = Some(Instant::now());
                            }
                            st.last_error = e.to_string();
                        }
                        // Polling again reconnects; pause first.
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF.1);
                    }
                }
            }
        });
        Ok(Link {
            client,
            commands: rx,
            state,
            thread: Some(thread),
            broker,
        })
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Disconnects and ends the connection's thread.
    fn close(&mut self) {
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            // A thread still waiting for a broker that is away ends when
            // its next attempt sees the disconnect request; it is not
            // waited for.
            if self.state().connected {
                let _ = t.join();
            }
        }
    }
}

/// The settings of a bridged or replayed run.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// The broker URL, if bridging.
    pub mqtt: Option<String>,
    /// Carry on without the bridge when the broker cannot be reached at
    /// the start.
    pub optional: bool,
    /// The longest broker outage the run rides out (wall-clock); longer
    /// fails the run.
    pub outage_limit: Duration,
    /// The bound of the store-and-forward buffer [bytes].
    pub buffer_bytes: usize,
    /// Pace the simulation at this many times wall-clock.
    pub realtime: Option<f64>,
    /// Commands to replay.
    pub replay: Vec<Recorded>,
}

impl Default for BridgeOptions {
    fn default() -> BridgeOptions {
        BridgeOptions {
            mqtt: None,
            optional: false,
            outage_limit: DEFAULT_OUTAGE_LIMIT,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            realtime: None,
            replay: Vec::new(),
        }
    }
}

/// The event messages of a bridged run on their way to the broker.
#[derive(Debug)]
struct Outbox {
    /// Waiting for the session (bounded, oldest dropped first).
    buffer: Buffer,
    /// Handed to the client and not yet acknowledged, in order.
    unacked: VecDeque<Queued>,
    /// PUBACKs accounted for.
    acked: u64,
    /// Messages the twin gave the bridge.
    forwarded: u64,
    /// Messages queued again after the broker lost the session.
    resent: u64,
}

impl Outbox {
    fn new(bytes: usize) -> Outbox {
        Outbox {
            buffer: Buffer::new(bytes, Overflow::DropOldest),
            unacked: VecDeque::new(),
            acked: 0,
            forwarded: 0,
            resent: 0,
        }
    }

    /// Messages not yet acknowledged: waiting or handed to the client.
    fn pending(&self) -> u64 {
        (self.buffer.len() + self.unacked.len()) as u64
    }

    /// Takes the link's news, then hands the client what the window allows.
    fn pump(&mut self, link: &Link) {
        let (connected, lost, acked) = {
            let mut st = link.state();
            (st.connected, std::mem::take(&mut st.session_lost), st.acked)
        };
        for _ in self.acked..acked {
            self.unacked.pop_front();
        }
        self.acked = self.acked.max(acked);
        if lost {
            // Sent again in their order, ahead of what waits.
            let again = std::mem::take(&mut self.unacked);
            self.resent += again.len() as u64;
            self.buffer.requeue_front(again.into_iter());
        }
        if !connected {
            return;
        }
        while self.unacked.len() < WINDOW {
            let Some(q) = self.buffer.pop() else {
                break;
            };
            let p = &q.publish;
            match link.client.try_publish(
                p.topic.clone(),
                QoS::AtLeastOnce,
                false,
                p.payload.clone(),
            ) {
                Ok(()) => self.unacked.push_back(q),
                Err(_) => {
                    // The client's queue is full or closing: keep it here.
                    self.buffer.requeue_front(std::iter::once(q));
                    break;
                }
            }
        }
    }
}

/// The driver of a bridged, paced or replayed run.
#[derive(Debug)]
pub struct LiveDriver {
    opts: BridgeOptions,
    link: Option<Link>,
    outbox: Outbox,
    /// Next event message to forward.
    cursor: usize,
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
            outbox: Outbox::new(opts.buffer_bytes),
            opts,
            link: None,
            cursor: 0,
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

    /// The broker is away past the limit: the error that fails the run.
    fn away(&self, link: &Link) -> Option<BridgeError> {
        let st = link.state();
        let since = st.down_since?;
        (since.elapsed() > self.opts.outage_limit).then(|| BridgeError::Away {
            broker: link.broker.clone(),
            limit_s: self.opts.outage_limit.as_secs_f64(),
            reason: st.last_error.clone(),
        })
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
            Err(e) if self.opts.optional => {
                self.warnings
                    .push(format!("MQTT bridge disabled (--mqtt-optional): {e}"));
                Ok(())
            }
            Err(e) => Err(WorldError::Edge(e.to_string())),
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
        let Some(link) = &self.link else {
            return Ok(());
        };
        // What the simulated gateway published, into the outbox.
        for (_, topic, payload) in &world.published()[self.cursor..] {
            self.outbox.forwarded += 1;
            self.outbox.buffer.push(Queued {
                publish: Publish::new(topic.clone(), QoS::AtLeastOnce, payload.clone()),
                records: 1,
            });
        }
        self.cursor = world.published().len();
        self.outbox.pump(link);
        if let Some(e) = self.away(link) {
            return Err(WorldError::Edge(e.to_string()));
        }
        // Take in what arrived.
        let incoming: Vec<(String, Vec<u8>)> = link.commands.try_iter().collect();
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
        Ok(())
    }

    fn finish(
        &mut self,
        summary: &mut Summary,
        files: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), WorldError> {
        let mut failure = None;
        if let Some(mut link) = self.link.take() {
            // Deliver what is held: while the broker is connected, for up
            // to the drain time; while it is away, until the outage limit.
            let drain_until = Instant::now() + DRAIN;
            loop {
                self.outbox.pump(&link);
                if self.outbox.pending() == 0 {
                    break;
                }
                if let Some(e) = self.away(&link) {
                    failure = Some(WorldError::Edge(e.to_string()));
                    break;
                }
                if link.state().connected && Instant::now() > drain_until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            link.close();
            let st = link.state();
            let o = &self.outbox;
            summary.set_u64("bridge.messages_forwarded", o.forwarded);
            summary.set_u64("bridge.messages_published", o.acked);
            summary.set_u64("bridge.messages_dropped", o.buffer.stats().dropped);
            summary.set_u64("bridge.messages_pending_at_end", o.pending());
            summary.set_u64("bridge.messages_resent", o.resent);
            summary.set_u64(
                "bridge.buffer_peak_bytes",
                o.buffer.stats().peak_bytes as u64,
            );
            summary.set_u64("bridge.connection_losses", st.losses);
            summary.set_u64("bridge.reconnects", st.reconnects);
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
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
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
