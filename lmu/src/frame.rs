//! Mesh frames: the wire layout ([`Packet`]), its parsed form
//! ([`FrameRepr`]), and their authentication ([`Security`]).
//!
//! # Layout (little-endian)
//!
//! ```text
//!  0       1      2        4        6                14    15           15+len
//!  +-------+------+--------+--------+----------------+-----+-------------+----------+
//!  |version| kind |  src   |  dst   | counter (u64)  | len | payload     | tag (16) |
//!  +-------+------+--------+--------+----------------+-----+-------------+----------+
//! ```
//!
//! - `counter` is the sender's frame counter: its boot epoch (kept in
//!   non-volatile storage, incremented at every boot) in the high 32 bits,
//!   and the frames sent since boot in the low 32. It only ever grows, so a
//!   receiver accepts a frame only if its counter exceeds the last one it
//!   accepted from that sender: replays are refused, and a rebooted sender
//!   (new epoch, count from 0) is never mistaken for a replayer.
//! - `tag` is HMAC-SHA256 over every byte before it, truncated to its first
//!   16 bytes (RFC 2104 truncation; 128 bits, as 802.15.4's strongest MIC).
//!   Frames from the gateway are keyed with the gateway key, all others
//!   with the mesh key, so an LMU cannot forge a gateway command.
//!
//! Untrusted bytes enter only through [`Packet::new_checked`], which checks
//! every length before any field is read; nothing here panics on any input.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Wire format version.
pub const VERSION: u8 = 1;
/// Header length [bytes].
pub const HEADER_LEN: usize = 15;
/// Tag length [bytes].
pub const TAG_LEN: usize = 16;
/// 802.15.4 MAC header and FCS with short addresses and PAN ID compression
/// [bytes]: frame control 2, sequence 1, PAN ID 2, addresses 2 + 2, FCS 2.
pub const MAC_OVERHEAD: usize = 11;
/// Largest payload [bytes]: what an aMaxPhyPacketSize (127-byte) PSDU
/// leaves after the MAC overhead, this header and the tag.
pub const MAX_PAYLOAD: usize = 127 - MAC_OVERHEAD - HEADER_LEN - TAG_LEN;
/// Largest frame [bytes].
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD + TAG_LEN;
/// Destination of a frame for every neighbour.
pub const BROADCAST: u16 = 0xFFFF;
/// Node id of the gateway (through the coordinator).
pub const GATEWAY: u16 = 0xFFFE;

mod field {
    use core::ops::Range;
    pub(super) const VERSION: usize = 0;
    pub(super) const KIND: usize = 1;
    pub(super) const SRC: Range<usize> = 2..4;
    pub(super) const DST: Range<usize> = 4..6;
    pub(super) const COUNTER: Range<usize> = 6..14;
    pub(super) const LEN: usize = 14;
}

/// Why bytes are not an acceptable frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FrameError {
    /// Shorter than its header, or than its header says.
    Truncated,
    /// Wrong version, an unknown kind, or a payload over the maximum.
    Malformed,
    /// The tag does not match: forged or corrupted.
    Forged,
    /// The counter is not above the last accepted from this sender.
    Replayed,
    /// The sender is not one this node talks to.
    UnknownSender,
    /// A buffer is too small for the frame being written.
    BufferTooSmall,
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// FLISR: a neighbour reports what it saw of a fault.
    FaultReport = 1,
    /// FLISR: acknowledgement of a report.
    Ack = 2,
    /// FLISR: a request to open or close a contactor.
    Switch = 3,
    /// Telemetry towards the gateway.
    Telemetry = 4,
    /// A command from the gateway.
    Command = 5,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<FrameKind> {
        Some(match b {
            1 => FrameKind::FaultReport,
            2 => FrameKind::Ack,
            3 => FrameKind::Switch,
            4 => FrameKind::Telemetry,
            5 => FrameKind::Command,
            _ => return None,
        })
    }
}

/// A frame's counter: boot epoch and frames since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Counter(pub u64);

impl Counter {
    /// The counter of frame `count` of boot `epoch`.
    pub const fn new(epoch: u32, count: u32) -> Counter {
        Counter(((epoch as u64) << 32) | count as u64)
    }

    /// The boot epoch.
    pub const fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Frames sent since boot.
    pub const fn count(self) -> u32 {
        self.0 as u32
    }
}

/// A read/write view of a frame in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(r) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it: accessors on a short buffer
    /// return zeros and empty slices, never panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes, checking the version, the kind and every
    /// length.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, FrameError> {
        let p = Packet::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), FrameError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        let len = usize::from(self.payload_len());
        if b.first() != Some(&VERSION)
            || FrameKind::from_u8(b.get(field::KIND).copied().unwrap_or(0)).is_none()
            || len > MAX_PAYLOAD
        {
            return Err(FrameError::Malformed);
        }
        if b.len() < HEADER_LEN + len + TAG_LEN {
            return Err(FrameError::Truncated);
        }
        Ok(())
    }

    /// The whole frame's length by its header [bytes].
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len()) + TAG_LEN
    }

    /// Version byte.
    pub fn version(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VERSION)
            .copied()
            .unwrap_or(0)
    }

    /// Kind, if known.
    pub fn kind(&self) -> Option<FrameKind> {
        FrameKind::from_u8(self.buffer.as_ref().get(field::KIND).copied().unwrap_or(0))
    }

    /// Sender id.
    pub fn src(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::SRC)
    }

    /// Destination id.
    pub fn dst(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::DST)
    }

    /// Frame counter.
    pub fn counter(&self) -> Counter {
        let mut a = [0u8; 8];
        if let Some(s) = self.buffer.as_ref().get(field::COUNTER) {
            a.copy_from_slice(s);
        }
        Counter(u64::from_le_bytes(a))
    }

    /// Payload length field [bytes].
    pub fn payload_len(&self) -> u8 {
        self.buffer.as_ref().get(field::LEN).copied().unwrap_or(0)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The bytes the tag covers.
    pub fn authenticated(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(..end).unwrap_or(&[])
    }

    /// The tag.
    pub fn tag(&self) -> &[u8] {
        let start = HEADER_LEN + usize::from(self.payload_len());
        self.buffer
            .as_ref()
            .get(start..start + TAG_LEN)
            .unwrap_or(&[])
    }
}

/// A parsed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRepr<'a> {
    /// What it carries.
    pub kind: FrameKind,
    /// Sender.
    pub src: u16,
    /// Destination ([`BROADCAST`] for every neighbour).
    pub dst: u16,
    /// Sender's counter.
    pub counter: Counter,
    /// Payload bytes (at most [`MAX_PAYLOAD`]).
    pub payload: &'a [u8],
}

impl<'a> FrameRepr<'a> {
    /// Parses untrusted bytes (the tag is not verified here: see
    /// [`Security::open`]).
    pub fn parse(bytes: &'a [u8]) -> Result<FrameRepr<'a>, FrameError> {
        let p = Packet::new_checked(bytes)?;
        let end = HEADER_LEN + usize::from(p.payload_len());
        Ok(FrameRepr {
            kind: p.kind().ok_or(FrameError::Malformed)?,
            src: p.src(),
            dst: p.dst(),
            counter: p.counter(),
            payload: bytes.get(HEADER_LEN..end).unwrap_or(&[]),
        })
    }

    /// The frame's length on the wire [bytes].
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len() + TAG_LEN
    }

    /// Writes the header and payload (not the tag) into `buf`.
    fn emit_body(&self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.payload.len();
        if len > MAX_PAYLOAD {
            return Err(FrameError::Malformed);
        }
        let body = HEADER_LEN + len;
        let out = buf.get_mut(..body).ok_or(FrameError::BufferTooSmall)?;
        let (head, payload) = out
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(FrameError::BufferTooSmall)?;
        let (s, d, c) = (
            self.src.to_le_bytes(),
            self.dst.to_le_bytes(),
            self.counter.0.to_le_bytes(),
        );
        // The layout of `field`, byte by byte.
        head.copy_from_slice(&[
            VERSION,
            self.kind as u8,
            s[0],
            s[1],
            d[0],
            d[1],
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            len as u8,
        ]);
        payload.copy_from_slice(self.payload);
        Ok(body)
    }
}

/// Symmetric keys of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Keys {
    /// The mesh key, shared by the LMUs of one feeder [256 bits].
    pub mesh: [u8; 32],
    /// The gateway's key, for commands from the gateway [256 bits].
    pub gateway: [u8; 32],
}

/// Most peers a node tracks counters for.
pub const MAX_PEERS: usize = 16;

/// Counts of rejected frames, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectCounts {
    /// Too short.
    pub truncated: u32,
    /// Not a frame of this format.
    pub malformed: u32,
    /// Bad tag.
    pub forged: u32,
    /// Old counter.
    pub replayed: u32,
    /// Sender not known.
    pub unknown_sender: u32,
}

/// Frame authentication and replay protection for one node.
#[derive(Clone, Debug)]
pub struct Security {
    id: u16,
    keys: Keys,
    epoch: u32,
    sent: u32,
    /// Known peers and the last counter accepted from each.
    peers: heapless::Vec<(u16, Option<Counter>), MAX_PEERS>,
    rejected: RejectCounts,
}

type HmacSha256 = Hmac<Sha256>;

fn tag_of(key: &[u8; 32], bytes: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    // HMAC takes keys of any length, so this cannot fail.
    if let Ok(mut mac) = HmacSha256::new_from_slice(key) {
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        for (o, f) in out.iter_mut().zip(full.iter()) {
            *o = *f;
        }
    }
    out
}

impl Security {
    /// Security for node `id` in boot `epoch`, accepting frames from
    /// `peers` (which may include [`GATEWAY`]); peers beyond
    /// [`MAX_PEERS`] are ignored.
    pub fn new(id: u16, keys: Keys, epoch: u32, peers: &[u16]) -> Security {
        let mut list = heapless::Vec::new();
        for &p in peers {
            if !list.iter().any(|(q, _)| *q == p) {
                let _ = list.push((p, None));
            }
        }
        Security {
            id,
            keys,
            epoch,
            sent: 0,
            peers: list,
            rejected: RejectCounts::default(),
        }
    }

    fn key_for(&self, src: u16) -> &[u8; 32] {
        if src == GATEWAY {
            &self.keys.gateway
        } else {
            &self.keys.mesh
        }
    }

    /// Rejections so far.
    pub fn rejected(&self) -> RejectCounts {
        self.rejected
    }

    /// The next counter this node will send with.
    pub fn next_counter(&self) -> Counter {
        Counter::new(self.epoch, self.sent)
    }

    /// Writes an authenticated frame of `kind` to `dst` into `buf`; returns
    /// its length. Uses the next counter.
    pub fn seal(
        &mut self,
        kind: FrameKind,
        dst: u16,
        payload: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, FrameError> {
        let repr = FrameRepr {
            kind,
            src: self.id,
            dst,
            counter: self.next_counter(),
            payload,
        };
        let body = repr.emit_body(buf)?;
        let tag = tag_of(self.key_for(self.id), buf.get(..body).unwrap_or(&[]));
        buf.get_mut(body..body + TAG_LEN)
            .ok_or(FrameError::BufferTooSmall)?
            .copy_from_slice(&tag);
        self.sent = self.sent.wrapping_add(1);
        Ok(body + TAG_LEN)
    }

    /// Checks untrusted bytes: layout, sender, tag, then counter. On
    /// success the sender's counter is remembered; every rejection is
    /// counted.
    pub fn open<'a>(&mut self, bytes: &'a [u8]) -> Result<FrameRepr<'a>, FrameError> {
        let r = self.open_inner(bytes);
        if let Err(e) = r {
            let c = &mut self.rejected;
            match e {
                FrameError::Truncated => c.truncated += 1,
                FrameError::Malformed | FrameError::BufferTooSmall => c.malformed += 1,
                FrameError::Forged => c.forged += 1,
                FrameError::Replayed => c.replayed += 1,
                FrameError::UnknownSender => c.unknown_sender += 1,
            }
        }
        r
    }

    fn open_inner<'a>(&mut self, bytes: &'a [u8]) -> Result<FrameRepr<'a>, FrameError> {
        let p = Packet::new_checked(bytes)?;
        let slot = self
            .peers
            .iter()
            .position(|(q, _)| *q == p.src())
            .ok_or(FrameError::UnknownSender)?;
        let want = tag_of(self.key_for(p.src()), p.authenticated());
        // Constant-time comparison: the time taken says nothing about how
        // many bytes matched.
        let got = p.tag();
        let mut diff = (got.len() ^ TAG_LEN) as u8;
        for (a, b) in want.iter().zip(got) {
            diff |= a ^ b;
        }
        if diff != 0 {
            return Err(FrameError::Forged);
        }
        let counter = p.counter();
        let last = self.peers.get(slot).and_then(|(_, c)| *c);
        if last.is_some_and(|l| counter <= l) {
            return Err(FrameError::Replayed);
        }
        if let Some(entry) = self.peers.get_mut(slot) {
            entry.1 = Some(counter);
        }
        FrameRepr::parse(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: Keys = Keys {
        mesh: [7; 32],
        gateway: [9; 32],
    };

    fn pair() -> (Security, Security) {
        (
            Security::new(1, KEYS, 0, &[2, GATEWAY]),
            Security::new(2, KEYS, 0, &[1, GATEWAY]),
        )
    }

    #[test]
    fn a_sealed_frame_opens_with_its_fields() {
        let (mut a, mut b) = pair();
        let mut buf = [0u8; MAX_FRAME];
        let n = a
            .seal(FrameKind::FaultReport, 2, b"hello", &mut buf)
            .unwrap();
        assert_eq!(n, HEADER_LEN + 5 + TAG_LEN);
        let r = b.open(&buf[..n]).unwrap();
        assert_eq!(
            (r.kind, r.src, r.dst, r.counter, r.payload),
            (
                FrameKind::FaultReport,
                1,
                2,
                Counter::new(0, 0),
                &b"hello"[..]
            )
        );
        assert_eq!(b.rejected(), RejectCounts::default());
    }

    #[test]
    fn a_replayed_frame_is_rejected_and_counted() {
        let (mut a, mut b) = pair();
        let mut buf = [0u8; MAX_FRAME];
        let n = a.seal(FrameKind::Ack, 2, &[], &mut buf).unwrap();
        assert!(b.open(&buf[..n]).is_ok());
        assert_eq!(b.open(&buf[..n]), Err(FrameError::Replayed));
        assert_eq!(b.rejected().replayed, 1);
        // The next frame is fine.
        let n = a.seal(FrameKind::Ack, 2, &[], &mut buf).unwrap();
        assert!(b.open(&buf[..n]).is_ok());
    }

    #[test]
    fn a_rebooted_sender_is_not_a_replayer() {
        let (mut a, mut b) = pair();
        let mut buf = [0u8; MAX_FRAME];
        for _ in 0..5 {
            let n = a.seal(FrameKind::Telemetry, 2, &[1], &mut buf).unwrap();
            b.open(&buf[..n]).unwrap();
        }
        // Reboot: epoch 1 from non-volatile storage, frame count from 0.
        let mut a = Security::new(1, KEYS, 1, &[2]);
        let n = a.seal(FrameKind::Telemetry, 2, &[1], &mut buf).unwrap();
        assert_eq!(b.open(&buf[..n]).unwrap().counter, Counter::new(1, 0));
    }

    #[test]
    fn forged_and_corrupted_frames_are_rejected_and_counted() {
        let (mut a, mut b) = pair();
        let mut buf = [0u8; MAX_FRAME];
        let n = a.seal(FrameKind::Switch, 2, &[1, 2, 3], &mut buf).unwrap();
        // Any flipped bit, header, payload or tag, breaks the tag.
        for byte in [1usize, 3, 7, HEADER_LEN + 1, n - 1] {
            let mut bad = buf;
            bad[byte] ^= 0x10;
            let e = b.open(&bad[..n]).unwrap_err();
            assert!(
                matches!(
                    e,
                    FrameError::Forged | FrameError::Malformed | FrameError::UnknownSender
                ),
                "byte {byte}: {e:?}"
            );
        }
        // A node with the wrong key cannot forge.
        let mut mallory = Security::new(
            1,
            Keys {
                mesh: [8; 32],
                gateway: [9; 32],
            },
            5,
            &[],
        );
        let n = mallory.seal(FrameKind::Switch, 2, &[0], &mut buf).unwrap();
        assert_eq!(b.open(&buf[..n]), Err(FrameError::Forged));
        assert!(b.rejected().forged >= 2);
    }

    #[test]
    fn an_lmu_cannot_forge_a_gateway_command() {
        let (_, mut b) = pair();
        // An LMU with the mesh key claims to be the gateway.
        let mut lmu = Security::new(
            GATEWAY,
            Keys {
                mesh: KEYS.mesh,
                gateway: KEYS.mesh,
            },
            0,
            &[],
        );
        let mut buf = [0u8; MAX_FRAME];
        let n = lmu.seal(FrameKind::Command, 2, &[1], &mut buf).unwrap();
        assert_eq!(b.open(&buf[..n]), Err(FrameError::Forged));
        let mut gw = Security::new(GATEWAY, KEYS, 0, &[]);
        let n = gw.seal(FrameKind::Command, 2, &[1], &mut buf).unwrap();
        assert!(b.open(&buf[..n]).is_ok());
    }

    #[test]
    fn unknown_senders_and_truncated_frames_are_rejected_and_counted() {
        let (_, mut b) = pair();
        let mut stranger = Security::new(42, KEYS, 0, &[]);
        let mut buf = [0u8; MAX_FRAME];
        let n = stranger
            .seal(FrameKind::FaultReport, 2, &[1], &mut buf)
            .unwrap();
        assert_eq!(b.open(&buf[..n]), Err(FrameError::UnknownSender));
        let (mut a, _) = pair();
        let n = a
            .seal(FrameKind::FaultReport, 2, &[1, 2], &mut buf)
            .unwrap();
        for cut in [0, 3, HEADER_LEN, n - 1] {
            assert_eq!(
                b.open(&buf[..cut]),
                Err(FrameError::Truncated),
                "cut at {cut}"
            );
        }
        let r = b.rejected();
        assert_eq!((r.unknown_sender, r.truncated), (1, 4));
    }

    #[test]
    fn oversized_payloads_and_small_buffers_are_errors() {
        let (mut a, _) = pair();
        let mut buf = [0u8; MAX_FRAME];
        let big = [0u8; MAX_PAYLOAD + 1];
        assert_eq!(
            a.seal(FrameKind::Ack, 2, &big, &mut buf),
            Err(FrameError::Malformed)
        );
        let mut small = [0u8; 10];
        assert_eq!(
            a.seal(FrameKind::Ack, 2, &[], &mut small),
            Err(FrameError::BufferTooSmall)
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = FrameKind> {
            prop_oneof![
                Just(FrameKind::FaultReport),
                Just(FrameKind::Ack),
                Just(FrameKind::Switch),
                Just(FrameKind::Telemetry),
                Just(FrameKind::Command),
            ]
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_and_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let (_, mut b) = pair();
                if let Ok(p) = Packet::new_checked(&bytes[..]) {
                    prop_assert!(p.frame_len() <= bytes.len());
                }
                let _ = FrameRepr::parse(&bytes);
                // Without the key, random bytes never authenticate.
                prop_assert!(b.open(&bytes).is_err());
            }

            #[test]
            fn sealed_frames_round_trip_exactly(
                k in kind(),
                dst in any::<u16>(),
                payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD),
                epoch in any::<u32>(),
            ) {
                let mut a = Security::new(1, KEYS, epoch, &[]);
                let mut b = Security::new(2, KEYS, 0, &[1]);
                let mut buf = [0u8; MAX_FRAME];
                let n = a.seal(k, dst, &payload, &mut buf).unwrap();
                let r = b.open(&buf[..n]).unwrap();
                prop_assert_eq!((r.kind, r.src, r.dst, r.counter, r.payload), (k, 1, dst, Counter::new(epoch, 0), &payload[..]));
                prop_assert_eq!(r.buffer_len(), n);
            }
        }
    }
}
