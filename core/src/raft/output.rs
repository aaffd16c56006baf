//! What a [`Replica`](super::Replica) hands back to its driver, in the order it happened.
//!
//! One ordered queue rather than etcd's separate `Ready` lists, because order is observable:
//! a refusal, a message and an entry applied on commit come out in the order the protocol
//! produced them, and a driver that frames them in that order sends the same bytes every run.
//! Persistence goes through its own pull ([`Replica::poll_persist`](super::Replica::poll_persist)),
//! and entries the driver applies at its own pace through
//! [`Replica::next_to_apply`](super::Replica::next_to_apply).

use std::borrow::Cow;
use std::net::SocketAddrV4;

use super::Role;
use crate::types::NodeId;
use crate::wire::raft::RaftMessage;
use crate::wire::Policy;

/// Where a Raft message goes. The driver maps it to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One replica.
    Peer(NodeId),
    /// Every replica (the cluster's multicast group): ANNOUNCE_COMMIT.
    Group,
    /// The HovercRaft++ switch aggregator.
    Switch,
}

/// A Raft message ready to go out: every change it depends on is durable.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub to: Target,
    /// The message's number in send order (held messages keep theirs); the node uses its low
    /// 16 bits as the transport's message id.
    pub seq: u64,
    pub msg: RaftMessage,
}

/// Why a client request is refused (the node answers it with DROP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `raft` mode: this node does not lead; `leader` is whom the client should ask.
    NotLeader { leader: Option<NodeId> },
    /// Too many entries ordered but not yet applied (last − applied at the threshold).
    FlowControl,
    /// Every live replica already has its bound of outstanding replies.
    NoReplier,
}

/// A committed request to execute, in log order (`index` 0: executed unordered, which only
/// the `deposed-leader-serves-reads` canary does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed<'a> {
    pub index: u64,
    pub term: u64,
    pub client: SocketAddrV4,
    pub req_id: u16,
    pub policy: Policy,
    pub body: Cow<'a, [u8]>,
    /// This node is the entry's designated replier and has not answered it before a crash.
    pub reply: bool,
}

impl<'a> Committed<'a> {
    /// A request in `unreplicated` mode: no log position, always answered.
    pub fn unreplicated(
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        body: Cow<'a, [u8]>,
    ) -> Committed<'a> {
        Committed {
            index: 0,
            term: 0,
            client,
            req_id,
            policy,
            body,
            reply: true,
        }
    }
}

impl Committed<'_> {
    /// A copy that owns its body.
    pub fn into_owned(self) -> Committed<'static> {
        Committed {
            index: self.index,
            term: self.term,
            client: self.client,
            req_id: self.req_id,
            policy: self.policy,
            body: self.body.into_owned().into(),
            reply: self.reply,
        }
    }
}

/// What a replica did, for metrics and checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Role, term or known leader changed.
    RoleChanged {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    /// A leader advanced its commit index by counting replicas (or the switch's count).
    Committed {
        index: u64,
        entry_term: u64,
        term: u64,
    },
    /// HovercRaft++ leader: replication moved off (`false`) or back onto the switch.
    SwitchPath { via_switch: bool, term: u64 },
    /// A follower installed its leader's snapshot: its state is that after `index` (of
    /// `term`), `bytes` long.
    SnapshotInstalled { index: u64, term: u64, bytes: u64 },
    /// A leader found a follower that needs entries it already compacted (`needs` is the
    /// follower's next index, before `first_kept`): it gets a snapshot. Once per episode (`ReplicaCounters::followers_behind_compaction` counts them).
    FollowerBehindCompaction {
        follower: NodeId,
        needs: u64,
        first_kept: u64,
        term: u64,
    },
}

/// One output of a replica.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Send(Outgoing),
    Refuse {
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        why: Refusal,
        /// `Some(term)`: refused by the leader of `term`, which will not order this request
        /// in `term` (a later copy is refused again). `None`: refused by a non-leader.
        leader_term: Option<u64>,
    },
    /// With [`ApplyMode::OnCommit`]: execute this now (it already counts as applied).
    Apply(Committed<'static>),
    /// Load this snapshot into the application (replacing its state), then report it with
    /// [`Replica::snapshot_restored`](super::Replica::snapshot_restored), or
    /// [`Replica::snapshot_refused`](super::Replica::snapshot_refused) if it cannot.
    Restore(super::Snapshot),
    Event(Event),
}

/// Who paces the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Each entry is handed out as [`Output::Apply`] the moment it may be applied, and counts
    /// as applied at once (one core runs protocol and application).
    OnCommit,
    /// The driver takes entries with [`Replica::next_to_apply`](super::Replica::next_to_apply)
    /// and reports each with [`Replica::handle_applied`](super::Replica::handle_applied) (a
    /// separate application core).
    Driver,
}
