//! Links and queues. Every transmitter (a host NIC, a switch egress port) is a FIFO that
//! serializes frames at the link bandwidth, with a byte limit.
//!
//! Because a FIFO with deterministic service times is fully described by when it becomes
//! free, a frame's departure is computed when it is enqueued — no per-frame "transmit done"
//! event is needed. The queue's occupancy at any enqueue time is the bytes of frames that
//! have not finished serializing by then.

use std::collections::VecDeque;

/// Precomputed serializer for one bandwidth (avoids float math per frame).
#[derive(Clone, Copy, Debug)]
pub struct Bandwidth {
    // Picoseconds per byte, so 10 Gb/s is exactly 800 ps/B.
    ps_per_byte: u64,
}

impl Bandwidth {
    pub fn from_gbps(gbps: f64) -> Self {
        Bandwidth {
            ps_per_byte: (8_000.0 / gbps).round().max(1.0) as u64,
        }
    }
    /// Serialization time of `bytes`, in ns, rounded up.
    pub fn serialization_ns(self, bytes: u32) -> u64 {
        (bytes as u64 * self.ps_per_byte).div_ceil(1_000)
    }
}

/// Outcome of offering a frame to a transmit queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The frame finishes serializing (its last bit leaves) at this time.
    Departs { end_ns: u64 },
    /// The queue was full: the frame is dropped.
    Dropped,
}

/// A FIFO transmitter with a byte limit.
#[derive(Debug)]
pub struct TxQueue {
    bandwidth: Bandwidth,
    limit_bytes: u64,
    busy_until_ns: u64,
    // (end of serialization, bytes) of frames not yet gone, in order.
    in_queue: VecDeque<(u64, u32)>,
    queued_bytes: u64,
    window_ns: (u64, u64),
    pub stats: TxStats,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TxStats {
    pub frames: u64,
    pub bytes: u64,
    pub drops: u64,
    pub dropped_bytes: u64,
    pub max_queued_bytes: u64,
    /// Total time spent serializing, for utilisation.
    pub busy_ns: u64,
    /// Serializing time inside the measurement window.
    pub busy_in_window_ns: u64,
}

impl TxQueue {
    pub fn new(bandwidth: Bandwidth, limit_bytes: u64) -> Self {
        TxQueue {
            bandwidth,
            limit_bytes,
            busy_until_ns: 0,
            in_queue: VecDeque::new(),
            queued_bytes: 0,
            window_ns: (0, u64::MAX),
            stats: TxStats::default(),
        }
    }

    /// Also account busy time inside `window_ns` (the measurement window).
    pub fn with_window(mut self, window_ns: (u64, u64)) -> Self {
        self.window_ns = window_ns;
        self
    }

    /// Offers a frame of `wire_bytes` at time `now_ns`. Calls must come in non-decreasing
    /// `now_ns` order (the engine guarantees it per transmitter).
    pub fn enqueue(&mut self, now_ns: u64, wire_bytes: u32) -> Enqueued {
        while let Some(&(end, b)) = self.in_queue.front() {
            if end > now_ns {
                break;
            }
            self.in_queue.pop_front();
            self.queued_bytes -= b as u64;
        }
        // A frame that is alone may always go (a limit below one frame would block forever).
        if !self.in_queue.is_empty() && self.queued_bytes + wire_bytes as u64 > self.limit_bytes {
            self.stats.drops += 1;
            self.stats.dropped_bytes += wire_bytes as u64;
            return Enqueued::Dropped;
        }
        let ser = self.bandwidth.serialization_ns(wire_bytes);
        let start = self.busy_until_ns.max(now_ns);
        let end = start + ser;
        self.busy_until_ns = end;
        self.in_queue.push_back((end, wire_bytes));
        self.queued_bytes += wire_bytes as u64;
        self.stats.frames += 1;
        self.stats.bytes += wire_bytes as u64;
        self.stats.busy_ns += ser;
        let (w0, w1) = self.window_ns;
        self.stats.busy_in_window_ns += end.min(w1).saturating_sub(start.max(w0));
        self.stats.max_queued_bytes = self.stats.max_queued_bytes.max(self.queued_bytes);
        Enqueued::Departs { end_ns: end }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1500_byte_frame_at_10g_takes_1_2_us() {
        assert_eq!(Bandwidth::from_gbps(10.0).serialization_ns(1500), 1_200);
        assert_eq!(Bandwidth::from_gbps(40.0).serialization_ns(1500), 300);
        assert_eq!(Bandwidth::from_gbps(100.0).serialization_ns(84), 7);
    }

    #[test]
    fn fifo_serializes_back_to_back_and_drops_when_full() {
        let mut q = TxQueue::new(Bandwidth::from_gbps(10.0), 3000);
        assert_eq!(q.enqueue(0, 1500), Enqueued::Departs { end_ns: 1200 });
        assert_eq!(q.enqueue(0, 1500), Enqueued::Departs { end_ns: 2400 });
        assert_eq!(q.enqueue(100, 1500), Enqueued::Dropped);
        // After the first frame left, there is room again.
        assert_eq!(q.enqueue(1200, 1500), Enqueued::Departs { end_ns: 3600 });
        // An idle queue starts at once.
        assert_eq!(q.enqueue(10_000, 100), Enqueued::Departs { end_ns: 10_080 });
        assert_eq!(q.stats.drops, 1);
        assert_eq!(q.stats.frames, 4);
    }
}
