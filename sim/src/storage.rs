//! The storage device of a replica: a FIFO of writes, each taking the configured latency.
//! What completed is durable and survives a crash; what was still pending is lost. A restart
//! rebuilds the node from the durable image (term, vote, log).

use std::collections::{BTreeSet, VecDeque};

use hovercraft_core::raft::{DurableState, PersistRequest};
use hovercraft_core::wire::Policy;

/// A write in flight: the request carries the log entries `log_from..=last_index` as they
/// were when the write began.
struct PendingWrite {
    req: PersistRequest,
}

pub struct Storage {
    pub write_latency_ns: u64,
    busy_until_ns: u64,
    pending: VecDeque<PendingWrite>,
    /// Keep a durable image of the log (needed only when nodes may restart).
    keep_image: bool,
    image: DurableState,
    /// A latency spike: writes that start before `until` take `latency` instead.
    spike: Option<(u64, u64)>,
    /// Indexes of durable writes (entries every replica executes) stored without their
    /// body: a node that acknowledges past one promised what its storage does not hold
    /// (the persist-before-send checker looks).
    bodiless_writes: BTreeSet<u64>,
}

impl Storage {
    pub fn new(write_latency_ns: u64, keep_image: bool) -> Self {
        Storage {
            write_latency_ns,
            busy_until_ns: 0,
            pending: VecDeque::new(),
            keep_image,
            image: DurableState::default(),
            spike: None,
            bodiless_writes: BTreeSet::new(),
        }
    }

    pub fn keeps_image(&self) -> bool {
        self.keep_image
    }

    /// Whether a write is in flight.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes starting before `until_ns` take `latency_ns`.
    pub fn set_spike(&mut self, until_ns: u64, latency_ns: u64) {
        self.spike = Some((until_ns, latency_ns));
    }

    fn latency_at(&self, t: u64) -> u64 {
        match self.spike {
            Some((until, latency)) if t < until => latency,
            _ => self.write_latency_ns,
        }
    }

    /// Starts a write at `now_ns`. Returns when it completes, or `None` if it is durable at
    /// once (zero latency).
    pub fn submit(&mut self, now_ns: u64, req: PersistRequest) -> Option<u64> {
        let w = PendingWrite { req };
        // A write starts when the device is free; its latency is the device's at that time
        // (a write queued during a spike but started after it heals is fast). Taking the
        // latency at submit time kept a node's storage slow long after the fault healed:
        // harsh seed 422's leader applied nothing for 140 ms after a 24 ms spike.
        let start = self.busy_until_ns.max(now_ns);
        let latency = self.latency_at(start);
        if latency == 0 && self.pending.is_empty() {
            self.apply(w);
            return None;
        }
        self.busy_until_ns = start + latency;
        self.pending.push_back(w);
        Some(start + latency)
    }

    /// The oldest pending write finished: returns its (seq, last log index).
    pub fn complete_oldest(&mut self) -> Option<(u64, u64)> {
        let w = self.pending.pop_front()?;
        let done = (w.req.seq, w.req.last_index);
        self.apply(w);
        Some(done)
    }

    /// The (seq, last index) of a write `submit` made durable at once.
    fn apply(&mut self, w: PendingWrite) {
        self.image.term = w.req.term;
        self.image.voted_for = w.req.voted_for;
        if self.keep_image {
            if let Some(s) = w.req.snapshot {
                // Entries the snapshot covers go (all of them if it reaches past the log).
                let drop = (s.index + 1)
                    .saturating_sub(self.image.first_index())
                    .min(self.image.entries.len() as u64);
                self.image.entries.drain(..drop as usize);
                self.bodiless_writes = self.bodiless_writes.split_off(&(s.index + 1));
                self.image.snapshot = Some(s);
            }
            let base = self.image.first_index();
            if let Some(req_from) = w.req.log_from {
                let req_from = req_from.max(1);
                // The request's entries may start before the snapshot's end: skip those.
                let from = req_from.max(base);
                self.image.entries.truncate((from - base) as usize);
                self.bodiless_writes.split_off(&from);
                let fresh = w.req.entries.into_iter().skip((from - req_from) as usize);
                for (i, e) in fresh.enumerate() {
                    if e.policy == Policy::ReplicatedRoute && e.body.is_none() {
                        self.bodiless_writes.insert(from + i as u64);
                    }
                    self.image.entries.push(e);
                }
            }
            self.image
                .entries
                .truncate((w.req.last_index + 1).saturating_sub(base) as usize);
            self.bodiless_writes.split_off(&(w.req.last_index + 1));
        }
    }

    /// Power loss: writes in flight never happened.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.busy_until_ns = 0;
    }

    pub fn image(&self) -> &DurableState {
        &self.image
    }

    /// The lowest index of a durable write stored without its body (with an image).
    pub fn first_bodiless_write(&self) -> Option<u64> {
        self.bodiless_writes.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hovercraft_core::wire::raft::LogEntry;

    fn req(
        seq: u64,
        term: u64,
        log_from: Option<u64>,
        last_index: u64,
        entries: Vec<LogEntry>,
    ) -> PersistRequest {
        PersistRequest {
            seq,
            term,
            voted_for: Some(1),
            log_from,
            last_index,
            entries,
            snapshot: None,
        }
    }

    #[test]
    fn fifo_writes_and_crash_loses_pending() {
        let mut s = Storage::new(100, true);
        let e = |t| LogEntry {
            term: t,
            client: std::net::SocketAddrV4::new([1, 1, 1, 1].into(), 1),
            req_id: 0,
            policy: hovercraft_core::wire::Policy::ReplicatedRoute,
            replier: 0,
            body: None,
        };
        assert_eq!(
            s.submit(0, req(1, 1, Some(1), 2, vec![e(1), e(1)])),
            Some(100)
        );
        assert_eq!(s.submit(10, req(2, 2, Some(2), 2, vec![e(2)])), Some(200));
        assert_eq!(s.complete_oldest(), Some((1, 2)));
        assert_eq!(s.image().entries.len(), 2);
        s.crash();
        assert_eq!(s.complete_oldest(), None, "the second write was lost");
        assert_eq!(s.image().term, 1);
        assert_eq!(s.image().entries[1].term, 1);
    }

    /// A spike slows the writes that start during it, not those merely queued during it:
    /// the backlog drains at the normal speed once it heals (harsh seeds 319, 422, 742, …).
    #[test]
    fn spike_latency_is_taken_when_a_write_starts() {
        let mut s = Storage::new(10, false);
        s.set_spike(1_000, 500);
        assert_eq!(s.submit(0, req(1, 1, None, 0, vec![])), Some(500));
        assert_eq!(s.submit(100, req(2, 1, None, 0, vec![])), Some(1_000));
        // Queued during the spike, starts after it: normal latency.
        assert_eq!(s.submit(200, req(3, 1, None, 0, vec![])), Some(1_010));
        assert_eq!(s.submit(2_000, req(4, 1, None, 0, vec![])), Some(2_010));
    }
}
