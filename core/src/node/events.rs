//! What a node reports: events for metrics and checkers, counters, and why a datagram was
//! rejected.

use std::net::SocketAddrV4;

use crate::app::AppError;
use crate::r2p2::server::RxError;
use crate::raft::{Event, Role};
use crate::types::NodeId;
use crate::wire::{MsgType, WireError};

/// Why a datagram was rejected. The node's state is unchanged by a rejected datagram.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NodeError {
    #[error(transparent)]
    Rx(#[from] RxError),
    #[error("a {0:?} message is not expected by this node")]
    Unexpected(MsgType),
    #[error("malformed raft message: {0}")]
    Raft(WireError),
    #[error("raft message from {0}, which is not a peer (or claims another node's id)")]
    UnknownSender(SocketAddrV4),
}

/// Why a request was refused with DROP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DropReason {
    FlowControl,
    NoReplier,
    NotLeader,
}

/// What a node did, for metrics and checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The application executed a request (`index` is its log index; 0 when unreplicated).
    Executed {
        client: SocketAddrV4,
        req_id: u16,
        read_only: bool,
        cpu_ns: u64,
        index: u64,
        /// Term of the log entry (0 when unreplicated).
        term: u64,
    },
    /// A reply went out to a client (`index`: the request's log index; 0 when unreplicated).
    Replied {
        client: SocketAddrV4,
        req_id: u16,
        index: u64,
    },
    /// A request was refused with DROP. `leader_term`: `Some(t)` when the leader of term
    /// `t` refused it, a promise that the request is not ordered in term `t`; `None` from a
    /// non-leader or an unreplicated server (no promise).
    Dropped {
        client: SocketAddrV4,
        req_id: u16,
        leader_term: Option<u64>,
    },
    /// The application rejected a malformed request (an empty reply was sent).
    AppRejected {
        client: SocketAddrV4,
        req_id: u16,
        error: AppError,
    },
    /// HovercRaft++ leader: replication moved off (`false`: fall-back to direct fan-out) or
    /// back onto (`true`) the switch.
    SwitchPath { via_switch: bool, term: u64 },
    /// A leader found follower `follower` behind its compaction point: it needs `needs`, the
    /// leader kept entries from `first_kept` on (it sends a snapshot).
    FollowerBehindCompaction {
        follower: NodeId,
        needs: u64,
        first_kept: u64,
        term: u64,
    },
    /// A follower installed its leader's snapshot (state after `index`, of `term`).
    SnapshotInstalled { index: u64, term: u64, bytes: u64 },
    /// A leader advanced its commit index by counting replicas: `index` holds an entry of
    /// `entry_term`, committed in the leader's `term` (Raft §5.4.2 requires them equal).
    Committed {
        index: u64,
        entry_term: u64,
        term: u64,
    },
    /// Role, term or known leader changed.
    RoleChanged {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
}

impl From<Event> for NodeEvent {
    fn from(e: Event) -> NodeEvent {
        match e {
            Event::RoleChanged { role, term, leader } => {
                NodeEvent::RoleChanged { role, term, leader }
            }
            Event::Committed {
                index,
                entry_term,
                term,
            } => NodeEvent::Committed {
                index,
                entry_term,
                term,
            },
            Event::SwitchPath { via_switch, term } => NodeEvent::SwitchPath { via_switch, term },
            Event::SnapshotInstalled { index, term, bytes } => {
                NodeEvent::SnapshotInstalled { index, term, bytes }
            }
            Event::FollowerBehindCompaction {
                follower,
                needs,
                first_kept,
                term,
            } => NodeEvent::FollowerBehindCompaction {
                follower,
                needs,
                first_kept,
                term,
            },
        }
    }
}

/// Protocol-level counters (the driver counts packets and bytes on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeCounters {
    pub requests_received: u64,
    pub requests_executed: u64,
    pub replies_sent: u64,
    pub drops_sent: u64,
    pub app_errors: u64,
    /// Datagrams rejected: malformed, unexpected type, unknown sender, refused by reassembly.
    pub rx_errors: u64,
    /// Requests over `client_limits.max_request_bytes` (DROP from the leader). Absent from
    /// summaries while 0 (the simulator runs without limits).
    #[serde(skip_serializing_if = "is_zero")]
    pub requests_refused_too_large: u64,
    /// Replies over `client_limits.max_reply_bytes`, replaced by DROP.
    #[serde(skip_serializing_if = "is_zero")]
    pub replies_refused_too_large: u64,
    /// Replies the reflection guard replaced by DROP (their destination's budget was spent).
    #[serde(skip_serializing_if = "is_zero")]
    pub replies_refused_amplification: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
