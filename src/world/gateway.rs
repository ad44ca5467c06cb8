//! The gateway and the cloud in the run: the coordinator's UART, the
//! aggregator, the MQTT client over the 3G/4G link, the broker, and the
//! cloud store with its command sources.
//!
//! ```text
//!  mesh ─► coordinator ─UART─► gateway: open frame ─► aggregator ─► round JSON
//!                                                                    │ MQTT client
//!                         3G/4G uplink (TCP: in order, lost segments re-sent)
//!                                                                    ▼
//!                         broker ─► cloud store (ingestion latency) ─► rules
//!                           ▲                                           │
//!        operator schedule ─┴─ commands (QoS 1, persistent session) ◄───┘
//!  LMU ◄─ mesh ◄─ coordinator ◄─UART─ gateway: seal Command frame ◄─ 3G/4G downlink
//! ```
//!
//! Each packet on the cellular link belongs to one TCP connection, named by
//! a number the client takes at each CONNECT. A packet of an older
//! connection is discarded on arrival, as a TCP stack would reset it. A
//! segment the link loses is re-sent after the retransmission timeout
//! (1 s, doubling, RFC 6298); after [`TCP_MAX_RETRIES`] the connection
//! breaks. The link keeps each connection's packets in order.

use std::collections::BTreeMap;

use gridtwin_lmu::frame::{GATEWAY, MAX_FRAME, MAX_PAYLOAD, Security};
use gridtwin_lmu::node::Message;
use rumqttc::{Packet, QoS};

use crate::gateway::aggregator::{Aggregator, Policy, Published, Report};
use crate::gateway::buffer::Overflow;
use crate::gateway::cellular::{Cellular, CellularProfile, LinkError};
use crate::gateway::cloud::{Cloud, CloudSettings, Condition, Rule, Source};
use crate::gateway::mqtt::{Broker, BrokerOut, Client, ClientOut, ClientSettings};
use crate::gateway::schema::{self, Action, EVENTS_SCHEMA, EventMessage, Record};
use crate::kernel::{SimDuration, SimTime};
use crate::mesh::uart::{Uart, UartSettings};
use crate::metrics::{Summary, TimeSeries};
use crate::scenario::Scenario;
use crate::scenario::dto::{
    ActionFile, AggregationFile, ConditionFile, FaultFile, GatewayFile, OverflowFile, UplinkFile,
};

use super::lmu::{KEYS, sim_time};

/// TCP gives up on a segment after this many re-sends.
pub const TCP_MAX_RETRIES: u32 = 6;

/// The initial TCP retransmission timeout (RFC 6298 §2).
const TCP_RTO: SimDuration = SimDuration::from_nanos(1_000_000_000);

/// An event of the gateway and cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayEvent {
    /// A frame from the mesh has crossed the UART to the gateway.
    FromCoordinator(Vec<u8>),
    /// A round's deadline.
    Deadline(u64),
    /// A packet reaches the broker on connection `conn`.
    ToBroker(u64, Packet),
    /// A packet reaches the gateway on connection `conn`; `None` is the
    /// connection being closed (FIN or RST).
    ToClient(u64, Option<Packet>),
    /// Check the client's timers.
    ClientTimer,
    /// Check the broker's timers.
    BrokerTimer,
    /// Outage `n` of the scenario's list starts (`true`) or ends.
    Outage(usize, bool),
    /// Scheduled operator command `n`.
    Operator(usize),
    /// A command fired by rule `rule` for an LMU.
    Rule {
        /// Rule index.
        rule: usize,
        /// The LMU.
        lmu: u32,
        /// What.
        action: Action,
    },
    /// A command from outside (the live bridge), with its id.
    External {
        /// The LMU.
        lmu: u32,
        /// What.
        action: Action,
        /// Its id.
        id: String,
    },
}

impl GatewayEvent {
    /// A short stable label for the event trace.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayEvent::FromCoordinator(_) => "gateway.uart",
            GatewayEvent::Deadline(_) => "gateway.deadline",
            GatewayEvent::ToBroker(..) => "cloud.packet",
            GatewayEvent::ToClient(..) => "gateway.packet",
            GatewayEvent::ClientTimer => "gateway.timer",
            GatewayEvent::BrokerTimer => "cloud.timer",
            GatewayEvent::Outage(..) => "gateway.outage",
            GatewayEvent::Operator(_) => "cloud.operator",
            GatewayEvent::Rule { .. } => "cloud.rule",
            GatewayEvent::External { .. } => "cloud.external",
        }
    }
}

/// A command frame the gateway hands the coordinator, to travel the mesh.
#[derive(Clone, Debug, PartialEq)]
pub struct Downlink {
    /// When it has crossed the UART.
    pub at: SimTime,
    /// The LMU.
    pub lmu: u32,
    /// The sealed frame.
    pub frame: Vec<u8>,
    /// The command's id.
    pub id: String,
}

/// What a gateway step asks of the world.
#[derive(Debug, Default)]
pub struct Step {
    /// Events to schedule.
    pub events: Vec<(SimTime, GatewayEvent)>,
    /// Command frames for the mesh.
    pub downlink: Vec<Downlink>,
    /// Event messages published, as the bridge sends them: (topic, JSON).
    pub published: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutageKind {
    Cellular,
    Broker,
    /// The gateway itself.
    Gateway,
}

/// One direction of the cellular link with its TCP ordering.
#[derive(Debug)]
struct Pipe {
    link: Cellular,
    /// The latest arrival per connection (in-order delivery).
    last: SimTime,
}

impl Pipe {
    /// When a packet of `bytes` sent at `now` arrives, or `None` if the
    /// connection breaks (link down, or too many losses).
    fn carry(&mut self, now: SimTime, bytes: usize, stats: &mut GatewayStats) -> Option<SimTime> {
        let mut at = now;
        let mut rto = TCP_RTO;
        for _ in 0..=TCP_MAX_RETRIES {
            match self.link.send(at, bytes) {
                Ok(t) => {
                    self.last = self.last.max(t);
                    return Some(self.last);
                }
                Err(LinkError::Down) => return None,
                Err(LinkError::Lost) => {
                    stats.tcp_retransmissions += 1;
                    at = at.saturating_add(rto);
                    rto = SimDuration::from_nanos(rto.as_nanos().saturating_mul(2));
                }
            }
        }
        None
    }
}

/// Counters of the gateway itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Frames from the coordinator.
    pub frames_in: u64,
    /// Frames that failed authentication or decoding.
    pub frames_rejected: u64,
    /// TCP segment re-sends on the cellular link.
    pub tcp_retransmissions: u64,
    /// Packets discarded because their connection was gone.
    pub stale_packets: u64,
    /// Commands received over MQTT.
    pub commands_received: u64,
    /// Commands refused (bad JSON, unknown LMU).
    pub commands_rejected: u64,
    /// Command frames handed to the coordinator.
    pub commands_forwarded: u64,
    /// Frames dropped at a full UART queue.
    pub uart_dropped: u64,
    /// Frames from the coordinator lost while the gateway was down.
    pub frames_lost_down: u64,
    /// Gateway outages begun.
    pub outages: u64,
}

/// The gateway and the cloud.
#[derive(Debug)]
pub struct GatewayApp {
    site: String,
    id: String,
    events_topic: String,
    /// The LMUs' nodes.
    lmus: std::ops::Range<u32>,
    end: SimTime,
    uart_up: Uart,
    uart_down: Uart,
    openers: BTreeMap<u16, Security>,
    sealer: Security,
    aggregator: Aggregator,
    client: Client,
    up: Pipe,
    down: Pipe,
    broker: Broker,
    cloud: Cloud,
    /// The client's connection number (taken at each CONNECT).
    conn: u64,
    /// The connection the broker serves, if any.
    broker_conn: Option<u64>,
    /// Whether the gateway itself is down.
    halted: bool,
    /// Whether the cellular link is down.
    cellular_down: bool,
    /// Rounds whose deadline passed while it was down, to publish when it
    /// is back.
    overdue: Vec<u64>,
    client_timer: Option<SimTime>,
    broker_timer: Option<SimTime>,
    outages: Vec<(SimTime, Option<SimTime>, OutageKind)>,
    operator: Vec<(SimTime, u32, Action)>,
    stats: GatewayStats,
    records_published: u64,
    rounds_series: TimeSeries,
}

fn action(a: ActionFile) -> Action {
    match a {
        ActionFile::Open => Action::Open,
        ActionFile::Close => Action::Close,
        ActionFile::Report => Action::Report,
        ActionFile::SetReportInterval(d) => Action::SetReportInterval {
            secs: u32::try_from(d.as_nanos() / 1_000_000_000).unwrap_or(u32::MAX),
        },
        ActionFile::LimitPv { percent } => Action::LimitPv { percent },
        ActionFile::ReduceLoad { percent, duration } => Action::ReduceLoad {
            percent,
            minutes: u16::try_from(duration.as_nanos() / 60_000_000_000).unwrap_or(u16::MAX),
        },
    }
}

/// Columns of `gateway.csv`, one row per published round.
pub const SERIES_COLUMNS: &[&str] = &[
    "round",
    "published_s",
    "records",
    "missing",
    "late",
    "buffer_bytes",
    "connected",
];

impl GatewayApp {
    /// Builds the gateway for the LMUs of these mesh nodes, reporting
    /// every `interval`.
    pub fn build(
        scenario: &Scenario,
        g: &GatewayFile,
        lmus: std::ops::Range<u32>,
        interval: SimDuration,
    ) -> Result<GatewayApp, super::grid::GridBuildError> {
        let end = SimTime::ZERO.saturating_add(scenario.duration);
        let deadline = match g.aggregation {
            AggregationFile::WaitForAll { deadline } => Policy::WaitForAll { deadline },
            AggregationFile::FixedDeadline { deadline } => Policy::FixedDeadline { deadline },
        };
        let profile = match g.uplink {
            UplinkFile::Lte => CellularProfile::lte(),
            UplinkFile::Umts => CellularProfile::umts(),
        };
        let m = &g.mqtt;
        let client = Client::new(ClientSettings {
            client_id: if m.client_id.is_empty() {
                g.id.clone()
            } else {
                m.client_id.clone()
            },
            username: m.username.clone(),
            password: m.password.clone(),
            keep_alive: m.keep_alive,
            ping_timeout: m.ping_timeout,
            connect_timeout: m.connect_timeout,
            backoff_min: m.backoff_min,
            backoff_max: m.backoff_max,
            qos: if m.qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            },
            max_inflight: m.max_inflight,
            retransmit_after: m.retransmit_after,
            clean_session: m.clean_session,
            command_filter: schema::command_filter(&g.site, &g.id),
            buffer_bytes: g.buffer_bytes,
            overflow: match g.overflow {
                OverflowFile::DropOldest => Overflow::DropOldest,
                OverflowFile::DropNewest => Overflow::DropNewest,
            },
        });
        let c = &g.cloud;
        let cloud = Cloud::new(
            CloudSettings {
                ingest_median: c.ingest_latency,
                ingest_sigma_ln: c.ingest_sigma_ln,
                v_nominal_v: c.v_nominal_v,
                rules: c
                    .rules
                    .iter()
                    .map(|r| Rule {
                        when: match r.when {
                            ConditionFile::VoltageAbove(v) => Condition::VoltageAbove(v),
                            ConditionFile::VoltageBelow(v) => Condition::VoltageBelow(v),
                        },
                        then: action(r.then),
                        cooldown: r.cooldown,
                    })
                    .collect(),
            },
            scenario.seed,
        );
        let mut operator = Vec::new();
        for (i, cmd) in c.commands.iter().enumerate() {
            if !lmus.contains(&cmd.lmu) {
                return Err(super::grid::GridBuildError::Scenario(Box::new(
                    scenario.error_at(
                        &[
                            crate::scenario::locate::Seg::Field("gateway".into()),
                            crate::scenario::locate::Seg::Field("cloud".into()),
                            crate::scenario::locate::Seg::Field("commands".into()),
                            crate::scenario::locate::Seg::Index(i),
                            crate::scenario::locate::Seg::Field("lmu".into()),
                        ],
                        format!(
                            "the mesh has LMUs {} to {}, not LMU {}",
                            lmus.start,
                            lmus.end.saturating_sub(1),
                            cmd.lmu
                        ),
                        None,
                    ),
                )));
            }
            operator.push((
                SimTime::ZERO.saturating_add(cmd.at),
                cmd.lmu,
                action(cmd.action),
            ));
        }
        let mut outages = Vec::new();
        for f in &scenario.faults {
            let (o, kind) = match f {
                FaultFile::CellularOutage(o) => (o, OutageKind::Cellular),
                FaultFile::BrokerOutage(o) => (o, OutageKind::Broker),
                FaultFile::GatewayOutage(o) => (o, OutageKind::Gateway),
                _ => continue,
            };
            let at = SimTime::ZERO.saturating_add(o.at);
            outages.push((at, o.duration.map(|d| at.saturating_add(d)), kind));
        }
        let uart = UartSettings {
            baud: g.uart_baud,
            ..UartSettings::default()
        };
        Ok(GatewayApp {
            site: g.site.clone(),
            id: g.id.clone(),
            events_topic: schema::events_topic(&g.site, &g.id),
            lmus: lmus.clone(),
            end,
            uart_up: Uart::new(uart),
            uart_down: Uart::new(uart),
            openers: BTreeMap::new(),
            sealer: Security::new(GATEWAY, KEYS, 0, &[]),
            aggregator: Aggregator::new(lmus.clone(), interval, deadline),
            client,
            up: Pipe {
                link: Cellular::new(profile, scenario.seed, 0),
                last: SimTime::ZERO,
            },
            down: Pipe {
                link: Cellular::new(profile, scenario.seed, 1),
                last: SimTime::ZERO,
            },
            broker: Broker::new(c.users.iter().cloned()),
            cloud,
            conn: 0,
            broker_conn: None,
            halted: false,
            cellular_down: false,
            overdue: Vec::new(),
            client_timer: None,
            broker_timer: None,
            outages,
            operator,
            stats: GatewayStats::default(),
            records_published: 0,
            rounds_series: TimeSeries::new("gateway", SERIES_COLUMNS),
        })
    }

    /// The cloud.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The MQTT client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The events topic.
    pub fn events_topic(&self) -> &str {
        &self.events_topic
    }

    /// The site and gateway id.
    pub fn names(&self) -> (&str, &str) {
        (&self.site, &self.id)
    }

    /// The events that start the gateway: the link comes up at zero, the
    /// first round's deadline, outages and operator commands.
    pub fn start(&mut self) -> Step {
        let mut step = Step::default();
        let out = self.client.link(SimTime::ZERO, true);
        self.client_out(SimTime::ZERO, out, &mut step);
        step.events
            .push((self.aggregator.deadline_of(0), GatewayEvent::Deadline(0)));
        for (i, (on, off, _)) in self.outages.iter().enumerate() {
            step.events.push((*on, GatewayEvent::Outage(i, true)));
            if let Some(off) = off {
                step.events.push((*off, GatewayEvent::Outage(i, false)));
            }
        }
        for (i, (at, _, _)) in self.operator.iter().enumerate() {
            step.events.push((*at, GatewayEvent::Operator(i)));
        }
        self.timers(&mut step);
        step.events.retain(|(t, _)| *t <= self.end);
        step
    }

    /// A frame for the gateway reached the coordinator at `now`: it crosses
    /// the UART.
    pub fn from_mesh(&mut self, now: SimTime, frame: Vec<u8>) -> Step {
        let mut step = Step::default();
        if self.halted {
            self.stats.frames_lost_down += 1;
            return step;
        }
        match self.uart_up.send(now, frame.len()) {
            Some(at) => step.events.push((at, GatewayEvent::FromCoordinator(frame))),
            None => self.stats.uart_dropped += 1,
        }
        step
    }

    /// Handles an event at `now`.
    pub fn handle(&mut self, now: SimTime, ev: GatewayEvent) -> Step {
        let mut step = Step::default();
        match ev {
            GatewayEvent::FromCoordinator(_) if self.halted => self.stats.frames_lost_down += 1,
            GatewayEvent::FromCoordinator(frame) => self.frame_in(now, &frame, &mut step),
            GatewayEvent::Deadline(r) => {
                if self.halted {
                    self.overdue.push(r);
                } else if let Some(p) = self.aggregator.deadline(now, r) {
                    self.publish(now, p, &mut step);
                }
                let next = self.aggregator.deadline_of(r + 1);
                if next <= self.end {
                    step.events.push((next, GatewayEvent::Deadline(r + 1)));
                }
            }
            GatewayEvent::ToBroker(conn, p) => self.at_broker(now, conn, p, &mut step),
            GatewayEvent::ToClient(conn, p) => {
                if conn != self.conn {
                    self.stats.stale_packets += 1;
                } else {
                    let out = match p {
                        Some(p) => self.client.receive(now, p),
                        None => self.client.closed(now),
                    };
                    self.client_out(now, out, &mut step);
                }
            }
            GatewayEvent::ClientTimer => {
                if self.client_timer.is_some_and(|t| t <= now) {
                    self.client_timer = None;
                }
                let out = self.client.timer(now);
                self.client_out(now, out, &mut step);
            }
            GatewayEvent::BrokerTimer => {
                if self.broker_timer.is_some_and(|t| t <= now) {
                    self.broker_timer = None;
                }
                let out = self.broker.timer(now);
                self.broker_out(now, out, &mut step);
            }
            GatewayEvent::Outage(i, on) => match self.outages.get(i).map(|o| o.2) {
                Some(OutageKind::Cellular) => {
                    self.up.link.set_outage(now, on);
                    self.down.link.set_outage(now, on);
                    self.cellular_down = on;
                    let out = self.client.link(now, !on && !self.halted);
                    self.client_out(now, out, &mut step);
                }
                Some(OutageKind::Broker) => {
                    let out = self.broker.set_up(!on);
                    if on {
                        self.broker_conn = None;
                    }
                    self.broker_out(now, out, &mut step);
                }
                Some(OutageKind::Gateway) => {
                    // Down: the session drops as if the modem had gone.
                    // Back: it reconnects, and publishes the rounds whose
                    // deadlines passed meanwhile, from what it had accepted.
                    self.halted = on;
                    self.stats.outages += u64::from(on);
                    let out = self.client.link(now, !on && !self.cellular_down);
                    self.client_out(now, out, &mut step);
                    if !on {
                        for r in std::mem::take(&mut self.overdue) {
                            if let Some(p) = self.aggregator.deadline(now, r) {
                                self.publish(now, p, &mut step);
                            }
                        }
                    }
                }
                None => {}
            },
            GatewayEvent::Operator(i) => {
                if let Some(&(_, lmu, a)) = self.operator.get(i) {
                    self.command(now, lmu, a, Source::Operator, None, &mut step);
                }
            }
            GatewayEvent::Rule { rule, lmu, action } => {
                self.command(now, lmu, action, Source::Rule(rule), None, &mut step);
            }
            GatewayEvent::External { lmu, action, id } => {
                self.command(now, lmu, action, Source::Bridge, Some(id), &mut step);
            }
        }
        self.timers(&mut step);
        step.events.retain(|(t, _)| *t <= self.end);
        step
    }

    /// The LMU carried out the command with this id.
    pub fn executed(&mut self, id: &str, now: SimTime) {
        self.cloud.executed(id, now);
    }

    fn timers(&mut self, step: &mut Step) {
        if let Some(t) = self.client.next_timer()
            && self.client_timer.is_none_or(|s| t < s)
        {
            self.client_timer = Some(t);
            step.events.push((t, GatewayEvent::ClientTimer));
        }
        if let Some(t) = self.broker.next_timer()
            && self.broker_timer.is_none_or(|s| t < s)
        {
            self.broker_timer = Some(t);
            step.events.push((t, GatewayEvent::BrokerTimer));
        }
    }

    fn frame_in(&mut self, now: SimTime, frame: &[u8], step: &mut Step) {
        self.stats.frames_in += 1;
        let Ok(p) = gridtwin_lmu::frame::Packet::new_checked(frame) else {
            self.stats.frames_rejected += 1;
            return;
        };
        let src = p.src();
        let opener = self
            .openers
            .entry(src)
            .or_insert_with(|| Security::new(GATEWAY, KEYS, 0, &[src]));
        let Ok(repr) = opener.open(frame) else {
            self.stats.frames_rejected += 1;
            return;
        };
        let Some(Message::Telemetry(t)) = Message::decode(repr.payload) else {
            self.stats.frames_rejected += 1;
            return;
        };
        let report = Report {
            lmu: u32::from(src),
            epoch: t.epoch,
            seq: t.seq,
            generated_at: sim_time(gridtwin_lmu::Instant::from_millis(t.t_ms)),
            octets: frame.len(),
            telemetry: t,
        };
        if let Some(p) = self.aggregator.receive(now, report) {
            self.publish(now, p, step);
        }
    }

    fn publish(&mut self, now: SimTime, p: Published, step: &mut Step) {
        let msg = EventMessage {
            schema: EVENTS_SCHEMA.into(),
            site: self.site.clone(),
            gateway: self.id.clone(),
            round: p.round,
            late: p.late,
            round_start_s: self.round_start(p.round).as_secs_f64(),
            published_s: now.as_secs_f64(),
            missing: p.missing.clone(),
            records: p
                .reports
                .iter()
                .map(|r| Record::from_telemetry(r.lmu, r.generated_at.as_secs_f64(), &r.telemetry))
                .collect(),
        };
        let payload = serde_json::to_vec(&msg).expect("an event serialises");
        let records = p.reports.len() as u32;
        self.records_published += u64::from(records);
        self.rounds_series.push(&[
            p.round as f64,
            now.as_secs_f64(),
            f64::from(records),
            p.missing.len() as f64,
            f64::from(u8::from(p.late)),
            self.client.buffer().bytes() as f64,
            f64::from(u8::from(self.client.is_connected())),
        ]);
        step.published
            .push((self.events_topic.clone(), payload.clone()));
        let out = self
            .client
            .publish(now, &self.events_topic.clone(), payload, records);
        self.client_out(now, out, step);
    }

    fn round_start(&self, r: u64) -> SimTime {
        // deadline_of(r) = (r+1)·T + D; deadline_of(r) − deadline_of(0) = r·T.
        let d0 = self.aggregator.deadline_of(0).as_nanos();
        let dr = self.aggregator.deadline_of(r).as_nanos();
        SimTime::from_nanos(dr - d0)
    }

    fn client_out(&mut self, now: SimTime, out: Vec<ClientOut>, step: &mut Step) {
        for o in out {
            match o {
                ClientOut::Send(p) => {
                    if matches!(p, Packet::Connect(_)) {
                        self.conn += 1;
                    }
                    let conn = self.conn;
                    match self.up.carry(now, p.size(), &mut self.stats) {
                        Some(at) => step.events.push((at, GatewayEvent::ToBroker(conn, p))),
                        None => {
                            // The connection broke under this packet; the
                            // client learns it from the modem at once.
                            let out = self.client.closed(now);
                            debug_assert!(out.is_empty());
                        }
                    }
                }
                ClientOut::Command(p) => self.command_in(now, &p, step),
                ClientOut::Dropped(_) => {}
            }
        }
    }

    fn at_broker(&mut self, now: SimTime, conn: u64, p: Packet, step: &mut Step) {
        let is_connect = matches!(p, Packet::Connect(_));
        if !is_connect && self.broker_conn != Some(conn) {
            // A segment of a connection the broker no longer has: reset.
            self.stats.stale_packets += 1;
            self.send_down(now, conn, None, step);
            return;
        }
        if is_connect {
            self.broker_conn = Some(conn);
        }
        let out = self.broker.receive(now, p);
        self.broker_out(now, out, step);
    }

    fn broker_out(&mut self, now: SimTime, out: Vec<BrokerOut>, step: &mut Step) {
        for o in out {
            match o {
                BrokerOut::Send(p) => {
                    if let Some(conn) = self.broker_conn {
                        self.send_down(now, conn, Some(p), step);
                    }
                }
                BrokerOut::Deliver(p) => {
                    for (at, lmu, action, rule) in self.cloud.ingest(now, &p.payload) {
                        step.events
                            .push((at, GatewayEvent::Rule { rule, lmu, action }));
                    }
                }
                BrokerOut::Close => {
                    // A stopped broker sends nothing; a running one closes
                    // the connection with a FIN the client sees.
                    if let Some(conn) = self.broker_conn.take() {
                        if self.broker.is_up() {
                            self.send_down(now, conn, None, step);
                        }
                    } else if !self.broker.is_up() {
                        // Refused at the transport: the client's segment
                        // gets a reset back.
                        self.send_down(now, self.conn, None, step);
                    }
                }
            }
        }
    }

    fn send_down(&mut self, now: SimTime, conn: u64, p: Option<Packet>, step: &mut Step) {
        let bytes = p.as_ref().map_or(40, Packet::size);
        if let Some(at) = self.down.carry(now, bytes, &mut self.stats) {
            step.events.push((at, GatewayEvent::ToClient(conn, p)));
        }
    }

    fn command(
        &mut self,
        now: SimTime,
        lmu: u32,
        action: Action,
        source: Source,
        id: Option<String>,
        step: &mut Step,
    ) {
        let o = self.cloud.issue(now, lmu, action, source, id);
        let topic = schema::command_topic(&self.site, &self.id, o.lmu);
        let out = self.broker.publish(&topic, o.payload);
        self.broker_out(now, out, step);
    }

    fn command_in(&mut self, now: SimTime, p: &rumqttc::Publish, step: &mut Step) {
        self.stats.commands_received += 1;
        let lmu =
            schema::lmu_of_topic(&self.site, &self.id, &p.topic).filter(|l| self.lmus.contains(l));
        let (Some(lmu), Ok(msg)) = (lmu, schema::parse_command(&p.payload)) else {
            self.stats.commands_rejected += 1;
            return;
        };
        let mut payload = [0u8; MAX_PAYLOAD];
        let Some(used) = Message::Command(msg.action.to_lmu()).encode(&mut payload) else {
            self.stats.commands_rejected += 1;
            return;
        };
        let used = used.len();
        let mut buf = [0u8; MAX_FRAME];
        let Ok(n) = self.sealer.seal(
            gridtwin_lmu::frame::FrameKind::Command,
            lmu as u16,
            &payload[..used],
            &mut buf,
        ) else {
            self.stats.commands_rejected += 1;
            return;
        };
        match self.uart_down.send(now, n) {
            Some(at) => {
                self.stats.commands_forwarded += 1;
                step.downlink.push(Downlink {
                    at,
                    lmu,
                    frame: buf[..n].to_vec(),
                    id: msg.id.unwrap_or_default(),
                });
            }
            None => self.stats.uart_dropped += 1,
        }
    }

    /// Every command the cloud issued, as `commands.csv`: id, source, LMU,
    /// action, when issued and carried out [s], latency [s] (empty when it
    /// never was).
    pub fn commands_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        w.write_record([
            "id",
            "source",
            "lmu",
            "action",
            "issued_s",
            "executed_s",
            "latency_s",
        ])
        .expect(io);
        for c in self.cloud.commands() {
            let (done, lat) = match c.executed_at {
                Some(t) => (
                    t.as_secs_f64().to_string(),
                    t.saturating_since(c.issued_at).as_secs_f64().to_string(),
                ),
                None => (String::new(), String::new()),
            };
            w.write_record([
                c.id.clone(),
                c.source.name(),
                c.lmu.to_string(),
                c.action.name().to_string(),
                c.issued_at.as_secs_f64().to_string(),
                done,
                lat,
            ])
            .expect(io);
        }
        w.into_inner().expect(io)
    }

    /// Writes the `gateway.*` headline metrics and returns `gateway.csv`.
    pub fn finish(self, summary: &mut Summary) -> TimeSeries {
        let a = self.aggregator.stats();
        let c = self.client.stats();
        let b = self.client.buffer().stats();
        let cl = self.cloud.stats();
        summary.set_u64("gateway.rounds", a.rounds);
        summary.set_u64("gateway.rounds_complete", a.complete_rounds);
        if a.rounds > 0 {
            summary.set_f64(
                "gateway.rounds_complete_share",
                a.complete_rounds as f64 / a.rounds as f64,
            );
        }
        summary.set_u64("gateway.reports_received", a.reports);
        summary.set_u64("gateway.reports_duplicate", a.duplicates);
        summary.set_u64("gateway.reports_late", a.late);
        summary.set_u64("gateway.frames_rejected", self.stats.frames_rejected);
        summary.set_u64("gateway.uart_dropped", self.stats.uart_dropped);
        summary.set_u64("gateway.outages", self.stats.outages);
        summary.set_u64("gateway.frames_lost_down", self.stats.frames_lost_down);
        summary.set_u64("gateway.records_published", self.records_published);
        summary.set_u64("gateway.records_stored", cl.stored);
        summary.set_u64("gateway.records_dropped", b.dropped_records);
        summary.set_u64(
            "gateway.records_pending_at_end",
            self.client.buffer().records() + self.client.inflight_records(),
        );
        summary.set_u64("gateway.records_duplicate_in_cloud", cl.duplicates);
        summary.set_u64("gateway.messages_dropped", b.dropped);
        summary.set_u64("gateway.buffer_peak_bytes", b.peak_bytes as u64);
        summary.set_u64("gateway.mqtt_connects", c.connects);
        summary.set_u64("gateway.mqtt_connections", c.connected);
        summary.set_u64("gateway.mqtt_auth_failures", c.auth_failures);
        summary.set_u64("gateway.mqtt_connection_losses", c.connection_losses);
        summary.set_u64("gateway.mqtt_published", c.published);
        summary.set_u64("gateway.mqtt_retransmissions", c.retransmissions);
        summary.set_u64("gateway.mqtt_qos0_unconfirmed", c.qos0_unconfirmed);
        summary.set_u64("gateway.mqtt_pings", c.pings);
        summary.set_u64("gateway.mqtt_bytes_sent", c.bytes_sent);
        summary.set_u64(
            "gateway.tcp_retransmissions",
            self.stats.tcp_retransmissions,
        );
        summary.set_u64("gateway.cellular_outages", self.up.link.stats().outages);
        let mut e2e: Vec<f64> = self.cloud.e2e_latencies_s().to_vec();
        e2e.sort_by(f64::total_cmp);
        for (k, p) in [("p50", 0.50), ("p95", 0.95), ("p99", 0.99)] {
            if let Some(v) = crate::metrics::percentile(&e2e, p) {
                summary.set_f64(&format!("gateway.e2e_latency_{k}_s"), v);
            }
        }
        let cmds = self.cloud.commands();
        let done: Vec<f64> = cmds
            .iter()
            .filter_map(|c| {
                c.executed_at
                    .map(|t| t.saturating_since(c.issued_at).as_secs_f64())
            })
            .collect();
        summary.set_u64("gateway.commands_issued", cmds.len() as u64);
        summary.set_u64("gateway.commands_delivered", done.len() as u64);
        summary.set_u64("gateway.commands_received", self.stats.commands_received);
        summary.set_u64("gateway.commands_rejected", self.stats.commands_rejected);
        summary.set_u64("cloud.rule_firings", cl.rule_firings);
        summary.set_u64("cloud.messages_malformed", cl.malformed);
        if !cmds.is_empty() {
            summary.set_f64(
                "gateway.commands_success_share",
                done.len() as f64 / cmds.len() as f64,
            );
        }
        let mut done = done;
        done.sort_by(f64::total_cmp);
        for (k, p) in [("p50", 0.50), ("max", 1.0)] {
            if let Some(v) = crate::metrics::percentile(&done, p) {
                summary.set_f64(&format!("gateway.command_latency_{k}_s"), v);
            }
        }
        self.rounds_series
    }
}
