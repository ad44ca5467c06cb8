//! The run loop: a single-threaded scheduler with typed dispatch.
//!
//! A model (or a world of models) implements [`Handler`] for one event type.
//! [`Simulation::run`] pops events in `(time, insertion sequence)` order and
//! hands each to the handler together with a [`Context`], through which the
//! handler reads the clock and schedules or cancels further events. Dispatch is
//! static (`H::handle` is monomorphised), so the loop costs one queue pop and
//! one direct call per event.
//!
//! ```text
//!        ┌───────────── Simulation::run ─────────────┐
//!        │  loop:                                    │
//!        │    peek next (t, id)   t > stop? ─► stop  │
//!        │    budget spent?  ─────────────────► stop │
//!        │    pop; now = t                           │
//!        │    observer.on_event(id, &ev)             │
//!        │    handler.handle(ev, &mut Context)       │──► schedule / cancel
//!        │    observer.after_event(now, &handler)    │
//!        └───────────────────────────────────────────┘
//! ```
//!
//! # Ordering guarantees
//! - Events run in strictly increasing `(time, seq)` order, where `seq` is the
//!   order in which they were scheduled. Same-time events therefore run in the
//!   order they were scheduled (FIFO), whoever scheduled them.
//! - An event scheduled *at the current time* from inside a handler runs after
//!   every event already pending at that time, within the same instant.
//! - A cancelled event never runs.
//! - Events at exactly the stop time still run: the stop time is inclusive.
//!
//! # Hooks
//! Metric sinks observe the run through an [`Observer`]: they see each event
//! before it is handled and the handler's state after it, and are told when
//! the run finishes. Observers cannot schedule; they only watch, so adding one
//! never changes the results.

use super::queue::{EventId, EventQueue, ScheduleError};
use super::time::{SimDuration, SimTime};

/// A model, or a world of models, that handles one type of event.
pub trait Handler {
    /// The events this handler consumes.
    type Event;

    /// Handles one event at `cx.now()`.
    fn handle(&mut self, event: Self::Event, cx: &mut Context<'_, Self::Event>);
}

/// Watches a run without taking part in it: the hook for metric sinks.
///
/// Every method has an empty default, so a sink implements only what it needs.
pub trait Observer<H: Handler> {
    /// Called before `event` is handled; `id.time()` is the current time and
    /// `id.seq()` its place in the total order.
    fn on_event(&mut self, _id: EventId, _event: &H::Event) {}
    /// Called after an event has been handled, with the handler's new state.
    fn after_event(&mut self, _now: SimTime, _handler: &H) {}
    /// Called once when the run stops.
    fn on_finish(&mut self, _stats: &RunStats, _handler: &H) {}
}

/// The observer that watches nothing.
impl<H: Handler> Observer<H> for () {}

/// Two observers side by side.
impl<H: Handler, A: Observer<H>, B: Observer<H>> Observer<H> for (A, B) {
    fn on_event(&mut self, id: EventId, event: &H::Event) {
        self.0.on_event(id, event);
        self.1.on_event(id, event);
    }
    fn after_event(&mut self, now: SimTime, handler: &H) {
        self.0.after_event(now, handler);
        self.1.after_event(now, handler);
    }
    fn on_finish(&mut self, stats: &RunStats, handler: &H) {
        self.0.on_finish(stats, handler);
        self.1.on_finish(stats, handler);
    }
}

/// The handler's view of the scheduler during one event.
#[derive(Debug)]
pub struct Context<'a, E> {
    queue: &'a mut EventQueue<E>,
    now: SimTime,
    current: EventId,
    events: u64,
    halt: &'a mut bool,
}

impl<E> Context<'_, E> {
    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The id of the event being handled.
    pub fn current(&self) -> EventId {
        self.current
    }

    /// Events handled so far in this run, the current one included.
    pub fn events_handled(&self) -> u64 {
        self.events
    }

    /// Events pending in the future-event list (the current one excluded).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Schedules `event` at absolute time `at`, which must not be in the past.
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> Result<EventId, ScheduleError> {
        self.queue.schedule(at, event)
    }

    /// Schedules `event` after `delay`, or fails if that overflows the clock.
    pub fn schedule_in(&mut self, delay: SimDuration, event: E) -> Result<EventId, ScheduleError> {
        let at = self.now.checked_add(delay).ok_or(ScheduleError::Overflow {
            now: self.now,
            delay,
        })?;
        self.queue.schedule(at, event)
    }

    /// Cancels a pending event; returns whether it was pending.
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.queue.cancel(id)
    }

    /// Ends the run after this event (e.g. a model hit an error it cannot
    /// continue from); the run stops with [`StopReason::Halted`].
    pub fn halt(&mut self) {
        *self.halt = true;
    }
}

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Last simulated time at which events run (inclusive).
    pub stop_at: SimTime,
    /// Most events to handle, or `None` for no budget.
    pub max_events: Option<u64>,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The next event lay beyond the stop time (or none was left before it).
    StopTime,
    /// The event budget was spent.
    EventBudget,
    /// The future-event list ran empty before the stop time.
    Exhausted,
    /// A handler halted the run ([`Context::halt`]).
    Halted,
}

impl StopReason {
    /// A short stable name for results files.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::StopTime => "stop_time",
            StopReason::EventBudget => "event_budget",
            StopReason::Exhausted => "exhausted",
            StopReason::Halted => "halted",
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunStats {
    /// Events handled.
    pub events: u64,
    /// The clock at the end of the run: the stop time, or the last event's
    /// time if the budget ran out first.
    pub end: SimTime,
    /// Why the run stopped.
    pub reason: StopReason,
}

/// An observer borrowed for one run.
impl<H: Handler, O: Observer<H>> Observer<H> for &mut O {
    fn on_event(&mut self, id: EventId, event: &H::Event) {
        (**self).on_event(id, event);
    }
    fn after_event(&mut self, now: SimTime, handler: &H) {
        (**self).after_event(now, handler);
    }
    fn on_finish(&mut self, stats: &RunStats, handler: &H) {
        (**self).on_finish(stats, handler);
    }
}

/// A future-event list and a clock: the kernel's scheduler.
#[derive(Debug)]
pub struct Simulation<E> {
    queue: EventQueue<E>,
    now: SimTime,
    events: u64,
}

impl<E> Default for Simulation<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Simulation<E> {
    /// An empty simulation at time zero.
    pub fn new() -> Self {
        Self::with_queue(EventQueue::new())
    }

    /// An empty simulation over a given future-event list (e.g. one with
    /// tuned thresholds).
    pub fn with_queue(queue: EventQueue<E>) -> Self {
        Simulation {
            queue,
            now: SimTime::ZERO,
            events: 0,
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events handled so far.
    pub fn events_handled(&self) -> u64 {
        self.events
    }

    /// Events pending.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Schedules `event` at `at`, from outside any handler (initial events).
    pub fn schedule_at(&mut self, at: SimTime, event: E) -> Result<EventId, ScheduleError> {
        self.queue.schedule(at, event)
    }

    /// Cancels a pending event; returns whether it was pending.
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.queue.cancel(id)
    }

    /// Runs events through `handler` until a limit is reached; `observer`
    /// watches. May be called again to continue with new limits.
    pub fn run<H, O>(&mut self, handler: &mut H, limits: RunLimits, observer: &mut O) -> RunStats
    where
        H: Handler<Event = E>,
        O: Observer<H>,
    {
        let start_events = self.events;
        let reason = loop {
            if limits
                .max_events
                .is_some_and(|max| self.events - start_events >= max)
            {
                break StopReason::EventBudget;
            }
            let Some((id, _)) = self.queue.peek() else {
                break StopReason::Exhausted;
            };
            if id.time() > limits.stop_at {
                break StopReason::StopTime;
            }
            let Some((id, event)) = self.queue.pop() else {
                break StopReason::Exhausted;
            };
            self.now = id.time();
            self.events += 1;
            observer.on_event(id, &event);
            let mut halt = false;
            let mut cx = Context {
                queue: &mut self.queue,
                now: self.now,
                current: id,
                events: self.events,
                halt: &mut halt,
            };
            handler.handle(event, &mut cx);
            observer.after_event(self.now, handler);
            if halt {
                break StopReason::Halted;
            }
        };
        if !matches!(reason, StopReason::EventBudget | StopReason::Halted)
            && self.now < limits.stop_at
        {
            self.now = limits.stop_at;
        }
        let stats = RunStats {
            events: self.events - start_events,
            end: self.now,
            reason,
        };
        observer.on_finish(&stats, handler);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ping-pong model: each event reschedules itself until a count.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<(u64, u32)>,
    }

    impl Handler for Recorder {
        type Event = u32;
        fn handle(&mut self, ev: u32, cx: &mut Context<'_, u32>) {
            self.seen.push((cx.now().as_nanos(), ev));
            match ev {
                // Same-instant follow-up runs after what is already pending.
                1 => {
                    cx.schedule_in(SimDuration::ZERO, 10).unwrap();
                }
                // A periodic tick every 5 ns.
                100..=102 => {
                    cx.schedule_in(SimDuration::from_nanos(5), ev + 1).unwrap();
                }
                _ => {}
            }
        }
    }

    fn limits(stop: u64) -> RunLimits {
        RunLimits {
            stop_at: SimTime::from_nanos(stop),
            max_events: None,
        }
    }

    #[test]
    fn same_instant_events_run_fifo_and_follow_ups_run_last() {
        let mut sim = Simulation::new();
        sim.schedule_at(SimTime::from_nanos(3), 1).unwrap();
        sim.schedule_at(SimTime::from_nanos(3), 2).unwrap();
        sim.schedule_at(SimTime::from_nanos(1), 0).unwrap();
        let mut m = Recorder::default();
        let stats = sim.run(&mut m, limits(100), &mut ());
        assert_eq!(m.seen, vec![(1, 0), (3, 1), (3, 2), (3, 10)]);
        assert_eq!(stats.reason, StopReason::Exhausted);
        assert_eq!(stats.events, 4);
        assert_eq!(stats.end, SimTime::from_nanos(100));
    }

    #[test]
    fn stop_time_is_inclusive_and_run_resumes() {
        let mut sim = Simulation::new();
        sim.schedule_at(SimTime::from_nanos(0), 100).unwrap();
        let mut m = Recorder::default();
        let stats = sim.run(&mut m, limits(5), &mut ());
        assert_eq!(m.seen, vec![(0, 100), (5, 101)]);
        assert_eq!(stats.reason, StopReason::StopTime);
        assert_eq!(sim.now(), SimTime::from_nanos(5));
        let stats = sim.run(&mut m, limits(100), &mut ());
        assert_eq!(m.seen.len(), 4);
        assert_eq!(stats.events, 2);
    }

    #[test]
    fn event_budget_stops_at_the_last_event() {
        let mut sim = Simulation::new();
        sim.schedule_at(SimTime::from_nanos(0), 100).unwrap();
        let mut m = Recorder::default();
        let stats = sim.run(
            &mut m,
            RunLimits {
                stop_at: SimTime::MAX,
                max_events: Some(2),
            },
            &mut (),
        );
        assert_eq!(stats.reason, StopReason::EventBudget);
        assert_eq!(stats.events, 2);
        assert_eq!(stats.end, SimTime::from_nanos(5));
    }

    #[test]
    fn observers_see_every_event_and_the_finish() {
        #[derive(Default)]
        struct Count {
            before: u64,
            after: u64,
            finished: Option<RunStats>,
        }
        impl Observer<Recorder> for Count {
            fn on_event(&mut self, _: EventId, _: &u32) {
                self.before += 1;
            }
            fn after_event(&mut self, _: SimTime, h: &Recorder) {
                self.after += 1;
                assert_eq!(h.seen.len() as u64, self.after);
            }
            fn on_finish(&mut self, s: &RunStats, _: &Recorder) {
                self.finished = Some(*s);
            }
        }
        let mut sim = Simulation::new();
        sim.schedule_at(SimTime::ZERO, 100).unwrap();
        let mut m = Recorder::default();
        let mut obs = (Count::default(), Count::default());
        let stats = sim.run(&mut m, limits(1_000), &mut obs);
        assert_eq!(obs.0.before, 4);
        assert_eq!(obs.1.after, 4);
        assert_eq!(obs.0.finished, Some(stats));
    }

    #[test]
    fn cancelled_events_do_not_run() {
        let mut sim = Simulation::new();
        let a = sim.schedule_at(SimTime::from_nanos(2), 7).unwrap();
        sim.schedule_at(SimTime::from_nanos(2), 8).unwrap();
        assert!(sim.cancel(a));
        assert!(!sim.cancel(a));
        let mut m = Recorder::default();
        sim.run(&mut m, limits(10), &mut ());
        assert_eq!(m.seen, vec![(2, 8)]);
    }

    #[test]
    fn scheduling_past_the_end_of_time_is_an_error_not_a_panic() {
        struct Far;
        impl Handler for Far {
            type Event = ();
            fn handle(&mut self, _: (), cx: &mut Context<'_, ()>) {
                let err = cx.schedule_in(SimDuration::MAX, ()).unwrap_err();
                assert!(matches!(err, ScheduleError::Overflow { .. }));
            }
        }
        let mut sim = Simulation::new();
        sim.schedule_at(SimTime::from_nanos(1), ()).unwrap();
        let stats = sim.run(&mut Far, limits(10), &mut ());
        assert_eq!(stats.events, 1);
    }

    /// Halts after the event that asks, leaving later events pending.
    struct Halter;

    impl Handler for Halter {
        type Event = u32;
        fn handle(&mut self, ev: u32, cx: &mut Context<'_, u32>) {
            if ev == 2 {
                cx.halt();
            }
        }
    }

    #[test]
    fn a_handler_can_halt_the_run() {
        let mut sim = Simulation::new();
        for (t, ev) in [(1, 1), (2, 2), (3, 3)] {
            sim.schedule_at(SimTime::from_nanos(t), ev).unwrap();
        }
        let stats = sim.run(&mut Halter, limits(100), &mut ());
        assert_eq!(stats.reason, StopReason::Halted);
        assert_eq!(stats.events, 2);
        // The clock stays at the halting event, not the stop time.
        assert_eq!(stats.end, SimTime::from_nanos(2));
        assert_eq!(sim.pending(), 1);
    }
}
