//! The network model, like TigerBeetle's packet simulator: everything between one host's
//! core and another's.
//!
//! - [`addr`]: the simulated address plan.
//! - [`topology`]: hosts and switches, routes and multicast port sets.
//! - [`link`]: transmit queues (NIC and switch egress ports) serialized at link bandwidth.
//! - [`packet`]: frames in flight.
//! - [`nic`]: each host's NIC: TX into the network, RX out of it, steering onto RX rings.
//! - [`switch`]: store-and-forward switching and IP multicast replication.
//! - [`aggregator`]: the HovercRaft++ aggregator hosted in the ToR switch.
//! - [`rule`]: fault rules over links, each returning a verdict on a frame.
//!
//! A frame crosses: the sender's NIC TX queue (serialized at link bandwidth) → propagation →
//! the switch (store and forward: forwarding latency, then the egress port's output queue,
//! serialized again) → propagation → the receiver. IP multicast is replicated by the switch
//! onto every member port except the one it came in on.

pub mod addr;
pub mod aggregator;
pub mod link;
pub mod nic;
pub mod packet;
pub mod rule;
pub mod switch;
pub mod topology;

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap;

use hovercraft_core::rng::{stream_rng, Stream};

use crate::scenario::Scenario;
use aggregator::AggregatorHost;
use link::{Bandwidth, TxQueue};
use nic::Nic;
use packet::Slab;
use rule::Rules;
use switch::Switch;
use topology::Topology;

/// Bytes a UDP datagram adds on the wire besides its payload: UDP 8 + IPv4 20 + Ethernet
/// header 14 + FCS 4 + preamble and start delimiter 8 + inter-frame gap 12.
pub const WIRE_OVERHEAD_BYTES: u32 = 8 + 20 + 14 + 4 + 8 + 12;
/// Ethernet pads frames to 64 bytes (header + payload + FCS), so tiny datagrams cost more.
pub const MIN_FRAME_BYTES: u32 = 64;

/// Bytes a datagram with `udp_payload` bytes occupies on the wire (what serialization costs).
pub fn wire_bytes(udp_payload: usize) -> u32 {
    let frame = (udp_payload as u32 + 8 + 20 + 14 + 4).max(MIN_FRAME_BYTES);
    frame + 8 + 12
}

/// The network's events. Small on purpose: packets live in the slab and are named by index.
#[derive(Clone, Copy, Debug)]
pub enum NetEvent {
    SwitchArrive { switch: u32, in_port: u32, pkt: u32 },
    HostArrive { host: u32, pkt: u32 },
}

/// The whole network: NICs, switches, multicast groups, the aggregator and fault rules.
pub struct Network {
    pub(crate) topo: Topology,
    pub(crate) switches: Vec<Switch>,
    pub(crate) packets: Slab,
    pub(crate) nics: Vec<Nic>,
    ip_to_host: FxHashMap<Ipv4Addr, usize>,
    groups: FxHashMap<Ipv4Addr, Vec<usize>>,
    pub(crate) aggregator: AggregatorHost,
    rules: Rules,
    rng: rand_chacha::ChaCha8Rng,
    n_servers: usize,
    switch_latency_ns: u64,
    /// Measurement window, for the NICs' in-window TX counters.
    window_ns: (u64, u64),
    /// Frames lost to loss and fault rules.
    pub(crate) lost_frames: u64,
    /// Frames with no route (no such host, empty multicast group).
    pub(crate) unroutable: u64,
}

impl Network {
    /// The network of `scenario` for hosts at `host_ips` (servers first, then client
    /// machines).
    pub fn new(scenario: &Scenario, host_ips: &[Ipv4Addr]) -> Network {
        let n_servers = scenario.nodes as usize;
        let cfg = &scenario.network;
        let topo = Topology::build(cfg, host_ips.len());
        let bw = Bandwidth::from_gbps(cfg.bandwidth_gbps);
        let window_ns = (
            scenario.warmup_ms * 1_000_000,
            scenario.duration_ms * 1_000_000,
        );
        let nics = host_ips
            .iter()
            .map(|_| Nic::new(TxQueue::new(bw, cfg.nic_tx_queue_bytes).with_window(window_ns)))
            .collect();
        let switches = topo
            .switches
            .iter()
            .map(|s| Switch::new(s, cfg.switch_queue_bytes))
            .collect();
        let ip_to_host = host_ips
            .iter()
            .enumerate()
            .map(|(i, &ip)| (ip, i))
            .collect();
        let mut groups = FxHashMap::default();
        groups.insert(*addr::cluster_group().ip(), (0..n_servers).collect());
        Network {
            topo,
            switches,
            packets: Slab::default(),
            nics,
            ip_to_host,
            groups,
            aggregator: AggregatorHost::new(scenario),
            rules: Rules::new(cfg.canary == Some(crate::scenario::NetCanary::FaultDoubleDraw)),
            rng: stream_rng(scenario.seed, Stream::Network, 0),
            n_servers,
            switch_latency_ns: cfg.switch_latency_ns,
            window_ns,
            lost_frames: 0,
            unroutable: 0,
        }
    }

    /// Adds (or replaces) a multicast group delivered by the switch to `members` (host ids).
    pub fn set_multicast_group(&mut self, group: Ipv4Addr, members: Vec<usize>) {
        self.groups.insert(group, members);
    }

    /// Frames arriving at host `h` are lost with probability `p` (only multicast ones if
    /// `multicast_only`), drawn from the run's seeded network stream.
    pub fn set_rx_loss(&mut self, h: usize, p: f64, multicast_only: bool) {
        self.nics[h].rx_loss = (p > 0.0).then_some((p, multicast_only));
    }

    /// Adds a fault rule, evaluated after the ones already in force.
    pub fn add_rule(&mut self, rule: Box<dyn rule::Rule>) {
        self.rules.push(rule);
    }

    /// Times a fault rule judged a frame twice on one link traversal (the fault model's
    /// invariant: always 0).
    pub fn rejudged_frames(&self) -> u64 {
        self.rules.rejudged
    }

    /// Total frames dropped at switch output queues so far.
    pub fn switch_queue_drops(&self) -> u64 {
        self.switches
            .iter()
            .flat_map(|s| &s.ports)
            .map(|p| p.stats.drops)
            .sum()
    }
}
