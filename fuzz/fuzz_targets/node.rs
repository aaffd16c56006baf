//! A whole `Node` (replica 0 of a 3-node cluster in raft, hovercraft or hovercraft++ mode)
//! driven by a sequence of inputs: Raft messages from its peers (and the switch), client
//! requests (well-formed synthetic or kv requests, or junk), raw datagrams from any of those
//! addresses, clock advances and timer firings, `execute_next`, and `handle_persisted` for
//! what it asked to persist. It starts fresh, or (one input in four) restarted from a durable
//! state the input describes (a term, a vote, up to 16 entries), which it loads or refuses
//! without panicking. It runs the runtime's client limits and reflection guard, and leaves
//! room for the runtime's 35-byte MAC trailer. Built with debug assertions (cargo fuzz's
//! default), so the replica checks its invariants after every input; never panics. Every
//! datagram it sends is a well-formed R2P2 packet within the UDP payload limit (Raft packets
//! with room for the trailer), to an address it knows.
#![no_main]

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use arbitrary::{Arbitrary, Result, Unstructured};
use hovercraft_core::app::kv::{KvCosts, KvRequest};
use hovercraft_core::app::synthetic::SyntheticRequest;
use hovercraft_core::app::AppKind;
use hovercraft_core::raft::{ClusterConfig, DurableState, RaftConfig};
use hovercraft_core::time::Instant;
use hovercraft_core::types::Mode;
use hovercraft_core::wire::framing::{self, ReassemblyConfig};
use hovercraft_core::wire::{Header, MsgType, MAX_UDP_PAYLOAD};
use hovercraft_core::{Node, NodeConfig};
use hovercraft_fuzz as f;
use libfuzzer_sys::fuzz_target;

const N: u8 = 3;

fn group() -> SocketAddrV4 {
    SocketAddrV4::new([239, 1, 1, 1].into(), 8000)
}

fn switch() -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, 100].into(), 8000)
}

fn clients() -> [SocketAddrV4; 3] {
    [f::client(0), f::client(1), f::client(2)]
}

#[derive(Debug)]
enum Op {
    Datagrams {
        from: SocketAddrV4,
        packets: Vec<Vec<u8>>,
    },
    Advance(u64),
    FireTimer,
    Execute,
    /// Persist requests done: the oldest outstanding one (`false`) or all of them.
    Persisted(bool),
}

fn request_body(u: &mut Unstructured, app: AppKind) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    match (app, u.int_in_range(0u8..=7)?) {
        (_, 0) => body = f::bytes(u, 32)?,
        (AppKind::Synthetic, _) => SyntheticRequest {
            service_ns: u.int_in_range(0u64..=20_000)?,
            reply_bytes: u.int_in_range(0u32..=3_000)?,
            read_only: u.arbitrary()?,
        }
        .encode(u.int_in_range(0usize..=64)?, &mut body),
        (AppKind::Kv, k) => {
            let key = vec![b'k', u.int_in_range(b'0'..=b'3')?];
            match k {
                1 | 2 => KvRequest::Get { key },
                3 => KvRequest::Put {
                    key,
                    value: f::bytes(u, 16)?,
                },
                4 => KvRequest::Insert {
                    key,
                    value: f::bytes(u, 16)?,
                },
                5 | 6 => KvRequest::Scan {
                    start: key,
                    count: u.int_in_range(0u16..=5)?,
                },
                _ => KvRequest::Delete { key },
            }
            .encode(&mut body)
        }
    }
    Ok(body)
}

fn op(u: &mut Unstructured, app: AppKind) -> Result<Op> {
    Ok(match u.int_in_range(0u8..=15)? {
        0..=4 => {
            // A Raft message from a peer (or, as the switch's group reply, from the switch).
            let from = u.int_in_range(1..=N)?;
            let id = if u.ratio(1u8, 16)? {
                u.arbitrary()?
            } else {
                from
            };
            let msg = f::raft_message(u, id, &clients())?;
            let addr = if u.ratio(1u8, 8)? {
                switch()
            } else {
                f::peer(from.min(N - 1))
            };
            Op::Datagrams {
                from: addr,
                packets: f::raft_packets(&msg, u.arbitrary()?),
            }
        }
        5..=7 => {
            let body = request_body(u, app)?;
            let mut packets = Vec::new();
            framing::fragment(
                MsgType::Request,
                f::policy(u)?,
                u.int_in_range(0u16..=7)?,
                &body,
                |p| packets.push(p),
            )
            .expect("small requests fit");
            Op::Datagrams {
                from: f::pick(u, &clients())?,
                packets,
            }
        }
        8 => {
            let mut addrs = vec![f::peer(1), f::peer(2), switch()];
            addrs.extend(clients());
            Op::Datagrams {
                from: f::pick(u, &addrs)?,
                packets: vec![f::bytes(u, 48)?],
            }
        }
        9 | 10 => Op::Advance(u.int_in_range(0u64..=30_000_000)?),
        11 | 12 => Op::FireTimer,
        13 => Op::Execute,
        _ => Op::Persisted(u.arbitrary()?),
    })
}

#[derive(Debug)]
struct Input {
    mode: Mode,
    app: AppKind,
    defer_execution: bool,
    campaign_at_start: bool,
    rejoining: bool,
    restored: Option<DurableState>,
    ops: Vec<Op>,
}

/// A durable state as storage would hand it over: terms of entries never decrease and never
/// pass the current term (what a real log satisfies), everything else as the input says.
fn durable(u: &mut Unstructured) -> Result<DurableState> {
    let term = u.int_in_range(0u64..=8)?;
    let voted_for = if u.arbitrary()? {
        Some(u.int_in_range(0u8..=N)?)
    } else {
        None
    };
    let n = u.int_in_range(0usize..=16)?;
    let mut entries = Vec::with_capacity(n);
    let mut t = 0;
    for _ in 0..n {
        let mut e = f::entry(u, &clients())?;
        t = (t + u.int_in_range(0u64..=1)?).min(term);
        e.term = t.max(1).min(term.max(1));
        entries.push(e);
    }
    Ok(DurableState {
        term,
        voted_for,
        snapshot: None,
        entries,
    })
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mode = *u.choose(&[Mode::Raft, Mode::Hovercraft, Mode::HovercraftPlusPlus])?;
        let app = if u.arbitrary()? {
            AppKind::Kv
        } else {
            AppKind::Synthetic
        };
        let (defer_execution, campaign_at_start) = (u.arbitrary()?, u.arbitrary()?);
        let rejoining = u.ratio(1u8, 8)?;
        let restored = if u.ratio(1u8, 4)? {
            Some(durable(u)?)
        } else {
            None
        };
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 512 {
            ops.push(op(u, app)?);
        }
        Ok(Input {
            mode,
            app,
            defer_execution,
            campaign_at_start,
            rejoining,
            restored,
            ops,
        })
    }
}

fuzz_target!(|input: Input| {
    let cluster = ClusterConfig {
        peers: (0..N).map(f::peer).collect(),
        group: group(),
        campaign_at_start: input.campaign_at_start,
        switch: (input.mode == Mode::HovercraftPlusPlus).then(switch),
    };
    let cfg = NodeConfig {
        id: 0,
        mode: input.mode,
        app: input.app,
        kv_costs: KvCosts {
            max_keys: 16,
            ..KvCosts::default()
        },
        reassembly: ReassemblyConfig::default(),
        seed: 7,
        cluster: Some(cluster),
        raft: RaftConfig::default(),
        defer_execution: input.defer_execution,
        exec_queue_capacity: 8,
        // The runtime's defaults, so their paths are fuzzed too (DROPs, the guard's buckets).
        client_limits: hovercraft_core::node::ClientLimits {
            max_request_bytes: 4096,
            max_reply_bytes: 64 * 1024,
            amplification: Some(hovercraft_core::node::AmplificationLimit {
                factor: 8,
                free_bytes: 1472,
                budget_bytes_per_s: 8 << 20,
                burst_bytes: 1 << 20,
            }),
        },
        cluster_datagram_overhead_bytes: 35,
    };
    let mut node = match input.restored {
        None => Node::new(cfg).expect("a valid configuration"),
        // A state it cannot load is refused with an error, never a panic.
        Some(d) => match Node::restored(cfg, Instant::ZERO, d) {
            Ok(n) => n,
            Err(_) => return,
        },
    };
    if input.rejoining {
        node.start_rejoining();
    }
    let mut known: Vec<SocketAddrV4> = (0..N).map(f::peer).collect();
    known.extend([group(), switch()]);
    known.extend(clients());
    let mut now = Instant::ZERO;
    let mut persists: VecDeque<u64> = VecDeque::new();
    let drain = |node: &mut Node, persists: &mut VecDeque<u64>| {
        while let Some(t) = node.poll_transmit() {
            assert!(known.contains(&t.dst), "a datagram to {}", t.dst);
            assert!(t.payload.len() <= MAX_UDP_PAYLOAD, "an oversize datagram");
            let (h, _) =
                Header::decode(&t.payload).expect("the node sends well-formed R2P2 packets");
            if matches!(h.msg_type, MsgType::RaftReq | MsgType::RaftRep | MsgType::RaftMsg) {
                assert!(
                    t.payload.len() + 35 <= MAX_UDP_PAYLOAD,
                    "a Raft packet without room for the MAC trailer"
                );
            }
        }
        while node.poll_event().is_some() {}
        while let Some(p) = node.poll_persist() {
            assert!(
                persists.back().is_none_or(|&s| s < p.seq),
                "persist seqs grow"
            );
            persists.push_back(p.seq);
        }
        let _ = node.take_app_cpu_ns();
    };
    drain(&mut node, &mut persists);
    for op in input.ops {
        match op {
            Op::Datagrams { from, packets } => {
                for p in &packets {
                    let _ = node.handle_datagram(now, from, p);
                }
            }
            Op::Advance(ns) => {
                now = Instant::from_ns(now.as_ns() + ns);
                node.handle_timeout(now);
            }
            Op::FireTimer => {
                if let Some(t) = node.poll_timeout() {
                    if t.as_ns() > now.as_ns() {
                        now = t;
                    }
                    node.handle_timeout(now);
                }
            }
            Op::Execute => {
                let _ = node.execute_next(now);
            }
            Op::Persisted(all) => {
                let seq = if all {
                    persists.drain(..).last()
                } else {
                    persists.pop_front()
                };
                if let Some(seq) = seq {
                    node.handle_persisted(now, seq);
                }
            }
        }
        drain(&mut node, &mut persists);
    }
});
