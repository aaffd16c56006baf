//! Leader election (Raft §5.2): randomized timeouts drawn from the node's seeded stream,
//! RequestVote with the up-to-date check (§5.4.1), and stepping down on any higher term.

use rand::Rng;

use super::timers::Timer;
use super::{Event, Replica, Role, Target};
use crate::time::{Duration, Instant};
use crate::wire::raft::{LogEntry, NodeId, RaftBody};
use crate::wire::Policy;

impl Replica {
    pub(crate) fn reset_election_deadline(&mut self, now: Instant) {
        let lo = self.cfg.election_timeout_min_us;
        let hi = self.cfg.election_timeout_max_us.max(lo + 1);
        let at = now + Duration::from_us(self.rng.gen_range(lo..hi));
        self.timers.set(Timer::Election, at);
    }

    /// Adopts `term` (if newer) as a follower of `leader` (if known).
    pub(crate) fn become_follower(&mut self, now: Instant, term: u64, leader: Option<NodeId>) {
        let was = (self.role, self.term, self.leader);
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.mark_hard_state();
        }
        if self.role != Role::Follower {
            self.reset_election_deadline(now);
        }
        self.role = Role::Follower;
        self.leader = leader.or(if term == was.1 { was.2 } else { None });
        self.timers.stop(Timer::Heartbeat);
        if (self.role, self.term, self.leader) != was {
            self.emit(Event::RoleChanged {
                role: self.role,
                term: self.term,
                leader: self.leader,
            });
        }
    }

    pub(crate) fn start_election(&mut self, now: Instant) {
        self.role = Role::Candidate;
        self.term += 1;
        self.voted_for = Some(self.id);
        self.leader = None;
        self.votes = 1 << self.id;
        self.mark_hard_state();
        self.counters.elections_started += 1;
        self.reset_election_deadline(now);
        self.emit(Event::RoleChanged {
            role: Role::Candidate,
            term: self.term,
            leader: None,
        });
        if self.n() == 1 {
            self.become_leader(now);
            return;
        }
        let msg = self.msg(RaftBody::VoteRequest {
            last_log_idx: self.log.last_index(),
            last_log_term: self.log.last_term(),
        });
        for peer in 0..self.n() as NodeId {
            if peer != self.id {
                // Durable: the new term and our own vote must survive a crash first.
                self.send(Target::Peer(peer), msg.clone(), true);
            }
        }
    }

    pub(crate) fn on_vote_request(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        last_log_idx: u64,
        last_log_term: u64,
    ) {
        let granted = term == self.term
            && self.voted_for.is_none_or(|v| v == from)
            && self
                .log
                .candidate_is_up_to_date(last_log_idx, last_log_term)
            && !(self.role == Role::Leader);
        let forget_vote = self.canary(super::Canary::VoteNotPersisted);
        if granted {
            if self.voted_for != Some(from) {
                self.voted_for = Some(from);
                if !forget_vote {
                    self.mark_hard_state();
                }
            }
            self.reset_election_deadline(now);
        }
        let reply = self.msg(RaftBody::VoteReply { granted });
        // Durable: a granted vote must not be forgotten by a crash (one vote per term).
        self.send(Target::Peer(from), reply, !forget_vote);
    }

    pub(crate) fn on_vote_reply(&mut self, now: Instant, from: NodeId, term: u64, granted: bool) {
        if self.role != Role::Candidate || term != self.term {
            self.counters.stale_messages += 1;
            return;
        }
        if granted {
            self.votes |= 1 << from;
            if self.votes.count_ones() as usize >= self.quorum() {
                self.become_leader(now);
            }
        }
    }

    pub(crate) fn become_leader(&mut self, now: Instant) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.counters.times_leader += 1;
        let next = self.log.last_index() + 1;
        for p in &mut self.progress {
            p.reset_for_new_leader(next, now);
        }
        self.balancer.reset();
        // HovercRaft++: the switch path starts at this term's first entry (the no-op below),
        // so the switch only ever counts entries of the current term.
        self.switch_next = self.log.last_index() + 1;
        self.clear_switch_in_flight();
        self.emit(Event::RoleChanged {
            role: Role::Leader,
            term: self.term,
            leader: Some(self.id),
        });
        // A no-op of the new term: committing it commits every earlier entry indirectly
        // (Raft §5.4.2), and it tells followers who leads.
        let index = self.log.append(LogEntry {
            term: self.term,
            client: std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
            req_id: 0,
            policy: Policy::FixedRoute,
            replier: self.id,
            body: None,
        });
        self.mark_log_from(index);
        self.advance_body_complete();
        self.timers.set(Timer::Heartbeat, now);
        self.heartbeat(now);
    }
}
