//! The server node every driver runs. One `Node` per replica (or the single server in
//! `unreplicated` mode); the simulator and the real runtime call exactly these methods.
//!
//! A node composes three parts:
//! - an R2P2 endpoint (`r2p2::server`): reassembly of incoming messages;
//! - an optional [`Replica`] (replicated modes): consensus only, see `raft/`;
//! - an executor (`executor.rs`): the application, its queue, reply/DROP framing and
//!   CPU accounting.
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`], [`Node::handle_persisted`],
//! [`Node::execute_next`] (a separate application core). Outputs, pulled by the driver after
//! every input: [`Node::poll_transmit`], [`Node::poll_event`], [`Node::poll_timeout`],
//! [`Node::poll_persist`] (state to make durable; answer with [`Node::handle_persisted`]) and
//! [`Node::take_app_cpu_ns`] (application CPU time reported, for the driver's CPU model).

pub mod config;
pub mod events;
pub mod executor;
pub mod limits;

use std::net::SocketAddrV4;

use crate::app::{self, StateMachine, SNAPSHOT_NS_PER_KIB};
use crate::r2p2::server::{Endpoint, Message};
use crate::raft::{
    ApplyMode, ClusterConfig, Committed, DurableState, Output, PersistRequest, Refusal, Replica,
    Role, Target,
};
use crate::time::Instant;
use crate::wire::raft::RaftMessage;
use crate::wire::MsgType;

pub use self::config::{ConfigError, NodeConfig, MAX_CLUSTER_DATAGRAM_OVERHEAD_BYTES};
pub use self::events::{DropReason, NodeCounters, NodeError, NodeEvent};
use self::executor::Executor;
pub use self::limits::{AmplificationLimit, ClientLimits};
pub use crate::types::{Mode, NodeId};

pub struct Node {
    cfg: NodeConfig,
    endpoint: Endpoint,
    exec: Executor,
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
        Self::new_at(cfg, now)?.restore_from(durable)
    }

    /// Loads what storage made durable into a node that has handled no input yet (built with
    /// [`Node::new_at`], its application possibly replaced with [`Node::with_app`]): the
    /// snapshot's state into the application, term, vote and log into the replica. A
    /// snapshot either cannot read is an error, and the node is not built.
    pub fn restore_from(mut self, durable: DurableState) -> Result<Node, ConfigError> {
        let Some(r) = self.replica.as_mut() else {
            return Ok(self);
        };
        let snapshot = durable.snapshot.clone();
        r.restore(durable)
            .map_err(|e| ConfigError::Snapshot(e.to_string()))?;
        if let Some(s) = snapshot {
            let state = s
                .app_state()
                .map_err(|e| ConfigError::Snapshot(e.to_string()))?;
            self.exec
                .app
                .restore(state)
                .map_err(|e| ConfigError::Snapshot(e.to_string()))?;
        }
        Ok(self)
    }

    /// Replaces the application this node runs, e.g. one backed by an external process that
    /// `core` cannot build (the runtime's Redis backend). Call it before the node handles any
    /// input: the new application must hold the state the built one starts with (empty, or
    /// the preloaded YCSB table), and a restored replica re-applies its log to it.
    #[must_use]
    pub fn with_app(mut self, app: Box<dyn StateMachine + Send>) -> Self {
        self.exec.app = app;
        self
    }

    pub fn new_at(cfg: NodeConfig, now: Instant) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let replica = match (cfg.mode, &cfg.cluster) {
            (Mode::Unreplicated, _) => None,
            (mode, Some(cluster)) => {
                let apply = if cfg.defer_execution {
                    ApplyMode::Driver
                } else {
                    ApplyMode::OnCommit
                };
                Some(Replica::new(
                    mode,
                    cfg.id,
                    cluster.clone(),
                    cfg.raft.clone(),
                    cfg.seed,
                    now,
                    apply,
                ))
            }
            (mode, None) => return Err(ConfigError::MissingCluster(mode.as_str())),
        };
        Ok(Node {
            endpoint: Endpoint::new(cfg.reassembly),
            exec: Executor::new(app::build(cfg.app, cfg.kv_costs), &cfg),
            replica,
            cfg,
        })
    }

    /// This node lost its durable state and rejoins (see [`Replica::start_rejoining`]).
    pub fn start_rejoining(&mut self) {
        if let Some(r) = self.replica.as_mut() {
            r.start_rejoining();
        }
    }

    /// Whether this node is still rejoining after losing its state.
    pub fn is_rejoining(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.is_rejoining())
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }

    pub fn counters(&self) -> NodeCounters {
        self.exec.counters
    }

    /// The replication state (replicated modes only).
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// Digest of the application state (replicas that applied the same log agree).
    pub fn app_digest(&self) -> u64 {
        self.exec.app.state_digest()
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
                self.exec.counters.rx_errors += 1;
                return Err(e.into());
            }
        };
        let r = self.dispatch(now, msg);
        if r.is_err() {
            self.exec.counters.rx_errors += 1;
        }
        self.drain_replica(now);
        r
    }

    fn dispatch(&mut self, now: Instant, msg: Message<'_>) -> Result<(), NodeError> {
        let t = msg.header.msg_type;
        match (t, self.replica.as_mut()) {
            (MsgType::Request, None) => {
                self.exec.counters.requests_received += 1;
                let (client, req_id, policy) = (msg.from, msg.header.req_id, msg.header.policy);
                self.exec
                    .on_unreplicated_request(now, client, req_id, policy, msg.body);
                Ok(())
            }
            (MsgType::Request, Some(r)) => {
                self.exec.counters.requests_received += 1;
                if self.exec.request_too_large(msg.body.len()) {
                    // Every node has the same limit: the leader never orders it, so the
                    // others need not keep its body. Only the leader answers.
                    if r.role() == Role::Leader {
                        let (client, req_id, policy) =
                            (msg.from, msg.header.req_id, msg.header.policy);
                        self.exec.send_drop(client, req_id, policy, &[], None);
                    }
                    return Ok(());
                }
                r.propose(
                    now,
                    msg.from,
                    msg.header.req_id,
                    msg.header.policy,
                    &msg.body,
                );
                Ok(())
            }
            (t, Some(r)) if is_replica_message(t) => {
                let m = RaftMessage::decode(&msg.body).map_err(NodeError::Raft)?;
                let cluster = self.cfg.cluster.as_ref().expect("a replica has a cluster");
                // The sender must be the peer it claims to be, or the switch aggregator
                // (relaying the leader's AppendEntries, or sending a group reply).
                let via_switch = cluster.switch == Some(msg.from);
                if !via_switch && peer_id(cluster, msg.from) != Some(m.from) {
                    return Err(NodeError::UnknownSender(msg.from));
                }
                if via_switch
                    && (m.from as usize) >= cluster.peers.len()
                    && m.from != crate::switch::SWITCH_NODE_ID
                {
                    return Err(NodeError::UnknownSender(msg.from));
                }
                r.step(now, m, via_switch);
                Ok(())
            }
            (other, _) => Err(NodeError::Unexpected(other)),
        }
    }

    /// Turns what the replica produced into datagrams, executions and events, in its order;
    /// then takes a snapshot if one is due (the application is at the applied index now).
    fn drain_replica(&mut self, now: Instant) {
        self.drain_outputs(now);
        self.maybe_snapshot();
    }

    fn maybe_snapshot(&mut self) {
        let Some(r) = self.replica.as_mut() else {
            return;
        };
        if !r.snapshot_due() {
            return;
        }
        let mut state = Vec::new();
        let cost = self.exec.app.snapshot(&mut state);
        let len = r.take_snapshot(&state);
        // The sessions' copy costs what the apps charge for theirs.
        let extra = (len - state.len()) as u64;
        self.exec.call_app_cpu_ns +=
            cost.cpu_ns + extra.div_ceil(1024).saturating_mul(SNAPSHOT_NS_PER_KIB);
    }

    fn drain_outputs(&mut self, now: Instant) {
        let Node {
            replica, exec, cfg, ..
        } = self;
        let Some(r) = replica.as_mut() else { return };
        let Some(cluster) = cfg.cluster.as_ref() else {
            return;
        };
        while let Some(out) = r.poll_output() {
            match out {
                Output::Send(m) => {
                    let Some(dst) = address(cluster, m.to) else {
                        continue;
                    };
                    // The replica numbers messages in send order; R2P2 ids are 16 bits.
                    let packets = exec.send_raft(dst, m.seq as u16, &m.msg);
                    r.counters.raft_packets_sent += packets as u64;
                }
                Output::Refuse {
                    client,
                    req_id,
                    policy,
                    why,
                    leader_term,
                } => {
                    // A DROP from a non-leader in `raft` mode redirects: the leader's address
                    // (6 bytes) when known, else one zero byte ("not the leader, leader
                    // unknown"). An empty DROP is flow control.
                    let mut hint = Vec::new();
                    if let Refusal::NotLeader { leader } = why {
                        match leader.and_then(|l| cluster.peers.get(l as usize)) {
                            Some(&addr) => crate::wire::put_addr(&mut hint, addr),
                            None => hint.push(0),
                        }
                    }
                    exec.send_drop(client, req_id, policy, &hint, leader_term);
                }
                Output::Apply(c) => exec.execute(now, &c),
                Output::Event(e) => exec.events.push_back(e.into()),
                Output::Restore(snapshot) => {
                    // The application first: if it cannot load the state, nothing changes.
                    let loaded = snapshot
                        .app_state()
                        .ok()
                        .and_then(|state| exec.app.restore(state).ok());
                    match loaded {
                        Some(cost) => {
                            exec.call_app_cpu_ns += cost.cpu_ns;
                            r.snapshot_restored(now, snapshot);
                        }
                        None => r.snapshot_refused(snapshot),
                    }
                }
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        if let Some(r) = self.replica.as_mut() {
            if r.poll_timeout().is_some_and(|t| t <= now) {
                r.handle_timeout(now);
                self.drain_replica(now);
            }
        }
    }

    /// Deferred execution: runs the next ready request on the application core and returns
    /// its CPU cost (its reply, if this node answers it, is queued as a transmit); `None` if
    /// nothing is ready.
    pub fn execute_next(&mut self, now: Instant) -> Option<u64> {
        let before = self.exec.call_app_cpu_ns;
        match self.replica.as_mut() {
            Some(r) => {
                let c = r.next_to_apply()?;
                let index = c.index;
                self.exec.execute(now, &c);
                r.handle_applied(index);
                self.drain_replica(now);
            }
            None => {
                let (client, req_id, policy, body) = self.exec.pending.pop_front()?;
                let c = Committed::unreplicated(client, req_id, policy, body.into());
                self.exec.execute(now, &c);
            }
        }
        Some(self.exec.call_app_cpu_ns - before)
    }

    /// Whether [`Node::execute_next`] has work.
    pub fn has_ready_execution(&self) -> bool {
        match &self.replica {
            Some(r) => r.has_committed_to_apply(),
            None => !self.exec.pending.is_empty(),
        }
    }

    /// State to make durable before dependent messages go out (replicated modes). It carries
    /// the log entries to write.
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<PersistRequest> {
        self.replica.as_mut()?.poll_persist()
    }

    /// The driver made persist request `seq` (and all before it) durable.
    pub fn handle_persisted(&mut self, now: Instant, seq: u64) {
        if let Some(r) = self.replica.as_mut() {
            r.handle_persisted(now, seq);
            self.drain_replica(now);
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<crate::wire::Transmit> {
        self.exec.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.exec.events.pop_front()
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
        std::mem::take(&mut self.exec.call_app_cpu_ns)
    }
}

/// R2P2 message types that carry Raft messages.
fn is_replica_message(t: MsgType) -> bool {
    matches!(t, MsgType::RaftReq | MsgType::RaftRep | MsgType::RaftMsg)
}

/// Which replica sent from `addr`, if it is a peer.
fn peer_id(cluster: &ClusterConfig, addr: SocketAddrV4) -> Option<NodeId> {
    cluster
        .peers
        .iter()
        .position(|&p| p == addr)
        .map(|i| i as NodeId)
}

fn address(cluster: &ClusterConfig, to: Target) -> Option<SocketAddrV4> {
    match to {
        Target::Peer(id) => cluster.peers.get(id as usize).copied(),
        Target::Group => Some(cluster.group),
        Target::Switch => cluster.switch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::kv::KvCosts;
    use crate::app::synthetic::SyntheticRequest;
    use crate::app::AppKind;
    use crate::raft::RaftConfig;
    use crate::wire::framing::ReassemblyConfig;
    use crate::wire::Transmit;
    use crate::wire::{framing, Policy};
    use proptest::prelude::*;

    fn node() -> Node {
        node_with(crate::node::ClientLimits::UNLIMITED)
    }

    fn node_with(client_limits: crate::node::ClientLimits) -> Node {
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
            client_limits,
            cluster_datagram_overhead_bytes: 0,
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

    /// The first packet of each transmit, decoded: (type, req_id).
    fn answers(n: &mut Node) -> Vec<(MsgType, u16)> {
        std::iter::from_fn(|| n.poll_transmit())
            .filter_map(|t| crate::wire::Header::decode(&t.payload).ok().map(|(h, _)| h))
            .filter(|h| h.first)
            .map(|h| (h.msg_type, h.req_id))
            .collect()
    }

    #[test]
    fn oversize_requests_and_replies_are_refused_with_drop_and_counted() {
        let mut n = node_with(crate::node::ClientLimits {
            max_request_bytes: 64,
            max_reply_bytes: 2_000,
            amplification: None,
        });
        let mut padded = Vec::new();
        SyntheticRequest {
            service_ns: 1,
            reply_bytes: 1,
            read_only: false,
        }
        .encode(65, &mut padded);
        let mut pkts = Vec::new();
        framing::fragment(MsgType::Request, Policy::LbRoute, 1, &padded, |p| {
            pkts.push(p)
        })
        .unwrap();
        for pkts in [pkts, request(1, 2_001, 2), request(1, 2_000, 3)] {
            for p in pkts {
                n.handle_datagram(Instant::ZERO, client(), &p).unwrap();
            }
        }
        assert_eq!(
            answers(&mut n),
            vec![
                (MsgType::Drop, 1),
                (MsgType::Drop, 2),
                (MsgType::Response, 3)
            ]
        );
        let c = n.counters();
        assert_eq!(
            (c.requests_refused_too_large, c.replies_refused_too_large),
            (1, 1)
        );
        assert_eq!(
            c.requests_executed, 2,
            "the oversize reply's request did run"
        );
    }

    #[test]
    fn the_reflection_guard_answers_drop_once_an_address_spent_its_budget() {
        let mut n = node_with(crate::node::ClientLimits {
            amplification: Some(crate::node::AmplificationLimit {
                factor: 8,
                free_bytes: 1_000,
                budget_bytes_per_s: 10_000,
                burst_bytes: 20_000,
            }),
            ..crate::node::ClientLimits::UNLIMITED
        });
        // 16-byte requests asking for 10 000 bytes: 9 000 charged each; the burst pays two.
        for id in 0..4 {
            for p in request(1, 10_000, id) {
                n.handle_datagram(Instant::ZERO, client(), &p).unwrap();
            }
        }
        // One second later the budget paid for one more.
        for p in request(1, 10_000, 4) {
            n.handle_datagram(Instant::from_ns(1_000_000_000), client(), &p)
                .unwrap();
        }
        // A small answer is always free.
        for p in request(1, 100, 5) {
            n.handle_datagram(Instant::from_ns(1_000_000_000), client(), &p)
                .unwrap();
        }
        let got = answers(&mut n);
        assert_eq!(
            got,
            vec![
                (MsgType::Response, 0),
                (MsgType::Response, 1),
                (MsgType::Drop, 2),
                (MsgType::Drop, 3),
                (MsgType::Response, 4),
                (MsgType::Response, 5)
            ]
        );
        assert_eq!(n.counters().replies_refused_amplification, 2);
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
