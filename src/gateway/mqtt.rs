//! MQTT 3.1.1 sessions, sans-IO: the gateway's client and the cloud's
//! broker exchange real MQTT packets (rumqttc's `mqttbytes::v4` types, so
//! every packet has its exact encoded size) over whatever transport the
//! caller models (here the 3G/4G link).
//!
//! # Client (the gateway)
//! - **Connect.** When the link is up it sends CONNECT with its client id,
//!   user name and password, keep-alive and clean-session flag. A refused
//!   CONNACK (bad credentials, not authorised) or no CONNACK within the
//!   connect timeout puts it offline; it retries after a back-off that
//!   doubles up to a ceiling.
//! - **Subscribe.** Once connected it subscribes to its command filter,
//!   unless the broker says a persistent session with the subscription is
//!   already present.
//! - **Publish.** Messages wait in the store-and-forward [`Buffer`]. While
//!   connected they are sent in order: QoS 0 at once, QoS 1 while fewer
//!   than `max_inflight` await their PUBACK. An unacknowledged QoS 1
//!   message is sent again, with DUP set, after `retransmit_after`, and on
//!   every reconnection (MQTT 3.1.1 §4.4). A QoS 0 message on a connection
//!   that breaks is lost.
//! - **Keep-alive.** With nothing sent for `keep_alive`, it sends PINGREQ;
//!   with no PINGRESP within `ping_timeout`, the connection is deemed dead.
//!
//! # Broker (the cloud)
//! - Checks credentials against its user table.
//! - Keeps persistent sessions (clean session = false) by client id: their
//!   subscriptions and the QoS 1 messages for them, queued while they are
//!   offline and sent again on reconnection.
//! - Closes a connection that has been silent for 1.5 × its keep-alive
//!   (§3.1.2.10).
//! - Hands every PUBLISH it accepts to its application subscriber (the
//!   cloud store) and routes application messages (commands) to matching
//!   subscriptions.

use std::collections::{BTreeMap, VecDeque};

use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, Subscribe,
    SubscribeReasonCode, matches,
};

use super::buffer::{Buffer, Overflow, Queued};
use crate::kernel::{SimDuration, SimTime};

/// The gateway's MQTT settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSettings {
    /// Client id.
    pub client_id: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Keep-alive interval.
    pub keep_alive: SimDuration,
    /// How long to wait for PINGRESP.
    pub ping_timeout: SimDuration,
    /// How long to wait for CONNACK.
    pub connect_timeout: SimDuration,
    /// First reconnection back-off.
    pub backoff_min: SimDuration,
    /// Longest reconnection back-off.
    pub backoff_max: SimDuration,
    /// QoS of published rounds.
    pub qos: QoS,
    /// Most unacknowledged QoS 1 messages.
    pub max_inflight: u16,
    /// When to re-send an unacknowledged QoS 1 message on the same
    /// connection.
    pub retransmit_after: SimDuration,
    /// Ask for a fresh session at every connection.
    pub clean_session: bool,
    /// Command topic filter to subscribe to.
    pub command_filter: String,
    /// Store-and-forward buffer [bytes].
    pub buffer_bytes: usize,
    /// What the buffer drops when full.
    pub overflow: Overflow,
}

/// Client counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// CONNECT packets sent.
    pub connects: u64,
    /// Connections accepted.
    pub connected: u64,
    /// CONNACKs refused for credentials or authorisation.
    pub auth_failures: u64,
    /// Connections lost (link down, keep-alive, reset).
    pub connection_losses: u64,
    /// Messages handed to the client.
    pub queued: u64,
    /// LMU records handed to the client.
    pub queued_records: u64,
    /// PUBLISH packets sent for the first time.
    pub published: u64,
    /// QoS 1 re-sends (DUP set).
    pub retransmissions: u64,
    /// QoS 1 messages acknowledged.
    pub acked: u64,
    /// LMU records acknowledged (QoS 1) or sent (QoS 0).
    pub records_done: u64,
    /// QoS 0 messages on a connection that broke before they could arrive.
    pub qos0_unconfirmed: u64,
    /// PINGREQs sent.
    pub pings: u64,
    /// Commands received.
    pub commands: u64,
    /// Bytes sent, MQTT framing included.
    pub bytes_sent: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not connected; the next attempt at `retry_at` if the link is up.
    Offline { retry_at: SimTime },
    /// CONNECT sent at `since`.
    Connecting { since: SimTime },
    /// Connected.
    Connected,
}

#[derive(Clone, Debug)]
struct InFlight {
    publish: Publish,
    records: u32,
    sent_at: SimTime,
}

/// What the client asks of its caller.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientOut {
    /// Send this packet to the broker.
    Send(Packet),
    /// A command arrived.
    Command(Publish),
    /// Messages dropped by the buffer (records counted in the stats).
    Dropped(Vec<Queued>),
}

/// The gateway's MQTT client.
#[derive(Clone, Debug)]
pub struct Client {
    settings: ClientSettings,
    state: State,
    link_up: bool,
    backoff: SimDuration,
    buffer: Buffer,
    inflight: BTreeMap<u16, InFlight>,
    next_pkid: u16,
    last_sent: SimTime,
    ping_sent: Option<SimTime>,
    /// QoS 0 messages sent on the current connection.
    qos0_on_connection: u64,
    stats: ClientStats,
}

impl Client {
    /// A client, offline, with its link down.
    pub fn new(settings: ClientSettings) -> Client {
        Client {
            buffer: Buffer::new(settings.buffer_bytes, settings.overflow),
            backoff: settings.backoff_min,
            settings,
            state: State::Offline {
                retry_at: SimTime::ZERO,
            },
            link_up: false,
            inflight: BTreeMap::new(),
            next_pkid: 0,
            last_sent: SimTime::ZERO,
            ping_sent: None,
            qos0_on_connection: 0,
            stats: ClientStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The store-and-forward buffer.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Whether a session is established.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// LMU records in QoS 1 messages awaiting their PUBACK.
    pub fn inflight_records(&self) -> u64 {
        self.inflight.values().map(|f| u64::from(f.records)).sum()
    }

    /// The payloads of the QoS 1 messages awaiting their PUBACK, by packet
    /// id. The broker may have taken some of them already (their PUBACK is
    /// on its way, or was lost with the connection).
    pub fn inflight_payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.inflight.values().map(|f| &f.publish.payload[..])
    }

    fn send(&mut self, now: SimTime, p: Packet, out: &mut Vec<ClientOut>) {
        self.stats.bytes_sent += p.size() as u64;
        self.last_sent = now;
        out.push(ClientOut::Send(p));
    }

    fn connect(&mut self, now: SimTime, out: &mut Vec<ClientOut>) {
        let s = &self.settings;
        let mut c = Connect::new(s.client_id.clone());
        c.keep_alive = u16::try_from(s.keep_alive.as_nanos() / 1_000_000_000).unwrap_or(u16::MAX);
        c.clean_session = s.clean_session;
        c.set_login(s.username.clone(), s.password.clone());
        self.stats.connects += 1;
        self.state = State::Connecting { since: now };
        self.send(now, Packet::Connect(c), out);
    }

    fn go_offline(&mut self, now: SimTime, lost: bool) {
        if lost {
            self.stats.connection_losses += 1;
        }
        self.stats.qos0_unconfirmed += self.qos0_on_connection;
        self.qos0_on_connection = 0;
        self.ping_sent = None;
        self.state = State::Offline {
            retry_at: now.saturating_add(self.backoff),
        };
        self.backoff = SimDuration::from_nanos(
            (self.backoff.as_nanos().saturating_mul(2)).min(self.settings.backoff_max.as_nanos()),
        );
    }

    /// The transport came up or went down at `now`.
    pub fn link(&mut self, now: SimTime, up: bool) -> Vec<ClientOut> {
        let mut out = Vec::new();
        self.link_up = up;
        if up {
            // A fresh bearer: try at once.
            self.backoff = self.settings.backoff_min;
            if matches!(self.state, State::Offline { .. }) {
                self.connect(now, &mut out);
            }
        } else if !matches!(self.state, State::Offline { .. }) {
            self.go_offline(now, true);
        }
        out
    }

    /// The broker closed the connection (or reset it). A reset of a
    /// connection still being set up is a failed attempt, not a loss.
    pub fn closed(&mut self, now: SimTime) -> Vec<ClientOut> {
        match self.state {
            State::Connected => self.go_offline(now, true),
            State::Connecting { .. } => self.go_offline(now, false),
            State::Offline { .. } => {}
        }
        Vec::new()
    }

    /// Hands a message to the client: it is buffered and sent as soon as
    /// the session allows.
    pub fn publish(
        &mut self,
        now: SimTime,
        topic: &str,
        payload: Vec<u8>,
        records: u32,
    ) -> Vec<ClientOut> {
        let mut out = Vec::new();
        self.stats.queued += 1;
        self.stats.queued_records += u64::from(records);
        let dropped = self.buffer.push(Queued {
            publish: Publish::new(topic, self.settings.qos, payload),
            records,
        });
        if !dropped.is_empty() {
            out.push(ClientOut::Dropped(dropped));
        }
        self.pump(now, &mut out);
        out
    }

    fn pkid(&mut self) -> u16 {
        // Packet ids are 1..=65535, never one in flight.
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if !self.inflight.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    fn pump(&mut self, now: SimTime, out: &mut Vec<ClientOut>) {
        if self.state != State::Connected {
            return;
        }
        loop {
            let qos1 = self.settings.qos != QoS::AtMostOnce;
            if qos1 && self.inflight.len() >= usize::from(self.settings.max_inflight.max(1)) {
                return;
            }
            let Some(q) = self.buffer.pop() else {
                return;
            };
            let mut p = q.publish;
            self.stats.published += 1;
            if qos1 {
                p.pkid = self.pkid();
                self.inflight.insert(
                    p.pkid,
                    InFlight {
                        publish: p.clone(),
                        records: q.records,
                        sent_at: now,
                    },
                );
            } else {
                self.qos0_on_connection += 1;
                self.stats.records_done += u64::from(q.records);
            }
            self.send(now, Packet::Publish(p), out);
        }
    }

    fn resend(&mut self, now: SimTime, due: impl Fn(&InFlight) -> bool, out: &mut Vec<ClientOut>) {
        let ids: Vec<u16> = self
            .inflight
            .iter()
            .filter(|(_, f)| due(f))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(f) = self.inflight.get_mut(&id) {
                f.sent_at = now;
                let mut p = f.publish.clone();
                p.dup = true;
                self.stats.retransmissions += 1;
                self.send(now, Packet::Publish(p), out);
            }
        }
    }

    /// A packet from the broker.
    pub fn receive(&mut self, now: SimTime, p: Packet) -> Vec<ClientOut> {
        let mut out = Vec::new();
        match p {
            Packet::ConnAck(ack) if matches!(self.state, State::Connecting { .. }) => {
                if ack.code == ConnectReturnCode::Success {
                    self.state = State::Connected;
                    self.stats.connected += 1;
                    self.backoff = self.settings.backoff_min;
                    self.qos0_on_connection = 0;
                    if !ack.session_present {
                        let mut sub =
                            Subscribe::new(self.settings.command_filter.clone(), QoS::AtLeastOnce);
                        sub.pkid = self.pkid();
                        self.send(now, Packet::Subscribe(sub), &mut out);
                    }
                    // §4.4: unacknowledged messages go again, DUP set.
                    self.resend(now, |_| true, &mut out);
                    self.pump(now, &mut out);
                } else {
                    if matches!(
                        ack.code,
                        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                    ) {
                        self.stats.auth_failures += 1;
                    }
                    self.go_offline(now, false);
                }
            }
            Packet::PubAck(a) => {
                if let Some(f) = self.inflight.remove(&a.pkid) {
                    self.stats.acked += 1;
                    self.stats.records_done += u64::from(f.records);
                }
                self.pump(now, &mut out);
            }
            Packet::PingResp => self.ping_sent = None,
            Packet::Publish(p) if self.state == State::Connected => {
                if p.qos != QoS::AtMostOnce {
                    self.send(now, Packet::PubAck(PubAck::new(p.pkid)), &mut out);
                }
                self.stats.commands += 1;
                out.push(ClientOut::Command(p));
            }
            // SUBACK, or anything out of place (ignored, as a real client
            // drops what it does not expect).
            _ => {}
        }
        out
    }

    /// When the client next needs [`Client::timer`].
    pub fn next_timer(&self) -> Option<SimTime> {
        match self.state {
            State::Offline { retry_at } => self.link_up.then_some(retry_at),
            State::Connecting { since } => {
                Some(since.saturating_add(self.settings.connect_timeout))
            }
            State::Connected => {
                let s = &self.settings;
                let mut t = match self.ping_sent {
                    Some(at) => at.saturating_add(s.ping_timeout),
                    None => self.last_sent.saturating_add(s.keep_alive),
                };
                if let Some(f) = self.inflight.values().map(|f| f.sent_at).min() {
                    t = t.min(f.saturating_add(s.retransmit_after));
                }
                Some(t)
            }
        }
    }

    /// Timers due at `now`.
    pub fn timer(&mut self, now: SimTime) -> Vec<ClientOut> {
        let mut out = Vec::new();
        match self.state {
            State::Offline { retry_at } => {
                if self.link_up && now >= retry_at {
                    self.connect(now, &mut out);
                }
            }
            State::Connecting { since } => {
                if now >= since.saturating_add(self.settings.connect_timeout) {
                    self.go_offline(now, false);
                }
            }
            State::Connected => {
                let s = self.settings.clone();
                if let Some(at) = self.ping_sent
                    && now >= at.saturating_add(s.ping_timeout)
                {
                    self.go_offline(now, true);
                    return out;
                }
                let after = s.retransmit_after;
                self.resend(now, |f| now >= f.sent_at.saturating_add(after), &mut out);
                if self.ping_sent.is_none() && now >= self.last_sent.saturating_add(s.keep_alive) {
                    self.ping_sent = Some(now);
                    self.stats.pings += 1;
                    self.send(now, Packet::PingReq, &mut out);
                }
            }
        }
        out
    }
}

/// Broker counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused for credentials.
    pub refused: u64,
    /// PUBLISH packets received (duplicates included).
    pub received: u64,
    /// Connections closed for keep-alive expiry.
    pub keepalive_closes: u64,
    /// Messages queued for offline persistent sessions.
    pub queued_offline: u64,
    /// Application messages with no matching subscription.
    pub unrouted: u64,
}

#[derive(Clone, Debug, Default)]
struct Session {
    filters: Vec<String>,
    /// QoS 1 messages not yet acknowledged by the client, by packet id.
    outgoing: BTreeMap<u16, Publish>,
    /// QoS 1 messages for the client while it is offline.
    queue: VecDeque<Publish>,
    next_pkid: u16,
    persistent: bool,
}

#[derive(Clone, Debug)]
struct Connection {
    client_id: String,
    keep_alive: SimDuration,
    last_heard: SimTime,
}

/// What the broker asks of its caller.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerOut {
    /// Send this packet to the client.
    Send(Packet),
    /// A message for the application subscriber (the cloud store).
    Deliver(Publish),
    /// The connection is closed (its client learns it from the transport).
    Close,
}

/// An MQTT broker with one client connection at a time (the gateway),
/// persistent sessions by client id, and one application subscriber.
#[derive(Clone, Debug)]
pub struct Broker {
    users: BTreeMap<String, String>,
    sessions: BTreeMap<String, Session>,
    conn: Option<Connection>,
    up: bool,
    stats: BrokerStats,
}

impl Broker {
    /// A running broker accepting these (user, password) pairs.
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> Broker {
        Broker {
            users: users.into_iter().collect(),
            sessions: BTreeMap::new(),
            conn: None,
            up: true,
            stats: BrokerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> BrokerStats {
        self.stats
    }

    /// Whether it is running.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a client is connected.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The broker stops (`false`) or starts again. Stopping closes the
    /// connection; sessions survive (persistence on).
    pub fn set_up(&mut self, up: bool) -> Vec<BrokerOut> {
        self.up = up;
        if !up && self.conn.take().is_some() {
            return vec![BrokerOut::Close];
        }
        Vec::new()
    }

    fn session(&mut self) -> Option<&mut Session> {
        let id = &self.conn.as_ref()?.client_id;
        self.sessions.get_mut(id)
    }

    fn send_publish(s: &mut Session, mut p: Publish, out: &mut Vec<BrokerOut>) {
        s.next_pkid = s.next_pkid.wrapping_add(1).max(1);
        while s.outgoing.contains_key(&s.next_pkid) {
            s.next_pkid = s.next_pkid.wrapping_add(1).max(1);
        }
        p.pkid = s.next_pkid;
        p.dup = false;
        s.outgoing.insert(p.pkid, p.clone());
        out.push(BrokerOut::Send(Packet::Publish(p)));
    }

    /// A packet from the client. Packets reaching a stopped broker are
    /// refused at the transport: the caller resets the connection.
    pub fn receive(&mut self, now: SimTime, p: Packet) -> Vec<BrokerOut> {
        let mut out = Vec::new();
        if !self.up {
            return vec![BrokerOut::Close];
        }
        if let Some(c) = &mut self.conn {
            c.last_heard = now;
        }
        match p {
            Packet::Connect(c) => {
                let ok = c.login.as_ref().is_some_and(|l| {
                    self.users
                        .get(&l.username)
                        .is_some_and(|p| *p == l.password)
                });
                if !ok {
                    self.stats.refused += 1;
                    self.conn = None;
                    out.push(BrokerOut::Send(Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::BadUserNamePassword,
                        false,
                    ))));
                    out.push(BrokerOut::Close);
                    return out;
                }
                self.stats.accepted += 1;
                if c.clean_session {
                    self.sessions.remove(&c.client_id);
                }
                let present = self
                    .sessions
                    .get(&c.client_id)
                    .is_some_and(|s| s.persistent);
                let s = self.sessions.entry(c.client_id.clone()).or_default();
                s.persistent = !c.clean_session;
                self.conn = Some(Connection {
                    client_id: c.client_id,
                    keep_alive: SimDuration::from_secs(u64::from(c.keep_alive))
                        .unwrap_or(SimDuration::MAX),
                    last_heard: now,
                });
                out.push(BrokerOut::Send(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::Success,
                    present,
                ))));
                // §4.4: re-send what was unacknowledged, then what queued.
                let s = self.session().expect("just created");
                for p in s.outgoing.values() {
                    let mut p = p.clone();
                    p.dup = true;
                    out.push(BrokerOut::Send(Packet::Publish(p)));
                }
                while let Some(p) = s.queue.pop_front() {
                    Self::send_publish(s, p, &mut out);
                }
            }
            _ if self.conn.is_none() => {
                // Anything before CONNECT: a protocol violation; close.
                out.push(BrokerOut::Close);
            }
            Packet::Publish(p) => {
                self.stats.received += 1;
                if p.qos != QoS::AtMostOnce {
                    out.push(BrokerOut::Send(Packet::PubAck(PubAck::new(p.pkid))));
                }
                out.push(BrokerOut::Deliver(p));
            }
            Packet::PubAck(a) => {
                if let Some(s) = self.session() {
                    s.outgoing.remove(&a.pkid);
                }
            }
            Packet::Subscribe(sub) => {
                let codes = sub
                    .filters
                    .iter()
                    .map(|f| {
                        SubscribeReasonCode::Success(if f.qos == QoS::AtMostOnce {
                            QoS::AtMostOnce
                        } else {
                            QoS::AtLeastOnce
                        })
                    })
                    .collect();
                if let Some(s) = self.session() {
                    for f in &sub.filters {
                        if !s.filters.contains(&f.path) {
                            s.filters.push(f.path.clone());
                        }
                    }
                }
                out.push(BrokerOut::Send(Packet::SubAck(SubAck::new(
                    sub.pkid, codes,
                ))));
            }
            Packet::PingReq => out.push(BrokerOut::Send(Packet::PingResp)),
            Packet::Disconnect => {
                self.conn = None;
                out.push(BrokerOut::Close);
            }
            _ => {}
        }
        out
    }

    /// An application message (a command) at QoS 1: sent to the connected
    /// client if it subscribed, queued if its persistent session is
    /// offline, else dropped (counted).
    pub fn publish(&mut self, topic: &str, payload: Vec<u8>) -> Vec<BrokerOut> {
        let mut out = Vec::new();
        let p = Publish::new(topic, QoS::AtLeastOnce, payload);
        let online = self
            .up
            .then(|| self.conn.as_ref().map(|c| c.client_id.clone()))
            .flatten();
        let mut routed = false;
        for (id, s) in &mut self.sessions {
            if !s.filters.iter().any(|f| matches(topic, f)) {
                continue;
            }
            routed = true;
            if online.as_deref() == Some(id.as_str()) {
                Self::send_publish(s, p.clone(), &mut out);
            } else if s.persistent {
                self.stats.queued_offline += 1;
                s.queue.push_back(p.clone());
            }
        }
        if !routed {
            self.stats.unrouted += 1;
        }
        out
    }

    /// When the broker next needs [`Broker::timer`].
    pub fn next_timer(&self) -> Option<SimTime> {
        let c = self.conn.as_ref()?;
        (c.keep_alive.as_nanos() > 0).then(|| c.last_heard.saturating_add(expiry(c.keep_alive)))
    }

    /// Closes a connection silent for 1.5 × its keep-alive.
    pub fn timer(&mut self, now: SimTime) -> Vec<BrokerOut> {
        if let Some(c) = &self.conn
            && c.keep_alive.as_nanos() > 0
            && now >= c.last_heard.saturating_add(expiry(c.keep_alive))
        {
            self.conn = None;
            self.stats.keepalive_closes += 1;
            return vec![BrokerOut::Close];
        }
        Vec::new()
    }
}

fn expiry(keep_alive: SimDuration) -> SimDuration {
    SimDuration::from_nanos(keep_alive.as_nanos().saturating_mul(3) / 2)
}

/// The packets a client asks to send, in order.
pub fn packets(out: &[ClientOut]) -> Vec<Packet> {
    out.iter()
        .filter_map(|o| match o {
            ClientOut::Send(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// Carries packets between a client and a broker with no delay, both ways,
/// until both are quiet; returns what the broker delivered to its
/// application. The transport keeps order: a close follows the packets
/// sent before it. (A zero-latency link, for tests and benches.)
pub fn exchange_instantly(
    c: &mut Client,
    b: &mut Broker,
    now: SimTime,
    mut up: Vec<Packet>,
) -> Vec<Publish> {
    let mut delivered = Vec::new();
    while !up.is_empty() {
        let (mut down, mut close) = (Vec::new(), false);
        for p in up.drain(..) {
            for o in b.receive(now, p) {
                match o {
                    BrokerOut::Send(p) => down.push(p),
                    BrokerOut::Deliver(p) => delivered.push(p),
                    BrokerOut::Close => close = true,
                }
            }
        }
        for p in down {
            up.extend(packets(&c.receive(now, p)));
        }
        if close {
            c.closed(now);
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimTime {
        SimTime::from_nanos(x * 1_000_000_000)
    }

    fn secs(x: u64) -> SimDuration {
        SimDuration::from_secs(x).unwrap()
    }

    fn settings() -> ClientSettings {
        ClientSettings {
            client_id: "gw".into(),
            username: "gw".into(),
            password: "pw".into(),
            keep_alive: secs(60),
            ping_timeout: secs(10),
            connect_timeout: secs(10),
            backoff_min: secs(1),
            backoff_max: secs(60),
            qos: QoS::AtLeastOnce,
            max_inflight: 2,
            retransmit_after: secs(20),
            clean_session: false,
            command_filter: "site/gw/cmd/+".into(),
            buffer_bytes: 10_000,
            overflow: Overflow::DropOldest,
        }
    }

    fn broker() -> Broker {
        Broker::new([("gw".to_string(), "pw".to_string())])
    }

    #[test]
    fn connect_subscribe_publish_and_acknowledge() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        let got = exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        assert!(got.is_empty() && c.is_connected());
        // The command subscription is in place: a command reaches the client.
        let cmd = b.publish("site/gw/cmd/7", b"{}".to_vec());
        assert_eq!(cmd.len(), 1);
        let out = c.publish(s(1), "site/gw/events", b"round".to_vec(), 5);
        let got = exchange_instantly(&mut c, &mut b, s(1), packets(&out));
        assert_eq!(got.len(), 1);
        assert_eq!(c.stats().records_done, 5);
        assert_eq!(c.inflight_records(), 0);
    }

    #[test]
    fn wrong_credentials_are_refused_and_retried_with_backoff() {
        let mut st = settings();
        st.password = "nope".into();
        let (mut c, mut b) = (Client::new(st), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        assert!(!c.is_connected());
        assert_eq!((c.stats().auth_failures, b.stats().refused), (1, 1));
        // The next attempt waits for the back-off (1 s, then 2 s).
        assert_eq!(c.next_timer(), Some(s(1)));
        let out = c.timer(s(1));
        exchange_instantly(&mut c, &mut b, s(1), packets(&out));
        assert_eq!(c.next_timer(), Some(s(3)));
        assert_eq!(c.stats().auth_failures, 2);
    }

    #[test]
    fn the_inflight_window_limits_unacknowledged_messages() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        // Three messages, window of two: the third waits for a PUBACK.
        let mut wire = Vec::new();
        for k in 0..3 {
            wire.extend(packets(&c.publish(s(1), "e", vec![k], 1)));
        }
        assert_eq!(wire.len(), 2);
        assert_eq!(c.buffer().len(), 1);
        let got = exchange_instantly(&mut c, &mut b, s(1), wire);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn unacknowledged_messages_go_again_with_dup_after_a_reconnection() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        // Published, but the link dies before the PUBLISH arrives.
        let lost = packets(&c.publish(s(1), "e", b"x".to_vec(), 3));
        assert_eq!(lost.len(), 1);
        c.link(s(2), false);
        // Rounds buffer while offline.
        assert!(packets(&c.publish(s(3), "e", b"y".to_vec(), 4)).is_empty());
        assert_eq!(c.buffer().records(), 4);
        let out = packets(&c.link(s(100), true));
        // The broker notices the dead connection by keep-alive expiry.
        assert_eq!(b.timer(s(100)), vec![BrokerOut::Close]);
        let got = exchange_instantly(&mut c, &mut b, s(100), out);
        assert_eq!(got.len(), 2);
        assert!(got[0].dup && !got[1].dup);
        assert_eq!(c.stats().retransmissions, 1);
        assert_eq!(c.stats().records_done, 7);
    }

    #[test]
    fn a_persistent_session_keeps_commands_for_an_offline_client() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        c.link(s(1), false);
        b.timer(s(200));
        assert!(b.publish("site/gw/cmd/3", b"open".to_vec()).is_empty());
        assert_eq!(b.stats().queued_offline, 1);
        // On reconnection the session is present: no new SUBSCRIBE, and
        // the queued command arrives.
        let out = packets(&c.link(s(300), true));
        let mut cmds = Vec::new();
        let down: Vec<Packet> = out
            .into_iter()
            .flat_map(|p| b.receive(s(300), p))
            .filter_map(|o| match o {
                BrokerOut::Send(p) => Some(p),
                _ => None,
            })
            .collect();
        assert!(matches!(&down[0], Packet::ConnAck(a) if a.session_present));
        for p in down {
            for o in c.receive(s(300), p) {
                match o {
                    ClientOut::Command(p) => cmds.push(p),
                    ClientOut::Send(Packet::Subscribe(_)) => panic!("re-subscribed"),
                    _ => {}
                }
            }
        }
        assert_eq!(cmds.len(), 1);
        assert_eq!(&cmds[0].payload[..], b"open");
    }

    #[test]
    fn keep_alive_pings_and_a_missing_pingresp_drops_the_connection() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        assert_eq!(c.next_timer(), Some(s(60)));
        let ping = packets(&c.timer(s(60)));
        assert_eq!(ping, vec![Packet::PingReq]);
        // No answer within the ping timeout.
        assert_eq!(c.next_timer(), Some(s(70)));
        c.timer(s(70));
        assert!(!c.is_connected());
        assert_eq!(c.stats().connection_losses, 1);
    }

    #[test]
    fn an_unacknowledged_message_is_resent_on_the_same_connection() {
        let (mut c, mut b) = (Client::new(settings()), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        let _lost = c.publish(s(1), "e", b"x".to_vec(), 1);
        assert_eq!(c.next_timer(), Some(s(21)));
        let again = packets(&c.timer(s(21)));
        assert!(matches!(&again[0], Packet::Publish(p) if p.dup));
        let got = exchange_instantly(&mut c, &mut b, s(21), again);
        assert_eq!(got.len(), 1);
        assert_eq!(c.inflight_records(), 0);
    }

    #[test]
    fn qos0_on_a_broken_connection_is_counted_unconfirmed() {
        let mut st = settings();
        st.qos = QoS::AtMostOnce;
        let (mut c, mut b) = (Client::new(st), broker());
        let out = c.link(s(0), true);
        exchange_instantly(&mut c, &mut b, s(0), packets(&out));
        let p = packets(&c.publish(s(1), "e", b"x".to_vec(), 2));
        assert!(matches!(&p[0], Packet::Publish(p) if p.pkid == 0));
        c.link(s(1), false);
        assert_eq!(c.stats().qos0_unconfirmed, 1);
    }
}
