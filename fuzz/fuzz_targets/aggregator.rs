//! The HovercRaft++ switch aggregator fed arbitrary packets: well-formed Raft messages from
//! replicas (AppendEntries, replies, anything), forged headers, strangers and raw bytes.
//! Never panics; every datagram it emits goes to a replica and is either a packet it was
//! given (forwarded byte for byte) or a group reply that decodes.
#![no_main]

use std::net::SocketAddrV4;

use arbitrary::{Arbitrary, Result, Unstructured};
use hovercraft_core::switch::aggregator::{Aggregator, AggregatorConfig, SWITCH_NODE_ID};
use hovercraft_core::wire::raft::{RaftBody, RaftMessage};
use hovercraft_core::wire::{Header, MsgType};
use hovercraft_fuzz as f;
use libfuzzer_sys::fuzz_target;

struct Input {
    peers: usize,
    slots: usize,
    packets: Vec<(SocketAddrV4, Vec<u8>)>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let peers = u.int_in_range(1usize..=5)?;
        let slots = u.int_in_range(0usize..=8)?;
        let clients = [f::client(0), f::client(1)];
        let mut packets = Vec::new();
        while !u.is_empty() && packets.len() < 256 {
            // Mostly a replica, sometimes a stranger.
            let who = u.int_in_range(0u8..=6)?;
            let from = if usize::from(who) < peers {
                f::peer(who)
            } else {
                f::client(who)
            };
            let bytes = match u.int_in_range(0u8..=9)? {
                0..=6 => {
                    // The sender's own id mostly, another one sometimes.
                    let id = if u.ratio(1u8, 8)? {
                        u.arbitrary()?
                    } else {
                        who
                    };
                    let msg = f::raft_message(u, id, &clients)?;
                    let mut pkts = f::raft_packets(&msg, u.arbitrary()?);
                    let i = u.choose_index(pkts.len())?;
                    pkts.swap_remove(i)
                }
                7 => {
                    // A message with one byte changed.
                    let msg = f::raft_message(u, who, &clients)?;
                    let mut p = f::raft_packets(&msg, 0).swap_remove(0);
                    let i = u.choose_index(p.len())?;
                    p[i] = u.arbitrary()?;
                    p
                }
                _ => f::bytes(u, 64)?,
            };
            packets.push((from, bytes));
        }
        Ok(Input {
            peers,
            slots,
            packets,
        })
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} peers, {} slots", self.peers, self.slots)?;
        for (from, p) in &self.packets {
            writeln!(f, "{from} {p:02x?}")?;
        }
        Ok(())
    }
}

fuzz_target!(|input: Input| {
    let peers: Vec<SocketAddrV4> = (0..input.peers as u8).map(f::peer).collect();
    let mut agg = Aggregator::new(AggregatorConfig {
        peers: peers.clone(),
        slots: input.slots,
    })
    .expect("1..=5 peers");
    for (from, bytes) in &input.packets {
        let _ = agg.handle_datagram(*from, bytes);
        let mut n = 0;
        while let Some(t) = agg.poll_transmit() {
            n += 1;
            assert!(peers.contains(&t.dst), "only replicas hear from the switch");
            if t.payload != *bytes {
                let (h, body) = Header::decode(&t.payload).expect("group reply header");
                assert_eq!(h.msg_type, MsgType::RaftMsg);
                let msg = RaftMessage::decode(body).expect("group reply decodes");
                assert_eq!(msg.from, SWITCH_NODE_ID);
                assert_eq!(msg.term, agg.term());
                let RaftBody::AppendEntriesRepGroup { dones, .. } = msg.body else {
                    panic!("the switch originates group replies only");
                };
                assert_eq!(dones.len(), peers.len());
            }
        }
        assert!(
            n <= peers.len(),
            "one input, at most one datagram per replica"
        );
        if let Some(l) = agg.leader() {
            assert!(usize::from(l) < peers.len());
        }
    }
});
