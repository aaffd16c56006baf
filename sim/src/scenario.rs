//! Scenario files (DESIGN.md §6): one JSON object per run. Unknown fields are rejected, and
//! every error names the file, the field path and the reason, on one line.
//!
//! The schema, with defaults and units, is documented in `scenarios/README.md`; the defaults
//! below are the single source of truth for it.

use std::path::Path;

use hovercraft_core::node::Mode;
use hovercraft_core::raft::RaftConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the run; results go to `results/<name>/` by default.
    pub name: String,
    /// Master seed: every random stream of the run is derived from it.
    #[serde(default)]
    pub seed: u64,
    pub mode: Mode,
    /// Server nodes (replicas). `unreplicated` takes exactly 1.
    pub nodes: u32,
    /// Simulated time during which clients send, in ms.
    pub duration_ms: u64,
    /// Requests sent before this time are not measured, in ms.
    #[serde(default)]
    pub warmup_ms: u64,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub cpu: CpuConfig,
    #[serde(default)]
    pub clients: ClientsConfig,
    pub workload: WorkloadConfig,
    /// Raft/HovercRaft protocol constants (replicated modes).
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Replicated modes: node 0 campaigns at time 0 instead of waiting for an election
    /// timeout, so measurements do not start with 10–20 ms without a leader.
    #[serde(default = "default_true")]
    pub bootstrap_leader: bool,
    /// Timed faults: what breaks when (the failure story of the run).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The p99 latency objective, in µs (used by SLO searches; reported in the summary).
    #[serde(default)]
    pub slo_p99_us: Option<f64>,
    /// When set, the summary carries a `timeline`: completions and latency per bucket of
    /// this many ms of simulated time (for plots over time, e.g. across a failover).
    #[serde(default)]
    pub timeline_bucket_ms: Option<u64>,
}

/// One timed fault: what breaks, and when (`at_ms`, simulated ms from the start). Faults
/// with `heal_ms` last until then; they compose (several may be active at once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Server `node` crashes: it receives and runs nothing, and writes in flight are lost.
    CrashNode { at_ms: u64, node: u32 },
    /// Server `node` restarts from what its storage made durable (term, vote, log).
    RestartNode { at_ms: u64, node: u32 },
    /// The switch's HovercRaft++ aggregator stops (packets to it are dropped).
    AggregatorDown { at_ms: u64 },
    /// The aggregator restarts with empty registers.
    AggregatorUp { at_ms: u64 },
    /// Servers in different groups cannot reach each other (both directions). Servers not
    /// listed form one more group. Clients and the switch aggregator reach everyone.
    Partition {
        at_ms: u64,
        heal_ms: u64,
        groups: Vec<Vec<u32>>,
    },
    /// Whoever leads at `at_ms` crashes; it restarts from storage at `restart_ms`.
    CrashLeader { at_ms: u64, restart_ms: u64 },
    /// Whoever leads at `at_ms` is cut off from every other server until `heal_ms`: in both
    /// directions, or only what it receives (`inbound`: it can send but not hear), or only
    /// what it sends (`outbound`).
    IsolateLeader {
        at_ms: u64,
        heal_ms: u64,
        #[serde(default, skip_serializing_if = "Direction::is_both")]
        direction: Direction,
    },
    /// Frames from server `from` to server `to` are lost (the other direction works).
    OneWay {
        at_ms: u64,
        heal_ms: u64,
        from: u32,
        to: u32,
    },
    /// Frames arriving at server `node` are lost, duplicated or delayed (delays up to
    /// `delay_max_us`, uniformly, which also reorders them).
    LinkChaos {
        at_ms: u64,
        heal_ms: u64,
        node: u32,
        loss: f64,
        duplicate: f64,
        delay_max_us: u64,
        /// Delays are drawn in `delay_min_us..=delay_max_us`: a high minimum clogs the links
        /// (everything arrives late).
        #[serde(default, skip_serializing_if = "is_zero")]
        delay_min_us: u64,
    },
    /// Storage writes of server `node` take `write_latency_ns` until `heal_ms`.
    StorageSlow {
        at_ms: u64,
        heal_ms: u64,
        node: u32,
        write_latency_ns: u64,
    },
    /// From `at_ms`, server `node`'s clock runs fast (ppm > 0) or slow (ppm < 0).
    ClockSkew { at_ms: u64, node: u32, ppm: i64 },
}

impl Fault {
    pub fn at_ms(&self) -> u64 {
        match *self {
            Fault::CrashNode { at_ms, .. }
            | Fault::RestartNode { at_ms, .. }
            | Fault::AggregatorDown { at_ms }
            | Fault::AggregatorUp { at_ms }
            | Fault::Partition { at_ms, .. }
            | Fault::IsolateLeader { at_ms, .. }
            | Fault::CrashLeader { at_ms, .. }
            | Fault::OneWay { at_ms, .. }
            | Fault::LinkChaos { at_ms, .. }
            | Fault::StorageSlow { at_ms, .. }
            | Fault::ClockSkew { at_ms, .. } => at_ms,
        }
    }

    /// When the fault ends (for faults that heal).
    pub fn heal_ms(&self) -> Option<u64> {
        match *self {
            Fault::CrashLeader {
                restart_ms: heal_ms,
                ..
            }
            | Fault::Partition { heal_ms, .. }
            | Fault::IsolateLeader { heal_ms, .. }
            | Fault::OneWay { heal_ms, .. }
            | Fault::LinkChaos { heal_ms, .. }
            | Fault::StorageSlow { heal_ms, .. } => Some(heal_ms),
            _ => None,
        }
    }

    /// Servers the fault names.
    fn nodes(&self) -> Vec<u32> {
        match self {
            Fault::CrashNode { node, .. }
            | Fault::RestartNode { node, .. }
            | Fault::LinkChaos { node, .. }
            | Fault::StorageSlow { node, .. }
            | Fault::ClockSkew { node, .. } => vec![*node],
            Fault::OneWay { from, to, .. } => vec![*from, *to],
            Fault::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
            _ => Vec::new(),
        }
    }
}

/// Which traffic of a node a fault cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    /// What it receives from the other servers.
    Inbound,
    /// What it sends to the other servers.
    Outbound,
}

impl Direction {
    fn is_both(&self) -> bool {
        *self == Direction::Both
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn default_true() -> bool {
    true
}

/// The storage device each replica persists its term, vote and log to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Time for one write (one at a time; changes made meanwhile go out together in the next:
    /// group commit), in ns. 0 = durable at once, like the
    /// authors' in-memory log; messages that depend on the write still wait for it.
    pub write_latency_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologyKind {
    /// All hosts (servers and client machines) on one top-of-rack switch.
    Star,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub topology: TopologyKind,
    /// Bandwidth of every link (host NICs and switch ports), in Gb/s.
    pub bandwidth_gbps: f64,
    /// One-way propagation delay of a link (cable + PHY), in ns.
    pub link_latency_ns: u64,
    /// Switch forwarding latency (ingress to egress queue), in ns. Tofino: < 1 µs.
    pub switch_latency_ns: u64,
    /// Output queue of one switch port, in bytes; a frame that does not fit is dropped.
    pub switch_queue_bytes: u64,
    /// NIC transmit queue of one host, in bytes; a frame that does not fit is dropped.
    pub nic_tx_queue_bytes: u64,
    /// HovercRaft++: the aggregator's pipeline latency in the switch, in ns.
    pub aggregator_latency_ns: u64,
    /// HovercRaft++: register slots for AppendEntries in flight.
    pub aggregator_slots: usize,
    /// Probability that one copy of a multicast frame is lost on its way to one server, for
    /// the whole run, 0..=1 (the loss the paper's recovery protocol exists for).
    pub multicast_loss: f64,
    /// Test only: re-introduce a known bug of the simulator's fault model, to prove the
    /// swarm catches it (`fault-double-draw`). Not for experiments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<NetCanary>,
}

/// Known bugs of the fault model that `check --canary` can switch back on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetCanary {
    /// Fault rules judge a held-back frame or a duplicate copy again when it re-arrives.
    FaultDoubleDraw,
}

impl NetCanary {
    pub const ALL: [NetCanary; 1] = [NetCanary::FaultDoubleDraw];

    pub fn name(self) -> &'static str {
        match self {
            NetCanary::FaultDoubleDraw => "fault-double-draw",
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            topology: TopologyKind::Star,
            bandwidth_gbps: 10.0,
            link_latency_ns: 1_000,
            switch_latency_ns: 500,
            switch_queue_bytes: 512 * 1024,
            nic_tx_queue_bytes: 4 * 1024 * 1024,
            aggregator_latency_ns: 400,
            aggregator_slots: 64,
            multicast_loss: 0.0,
            canary: None,
        }
    }
}

/// Where a server runs the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppCore {
    /// On a core of its own, beside the core that runs the network and protocol path (the
    /// authors' servers). Replies are sent by the application core.
    Separate,
    /// On the same single core as everything else (run to completion).
    Shared,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    pub app_core: AppCore,
    /// Requests waiting for a separate application core; beyond it they are refused (DROP).
    pub app_queue_requests: u32,
    /// CPU time to receive and parse one packet, in ns.
    pub rx_ns_per_packet: u64,
    /// CPU time to build and send one packet, in ns.
    pub tx_ns_per_packet: u64,
    /// Extra CPU time per cluster packet (Raft types, sent or received) for the runtime's
    /// authentication (a BLAKE3 keyed MAC and the replay window; `runtime-dpdk/src/auth.rs`).
    /// 0 (the default): the model of an unauthenticated cluster, as the paper's. Measured by
    /// `cargo bench -p hovercraft-runtime --bench mac`: about 190 ns per 100-byte message on
    /// the development machine. Client traffic is never authenticated.
    pub auth_ns_per_cluster_packet: u64,
    /// Packets waiting for the core (the NIC RX ring; with `cluster_rx_queue: priority`, the
    /// ring for client traffic); beyond it packets are dropped.
    pub rx_queue_packets: u32,
    /// Whether the NIC steers cluster traffic (from peer replicas and the switch aggregator)
    /// into a ring of its own (see `cpu.rs`).
    pub cluster_rx_queue: ClusterRxQueue,
    /// Size of that cluster ring, in packets.
    pub cluster_rx_queue_packets: u32,
    /// With two rings, the core takes at most this many packets from one ring while the other
    /// has packets waiting (a poll loop's `rx_burst` size).
    pub rx_burst_packets: u32,
}

/// How the NIC queues cluster traffic for the network core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterRxQueue {
    /// A ring of its own (flow-director rule on the source address); the core polls the two
    /// rings in turn, in bursts.
    Separate,
    /// One FIFO ring for everything.
    Shared,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            app_core: AppCore::Separate,
            app_queue_requests: 4096,
            rx_ns_per_packet: 500,
            tx_ns_per_packet: 300,
            auth_ns_per_cluster_packet: 0,
            // The authors' ring size (see below). Under overload the client ring is full, and its
            // depth × the per-packet cost is how long the leader takes to order a request; it must
            // stay well under the followers' unordered-buffer lifetime (`unordered_capacity` / request
            // rate), or every ordered request needs a body recovery. 4096 did not (2.2 ms at 1.8M
            // req/s, against ~3 ms of queue at a saturated leader).
            rx_queue_packets: 1024,
            cluster_rx_queue: ClusterRxQueue::Separate,
            // The authors' servers' RX ring size and burst (ETH_DEV_RX_QUEUE_SZ, BATCH_SIZE in
            // r2p2's dpdk_config.h).
            cluster_rx_queue_packets: 1024,
            rx_burst_packets: 32,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Load-generator machines; the offered rate is split evenly over them.
    pub machines: u32,
    /// UDP ports (independent R2P2 clients) per machine; requests go round robin.
    pub ports_per_machine: u32,
    /// A request with no answer after this long counts as timed out, in ms.
    pub timeout_ms: u64,
    /// Requests in flight per port; beyond it a send is refused and counted.
    pub max_outstanding_per_port: u32,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            machines: 4,
            ports_per_machine: 8,
            timeout_ms: 50,
            max_outstanding_per_port: 4096,
        }
    }
}

pub use hovercraft_core::workload::{
    KeyDistribution, ServiceTime, WorkloadConfig, YcsbConfig, MAX_YCSB_RECORDS,
};

pub use hovercraft_core::workload::ScenarioError;

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            field: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_json(&file, &text)
    }

    /// Parses and validates scenario JSON; `file` names the source in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario =
            serde_path_to_error::deserialize(de).map_err(|e| ScenarioError {
                file: file.to_string(),
                field: e.path().to_string(),
                reason: hovercraft_core::workload::file_error::one_line(&e.inner().to_string()),
            })?;
        scenario
            .validate()
            .map_err(|(field, reason)| ScenarioError {
                file: file.to_string(),
                field: field.to_string(),
                reason,
            })?;
        Ok(scenario)
    }

    /// Checks what the types cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        fn positive(field: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if !(v.is_finite() && v > 0.0) {
                return Err((field, format!("must be a positive number (got {v})")));
            }
            Ok(())
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
        {
            return Err((
                "name",
                format!(
                    "must be non-empty and use only letters, digits, '-', '_', '.', '+' (got {:?}): it names the results folder",
                    self.name
                ),
            ));
        }
        if self.nodes == 0 {
            return Err(("nodes", "must be at least 1 (got 0)".into()));
        }
        if self.nodes > 64 {
            return Err(("nodes", format!("at most 64 nodes (got {})", self.nodes)));
        }
        if self.mode == Mode::Unreplicated && self.nodes != 1 {
            return Err((
                "nodes",
                format!(
                    "mode unreplicated runs exactly 1 server (got {})",
                    self.nodes
                ),
            ));
        }
        if self.mode == Mode::HovercraftPlusPlus
            && self.nodes as usize > hovercraft_core::wire::raft::MAX_GROUP_PEERS
        {
            return Err((
                "nodes",
                format!(
                    "hovercraft++ aggregates at most {} nodes in the switch",
                    hovercraft_core::wire::raft::MAX_GROUP_PEERS
                ),
            ));
        }
        if self.network.aggregator_slots == 0 || self.network.aggregator_slots > 65536 {
            return Err(("network.aggregator_slots", "must be 1..=65536".into()));
        }
        if !(0.0..=1.0).contains(&self.network.multicast_loss) {
            return Err((
                "network.multicast_loss",
                format!(
                    "must be a probability in 0..=1 (got {})",
                    self.network.multicast_loss
                ),
            ));
        }
        if let Some(b) = self.timeline_bucket_ms {
            if b == 0 || b > self.duration_ms.max(1) {
                return Err((
                    "timeline_bucket_ms",
                    format!("must be 1..=duration_ms (got {b})"),
                ));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.at_ms() > self.duration_ms {
                return Err((
                    "faults",
                    format!("fault #{i} at {} ms is after duration_ms", f.at_ms()),
                ));
            }
            for node in f.nodes() {
                if node >= self.nodes {
                    return Err((
                        "faults",
                        format!(
                            "fault #{i} names node {node}, but there are {} nodes",
                            self.nodes
                        ),
                    ));
                }
            }
            if let Some(heal) = f.heal_ms() {
                if heal < f.at_ms() {
                    return Err((
                        "faults",
                        format!("fault #{i} heals at {heal} ms, before it starts"),
                    ));
                }
            }
            match *f {
                Fault::LinkChaos {
                    loss,
                    duplicate,
                    delay_max_us,
                    delay_min_us,
                    ..
                } => {
                    if delay_min_us > delay_max_us {
                        return Err((
                            "faults",
                            format!("fault #{i}: delay_min_us above delay_max_us"),
                        ));
                    }
                    if !(0.0..=1.0).contains(&loss) || !(0.0..=1.0).contains(&duplicate) {
                        return Err((
                            "faults",
                            format!("fault #{i}: loss and duplicate are probabilities in 0..=1"),
                        ));
                    }
                    if delay_max_us > 1_000_000 {
                        return Err(("faults", format!("fault #{i}: delay_max_us at most 1 s")));
                    }
                }
                Fault::ClockSkew { ppm, .. } if ppm.abs() > 100_000 => {
                    return Err((
                        "faults",
                        format!("fault #{i}: clock skew within ±100000 ppm (±10%)"),
                    ));
                }
                _ => {}
            }
            if matches!(f, Fault::AggregatorDown { .. } | Fault::AggregatorUp { .. })
                && self.mode != Mode::HovercraftPlusPlus
            {
                return Err((
                    "faults",
                    format!("fault #{i}: the aggregator exists only in hovercraft++ mode"),
                ));
            }
        }
        // The bounds of the raft section belong to core (the runtime checks the same).
        self.raft.validate().map_err(|e| (e.field, e.reason))?;
        if self.duration_ms == 0 {
            return Err(("duration_ms", "must be at least 1 ms".into()));
        }
        if self.duration_ms > 3_600_000 {
            return Err(("duration_ms", "at most one simulated hour".into()));
        }
        if self.warmup_ms >= self.duration_ms {
            return Err((
                "warmup_ms",
                format!(
                    "must be less than duration_ms ({} >= {})",
                    self.warmup_ms, self.duration_ms
                ),
            ));
        }
        positive("network.bandwidth_gbps", self.network.bandwidth_gbps)?;
        if self.network.bandwidth_gbps > 1000.0 {
            return Err(("network.bandwidth_gbps", "at most 1000 Gb/s".into()));
        }
        if self.cpu.app_queue_requests == 0 {
            return Err(("cpu.app_queue_requests", "must be at least 1".into()));
        }
        if self.cpu.rx_queue_packets == 0 {
            return Err(("cpu.rx_queue_packets", "must be at least 1".into()));
        }
        if self.cpu.cluster_rx_queue_packets == 0 {
            return Err(("cpu.cluster_rx_queue_packets", "must be at least 1".into()));
        }
        if self.cpu.rx_burst_packets == 0 {
            return Err(("cpu.rx_burst_packets", "must be at least 1".into()));
        }
        if self.clients.machines == 0 || self.clients.machines > 200 {
            return Err((
                "clients.machines",
                format!("must be 1..=200 (got {})", self.clients.machines),
            ));
        }
        if self.clients.ports_per_machine == 0 || self.clients.ports_per_machine > 1024 {
            return Err((
                "clients.ports_per_machine",
                format!("must be 1..=1024 (got {})", self.clients.ports_per_machine),
            ));
        }
        if self.clients.timeout_ms == 0 {
            return Err(("clients.timeout_ms", "must be at least 1 ms".into()));
        }
        if self.clients.max_outstanding_per_port == 0
            || self.clients.max_outstanding_per_port > 65536
        {
            return Err((
                "clients.max_outstanding_per_port",
                "must be 1..=65536 (req_id is 16 bits)".into(),
            ));
        }
        self.workload.validate()?;
        if let Some(slo) = self.slo_p99_us {
            positive("slo_p99_us", slo)?;
        }
        Ok(())
    }
}

/// The quickstart scenario, embedded so `run` works even without the file at hand.
pub const QUICKSTART_JSON: &str = include_str!("../../scenarios/quickstart.json");

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's load generator refuses top-level fields not in core's list: it must name
    /// exactly this type's fields.
    #[test]
    fn core_lists_exactly_the_scenario_fields() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/quickstart.json");
        let mut s = Scenario::load(std::path::Path::new(path)).unwrap();
        s.slo_p99_us = Some(500.0);
        s.timeline_bucket_ms = Some(1);
        let v = serde_json::to_value(&s).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut listed = hovercraft_core::workload::SCENARIO_FIELDS.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed);
    }
    use hovercraft_core::app::kv::KvCosts;

    fn err(json: &str) -> String {
        Scenario::from_json("s.json", json).unwrap_err().to_string()
    }

    const OK: &str = r#"{"name":"t","mode":"unreplicated","nodes":1,"duration_ms":10,
        "workload":{"rate_rps":1000}}"#;

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = Scenario::from_json("s.json", OK).unwrap();
        assert_eq!(s.network.bandwidth_gbps, 10.0);
        assert_eq!(s.workload.service_time, ServiceTime::Fixed { ns: 10_000 });
    }

    #[test]
    fn quickstart_parses() {
        Scenario::from_json("scenarios/quickstart.json", QUICKSTART_JSON).unwrap();
    }

    const KV: &str = r#"{"name":"t","mode":"unreplicated","nodes":1,"duration_ms":10,
        "workload":{"app":"kv","rate_rps":1000,"ycsb":{}}}"#;

    #[test]
    fn ycsb_defaults_and_node_costs() {
        let s = Scenario::from_json("s.json", KV).unwrap();
        let y = s.workload.ycsb.clone().unwrap();
        assert_eq!(y, YcsbConfig::default());
        assert_eq!(
            (
                y.records,
                y.scan_max_records,
                y.insert_fraction,
                y.zipf_theta
            ),
            (1_000_000, 10, 0.05, 0.99)
        );
        assert_eq!(y.key_distribution, KeyDistribution::Uniform);
        assert_eq!(s.workload.kv_costs, KvCosts::default());
        let node = s.workload.node_kv_costs();
        assert_eq!(node.preloaded_ycsb_records, 1_000_000);
        assert_eq!(node.op_ns, KvCosts::default().op_ns);
        // Without the section, nothing is preloaded; kv_costs overrides field by field.
        let s = Scenario::from_json(
            "s.json",
            &KV.replace(r#""ycsb":{}"#, r#""kv_costs":{"op_ns":7}"#),
        )
        .unwrap();
        assert_eq!(s.workload.node_kv_costs().preloaded_ycsb_records, 0);
        assert_eq!(s.workload.node_kv_costs().op_ns, 7);
        assert_eq!(
            s.workload.node_kv_costs().per_record_ns,
            KvCosts::default().per_record_ns
        );
        let zipf = KV.replace(
            r#""ycsb":{}"#,
            r#""ycsb":{"key_distribution":"zipfian","zipf_theta":0.5,"records":50}"#,
        );
        let y = Scenario::from_json("s.json", &zipf)
            .unwrap()
            .workload
            .ycsb
            .unwrap();
        assert_eq!(
            (y.key_distribution, y.zipf_theta, y.records),
            (KeyDistribution::Zipfian, 0.5, 50)
        );
    }

    #[test]
    fn ycsb_and_kv_cost_errors_name_the_field() {
        let with = |ycsb: &str| err(&KV.replace(r#""ycsb":{}"#, ycsb));
        for (patch, field) in [
            (r#""ycsb":{"records":0}"#, "workload.ycsb.records"),
            (r#""ycsb":{"records":10000001}"#, "workload.ycsb.records"),
            (
                r#""ycsb":{"records":11},"kv_costs":{"max_keys":10}"#,
                "workload.ycsb.records",
            ),
            (
                r#""ycsb":{"scan_max_records":0}"#,
                "workload.ycsb.scan_max_records",
            ),
            (
                r#""ycsb":{"scan_max_records":1001}"#,
                "workload.ycsb.scan_max_records",
            ),
            (
                r#""ycsb":{"insert_fraction":1.5}"#,
                "workload.ycsb.insert_fraction",
            ),
            (
                r#""ycsb":{"insert_fraction":-0.1}"#,
                "workload.ycsb.insert_fraction",
            ),
            (r#""ycsb":{"zipf_theta":0}"#, "workload.ycsb.zipf_theta"),
            (r#""ycsb":{"zipf_theta":11}"#, "workload.ycsb.zipf_theta"),
            (
                r#""ycsb":{"key_distribution":"hotspot"}"#,
                "workload.ycsb.key_distribution",
            ),
            (r#""ycsb":{"scans":1}"#, "workload.ycsb"),
            (
                r#""ycsb":{},"read_only_fraction":0.5"#,
                "workload.read_only_fraction",
            ),
            (r#""ycsb":{},"kv_keys":3"#, "workload.kv_keys"),
            (
                r#""ycsb":{},"kv_costs":{"preloaded_ycsb_records":5}"#,
                "workload.kv_costs.preloaded_ycsb_records",
            ),
            (
                r#""kv_costs":{"preloaded_ycsb_records":5,"max_keys":4}"#,
                "workload.kv_costs.preloaded_ycsb_records",
            ),
            (
                r#""kv_costs":{"op_ns":1000000001}"#,
                "workload.kv_costs.op_ns",
            ),
            (
                r#""kv_costs":{"per_record_ns":1000001}"#,
                "workload.kv_costs.per_record_ns",
            ),
            (
                r#""kv_costs":{"per_kib_ns":1000001}"#,
                "workload.kv_costs.per_kib_ns",
            ),
            (
                r#""kv_costs":{"max_keys":1000000001}"#,
                "workload.kv_costs.max_keys",
            ),
            (r#""kv_costs":{"bogus":1}"#, "workload.kv_costs"),
        ] {
            let e = with(patch);
            assert!(e.contains(&format!("field `{field}")), "{patch}: {e}");
        }
        // The same values are fine where they belong: zeros, and matching preload counts.
        let ok = KV.replace(
            r#""ycsb":{}"#,
            r#""ycsb":{"records":5,"insert_fraction":1},"kv_costs":{"op_ns":0,"per_record_ns":0,"per_kib_ns":0,"preloaded_ycsb_records":5}"#,
        );
        Scenario::from_json("s.json", &ok).unwrap();
        // YCSB needs the kv app.
        let e = err(&KV.replace(r#""app":"kv","#, ""));
        assert!(e.contains("field `workload.ycsb`"), "{e}");
    }

    /// The raft section is checked by core's `RaftConfig::validate`; the message keeps the
    /// scenario format: file, field, reason, one line.
    #[test]
    fn raft_errors_name_file_field_and_reason() {
        let replicated = OK
            .replace("unreplicated", "hovercraft")
            .replace("\"nodes\":1", "\"nodes\":3");
        Scenario::from_json("s.json", &replicated).unwrap();
        for (raft, field, reason) in [
            (
                r#"{"max_entries_per_append":5000}"#,
                "raft.max_entries_per_append",
                "must be 1..=1024 (got 5000)",
            ),
            (
                r#"{"max_entries_per_append":0}"#,
                "raft.max_entries_per_append",
                "must be 1..=1024 (got 0)",
            ),
            (
                r#"{"flow_control_threshold":0}"#,
                "raft.flow_control_threshold",
                "must be at least 1",
            ),
            (
                r#"{"replier_bound":0}"#,
                "raft.replier_bound",
                "must be at least 1",
            ),
            (
                r#"{"election_timeout_min_us":18446744073709551615,"election_timeout_max_us":18446744073709551615}"#,
                "raft.election_timeout_min_us",
                "must be 1..=3600000000 µs (got 18446744073709551615)",
            ),
            (
                r#"{"election_timeout_max_us":10000}"#,
                "raft.election_timeout_max_us",
                "must be above raft.election_timeout_min_us",
            ),
            (
                r#"{"heartbeat_us":10000}"#,
                "raft.heartbeat_us",
                "must be above 0 and below raft.election_timeout_min_us",
            ),
            (
                r#"{"append_retry_us":0}"#,
                "raft.append_retry_us",
                "must be above 0",
            ),
        ] {
            let json = replicated.replace("\"workload\"", &format!("\"raft\":{raft},\"workload\""));
            assert_eq!(
                err(&json),
                format!("s.json: field `{field}`: {reason}"),
                "{raft}"
            );
        }
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = err(
            r#"{"name":"t","mode":"unreplicated","nodes":1,"duration_ms":10,"bogus":1,
            "workload":{"rate_rps":1000}}"#,
        );
        assert!(e.starts_with("s.json: "), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = err(&OK.replace("1000", "-5"));
        assert_eq!(
            e,
            "s.json: field `workload.rate_rps`: must be a positive number (got -5)"
        );
        let e = err(&OK.replace("\"nodes\":1", "\"nodes\":0"));
        assert!(e.contains("field `nodes`"), "{e}");
        let e = err(&OK.replace("\"nodes\":1", "\"nodes\":-1"));
        assert!(e.contains("field `nodes`"), "{e}");
        let e = err(r#"{"name":"t", "mode": "#);
        assert!(e.starts_with("s.json: "), "{e}");
        let e = err(&OK.replace(
            "{\"rate_rps\":1000}",
            "{\"rate_rps\":1000,\"service_time\":{\"kind\":\"fixed\",\"nz\":3}}",
        ));
        assert!(e.contains("workload.service_time"), "{e}");
        assert!(!e.contains('\n'));
    }
}
