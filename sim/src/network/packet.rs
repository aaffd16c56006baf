//! Frames in flight, kept in a slab and named by index so events stay small.

use std::net::SocketAddrV4;

use bytes::Bytes;

pub struct Packet {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Bytes,
    pub wire_bytes: u32,
    /// The server on whose behalf the switch's aggregator sent this frame (the sender of the
    /// datagram that made the aggregator send it), so fault rules between two servers also
    /// cut what the aggregator relays between them.
    pub relayed_for: Option<u32>,
    /// The fault rules already judged this frame on its current link traversal (it was held
    /// back, or it is a duplicate copy): when it re-arrives it is delivered as it is, with no
    /// second loss, duplication or delay draw.
    pub judged: bool,
}

impl Packet {
    /// A frame a host sends (not relayed, not yet judged by any fault rule).
    pub fn new(src: SocketAddrV4, dst: SocketAddrV4, payload: Bytes, wire_bytes: u32) -> Packet {
        Packet {
            src,
            dst,
            payload,
            wire_bytes,
            relayed_for: None,
            judged: false,
        }
    }

    /// A copy sharing the payload (multicast replication, duplication faults); the copy is
    /// a frame of its own, not yet judged by the fault rules.
    pub fn copy(&self) -> Packet {
        Packet {
            relayed_for: self.relayed_for,
            ..Packet::new(self.src, self.dst, self.payload.clone(), self.wire_bytes)
        }
    }
}

/// Packets in flight, addressed by index so events stay small.
#[derive(Default)]
pub struct Slab {
    slots: Vec<Option<Packet>>,
    free: Vec<u32>,
}

impl Slab {
    pub fn insert(&mut self, p: Packet) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(p);
                i
            }
            None => {
                self.slots.push(Some(p));
                (self.slots.len() - 1) as u32
            }
        }
    }
    pub fn get(&self, i: u32) -> &Packet {
        self.slots[i as usize].as_ref().expect("live packet")
    }
    pub fn get_mut(&mut self, i: u32) -> &mut Packet {
        self.slots[i as usize].as_mut().expect("live packet")
    }
    pub fn remove(&mut self, i: u32) -> Packet {
        let p = self.slots[i as usize].take().expect("live packet");
        self.free.push(i);
        p
    }
}
