//! Frames in flight, kept in a slab and named by index so events stay small.

use std::net::SocketAddrV4;

use bytes::Bytes;

pub struct Packet {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Bytes,
    pub wire_bytes: u32,
}

impl Packet {
    /// A copy sharing the payload (multicast replication, duplication faults).
    pub fn copy(&self) -> Packet {
        Packet {
            src: self.src,
            dst: self.dst,
            payload: self.payload.clone(),
            wire_bytes: self.wire_bytes,
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
    pub fn remove(&mut self, i: u32) -> Packet {
        let p = self.slots[i as usize].take().expect("live packet");
        self.free.push(i);
        p
    }
}
