//! The replica's bookkeeping invariants, checked after every input in debug builds and when
//! the `invariants` feature is on (the simulator turns it on). A violation is a bug in this
//! crate, never a peer's fault: peers' messages are checked where they are handled.

use super::{Replica, Role};

impl Replica {
    /// Panics with a message naming the broken invariant.
    pub fn assert_invariants(&self) {
        let last = self.log.last_index();
        assert!(
            self.applied_index <= self.commit_index,
            "node {}: applied {} beyond commit {}",
            self.id,
            self.applied_index,
            self.commit_index
        );
        assert!(
            self.persisted_index <= last,
            "node {}: persisted index {} beyond the log's last {}",
            self.id,
            self.persisted_index,
            last
        );
        assert!(
            self.body_complete_index <= last,
            "node {}: body-complete index {} beyond the log's last {}",
            self.id,
            self.body_complete_index,
            last
        );
        assert!(
            self.log.first_index() <= self.applied_index + 1,
            "node {}: compacted to {} past the applied index {}",
            self.id,
            self.log.first_index(),
            self.applied_index
        );
        assert!(
            self.persisted_seq <= self.persist_seq,
            "node {}: persisted seq {} beyond the last request {}",
            self.id,
            self.persisted_seq,
            self.persist_seq
        );
        match self.role {
            Role::Leader => {
                assert_eq!(
                    self.leader,
                    Some(self.id),
                    "node {}: leader of whom",
                    self.id
                );
                assert!(
                    self.commit_index <= last,
                    "node {}: leader's commit {} beyond its last {}",
                    self.id,
                    self.commit_index,
                    last
                );
                for (i, p) in self.progress.iter().enumerate() {
                    assert!(
                        p.match_index <= last && p.next_index >= 1 && p.next_index <= last + 1,
                        "node {}: progress of {i} out of the log (last {last}): {p:?}",
                        self.id
                    );
                    assert!(
                        p.match_index <= p.log_match
                            && p.window_ok(last, self.cfg.max_appends_in_flight),
                        "node {}: progress of {i}: window out of order (last {last}): {p:?}",
                        self.id
                    );
                }
            }
            Role::Candidate => {
                assert_eq!(self.voted_for, Some(self.id), "node {}: candidate", self.id);
                assert!(
                    self.leader.is_none(),
                    "node {}: candidate with a leader",
                    self.id
                );
            }
            Role::Follower => {}
        }
        if let (Some((term, seen)), Some(leader)) = (self.leader_seen, self.leader) {
            assert!(
                term != self.term || seen == leader,
                "node {}: two leaders in term {term}: {seen} and {leader}",
                self.id
            );
        }
    }

    /// Runs [`Replica::assert_invariants`] where it is switched on, and remembers the leader
    /// of the current term for the next check. A canary breaks invariants on purpose: the
    /// checkers, not these asserts, must catch it.
    pub(crate) fn check_invariants(&mut self) {
        #[cfg(any(debug_assertions, feature = "invariants"))]
        {
            #[cfg(feature = "canary")]
            let on = self.cfg.canary.is_none();
            #[cfg(not(feature = "canary"))]
            let on = true;
            if on {
                self.assert_invariants();
            }
        }
        if let Some(leader) = self.leader {
            if self.leader_seen.is_none_or(|(t, _)| t != self.term) {
                self.leader_seen = Some((self.term, leader));
            }
        }
    }
}
