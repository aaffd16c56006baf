//! Multi-packet R2P2 messages: splitting a message into packets, and reassembling packets
//! into messages with a bounded table of partial messages that expire.
//!
//! A message of `n` packets: packet 0 has the F flag and `packet_order = n`; packet `i > 0`
//! has `packet_order = i`; packet `n − 1` has the L flag. A one-packet message has F|L and
//! `packet_order = 1`. Each packet carries at most [`MAX_PACKET_PAYLOAD`] message bytes.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;

use super::header::{Header, MsgType, Policy, HEADER_LEN};
use super::{WireError, MAX_PACKET_PAYLOAD};
use crate::time::{Duration, Instant};

/// Largest message the codec can express: 65535 packets.
pub const MAX_MESSAGE_BYTES: usize = u16::MAX as usize * MAX_PACKET_PAYLOAD;

/// Number of packets a message of `len` bytes takes (an empty message still takes one).
pub fn packet_count(len: usize) -> usize {
    len.div_ceil(MAX_PACKET_PAYLOAD).max(1)
}

/// Splits one message into R2P2 packets (each a complete UDP payload) and hands them to `emit`
/// in order.
pub fn fragment(
    msg_type: MsgType,
    policy: Policy,
    req_id: u16,
    message: &[u8],
    emit: impl FnMut(Vec<u8>),
) -> Result<(), WireError> {
    fragment_at(MAX_PACKET_PAYLOAD, msg_type, policy, req_id, message, emit)
}

/// [`fragment`] with at most `packet_payload_bytes` (clamped to 1..=[`MAX_PACKET_PAYLOAD`])
/// message bytes per packet: room for what a driver appends to each datagram (the runtime's
/// MAC trailer) within one [`MAX_UDP_PAYLOAD`](super::MAX_UDP_PAYLOAD). Receivers reassemble
/// packets of any size, so nothing else changes.
pub fn fragment_at(
    packet_payload_bytes: usize,
    msg_type: MsgType,
    policy: Policy,
    req_id: u16,
    message: &[u8],
    mut emit: impl FnMut(Vec<u8>),
) -> Result<(), WireError> {
    let per_packet = packet_payload_bytes.clamp(1, MAX_PACKET_PAYLOAD);
    let max = u16::MAX as usize * per_packet;
    if message.len() > max {
        return Err(WireError::Oversize {
            len: message.len(),
            max,
        });
    }
    let n = message.len().div_ceil(per_packet).max(1);
    for i in 0..n {
        let start = i * per_packet;
        let chunk = &message[start.min(message.len())..(start + per_packet).min(message.len())];
        let header = Header {
            msg_type,
            policy,
            first: i == 0,
            last: i == n - 1,
            req_id,
            packet_order: if i == 0 { n as u16 } else { i as u16 },
        };
        let mut pkt = Vec::with_capacity(HEADER_LEN + chunk.len());
        pkt.extend_from_slice(&header.encode());
        pkt.extend_from_slice(chunk);
        emit(pkt);
    }
    Ok(())
}

/// Limits of a reassembly table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Partial messages held at once; a packet that would open one more is dropped.
    pub max_partial: usize,
    /// Packets one message may span; larger messages are rejected.
    pub max_packets: u16,
    /// A partial message not completed within this time is discarded.
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_partial: 1024,
            // 128 packets ≈ 187 KiB: an AppendEntries (at most 64 KiB of entries) plus one
            // 64 KiB request, with headroom.
            max_packets: 128,
            timeout: Duration::from_ms(10),
        }
    }
}

/// Why a packet was not accepted into the reassembly table.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReassemblyError {
    #[error("reassembly table full ({0} partial messages)")]
    TableFull(usize),
    #[error("message spans {count} packets, limit {max}")]
    TooManyPackets { count: u16, max: u16 },
    #[error("packet index {index} does not fit a message of {count} packets")]
    BadIndex { index: u16, count: u16 },
    #[error("duplicate packet {0}")]
    Duplicate(u16),
    #[error("first packet says {0} packets but F|L marks a single-packet message")]
    Inconsistent(u16),
}

/// The key of a message in flight: sender, type and request id.
pub type MessageKey = (SocketAddrV4, MsgType, u16);

/// A message handed back by the reassembler.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled<'a> {
    /// A single-packet message: borrowed straight from the datagram, no copy.
    Single(Header, &'a [u8]),
    /// A multi-packet message, now complete; the header is the first packet's.
    Multi(Header, Vec<u8>),
    /// More packets are needed.
    Pending,
}

struct Partial {
    first: Option<Header>,
    received: u16,
    parts: Vec<Option<Vec<u8>>>,
    deadline: Instant,
}

/// Counters a reassembler keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    pub completed_multi: u64,
    pub rejected_packets: u64,
    pub expired_messages: u64,
}

/// A bounded table of partial messages.
pub struct Reassembler {
    cfg: ReassemblyConfig,
    partial: BTreeMap<MessageKey, Partial>,
    // Deadlines in insertion order; since the timeout is constant this is also deadline order.
    // Entries whose message already completed are skipped lazily.
    expiry: VecDeque<(Instant, MessageKey)>,
    pub stats: ReassemblyStats,
}

impl Reassembler {
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembler {
            cfg,
            partial: BTreeMap::new(),
            expiry: VecDeque::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Number of partial messages held.
    pub fn len(&self) -> usize {
        self.partial.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }

    /// Accepts one packet. Errors leave the table unchanged (and count the packet rejected).
    pub fn push<'a>(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        header: Header,
        payload: &'a [u8],
    ) -> Result<Assembled<'a>, ReassemblyError> {
        let r = self.push_inner(now, from, header, payload);
        if r.is_err() {
            self.stats.rejected_packets += 1;
        }
        r
    }

    fn push_inner<'a>(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        header: Header,
        payload: &'a [u8],
    ) -> Result<Assembled<'a>, ReassemblyError> {
        if header.first {
            let count = header.packet_order;
            if header.last {
                // The common case by far: no table, no copy.
                if count != 1 {
                    return Err(ReassemblyError::Inconsistent(count));
                }
                return Ok(Assembled::Single(header, payload));
            }
            if count < 2 {
                return Err(ReassemblyError::Inconsistent(count));
            }
            if count > self.cfg.max_packets {
                return Err(ReassemblyError::TooManyPackets {
                    count,
                    max: self.cfg.max_packets,
                });
            }
        } else if header.packet_order == 0 || header.packet_order >= self.cfg.max_packets {
            return Err(ReassemblyError::BadIndex {
                index: header.packet_order,
                count: self.cfg.max_packets,
            });
        }

        let key = (from, header.msg_type, header.req_id);
        if !self.partial.contains_key(&key) {
            if self.partial.len() >= self.cfg.max_partial {
                return Err(ReassemblyError::TableFull(self.partial.len()));
            }
            let deadline = now + self.cfg.timeout;
            self.partial.insert(
                key,
                Partial {
                    first: None,
                    received: 0,
                    parts: Vec::new(),
                    deadline,
                },
            );
            self.expiry.push_back((deadline, key));
        }
        let entry = self.partial.get_mut(&key).expect("inserted above");
        let index = if header.first { 0 } else { header.packet_order };

        // Validate against what is already known before changing anything.
        let known_count = match (header.first, entry.first) {
            (true, Some(_)) => return Err(ReassemblyError::Duplicate(0)),
            (true, None) => Some(header.packet_order),
            (false, Some(f)) => Some(f.packet_order),
            (false, None) => None,
        };
        if let Some(count) = known_count {
            let too_far = entry.parts.len() > count as usize || index >= count;
            let last_mismatch = !header.first && header.last != (index == count - 1);
            if too_far || last_mismatch {
                let r = Err(ReassemblyError::BadIndex { index, count });
                self.forget_if_empty(&key);
                return r;
            }
        }
        let entry = self.partial.get_mut(&key).expect("present");
        if entry.parts.len() <= index as usize {
            entry.parts.resize(index as usize + 1, None);
        }
        if entry.parts[index as usize].is_some() {
            return Err(ReassemblyError::Duplicate(index));
        }
        entry.parts[index as usize] = Some(payload.to_vec());
        entry.received += 1;
        if header.first {
            entry.first = Some(header);
        }
        match entry.first {
            Some(first) if entry.received == first.packet_order => {
                let entry = self.partial.remove(&key).expect("present");
                let mut message = Vec::new();
                for part in entry.parts.into_iter().flatten() {
                    message.extend_from_slice(&part);
                }
                self.stats.completed_multi += 1;
                Ok(Assembled::Multi(first, message))
            }
            _ => Ok(Assembled::Pending),
        }
    }

    fn forget_if_empty(&mut self, key: &MessageKey) {
        if self.partial.get(key).is_some_and(|p| p.received == 0) {
            self.partial.remove(key);
        }
    }

    /// Discards partial messages whose deadline has passed; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(deadline, key)) = self.expiry.front() {
            if deadline > now {
                break;
            }
            self.expiry.pop_front();
            if self
                .partial
                .get(&key)
                .is_some_and(|p| p.deadline == deadline)
            {
                self.partial.remove(&key);
                n += 1;
            }
        }
        self.stats.expired_messages += n as u64;
        n
    }

    /// The earliest time a partial message may expire.
    pub fn next_deadline(&self) -> Option<Instant> {
        // Skip stale entries lazily: the front may belong to a completed message, in which
        // case the driver wakes us a little early, which is harmless.
        self.expiry.front().map(|&(d, _)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr() -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, 1].into(), 5000)
    }

    fn split(message: &[u8]) -> Vec<Vec<u8>> {
        let mut pkts = Vec::new();
        fragment(MsgType::Request, Policy::LbRoute, 9, message, |p| {
            pkts.push(p)
        })
        .unwrap();
        pkts
    }

    fn feed(r: &mut Reassembler, pkts: &[Vec<u8>]) -> Option<Vec<u8>> {
        let mut out = None;
        for p in pkts {
            let (h, payload) = Header::decode(p).unwrap();
            match r.push(Instant::ZERO, addr(), h, payload).unwrap() {
                Assembled::Single(_, b) => out = Some(b.to_vec()),
                Assembled::Multi(_, b) => out = Some(b),
                Assembled::Pending => {}
            }
        }
        out
    }

    #[test]
    fn split_sizes_follow_the_mtu() {
        assert_eq!(packet_count(0), 1);
        assert_eq!(packet_count(1464), 1);
        assert_eq!(packet_count(1465), 2);
        let pkts = split(&vec![7u8; 3000]);
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[0].len(), 1472);
        assert_eq!(pkts[2].len(), 8 + 3000 - 2 * 1464);
        let (h0, _) = Header::decode(&pkts[0]).unwrap();
        assert!(h0.first && !h0.last && h0.packet_order == 3);
        let (h2, _) = Header::decode(&pkts[2]).unwrap();
        assert!(!h2.first && h2.last && h2.packet_order == 2);
    }

    #[test]
    fn out_of_order_reassembly() {
        let msg: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut pkts = split(&msg);
        pkts.reverse();
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert_eq!(feed(&mut r, &pkts), Some(msg));
        assert!(r.is_empty());
    }

    #[test]
    fn table_is_bounded_and_partials_expire() {
        let cfg = ReassemblyConfig {
            max_partial: 2,
            ..Default::default()
        };
        let mut r = Reassembler::new(cfg);
        let big = vec![1u8; 2000];
        for req_id in 0..3u16 {
            let mut pkts = Vec::new();
            fragment(MsgType::Request, Policy::LbRoute, req_id, &big, |p| {
                pkts.push(p)
            })
            .unwrap();
            let (h, p) = Header::decode(&pkts[0]).unwrap();
            let res = r.push(Instant::ZERO, addr(), h, p);
            if req_id < 2 {
                assert_eq!(res, Ok(Assembled::Pending));
            } else {
                assert_eq!(res, Err(ReassemblyError::TableFull(2)));
            }
        }
        assert_eq!(r.next_deadline(), Some(Instant::ZERO + cfg.timeout));
        assert_eq!(r.expire(Instant::ZERO + cfg.timeout), 2);
        assert!(r.is_empty());
        assert_eq!(r.stats.expired_messages, 2);
        assert_eq!(r.stats.rejected_packets, 1);
    }

    #[test]
    fn bad_packets_are_rejected_without_state_change() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let h = |first, last, order| Header {
            msg_type: MsgType::Request,
            policy: Policy::LbRoute,
            first,
            last,
            req_id: 1,
            packet_order: order,
        };
        let now = Instant::ZERO;
        assert_eq!(
            r.push(now, addr(), h(true, true, 2), b""),
            Err(ReassemblyError::Inconsistent(2))
        );
        assert!(matches!(
            r.push(now, addr(), h(true, false, 1000), b""),
            Err(ReassemblyError::TooManyPackets { .. })
        ));
        assert!(matches!(
            r.push(now, addr(), h(false, false, 0), b""),
            Err(ReassemblyError::BadIndex { .. })
        ));
        assert_eq!(
            r.push(now, addr(), h(true, false, 3), b"a"),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            r.push(now, addr(), h(true, false, 3), b"a"),
            Err(ReassemblyError::Duplicate(0))
        );
        // Index 5 cannot belong to a 3-packet message; L on a non-last index is a lie.
        assert!(matches!(
            r.push(now, addr(), h(false, false, 5), b"x"),
            Err(ReassemblyError::BadIndex { .. })
        ));
        assert!(matches!(
            r.push(now, addr(), h(false, true, 1), b"x"),
            Err(ReassemblyError::BadIndex { .. })
        ));
        assert_eq!(
            r.push(now, addr(), h(false, false, 1), b"b"),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            r.push(now, addr(), h(false, true, 2), b"c"),
            Ok(Assembled::Multi(h(true, false, 3), b"abc".to_vec()))
        );
    }

    proptest! {
        #[test]
        fn any_message_round_trips_in_any_order(
            len in 0usize..8000,
            seed in any::<u64>(),
        ) {
            let msg: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
            let mut pkts = split(&msg);
            // A deterministic shuffle driven by the seed.
            let n = pkts.len();
            for i in 0..n {
                let j = (seed.rotate_left(i as u32) as usize) % n;
                pkts.swap(i, j);
            }
            let mut r = Reassembler::new(ReassemblyConfig::default());
            prop_assert_eq!(feed(&mut r, &pkts), Some(msg));
        }

        /// Smaller packets (room for the runtime's MAC trailer) reassemble the same, and
        /// none is longer than asked.
        #[test]
        fn smaller_packets_round_trip_and_fit(
            len in 0usize..8000,
            per_packet in 1usize..=MAX_PACKET_PAYLOAD,
        ) {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut pkts = Vec::new();
            fragment_at(per_packet, MsgType::RaftReq, Policy::FixedRoute, 9, &msg, |p| pkts.push(p))
                .unwrap();
            prop_assert_eq!(pkts.len(), len.div_ceil(per_packet).max(1));
            for p in &pkts {
                prop_assert!(p.len() <= HEADER_LEN + per_packet);
            }
            let mut r = Reassembler::new(ReassemblyConfig {
                max_packets: u16::MAX,
                ..ReassemblyConfig::default()
            });
            prop_assert_eq!(feed(&mut r, &pkts), Some(msg));
        }

        #[test]
        fn arbitrary_packets_never_panic(pkts in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), any::<u16>(), 0u16..4, proptest::collection::vec(any::<u8>(), 0..16)), 0..64)
        ) {
            let mut r = Reassembler::new(ReassemblyConfig { max_partial: 4, ..Default::default() });
            for (i, (first, last, order, req_id, payload)) in pkts.into_iter().enumerate() {
                let h = Header { msg_type: MsgType::Request, policy: Policy::LbRoute, first, last, req_id, packet_order: order };
                let _ = r.push(Instant::from_ns(i as u64 * 1_000_000), addr(), h, &payload);
                r.expire(Instant::from_ns(i as u64 * 1_000_000));
                prop_assert!(r.len() <= 4);
            }
        }
    }
}
