//! Storage replay of the runtime from arbitrary bytes: the log file (`storage::replay_with`)
//! and the snapshot file beside it (`storage::snapshot::decode`), through their bytes APIs.
//! Files are either raw bytes or built from records the input describes, framed with valid
//! checksums (so replay gets past them), with damage the input picks. Never panics; a
//! replay's accounting adds up, its errors are one line, and what it accepts a restarting
//! `Node` loads or refuses without panicking.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use hovercraft_core::app::{self, AppKind};
use hovercraft_core::raft::session::Sessions;
use hovercraft_core::raft::{ClusterConfig, PersistRequest, RaftConfig, Snapshot};
use hovercraft_core::time::Instant;
use hovercraft_core::types::Mode;
use hovercraft_core::wire::framing::ReassemblyConfig;
use hovercraft_core::{Node, NodeConfig};
use hovercraft_fuzz as f;
use hovercraft_runtime::storage::snapshot::{self, SNAPSHOT_MAGIC};
use hovercraft_runtime::storage::{
    cluster_id, encode_entry, encode_header, encode_payload, encode_restart, replay_with,
    LogIdentity, HEADER_BYTES,
};
use libfuzzer_sys::fuzz_target;

fn identity() -> LogIdentity {
    let peers: Vec<_> = (0..3).map(f::peer).collect();
    LogIdentity {
        cluster_id: cluster_id(Mode::Raft, &peers),
        cluster_name: "fuzz".into(),
        node_id: 0,
        nodes: 3,
        mode: Mode::Raft,
        app: AppKind::Synthetic,
    }
}

/// Record framing as the writer does it: `len | index | crc(payload) | crc(0..16) | payload`.
fn push_frame(record: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut frame = [0u8; 20];
    frame[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    frame[4..12].copy_from_slice(&record.to_le_bytes());
    frame[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&frame[..16]);
    frame[16..20].copy_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(&frame);
    out.extend_from_slice(payload);
}

fn record_payload(u: &mut Unstructured) -> Result<Vec<u8>> {
    let clients = [f::client(0), f::client(1)];
    let mut out = Vec::new();
    let term = f::number(u)?;
    let voted_for = if u.arbitrary()? {
        Some(u.int_in_range(0u8..=3)?)
    } else {
        None
    };
    let n = u.int_in_range(0usize..=4)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(f::entry(u, &clients)?);
    }
    match u.int_in_range(0u8..=5)? {
        0 | 1 => {
            let log_from = if u.arbitrary()? {
                Some(f::number(u)?)
            } else {
                None
            };
            encode_payload(
                &PersistRequest {
                    seq: 0,
                    term,
                    voted_for,
                    log_from,
                    last_index: f::number(u)?,
                    entries,
                    snapshot: None,
                },
                &mut out,
            );
        }
        2 => {
            // `encode_restart` writes `base_index + 1` and `base_index + entries.len()`.
            let base_index = f::number(u)?.min(u64::MAX - 8);
            let base_term = f::number(u)?;
            encode_restart(term, voted_for, base_index, base_term, &entries, &mut out);
        }
        3 => {
            // Any fields, in the record layout (the writer never makes most of these).
            out.extend_from_slice(&term.to_be_bytes());
            out.push(voted_for.is_some() as u8);
            out.push(voted_for.unwrap_or(0));
            let kind = u.int_in_range(0u8..=3)?;
            out.push(kind);
            out.extend_from_slice(&f::number(u)?.to_be_bytes());
            out.extend_from_slice(&f::number(u)?.to_be_bytes());
            if kind == 2 {
                out.extend_from_slice(&f::number(u)?.to_be_bytes());
            }
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for e in &entries {
                encode_entry(e, &mut out);
            }
        }
        4 => {
            // A well-formed record with one byte changed.
            encode_payload(
                &PersistRequest {
                    seq: 0,
                    term,
                    voted_for,
                    log_from: Some(f::number(u)?),
                    last_index: f::number(u)?,
                    entries,
                    snapshot: None,
                },
                &mut out,
            );
            let i = u.choose_index(out.len())?;
            out[i] = u.arbitrary()?;
        }
        _ => out = f::bytes(u, 64)?,
    }
    Ok(out)
}

fn snapshot_data(u: &mut Unstructured) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 | 1 => {
            let mut sessions = Sessions::new(16);
            // Applied indexes only grow.
            for index in 1..=u.int_in_range(0u64..=3)? {
                let key = (f::client(u.int_in_range(0..=2)?), u.arbitrary()?);
                sessions.record(key, index);
            }
            let mut s = Vec::new();
            sessions.encode(&mut s);
            let mut a = Vec::new();
            let mut app = app::build(AppKind::Synthetic, Default::default());
            app.snapshot(&mut a);
            Snapshot::compose(&s, &a)
        }
        2 => Snapshot::compose(&f::bytes(u, 48)?, &f::bytes(u, 24)?),
        _ => f::bytes(u, 64)?,
    })
}

/// A snapshot file: the identity header with the snapshot magic, `log_records | index | term
/// | data_len | data | crc`.
fn snapshot_file(u: &mut Unstructured, id: &LogIdentity) -> Result<Vec<u8>> {
    if u.ratio(1u8, 8)? {
        return f::bytes(u, 200);
    }
    let mut out = encode_header(id).to_vec();
    out[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    let crc = crc32fast::hash(&out[..HEADER_BYTES - 4]);
    out[HEADER_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    let data = snapshot_data(u)?;
    out.extend_from_slice(&u64::from(u.int_in_range(0u8..=4)?).to_le_bytes());
    out.extend_from_slice(&f::number(u)?.to_le_bytes());
    out.extend_from_slice(&f::number(u)?.to_le_bytes());
    let len = if u.ratio(1u8, 16)? {
        u.arbitrary()?
    } else {
        data.len() as u64
    };
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn log_file(u: &mut Unstructured, id: &LogIdentity) -> Result<Vec<u8>> {
    if u.ratio(1u8, 8)? {
        return f::bytes(u, 400);
    }
    let mut out = encode_header(id).to_vec();
    let records = u.int_in_range(0u64..=6)?;
    for i in 0..records {
        let payload = record_payload(u)?;
        // The right record number mostly.
        let number = if u.ratio(1u8, 16)? { f::number(u)? } else { i };
        push_frame(number, &payload, &mut out);
    }
    // Damage: a changed byte, a torn end, garbage appended.
    match u.int_in_range(0u8..=7)? {
        0 => {
            let i = u.choose_index(out.len())?;
            out[i] = u.arbitrary()?;
        }
        1 => {
            let keep = u.int_in_range(0..=out.len())?;
            out.truncate(keep);
        }
        2 => out.extend_from_slice(&f::bytes(u, 40)?),
        _ => {}
    }
    Ok(out)
}

#[derive(Debug)]
struct Input {
    log: Vec<u8>,
    snapshot: Option<Vec<u8>>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let id = identity();
        let snapshot = if u.arbitrary()? {
            Some(snapshot_file(u, &id)?)
        } else {
            None
        };
        Ok(Input {
            log: log_file(u, &id)?,
            snapshot,
        })
    }
}

fn node_config() -> NodeConfig {
    NodeConfig {
        id: 0,
        mode: Mode::Raft,
        app: AppKind::Synthetic,
        kv_costs: Default::default(),
        reassembly: ReassemblyConfig::default(),
        seed: 1,
        cluster: Some(ClusterConfig {
            peers: (0..3).map(f::peer).collect(),
            group: std::net::SocketAddrV4::new([239, 1, 1, 1].into(), 8000),
            campaign_at_start: false,
            switch: None,
        }),
        raft: RaftConfig::default(),
        defer_execution: false,
        exec_queue_capacity: 64,
        client_limits: hovercraft_core::node::ClientLimits::UNLIMITED,
        cluster_datagram_overhead_bytes: 0,
    }
}

fn one_line(e: &dyn std::fmt::Display) {
    let s = e.to_string();
    assert!(!s.contains('\n'), "a multi-line error: {s:?}");
}

fuzz_target!(|input: Input| {
    let id = identity();
    let snap = match input.snapshot.as_deref().map(|b| snapshot::decode(b, &id)) {
        None => None,
        Some(Ok(sf)) => {
            assert!(sf.snapshot.index > 0);
            assert_eq!(
                sf.file_bytes(),
                input.snapshot.as_ref().map_or(0, |b| b.len() as u64)
            );
            Some(sf)
        }
        Some(Err(e)) => {
            one_line(&e);
            return;
        }
    };
    match replay_with(&input.log, &id, snap.as_ref()) {
        Err(e) => one_line(&e),
        Ok((durable, replay)) => {
            assert_eq!(
                replay.good_bytes + replay.cut_bytes(),
                input.log.len() as u64,
                "what replay keeps and what it cuts is the file"
            );
            assert!(replay.good_bytes >= HEADER_BYTES as u64);
            if let Some(c) = &replay.cut {
                one_line(&c.reason);
            }
            // What storage hands a restarting node, the node loads or refuses: no panic.
            match Node::restored(node_config(), Instant::ZERO, durable) {
                Ok(_) => {}
                Err(e) => one_line(&e),
            }
        }
    }
});
