//! What the leader knows of each follower (etcd `tracker/progress.go`): how far its log
//! matches ours, where to continue, the one AppendEntries in flight, and when it last spoke.

use crate::time::Instant;

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The next index to send.
    pub next_index: u64,
    /// The highest index known replicated (durable, with every body it must execute).
    pub match_index: u64,
    /// An AppendEntries is in flight until this time (then it may be sent again).
    pub in_flight_until: Option<Instant>,
    /// The last index the AppendEntries in flight carries (its prev index if empty): only a
    /// reply acknowledging at least this far answers it (see `on_append_reply`).
    pub in_flight_last: u64,
    /// When this follower last answered; one silent for an election timeout is not given
    /// replies to send (it may be down).
    pub last_heard: Instant,
    /// When this follower last sent us any message of our term: check-quorum's proof that it
    /// still hears us and we hear it. (Behind the switch, group replies prove a majority.)
    pub last_active: Instant,
    /// HovercRaft++: this follower fell behind the switch path and is caught up directly.
    pub lagging: bool,
    /// The highest `done` (applied index) seen from this follower.
    pub reported_done: u64,
    /// Its last rejection asked for entries we compacted (counted once per episode).
    pub behind_compaction: bool,
}

impl Progress {
    pub fn new(now: Instant) -> Progress {
        Progress {
            next_index: 1,
            match_index: 0,
            in_flight_until: None,
            in_flight_last: 0,
            last_heard: now,
            last_active: now,
            lagging: false,
            reported_done: 0,
            behind_compaction: false,
        }
    }

    /// A new leader knows nothing of its followers yet: probe from the end of its log.
    pub fn reset_for_new_leader(&mut self, next_index: u64, now: Instant) {
        self.next_index = next_index;
        self.match_index = 0;
        self.in_flight_until = None;
        self.last_heard = now;
        self.last_active = now;
        self.lagging = false;
        self.behind_compaction = false;
    }

    /// Whether an AppendEntries is in flight and not yet due for a retry.
    pub fn in_flight_at(&self, now: Instant) -> bool {
        self.in_flight_until.is_some_and(|t| t > now)
    }

    /// An AppendEntries carrying up to `last` went out; answer expected before `until`.
    pub fn sent(&mut self, until: Instant, last: u64) {
        self.in_flight_until = Some(until);
        self.in_flight_last = last;
    }

    /// The follower holds up to `last_log_idx` (never more than the leader's `last`).
    /// Match indexes only grow within a term.
    pub fn acknowledge_match(&mut self, last_log_idx: u64, last: u64) {
        self.match_index = self.match_index.max(last_log_idx.min(last));
    }

    /// A (partial) success: the follower holds up to `last_log_idx` and its log matches ours
    /// up to `first_idx.max(last_log_idx)`: continue after that.
    pub fn acknowledge(&mut self, last_log_idx: u64, first_idx: u64, last: u64) {
        self.acknowledge_match(last_log_idx, last);
        self.next_index = self
            .next_index
            .max(first_idx.max(last_log_idx).min(last) + 1);
    }

    /// The follower's log does not match at `next_index − 1`: back up, at least to just
    /// after what it says it holds (`last_log_idx`), never below index 1.
    pub fn back_up(&mut self, last_log_idx: u64) {
        self.next_index = (self.next_index.saturating_sub(1))
            .min(last_log_idx + 1)
            .max(1);
    }
}
