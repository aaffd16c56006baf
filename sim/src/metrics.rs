//! Run metrics and the summary written to `summary.json`.
//!
//! Latency is measured at the client, from the moment a request is handed to the client NIC
//! to the arrival of its last reply packet. Only requests *sent* inside the measurement
//! window [warmup, duration) are measured, including those answered after the window closes,
//! so an overloaded run reports its real queueing delay. Throughput counts replies *received*
//! inside the window. The client-side accounting ([`Outcomes`]) and the summary types shared
//! with the real runtime live in the core.

use serde::Serialize;

use crate::cpu::CpuStats;
use crate::network::link::TxStats;
use hovercraft_core::node::NodeCounters;
use hovercraft_core::r2p2::client::ClientStats;
use hovercraft_core::raft::unordered::UnorderedStats;
use hovercraft_core::raft::{ReplicaCounters, Role};

pub use hovercraft_core::loadclient::Outcomes;
pub use hovercraft_core::summary::{round3, LatencyUs, Timeline, TimelineBucket, TimelinePoint};

/// The clients' outcomes, plus what only the simulated network sees.
pub struct Metrics {
    pub outcomes: Outcomes,
    /// Datagrams to a client port that does not exist, or to no host at all.
    pub unroutable: u64,
}

impl Metrics {
    pub fn new(window_start_ns: u64, window_end_ns: u64, max_latency_ns: u64) -> Self {
        Metrics {
            outcomes: Outcomes::new(window_start_ns, window_end_ns, max_latency_ns),
            unroutable: 0,
        }
    }
}

// The world reads the outcome counters through `metrics.` as before.
impl std::ops::Deref for Metrics {
    type Target = Outcomes;
    fn deref(&self) -> &Outcomes {
        &self.outcomes
    }
}

impl std::ops::DerefMut for Metrics {
    fn deref_mut(&mut self) -> &mut Outcomes {
        &mut self.outcomes
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NetworkSummary {
    /// Frames dropped because a host NIC TX queue was full.
    pub nic_tx_drops: u64,
    /// Frames dropped because a switch output queue was full.
    pub switch_queue_drops: u64,
    /// Packets dropped because a server's RX ring (client or cluster ring) was full.
    pub rx_queue_drops: u64,
    /// Frames to an address no host has.
    pub unroutable: u64,
    /// Frames lost by injected link loss.
    pub lost: u64,
    pub switch_frames: u64,
    pub switch_bytes: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HostSummary {
    pub host: String,
    pub addr: String,
    pub packets_rx: u64,
    pub bytes_rx: u64,
    pub packets_tx: u64,
    pub bytes_tx: u64,
    /// Frames and wire bytes sent inside the measurement window.
    pub packets_tx_in_window: u64,
    pub bytes_tx_in_window: u64,
    pub nic: TxStats,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeSummary {
    pub id: u8,
    pub role: &'static str,
    #[serde(flatten)]
    pub host: HostSummary,
    /// Share of the measurement window the node's (network and protocol) core was busy.
    pub cpu_busy_fraction: f64,
    /// Share of the measurement window the node's NIC was transmitting.
    pub nic_busy_fraction: f64,
    /// Same for the application core, when it is separate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_core_busy_fraction: Option<f64>,
    pub cpu: CpuStats,
    pub protocol: NodeCounters,
    pub app_digest: String,
    /// Replicated modes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaSummary>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReplicaSummary {
    pub role: Role,
    pub term: u64,
    pub last_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Entries assigned to this node as replier and not yet applied (as the leader sees it;
    /// only meaningful on the leader).
    pub outstanding_replies: Vec<usize>,
    pub counters: ReplicaCounters,
    pub unordered: UnorderedStats,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClientMachineSummary {
    #[serde(flatten)]
    pub host: HostSummary,
    pub r2p2: ClientStats,
}

/// Filled in by the CLI: how to regenerate this result. The only non-deterministic fields
/// (wall time, speed) live here.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Manifest {
    /// The command line as typed, joined by spaces (`argv` has it word by word).
    pub command: String,
    pub argv: Vec<String>,
    pub working_directory: String,
    pub scenario_file: String,
    /// The scenario as it ran (every default filled in, `--seed` applied).
    pub scenario: serde_json::Value,
    /// Revision the binary was built from (`-dirty`: with uncommitted changes).
    pub git_revision: String,
    /// `rustc --version` of the build.
    pub toolchain: String,
    pub wall_ms: u64,
    pub simulated_ns_per_wall_s: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub mode: &'static str,
    pub nodes: u32,
    pub duration_ms: u64,
    pub warmup_ms: u64,
    pub offered_rps: f64,
    pub completed_rps: f64,
    /// Measured requests answered with DROP or never answered (timed out).
    pub dropped: u64,
    pub dropped_by_server: u64,
    pub timed_out: u64,
    /// Sends (in the window) the client refused: too many requests in flight on its port.
    pub client_refused: u64,
    pub measured_requests: u64,
    pub latency_us: LatencyUs,
    pub slo_p99_us: Option<f64>,
    pub simulated_ns: u64,
    pub events: u64,
    pub network: NetworkSummary,
    pub per_node: Vec<NodeSummary>,
    pub clients: Vec<ClientMachineSummary>,
    /// What happened, in order: faults, leader changes, switch-path changes.
    pub story: Vec<StoryLine>,
    /// For each fault that took the leader away: time until the next leader, in µs.
    pub failover_us: Vec<f64>,
    /// Per-bucket completions and latency, when the scenario sets `timeline_bucket_ms`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    pub manifest: Manifest,
    /// Checked runs (scenarios with faults): every checker's verdict, by checker name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<std::collections::BTreeMap<String, crate::check::CheckVerdict>>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoryLine {
    pub t_us: f64,
    pub what: String,
}
