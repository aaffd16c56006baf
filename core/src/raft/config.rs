//! Replication configuration: protocol constants ([`RaftConfig`]), where the peers are
//! ([`ClusterConfig`]), and the known bugs checker tests can switch on ([`Canary`]).

use std::net::SocketAddrV4;

use super::reply_lb::ReplierPolicy;

/// Protocol constants; defaults are the authors' values (PAPER.md).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub election_timeout_min_us: u64,
    pub election_timeout_max_us: u64,
    pub heartbeat_us: u64,
    /// An AppendEntries with no reply after this long is sent again.
    pub append_retry_us: u64,
    pub max_entries_per_append: usize,
    pub replier_policy: ReplierPolicy,
    /// Outstanding (assigned − done) entries per replier.
    pub replier_bound: usize,
    /// A follower whose applied index trails the leader's by more than this many entries is
    /// not named replier: it would answer only after executing its whole backlog.
    pub replier_max_lag: u64,
    /// The leader answers DROP when (last log index − last applied) reaches this.
    pub flow_control_threshold: u64,
    pub unordered_capacity: usize,
    pub unordered_expiry_us: u64,
    /// HovercRaft++: an AppendEntries sent through the switch with no group reply after this
    /// long makes the leader fall back to direct fan-out/fan-in.
    pub switch_timeout_us: u64,
    /// HovercRaft++ in fall-back: how often the leader probes the switch to return to it.
    pub switch_probe_us: u64,
    /// A RECOVERY_REQ with no answer after this long is sent again.
    pub recovery_retry_us: u64,
    /// Recovery requests in flight at once per follower.
    pub max_recoveries_in_flight: usize,
    /// Entries kept behind the applied index (so lagging followers can catch up).
    pub log_retention_entries: u64,
    /// Re-introduces a known bug, so tests can show the checkers catch it. Off by default;
    /// never set it outside checker tests. Only in builds with the `canary` feature (the
    /// simulator's): a cluster file of the real runtime cannot name one.
    #[cfg(feature = "canary")]
    pub canary: Option<Canary>,
}

/// Known bugs that can be switched on to prove the checkers catch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Canary {
    /// Commit an entry of an earlier term by counting replicas (Raft Figure 8).
    CommitPreviousTerm,
    /// Grant votes without persisting them: after a restart a node may vote twice in a term.
    VoteNotPersisted,
    /// The leader applies (and answers) entries as soon as it appends them.
    ReplyBeforeCommit,
    /// Followers accept AppendEntries without the previous-index/term check.
    SkipPrevLogCheck,
    /// A restarted node answers again the requests it re-executes while recovering.
    ApplyTwiceAfterRecovery,
    /// A node that believes it leads answers read-only requests at once, without ordering
    /// them (an unsafe "lease"): once deposed, it serves stale reads.
    DeposedLeaderServesReads,
}

impl Canary {
    pub const ALL: [Canary; 6] = [
        Canary::CommitPreviousTerm,
        Canary::VoteNotPersisted,
        Canary::ReplyBeforeCommit,
        Canary::SkipPrevLogCheck,
        Canary::ApplyTwiceAfterRecovery,
        Canary::DeposedLeaderServesReads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canary::CommitPreviousTerm => "commit-previous-term",
            Canary::VoteNotPersisted => "vote-not-persisted",
            Canary::ReplyBeforeCommit => "reply-before-commit",
            Canary::SkipPrevLogCheck => "skip-prev-log-check",
            Canary::ApplyTwiceAfterRecovery => "apply-twice-after-recovery",
            Canary::DeposedLeaderServesReads => "deposed-leader-serves-reads",
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min_us: 10_000,
            election_timeout_max_us: 20_000,
            heartbeat_us: 1_000,
            append_retry_us: 2_000,
            max_entries_per_append: 30,
            replier_policy: ReplierPolicy::BoundedRandom,
            replier_bound: 64,
            // Healthy followers stay within ~350 entries of the leader (9 nodes, read-only,
            // 800k req/s); a restarted one starts thousands behind.
            replier_max_lag: 1_024,
            flow_control_threshold: 16_384,
            unordered_capacity: 4_096,
            unordered_expiry_us: 1_000_000,
            switch_timeout_us: 1_000,
            switch_probe_us: 5_000,
            recovery_retry_us: 1_000,
            max_recoveries_in_flight: 64,
            log_retention_entries: 32_768,
            #[cfg(feature = "canary")]
            canary: None,
        }
    }
}

/// Where the other replicas are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Address of every replica, indexed by node id (this node included).
    pub peers: Vec<SocketAddrV4>,
    /// The multicast group clients send requests to (HovercRaft).
    pub group: SocketAddrV4,
    /// Start an election at once instead of after a timeout (tests and benchmarks skip the
    /// first 10–20 ms of leaderless time this way; it changes nothing else).
    pub campaign_at_start: bool,
    /// HovercRaft++: the switch aggregator's address.
    pub switch: Option<SocketAddrV4>,
}
