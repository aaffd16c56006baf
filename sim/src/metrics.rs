//! Run metrics and the summary written to `summary.json`.
//!
//! Latency is measured at the client, from the moment a request is handed to the client NIC
//! to the arrival of its last reply packet. Only requests *sent* inside the measurement
//! window [warmup, duration) are measured, including those answered after the window closes,
//! so an overloaded run reports its real queueing delay. Throughput counts replies *received*
//! inside the window.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::CpuStats;
use crate::network::link::TxStats;
use hovercraft_core::node::NodeCounters;
use hovercraft_core::r2p2::client::ClientStats;
use hovercraft_core::raft::unordered::UnorderedStats;
use hovercraft_core::raft::{ReplicaCounters, Role};

pub struct Metrics {
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub latency_ns: Histogram<u64>,
    pub sent_in_window: u64,
    pub completed_in_window: u64,
    pub measured_dropped: u64,
    pub measured_timed_out: u64,
    pub client_refused: u64,
    pub unroutable: u64,
    /// Per-bucket completions and latency over the whole run, when the scenario asks.
    pub timeline: Option<Timeline>,
}

/// Completions and latency per bucket of simulated time, bucketed by when the reply (or the
/// DROP, or the timeout) reached the client, so a plot shows what clients saw at that time.
pub struct Timeline {
    pub bucket_ns: u64,
    pub buckets: Vec<TimelineBucket>,
}

pub struct TimelineBucket {
    pub completed: u64,
    pub dropped: u64,
    pub timed_out: u64,
    pub latency_ns: Histogram<u64>,
}

impl Timeline {
    /// Buckets cover [0, end_ns); events past the end fall in the last bucket.
    pub fn new(bucket_ns: u64, end_ns: u64, max_latency_ns: u64) -> Self {
        let n = end_ns.div_ceil(bucket_ns.max(1)).max(1) as usize;
        Timeline {
            bucket_ns: bucket_ns.max(1),
            buckets: (0..n)
                .map(|_| TimelineBucket {
                    completed: 0,
                    dropped: 0,
                    timed_out: 0,
                    // Two significant digits: 1% resolution is plenty for a plot and keeps
                    // hundreds of buckets small.
                    latency_ns: Histogram::new_with_bounds(1, max_latency_ns.max(2), 2)
                        .expect("valid histogram bounds"),
                })
                .collect(),
        }
    }

    pub fn bucket(&mut self, t_ns: u64) -> &mut TimelineBucket {
        let i = ((t_ns / self.bucket_ns) as usize).min(self.buckets.len() - 1);
        &mut self.buckets[i]
    }

    pub fn summary(&self) -> Vec<TimelinePoint> {
        let bucket_s = self.bucket_ns as f64 / 1e9;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let lat = LatencyUs::from_histogram(&b.latency_ns);
                TimelinePoint {
                    t_ms: round3((i as u64 * self.bucket_ns) as f64 / 1e6),
                    completed_rps: round3(b.completed as f64 / bucket_s),
                    dropped: b.dropped,
                    timed_out: b.timed_out,
                    p50_us: lat.p50,
                    p99_us: lat.p99,
                }
            })
            .collect()
    }
}

/// One bucket of the timeline in `summary.json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimelinePoint {
    /// Start of the bucket, in ms of simulated time.
    pub t_ms: f64,
    /// Replies received in the bucket, per second.
    pub completed_rps: f64,
    pub dropped: u64,
    pub timed_out: u64,
    /// Latency of the requests answered in the bucket.
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Metrics {
    pub fn new(window_start_ns: u64, window_end_ns: u64, max_latency_ns: u64) -> Self {
        Metrics {
            window_start_ns,
            window_end_ns,
            latency_ns: Histogram::new_with_bounds(1, max_latency_ns.max(2), 3)
                .expect("valid histogram bounds"),
            sent_in_window: 0,
            completed_in_window: 0,
            measured_dropped: 0,
            measured_timed_out: 0,
            client_refused: 0,
            unroutable: 0,
            timeline: None,
        }
    }

    pub fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.window_start_ns && t_ns < self.window_end_ns
    }

    pub fn window_s(&self) -> f64 {
        (self.window_end_ns - self.window_start_ns) as f64 / 1e9
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencyUs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyUs {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| (ns as f64 / 1e3 * 1000.0).round() / 1000.0;
        if h.is_empty() {
            return LatencyUs {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        LatencyUs {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: (h.mean() / 1e3 * 1000.0).round() / 1000.0,
        }
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
    pub command: String,
    pub scenario_file: String,
    pub git_revision: String,
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
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoryLine {
    pub t_us: f64,
    pub what: String,
}

/// Rounds to 3 decimals so summaries stay readable and stable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
