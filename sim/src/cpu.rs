//! The CPU model of a server node: one busy-polling core (as in the authors' DPDK servers)
//! that runs one handler at a time. A handler costs a per-packet RX cost, the application time
//! the core reports, and a per-packet TX cost for every datagram it sends. Work that arrives
//! while the core is busy waits in a NIC RX ring (bounded: overflow is dropped and counted).
//!
//! Two rings when `cluster_rx_queue` is `separate` (the default): the NIC steers cluster
//! traffic (datagrams from the other replicas and the switch aggregator: an n-tuple / flow
//! director rule on the source address, which real NICs support) into a ring of its own, and
//! the core polls the two rings in turn, a burst of up to `rx_burst_packets` from each (a DPDK
//! poll loop calling `rx_burst` on each queue). Client requests beyond what the core can serve
//! fill the client ring and are dropped there, but cluster traffic waits for at most one burst
//! of them and is never pushed out by them. With `shared`, one FIFO ring holds everything: a
//! leader offered more than it can serve then queued its followers' AppendEntries replies
//! behind milliseconds of requests (or dropped them), commits stalled, no replier had a free
//! slot, and it refused nearly everything (`repro-overload.json`).

use std::collections::VecDeque;

use crate::scenario::{ClusterRxQueue, CpuConfig};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStats {
    pub busy_ns: u64,
    /// Busy time inside the measurement window [warmup, duration).
    pub busy_in_window_ns: u64,
    pub handlers: u64,
    pub rx_queue_drops: u64,
    pub max_rx_queue: u32,
    /// Drops and high-water mark of the cluster ring (`cluster_rx_queue: priority`).
    pub cluster_rx_queue_drops: u64,
    pub max_cluster_rx_queue: u32,
}

/// Which RX ring a packet is steered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxClass {
    /// From a peer replica or the switch aggregator.
    Cluster,
    /// Anything else (client requests).
    Client,
}

pub struct Cpu {
    pub cfg: CpuConfig,
    pub busy_until_ns: u64,
    /// Packets (slab ids) waiting for the core: the client ring (or the only ring).
    pub rx_queue: VecDeque<u32>,
    /// Cluster traffic waiting for the core (`cluster_rx_queue: separate`).
    pub cluster_queue: VecDeque<u32>,
    /// The ring the core is polling, and how many more packets its current burst may take.
    polling_cluster: bool,
    burst_left: u32,
    /// A timer fired while the core was busy and runs when it frees.
    pub timer_due: bool,
    /// Storage reported writes up to this persist sequence while the core was busy.
    pub persisted_due: Option<u64>,
    /// A `CpuFree` event is already scheduled.
    pub free_scheduled: bool,
    pub stats: CpuStats,
    window_ns: (u64, u64),
}

/// What the core should do with a packet that just arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// The core is idle: run the handler now.
    RunNow,
    /// Queued; if `schedule_free_at` is set, the caller schedules a `CpuFree` event then.
    Queued { schedule_free_at: Option<u64> },
    /// The RX ring is full: drop the packet.
    Dropped,
}

impl Cpu {
    /// `window_ns` is the measurement window, for the busy fraction.
    pub fn new(cfg: CpuConfig, window_ns: (u64, u64)) -> Self {
        Cpu {
            window_ns,
            cfg,
            busy_until_ns: 0,
            rx_queue: VecDeque::new(),
            cluster_queue: VecDeque::new(),
            polling_cluster: false,
            burst_left: 0,
            timer_due: false,
            persisted_due: None,
            free_scheduled: false,
            stats: CpuStats::default(),
        }
    }

    pub fn is_idle(&self, now_ns: u64) -> bool {
        self.busy_until_ns <= now_ns && !self.has_work()
    }

    pub fn admit(&mut self, now_ns: u64, pkt: u32, class: RxClass) -> Admit {
        if self.is_idle(now_ns) {
            return Admit::RunNow;
        }
        if class == RxClass::Cluster && self.cfg.cluster_rx_queue == ClusterRxQueue::Separate {
            if self.cluster_queue.len() >= self.cfg.cluster_rx_queue_packets as usize {
                self.stats.cluster_rx_queue_drops += 1;
                return Admit::Dropped;
            }
            self.cluster_queue.push_back(pkt);
            self.stats.max_cluster_rx_queue = self
                .stats
                .max_cluster_rx_queue
                .max(self.cluster_queue.len() as u32);
        } else {
            if self.rx_queue.len() >= self.cfg.rx_queue_packets as usize {
                self.stats.rx_queue_drops += 1;
                return Admit::Dropped;
            }
            self.rx_queue.push_back(pkt);
            self.stats.max_rx_queue = self.stats.max_rx_queue.max(self.rx_queue.len() as u32);
        }
        Admit::Queued {
            schedule_free_at: self.claim_free_event(),
        }
    }

    /// Returns when to schedule a `CpuFree` event, unless one is already pending.
    pub fn claim_free_event(&mut self) -> Option<u64> {
        if self.free_scheduled {
            None
        } else {
            self.free_scheduled = true;
            Some(self.busy_until_ns)
        }
    }

    /// Records a handler that started at `start_ns` and keeps the core busy until `end_ns`.
    pub fn charge(&mut self, start_ns: u64, end_ns: u64) {
        debug_assert!(end_ns >= start_ns);
        self.busy_until_ns = end_ns;
        self.stats.busy_ns += end_ns - start_ns;
        let (w0, w1) = self.window_ns;
        self.stats.busy_in_window_ns += end_ns.min(w1).saturating_sub(start_ns.max(w0));
        self.stats.handlers += 1;
    }

    pub fn has_work(&self) -> bool {
        self.timer_due
            || self.persisted_due.is_some()
            || !self.cluster_queue.is_empty()
            || !self.rx_queue.is_empty()
    }

    /// The next packet the core takes: the rings in turn, a burst of up to `rx_burst_packets`
    /// from each while the other has packets waiting.
    pub fn next_packet(&mut self) -> Option<u32> {
        let (current, other) = if self.polling_cluster {
            (&self.cluster_queue, &self.rx_queue)
        } else {
            (&self.rx_queue, &self.cluster_queue)
        };
        if current.is_empty() || (self.burst_left == 0 && !other.is_empty()) {
            if !other.is_empty() {
                self.polling_cluster = !self.polling_cluster;
            }
            self.burst_left = self.cfg.rx_burst_packets.max(1);
        }
        self.burst_left = self.burst_left.saturating_sub(1);
        if self.polling_cluster {
            self.cluster_queue.pop_front()
        } else {
            self.rx_queue.pop_front()
        }
    }

    /// Empties both rings (a crash), returning the packets they held.
    pub fn drain(&mut self) -> Vec<u32> {
        self.cluster_queue
            .drain(..)
            .chain(self.rx_queue.drain(..))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_cpu(cfg: CpuConfig) -> Cpu {
        let mut cpu = Cpu::new(cfg, (0, u64::MAX));
        cpu.charge(0, 1_000_000);
        cpu
    }

    #[test]
    fn rings_are_polled_in_turn_in_bursts_and_overflow_separately() {
        let mut cpu = busy_cpu(CpuConfig {
            rx_queue_packets: 8,
            cluster_rx_queue_packets: 2,
            rx_burst_packets: 3,
            ..CpuConfig::default()
        });
        // Client packets 0..10 (the last two overflow), then cluster packets 100..103.
        for p in 0..10 {
            let dropped = cpu.admit(1, p, RxClass::Client) == Admit::Dropped;
            assert_eq!(dropped, p >= 8, "client packet {p}");
        }
        for p in 100..103 {
            let dropped = cpu.admit(1, p, RxClass::Cluster) == Admit::Dropped;
            assert_eq!(dropped, p >= 102, "cluster packet {p}");
        }
        assert_eq!(
            (cpu.stats.rx_queue_drops, cpu.stats.cluster_rx_queue_drops),
            (2, 1)
        );
        let order: Vec<u32> = std::iter::from_fn(|| cpu.next_packet()).collect();
        assert_eq!(order, vec![100, 101, 0, 1, 2, 3, 4, 5, 6, 7]);

        // A cluster packet arriving behind a full client ring waits for one burst at most.
        for p in 10..18 {
            assert!(matches!(
                cpu.admit(1, p, RxClass::Client),
                Admit::Queued { .. }
            ));
        }
        assert_eq!(cpu.next_packet(), Some(10));
        assert!(matches!(
            cpu.admit(1, 200, RxClass::Cluster),
            Admit::Queued { .. }
        ));
        let order: Vec<u32> = std::iter::from_fn(|| cpu.next_packet()).collect();
        let at = order.iter().position(|&p| p == 200).unwrap();
        assert!(at <= 3, "{order:?}");
        assert_eq!(order.len(), 8);
    }

    #[test]
    fn a_shared_ring_is_one_fifo() {
        let mut cpu = busy_cpu(CpuConfig {
            cluster_rx_queue: ClusterRxQueue::Shared,
            rx_queue_packets: 3,
            ..CpuConfig::default()
        });
        assert!(matches!(
            cpu.admit(1, 0, RxClass::Client),
            Admit::Queued { .. }
        ));
        assert!(matches!(
            cpu.admit(1, 1, RxClass::Cluster),
            Admit::Queued { .. }
        ));
        assert!(matches!(
            cpu.admit(1, 2, RxClass::Client),
            Admit::Queued { .. }
        ));
        assert_eq!(cpu.admit(1, 3, RxClass::Cluster), Admit::Dropped);
        let order: Vec<u32> = std::iter::from_fn(|| cpu.next_packet()).collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(cpu.stats.rx_queue_drops, 1);
    }
}
