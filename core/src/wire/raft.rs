//! Raft/HovercRaft messages (DESIGN.md §3), the body of an R2P2 RAFT_REQ, RAFT_REP or RAFT_MSG
//! message. The R2P2 header is not part of this codec: [`RaftMessage::encode`] and
//! [`RaftMessage::decode`] see only the bytes after it (reassembled, if the message spanned
//! several packets).
//!
//! Every integer is big-endian, every field is byte-aligned, and there is no padding, so a
//! parser can walk a message with fixed offsets up to the first variable-length part. A message
//! must end exactly where its last field ends: trailing bytes are an error, so every message
//! has exactly one encoding.
//!
//! # Common header (10 bytes)
//!
//! ```text
//! offset  size  field
//!      0     1  raft_type   1..=15, selects the layout below
//!      1     1  from        NodeId of the sender
//!      2     8  term        sender's current term
//! ```
//!
//! # Message bodies (offsets from the start of the message, i.e. after the common header = 10)
//!
//! ```text
//! type  name                       R2P2 type  offset size field
//! ----  -------------------------  ---------  ------ ---- -----------------------------------
//!    1  VOTE_REQUEST               RAFT_REQ       10    8 last_log_idx
//!                                                 18    8 last_log_term        (total 26)
//!    2  VOTE_REPLY                 RAFT_REP       10    1 granted  0 | 1       (total 11)
//!    3  APPEND_ENTRIES_REQ         RAFT_REQ       10    8 prev_log_idx
//!                                                 18    8 prev_log_term
//!                                                 26    8 leader_commit
//!                                                 34    2 n_entries  <= 1024
//!                                                 36    . n_entries × log entry (below)
//!    4  APPEND_ENTRIES_REP         RAFT_REP       10    1 result  0 failure | 1 success |
//!                                                                 2 partial-missing | 3 need-more
//!                                                 11    8 last_log_idx
//!                                                 19    8 first_idx
//!                                                 27    8 done                 (total 35)
//!    5  APPEND_ENTRIES_REP_GROUP   RAFT_MSG       10    8 last_log_idx
//!                                                 18    8 commit_idx
//!                                                 26    1 n_peers  <= 32
//!                                                 27    . n_peers × { peer u8, done u64 }
//!                                                                               (total 27 + 9n)
//!    6  ANNOUNCE_COMMIT_REQ        RAFT_REQ       10    8 commit_idx           (total 18)
//!    7  ANNOUNCE_COMMIT_REP        RAFT_REP       10    8 commit_idx
//!                                                 18    8 done                 (total 26)
//!    8  RECOVERY_REQ               RAFT_REQ       10    8 log_idx
//!                                                 18    4 client ip
//!                                                 22    2 client udp port
//!                                                 24    2 req_id               (total 26)
//!    9  RECOVERY_REP               RAFT_REP       10    8 log_idx
//!                                                 18    4 client ip
//!                                                 22    2 client udp port
//!                                                 24    2 req_id
//!                                                 26    1 policy  (R2P2 policy number)
//!                                                 27    4 body_len  <= 1 MiB
//!                                                 31    . body           (total 31 + body_len)
//!   10  PRE_VOTE_REQUEST           RAFT_REQ       10    8 last_log_idx
//!                                                 18    8 last_log_term        (total 26)
//!   11  PRE_VOTE_REPLY             RAFT_REP       10    1 granted  0 | 1       (total 11)
//!   12  DROP_SUFFIX                RAFT_REQ       10    8 from_idx
//!                                                 18    8 entry_term           (total 26)
//!   13  INSTALL_SNAPSHOT_REQ       RAFT_REQ       10    8 last_idx   index the snapshot covers
//!                                                 18    8 last_term  term of that entry
//!                                                 26    8 total_len  bytes in the snapshot
//!                                                 34    8 offset     of this chunk
//!                                                 42    4 chunk_len  <= 1 MiB
//!                                                 46    . chunk          (total 46 + chunk_len)
//!   14  INSTALL_SNAPSHOT_REP       RAFT_REP       10    8 last_idx   the snapshot answered
//!                                                 18    8 received   bytes held from offset 0
//!                                                                  (= total_len: installed)
//!                                                                               (total 26)
//!   15  RECOVERY_COMPACTED         RAFT_REP       10    8 log_idx      the body asked for
//!                                                 18    8 snapshot_idx its snapshot covers it
//!                                                 26    8 snapshot_term              (total 34)
//! ```
//!
//! Pre-vote (Raft dissertation §9.6, etcd `PreVote`) asks "would you vote for me?" without
//! changing anyone's term: a PRE_VOTE_REQUEST's `term` is the term the sender *would*
//! campaign in (its own + 1), and neither it nor the receiver adopts that term. A granted
//! PRE_VOTE_REPLY echoes the requested term; a refusal carries the refuser's own term (so a
//! pre-candidate behind in terms catches up). Neither depends on durable state. The layouts
//! are VOTE_REQUEST's and VOTE_REPLY's; the switch aggregator forwards them like votes.
//!
//! # Log entry (inside APPEND_ENTRIES_REQ, 19 bytes, or 23 + body_len with a body)
//!
//! ```text
//! offset size field
//!      0    8 term
//!      8    4 client ip          \
//!     12    2 client udp port     } identify the client's request (DESIGN.md §3)
//!     14    2 req_id             /
//!     16    1 policy             2 REPLICATED_ROUTE (write) | 3 REPLICATED_ROUTE_NO_SE (read)
//!     17    1 replier            NodeId of the designated replier
//!     18    1 has_body           0 | 1
//!     19    4 body_len           only if has_body = 1, <= 1 MiB
//!     23    . body               only if has_body = 1
//! ```
//!
//! HovercRaft entries carry metadata only (`has_body = 0`): the request itself reached every
//! replica by multicast. Vanilla Raft mode carries the full request (`has_body = 1`). A switch
//! or P4 parser that only aggregates APPEND_ENTRIES_REP never needs to parse entries.
//!
//! # Limits
//!
//! Decoding untrusted bytes never panics and never allocates more than the input justifies:
//! counts above [`MAX_ENTRIES_PER_MESSAGE`] / [`MAX_GROUP_PEERS`] and bodies above
//! [`MAX_ENTRY_BODY_BYTES`] are [`WireError::Oversize`], and a count that the remaining bytes
//! cannot hold even at the smallest item size is [`WireError::Inconsistent`], checked before
//! anything is allocated.

use std::net::SocketAddrV4;

use super::{put_addr, MsgType, Policy, Reader, WireError};

/// A replica's identity inside a Raft group (the switch, as an aggregating peer, has one too).
pub use crate::types::NodeId;

/// `raft_type u8 | from u8 | term u64`.
pub const COMMON_HEADER_LEN: usize = 10;
/// Generous next to the authors' batch of 30: a bound on what a decoder must accept, not a
/// batching policy.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1024;
/// Bounds one request body carried in an entry or a RECOVERY_REP.
pub const MAX_ENTRY_BODY_BYTES: usize = 1 << 20;
/// Bounds the per-peer `done` list of APPEND_ENTRIES_REP_GROUP.
pub const MAX_GROUP_PEERS: usize = 32;

/// Encoded size of a [`LogEntry`] without a body: the smallest an entry can be, which is what
/// makes a claimed `n_entries` checkable against the bytes left.
pub const LOG_ENTRY_MIN_LEN: usize = 19;
const BODY_LEN_LEN: usize = 4;
const ADDR_LEN: usize = 6;
const GROUP_DONE_LEN: usize = 9;

const ERR_GRANTED: &str = "vote reply `granted` byte is neither 0 nor 1";
const ERR_HAS_BODY: &str = "log entry `has_body` byte is neither 0 nor 1";
const ERR_RESULT: &str = "append entries reply `result` byte is not 0..=3";
const ERR_N_ENTRIES: &str = "n_entries claims more log entries than the bytes left can hold";
const ERR_N_PEERS: &str = "n_peers claims more peers than the bytes left can hold";

/// The `raft_type` byte: which [`RaftBody`] layout follows the common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RaftType {
    VoteRequest = 1,
    VoteReply = 2,
    AppendEntriesReq = 3,
    AppendEntriesRep = 4,
    AppendEntriesRepGroup = 5,
    AnnounceCommitReq = 6,
    AnnounceCommitRep = 7,
    RecoveryReq = 8,
    RecoveryRep = 9,
    PreVoteRequest = 10,
    PreVoteReply = 11,
    DropSuffix = 12,
    InstallSnapshotReq = 13,
    InstallSnapshotRep = 14,
    RecoveryCompacted = 15,
}

impl RaftType {
    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        Ok(match v {
            1 => RaftType::VoteRequest,
            2 => RaftType::VoteReply,
            3 => RaftType::AppendEntriesReq,
            4 => RaftType::AppendEntriesRep,
            5 => RaftType::AppendEntriesRepGroup,
            6 => RaftType::AnnounceCommitReq,
            7 => RaftType::AnnounceCommitRep,
            8 => RaftType::RecoveryReq,
            9 => RaftType::RecoveryRep,
            10 => RaftType::PreVoteRequest,
            11 => RaftType::PreVoteReply,
            12 => RaftType::DropSuffix,
            13 => RaftType::InstallSnapshotReq,
            14 => RaftType::InstallSnapshotRep,
            15 => RaftType::RecoveryCompacted,
            _ => return Err(WireError::UnknownRaftType(v)),
        })
    }

    /// The R2P2 message type that carries this Raft message. The group reply is RAFT_MSG
    /// because it answers no single request: the switch sends it to the leader and followers.
    pub fn r2p2_type(self) -> MsgType {
        match self {
            RaftType::VoteRequest
            | RaftType::PreVoteRequest
            | RaftType::AppendEntriesReq
            | RaftType::AnnounceCommitReq
            | RaftType::RecoveryReq
            | RaftType::DropSuffix
            | RaftType::InstallSnapshotReq => MsgType::RaftReq,
            RaftType::VoteReply
            | RaftType::InstallSnapshotRep
            | RaftType::RecoveryCompacted
            | RaftType::PreVoteReply
            | RaftType::AppendEntriesRep
            | RaftType::AnnounceCommitRep
            | RaftType::RecoveryRep => MsgType::RaftRep,
            RaftType::AppendEntriesRepGroup => MsgType::RaftMsg,
        }
    }
}

/// One log slot. In HovercRaft mode it names a request that replicas already hold in their
/// unordered buffers; in vanilla Raft mode it carries the request itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub term: u64,
    /// Who sent the request; with `req_id`, the request's identity.
    pub client: SocketAddrV4,
    pub req_id: u16,
    /// REPLICATED_ROUTE (write) or REPLICATED_ROUTE_NO_SE (read-only); the codec accepts any.
    pub policy: Policy,
    /// The only node that sends the reply to the client.
    pub replier: NodeId,
    /// `Some(full request)` in vanilla Raft mode; `None` = metadata only (HovercRaft).
    pub body: Option<Vec<u8>>,
}

impl LogEntry {
    /// Exact number of bytes this entry takes inside an APPEND_ENTRIES_REQ.
    pub fn encoded_len(&self) -> usize {
        LOG_ENTRY_MIN_LEN + self.body.as_ref().map_or(0, |b| BODY_LEN_LEN + b.len())
    }

    /// A copy without the body (metadata only), which copies no body bytes.
    pub fn metadata_clone(&self) -> LogEntry {
        LogEntry {
            term: self.term,
            client: self.client,
            req_id: self.req_id,
            policy: self.policy,
            replier: self.replier,
            body: None,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.term);
        put_addr(out, self.client);
        put_u16(out, self.req_id);
        out.push(self.policy as u8);
        out.push(self.replier);
        match &self.body {
            None => out.push(0),
            Some(body) => {
                out.push(1);
                put_body(out, body);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let term = r.u64()?;
        let client = r.addr()?;
        let req_id = r.u16()?;
        let policy = Policy::from_u8(r.u8()?)?;
        let replier = r.u8()?;
        let body = if get_bool(r, ERR_HAS_BODY)? {
            Some(get_body(r)?)
        } else {
            None
        };
        Ok(LogEntry {
            term,
            client,
            req_id,
            policy,
            replier,
            body,
        })
    }
}

/// What a follower says about an AppendEntries it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AppendResult {
    /// Log mismatch at `prev_log_idx` (plain Raft): the leader backs up.
    Failure = 0,
    Success = 1,
    /// The entries fit the log but some requests named by metadata never arrived by
    /// multicast; the follower asks for them with RECOVERY_REQ.
    PartialMissing = 2,
    /// HovercRaft++: the follower is too far behind for the switch's fan-out; the leader must
    /// catch it up directly.
    NeedMore = 3,
}

impl AppendResult {
    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        Ok(match v {
            0 => AppendResult::Failure,
            1 => AppendResult::Success,
            2 => AppendResult::PartialMissing,
            3 => AppendResult::NeedMore,
            _ => return Err(WireError::Inconsistent(ERR_RESULT)),
        })
    }
}

/// One peer's `done` counter (requests applied and replied), as aggregated by the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDone {
    pub peer: NodeId,
    pub done: u64,
}

/// The message-specific part of a Raft message; see the module docs for each layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftBody {
    VoteRequest {
        last_log_idx: u64,
        last_log_term: u64,
    },
    VoteReply {
        granted: bool,
    },
    /// "Would you vote for me at `term`?" (`term` = the sender's term + 1; nobody adopts it).
    PreVoteRequest {
        last_log_idx: u64,
        last_log_term: u64,
    },
    PreVoteReply {
        granted: bool,
    },
    AppendEntriesReq {
        prev_log_idx: u64,
        prev_log_term: u64,
        leader_commit: u64,
        entries: Vec<LogEntry>,
    },
    AppendEntriesRep {
        result: AppendResult,
        last_log_idx: u64,
        first_idx: u64,
        done: u64,
    },
    AppendEntriesRepGroup {
        last_log_idx: u64,
        commit_idx: u64,
        dones: Vec<GroupDone>,
    },
    AnnounceCommitReq {
        commit_idx: u64,
    },
    AnnounceCommitRep {
        commit_idx: u64,
        done: u64,
    },
    RecoveryReq {
        log_idx: u64,
        client: SocketAddrV4,
        req_id: u16,
    },
    RecoveryRep {
        log_idx: u64,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        body: Vec<u8>,
    },
    /// A leader stepping down: no replica it can reach holds the body of its uncommitted
    /// entry (`from_idx`, `entry_term`); a follower that lacks it too drops its log from there.
    DropSuffix {
        from_idx: u64,
        entry_term: u64,
    },
    /// One chunk of the leader's snapshot (state up to `last_idx`, whose entry has
    /// `last_term`), for a follower that needs entries the leader no longer keeps.
    InstallSnapshotReq {
        last_idx: u64,
        last_term: u64,
        total_len: u64,
        offset: u64,
        chunk: Vec<u8>,
    },
    /// How many bytes of snapshot `last_idx` the follower holds (from offset 0); equal to the
    /// snapshot's length once installed and durable.
    InstallSnapshotRep {
        last_idx: u64,
        received: u64,
    },
    /// "I no longer hold entry `log_idx`: my snapshot at `snapshot_idx` (whose entry has
    /// `snapshot_term`) covers it". The answer to a RECOVERY_REQ for a compacted entry: it
    /// was applied, so committed, and only a snapshot can bring its effect back.
    RecoveryCompacted {
        log_idx: u64,
        snapshot_idx: u64,
        snapshot_term: u64,
    },
}

impl RaftBody {
    pub fn raft_type(&self) -> RaftType {
        match self {
            RaftBody::VoteRequest { .. } => RaftType::VoteRequest,
            RaftBody::VoteReply { .. } => RaftType::VoteReply,
            RaftBody::PreVoteRequest { .. } => RaftType::PreVoteRequest,
            RaftBody::PreVoteReply { .. } => RaftType::PreVoteReply,
            RaftBody::AppendEntriesReq { .. } => RaftType::AppendEntriesReq,
            RaftBody::AppendEntriesRep { .. } => RaftType::AppendEntriesRep,
            RaftBody::AppendEntriesRepGroup { .. } => RaftType::AppendEntriesRepGroup,
            RaftBody::AnnounceCommitReq { .. } => RaftType::AnnounceCommitReq,
            RaftBody::DropSuffix { .. } => RaftType::DropSuffix,
            RaftBody::InstallSnapshotReq { .. } => RaftType::InstallSnapshotReq,
            RaftBody::InstallSnapshotRep { .. } => RaftType::InstallSnapshotRep,
            RaftBody::RecoveryCompacted { .. } => RaftType::RecoveryCompacted,
            RaftBody::AnnounceCommitRep { .. } => RaftType::AnnounceCommitRep,
            RaftBody::RecoveryReq { .. } => RaftType::RecoveryReq,
            RaftBody::RecoveryRep { .. } => RaftType::RecoveryRep,
        }
    }

    /// Whether a receiver adopts this message's term when it is above its own: every message
    /// but a pre-vote request and a granted pre-vote reply, whose term is only proposed.
    pub fn adopts_term(&self) -> bool {
        !matches!(
            self,
            RaftBody::PreVoteRequest { .. } | RaftBody::PreVoteReply { granted: true }
        )
    }

    fn encoded_len(&self) -> usize {
        match self {
            RaftBody::VoteRequest { .. } | RaftBody::PreVoteRequest { .. } => 16,
            RaftBody::VoteReply { .. } | RaftBody::PreVoteReply { .. } => 1,
            RaftBody::AppendEntriesReq { entries, .. } => {
                26 + entries.iter().map(LogEntry::encoded_len).sum::<usize>()
            }
            RaftBody::AppendEntriesRep { .. } => 25,
            RaftBody::AppendEntriesRepGroup { dones, .. } => 17 + GROUP_DONE_LEN * dones.len(),
            RaftBody::AnnounceCommitReq { .. } => 8,
            RaftBody::DropSuffix { .. } => 16,
            RaftBody::InstallSnapshotReq { chunk, .. } => 32 + BODY_LEN_LEN + chunk.len(),
            RaftBody::InstallSnapshotRep { .. } => 16,
            RaftBody::RecoveryCompacted { .. } => 24,
            RaftBody::AnnounceCommitRep { .. } => 16,
            RaftBody::RecoveryReq { .. } => 8 + ADDR_LEN + 2,
            RaftBody::RecoveryRep { body, .. } => 8 + ADDR_LEN + 2 + 1 + BODY_LEN_LEN + body.len(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RaftBody::VoteRequest {
                last_log_idx,
                last_log_term,
            }
            | RaftBody::PreVoteRequest {
                last_log_idx,
                last_log_term,
            } => {
                put_u64(out, *last_log_idx);
                put_u64(out, *last_log_term);
            }
            RaftBody::VoteReply { granted } | RaftBody::PreVoteReply { granted } => {
                out.push(u8::from(*granted))
            }
            RaftBody::AppendEntriesReq {
                prev_log_idx,
                prev_log_term,
                leader_commit,
                entries,
            } => {
                // A larger batch would encode fine but every decoder would reject it: catch
                // the caller's bug here rather than as a silent replication stall.
                assert!(
                    entries.len() <= MAX_ENTRIES_PER_MESSAGE,
                    "{} entries exceed MAX_ENTRIES_PER_MESSAGE",
                    entries.len()
                );
                put_u64(out, *prev_log_idx);
                put_u64(out, *prev_log_term);
                put_u64(out, *leader_commit);
                put_u16(out, entries.len() as u16);
                for e in entries {
                    e.encode(out);
                }
            }
            RaftBody::AppendEntriesRep {
                result,
                last_log_idx,
                first_idx,
                done,
            } => {
                out.push(*result as u8);
                put_u64(out, *last_log_idx);
                put_u64(out, *first_idx);
                put_u64(out, *done);
            }
            RaftBody::AppendEntriesRepGroup {
                last_log_idx,
                commit_idx,
                dones,
            } => {
                assert!(
                    dones.len() <= MAX_GROUP_PEERS,
                    "{} peers exceed MAX_GROUP_PEERS",
                    dones.len()
                );
                put_u64(out, *last_log_idx);
                put_u64(out, *commit_idx);
                out.push(dones.len() as u8);
                for d in dones {
                    out.push(d.peer);
                    put_u64(out, d.done);
                }
            }
            RaftBody::AnnounceCommitReq { commit_idx } => put_u64(out, *commit_idx),
            RaftBody::DropSuffix {
                from_idx,
                entry_term,
            } => {
                put_u64(out, *from_idx);
                put_u64(out, *entry_term);
            }
            RaftBody::AnnounceCommitRep { commit_idx, done } => {
                put_u64(out, *commit_idx);
                put_u64(out, *done);
            }
            RaftBody::InstallSnapshotReq {
                last_idx,
                last_term,
                total_len,
                offset,
                chunk,
            } => {
                put_u64(out, *last_idx);
                put_u64(out, *last_term);
                put_u64(out, *total_len);
                put_u64(out, *offset);
                put_body(out, chunk);
            }
            RaftBody::InstallSnapshotRep { last_idx, received } => {
                put_u64(out, *last_idx);
                put_u64(out, *received);
            }
            RaftBody::RecoveryCompacted {
                log_idx,
                snapshot_idx,
                snapshot_term,
            } => {
                put_u64(out, *log_idx);
                put_u64(out, *snapshot_idx);
                put_u64(out, *snapshot_term);
            }
            RaftBody::RecoveryReq {
                log_idx,
                client,
                req_id,
            } => {
                put_u64(out, *log_idx);
                put_addr(out, *client);
                put_u16(out, *req_id);
            }
            RaftBody::RecoveryRep {
                log_idx,
                client,
                req_id,
                policy,
                body,
            } => {
                put_u64(out, *log_idx);
                put_addr(out, *client);
                put_u16(out, *req_id);
                out.push(*policy as u8);
                put_body(out, body);
            }
        }
    }

    fn decode(t: RaftType, r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match t {
            RaftType::VoteRequest => RaftBody::VoteRequest {
                last_log_idx: r.u64()?,
                last_log_term: r.u64()?,
            },
            RaftType::VoteReply => RaftBody::VoteReply {
                granted: get_bool(r, ERR_GRANTED)?,
            },
            RaftType::PreVoteRequest => RaftBody::PreVoteRequest {
                last_log_idx: r.u64()?,
                last_log_term: r.u64()?,
            },
            RaftType::PreVoteReply => RaftBody::PreVoteReply {
                granted: get_bool(r, ERR_GRANTED)?,
            },
            RaftType::AppendEntriesReq => {
                let prev_log_idx = r.u64()?;
                let prev_log_term = r.u64()?;
                let leader_commit = r.u64()?;
                let claimed = usize::from(r.u16()?);
                let n = checked_count(
                    claimed,
                    MAX_ENTRIES_PER_MESSAGE,
                    LOG_ENTRY_MIN_LEN,
                    r.remaining(),
                    ERR_N_ENTRIES,
                )?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(LogEntry::decode(r)?);
                }
                RaftBody::AppendEntriesReq {
                    prev_log_idx,
                    prev_log_term,
                    leader_commit,
                    entries,
                }
            }
            RaftType::AppendEntriesRep => RaftBody::AppendEntriesRep {
                result: AppendResult::from_u8(r.u8()?)?,
                last_log_idx: r.u64()?,
                first_idx: r.u64()?,
                done: r.u64()?,
            },
            RaftType::AppendEntriesRepGroup => {
                let last_log_idx = r.u64()?;
                let commit_idx = r.u64()?;
                let claimed = usize::from(r.u8()?);
                let n = checked_count(
                    claimed,
                    MAX_GROUP_PEERS,
                    GROUP_DONE_LEN,
                    r.remaining(),
                    ERR_N_PEERS,
                )?;
                let mut dones = Vec::with_capacity(n);
                for _ in 0..n {
                    dones.push(GroupDone {
                        peer: r.u8()?,
                        done: r.u64()?,
                    });
                }
                RaftBody::AppendEntriesRepGroup {
                    last_log_idx,
                    commit_idx,
                    dones,
                }
            }
            RaftType::AnnounceCommitReq => RaftBody::AnnounceCommitReq {
                commit_idx: r.u64()?,
            },
            RaftType::DropSuffix => RaftBody::DropSuffix {
                from_idx: r.u64()?,
                entry_term: r.u64()?,
            },
            RaftType::AnnounceCommitRep => RaftBody::AnnounceCommitRep {
                commit_idx: r.u64()?,
                done: r.u64()?,
            },
            RaftType::InstallSnapshotReq => RaftBody::InstallSnapshotReq {
                last_idx: r.u64()?,
                last_term: r.u64()?,
                total_len: r.u64()?,
                offset: r.u64()?,
                chunk: get_body(r)?,
            },
            RaftType::InstallSnapshotRep => RaftBody::InstallSnapshotRep {
                last_idx: r.u64()?,
                received: r.u64()?,
            },
            RaftType::RecoveryCompacted => RaftBody::RecoveryCompacted {
                log_idx: r.u64()?,
                snapshot_idx: r.u64()?,
                snapshot_term: r.u64()?,
            },
            RaftType::RecoveryReq => RaftBody::RecoveryReq {
                log_idx: r.u64()?,
                client: r.addr()?,
                req_id: r.u16()?,
            },
            RaftType::RecoveryRep => RaftBody::RecoveryRep {
                log_idx: r.u64()?,
                client: r.addr()?,
                req_id: r.u16()?,
                policy: Policy::from_u8(r.u8()?)?,
                body: get_body(r)?,
            },
        })
    }
}

/// A complete Raft message: common header plus body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMessage {
    pub from: NodeId,
    pub term: u64,
    pub body: RaftBody,
}

/// The largest term or log index a message may carry (2^62): far beyond any real term or
/// log, and far enough from `u64::MAX` that `+ 1` or `+ entries.len()` on a field never
/// wraps. A forged term of `u64::MAX` once wrapped a node's term to 0 (`term += 1`), and
/// `prev_log_idx = u64::MAX` overflowed `index + 1` (a panic in debug builds).
pub const MAX_WIRE_NUMBER: u64 = 1 << 62;

impl RaftMessage {
    /// Whether every term and index in the message is at most [`MAX_WIRE_NUMBER`]. A message
    /// that fails this is malformed: the receiver drops and counts it before looking at it.
    pub fn numbers_in_range(&self) -> bool {
        let ok = |v: u64| v <= MAX_WIRE_NUMBER;
        ok(self.term)
            && match &self.body {
                RaftBody::VoteRequest {
                    last_log_idx,
                    last_log_term,
                }
                | RaftBody::PreVoteRequest {
                    last_log_idx,
                    last_log_term,
                } => ok(*last_log_idx) && ok(*last_log_term),
                RaftBody::VoteReply { .. } | RaftBody::PreVoteReply { .. } => true,
                RaftBody::AppendEntriesReq {
                    prev_log_idx,
                    prev_log_term,
                    leader_commit,
                    entries,
                } => {
                    ok(*prev_log_idx)
                        && ok(*prev_log_term)
                        && ok(*leader_commit)
                        && entries.iter().all(|e| ok(e.term))
                }
                RaftBody::AppendEntriesRep {
                    last_log_idx,
                    first_idx,
                    done,
                    ..
                } => ok(*last_log_idx) && ok(*first_idx) && ok(*done),
                RaftBody::AppendEntriesRepGroup {
                    last_log_idx,
                    commit_idx,
                    dones,
                } => ok(*last_log_idx) && ok(*commit_idx) && dones.iter().all(|d| ok(d.done)),
                RaftBody::AnnounceCommitReq { commit_idx } => ok(*commit_idx),
                RaftBody::AnnounceCommitRep { commit_idx, done } => ok(*commit_idx) && ok(*done),
                RaftBody::RecoveryReq { log_idx, .. } | RaftBody::RecoveryRep { log_idx, .. } => {
                    ok(*log_idx)
                }
                RaftBody::DropSuffix {
                    from_idx,
                    entry_term,
                } => ok(*from_idx) && ok(*entry_term),
                RaftBody::InstallSnapshotReq {
                    last_idx,
                    last_term,
                    total_len,
                    offset,
                    ..
                } => ok(*last_idx) && ok(*last_term) && ok(*total_len) && ok(*offset),
                RaftBody::InstallSnapshotRep { last_idx, received } => {
                    ok(*last_idx) && ok(*received)
                }
                RaftBody::RecoveryCompacted {
                    log_idx,
                    snapshot_idx,
                    snapshot_term,
                } => ok(*log_idx) && ok(*snapshot_idx) && ok(*snapshot_term),
            }
    }

    /// Appends the encoding to `out` (existing contents are kept, so a caller can encode after
    /// a header it already wrote).
    ///
    /// # Panics
    ///
    /// If the message breaks a decoding limit — more than [`MAX_ENTRIES_PER_MESSAGE`] entries,
    /// more than [`MAX_GROUP_PEERS`] peers, or a body over [`MAX_ENTRY_BODY_BYTES`] — since no
    /// peer could decode it; that is a bug in the caller, not bad input.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(self.encoded_len());
        out.push(self.body.raft_type() as u8);
        out.push(self.from);
        put_u64(out, self.term);
        self.body.encode(out);
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }

    /// Exactly the number of bytes [`RaftMessage::encode`] appends, so callers can size
    /// buffers or decide on fragmentation before encoding.
    pub fn encoded_len(&self) -> usize {
        COMMON_HEADER_LEN + self.body.encoded_len()
    }

    /// Decodes one whole message: `bytes` must hold exactly one message and nothing else.
    pub fn decode(bytes: &[u8]) -> Result<RaftMessage, WireError> {
        let mut r = Reader::new(bytes);
        // The type is checked before the rest of the header so a garbage packet is reported
        // as an unknown type, not as a short one.
        let t = RaftType::from_u8(r.u8()?)?;
        let from = r.u8()?;
        let term = r.u64()?;
        let body = RaftBody::decode(t, &mut r)?;
        r.finish()?;
        Ok(RaftMessage { from, term, body })
    }

    /// The R2P2 message type to send this message as.
    pub fn r2p2_type(&self) -> MsgType {
        self.body.raft_type().r2p2_type()
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_body(out: &mut Vec<u8>, body: &[u8]) {
    // Also keeps the `as u32` below lossless: the limit is far under u32::MAX.
    assert!(
        body.len() <= MAX_ENTRY_BODY_BYTES,
        "{}-byte body exceeds MAX_ENTRY_BODY_BYTES",
        body.len()
    );
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

fn get_bool(r: &mut Reader<'_>, err: &'static str) -> Result<bool, WireError> {
    // Strict 0/1 keeps the encoding canonical: decode → encode gives back the same bytes.
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Inconsistent(err)),
    }
}

fn get_body(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    let len = r.u32()? as usize;
    if len > MAX_ENTRY_BODY_BYTES {
        return Err(WireError::Oversize {
            len,
            max: MAX_ENTRY_BODY_BYTES,
        });
    }
    // `take` fails before `to_vec` allocates, so the allocation is bounded by the input.
    Ok(r.take(len)?.to_vec())
}

/// Validates a claimed item count before anything is allocated for it: first against the
/// protocol limit, then against what the remaining bytes could hold at the smallest item size.
fn checked_count(
    claimed: usize,
    max: usize,
    item_min_len: usize,
    remaining: usize,
    err: &'static str,
) -> Result<usize, WireError> {
    if claimed > max {
        return Err(WireError::Oversize { len: claimed, max });
    }
    // `claimed <= max` (small) so the product cannot overflow.
    if claimed * item_min_len > remaining {
        return Err(WireError::Inconsistent(err));
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn encode(m: &RaftMessage) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out);
        out
    }

    fn msg(body: RaftBody) -> RaftMessage {
        RaftMessage {
            from: 1,
            term: 7,
            body,
        }
    }

    /// Golden: AppendEntriesReq from node 1, term 7, with a metadata-only write entry
    /// (HovercRaft) and a read-only entry carrying its 3-byte body (vanilla Raft).
    #[test]
    fn golden_append_entries_req() {
        #[rustfmt::skip]
        let bytes: [u8; 81] = [
            0x03,                                           // raft_type: APPEND_ENTRIES_REQ
            0x01,                                           // from: node 1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // term: 7
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29, // prev_log_idx: 41
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // prev_log_term: 6
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, // leader_commit: 40
            0x00, 0x02,                                     // n_entries: 2
            // entry 0 (offset 36)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //   term: 7
            0x0A, 0x00, 0x00, 0x05,                         //   client ip: 10.0.0.5
            0x0F, 0xA0,                                     //   client port: 4000
            0x01, 0x02,                                     //   req_id: 0x0102
            0x02,                                           //   policy: REPLICATED_ROUTE
            0x02,                                           //   replier: node 2
            0x00,                                           //   has_body: no
            // entry 1 (offset 55)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //   term: 7
            0x0A, 0x00, 0x00, 0x06,                         //   client ip: 10.0.0.6
            0x0F, 0xA1,                                     //   client port: 4001
            0x01, 0x03,                                     //   req_id: 0x0103
            0x03,                                           //   policy: REPLICATED_ROUTE_NO_SE
            0x00,                                           //   replier: node 0
            0x01,                                           //   has_body: yes
            0x00, 0x00, 0x00, 0x03,                         //   body_len: 3
            0x67, 0x65, 0x74,                               //   body: "get"
        ];
        let m = RaftMessage::decode(&bytes).unwrap();
        assert_eq!(m.from, 1);
        assert_eq!(m.term, 7);
        assert_eq!(m.r2p2_type(), MsgType::RaftReq);
        let RaftBody::AppendEntriesReq {
            prev_log_idx,
            prev_log_term,
            leader_commit,
            entries,
        } = &m.body
        else {
            panic!("wrong variant: {m:?}");
        };
        assert_eq!(*prev_log_idx, 41);
        assert_eq!(*prev_log_term, 6);
        assert_eq!(*leader_commit, 40);
        assert_eq!(entries.len(), 2);

        let e0 = &entries[0];
        assert_eq!(e0.term, 7);
        assert_eq!(
            e0.client,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 4000)
        );
        assert_eq!(e0.req_id, 0x0102);
        assert_eq!(e0.policy, Policy::ReplicatedRoute);
        assert_eq!(e0.replier, 2);
        assert_eq!(e0.body, None);
        assert_eq!(e0.encoded_len(), 19);

        let e1 = &entries[1];
        assert_eq!(e1.term, 7);
        assert_eq!(
            e1.client,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 6), 4001)
        );
        assert_eq!(e1.req_id, 0x0103);
        assert_eq!(e1.policy, Policy::ReplicatedRouteNoSe);
        assert_eq!(e1.replier, 0);
        assert_eq!(e1.body.as_deref(), Some(&b"get"[..]));
        assert_eq!(e1.encoded_len(), 26);

        assert_eq!(m.encoded_len(), bytes.len());
        assert_eq!(encode(&m), bytes);
    }

    /// Golden: the switch's (node 0xFF) aggregated reply for term 9 with three peers' `done`.
    #[test]
    fn golden_append_entries_rep_group() {
        #[rustfmt::skip]
        let bytes: [u8; 54] = [
            0x05,                                           // raft_type: APPEND_ENTRIES_REP_GROUP
            0xFF,                                           // from: node 255 (the switch)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // term: 9
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, // last_log_idx: 4096
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0F, 0xFF, // commit_idx: 4095
            0x03,                                           // n_peers: 3
            0x00,                                           // peer: node 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, //   done: 100
            0x01,                                           // peer: node 1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x62, //   done: 98
            0x02,                                           // peer: node 2
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //   done: 0x0102030405060708
        ];
        let m = RaftMessage::decode(&bytes).unwrap();
        assert_eq!(m.from, 0xFF);
        assert_eq!(m.term, 9);
        assert_eq!(m.r2p2_type(), MsgType::RaftMsg);
        let RaftBody::AppendEntriesRepGroup {
            last_log_idx,
            commit_idx,
            dones,
        } = &m.body
        else {
            panic!("wrong variant: {m:?}");
        };
        assert_eq!(*last_log_idx, 4096);
        assert_eq!(*commit_idx, 4095);
        assert_eq!(
            dones,
            &[
                GroupDone { peer: 0, done: 100 },
                GroupDone { peer: 1, done: 98 },
                GroupDone {
                    peer: 2,
                    done: 0x0102_0304_0506_0708
                },
            ]
        );
        assert_eq!(m.encoded_len(), bytes.len());
        assert_eq!(encode(&m), bytes);
    }

    /// Golden: every fixed-layout message, pinning the offsets the module docs promise.
    #[test]
    fn golden_fixed_layout_messages() {
        let client = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 0x1F90);
        #[rustfmt::skip]
        let cases: Vec<(RaftBody, MsgType, Vec<u8>)> = vec![
            (
                RaftBody::VoteRequest { last_log_idx: 0x11, last_log_term: 0x22 },
                MsgType::RaftReq,
                vec![0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x11,         // last_log_idx
                     0, 0, 0, 0, 0, 0, 0, 0x22],        // last_log_term
            ),
            (
                RaftBody::VoteReply { granted: true },
                MsgType::RaftRep,
                vec![0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0x01],                             // granted
            ),
            (
                RaftBody::PreVoteRequest { last_log_idx: 0x11, last_log_term: 0x22 },
                MsgType::RaftReq,
                vec![0x0A, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x11,         // last_log_idx
                     0, 0, 0, 0, 0, 0, 0, 0x22],        // last_log_term
            ),
            (
                RaftBody::PreVoteReply { granted: false },
                MsgType::RaftRep,
                vec![0x0B, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0x00],                             // granted
            ),
            (
                RaftBody::AppendEntriesRep {
                    result: AppendResult::PartialMissing,
                    last_log_idx: 0x33,
                    first_idx: 0x30,
                    done: 0x2F,
                },
                MsgType::RaftRep,
                vec![0x04, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0x02,                              // result: partial-missing
                     0, 0, 0, 0, 0, 0, 0, 0x33,         // last_log_idx
                     0, 0, 0, 0, 0, 0, 0, 0x30,         // first_idx
                     0, 0, 0, 0, 0, 0, 0, 0x2F],        // done
            ),
            (
                RaftBody::AnnounceCommitReq { commit_idx: 0x44 },
                MsgType::RaftReq,
                vec![0x06, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x44],        // commit_idx
            ),
            (
                RaftBody::DropSuffix { from_idx: 0x45, entry_term: 0x03 },
                MsgType::RaftReq,
                vec![0x0C, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x45,         // from_idx
                     0, 0, 0, 0, 0, 0, 0, 0x03],        // entry_term
            ),
            (
                RaftBody::InstallSnapshotReq {
                    last_idx: 0x46, last_term: 0x03, total_len: 0x500, offset: 0x100,
                    chunk: vec![0xAB, 0xCD],
                },
                MsgType::RaftReq,
                vec![0x0D, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x46,         // last_idx
                     0, 0, 0, 0, 0, 0, 0, 0x03,         // last_term
                     0, 0, 0, 0, 0, 0, 0x05, 0x00,      // total_len
                     0, 0, 0, 0, 0, 0, 0x01, 0x00,      // offset
                     0, 0, 0, 2, 0xAB, 0xCD],           // chunk_len, chunk
            ),
            (
                RaftBody::InstallSnapshotRep { last_idx: 0x46, received: 0x300 },
                MsgType::RaftRep,
                vec![0x0E, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x46,         // last_idx
                     0, 0, 0, 0, 0, 0, 0x03, 0x00],     // received
            ),
            (
                RaftBody::RecoveryCompacted { log_idx: 0x47, snapshot_idx: 0x50, snapshot_term: 0x03 },
                MsgType::RaftRep,
                vec![0x0F, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x47,         // log_idx
                     0, 0, 0, 0, 0, 0, 0, 0x50,         // snapshot_idx
                     0, 0, 0, 0, 0, 0, 0, 0x03],        // snapshot_term
            ),
            (
                RaftBody::AnnounceCommitRep { commit_idx: 0x44, done: 0x40 },
                MsgType::RaftRep,
                vec![0x07, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x44,         // commit_idx
                     0, 0, 0, 0, 0, 0, 0, 0x40],        // done
            ),
            (
                RaftBody::RecoveryReq { log_idx: 0x55, client, req_id: 0xBEEF },
                MsgType::RaftReq,
                vec![0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x55,         // log_idx
                     0xC0, 0xA8, 0x01, 0x02,            // client ip 192.168.1.2
                     0x1F, 0x90,                        // client port 8080
                     0xBE, 0xEF],                       // req_id
            ),
            (
                RaftBody::RecoveryRep {
                    log_idx: 0x55,
                    client,
                    req_id: 0xBEEF,
                    policy: Policy::ReplicatedRoute,
                    body: b"set".to_vec(),
                },
                MsgType::RaftRep,
                vec![0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 7,
                     0, 0, 0, 0, 0, 0, 0, 0x55,         // log_idx
                     0xC0, 0xA8, 0x01, 0x02,            // client ip 192.168.1.2
                     0x1F, 0x90,                        // client port 8080
                     0xBE, 0xEF,                        // req_id
                     0x02,                              // policy: REPLICATED_ROUTE
                     0, 0, 0, 3,                        // body_len
                     b's', b'e', b't'],                 // body
            ),
        ];
        for (body, r2p2, bytes) in cases {
            let m = msg(body);
            assert_eq!(encode(&m), bytes, "{m:?}");
            assert_eq!(m.encoded_len(), bytes.len(), "{m:?}");
            assert_eq!(m.r2p2_type(), r2p2, "{m:?}");
            assert_eq!(RaftMessage::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn empty_append_entries_is_a_36_byte_heartbeat() {
        let m = msg(RaftBody::AppendEntriesReq {
            prev_log_idx: 0,
            prev_log_term: 0,
            leader_commit: 0,
            entries: vec![],
        });
        assert_eq!(m.encoded_len(), 36);
        assert_eq!(RaftMessage::decode(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let m = msg(RaftBody::AnnounceCommitReq { commit_idx: 3 });
        let mut out = vec![0xAA, 0xBB];
        m.encode(&mut out);
        assert_eq!(&out[..2], &[0xAA, 0xBB]);
        assert_eq!(out.len(), 2 + m.encoded_len());
        assert_eq!(RaftMessage::decode(&out[2..]).unwrap(), m);
    }

    #[test]
    fn r2p2_type_per_raft_type() {
        for t in 1..=11u8 {
            let rt = RaftType::from_u8(t).unwrap();
            assert_eq!(rt as u8, t);
            let expected = match t {
                1 | 3 | 6 | 8 | 10 => MsgType::RaftReq,
                2 | 4 | 7 | 9 | 11 => MsgType::RaftRep,
                _ => MsgType::RaftMsg,
            };
            assert_eq!(rt.r2p2_type(), expected, "raft_type {t}");
        }
    }

    // ---- typed errors -------------------------------------------------------------------

    /// Common header for raft_type `t`, from node 1, term 7.
    fn header(t: u8) -> Vec<u8> {
        let mut b = vec![t, 1];
        b.extend_from_slice(&7u64.to_be_bytes());
        b
    }

    /// APPEND_ENTRIES_REQ up to and including `n_entries`.
    fn append_entries_prefix(n_entries: u16) -> Vec<u8> {
        let mut b = header(3);
        b.extend_from_slice(&[0; 24]);
        b.extend_from_slice(&n_entries.to_be_bytes());
        b
    }

    /// A log entry up to and including `has_body`.
    fn entry_prefix(policy: u8, has_body: u8) -> Vec<u8> {
        let mut b = vec![0; 8];
        b.extend_from_slice(&[10, 0, 0, 1, 0x0F, 0xA0, 0, 1, policy, 0, has_body]);
        b
    }

    #[test]
    fn unknown_raft_type() {
        assert_eq!(
            RaftMessage::decode(&[0]),
            Err(WireError::UnknownRaftType(0))
        );
        assert_eq!(
            RaftMessage::decode(&[16]),
            Err(WireError::UnknownRaftType(16))
        );
        let mut b = header(0xFF);
        b.extend_from_slice(&[0; 16]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::UnknownRaftType(0xFF))
        );
    }

    #[test]
    fn truncated() {
        assert_eq!(
            RaftMessage::decode(&[]),
            Err(WireError::Truncated { need: 1, have: 0 })
        );
        assert_eq!(
            RaftMessage::decode(&[1, 1, 0, 0]),
            Err(WireError::Truncated { need: 10, have: 4 })
        );
        // VOTE_REQUEST with last_log_term missing.
        let mut b = header(1);
        b.extend_from_slice(&[0; 8]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Truncated { need: 26, have: 18 })
        );
    }

    #[test]
    fn trailing_bytes() {
        let mut b = encode(&msg(RaftBody::VoteReply { granted: false }));
        b.push(0);
        assert_eq!(RaftMessage::decode(&b), Err(WireError::Trailing(1)));
    }

    #[test]
    fn bad_bool_bytes() {
        for vote_reply in [2, 11] {
            let mut b = header(vote_reply);
            b.push(2);
            assert_eq!(
                RaftMessage::decode(&b),
                Err(WireError::Inconsistent(ERR_GRANTED))
            );
        }

        let mut b = append_entries_prefix(1);
        b.extend_from_slice(&entry_prefix(2, 0x80));
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Inconsistent(ERR_HAS_BODY))
        );
    }

    #[test]
    fn unknown_append_result() {
        let mut b = header(4);
        b.push(4);
        b.extend_from_slice(&[0; 24]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Inconsistent(ERR_RESULT))
        );
    }

    #[test]
    fn unknown_policy() {
        let mut b = append_entries_prefix(1);
        b.extend_from_slice(&entry_prefix(4, 0));
        assert_eq!(RaftMessage::decode(&b), Err(WireError::UnknownPolicy(4)));

        let mut b = header(9);
        b.extend_from_slice(&[0; 16]);
        b.push(0x0F); // policy
        b.extend_from_slice(&[0; 4]);
        assert_eq!(RaftMessage::decode(&b), Err(WireError::UnknownPolicy(0x0F)));
    }

    #[test]
    fn too_many_entries_is_oversize() {
        let b = append_entries_prefix(1025);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Oversize {
                len: 1025,
                max: MAX_ENTRIES_PER_MESSAGE
            })
        );
        let b = append_entries_prefix(u16::MAX);
        assert!(matches!(
            RaftMessage::decode(&b),
            Err(WireError::Oversize { len: 65535, .. })
        ));
    }

    /// 1000 entries need at least 19 000 bytes; a packet with a few bytes after the count must
    /// be rejected before the decoder reserves room for 1000 entries.
    #[test]
    fn entry_count_beyond_remaining_bytes_is_inconsistent() {
        let mut b = append_entries_prefix(1000);
        b.extend_from_slice(&[0; 5]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Inconsistent(ERR_N_ENTRIES))
        );
        // One byte short of two minimal entries.
        let mut b = append_entries_prefix(2);
        b.extend_from_slice(&[0; 2 * LOG_ENTRY_MIN_LEN - 1]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Inconsistent(ERR_N_ENTRIES))
        );
    }

    #[test]
    fn oversize_bodies() {
        let too_big = (MAX_ENTRY_BODY_BYTES as u32 + 1).to_be_bytes();

        let mut b = append_entries_prefix(1);
        b.extend_from_slice(&entry_prefix(2, 1));
        b.extend_from_slice(&too_big);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Oversize {
                len: MAX_ENTRY_BODY_BYTES + 1,
                max: MAX_ENTRY_BODY_BYTES
            })
        );

        let mut b = header(9);
        b.extend_from_slice(&[0; 16]);
        b.push(2);
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            RaftMessage::decode(&b),
            Err(WireError::Oversize {
                max: MAX_ENTRY_BODY_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn body_longer_than_packet_is_truncated() {
        let mut b = append_entries_prefix(1);
        b.extend_from_slice(&entry_prefix(2, 1));
        b.extend_from_slice(&1000u32.to_be_bytes());
        b.extend_from_slice(&[0; 10]);
        assert!(matches!(
            RaftMessage::decode(&b),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn group_peer_counts() {
        let group_prefix = |n_peers: u8| {
            let mut b = header(5);
            b.extend_from_slice(&[0; 16]);
            b.push(n_peers);
            b
        };
        assert_eq!(
            RaftMessage::decode(&group_prefix(33)),
            Err(WireError::Oversize {
                len: 33,
                max: MAX_GROUP_PEERS
            })
        );
        let mut b = group_prefix(5);
        b.extend_from_slice(&[0; 2 * GROUP_DONE_LEN]);
        assert_eq!(
            RaftMessage::decode(&b),
            Err(WireError::Inconsistent(ERR_N_PEERS))
        );
    }

    #[test]
    #[should_panic(expected = "MAX_ENTRIES_PER_MESSAGE")]
    fn encoding_an_undecodable_batch_panics() {
        let e = LogEntry {
            term: 1,
            client: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1),
            req_id: 1,
            policy: Policy::ReplicatedRoute,
            replier: 0,
            body: None,
        };
        let m = msg(RaftBody::AppendEntriesReq {
            prev_log_idx: 0,
            prev_log_term: 0,
            leader_commit: 0,
            entries: vec![e; MAX_ENTRIES_PER_MESSAGE + 1],
        });
        encode(&m);
    }

    // ---- properties ---------------------------------------------------------------------

    fn arb_addr() -> impl Strategy<Value = SocketAddrV4> {
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (0u8..4).prop_map(|p| Policy::from_u8(p).unwrap())
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..200)
    }

    fn arb_entry() -> impl Strategy<Value = LogEntry> {
        (
            any::<u64>(),
            arb_addr(),
            any::<u16>(),
            arb_policy(),
            any::<u8>(),
            proptest::option::of(arb_bytes()),
        )
            .prop_map(|(term, client, req_id, policy, replier, body)| LogEntry {
                term,
                client,
                req_id,
                policy,
                replier,
                body,
            })
    }

    fn arb_result() -> impl Strategy<Value = AppendResult> {
        prop_oneof![
            Just(AppendResult::Failure),
            Just(AppendResult::Success),
            Just(AppendResult::PartialMissing),
            Just(AppendResult::NeedMore),
        ]
    }

    fn arb_raft_body() -> impl Strategy<Value = RaftBody> {
        prop_oneof![
            (any::<u64>(), any::<u64>()).prop_map(|(last_log_idx, last_log_term)| {
                RaftBody::VoteRequest {
                    last_log_idx,
                    last_log_term,
                }
            }),
            any::<bool>().prop_map(|granted| RaftBody::VoteReply { granted }),
            (any::<u64>(), any::<u64>()).prop_map(|(last_log_idx, last_log_term)| {
                RaftBody::PreVoteRequest {
                    last_log_idx,
                    last_log_term,
                }
            }),
            any::<bool>().prop_map(|granted| RaftBody::PreVoteReply { granted }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(arb_entry(), 0..40)
            )
                .prop_map(|(prev_log_idx, prev_log_term, leader_commit, entries)| {
                    RaftBody::AppendEntriesReq {
                        prev_log_idx,
                        prev_log_term,
                        leader_commit,
                        entries,
                    }
                }),
            (arb_result(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(result, last_log_idx, first_idx, done)| RaftBody::AppendEntriesRep {
                    result,
                    last_log_idx,
                    first_idx,
                    done,
                }
            ),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(
                    (any::<u8>(), any::<u64>()).prop_map(|(peer, done)| GroupDone { peer, done }),
                    0..=9
                )
            )
                .prop_map(|(last_log_idx, commit_idx, dones)| {
                    RaftBody::AppendEntriesRepGroup {
                        last_log_idx,
                        commit_idx,
                        dones,
                    }
                }),
            any::<u64>().prop_map(|commit_idx| RaftBody::AnnounceCommitReq { commit_idx }),
            (any::<u64>(), any::<u64>()).prop_map(|(from_idx, entry_term)| {
                RaftBody::DropSuffix {
                    from_idx,
                    entry_term,
                }
            }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(commit_idx, done)| RaftBody::AnnounceCommitRep { commit_idx, done }),
            (any::<u64>(), arb_addr(), any::<u16>()).prop_map(|(log_idx, client, req_id)| {
                RaftBody::RecoveryReq {
                    log_idx,
                    client,
                    req_id,
                }
            }),
            (
                any::<u64>(),
                arb_addr(),
                any::<u16>(),
                arb_policy(),
                arb_bytes()
            )
                .prop_map(|(log_idx, client, req_id, policy, body)| {
                    RaftBody::RecoveryRep {
                        log_idx,
                        client,
                        req_id,
                        policy,
                        body,
                    }
                }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                arb_bytes()
            )
                .prop_map(|(last_idx, last_term, total_len, offset, chunk)| {
                    RaftBody::InstallSnapshotReq {
                        last_idx,
                        last_term,
                        total_len,
                        offset,
                        chunk,
                    }
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(last_idx, received)| {
                RaftBody::InstallSnapshotRep { last_idx, received }
            }),
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(log_idx, snapshot_idx, snapshot_term)| RaftBody::RecoveryCompacted {
                    log_idx,
                    snapshot_idx,
                    snapshot_term
                }
            ),
        ]
    }

    fn arb_message() -> impl Strategy<Value = RaftMessage> {
        (any::<u8>(), any::<u64>(), arb_raft_body()).prop_map(|(from, term, body)| RaftMessage {
            from,
            term,
            body,
        })
    }

    /// Whatever decodes must re-encode to the same bytes: the encoding is canonical, so no
    /// two byte strings mean the same message.
    fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(m) = RaftMessage::decode(bytes) {
            prop_assert_eq!(m.encoded_len(), bytes.len());
            prop_assert_eq!(encode(&m), bytes);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trips(m in arb_message()) {
            let bytes = encode(&m);
            prop_assert_eq!(bytes.len(), m.encoded_len());
            if let RaftBody::AppendEntriesReq { entries, .. } = &m.body {
                prop_assert_eq!(
                    bytes.len(),
                    36 + entries.iter().map(LogEntry::encoded_len).sum::<usize>()
                );
            }
            prop_assert_eq!(RaftMessage::decode(&bytes), Ok(m));
        }

        #[test]
        fn truncation_is_an_error(m in arb_message(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&m);
            let cut = cut.index(bytes.len());
            prop_assert!(RaftMessage::decode(&bytes[..cut]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_decode(&bytes)?;
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_type_never_panic(
            t in 1u8..=11,
            rest in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = vec![t];
            bytes.extend_from_slice(&rest);
            check_decode(&bytes)?;
        }

        /// Random bytes rarely get past the counts; corrupting valid messages reaches the
        /// entry and peer loops with plausible lengths.
        #[test]
        fn corrupted_messages_never_panic(
            m in arb_message(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode(&m);
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            check_decode(&bytes)?;
        }
    }
}
