//! The server driver: feeds datagrams, timeouts and persistence completions into the core's
//! `Node` on the host's single busy-polling core, and drains what each handler produced:
//! storage writes, datagrams (released after the CPU work that preceded them), node events
//! and the next timer deadline. Crash and restart (from durable state) live here too.

use std::io::Write;
use std::net::SocketAddrV4;

use hovercraft_core::node::{Node, NodeConfig, NodeEvent};
use hovercraft_core::raft::ClusterConfig;
use hovercraft_core::rng::{derive_seed, Stream};
use hovercraft_core::time::Instant;
use hovercraft_core::wire::framing::ReassemblyConfig;

use super::faults::Clock;
use super::{Ev, Observation, Observed, Role, World};
use crate::check::checker::Event;
use crate::cpu::{Admit, Cpu, CpuStats, RxClass};
use crate::network::addr::{cluster_group, server_addr, switch_addr, SERVER_PORT};
use crate::scenario::{AppCore, Fault, Scenario};
use crate::storage::Storage;
use crate::trace::{node_event, trace};

pub(super) struct ServerHost {
    pub(super) node: Node,
    /// The node's storage device (durable term, vote and log).
    pub(super) storage: Storage,
    /// How to rebuild the node after a crash.
    config: NodeConfig,
    /// Incremented at each crash: storage completions of an older epoch are void.
    storage_epoch: u32,
    /// The node's clock (skew).
    pub(super) clock: Clock,
    /// The application core (when separate): busy until, and whether an AppRun is pending.
    pub(super) app_busy_until_ns: u64,
    pub(super) app_run_scheduled: bool,
    pub(super) app_cpu: CpuStats,
    pub(super) cpu: Cpu,
    timer_deadline: Option<u64>,
    timer_gen: u32,
}

impl ServerHost {
    /// Server `i` of `scenario`, with its node started.
    pub(super) fn new(scenario: &Scenario, i: usize) -> ServerHost {
        let peers = (0..scenario.nodes as usize).map(server_addr).collect();
        // A durable log image costs a copy of every entry; keep one only if nodes restart.
        let keep_image = scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::RestartNode { .. } | Fault::CrashLeader { .. }));
        let config = NodeConfig {
            id: i as u8,
            mode: scenario.mode,
            app: scenario.workload.app,
            kv_costs: scenario.workload.node_kv_costs(),
            reassembly: ReassemblyConfig::default(),
            seed: derive_seed(scenario.seed, Stream::Node, i as u64),
            cluster: Some(ClusterConfig {
                peers,
                group: cluster_group(),
                campaign_at_start: scenario.bootstrap_leader && i == 0,
                switch: Some(switch_addr()),
            }),
            raft: scenario.raft.clone(),
            defer_execution: scenario.cpu.app_core == AppCore::Separate,
            exec_queue_capacity: scenario.cpu.app_queue_requests as usize,
            // No attacker in the simulator.
            client_limits: hovercraft_core::node::ClientLimits::UNLIMITED,
            cluster_datagram_overhead_bytes: 0,
        };
        let node =
            Node::new(config.clone()).expect("scenario validation admits only implemented modes");
        ServerHost {
            node,
            storage: Storage::new(scenario.storage.write_latency_ns, keep_image),
            config,
            storage_epoch: 0,
            clock: Clock::default(),
            app_busy_until_ns: 0,
            app_run_scheduled: false,
            app_cpu: CpuStats::default(),
            cpu: Cpu::new(
                scenario.cpu.clone(),
                (
                    scenario.warmup_ms * 1_000_000,
                    scenario.duration_ms * 1_000_000,
                ),
            ),
            timer_deadline: None,
            timer_gen: 0,
        }
    }
}

impl World {
    pub(super) fn server_mut(&mut self, host: usize) -> &mut ServerHost {
        match &mut self.hosts[host].role {
            Role::Server(s) => s,
            Role::Client(_) => unreachable!("host {host} is a client"),
        }
    }

    /// Crashes host `h`: from now on it receives and runs nothing, and what its storage had
    /// not yet made durable is lost.
    pub fn crash(&mut self, h: usize) {
        self.hosts[h].down = true;
        if let Role::Server(s) = &mut self.hosts[h].role {
            let queued = s.cpu.drain();
            for p in queued {
                self.net.packets.remove(p);
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
        self.q.cancel_keyed(h);
        self.hosts[h].down = false;
        trace!(self.tracer, t, "restart h{h}");
        if let Some(checks) = self.checks.as_mut() {
            checks.on_event(&Event::Restarted { t_ns: t, host: h });
        }
        // Arm its election timer.
        self.after_handler(t, t, h);
    }

    /// A frame the NIC steered onto ring `class` of server `host`: run it now or queue it.
    pub(super) fn server_rx(&mut self, t: u64, host: usize, pkt: u32, class: RxClass) {
        let server = self.server_mut(host);
        match server.cpu.admit(t, pkt, class) {
            Admit::RunNow => self.run_packet(t, host, pkt),
            Admit::Queued { schedule_free_at } => {
                if let Some(at) = schedule_free_at {
                    self.q.schedule(at, Ev::CpuFree { host: host as u32 });
                }
            }
            Admit::Dropped => {
                self.net.packets.remove(pkt);
                let ring = match class {
                    RxClass::Cluster => "cluster",
                    RxClass::Client => "client",
                };
                trace!(self.tracer, t, "drop rxq h{host} ring={ring}");
            }
        }
    }

    /// The authentication cost of receiving `payload` (cluster packets only).
    fn auth_ns(&self, payload: &[u8]) -> u64 {
        let auth = self.scenario.cpu.auth_ns_per_cluster_packet;
        if auth > 0 && is_cluster_packet(payload) {
            auth
        } else {
            0
        }
    }

    fn run_packet(&mut self, t: u64, host: usize, pkt: u32) {
        let p = self.net.packets.remove(pkt);
        let rx_ns = self.scenario.cpu.rx_ns_per_packet + self.auth_ns(&p.payload);
        let now = t + rx_ns;
        let server = self.server_mut(host);
        if let Err(e) = server.node.handle_datagram(
            Instant::from_ns(server.clock.to_node(now)),
            p.src,
            &p.payload,
        ) {
            trace!(self.tracer, now, "reject h{host} {}: {e}", p.src);
        }
        self.after_handler(t, now, host);
    }

    pub(super) fn on_cpu_free(&mut self, t: u64, host: usize) {
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

    pub(super) fn on_node_timer(&mut self, t: u64, host: usize, gen: u32) {
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

    /// The oldest storage write of `host` completed (if it belongs to the current epoch).
    pub(super) fn on_storage_done(&mut self, t: u64, host: usize, epoch: u32) {
        let done = match &mut self.hosts[host].role {
            Role::Server(s) if s.storage_epoch == epoch => s.storage.complete_oldest(),
            _ => None,
        };
        let Some((seq, last_index)) = done else {
            return;
        };
        self.note_persisted(t, host, last_index);
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
        trace!(self.tracer, t, "persisted h{host} seq={seq}");
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
    pub(super) fn after_handler(&mut self, start_ns: u64, now_ns: u64, host: usize) {
        let tx_ns = self.scenario.cpu.tx_ns_per_packet;
        let mut out = std::mem::take(&mut self.scratch_tx);
        let server = match &mut self.hosts[host].role {
            Role::Server(s) => s,
            Role::Client(_) => unreachable!(),
        };
        let persists = server.submit_persists(now_ns);
        let auth_ns = self.scenario.cpu.auth_ns_per_cluster_packet;
        // CPU spent on transmits so far (each packet's TX cost, and its MAC if a cluster one).
        let mut tx_total_ns = 0u64;
        while let Some(tx) = server.node.poll_transmit() {
            tx_total_ns += tx_ns;
            if auth_ns > 0 && is_cluster_packet(&tx.payload) {
                tx_total_ns += auth_ns;
            }
            if let Some(checks) = self.checks.as_mut() {
                checks.on_event(&Event::Transmit {
                    t_ns: now_ns,
                    host,
                    storage: &server.storage,
                    payload: &tx.payload,
                });
            }
            out.push((
                now_ns + tx.after_app_cpu_ns + tx_total_ns,
                tx.dst,
                tx.payload,
            ));
        }
        let end_ns = now_ns + server.node.take_app_cpu_ns() + tx_total_ns;
        server.cpu.charge(start_ns, end_ns);
        let events = self.drain_node_events(now_ns, host);
        let Role::Server(server) = &mut self.hosts[host].role else {
            unreachable!("host {host} is a client")
        };
        match server.rearm_timer(now_ns) {
            Rearm::Keep => {}
            Rearm::At(at, gen) => {
                let ev = Ev::NodeTimer {
                    host: host as u32,
                    gen,
                };
                self.q.schedule_keyed(host, at, ev);
            }
            Rearm::Cancel => self.q.cancel_keyed(host),
        }
        let epoch = server.storage_epoch;
        for at in persists.done_at {
            let host = host as u32;
            self.q.schedule(at, Ev::StorageDone { host, epoch });
        }
        for last_index in persists.durable_now {
            self.note_persisted(now_ns, host, last_index);
        }
        if self.observe {
            self.observations
                .extend(events.observed.into_iter().map(|what| Observation {
                    t_ns: now_ns,
                    host,
                    what: Observed::Node(what),
                }));
        }
        for l in events.trace {
            trace!(self.tracer, now_ns, "{l}");
        }
        for line in events.story {
            self.note_story(now_ns, line);
        }
        let src = SocketAddrV4::new(self.hosts[host].ip, SERVER_PORT);
        for (at, dst, payload) in out.drain(..) {
            self.send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        self.kick_app_core(end_ns, host);
    }

    /// Drains the node's events: hands them to the checkers, and returns what the trace,
    /// the story and (for tests) the observations get of them.
    fn drain_node_events(&mut self, now_ns: u64, host: usize) -> DrainedEvents {
        let tracing = self.tracer.is_on();
        let observe = self.observe;
        let Role::Server(server) = &mut self.hosts[host].role else {
            unreachable!("host {host} is a client")
        };
        let mut d = DrainedEvents::default();
        while let Some(ev) = server.node.poll_event() {
            match ev {
                NodeEvent::RoleChanged {
                    role: hovercraft_core::raft::Role::Leader,
                    term,
                    ..
                } => {
                    d.story.push(format!("node {host} leads term {term}"));
                }
                NodeEvent::SwitchPath { via_switch, .. } => d.story.push(if via_switch {
                    format!("node {host} returns to the switch path")
                } else {
                    format!("node {host} falls back to direct fan-out (switch silent)")
                }),
                NodeEvent::FollowerBehindCompaction {
                    follower,
                    needs,
                    first_kept,
                    ..
                } => d.story.push(format!(
                    "node {host} finds follower {follower} behind compaction (it needs {needs}, \
                     entries are kept from {first_kept}): it sends its snapshot"
                )),
                NodeEvent::SnapshotInstalled { index, bytes, .. } => d.story.push(format!(
                    "node {host} installs the leader's snapshot at index {index} ({bytes} bytes)"
                )),
                _ => {}
            }
            if tracing {
                d.trace.push(node_event(host, &ev));
            }
            if let Some(checks) = self.checks.as_mut() {
                checks.on_event(&Event::Node {
                    t_ns: now_ns,
                    host,
                    event: &ev,
                });
            }
            if observe {
                d.observed.push(ev);
            }
        }
        d
    }
}

/// What became of a handler's persist requests.
struct Persists {
    /// When the storage writes submitted now will complete.
    done_at: Vec<u64>,
    /// Last log indexes made durable at once (zero write latency).
    durable_now: Vec<u64>,
}

/// A handler's node events, as the trace, the story and the observations want them.
#[derive(Default)]
struct DrainedEvents {
    trace: Vec<String>,
    story: Vec<String>,
    observed: Vec<NodeEvent>,
}

impl ServerHost {
    /// Hands new durable state to storage. With zero write latency it is durable at once,
    /// inside this handler; otherwise a StorageDone event reports it later.
    ///
    /// Group commit: while a write is in flight, changes accumulate in the node and go out
    /// as one write when it completes (etcd's one-`Ready`-at-a-time loop). Submitting one
    /// write per change queued one write per client request at the leader: at 20 µs per
    /// write and ~47k req/s its device ran at 94%, so the backlog a slow-storage spike left
    /// never drained and its replies trailed by 30 ms for the rest of the run (harsh seed
    /// 3003).
    fn submit_persists(&mut self, now_ns: u64) -> Persists {
        let mut p = Persists {
            done_at: Vec::new(),
            durable_now: Vec::new(),
        };
        while !self.storage.is_busy() {
            let Some(req) = self.node.poll_persist() else {
                break;
            };
            let (seq, last_index) = (req.seq, req.last_index);
            match self.storage.submit(now_ns, req) {
                None => {
                    let now = Instant::from_ns(self.clock.to_node(now_ns));
                    self.node.handle_persisted(now, seq);
                    p.durable_now.push(last_index);
                }
                Some(at) => p.done_at.push(at),
            }
        }
        p
    }

    /// Re-arms the node's timer if its deadline moved: when the new timer event fires (never
    /// before `now_ns`) and its generation, or that no timer is due any more.
    fn rearm_timer(&mut self, now_ns: u64) -> Rearm {
        // The node's deadline is on its own (possibly skewed) clock.
        let clock = self.clock;
        let next = self
            .node
            .poll_timeout()
            .map(|i| clock.sim_time_of(i.as_ns()));
        if next == self.timer_deadline {
            return Rearm::Keep;
        }
        self.timer_deadline = next;
        self.timer_gen = self.timer_gen.wrapping_add(1);
        match next {
            Some(d) => Rearm::At(d.max(now_ns), self.timer_gen),
            None => Rearm::Cancel,
        }
    }
}

/// What to do with a host's pending node-timer event (one per host, keyed by host index).
enum Rearm {
    Keep,
    /// Replace it by one at this time with this generation.
    At(u64, u32),
    Cancel,
}

/// Whether an R2P2 packet is cluster traffic (a Raft message type), which the runtime
/// authenticates.
fn is_cluster_packet(payload: &[u8]) -> bool {
    matches!(
        hovercraft_core::wire::Header::decode(payload).map(|(h, _)| h.msg_type),
        Ok(hovercraft_core::wire::MsgType::RaftReq
            | hovercraft_core::wire::MsgType::RaftRep
            | hovercraft_core::wire::MsgType::RaftMsg)
    )
}
