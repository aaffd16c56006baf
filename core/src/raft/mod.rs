//! Raft and HovercRaft consensus (DESIGN.md §3, §4) as a component, in etcd's
//! `RawNode` shape: it knows no application, no R2P2 framing and no CPU model. Inputs:
//! [`Replica::step`] (a peer's message), [`Replica::propose`] (a client request),
//! [`Replica::handle_timeout`], [`Replica::handle_persisted`], [`Replica::handle_applied`].
//! Outputs, pulled: [`Replica::poll_output`] (messages, refusals, entries applied on commit,
//! events, in the order they happened), [`Replica::poll_persist`] (term, vote and the entries
//! to write), [`Replica::next_to_apply`], [`Replica::poll_timeout`].
//!
//! - [`config`]: protocol constants and their validation, the cluster, canaries.
//! - [`output`]: what the replica hands back.
//! - [`election`]: randomized timeouts, RequestVote, stepping down on higher terms.
//! - [`replication`]: AppendEntries (batched, pipelined up to `max_appends_in_flight` per
//!   follower, the window in `progress`), commit by counting
//!   current-term entries only, ANNOUNCE_COMMIT, recovery of missing request bodies.
//! - [`reply_lb`]: the designated-replier choice (reply and read-only load balancing).
//! - [`unordered`]: the bounded buffer of multicast request bodies awaiting their order.
//! - [`log`]: the in-memory log with compaction.
//! - [`session`]: exactly-once execution: client sessions, the leader's index of pending
//!   requests, and remembered refusals.
//! - [`switch_path`]: HovercRaft++ — AppendEntries through the switch aggregator, fall-back to
//!   direct fan-out when it stops answering, and return when it is back.
//! - [`apply`]: which committed entries this node executes and when; compaction.
//! - [`snapshot`]: snapshots (taking, sending in chunks, installing) behind compaction.
//! - `persist`, `progress`, `timers`, `invariants`: the persistence barrier, the leader's view
//!   of each follower, the timer table, and the invariants checked after every input.
//!
//! Durability follows etcd's rule "persist before you send": changes to term, vote and log
//! are handed to the driver ([`Replica::poll_persist`]); a message that depends on them (a
//! vote, a follower's AppendEntries reply, a candidate's RequestVote) is held until the driver
//! reports them persisted ([`Replica::handle_persisted`]). The leader's own log counts towards
//! a majority only up to what it persisted.

pub mod apply;
pub mod config;
pub mod election;
mod invariants;
pub mod log;
pub mod output;
mod persist;
mod progress;
pub mod replication;
pub mod reply_lb;
pub mod session;
pub mod snapshot;
pub mod switch_path;
mod timers;
pub mod unordered;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddrV4;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::time::{Duration, Instant};
use crate::types::{Mode, NodeId};
use crate::wire::raft::{LogEntry, RaftBody, RaftMessage};
use crate::wire::Policy;

pub use self::config::{Canary, ClusterConfig, RaftConfig, RaftConfigError};
use self::log::RaftLog;
pub use self::output::{ApplyMode, Committed, Event, Outgoing, Output, Refusal, Target};
use self::progress::Progress;
use self::reply_lb::{ReplierPolicy, ReplyBalancer};
use self::session::{PendingIds, Refusals, Sessions};
pub use self::snapshot::{Snapshot, SnapshotError};
use self::timers::{Timer, TimerTable};
use self::unordered::UnorderedBuffer;

/// Where a node that lost its durable state stands (Raft dissertation §11.7.2: it must not
/// vote until it has caught up: it may have voted in the current term, and with a short log
/// it would vote for a candidate missing committed entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejoin {
    /// No leader heard yet: no vote, no campaign.
    Waiting,
    /// The leader of `term` said `commit` was committed when we first heard it: no vote, no
    /// campaign, and no reply for entries up to `commit` (we may have sent them before).
    CatchingUp { term: u64, commit: u64 },
}

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
    /// The newest durable snapshot: the state up to its index.
    pub snapshot: Option<Snapshot>,
    /// Log entries from the snapshot's index + 1 (from index 1 without a snapshot).
    pub entries: Vec<LogEntry>,
}

impl DurableState {
    /// Index of `entries[0]`.
    pub fn first_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index) + 1
    }

    /// Index of the last durable entry (the snapshot's if no entry follows it).
    pub fn last_index(&self) -> u64 {
        self.first_index() + self.entries.len() as u64 - 1
    }
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
    /// The entries `log_from..=last_index` to write, as they are now (empty if `log_from` is
    /// `None`).
    pub entries: Vec<LogEntry>,
    /// A snapshot to write first: once it is durable, storage may drop every entry up to its
    /// index (installed from the leader, it replaces the whole log: `log_from` is then its
    /// index + 1).
    pub snapshot: Option<Snapshot>,
}

/// Replication counters reported in summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaCounters {
    pub elections_started: u64,
    /// Pre-vote rounds started (each may lead to an election).
    pub pre_votes_started: u64,
    /// Times this node, leading, stepped down for want of a quorum (check-quorum).
    pub quorum_lost: u64,
    /// Vote requests of a higher term ignored because the leader was heard recently.
    pub votes_ignored_in_lease: u64,
    pub times_leader: u64,
    pub entries_appended: u64,
    pub append_entries_sent: u64,
    pub append_entries_received: u64,
    pub recovery_requests: u64,
    pub recovery_replies: u64,
    /// Recovery replies served from a body held under another index or in the unordered
    /// buffer (the asker's index did not hold it here).
    pub recovery_by_identity: u64,
    /// Committed reads given up after every replica was asked `recovery_give_up_rounds`
    /// times without an answer (their clients time out).
    pub reads_abandoned: u64,
    /// Times this node dropped its log from an uncommitted write whose body no reachable
    /// replica held: leading (it then stepped down), or told so by its leader.
    pub unrecoverable_suffixes_dropped: u64,
    /// Missing write bodies still unanswered after that many rounds (asked on, counted once).
    pub recoveries_exhausted: u64,
    /// Bodies of a truncated suffix kept for the same requests ordered again.
    pub bodies_kept_on_truncation: u64,
    pub announce_commits_sent: u64,
    pub drops_flow_control: u64,
    pub drops_no_replier: u64,
    pub drops_not_leader: u64,
    pub stale_messages: u64,
    /// Messages dropped unread: a term or index past `MAX_WIRE_NUMBER`, or a sender that is
    /// no member.
    pub malformed_messages: u64,
    /// Messages from a second node claiming to lead a term whose leader this node knows.
    pub rival_leader_messages: u64,
    pub persists: u64,
    /// Raft datagrams this node sent (every message type, every destination).
    pub raft_packets_sent: u64,
    /// Times the leader's commit index advanced.
    pub commit_advances: u64,
    pub switch_appends: u64,
    pub group_replies: u64,
    pub switch_fallbacks: u64,
    pub switch_returns: u64,
    /// Times a follower was found to need entries this leader already compacted (its
    /// rejection asked for an index before the first one kept): it is sent the leader's
    /// snapshot (before snapshots, the leader re-sent the same AppendEntries on each
    /// rejection, ~20k/s, and the follower never caught up).
    pub followers_behind_compaction: u64,
    /// Followers whose rejections proved they lost acknowledged entries (a wiped storage):
    /// what the leader counted for them was lowered.
    pub followers_lost_log: u64,
    /// Snapshots this node took of its own state. Not in summaries while 0 (as the four
    /// below).
    #[serde(skip_serializing_if = "is_zero")]
    pub snapshots_taken: u64,
    /// Snapshot transfers this leader started (one per follower and snapshot).
    #[serde(skip_serializing_if = "is_zero")]
    pub snapshots_sent: u64,
    /// Snapshot bytes this leader sent (chunks, retransmissions included).
    #[serde(skip_serializing_if = "is_zero")]
    pub snapshot_bytes_sent: u64,
    /// Snapshots this follower installed from its leader.
    #[serde(skip_serializing_if = "is_zero")]
    pub snapshots_installed: u64,
    /// Snapshots refused: larger than `raft.max_snapshot_bytes`, or unreadable.
    #[serde(skip_serializing_if = "is_zero")]
    pub snapshots_refused: u64,
    /// Recovery requests answered "compacted, my snapshot covers it" (by or to this node).
    #[serde(skip_serializing_if = "is_zero")]
    pub recoveries_compacted: u64,
    /// Times this node, rejoining after losing its state, caught up and may vote again.
    #[serde(skip_serializing_if = "is_zero")]
    pub rejoined: u64,
    /// AppendEntries unanswered for `append_retry_us`: the follower is probed again from
    /// what it acknowledged. Not in summaries while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub append_retries: u64,
    /// Rejections ignored as older than what the follower since acknowledged (behind one
    /// lost AppendEntries, the rest of the window is rejected too). Not in summaries while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub stale_rejections: u64,
    /// Copies of a request the leader did not order (its first copy is in the log, or was
    /// applied). Not in summaries while 0 (no duplication, no change).
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicates_ignored: u64,
    /// Committed entries not executed because their request was applied before.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicates_skipped: u64,
    /// Copies of a request refused again (this node refused it before).
    #[serde(skip_serializing_if = "is_zero")]
    pub refusals_repeated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Raft/HovercRaft replica state: everything a node in a replicated mode adds. It knows no
/// application, no transport and no CPU model: inputs are [`Replica::step`],
/// [`Replica::propose`], [`Replica::handle_timeout`], [`Replica::handle_persisted`] and
/// [`Replica::handle_applied`]; outputs are pulled with [`Replica::poll_output`],
/// [`Replica::poll_persist`], [`Replica::poll_timeout`] and [`Replica::next_to_apply`].
pub struct Replica {
    mode: Mode,
    id: NodeId,
    cluster: ClusterConfig,
    cfg: RaftConfig,
    rng: ChaCha8Rng,
    apply_mode: ApplyMode,

    role: Role,
    term: u64,
    voted_for: Option<NodeId>,
    leader: Option<NodeId>,
    log: RaftLog,
    commit_index: u64,
    applied_index: u64,
    /// Highest index up to which every entry this node must execute has its body.
    body_complete_index: u64,
    /// Follower: the highest index its log is known to share with the current leader's (an
    /// AppendEntries of this leader matched up to there; below the commit index every log
    /// matches). What it acknowledges on its own, outside an AppendEntries reply, stays
    /// within it.
    leader_match_index: u64,
    /// The leader of a term, once this node knew one (kept when it forgets the leader, e.g.
    /// after a DROP_SUFFIX, so that no other node is followed in that term).
    term_leader: Option<(u64, NodeId)>,

    votes: u64,
    /// Pre-vote grants (bit per node) while this node asks for pre-votes; `None` otherwise.
    pre_votes: Option<u64>,
    /// Follower: when it last heard from its leader (the lease against disruptive votes).
    leader_heard_at: Option<Instant>,
    /// HovercRaft++ leader: when a group reply last proved that a majority holds our entries.
    quorum_heard_at: Instant,
    timers: TimerTable,
    progress: Vec<Progress>,
    balancer: ReplyBalancer,
    unordered: UnorderedBuffer,
    /// Exactly-once execution (session.rs): replicated client sessions, the leader's
    /// pending requests, this node's recent refusals.
    sessions: Sessions,
    pending_ids: PendingIds,
    refusals: Refusals,
    /// Missing bodies requested: log index → when asked.
    recoveries: BTreeMap<u64, Instant>,
    /// How many times each missing body was asked for (picks the next peer to ask).
    recovery_attempts: BTreeMap<u64, u64>,
    /// Committed reads this node was to answer but whose body no replica gave back: skipped.
    abandoned: BTreeSet<u64>,

    // Persistence barrier (persist.rs).
    hard_state_dirty: bool,
    log_dirty_from: Option<u64>,
    persist_seq: u64,
    persisted_seq: u64,
    persists_in_flight: VecDeque<(u64, u64)>,
    persisted_index: u64,
    /// Messages waiting for persist request `.0` to be durable.
    held: VecDeque<(u64, Outgoing)>,
    /// Messages sent so far (numbers them in send order).
    sent_messages: u64,

    /// Entries up to here are re-executed silently (applied before a crash).
    replay_until: u64,

    // Snapshots (snapshot.rs).
    snapshot: Option<Snapshot>,
    /// Goes to storage with the next persist request.
    snapshot_to_persist: Option<Snapshot>,
    /// Follower: the leader's snapshot being received.
    incoming: Option<snapshot::Incoming>,
    /// Follower: a received snapshot the driver is loading (the leader to answer and the
    /// sessions it carries).
    restoring: Option<(NodeId, Sessions)>,
    /// Entries up to here are committed but only a snapshot can bring their effect (a peer
    /// answered RECOVERY_COMPACTED): until this node applied them, it does not campaign.
    needs_snapshot_upto: u64,
    /// This node lost its durable state and rejoins (`Replica::start_rejoining`).
    rejoin: Option<Rejoin>,
    /// Votes (and pre-votes) are granted only in terms above this: a node that lost its
    /// state may have voted in any term up to the one it rejoined in.
    min_vote_term: u64,

    // HovercRaft++ (leader side).
    use_switch: bool,
    /// Batches sent through the switch and not yet confirmed: (last index, sent at), oldest
    /// first, at most `max_appends_in_flight` (the oldest one's deadline is
    /// `Timer::SwitchReply`).
    switch_in_flight: VecDeque<(u64, Instant)>,
    switch_next: u64,
    last_switch_append: Instant,

    /// The newest (term, leader) this node has seen (invariant: one leader per term).
    leader_seen: Option<(u64, NodeId)>,

    out: VecDeque<Output>,
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
        apply_mode: ApplyMode,
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
            apply_mode,
            role: Role::Follower,
            term: 0,
            voted_for: None,
            leader: None,
            log: RaftLog::default(),
            commit_index: 0,
            applied_index: 0,
            body_complete_index: 0,
            leader_match_index: 0,
            term_leader: None,
            votes: 0,
            pre_votes: None,
            leader_heard_at: None,
            quorum_heard_at: now,
            timers: TimerTable::default(),
            progress: (0..n).map(|_| Progress::new(now)).collect(),
            balancer: ReplyBalancer::new(n, policy, cfg.replier_bound, cfg.replier_max_lag),
            unordered: UnorderedBuffer::new(
                cfg.unordered_capacity,
                cfg.unordered_capacity_bytes,
                Duration::from_us(cfg.unordered_expiry_us),
            ),
            sessions: Sessions::new(cfg.session_capacity),
            pending_ids: PendingIds::default(),
            refusals: Refusals::new(
                cfg.unordered_capacity,
                Duration::from_us(cfg.unordered_expiry_us),
            ),
            recoveries: BTreeMap::new(),
            recovery_attempts: BTreeMap::new(),
            abandoned: BTreeSet::new(),
            hard_state_dirty: false,
            log_dirty_from: None,
            persist_seq: 0,
            persisted_seq: 0,
            persists_in_flight: VecDeque::new(),
            persisted_index: 0,
            held: VecDeque::new(),
            sent_messages: 0,
            replay_until: 0,
            snapshot: None,
            snapshot_to_persist: None,
            incoming: None,
            restoring: None,
            needs_snapshot_upto: 0,
            rejoin: None,
            min_vote_term: 0,
            use_switch: mode == Mode::HovercraftPlusPlus,
            switch_in_flight: VecDeque::new(),
            switch_next: 1,
            last_switch_append: Instant::ZERO,
            leader_seen: None,
            out: VecDeque::new(),
            counters: ReplicaCounters::default(),
            cluster,
            cfg,
        };
        if r.cluster.campaign_at_start {
            r.timers.set(Timer::Election, now);
        } else {
            r.reset_election_deadline(now);
        }
        r
    }

    /// Loads durable state after a crash: term, vote and log survive; everything else is
    /// rebuilt (commit index from the leader, application state by re-executing the log).
    /// Call it before any other input.
    pub fn restore(&mut self, durable: DurableState) -> Result<(), SnapshotError> {
        self.term = durable.term;
        self.voted_for = durable.voted_for;
        if let Some(s) = durable.snapshot {
            self.restore_snapshot(s)?;
        }
        for e in durable.entries {
            self.log.append(e);
        }
        self.persisted_index = self.log.last_index();
        // Whatever this node applied before the crash lies within its durable log; it may
        // have answered any of it, so it answers none of it again (at most once). Entries it
        // never held get answered as usual. (Seed 674 of `check` found the earlier version,
        // which trusted the next leader's commit index, answering a request twice.)
        self.replay_until = self.log.last_index();
        self.check_invariants();
        Ok(())
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// This node lost its durable state (its storage was moved away after damage) and
    /// rejoins: it neither votes nor campaigns, and answers no entry it may have answered
    /// before, until it has applied what its first leader said was committed; afterwards it
    /// votes only in later terms. Call it after building (or restoring, if it crashed while
    /// rejoining) and before any input; the driver must remember it durably until
    /// [`Replica::is_rejoining`] turns false.
    pub fn start_rejoining(&mut self) {
        // Its election timer keeps running: `campaign` declines while rejoining.
        self.rejoin = Some(Rejoin::Waiting);
    }

    /// Whether this node is still rejoining (see [`Replica::start_rejoining`]).
    pub fn is_rejoining(&self) -> bool {
        self.rejoin.is_some()
    }

    /// A rejoining node heard the leader of `term`, which has committed up to `commit`.
    pub(crate) fn note_leader_while_rejoining(&mut self, term: u64, commit: u64) {
        if self.rejoin == Some(Rejoin::Waiting) {
            self.rejoin = Some(Rejoin::CatchingUp { term, commit });
            self.replay_until = self.replay_until.max(commit);
            self.min_vote_term = self.min_vote_term.max(term);
        }
        self.maybe_rejoined();
    }

    /// Rejoined once it applied what its first leader had committed.
    pub(crate) fn maybe_rejoined(&mut self) {
        if let Some(Rejoin::CatchingUp { commit, .. }) = self.rejoin {
            if self.applied_index >= commit {
                self.rejoin = None;
                self.counters.rejoined += 1;
            }
        }
    }

    /// Whether this node may vote (or pre-vote) in `term` at all.
    pub(crate) fn may_vote_in(&self, term: u64) -> bool {
        self.rejoin.is_none() && term > self.min_vote_term
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

    /// Whether a test-only bug is switched on (always false without the `canary` feature).
    #[inline]
    fn canary(&self, which: Canary) -> bool {
        #[cfg(feature = "canary")]
        {
            self.cfg.canary == Some(which)
        }
        #[cfg(not(feature = "canary"))]
        {
            let _ = which;
            false
        }
    }

    /// The next output, in the order the replica produced them.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    /// Refuses a request with DROP, and remembers it so that a later copy is refused too:
    /// a DROP from the leader of a term promises the request is never ordered in that term.
    fn refuse(
        &mut self,
        now: Instant,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        why: Refusal,
    ) {
        if !self.canary(Canary::NoRequestDedupe) {
            self.refusals.insert(now, (client, req_id), why);
        }
        let leader_term = (self.role == Role::Leader).then_some(self.term);
        self.out.push_back(Output::Refuse {
            client,
            req_id,
            policy,
            why,
            leader_term,
        });
    }

    /// Whether the leader currently replicates through the switch (HovercRaft++).
    pub fn via_switch(&self) -> bool {
        self.mode == Mode::HovercraftPlusPlus && self.use_switch && self.cluster.switch.is_some()
    }

    // ---- client requests -------------------------------------------------------------------

    /// A client request arrived (unicast to the leader in `raft` mode, by multicast to every
    /// replica in `hovercraft` mode). The leader orders it (or refuses it); a follower keeps
    /// its body until the leader's order names it.
    pub fn propose(
        &mut self,
        now: Instant,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        body: &[u8],
    ) {
        self.on_client_request(now, client, req_id, policy, body);
        self.check_invariants();
    }

    fn on_client_request(
        &mut self,
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
                let leader = self.leader;
                self.refuse(now, client, req_id, policy, Refusal::NotLeader { leader });
            } else {
                self.unordered.insert(now, (client, req_id), body.to_vec());
                self.on_body_arrived(now, client, req_id);
            }
            return;
        }
        if self.canary(Canary::DeposedLeaderServesReads) && policy == Policy::ReplicatedRouteNoSe {
            // The bug: a read answered from local state, never ordered.
            self.out.push_back(Output::Apply(Committed {
                index: 0,
                term: self.term,
                client,
                req_id,
                policy,
                body: body.to_vec().into(),
                reply: true,
            }));
            return;
        }
        if self.is_duplicate_request(now, client, req_id, policy) {
            return;
        }
        if self.log.last_index() - self.applied_index >= self.cfg.flow_control_threshold
            || self.log.len() as u64 >= self.cfg.max_log_entries()
            || self.log.body_bytes() + body.len() as u64 > self.cfg.max_log_bytes
        {
            self.counters.drops_flow_control += 1;
            self.refuse(now, client, req_id, policy, Refusal::FlowControl);
            return;
        }
        let index = self.log.last_index() + 1;
        let id = self.id;
        let silent = Duration::from_us(self.cfg.election_timeout_min_us);
        let progress = &self.progress;
        let live = |n: NodeId| n == id || progress[n as usize].last_heard + silent > now;
        let Some(replier) = self.balancer.choose(index, id, &mut self.rng, live) else {
            self.counters.drops_no_replier += 1;
            self.refuse(now, client, req_id, policy, Refusal::NoReplier);
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
        self.pending_ids.insert((client, req_id), index);
        self.mark_log_from(index);
        self.advance_body_complete();
        if self.canary(Canary::ReplyBeforeCommit) {
            // The bug: treat an entry as committed as soon as the leader has it.
            self.commit_index = self.log.last_index();
            self.apply_committed();
        }
        self.broadcast_append(now);
    }

    /// The leader's guard against ordering a request twice: a copy of a request it refused
    /// is refused again; a copy of one in its log not yet applied, or of one its sessions
    /// hold as applied, is ignored (the first copy's designated replier answers it once).
    fn is_duplicate_request(
        &mut self,
        now: Instant,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
    ) -> bool {
        debug_assert_eq!(self.role, Role::Leader);
        if self.canary(Canary::NoRequestDedupe) {
            return false;
        }
        let key = (client, req_id);
        if let Some(why) = self.refusals.get(now, &key) {
            self.counters.refusals_repeated += 1;
            self.refuse(now, client, req_id, policy, why);
            return true;
        }
        if self.pending_ids.term != self.term {
            self.rebuild_pending_ids();
        }
        let in_log = self
            .pending_ids
            .get(&key)
            .is_some_and(|i| self.log.get(i).is_some_and(|e| (e.client, e.req_id) == key));
        if in_log || self.sessions.is_duplicate(key) {
            self.counters.duplicates_ignored += 1;
            return true;
        }
        false
    }

    /// A new leader indexes the requests in its log it has not applied yet.
    fn rebuild_pending_ids(&mut self) {
        self.pending_ids.clear(self.term);
        let from = (self.applied_index + 1).max(self.log.first_index());
        for i in from..=self.log.last_index() {
            if let Some(e) = self.log.get(i).filter(|e| e.policy.is_replicated()) {
                self.pending_ids.insert((e.client, e.req_id), i);
            }
        }
        debug_assert!(self.pending_ids.len() as u64 <= self.log.last_index() - self.applied_index);
    }

    // ---- timers ----------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        self.unordered.expire(now);
        if self.role == Role::Leader && self.timers.expired(Timer::CheckQuorum, now) {
            self.check_quorum(now);
        }
        if self.role == Role::Leader {
            self.switch_timers(now);
            if self.timers.expired(Timer::Heartbeat, now) {
                self.heartbeat(now);
            }
            self.retry_appends(now);
        } else if self.timers.expired(Timer::Election, now) {
            self.campaign(now);
        }
        self.retry_recoveries(now);
        self.check_invariants();
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let recovery = self
            .recoveries
            .values()
            .min()
            .map(|r| *r + Duration::from_us(self.cfg.recovery_retry_us));
        [
            self.timers.next(self.role),
            self.unordered.next_expiry(),
            recovery,
            self.append_retry_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles a decoded Raft message from peer `msg.from` (`via_switch`: relayed or sent by
    /// the HovercRaft++ aggregator). The driver has checked the sender is who it claims.
    pub fn step(&mut self, now: Instant, msg: RaftMessage, via_switch: bool) {
        self.on_raft_message(now, msg, via_switch);
        self.check_invariants();
    }

    fn on_raft_message(&mut self, now: Instant, msg: RaftMessage, via_switch: bool) {
        let from = msg.from;
        let member = (from as usize) < self.n();
        // The switch originates group replies only; everything else it relays keeps its
        // sender's id.
        let from_switch = via_switch
            && from == crate::switch::SWITCH_NODE_ID
            && matches!(msg.body, RaftBody::AppendEntriesRepGroup { .. });
        if !(member || from_switch) || !msg.numbers_in_range() {
            // Arithmetic on these fields must never wrap, and per-peer state is indexed by
            // the sender: neither may depend on what a datagram claims.
            self.counters.malformed_messages += 1;
            return;
        }
        if self.ignore_in_lease(now, &msg) {
            return;
        }
        if msg.term > self.term && msg.body.adopts_term() {
            self.become_follower(now, msg.term, None);
        }
        let (term, kind) = (msg.term, msg.body.raft_type());
        self.dispatch(now, msg, via_switch);
        self.note_contact(now, from, term, kind, via_switch);
    }

    fn dispatch(&mut self, now: Instant, msg: RaftMessage, via_switch: bool) {
        use crate::wire::raft::RaftBody::*;
        let from = msg.from;
        match msg.body {
            VoteRequest {
                last_log_idx,
                last_log_term,
            } => self.on_vote_request(now, from, msg.term, last_log_idx, last_log_term),
            VoteReply { granted } => self.on_vote_reply(now, from, msg.term, granted),
            PreVoteRequest {
                last_log_idx,
                last_log_term,
            } => self.on_pre_vote_request(now, from, msg.term, last_log_idx, last_log_term),
            PreVoteReply { granted } => self.on_pre_vote_reply(now, from, msg.term, granted),
            AppendEntriesReq {
                prev_log_idx,
                prev_log_term,
                leader_commit,
                entries,
            } => self.on_append_entries(
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
            } => self.on_append_reply(now, from, msg.term, result, last_log_idx, first_idx, done),
            AnnounceCommitReq { commit_idx } => {
                self.on_announce_commit(now, from, msg.term, commit_idx)
            }
            DropSuffix {
                from_idx,
                entry_term,
            } => self.on_drop_suffix(now, from, msg.term, from_idx, entry_term),
            InstallSnapshotReq {
                last_idx,
                last_term,
                total_len,
                offset,
                chunk,
            } => self.on_install_snapshot(
                now, from, msg.term, last_idx, last_term, total_len, offset, chunk,
            ),
            InstallSnapshotRep { last_idx, received } => {
                self.on_install_snapshot_reply(now, from, msg.term, last_idx, received)
            }
            RecoveryCompacted {
                log_idx,
                snapshot_idx,
                snapshot_term,
            } => self.on_recovery_compacted(now, log_idx, snapshot_idx, snapshot_term),
            AppendEntriesRepGroup {
                last_log_idx,
                commit_idx,
                dones,
            } if via_switch => self.on_group_reply(now, msg.term, last_log_idx, commit_idx, &dones),
            AnnounceCommitRep { .. } | AppendEntriesRepGroup { .. } => {
                // Only the switch sends group replies; nobody sends ANNOUNCE_COMMIT_REP.
                self.counters.stale_messages += 1;
            }
            RecoveryReq {
                log_idx,
                client,
                req_id,
            } => self.on_recovery_request(from, msg.term, log_idx, client, req_id),
            RecoveryRep {
                log_idx,
                client,
                req_id,
                policy: _,
                body,
            } => self.on_recovery_reply(now, msg.term, log_idx, client, req_id, body),
        }
    }

    pub(crate) fn msg(&self, body: crate::wire::raft::RaftBody) -> RaftMessage {
        RaftMessage {
            from: self.id,
            term: self.term,
            body,
        }
    }
}
