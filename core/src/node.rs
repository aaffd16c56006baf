//! The server node every driver runs. One `Node` per replica (or the single server in
//! `unreplicated` mode); the simulator and the real runtime call exactly these methods.
//!
//! Inputs: [`Node::handle_datagram`], [`Node::handle_timeout`]. Outputs, pulled by the driver
//! after every input: [`Node::poll_transmit`], [`Node::poll_event`], [`Node::poll_timeout`],
//! and [`Node::call_app_cpu_ns`] (application CPU time the last call reported, for the
//! driver's CPU model).

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::app::{self, kv::KvCosts, AppError, AppKind, StateMachine};
use crate::r2p2::server::{self, Endpoint, Message, RxError};
use crate::time::Instant;
use crate::wire::framing::ReassemblyConfig;
use crate::wire::{MsgType, Transmit, WireError};

/// Identifies a replica within its cluster (0-based).
pub type NodeId = u8;

/// Which system a cluster runs (DESIGN.md §3, "four modes").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Mode {
    /// One server, R2P2 only: the baseline every speedup is measured against.
    #[serde(rename = "unreplicated")]
    Unreplicated,
    /// Vanilla Raft in R2P2: the leader receives requests, replicates full entries, replies.
    #[serde(rename = "raft")]
    Raft,
    /// Multicast requests, metadata-only log, reply and read-only load balancing.
    #[serde(rename = "hovercraft")]
    Hovercraft,
    /// HovercRaft with fan-out/fan-in aggregated by the switch.
    #[serde(rename = "hovercraft++")]
    HovercraftPlusPlus,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Unreplicated => "unreplicated",
            Mode::Raft => "raft",
            Mode::Hovercraft => "hovercraft",
            Mode::HovercraftPlusPlus => "hovercraft++",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub mode: Mode,
    pub app: AppKind,
    pub kv_costs: KvCosts,
    pub reassembly: ReassemblyConfig,
    /// Seed of this node's own random stream (election timeouts, replier choice).
    pub seed: u64,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("mode {0} is not implemented by this build of the core")]
    ModeNotImplemented(&'static str),
}

/// Why a datagram was rejected. The node's state is unchanged by a rejected datagram.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NodeError {
    #[error(transparent)]
    Rx(#[from] RxError),
    #[error("a {0:?} message is not expected by this node")]
    Unexpected(MsgType),
}

/// What a node did, for metrics and checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The application executed a request.
    Executed {
        client: SocketAddrV4,
        req_id: u16,
        read_only: bool,
        cpu_ns: u64,
    },
    /// A reply went out to a client.
    Replied { client: SocketAddrV4, req_id: u16 },
    /// The application rejected a malformed request (an empty reply was sent).
    AppRejected {
        client: SocketAddrV4,
        req_id: u16,
        error: AppError,
    },
}

/// Protocol-level counters (the driver counts packets and bytes on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeCounters {
    pub requests_received: u64,
    pub requests_executed: u64,
    pub replies_sent: u64,
    pub app_errors: u64,
    /// Datagrams rejected: malformed, unexpected type, or refused by reassembly.
    pub rx_errors: u64,
}

pub struct Node {
    cfg: NodeConfig,
    endpoint: Endpoint,
    app: Box<dyn StateMachine + Send>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<NodeEvent>,
    reply_buf: Vec<u8>,
    call_app_cpu_ns: u64,
    counters: NodeCounters,
}

impl Node {
    pub fn new(cfg: NodeConfig) -> Result<Node, ConfigError> {
        if cfg.mode != Mode::Unreplicated {
            return Err(ConfigError::ModeNotImplemented(cfg.mode.as_str()));
        }
        Ok(Node {
            endpoint: Endpoint::new(cfg.reassembly),
            app: app::build(cfg.app, cfg.kv_costs),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            reply_buf: Vec::new(),
            call_app_cpu_ns: 0,
            counters: NodeCounters::default(),
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
        self.counters
    }

    /// Digest of the application state (replicas that applied the same log agree).
    pub fn app_digest(&self) -> u64 {
        self.app.state_digest()
    }

    /// Accepts one datagram.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &[u8],
    ) -> Result<(), NodeError> {
        self.call_app_cpu_ns = 0;
        let msg = match self.endpoint.receive(now, from, bytes) {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.counters.rx_errors += 1;
                return Err(e.into());
            }
        };
        match msg.header.msg_type {
            MsgType::Request => {
                self.on_request(msg);
                Ok(())
            }
            other => {
                self.counters.rx_errors += 1;
                Err(NodeError::Unexpected(other))
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.call_app_cpu_ns = 0;
        self.endpoint.handle_timeout(now);
    }

    fn on_request(&mut self, msg: Message<'_>) {
        self.counters.requests_received += 1;
        // Unreplicated: execute at once and answer the client directly.
        self.execute_and_reply(msg.from, msg.header.req_id, msg.header.policy, &msg.body);
    }

    fn execute_and_reply(
        &mut self,
        client: SocketAddrV4,
        req_id: u16,
        policy: crate::wire::Policy,
        body: &[u8],
    ) {
        self.reply_buf.clear();
        match self.app.execute(body, &mut self.reply_buf) {
            Ok(exec) => {
                self.counters.requests_executed += 1;
                self.call_app_cpu_ns += exec.cpu_ns;
                self.events.push_back(NodeEvent::Executed {
                    client,
                    req_id,
                    read_only: policy == crate::wire::Policy::ReplicatedRouteNoSe,
                    cpu_ns: exec.cpu_ns,
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
                self.events.push_back(NodeEvent::Replied { client, req_id });
            }
            // Only reachable with a reply over MAX_MESSAGE_BYTES, which apps bound far below.
            Err(WireError::Oversize { .. }) | Err(_) => self.counters.app_errors += 1,
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }

    /// Application CPU time (ns) reported during the last `handle_*` call.
    pub fn call_app_cpu_ns(&self) -> u64 {
        self.call_app_cpu_ns
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
        assert_eq!(n.call_app_cpu_ns(), 7_000);
        let replies: Vec<Transmit> = std::iter::from_fn(|| n.poll_transmit()).collect();
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
    fn other_modes_are_refused_until_implemented() {
        let cfg = NodeConfig {
            mode: Mode::Raft,
            ..node().cfg.clone()
        };
        assert!(matches!(
            Node::new(cfg),
            Err(ConfigError::ModeNotImplemented("raft"))
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
