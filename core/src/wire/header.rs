//! The R2P2 header (DESIGN.md §3), 8 bytes, packed, u16 fields in network order:
//!
//! ```text
//! 0      1            2             3      4       6            8
//! | magic | header_size | type|policy | flags | req_id | packet_order |
//! ```
//!
//! `type_policy` holds the message type in the high nibble and the policy in the low nibble;
//! `flags` has 0x80 for the first packet of a message and 0x40 for the last. The first packet's
//! `packet_order` is the message's packet count; packet `i > 0` carries `i`.
//!
//! Note: the type numbers follow DESIGN.md (RAFT_REQ 5, RAFT_REP 6, RAFT_MSG 7). Some versions
//! of the authors' r2p2 code number the Raft types after exactly-once types; we do not
//! interoperate with that build, so DESIGN.md is the reference.

use super::WireError;

pub const MAGIC: u8 = 0xCC;
pub const HEADER_LEN: usize = 8;
pub const FLAG_FIRST: u8 = 0x80;
pub const FLAG_LAST: u8 = 0x40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MsgType {
    Request = 0,
    Response = 1,
    Feedback = 2,
    Ack = 3,
    Drop = 4,
    RaftReq = 5,
    RaftRep = 6,
    RaftMsg = 7,
}

impl MsgType {
    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        Ok(match v {
            0 => MsgType::Request,
            1 => MsgType::Response,
            2 => MsgType::Feedback,
            3 => MsgType::Ack,
            4 => MsgType::Drop,
            5 => MsgType::RaftReq,
            6 => MsgType::RaftRep,
            7 => MsgType::RaftMsg,
            _ => return Err(WireError::UnknownType(v)),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Policy {
    LbRoute = 0,
    FixedRoute = 1,
    ReplicatedRoute = 2,
    /// Read-only: ordered like a write but executed by its designated replier only.
    ReplicatedRouteNoSe = 3,
}

impl Policy {
    pub fn from_u8(v: u8) -> Result<Self, WireError> {
        Ok(match v {
            0 => Policy::LbRoute,
            1 => Policy::FixedRoute,
            2 => Policy::ReplicatedRoute,
            3 => Policy::ReplicatedRouteNoSe,
            _ => return Err(WireError::UnknownPolicy(v)),
        })
    }
    pub fn is_replicated(self) -> bool {
        matches!(self, Policy::ReplicatedRoute | Policy::ReplicatedRouteNoSe)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub msg_type: MsgType,
    pub policy: Policy,
    pub first: bool,
    pub last: bool,
    pub req_id: u16,
    pub packet_order: u16,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut flags = 0;
        if self.first {
            flags |= FLAG_FIRST;
        }
        if self.last {
            flags |= FLAG_LAST;
        }
        let rid = self.req_id.to_be_bytes();
        let po = self.packet_order.to_be_bytes();
        [
            MAGIC,
            HEADER_LEN as u8,
            ((self.msg_type as u8) << 4) | self.policy as u8,
            flags,
            rid[0],
            rid[1],
            po[0],
            po[1],
        ]
    }

    /// Decodes the header at the start of `bytes`; returns it and the payload that follows.
    /// A `header_size` larger than 8 is accepted (room for extensions) and skipped.
    pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have: bytes.len(),
            });
        }
        if bytes[0] != MAGIC {
            return Err(WireError::BadMagic(bytes[0]));
        }
        let header_size = bytes[1];
        if (header_size as usize) < HEADER_LEN {
            return Err(WireError::BadHeaderSize(header_size));
        }
        if bytes.len() < header_size as usize {
            return Err(WireError::Truncated {
                need: header_size as usize,
                have: bytes.len(),
            });
        }
        let msg_type = MsgType::from_u8(bytes[2] >> 4)?;
        let policy = Policy::from_u8(bytes[2] & 0x0F)?;
        let flags = bytes[3];
        if flags & !(FLAG_FIRST | FLAG_LAST) != 0 {
            return Err(WireError::BadFlags(flags));
        }
        let header = Header {
            msg_type,
            policy,
            first: flags & FLAG_FIRST != 0,
            last: flags & FLAG_LAST != 0,
            req_id: u16::from_be_bytes([bytes[4], bytes[5]]),
            packet_order: u16::from_be_bytes([bytes[6], bytes[7]]),
        };
        Ok((header, &bytes[header_size as usize..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Golden: a single-packet REQUEST, REPLICATED_ROUTE, req_id 0x1234, 1 packet, payload "hi".
    #[test]
    fn golden_single_packet_replicated_request() {
        let bytes = [0xCC, 0x08, 0x02, 0xC0, 0x12, 0x34, 0x00, 0x01, b'h', b'i'];
        let (h, payload) = Header::decode(&bytes).unwrap();
        assert_eq!(h.msg_type, MsgType::Request);
        assert_eq!(h.policy, Policy::ReplicatedRoute);
        assert!(h.first && h.last);
        assert_eq!(h.req_id, 0x1234);
        assert_eq!(h.packet_order, 1);
        assert_eq!(payload, b"hi");
        assert_eq!(h.encode(), bytes[..8]);
    }

    /// Golden: the middle packet (index 2) of a RESPONSE, policy LB_ROUTE, neither F nor L.
    #[test]
    fn golden_middle_packet_of_response() {
        let bytes = [0xCC, 0x08, 0x10, 0x00, 0xFF, 0xFE, 0x00, 0x02];
        let (h, payload) = Header::decode(&bytes).unwrap();
        assert_eq!(h.msg_type, MsgType::Response);
        assert_eq!(h.policy, Policy::LbRoute);
        assert!(!h.first && !h.last);
        assert_eq!(h.req_id, 0xFFFE);
        assert_eq!(h.packet_order, 2);
        assert!(payload.is_empty());
    }

    /// Golden: a DROP for a read-only request (type 4, policy 3), first+last, with a 10-byte
    /// header (two extension bytes are skipped).
    #[test]
    fn golden_drop_with_extended_header() {
        let bytes = [
            0xCC, 0x0A, 0x43, 0xC0, 0x00, 0x07, 0x00, 0x01, 0xAA, 0xBB, 0x99,
        ];
        let (h, payload) = Header::decode(&bytes).unwrap();
        assert_eq!(h.msg_type, MsgType::Drop);
        assert_eq!(h.policy, Policy::ReplicatedRouteNoSe);
        assert_eq!(h.req_id, 7);
        assert_eq!(payload, &[0x99]);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            Header::decode(&[0xCD, 8, 0, 0xC0, 0, 0, 0, 1]),
            Err(WireError::BadMagic(0xCD))
        );
        assert!(matches!(
            Header::decode(&[0xCC, 8, 0]),
            Err(WireError::Truncated { need: 8, have: 3 })
        ));
        assert_eq!(
            Header::decode(&[0xCC, 8, 0x90, 0xC0, 0, 0, 0, 1]),
            Err(WireError::UnknownType(9))
        );
        assert_eq!(
            Header::decode(&[0xCC, 8, 0x05, 0xC0, 0, 0, 0, 1]),
            Err(WireError::UnknownPolicy(5))
        );
        assert_eq!(
            Header::decode(&[0xCC, 7, 0, 0xC0, 0, 0, 0, 1]),
            Err(WireError::BadHeaderSize(7))
        );
        assert_eq!(
            Header::decode(&[0xCC, 8, 0, 0xC1, 0, 0, 0, 1]),
            Err(WireError::BadFlags(0xC1))
        );
    }

    fn arb_header() -> impl Strategy<Value = Header> {
        (
            0u8..8,
            0u8..4,
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(|(t, p, first, last, req_id, packet_order)| Header {
                msg_type: MsgType::from_u8(t).unwrap(),
                policy: Policy::from_u8(p).unwrap(),
                first,
                last,
                req_id,
                packet_order,
            })
    }

    proptest! {
        #[test]
        fn header_round_trips(h in arb_header(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = h.encode().to_vec();
            bytes.extend_from_slice(&payload);
            let (d, p) = Header::decode(&bytes).unwrap();
            prop_assert_eq!(d, h);
            prop_assert_eq!(p, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = Header::decode(&bytes);
        }
    }
}
