//! The P4 program and the core's aggregator must agree byte for byte.
//!
//! - Every vector in `p4/tests/*.json` (produced by `p4/tests/gen_vectors.py`, an
//!   implementation of the P4 program's rules written independently of this crate) is fed
//!   through `hovercraft_core::switch::Aggregator`; its outputs must equal the vector's.
//! - The header declarations the P4 parser uses (`p4/hovercraft_agg.p4`) must put every field
//!   at the byte offset where the core's codec writes it.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use hovercraft_core::switch::{Aggregator, AggregatorConfig};
use hovercraft_core::wire::raft::{AppendResult, GroupDone, LogEntry, RaftBody, RaftMessage};
use hovercraft_core::wire::{Header, MsgType, Policy};
use serde::Deserialize;

fn p4_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4")
}

fn peer(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, i as u8 + 1].into(), 8000)
}

#[derive(Deserialize)]
struct Packet {
    port: usize,
    hex: String,
}

#[derive(Deserialize)]
struct Step {
    #[serde(default)]
    comment: String,
    #[serde(rename = "in")]
    input: Packet,
    out: Vec<Packet>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    peers: usize,
    slots: usize,
    steps: Vec<Step>,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_p4_vector_passes_through_the_core_aggregator() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(p4_dir().join("tests"))
        .expect("p4/tests exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "first_reply",
        "majority_reached",
        "duplicate_reply",
        "stale_term",
        "new_leader_reset",
        "slot_reuse",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing vector {required}.json (have {names:?})"
        );
    }
    let mut steps = 0;
    for file in &files {
        let v: Vector = serde_json::from_slice(&std::fs::read(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let peers: Vec<SocketAddrV4> = (0..v.peers).map(peer).collect();
        let port_of: BTreeMap<SocketAddrV4, usize> =
            peers.iter().enumerate().map(|(i, &p)| (p, i)).collect();
        let mut agg = Aggregator::new(AggregatorConfig {
            peers: peers.clone(),
            slots: v.slots,
        })
        .unwrap();
        for (i, step) in v.steps.iter().enumerate() {
            let _ = agg.handle_datagram(peer(step.input.port), &unhex(&step.input.hex));
            let mut got: Vec<(usize, String)> = std::iter::from_fn(|| agg.poll_transmit())
                .map(|t| (port_of[&t.dst], hex(&t.payload)))
                .collect();
            got.sort();
            let mut want: Vec<(usize, String)> = step
                .out
                .iter()
                .map(|p| (p.port, p.hex.to_lowercase()))
                .collect();
            want.sort();
            assert_eq!(got, want, "{} step {i} ({})", v.name, step.comment);
            steps += 1;
        }
    }
    assert!(steps >= 20, "only {steps} steps in the vectors");
}

/// Byte offsets of each field of `header NAME { bit<W> field; ... }` in the P4 source.
fn p4_headers() -> BTreeMap<String, Vec<(String, usize, usize)>> {
    let src =
        std::fs::read_to_string(p4_dir().join("hovercraft_agg.p4")).expect("p4/hovercraft_agg.p4");
    let mut out = BTreeMap::new();
    let mut rest = src.as_str();
    while let Some(pos) = rest.find("header ") {
        rest = &rest[pos + 7..];
        let Some(open) = rest.find('{') else { break };
        let name = rest[..open].trim().to_string();
        let close = rest.find('}').expect("header block closes");
        if name.contains(char::is_whitespace) || name.is_empty() {
            rest = &rest[close..];
            continue;
        }
        let mut fields = Vec::new();
        let mut bit = 0usize;
        for decl in rest[open + 1..close].split(';') {
            let decl = decl.trim();
            let Some(w) = decl.strip_prefix("bit<") else {
                continue;
            };
            let (width, field) = w.split_once('>').expect("bit<W> name");
            let width: usize = width.trim().parse().expect("width");
            // Bit offset and width; byte alignment is checked for the headers compared below.
            fields.push((field.trim().to_string(), bit, width));
            bit += width;
        }
        out.insert(name, fields);
        rest = &rest[close..];
    }
    out
}

/// (field, byte offset, byte size) of header `name`, which must be byte aligned.
fn offsets(
    h: &BTreeMap<String, Vec<(String, usize, usize)>>,
    name: &str,
) -> Vec<(String, usize, usize)> {
    let fields = h
        .get(name)
        .unwrap_or_else(|| panic!("p4 program declares no header {name}"));
    fields
        .iter()
        .map(|(f, bit, width)| {
            assert!(
                bit.is_multiple_of(8) && width.is_multiple_of(8),
                "{name}.{f} is not byte aligned"
            );
            (f.clone(), bit / 8, width / 8)
        })
        .collect()
}

/// Reads `size` big-endian bytes at `off`.
fn field(bytes: &[u8], off: usize, size: usize) -> u64 {
    bytes[off..off + size]
        .iter()
        .fold(0, |acc, &b| (acc << 8) | b as u64)
}

#[test]
fn p4_parser_offsets_match_the_rust_codec() {
    let h = p4_headers();
    // R2P2 header.
    let r2p2 = Header {
        msg_type: MsgType::RaftRep,
        policy: Policy::FixedRoute,
        first: true,
        last: true,
        req_id: 0xABCD,
        packet_order: 0x0102,
    }
    .encode();
    let expect: BTreeMap<&str, u64> = [
        ("magic", 0xCC),
        ("header_size", 8),
        ("type_policy", 0x61),
        ("flags", 0xC0),
        ("req_id", 0xABCD),
        ("packet_order", 0x0102),
    ]
    .into();
    let f = offsets(&h, "r2p2_h");
    assert_eq!(f.len(), expect.len());
    for (name, off, size) in &f {
        assert_eq!(
            field(&r2p2, *off, *size),
            expect[name.as_str()],
            "r2p2_h.{name}"
        );
    }
    // AppendEntries request: common header + fixed part.
    let mut ae = Vec::new();
    RaftMessage {
        from: 7,
        term: 0x1111,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: 0x2222,
            prev_log_term: 0x3333,
            leader_commit: 0x4444,
            entries: vec![LogEntry {
                term: 0x1111,
                client: SocketAddrV4::new([1, 2, 3, 4].into(), 5),
                req_id: 6,
                policy: Policy::ReplicatedRoute,
                replier: 1,
                body: None,
            }],
        },
    }
    .encode(&mut ae);
    let common = offsets(&h, "raft_common_h");
    let want: BTreeMap<&str, u64> = [("raft_type", 3), ("from", 7), ("term", 0x1111)].into();
    for (name, off, size) in &common {
        assert_eq!(
            field(&ae, *off, *size),
            want[name.as_str()],
            "raft_common_h.{name}"
        );
    }
    let base = common.iter().map(|(_, o, s)| o + s).max().unwrap();
    let want: BTreeMap<&str, u64> = [
        ("prev_log_idx", 0x2222),
        ("prev_log_term", 0x3333),
        ("leader_commit", 0x4444),
        ("n_entries", 1),
    ]
    .into();
    for (name, off, size) in &offsets(&h, "ae_req_h") {
        assert_eq!(
            field(&ae, base + off, *size),
            want[name.as_str()],
            "ae_req_h.{name}"
        );
    }
    // AppendEntries reply.
    let mut rep = Vec::new();
    RaftMessage {
        from: 2,
        term: 9,
        body: RaftBody::AppendEntriesRep {
            result: AppendResult::Success,
            last_log_idx: 0x5555,
            first_idx: 0x6666,
            done: 0x7777,
        },
    }
    .encode(&mut rep);
    let want: BTreeMap<&str, u64> = [
        ("result", 1),
        ("last_log_idx", 0x5555),
        ("first_idx", 0x6666),
        ("done", 0x7777),
    ]
    .into();
    for (name, off, size) in &offsets(&h, "ae_rep_h") {
        assert_eq!(
            field(&rep, base + off, *size),
            want[name.as_str()],
            "ae_rep_h.{name}"
        );
    }
    // Group reply: fixed part, then the per-peer entries.
    let mut group = Vec::new();
    RaftMessage {
        from: 0xFF,
        term: 9,
        body: RaftBody::AppendEntriesRepGroup {
            last_log_idx: 0x8888,
            commit_idx: 0x9999,
            dones: vec![
                GroupDone {
                    peer: 0,
                    done: 0xAAAA,
                },
                GroupDone {
                    peer: 1,
                    done: 0xBBBB,
                },
            ],
        },
    }
    .encode(&mut group);
    let g = offsets(&h, "group_h");
    let want: BTreeMap<&str, u64> = [
        ("last_log_idx", 0x8888),
        ("commit_idx", 0x9999),
        ("n_peers", 2),
    ]
    .into();
    for (name, off, size) in &g {
        assert_eq!(
            field(&group, base + off, *size),
            want[name.as_str()],
            "group_h.{name}"
        );
    }
    let dones_at = base + g.iter().map(|(_, o, s)| o + s).max().unwrap();
    let d = offsets(&h, "group_done_h");
    let stride: usize = d.iter().map(|(_, _, s)| s).sum();
    for (k, (peer, done)) in [(0u64, 0xAAAAu64), (1, 0xBBBB)].iter().enumerate() {
        for (name, off, size) in &d {
            let want = if name == "peer" { *peer } else { *done };
            assert_eq!(
                field(&group, dones_at + k * stride + off, *size),
                want,
                "group_done_h[{k}].{name}"
            );
        }
    }
    assert_eq!(
        dones_at + 2 * stride,
        group.len(),
        "group reply ends after its peers"
    );
}
