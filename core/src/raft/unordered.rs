//! The unordered buffer (HovercRaft): request bodies that arrived by multicast, kept until the
//! leader orders them, keyed by (client address, req_id). Bounded in bodies and in bytes: when
//! either bound is reached, the oldest body is evicted (counted); bodies also expire after a
//! fixed time. A body that is gone when its entry is ordered is fetched with RECOVERY_REQ.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use rustc_hash::FxHashMap;

use crate::time::{Duration, Instant};

pub type RequestKey = (SocketAddrV4, u16);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnorderedStats {
    pub inserted: u64,
    pub evicted_full: u64,
    pub expired: u64,
    pub high_water: u64,
    /// Bodies evicted to stay within the byte bound (not in summaries while 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub evicted_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub struct UnorderedBuffer {
    capacity: usize,
    /// Most body bytes held at once.
    capacity_bytes: u64,
    /// Body bytes held now.
    bytes: u64,
    expiry: Duration,
    bodies: FxHashMap<RequestKey, (Vec<u8>, u64)>,
    // (inserted at, key, generation) in insertion order: oldest first.
    order: VecDeque<(Instant, RequestKey, u64)>,
    next_gen: u64,
    pub stats: UnorderedStats,
}

impl UnorderedBuffer {
    pub fn new(capacity: usize, capacity_bytes: u64, expiry: Duration) -> Self {
        UnorderedBuffer {
            capacity: capacity.max(1),
            capacity_bytes: capacity_bytes.max(1),
            bytes: 0,
            expiry,
            bodies: FxHashMap::default(),
            order: VecDeque::new(),
            next_gen: 0,
            stats: UnorderedStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    pub fn contains(&self, key: &RequestKey) -> bool {
        self.bodies.contains_key(key)
    }

    pub fn get(&self, key: &RequestKey) -> Option<&[u8]> {
        self.bodies.get(key).map(|(b, _)| b.as_slice())
    }

    /// Stores a body (replacing an older one under the same key).
    pub fn insert(&mut self, now: Instant, key: RequestKey, body: Vec<u8>) {
        self.expire(now);
        if let Some(old) = self.remove(&key) {
            // Replaced: its order entry goes stale and is skipped.
            drop(old);
        }
        while self.bodies.len() >= self.capacity {
            if !self.pop_oldest() {
                break;
            }
            self.stats.evicted_full += 1;
        }
        // A body larger than the whole byte bound is still kept alone: R2P2's reassembly
        // already bounds one request's size.
        while !self.bodies.is_empty() && self.bytes + body.len() as u64 > self.capacity_bytes {
            if !self.pop_oldest() {
                break;
            }
            self.stats.evicted_bytes += 1;
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        self.bytes += body.len() as u64;
        self.bodies.insert(key, (body, gen));
        self.order.push_back((now, key, gen));
        self.stats.inserted += 1;
        self.stats.high_water = self.stats.high_water.max(self.bodies.len() as u64);
        // Keep the order queue from growing with stale entries when keys are replaced.
        if self.order.len() > 2 * self.capacity + 16 {
            let bodies = &self.bodies;
            self.order
                .retain(|(_, k, g)| bodies.get(k).is_some_and(|(_, bg)| bg == g));
        }
    }

    pub fn remove(&mut self, key: &RequestKey) -> Option<Vec<u8>> {
        let (b, _) = self.bodies.remove(key)?;
        self.bytes -= b.len() as u64;
        Some(b)
    }

    /// Body bytes held now.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn pop_oldest(&mut self) -> bool {
        while let Some((_, key, gen)) = self.order.pop_front() {
            if self.bodies.get(&key).is_some_and(|(_, g)| *g == gen) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// Drops bodies older than the expiry.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, key, gen)) = self.order.front() {
            if at + self.expiry > now {
                break;
            }
            self.order.pop_front();
            if self.bodies.get(&key).is_some_and(|(_, g)| *g == gen) {
                self.remove(&key);
                self.stats.expired += 1;
            }
        }
    }

    /// When the oldest body expires (stale entries may make this early; harmless).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.order.front().map(|&(at, _, _)| at + self.expiry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u16) -> RequestKey {
        (SocketAddrV4::new([10, 1, 0, 1].into(), 9000), i)
    }

    #[test]
    fn bounded_with_eviction_and_expiry() {
        let mut b = UnorderedBuffer::new(2, 1 << 20, Duration::from_ms(1));
        let t = Instant::ZERO;
        b.insert(t, key(1), vec![1]);
        b.insert(t, key(2), vec![2]);
        b.insert(t, key(3), vec![3]);
        assert_eq!(b.len(), 2);
        assert!(!b.contains(&key(1)), "oldest evicted");
        assert_eq!(b.stats.evicted_full, 1);
        assert_eq!(b.remove(&key(2)), Some(vec![2]));
        b.expire(t + Duration::from_ms(1));
        assert!(b.is_empty());
        assert_eq!(b.stats.expired, 1);
        assert_eq!(b.stats.high_water, 2);
    }

    #[test]
    fn bounded_in_bytes_too() {
        let mut b = UnorderedBuffer::new(100, 10, Duration::from_ms(1));
        let t = Instant::ZERO;
        b.insert(t, key(1), vec![0; 4]);
        b.insert(t, key(2), vec![0; 4]);
        assert_eq!(b.bytes(), 8);
        b.insert(t, key(3), vec![0; 4]);
        assert_eq!(
            (b.len(), b.bytes()),
            (2, 8),
            "the oldest went for the bytes"
        );
        assert!(!b.contains(&key(1)));
        assert_eq!(b.stats.evicted_bytes, 1);
        // Replacing a body counts its bytes once.
        b.insert(t, key(3), vec![0; 2]);
        assert_eq!(b.bytes(), 6);
        // One body larger than the bound is kept alone.
        b.insert(t, key(4), vec![0; 50]);
        assert_eq!((b.len(), b.bytes()), (1, 50));
        assert_eq!(b.remove(&key(4)).map(|v| v.len()), Some(50));
        assert_eq!(b.bytes(), 0);
    }
}
