//! The server node every driver runs. One `Node` per replica (or the single server in
//! `unreplicated` mode); the simulator and the real runtime call exactly these methods.
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`]. Outputs, pulled by the driver
//! after every input: [`Node::poll_transmit`], [`Node::poll_event`], [`Node::poll_timeout`],
//! [`Node::poll_persist`] (state to make durable; answer with [`Node::handle_persisted`]) and
//! [`Node::take_app_cpu_ns`] (application CPU time reported, for the driver's CPU model).

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::app::{self, kv::KvCosts, AppError, AppKind, StateMachine};
use crate::r2p2::server::{self, Endpoint, Message, RxError};
use crate::raft::{ClusterConfig, DurableState, PersistRequest, RaftConfig, Replica, Role};
use crate::time::Instant;
use crate::wire::framing::ReassemblyConfig;
use crate::wire::raft::RaftMessage;
use crate::wire::{MsgType, Policy, Transmit, WireError};

pub use crate::types::{Mode, NodeId};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub mode: Mode,
    pub app: AppKind,
    pub kv_costs: KvCosts,
    pub reassembly: ReassemblyConfig,
    /// Seed of this node's own random stream (election timeouts, replier choice).
    pub seed: u64,
    /// Replicated modes: where the peers are. Ignored by `unreplicated`.
    pub cluster: Option<ClusterConfig>,
    pub raft: RaftConfig,
    /// `false`: requests execute inside the handler that made them ready (one core does
    /// everything). `true`: they wait until the driver calls [`Node::execute_next`] (a
    /// separate application core, as in the authors' servers).
    pub defer_execution: bool,
    /// Requests waiting for the application core (unreplicated mode with deferred
    /// execution); beyond it new requests are answered DROP.
    pub exec_queue_capacity: usize,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("mode {0} is not implemented by this build of the core")]
    ModeNotImplemented(&'static str),
    #[error("mode {0} needs a cluster configuration (peers and multicast group)")]
    MissingCluster(&'static str),
    #[error("node id {id} is not in the cluster of {n} peers")]
    BadId { id: NodeId, n: usize },
    #[error("clusters have 1 to 64 nodes (got {0})")]
    ClusterSize(usize),
}

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
    /// A request was refused with DROP.
    Dropped { client: SocketAddrV4, req_id: u16 },
    /// The application rejected a malformed request (an empty reply was sent).
    AppRejected {
        client: SocketAddrV4,
        req_id: u16,
        error: AppError,
    },
    /// HovercRaft++ leader: replication moved off (`false`: fall-back to direct fan-out) or
    /// back onto (`true`) the switch.
    SwitchPath { via_switch: bool, term: u64 },
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
}

/// One request to execute: who asked, what, and where it sits in the log (0 when unreplicated).
pub(crate) struct Execute<'a> {
    pub client: SocketAddrV4,
    pub req_id: u16,
    pub policy: Policy,
    pub body: &'a [u8],
    pub index: u64,
    pub term: u64,
}

/// The parts of a node every mode uses: the application and the output queues.
pub struct Shared {
    pub(crate) app: Box<dyn StateMachine + Send>,
    pub(crate) defer_execution: bool,
    /// Unreplicated mode, deferred execution: requests waiting for the application core.
    pending: VecDeque<(SocketAddrV4, u16, Policy, Vec<u8>)>,
    pending_capacity: usize,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<NodeEvent>,
    pub(crate) call_app_cpu_ns: u64,
    reply_buf: Vec<u8>,
    pub(crate) counters: NodeCounters,
}

impl Shared {
    /// Refuses a request with DROP. `hint` is empty, or the leader's address (6 bytes: IPv4,
    /// port) when a non-leader in `raft` mode redirects the client.
    pub(crate) fn send_drop(
        &mut self,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        hint: &[u8],
    ) {
        let sent = server::send(
            &mut self.transmits,
            client,
            MsgType::Drop,
            policy,
            req_id,
            hint,
            self.call_app_cpu_ns,
        );
        if sent.is_ok() {
            self.counters.drops_sent += 1;
            self.events.push_back(NodeEvent::Dropped { client, req_id });
        }
    }

    /// Executes a request and, if `reply`, answers the client.
    pub(crate) fn execute(&mut self, req: Execute<'_>, reply: bool) {
        let Execute {
            client,
            req_id,
            policy,
            body,
            index,
            term,
        } = req;
        self.reply_buf.clear();
        match self.app.execute(body, &mut self.reply_buf) {
            Ok(exec) => {
                self.counters.requests_executed += 1;
                self.call_app_cpu_ns += exec.cpu_ns;
                self.events.push_back(NodeEvent::Executed {
                    client,
                    req_id,
                    read_only: policy == Policy::ReplicatedRouteNoSe,
                    cpu_ns: exec.cpu_ns,
                    index,
                    term,
                });
            }
            Err(error) => {
                // A malformed body still gets an (empty) answer so the client is not left
                // waiting for a timeout.
                self.counters.app_errors += 1;
                self.reply_buf.clear();
                self.events.push_back(NodeEvent::AppRejected {
                    client,
                    req_id,
                    error,
                });
            }
        }
        if !reply {
            return;
        }
        match server::send(
            &mut self.transmits,
            client,
            MsgType::Response,
            policy,
            req_id,
            &self.reply_buf,
            self.call_app_cpu_ns,
        ) {
            Ok(_) => {
                self.counters.replies_sent += 1;
                self.events.push_back(NodeEvent::Replied {
                    client,
                    req_id,
                    index,
                });
            }
            // Only reachable with a reply over MAX_MESSAGE_BYTES, which apps bound far below.
            Err(_) => self.counters.app_errors += 1,
        }
    }
}

pub struct Node {
    cfg: NodeConfig,
    endpoint: Endpoint,
    shared: Shared,
    replica: Option<Replica>,
}

impl Node {
    /// Builds a node; `now` starts its timers (the election timeout of a replica).
    pub fn new(cfg: NodeConfig) -> Result<Node, ConfigError> {
        Self::new_at(cfg, Instant::ZERO)
    }

    /// A replica restarting after a crash, from what its storage made durable.
    pub fn restored(
        cfg: NodeConfig,
        now: Instant,
        durable: DurableState,
    ) -> Result<Node, ConfigError> {
        let mut node = Self::new_at(cfg, now)?;
        if let Some(r) = node.replica.as_mut() {
            r.restore(durable);
        }
        Ok(node)
    }

    /// Replaces the application this node runs, e.g. one backed by an external process that
    /// `core` cannot build (the runtime's Redis backend). Call it before the node handles any
    /// input: the new application must hold the state the built one starts with (empty, or
    /// the preloaded YCSB table), and a restored replica re-applies its log to it.
    #[must_use]
    pub fn with_app(mut self, app: Box<dyn StateMachine + Send>) -> Self {
        self.shared.app = app;
        self
    }

    pub fn new_at(cfg: NodeConfig, now: Instant) -> Result<Node, ConfigError> {
        let replica = match cfg.mode {
            Mode::Unreplicated => None,
            Mode::Raft | Mode::Hovercraft | Mode::HovercraftPlusPlus => {
                let cluster = cfg
                    .cluster
                    .clone()
                    .ok_or(ConfigError::MissingCluster(cfg.mode.as_str()))?;
                let n = cluster.peers.len();
                if n == 0 || n > 64 {
                    return Err(ConfigError::ClusterSize(n));
                }
                if cfg.id as usize >= n {
                    return Err(ConfigError::BadId { id: cfg.id, n });
                }
                if cfg.mode == Mode::HovercraftPlusPlus && cluster.switch.is_none() {
                    return Err(ConfigError::MissingCluster(cfg.mode.as_str()));
                }
                Some(Replica::new(
                    cfg.mode,
                    cfg.id,
                    cluster,
                    cfg.raft.clone(),
                    cfg.seed,
                    now,
                ))
            }
        };
        Ok(Node {
            endpoint: Endpoint::new(cfg.reassembly),
            shared: Shared {
                app: app::build(cfg.app, cfg.kv_costs),
                defer_execution: cfg.defer_execution,
                pending: VecDeque::new(),
                pending_capacity: cfg.exec_queue_capacity.max(1),
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                call_app_cpu_ns: 0,
                reply_buf: Vec::new(),
                counters: NodeCounters::default(),
            },
            replica,
            cfg,
        })
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }

    pub fn counters(&self) -> NodeCounters {
        self.shared.counters
    }

    /// The replication state (replicated modes only).
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// Digest of the application state (replicas that applied the same log agree).
    pub fn app_digest(&self) -> u64 {
        self.shared.app.state_digest()
    }

    /// Accepts one datagram.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &[u8],
    ) -> Result<(), NodeError> {
        let msg = match self.endpoint.receive(now, from, bytes) {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.shared.counters.rx_errors += 1;
                return Err(e.into());
            }
        };
        let r = self.dispatch(now, msg);
        if r.is_err() {
            self.shared.counters.rx_errors += 1;
        }
        r
    }

    fn dispatch(&mut self, now: Instant, msg: Message<'_>) -> Result<(), NodeError> {
        let t = msg.header.msg_type;
        match (t, self.replica.as_mut()) {
            (MsgType::Request, None) => {
                let s = &mut self.shared;
                s.counters.requests_received += 1;
                let (client, req_id, policy) = (msg.from, msg.header.req_id, msg.header.policy);
                // Unreplicated: execute and answer the client directly.
                if !s.defer_execution {
                    let body = &msg.body;
                    let req = Execute {
                        client,
                        req_id,
                        policy,
                        body,
                        index: 0,
                        term: 0,
                    };
                    s.execute(req, true);
                } else if s.pending.len() < s.pending_capacity {
                    s.pending
                        .push_back((client, req_id, policy, msg.body.into_owned()));
                } else {
                    s.send_drop(client, req_id, policy, &[]);
                }
                Ok(())
            }
            (MsgType::Request, Some(r)) => {
                self.shared.counters.requests_received += 1;
                r.on_client_request(
                    &mut self.shared,
                    now,
                    msg.from,
                    msg.header.req_id,
                    msg.header.policy,
                    &msg.body,
                );
                Ok(())
            }
            (t, Some(r)) if Replica::is_replica_message(t) => {
                let m = RaftMessage::decode(&msg.body).map_err(NodeError::Raft)?;
                // The sender must be the peer it claims to be, or the switch aggregator
                // (relaying the leader's AppendEntries, or sending a group reply).
                let via_switch = r.switch_addr() == Some(msg.from);
                if !via_switch && r.peer_id(msg.from) != Some(m.from) {
                    return Err(NodeError::UnknownSender(msg.from));
                }
                if via_switch
                    && (m.from as usize) >= r.peers()
                    && m.from != crate::switch::SWITCH_NODE_ID
                {
                    return Err(NodeError::UnknownSender(msg.from));
                }
                r.on_raft_message(&mut self.shared, now, m, via_switch);
                Ok(())
            }
            (other, _) => Err(NodeError::Unexpected(other)),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        if let Some(r) = self.replica.as_mut() {
            if r.poll_timeout().is_some_and(|t| t <= now) {
                r.handle_timeout(&mut self.shared, now);
            }
        }
    }

    /// Deferred execution: runs the next ready request on the application core and returns
    /// its CPU cost (its reply, if this node answers it, is queued as a transmit); `None` if
    /// nothing is ready.
    pub fn execute_next(&mut self, _now: Instant) -> Option<u64> {
        match self.replica.as_mut() {
            Some(r) => r.execute_next(&mut self.shared),
            None => {
                let (client, req_id, policy, body) = self.shared.pending.pop_front()?;
                let before = self.shared.call_app_cpu_ns;
                self.shared.execute(
                    Execute {
                        client,
                        req_id,
                        policy,
                        body: &body,
                        index: 0,
                        term: 0,
                    },
                    true,
                );
                Some(self.shared.call_app_cpu_ns - before)
            }
        }
    }

    /// Whether [`Node::execute_next`] has work.
    pub fn has_ready_execution(&self) -> bool {
        match &self.replica {
            Some(r) => r.has_ready_execution(),
            None => !self.shared.pending.is_empty(),
        }
    }

    /// State to make durable before dependent messages go out (replicated modes).
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        self.replica.as_mut()?.poll_persist()
    }

    /// The driver made persist request `seq` (and all before it) durable.
    pub fn handle_persisted(&mut self, now: Instant, seq: u64) {
        if let Some(r) = self.replica.as_mut() {
            r.handle_persisted(&mut self.shared, now, seq);
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.shared.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.endpoint.poll_timeout();
        let b = self.replica.as_ref().and_then(|r| r.poll_timeout());
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Application CPU time (ns) reported since the last call, and resets it. Each
    /// transmit's `after_app_cpu_ns` is measured from the same point, so a driver that takes
    /// this after draining a handler's outputs can place every datagram after the work that
    /// preceded it.
    pub fn take_app_cpu_ns(&mut self) -> u64 {
        std::mem::take(&mut self.shared.call_app_cpu_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::synthetic::SyntheticRequest;
    use crate::wire::{framing, Policy};
    use proptest::prelude::*;

    fn node() -> Node {
        Node::new(NodeConfig {
            id: 0,
            mode: Mode::Unreplicated,
            app: AppKind::Synthetic,
            kv_costs: KvCosts::default(),
            reassembly: ReassemblyConfig::default(),
            seed: 1,
            cluster: None,
            raft: RaftConfig::default(),
            defer_execution: false,
            exec_queue_capacity: 4096,
        })
        .unwrap()
    }

    fn client() -> SocketAddrV4 {
        SocketAddrV4::new([10, 1, 0, 1].into(), 9000)
    }

    fn request(service_ns: u64, reply_bytes: u32, req_id: u16) -> Vec<Vec<u8>> {
        let mut body = Vec::new();
        SyntheticRequest {
            service_ns,
            reply_bytes,
            read_only: false,
        }
        .encode(16, &mut body);
        let mut pkts = Vec::new();
        framing::fragment(MsgType::Request, Policy::LbRoute, req_id, &body, |p| {
            pkts.push(p)
        })
        .unwrap();
        pkts
    }

    #[test]
    fn unreplicated_executes_and_replies_with_reported_cpu() {
        let mut n = node();
        for p in request(7_000, 3_000, 42) {
            n.handle_datagram(Instant::from_ns(5), client(), &p)
                .unwrap();
        }
        let replies: Vec<Transmit> = std::iter::from_fn(|| n.poll_transmit()).collect();
        assert_eq!(n.take_app_cpu_ns(), 7_000);
        assert_eq!(n.take_app_cpu_ns(), 0);
        assert_eq!(replies.len(), 3, "3000 bytes span 3 packets");
        assert!(replies
            .iter()
            .all(|t| t.dst == client() && t.after_app_cpu_ns == 7_000));
        let (h, _) = crate::wire::Header::decode(&replies[0].payload).unwrap();
        assert_eq!(
            (h.msg_type, h.req_id, h.packet_order),
            (MsgType::Response, 42, 3)
        );
        assert_eq!(n.counters().replies_sent, 1);
        assert!(matches!(
            n.poll_event(),
            Some(NodeEvent::Executed {
                req_id: 42,
                cpu_ns: 7_000,
                ..
            })
        ));
    }

    #[test]
    fn malformed_request_body_gets_an_empty_reply_not_a_panic() {
        let mut n = node();
        let mut pkts = Vec::new();
        framing::fragment(MsgType::Request, Policy::LbRoute, 1, b"garbage", |p| {
            pkts.push(p)
        })
        .unwrap();
        n.handle_datagram(Instant::ZERO, client(), &pkts[0])
            .unwrap();
        assert_eq!(n.counters().app_errors, 1);
        let t = n.poll_transmit().unwrap();
        assert_eq!(t.payload.len(), crate::wire::header::HEADER_LEN);
    }

    #[test]
    fn replicated_modes_need_a_cluster() {
        let cfg = NodeConfig {
            mode: Mode::Raft,
            ..node().cfg.clone()
        };
        assert!(matches!(
            Node::new(cfg),
            Err(ConfigError::MissingCluster("raft"))
        ));
    }

    proptest! {
        /// Random datagrams never panic the node, and never make it execute or reply.
        #[test]
        fn random_bytes_never_panic(datagrams in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..32)) {
            let mut n = node();
            for (i, d) in datagrams.iter().enumerate() {
                let mut d = d.clone();
                // Half the time, make the header plausible so deeper code is reached.
                if i % 2 == 0 && d.len() >= 8 {
                    d[0] = 0xCC;
                    d[1] = 8;
                    d[2] &= 0x73;
                    d[3] &= 0xC0;
                }
                let _ = n.handle_datagram(Instant::from_ns(i as u64), client(), &d);
                n.handle_timeout(Instant::from_ns(i as u64 * 1_000_000));
            }
            // Whatever got through was a well-formed REQUEST and was answered exactly once.
            let c = n.counters();
            prop_assert_eq!(c.replies_sent, c.requests_received);
        }
    }
}
