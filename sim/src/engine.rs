//! The discrete-event engine: a priority queue of events in virtual time (u64 ns).
//!
//! Ties are broken by insertion sequence, so two events at the same nanosecond always run in
//! the order they were scheduled, on every machine: this is what makes a run a pure function
//! of its seed and scenario.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Entry<E> {
    time_ns: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.time_ns == other.time_ns && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the earliest (time, seq) pops first.
        (other.time_ns, other.seq).cmp(&(self.time_ns, self.seq))
    }
}

/// A queue of future events.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    now_ns: u64,
    popped: u64,
    pending_sum: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            next_seq: 0,
            now_ns: 0,
            popped: 0,
            pending_sum: 0,
        }
    }

    /// Current virtual time: the time of the event popped last.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Mean number of pending events seen at each pop (the queue's working size).
    pub fn mean_pending(&self) -> f64 {
        self.pending_sum as f64 / self.popped.max(1) as f64
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `time_ns`. Scheduling in the past is a model bug: it would let
    /// time run backwards, so it is clamped to now (and caught by a debug assertion).
    pub fn schedule(&mut self, time_ns: u64, event: E) {
        debug_assert!(time_ns >= self.now_ns, "event scheduled in the past");
        let time_ns = time_ns.max(self.now_ns);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            time_ns,
            seq,
            event,
        });
    }

    /// Pops the earliest event and advances virtual time to it.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let e = self.heap.pop()?;
        self.now_ns = e.time_ns;
        self.popped += 1;
        self.pending_sum += self.heap.len() as u64;
        Some((e.time_ns, e.event))
    }

    /// The time of the next event, if any.
    pub fn peek_time_ns(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.time_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::new();
        q.schedule(10, "c");
        q.schedule(5, "a");
        q.schedule(10, "d");
        q.schedule(5, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(5, "a"), (5, "b"), (10, "c"), (10, "d")]);
        assert_eq!(q.now_ns(), 10);
        assert_eq!(q.popped(), 4);
    }
}
