//! The in-network fan-out/fan-in aggregator of HovercRaft++, written the way a P4 switch
//! holds state: fixed-size register arrays indexed by peer id and by a slot derived from a
//! log index, no allocation per packet, no loops over unbounded data.
//!
//! - APPEND_ENTRIES_REQ from the leader (to the switch's address): a higher term resets every
//!   register (a new leader re-announces itself this way); a stale term is dropped. If it
//!   carries entries, slot `last % SLOTS` is armed for index `last = prev + n_entries`. The
//!   packet is forwarded unchanged to every other peer (fan-out).
//! - APPEND_ENTRIES_REP with `result = success` from a follower: its `done` counter is stored;
//!   if `last_log_idx` names the armed slot, the follower's bit is set (duplicates count once).
//!   When the bits plus the leader reach a majority, one APPEND_ENTRIES_REP_GROUP goes to the
//!   leader *and* every follower (fan-in), carrying the index now held by a majority (which
//!   followers may commit) and every peer's `done`.
//! - Anything else addressed to the switch (other results, other terms, other messages) is
//!   forwarded to the leader untouched, or dropped when no leader is known.
//!
//! Like the P4 parser, it reads fixed headers only (R2P2, the Raft common header, the fixed
//! part of APPEND_ENTRIES_REQ, APPEND_ENTRIES_REP) and never the entries, and forwards the
//! leader's packet byte for byte.
//!
//! Only AppendEntries carrying entries arm a slot. The leader sends the switch entries of its
//! own term only (a new leader's first entry is a no-op of its term), so a majority reported
//! here is always for a current-term entry and may be committed (Raft §5.4.2).

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::wire::raft::{
    AppendResult, GroupDone, NodeId, RaftBody, RaftMessage, RaftType, COMMON_HEADER_LEN,
    MAX_GROUP_PEERS,
};
use crate::wire::{Header, MsgType, Policy, Transmit, WireError};

/// Fixed part of APPEND_ENTRIES_REQ after the common header (prev, prev term, commit, count).
const AE_REQ_FIXED_LEN: usize = 26;
/// APPEND_ENTRIES_REP after the common header (result, last index, first index, done).
const AE_REP_LEN: usize = 25;

fn fixed(body: &[u8], len: usize) -> Result<&[u8], WireError> {
    body.get(..len).ok_or(WireError::Truncated {
        need: len,
        have: body.len(),
    })
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// The node id the switch uses in the messages it originates.
pub const SWITCH_NODE_ID: NodeId = 0xFF;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Replica addresses, indexed by node id (the switch maps ids to egress ports the same way).
    pub peers: Vec<SocketAddrV4>,
    /// Register slots for in-flight AppendEntries (a power of two in hardware).
    pub slots: usize,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AggregatorError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("multi-packet messages are not aggregated (a switch cannot reassemble)")]
    MultiPacket,
    #[error("{0} is not a replica")]
    UnknownSender(SocketAddrV4),
    #[error("unexpected message for the aggregator")]
    Unexpected,
    #[error("clusters of 1 to {MAX_GROUP_PEERS} nodes (got {0})")]
    ClusterSize(usize),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AggregatorStats {
    pub appends_forwarded: u64,
    pub replies_counted: u64,
    pub duplicate_replies: u64,
    pub group_replies: u64,
    pub stale_dropped: u64,
    pub forwarded_to_leader: u64,
    pub resets: u64,
    pub rejected: u64,
}

pub struct Aggregator {
    cfg: AggregatorConfig,
    term: u64,
    leader: Option<NodeId>,
    // Registers, one entry per slot.
    slot_index: Vec<u64>,
    slot_acks: Vec<u64>,
    slot_count: Vec<u8>,
    slot_sent: Vec<bool>,
    // Registers, one entry per peer.
    done: Vec<u64>,
    next_msg_id: u16,
    out: VecDeque<Transmit>,
    pub stats: AggregatorStats,
}

impl Aggregator {
    pub fn new(cfg: AggregatorConfig) -> Result<Aggregator, AggregatorError> {
        let n = cfg.peers.len();
        if n == 0 || n > MAX_GROUP_PEERS {
            return Err(AggregatorError::ClusterSize(n));
        }
        let slots = cfg.slots.max(1);
        Ok(Aggregator {
            term: 0,
            leader: None,
            slot_index: vec![0; slots],
            slot_acks: vec![0; slots],
            slot_count: vec![0; slots],
            slot_sent: vec![false; slots],
            done: vec![0; n],
            next_msg_id: 0,
            out: VecDeque::new(),
            stats: AggregatorStats::default(),
            cfg: AggregatorConfig { slots, ..cfg },
        })
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    fn quorum(&self) -> usize {
        self.cfg.peers.len() / 2 + 1
    }

    fn reset(&mut self, term: u64, leader: NodeId) {
        self.term = term;
        self.leader = Some(leader);
        self.slot_index.iter_mut().for_each(|x| *x = 0);
        self.slot_acks.iter_mut().for_each(|x| *x = 0);
        self.slot_count.iter_mut().for_each(|x| *x = 0);
        self.slot_sent.iter_mut().for_each(|x| *x = false);
        self.done.iter_mut().for_each(|x| *x = 0);
        self.stats.resets += 1;
    }

    /// One datagram addressed to the switch.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddrV4,
        bytes: &[u8],
    ) -> Result<(), AggregatorError> {
        let r = self.handle_inner(from, bytes);
        if r.is_err() {
            self.stats.rejected += 1;
        }
        r
    }

    fn handle_inner(&mut self, from: SocketAddrV4, bytes: &[u8]) -> Result<(), AggregatorError> {
        // Parse exactly what the P4 parser parses: fixed headers, never the entries.
        let (header, body) = Header::decode(bytes)?;
        if bytes[1] as usize != crate::wire::header::HEADER_LEN {
            return Err(WireError::BadHeaderSize(bytes[1]).into());
        }
        if !(header.first && header.last) {
            return Err(AggregatorError::MultiPacket);
        }
        let sender = self
            .cfg
            .peers
            .iter()
            .position(|&p| p == from)
            .ok_or(AggregatorError::UnknownSender(from))? as NodeId;
        let common = fixed(body, COMMON_HEADER_LEN)?;
        let (raft_type, msg_from, term) = (common[0], common[1], be64(&common[2..10]));
        if msg_from != sender {
            return Err(AggregatorError::UnknownSender(from));
        }
        match raft_type {
            t if t == RaftType::AppendEntriesReq as u8 => {
                let b = fixed(body, COMMON_HEADER_LEN + AE_REQ_FIXED_LEN)?;
                let prev_log_idx = be64(&b[10..18]);
                let n_entries = u16::from_be_bytes([b[34], b[35]]) as u64;
                self.on_append(sender, term, prev_log_idx, n_entries, bytes);
                Ok(())
            }
            t if t == RaftType::AppendEntriesRep as u8 => {
                let b = fixed(body, COMMON_HEADER_LEN + AE_REP_LEN)?;
                let (result, last_log_idx, done) = (b[10], be64(&b[11..19]), be64(&b[27..35]));
                if result == AppendResult::Success as u8
                    && term == self.term
                    && self.leader.is_some()
                {
                    self.on_success(sender, last_log_idx, done);
                    Ok(())
                } else {
                    self.forward_to_leader(bytes)
                }
            }
            _ => self.forward_to_leader(bytes),
        }
    }

    /// Rule 1: the leader's AppendEntries — reset on a new term, arm a slot, fan out.
    fn on_append(
        &mut self,
        sender: NodeId,
        term: u64,
        prev_log_idx: u64,
        n_entries: u64,
        bytes: &[u8],
    ) {
        if term < self.term {
            self.stats.stale_dropped += 1;
            return;
        }
        if term > self.term || self.leader.is_none() {
            self.reset(term, sender);
        } else if self.leader != Some(sender) {
            // Two leaders in one term cannot happen; drop rather than mix their state.
            self.stats.stale_dropped += 1;
            return;
        }
        if n_entries > 0 {
            let last = prev_log_idx.wrapping_add(n_entries); // untrusted: wrap like the P4 adder, never panic
            let s = (last % self.cfg.slots as u64) as usize;
            self.slot_index[s] = last;
            self.slot_acks[s] = 0;
            self.slot_count[s] = 0;
            self.slot_sent[s] = false;
        }
        for (i, &peer) in self.cfg.peers.iter().enumerate() {
            if i != sender as usize {
                self.out.push_back(Transmit {
                    dst: peer,
                    payload: bytes.to_vec(),
                    after_app_cpu_ns: 0,
                });
            }
        }
        self.stats.appends_forwarded += 1;
    }

    /// Rule 2: a follower's success — record `done`, count the ack, answer a majority.
    fn on_success(&mut self, sender: NodeId, last_log_idx: u64, done: u64) {
        let p = sender as usize;
        self.done[p] = self.done[p].max(done);
        let s = (last_log_idx % self.cfg.slots as u64) as usize;
        if self.slot_index[s] != last_log_idx || last_log_idx == 0 {
            // Not an index we armed (overwritten slot, or a reply to a direct AE).
            return;
        }
        if self.slot_acks[s] & (1 << p) != 0 {
            self.stats.duplicate_replies += 1;
            return;
        }
        self.slot_acks[s] |= 1 << p;
        self.slot_count[s] += 1;
        self.stats.replies_counted += 1;
        // The leader holds what it sent: it counts as one.
        if self.slot_count[s] as usize + 1 >= self.quorum() && !self.slot_sent[s] {
            self.slot_sent[s] = true;
            self.emit_group(last_log_idx);
        }
    }

    fn forward_to_leader(&mut self, bytes: &[u8]) -> Result<(), AggregatorError> {
        let Some(leader) = self.leader else {
            return Err(AggregatorError::Unexpected);
        };
        self.out.push_back(Transmit {
            dst: self.cfg.peers[leader as usize],
            payload: bytes.to_vec(),
            after_app_cpu_ns: 0,
        });
        self.stats.forwarded_to_leader += 1;
        Ok(())
    }

    fn emit_group(&mut self, index: u64) {
        let msg = RaftMessage {
            from: SWITCH_NODE_ID,
            term: self.term,
            body: RaftBody::AppendEntriesRepGroup {
                last_log_idx: index,
                commit_idx: index,
                dones: (0..self.cfg.peers.len())
                    .map(|p| GroupDone {
                        peer: p as NodeId,
                        done: self.done[p],
                    })
                    .collect(),
            },
        };
        let header = Header {
            msg_type: MsgType::RaftMsg,
            policy: Policy::FixedRoute,
            first: true,
            last: true,
            req_id: self.next_msg_id,
            packet_order: 1,
        };
        self.next_msg_id = self.next_msg_id.wrapping_add(1);
        let mut payload = header.encode().to_vec();
        msg.encode(&mut payload);
        for &peer in &self.cfg.peers {
            self.out.push_back(Transmit {
                dst: peer,
                payload: payload.clone(),
                after_app_cpu_ns: 0,
            });
        }
        self.stats.group_replies += 1;
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::framing;
    use crate::wire::raft::LogEntry;

    fn peers(n: usize) -> Vec<SocketAddrV4> {
        (0..n)
            .map(|i| SocketAddrV4::new([10, 0, 0, i as u8 + 1].into(), 8000))
            .collect()
    }

    fn packet(msg: &RaftMessage) -> Vec<u8> {
        let mut body = Vec::new();
        msg.encode(&mut body);
        let mut out = Vec::new();
        framing::fragment(msg.r2p2_type(), Policy::FixedRoute, 1, &body, |p| {
            out.push(p)
        })
        .unwrap();
        out.remove(0)
    }

    fn append(from: NodeId, term: u64, prev: u64, n: usize) -> Vec<u8> {
        let e = LogEntry {
            term,
            client: SocketAddrV4::new([10, 1, 0, 1].into(), 9000),
            req_id: 1,
            policy: Policy::ReplicatedRoute,
            replier: 0,
            body: None,
        };
        packet(&RaftMessage {
            from,
            term,
            body: RaftBody::AppendEntriesReq {
                prev_log_idx: prev,
                prev_log_term: term,
                leader_commit: 0,
                entries: vec![e; n],
            },
        })
    }

    fn success(from: NodeId, term: u64, idx: u64, done: u64) -> Vec<u8> {
        packet(&RaftMessage {
            from,
            term,
            body: RaftBody::AppendEntriesRep {
                result: AppendResult::Success,
                last_log_idx: idx,
                first_idx: idx,
                done,
            },
        })
    }

    #[test]
    fn fan_out_then_one_group_reply_at_the_majority() {
        let p = peers(5);
        let mut a = Aggregator::new(AggregatorConfig {
            peers: p.clone(),
            slots: 64,
        })
        .unwrap();
        a.handle_datagram(p[0], &append(0, 3, 10, 2)).unwrap();
        let fanned: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
        assert_eq!(
            fanned.iter().map(|t| t.dst).collect::<Vec<_>>(),
            p[1..].to_vec()
        );
        a.handle_datagram(p[1], &success(1, 3, 12, 7)).unwrap();
        a.handle_datagram(p[1], &success(1, 3, 12, 7)).unwrap(); // duplicate counts once
        assert!(a.poll_transmit().is_none());
        a.handle_datagram(p[2], &success(2, 3, 12, 8)).unwrap();
        let group: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
        assert_eq!(group.len(), 5, "to the leader and every follower");
        let (h, body) = Header::decode(&group[0].payload).unwrap();
        assert_eq!(h.msg_type, MsgType::RaftMsg);
        let m = RaftMessage::decode(body).unwrap();
        assert_eq!(m.from, SWITCH_NODE_ID);
        match m.body {
            RaftBody::AppendEntriesRepGroup {
                commit_idx, dones, ..
            } => {
                assert_eq!(commit_idx, 12);
                assert_eq!(dones[1].done, 7);
                assert_eq!(dones[2].done, 8);
            }
            b => panic!("{b:?}"),
        }
        // A fourth reply after the majority emits nothing more.
        a.handle_datagram(p[3], &success(3, 3, 12, 1)).unwrap();
        assert!(a.poll_transmit().is_none());
        assert_eq!(a.stats.duplicate_replies, 1);
    }

    #[test]
    fn an_index_past_u64_max_wraps_instead_of_panicking() {
        let p = peers(3);
        let mut a = Aggregator::new(AggregatorConfig {
            peers: p.clone(),
            slots: 64,
        })
        .unwrap();
        a.handle_datagram(p[0], &append(0, 1, u64::MAX, 2)).unwrap();
        assert_eq!(std::iter::from_fn(|| a.poll_transmit()).count(), 2);
    }

    #[test]
    fn stale_terms_and_strangers_are_refused() {
        let p = peers(3);
        let mut a = Aggregator::new(AggregatorConfig {
            peers: p.clone(),
            slots: 64,
        })
        .unwrap();
        a.handle_datagram(p[0], &append(0, 5, 0, 1)).unwrap();
        while a.poll_transmit().is_some() {}
        a.handle_datagram(p[1], &append(1, 4, 0, 1)).unwrap();
        assert!(
            a.poll_transmit().is_none(),
            "an older term's AppendEntries is dropped"
        );
        assert_eq!(a.stats.stale_dropped, 1);
        let stranger = SocketAddrV4::new([6, 6, 6, 6].into(), 1);
        assert!(matches!(
            a.handle_datagram(stranger, &success(1, 5, 1, 0)),
            Err(AggregatorError::UnknownSender(_))
        ));
        assert!(matches!(
            a.handle_datagram(p[2], &success(1, 5, 1, 0)),
            Err(AggregatorError::UnknownSender(_))
        ));
        assert!(a.handle_datagram(p[1], &[0xCC, 8, 0x61]).is_err());
        assert!(Aggregator::new(AggregatorConfig {
            peers: vec![],
            slots: 4
        })
        .is_err());
    }
}
