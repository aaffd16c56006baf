//! Framing and reassembly: a sequence of datagrams (forged packets, raw bytes, and whole
//! fragmented messages delivered in any order) and clock advances into a reassembly table
//! and a server `Endpoint`. Never panics; the table stays within `max_partial`, empties once
//! every deadline has passed, and a message delivered whole (a fresh key, room in the table)
//! comes back byte for byte.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use hovercraft_core::r2p2::server::Endpoint;
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::framing::{self, Assembled, Reassembler, ReassemblyConfig};
use hovercraft_core::wire::header::Header;
use hovercraft_core::wire::MAX_PACKET_PAYLOAD;
use hovercraft_fuzz as f;
use libfuzzer_sys::fuzz_target;

const SENDERS: u8 = 3;

#[derive(Debug)]
enum Op {
    /// A packet with a forged header: small request ids so keys collide.
    Packet {
        from: u8,
        header: Header,
        payload: Vec<u8>,
    },
    /// Any bytes.
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    /// A whole message fragmented, its packets in an order the input picks (a fresh key).
    Message {
        len: usize,
        fill: u8,
        order: Vec<u8>,
    },
    Advance(u64),
}

fn op(u: &mut Unstructured) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=9)? {
        0..=4 => Op::Packet {
            from: u.int_in_range(0..=SENDERS - 1)?,
            header: Header {
                msg_type: f::msg_type(u)?,
                policy: f::policy(u)?,
                first: u.arbitrary()?,
                last: u.arbitrary()?,
                req_id: u.int_in_range(0u16..=3)?,
                packet_order: if u.ratio(1u8, 8)? {
                    u.arbitrary()?
                } else {
                    u.int_in_range(0u16..=6)?
                },
            },
            payload: f::bytes(u, 16)?,
        },
        5 => Op::Raw {
            from: u.int_in_range(0..=SENDERS - 1)?,
            bytes: f::bytes(u, 32)?,
        },
        6 => Op::Message {
            len: u.int_in_range(0..=6 * MAX_PACKET_PAYLOAD)?,
            fill: u.arbitrary()?,
            order: f::bytes(u, 8)?,
        },
        _ => Op::Advance(if u.arbitrary()? {
            u.int_in_range(0u64..=20_000_000)?
        } else {
            u.arbitrary::<u32>()?.into()
        }),
    })
}

#[derive(Debug)]
struct Input {
    cfg: ReassemblyConfig,
    ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let cfg = ReassemblyConfig {
            max_partial: u.int_in_range(0usize..=6)?,
            max_packets: u.int_in_range(0u16..=10)?,
            timeout: Duration::from_ns(u.int_in_range(0u64..=20_000_000)?),
        };
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 256 {
            ops.push(op(u)?);
        }
        Ok(Input { cfg, ops })
    }
}

/// One datagram into both the table (through the header decoder) and the endpoint; the
/// message it completes, if any.
fn push(
    cfg: &ReassemblyConfig,
    table: &mut Reassembler,
    endpoint: &mut Endpoint,
    now: Instant,
    from: std::net::SocketAddrV4,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    let _ = endpoint.receive(now, from, bytes);
    let (h, payload) = Header::decode(bytes).ok()?;
    match table.push(now, from, h, payload).ok()? {
        Assembled::Single(_, b) => Some(b.to_vec()),
        Assembled::Multi(h, b) => {
            assert!(h.first, "a message's header is its first packet's");
            assert!(b.len() <= usize::from(cfg.max_packets) * MAX_PACKET_PAYLOAD);
            Some(b)
        }
        Assembled::Pending => None,
    }
}

fuzz_target!(|input: Input| {
    let cfg = input.cfg;
    let mut table = Reassembler::new(cfg);
    let mut endpoint = Endpoint::new(cfg);
    let mut now = Instant::ZERO;
    // The latest time a packet may have opened a partial message.
    let mut last_push = None::<Instant>;
    // Message keys of whole messages: a sender of their own and fresh request ids.
    let whole_sender = f::client(200);
    let mut next_whole_id = 0u16;
    for op in input.ops {
        match op {
            Op::Packet {
                from,
                header,
                payload,
            } => {
                let mut bytes = header.encode().to_vec();
                bytes.extend_from_slice(&payload);
                push(
                    &cfg,
                    &mut table,
                    &mut endpoint,
                    now,
                    f::client(from),
                    &bytes,
                );
                last_push = Some(now);
            }
            Op::Raw { from, bytes } => {
                push(
                    &cfg,
                    &mut table,
                    &mut endpoint,
                    now,
                    f::client(from),
                    &bytes,
                );
                last_push = Some(now);
            }
            Op::Message { len, fill, order } => {
                let message: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                let req_id = next_whole_id;
                next_whole_id += 1;
                let mut pkts = Vec::new();
                framing::fragment(
                    hovercraft_core::wire::MsgType::Request,
                    hovercraft_core::wire::Policy::LbRoute,
                    req_id,
                    &message,
                    |p| pkts.push(p),
                )
                .expect("fits");
                // A permutation of the packets from the input's bytes.
                let mut idx: Vec<usize> = (0..pkts.len()).collect();
                for (i, b) in order.iter().enumerate() {
                    let a = i % idx.len();
                    let c = usize::from(*b) % idx.len();
                    idx.swap(a, c);
                }
                let n = pkts.len();
                let room = table.len() < cfg.max_partial;
                let fits = n == 1 || usize::from(cfg.max_packets) >= n;
                for (k, &i) in idx.iter().enumerate() {
                    let got = push(&cfg, &mut table, &mut endpoint, now, whole_sender, &pkts[i]);
                    if (room || n == 1) && fits {
                        if k + 1 == n {
                            assert_eq!(got.as_deref(), Some(&message[..]), "reassembled");
                        } else {
                            assert_eq!(got, None, "complete before its last packet");
                        }
                    }
                }
                last_push = Some(now);
            }
            Op::Advance(ns) => {
                now = Instant::from_ns(now.as_ns().saturating_add(ns));
                table.expire(now);
                endpoint.handle_timeout(now);
            }
        }
        assert!(table.len() <= cfg.max_partial, "the table is bounded");
        if !table.is_empty() {
            let d = table
                .next_deadline()
                .expect("a partial message has a deadline");
            assert!(d.as_ns() <= now.as_ns().saturating_add(cfg.timeout.as_ns()));
        }
        if let Some(t) = last_push {
            if now.as_ns() >= t.as_ns().saturating_add(cfg.timeout.as_ns()) {
                table.expire(now);
                endpoint.handle_timeout(now);
                assert!(table.is_empty(), "every partial message expired");
            }
        }
        let s = table.stats;
        assert_eq!(s, endpoint.reassembly_stats(), "the endpoint is this table");
    }
});
