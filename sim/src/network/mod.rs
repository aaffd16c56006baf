//! The network model: topology and routing ([`topology`]), links and queues ([`link`]).
//!
//! A frame crosses: the sender's NIC TX queue (serialized at link bandwidth) → propagation →
//! the switch (store and forward: forwarding latency, then the egress port's output queue,
//! serialized again) → propagation → the receiver. IP multicast is replicated by the switch
//! onto every member port except the one it came in on.

pub mod link;
pub mod topology;

/// Bytes a UDP datagram adds on the wire besides its payload: UDP 8 + IPv4 20 + Ethernet
/// header 14 + FCS 4 + preamble and start delimiter 8 + inter-frame gap 12.
pub const WIRE_OVERHEAD_BYTES: u32 = 8 + 20 + 14 + 4 + 8 + 12;
/// Ethernet pads frames to 64 bytes (header + payload + FCS), so tiny datagrams cost more.
pub const MIN_FRAME_BYTES: u32 = 64;

/// Bytes a datagram with `udp_payload` bytes occupies on the wire (what serialization costs).
pub fn wire_bytes(udp_payload: usize) -> u32 {
    let frame = (udp_payload as u32 + 8 + 20 + 14 + 4).max(MIN_FRAME_BYTES);
    frame + 8 + 12
}
