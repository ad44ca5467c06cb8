//! The gateway's store-and-forward buffer: rounds waiting for the MQTT
//! session, bounded in bytes.
//!
//! While the session is down (or its in-flight window is full) rounds wait
//! here in arrival order. The bound is on payload bytes. A round that does
//! not fit is handled by the [`Overflow`] policy: drop the oldest rounds
//! until it fits, or drop the new round. Every drop is counted, in rounds,
//! in records and in bytes; nothing leaves silently.

use std::collections::VecDeque;

use rumqttc::Publish;

/// What to drop when the buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Evict the oldest rounds until the new one fits (the freshest data
    /// survives).
    #[default]
    DropOldest,
    /// Refuse the new round (the oldest data survives).
    DropNewest,
}

/// A message waiting in the buffer, with the number of LMU records it
/// carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    /// The MQTT message (QoS and topic set, no packet id yet).
    pub publish: Publish,
    /// LMU records in it.
    pub records: u32,
}

impl Queued {
    /// Its size against the bound [bytes]: topic and payload.
    pub fn bytes(&self) -> usize {
        self.publish.topic.len() + self.publish.payload.len()
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Messages dropped.
    pub dropped: u64,
    /// LMU records in the dropped messages.
    pub dropped_records: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
    /// Highest occupancy [bytes].
    pub peak_bytes: usize,
}

/// The bounded FIFO.
#[derive(Clone, Debug)]
pub struct Buffer {
    capacity: usize,
    policy: Overflow,
    queue: VecDeque<Queued>,
    bytes: usize,
    stats: BufferStats,
}

impl Buffer {
    /// An empty buffer of `capacity` bytes.
    pub fn new(capacity: usize, policy: Overflow) -> Buffer {
        Buffer {
            capacity,
            policy,
            queue: VecDeque::new(),
            bytes: 0,
            stats: BufferStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> BufferStats {
        self.stats
    }

    /// Occupancy [bytes].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// LMU records waiting.
    pub fn records(&self) -> u64 {
        self.queue.iter().map(|q| u64::from(q.records)).sum()
    }

    fn drop_one(&mut self, q: &Queued) {
        self.stats.dropped += 1;
        self.stats.dropped_records += u64::from(q.records);
        self.stats.dropped_bytes += q.bytes() as u64;
    }

    /// Appends a message, applying the overflow policy; returns the
    /// messages dropped to make room (or the new one, refused).
    pub fn push(&mut self, q: Queued) -> Vec<Queued> {
        let need = q.bytes();
        let mut dropped = Vec::new();
        if need > self.capacity {
            // It can never fit, whatever the policy.
            self.drop_one(&q);
            dropped.push(q);
            return dropped;
        }
        match self.policy {
            Overflow::DropNewest => {
                if self.bytes + need > self.capacity {
                    self.drop_one(&q);
                    dropped.push(q);
                    return dropped;
                }
            }
            Overflow::DropOldest => {
                while self.bytes + need > self.capacity {
                    let Some(old) = self.queue.pop_front() else {
                        break;
                    };
                    self.bytes -= old.bytes();
                    self.drop_one(&old);
                    dropped.push(old);
                }
            }
        }
        self.bytes += need;
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.bytes);
        self.queue.push_back(q);
        dropped
    }

    /// Takes the oldest message.
    pub fn pop(&mut self) -> Option<Queued> {
        let q = self.queue.pop_front()?;
        self.bytes -= q.bytes();
        Some(q)
    }

    /// Puts messages taken out earlier (sent, but never acknowledged) back
    /// at the head, in their order, ahead of what waits. If they no longer
    /// fit, the overflow policy drops (and counts) the oldest messages or
    /// the newest ones until the bound holds again.
    pub fn requeue_front(&mut self, msgs: impl DoubleEndedIterator<Item = Queued>) {
        for q in msgs.rev() {
            self.bytes += q.bytes();
            self.queue.push_front(q);
        }
        while self.bytes > self.capacity {
            let q = match self.policy {
                Overflow::DropOldest => self.queue.pop_front(),
                Overflow::DropNewest => self.queue.pop_back(),
            };
            let Some(q) = q else { break };
            self.bytes -= q.bytes();
            self.drop_one(&q);
        }
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rumqttc::QoS;

    fn msg(n: usize, records: u32) -> Queued {
        Queued {
            publish: Publish::new("t", QoS::AtLeastOnce, vec![0u8; n - 1]),
            records,
        }
    }

    #[test]
    fn requeued_messages_go_first_and_the_bound_still_holds() {
        let mut b = Buffer::new(100, Overflow::DropOldest);
        b.push(msg(30, 3));
        b.requeue_front([msg(30, 1), msg(30, 2)].into_iter());
        assert_eq!(b.bytes(), 90);
        assert_eq!(b.pop().unwrap().records, 1);
        b.requeue_front([msg(30, 1)].into_iter());
        b.push(msg(30, 4));
        // 120 bytes: the oldest (the requeued first) goes, counted.
        assert_eq!(b.bytes(), 90);
        assert_eq!(b.stats().dropped_records, 1);
        assert_eq!(
            std::iter::from_fn(|| b.pop())
                .map(|q| q.records)
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let mut n = Buffer::new(50, Overflow::DropNewest);
        n.push(msg(30, 5));
        n.requeue_front([msg(30, 6)].into_iter());
        assert_eq!(n.pop().unwrap().records, 6);
        assert_eq!(n.stats().dropped_records, 5);
    }

    #[test]
    fn drop_oldest_keeps_the_newest() {
        let mut b = Buffer::new(100, Overflow::DropOldest);
        assert!(b.push(msg(40, 1)).is_empty());
        assert!(b.push(msg(40, 2)).is_empty());
        let d = b.push(msg(40, 3));
        assert_eq!(d.iter().map(|q| q.records).collect::<Vec<_>>(), vec![1]);
        assert_eq!(b.pop().unwrap().records, 2);
        assert_eq!(b.stats().dropped_records, 1);
        assert_eq!(b.stats().peak_bytes, 80);
    }

    #[test]
    fn drop_newest_keeps_the_oldest() {
        let mut b = Buffer::new(100, Overflow::DropNewest);
        b.push(msg(40, 1));
        b.push(msg(40, 2));
        let d = b.push(msg(40, 3));
        assert_eq!(d[0].records, 3);
        assert_eq!(b.pop().unwrap().records, 1);
        assert_eq!(b.stats().dropped_bytes, 40);
    }

    #[test]
    fn a_message_larger_than_the_buffer_is_dropped_alone() {
        let mut b = Buffer::new(100, Overflow::DropOldest);
        b.push(msg(40, 1));
        let d = b.push(msg(200, 9));
        assert_eq!(d[0].records, 9);
        assert_eq!((b.len(), b.bytes()), (1, 40));
    }

    proptest! {
        /// Whatever arrives: occupancy never exceeds the bound, and every
        /// record is either still queued, taken out, or counted as dropped.
        #[test]
        fn records_are_conserved_and_the_bound_holds(
            cap in 1usize..500,
            oldest in any::<bool>(),
            ops in proptest::collection::vec((1usize..200, 1u32..20, any::<bool>()), 1..60),
        ) {
            let policy = if oldest { Overflow::DropOldest } else { Overflow::DropNewest };
            let mut b = Buffer::new(cap, policy);
            let (mut pushed, mut popped) = (0u64, 0u64);
            for (n, r, pop) in ops {
                if pop {
                    if let Some(q) = b.pop() {
                        popped += u64::from(q.records);
                    }
                } else {
                    pushed += u64::from(r);
                    b.push(msg(n, r));
                }
                prop_assert!(b.bytes() <= cap);
                prop_assert_eq!(pushed, popped + b.records() + b.stats().dropped_records);
            }
        }
    }
}
