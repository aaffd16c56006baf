//! The server side of R2P2: reassembles incoming messages of any type and frames outgoing
//! ones. Nodes (unreplicated, Raft, HovercRaft) own one `Endpoint` and dispatch on the type of
//! each complete message.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::time::Instant;
use crate::wire::framing::{self, Assembled, Reassembler, ReassemblyConfig, ReassemblyError};
use crate::wire::{Header, MsgType, Policy, Transmit, WireError};

/// A complete message received.
#[derive(Debug)]
pub struct Message<'a> {
    pub from: SocketAddrV4,
    /// The first packet's header (type, policy, req_id).
    pub header: Header,
    pub body: Cow<'a, [u8]>,
}

/// Why a datagram was not accepted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RxError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Reassembly(#[from] ReassemblyError),
}

/// Receive and send halves of a server's R2P2 endpoint.
pub struct Endpoint {
    reassembler: Reassembler,
}

impl Endpoint {
    pub fn new(reassembly: ReassemblyConfig) -> Self {
        Endpoint {
            reassembler: Reassembler::new(reassembly),
        }
    }

    /// Accepts one datagram; returns the message it completes, if any.
    pub fn receive<'a>(
        &mut self,
        now: Instant,
        from: SocketAddrV4,
        bytes: &'a [u8],
    ) -> Result<Option<Message<'a>>, RxError> {
        let (header, payload) = Header::decode(bytes)?;
        Ok(match self.reassembler.push(now, from, header, payload)? {
            Assembled::Single(header, body) => Some(Message {
                from,
                header,
                body: Cow::Borrowed(body),
            }),
            Assembled::Multi(header, body) => Some(Message {
                from,
                header,
                body: Cow::Owned(body),
            }),
            Assembled::Pending => None,
        })
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.reassembler.expire(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reassembler.next_deadline()
    }

    pub fn reassembly_stats(&self) -> framing::ReassemblyStats {
        self.reassembler.stats
    }
}

/// Frames `body` as one R2P2 message to `dst` and queues its packets.
pub fn send(
    out: &mut VecDeque<Transmit>,
    dst: SocketAddrV4,
    msg_type: MsgType,
    policy: Policy,
    req_id: u16,
    body: &[u8],
    after_app_cpu_ns: u64,
) -> Result<usize, WireError> {
    let max = crate::wire::MAX_PACKET_PAYLOAD;
    send_at(
        max,
        out,
        dst,
        msg_type,
        policy,
        req_id,
        body,
        after_app_cpu_ns,
    )
}

/// [`send`] with at most `packet_payload_bytes` message bytes per packet
/// ([`framing::fragment_at`]).
#[allow(clippy::too_many_arguments)]
pub fn send_at(
    packet_payload_bytes: usize,
    out: &mut VecDeque<Transmit>,
    dst: SocketAddrV4,
    msg_type: MsgType,
    policy: Policy,
    req_id: u16,
    body: &[u8],
    after_app_cpu_ns: u64,
) -> Result<usize, WireError> {
    let mut n = 0;
    framing::fragment_at(
        packet_payload_bytes,
        msg_type,
        policy,
        req_id,
        body,
        |payload| {
            n += 1;
            out.push_back(Transmit {
                dst,
                payload,
                after_app_cpu_ns,
            })
        },
    )?;
    Ok(n)
}
