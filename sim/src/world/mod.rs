//! The simulated world, like TigerBeetle's cluster: hosts (server nodes and client
//! machines) on the [`crate::network`], and the event loop that drives the sans-IO core.
//! This file holds the world's state, its construction and the event dispatch; each kind of
//! host has its own driver:
//!
//! - [`server`]: feeds datagrams, timeouts and persistence completions into the core's
//!   `Node`, and drains what it produces (datagrams, storage writes, timers, events);
//! - [`app_core`]: the separate application core, when the scenario has one;
//! - [`client`]: client machines, their load generators and what they observe;
//! - [`faults`]: the scenario's timed faults;
//! - [`summary`]: the run's `summary.json`.

use std::net::{Ipv4Addr, SocketAddrV4};

use hovercraft_core::node::{Node, NodeEvent};

use crate::check::Checkers;
use crate::engine::EventQueue;
use crate::metrics::{Metrics, StoryLine, Summary, Timeline};
use crate::network::{NetEvent, Network};
use crate::scenario::Scenario;

mod app_core;
mod client;
mod faults;
mod server;
mod summary;

pub use crate::network::addr::{
    client_ip, cluster_group, server_addr, switch_addr, CLIENT_BASE_PORT, SERVER_PORT,
};
use crate::trace::Tracer;
use client::ClientHost;
pub use client::CLIENT_TICK_NS;
use server::ServerHost;

/// Events of the simulation. Small on purpose: packets live in a slab and are named by index.
#[derive(Clone, Copy, Debug)]
enum Ev {
    Net(NetEvent),
    CpuFree {
        host: u32,
    },
    NodeTimer {
        host: u32,
        gen: u32,
    },
    /// The host's oldest storage write finished (writes complete in order). `epoch` tells
    /// writes of a crashed incarnation (lost) from current ones.
    StorageDone {
        host: u32,
        epoch: u32,
    },
    AppRun {
        host: u32,
    },
    /// The scenario's fault number `index` happens.
    Fault {
        index: u32,
    },
    /// Restarts of leaders crashed by a `CrashLeader` fault are due.
    RestartsDue,
    ClientArrival {
        host: u32,
    },
    ClientTick {
        host: u32,
    },
}

impl From<NetEvent> for Ev {
    fn from(e: NetEvent) -> Ev {
        Ev::Net(e)
    }
}

const _: () = assert!(std::mem::size_of::<Ev>() <= 16);

enum Role {
    Server(Box<ServerHost>),
    Client(Box<ClientHost>),
}

struct Host {
    ip: Ipv4Addr,
    /// Crashed: receives nothing, runs nothing.
    down: bool,
    role: Role,
}

/// Something a test can look at after (or during) a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub t_ns: u64,
    pub host: usize,
    pub what: Observed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Node(NodeEvent),
    /// Storage made the node's log durable up to `last_index` (and its term and vote).
    Persisted {
        last_index: u64,
    },
}

/// One simulation run.
pub struct World {
    scenario: Scenario,
    q: EventQueue<Ev>,
    net: Network,
    hosts: Vec<Host>,
    n_servers: usize,
    metrics: Metrics,
    send_end_ns: u64,
    hard_end_ns: u64,
    tracer: Tracer,
    /// The online checkers, in checked runs.
    checks: Option<Box<Checkers>>,
    /// Tests: record node events and persistence completions in `observations`.
    observe: bool,
    observations: Vec<Observation>,
    /// Restarts scheduled by CrashLeader faults: (when, host).
    pending_restarts: Vec<(u64, usize)>,
    story: Vec<StoryLine>,
    leader_lost_at: Option<u64>,
    /// Servers a fault still cuts off at the end of the run (a fault that never heals: its
    /// `heal_ms` is at or past `duration_ms`): outside the healed core liveness looks at.
    impaired_for_good: Vec<usize>,
    failovers_ns: Vec<u64>,
    scratch_tx: Vec<(u64, SocketAddrV4, Vec<u8>)>,
    scratch_body: Vec<u8>,
}

impl World {
    /// Builds the world for a validated scenario.
    pub fn new(scenario: Scenario) -> World {
        let n_servers = scenario.nodes as usize;
        let n_clients = scenario.clients.machines as usize;
        let mut hosts = Vec::with_capacity(n_servers + n_clients);
        for i in 0..n_servers {
            hosts.push(Host {
                ip: *server_addr(i).ip(),
                down: false,
                role: Role::Server(Box::new(ServerHost::new(&scenario, i))),
            });
        }
        for m in 0..n_clients {
            hosts.push(Host {
                ip: client_ip(m),
                down: false,
                role: Role::Client(Box::new(ClientHost::new(&scenario, m))),
            });
        }
        let ips: Vec<Ipv4Addr> = hosts.iter().map(|h| h.ip).collect();
        let net = Network::new(&scenario, &ips);
        let cc = &scenario.clients;
        let send_end_ns = scenario.duration_ms * 1_000_000;
        let mut metrics = Metrics::new(
            scenario.warmup_ms * 1_000_000,
            send_end_ns,
            cc.timeout_ms * 2_000_000 + 1_000_000,
        );
        if let Some(bucket_ms) = scenario.timeline_bucket_ms {
            metrics.timeline = Some(Timeline::new(
                bucket_ms * 1_000_000,
                send_end_ns + cc.timeout_ms * 1_000_000,
                cc.timeout_ms * 2_000_000 + 1_000_000,
            ));
        }
        let hard_end_ns = send_end_ns + cc.timeout_ms * 1_000_000 + 2 * CLIENT_TICK_NS;
        let mut w = World {
            q: EventQueue::new(),
            net,
            hosts,
            n_servers,
            metrics,
            send_end_ns,
            hard_end_ns,
            tracer: Tracer::default(),
            checks: None,
            observe: false,
            observations: Vec::new(),
            pending_restarts: Vec::new(),
            story: Vec::new(),
            leader_lost_at: None,
            impaired_for_good: Vec::new(),
            failovers_ns: Vec::new(),
            scratch_tx: Vec::new(),
            scratch_body: Vec::new(),
            scenario,
        };
        w.schedule_faults();
        let multicast_loss = w.scenario.network.multicast_loss;
        for h in 0..n_servers {
            w.set_rx_loss(h, multicast_loss, true);
        }
        // Every node's timer runs from time 0: otherwise, at a low request rate, nobody
        // campaigns before the first packet wakes the nodes, and then all of them campaign
        // in the same nanosecond.
        for h in 0..n_servers {
            w.after_handler(0, 0, h);
        }
        for m in 0..n_clients {
            w.start_client(n_servers + m);
        }
        w
    }

    /// Writes one line per event to `out`.
    pub fn set_trace(&mut self, out: Box<dyn std::io::Write>) {
        self.tracer.set(out);
    }

    /// Adds (or replaces) a multicast group delivered by the switch to `members` (host ids).
    pub fn set_multicast_group(&mut self, group: Ipv4Addr, members: Vec<usize>) {
        self.net.set_multicast_group(group, members);
    }

    /// Sends a datagram from `host` at the current time, as if its core had produced it.
    /// For tests of the network model and for fault injection.
    pub fn inject(&mut self, host: usize, src_port: u16, dst: SocketAddrV4, payload: Vec<u8>) {
        let now = self.q.now_ns();
        let src = SocketAddrV4::new(self.hosts[host].ip, src_port);
        self.send(now, host, src, dst, payload);
    }

    /// Runs to the end and returns the summary (manifest left for the caller to fill).
    pub fn run(mut self) -> Result<Summary, std::io::Error> {
        self.run_to_end();
        self.finish()
    }

    /// Runs every event up to the end of the run (sends stop at `duration_ms`; the drain
    /// lasts the client timeout).
    pub fn run_to_end(&mut self) {
        while let Some((t, ev)) = self.q.pop() {
            if t > self.hard_end_ns {
                break;
            }
            self.dispatch(t, ev);
        }
    }

    /// Flushes the trace and returns the summary.
    pub fn finish(&mut self) -> Result<Summary, std::io::Error> {
        self.tracer.finish()?;
        Ok(self.summary())
    }

    /// Runs until virtual time `until_ns` (events at later times stay queued).
    pub fn run_until(&mut self, until_ns: u64) {
        while self.q.peek_time_ns().is_some_and(|t| t <= until_ns) {
            let (t, ev) = self.q.pop().expect("peeked");
            self.dispatch(t, ev);
        }
    }

    /// Records node events and persistence completions for [`World::observations`] (for
    /// tests: unbounded; checked runs use [`World::set_checkers`] instead).
    pub fn set_observe(&mut self, on: bool) {
        self.observe = on;
    }

    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Frames arriving at host `h` are lost with probability `p` (only multicast ones if
    /// `multicast_only`), drawn from the run's seeded network stream.
    pub fn set_rx_loss(&mut self, h: usize, p: f64, multicast_only: bool) {
        self.net.set_rx_loss(h, p, multicast_only);
    }

    /// Live server hosts that believe they lead, with their terms.
    pub fn leaders(&self) -> Vec<(usize, u64)> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.down)
            .filter_map(|(i, h)| match &h.role {
                Role::Server(s) => s
                    .node
                    .replica()
                    .filter(|r| r.role() == hovercraft_core::raft::Role::Leader)
                    .map(|r| (i, r.term())),
                Role::Client(_) => None,
            })
            .collect()
    }

    /// The node running on server host `h`.
    pub fn node(&self, h: usize) -> Option<&Node> {
        match &self.hosts.get(h)?.role {
            Role::Server(s) => Some(&s.node),
            Role::Client(_) => None,
        }
    }

    /// Runs `checkers` online from now on (see [`crate::check`]).
    pub fn set_checkers(&mut self, checkers: Checkers) {
        self.checks = Some(Box::new(checkers));
    }

    /// The online checkers, if the run is checked.
    pub fn checkers(&self) -> Option<&Checkers> {
        self.checks.as_deref()
    }

    /// Server hosts that are up.
    pub fn live_servers(&self) -> Vec<usize> {
        (0..self.n_servers)
            .filter(|&h| !self.hosts[h].down)
            .collect()
    }

    /// The healed core: servers that are up and that no lasting fault cuts off (a fault
    /// whose `heal_ms` is at or past the end of the run, as VOPR leaves some replicas
    /// faulty in its liveness phase).
    pub fn core_servers(&self) -> Vec<usize> {
        (0..self.n_servers)
            .filter(|&h| !self.hosts[h].down && !self.impaired_for_good.contains(&h))
            .collect()
    }

    /// The scenario this world runs.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Number of server hosts.
    pub fn servers(&self) -> usize {
        self.n_servers
    }

    /// Current virtual time.
    pub fn now_ns(&self) -> u64 {
        self.q.now_ns()
    }

    /// Packets received by host `h` so far.
    pub fn host_packets_rx(&self, h: usize) -> u64 {
        self.net.nics[h].packets_rx
    }

    /// Packets received by every host (servers and clients) so far: what the network
    /// delivered.
    pub fn packets_delivered(&self) -> u64 {
        self.net.nics.iter().map(|n| n.packets_rx).sum()
    }

    /// Total frames dropped at switch output queues so far.
    pub fn switch_queue_drops(&self) -> u64 {
        self.net.switch_queue_drops()
    }

    /// Times a fault rule judged a frame twice on one link traversal (always 0 unless the
    /// fault model is broken, e.g. by canary `fault-double-draw`).
    pub fn rejudged_frames(&self) -> u64 {
        self.net.rejudged_frames()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.q.popped()
    }

    /// Mean number of pending events at each pop so far.
    pub fn mean_pending_events(&self) -> f64 {
        self.q.mean_pending()
    }

    fn dispatch(&mut self, t: u64, ev: Ev) {
        match ev {
            Ev::Net(NetEvent::SwitchArrive {
                switch,
                in_port,
                pkt,
            }) => self.net.on_switch_arrive(
                t,
                switch as usize,
                in_port as usize,
                pkt,
                &mut self.q,
                &mut self.tracer,
            ),
            Ev::Net(NetEvent::HostArrive { host, pkt }) => {
                self.on_host_arrive(t, host as usize, pkt)
            }
            Ev::CpuFree { host } => self.on_cpu_free(t, host as usize),
            Ev::NodeTimer { host, gen } => self.on_node_timer(t, host as usize, gen),
            Ev::StorageDone { host, epoch } => self.on_storage_done(t, host as usize, epoch),
            Ev::AppRun { host } => self.on_app_run(t, host as usize),
            Ev::Fault { index } => self.on_fault(t, index as usize),
            Ev::RestartsDue => self.on_restarts_due(t),
            Ev::ClientArrival { host } => self.on_client_arrival(t, host as usize),
            Ev::ClientTick { host } => self.on_client_tick(t, host as usize),
        }
    }

    /// Host `host` sends a datagram at `t` into the network.
    fn send(&mut self, t: u64, host: usize, src: SocketAddrV4, dst: SocketAddrV4, data: Vec<u8>) {
        self.net
            .send(t, host, src, dst, data, &mut self.q, &mut self.tracer);
    }

    /// A frame reaches host `host`: the NIC takes it, then its server core or client.
    fn on_host_arrive(&mut self, t: u64, host: usize, pkt: u32) {
        if self.hosts[host].down {
            self.net.packets.remove(pkt);
            return;
        }
        let Some(class) = self
            .net
            .receive(t, host, pkt, &mut self.q, &mut self.tracer)
        else {
            return;
        };
        match self.hosts[host].role {
            Role::Server(_) => self.server_rx(t, host, pkt, class),
            Role::Client(_) => {
                let p = self.net.packets.remove(pkt);
                self.client_receive(t, host, p);
            }
        }
    }
}
