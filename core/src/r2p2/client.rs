//! The client side of R2P2, sans-IO: what a load generator runs. It allocates a req_id per
//! request on its own address, matches responses (from any replica: in HovercRaft the
//! designated replier answers, not necessarily the node the request went to), counts DROPs,
//! and times requests out. Every table is bounded.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use rustc_hash::FxHashMap;

use super::server::{self, Endpoint, RxError};
use crate::time::{Duration, Instant};
use crate::wire::framing::ReassemblyConfig;
use crate::wire::{MsgType, Policy, Transmit, WireError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// A request with no response after this long is reported timed out and forgotten.
    pub timeout: Duration,
    /// Requests in flight at once on this address (at most 65536: req_id is a u16).
    pub max_outstanding: usize,
    pub reassembly: ReassemblyConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_ms(50),
            max_outstanding: 4096,
            reassembly: ReassemblyConfig::default(),
        }
    }
}

/// What happened to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    Response {
        req_id: u16,
        /// The caller's tag given to `send_request`.
        tag: u64,
        from: SocketAddrV4,
        latency_ns: u64,
        body: Vec<u8>,
    },
    /// The server refused the request (flow control, or not the leader). `body` is the DROP's
    /// payload: empty, or a redirect hint.
    Dropped {
        req_id: u16,
        tag: u64,
        latency_ns: u64,
        body: Vec<u8>,
    },
    TimedOut {
        req_id: u16,
        tag: u64,
    },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SendError {
    #[error("{0} requests already in flight (limit)")]
    TooManyOutstanding(usize),
    #[error(transparent)]
    Wire(#[from] WireError),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    pub sent: u64,
    pub responses: u64,
    pub drops: u64,
    pub timeouts: u64,
    /// Responses for no request in flight: late (after a timeout) or duplicate replies.
    pub unmatched: u64,
    pub rejected_packets: u64,
    /// Datagrams from an address that is not a cluster member, dropped unread once the
    /// client trusts only the cluster ([`Client::trust_only`]).
    pub untrusted: u64,
}

struct InFlight {
    sent_at: Instant,
    tag: u64,
    // Distinguishes this request from an earlier one that used the same req_id.
    seq: u64,
}

pub struct Client {
    local: SocketAddrV4,
    cfg: ClientConfig,
    next_req_id: u16,
    next_seq: u64,
    in_flight: FxHashMap<u16, InFlight>,
    // (deadline, req_id, seq) in send order, which is deadline order: the timeout is constant.
    deadlines: VecDeque<(Instant, u16, u64)>,
    rx: Endpoint,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
    /// Replies are accepted only from these addresses; empty: from anyone.
    trusted: Vec<SocketAddrV4>,
    pub stats: ClientStats,
}

impl Client {
    pub fn new(local: SocketAddrV4, cfg: ClientConfig) -> Self {
        Client {
            local,
            cfg: ClientConfig {
                max_outstanding: cfg.max_outstanding.min(1 << 16),
                ..cfg
            },
            next_req_id: 0,
            next_seq: 0,
            in_flight: FxHashMap::default(),
            deadlines: VecDeque::new(),
            rx: Endpoint::new(cfg.reassembly),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            trusted: Vec::new(),
            stats: ClientStats::default(),
        }
    }

    /// Accepts RESPONSE and DROP only from `servers` (the cluster's members): the 16-bit
    /// req_id alone let any process that could reach the client's port answer its requests
    /// (1,495 forged answers accepted in 8 s by the load generator). A datagram from any
    /// other address is dropped before reassembly and counted (`stats.untrusted`).
    pub fn trust_only(&mut self, servers: impl IntoIterator<Item = SocketAddrV4>) {
        self.trusted = servers.into_iter().collect();
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sends one request to `dst` (a server, or the cluster's multicast group); returns its
    /// req_id. `tag` is echoed back in the request's event.
    pub fn send_request(
        &mut self,
        now: Instant,
        dst: SocketAddrV4,
        policy: Policy,
        body: &[u8],
        tag: u64,
    ) -> Result<u16, SendError> {
        if self.in_flight.len() >= self.cfg.max_outstanding {
            return Err(SendError::TooManyOutstanding(self.in_flight.len()));
        }
        // Find a free req_id; bounded because fewer than 65536 are in flight.
        let mut req_id = self.next_req_id;
        while self.in_flight.contains_key(&req_id) {
            req_id = req_id.wrapping_add(1);
        }
        server::send(
            &mut self.transmits,
            dst,
            MsgType::Request,
            policy,
            req_id,
            body,
            0,
        )?;
        self.next_req_id = req_id.wrapping_add(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.insert(
            req_id,
            InFlight {
                sent_at: now,
                tag,
                seq,
            },
        );
        self.deadlines
            .push_back((now + self.cfg.timeout, req_id, seq));
        self.stats.sent += 1;
        Ok(req_id)
    }

    /// Accepts one datagram addressed to this client.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &[u8],
    ) -> Result<(), RxError> {
        if !self.trusted.is_empty() && !self.trusted.contains(&from) {
            self.stats.untrusted += 1;
            return Ok(());
        }
        let msg = match self.rx.receive(now, from, bytes) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.stats.rejected_packets += 1;
                return Err(e);
            }
        };
        let req_id = msg.header.req_id;
        let kind = msg.header.msg_type;
        if !matches!(kind, MsgType::Response | MsgType::Drop) {
            self.stats.rejected_packets += 1;
            return Err(RxError::Wire(WireError::Unexpected(kind)));
        }
        let Some(f) = self.in_flight.remove(&req_id) else {
            self.stats.unmatched += 1;
            return Ok(());
        };
        let latency_ns = (now - f.sent_at).as_ns();
        self.events.push_back(if kind == MsgType::Response {
            self.stats.responses += 1;
            ClientEvent::Response {
                req_id,
                tag: f.tag,
                from,
                latency_ns,
                body: msg.body.into_owned(),
            }
        } else {
            self.stats.drops += 1;
            ClientEvent::Dropped {
                req_id,
                tag: f.tag,
                latency_ns,
                body: msg.body.into_owned(),
            }
        });
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, req_id, seq)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.in_flight.get(&req_id).is_some_and(|f| f.seq == seq) {
                let f = self.in_flight.remove(&req_id).expect("present");
                self.stats.timeouts += 1;
                self.events
                    .push_back(ClientEvent::TimedOut { req_id, tag: f.tag });
            }
        }
        self.rx.handle_timeout(now);
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest time `handle_timeout` has work to do. Stale deadlines (of answered
    /// requests) are dropped lazily in `handle_timeout`, so this may wake the driver early.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.deadlines.front().map(|d| d.0);
        let b = self.rx.poll_timeout();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(
            SocketAddrV4::new([10, 0, 1, 1].into(), 7000),
            ClientConfig {
                max_outstanding: 3,
                timeout: Duration::from_us(100),
                ..Default::default()
            },
        )
    }

    fn reply(msg_type: MsgType, req_id: u16, body: &[u8]) -> Vec<Vec<u8>> {
        let mut q = VecDeque::new();
        server::send(
            &mut q,
            SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            msg_type,
            Policy::LbRoute,
            req_id,
            body,
            0,
        )
        .unwrap();
        q.into_iter().map(|t| t.payload).collect()
    }

    /// Issue 16: once it trusts only the cluster, a RESPONSE or DROP from any other address
    /// is neither matched nor reported, whatever req_id it names; the member's answer still is.
    #[test]
    fn a_client_that_trusts_only_the_cluster_ignores_forged_answers() {
        let server = SocketAddrV4::new([10, 0, 0, 1].into(), 8000);
        let forger = SocketAddrV4::new([10, 0, 9, 9].into(), 8000);
        let mut c = client();
        c.trust_only([server]);
        let t0 = Instant::from_ns(1_000);
        let a = c
            .send_request(t0, server, Policy::LbRoute, b"a", 100)
            .unwrap();
        for kind in [MsgType::Response, MsgType::Drop] {
            for p in reply(kind, a, b"forged") {
                c.handle_datagram(t0, forger, &p).unwrap();
            }
        }
        assert_eq!(c.poll_event(), None);
        assert_eq!((c.stats.untrusted, c.stats.responses), (2, 0));
        for p in reply(MsgType::Response, a, b"real") {
            c.handle_datagram(t0, server, &p).unwrap();
        }
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::Response { body, .. }) if body == b"real"
        ));
    }

    #[test]
    fn matches_responses_drops_and_timeouts() {
        let server = SocketAddrV4::new([10, 0, 0, 1].into(), 8000);
        let mut c = client();
        let t0 = Instant::from_ns(1_000);
        let a = c
            .send_request(t0, server, Policy::LbRoute, b"a", 100)
            .unwrap();
        let b = c
            .send_request(t0, server, Policy::LbRoute, b"b", 200)
            .unwrap();
        let d = c
            .send_request(t0, server, Policy::LbRoute, b"c", 300)
            .unwrap();
        assert_eq!((a, b, d), (0, 1, 2));
        assert_eq!(
            c.send_request(t0, server, Policy::LbRoute, b"x", 0),
            Err(SendError::TooManyOutstanding(3))
        );
        assert_eq!(c.poll_transmit().unwrap().dst, server);

        // A multi-packet response for `a`, and a DROP for `b`.
        for p in reply(MsgType::Response, a, &vec![5u8; 4000]) {
            c.handle_datagram(t0 + Duration::from_ns(500), server, &p)
                .unwrap();
        }
        for p in reply(MsgType::Drop, b, b"") {
            c.handle_datagram(t0 + Duration::from_ns(700), server, &p)
                .unwrap();
        }
        match c.poll_event().unwrap() {
            ClientEvent::Response {
                req_id,
                tag,
                latency_ns,
                body,
                ..
            } => {
                assert_eq!((req_id, tag, latency_ns, body.len()), (a, 100, 500, 4000));
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Dropped {
                req_id: b,
                tag: 200,
                latency_ns: 700,
                body: Vec::new(),
            })
        );
        c.handle_timeout(t0 + Duration::from_us(100));
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::TimedOut {
                req_id: d,
                tag: 300
            })
        );
        // A late reply for the timed-out request is counted, not matched.
        for p in reply(MsgType::Response, d, b"late") {
            c.handle_datagram(t0 + Duration::from_us(200), server, &p)
                .unwrap();
        }
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.stats.unmatched, 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn req_ids_skip_those_in_flight() {
        let server = SocketAddrV4::new([10, 0, 0, 1].into(), 8000);
        let mut c = client();
        c.next_req_id = u16::MAX;
        let a = c
            .send_request(Instant::ZERO, server, Policy::LbRoute, b"", 0)
            .unwrap();
        assert_eq!(a, u16::MAX);
        c.next_req_id = u16::MAX;
        let b = c
            .send_request(Instant::ZERO, server, Policy::LbRoute, b"", 0)
            .unwrap();
        assert_eq!(b, 0, "wraps and skips the req_id still in flight");
    }

    #[test]
    fn garbage_is_rejected_and_counted() {
        let mut c = client();
        let from = SocketAddrV4::new([1, 2, 3, 4].into(), 1);
        assert!(c.handle_datagram(Instant::ZERO, from, &[0xCC, 8]).is_err());
        // A REQUEST sent to a client is unexpected.
        let p = &reply(MsgType::Request, 0, b"")[0];
        assert!(c.handle_datagram(Instant::ZERO, from, p).is_err());
        assert_eq!(c.stats.rejected_packets, 2);
    }
}
