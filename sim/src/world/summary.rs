//! The run's summary (`summary.json`): throughput and latency in the measurement window,
//! per-host network and CPU counters, per-node protocol state, the story of the run.

use super::{Role, World};
use crate::metrics::{
    round3, ClientMachineSummary, HostSummary, LatencyUs, Manifest, NetworkSummary, NodeSummary,
    ReplicaSummary, StoryLine, Summary, Timeline,
};
use crate::scenario::AppCore;

impl World {
    /// Records a line of the run's story (faults, leader changes, switch path changes) and
    /// measures failover: from a fault that took the leader away to the next leader.
    pub(super) fn note_story(&mut self, t: u64, what: String) {
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

    fn host_summary(&self, i: usize, name: String) -> HostSummary {
        let h = &self.hosts[i];
        let nic = &self.net.nics[i];
        HostSummary {
            host: name,
            addr: h.ip.to_string(),
            packets_rx: nic.packets_rx,
            bytes_rx: nic.bytes_rx,
            packets_tx: nic.packets_tx,
            bytes_tx: nic.bytes_tx,
            packets_tx_in_window: nic.packets_tx_in_window,
            bytes_tx_in_window: nic.bytes_tx_in_window,
            nic: nic.tx.stats,
        }
    }

    pub(super) fn summary(&self) -> Summary {
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
                    let nic = &self.net.nics[i].tx;
                    per_node.push(NodeSummary {
                        id: s.node.id(),
                        role: "server",
                        host: self.host_summary(i, format!("node{i}")),
                        cpu_busy_fraction: round3(
                            s.cpu.stats.busy_in_window_ns as f64 / (m.window_s() * 1e9),
                        ),
                        nic_busy_fraction: round3(
                            nic.stats.busy_in_window_ns as f64 / (m.window_s() * 1e9),
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
                    clients.push(ClientMachineSummary {
                        host: self.host_summary(i, format!("client{}", i - self.n_servers)),
                        r2p2: c.stats(),
                    });
                }
            }
        }
        let switch_ports = self.net.switches.iter().flat_map(|s| &s.ports);
        let network = NetworkSummary {
            nic_tx_drops: self.net.nics.iter().map(|n| n.tx.stats.drops).sum(),
            switch_queue_drops: switch_ports.clone().map(|p| p.stats.drops).sum(),
            rx_queue_drops,
            unroutable: self.net.unroutable + m.unroutable,
            lost: self.net.lost_frames,
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
            checks: None,
        }
    }
}
