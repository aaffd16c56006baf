//! The CPU model of a server node: one busy-polling core (as in the authors' DPDK servers)
//! that runs one handler at a time. A handler costs a per-packet RX cost, the application time
//! the core reports, and a per-packet TX cost for every datagram it sends. Work that arrives
//! while the core is busy waits in the NIC RX ring (bounded: overflow is dropped and counted).

use std::collections::VecDeque;

use crate::scenario::CpuConfig;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStats {
    pub busy_ns: u64,
    /// Busy time inside the measurement window [warmup, duration).
    pub busy_in_window_ns: u64,
    pub handlers: u64,
    pub rx_queue_drops: u64,
    pub max_rx_queue: u32,
}

pub struct Cpu {
    pub cfg: CpuConfig,
    pub busy_until_ns: u64,
    /// Packets (slab ids) waiting for the core.
    pub rx_queue: VecDeque<u32>,
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
            timer_due: false,
            persisted_due: None,
            free_scheduled: false,
            stats: CpuStats::default(),
        }
    }

    pub fn is_idle(&self, now_ns: u64) -> bool {
        self.busy_until_ns <= now_ns && !self.has_work()
    }

    pub fn admit(&mut self, now_ns: u64, pkt: u32) -> Admit {
        if self.is_idle(now_ns) {
            return Admit::RunNow;
        }
        if self.rx_queue.len() >= self.cfg.rx_queue_packets as usize {
            self.stats.rx_queue_drops += 1;
            return Admit::Dropped;
        }
        self.rx_queue.push_back(pkt);
        self.stats.max_rx_queue = self.stats.max_rx_queue.max(self.rx_queue.len() as u32);
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
        self.timer_due || self.persisted_due.is_some() || !self.rx_queue.is_empty()
    }
}
