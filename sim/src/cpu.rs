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
