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
    /// Events to schedule, each for a gateway (by index; the cloud's
    /// commands go to the gateway of the LMU they name).
    pub events: Vec<(SimTime, u32, GatewayEvent)>,
    /// Command frames for the mesh.
    pub downlink: Vec<Downlink>,
    /// Event messages published, as the bridge sends them: (topic, JSON).
    pub published: Vec<(String, Vec<u8>)>,
}

/// What one gateway's step asks of the world, before its events are
/// routed to their gateways.
#[derive(Debug, Default)]
struct AppStep {
    /// Events to schedule.
    events: Vec<(SimTime, GatewayEvent)>,
    /// Command frames for the mesh.
    downlink: Vec<Downlink>,
    /// Event messages published, as the bridge sends them: (topic, JSON).
    published: Vec<(String, Vec<u8>)>,
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

/// One gateway: the coordinator's UART, the aggregator of its district's
/// LMUs, the MQTT client over its own 3G/4G link, and its session at the
/// cloud's broker. The cloud's store is shared ([`Gateways`]).
#[derive(Debug)]
pub struct GatewayApp {
    site: String,
    id: String,
    events_topic: String,
    /// The LMUs of its district (mesh nodes).
    lmus: std::collections::BTreeSet<u32>,
    end: SimTime,
    uart_up: Uart,
    uart_down: Uart,
    openers: BTreeMap<u16, Security>,
    sealer: Security,
    aggregator: Aggregator,
    client: Client,
    up: Pipe,
    down: Pipe,
    /// This gateway's session at the cloud's broker.
    broker: Broker,
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
    /// The operator's scheduled commands for its LMUs: (index in the
    /// scenario's list, when, LMU, what).
    operator: Vec<(usize, SimTime, u32, Action)>,
    stats: GatewayStats,
    records_published: u64,
    /// The records of this gateway's messages that reached the cloud's
    /// store (stored then, or already): by (LMU, boot epoch), their
    /// sequence numbers; a QoS 1 re-send adds nothing.
    delivered: BTreeMap<(u32, u32), roaring::RoaringBitmap>,
    records_delivered: u64,
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

/// Columns of `gateway.csv`, one row per published round of any gateway
/// (`gateway` is its index: its district's).
pub const SERIES_COLUMNS: &[&str] = &[
    "gateway",
    "round",
    "published_s",
    "records",
    "missing",
    "late",
    "buffer_bytes",
    "connected",
];

fn cloud_of(scenario: &Scenario, g: &GatewayFile) -> Cloud {
    let c = &g.cloud;
    Cloud::new(
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
    )
}

impl GatewayApp {
    /// Builds gateway `index` of `count` for the LMUs of these mesh nodes,
    /// reporting every `interval`. A lone gateway keeps the scenario's id;
    /// gateway `i` of several is `<id>-d<i>` (three digits), after its
    /// district.
    fn build(
        scenario: &Scenario,
        g: &GatewayFile,
        (index, count): (u32, u32),
        lmus: Vec<u32>,
        interval: SimDuration,
    ) -> GatewayApp {
        let end = SimTime::ZERO.saturating_add(scenario.duration);
        let id = if count == 1 {
            g.id.clone()
        } else {
            format!("{}-d{index:03}", g.id)
        };
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
                id.clone()
            } else if count == 1 {
                m.client_id.clone()
            } else {
                format!("{}-d{index:03}", m.client_id)
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
            command_filter: schema::command_filter(&g.site, &id),
            buffer_bytes: g.buffer_bytes,
            overflow: match g.overflow {
                OverflowFile::DropOldest => Overflow::DropOldest,
                OverflowFile::DropNewest => Overflow::DropNewest,
            },
        });
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
        // The links' streams: the up- and downlink of gateway i are 2i and
        // 2i + 1.
        let link = |dir: u64| Cellular::new(profile, scenario.seed, 2 * u64::from(index) + dir);
        GatewayApp {
            site: g.site.clone(),
            events_topic: schema::events_topic(&g.site, &id),
            id,
            lmus: lmus.iter().copied().collect(),
            end,
            uart_up: Uart::new(uart),
            uart_down: Uart::new(uart),
            openers: BTreeMap::new(),
            sealer: Security::new(GATEWAY, KEYS, 0, &[]),
            aggregator: Aggregator::new(lmus, interval, deadline),
            client,
            up: Pipe {
                link: link(0),
                last: SimTime::ZERO,
            },
            down: Pipe {
                link: link(1),
                last: SimTime::ZERO,
            },
            broker: Broker::new(g.cloud.users.iter().cloned()),
            conn: 0,
            broker_conn: None,
            halted: false,
            cellular_down: false,
            overdue: Vec::new(),
            client_timer: None,
            broker_timer: None,
            outages,
            operator: Vec::new(),
            stats: GatewayStats::default(),
            records_published: 0,
            delivered: BTreeMap::new(),
            records_delivered: 0,
            rounds_series: TimeSeries::new("gateway", &SERIES_COLUMNS[1..]),
        }
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
    fn start(&mut self) -> AppStep {
        let mut step = AppStep::default();
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
        for &(i, at, _, _) in &self.operator {
            step.events.push((at, GatewayEvent::Operator(i)));
        }
        self.timers(&mut step);
        step.events.retain(|(t, _)| *t <= self.end);
        step
    }

    /// A frame for the gateway reached the coordinator at `now`: it crosses
    /// the UART.
    fn uplink(&mut self, now: SimTime, frame: Vec<u8>) -> AppStep {
        let mut step = AppStep::default();
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
    fn handle(&mut self, cloud: &mut Cloud, now: SimTime, ev: GatewayEvent) -> AppStep {
        let mut step = AppStep::default();
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
            GatewayEvent::ToBroker(conn, p) => self.at_broker(cloud, now, conn, p, &mut step),
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
                self.broker_out(cloud, now, out, &mut step);
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
                    self.broker_out(cloud, now, out, &mut step);
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
                if let Some(&(_, _, lmu, a)) = self.operator.iter().find(|o| o.0 == i) {
                    self.command(cloud, now, lmu, a, Source::Operator, None, &mut step);
                }
            }
            GatewayEvent::Rule { rule, lmu, action } => {
                self.command(cloud, now, lmu, action, Source::Rule(rule), None, &mut step);
            }
            GatewayEvent::External { lmu, action, id } => {
                let source = Source::Bridge;
                self.command(cloud, now, lmu, action, source, Some(id), &mut step);
            }
        }
        self.timers(&mut step);
        step.events.retain(|(t, _)| *t <= self.end);
        step
    }

    fn timers(&mut self, step: &mut AppStep) {
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

    fn frame_in(&mut self, now: SimTime, frame: &[u8], step: &mut AppStep) {
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

    fn publish(&mut self, now: SimTime, p: Published, step: &mut AppStep) {
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

    /// The records this gateway still holds: in rounds not yet published,
    /// in its store-and-forward buffer, and in QoS 1 messages awaiting
    /// their PUBACK whose records the cloud has not got (a message the
    /// broker took, whose PUBACK is still on its way, is delivered).
    fn records_pending(&self) -> u64 {
        let unacked: u64 = self
            .client
            .inflight_payloads()
            .map(
                |payload| match serde_json::from_slice::<EventMessage>(payload) {
                    Ok(m) => m
                        .records
                        .iter()
                        .filter(|r| {
                            !self
                                .delivered
                                .get(&(r.lmu, r.epoch))
                                .is_some_and(|s| s.contains(r.seq))
                        })
                        .count() as u64,
                    // The gateway wrote it; it always parses.
                    Err(_) => 0,
                },
            )
            .sum();
        self.aggregator.held() + self.client.buffer().records() + unacked
    }

    /// The gateway's conservation of records, checked at the end of every
    /// run: every report it received (duplicates removed) reached the
    /// cloud, was dropped by its bounded buffer (counted), or is still
    /// pending in it. `Err` names the numbers when one vanished or
    /// appeared.
    fn conservation(&self) -> Result<(), String> {
        let received = self.aggregator.stats().reports;
        let dropped = self.client.buffer().stats().dropped_records;
        let (delivered, pending) = (self.records_delivered, self.records_pending());
        if received == delivered + dropped + pending {
            Ok(())
        } else {
            Err(format!(
                "gateway {}: records not conserved: received {received} != \
                 stored {delivered} + dropped {dropped} + pending {pending}",
                self.id
            ))
        }
    }

    fn round_start(&self, r: u64) -> SimTime {
        // deadline_of(r) = (r+1)·T + D; deadline_of(r) − deadline_of(0) = r·T.
        let d0 = self.aggregator.deadline_of(0).as_nanos();
        let dr = self.aggregator.deadline_of(r).as_nanos();
        SimTime::from_nanos(dr - d0)
    }

    fn client_out(&mut self, now: SimTime, out: Vec<ClientOut>, step: &mut AppStep) {
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

    fn at_broker(
        &mut self,
        cloud: &mut Cloud,
        now: SimTime,
        conn: u64,
        p: Packet,
        step: &mut AppStep,
    ) {
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
        self.broker_out(cloud, now, out, step);
    }

    fn broker_out(
        &mut self,
        cloud: &mut Cloud,
        now: SimTime,
        out: Vec<BrokerOut>,
        step: &mut AppStep,
    ) {
        for o in out {
            match o {
                BrokerOut::Send(p) => {
                    if let Some(conn) = self.broker_conn {
                        self.send_down(now, conn, Some(p), step);
                    }
                }
                BrokerOut::Deliver(p) => {
                    let (delivered, count) = (&mut self.delivered, &mut self.records_delivered);
                    let fired = cloud.ingest(now, &p.payload, |(lmu, epoch, seq)| {
                        if delivered.entry((lmu, epoch)).or_default().insert(seq) {
                            *count += 1;
                        }
                    });
                    for (at, lmu, action, rule) in fired {
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

    fn send_down(&mut self, now: SimTime, conn: u64, p: Option<Packet>, step: &mut AppStep) {
        let bytes = p.as_ref().map_or(40, Packet::size);
        if let Some(at) = self.down.carry(now, bytes, &mut self.stats) {
            step.events.push((at, GatewayEvent::ToClient(conn, p)));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        cloud: &mut Cloud,
        now: SimTime,
        lmu: u32,
        action: Action,
        source: Source,
        id: Option<String>,
        step: &mut AppStep,
    ) {
        let o = cloud.issue(now, lmu, action, source, id);
        let topic = schema::command_topic(&self.site, &self.id, o.lmu);
        let out = self.broker.publish(&topic, o.payload);
        self.broker_out(cloud, now, out, step);
    }

    fn command_in(&mut self, now: SimTime, p: &rumqttc::Publish, step: &mut AppStep) {
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
}

/// A headline count, summed over the gateways: its name and each one's.
type Count<'a> = (&'a str, &'a dyn Fn(&GatewayApp) -> u64);

/// Every gateway of the run (one per coordinator: a town of districts has
/// one per district, each aggregating its own district's LMUs) and the one
/// cloud they publish to, with its broker. Each gateway has its own 3G/4G
/// link and its own MQTT session at the broker; the cloud's store, rules
/// and command records are shared. A command goes out through the gateway
/// of the LMU's district.
#[derive(Debug)]
pub struct Gateways {
    apps: Vec<GatewayApp>,
    cloud: Cloud,
    /// Each mesh node's gateway (its district's), by node number; `None`
    /// for a coordinator.
    home: Vec<Option<u32>>,
}

impl Gateways {
    /// Builds a gateway for each coordinator `0..homes' max`: `home[n]` is
    /// the gateway (district) of mesh node `n`, `None` for a coordinator.
    pub fn build(
        scenario: &Scenario,
        g: &GatewayFile,
        coordinators: u32,
        home: Vec<Option<u32>>,
        interval: SimDuration,
    ) -> Result<Gateways, super::grid::GridBuildError> {
        let count = coordinators.max(1);
        let mut apps: Vec<GatewayApp> = (0..count)
            .map(|i| {
                let lmus = (0..home.len() as u32)
                    .filter(|&n| home[n as usize] == Some(i))
                    .collect();
                GatewayApp::build(scenario, g, (i, count), lmus, interval)
            })
            .collect();
        for (i, cmd) in g.cloud.commands.iter().enumerate() {
            let Some(Some(gw)) = home.get(cmd.lmu as usize).copied() else {
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
                            coordinators,
                            home.len().saturating_sub(1),
                            cmd.lmu
                        ),
                        None,
                    ),
                )));
            };
            apps[gw as usize].operator.push((
                i,
                SimTime::ZERO.saturating_add(cmd.at),
                cmd.lmu,
                action(cmd.action),
            ));
        }
        Ok(Gateways {
            apps,
            cloud: cloud_of(scenario, g),
            home,
        })
    }

    /// Loses one record of gateway 0 without a count, as a bug would:
    /// for the tests of the conservation check.
    #[cfg(test)]
    pub(crate) fn lose_a_record(&mut self) {
        self.apps[0].records_delivered -= 1;
    }

    /// How many gateways.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether there are none (never, once built).
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Gateway `i`.
    pub fn app(&self, i: usize) -> &GatewayApp {
        &self.apps[i]
    }

    /// Every gateway, by index.
    pub fn apps(&self) -> &[GatewayApp] {
        &self.apps
    }

    /// The cloud.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The gateway of LMU `lmu`'s district, if `lmu` is an LMU.
    pub fn home_of(&self, lmu: u32) -> Option<u32> {
        self.home.get(lmu as usize).copied().flatten()
    }

    /// Tags one gateway's events with the gateway each is for: the cloud's
    /// commands go to the gateway of the LMU they name.
    fn route(&self, gw: u32, s: AppStep) -> Step {
        let events = s
            .events
            .into_iter()
            .map(|(t, e)| {
                let to = match &e {
                    GatewayEvent::Rule { lmu, .. } | GatewayEvent::External { lmu, .. } => {
                        self.home_of(*lmu).unwrap_or(gw)
                    }
                    _ => gw,
                };
                (t, to, e)
            })
            .collect();
        Step {
            events,
            downlink: s.downlink,
            published: s.published,
        }
    }

    /// The events that start the gateways: each link comes up at zero, the
    /// first round's deadline, outages and operator commands.
    pub fn start(&mut self) -> Step {
        let mut all = Step::default();
        for gw in 0..self.apps.len() {
            let s = self.apps[gw].start();
            let s = self.route(gw as u32, s);
            all.events.extend(s.events);
        }
        all
    }

    /// A frame for the gateway reached coordinator `root` at `now`: it
    /// crosses that coordinator's UART to its gateway.
    pub fn from_mesh(&mut self, root: u32, now: SimTime, frame: Vec<u8>) -> Step {
        let gw = root.min(self.apps.len() as u32 - 1);
        let s = self.apps[gw as usize].uplink(now, frame);
        self.route(gw, s)
    }

    /// Handles an event of gateway `gw` at `now`.
    pub fn handle(&mut self, gw: u32, now: SimTime, ev: GatewayEvent) -> Step {
        let Some(app) = self.apps.get_mut(gw as usize) else {
            return Step::default();
        };
        let s = app.handle(&mut self.cloud, now, ev);
        self.route(gw, s)
    }

    /// The LMU carried out the command with this id.
    pub fn executed(&mut self, id: &str, now: SimTime) {
        self.cloud.executed(id, now);
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

    /// Writes the `gateway.*` headline metrics (counts summed over the
    /// gateways, the buffer peak the largest of them) and returns
    /// `gateway.csv`: every gateway's published rounds, in order of
    /// publication (ties by gateway), and the first gateway whose records
    /// are not conserved (see [`GatewayApp`]'s conservation), a bug that
    /// fails the run once its results are written.
    pub fn finish(self, summary: &mut Summary) -> (TimeSeries, Option<String>) {
        let violation = self.apps.iter().find_map(|g| g.conservation().err());
        let apps = &self.apps;
        let sum = |f: &dyn Fn(&GatewayApp) -> u64| -> u64 { apps.iter().map(f).sum() };
        let rounds = sum(&|g| g.aggregator.stats().rounds);
        let complete = sum(&|g| g.aggregator.stats().complete_rounds);
        let cl = self.cloud.stats();
        summary.set_u64("gateway.count", apps.len() as u64);
        summary.set_u64("gateway.rounds", rounds);
        summary.set_u64("gateway.rounds_complete", complete);
        if rounds > 0 {
            summary.set_f64(
                "gateway.rounds_complete_share",
                complete as f64 / rounds as f64,
            );
        }
        let counts: [Count<'_>; 23] = [
            ("reports_received", &|g| g.aggregator.stats().reports),
            ("reports_duplicate", &|g| g.aggregator.stats().duplicates),
            ("reports_late", &|g| g.aggregator.stats().late),
            ("frames_rejected", &|g| g.stats.frames_rejected),
            ("uart_dropped", &|g| g.stats.uart_dropped),
            ("outages", &|g| g.stats.outages),
            ("frames_lost_down", &|g| g.stats.frames_lost_down),
            ("records_published", &|g| g.records_published),
            ("records_dropped", &|g| {
                g.client.buffer().stats().dropped_records
            }),
            ("records_pending_at_end", &|g| g.records_pending()),
            ("messages_dropped", &|g| g.client.buffer().stats().dropped),
            ("mqtt_connects", &|g| g.client.stats().connects),
            ("mqtt_connections", &|g| g.client.stats().connected),
            ("mqtt_auth_failures", &|g| g.client.stats().auth_failures),
            ("mqtt_connection_losses", &|g| {
                g.client.stats().connection_losses
            }),
            ("mqtt_published", &|g| g.client.stats().published),
            ("mqtt_retransmissions", &|g| {
                g.client.stats().retransmissions
            }),
            ("mqtt_qos0_unconfirmed", &|g| {
                g.client.stats().qos0_unconfirmed
            }),
            ("mqtt_pings", &|g| g.client.stats().pings),
            ("mqtt_bytes_sent", &|g| g.client.stats().bytes_sent),
            ("tcp_retransmissions", &|g| g.stats.tcp_retransmissions),
            ("cellular_outages", &|g| g.up.link.stats().outages),
            ("commands_received", &|g| g.stats.commands_received),
        ];
        for (name, f) in counts {
            summary.set_u64(&format!("gateway.{name}"), sum(f));
        }
        summary.set_u64("gateway.records_stored", cl.stored);
        summary.set_u64("gateway.records_duplicate_in_cloud", cl.duplicates);
        let peak = apps.iter().map(|g| g.client.buffer().stats().peak_bytes);
        summary.set_u64("gateway.buffer_peak_bytes", peak.max().unwrap_or(0) as u64);
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
        summary.set_u64(
            "gateway.commands_rejected",
            sum(&|g| g.stats.commands_rejected),
        );
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
        let mut rows: Vec<Vec<f64>> = Vec::new();
        for (i, g) in apps.iter().enumerate() {
            for r in g.rounds_series.rows() {
                let mut row = Vec::with_capacity(r.len() + 1);
                row.push(i as f64);
                row.extend_from_slice(r);
                rows.push(row);
            }
        }
        // By publication time, then gateway (a stable sort keeps a
        // gateway's own order).
        rows.sort_by(|a, b| a[2].total_cmp(&b[2]).then(a[0].total_cmp(&b[0])));
        let mut series = TimeSeries::new("gateway", SERIES_COLUMNS);
        for r in &rows {
            series.push(r);
        }
        (series, violation)
    }
}
