//! Client-facing byte limits and the reflection guard (issue 16).
//!
//! R2P2 answers a request at its source address and has no handshake that would prove the
//! client owns that address (a multi-packet request's REQREADY carries no token). A forged
//! source therefore turns a node into a reflector: a 30-byte kv SCAN can be answered with up
//! to 1 MiB sent at a victim (×273 measured). What bounds it here:
//!
//! - `max_request_bytes`: a larger request is refused with DROP (by the leader; followers
//!   drop it silently, so it is never ordered) and counted.
//! - `max_reply_bytes`: a larger reply is replaced by DROP and counted.
//! - Amplification budget: the part of a reply beyond `factor` × its request (replies up to
//!   `free_bytes` are never charged) draws on a token bucket per destination IP address
//!   (`budget_bytes_per_s`, up to `burst_bytes`). When a bucket is short, the reply is
//!   replaced by DROP and counted; the client may retry. So each node sends a victim at most
//!   `burst + budget × t` amplified bytes, whatever the attacker's rate, and a legitimate
//!   client doing large reads keeps its own budget unless it shares a bucket with a victim.
//!
//! Why a rate limit and not address validation (QUIC's 3× until validated): validating would
//! need a token echoed by the client, which R2P2 does not have; adding one changes the wire
//! protocol that the authors' clients speak. DROP is R2P2's own "not served" answer: a client
//! sees the same thing as under overload. Buckets are a fixed table hashed by IP address
//! (addresses that collide share one), so an attacker rotating spoofed victims can neither
//! grow memory nor reset a victim's bucket.
//!
//! The simulator runs with [`ClientLimits::UNLIMITED`] (no attacker there; its outputs stay
//! as they were); the runtime's cluster files turn the guard on by default.

use std::net::SocketAddrV4;

use crate::time::Instant;

/// Byte limits on what a node accepts from and sends to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Largest request body a node orders or executes.
    pub max_request_bytes: usize,
    /// Largest reply body a node sends.
    pub max_reply_bytes: usize,
    /// The reflection guard; `None`: replies of any size relative to their request.
    pub amplification: Option<AmplificationLimit>,
}

impl ClientLimits {
    pub const UNLIMITED: ClientLimits = ClientLimits {
        max_request_bytes: usize::MAX,
        max_reply_bytes: usize::MAX,
        amplification: None,
    };
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits::UNLIMITED
    }
}

/// How much more a node may send a client address than that address sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmplificationLimit {
    /// Replies up to this many times their request's body are never charged.
    pub factor: u32,
    /// Replies up to this many bytes are never charged (one packet's worth by default).
    pub free_bytes: u64,
    /// Bytes beyond the free allowance each destination address may receive per second.
    pub budget_bytes_per_s: u64,
    /// Largest saved-up budget per destination address.
    pub burst_bytes: u64,
}

/// Number of buckets (destination addresses hash into them).
pub const BUCKETS: usize = 1024;

/// One bucket: tokens (bytes) as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    at: Instant,
}

/// The token buckets of [`AmplificationLimit`].
#[derive(Clone, Debug)]
pub(crate) struct ReflectionGuard {
    limit: AmplificationLimit,
    buckets: Vec<Option<Bucket>>,
}

impl ReflectionGuard {
    pub fn new(limit: AmplificationLimit) -> ReflectionGuard {
        ReflectionGuard {
            limit,
            buckets: vec![None; BUCKETS],
        }
    }

    /// Whether a reply of `reply_bytes` to a request of `request_bytes` may go to `client`
    /// at `now`; charges its excess if so.
    pub fn admit(
        &mut self,
        now: Instant,
        client: SocketAddrV4,
        request_bytes: usize,
        reply_bytes: usize,
    ) -> bool {
        let l = self.limit;
        let allowed = (request_bytes as u64)
            .saturating_mul(u64::from(l.factor))
            .max(l.free_bytes);
        let Some(excess) = (reply_bytes as u64).checked_sub(allowed).filter(|&e| e > 0) else {
            return true;
        };
        let slot = &mut self.buckets[bucket_of(client)];
        let b = slot.get_or_insert(Bucket {
            tokens: l.burst_bytes,
            at: now,
        });
        // Refill: budget × elapsed, in u128 so a long idle period cannot overflow.
        let elapsed_ns = now.saturating_since(b.at).as_ns();
        let refill = u128::from(l.budget_bytes_per_s) * u128::from(elapsed_ns) / 1_000_000_000;
        let refill = u64::try_from(refill).unwrap_or(u64::MAX);
        b.tokens = b.tokens.saturating_add(refill).min(l.burst_bytes);
        // Move the bucket's clock only when a whole byte came in (a busy address calling every
        // few ns would otherwise never refill); never backwards.
        if refill > 0 {
            b.at = now;
        }
        if b.tokens < excess {
            return false;
        }
        b.tokens -= excess;
        true
    }
}

/// Fixed multiplicative hash of the IP address (never a random hasher: determinism).
fn bucket_of(client: SocketAddrV4) -> usize {
    let ip = u32::from(*client.ip());
    (ip.wrapping_mul(0x9E37_79B9) >> 22) as usize % BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn guard() -> ReflectionGuard {
        ReflectionGuard::new(AmplificationLimit {
            factor: 8,
            free_bytes: 1400,
            budget_bytes_per_s: 1_000_000,
            burst_bytes: 100_000,
        })
    }

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_ms(ms)
    }

    fn addr(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, last].into(), 9000)
    }

    #[test]
    fn small_and_proportionate_replies_are_never_charged() {
        let mut g = guard();
        for _ in 0..100_000 {
            assert!(g.admit(at(0), addr(1), 10, 1400));
            assert!(g.admit(at(0), addr(1), 1000, 8000));
        }
    }

    #[test]
    fn amplified_bytes_to_one_address_are_bounded_by_burst_plus_budget() {
        let mut g = guard();
        let mut sent = 0u64;
        // 30-byte requests asking for 64 KiB, 10 000 per simulated second for 2 s.
        for i in 0..20_000u64 {
            let now = Instant::ZERO + Duration::from_us(i * 100);
            if g.admit(now, addr(1), 30, 65_536) {
                sent += 65_536 - 1400;
            }
        }
        // burst 100 kB + 2 s × 1 MB/s.
        assert!(sent <= 100_000 + 2_000_000, "sent {sent}");
        assert!(sent >= 1_900_000, "the budget is usable: {sent}");
        // Another address has its own budget.
        assert!(g.admit(at(2000), addr(2), 30, 65_536));
    }

    #[test]
    fn time_going_backwards_or_far_forwards_never_panics() {
        let mut g = guard();
        assert!(g.admit(at(5000), addr(1), 1, 50_000));
        assert!(!g.admit(at(1), addr(1), 1, 90_000));
        assert!(g.admit(Instant::MAX, addr(1), 1, 90_000));
        assert!(!g.admit(Instant::MAX, addr(1), 0, usize::MAX));
    }
}
