//! What the leader knows of each follower (etcd `tracker/progress.go` and
//! `tracker/inflights.go`): how far its log matches ours, where to continue, the
//! AppendEntries in flight, and when it last spoke.
//!
//! A follower is in one of two states. **Probe**: the leader does not know where the
//! follower's log ends; one AppendEntries at a time, `next_index` moves only on answers.
//! **Replicate**: its last answer matched; the leader streams AppendEntries back to back, up to
//! `raft.max_appends_in_flight`, advancing `next_index` as it sends (optimistically). A
//! rejection, or an AppendEntries unanswered for `raft.append_retry_us`, sends it back to Probe
//! from what it acknowledged. `match_index` only ever moves on acknowledgements.

use std::collections::VecDeque;

use crate::time::Instant;

/// How the leader replicates to one follower (etcd `StateProbe` / `StateReplicate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    Probe,
    Replicate,
}

/// One AppendEntries in flight: it carries `first..=last` (`last == first - 1` if empty),
/// and is sent again if no answer covered it by `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inflight {
    pub first: u64,
    pub last: u64,
    pub until: Instant,
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The next index to send.
    pub next_index: u64,
    /// The highest index known replicated (durable, with every body it must execute).
    pub match_index: u64,
    /// The highest index its log is known to match ours (durable; bodies may be missing):
    /// at least `match_index`. A rejection claiming less is older than that answer.
    pub log_match: u64,
    pub state: ProgressState,
    /// AppendEntries in flight, oldest first, their `last` increasing: at most one in Probe,
    /// at most `raft.max_appends_in_flight` in Replicate.
    pub inflights: VecDeque<Inflight>,
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
    /// Rejections in a row claiming less than `log_match`, with no success between.
    pub rejections_below_match: u32,
    /// A snapshot transfer to this follower (it needs entries we no longer keep).
    pub snapshot: Option<super::snapshot::SnapshotSend>,
}

/// Rejections in a row below an acknowledged match that prove a follower lost its log: a
/// late or duplicated answer comes alone or in a short burst (a window of AppendEntries
/// rejected behind one loss, each copy duplicated), a follower that lost its log rejects
/// everything.
pub(crate) const LOST_LOG_REJECTIONS: u32 = 16;

impl Progress {
    pub fn new(now: Instant) -> Progress {
        Progress {
            next_index: 1,
            match_index: 0,
            log_match: 0,
            state: ProgressState::Probe,
            inflights: VecDeque::new(),
            last_heard: now,
            last_active: now,
            lagging: false,
            reported_done: 0,
            behind_compaction: false,
            rejections_below_match: 0,
            snapshot: None,
        }
    }

    /// A new leader knows nothing of its followers yet: probe from the end of its log.
    pub fn reset_for_new_leader(&mut self, next_index: u64, now: Instant) {
        self.next_index = next_index;
        self.match_index = 0;
        self.log_match = 0;
        self.become_probe(next_index);
        self.last_heard = now;
        self.last_active = now;
        self.lagging = false;
        self.behind_compaction = false;
        self.rejections_below_match = 0;
        self.snapshot = None;
    }

    /// The window's bookkeeping is consistent with the leader's `last` index and `window`
    /// (checked with the replica's invariants).
    pub fn window_ok(&self, last: u64, window: usize) -> bool {
        let cap = match self.state {
            ProgressState::Probe => 1,
            ProgressState::Replicate => window,
        };
        // One pass (it runs after every input at the leader): ordered by `last`, each range
        // well formed and inside the log.
        let mut prev_last = 0;
        let mut ordered = true;
        let mut within = true;
        for f in &self.inflights {
            ordered &= prev_last <= f.last;
            within &= f.last + 1 >= f.first && f.last <= last;
            prev_last = f.last;
        }
        let optimistic = self.state == ProgressState::Probe
            || self
                .inflights
                .back()
                .is_none_or(|b| b.last < self.next_index);
        self.inflights.len() <= cap && ordered && within && optimistic
    }

    /// Back to one AppendEntries at a time, from `next_index`; whatever was in flight is
    /// forgotten (its late answers still acknowledge, but no longer trigger sends).
    pub fn become_probe(&mut self, next_index: u64) {
        debug_assert!(next_index >= 1);
        self.state = ProgressState::Probe;
        self.inflights.clear();
        // Never at or below what is known to match (a HovercRaft++ fall-back probes from the
        // switch's next index, which a follower caught up directly may have passed).
        self.next_index = next_index.max(self.log_match + 1);
    }

    /// The follower's log matched: stream to it from `next_index` on.
    pub fn become_replicate(&mut self) {
        debug_assert!(self.next_index > self.log_match);
        self.state = ProgressState::Replicate;
    }

    /// Whether an AppendEntries is in flight and not yet due for a retry.
    pub fn in_flight_at(&self, now: Instant) -> bool {
        self.inflights.front().is_some_and(|f| f.until > now)
    }

    /// Whether entries up to the leader's `last` index should go now, given the batch size
    /// and the window (heartbeats are the heartbeat's business). Probe: only with none in
    /// flight. Replicate: with none in flight, whatever there is; with some in flight, only
    /// full batches, so an up-to-date follower still gets one message per round trip
    /// carrying everything proposed meanwhile (batching as before), and only a follower
    /// with a backlog gets several at once.
    pub fn may_send(&self, last: u64, batch: usize, window: usize) -> bool {
        if last < self.next_index {
            return false;
        }
        match self.state {
            ProgressState::Probe => self.inflights.is_empty(),
            ProgressState::Replicate => {
                self.inflights.is_empty()
                    || (self.inflights.len() < window && last - self.next_index + 1 >= batch as u64)
            }
        }
    }

    /// An AppendEntries carrying `first..=last` went out; answer expected before `until`.
    /// In Replicate the next one continues after it.
    pub fn sent(&mut self, first: u64, last: u64, until: Instant) {
        debug_assert!(last + 1 >= first);
        debug_assert!(self.inflights.back().is_none_or(|b| b.last <= last));
        self.inflights.push_back(Inflight { first, last, until });
        if self.state == ProgressState::Replicate {
            self.next_index = self.next_index.max(last + 1);
        }
    }

    /// An answer showed the follower's log matches up to `upto`: every AppendEntries in
    /// flight ending there or before is answered (etcd `Inflights.FreeLE`). Returns how many.
    pub fn free_upto(&mut self, upto: u64) -> usize {
        let mut freed = 0;
        while self.inflights.front().is_some_and(|f| f.last <= upto) {
            self.inflights.pop_front();
            freed += 1;
        }
        freed
    }

    /// The follower holds up to `last_log_idx` (never more than the leader's `last`).
    /// Match indexes only grow within a term.
    pub fn acknowledge_match(&mut self, last_log_idx: u64, last: u64) {
        self.match_index = self.match_index.max(last_log_idx.min(last));
        self.log_match = self.log_match.max(self.match_index);
        // What matches is never sent again (a switch group reply acknowledges without
        // passing through `acknowledge`).
        self.next_index = self.next_index.max(self.log_match + 1);
        self.rejections_below_match = 0;
    }

    /// One more rejection below `log_match`: whether, with those before it, it proves the
    /// follower lost its log (see [`LOST_LOG_REJECTIONS`]).
    pub fn proves_log_lost(&mut self) -> bool {
        self.rejections_below_match += 1;
        self.rejections_below_match >= LOST_LOG_REJECTIONS
    }

    /// The follower lost entries it acknowledged: know nothing of it again (as a new leader),
    /// and probe from just after its claimed end. Commit never moves back; what we count for
    /// it from now on is what it acknowledges again.
    pub fn forget(&mut self, last_log_idx: u64) {
        self.match_index = 0;
        self.log_match = 0;
        self.become_probe(last_log_idx + 1);
        self.rejections_below_match = 0;
    }

    /// A (partial) success: the follower holds up to `last_log_idx` and its log matches ours
    /// up to `first_idx.max(last_log_idx)`: continue after that.
    pub fn acknowledge(&mut self, last_log_idx: u64, first_idx: u64, last: u64) {
        self.acknowledge_match(last_log_idx, last);
        let matched = first_idx.max(last_log_idx).min(last);
        self.log_match = self.log_match.max(matched);
        self.next_index = self.next_index.max(matched + 1);
    }

    /// The follower's log does not match at `next_index − 1`: back up, at least to just
    /// after what it says it holds (`last_log_idx`), never below index 1, and probe from
    /// there.
    pub fn back_up(&mut self, last_log_idx: u64) {
        // Never at or below what is known to match: a "need more" answer names its last
        // complete index, which may be exactly `log_match` (etcd's `MaybeDecrTo` keeps above
        // `Match` the same way).
        let next = (self.next_index.saturating_sub(1))
            .min(last_log_idx + 1)
            .max(self.log_match + 1)
            .max(1);
        self.become_probe(next);
    }

    /// Whether a rejection with hint `last_log_idx` (the follower's last index, or less) is
    /// older than what we know: the follower since acknowledged more than it claims, or (in
    /// Probe) it rejects an AppendEntries after the one we probe with. Acting on it would back
    /// up for nothing and send a duplicate, one per AppendEntries of the window behind a loss.
    pub fn stale_rejection(&self, last_log_idx: u64) -> bool {
        last_log_idx < self.log_match
            || (self.state == ProgressState::Probe
                && !self.inflights.is_empty()
                && last_log_idx + 1 >= self.next_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(us: u64) -> Instant {
        Instant::from_ns(us * 1_000)
    }

    #[test]
    fn replicate_streams_full_batches_up_to_the_window_and_frees_in_order() {
        let mut p = Progress::new(t(0));
        p.reset_for_new_leader(11, t(0));
        assert!(p.may_send(100, 30, 4));
        p.sent(11, 40, t(10));
        // Probe: one at a time, next_index waits for the answer.
        assert!(!p.may_send(100, 30, 4));
        assert_eq!(p.next_index, 11);
        assert_eq!(p.free_upto(40), 1);
        p.acknowledge(40, 40, 100);
        p.become_replicate();
        assert_eq!(p.next_index, 41);
        for k in 0..4 {
            assert!(p.may_send(200, 30, 4), "{k}");
            let first = p.next_index;
            p.sent(first, first + 29, t(20));
        }
        assert_eq!(p.next_index, 161);
        assert!(!p.may_send(200, 30, 4), "the window is full");
        assert_eq!(p.free_upto(100), 2);
        assert!(p.may_send(200, 30, 4));
        // A partial batch waits while something is in flight.
        assert!(!p.may_send(180, 30, 4));
        assert!(p.in_flight_at(t(19)) && !p.in_flight_at(t(20)));
    }

    #[test]
    fn a_rejection_behind_a_loss_probes_once() {
        let mut p = Progress::new(t(0));
        p.reset_for_new_leader(1, t(0));
        p.acknowledge(10, 10, 100);
        p.become_replicate();
        for first in [11, 41, 71] {
            p.sent(first, first + 29, t(50));
        }
        // 11..=40 was lost: the next two are rejected, the follower holds up to 10.
        assert!(!p.stale_rejection(10));
        p.back_up(10);
        assert_eq!((p.state, p.next_index), (ProgressState::Probe, 11));
        assert!(p.inflights.is_empty());
        p.sent(11, 40, t(60));
        // The second rejection (same hint) answers an AppendEntries we already gave up.
        assert!(p.stale_rejection(10));
        // After the probe matched, a rejection claiming less than it acknowledged is old.
        p.free_upto(40);
        p.acknowledge(40, 40, 100);
        p.become_replicate();
        assert!(p.stale_rejection(10));
        assert!(!p.stale_rejection(40));
    }

    #[test]
    fn rejections_below_an_acknowledged_match_prove_a_lost_log_only_in_a_long_run() {
        let mut p = Progress::new(t(0));
        p.reset_for_new_leader(101, t(0));
        p.acknowledge(100, 100, 100);
        // A late answer, or a burst of them, is not proof.
        for _ in 1..LOST_LOG_REJECTIONS {
            assert!(!p.proves_log_lost());
        }
        // An acknowledgement between starts the count again.
        p.acknowledge_match(100, 100);
        for _ in 1..LOST_LOG_REJECTIONS {
            assert!(!p.proves_log_lost());
        }
        assert!(p.proves_log_lost());
        p.forget(0);
        assert_eq!((p.match_index, p.log_match, p.next_index), (0, 0, 1));
        assert_eq!(p.state, ProgressState::Probe);
    }
}
