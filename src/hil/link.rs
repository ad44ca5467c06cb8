//! Byte links to a board, and the `--board` specification.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A byte link to a board.
pub trait Link: Send {
    /// Sends every byte of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Waits up to `timeout` for bytes; returns how many it put in `buf`
    /// (0 when none came in time).
    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

/// A read that timed out is no error here: it read nothing.
fn nothing_on_timeout(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(0)
        }
        r => r,
    }
}

/// A socket read: 0 bytes is the board closing the link; a timeout reads
/// nothing.
fn timed(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the board closed the link",
        )),
        r => nothing_on_timeout(r),
    }
}

/// A zero timeout means "block" to the standard library's sockets; a
/// microsecond is as good as none here.
fn at_least_a_microsecond(t: Duration) -> Duration {
    t.max(Duration::from_micros(1))
}

/// Sockets: a read timeout per wait.
macro_rules! socket_link {
    ($($t:ty),*) => {$(
        impl Link for $t {
            fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
                self.write_all(bytes)
            }

            fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
                self.set_read_timeout(Some(at_least_a_microsecond(timeout)))?;
                timed(self.read(buf))
            }
        }
    )*};
}

socket_link!(UnixStream, TcpStream);

/// A serial port (a board's UART behind a USB bridge, or QEMU's pty).
pub struct Serial(Box<dyn serialport::SerialPort>);

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Serial").field(&self.0.name()).finish()
    }
}

impl Serial {
    /// Opens `path` at `baud` (8N1, no flow control).
    pub fn open(path: &str, baud: u32) -> io::Result<Serial> {
        let port = serialport::new(path, baud)
            .timeout(Duration::from_millis(10))
            .open()
            .map_err(io::Error::other)?;
        Ok(Serial(port))
    }
}

impl Link for Serial {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // No flush: the kernel sends what the tty queued, and waiting for
        // the queue to drain (tcdrain) costs a round trip ~5x longer over
        // QEMU's pty.
        self.0.write_all(bytes)
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0
            .set_timeout(at_least_a_microsecond(timeout))
            .map_err(io::Error::other)?;
        // A serial port reads 0 bytes at its timeout, not at an end.
        nothing_on_timeout(self.0.read(buf))
    }
}

/// Where the board is, as `--board` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardSpec {
    /// `serial:PATH[@BAUD]` (default 1 000 000 baud, the firmware's).
    Serial {
        /// The device, e.g. `/dev/ttyACM0`.
        path: String,
        /// Its speed [baud].
        baud: u32,
    },
    /// `tcp:HOST:PORT`.
    Tcp(String),
    /// `unix:PATH`: a Unix socket (QEMU's socket chardev).
    Unix(PathBuf),
    /// `qemu` (its UART on a Unix socket), `qemu:pty` (on a
    /// pseudo-terminal, opened as a serial port, as real boards are) or
    /// `qemu:tcp` (on a TCP socket, as a board behind a serial server):
    /// the emulated board, started and stopped by gridtwin.
    Qemu(super::qemu::Uart),
}

/// The firmware's UART speed [baud].
pub const DEFAULT_BAUD: u32 = 1_000_000;

impl std::str::FromStr for BoardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<BoardSpec, String> {
        let help = "write serial:PATH[@BAUD], tcp:HOST:PORT, unix:PATH, qemu, qemu:pty or qemu:tcp";
        match s {
            "qemu" => return Ok(BoardSpec::Qemu(super::qemu::Uart::Socket)),
            "qemu:pty" => return Ok(BoardSpec::Qemu(super::qemu::Uart::Pty)),
            "qemu:tcp" => return Ok(BoardSpec::Qemu(super::qemu::Uart::Tcp)),
            _ => {}
        }
        let (kind, rest) = s.split_once(':').ok_or_else(|| format!("`{s}`: {help}"))?;
        if rest.is_empty() {
            return Err(format!("`{s}`: {help}"));
        }
        match kind {
            "serial" => {
                let (path, baud) = match rest.rsplit_once('@') {
                    Some((p, b)) => (
                        p,
                        b.parse::<u32>()
                            .ok()
                            .filter(|&b| b > 0)
                            .ok_or_else(|| format!("`{b}` is not a baud rate"))?,
                    ),
                    None => (rest, DEFAULT_BAUD),
                };
                Ok(BoardSpec::Serial {
                    path: path.to_string(),
                    baud,
                })
            }
            "tcp"
                if rest
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
            {
                Ok(BoardSpec::Tcp(rest.to_string()))
            }
            "unix" => Ok(BoardSpec::Unix(PathBuf::from(rest))),
            _ => Err(format!("`{s}`: {help}")),
        }
    }
}

impl BoardSpec {
    /// Opens the link (not for [`BoardSpec::Qemu`], which
    /// [`super::qemu::Qemu::start`] opens).
    pub fn open(&self) -> io::Result<Box<dyn Link>> {
        Ok(match self {
            BoardSpec::Serial { path, baud } => Box::new(Serial::open(path, *baud)?),
            BoardSpec::Tcp(addr) => {
                let s = TcpStream::connect(addr)?;
                // Without it, Nagle holds each small request ~40 ms.
                s.set_nodelay(true)?;
                Box::new(s)
            }
            BoardSpec::Unix(p) => Box::new(UnixStream::connect(p)?),
            BoardSpec::Qemu(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the qemu board is started, not opened",
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_specs_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(
            "qemu".parse(),
            Ok(BoardSpec::Qemu(crate::hil::qemu::Uart::Socket))
        );
        assert_eq!(
            "qemu:pty".parse(),
            Ok(BoardSpec::Qemu(crate::hil::qemu::Uart::Pty))
        );
        assert_eq!(
            "qemu:tcp".parse(),
            Ok(BoardSpec::Qemu(crate::hil::qemu::Uart::Tcp))
        );
        assert_eq!(
            "serial:/dev/ttyACM0".parse(),
            Ok(BoardSpec::Serial {
                path: "/dev/ttyACM0".into(),
                baud: DEFAULT_BAUD
            })
        );
        assert_eq!(
            "serial:/dev/ttyUSB1@115200".parse(),
            Ok(BoardSpec::Serial {
                path: "/dev/ttyUSB1".into(),
                baud: 115_200
            })
        );
        assert_eq!(
            "tcp:127.0.0.1:4000".parse(),
            Ok(BoardSpec::Tcp("127.0.0.1:4000".into()))
        );
        assert_eq!(
            "unix:/tmp/hil.sock".parse(),
            Ok(BoardSpec::Unix("/tmp/hil.sock".into()))
        );
        for bad in [
            "",
            "usb",
            "tcp:host",
            "tcp::80",
            "qemu:usb",
            "serial:",
            "serial:/dev/x@fast",
            "x:y",
        ] {
            let e = bad.parse::<BoardSpec>().unwrap_err();
            assert!(
                e.contains("serial:PATH") || e.contains("baud"),
                "{bad}: {e}"
            );
        }
    }
}
