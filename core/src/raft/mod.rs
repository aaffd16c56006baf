//! Raft and HovercRaft inside R2P2 (DESIGN.md §3), sans-IO.
//!
//! - [`election`]: randomized timeouts, RequestVote, stepping down on higher terms.
//! - [`replication`]: AppendEntries (one in flight per follower, batched), commit by counting
//!   current-term entries only, ANNOUNCE_COMMIT, recovery of missing request bodies.
//! - [`reply_lb`]: the designated-replier choice (reply and read-only load balancing).
//! - [`unordered`]: the bounded buffer of multicast request bodies awaiting their order.
//! - [`log`]: the in-memory log with compaction.
//! - [`switch_path`]: HovercRaft++ — AppendEntries through the switch aggregator, fall-back to
//!   direct fan-out when it stops answering, and return when it is back.
//!
//! Durability follows etcd's rule "persist before you send": changes to term, vote and log
//! are handed to the driver ([`Replica::poll_persist`]); a message that depends on them (a
//! vote, a follower's AppendEntries reply, a candidate's RequestVote) is held until the driver
//! reports them persisted ([`Replica::handle_persisted`]). The leader's own log counts towards
//! a majority only up to what it persisted.

pub mod config;
pub mod election;
pub mod log;
pub mod replication;
pub mod reply_lb;
pub mod switch_path;
pub mod unordered;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::node::{Mode, NodeEvent, Shared};
use crate::r2p2::server;
use crate::time::{Duration, Instant};
use crate::wire::raft::{LogEntry, NodeId, RaftMessage};
use crate::wire::{MsgType, Policy, Transmit};

pub use self::config::{Canary, ClusterConfig, RaftConfig};
use self::log::RaftLog;
use self::reply_lb::{ReplierPolicy, ReplyBalancer};
use self::unordered::UnorderedBuffer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// What storage holds for a replica: enough to restart it after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    /// Log entries from index 1.
    pub entries: Vec<LogEntry>,
}

/// What the driver must make durable before the node may send what depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistRequest {
    pub seq: u64,
    pub term: u64,
    pub voted_for: Option<NodeId>,
    /// Log entries from this index to `last_index` changed (appended or rewritten); entries
    /// after `last_index` no longer exist. `None`: the log did not change.
    pub log_from: Option<u64>,
    pub last_index: u64,
}

/// Replication counters reported in summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaCounters {
    pub elections_started: u64,
    pub times_leader: u64,
    pub entries_appended: u64,
    pub append_entries_sent: u64,
    pub append_entries_received: u64,
    pub recovery_requests: u64,
    pub recovery_replies: u64,
    pub announce_commits_sent: u64,
    pub drops_flow_control: u64,
    pub drops_no_replier: u64,
    pub drops_not_leader: u64,
    pub stale_messages: u64,
    pub persists: u64,
    /// Raft datagrams this node sent (every message type, every destination).
    pub raft_packets_sent: u64,
    /// Times the leader's commit index advanced.
    pub commit_advances: u64,
    pub switch_appends: u64,
    pub group_replies: u64,
    pub switch_fallbacks: u64,
    pub switch_returns: u64,
}

struct Progress {
    next_index: u64,
    match_index: u64,
    /// An AppendEntries is in flight until this time (then it may be sent again).
    in_flight_until: Option<Instant>,
    /// The last index the AppendEntries in flight carries (its prev index if empty): only a
    /// reply acknowledging at least this far answers it (see `on_append_reply`).
    in_flight_last: u64,
    /// When this follower last answered; one silent for an election timeout is not given
    /// replies to send (it may be down).
    last_heard: Instant,
    /// HovercRaft++: this follower fell behind the switch path and is caught up directly.
    lagging: bool,
    /// The highest `done` (applied index) seen from this follower.
    reported_done: u64,
}

/// Raft/HovercRaft replica state: everything a node in a replicated mode adds.
pub struct Replica {
    mode: Mode,
    id: NodeId,
    cluster: ClusterConfig,
    cfg: RaftConfig,
    rng: ChaCha8Rng,

    role: Role,
    term: u64,
    voted_for: Option<NodeId>,
    leader: Option<NodeId>,
    log: RaftLog,
    commit_index: u64,
    applied_index: u64,
    /// Highest index up to which every entry this node must execute has its body.
    body_complete_index: u64,

    votes: u64,
    election_deadline: Instant,
    heartbeat_deadline: Instant,
    progress: Vec<Progress>,
    balancer: ReplyBalancer,
    unordered: UnorderedBuffer,
    /// Missing bodies requested: log index → when asked.
    recoveries: BTreeMap<u64, Instant>,
    /// How many times each missing body was asked for (picks the next peer to ask).
    recovery_attempts: BTreeMap<u64, u64>,

    // Persistence barrier.
    hard_state_dirty: bool,
    log_dirty_from: Option<u64>,
    persist_seq: u64,
    persisted_seq: u64,
    persists_in_flight: VecDeque<(u64, u64)>,
    persisted_index: u64,
    held: VecDeque<(u64, Transmit)>,
    next_msg_id: u16,

    /// Entries up to here are re-executed silently (applied before a crash).
    replay_until: u64,

    // HovercRaft++ (leader side).
    use_switch: bool,
    /// Last index sent through the switch and not yet confirmed, with its deadline.
    switch_in_flight: Option<(u64, Instant)>,
    switch_next: u64,
    last_switch_append: Instant,
    next_probe: Instant,

    pub counters: ReplicaCounters,
}

impl Replica {
    pub fn new(
        mode: Mode,
        id: NodeId,
        cluster: ClusterConfig,
        cfg: RaftConfig,
        seed: u64,
        now: Instant,
    ) -> Replica {
        let n = cluster.peers.len();
        let policy = if mode == Mode::Raft {
            // Vanilla Raft: the leader executes and answers everything.
            ReplierPolicy::LeaderOnly
        } else {
            cfg.replier_policy
        };
        let mut r = Replica {
            mode,
            id,
            rng: ChaCha8Rng::seed_from_u64(seed),
            role: Role::Follower,
            term: 0,
            voted_for: None,
            leader: None,
            log: RaftLog::default(),
            commit_index: 0,
            applied_index: 0,
            body_complete_index: 0,
            votes: 0,
            election_deadline: Instant::MAX,
            heartbeat_deadline: Instant::MAX,
            progress: (0..n)
                .map(|_| Progress {
                    next_index: 1,
                    match_index: 0,
                    in_flight_until: None,
                    in_flight_last: 0,
                    last_heard: now,
                    lagging: false,
                    reported_done: 0,
                })
                .collect(),
            balancer: ReplyBalancer::new(n, policy, cfg.replier_bound, cfg.replier_max_lag),
            unordered: UnorderedBuffer::new(
                cfg.unordered_capacity,
                Duration::from_us(cfg.unordered_expiry_us),
            ),
            recoveries: BTreeMap::new(),
            recovery_attempts: BTreeMap::new(),
            hard_state_dirty: false,
            log_dirty_from: None,
            persist_seq: 0,
            persisted_seq: 0,
            persists_in_flight: VecDeque::new(),
            persisted_index: 0,
            held: VecDeque::new(),
            next_msg_id: 0,
            replay_until: 0,
            use_switch: mode == Mode::HovercraftPlusPlus,
            switch_in_flight: None,
            switch_next: 1,
            last_switch_append: Instant::ZERO,
            next_probe: Instant::MAX,
            counters: ReplicaCounters::default(),
            cluster,
            cfg,
        };
        if r.cluster.campaign_at_start {
            r.election_deadline = now;
        } else {
            r.reset_election_deadline(now);
        }
        r
    }

    /// Loads durable state after a crash: term, vote and log survive; everything else is
    /// rebuilt (commit index from the leader, application state by re-executing the log).
    pub(crate) fn restore(&mut self, durable: DurableState) {
        self.term = durable.term;
        self.voted_for = durable.voted_for;
        for e in durable.entries {
            self.log.append(e);
        }
        self.persisted_index = self.log.last_index();
        // Whatever this node applied before the crash lies within its durable log; it may
        // have answered any of it, so it answers none of it again (at most once). Entries it
        // never held get answered as usual. (Seed 674 of `check` found the earlier version,
        // which trusted the next leader's commit index, answering a request twice.)
        self.replay_until = self.log.last_index();
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn unordered_stats(&self) -> unordered::UnorderedStats {
        self.unordered.stats
    }
    pub fn outstanding_replies(&self, node: NodeId) -> usize {
        self.balancer.outstanding(node)
    }
    pub fn replier_bound(&self) -> usize {
        self.balancer.bound()
    }
    /// Cluster size.
    pub fn peers(&self) -> usize {
        self.cluster.peers.len()
    }
    fn n(&self) -> usize {
        self.cluster.peers.len()
    }
    fn quorum(&self) -> usize {
        self.n() / 2 + 1
    }

    // ---- persistence barrier -------------------------------------------------------------

    fn mark_hard_state(&mut self) {
        self.hard_state_dirty = true;
    }

    fn mark_log_from(&mut self, index: u64) {
        self.log_dirty_from = Some(self.log_dirty_from.map_or(index, |f| f.min(index)));
        // Anything at or after a rewritten index is no longer known durable.
        self.persisted_index = self.persisted_index.min(index.saturating_sub(1));
    }

    fn dirty(&self) -> bool {
        self.hard_state_dirty || self.log_dirty_from.is_some()
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
        let req = PersistRequest {
            seq: self.persist_seq,
            term: self.term,
            // The canary forgets votes across restarts: it never writes them.
            voted_for: if self.cfg.canary == Some(Canary::VoteNotPersisted) {
                None
            } else {
                self.voted_for
            },
            log_from: self.log_dirty_from,
            last_index: self.log.last_index(),
        };
        self.persists_in_flight.push_back((req.seq, req.last_index));
        self.hard_state_dirty = false;
        self.log_dirty_from = None;
        Some(req)
    }

    /// The driver made persist request `seq` (and every earlier one) durable.
    pub fn handle_persisted(&mut self, shared: &mut Shared, now: Instant, seq: u64) {
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
            let (_, t) = self.held.pop_front().expect("peeked");
            shared.transmits.push_back(t);
        }
        if self.role == Role::Leader {
            self.maybe_commit(shared, now);
        }
        // Newly durable entries may be committed already: apply them.
        self.apply_committed(shared);
    }

    /// Sends a Raft message; a `durable` one waits for every change made so far to persist.
    fn send(&mut self, shared: &mut Shared, to: SocketAddrV4, msg: &RaftMessage, durable: bool) {
        let mut body = Vec::with_capacity(msg.encoded_len());
        msg.encode(&mut body);
        let id = self.next_msg_id;
        self.next_msg_id = id.wrapping_add(1);
        let dep = if durable { self.barrier() } else { 0 };
        let after = shared.call_app_cpu_ns;
        let mut q = VecDeque::new();
        if server::send(
            &mut q,
            to,
            msg.r2p2_type(),
            Policy::FixedRoute,
            id,
            &body,
            after,
        )
        .is_err()
        {
            // Only a message over the framing limit fails, and Raft messages are bounded far
            // below it (30 entries per AppendEntries).
            return;
        }
        self.counters.raft_packets_sent += q.len() as u64;
        if dep > self.persisted_seq {
            self.held.extend(q.into_iter().map(|t| (dep, t)));
        } else {
            shared.transmits.extend(q);
        }
    }

    fn peer(&self, id: NodeId) -> SocketAddrV4 {
        self.cluster.peers[id as usize]
    }

    /// The HovercRaft++ switch aggregator's address, if any.
    pub fn switch_addr(&self) -> Option<SocketAddrV4> {
        self.cluster.switch
    }

    /// Whether the leader currently replicates through the switch (HovercRaft++).
    pub fn via_switch(&self) -> bool {
        self.mode == Mode::HovercraftPlusPlus && self.use_switch && self.cluster.switch.is_some()
    }

    /// Which node sent from `addr`, if it is a peer.
    pub fn peer_id(&self, addr: SocketAddrV4) -> Option<NodeId> {
        self.cluster
            .peers
            .iter()
            .position(|&p| p == addr)
            .map(|i| i as NodeId)
    }

    // ---- client requests -------------------------------------------------------------------

    /// A client request arrived (unicast to the leader in `raft` mode, by multicast to every
    /// replica in `hovercraft` mode).
    pub fn on_client_request(
        &mut self,
        shared: &mut Shared,
        now: Instant,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        body: &[u8],
    ) {
        if self.role != Role::Leader {
            if self.mode == Mode::Raft {
                // Vanilla Raft clients talk to the leader; tell a misdirected one to retry.
                self.counters.drops_not_leader += 1;
                // The DROP redirects: the leader's address (6 bytes) when known, else one zero
                // byte ("not the leader, leader unknown"). An empty DROP is flow control.
                let mut hint = Vec::new();
                match self.leader {
                    Some(l) => crate::wire::put_addr(&mut hint, self.peer(l)),
                    None => hint.push(0),
                }
                shared.send_drop(client, req_id, policy, &hint);
            } else {
                self.unordered.insert(now, (client, req_id), body.to_vec());
                self.on_body_arrived(shared, now, client, req_id);
            }
            return;
        }
        if self.cfg.canary == Some(Canary::DeposedLeaderServesReads)
            && policy == Policy::ReplicatedRouteNoSe
        {
            // The bug: a read answered from local state, never ordered.
            let req = crate::node::Execute {
                client,
                req_id,
                policy,
                body,
                index: 0,
                term: self.term,
            };
            shared.execute(req, true);
            return;
        }
        if self.log.last_index() - self.applied_index >= self.cfg.flow_control_threshold
            || self.log.len() as u64
                >= self.cfg.flow_control_threshold + self.cfg.log_retention_entries
        {
            self.counters.drops_flow_control += 1;
            shared.send_drop(client, req_id, policy, &[]);
            return;
        }
        let index = self.log.last_index() + 1;
        let id = self.id;
        let silent = Duration::from_us(self.cfg.election_timeout_min_us);
        let progress = &self.progress;
        let live = |n: NodeId| n == id || progress[n as usize].last_heard + silent > now;
        let Some(replier) = self.balancer.choose(index, id, &mut self.rng, live) else {
            self.counters.drops_no_replier += 1;
            shared.send_drop(client, req_id, policy, &[]);
            return;
        };
        let policy = if policy.is_replicated() {
            policy
        } else {
            Policy::ReplicatedRoute
        };
        self.log.append(LogEntry {
            term: self.term,
            client,
            req_id,
            policy,
            replier,
            body: Some(body.to_vec()),
        });
        self.counters.entries_appended += 1;
        self.mark_log_from(index);
        self.advance_body_complete();
        if self.cfg.canary == Some(Canary::ReplyBeforeCommit) {
            // The bug: treat an entry as committed as soon as the leader has it.
            self.commit_index = self.log.last_index();
            self.apply_committed(shared);
        }
        self.broadcast_append(shared, now);
    }

    // ---- applying ----------------------------------------------------------------------------

    /// Whether this node must execute the entry (and so needs its body).
    fn must_execute(&self, e: &LogEntry) -> bool {
        match e.policy {
            Policy::ReplicatedRoute => true,
            Policy::ReplicatedRouteNoSe => e.replier == self.id,
            // No-op entries a new leader appends.
            Policy::LbRoute | Policy::FixedRoute => false,
        }
    }

    fn advance_body_complete(&mut self) {
        let mut i = self.body_complete_index.max(self.log.first_index() - 1);
        while let Some(e) = self.log.get(i + 1) {
            if self.must_execute(e) && e.body.is_none() {
                break;
            }
            i += 1;
        }
        self.body_complete_index = i;
    }

    /// Committed entries are ready to execute. With inline execution (one core for
    /// everything) they run now; otherwise the driver runs them on the application core
    /// through [`Replica::execute_next`].
    pub(crate) fn apply_committed(&mut self, shared: &mut Shared) {
        if !shared.defer_execution {
            while self.execute_next(shared).is_some() {}
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

    /// Whether `execute_next` has work: a committed entry this node must execute, body present.
    pub fn has_ready_execution(&self) -> bool {
        self.applied_index < self.apply_limit()
            && self
                .log
                .get(self.applied_index + 1)
                .is_some_and(|e| !self.must_execute(e) || e.body.is_some())
    }

    /// Moves the applied index over committed entries this node does not execute (no-ops,
    /// reads assigned to others): they cost nothing and must not wait behind the app core.
    fn skip_unexecuted(&mut self) {
        let before = self.applied_index;
        while self.applied_index < self.apply_limit() {
            match self.log.get(self.applied_index + 1) {
                Some(e) if !self.must_execute(e) => self.applied_index += 1,
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
    }

    /// Executes the next committed entry this node must execute (in log order) and returns
    /// its CPU cost; `None` if none is ready (or its body has not arrived yet).
    pub fn execute_next(&mut self, shared: &mut Shared) -> Option<u64> {
        self.skip_unexecuted();
        if self.applied_index >= self.apply_limit() {
            return None;
        }
        let index = self.applied_index + 1;
        let e = self.log.get(index)?;
        let body = e.body.as_ref()?; // recovery will bring it
        let before = shared.call_app_cpu_ns;
        // A restarted node re-executes what it applied before its crash without answering
        // again: it may have answered already, and a client must not get two replies.
        let replay =
            index <= self.replay_until && self.cfg.canary != Some(Canary::ApplyTwiceAfterRecovery);
        let reply = e.replier == self.id && !replay;
        let req = crate::node::Execute {
            client: e.client,
            req_id: e.req_id,
            policy: e.policy,
            body,
            index,
            term: e.term,
        };
        shared.execute(req, reply);
        self.applied_index = index;
        self.after_applied();
        self.skip_unexecuted();
        Some(shared.call_app_cpu_ns - before)
    }

    fn compact(&mut self) {
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
        }
        if upto >= self.log.first_index() + 1024 {
            self.log.compact_to(upto);
        }
    }

    // ---- timers ----------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, shared: &mut Shared, now: Instant) {
        self.unordered.expire(now);
        if self.role == Role::Leader {
            self.switch_timers(shared, now);
            if now >= self.heartbeat_deadline {
                self.heartbeat(shared, now);
            }
        } else if now >= self.election_deadline {
            self.start_election(shared, now);
        }
        self.retry_recoveries(shared, now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = if self.role == Role::Leader {
            self.heartbeat_deadline
        } else {
            self.election_deadline
        };
        if let Some(u) = self.unordered.next_expiry() {
            t = t.min(u);
        }
        if self.role == Role::Leader {
            if let Some((_, d)) = self.switch_in_flight {
                t = t.min(d);
            }
            if !self.use_switch {
                t = t.min(self.next_probe);
            }
        }
        if let Some(r) = self.recoveries.values().min() {
            t = t.min(*r + Duration::from_us(self.cfg.recovery_retry_us));
        }
        (t != Instant::MAX).then_some(t)
    }

    pub(crate) fn emit_event(shared: &mut Shared, ev: NodeEvent) {
        shared.events.push_back(ev);
    }

    /// Handles a decoded Raft message from a peer.
    /// Handles a decoded Raft message from a peer (`via_switch`: relayed or sent by the
    /// HovercRaft++ aggregator).
    pub fn on_raft_message(
        &mut self,
        shared: &mut Shared,
        now: Instant,
        msg: RaftMessage,
        via_switch: bool,
    ) {
        use crate::wire::raft::RaftBody::*;
        let from = msg.from;
        if msg.term > self.term {
            self.become_follower(shared, now, msg.term, None);
        }
        match msg.body {
            VoteRequest {
                last_log_idx,
                last_log_term,
            } => self.on_vote_request(shared, now, from, msg.term, last_log_idx, last_log_term),
            VoteReply { granted } => self.on_vote_reply(shared, now, from, msg.term, granted),
            AppendEntriesReq {
                prev_log_idx,
                prev_log_term,
                leader_commit,
                entries,
            } => self.on_append_entries(
                shared,
                now,
                from,
                msg.term,
                prev_log_idx,
                prev_log_term,
                leader_commit,
                entries,
                via_switch,
            ),
            AppendEntriesRep {
                result,
                last_log_idx,
                first_idx,
                done,
            } => self.on_append_reply(
                shared,
                now,
                from,
                msg.term,
                result,
                last_log_idx,
                first_idx,
                done,
            ),
            AnnounceCommitReq { commit_idx } => {
                self.on_announce_commit(shared, now, from, msg.term, commit_idx)
            }
            AppendEntriesRepGroup {
                last_log_idx,
                commit_idx,
                dones,
            } if via_switch => {
                self.on_group_reply(shared, now, msg.term, last_log_idx, commit_idx, &dones)
            }
            AnnounceCommitRep { .. } | AppendEntriesRepGroup { .. } => {
                // Only the switch sends group replies; nobody sends ANNOUNCE_COMMIT_REP.
                self.counters.stale_messages += 1;
            }
            RecoveryReq {
                log_idx,
                client,
                req_id,
            } => self.on_recovery_request(shared, from, msg.term, log_idx, client, req_id),
            RecoveryRep {
                log_idx,
                client,
                req_id,
                policy: _,
                body,
            } => self.on_recovery_reply(shared, now, msg.term, log_idx, client, req_id, body),
        }
    }

    pub(crate) fn msg(&self, body: crate::wire::raft::RaftBody) -> RaftMessage {
        RaftMessage {
            from: self.id,
            term: self.term,
            body,
        }
    }

    pub fn is_replica_message(t: MsgType) -> bool {
        matches!(t, MsgType::RaftReq | MsgType::RaftRep | MsgType::RaftMsg)
    }
}
