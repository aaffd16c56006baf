//! Replication configuration: protocol constants ([`RaftConfig`]), where the peers are
//! ([`ClusterConfig`]), and the known bugs checker tests can switch on ([`Canary`]).

use std::net::SocketAddrV4;

use super::reply_lb::ReplierPolicy;
use crate::wire::raft::{MAX_ENTRIES_PER_MESSAGE, MAX_ENTRY_BODY_BYTES};

/// A configuration value out of its bounds. `field` is the dotted path a user writes
/// (`raft.heartbeat_us`, `cluster.peers`), so drivers can name it with the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RaftConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: String) -> Result<(), RaftConfigError> {
    Err(RaftConfigError { field, reason })
}

/// Longest time any `*_us` field may hold: one hour. Far above any sensible value, and low
/// enough that `us * 1000` and `now + timeout` can never overflow a u64 of nanoseconds.
pub const MAX_TIMEOUT_US: u64 = 3_600_000_000;
/// Most request bodies a replica may buffer unordered (its eviction bookkeeping doubles it).
pub const MAX_UNORDERED_CAPACITY: usize = 1 << 24;
/// Most client sessions a replica may keep (8 KiB each: 512 MiB at most).
pub const MAX_SESSION_CAPACITY: usize = 1 << 16;
/// Most RECOVERY_REQs in flight per follower.
pub const MAX_RECOVERIES_IN_FLIGHT: usize = 1 << 16;
/// Most replicas in a cluster.
pub const MAX_PEERS: usize = 64;
/// Most AppendEntries in flight at once per follower.
pub const MAX_APPENDS_IN_FLIGHT: usize = 256;
/// Bound on the log-length settings (retention, snapshot interval, flow control): 2^40,
/// so their sums never overflow.
pub const MAX_LOG_BOUND: u64 = 1 << 40;
/// Largest snapshot a follower may be configured to accept: 64 GiB.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 36;

/// Protocol constants; defaults are the authors' values (PAPER.md).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    pub election_timeout_min_us: u64,
    pub election_timeout_max_us: u64,
    pub heartbeat_us: u64,
    /// An AppendEntries with no reply after this long is sent again (the follower is probed
    /// from what it acknowledged).
    pub append_retry_us: u64,
    /// AppendEntries in flight at once per follower with a backlog (etcd `MaxInflightMsgs`):
    /// the window opens while its log trails by this × `max_entries_per_append` entries or
    /// more; a follower being probed (after a rejection or a time-out) gets one at a time.
    /// With several in flight, further ones go only as full batches.
    pub max_appends_in_flight: usize,
    pub max_entries_per_append: usize,
    pub replier_policy: ReplierPolicy,
    /// Outstanding (assigned − done) entries per replier.
    pub replier_bound: usize,
    /// A follower whose applied index trails the leader's by more than this many entries is
    /// not named replier: it would answer only after executing its whole backlog.
    pub replier_max_lag: u64,
    /// The leader answers DROP when (last log index − last applied) reaches this.
    pub flow_control_threshold: u64,
    /// Most request-body bytes the leader's in-memory log may hold: beyond it, requests are
    /// refused (DROP, flow control). Followers' logs hold at most the leader's.
    pub max_log_bytes: u64,
    pub unordered_capacity: usize,
    /// Most body bytes the unordered buffer holds (the oldest is evicted beyond it, as
    /// beyond `unordered_capacity` bodies).
    pub unordered_capacity_bytes: u64,
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
    /// Entries kept in memory behind the applied index (so lagging followers can catch up
    /// from the log rather than by snapshot). Never more than the newest snapshot allows.
    pub log_retention_entries: u64,
    /// A snapshot is taken every this many applied entries (`raft/snapshot.rs`); storage
    /// keeps only the entries after the newest one.
    pub snapshot_interval_entries: u64,
    /// Bytes of snapshot per INSTALL_SNAPSHOT_REQ (one chunk in flight per follower).
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a follower accepts from its leader (it holds the chunks in memory
    /// until the last one).
    pub max_snapshot_bytes: u64,
    /// Check-quorum (etcd `CheckQuorum`): a leader that has heard from no majority (itself
    /// included) for `election_timeout_min_us` steps down; and a node that heard from its
    /// leader within that time ignores vote requests of a higher term (the leader lease).
    pub check_quorum: bool,
    /// Pre-vote (Raft dissertation §9.6, etcd `PreVote`): a node campaigns only once a
    /// majority said it would vote for it, so a node that cannot win does not raise terms.
    pub pre_vote: bool,
    /// Clients whose applied req_ids every replica remembers (exactly-once execution,
    /// `raft/session.rs`); the least recently served is forgotten beyond it. 8 KiB each.
    pub session_capacity: usize,
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
    /// Bodies are recovered only from the asker's own log index: a truncated suffix drops
    /// its bodies, a body held under another index cannot serve, and a read nobody can give
    /// back stalls its replier for good.
    RecoverByIndexOnly,
    /// HovercRaft++ in fall-back probes the switch with its last entry, which followers
    /// trailing under load cannot count: the leader never returns to the switch.
    ProbeNeedsCaughtUpFollowers,
    /// A leader never steps down for want of a quorum (check-quorum's step-down is off):
    /// one that can send but not receive keeps every follower from electing another.
    NoCheckQuorum,
    /// No exactly-once execution: the leader orders every copy of a request and replicas
    /// execute every entry, so a duplicated datagram runs (and is answered) twice.
    NoRequestDedupe,
    /// A body that arrives after its entry was persisted (recovered, or a late multicast)
    /// stays in memory only, though the follower acknowledges the entry as durable with it.
    RecoveredBodyNotPersisted,
    /// A follower that completed bodies acknowledges its whole complete prefix on its own,
    /// even a suffix an old leader left that the current leader's log does not share.
    AckUnmatchedSuffix,
    /// A leader that cannot find the body of an uncommitted write anywhere keeps leading
    /// and keeps asking: the cluster stalls until a holder of the body comes back.
    KeepUnrecoverableSuffix,
    /// A follower acknowledges an installed snapshot before storage holds it: after a crash
    /// it has less than it promised.
    SnapshotAckBeforePersist,
    /// Snapshots leave out the client sessions: a follower that installs one takes copies of
    /// requests applied before it for fresh ones.
    SnapshotWithoutSessions,
    /// A replica asked for the body of an entry it compacted stays silent (no
    /// RECOVERY_COMPACTED): a new leader lacking it takes "nobody holds it" for "never
    /// committed" and drops committed entries.
    SilentAboutCompactedBodies,
}

impl Canary {
    pub const ALL: [Canary; 16] = [
        Canary::CommitPreviousTerm,
        Canary::VoteNotPersisted,
        Canary::ReplyBeforeCommit,
        Canary::SkipPrevLogCheck,
        Canary::ApplyTwiceAfterRecovery,
        Canary::DeposedLeaderServesReads,
        Canary::RecoverByIndexOnly,
        Canary::ProbeNeedsCaughtUpFollowers,
        Canary::NoCheckQuorum,
        Canary::NoRequestDedupe,
        Canary::RecoveredBodyNotPersisted,
        Canary::AckUnmatchedSuffix,
        Canary::KeepUnrecoverableSuffix,
        Canary::SnapshotAckBeforePersist,
        Canary::SnapshotWithoutSessions,
        Canary::SilentAboutCompactedBodies,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canary::CommitPreviousTerm => "commit-previous-term",
            Canary::VoteNotPersisted => "vote-not-persisted",
            Canary::ReplyBeforeCommit => "reply-before-commit",
            Canary::SkipPrevLogCheck => "skip-prev-log-check",
            Canary::ApplyTwiceAfterRecovery => "apply-twice-after-recovery",
            Canary::DeposedLeaderServesReads => "deposed-leader-serves-reads",
            Canary::RecoverByIndexOnly => "recover-by-index-only",
            Canary::ProbeNeedsCaughtUpFollowers => "probe-needs-caught-up-followers",
            Canary::NoCheckQuorum => "no-check-quorum",
            Canary::NoRequestDedupe => "no-request-dedupe",
            Canary::RecoveredBodyNotPersisted => "recovered-body-not-persisted",
            Canary::AckUnmatchedSuffix => "ack-unmatched-suffix",
            Canary::KeepUnrecoverableSuffix => "keep-unrecoverable-suffix",
            Canary::SnapshotAckBeforePersist => "snapshot-ack-before-persist",
            Canary::SnapshotWithoutSessions => "snapshot-without-sessions",
            Canary::SilentAboutCompactedBodies => "silent-about-compacted-bodies",
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_min_us: 10_000,
            election_timeout_max_us: 20_000,
            heartbeat_us: 1_000,
            // Quicker than the authors' timers: a lost probe stalls its follower until then
            // (scenarios/faults/lossy-follower.json: at 2 ms a follower with 20% loss at
            // 200k req/s trails by ~3 000 entries, at 500 µs by ~500). The retry runs at its
            // own deadline and resends one AppendEntries (a probe), so a slow follower costs
            // one message per retry.
            append_retry_us: 500,
            max_entries_per_append: 30,
            max_appends_in_flight: 4,
            replier_policy: ReplierPolicy::BoundedRandom,
            replier_bound: 64,
            // Healthy followers stay within ~350 entries of the leader (9 nodes, read-only,
            // 800k req/s); a restarted one starts thousands behind.
            replier_max_lag: 1_024,
            flow_control_threshold: 16_384,
            max_log_bytes: 1 << 30,
            unordered_capacity: 4_096,
            unordered_capacity_bytes: 64 << 20,
            unordered_expiry_us: 1_000_000,
            switch_timeout_us: 1_000,
            switch_probe_us: 5_000,
            recovery_retry_us: 1_000,
            max_recoveries_in_flight: 64,
            log_retention_entries: 32_768,
            snapshot_interval_entries: 32_768,
            // 44 packets of 1,472 bytes; within what a receiver reassembles (128 packets).
            snapshot_chunk_bytes: 64 * 1024,
            max_snapshot_bytes: 1 << 30,
            check_quorum: true,
            pre_vote: true,
            session_capacity: 1_024,
            #[cfg(feature = "canary")]
            canary: None,
        }
    }
}

impl RaftConfig {
    /// The test-only bug this configuration switches on: always `None` in a build without
    /// the `canary` feature, where the field does not exist.
    pub fn canary(&self) -> Option<Canary> {
        #[cfg(feature = "canary")]
        {
            self.canary
        }
        #[cfg(not(feature = "canary"))]
        {
            None
        }
    }

    /// Checks every bound the protocol code relies on; the error names the first field out
    /// of bounds. Both drivers (the simulator's scenarios, the runtime's cluster files) call
    /// it, so a configuration one accepts the other accepts too.
    pub fn validate(&self) -> Result<(), RaftConfigError> {
        self.validate_timeouts()?;
        if self.max_entries_per_append == 0 || self.max_entries_per_append > MAX_ENTRIES_PER_MESSAGE
        {
            // More would trip the encoder's limit once a follower lags; 0 sends nothing.
            return invalid(
                "raft.max_entries_per_append",
                format!(
                    "must be 1..={MAX_ENTRIES_PER_MESSAGE} (got {})",
                    self.max_entries_per_append
                ),
            );
        }
        if self.max_appends_in_flight == 0 || self.max_appends_in_flight > MAX_APPENDS_IN_FLIGHT {
            // 0 would never replicate anything.
            return invalid(
                "raft.max_appends_in_flight",
                format!(
                    "must be 1..={MAX_APPENDS_IN_FLIGHT} (got {})",
                    self.max_appends_in_flight
                ),
            );
        }
        // With 0, every request is refused (DROP) without a word.
        for (field, v) in [
            ("raft.replier_bound", self.replier_bound as u64),
            ("raft.flow_control_threshold", self.flow_control_threshold),
            ("raft.unordered_capacity", self.unordered_capacity as u64),
            ("raft.session_capacity", self.session_capacity as u64),
            ("raft.max_log_bytes", self.max_log_bytes),
            (
                "raft.unordered_capacity_bytes",
                self.unordered_capacity_bytes,
            ),
            (
                "raft.max_recoveries_in_flight",
                self.max_recoveries_in_flight as u64,
            ),
        ] {
            if v == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        if self.unordered_capacity > MAX_UNORDERED_CAPACITY {
            return invalid(
                "raft.unordered_capacity",
                format!(
                    "at most {MAX_UNORDERED_CAPACITY} (got {})",
                    self.unordered_capacity
                ),
            );
        }
        if self.session_capacity > MAX_SESSION_CAPACITY {
            return invalid(
                "raft.session_capacity",
                format!(
                    "at most {MAX_SESSION_CAPACITY} (got {}): 8 KiB each",
                    self.session_capacity
                ),
            );
        }
        if self.max_recoveries_in_flight > MAX_RECOVERIES_IN_FLIGHT {
            return invalid(
                "raft.max_recoveries_in_flight",
                format!(
                    "at most {MAX_RECOVERIES_IN_FLIGHT} (got {})",
                    self.max_recoveries_in_flight
                ),
            );
        }
        // The leader compares its log length with their sum.
        for (field, v) in [
            ("raft.log_retention_entries", self.log_retention_entries),
            (
                "raft.snapshot_interval_entries",
                self.snapshot_interval_entries,
            ),
            ("raft.flow_control_threshold", self.flow_control_threshold),
        ] {
            if v > MAX_LOG_BOUND {
                return invalid(field, format!("at most {MAX_LOG_BOUND} (got {v})"));
            }
        }
        if self.snapshot_interval_entries == 0 {
            return invalid(
                "raft.snapshot_interval_entries",
                "must be at least 1".into(),
            );
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes > MAX_ENTRY_BODY_BYTES {
            return invalid(
                "raft.snapshot_chunk_bytes",
                format!(
                    "must be 1..={MAX_ENTRY_BODY_BYTES} (got {})",
                    self.snapshot_chunk_bytes
                ),
            );
        }
        if self.max_snapshot_bytes == 0 || self.max_snapshot_bytes > MAX_SNAPSHOT_BYTES {
            return invalid(
                "raft.max_snapshot_bytes",
                format!(
                    "must be 1..={MAX_SNAPSHOT_BYTES} (got {})",
                    self.max_snapshot_bytes
                ),
            );
        }
        Ok(())
    }

    /// Most entries a leader's log may hold before it refuses requests (flow control): what
    /// compaction keeps behind the applied index (the retention, or back to the newest
    /// snapshot, plus the step compaction waits for) and the unapplied entries.
    pub fn max_log_entries(&self) -> u64 {
        self.flow_control_threshold
            + self
                .log_retention_entries
                .max(self.snapshot_interval_entries)
            + super::apply::COMPACTION_STEP
    }

    fn validate_timeouts(&self) -> Result<(), RaftConfigError> {
        let in_range = |field: &'static str, us: u64| {
            if us == 0 || us > MAX_TIMEOUT_US {
                return invalid(field, format!("must be 1..={MAX_TIMEOUT_US} µs (got {us})"));
            }
            Ok(())
        };
        if self.election_timeout_min_us == 0 {
            return invalid("raft.election_timeout_min_us", "must be above 0".into());
        }
        in_range("raft.election_timeout_min_us", self.election_timeout_min_us)?;
        // Timeouts are drawn from [min, max): an empty range would give every node the
        // same timeout, and split votes could repeat forever.
        if self.election_timeout_max_us <= self.election_timeout_min_us {
            return invalid(
                "raft.election_timeout_max_us",
                "must be above raft.election_timeout_min_us".into(),
            );
        }
        in_range("raft.election_timeout_max_us", self.election_timeout_max_us)?;
        if self.heartbeat_us == 0 || self.heartbeat_us >= self.election_timeout_min_us {
            return invalid(
                "raft.heartbeat_us",
                "must be above 0 and below raft.election_timeout_min_us".into(),
            );
        }
        for (field, us) in [
            ("raft.append_retry_us", self.append_retry_us),
            ("raft.recovery_retry_us", self.recovery_retry_us),
            ("raft.switch_timeout_us", self.switch_timeout_us),
            ("raft.switch_probe_us", self.switch_probe_us),
            ("raft.unordered_expiry_us", self.unordered_expiry_us),
        ] {
            if us == 0 {
                return invalid(field, "must be above 0".into());
            }
            in_range(field, us)?;
        }
        Ok(())
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

impl ClusterConfig {
    /// Checks the addresses: 1..=[`MAX_PEERS`] distinct unicast peers with non-zero ports,
    /// a multicast group, and a switch (if any) that is neither a peer nor the group.
    pub fn validate(&self) -> Result<(), RaftConfigError> {
        let n = self.peers.len();
        if n == 0 || n > MAX_PEERS {
            return invalid(
                "cluster.peers",
                format!("a cluster has 1 to {MAX_PEERS} replicas (got {n})"),
            );
        }
        let unicast = |a: &SocketAddrV4| {
            a.port() != 0
                && !a.ip().is_unspecified()
                && !a.ip().is_multicast()
                && !a.ip().is_broadcast()
        };
        for (i, a) in self.peers.iter().enumerate() {
            if !unicast(a) {
                return invalid(
                    "cluster.peers",
                    format!("replica {i} needs a unicast IP and a non-zero port (got {a})"),
                );
            }
            if self.peers[..i].contains(a) {
                return invalid(
                    "cluster.peers",
                    format!("replica {i}: {a} is used by another replica"),
                );
            }
        }
        if !self.group.ip().is_multicast() || self.group.port() == 0 {
            return invalid(
                "cluster.group",
                format!(
                    "needs a multicast IP and a non-zero port (got {})",
                    self.group
                ),
            );
        }
        if let Some(s) = self.switch {
            if !unicast(&s) || self.peers.contains(&s) {
                return invalid(
                    "cluster.switch",
                    format!("needs a unicast address that is not a replica's (got {s})"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(cfg: &RaftConfig) -> &'static str {
        cfg.validate().expect_err("must be rejected").field
    }

    #[test]
    fn defaults_are_valid() {
        RaftConfig::default().validate().unwrap();
    }

    #[test]
    fn out_of_bounds_fields_are_named() {
        type Patch = fn(&mut RaftConfig);
        let cases: &[(Patch, &str)] = &[
            (
                |c| c.max_entries_per_append = 0,
                "raft.max_entries_per_append",
            ),
            (
                |c| c.max_entries_per_append = 5000,
                "raft.max_entries_per_append",
            ),
            (
                |c| c.max_entries_per_append = MAX_ENTRIES_PER_MESSAGE + 1,
                "raft.max_entries_per_append",
            ),
            (
                |c| c.flow_control_threshold = 0,
                "raft.flow_control_threshold",
            ),
            (|c| c.replier_bound = 0, "raft.replier_bound"),
            (|c| c.unordered_capacity = 0, "raft.unordered_capacity"),
            (|c| c.session_capacity = 0, "raft.session_capacity"),
            (
                |c| c.session_capacity = MAX_SESSION_CAPACITY + 1,
                "raft.session_capacity",
            ),
            (
                |c| c.unordered_capacity = MAX_UNORDERED_CAPACITY + 1,
                "raft.unordered_capacity",
            ),
            (
                |c| c.max_recoveries_in_flight = 0,
                "raft.max_recoveries_in_flight",
            ),
            (
                |c| c.max_recoveries_in_flight = usize::MAX,
                "raft.max_recoveries_in_flight",
            ),
            (
                |c| c.log_retention_entries = u64::MAX,
                "raft.log_retention_entries",
            ),
            (
                |c| c.snapshot_interval_entries = 0,
                "raft.snapshot_interval_entries",
            ),
            (
                |c| c.snapshot_interval_entries = MAX_LOG_BOUND + 1,
                "raft.snapshot_interval_entries",
            ),
            (|c| c.snapshot_chunk_bytes = 0, "raft.snapshot_chunk_bytes"),
            (
                |c| c.snapshot_chunk_bytes = MAX_ENTRY_BODY_BYTES + 1,
                "raft.snapshot_chunk_bytes",
            ),
            (|c| c.max_snapshot_bytes = 0, "raft.max_snapshot_bytes"),
            (
                |c| c.election_timeout_min_us = 0,
                "raft.election_timeout_min_us",
            ),
            (
                |c| {
                    c.election_timeout_min_us = u64::MAX;
                    c.election_timeout_max_us = u64::MAX;
                },
                "raft.election_timeout_min_us",
            ),
            (
                |c| c.election_timeout_max_us = u64::MAX,
                "raft.election_timeout_max_us",
            ),
            (
                |c| c.election_timeout_max_us = c.election_timeout_min_us,
                "raft.election_timeout_max_us",
            ),
            (
                |c| c.election_timeout_max_us = 1,
                "raft.election_timeout_max_us",
            ),
            (|c| c.heartbeat_us = 0, "raft.heartbeat_us"),
            (
                |c| c.heartbeat_us = c.election_timeout_min_us,
                "raft.heartbeat_us",
            ),
            (|c| c.append_retry_us = 0, "raft.append_retry_us"),
            (
                |c| c.append_retry_us = MAX_TIMEOUT_US + 1,
                "raft.append_retry_us",
            ),
            (|c| c.recovery_retry_us = 0, "raft.recovery_retry_us"),
            (
                |c| c.max_appends_in_flight = 0,
                "raft.max_appends_in_flight",
            ),
            (
                |c| c.max_appends_in_flight = MAX_APPENDS_IN_FLIGHT + 1,
                "raft.max_appends_in_flight",
            ),
            (|c| c.switch_timeout_us = u64::MAX, "raft.switch_timeout_us"),
            (|c| c.switch_probe_us = 0, "raft.switch_probe_us"),
            (
                |c| c.unordered_expiry_us = u64::MAX,
                "raft.unordered_expiry_us",
            ),
        ];
        for (i, (patch, field)) in cases.iter().enumerate() {
            let mut c = RaftConfig::default();
            patch(&mut c);
            assert_eq!(field_of(&c), *field, "case {i}: {c:?}");
        }
    }

    #[test]
    fn the_bounds_themselves_are_valid() {
        let c = RaftConfig {
            election_timeout_min_us: MAX_TIMEOUT_US - 1,
            election_timeout_max_us: MAX_TIMEOUT_US,
            heartbeat_us: 1,
            append_retry_us: MAX_TIMEOUT_US,
            max_entries_per_append: MAX_ENTRIES_PER_MESSAGE,
            max_appends_in_flight: MAX_APPENDS_IN_FLIGHT,
            replier_bound: 1,
            replier_max_lag: u64::MAX,
            flow_control_threshold: 1,
            unordered_capacity: MAX_UNORDERED_CAPACITY,
            unordered_expiry_us: 1,
            max_recoveries_in_flight: MAX_RECOVERIES_IN_FLIGHT,
            log_retention_entries: MAX_LOG_BOUND,
            snapshot_interval_entries: MAX_LOG_BOUND,
            snapshot_chunk_bytes: MAX_ENTRY_BODY_BYTES,
            max_snapshot_bytes: MAX_SNAPSHOT_BYTES,
            session_capacity: MAX_SESSION_CAPACITY,
            ..RaftConfig::default()
        };
        c.validate().unwrap();
        // The longest valid time-out converts exactly, far from saturation.
        let ns = crate::time::Duration::from_us(MAX_TIMEOUT_US).as_ns();
        assert_eq!(ns, 3_600_000_000_000);
    }

    #[test]
    fn error_displays_field_and_reason() {
        let c = RaftConfig {
            max_entries_per_append: 5000,
            ..RaftConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            format!(
                "raft.max_entries_per_append: must be 1..={MAX_ENTRIES_PER_MESSAGE} (got 5000)"
            )
        );
    }

    fn cluster(n: u8) -> ClusterConfig {
        ClusterConfig {
            peers: (0..n)
                .map(|i| SocketAddrV4::new([10, 0, 0, i + 1].into(), 8000))
                .collect(),
            group: SocketAddrV4::new([239, 1, 1, 1].into(), 8000),
            campaign_at_start: false,
            switch: Some(SocketAddrV4::new([10, 0, 255, 254].into(), 8000)),
        }
    }

    #[test]
    fn cluster_config_checks_addresses() {
        cluster(1).validate().unwrap();
        cluster(64).validate().unwrap();
        type Patch = fn(&mut ClusterConfig);
        let cases: &[(Patch, &str)] = &[
            (|c| c.peers.clear(), "cluster.peers"),
            (|c| *c = cluster(65), "cluster.peers"),
            (|c| c.peers[2] = c.peers[0], "cluster.peers"),
            (|c| c.peers[1].set_port(0), "cluster.peers"),
            (|c| c.peers[1] = c.group, "cluster.peers"),
            (|c| c.peers[1].set_ip([0, 0, 0, 0].into()), "cluster.peers"),
            (|c| c.group = c.peers[0], "cluster.group"),
            (|c| c.group.set_port(0), "cluster.group"),
            (|c| c.switch = Some(c.peers[1]), "cluster.switch"),
            (|c| c.switch = Some(c.group), "cluster.switch"),
        ];
        for (i, (patch, field)) in cases.iter().enumerate() {
            let mut c = cluster(3);
            patch(&mut c);
            assert_eq!(c.validate().unwrap_err().field, *field, "case {i}: {c:?}");
        }
    }
}
