//! Leader election (Raft §5.2): randomized timeouts drawn from the node's seeded stream,
//! RequestVote with the up-to-date check (§5.4.1), and stepping down on any higher term.
//!
//! Two guards keep a node that cannot lead from disrupting one that can (Raft dissertation
//! §9.6, etcd `PreVote` and `CheckQuorum`), each switched by `RaftConfig`:
//! - Pre-vote: a timed-out node first asks "would you vote for me at term + 1?" without
//!   changing any term; peers say yes only if its log is up to date and they have not heard
//!   from a leader within `election_timeout_min_us`. Only a majority of yeses starts an
//!   election, so a partitioned or restarted node does not inflate terms.
//! - Check-quorum: a leader that has heard from no majority (itself included) within
//!   `election_timeout_min_us` steps down (same term, no leader), so one that can send but
//!   not receive stops suppressing elections with its heartbeats. Behind the HovercRaft++
//!   switch, followers answer the switch, not the leader: a group reply (the switch saw a
//!   majority hold our entry) is the leader's proof of a live majority. The other half is the
//!   leader lease: a node that heard from its leader within that time ignores vote requests
//!   of a higher term.

use rand::Rng;

use super::timers::Timer;
use super::{Canary, Event, Replica, Role, Target};
use crate::time::{Duration, Instant};
use crate::wire::raft::{LogEntry, NodeId, RaftBody, RaftMessage, RaftType};
use crate::wire::Policy;

impl Replica {
    pub(crate) fn reset_election_deadline(&mut self, now: Instant) {
        let lo = self.cfg.election_timeout_min_us;
        let hi = self.cfg.election_timeout_max_us.max(lo + 1);
        let at = now + Duration::from_us(self.rng.gen_range(lo..hi));
        self.timers.set(Timer::Election, at);
    }

    /// Adopts `term` (if newer) as a follower of `leader` (if known).
    /// Whether `from`, speaking as the leader of `term`, contradicts the leader this node
    /// already knows for that term (itself included). A term has one leader; a second
    /// claimant is a buggy or forged peer, and its message is dropped and counted, never
    /// followed (two leaders in a term once reached the invariant checks, a panic in debug
    /// builds, from a single datagram).
    pub(crate) fn rival_leader(&mut self, term: u64, from: NodeId) -> bool {
        let known = match self.term_leader {
            Some((t, l)) if t == term => Some(l),
            _ => None,
        };
        let rival = known.is_some_and(|l| l != from)
            || (self.role == Role::Leader && term == self.term && from != self.id);
        if rival {
            self.counters.rival_leader_messages += 1;
        }
        rival
    }

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
        // A leader stepping down in its own term knows no leader.
        let same_leader = term == was.1 && was.0 != Role::Leader;
        self.leader = leader.or(if same_leader { was.2 } else { None });
        if let Some(l) = self.leader {
            self.term_leader = Some((self.term, l));
        }
        if (self.term, self.leader) != (was.1, was.2) {
            // A new leader: only the committed prefix is known to match its log.
            self.leader_match_index = self.commit_index;
        }
        self.pre_votes = None;
        self.timers.stop(Timer::Heartbeat);
        if (self.role, self.term, self.leader) != was {
            self.emit(Event::RoleChanged {
                role: self.role,
                term: self.term,
                leader: self.leader,
            });
        }
    }

    fn election_window(&self) -> Duration {
        Duration::from_us(self.cfg.election_timeout_min_us)
    }

    /// The election timer fired: ask for pre-votes first (if on), else stand at once.
    pub(crate) fn campaign(&mut self, now: Instant) {
        if self.applied_index < self.needs_snapshot_upto || self.rejoin.is_some() {
            // It lacks state a peer holds only as a snapshot (as leader it could not apply),
            // or it lost its state and rejoins: it waits for a leader.
            self.reset_election_deadline(now);
            return;
        }
        if self.cfg.pre_vote && self.n() > 1 {
            self.start_pre_vote(now);
        } else {
            self.start_election(now);
        }
    }

    /// A pre-candidate stays a follower of no one in its term; nothing durable changes.
    fn start_pre_vote(&mut self, now: Instant) {
        let was = (self.role, self.leader);
        self.role = Role::Follower;
        self.leader = None;
        self.pre_votes = Some(1 << self.id);
        self.counters.pre_votes_started += 1;
        self.reset_election_deadline(now);
        if (self.role, self.leader) != was {
            self.emit(Event::RoleChanged {
                role: self.role,
                term: self.term,
                leader: None,
            });
        }
        let msg = RaftMessage {
            from: self.id,
            term: self.term + 1,
            body: RaftBody::PreVoteRequest {
                last_log_idx: self.log.last_index(),
                last_log_term: self.log.last_term(),
            },
        };
        for peer in 0..self.n() as NodeId {
            if peer != self.id {
                // Not durable: a pre-vote changes no state and promises nothing.
                self.send(Target::Peer(peer), msg.clone(), false);
            }
        }
    }

    /// Whether this node heard from a leader within the minimum election timeout (a leader
    /// hears itself).
    fn heard_leader_recently(&self, now: Instant) -> bool {
        match self.role {
            Role::Leader => true,
            Role::Follower | Role::Candidate => {
                self.leader.is_some()
                    && self
                        .leader_heard_at
                        .is_some_and(|t| now < t + self.election_window())
            }
        }
    }

    /// Check-quorum's leader lease (etcd `inLease`): a vote request of a higher term is
    /// ignored — no reply, no new term — while our leader was heard recently, so a node that
    /// lost touch with the leader cannot depose it.
    pub(crate) fn ignore_in_lease(&mut self, now: Instant, msg: &RaftMessage) -> bool {
        let ignore = self.cfg.check_quorum
            && matches!(msg.body, RaftBody::VoteRequest { .. })
            && msg.term > self.term
            && self.heard_leader_recently(now);
        if ignore {
            self.counters.votes_ignored_in_lease += 1;
        }
        ignore
    }

    /// "Would you vote for me at `term`?" Answered without adopting `term`: yes only for a
    /// higher term, an up-to-date log, and no leader heard recently.
    pub(crate) fn on_pre_vote_request(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        last_log_idx: u64,
        last_log_term: u64,
    ) {
        let granted = term > self.term
            && self.may_vote_in(term)
            && self
                .log
                .candidate_is_up_to_date(last_log_idx, last_log_term)
            && !self.heard_leader_recently(now);
        // A refusal carries our term, so a pre-candidate behind in terms catches up.
        let reply = RaftMessage {
            from: self.id,
            term: if granted { term } else { self.term },
            body: RaftBody::PreVoteReply { granted },
        };
        self.send(Target::Peer(from), reply, false);
    }

    pub(crate) fn on_pre_vote_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        granted: bool,
    ) {
        let Some(votes) = self.pre_votes else {
            self.counters.stale_messages += 1;
            return;
        };
        if !granted || term != self.term + 1 || from as usize >= self.n() {
            return; // a refusal of a higher term made us a follower already
        }
        let votes = votes | 1 << from;
        self.pre_votes = Some(votes);
        if votes.count_ones() as usize >= self.quorum() {
            self.start_election(now);
        }
    }

    /// Records proof of life once a message of `term` from `from` was handled: a leader
    /// hears a follower, or a majority through a group reply (check-quorum); a follower hears
    /// its leader (the lease).
    pub(crate) fn note_contact(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        kind: RaftType,
        via_switch: bool,
    ) {
        if term != self.term {
            return;
        }
        let pre_vote = matches!(kind, RaftType::PreVoteRequest | RaftType::PreVoteReply);
        match self.role {
            Role::Leader if kind == RaftType::AppendEntriesRepGroup => {
                if via_switch {
                    self.quorum_heard_at = now;
                }
            }
            Role::Leader => {
                if from != self.id && (from as usize) < self.n() && !pre_vote {
                    self.progress[from as usize].last_active = now;
                }
            }
            Role::Follower | Role::Candidate => {
                let from_leader = match kind {
                    RaftType::AppendEntriesReq | RaftType::AnnounceCommitReq => {
                        self.leader == Some(from)
                    }
                    RaftType::AppendEntriesRepGroup => via_switch && self.leader.is_some(),
                    _ => false,
                };
                if from_leader {
                    self.leader_heard_at = Some(now);
                }
            }
        }
    }

    /// Until when this leader has proof that a majority, itself included, hears it: the
    /// (quorum − 1)-th most recent follower, or the last group reply, plus the window.
    fn quorum_deadline(&self) -> Instant {
        let window = self.election_window();
        let mut heard: Vec<Instant> = (0..self.n())
            .filter(|&i| i != self.id as usize)
            .map(|i| self.progress[i].last_active)
            .collect();
        heard.sort_unstable_by(|a, b| b.cmp(a));
        let direct = heard[self.quorum() - 2] + window;
        direct.max(self.quorum_heard_at + window)
    }

    /// Leader, check-quorum: step down (same term, no leader) once no majority was heard
    /// for a whole window; otherwise look again when the current proof runs out.
    pub(crate) fn check_quorum(&mut self, now: Instant) {
        if !self.cfg.check_quorum || self.n() == 1 {
            self.timers.stop(Timer::CheckQuorum);
            return;
        }
        let deadline = self.quorum_deadline();
        if deadline > now {
            self.timers.set(Timer::CheckQuorum, deadline);
            return;
        }
        if self.canary(Canary::NoCheckQuorum) {
            // The bug: keep leading, deaf, and keep followers from electing anyone else.
            self.timers
                .set(Timer::CheckQuorum, now + self.election_window());
            return;
        }
        self.counters.quorum_lost += 1;
        self.become_follower(now, self.term, None);
        debug_assert!(self.leader.is_none() && self.role == Role::Follower);
    }

    pub(crate) fn start_election(&mut self, now: Instant) {
        self.role = Role::Candidate;
        self.pre_votes = None;
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
            && self.may_vote_in(term)
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
        self.term_leader = Some((self.term, self.id));
        self.pre_votes = None;
        self.counters.times_leader += 1;
        self.quorum_heard_at = now;
        if self.cfg.check_quorum && self.n() > 1 {
            self.timers
                .set(Timer::CheckQuorum, now + self.election_window());
        }
        let next = self.log.last_index() + 1;
        for p in &mut self.progress {
            p.reset_for_new_leader(next, now);
        }
        self.balancer.reset();
        // HovercRaft++: the switch path starts at this term's first entry (the no-op below),
        // so the switch only ever counts entries of the current term.
        self.switch_next = self.log.last_index() + 1;
        self.clear_switch_in_flight();
        // HovercRaft++: a leader holding inherited entries as metadata only sends nothing
        // through the switch until it holds their bodies (`send_one_switch_append`).
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
