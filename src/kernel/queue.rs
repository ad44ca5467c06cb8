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
//! * **Small queues: a 4-ary min-heap** keyed by the packed `u128`
//!   `(time << 64) | seq`, so ordering is a single integer comparison. A
//!   4-ary heap is shallower than a binary one and its four children share a
//!   cache line pair, which makes it faster than `std`'s binary heap at every
//!   size measured. It is written here (about forty lines) rather than taken
//!   from a crate so that it can work on the packed key directly and be moved
//!   in and out of the radix heap without conversions.
//! * **Large queues: a radix heap** over the `u64` time only. It exploits the
//!   fact that the queue is *monotone* (nothing is scheduled before the last
//!   popped time), so a pop costs amortised O(log(max delay)) bit operations
//!   and, crucially for big queues, touches memory sequentially instead of
//!   jumping along a root-to-leaf path of a large heap.
//!
//! The queue starts as a heap. It switches heap → radix when the number of
//! stored entries exceeds `to_radix`, and radix → heap when it falls below
//! `to_heap` (see [`EventQueue::with_thresholds`]). The gap between the two
//! thresholds (hysteresis) makes switching amortised O(log n) per operation
//! even for a queue whose size oscillates around a threshold, and O(1) for
//! queues that stay on one side. The defaults [`DEFAULT_TO_RADIX`] and
//! [`DEFAULT_TO_HEAP`] come from the hold-model measurements in
//! `results/bench/kernel.md`.
//!
//! ## The radix heap and why it needs no sequence comparisons
//! The radix heap keeps `last`, a time no later than any stored event
//! (normally the time of the last pop), and 65 buckets: bucket 0 holds the
//! events at exactly `last`; bucket `b ≥ 1` holds the events whose time `t`
//! first differs from `last` at bit `b − 1`, i.e. `b = 64 − lz(t ^ last)`.
//! Every event in bucket `b` is earlier than every event in bucket `b + 1`.
//! A pop takes the front of bucket 0; when bucket 0 is empty, the lowest
//! non-empty bucket `b` is emptied: `last` becomes its minimum time and its
//! events are redistributed, in order, into buckets below `b` (all of which
//! are empty at that point), the minimum ones landing in bucket 0. Buckets
//! above `b` keep their index, since the new `last` shares all bits above
//! `b − 1` with the old one.
//!
//! *Claim:* within every bucket, the events that share a time are stored in
//! increasing `seq` order. *Proof* by induction over operations. Initially
//! all buckets are empty. A schedule appends an event whose `seq` is larger
//! than every stored `seq`, so it keeps its bucket ordered. A redistribution
//! reads bucket `b` front to back and appends each event to a bucket that was
//! empty when the redistribution began, so each target receives a
//! subsequence of bucket `b`, which is ordered by hypothesis. Events of equal
//! time always share a bucket (the index depends on the time only), so no
//! other operation can interleave them. ∎
//!
//! Bucket 0 holds only events at time `last`, so by the claim it is ordered
//! by `seq` and is a plain FIFO (a `VecDeque`): the radix heap pops in exact
//! `(time, seq)` order without ever comparing sequence numbers, and a tie
//! costs a `pop_front`. Moving from the heap to the radix heap sorts the
//! heap's array once (O(n log n), paid for by the hysteresis), so the claim
//! holds from the first insertion; moving back needs no order at all.
//!
//! [`EventQueue::peek`] may advance `last` past [`EventQueue::now`] (it
//! redistributes to find the minimum). A later schedule before the new
//! `last` (but not before `now`) is still legal; it re-buckets every entry
//! relative to the earlier time, O(n), which preserves the claim because it
//! moves entries bucket by bucket in order. This happens only when a caller
//! peeks, does not pop, and then schedules something earlier than what it
//! peeked.
//!
//! ## Cancellation
//! Cancellation is lazy. Entries leave the structure in strictly increasing
//! key order (pops, and purges of cancelled entries, both take the minimum),
//! so an [`EventId`] whose key is at most the key of the last removed entry is
//! no longer stored, and every stored key is larger. [`EventQueue::cancel`]
//! therefore only has to compare the id with that bound and with the next
//! sequence number, then record the `seq` in a set; [`EventQueue::pop`] and
//! [`EventQueue::peek`] drop entries whose `seq` is in the set, and look the
//! set up only while it is non-empty, so a run without cancellations pays
//! nothing for them. A cancelled event keeps its memory until its time is
//! reached. The set is used only for membership, never iterated, so hashing
//! cannot influence the order of anything.
//!
//! An [`EventId`] is meaningful only to the queue that issued it. Passing one
//! queue's id to another queue is a logic error: it never breaks memory
//! safety or panics, but the answer is unspecified.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::time::SimTime;

/// Default number of stored entries above which the queue becomes a radix
/// heap (see the module docs and `results/bench/kernel.md`).
pub const DEFAULT_TO_RADIX: usize = 8192;

/// Default number of stored entries below which a radix-heap queue becomes a
/// 4-ary heap again.
pub const DEFAULT_TO_HEAP: usize = 2048;

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
            // The smallest child. The unrolled comparisons of a full family
            // measured about 30 % faster than a loop (module docs).
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
        self.drain_into(&mut all);
        self.last = t;
        for e in all {
            self.push(e);
        }
    }

    /// Moves every entry to `out`: bucket 0 first, then buckets in order.
    fn drain_into(&mut self, out: &mut Vec<Entry<E>>) {
        out.extend(self.front.drain(..));
        while self.nonempty != 0 {
            let b = self.nonempty.trailing_zeros() as usize;
            self.nonempty &= !(1 << b);
            self.mins[b] = u64::MAX;
            out.append(&mut self.buckets[b]);
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
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
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
    /// The radix heap, used while `in_radix`.
    radix: Radix<E>,
    in_radix: bool,
    to_radix: usize,
    to_heap: usize,
    /// The sequence number of the next scheduled event.
    next_seq: u64,
    /// Time of the last popped event [ns].
    now: u64,
    /// Every key below this has left the structure (popped or purged);
    /// every stored key is at least this.
    removed_below: u128,
    /// Sequence numbers of cancelled entries that are still stored.
    cancelled: SeqSet,
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
            radix: Radix::new(),
            in_radix: false,
            to_radix,
            to_heap,
            next_seq: 0,
            now: 0,
            removed_below: 0,
            cancelled: SeqSet::default(),
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
        id.seq < self.next_seq && id.key() >= self.removed_below
    }

    /// The next event to pop, without removing it. May drop cancelled
    /// entries from the structure, hence `&mut self`.
    #[inline]
    pub fn peek(&mut self) -> Option<(EventId, &E)> {
        loop {
            let seq = if self.in_radix {
                self.radix.peek()?.seq
            } else {
                self.heap.first()?.0 as u64
            };
            if self.cancelled.is_empty() || !self.cancelled.contains(&seq) {
                break;
            }
            // Purge the cancelled minimum.
            let e = self.take_min().expect("peeked entry exists");
            self.cancelled.remove(&e.seq);
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
            let e = self.take_min()?;
            if !self.cancelled.is_empty() && self.cancelled.remove(&e.seq) {
                continue;
            }
            self.now = e.time;
            if self.in_radix && self.radix.len < self.to_heap {
                self.switch_to_heap();
            }
            return Some((e.id(), e.event));
        }
    }

    /// Removes the minimum entry, live or cancelled.
    #[inline(always)]
    fn take_min(&mut self) -> Option<Entry<E>> {
        let e = if self.in_radix {
            self.radix.pop()?
        } else {
            let (key, event) = self.heap.pop()?;
            Entry::from_key(key, event)
        };
        self.removed_below = e.key() + 1;
        Some(e)
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
        // Sorting makes equal-time entries arrive in `seq` order, which the
        // radix heap's FIFO buckets rely on (module docs).
        let mut all: Vec<(u128, E)> = self
            .heap
            .keys
            .drain(..)
            .zip(self.heap.events.drain(..))
            .collect();
        all.sort_unstable_by_key(|&(key, _)| key);
        debug_assert_eq!(self.radix.len, 0);
        self.radix.last = self.now;
        for (key, event) in all {
            self.radix.push(Entry::from_key(key, event));
        }
        self.in_radix = true;
    }

    fn switch_to_heap(&mut self) {
        let mut all = Vec::with_capacity(self.radix.len);
        self.radix.drain_into(&mut all);
        self.heap.keys.extend(all.iter().map(Entry::key));
        self.heap.events.extend(all.into_iter().map(|e| e.event));
        self.heap.heapify();
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
