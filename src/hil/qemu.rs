//! The emulated board: QEMU's `mps2-an386` (a Cortex-M4F with a CMSDK
//! UART) running the `hardware/qemu-m4` image, its UART0 on a Unix socket
//! in a temporary folder, or on a pseudo-terminal to exercise the serial
//! path that real boards use. gridtwin builds nothing at run time: the
//! image is a path ([`DEFAULT_IMAGE`] unless given). QEMU is stopped by
//! its pid when the [`Qemu`] is dropped, whatever happened.

use std::io::{self, BufRead};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release image of `hardware/qemu-m4`, relative to the workspace
/// root (`cd hardware/qemu-m4 && cargo build --release` makes it).
pub const DEFAULT_IMAGE: &str =
    "hardware/qemu-m4/target/thumbv7em-none-eabihf/release/gridtwin-qemu-m4";

/// How long QEMU may take to open its end of the link.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running QEMU.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    dir: tempfile::TempDir,
}

/// Where the board's UART goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uart {
    /// A Unix socket that QEMU serves (the fastest, and the default).
    Socket,
    /// A pseudo-terminal, opened as a serial port.
    Pty,
    /// A TCP socket on 127.0.0.1 that QEMU serves, on a free port: the
    /// path of a board behind a serial-to-TCP server.
    Tcp,
}

/// `qemu-system-arm` on the `PATH` (or in `/usr/bin`).
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("qemu-system-arm"))
        .find(|p| p.is_file())
}

impl Qemu {
    /// Starts QEMU on `image` and connects to its UART.
    ///
    /// The command line is the one measured best on this kind of machine:
    /// `-icount shift=auto` (without it the first request after boot can
    /// stall for a second) and semihosting on (the firmware exits through
    /// it on `Shutdown`; without it, that call would hang).
    pub fn start(image: &Path, uart: Uart) -> io::Result<(Qemu, Box<dyn super::Link>)> {
        let qemu = binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "qemu-system-arm not found (Debian: apt-get install qemu-system-arm)",
            )
        })?;
        if !image.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no firmware image at {} (build it: cd hardware/qemu-m4 && cargo build --release)",
                    image.display()
                ),
            ));
        }
        let dir = tempfile::tempdir()?;
        let sock = dir.path().join("hil.sock");
        // A free port: the system's pick for a listener, closed at once
        // for QEMU to take.
        let port = match uart {
            Uart::Tcp => std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
            _ => 0,
        };
        let mut cmd = Command::new(qemu);
        cmd.args(["-M", "mps2-an386", "-cpu", "cortex-m4", "-display", "none"])
            .args(["-monitor", "none", "-icount", "shift=auto"])
            .args(["-semihosting-config", "enable=on,target=native"]);
        match uart {
            Uart::Socket => {
                cmd.arg("-chardev")
                    .arg(format!(
                        "socket,id=hil,path={},server=on,wait=on",
                        sock.display()
                    ))
                    .args(["-serial", "chardev:hil"]);
            }
            Uart::Pty => {
                cmd.args(["-serial", "pty"]);
            }
            Uart::Tcp => {
                cmd.arg("-chardev")
                    .arg(format!(
                        "socket,id=hil,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on"
                    ))
                    .args(["-serial", "chardev:hil"]);
            }
        }
        let child = cmd
            .arg("-kernel")
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("qemu.err"))?)
            .spawn()?;
        let mut q = Qemu { child, dir };
        // QEMU's stdout: the pty's name (in pty mode), then whatever the
        // firmware prints through semihosting; kept in `qemu.out`.
        let pty = q.follow_stdout()?;
        let link: Box<dyn super::Link> = match uart {
            Uart::Socket | Uart::Tcp => {
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    let link: Option<Box<dyn super::Link>> = match uart {
                        Uart::Tcp => super::BoardSpec::Tcp(format!("127.0.0.1:{port}"))
                            .open()
                            .ok(),
                        _ => UnixStream::connect(&sock)
                            .ok()
                            .map(|s| Box::new(s) as Box<dyn super::Link>),
                    };
                    if let Some(link) = link {
                        break link;
                    }
                    if let Ok(Some(status)) = q.child.try_wait() {
                        return Err(io::Error::other(format!(
                            "QEMU exited with {status} before listening"
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("QEMU did not listen within {START_TIMEOUT:?}"),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Uart::Pty => {
                let path = pty.recv_timeout(START_TIMEOUT).map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "QEMU did not name its pty in time")
                })?;
                Box::new(super::link::Serial::open(&path, super::link::DEFAULT_BAUD)?)
            }
        };
        Ok((q, link))
    }

    /// Copies QEMU's stdout into `qemu.out` on a thread; the receiver
    /// gets the pty's path when QEMU names it ("char device redirected to
    /// /dev/pts/N (label serial0)").
    fn follow_stdout(&mut self) -> io::Result<std::sync::mpsc::Receiver<String>> {
        use std::io::Write as _;
        let out = self
            .child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("QEMU's stdout is gone"))?;
        let mut file = std::fs::File::create(self.dir.path().join("qemu.out"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("redirected to ").nth(1) {
                    let path = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(path);
                }
                let _ = writeln!(file, "{line}");
            }
        });
        Ok(rx)
    }

    /// Waits up to `timeout` for QEMU to exit; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// What the firmware printed through semihosting.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("qemu.out")).unwrap_or_default()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
