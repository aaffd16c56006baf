//! An in-memory harness that drives `Replica`s alone (like quinn-proto's `tests/util.rs`
//! `Pair`): no `Node`, no application, no R2P2. Messages are `RaftMessage` values in one
//! queue the test drains; storage is a flag per replica (durable at once, or held back).

#![allow(dead_code)] // each test file uses part of it

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use hovercraft_core::raft::{
    ApplyMode, ClusterConfig, Committed, Event, Outgoing, Output, RaftConfig, Refusal, Replica,
    Role, Target,
};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::types::{Mode, NodeId};
use hovercraft_core::wire::raft::RaftMessage;
use hovercraft_core::wire::Policy;

pub fn addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, i as u8 + 1].into(), 8000)
}
pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(10, 1, 0, 1), 9000);

/// `n` replicas at [`addr`]`(0..n)` with the usual multicast group; a switch if given.
pub fn cluster_config(
    n: usize,
    campaign_at_start: bool,
    switch: Option<SocketAddrV4>,
) -> ClusterConfig {
    ClusterConfig {
        peers: (0..n).map(addr).collect(),
        group: SocketAddrV4::new([239, 1, 1, 1].into(), 8000),
        campaign_at_start,
        switch,
    }
}

/// Where a message in flight goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    Node(usize),
    Switch,
}

#[derive(Clone, Debug)]
pub struct InFlight {
    pub from: usize,
    pub to: Dest,
    pub msg: RaftMessage,
}

pub struct Cluster {
    pub replicas: Vec<Replica>,
    pub now: Instant,
    /// Messages sent and not yet delivered.
    pub queue: VecDeque<InFlight>,
    /// Every message sent, in order (for assertions).
    pub sent: Vec<InFlight>,
    /// What each replica applied, in order.
    pub applied: Vec<Vec<Committed<'static>>>,
    pub refused: Vec<(usize, u16, Refusal)>,
    pub events: Vec<(usize, Event)>,
    /// Replicas whose storage completes writes only when the test says so.
    pub slow_storage: Vec<bool>,
    pub down: Vec<bool>,
    /// One-way cuts: messages from `.0` to `.1` are lost.
    pub cut: Vec<(usize, usize)>,
}

impl Cluster {
    /// `n` replicas of `mode` (HovercRaft++ gets a switch), applying on commit.
    pub fn new(n: usize, mode: Mode, cfg: RaftConfig) -> Cluster {
        let replicas = (0..n)
            .map(|i| {
                Replica::new(
                    mode,
                    i as NodeId,
                    cluster_config(
                        n,
                        false,
                        (mode == Mode::HovercraftPlusPlus)
                            .then(|| SocketAddrV4::new([10, 0, 255, 254].into(), 8000)),
                    ),
                    cfg.clone(),
                    100 + i as u64,
                    Instant::ZERO,
                    ApplyMode::OnCommit,
                )
            })
            .collect();
        Cluster {
            replicas,
            now: Instant::ZERO,
            queue: VecDeque::new(),
            sent: Vec::new(),
            applied: vec![Vec::new(); n],
            refused: Vec::new(),
            events: Vec::new(),
            slow_storage: vec![false; n],
            down: vec![false; n],
            cut: Vec::new(),
        }
    }

    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    /// Persists what replica `i` asks for (unless its storage is slow) and collects its
    /// outputs.
    pub fn settle(&mut self, i: usize) {
        if !self.slow_storage[i] {
            self.complete_writes(i);
        }
        self.collect(i);
    }

    /// Makes every write replica `i` asked for durable.
    pub fn complete_writes(&mut self, i: usize) {
        let now = self.now;
        let r = &mut self.replicas[i];
        let mut last = None;
        while let Some(p) = r.poll_persist() {
            assert_eq!(
                p.entries.len() as u64,
                p.log_from.map_or(0, |f| p.last_index + 1 - f),
                "a persist request carries exactly the entries it names"
            );
            last = Some(p.seq);
        }
        if let Some(seq) = last {
            r.handle_persisted(now, seq);
        }
        self.collect(i);
    }

    fn collect(&mut self, i: usize) {
        while let Some(out) = self.replicas[i].poll_output() {
            match out {
                Output::Send(Outgoing { to, msg, .. }) => {
                    let dests: Vec<Dest> = match to {
                        Target::Peer(p) => vec![Dest::Node(p as usize)],
                        Target::Group => {
                            (0..self.n()).filter(|&j| j != i).map(Dest::Node).collect()
                        }
                        Target::Switch => vec![Dest::Switch],
                    };
                    for to in dests {
                        let m = InFlight {
                            from: i,
                            to,
                            msg: msg.clone(),
                        };
                        self.sent.push(m.clone());
                        self.queue.push_back(m);
                    }
                }
                Output::Apply(c) => self.applied[i].push(c),
                Output::Refuse { req_id, why, .. } => self.refused.push((i, req_id, why)),
                Output::Event(e) => self.events.push((i, e)),
                // No application here: the snapshot's state is the replica's own.
                Output::Restore(snap) => {
                    let now = self.now;
                    self.replicas[i].snapshot_restored(now, snap);
                }
            }
        }
        if self.replicas[i].snapshot_due() {
            self.replicas[i].take_snapshot(&[]);
        }
    }

    /// Delivers queued messages (to nodes that are up; messages to the switch are left to
    /// the test) until the network is quiet; returns how many were delivered.
    pub fn deliver_all(&mut self) -> usize {
        let mut delivered = 0;
        let mut switch = VecDeque::new();
        for _ in 0..100_000 {
            let Some(m) = self.queue.pop_front() else {
                break;
            };
            match m.to {
                Dest::Switch => switch.push_back(m),
                Dest::Node(j)
                    if self.down[j] || self.down[m.from] || self.cut.contains(&(m.from, j)) => {}
                Dest::Node(j) => {
                    self.replicas[j].step(self.now, m.msg, false);
                    self.settle(j);
                    delivered += 1;
                }
            }
        }
        assert!(self.queue.is_empty(), "the network never went quiet");
        self.queue = switch;
        delivered
    }

    /// Advances time by `dt`, firing due timers, and delivers what they send.
    pub fn tick(&mut self, dt: Duration) {
        self.now += dt;
        for i in 0..self.n() {
            if self.down[i] {
                continue;
            }
            if self.replicas[i]
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                self.replicas[i].handle_timeout(self.now);
                self.settle(i);
            }
        }
        self.deliver_all();
    }

    /// Ticks 1 ms at a time until one replica leads (at most `max_ms`).
    pub fn elect(&mut self, max_ms: u64) -> usize {
        for _ in 0..max_ms {
            self.tick(Duration::from_ms(1));
            if let Some(l) = self.leader() {
                return l;
            }
        }
        panic!("no leader within {max_ms} ms");
    }

    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.n())
            .filter(|&i| !self.down[i] && self.replicas[i].role() == Role::Leader)
            .collect();
        leaders
            .iter()
            .copied()
            .max_by_key(|&i| self.replicas[i].term())
    }

    /// A client request: to replica `to` only (`raft` mode), or to every replica that is up
    /// (a multicast, HovercRaft).
    pub fn request(&mut self, to: Option<usize>, req_id: u16, policy: Policy, body: &[u8]) {
        let targets: Vec<usize> = match to {
            Some(i) => vec![i],
            None => (0..self.n()).filter(|&i| !self.down[i]).collect(),
        };
        for i in targets {
            self.replicas[i].propose(self.now, CLIENT, req_id, policy, body);
            self.settle(i);
        }
    }
}

/// One replica on its own: makes every write durable at once and returns the messages it
/// sent, in order.
pub fn drain_one(r: &mut Replica, now: Instant) -> Vec<(Target, RaftMessage)> {
    let mut out = Vec::new();
    loop {
        let mut last = None;
        while let Some(p) = r.poll_persist() {
            last = Some(p.seq);
        }
        if let Some(seq) = last {
            r.handle_persisted(now, seq);
        }
        let mut any = false;
        while let Some(o) = r.poll_output() {
            any = true;
            match o {
                Output::Send(m) => out.push((m.to, m.msg)),
                Output::Restore(snap) => r.snapshot_restored(now, snap),
                _ => {}
            }
        }
        if r.snapshot_due() {
            r.take_snapshot(&[]);
            any = true;
        }
        if !any {
            return out;
        }
    }
}
