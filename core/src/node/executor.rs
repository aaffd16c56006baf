//! The executor: the application behind a node, the queue in front of it (unreplicated
//! mode), reply and DROP framing, and the application CPU time the driver's CPU model
//! charges. The replica decides *what* runs and who answers; this runs it and frames it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

use super::events::{NodeCounters, NodeEvent};
use super::limits::{ClientLimits, ReflectionGuard};
use super::NodeConfig;
use crate::app::StateMachine;
use crate::r2p2::server;
use crate::raft::Committed;
use crate::time::Instant;
use crate::wire::raft::RaftMessage;
use crate::wire::{MsgType, Policy, Transmit};

pub(crate) struct Executor {
    pub app: Box<dyn StateMachine + Send>,
    defer_execution: bool,
    /// Unreplicated mode, deferred execution: requests waiting for the application core.
    pub pending: VecDeque<(SocketAddrV4, u16, Policy, Vec<u8>)>,
    pending_capacity: usize,
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<NodeEvent>,
    /// Application CPU time since the driver last took it.
    pub call_app_cpu_ns: u64,
    reply_buf: Vec<u8>,
    /// Encoding buffer for outgoing Raft messages (reused).
    raft_buf: Vec<u8>,
    /// Message bytes per Raft packet (room left for the driver's per-datagram trailer).
    raft_packet_payload_bytes: usize,
    pub limits: ClientLimits,
    guard: Option<ReflectionGuard>,
    pub counters: NodeCounters,
}

impl Executor {
    pub fn new(app: Box<dyn StateMachine + Send>, cfg: &NodeConfig) -> Executor {
        Executor {
            app,
            defer_execution: cfg.defer_execution,
            pending: VecDeque::new(),
            pending_capacity: cfg.exec_queue_capacity.max(1),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            call_app_cpu_ns: 0,
            reply_buf: Vec::new(),
            raft_buf: Vec::new(),
            raft_packet_payload_bytes: crate::wire::MAX_PACKET_PAYLOAD
                .saturating_sub(cfg.cluster_datagram_overhead_bytes),
            limits: cfg.client_limits,
            guard: cfg.client_limits.amplification.map(ReflectionGuard::new),
            counters: NodeCounters::default(),
        }
    }

    /// Whether a request body is over the size limit (counted if so).
    pub fn request_too_large(&mut self, body_bytes: usize) -> bool {
        let over = body_bytes > self.limits.max_request_bytes;
        if over {
            self.counters.requests_refused_too_large += 1;
        }
        over
    }

    /// Unreplicated: execute and answer at once, or queue for the application core (DROP
    /// when its queue is full).
    pub fn on_unreplicated_request(
        &mut self,
        now: Instant,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        body: Cow<'_, [u8]>,
    ) {
        if self.request_too_large(body.len()) {
            self.send_drop(client, req_id, policy, &[], None);
        } else if !self.defer_execution {
            self.execute(now, &Committed::unreplicated(client, req_id, policy, body));
        } else if self.pending.len() < self.pending_capacity {
            self.pending
                .push_back((client, req_id, policy, body.into_owned()));
        } else {
            self.send_drop(client, req_id, policy, &[], None);
        }
    }

    /// Frames a Raft message to `dst`; returns the number of datagrams.
    pub fn send_raft(&mut self, dst: SocketAddrV4, id: u16, msg: &RaftMessage) -> usize {
        self.raft_buf.clear();
        msg.encode(&mut self.raft_buf);
        // Only a message over the framing limit fails, and Raft messages are bounded far
        // below it (MAX_APPEND_BYTES per AppendEntries).
        server::send_at(
            self.raft_packet_payload_bytes,
            &mut self.transmits,
            dst,
            msg.r2p2_type(),
            Policy::FixedRoute,
            id,
            &self.raft_buf,
            self.call_app_cpu_ns,
        )
        .unwrap_or(0)
    }

    /// Refuses a request with DROP. `hint` is empty, or the leader's address (6 bytes: IPv4,
    /// port) when a non-leader in `raft` mode redirects the client. `leader_term`: refused by
    /// the leader of that term, which will not order the request in it.
    pub fn send_drop(
        &mut self,
        client: SocketAddrV4,
        req_id: u16,
        policy: Policy,
        hint: &[u8],
        leader_term: Option<u64>,
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
            self.events.push_back(NodeEvent::Dropped {
                client,
                req_id,
                leader_term,
            });
        }
    }

    /// Executes a request and, if `req.reply`, answers the client (or DROP when the reply is
    /// over the size limit or the reflection guard refuses it).
    pub fn execute(&mut self, now: Instant, req: &Committed<'_>) {
        let Committed {
            client,
            req_id,
            policy,
            index,
            term,
            reply,
            ..
        } = *req;
        self.reply_buf.clear();
        match self.app.execute(&req.body, &mut self.reply_buf) {
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
        if self.reply_buf.len() > self.limits.max_reply_bytes {
            self.counters.replies_refused_too_large += 1;
            self.send_drop(client, req_id, policy, &[], None);
            return;
        }
        if let Some(g) = self.guard.as_mut() {
            if !g.admit(now, client, req.body.len(), self.reply_buf.len()) {
                self.counters.replies_refused_amplification += 1;
                self.send_drop(client, req_id, policy, &[], None);
                return;
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
