//! The simulated world: hosts (server nodes and client machines), the network between them,
//! and the event loop that drives the sans-IO core.
//!
//! Address plan: server `i` is 10.0.0.(i+1):8000; client machine `m` is 10.1.0.(m+1) with
//! ports 9000.. ; the cluster's multicast group is 239.1.1.1:8000. These are simulated
//! addresses only: nothing here touches a real network.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use hovercraft_core::app::kv::KvReply;
use hovercraft_core::node::{Mode, Node, NodeConfig, NodeEvent};
use hovercraft_core::r2p2::client::{Client, ClientConfig, ClientEvent};
use hovercraft_core::raft::ClusterConfig;
use hovercraft_core::rng::{derive_seed, stream_rng, Stream};
use hovercraft_core::switch::{Aggregator, AggregatorConfig};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::framing::ReassemblyConfig;
use hovercraft_core::wire::{Header, Policy};

use crate::cpu::{Admit, Cpu, RxClass};
use crate::engine::EventQueue;
use crate::metrics::{
    round3, ClientMachineSummary, HostSummary, LatencyUs, Manifest, Metrics, NetworkSummary,
    NodeSummary, ReplicaSummary, StoryLine, Summary, Timeline,
};
use crate::network::link::{Bandwidth, Enqueued, TxQueue};
use crate::network::topology::{Peer, Topology};
use crate::network::wire_bytes;
use crate::scenario::{AppCore, Fault, Scenario};
use crate::storage::Storage;

mod faults;
use crate::workload::Generator;
use faults::{Clock, LinkRule};

pub const SERVER_PORT: u16 = 8000;
pub const CLIENT_BASE_PORT: u16 = 9000;
/// How often client machines check for timed-out requests. Coarse on purpose: a load
/// generator notices a timeout a little late, and the run saves one event per request.
pub const CLIENT_TICK_NS: u64 = 1_000_000;

pub fn server_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (i >> 8) as u8, (i & 0xFF) as u8 + 1),
        SERVER_PORT,
    )
}

pub fn client_ip(m: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (m >> 8) as u8, (m & 0xFF) as u8 + 1)
}

/// The HovercRaft++ aggregator's address (it lives in the ToR switch).
pub fn switch_addr() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 255, 254), SERVER_PORT)
}

pub fn cluster_group() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), SERVER_PORT)
}

/// Events of the simulation. Small on purpose: packets live in a slab and are named by index.
#[derive(Clone, Copy, Debug)]
enum Ev {
    SwitchArrive {
        switch: u32,
        in_port: u32,
        pkt: u32,
    },
    HostArrive {
        host: u32,
        pkt: u32,
    },
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
    Fault {
        index: u32,
    },
    ClientArrival {
        host: u32,
    },
    ClientTick {
        host: u32,
    },
}

struct Packet {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: Bytes,
    wire_bytes: u32,
}

/// Packets in flight, addressed by index so events stay small.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Packet>>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, p: Packet) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(p);
                i
            }
            None => {
                self.slots.push(Some(p));
                (self.slots.len() - 1) as u32
            }
        }
    }
    fn get(&self, i: u32) -> &Packet {
        self.slots[i as usize].as_ref().expect("live packet")
    }
    fn remove(&mut self, i: u32) -> Packet {
        let p = self.slots[i as usize].take().expect("live packet");
        self.free.push(i);
        p
    }
}

struct ServerHost {
    node: Node,
    /// The node's storage device (durable term, vote and log).
    storage: Storage,
    /// How to rebuild the node after a crash.
    config: NodeConfig,
    /// Incremented at each crash: storage completions of an older epoch are void.
    storage_epoch: u32,
    /// The node's clock (skew).
    clock: Clock,
    /// The application core (when separate): busy until, and whether an AppRun is pending.
    app_busy_until_ns: u64,
    app_run_scheduled: bool,
    app_cpu: crate::cpu::CpuStats,
    cpu: Cpu,
    timer_deadline: Option<u64>,
    timer_gen: u32,
}

struct ClientHost {
    ports: Vec<Client>,
    /// `raft` mode: the server this machine believes leads (learned from replies and
    /// redirects; moved on after a timeout).
    leader_hint: usize,
    next_port: usize,
    generator: Generator,
}

enum Role {
    Server(Box<ServerHost>),
    Client(Box<ClientHost>),
}

struct Host {
    ip: Ipv4Addr,
    /// Crashed: receives nothing, runs nothing.
    down: bool,
    /// Probability that a frame arriving here is lost, and whether only multicast frames are.
    rx_loss: Option<(f64, bool)>,
    nic: TxQueue,
    packets_rx: u64,
    bytes_rx: u64,
    packets_tx: u64,
    bytes_tx: u64,
    packets_tx_in_window: u64,
    bytes_tx_in_window: u64,
    role: Role,
}

struct SwitchState {
    ports: Vec<TxQueue>,
}

/// One kv operation as its client saw it (recorded when observing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOp {
    pub client: u64,
    pub key: Vec<u8>,
    /// The value a PUT wrote; None for a GET.
    pub write: Option<Vec<u8>>,
    pub call_ns: u64,
    /// When the reply arrived; None if it never did (outcome unknown).
    pub return_ns: Option<u64>,
    /// What a GET returned (Some(None) = not found).
    pub observed: Option<Option<Vec<u8>>>,
    /// Answered with DROP. Not proof that it never took effect: a deposed leader may refuse
    /// a request the current leader orders.
    pub refused: bool,
}

/// Something a test or checker can look at after (or during) a run.
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
    /// kv app, when observing: every client operation, for the linearizability checker.
    kv_history: Vec<KvOp>,
    kv_pending: FxHashMap<(usize, usize, u16), usize>,
    /// Persist-before-send violations seen (only when observing).
    contract_violations: Vec<String>,
    /// Restarts scheduled by CrashLeader faults: (when, host).
    pending_restarts: Vec<(u64, usize)>,
    story: Vec<StoryLine>,
    leader_lost_at: Option<u64>,
    failovers_ns: Vec<u64>,
    /// Requests sent from here on must be answered (liveness phase); those that time out
    /// are counted in `liveness_timeouts`.
    liveness_from_ns: u64,
    liveness_timeouts: u64,
    rules: Vec<LinkRule>,
    /// Frames re-delivered by a delay or duplication rule (not subject to it again).
    late: Vec<u32>,
    /// HovercRaft++: the aggregator in the ToR switch, `None` while it is down.
    aggregator: Option<Aggregator>,
    aggregator_cfg: Option<AggregatorConfig>,
    aggregator_drops: u64,
    net_rng: rand_chacha::ChaCha8Rng,
    observe: bool,
    observations: Vec<Observation>,
    lost_frames: u64,
    scenario: Scenario,
    q: EventQueue<Ev>,
    topo: Topology,
    hosts: Vec<Host>,
    switches: Vec<SwitchState>,
    packets: Slab,
    ip_to_host: FxHashMap<Ipv4Addr, usize>,
    groups: FxHashMap<Ipv4Addr, Vec<usize>>,
    metrics: Metrics,
    send_end_ns: u64,
    hard_end_ns: u64,
    trace: Option<Box<dyn Write>>,
    trace_error: Option<std::io::Error>,
    scratch_tx: Vec<(u64, SocketAddrV4, Vec<u8>)>,
    scratch_body: Vec<u8>,
    n_servers: usize,
}

impl World {
    /// Builds the world for a validated scenario.
    pub fn new(scenario: Scenario) -> World {
        let n_servers = scenario.nodes as usize;
        let n_clients = scenario.clients.machines as usize;
        let topo = Topology::build(&scenario.network, n_servers + n_clients);
        let net = &scenario.network;
        let bw = Bandwidth::from_gbps(net.bandwidth_gbps);
        let mut hosts = Vec::with_capacity(n_servers + n_clients);
        let window_ns = (
            scenario.warmup_ms * 1_000_000,
            scenario.duration_ms * 1_000_000,
        );
        let peers: Vec<SocketAddrV4> = (0..n_servers).map(server_addr).collect();
        // A durable log image costs a copy of every entry; keep one only if nodes restart.
        let keep_image = scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::RestartNode { .. } | Fault::CrashLeader { .. }));
        for i in 0..n_servers {
            let cfg = NodeConfig {
                id: i as u8,
                mode: scenario.mode,
                app: scenario.workload.app,
                kv_costs: scenario.workload.node_kv_costs(),
                reassembly: ReassemblyConfig::default(),
                seed: derive_seed(scenario.seed, Stream::Node, i as u64),
                cluster: Some(ClusterConfig {
                    peers: peers.clone(),
                    group: cluster_group(),
                    campaign_at_start: scenario.bootstrap_leader && i == 0,
                    switch: Some(switch_addr()),
                }),
                raft: scenario.raft.clone(),
                defer_execution: scenario.cpu.app_core == AppCore::Separate,
                exec_queue_capacity: scenario.cpu.app_queue_requests as usize,
            };
            let node =
                Node::new(cfg.clone()).expect("scenario validation admits only implemented modes");
            hosts.push(Host::new(
                *server_addr(i).ip(),
                TxQueue::new(bw, net.nic_tx_queue_bytes).with_window(window_ns),
                Role::Server(Box::new(ServerHost {
                    node,
                    storage: Storage::new(scenario.storage.write_latency_ns, keep_image),
                    config: cfg.clone(),
                    storage_epoch: 0,
                    clock: Clock::default(),
                    app_busy_until_ns: 0,
                    app_run_scheduled: false,
                    app_cpu: crate::cpu::CpuStats::default(),
                    cpu: Cpu::new(
                        scenario.cpu.clone(),
                        (
                            scenario.warmup_ms * 1_000_000,
                            scenario.duration_ms * 1_000_000,
                        ),
                    ),
                    timer_deadline: None,
                    timer_gen: 0,
                })),
            ));
        }
        let cc = &scenario.clients;
        for m in 0..n_clients {
            let ip = client_ip(m);
            let ports = (0..cc.ports_per_machine)
                .map(|p| {
                    Client::new(
                        SocketAddrV4::new(ip, CLIENT_BASE_PORT + p as u16),
                        ClientConfig {
                            timeout: Duration::from_ms(cc.timeout_ms),
                            max_outstanding: cc.max_outstanding_per_port as usize,
                            reassembly: ReassemblyConfig::default(),
                        },
                    )
                })
                .collect();
            let generator = Generator::new(
                &scenario.workload,
                cc.machines,
                m as u32,
                stream_rng(scenario.seed, Stream::Client, m as u64),
                stream_rng(scenario.seed, Stream::Workload, m as u64),
            );
            hosts.push(Host::new(
                ip,
                TxQueue::new(bw, net.nic_tx_queue_bytes).with_window(window_ns),
                Role::Client(Box::new(ClientHost {
                    ports,
                    leader_hint: 0,
                    next_port: 0,
                    generator,
                })),
            ));
        }
        let switches = topo
            .switches
            .iter()
            .map(|s| SwitchState {
                ports: s
                    .ports
                    .iter()
                    .map(|(_, l)| {
                        TxQueue::new(
                            Bandwidth::from_gbps(l.bandwidth_gbps),
                            net.switch_queue_bytes,
                        )
                    })
                    .collect(),
            })
            .collect();
        let ip_to_host = hosts.iter().enumerate().map(|(i, h)| (h.ip, i)).collect();
        let mut groups = FxHashMap::default();
        groups.insert(*cluster_group().ip(), (0..n_servers).collect());
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
        let aggregator_cfg =
            (scenario.mode == Mode::HovercraftPlusPlus).then(|| AggregatorConfig {
                peers: peers.clone(),
                slots: scenario.network.aggregator_slots,
            });
        let mut w = World {
            kv_history: Vec::new(),
            kv_pending: FxHashMap::default(),
            contract_violations: Vec::new(),
            pending_restarts: Vec::new(),
            story: Vec::new(),
            leader_lost_at: None,
            failovers_ns: Vec::new(),
            liveness_from_ns: u64::MAX,
            liveness_timeouts: 0,
            rules: Vec::new(),
            late: Vec::new(),
            aggregator: aggregator_cfg
                .clone()
                .map(|c| Aggregator::new(c).expect("validated cluster size")),
            aggregator_cfg,
            aggregator_drops: 0,
            net_rng: stream_rng(scenario.seed, Stream::Network, 0),
            observe: false,
            observations: Vec::new(),
            lost_frames: 0,
            q: EventQueue::new(),
            topo,
            hosts,
            switches,
            packets: Slab::default(),
            ip_to_host,
            groups,
            metrics,
            send_end_ns,
            hard_end_ns,
            trace: None,
            trace_error: None,
            scratch_tx: Vec::new(),
            scratch_body: Vec::new(),
            n_servers,
            scenario,
        };
        for (i, f) in w.scenario.faults.clone().iter().enumerate() {
            w.q.schedule(f.at_ms() * 1_000_000, Ev::Fault { index: i as u32 });
        }
        let multicast_loss = w.scenario.network.multicast_loss;
        for h in 0..n_servers {
            w.set_rx_loss(h, multicast_loss, true);
        }
        for m in 0..n_clients {
            let host = (n_servers + m) as u32;
            let gap = w.client_mut(host as usize).generator.next_gap_ns();
            w.q.schedule(gap, Ev::ClientArrival { host });
            w.q.schedule(CLIENT_TICK_NS, Ev::ClientTick { host });
        }
        w
    }

    /// Writes one line per event to `out`.
    pub fn set_trace(&mut self, out: Box<dyn Write>) {
        self.trace = Some(out);
    }

    /// Adds (or replaces) a multicast group delivered by the switch to `members` (host ids).
    pub fn set_multicast_group(&mut self, group: Ipv4Addr, members: Vec<usize>) {
        self.groups.insert(group, members);
    }

    /// Sends a datagram from `host` at the current time, as if its core had produced it.
    /// For tests of the network model and for fault injection.
    pub fn inject(&mut self, host: usize, src_port: u16, dst: SocketAddrV4, payload: Vec<u8>) {
        let now = self.q.now_ns();
        let src = SocketAddrV4::new(self.hosts[host].ip, src_port);
        self.host_send(now, host, src, dst, payload);
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
        if let Some(out) = self.trace.as_mut() {
            if let Err(e) = out.flush() {
                self.trace_error.get_or_insert(e);
            }
        }
        if let Some(e) = self.trace_error.take() {
            return Err(e);
        }
        Ok(self.summary())
    }

    /// Runs until virtual time `until_ns` (events at later times stay queued).
    pub fn run_until(&mut self, until_ns: u64) {
        while self.q.peek_time_ns().is_some_and(|t| t <= until_ns) {
            let (t, ev) = self.q.pop().expect("peeked");
            self.dispatch(t, ev);
        }
    }

    /// Records node events and persistence completions for [`World::observations`].
    pub fn set_observe(&mut self, on: bool) {
        self.observe = on;
    }

    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Crashes host `h`: from now on it receives and runs nothing. (Restart, with recovery
    /// from persisted state, belongs to the fault-injection work.)
    pub fn crash(&mut self, h: usize) {
        self.hosts[h].down = true;
        if let Role::Server(s) = &mut self.hosts[h].role {
            let queued = s.cpu.drain();
            for p in queued {
                self.packets.remove(p);
            }
            s.storage.crash();
            s.storage_epoch = s.storage_epoch.wrapping_add(1);
        }
    }

    /// Restarts crashed server host `h` from its durable state (term, vote, log): the node
    /// rejoins as a follower and rebuilds its application state by re-executing the log.
    pub fn restart(&mut self, t: u64, h: usize) {
        if !self.hosts[h].down {
            return;
        }
        let Role::Server(s) = &mut self.hosts[h].role else {
            return;
        };
        let durable = s.storage.image().clone();
        let node = match Node::restored(
            s.config.clone(),
            Instant::from_ns(s.clock.to_node(t)),
            durable,
        ) {
            Ok(n) => n,
            Err(_) => return,
        };
        s.node = node;
        let stats = s.cpu.stats;
        s.cpu = Cpu::new(
            self.scenario.cpu.clone(),
            (self.metrics.window_start_ns, self.metrics.window_end_ns),
        );
        s.cpu.stats = stats;
        s.cpu.busy_until_ns = t;
        s.app_busy_until_ns = t;
        s.app_run_scheduled = false;
        s.timer_gen = s.timer_gen.wrapping_add(1);
        s.timer_deadline = None;
        self.hosts[h].down = false;
        trace!(self, t, "restart h{h}");
        // Arm its election timer.
        self.after_handler(t, t, h);
    }

    /// Frames arriving at host `h` are lost with probability `p` (only multicast ones if
    /// `multicast_only`), drawn from the run's seeded network stream.
    pub fn set_rx_loss(&mut self, h: usize, p: f64, multicast_only: bool) {
        self.hosts[h].rx_loss = (p > 0.0).then_some((p, multicast_only));
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

    /// Requests sent from `t_ns` on must all be answered (the liveness phase).
    pub fn set_liveness_from(&mut self, t_ns: u64) {
        self.liveness_from_ns = t_ns;
    }

    /// The kv history clients observed (when observing a kv workload).
    pub fn kv_history(&self) -> &[KvOp] {
        &self.kv_history
    }

    /// Persist-before-send violations seen while observing.
    pub fn contract_violations(&self) -> &[String] {
        &self.contract_violations
    }

    /// Requests of the liveness phase that were never answered.
    pub fn liveness_timeouts(&self) -> u64 {
        self.liveness_timeouts
    }

    /// Server hosts that are up.
    pub fn live_servers(&self) -> Vec<usize> {
        (0..self.n_servers)
            .filter(|&h| !self.hosts[h].down)
            .collect()
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
        self.hosts[h].packets_rx
    }

    /// Total frames dropped at switch output queues so far.
    pub fn switch_queue_drops(&self) -> u64 {
        self.switches
            .iter()
            .flat_map(|s| &s.ports)
            .map(|p| p.stats.drops)
            .sum()
    }

    fn dispatch(&mut self, t: u64, ev: Ev) {
        match ev {
            Ev::SwitchArrive {
                switch,
                in_port,
                pkt,
            } => self.on_switch_arrive(t, switch as usize, in_port as usize, pkt),
            Ev::HostArrive { host, pkt } => self.on_host_arrive(t, host as usize, pkt),
            Ev::CpuFree { host } => self.on_cpu_free(t, host as usize),
            Ev::NodeTimer { host, gen } => self.on_node_timer(t, host as usize, gen),
            Ev::StorageDone { host, epoch } => {
                let done = match &mut self.hosts[host as usize].role {
                    Role::Server(s) if s.storage_epoch == epoch => s.storage.complete_oldest(),
                    _ => None,
                };
                if let Some((seq, last_index)) = done {
                    self.note_persisted(t, host as usize, last_index);
                    self.on_storage_done(t, host as usize, seq);
                }
            }
            Ev::AppRun { host } => self.on_app_run(t, host as usize),
            Ev::Fault { index } => self.on_fault(t, index as usize),
            Ev::ClientArrival { host } => self.on_client_arrival(t, host as usize),
            Ev::ClientTick { host } => self.on_client_tick(t, host as usize),
        }
    }

    // ---- network -------------------------------------------------------------------------

    fn host_send(
        &mut self,
        t: u64,
        host: usize,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: Vec<u8>,
    ) {
        let wb = wire_bytes(payload.len());
        let h = &mut self.hosts[host];
        match h.nic.enqueue(t, wb) {
            Enqueued::Dropped => {
                trace!(self, t, "drop nic h{host} {src}->{dst} bytes={wb}");
            }
            Enqueued::Departs { end_ns } => {
                h.packets_tx += 1;
                h.bytes_tx += wb as u64;
                if t >= self.metrics.window_start_ns && t < self.metrics.window_end_ns {
                    h.packets_tx_in_window += 1;
                    h.bytes_tx_in_window += wb as u64;
                }
                let (switch, in_port, link) = self.topo.uplink[host];
                let pkt = self.packets.insert(Packet {
                    src,
                    dst,
                    payload: Bytes::from(payload),
                    wire_bytes: wb,
                });
                self.q.schedule(
                    end_ns + link.latency_ns,
                    Ev::SwitchArrive {
                        switch: switch as u32,
                        in_port: in_port as u32,
                        pkt,
                    },
                );
            }
        }
    }

    fn on_switch_arrive(&mut self, t: u64, s: usize, in_port: usize, pkt: u32) {
        if self.aggregator_cfg.is_some() && self.packets.get(pkt).dst == switch_addr() {
            self.on_aggregator(t, s, pkt);
            return;
        }
        let dst_ip = *self.packets.get(pkt).dst.ip();
        if dst_ip.is_multicast() {
            let ports = match self.groups.get(&dst_ip) {
                Some(members) => self.topo.multicast_ports(s, members, in_port),
                None => Vec::new(),
            };
            if ports.is_empty() {
                self.metrics.unroutable += 1;
            }
            let p = self.packets.remove(pkt);
            for port in ports {
                let copy = self.packets.insert(Packet {
                    src: p.src,
                    dst: p.dst,
                    payload: p.payload.clone(),
                    wire_bytes: p.wire_bytes,
                });
                self.forward(t, s, port, copy);
            }
        } else {
            match self.ip_to_host.get(&dst_ip) {
                Some(&h) => {
                    let port = self.topo.switches[s].route[h];
                    self.forward(t, s, port, pkt);
                }
                None => {
                    self.metrics.unroutable += 1;
                    let p = self.packets.remove(pkt);
                    trace!(self, t, "drop unroutable s{s} {}->{}", p.src, p.dst);
                }
            }
        }
    }

    /// The switch's data path runs the HovercRaft++ aggregator on a packet addressed to it.
    fn on_aggregator(&mut self, t: u64, s: usize, pkt: u32) {
        let p = self.packets.remove(pkt);
        let Some(agg) = self.aggregator.as_mut() else {
            self.aggregator_drops += 1;
            trace!(self, t, "drop aggregator-down {}", p.src);
            return;
        };
        if let Err(e) = agg.handle_datagram(p.src, &p.payload) {
            trace!(self, t, "aggregator-reject {}: {e}", p.src);
        }
        let egress_ns = t + self.scenario.network.aggregator_latency_ns;
        let mut outs = Vec::new();
        while let Some(tx) = agg.poll_transmit() {
            outs.push(tx);
        }
        for tx in outs {
            let Some(&h) = self.ip_to_host.get(tx.dst.ip()) else {
                self.metrics.unroutable += 1;
                continue;
            };
            let port = self.topo.switches[s].route[h];
            let copy = self.packets.insert(Packet {
                src: switch_addr(),
                dst: tx.dst,
                wire_bytes: wire_bytes(tx.payload.len()),
                payload: Bytes::from(tx.payload),
            });
            self.forward_at(egress_ns, s, port, copy);
        }
    }

    /// Records a line of the run's story (faults, leader changes, switch path changes) and
    /// measures failover: from a fault that took the leader away to the next leader.
    fn note_story(&mut self, t: u64, what: String) {
        if what.contains(" leads term ") {
            if let Some(since) = self.leader_lost_at.take() {
                self.failovers_ns.push(t - since);
            }
        }
        self.story.push(StoryLine {
            t_us: round3(t as f64 / 1e3),
            what,
        });
    }

    fn forward(&mut self, t: u64, s: usize, port: usize, pkt: u32) {
        self.forward_at(t + self.scenario.network.switch_latency_ns, s, port, pkt);
    }

    /// Queues a frame on switch `s`'s egress `port` at `egress_ns`.
    fn forward_at(&mut self, egress_ns: u64, s: usize, port: usize, pkt: u32) {
        let t = egress_ns;
        let wb = self.packets.get(pkt).wire_bytes;
        match self.switches[s].ports[port].enqueue(egress_ns, wb) {
            Enqueued::Dropped => {
                let p = self.packets.remove(pkt);
                trace!(
                    self,
                    t,
                    "drop switch s{s}p{port} {}->{} bytes={wb}",
                    p.src,
                    p.dst
                );
            }
            Enqueued::Departs { end_ns } => {
                let (peer, link) = self.topo.switches[s].ports[port];
                let at = end_ns + link.latency_ns;
                match peer {
                    Peer::Host(h) => self.q.schedule(
                        at,
                        Ev::HostArrive {
                            host: h as u32,
                            pkt,
                        },
                    ),
                    Peer::Switch { switch, port } => self.q.schedule(
                        at,
                        Ev::SwitchArrive {
                            switch: switch as u32,
                            in_port: port as u32,
                            pkt,
                        },
                    ),
                }
            }
        }
    }

    fn on_host_arrive(&mut self, t: u64, host: usize, pkt: u32) {
        let wb = self.packets.get(pkt).wire_bytes;
        if self.hosts[host].down {
            self.packets.remove(pkt);
            return;
        }
        if !self.rules.is_empty() && self.apply_rules(t, host, pkt) {
            return;
        }
        if let Some((p, multicast_only)) = self.hosts[host].rx_loss {
            let multicast = self.packets.get(pkt).dst.ip().is_multicast();
            if (multicast || !multicast_only) && rand::Rng::gen::<f64>(&mut self.net_rng) < p {
                self.lost_frames += 1;
                let lost = self.packets.remove(pkt);
                trace!(self, t, "lost h{host} {}->{}", lost.src, lost.dst);
                return;
            }
        }
        let h = &mut self.hosts[host];
        h.packets_rx += 1;
        h.bytes_rx += wb as u64;
        if self.trace.is_some() {
            let p = self.packets.get(pkt);
            let what = describe(&p.payload);
            trace!(self, t, "rx h{host} {}->{} {what} bytes={wb}", p.src, p.dst);
        }
        // The NIC steers by source address: the cluster's own hosts and the aggregator.
        let src_ip = *self.packets.get(pkt).src.ip();
        let class = if src_ip == *switch_addr().ip()
            || self
                .ip_to_host
                .get(&src_ip)
                .is_some_and(|&h| h < self.n_servers)
        {
            RxClass::Cluster
        } else {
            RxClass::Client
        };
        match &mut self.hosts[host].role {
            Role::Server(server) => match server.cpu.admit(t, pkt, class) {
                Admit::RunNow => self.run_packet(t, host, pkt),
                Admit::Queued { schedule_free_at } => {
                    if let Some(at) = schedule_free_at {
                        self.q.schedule(at, Ev::CpuFree { host: host as u32 });
                    }
                }
                Admit::Dropped => {
                    self.packets.remove(pkt);
                    let ring = match class {
                        RxClass::Cluster => "cluster",
                        RxClass::Client => "client",
                    };
                    trace!(self, t, "drop rxq h{host} ring={ring}");
                }
            },
            Role::Client(_) => {
                let p = self.packets.remove(pkt);
                self.client_receive(t, host, p);
            }
        }
    }

    // ---- server nodes ----------------------------------------------------------------------

    fn server_mut(&mut self, host: usize) -> &mut ServerHost {
        match &mut self.hosts[host].role {
            Role::Server(s) => s,
            Role::Client(_) => unreachable!("host {host} is a client"),
        }
    }

    fn run_packet(&mut self, t: u64, host: usize, pkt: u32) {
        let p = self.packets.remove(pkt);
        let rx_ns = self.scenario.cpu.rx_ns_per_packet;
        let now = t + rx_ns;
        let server = self.server_mut(host);
        if let Err(e) = server.node.handle_datagram(
            Instant::from_ns(server.clock.to_node(now)),
            p.src,
            &p.payload,
        ) {
            trace!(self, now, "reject h{host} {}: {e}", p.src);
        }
        self.after_handler(t, now, host);
    }

    fn on_cpu_free(&mut self, t: u64, host: usize) {
        if self.hosts[host].down {
            return;
        }
        let server = self.server_mut(host);
        server.cpu.free_scheduled = false;
        if server.cpu.timer_due {
            server.cpu.timer_due = false;
            self.run_timer(t, host);
        } else if let Some(seq) = server.cpu.persisted_due.take() {
            self.run_persisted(t, host, seq);
        } else if let Some(pkt) = server.cpu.next_packet() {
            self.run_packet(t, host, pkt);
        }
        let server = self.server_mut(host);
        if server.cpu.has_work() {
            if let Some(at) = server.cpu.claim_free_event() {
                self.q.schedule(at, Ev::CpuFree { host: host as u32 });
            }
        }
    }

    fn on_node_timer(&mut self, t: u64, host: usize, gen: u32) {
        if self.hosts[host].down {
            return;
        }
        let server = self.server_mut(host);
        if gen != server.timer_gen {
            return; // superseded by a later deadline
        }
        server.timer_deadline = None;
        if server.cpu.is_idle(t) {
            self.run_timer(t, host);
        } else {
            server.cpu.timer_due = true;
            if let Some(at) = server.cpu.claim_free_event() {
                self.q.schedule(at, Ev::CpuFree { host: host as u32 });
            }
        }
    }

    fn on_storage_done(&mut self, t: u64, host: usize, seq: u64) {
        if self.hosts[host].down {
            return;
        }
        let server = self.server_mut(host);
        if server.cpu.is_idle(t) {
            self.run_persisted(t, host, seq);
        } else {
            let due = server.cpu.persisted_due.get_or_insert(seq);
            *due = (*due).max(seq);
            if let Some(at) = server.cpu.claim_free_event() {
                self.q.schedule(at, Ev::CpuFree { host: host as u32 });
            }
        }
    }

    /// Storage made `host`'s log durable up to `last_index`.
    fn note_persisted(&mut self, t: u64, host: usize, last_index: u64) {
        if self.observe {
            self.observations.push(Observation {
                t_ns: t,
                host,
                what: Observed::Persisted { last_index },
            });
        }
    }

    fn run_persisted(&mut self, t: u64, host: usize, seq: u64) {
        trace!(self, t, "persisted h{host} seq={seq}");
        let server = self.server_mut(host);
        let now = Instant::from_ns(server.clock.to_node(t));
        server.node.handle_persisted(now, seq);
        self.after_handler(t, t, host);
    }

    fn run_timer(&mut self, t: u64, host: usize) {
        let server = self.server_mut(host);
        let now = Instant::from_ns(server.clock.to_node(t));
        server.node.handle_timeout(now);
        self.after_handler(t, t, host);
    }

    /// Drains a node's outputs after a handler that started at `start_ns` and whose input was
    /// parsed by `now_ns`: releases each datagram after the CPU work that preceded it,
    /// charges the core, and re-arms the node's timer.
    fn after_handler(&mut self, start_ns: u64, now_ns: u64, host: usize) {
        let tx_ns = self.scenario.cpu.tx_ns_per_packet;
        let mut out = std::mem::take(&mut self.scratch_tx);
        let tracing = self.trace.is_some();
        let server = match &mut self.hosts[host].role {
            Role::Server(s) => s,
            Role::Client(_) => unreachable!(),
        };
        // Hand new durable state to storage. With zero write latency it is durable at once,
        // inside this handler; otherwise a StorageDone event reports it later.
        let mut storage_done = Vec::new();
        let mut persisted_now = Vec::new();
        while let Some(req) = server.node.poll_persist() {
            let (seq, last_index) = (req.seq, req.last_index);
            match server.storage.submit(now_ns, req) {
                None => {
                    let now = Instant::from_ns(server.clock.to_node(now_ns));
                    server.node.handle_persisted(now, seq);
                    persisted_now.push(last_index);
                }
                Some(at) => storage_done.push(at),
            }
        }
        let mut n = 0u64;
        while let Some(tx) = server.node.poll_transmit() {
            n += 1;
            if self.observe {
                if let Some(v) = persist_before_send_violation(&server.storage, &tx.payload, host) {
                    self.contract_violations
                        .push(format!("at {now_ns} ns: {v}"));
                }
            }
            out.push((now_ns + tx.after_app_cpu_ns + n * tx_ns, tx.dst, tx.payload));
        }
        let end_ns = now_ns + server.node.take_app_cpu_ns() + n * tx_ns;
        server.cpu.charge(start_ns, end_ns);
        let mut lines = Vec::new();
        let mut observed = Vec::new();
        let observe = self.observe;
        let mut story = Vec::new();
        while let Some(ev) = server.node.poll_event() {
            if observe {
                observed.push(ev.clone());
            }
            match ev {
                NodeEvent::RoleChanged {
                    role: hovercraft_core::raft::Role::Leader,
                    term,
                    ..
                } => {
                    story.push(format!("node {host} leads term {term}"));
                }
                NodeEvent::SwitchPath { via_switch, .. } => story.push(if via_switch {
                    format!("node {host} returns to the switch path")
                } else {
                    format!("node {host} falls back to direct fan-out (switch silent)")
                }),
                _ => {}
            }
            if tracing {
                lines.push(match ev {
                    NodeEvent::Executed {
                        client,
                        req_id,
                        read_only,
                        cpu_ns,
                        index,
                        ..
                    } => format!(
                        "exec h{host} {client}#{req_id} idx={index} ro={read_only} cpu_ns={cpu_ns}"
                    ),
                    NodeEvent::Dropped { client, req_id } => {
                        format!("drop-request h{host} {client}#{req_id}")
                    }
                    NodeEvent::Committed {
                        index,
                        entry_term,
                        term,
                    } => {
                        format!("commit h{host} idx={index} entry_term={entry_term} term={term}")
                    }
                    NodeEvent::SwitchPath { via_switch, term } => {
                        let what = if via_switch { "return" } else { "fallback" };
                        format!("switch-path h{host} {what} term={term}")
                    }
                    NodeEvent::RoleChanged { role, term, leader } => {
                        format!("role h{host} {role:?} term={term} leader={leader:?}")
                    }
                    NodeEvent::Replied { client, req_id, .. } => {
                        format!("reply h{host} {client}#{req_id}")
                    }
                    NodeEvent::AppRejected {
                        client,
                        req_id,
                        error,
                    } => {
                        format!("app-reject h{host} {client}#{req_id}: {error}")
                    }
                });
            }
        }
        // The node's deadline is on its own (possibly skewed) clock.
        let clock = server.clock;
        let next = server
            .node
            .poll_timeout()
            .map(|i| clock.sim_time_of(i.as_ns()));
        if next != server.timer_deadline {
            server.timer_deadline = next;
            server.timer_gen = server.timer_gen.wrapping_add(1);
            if let Some(d) = next {
                let gen = server.timer_gen;
                self.q.schedule(
                    d.max(now_ns),
                    Ev::NodeTimer {
                        host: host as u32,
                        gen,
                    },
                );
            }
        }
        let epoch = match &self.hosts[host].role {
            Role::Server(s) => s.storage_epoch,
            Role::Client(_) => 0,
        };
        for at in storage_done {
            self.q.schedule(
                at,
                Ev::StorageDone {
                    host: host as u32,
                    epoch,
                },
            );
        }
        for last_index in persisted_now {
            self.note_persisted(now_ns, host, last_index);
        }
        if self.observe {
            self.observations
                .extend(observed.into_iter().map(|what| Observation {
                    t_ns: now_ns,
                    host,
                    what: Observed::Node(what),
                }));
        }
        for l in lines {
            trace!(self, now_ns, "{l}");
        }
        for line in story {
            self.note_story(now_ns, line);
        }
        let src = SocketAddrV4::new(self.hosts[host].ip, SERVER_PORT);
        for (at, dst, payload) in out.drain(..) {
            self.host_send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        self.kick_app_core(end_ns, host);
    }

    /// Hands ready requests to a separate application core (if idle and not yet woken).
    fn kick_app_core(&mut self, at_ns: u64, host: usize) {
        let Role::Server(server) = &mut self.hosts[host].role else {
            return;
        };
        if server.app_run_scheduled || !server.node.has_ready_execution() {
            return;
        }
        server.app_run_scheduled = true;
        let at = at_ns.max(server.app_busy_until_ns);
        self.q.schedule(at, Ev::AppRun { host: host as u32 });
    }

    /// The application core runs one request: its service time, then its reply's TX cost.
    fn on_app_run(&mut self, t: u64, host: usize) {
        let tx_ns = self.scenario.cpu.tx_ns_per_packet;
        let (w0, w1) = (self.metrics.window_start_ns, self.metrics.window_end_ns);
        let observe = self.observe;
        let tracing = self.trace.is_some();
        let mut out = std::mem::take(&mut self.scratch_tx);
        let Role::Server(server) = &mut self.hosts[host].role else {
            return;
        };
        server.app_run_scheduled = false;
        if self.hosts[host].down {
            self.scratch_tx = out;
            return;
        }
        let Role::Server(server) = &mut self.hosts[host].role else {
            return;
        };
        let now = Instant::from_ns(server.clock.to_node(t));
        let Some(cost) = server.node.execute_next(now) else {
            self.scratch_tx = out;
            return;
        };
        let _ = server.node.take_app_cpu_ns();
        let mut n = 0;
        while let Some(tx) = server.node.poll_transmit() {
            n += 1;
            out.push((t + cost + n * tx_ns, tx.dst, tx.payload));
        }
        let end = t + cost + n * tx_ns;
        server.app_busy_until_ns = end;
        server.app_cpu.busy_ns += end - t;
        server.app_cpu.busy_in_window_ns += end.min(w1).saturating_sub(t.max(w0));
        server.app_cpu.handlers += 1;
        if !(tracing || observe) {
            // The common case: nobody looks, so drain without collecting.
            while server.node.poll_event().is_some() {}
        } else {
            let mut events = Vec::new();
            while let Some(ev) = server.node.poll_event() {
                events.push(ev);
            }
            if tracing {
                for ev in &events {
                    trace!(self, t, "app h{host} {ev:?}");
                }
            }
            if observe {
                self.observations
                    .extend(events.into_iter().map(|what| Observation {
                        t_ns: t,
                        host,
                        what: Observed::Node(what),
                    }));
            }
        }
        let src = SocketAddrV4::new(self.hosts[host].ip, SERVER_PORT);
        for (at, dst, payload) in out.drain(..) {
            self.host_send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        self.kick_app_core(end, host);
    }

    // ---- clients ---------------------------------------------------------------------------

    fn client_mut(&mut self, host: usize) -> &mut ClientHost {
        match &mut self.hosts[host].role {
            Role::Client(c) => c,
            Role::Server(_) => unreachable!("host {host} is a server"),
        }
    }

    fn request_target(&self, host: usize) -> (SocketAddrV4, Policy) {
        match self.scenario.mode {
            Mode::Unreplicated => (server_addr(0), Policy::LbRoute),
            // Vanilla Raft: requests go to the leader (as this client machine knows it).
            Mode::Raft => match &self.hosts[host].role {
                Role::Client(c) => (server_addr(c.leader_hint), Policy::ReplicatedRoute),
                Role::Server(_) => unreachable!(),
            },
            // HovercRaft: requests go to the cluster's multicast group.
            Mode::Hovercraft | Mode::HovercraftPlusPlus => {
                (cluster_group(), Policy::ReplicatedRoute)
            }
        }
    }

    fn on_client_arrival(&mut self, t: u64, host: usize) {
        if t >= self.send_end_ns {
            return;
        }
        let (dst, base_policy) = self.request_target(host);
        let measured = self.metrics.in_window(t);
        let mut body = std::mem::take(&mut self.scratch_body);
        let mut out = std::mem::take(&mut self.scratch_tx);
        let c = self.client_mut(host);
        let spec = c.generator.next_request(&mut body);
        let gap = c.generator.next_gap_ns();
        let policy = if spec.read_only && base_policy == Policy::ReplicatedRoute {
            Policy::ReplicatedRouteNoSe
        } else {
            base_policy
        };
        let port = c.next_port;
        c.next_port = (port + 1) % c.ports.len();
        let client = &mut c.ports[port];
        // The tag is the send time: it says whether the request is measured, and lets the
        // liveness check find requests sent after the faults healed.
        let result = client.send_request(Instant::from_ns(t), dst, policy, &body, t);
        let src = client.local_addr();
        while let Some(tx) = client.poll_transmit() {
            out.push((t, tx.dst, tx.payload));
        }
        self.scratch_body = body;
        match result {
            Ok(req_id) => {
                if measured {
                    self.metrics.sent_in_window += 1;
                }
                if let (true, Some((key, write))) = (self.observe, spec.kv) {
                    self.kv_pending
                        .insert((host, port, req_id), self.kv_history.len());
                    self.kv_history.push(KvOp {
                        client: ((host as u64) << 16) | port as u64,
                        key,
                        write,
                        call_ns: t,
                        return_ns: None,
                        observed: None,
                        refused: false,
                    });
                }
                trace!(self, t, "send h{host} {src}#{req_id} -> {dst}");
            }
            Err(e) => {
                if measured {
                    self.metrics.client_refused += 1;
                }
                trace!(self, t, "refuse h{host} {src}: {e}");
            }
        }
        for (at, dst, payload) in out.drain(..) {
            self.host_send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        self.q
            .schedule(t + gap, Ev::ClientArrival { host: host as u32 });
    }

    fn client_receive(&mut self, t: u64, host: usize, p: Packet) {
        let port = p.dst.port().wrapping_sub(CLIENT_BASE_PORT) as usize;
        let c = self.client_mut(host);
        let Some(client) = c.ports.get_mut(port) else {
            self.metrics.unroutable += 1;
            return;
        };
        if let Err(e) = client.handle_datagram(Instant::from_ns(t), p.src, &p.payload) {
            trace!(self, t, "reject h{host} {}: {e}", p.src);
            return;
        }
        self.drain_client_events(t, host, port);
    }

    fn on_client_tick(&mut self, t: u64, host: usize) {
        let c = self.client_mut(host);
        for port in 0..c.ports.len() {
            c.ports[port].handle_timeout(Instant::from_ns(t));
        }
        for port in 0..self.client_mut(host).ports.len() {
            self.drain_client_events(t, host, port);
        }
        if t + CLIENT_TICK_NS <= self.hard_end_ns {
            self.q
                .schedule(t + CLIENT_TICK_NS, Ev::ClientTick { host: host as u32 });
        }
    }

    fn drain_client_events(&mut self, t: u64, host: usize, port: usize) {
        let in_window = self.metrics.in_window(t);
        let tracing = self.trace.is_some();
        let n_servers = self.n_servers;
        let c = match &mut self.hosts[host].role {
            Role::Client(c) => c,
            Role::Server(_) => unreachable!(),
        };
        let mut lines = Vec::new();
        let mut timed_out = false;
        while let Some(ev) = c.ports[port].poll_event() {
            match ev {
                ClientEvent::Response {
                    req_id,
                    tag,
                    from,
                    latency_ns,
                    body,
                } => {
                    if let Some(i) = self.kv_pending.remove(&(host, port, req_id)) {
                        let op = &mut self.kv_history[i];
                        op.return_ns = Some(t);
                        op.observed = match KvReply::decode(&body) {
                            Ok(KvReply::Value(v)) => Some(Some(v)),
                            Ok(KvReply::NotFound) => Some(None),
                            _ => None,
                        };
                    }
                    if in_window {
                        self.metrics.completed_in_window += 1;
                    }
                    if self.metrics.in_window(tag) {
                        self.metrics.latency_ns.saturating_record(latency_ns);
                    }
                    if let Some(tl) = &mut self.metrics.timeline {
                        let b = tl.bucket(t);
                        b.completed += 1;
                        b.latency_ns.saturating_record(latency_ns);
                    }
                    if let Some(i) = server_index(from, n_servers) {
                        c.leader_hint = i;
                    }
                    if tracing {
                        lines.push(format!(
                            "done h{host}:{port}#{req_id} from={from} latency_ns={latency_ns}"
                        ));
                    }
                }
                ClientEvent::Dropped {
                    req_id, tag, body, ..
                } => {
                    // Refused by the replica that answered; another (the real leader) may still
                    // have ordered it, so its outcome is unknown to the client.
                    if let Some(i) = self.kv_pending.remove(&(host, port, req_id)) {
                        self.kv_history[i].refused = true;
                    }
                    if self.metrics.in_window(tag) {
                        self.metrics.measured_dropped += 1;
                    }
                    if let Some(tl) = &mut self.metrics.timeline {
                        tl.bucket(t).dropped += 1;
                    }
                    // A non-leader's DROP names the leader; an empty one is flow control.
                    if let Some(i) = hovercraft_core::wire::get_addr(&body)
                        .and_then(|a| server_index(a, n_servers))
                    {
                        c.leader_hint = i;
                    } else if !body.is_empty() {
                        // "Not the leader, leader unknown": try the next server.
                        c.leader_hint = (c.leader_hint + 1) % n_servers;
                    }
                    if tracing {
                        lines.push(format!("dropped h{host}:{port}#{req_id}"));
                    }
                }
                ClientEvent::TimedOut { req_id, tag } => {
                    // Unknown outcome: it may or may not have taken effect (return stays None).
                    self.kv_pending.remove(&(host, port, req_id));
                    if tag >= self.liveness_from_ns {
                        self.liveness_timeouts += 1;
                    }
                    if self.metrics.in_window(tag) {
                        self.metrics.measured_timed_out += 1;
                    }
                    if let Some(tl) = &mut self.metrics.timeline {
                        tl.bucket(t).timed_out += 1;
                    }
                    // No answer at all: the believed leader may be gone; try the next one.
                    timed_out = true;
                    if tracing {
                        lines.push(format!("timeout h{host}:{port}#{req_id}"));
                    }
                }
            }
        }
        if timed_out && n_servers > 1 {
            c.leader_hint = (c.leader_hint + 1) % n_servers;
        }
        for l in lines {
            trace!(self, t, "{l}");
        }
    }

    // ---- results ---------------------------------------------------------------------------

    fn host_summary(&self, i: usize, name: String) -> HostSummary {
        let h = &self.hosts[i];
        HostSummary {
            host: name,
            addr: h.ip.to_string(),
            packets_rx: h.packets_rx,
            bytes_rx: h.bytes_rx,
            packets_tx: h.packets_tx,
            bytes_tx: h.bytes_tx,
            packets_tx_in_window: h.packets_tx_in_window,
            bytes_tx_in_window: h.bytes_tx_in_window,
            nic: h.nic.stats,
        }
    }

    fn summary(&self) -> Summary {
        let m = &self.metrics;
        // The run stops at the first event past the hard end; that event did not happen.
        let simulated_ns = self.q.now_ns().min(self.hard_end_ns);
        let mut per_node = Vec::new();
        let mut clients = Vec::new();
        let mut rx_queue_drops = 0;
        for (i, h) in self.hosts.iter().enumerate() {
            match &h.role {
                Role::Server(s) => {
                    rx_queue_drops +=
                        s.cpu.stats.rx_queue_drops + s.cpu.stats.cluster_rx_queue_drops;
                    per_node.push(NodeSummary {
                        id: s.node.id(),
                        role: "server",
                        host: self.host_summary(i, format!("node{i}")),
                        cpu_busy_fraction: round3(
                            s.cpu.stats.busy_in_window_ns as f64 / (m.window_s() * 1e9),
                        ),
                        nic_busy_fraction: round3(
                            h.nic.stats.busy_in_window_ns as f64 / (m.window_s() * 1e9),
                        ),
                        cpu: s.cpu.stats,
                        app_core_busy_fraction: (self.scenario.cpu.app_core == AppCore::Separate)
                            .then(|| {
                                round3(s.app_cpu.busy_in_window_ns as f64 / (m.window_s() * 1e9))
                            }),
                        protocol: s.node.counters(),
                        app_digest: format!("{:016x}", s.node.app_digest()),
                        replica: s.node.replica().map(|r| ReplicaSummary {
                            role: r.role(),
                            term: r.term(),
                            last_index: r.last_index(),
                            commit_index: r.commit_index(),
                            applied_index: r.applied_index(),
                            outstanding_replies: (0..self.n_servers as u8)
                                .map(|i| r.outstanding_replies(i))
                                .collect(),
                            counters: r.counters,
                            unordered: r.unordered_stats(),
                        }),
                    });
                }
                Role::Client(c) => {
                    let mut r2p2 = hovercraft_core::r2p2::client::ClientStats::default();
                    for p in &c.ports {
                        r2p2.sent += p.stats.sent;
                        r2p2.responses += p.stats.responses;
                        r2p2.drops += p.stats.drops;
                        r2p2.timeouts += p.stats.timeouts;
                        r2p2.unmatched += p.stats.unmatched;
                        r2p2.rejected_packets += p.stats.rejected_packets;
                    }
                    clients.push(ClientMachineSummary {
                        host: self.host_summary(i, format!("client{}", i - self.n_servers)),
                        r2p2,
                    });
                }
            }
        }
        let switch_ports = self.switches.iter().flat_map(|s| &s.ports);
        let network = NetworkSummary {
            nic_tx_drops: self.hosts.iter().map(|h| h.nic.stats.drops).sum(),
            switch_queue_drops: switch_ports.clone().map(|p| p.stats.drops).sum(),
            rx_queue_drops,
            unroutable: m.unroutable,
            lost: self.lost_frames,
            switch_frames: switch_ports.clone().map(|p| p.stats.frames).sum(),
            switch_bytes: switch_ports.map(|p| p.stats.bytes).sum(),
        };
        let s = &self.scenario;
        Summary {
            scenario: s.name.clone(),
            seed: s.seed,
            mode: s.mode.as_str(),
            nodes: s.nodes,
            duration_ms: s.duration_ms,
            warmup_ms: s.warmup_ms,
            offered_rps: round3(m.sent_in_window as f64 / m.window_s()),
            completed_rps: round3(m.completed_in_window as f64 / m.window_s()),
            dropped: m.measured_dropped + m.measured_timed_out,
            dropped_by_server: m.measured_dropped,
            timed_out: m.measured_timed_out,
            client_refused: m.client_refused,
            measured_requests: m.latency_ns.len(),
            latency_us: LatencyUs::from_histogram(&m.latency_ns),
            slo_p99_us: s.slo_p99_us,
            simulated_ns,
            events: self.q.popped(),
            network,
            per_node,
            clients,
            story: self.story.clone(),
            failover_us: self
                .failovers_ns
                .iter()
                .map(|&ns| round3(ns as f64 / 1e3))
                .collect(),
            timeline: m
                .timeline
                .as_ref()
                .map(Timeline::summary)
                .unwrap_or_default(),
            manifest: Manifest::default(),
        }
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.q.popped()
    }

    /// Mean number of pending events at each pop so far.
    pub fn mean_pending_events(&self) -> f64 {
        self.q.mean_pending()
    }
}

impl Host {
    fn new(ip: Ipv4Addr, nic: TxQueue, role: Role) -> Host {
        Host {
            ip,
            down: false,
            rx_loss: None,
            nic,
            packets_rx: 0,
            bytes_rx: 0,
            packets_tx: 0,
            bytes_tx: 0,
            packets_tx_in_window: 0,
            bytes_tx_in_window: 0,
            role,
        }
    }
}

/// Persist before send (DESIGN.md §4): a granted vote goes out only once storage holds that
/// vote, and an AppendEntries acknowledgement only once storage holds the acknowledged
/// entries (checked when the storage keeps a log image). Returns what was violated.
fn persist_before_send_violation(storage: &Storage, payload: &[u8], host: usize) -> Option<String> {
    use hovercraft_core::wire::raft::{AppendResult, RaftBody, RaftMessage};
    let (h, body) = Header::decode(payload).ok()?;
    if h.msg_type != hovercraft_core::wire::MsgType::RaftRep || !(h.first && h.last) {
        return None;
    }
    let m = RaftMessage::decode(body).ok()?;
    let image = storage.image();
    match m.body {
        RaftBody::VoteReply { granted: true }
            if image.term != m.term || image.voted_for.is_none() =>
        {
            return Some(format!(
                "node {host} granted a vote in term {} before storage held it (durable term {}, vote {:?})",
                m.term, image.term, image.voted_for
            ));
        }
        RaftBody::AppendEntriesRep {
            result: AppendResult::Success | AppendResult::PartialMissing,
            last_log_idx,
            ..
        } if storage.keeps_image() && (image.entries.len() as u64) < last_log_idx => {
            return Some(format!(
                "node {host} acknowledged index {last_log_idx} with only {} entries durable",
                image.entries.len()
            ));
        }
        _ => {}
    }
    None
}

/// Which server owns `addr`, if any.
fn server_index(addr: SocketAddrV4, n_servers: usize) -> Option<usize> {
    (0..n_servers).find(|&i| server_addr(i) == addr)
}

/// A short description of a datagram for the trace.
fn describe(payload: &[u8]) -> String {
    match Header::decode(payload) {
        Ok((h, _)) => format!(
            "{:?}/{:?}#{} {}{}{}",
            h.msg_type,
            h.policy,
            h.req_id,
            if h.first { "F" } else { "" },
            if h.last { "L" } else { "" },
            h.packet_order
        ),
        Err(e) => format!("malformed({e})"),
    }
}

/// Writes a trace line if tracing is on; the first write error stops tracing and is
/// reported when the run ends.
macro_rules! trace {
    ($w:expr, $t:expr, $($arg:tt)*) => {
        if let Some(out) = $w.trace.as_mut() {
            if let Err(e) = writeln!(out, "{} {}", $t, format_args!($($arg)*)) {
                $w.trace_error.get_or_insert(e);
                $w.trace = None;
            }
        }
    };
}
use trace;

#[allow(dead_code)]
fn _assert_small_events() {
    const _: () = assert!(std::mem::size_of::<Ev>() <= 16);
    let _ = VecDeque::<u8>::new();
}
