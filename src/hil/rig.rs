//! The boards of one HIL run: started (QEMU) or opened (serial, TCP,
//! Unix), shaken hands with, paired with their LMUs, and handed to the
//! world before its first event. The rig is the run's [`Driver`]: it
//! attaches the boards in [`Driver::start`]; the LMU host then steps them
//! in lock-step with simulated time, and ends their sessions at the end of
//! the run. QEMU processes live as long as the rig and are stopped by
//! their pids when it is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::qemu::{DEFAULT_IMAGE, Qemu};
use super::{Board, BoardSpec, HilError, Link, OnReset};
use crate::kernel::Simulation;
use crate::world::{Driver, Event, World, WorldError};

/// How to set up the boards of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RigOptions {
    /// The boards: one per LMU, in the order of `lmus`; or one `qemu` spec
    /// for every LMU (an emulated board each).
    pub boards: Vec<BoardSpec>,
    /// The LMUs (mesh node indices) the boards run.
    pub lmus: Vec<u32>,
    /// The emulated board's firmware image.
    pub firmware: PathBuf,
    /// What a board reset mid-run does.
    pub on_reset: OnReset,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times a request is sent again after a timeout.
    pub retries: u32,
}

/// Default wait for one answer: far above a step's round trip over QEMU
/// (about a millisecond) or a 1 Mbaud UART (a few), and far below a human's
/// patience.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default retries after a timeout.
pub const DEFAULT_RETRIES: u32 = 3;

/// The emulated board's image: `path` if given, else [`DEFAULT_IMAGE`]
/// under the current directory, else under this crate's source tree (so a
/// development build finds it from anywhere).
pub fn firmware_image(path: Option<&Path>) -> PathBuf {
    if let Some(p) = path {
        return p.to_path_buf();
    }
    let here = PathBuf::from(DEFAULT_IMAGE);
    if here.is_file() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_IMAGE);
    if built.is_file() { built } else { here }
}

/// Why a rig could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RigError {
    /// The flags do not make a rig (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A board could not be reached or refused the session (exit 1).
    #[error("board {spec} for LMU {lmu}: {cause}")]
    Board {
        /// The board, as given.
        spec: String,
        /// Its LMU.
        lmu: u32,
        /// Why (said in the message).
        cause: HilError,
    },
}

/// The boards of a run, before and during it.
pub struct Rig {
    qemus: Vec<Qemu>,
    boards: Vec<(u32, Board)>,
    on_reset: OnReset,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("qemus", &self.qemus.len())
            .field("boards", &self.boards)
            .field("on_reset", &self.on_reset)
            .finish()
    }
}

/// The boards paired with their LMUs: one spec per LMU, or a single
/// `qemu` spec for all. No LMU given means LMU 1.
pub fn pair(boards: &[BoardSpec], lmus: &[u32]) -> Result<Vec<(u32, BoardSpec)>, RigError> {
    let lmus = if lmus.is_empty() { &[1][..] } else { lmus };
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = lmus.iter().find(|&&n| !seen.insert(n)) {
        return Err(RigError::Usage(format!("--lmu {dup} is given twice")));
    }
    match boards {
        [] => Err(RigError::Usage("give a --board".into())),
        [one @ BoardSpec::Qemu(_)] => Ok(lmus.iter().map(|&n| (n, one.clone())).collect()),
        _ if boards.len() == lmus.len() => Ok(lmus.iter().copied().zip(boards.to_vec()).collect()),
        _ => Err(RigError::Usage(format!(
            "{} boards for {} LMUs: give one --board per --lmu (in the same order), or a single --board qemu for all",
            boards.len(),
            lmus.len()
        ))),
    }
}

impl Rig {
    /// Starts or opens every board and shakes hands with it.
    pub fn connect(o: &RigOptions) -> Result<Rig, RigError> {
        let pairs = pair(&o.boards, &o.lmus)?;
        if pairs.iter().any(|(_, b)| matches!(b, BoardSpec::Qemu(_))) && !o.firmware.is_file() {
            return Err(RigError::Usage(format!(
                "no firmware image at {} (build it: cd hardware/qemu-m4 && cargo build --release; or give --firmware PATH)",
                o.firmware.display()
            )));
        }
        let mut rig = Rig {
            qemus: Vec::new(),
            boards: Vec::new(),
            on_reset: o.on_reset,
        };
        for (lmu, spec) in pairs {
            let fail = |cause: HilError| RigError::Board {
                spec: spec_name(&spec),
                lmu,
                cause,
            };
            let link = match &spec {
                BoardSpec::Qemu(uart) => {
                    let (q, link) =
                        Qemu::start(&o.firmware, *uart).map_err(|e| fail(HilError::Io(e)))?;
                    rig.qemus.push(q);
                    link
                }
                other => other.open().map_err(|e| fail(HilError::Io(e)))?,
            };
            let board = Board::connect(link, o.timeout, o.retries).map_err(fail)?;
            rig.boards.push((lmu, board));
        }
        Ok(rig)
    }

    /// A rig of boards already connected (e.g. over a link of one's own).
    pub fn from_boards(boards: Vec<(u32, Board)>, on_reset: OnReset) -> Rig {
        Rig {
            qemus: Vec::new(),
            boards,
            on_reset,
        }
    }

    /// A rig of links: shakes hands over each.
    pub fn from_links(
        links: Vec<(u32, Box<dyn Link>)>,
        on_reset: OnReset,
        timeout: Duration,
        retries: u32,
    ) -> Result<Rig, HilError> {
        let mut boards = Vec::new();
        for (n, link) in links {
            boards.push((n, Board::connect(link, timeout, retries)?));
        }
        Ok(Rig::from_boards(boards, on_reset))
    }

    /// Keeps a running QEMU with the rig (stopped when the rig is dropped).
    pub fn keep(&mut self, qemu: Qemu) {
        self.qemus.push(qemu);
    }

    /// After the run (whose end closed every board's session): waits up
    /// to `timeout` for each QEMU to exit; their exit codes (`None`: still
    /// running, then stopped).
    pub fn finish(mut self, timeout: Duration) -> Vec<Option<i32>> {
        self.qemus.iter_mut().map(|q| q.wait(timeout)).collect()
    }
}

/// How a spec is written on the command line.
fn spec_name(spec: &BoardSpec) -> String {
    match spec {
        BoardSpec::Serial { path, baud } => format!("serial:{path}@{baud}"),
        BoardSpec::Tcp(a) => format!("tcp:{a}"),
        BoardSpec::Unix(p) => format!("unix:{}", p.display()),
        BoardSpec::Qemu(super::qemu::Uart::Socket) => "qemu".into(),
        BoardSpec::Qemu(super::qemu::Uart::Pty) => "qemu:pty".into(),
        BoardSpec::Qemu(super::qemu::Uart::Tcp) => "qemu:tcp".into(),
    }
}

impl Driver for Rig {
    fn start(&mut self, world: &mut World, _sim: &mut Simulation<Event>) -> Result<(), WorldError> {
        for (n, board) in self.boards.drain(..) {
            world.attach_board(n, board, self.on_reset)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hil::qemu::Uart;

    #[test]
    fn boards_pair_with_lmus_one_each_or_one_qemu_for_all() {
        let q = BoardSpec::Qemu(Uart::Socket);
        let s = |p: &str| BoardSpec::Serial {
            path: p.into(),
            baud: 115_200,
        };
        assert_eq!(
            pair(std::slice::from_ref(&q), &[]).unwrap(),
            vec![(1, q.clone())]
        );
        assert_eq!(
            pair(std::slice::from_ref(&q), &[3, 4]).unwrap(),
            vec![(3, q.clone()), (4, q.clone())]
        );
        assert_eq!(
            pair(&[s("/a"), q.clone()], &[7, 2]).unwrap(),
            vec![(7, s("/a")), (2, q)]
        );
        for (boards, lmus, says) in [
            (vec![s("/a")], vec![1, 2], "one --board per --lmu"),
            (vec![], vec![1], "give a --board"),
            (vec![s("/a"), s("/b")], vec![5, 5], "--lmu 5 is given twice"),
        ] {
            let e = pair(&boards, &lmus).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
