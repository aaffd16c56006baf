//! Applying committed entries: which entries this node executes (writes everywhere, a
//! read-only request only at its designated replier), how far it may apply (committed and
//! durable here), the hand-off to the executor, and log compaction behind the applied index.
//!
//! Every committed request entry goes through the client sessions in log order
//! ([`super::session`]), executed here or not: an entry whose request was applied before is
//! a duplicate, which no replica executes and nobody answers.

use super::{ApplyMode, Canary, Committed, Output, Replica, Role};
use crate::wire::raft::LogEntry;
use crate::wire::Policy;

/// Entries compaction waits for before it drops any (one compaction per this many, or per
/// snapshot interval if shorter).
pub const COMPACTION_STEP: u64 = 1024;

impl Replica {
    /// Whether this node must execute the entry at `index` (and so needs its body).
    pub(crate) fn must_execute(&self, index: u64, e: &LogEntry) -> bool {
        match e.policy {
            Policy::ReplicatedRoute => true,
            // A read whose body no replica could give back is given up (see
            // `request_missing_bodies`): reads have no effect to keep.
            Policy::ReplicatedRouteNoSe => e.replier == self.id && !self.abandoned.contains(&index),
            // No-op entries a new leader appends.
            Policy::LbRoute | Policy::FixedRoute => false,
        }
    }

    pub(crate) fn advance_body_complete(&mut self) {
        let mut i = self.body_complete_index.max(self.log.first_index() - 1);
        while let Some(e) = self.log.get(i + 1) {
            if self.must_execute(i + 1, e) && e.body.is_none() {
                break;
            }
            i += 1;
        }
        self.body_complete_index = i;
    }

    /// Committed entries are ready to execute. With [`ApplyMode::OnCommit`] they go out now,
    /// in order, as [`Output::Apply`]; otherwise the driver takes them with
    /// [`Replica::next_to_apply`].
    pub(crate) fn apply_committed(&mut self) {
        if self.apply_mode == ApplyMode::OnCommit {
            while let Some(c) = self.next_to_apply().map(Committed::into_owned) {
                let index = c.index;
                self.out.push_back(Output::Apply(c));
                self.handle_applied(index);
            }
        }
        self.skip_unexecuted();
    }

    /// How far this node may apply: committed entries it has itself made durable. Applying only
    /// what is in its own storage means a restarted node knows everything it may have
    /// answered (its durable log), so it never answers twice (etcd also persists before it
    /// applies). Seed 1959 of `check` found a follower with slow storage answering an entry it
    /// had not persisted, then answering it again after a crash.
    fn apply_limit(&self) -> u64 {
        self.commit_index.min(self.persisted_index)
    }

    /// Whether [`Replica::next_to_apply`] has an entry: a committed entry this node must
    /// execute, body present.
    pub fn has_committed_to_apply(&self) -> bool {
        self.applied_index < self.apply_limit()
            && self
                .log
                .get(self.applied_index + 1)
                // The body test first: it is cheap, and true for most entries.
                .is_some_and(|e| e.body.is_some() || self.skips(self.applied_index + 1, e))
    }

    /// Whether the next entry to apply is skipped here: a no-op, a read assigned to another
    /// replica, or a duplicate of a request applied before (at this point of the log, so
    /// every replica decides alike).
    fn skips(&self, index: u64, e: &LogEntry) -> bool {
        !self.must_execute(index, e) || self.is_applied_duplicate(e)
    }

    fn is_applied_duplicate(&self, e: &LogEntry) -> bool {
        e.policy.is_replicated()
            && !self.canary(Canary::NoRequestDedupe)
            && self.sessions.is_duplicate((e.client, e.req_id))
    }

    /// Entry `index` is applied (executed here, skipped, or executed by its replier only):
    /// the sessions learn its request.
    fn record_applied(&mut self, index: u64) {
        let Some(e) = self.log.get(index) else {
            debug_assert!(false, "applied entry {index} is in the log");
            return;
        };
        if !e.policy.is_replicated() {
            return;
        }
        let key = (e.client, e.req_id);
        let duplicate = !self.canary(Canary::NoRequestDedupe) && self.sessions.record(key, index);
        if duplicate {
            self.counters.duplicates_skipped += 1;
        }
        self.pending_ids.applied(&key, index);
    }

    /// Moves the applied index over committed entries this node does not execute (no-ops,
    /// reads assigned to others, duplicates): they cost nothing and must not wait behind the
    /// app core.
    fn skip_unexecuted(&mut self) {
        let before = self.applied_index;
        while self.applied_index < self.apply_limit() {
            match self.log.get(self.applied_index + 1) {
                Some(e) if self.skips(self.applied_index + 1, e) => {
                    self.applied_index += 1;
                    self.record_applied(self.applied_index);
                }
                _ => break,
            }
        }
        if self.applied_index > before {
            self.after_applied();
        }
    }

    fn after_applied(&mut self) {
        let id = self.id;
        let applied = self.applied_index;
        self.balancer.report_applied(id, applied);
        self.compact();
        self.maybe_rejoined();
    }

    /// The next committed entry this node must execute (in log order), if one is ready (its
    /// body may still be on its way: recovery will bring it). Report it executed with
    /// [`Replica::handle_applied`] before asking for the next.
    pub fn next_to_apply(&mut self) -> Option<Committed<'_>> {
        self.skip_unexecuted();
        if self.applied_index >= self.apply_limit() {
            return None;
        }
        let index = self.applied_index + 1;
        let e = self.log.get(index)?;
        let body = e.body.as_deref()?;
        // A restarted node re-executes what it applied before its crash without answering
        // again: it may have answered already, and a client must not get two replies.
        let replay = index <= self.replay_until && !self.canary(Canary::ApplyTwiceAfterRecovery);
        Some(Committed {
            index,
            term: e.term,
            client: e.client,
            req_id: e.req_id,
            policy: e.policy,
            body: body.into(),
            reply: e.replier == self.id && !replay,
        })
    }

    /// The executor applied entry `index` (the one [`Replica::next_to_apply`] gave).
    pub fn handle_applied(&mut self, index: u64) {
        debug_assert_eq!(index, self.applied_index + 1, "entries apply in log order");
        if index != self.applied_index + 1 {
            return;
        }
        self.applied_index = index;
        self.record_applied(index);
        self.after_applied();
        self.skip_unexecuted();
        self.check_invariants();
    }

    /// Drops entries behind the applied index: those beyond the retention window (at the
    /// leader, also those every follower acknowledged), never past the newest snapshot, and
    /// only once `COMPACTION_STEP` entries can go.
    pub(crate) fn compact(&mut self) {
        let Some(snapshot_index) = self.snapshot.as_ref().map(|s| s.index) else {
            return;
        };
        let mut upto = self
            .applied_index
            .saturating_sub(self.cfg.log_retention_entries);
        if self.role == Role::Leader {
            // Keep what some follower still needs, within the retention bound.
            let min_match = self
                .progress
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.id as usize)
                .map(|(_, p)| p.match_index)
                .min()
                .unwrap_or(self.applied_index);
            upto = upto.max(min_match.min(self.applied_index));
            // Nor what a follower must still answer as designated replier: it catches up from
            // the log and replies, where a snapshot would skip those entries and their
            // clients would time out (harsh seeds 4587, 6149, with 0–256 entries kept). As
            // far back as the retention or the snapshot interval, whichever is longer.
            let bound = self.applied_index.saturating_sub(
                self.cfg
                    .log_retention_entries
                    .max(self.cfg.snapshot_interval_entries),
            );
            let owed = (0..self.n() as crate::types::NodeId)
                .filter(|&i| i != self.id)
                .filter_map(|i| self.balancer.oldest_owed(i))
                .min();
            if let Some(owed) = owed {
                upto = upto.min((owed - 1).max(bound));
            }
        }
        let upto = upto.min(snapshot_index);
        // Never a step longer than the snapshot interval (small intervals compact often).
        let step = COMPACTION_STEP.min(self.cfg.snapshot_interval_entries);
        if upto >= self.log.first_index() + step {
            self.log.compact_to(upto);
            let first = self.log.first_index();
            self.abandoned.retain(|&i| i >= first);
        }
    }
}
