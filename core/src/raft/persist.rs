//! The persistence barrier (etcd's "persist before you send"): changes to term, vote and
//! log are handed to the driver as a [`PersistRequest`] that carries what to write; a message
//! that depends on them (a vote, a follower's AppendEntries reply, a candidate's RequestVote)
//! is held until the driver reports them durable. The leader's own log counts towards a
//! majority only up to what it persisted.

use super::{Canary, Outgoing, Output, PersistRequest, Replica, Role, Target};
use crate::time::Instant;
use crate::wire::raft::RaftMessage;

impl Replica {
    pub(crate) fn mark_hard_state(&mut self) {
        self.hard_state_dirty = true;
    }

    pub(crate) fn mark_log_from(&mut self, index: u64) {
        self.log_dirty_from = Some(self.log_dirty_from.map_or(index, |f| f.min(index)));
        // Anything at or after a rewritten index is no longer known durable.
        self.persisted_index = self.persisted_index.min(index.saturating_sub(1));
    }

    fn dirty(&self) -> bool {
        self.hard_state_dirty || self.log_dirty_from.is_some() || self.snapshot_to_persist.is_some()
    }

    /// The persist sequence number that will cover every change made so far.
    fn barrier(&self) -> u64 {
        if self.dirty() {
            self.persist_seq + 1
        } else {
            self.persist_seq
        }
    }

    /// The next batch of state to make durable, if anything changed.
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        if !self.dirty() {
            return None;
        }
        self.persist_seq += 1;
        self.counters.persists += 1;
        let last_index = self.log.last_index();
        // Changed entries a snapshot has since covered are not written (the snapshot goes
        // with this request); the ones after it are. An installed snapshot that kept our log
        // after it left `log_dirty_from` below the new first index, and the entries after the
        // snapshot were never written though acknowledged (harsh seed 7165).
        let log_from = self
            .log_dirty_from
            .map(|from| from.max(self.log.first_index()));
        let entries = match log_from {
            Some(from) => self
                .log
                .slice(from, (last_index + 1).saturating_sub(from) as usize),
            None => Vec::new(),
        };
        let req = PersistRequest {
            seq: self.persist_seq,
            term: self.term,
            // The canary forgets votes across restarts: it never writes them.
            voted_for: if self.canary(Canary::VoteNotPersisted) {
                None
            } else {
                self.voted_for
            },
            log_from,
            last_index,
            entries,
            snapshot: self.snapshot_to_persist.take(),
        };
        self.persists_in_flight.push_back((req.seq, req.last_index));
        self.hard_state_dirty = false;
        self.log_dirty_from = None;
        Some(req)
    }

    /// The driver made persist request `seq` (and every earlier one) durable.
    pub fn handle_persisted(&mut self, now: Instant, seq: u64) {
        if seq <= self.persisted_seq {
            return;
        }
        self.persisted_seq = seq.min(self.persist_seq);
        while let Some(&(s, last)) = self.persists_in_flight.front() {
            if s > self.persisted_seq {
                break;
            }
            self.persists_in_flight.pop_front();
            // A later truncation may have removed entries this request covered.
            self.persisted_index = last.min(self.log.last_index());
        }
        while let Some((dep, _)) = self.held.front() {
            if *dep > self.persisted_seq {
                break;
            }
            let (_, m) = self.held.pop_front().expect("peeked");
            self.out.push_back(Output::Send(m));
        }
        if self.role == Role::Leader {
            self.maybe_commit(now);
        }
        // Newly durable entries may be committed already: apply them.
        self.apply_committed();
        self.check_invariants();
    }

    /// Sends a Raft message; a `durable` one waits for every change made so far to persist.
    pub(crate) fn send(&mut self, to: Target, msg: RaftMessage, durable: bool) {
        let seq = self.sent_messages;
        self.sent_messages += 1;
        let dep = if durable { self.barrier() } else { 0 };
        let m = Outgoing { to, seq, msg };
        if dep > self.persisted_seq {
            self.held.push_back((dep, m));
        } else {
            self.out.push_back(Output::Send(m));
        }
    }
}
