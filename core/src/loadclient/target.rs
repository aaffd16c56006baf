//! Target choice and the leader hint of one client machine.
//!
//! `unreplicated` sends to the one server; vanilla `raft` sends to the server the machine
//! believes leads; HovercRaft (and ++) multicasts to the cluster's group. The hint follows
//! the replier of each RESPONSE, the leader named by a non-leader's DROP, and moves on to
//! the next server after a batch of events that held a timeout.

use std::net::SocketAddrV4;

use crate::r2p2::client::ClientEvent;
use crate::types::Mode;
use crate::wire::Policy;

/// Where a client machine's requests go.
#[derive(Clone, Debug)]
pub struct Targets {
    mode: Mode,
    /// Server addresses; the index is the node id.
    servers: Vec<SocketAddrV4>,
    /// The cluster's multicast group (HovercRaft modes).
    group: SocketAddrV4,
    /// `raft` mode: the server this machine believes leads.
    leader_hint: usize,
    /// A timeout was seen since the last [`Targets::end_of_events`].
    timed_out: bool,
}

impl Targets {
    /// `servers` must not be empty (a cluster has at least one node).
    pub fn new(mode: Mode, servers: Vec<SocketAddrV4>, group: SocketAddrV4) -> Self {
        assert!(
            !servers.is_empty(),
            "a load client needs at least one server"
        );
        Targets {
            mode,
            servers,
            group,
            leader_hint: 0,
            timed_out: false,
        }
    }

    /// Destination and policy of a request. Read-only requests of the replicated modes are
    /// REPLICATED_ROUTE_NO_SE; the unreplicated server takes everything as LB_ROUTE.
    pub fn target(&self, read_only: bool) -> (SocketAddrV4, Policy) {
        let policy = if read_only {
            Policy::ReplicatedRouteNoSe
        } else {
            Policy::ReplicatedRoute
        };
        match self.mode {
            Mode::Unreplicated => (self.servers[0], Policy::LbRoute),
            // Vanilla Raft: requests go to the leader (as this client machine knows it).
            Mode::Raft => (self.servers[self.leader_hint], policy),
            // HovercRaft: requests go to the cluster's multicast group.
            Mode::Hovercraft | Mode::HovercraftPlusPlus => (self.group, policy),
        }
    }

    /// Which server owns `addr`, if any.
    pub fn server_index(&self, addr: SocketAddrV4) -> Option<usize> {
        self.servers.iter().position(|&s| s == addr)
    }

    pub fn leader_hint(&self) -> usize {
        self.leader_hint
    }

    /// Learns from one client event. A timeout only marks the batch: the hint moves once
    /// per batch ([`Targets::end_of_events`]), however many requests timed out in it.
    pub fn on_event(&mut self, ev: &ClientEvent) {
        match ev {
            ClientEvent::Response { from, .. } => {
                if let Some(i) = self.server_index(*from) {
                    self.leader_hint = i;
                }
            }
            ClientEvent::Dropped { body, .. } => self.on_drop(body),
            // No answer at all: the believed leader may be gone.
            ClientEvent::TimedOut { .. } => self.timed_out = true,
        }
    }

    /// A non-leader's DROP names the leader; an empty one is flow control.
    fn on_drop(&mut self, body: &[u8]) {
        if let Some(i) = crate::wire::get_addr(body).and_then(|a| self.server_index(a)) {
            self.leader_hint = i;
        } else if !body.is_empty() {
            // "Not the leader, leader unknown": try the next server.
            self.leader_hint = (self.leader_hint + 1) % self.servers.len();
        }
    }

    /// Closes a batch of events (one drain of a client port): after a timeout, try the next
    /// server.
    pub fn end_of_events(&mut self) {
        if std::mem::take(&mut self.timed_out) && self.servers.len() > 1 {
            self.leader_hint = (self.leader_hint + 1) % self.servers.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(i: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i + 1), 8000)
    }

    fn raft3() -> Targets {
        Targets::new(
            Mode::Raft,
            (0..3).map(addr).collect(),
            SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 8000),
        )
    }

    fn timed_out() -> ClientEvent {
        ClientEvent::TimedOut { req_id: 1, tag: 0 }
    }

    #[test]
    fn modes_pick_server_leader_or_group() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 8000);
        let u = Targets::new(Mode::Unreplicated, vec![addr(0)], group);
        assert_eq!(u.target(true), (addr(0), Policy::LbRoute));
        let h = Targets::new(Mode::Hovercraft, (0..3).map(addr).collect(), group);
        assert_eq!(h.target(true), (group, Policy::ReplicatedRouteNoSe));
        assert_eq!(h.target(false), (group, Policy::ReplicatedRoute));
        assert_eq!(raft3().target(false), (addr(0), Policy::ReplicatedRoute));
    }

    #[test]
    fn timeouts_move_the_hint_once_per_batch() {
        let mut t = raft3();
        t.on_event(&timed_out());
        t.on_event(&timed_out());
        assert_eq!(t.leader_hint(), 0, "nothing moves before the batch ends");
        t.end_of_events();
        assert_eq!(t.leader_hint(), 1);
        t.end_of_events();
        assert_eq!(t.leader_hint(), 1, "an empty batch moves nothing");
    }

    #[test]
    fn drops_redirect_or_move_on() {
        let mut t = raft3();
        let mut named = Vec::new();
        crate::wire::put_addr(&mut named, addr(2));
        t.on_event(&ClientEvent::Dropped {
            req_id: 1,
            tag: 0,
            latency_ns: 0,
            body: named,
        });
        assert_eq!(t.leader_hint(), 2, "a DROP naming the leader redirects");
        t.on_event(&ClientEvent::Dropped {
            req_id: 2,
            tag: 0,
            latency_ns: 0,
            body: Vec::new(),
        });
        assert_eq!(t.leader_hint(), 2, "an empty DROP is flow control");
        t.on_event(&ClientEvent::Dropped {
            req_id: 3,
            tag: 0,
            latency_ns: 0,
            body: vec![0],
        });
        assert_eq!(t.leader_hint(), 0, "leader unknown: the next server");
    }
}
