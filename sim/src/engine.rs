//! The discrete-event engine: a priority queue of events in virtual time (u64 ns).
//!
//! Ties are broken by insertion sequence, so two events at the same nanosecond always run in
//! the order they were scheduled, on every machine: this is what makes a run a pure function
//! of its seed and scenario.
//!
//! Keyed events (a host's node timer) live apart, at most one per key: scheduling one again
//! replaces the pending one in place. A follower's election deadline moves on every
//! AppendEntries; with plain events each move left the old timer event queued, to be popped
//! and thrown away later (39.6k stale pops served 107 live ones in a HovercRaft run, and the
//! heap held ~6,000 events instead of tens). A replaced keyed event takes the sequence number
//! it would have taken as a plain event, so the order of everything that runs is unchanged.

/// A 4-ary min-heap keyed by (time, insertion sequence) packed in one `u128`: half the
/// depth of a binary heap and one integer compare per step (`BinaryHeap::pop` was ~10% of a
/// HovercRaft run). Keys are unique (the sequence never repeats), so the pop order is the
/// same total order as before, whatever the heap's shape.
struct QuadHeap<E> {
    v: Vec<(u128, E)>,
}

fn key(time_ns: u64, seq: u64) -> u128 {
    (u128::from(time_ns) << 64) | u128::from(seq)
}

impl<E: Copy> QuadHeap<E> {
    fn with_capacity(n: usize) -> Self {
        QuadHeap {
            v: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.v.len()
    }

    fn peek_key(&self) -> Option<u128> {
        self.v.first().map(|e| e.0)
    }

    fn push(&mut self, k: u128, event: E) {
        // Move a hole up from the end while its parent is later, then write the new
        // element once where the hole stops (one copy per level instead of a swap).
        self.v.push((k, event));
        let mut i = self.v.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.v[parent].0 <= k {
                break;
            }
            self.v[i] = self.v[parent];
            i = parent;
        }
        self.v[i] = (k, event);
    }

    fn pop(&mut self) -> Option<(u128, E)> {
        let last = self.v.pop()?;
        let Some(&top) = self.v.first() else {
            return Some(last);
        };
        // A hole at the root moves down along the least children while they come before
        // the last element, which then fills it (one copy per level instead of a swap).
        let n = self.v.len();
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let kids = &self.v[first..(first + 4).min(n)];
            let mut least = 0;
            for (c, kid) in kids.iter().enumerate().skip(1) {
                if kid.0 < kids[least].0 {
                    least = c;
                }
            }
            if kids[least].0 >= last.0 {
                break;
            }
            self.v[i] = kids[least];
            i = first + least;
        }
        self.v[i] = last;
        Some(top)
    }
}

/// A queue of future events.
pub struct EventQueue<E> {
    heap: QuadHeap<E>,
    keyed: KeyedHeap<E>,
    next_seq: u64,
    now_ns: u64,
    popped: u64,
    pending_sum: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: QuadHeap::with_capacity(1024),
            keyed: KeyedHeap::default(),
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
        self.heap.len() + self.keyed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `time_ns`. Scheduling in the past is a model bug: it would let
    /// time run backwards, so it is clamped to now (and caught by a debug assertion).
    pub fn schedule(&mut self, time_ns: u64, event: E) {
        debug_assert!(time_ns >= self.now_ns, "event scheduled in the past");
        let time_ns = time_ns.max(self.now_ns);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(key(time_ns, seq), event);
    }

    /// Schedules `event` at `time_ns` as the one pending event of `key` (a small dense
    /// index, e.g. a host), replacing the one pending, if any.
    pub fn schedule_keyed(&mut self, key: usize, time_ns: u64, event: E) {
        debug_assert!(time_ns >= self.now_ns, "event scheduled in the past");
        let time_ns = time_ns.max(self.now_ns);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keyed.set(key, time_ns, seq, event);
    }

    /// Removes `key`'s pending event, if any.
    pub fn cancel_keyed(&mut self, key: usize) {
        self.keyed.cancel(key);
    }

    /// Pops the earliest event and advances virtual time to it.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let plain = self.heap.peek_key();
        let keyed = self.keyed.peek().map(|(t, s)| key(t, s));
        let (time_ns, event) = match (plain, keyed) {
            (Some(p), Some(k)) if k < p => self.keyed.pop()?,
            (None, Some(_)) => self.keyed.pop()?,
            (Some(_), _) => {
                let (k, e) = self.heap.pop()?;
                ((k >> 64) as u64, e)
            }
            (None, None) => return None,
        };
        self.now_ns = time_ns;
        self.popped += 1;
        self.pending_sum += self.len() as u64;
        Some((time_ns, event))
    }

    /// The time of the next event, if any.
    pub fn peek_time_ns(&self) -> Option<u64> {
        let plain = self.heap.peek_key().map(|k| (k >> 64) as u64);
        let keyed = self.keyed.peek().map(|(t, _)| t);
        match (plain, keyed) {
            (Some(p), Some(k)) => Some(p.min(k)),
            (p, k) => p.or(k),
        }
    }
}

/// An indexed binary min-heap of at most one event per key, ordered by (time, seq): a
/// key's event can be replaced or removed in O(log n) without leaving anything behind.
struct KeyedHeap<E> {
    /// Keys in heap order.
    heap: Vec<usize>,
    /// Per key: its place in `heap` (`NONE`: no pending event).
    pos: Vec<usize>,
    /// Per key: its pending event.
    slot: Vec<Option<(u64, u64, E)>>,
}

const NONE: usize = usize::MAX;

impl<E> Default for KeyedHeap<E> {
    fn default() -> Self {
        KeyedHeap {
            heap: Vec::new(),
            pos: Vec::new(),
            slot: Vec::new(),
        }
    }
}

impl<E> KeyedHeap<E> {
    fn len(&self) -> usize {
        self.heap.len()
    }

    fn order(&self, key: usize) -> (u64, u64) {
        match &self.slot[key] {
            Some((t, s, _)) => (*t, *s),
            None => unreachable!("a key in the heap has an event"),
        }
    }

    fn peek(&self) -> Option<(u64, u64)> {
        self.heap.first().map(|&k| self.order(k))
    }

    fn set(&mut self, key: usize, time_ns: u64, seq: u64, event: E) {
        if key >= self.slot.len() {
            self.slot.resize_with(key + 1, || None);
            self.pos.resize(key + 1, NONE);
        }
        self.slot[key] = Some((time_ns, seq, event));
        let i = self.pos[key];
        if i == NONE {
            self.heap.push(key);
            self.pos[key] = self.heap.len() - 1;
            self.sift_up(self.heap.len() - 1);
        } else {
            // Later or earlier than before: one of the two moves it.
            let i = self.sift_up(i);
            self.sift_down(i);
        }
    }

    fn cancel(&mut self, key: usize) {
        if self.pos.get(key).is_none_or(|&i| i == NONE) {
            return;
        }
        self.remove_at(self.pos[key]);
        self.slot[key] = None;
    }

    fn pop(&mut self) -> Option<(u64, E)> {
        let &key = self.heap.first()?;
        self.remove_at(0);
        let (t, _, e) = self.slot[key].take()?;
        Some((t, e))
    }

    /// Takes the key at heap index `i` out of the heap (its slot stays).
    fn remove_at(&mut self, i: usize) {
        let key = self.heap[i];
        let last = self.heap.len() - 1;
        self.heap.swap(i, last);
        self.heap.pop();
        self.pos[key] = NONE;
        if i < self.heap.len() {
            self.pos[self.heap[i]] = i;
            let i = self.sift_up(i);
            self.sift_down(i);
        }
    }

    fn sift_up(&mut self, mut i: usize) -> usize {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.order(self.heap[i]) >= self.order(self.heap[parent]) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
        i
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.order(self.heap[l]) < self.order(self.heap[least]) {
                least = l;
            }
            if r < self.heap.len() && self.order(self.heap[r]) < self.order(self.heap[least]) {
                least = r;
            }
            if least == i {
                return;
            }
            self.swap(i, least);
            i = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a]] = a;
        self.pos[self.heap[b]] = b;
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

    /// What keyed events replace: a plain event per (re)schedule, the superseded ones
    /// skipped when they pop. Same survivors, same order.
    #[derive(Clone, Debug)]
    enum Op {
        Plain(u64),
        Keyed(usize, u64),
        Cancel(usize),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..50).prop_map(Op::Plain),
            (0usize..6, 0u64..50).prop_map(|(k, d)| Op::Keyed(k, d)),
            (0usize..6).prop_map(Op::Cancel),
            Just(Op::Pop),
            Just(Op::Pop),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        /// The 4-ary heap pops exactly what `std`'s binary heap pops, in the same order.
        #[test]
        fn quad_heap_pops_as_binary_heap(ops in proptest::collection::vec((any::<bool>(), 0u64..40), 0..400)) {
            let mut quad = QuadHeap::with_capacity(0);
            let mut reference = std::collections::BinaryHeap::new();
            let mut seq = 0u64;
            for (push, t) in ops.into_iter().chain(std::iter::repeat_n((false, 0), 400)) {
                if push {
                    let k = key(t, seq);
                    quad.push(k, seq);
                    reference.push(std::cmp::Reverse((k, seq)));
                    seq += 1;
                } else {
                    prop_assert_eq!(quad.pop(), reference.pop().map(|r| r.0));
                }
            }
            prop_assert_eq!(quad.len(), 0);
        }

        #[test]
        fn keyed_events_pop_as_plain_events_with_stale_ones_skipped(
            ops in proptest::collection::vec(op(), 0..300)
        ) {
            // Reference: plain events tagged with the key's generation at scheduling time.
            let mut plain: EventQueue<(Option<(usize, u32)>, u64)> = EventQueue::new();
            let mut gens = [0u32; 6];
            let mut keyed: EventQueue<u64> = EventQueue::new();
            let mut id = 0u64;
            let pop_ref = |plain: &mut EventQueue<(Option<(usize, u32)>, u64)>, gens: &[u32; 6]| {
                while let Some((t, (tag, id))) = plain.pop() {
                    match tag {
                        Some((k, g)) if gens[k] != g => continue,
                        _ => return Some((t, id)),
                    }
                }
                None
            };
            let mut fired_key: Vec<Option<usize>> = Vec::new();
            for op in ops.iter().cloned().chain(std::iter::repeat_n(Op::Pop, 400)) {
                // The reference pops stale events too, which may move its clock further.
                let now = keyed.now_ns().max(plain.now_ns());
                match op {
                    Op::Plain(d) => {
                        plain.schedule(now + d, (None, id));
                        keyed.schedule(now + d, id);
                        fired_key.push(None);
                        id += 1;
                    }
                    Op::Keyed(k, d) => {
                        gens[k] += 1;
                        plain.schedule(now + d, (Some((k, gens[k])), id));
                        keyed.schedule_keyed(k, now + d, id);
                        fired_key.push(Some(k));
                        id += 1;
                    }
                    Op::Cancel(k) => {
                        gens[k] += 1;
                        keyed.cancel_keyed(k);
                    }
                    Op::Pop => {
                        let a = pop_ref(&mut plain, &gens);
                        let b = keyed.pop();
                        prop_assert_eq!(a, b);
                        if let Some((_, id)) = b {
                            // A keyed event that fired is no longer pending.
                            if let Some(k) = fired_key[id as usize] {
                                gens[k] += 1;
                            }
                        }
                    }
                }
            }
            prop_assert!(keyed.is_empty());
        }
    }
}
