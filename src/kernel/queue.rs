//! The future-event list (FEL): pending events ordered by time.
//!
//! # Ordering guarantee
//! Every scheduled event gets an [`EventId`] made of its time and a *sequence
//! number*, a global counter that increases with every call to
//! [`EventQueue::schedule`] on that queue. Events pop in strictly increasing
//! `(time, seq)` order. Hence:
//!
//! * events pop in non-decreasing time order;
//! * events scheduled for the same time pop in the order they were scheduled
//!   (FIFO), whatever the internal structure holding them;
//! * a cancelled event never pops;
//! * scheduling at a time before [`EventQueue::now`] (the time of the last
//!   popped event) is refused with [`ScheduleError::InThePast`]; scheduling
//!   *at* `now` is allowed, and such an event pops after every event already
//!   scheduled at `now`.
//!
//! The order depends only on the sequence of calls, never on addresses,
//! hashing or the internal layout, so runs are reproducible.
//!
//! ```
//! use gridtwin::kernel::queue::{EventQueue, ScheduleError};
//! use gridtwin::kernel::SimTime;
//!
//! let t = SimTime::from_nanos;
//! let mut q = EventQueue::new();
//! q.schedule(t(20), "late").unwrap();
//! let a = q.schedule(t(10), "first at 10").unwrap();
//! q.schedule(t(10), "second at 10").unwrap();
//! let c = q.schedule(t(15), "cancelled").unwrap();
//! assert!(q.cancel(c));
//! assert_eq!(q.len(), 3);
//!
//! assert_eq!(q.pop(), Some((a, "first at 10")));
//! assert_eq!(q.pop().map(|(_, e)| e), Some("second at 10"));
//! assert_eq!(q.now(), t(10));
//! assert_eq!(
//!     q.schedule(t(5), "too late"),
//!     Err(ScheduleError::InThePast { time: t(5), now: t(10) })
//! );
//! assert_eq!(q.pop().map(|(_, e)| e), Some("late"));
//! assert!(q.pop().is_none());
//! ```
//!
//! # Design
//! The queue is a *hybrid* of two structures that produce exactly the same
//! order, so switching between them is invisible to callers:
//!
//! * **A radix heap** over the `u64` time only, for every queue of more than
//!   a handful of events. It exploits the fact that the queue is *monotone*
//!   (nothing is scheduled before the last popped time): an event is moved
//!   at most 64 times in its life, in practice a few times, always by
//!   appending to a bucket, so memory is touched sequentially instead of
//!   along the root-to-leaf paths of a large heap.
//! * **A 4-ary min-heap** keyed by the packed `u128` `(time << 64) | seq`
//!   (one integer comparison per key), for tiny queues, where it is a little
//!   faster than the radix heap's fixed costs. Keys and events are kept in
//!   parallel arrays so the sifts move 16-byte keys and, without `unsafe`,
//!   the child selection of a full family of four is unrolled. It is written
//!   here rather than taken from the `dary_heap` crate because it measured
//!   faster: in the same hold-model harness at N = 10³ (Exp delays), a
//!   standalone version of this heap took 36 ns per hold,
//!   `dary_heap::QuaternaryHeap<Reverse<(u128, u32)>>` 65 ns and `std`'s
//!   `BinaryHeap<Reverse<(u64, u64, u32)>>` 46 ns.
//!
//! The queue starts as a heap. It switches heap → radix when it stores more
//! than `to_radix` entries, and radix → heap when it stores fewer than
//! `to_heap` (see [`EventQueue::with_thresholds`]). A switch costs
//! O(n log n) for n ≤ `to_radix` + 1 entries and happens at most once per
//! `to_radix − to_heap` operations (hysteresis), so it is amortised
//! O(log n) even for a queue whose size oscillates across both thresholds.
//!
//! The defaults, [`DEFAULT_TO_RADIX`] = 6 and [`DEFAULT_TO_HEAP`] = 0, come
//! from hold-model sweeps (`results/bench/kernel.md`). The heap wins only
//! while it fits in its root and first level: up to 6 pending events with
//! distinct times (N = 4, Exp delays: 18.4 ns per hold against 20.7 ns for
//! the radix heap), and not at all with tied times. From N = 7 on the radix
//! heap wins, by 1.3× at N = 10³ with Exp delays and 2× with tied ones,
//! and by 2× (Exp, N = 10⁵) to 19× (ties, N = 10⁶) on big queues, where
//! the 4-ary heap itself beats `BinaryHeap` by 1.3× to 2.3×. Switching back
//! is off by default (`to_heap` = 0: a queue that once held more than 6
//! events stays a radix heap): the heap's gain at 6 events or fewer is
//! 2 to 3 ns per operation, while a switch there and back costs about
//! 80 ns, so a queue that drains and refills by a few events would lose
//! (measured: 15.8 ns per operation for a queue cycling between 0 and 7
//! events with `to_heap` = 1 or 2, 10.2 ns with 0, 8.7 ns as a pure heap).
//!
//! ## The radix heap and why it needs no sequence comparisons
//! The radix heap keeps `last`, a time no later than any stored event
//! (normally the time of the last pop), and 65 buckets: bucket 0 holds the
//! events at exactly `last`; bucket `b ≥ 1` holds the events whose time `t`
//! first differs from `last` at bit `b − 1`, i.e. `b = 64 − lz(t ^ last)`.
//! Every event in bucket `b` is earlier than every event in bucket `b + 1`.
//! A pop takes the front of bucket 0; when bucket 0 is empty, the lowest
//! non-empty bucket `b` is emptied: `last` becomes its minimum time (kept
//! per bucket, so this is one pass) and its events are redistributed, in
//! order, into buckets below `b` (all of which are empty at that point), the
//! minimum ones landing in bucket 0. Buckets above `b` keep their index,
//! since the new `last` shares all bits above `b − 1` with the old one. A
//! bucket holding a single event is popped in place, without the move.
//!
//! *Claim:* within every bucket, the events that share a time are stored in
//! increasing `seq` order. *Proof* by induction over operations. Initially
//! all buckets are empty. A schedule appends an event whose `seq` is larger
//! than every stored `seq`, so it keeps its bucket ordered. A redistribution
//! reads bucket `b` front to back and appends each event to a bucket that was
//! empty when the redistribution began, so each target receives a
//! subsequence of bucket `b`, which is ordered by hypothesis. Events of equal
//! time always share a bucket (the index depends on the time only), so no
//! other operation can interleave them. The switch from the heap pops the
//! heap empty, so it appends events in `(time, seq)` order, which orders
//! each group of equal times. ∎
//!
//! Bucket 0 holds only events at time `last`, so by the claim it is ordered
//! by `seq` and is a plain FIFO (a `VecDeque`): the radix heap pops in exact
//! `(time, seq)` order without ever comparing sequence numbers, and a tie
//! costs a `pop_front`. The switch back to the heap needs no order at all.
//!
//! [`EventQueue::peek`] may advance `last` past [`EventQueue::now`] (it
//! redistributes to find the minimum). A later schedule before the new
//! `last` (but not before `now`) is still legal; it re-buckets every entry
//! relative to the earlier time, O(n), which preserves the claim because it
//! reads the buckets in order and equal times share a bucket. This happens
//! only when a caller peeks, does not pop, and then schedules something
//! earlier than what it peeked (a run loop stopping at a horizon and then
//! given an earlier event); peek followed by pop never does it.
//!
//! ## Cancellation
//! Cancellation is lazy. [`EventQueue::cancel`] records the event's `seq`
//! in a set; [`EventQueue::pop`] and [`EventQueue::peek`] drop entries whose
//! `seq` is in the set when they reach the front, and consult the set only
//! while it is non-empty, so a run without cancellations pays nothing for
//! them. A cancelled event keeps its memory until its time is reached. The
//! set is used only for membership, never iterated, so hashing cannot
//! influence the order of anything.
//!
//! Telling exactly whether an id is still pending needs no record per
//! event. Let `K` be the key of the last popped event: every stored key is
//! above `K` (`K` was the minimum when it popped, and later schedules have a
//! time of at least `now` and a larger `seq`), and every issued key up to
//! `K` has left. So an id is stored iff its `seq` was issued, its key is
//! above `K`, and it is not one of the cancelled entries that left while
//! still above `K`: those `peek` dropped on its way to a live event (kept
//! in a small ordered set, trimmed as pops pass them), and those dropped
//! when the queue ran empty (then every id issued so far is gone: one
//! bound). The cancelled entries a `pop` drops before a live one need no
//! record: their keys are below the key it returns.
//!
//! An [`EventId`] is meaningful only to the queue that issued it. Passing one
//! queue's id to another queue is a logic error: it never breaks memory
//! safety or panics, but the answer is unspecified.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::time::SimTime;

/// Default number of stored entries above which the queue becomes a radix
/// heap (see the module docs and `results/bench/kernel.md`).
pub const DEFAULT_TO_RADIX: usize = 6;

/// Default number of stored entries below which a radix-heap queue becomes a
/// 4-ary heap again: 0, never (see the module docs for why).
pub const DEFAULT_TO_HEAP: usize = 0;

/// Handle of a scheduled event: its key (time, insertion sequence).
///
/// Ids order exactly like the events they name pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    time: SimTime,
    seq: u64,
}

impl EventId {
    /// The time the event is scheduled for.
    pub fn time(self) -> SimTime {
        self.time
    }

    /// The event's insertion sequence number: strictly increasing over the
    /// calls to [`EventQueue::schedule`] of the issuing queue.
    pub fn seq(self) -> u64 {
        self.seq
    }

    fn key(self) -> u128 {
        pack(self.time.as_nanos(), self.seq)
    }
}

/// Why [`EventQueue::schedule`] refused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The requested time is earlier than the time of the last popped event.
    #[error("cannot schedule an event at {time}: the simulation is already at {now}")]
    InThePast {
        /// The requested time.
        time: SimTime,
        /// The time of the last popped event.
        now: SimTime,
    },
    /// `now + delay` does not fit in simulated time (about 584 years).
    /// Returned by callers that schedule after a delay, never by
    /// [`EventQueue::schedule`], which takes an absolute time.
    #[error("cannot schedule an event {delay} after {now}: beyond the end of simulated time")]
    Overflow {
        /// The current time.
        now: SimTime,
        /// The requested delay.
        delay: crate::kernel::SimDuration,
    },
}

/// The `(time, seq)` key packed so that one integer comparison orders it.
#[inline(always)]
fn pack(time: u64, seq: u64) -> u128 {
    (u128::from(time) << 64) | u128::from(seq)
}

/// One stored event.
struct Entry<E> {
    time: u64,
    seq: u64,
    event: E,
}

impl<E> Entry<E> {
    #[inline(always)]
    fn key(&self) -> u128 {
        pack(self.time, self.seq)
    }

    #[inline(always)]
    fn from_key(key: u128, event: E) -> Self {
        Entry {
            time: (key >> 64) as u64,
            seq: key as u64,
            event,
        }
    }

    fn id(&self) -> EventId {
        EventId {
            time: SimTime::from_nanos(self.time),
            seq: self.seq,
        }
    }
}

// ---------------------------------------------------------------------------
// 4-ary min-heap on the packed key.

/// A 4-ary min-heap stored as two parallel arrays: the packed keys, which
/// the sifts move with plain copies (a "hole" without `unsafe`), and the
/// events, which follow by swaps. Keeping the keys dense also puts the four
/// children of a node in one or two cache lines.
struct Heap<E> {
    keys: Vec<u128>,
    events: Vec<E>,
}

impl<E> Heap<E> {
    const ARITY: usize = 4;

    fn new() -> Self {
        Heap {
            keys: Vec::new(),
            events: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    fn push(&mut self, key: u128, event: E) {
        let mut pos = self.keys.len();
        self.keys.push(key);
        self.events.push(event);
        while pos > 0 {
            let parent = (pos - 1) / Self::ARITY;
            let pk = self.keys[parent];
            if pk <= key {
                break;
            }
            self.keys[pos] = pk;
            self.events.swap(pos, parent);
            pos = parent;
        }
        self.keys[pos] = key;
    }

    #[inline]
    fn pop(&mut self) -> Option<(u128, E)> {
        let last_key = self.keys.pop()?;
        let last_event = self.events.pop()?;
        if self.keys.is_empty() {
            return Some((last_key, last_event));
        }
        let top_key = self.keys[0];
        let top_event = std::mem::replace(&mut self.events[0], last_event);
        self.sift_down(0, last_key);
        Some((top_key, top_event))
    }

    /// Moves the entry at `pos`, whose key is `key`, down to its place.
    fn sift_down(&mut self, mut pos: usize, key: u128) {
        let keys = &mut self.keys[..];
        loop {
            let first = pos * Self::ARITY + 1;
            // The smallest child. Unrolling the comparisons of a full family
            // measured about a quarter faster than a loop at N = 10³.
            let (child, child_key) = if let Some(c) = keys.get(first..first + Self::ARITY) {
                let (mut i, mut k) = (0, c[0]);
                if c[1] < k {
                    (i, k) = (1, c[1]);
                }
                if c[2] < k {
                    (i, k) = (2, c[2]);
                }
                if c[3] < k {
                    (i, k) = (3, c[3]);
                }
                (first + i, k)
            } else if first < keys.len() {
                let mut best = first;
                for c in first + 1..keys.len() {
                    if keys[c] < keys[best] {
                        best = c;
                    }
                }
                (best, keys[best])
            } else {
                break;
            };
            if key <= child_key {
                break;
            }
            keys[pos] = child_key;
            self.events.swap(pos, child);
            pos = child;
        }
        keys[pos] = key;
    }

    fn first(&self) -> Option<(u128, &E)> {
        Some((*self.keys.first()?, self.events.first()?))
    }

    /// Restores the heap property of arbitrary contents in O(n).
    fn heapify(&mut self) {
        if self.keys.len() < 2 {
            return;
        }
        for i in (0..=(self.keys.len() - 2) / Self::ARITY).rev() {
            self.sift_down(i, self.keys[i]);
        }
    }
}

// ---------------------------------------------------------------------------
// Radix heap on `Entry::time` (see the module docs for the invariants).

struct Radix<E> {
    /// No stored time is earlier than this.
    last: u64,
    /// Stored entries, all buckets together.
    len: usize,
    /// Bucket 0: the entries at exactly `last`, in `seq` order.
    front: VecDeque<Entry<E>>,
    /// Bit `i` set iff `buckets[i]` is non-empty.
    nonempty: u64,
    /// `mins[i]`: the earliest time in `buckets[i]` (`u64::MAX` if empty).
    mins: [u64; 64],
    /// `buckets[i]`: entries whose time first differs from `last` at bit `i`
    /// (bucket `i + 1` in the module docs).
    buckets: [Vec<Entry<E>>; 64],
}

impl<E> Radix<E> {
    fn new() -> Self {
        Radix {
            last: 0,
            len: 0,
            front: VecDeque::new(),
            nonempty: 0,
            mins: [u64::MAX; 64],
            buckets: std::array::from_fn(|_| Vec::new()),
        }
    }

    /// Stores `e`; requires `e.time >= self.last`.
    #[inline]
    fn push(&mut self, e: Entry<E>) {
        debug_assert!(e.time >= self.last);
        self.len += 1;
        self.place(e);
    }

    #[inline(always)]
    fn place(&mut self, e: Entry<E>) {
        let x = e.time ^ self.last;
        if x == 0 {
            self.front.push_back(e);
        } else {
            let b = 63 - x.leading_zeros() as usize;
            self.mins[b] = self.mins[b].min(e.time);
            self.nonempty |= 1 << b;
            self.buckets[b].push(e);
        }
    }

    /// Where the minimum entry is, after preparing it: `None` if empty,
    /// `Some(None)` if at the front of bucket 0, `Some(Some(i))` if it is the
    /// lone entry of `buckets[i]`. A lone minimum is taken where it is
    /// instead of being moved through bucket 0 (common when events are
    /// sparse: it saved about a fifth of a hold at N = 10³).
    #[inline(always)]
    fn locate_min(&mut self) -> Option<Option<usize>> {
        if !self.front.is_empty() {
            return Some(None);
        }
        if self.nonempty == 0 {
            return None;
        }
        let b = self.nonempty.trailing_zeros() as usize;
        if self.buckets[b].len() == 1 {
            return Some(Some(b));
        }
        self.redistribute();
        Some(None)
    }

    /// Empties the lowest non-empty bucket into the lower ones.
    #[inline(never)]
    fn redistribute(&mut self) {
        let b = self.nonempty.trailing_zeros() as usize;
        self.nonempty &= !(1 << b);
        self.last = std::mem::replace(&mut self.mins[b], u64::MAX);
        let mut moving = std::mem::take(&mut self.buckets[b]);
        for e in moving.drain(..) {
            self.place(e);
        }
        // Give the allocation back so the bucket does not regrow.
        self.buckets[b] = moving;
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Entry<E>> {
        let e = match self.locate_min()? {
            None => self.front.pop_front()?,
            Some(b) => {
                let e = self.buckets[b].pop()?;
                self.nonempty &= !(1 << b);
                self.mins[b] = u64::MAX;
                // Every other entry is in a higher bucket, so keeps its
                // index relative to the new `last`.
                self.last = e.time;
                e
            }
        };
        self.len -= 1;
        Some(e)
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<&Entry<E>> {
        match self.locate_min()? {
            None => self.front.front(),
            Some(b) => self.buckets[b].first(),
        }
    }

    /// Re-buckets everything relative to `t`, which must not be later than
    /// any stored time. Keeps equal-time entries in order (module docs).
    fn rebase(&mut self, t: u64) {
        let mut all = Vec::with_capacity(self.len);
        self.drain(|e| all.push(e));
        self.last = t;
        for e in all {
            self.push(e);
        }
    }

    /// Removes every entry, handing each to `f`: bucket 0 first, then the
    /// buckets in order, each front to back.
    fn drain(&mut self, mut f: impl FnMut(Entry<E>)) {
        self.front.drain(..).for_each(&mut f);
        while self.nonempty != 0 {
            let b = self.nonempty.trailing_zeros() as usize;
            self.nonempty &= !(1 << b);
            self.mins[b] = u64::MAX;
            self.buckets[b].drain(..).for_each(&mut f);
        }
        self.len = 0;
    }
}

// ---------------------------------------------------------------------------
// The set of cancelled sequence numbers.

/// A cheap hasher for `u64` sequence numbers. Only membership is asked of
/// the set, so the hash never influences any output.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; here for completeness.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        // Multiplicative hashing, then fold the well-mixed high half down,
        // since the table indexes with the low bits.
        let h = (x ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type SeqSet = HashSet<u64, BuildHasherDefault<SeqHasher>>;

// ---------------------------------------------------------------------------

/// The future-event list: a monotone priority queue of events of type `E`
/// keyed by `(time, insertion sequence)`, with cancellation.
///
/// See the [module docs](self) for the ordering guarantee and the design.
pub struct EventQueue<E> {
    /// The 4-ary heap, used while `!in_radix`.
    heap: Heap<E>,
    /// The radix heap, used while `in_radix`. Boxed: it is 2 KiB of bucket
    /// headers, which keeps the queue cheap to move, and keeps the speed
    /// of the hot bucket metadata independent of where the queue itself
    /// lives (measured: up to 30 % slower for some stack placements).
    radix: Box<Radix<E>>,
    in_radix: bool,
    to_radix: usize,
    to_heap: usize,
    /// The sequence number of the next scheduled event.
    next_seq: u64,
    /// Time of the last popped event [ns].
    now: u64,
    /// One past the key of the last popped event: no stored key is below
    /// it, and no key below it can be scheduled any more.
    popped_below: u128,
    /// Sequence numbers of cancelled entries that are still stored.
    cancelled: SeqSet,
    /// Ids with a lower seq are all gone: set when the structure empties.
    live_from_seq: u64,
    /// Keys of cancelled entries that `peek` dropped from the structure
    /// while still at or above `popped_below`, so that their ids stay dead.
    /// Trimmed as pops pass them; empty in runs that never do that.
    purged: BTreeSet<u128>,
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero with the default hybrid thresholds.
    pub fn new() -> Self {
        Self::with_thresholds(DEFAULT_TO_RADIX, DEFAULT_TO_HEAP)
    }

    /// An empty queue that becomes a radix heap when it stores more than
    /// `to_radix` entries and a 4-ary heap again when it stores fewer than
    /// `to_heap`. `with_thresholds(usize::MAX, 0)` is a pure heap and
    /// `with_thresholds(0, 0)` a pure radix heap. The order of events never
    /// depends on the thresholds, only the speed does.
    ///
    /// # Panics
    /// If `to_heap > to_radix`, which would make the queue switch back and
    /// forth on every operation.
    pub fn with_thresholds(to_radix: usize, to_heap: usize) -> Self {
        assert!(
            to_heap <= to_radix,
            "EventQueue thresholds: to_heap ({to_heap}) must not exceed to_radix ({to_radix})"
        );
        EventQueue {
            heap: Heap::new(),
            radix: Box::new(Radix::new()),
            in_radix: false,
            to_radix,
            to_heap,
            next_seq: 0,
            now: 0,
            popped_below: 0,
            cancelled: SeqSet::default(),
            live_from_seq: 0,
            purged: BTreeSet::new(),
        }
    }

    /// Schedules `event` at `time` and returns its id.
    ///
    /// # Errors
    /// [`ScheduleError::InThePast`] if `time` is earlier than [`Self::now`].
    #[inline]
    pub fn schedule(&mut self, time: SimTime, event: E) -> Result<EventId, ScheduleError> {
        let t = time.as_nanos();
        if t < self.now {
            return Err(ScheduleError::InThePast {
                time,
                now: SimTime::from_nanos(self.now),
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.in_radix {
            if t < self.radix.last {
                // Only after a peek advanced the radix heap (module docs).
                self.radix.rebase(t);
            }
            self.radix.push(Entry {
                time: t,
                seq,
                event,
            });
        } else {
            self.heap.push(pack(t, seq), event);
            if self.heap.len() > self.to_radix {
                self.switch_to_radix();
            }
        }
        Ok(EventId { time, seq })
    }

    /// Cancels a pending event. Returns `true` iff the event was pending and
    /// is now cancelled; `false` if it has already popped, was already
    /// cancelled, or was never issued by this queue.
    pub fn cancel(&mut self, id: EventId) -> bool {
        self.is_stored(id) && self.cancelled.insert(id.seq)
    }

    /// Whether `id` names an event that is scheduled, not yet popped and not
    /// cancelled.
    pub fn is_pending(&self, id: EventId) -> bool {
        self.is_stored(id) && !self.cancelled.contains(&id.seq)
    }

    /// Whether `id` was issued here and its entry has not left the
    /// structure (it may be cancelled).
    fn is_stored(&self, id: EventId) -> bool {
        let key = id.key();
        (self.live_from_seq..self.next_seq).contains(&id.seq)
            && key >= self.popped_below
            && (self.purged.is_empty() || !self.purged.contains(&key))
    }

    /// The next event to pop, without removing it. May drop cancelled
    /// entries from the structure, hence `&mut self`.
    #[inline]
    pub fn peek(&mut self) -> Option<(EventId, &E)> {
        loop {
            let seq = if self.in_radix {
                self.radix.peek().map(|e| e.seq)
            } else {
                self.heap.first().map(|(key, _)| key as u64)
            };
            let Some(seq) = seq else {
                self.emptied();
                return None;
            };
            if self.cancelled.is_empty() || !self.cancelled.contains(&seq) {
                break;
            }
            // Purge the cancelled minimum.
            let e = self.take_min().expect("peeked entry exists");
            self.cancelled.remove(&e.seq);
            self.purged.insert(e.key());
        }
        if self.in_radix {
            let e = self.radix.peek()?;
            Some((e.id(), &e.event))
        } else {
            let (key, event) = self.heap.first()?;
            Some((Entry::from_key(key, ()).id(), event))
        }
    }

    /// Removes and returns the next event: the live event with the smallest
    /// `(time, seq)`. Advances [`Self::now`] to its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(EventId, E)> {
        loop {
            let Some(e) = self.take_min() else {
                self.emptied();
                return None;
            };
            if !self.cancelled.is_empty() && self.cancelled.remove(&e.seq) {
                // Its key is below the one this call returns, if any, and
                // `emptied` covers it otherwise.
                continue;
            }
            let key = e.key();
            self.now = e.time;
            self.popped_below = key + 1;
            if !self.purged.is_empty() {
                self.trim_purged(key);
            }
            if self.in_radix && self.radix.len < self.to_heap {
                self.switch_to_heap();
            }
            return Some((e.id(), e.event));
        }
    }

    /// Records that nothing issued so far is stored any more.
    fn emptied(&mut self) {
        self.live_from_seq = self.next_seq;
        self.purged.clear();
    }

    /// Forgets purged keys below `key`: `popped_below` covers them now.
    #[cold]
    fn trim_purged(&mut self, key: u128) {
        while self.purged.first().is_some_and(|&k| k < key) {
            self.purged.pop_first();
        }
    }

    /// Removes the minimum entry, live or cancelled.
    #[inline(always)]
    fn take_min(&mut self) -> Option<Entry<E>> {
        if self.in_radix {
            self.radix.pop()
        } else {
            let (key, event) = self.heap.pop()?;
            Some(Entry::from_key(key, event))
        }
    }

    /// Number of pending (not cancelled) events.
    pub fn len(&self) -> usize {
        self.stored() - self.cancelled.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time of the last popped event ([`SimTime::ZERO`] before the first).
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(self.now)
    }

    /// Entries in the structure, cancelled ones included.
    fn stored(&self) -> usize {
        if self.in_radix {
            self.radix.len
        } else {
            self.heap.len()
        }
    }

    fn switch_to_radix(&mut self) {
        debug_assert_eq!(self.radix.len, 0);
        self.radix.last = self.now;
        // Popping the heap empty feeds the radix heap in key order, so
        // equal-time entries arrive in `seq` order as its FIFO buckets
        // require (module docs).
        while let Some((key, event)) = self.heap.pop() {
            self.radix.push(Entry::from_key(key, event));
        }
        self.in_radix = true;
    }

    fn switch_to_heap(&mut self) {
        let heap = &mut self.heap;
        self.radix.drain(|e| {
            heap.keys.push(e.key());
            heap.events.push(e.event);
        });
        heap.heapify();
        self.in_radix = false;
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventQueue")
            .field("len", &self.len())
            .field("cancelled", &self.cancelled.len())
            .field("now", &self.now())
            .field("next_seq", &self.next_seq)
            .field("structure", &if self.in_radix { "radix" } else { "heap" })
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    /// Threshold pairs that exercise every structure: tiny ones make the
    /// hybrid switch back and forth many times.
    const CONFIGS: [(usize, usize); 6] = [
        (DEFAULT_TO_RADIX, DEFAULT_TO_HEAP),
        (8, 2),
        (3, 1),
        (40, 10),
        (0, 0),
        (usize::MAX, 0),
    ];

    #[derive(Clone, Debug)]
    enum Op {
        /// Schedule at `now + delay` (saturating).
        Schedule(u64),
        /// Schedule strictly before `now`, if `now > 0`.
        SchedulePast(u64),
        /// Cancel the `i % issued`-th issued id (popped, cancelled or live).
        Cancel(usize),
        /// Cancel an id whose seq was never issued.
        CancelUnissued(u64),
        /// Ask `is_pending` about an issued id.
        IsPending(usize),
        Pop,
        Peek,
    }

    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => Just(0u64),
            3 => 0u64..4,
            2 => prop::sample::select(vec![1_000_000u64, 10_000_000, 100_000_000, 1_000_000_000]),
            2 => 0u64..1_000_000,
            // Log-uniform magnitudes reach every radix bucket, up to `MAX`.
            2 => (0u32..64, any::<u64>()).prop_map(|(shift, x)| x >> shift),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => delay().prop_map(Op::Schedule),
            1 => any::<u64>().prop_map(Op::SchedulePast),
            3 => any::<usize>().prop_map(Op::Cancel),
            1 => (0u64..3).prop_map(Op::CancelUnissued),
            1 => any::<usize>().prop_map(Op::IsPending),
            6 => Just(Op::Pop),
            2 => Just(Op::Peek),
        ]
    }

    /// Runs `ops` against the queue and a `BTreeMap` reference model, checking
    /// every answer and the ordering guarantee after every operation.
    fn check_against_model(ops: &[Op], to_radix: usize, to_heap: usize) {
        let mut q = EventQueue::with_thresholds(to_radix, to_heap);
        let mut model: BTreeMap<(u64, u64), usize> = BTreeMap::new();
        let mut issued: Vec<EventId> = Vec::new();
        let mut cancelled: HashSet<EventId> = HashSet::new();
        let mut now = 0u64;
        let mut last_popped: Option<EventId> = None;

        let mut pop_and_check = |q: &mut EventQueue<usize>,
                                 model: &mut BTreeMap<(u64, u64), usize>,
                                 cancelled: &HashSet<EventId>,
                                 now: &mut u64| {
            let got = q.pop();
            let want = model.pop_first();
            assert_eq!(
                got.map(|(id, e)| ((id.time().as_nanos(), id.seq()), e)),
                want
            );
            if let Some((id, payload)) = got {
                assert_eq!(payload, id.seq() as usize, "payload follows its id");
                assert!(!cancelled.contains(&id), "a cancelled event popped");
                if let Some(prev) = last_popped {
                    assert!(id.time() >= prev.time(), "time went backwards");
                    if id.time() == prev.time() {
                        assert!(id.seq() > prev.seq(), "ties out of insertion order");
                    }
                }
                last_popped = Some(id);
                *now = id.time().as_nanos();
            }
        };

        for op in ops {
            match *op {
                Op::Schedule(d) => {
                    let time = now.saturating_add(d);
                    let seq = issued.len();
                    let id = q.schedule(t(time), seq).expect("not in the past");
                    assert_eq!(id.time(), t(time));
                    assert_eq!(id.seq(), seq as u64, "seq counts schedules");
                    assert!(q.is_pending(id));
                    model.insert((time, id.seq()), seq);
                    issued.push(id);
                }
                Op::SchedulePast(back) => {
                    if now > 0 {
                        let time = now - 1 - back % now;
                        assert_eq!(
                            q.schedule(t(time), usize::MAX),
                            Err(ScheduleError::InThePast {
                                time: t(time),
                                now: t(now)
                            })
                        );
                    }
                }
                Op::Cancel(i) => {
                    if !issued.is_empty() {
                        let id = issued[i % issued.len()];
                        let pending = model.remove(&(id.time().as_nanos(), id.seq())).is_some();
                        assert_eq!(q.cancel(id), pending, "cancel({id:?})");
                        assert!(!q.is_pending(id));
                        if pending {
                            cancelled.insert(id);
                        }
                    }
                }
                Op::CancelUnissued(k) => {
                    let id = EventId {
                        time: t(now.saturating_add(k)),
                        seq: issued.len() as u64 + k,
                    };
                    assert!(!q.is_pending(id));
                    assert!(!q.cancel(id), "an unissued id was cancelled");
                }
                Op::IsPending(i) => {
                    if !issued.is_empty() {
                        let id = issued[i % issued.len()];
                        let pending = model.contains_key(&(id.time().as_nanos(), id.seq()));
                        assert_eq!(q.is_pending(id), pending, "is_pending({id:?})");
                    }
                }
                Op::Pop => pop_and_check(&mut q, &mut model, &cancelled, &mut now),
                Op::Peek => {
                    let got = q
                        .peek()
                        .map(|(id, &e)| ((id.time().as_nanos(), id.seq()), e));
                    assert_eq!(got, model.first_key_value().map(|(&k, &e)| (k, e)));
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.is_empty(), model.is_empty());
            assert_eq!(q.now(), t(now));
        }
        while !model.is_empty() {
            pop_and_check(&mut q, &mut model, &cancelled, &mut now);
        }
        assert!(q.pop().is_none());
        assert!(q.peek().is_none());
        assert_eq!(q.len(), 0);
        for id in issued {
            assert!(!q.is_pending(id));
            assert!(!q.cancel(id));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn matches_reference_model(ops in prop::collection::vec(op(), 0..400)) {
            for (to_radix, to_heap) in CONFIGS {
                check_against_model(&ops, to_radix, to_heap);
            }
        }

        /// Long runs dominated by schedules switch with big structures too.
        #[test]
        fn matches_reference_model_when_large(
            ops in prop::collection::vec(
                prop_oneof![5 => delay().prop_map(Op::Schedule), 2 => Just(Op::Pop),
                            1 => any::<usize>().prop_map(Op::Cancel), 1 => Just(Op::Peek)],
                0..3000,
            )
        ) {
            check_against_model(&ops, DEFAULT_TO_RADIX, DEFAULT_TO_HEAP);
            check_against_model(&ops, 1000, 250);
        }
    }

    #[test]
    fn same_time_events_pop_in_schedule_order_across_switches() {
        for (to_radix, to_heap) in CONFIGS {
            let mut q = EventQueue::with_thresholds(to_radix, to_heap);
            // Interleave a few times so that each has many ties.
            for i in 0..200u64 {
                q.schedule(t([30, 10, 20][(i % 3) as usize]), i).unwrap();
            }
            let mut popped = Vec::new();
            let mut prev: Option<EventId> = None;
            while let Some((id, i)) = q.pop() {
                assert!(prev < Some(id), "ids pop in increasing order");
                prev = Some(id);
                popped.push((id.time().as_nanos(), i));
                // Schedule at `now` while draining: goes after every event
                // already at `now`.
                if i % 7 == 0 && i < 200 {
                    q.schedule(q.now(), 1000 + i).unwrap();
                }
            }
            let mut sorted = popped.clone();
            sorted.sort_by_key(|&(time, i)| (time, if i >= 1000 { 1 } else { 0 }, i));
            assert_eq!(popped, sorted, "thresholds ({to_radix}, {to_heap})");
        }
    }

    #[test]
    fn scheduling_in_the_past_is_refused_and_at_now_is_allowed() {
        let mut q = EventQueue::new();
        q.schedule(t(10), 'a').unwrap();
        q.schedule(t(10), 'b').unwrap();
        assert_eq!(q.pop().unwrap().1, 'a');
        assert_eq!(q.now(), t(10));
        let err = q.schedule(t(9), 'x').unwrap_err();
        assert_eq!(
            err,
            ScheduleError::InThePast {
                time: t(9),
                now: t(10)
            }
        );
        assert_eq!(
            err.to_string(),
            "cannot schedule an event at 9ns: the simulation is already at 10ns"
        );
        assert_eq!(q.len(), 1, "a refused event is not stored");
        q.schedule(t(10), 'c').unwrap();
        assert_eq!(q.pop().unwrap().1, 'b');
        assert_eq!(q.pop().unwrap().1, 'c');
        assert!(q.pop().is_none());
        assert_eq!(q.now(), t(10), "an empty pop leaves the clock alone");
    }

    #[test]
    fn cancel_is_exact() {
        for (to_radix, to_heap) in CONFIGS {
            let mut q = EventQueue::with_thresholds(to_radix, to_heap);
            let a = q.schedule(t(5), 'a').unwrap();
            let b = q.schedule(t(7), 'b').unwrap();
            let c = q.schedule(t(7), 'c').unwrap();
            let d = q.schedule(t(9), 'd').unwrap();
            assert_eq!(q.len(), 4);
            assert!(q.cancel(b));
            assert!(!q.cancel(b), "cancelling twice");
            assert!(!q.is_pending(b));
            assert_eq!(q.len(), 3);
            assert_eq!(q.pop(), Some((a, 'a')));
            assert!(!q.cancel(a), "cancelling a popped event");
            // Peek purges `b`; its id must stay dead.
            assert_eq!(q.peek(), Some((c, &'c')));
            assert!(!q.is_pending(b));
            assert!(!q.cancel(b), "cancelling a purged event");
            assert_eq!(q.len(), 2);
            assert!(q.cancel(c));
            assert_eq!(q.len(), 1);
            let unissued = EventId { time: t(9), seq: 4 };
            assert!(!q.is_pending(unissued));
            assert!(!q.cancel(unissued), "cancelling an unissued id");
            assert_eq!(q.pop(), Some((d, 'd')));
            assert!(q.purged.is_empty(), "purged keys are forgotten once passed");
            assert!(q.is_empty());
            assert_eq!(q.now(), t(9));
        }
    }

    #[test]
    fn switches_structure_with_hysteresis() {
        let mut q = EventQueue::with_thresholds(8, 2);
        for i in 0..8 {
            q.schedule(t(i), i).unwrap();
        }
        assert!(!q.in_radix, "at the threshold: still a heap");
        q.schedule(t(8), 8).unwrap();
        assert!(q.in_radix, "above it: radix");
        for i in 0..7 {
            assert_eq!(q.pop().unwrap().1, i);
            assert!(q.in_radix, "2 or more stored: stays radix");
        }
        assert_eq!(q.pop().unwrap().1, 7);
        assert!(!q.in_radix, "below `to_heap`: heap again");
        assert_eq!(q.pop().unwrap().1, 8);
        assert!(q.pop().is_none());
    }

    #[test]
    fn schedule_before_a_peeked_event_after_the_radix_advanced() {
        // Pure radix: peek advances its base past `now`, then an earlier
        // schedule must still come first and ties must stay FIFO.
        let mut q = EventQueue::with_thresholds(0, 0);
        q.schedule(t(100), 1).unwrap();
        q.schedule(t(1000), 2).unwrap();
        q.schedule(t(1001), 3).unwrap();
        q.schedule(t(1000), 4).unwrap();
        assert_eq!(q.pop().unwrap().1, 1);
        assert_eq!(q.peek().map(|(id, &e)| (id.time(), e)), Some((t(1000), 2)));
        q.schedule(t(500), 5).unwrap();
        q.schedule(t(1000), 6).unwrap();
        q.schedule(t(100), 7).unwrap();
        let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, [7, 5, 2, 4, 6, 3]);
    }

    #[test]
    fn extreme_times() {
        for (to_radix, to_heap) in CONFIGS {
            let mut q = EventQueue::with_thresholds(to_radix, to_heap);
            q.schedule(SimTime::MAX, 1).unwrap();
            q.schedule(SimTime::ZERO, 2).unwrap();
            q.schedule(t(1 << 63), 3).unwrap();
            q.schedule(SimTime::MAX, 4).unwrap();
            let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
            assert_eq!(order, [2, 3, 1, 4]);
            assert_eq!(q.now(), SimTime::MAX);
            assert!(q.schedule(SimTime::MAX, 5).is_ok());
        }
    }

    /// The hold model against `std`'s binary heap with the same keys, growing
    /// and shrinking across the thresholds both ways.
    #[test]
    fn hold_model_matches_binary_heap() {
        for (to_radix, to_heap) in CONFIGS {
            hold_model_against_binary_heap(to_radix, to_heap);
        }
        hold_model_against_binary_heap(4096, 1024);
    }

    fn hold_model_against_binary_heap(to_radix: usize, to_heap: usize) {
        let mut q = EventQueue::with_thresholds(to_radix, to_heap);
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next_delay = || {
            // xorshift: deterministic, no dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(4) {
                (x >> 40) % 4 * 1000
            } else {
                x >> 34
            }
        };
        for (grow, holds) in [(10_000, 1), (0, 20_000), (3, 100), (0, 0)] {
            for _ in 0..grow {
                let time = q.now().as_nanos() + next_delay();
                let id = q.schedule(t(time), seq).unwrap();
                assert_eq!(id.seq(), seq);
                reference.push(Reverse((time, seq)));
                seq += 1;
            }
            for _ in 0..holds {
                let (id, e) = q.pop().unwrap();
                let Reverse(want) = reference.pop().unwrap();
                assert_eq!((id.time().as_nanos(), id.seq()), want);
                assert_eq!(e, id.seq());
                let time = id.time().as_nanos() + next_delay();
                q.schedule(t(time), seq).unwrap();
                reference.push(Reverse((time, seq)));
                seq += 1;
            }
        }
        // Drain through the radix → heap switch.
        while let Some((id, _)) = q.pop() {
            let Reverse(want) = reference.pop().unwrap();
            assert_eq!((id.time().as_nanos(), id.seq()), want);
        }
        assert!(reference.is_empty());
    }

    #[test]
    fn debug_shows_len_and_now_without_requiring_debug_events() {
        struct Opaque;
        let mut q = EventQueue::default();
        q.schedule(t(3), Opaque).unwrap();
        q.schedule(t(4), Opaque).unwrap();
        q.pop();
        let s = format!("{q:?}");
        assert!(s.contains("len: 1"), "{s}");
        assert!(s.contains("now: SimTime(3)"), "{s}");
    }

    #[test]
    #[should_panic(expected = "must not exceed")]
    fn inverted_thresholds_are_refused() {
        let _ = EventQueue::<()>::with_thresholds(1, 2);
    }
}
