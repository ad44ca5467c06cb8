//! The progress bar: simulated time against the scenario's duration.

use indicatif::{ProgressBar, ProgressStyle};

use crate::kernel::{EventId, Handler, Observer, SimDuration, SimTime};

/// Events between bar updates: keeps the bar off the hot path.
const UPDATE_EVERY: u64 = 4096;

/// An observer that shows simulated time on an indicatif bar.
#[derive(Debug)]
pub(crate) struct SimProgress {
    bar: ProgressBar,
    seen: u64,
}

impl SimProgress {
    /// A bar over `duration`, drawn only when `show` is true.
    pub(crate) fn new(duration: SimDuration, show: bool) -> SimProgress {
        let bar = if show {
            let bar = ProgressBar::new(duration.as_nanos() / 1_000_000_000);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {msg} (ETA {eta})",
                )
                .expect("static template is valid"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        SimProgress { bar, seen: 0 }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn show(&self, now: SimTime) {
        self.bar.set_position(now.as_nanos() / 1_000_000_000);
        self.bar.set_message(format!("sim {now}"));
    }
}

impl<H: Handler> Observer<H> for SimProgress {
    fn on_event(&mut self, id: EventId, _event: &H::Event) {
        self.seen += 1;
        if self.seen.is_multiple_of(UPDATE_EVERY) && !self.bar.is_hidden() {
            self.show(id.time());
        }
    }
}

/// A bar over `runs` runs of a sweep: runs done, their rate, and an ETA;
/// hidden unless `show`.
pub(crate) fn runs_bar(runs: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(runs);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} runs ({per_sec}, ETA {eta})",
        )
        .expect("static template is valid"),
    );
    bar
}
