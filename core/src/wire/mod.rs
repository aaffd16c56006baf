//! Byte codecs. Everything that crosses a network is encoded and decoded here, and decoding
//! untrusted bytes returns a [`WireError`], never panics.
//!
//! - [`header`]: the 8-byte R2P2 header (DESIGN.md §3).
//! - [`framing`]: splitting a message into packets and reassembling it (bounded table).
//! - [`raft`]: Raft/HovercRaft messages carried in RAFT_REQ / RAFT_REP / RAFT_MSG packets.

pub mod framing;
pub mod header;
pub mod raft;

pub use header::{Header, MsgType, Policy};

use std::net::SocketAddrV4;
use thiserror::Error;

/// Largest UDP payload that fits a 1500-byte IP packet: 1500 − 20 (IPv4) − 8 (UDP).
pub const MAX_UDP_PAYLOAD: usize = 1472;
/// Largest message payload one R2P2 packet carries: 1472 − 8 (R2P2 header).
pub const MAX_PACKET_PAYLOAD: usize = MAX_UDP_PAYLOAD - header::HEADER_LEN;

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("bad magic byte {0:#04x} (expected 0xcc)")]
    BadMagic(u8),
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("unknown policy {0}")]
    UnknownPolicy(u8),
    #[error("bad header size {0}")]
    BadHeaderSize(u8),
    #[error("unknown flag bits {0:#04x}")]
    BadFlags(u8),
    #[error("oversize: {len} bytes exceeds the limit of {max}")]
    Oversize { len: usize, max: usize },
    #[error("inconsistent counts: {0}")]
    Inconsistent(&'static str),
    #[error("unknown raft message type {0}")]
    UnknownRaftType(u8),
    #[error("trailing bytes: {0} left after the message")]
    Trailing(usize),
    #[error("unexpected {0:?} packet")]
    Unexpected(MsgType),
}

/// One datagram a state machine wants sent. The driver turns it into a UDP packet (runtime) or
/// a simulated frame (sim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination: a node, a client, the multicast group or the switch.
    pub dst: SocketAddrV4,
    /// UDP payload: R2P2 header + message bytes, at most [`MAX_UDP_PAYLOAD`].
    pub payload: Vec<u8>,
    /// Application CPU time (ns) reported since the driver last took it
    /// (`Node::take_app_cpu_ns`) before this datagram was produced.
    /// A CPU model releases the datagram only after that much work; real runtimes ignore it.
    pub after_app_cpu_ns: u64,
}

/// Reads an address written by [`put_addr`]; `None` unless exactly 6 bytes.
pub fn get_addr(bytes: &[u8]) -> Option<SocketAddrV4> {
    let mut r = Reader::new(bytes);
    let a = r.addr().ok()?;
    r.finish().ok()?;
    Some(a)
}

/// Little helpers for reading big-endian fields from untrusted bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated {
                need: self.pos + n,
                have: self.bytes.len(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn addr(&mut self) -> Result<SocketAddrV4, WireError> {
        let ip = self.u32()?;
        let port = self.u16()?;
        Ok(SocketAddrV4::new(ip.into(), port))
    }
    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

/// Appends an address as IPv4 (4 bytes) + port (2 bytes), big-endian.
pub fn put_addr(out: &mut Vec<u8>, a: SocketAddrV4) {
    out.extend_from_slice(&u32::from(*a.ip()).to_be_bytes());
    out.extend_from_slice(&a.port().to_be_bytes());
}
