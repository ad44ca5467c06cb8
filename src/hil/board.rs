//! One board session, host side: handshake, configuration, lock-step
//! steps.
//!
//! One request is in flight at a time. A step carries its sequence number
//! and simulated time; the host waits for the answer with that number. If
//! none comes within the timeout, it sends the same step again (the board
//! answers a repeated sequence number from its cache and does not carry
//! the step out twice), up to the retry limit. Frames that do not decode
//! are dropped and counted by the decoder, which resynchronises on the
//! next zero byte. An unsolicited hello from the board means it was reset:
//! its LMU is gone, and the step fails with [`HilError::Reset`] so that
//! the caller can fail the run or configure the board again.

use std::time::{Duration, Instant};

use gridtwin_lmu::frame::Keys;
use gridtwin_lmu::hil::{
    BUILD_ID, BoardMsg, CRATE_VERSION, Decoder, HostMsg, MAX_WIRE, Refusal, WIRE_VERSION,
    WireInput, WireStats, encode,
};
use gridtwin_lmu::node::{Config, Outputs};

use super::Link;

/// Why a board session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HilError {
    /// The link failed (the cause is in the message, not a source, so
    /// that it is said once).
    #[error("the link to the board failed: {0}")]
    Io(std::io::Error),
    /// The board speaks another wire version, or runs another crate
    /// version or another LMU source (build id).
    #[error(
        "the board runs wire version {board_wire} of gridtwin-lmu {board_crate} (build {build_id:08x}); this host speaks wire version {WIRE_VERSION} of gridtwin-lmu {CRATE_VERSION} (build {BUILD_ID:08x}): flash the firmware built from this tree"
    )]
    Mismatch {
        /// The board's wire version.
        board_wire: u16,
        /// The board's crate version.
        board_crate: String,
        /// The board's build id.
        build_id: u32,
    },
    /// No answer after every retry.
    #[error("the board did not answer {what} within {timeout:?}, {tries} times")]
    Timeout {
        /// The request.
        what: String,
        /// Each wait.
        timeout: Duration,
        /// How many sends.
        tries: u32,
    },
    /// The board refused a request.
    #[error("the board refused {what}: {reason:?}")]
    Refused {
        /// The request.
        what: String,
        /// Its reason.
        reason: Refusal,
    },
    /// The board was reset mid-session (it announced itself again).
    #[error("the board was reset (it said hello again) during {what}")]
    Reset {
        /// The request under way.
        what: String,
    },
}

impl From<std::io::Error> for HilError {
    fn from(e: std::io::Error) -> HilError {
        HilError::Io(e)
    }
}

/// How long the handshake listens for a second hello after the first.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Counters of a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoardStats {
    /// Steps answered.
    pub steps: u64,
    /// Requests sent again after a timeout.
    pub retries: u64,
    /// Frames from the board dropped (bad framing, CRC, type, length).
    pub resyncs: u64,
    /// Resets seen (unsolicited hellos).
    pub resets: u64,
    /// Round-trip time of each step [s], in order.
    pub rtts_s: Vec<f64>,
}

/// The host end of one board.
pub struct Board {
    link: Box<dyn Link>,
    decoder: Decoder<MAX_WIRE>,
    pending: std::collections::VecDeque<u8>,
    seq: u32,
    timeout: Duration,
    retries: u32,
    build_id: u32,
    stats: BoardStats,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Board")
            .field("build_id", &self.build_id)
            .field("seq", &self.seq)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a step gave back.
#[derive(Clone, Debug, PartialEq)]
pub struct Stepped {
    /// The LMU's outputs.
    pub outputs: Outputs,
    /// When it next wants a timer [µs].
    pub poll_at_us: Option<u64>,
}

impl Board {
    /// Opens a session on `link`: hello both ways, versions checked. Each
    /// answer is waited for up to `timeout`, and a request is sent at most
    /// `1 + retries` times.
    pub fn connect(
        link: Box<dyn Link>,
        timeout: Duration,
        retries: u32,
    ) -> Result<Board, HilError> {
        let mut b = Board {
            link,
            decoder: Decoder::new(),
            pending: std::collections::VecDeque::new(),
            seq: 0,
            timeout,
            retries,
            build_id: 0,
            stats: BoardStats::default(),
        };
        let answer = b.request("hello", &HostMsg::Hello { wire: WIRE_VERSION }, |m| {
            matches!(m, BoardMsg::Hello { .. })
        })?;
        if let BoardMsg::Hello {
            wire,
            crate_version,
            build_id,
        } = answer
        {
            if wire != WIRE_VERSION
                || crate_version.as_str() != CRATE_VERSION
                || build_id != BUILD_ID
            {
                return Err(HilError::Mismatch {
                    board_wire: wire,
                    board_crate: crate_version.to_string(),
                    build_id,
                });
            }
            b.build_id = build_id;
        }
        b.settle()?;
        Ok(b)
    }

    /// A board announces itself when it boots, and answers a hello with
    /// the same words, so the handshake may bring one hello or two,
    /// depending on whether the host's hello came before the board was
    /// listening. Takes what follows within [`SETTLE`], dropping hellos.
    fn settle(&mut self) -> Result<(), HilError> {
        let deadline = Instant::now() + SETTLE;
        loop {
            while let Some(b) = self.pending.pop_front() {
                let _ = self.decoder.push::<BoardMsg>(b);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let mut buf = [0u8; 512];
            let n = self.link.receive(&mut buf, left)?;
            self.pending.extend(&buf[..n]);
        }
    }

    /// The board firmware's build id.
    pub fn build_id(&self) -> u32 {
        self.build_id
    }

    /// The sequence number of the latest step.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Counters so far.
    pub fn stats(&self) -> &BoardStats {
        &self.stats
    }

    /// Gives the board its LMU.
    pub fn configure(&mut self, config: Config, keys: Keys) -> Result<(), HilError> {
        let id = config.id;
        let answer = self.request("configure", &HostMsg::Configure { config, keys }, |m| {
            matches!(m, BoardMsg::Configured { .. } | BoardMsg::Refused { .. })
        })?;
        match answer {
            BoardMsg::Refused { reason, .. } => Err(HilError::Refused {
                what: format!("the configuration of LMU {id}"),
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// One input at `now_us` [µs]; the LMU's outputs.
    pub fn step(&mut self, now_us: u64, input: WireInput) -> Result<Stepped, HilError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let started = Instant::now();
        let msg = HostMsg::Step { seq, now_us, input };
        let answer = self.request(&format!("step {seq}"), &msg, |m| {
            matches!(m, BoardMsg::Stepped { seq: s, .. } | BoardMsg::Refused { seq: s, .. } if *s == seq)
        })?;
        self.stats.rtts_s.push(started.elapsed().as_secs_f64());
        match answer {
            BoardMsg::Stepped {
                outputs,
                poll_at_us,
                ..
            } => {
                self.stats.steps += 1;
                Ok(Stepped {
                    outputs,
                    poll_at_us,
                })
            }
            BoardMsg::Refused { reason, .. } => Err(HilError::Refused {
                what: format!("step {seq}"),
                reason,
            }),
            _ => unreachable!("only the awaited answers are returned"),
        }
    }

    /// Ends the session (the emulated board exits); the board's own count
    /// of the frames it accepted and dropped, or `None` if the link closed
    /// before its goodbye arrived: an emulated board may exit before its
    /// last bytes leave a pseudo-terminal, and a board that has gone has
    /// done what was asked.
    pub fn shutdown(mut self) -> Result<Option<WireStats>, HilError> {
        match self.request("shutdown", &HostMsg::Shutdown, |m| {
            matches!(m, BoardMsg::Bye { .. })
        }) {
            Ok(BoardMsg::Bye { stats }) => Ok(Some(stats)),
            Ok(_) => unreachable!("only the awaited answer is returned"),
            Err(HilError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `msg` and waits for the answer `awaited` accepts, sending it
    /// again after each timeout, up to the retry limit. Other messages are
    /// dropped. A hello while awaiting anything else is a reset, except
    /// during a configuration: a board that announces itself late (a pty
    /// holds its boot hello until the host opens it) or reboots then has
    /// no state to lose, so the configuration is sent again, within the
    /// retry limit.
    fn request(
        &mut self,
        what: &str,
        msg: &HostMsg,
        awaited: impl Fn(&BoardMsg) -> bool,
    ) -> Result<BoardMsg, HilError> {
        let mut out = [0u8; MAX_WIRE];
        let n = encode(msg, &mut out).map_err(|_| {
            HilError::Io(std::io::Error::other(format!(
                "{what} does not fit the wire"
            )))
        })?;
        let is_hello = matches!(msg, HostMsg::Hello { .. });
        let is_configure = matches!(msg, HostMsg::Configure { .. });
        'attempts: for attempt in 0..=self.retries {
            if attempt > 0 {
                self.stats.retries += 1;
            }
            self.link.send(&out[..n])?;
            let deadline = Instant::now() + self.timeout;
            loop {
                while let Some(b) = self.pending.pop_front() {
                    let before = self.decoder.stats();
                    let got = self.decoder.push::<BoardMsg>(b);
                    let after = self.decoder.stats();
                    let dropped =
                        |s: WireStats| u64::from(s.framing + s.crc + s.decode + s.overflow);
                    self.stats.resyncs += dropped(after) - dropped(before);
                    match got {
                        Some(m) if awaited(&m) => return Ok(m),
                        Some(BoardMsg::Hello { .. }) if is_configure => continue 'attempts,
                        Some(BoardMsg::Hello { .. }) if !is_hello => {
                            self.stats.resets += 1;
                            self.pending.clear();
                            return Err(HilError::Reset {
                                what: what.to_string(),
                            });
                        }
                        _ => {}
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let mut buf = [0u8; 512];
                let got = self.link.receive(&mut buf, left)?;
                self.pending.extend(&buf[..got]);
            }
        }
        Err(HilError::Timeout {
            what: what.to_string(),
            timeout: self.timeout,
            tries: self.retries + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A board in-process behind a lossy link: it answers through the
    /// board crate's own session logic, re-implemented here minimally:
    /// the first answer to every step whose seq is in `lose` is lost, and
    /// `noise` is sent before every answer.
    struct FakeBoard {
        lmu: Option<gridtwin_lmu::Lmu>,
        decoder: Decoder<MAX_WIRE>,
        rx: Arc<Mutex<Vec<u8>>>,
        lose: Vec<u32>,
        noise: Vec<u8>,
        last: Option<(u32, Vec<u8>)>,
        executed: Arc<Mutex<u32>>,
        build_id: u32,
    }

    impl Link for FakeBoard {
        fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            for &b in bytes {
                let Some(msg) = self.decoder.push::<HostMsg>(b) else {
                    continue;
                };
                let answer = match msg {
                    HostMsg::Hello { .. } => BoardMsg::hello(self.build_id),
                    HostMsg::Configure { config, keys } => {
                        let id = config.id;
                        self.lmu = Some(gridtwin_lmu::Lmu::new(config, keys));
                        BoardMsg::Configured { id }
                    }
                    HostMsg::Step { seq, now_us, input } => {
                        if let Some((s, bytes)) = &self.last
                            && *s == seq
                        {
                            let bytes = bytes.clone();
                            self.rx.lock().unwrap().extend(bytes);
                            continue;
                        }
                        let lmu = self.lmu.as_mut().unwrap();
                        let mut out = Outputs::default();
                        lmu.handle(
                            gridtwin_lmu::Instant::from_micros(now_us),
                            input.as_input(),
                            &mut out,
                        );
                        *self.executed.lock().unwrap() += 1;
                        let m = BoardMsg::stepped(seq, out, lmu.poll_at());
                        let mut buf = [0u8; MAX_WIRE];
                        let n = encode(&m, &mut buf).unwrap();
                        self.last = Some((seq, buf[..n].to_vec()));
                        if let Some(k) = self.lose.iter().position(|&s| s == seq) {
                            self.lose.remove(k);
                            continue;
                        }
                        m
                    }
                    HostMsg::Shutdown => BoardMsg::Bye {
                        stats: self.decoder.stats(),
                    },
                };
                let mut buf = [0u8; MAX_WIRE];
                let n = encode(&answer, &mut buf).unwrap();
                let mut rx = self.rx.lock().unwrap();
                rx.extend(&self.noise);
                rx.extend(&buf[..n]);
            }
            Ok(())
        }

        fn receive(&mut self, buf: &mut [u8], _timeout: Duration) -> std::io::Result<usize> {
            let mut rx = self.rx.lock().unwrap();
            let n = rx.len().min(buf.len());
            buf[..n].copy_from_slice(&rx[..n]);
            rx.drain(..n);
            Ok(n)
        }
    }

    fn fake_board(lose: Vec<u32>, noise: Vec<u8>) -> FakeBoard {
        FakeBoard {
            lmu: None,
            decoder: Decoder::new(),
            rx: Arc::new(Mutex::new(Vec::new())),
            lose,
            noise,
            last: None,
            executed: Arc::new(Mutex::new(0)),
            build_id: BUILD_ID,
        }
    }

    fn fake(lose: Vec<u32>, noise: Vec<u8>) -> (Box<dyn Link>, Arc<Mutex<u32>>) {
        let f = fake_board(lose, noise);
        let executed = f.executed.clone();
        (Box::new(f), executed)
    }

    /// Steps whose answers are lost are sent again and answered from the
    /// board's cache: every step is carried out once, the retries are
    /// counted, and the outputs are those of an LMU stepped once per input.
    /// Noise before every answer is dropped and counted, and the session
    /// goes on.
    #[test]
    fn lost_answers_are_retried_once_each_and_noise_is_dropped() {
        let (link, executed) = fake(vec![2, 3], vec![0, 0x13, 0x37, 0xFF, 0]);
        let mut b = Board::connect(link, Duration::from_millis(1), 3).unwrap();
        assert_eq!(b.build_id(), BUILD_ID);
        let cfg = Config::new(4);
        let keys = Keys {
            mesh: [1; 32],
            gateway: [2; 32],
        };
        b.configure(cfg.clone(), keys).unwrap();
        let mut twin = gridtwin_lmu::Lmu::new(cfg, keys);
        for k in 0..5u64 {
            let input = WireInput::Timer;
            let got = b.step(k * 1_000_000, input.clone()).unwrap();
            let mut out = Outputs::default();
            twin.handle(
                gridtwin_lmu::Instant::from_micros(k * 1_000_000),
                input.as_input(),
                &mut out,
            );
            assert_eq!(got.outputs, out, "step {k}");
        }
        assert_eq!(*executed.lock().unwrap(), 5);
        assert_eq!(b.stats().retries, 2);
        assert_eq!(b.stats().steps, 5);
        assert!(b.stats().resyncs >= 5, "{:?}", b.stats());
        assert_eq!(b.stats().rtts_s.len(), 5);
    }

    /// A board built from other LMU source (another build id) is refused
    /// at the handshake, with both ids in the message.
    #[test]
    fn a_board_with_another_build_id_is_refused() {
        // The same crate and wire version, another source.
        let mut f = fake_board(vec![], vec![]);
        f.build_id = BUILD_ID ^ 1;
        let e = Board::connect(Box::new(f), Duration::from_millis(1), 0).unwrap_err();
        assert!(matches!(e, HilError::Mismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{:08x}", BUILD_ID ^ 1))
                && msg.contains(&format!("{BUILD_ID:08x}")),
            "{msg}"
        );
    }

    /// A board that never answers fails the request after its retries,
    /// naming it; one that says hello mid-step was reset.
    #[test]
    fn silence_times_out_and_a_second_hello_is_a_reset() {
        struct Mute;
        impl Link for Mute {
            fn send(&mut self, _: &[u8]) -> std::io::Result<()> {
                Ok(())
            }
            fn receive(&mut self, _: &mut [u8], t: Duration) -> std::io::Result<usize> {
                std::thread::sleep(t);
                Ok(0)
            }
        }
        let e = Board::connect(Box::new(Mute), Duration::from_millis(2), 2).unwrap_err();
        assert!(
            matches!(e, HilError::Timeout { tries: 3, .. }) && e.to_string().contains("hello"),
            "{e}"
        );

        let (link, _) = fake(vec![], vec![]);
        let mut b = Board::connect(link, Duration::from_millis(1), 1).unwrap();
        let keys = Keys {
            mesh: [1; 32],
            gateway: [2; 32],
        };
        b.configure(Config::new(4), keys).unwrap();
        // A board that reboots announces itself: inject its hello.
        let mut hello = [0u8; MAX_WIRE];
        let n = encode(&BoardMsg::hello(BUILD_ID), &mut hello).unwrap();
        b.pending.extend(&hello[..n]);
        let e = b.step(0, WireInput::Timer).unwrap_err();
        assert!(matches!(e, HilError::Reset { .. }), "{e}");
        assert_eq!(b.stats().resets, 1);
        // A hello during a configuration is a late boot hello, or a
        // reboot that lost nothing: the configuration is sent again.
        b.pending.extend(&hello[..n]);
        b.configure(Config::new(4), keys).unwrap();
        assert_eq!((b.stats().resets, b.stats().retries), (1, 1));
        b.step(0, WireInput::Timer).unwrap();
    }
}
