//! The replica's durable state on disk: one append-only log file per node
//! (`<storage.dir>/node<id>/raft.log`), replayed into a `DurableState` for `Node::restored`.
//!
//! Every persist request of the core (term, vote, and the log entries that changed) becomes
//! one record. The event loop hands batches of requests to the storage thread
//! ([`writer::Writer`]), which writes and fsyncs them (unless `fsync: false`) and only then
//! reports them persisted, so `Node::handle_persisted` — and everything the core holds back
//! until then — happens after the fsync (persist before send).
//!
//! # Format (version 1)
//!
//! A 96-byte header, then records. Header: `magic "HCRFTLOG" | version u32 | header_bytes u32
//! | cluster_id u64 | node_id u8 | nodes u8 | mode u8 | app u8 | name_len u8 | 3 × 0 |
//! cluster name (60 bytes, zero padded, informational) | crc32(bytes 0..92) u32` (little
//! endian). `cluster_id` is a hash of the mode and the member addresses *in id order* (the id
//! ↔ address binding is part of a node's identity: votes name ids), see [`cluster_id`]. A node
//! refuses a log whose header names another cluster, node, mode or app, with one line naming
//! the file and the field: replaying another node's votes and entries would break Raft
//! silently.
//!
//! Record: `len u32 | index u64 | crc32(payload) u32 | crc32(bytes 0..16) u32 | payload`
//! (little endian). `index` numbers records from 0, so swapped, repeated or foreign records
//! are structure errors; the header checksum covers the length, so a damaged length is caught
//! before it is trusted. Payload (big-endian integers): `term u64 | has_vote u8 | vote u8 |
//! has_from u8 | from u64 | last_index u64 | n u32 | n × entry`, entry: `term u64 | client ip
//! u32 | port u16 | req_id u16 | policy u8 | replier u8 | has_body u8 | [len u32 | body]`.
//!
//! # What replay accepts
//!
//! Replay walks the records once and applies each in place (O(file size); in a release build
//! 80k entries replay in 12-23 ms and 1M in 0.3-0.4 s, where the old per-record clone
//! took 149 s for 80k — `hovercraft-runtime-bench replay` prints the table). Only a **torn last write** is cut (`set_len` + `sync_all`), and the node starts with
//! what came before:
//! - the file ends inside a record header, or before a record's declared end; or
//! - a record's checksum fails and *no valid record follows it* (a crash while appending: the
//!   kernel may extend the file before the data reaches the disk, leaving zeros or garbage).
//!   Garbage appended after the last good record is the same case: it never parses as a
//!   complete record with the next index, so it cannot hold acknowledged state, and a crash
//!   mid-append leaves exactly such bytes. Damage that runs from one record to the end of the
//!   file (a group commit of several records torn by a crash) is cut at its first record:
//!   with nothing valid after it, it cannot be told apart from a torn write.
//!
//! Anything else stops the node with a one-line [`StorageError`] naming the file, the byte
//! offset and the record number: a checksum failure with a valid record after it (a flipped
//! bit, a zeroed block, a bad length), a record number out of sequence (swapped or repeated
//! records), a record that decodes but could not have been written (a gap in the log, a term
//! that goes back, a vote that changes within a term, entry terms out of order). Those records
//! were fsynced and may have been acknowledged; cutting there would silently forget votes and
//! committed entries. Conservative corner: a crash in the middle of a multi-page group commit
//! can, on some file systems, persist a later page before an earlier one; that shows as
//! damage with a valid record after it and is refused too (safe: nothing is lost silently).
//!
//! # Repair
//!
//! Stop the node, move its storage dir away (`<storage.dir>/node<id>`; keep it for a
//! post-mortem), and restart it: it starts empty and catches up from the leader. A node that
//! lost durable state must not vote until it has caught up (it may have voted in the current
//! term, and with an empty log it would vote for a candidate missing committed entries). The
//! core has no such "no vote until caught up" mode yet — TODO(issue 15): pending on core
//! snapshots. Until then, rejoin a wiped node only while all other nodes are up and a leader is
//! serving, and wipe one node at a time. A wiped node has also forgotten which replies it
//! sent, so while catching up it answers again the requests it was the designated replier of
//! (clients see duplicates: 354 of 5996 requests in `tests/damaged_log.rs`); the same core
//! mode should hold its replies up to the commit index it first learns (TODO(issue 15)).
//!
//! # Old files
//!
//! Logs written before format version 1 (no header) are **refused**, with a message saying to
//! start the node on a fresh storage dir: they carry no cluster or node identity to check, and
//! their replay had exactly the bugs this format fixes.
//!
//! # Growth
//!
//! The file grows with the log (about 60 bytes per metadata-only HovercRaft entry in its own
//! record, less when records carry several; plus the body where the node held it when the
//! entry was persisted) and with rewritten suffixes. The core has no snapshots yet, so the
//! file is never cut: a restart replays all of it. Replay reads the whole file into memory
//! (the state it rebuilds is held in memory anyway).
#![forbid(unsafe_code)]

pub mod writer;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use hovercraft_core::app::AppKind;
use hovercraft_core::node::{Mode, NodeId};
use hovercraft_core::raft::{DurableState, PersistRequest};
use hovercraft_core::wire::raft::LogEntry;
use hovercraft_core::wire::Policy;

use crate::cluster::ClusterFile;

pub const MAGIC: [u8; 8] = *b"HCRFTLOG";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 96;
/// Bytes of the cluster name kept in the header (longer names are cut; it is informational).
const NAME_BYTES: usize = 60;
/// Bytes before each record's payload.
pub const FRAME_BYTES: usize = 20;
/// Largest record accepted on replay (a larger declared length with a valid header checksum
/// is refused); the writer never produces one.
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// Smallest encoded entry (no body): bounds the allocation a record's count may ask for.
const MIN_ENTRY_BYTES: usize = 19;

/// Who a log belongs to: written in the header, checked on every open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogIdentity {
    pub cluster_id: u64,
    /// Informational (errors show it); not compared.
    pub cluster_name: String,
    pub node_id: NodeId,
    pub nodes: u8,
    pub mode: Mode,
    pub app: AppKind,
}

impl LogIdentity {
    pub fn of(cluster: &ClusterFile, id: NodeId) -> LogIdentity {
        LogIdentity {
            cluster_id: cluster_id(cluster.mode, &cluster.peers()),
            cluster_name: cluster.name.clone(),
            node_id: id,
            nodes: cluster.nodes.len() as u8,
            mode: cluster.mode,
            app: cluster.app(),
        }
    }
}

/// FNV-1a (64 bit) of `mode` and the member addresses in id order: stable across builds and
/// machines (unlike std's hasher), and any change of membership, order or mode changes it.
pub fn cluster_id(mode: Mode, members: &[SocketAddrV4]) -> u64 {
    let mut text = format!("hovercraft-cluster/1|{}", mode.as_str());
    for (i, a) in members.iter().enumerate() {
        text.push_str(&format!("|{i}={a}"));
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn mode_code(m: Mode) -> u8 {
    match m {
        Mode::Unreplicated => 0,
        Mode::Raft => 1,
        Mode::Hovercraft => 2,
        Mode::HovercraftPlusPlus => 3,
    }
}

fn mode_name(code: u8) -> String {
    match code {
        0 => "unreplicated".into(),
        1 => "raft".into(),
        2 => "hovercraft".into(),
        3 => "hovercraft++".into(),
        c => format!("unknown ({c})"),
    }
}

fn app_code(a: AppKind) -> u8 {
    match a {
        AppKind::Synthetic => 0,
        AppKind::Kv => 1,
    }
}

fn app_name(code: u8) -> String {
    match code {
        0 => "synthetic".into(),
        1 => "kv".into(),
        c => format!("unknown ({c})"),
    }
}

pub fn encode_header(id: &LogIdentity) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&id.cluster_id.to_le_bytes());
    h[24] = id.node_id;
    h[25] = id.nodes;
    h[26] = mode_code(id.mode);
    h[27] = app_code(id.app);
    let mut cut = id.cluster_name.len().min(NAME_BYTES);
    while !id.cluster_name.is_char_boundary(cut) {
        cut -= 1;
    }
    h[28] = cut as u8;
    h[32..32 + cut].copy_from_slice(&id.cluster_name.as_bytes()[..cut]);
    let crc = crc32fast::hash(&h[..HEADER_BYTES - 4]);
    h[HEADER_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why replay refused a file (the path is added by [`StorageError`]). Every message is one
/// line and says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "no file header: a log from before format version {FORMAT_VERSION} (issue 15) carries \
         no cluster or node identity and is not replayed; start this node on a fresh storage \
         dir (move <storage.dir>/node<id> away): it rejoins empty and catches up from the leader"
    )]
    Headerless,
    #[error(
        "not a raft log of this runtime ({reason}); refusing to start: move this node's \
         storage dir away and restart it empty"
    )]
    BadHeader { reason: String },
    #[error(
        "format version {found}, this runtime reads version {FORMAT_VERSION}; start this node \
         on a fresh storage dir"
    )]
    Version { found: u32 },
    #[error(
        "belongs to {what}: header field `{field}` is {found}, this node's is {want}; refusing \
         to replay it (wrong storage.dir or cluster file?)"
    )]
    Mismatch {
        what: &'static str,
        field: &'static str,
        found: String,
        want: String,
    },
    #[error(
        "record {record} at byte {offset}: {reason}; this is damage, not a torn last write, \
         so the node refuses to start (repair: move this node's storage dir away and restart \
         it empty so it catches up from the leader; see runtime-dpdk/src/storage.rs)"
    )]
    Corrupt {
        offset: u64,
        record: u64,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("{path}: {error}")]
    Replay { path: String, error: ReplayError },
}

/// A torn last write that replay cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub offset: u64,
    pub record: u64,
    pub bytes: u64,
    pub reason: String,
}

/// What replay found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub records: u64,
    /// Length of the valid prefix (header and whole records).
    pub good_bytes: u64,
    pub cut: Option<Cut>,
}

impl Replay {
    pub fn cut_bytes(&self) -> u64 {
        self.cut.as_ref().map_or(0, |c| c.bytes)
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks the header of a non-empty file against `want`.
fn check_header(data: &[u8], want: &LogIdentity) -> Result<(), ReplayError> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        // A pre-header log starts with a record `len u32 | crc u32 | payload`.
        if data.len() >= 8 {
            let len = le_u32(data, 0) as usize;
            if len <= data.len() - 8 && crc32fast::hash(&data[8..8 + len]) == le_u32(data, 4) {
                return Err(ReplayError::Headerless);
            }
        }
        let bad = |reason: &str| ReplayError::BadHeader {
            reason: reason.into(),
        };
        return Err(bad("no \"HCRFTLOG\" magic at byte 0"));
    }
    if data.len() < HEADER_BYTES {
        return Err(ReplayError::BadHeader {
            reason: format!(
                "the file ({} bytes) ends inside the {HEADER_BYTES}-byte header",
                data.len()
            ),
        });
    }
    let h = &data[..HEADER_BYTES];
    let version = le_u32(h, 8);
    if version != FORMAT_VERSION {
        return Err(ReplayError::Version { found: version });
    }
    if crc32fast::hash(&h[..HEADER_BYTES - 4]) != le_u32(h, HEADER_BYTES - 4)
        || le_u32(h, 12) as usize != HEADER_BYTES
    {
        return Err(ReplayError::BadHeader {
            reason: "header checksum mismatch".into(),
        });
    }
    let name_len = usize::from(h[28]).min(NAME_BYTES);
    let name = String::from_utf8_lossy(&h[32..32 + name_len]).into_owned();
    let other_cluster = "another cluster";
    let checks = [
        (
            "another node",
            "node_id",
            h[24] != want.node_id,
            h[24].to_string(),
            want.node_id.to_string(),
        ),
        (
            other_cluster,
            "nodes",
            h[25] != want.nodes,
            h[25].to_string(),
            want.nodes.to_string(),
        ),
        (
            other_cluster,
            "mode",
            h[26] != mode_code(want.mode),
            mode_name(h[26]),
            want.mode.as_str().to_string(),
        ),
        (
            other_cluster,
            "app",
            h[27] != app_code(want.app),
            app_name(h[27]),
            app_name(app_code(want.app)),
        ),
        (
            other_cluster,
            "cluster_id",
            le_u64(h, 16) != want.cluster_id,
            format!("{:#018x} (cluster {name:?})", le_u64(h, 16)),
            format!(
                "{:#018x} (cluster {:?})",
                want.cluster_id, want.cluster_name
            ),
        ),
    ];
    for (what, field, differs, found, want) in checks {
        if differs {
            return Err(ReplayError::Mismatch {
                what,
                field,
                found,
                want,
            });
        }
    }
    Ok(())
}

/// One frame as found at a position.
enum Frame<'a> {
    Good {
        payload: &'a [u8],
        end: usize,
    },
    /// The file ends inside the frame: a torn last write by definition.
    Torn(String),
    /// A checksum failed; `scan_from` is where a following valid record could start.
    Bad {
        reason: String,
        scan_from: usize,
    },
    /// The header checksum holds but the frame is not what the writer produces here.
    Wrong(String),
}

fn frame_at(data: &[u8], pos: usize, index: u64) -> Frame<'_> {
    let left = data.len() - pos;
    if left < FRAME_BYTES {
        return Frame::Torn(format!(
            "the file ends {left} bytes into a {FRAME_BYTES}-byte record header"
        ));
    }
    let f = &data[pos..pos + FRAME_BYTES];
    if crc32fast::hash(&f[..16]) != le_u32(f, 16) {
        return Frame::Bad {
            reason: "record header checksum mismatch".into(),
            scan_from: pos + 1,
        };
    }
    let len = le_u32(f, 0) as usize;
    let found = le_u64(f, 4);
    if found != index {
        return Frame::Wrong(format!(
            "record number {found} where {index} was expected (records swapped, repeated or \
             from another file)"
        ));
    }
    if len > MAX_RECORD_BYTES {
        return Frame::Wrong(format!(
            "declared length {len} above the {MAX_RECORD_BYTES}-byte limit"
        ));
    }
    if left - FRAME_BYTES < len {
        return Frame::Torn(format!(
            "the file ends {} bytes before the record's declared end",
            len - (left - FRAME_BYTES)
        ));
    }
    let payload = &data[pos + FRAME_BYTES..pos + FRAME_BYTES + len];
    if crc32fast::hash(payload) != le_u32(f, 12) {
        return Frame::Bad {
            reason: "payload checksum mismatch".into(),
            scan_from: pos + FRAME_BYTES + len,
        };
    }
    Frame::Good {
        payload,
        end: pos + FRAME_BYTES + len,
    }
}

/// The first valid record (number `index` or later) starting at or after `from`: its offset
/// and number. Linear: the number's plausibility and the 16-byte header checksum reject a
/// random position in O(1); only a position that passes both has its payload checked.
fn valid_frame_after(data: &[u8], from: usize, index: u64) -> Option<(usize, u64)> {
    // Every record takes at least FRAME_BYTES, so no later record can have a larger number.
    let max_index = index.saturating_add((data.len() / FRAME_BYTES) as u64);
    let last = data.len().checked_sub(FRAME_BYTES)?;
    for q in from..=last {
        let f = &data[q..q + FRAME_BYTES];
        let found = le_u64(f, 4);
        if found < index || found > max_index || crc32fast::hash(&f[..16]) != le_u32(f, 16) {
            continue;
        }
        let len = le_u32(f, 0) as usize;
        if len > MAX_RECORD_BYTES || data.len() - q - FRAME_BYTES < len {
            continue;
        }
        if crc32fast::hash(&data[q + FRAME_BYTES..q + FRAME_BYTES + len]) == le_u32(f, 12) {
            return Some((q, found));
        }
    }
    None
}

/// Replays a log file's bytes (non-empty: an empty file is a new log) into the state it
/// describes, checking the header against `want`. Never panics on any input.
pub fn replay(data: &[u8], want: &LogIdentity) -> Result<(DurableState, Replay), ReplayError> {
    check_header(data, want)?;
    let mut state = DurableState::default();
    let mut pos = HEADER_BYTES;
    let mut index = 0u64;
    let corrupt = |pos: usize, index: u64, reason: String| ReplayError::Corrupt {
        offset: pos as u64,
        record: index,
        reason,
    };
    let mut cut = None;
    while pos < data.len() {
        match frame_at(data, pos, index) {
            Frame::Good { payload, end } => {
                apply(&mut state, payload).map_err(|r| corrupt(pos, index, r))?;
                pos = end;
                index += 1;
            }
            Frame::Wrong(reason) => return Err(corrupt(pos, index, reason)),
            Frame::Torn(reason) => {
                cut = Some((reason, pos));
                break;
            }
            Frame::Bad { reason, scan_from } => {
                if let Some((at, n)) = valid_frame_after(data, scan_from, index) {
                    return Err(corrupt(
                        pos,
                        index,
                        format!("{reason}, and a valid record ({n}) follows at byte {at}"),
                    ));
                }
                cut = Some((format!("{reason} and nothing valid follows"), pos));
                break;
            }
        }
    }
    let cut = cut.map(|(reason, at)| Cut {
        offset: at as u64,
        record: index,
        bytes: (data.len() - at) as u64,
        reason,
    });
    Ok((
        state,
        Replay {
            records: index,
            good_bytes: pos as u64,
            cut,
        },
    ))
}

struct Cursor<'a>(&'a [u8]);

const SHORT: &str = "payload ends inside a field";

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err(SHORT);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn flag(&mut self) -> Result<bool, &'static str> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("a flag byte is neither 0 nor 1"),
        }
    }
}

fn encode_entry(e: &LogEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.term.to_be_bytes());
    out.extend_from_slice(&u32::from(*e.client.ip()).to_be_bytes());
    out.extend_from_slice(&e.client.port().to_be_bytes());
    out.extend_from_slice(&e.req_id.to_be_bytes());
    out.push(e.policy as u8);
    out.push(e.replier);
    match &e.body {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn decode_entry(c: &mut Cursor<'_>) -> Result<LogEntry, &'static str> {
    let term = c.u64()?;
    let ip = c.u32()?;
    let port = c.u16()?;
    let req_id = c.u16()?;
    let policy = Policy::from_u8(c.u8()?).map_err(|_| "unknown policy")?;
    let replier = c.u8()?;
    let body = if c.flag()? {
        let n = c.u32()? as usize;
        Some(c.take(n)?.to_vec())
    } else {
        None
    };
    Ok(LogEntry {
        term,
        client: SocketAddrV4::new(ip.into(), port),
        req_id,
        policy,
        replier,
        body,
    })
}

/// Encodes one persist request as a record payload (`entries` are `log_from..=last_index`).
pub fn encode_payload(req: &PersistRequest, out: &mut Vec<u8>) {
    out.extend_from_slice(&req.term.to_be_bytes());
    out.push(req.voted_for.is_some() as u8);
    out.push(req.voted_for.unwrap_or(0));
    out.push(req.log_from.is_some() as u8);
    out.extend_from_slice(&req.log_from.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&req.last_index.to_be_bytes());
    let entries: &[LogEntry] = if req.log_from.is_some() {
        &req.entries
    } else {
        &[]
    };
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        encode_entry(e, out);
    }
}

/// Applies one record's payload to `state` in place, after checking that the writer could
/// have produced it; on `Err` the state is unchanged.
fn apply(state: &mut DurableState, payload: &[u8]) -> Result<(), String> {
    let mut c = Cursor(payload);
    let term = c.u64()?;
    let has_vote = c.flag()?;
    let vote = c.u8()?;
    let has_from = c.flag()?;
    let from = c.u64()?;
    let last_index = c.u64()?;
    let n = c.u32()? as usize;
    let mut entries = Vec::with_capacity(n.min(payload.len() / MIN_ENTRY_BYTES));
    for _ in 0..n {
        entries.push(decode_entry(&mut c)?);
    }
    if !c.0.is_empty() {
        return Err(format!("{} bytes after the last entry", c.0.len()));
    }
    let vote = has_vote.then_some(vote);
    if term < state.term {
        return Err(format!("term goes back from {} to {term}", state.term));
    }
    if term == state.term && state.voted_for.is_some() && vote != state.voted_for {
        return Err(format!(
            "the vote of term {term} changes from {:?} to {vote:?}",
            state.voted_for
        ));
    }
    let held = state.entries.len() as u64;
    let kept = if has_from {
        if from == 0 || from - 1 > held {
            return Err(format!(
                "a gap: entries from index {from} while the log ends at {held}"
            ));
        }
        from - 1
    } else {
        if n > 0 {
            return Err(format!("{n} entries without a start index"));
        }
        held
    };
    let mut prev = match kept {
        0 => 0,
        k => state.entries[k as usize - 1].term,
    };
    for (i, e) in entries.iter().enumerate() {
        if e.term < prev || e.term > term {
            return Err(format!(
                "entry {} has term {} (previous entry {prev}, record term {term})",
                kept + 1 + i as u64,
                e.term
            ));
        }
        prev = e.term;
    }
    if last_index > kept + n as u64 {
        return Err(format!(
            "last index {last_index} beyond the {} entries the log holds",
            kept + n as u64
        ));
    }
    state.term = term;
    state.voted_for = vote;
    if has_from {
        state.entries.truncate(kept as usize);
        state.entries.extend(entries);
    }
    state.entries.truncate(last_index as usize);
    Ok(())
}

/// The open log: replayed, positioned at its end, appending whole records.
pub struct LogFile {
    file: File,
    path: PathBuf,
    fsync: bool,
    pending: Vec<u8>,
    record: Vec<u8>,
    next_record: u64,
    /// Bytes in the file (after the last flush).
    bytes: u64,
}

impl LogFile {
    /// Opens the log at `path` (creating it with `identity`'s header if it is missing or
    /// empty), replays it, and cuts a torn last write.
    pub fn open(
        path: &Path,
        identity: &LogIdentity,
        fsync: bool,
    ) -> Result<(LogFile, DurableState, Replay), StorageError> {
        let err = |op: &'static str| {
            let path = path.display().to_string();
            move |source| StorageError::Io { path, op, source }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err("create its directory"))?;
        let mut data = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut data).map_err(err("read"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err("open")(e)),
        }
        if data.is_empty() {
            create(path, identity).map_err(err("create"))?;
            data.extend_from_slice(&encode_header(identity));
        }
        let (state, replay) = replay(&data, identity).map_err(|error| StorageError::Replay {
            path: path.display().to_string(),
            error,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err("open"))?;
        // Two processes appending to one log would interleave records: the second one stops.
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => err("lock")(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process (a node with the same id?) holds it",
            )),
            std::fs::TryLockError::Error(e) => err("lock")(e),
        })?;
        if replay.cut.is_some() {
            file.set_len(replay.good_bytes)
                .map_err(err("cut the torn tail of"))?;
            file.sync_all().map_err(err("sync"))?;
        }
        file.seek(SeekFrom::Start(replay.good_bytes))
            .map_err(err("seek"))?;
        Ok((
            LogFile {
                file,
                path: path.to_path_buf(),
                fsync,
                pending: Vec::new(),
                record: Vec::new(),
                next_record: replay.records,
                bytes: replay.good_bytes,
            },
            state,
            replay,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file after the last flush.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Queues one persist request as a record (written by the next [`LogFile::flush`]).
    pub fn append(&mut self, req: &PersistRequest) {
        self.record.clear();
        encode_payload(req, &mut self.record);
        let mut frame = [0u8; FRAME_BYTES];
        frame[0..4].copy_from_slice(&(self.record.len() as u32).to_le_bytes());
        frame[4..12].copy_from_slice(&self.next_record.to_le_bytes());
        frame[12..16].copy_from_slice(&crc32fast::hash(&self.record).to_le_bytes());
        let hcrc = crc32fast::hash(&frame[..16]);
        frame[16..20].copy_from_slice(&hcrc.to_le_bytes());
        self.pending.extend_from_slice(&frame);
        self.pending.extend_from_slice(&self.record);
        self.next_record += 1;
    }

    /// Writes what was queued and, with fsync on, waits until it is on stable storage.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        if self.fsync {
            self.file.sync_data()?;
        }
        self.bytes += self.pending.len() as u64;
        self.pending.clear();
        // A large group commit should not pin its buffer for the node's lifetime.
        self.pending.shrink_to(1 << 20);
        Ok(())
    }
}

/// Creates a log holding only the header, atomically: a crash leaves either no log or a
/// whole header (written to a temporary file, synced, renamed, and the directory synced).
fn create(path: &Path, identity: &LogIdentity) -> io::Result<()> {
    let tmp = path.with_extension("log.new");
    let mut f = File::create(&tmp)?;
    f.write_all(&encode_header(identity))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

// ---- the replay benchmark (`hovercraft-runtime-bench replay`, and a test) ----

/// The identity of the benchmark's logs (node 1 of a 3-node hovercraft kv cluster).
pub fn bench_identity() -> LogIdentity {
    let members: Vec<SocketAddrV4> = (0..3)
        .map(|i| SocketAddrV4::new([10, 77, 0, i + 1].into(), 7000))
        .collect();
    LogIdentity {
        cluster_id: cluster_id(Mode::Hovercraft, &members),
        cluster_name: "replay-bench".into(),
        node_id: 1,
        nodes: 3,
        mode: Mode::Hovercraft,
        app: AppKind::Kv,
    }
}

/// Writes a fresh log holding `entries` metadata-only entries the way a HovercRaft follower
/// persists them under light load: a vote, then one record per entry (the most records, so
/// the most per-record work), written in groups of 64 without fsync. Returns the file size.
pub fn write_bench_log(path: &Path, entries: u64) -> Result<u64, StorageError> {
    let io_err = |op: &'static str| {
        let path = path.display().to_string();
        move |source| StorageError::Io { path, op, source }
    };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("remove")(e)),
        _ => {}
    }
    let (mut log, _, _) = LogFile::open(path, &bench_identity(), false)?;
    let term = 3;
    let mut req = PersistRequest {
        seq: 1,
        term,
        voted_for: Some(0),
        log_from: None,
        last_index: 0,
        entries: Vec::new(),
        snapshot: None,
    };
    log.append(&req);
    for i in 1..=entries {
        req.seq = i + 1;
        req.log_from = Some(i);
        req.last_index = i;
        req.entries = vec![LogEntry {
            term,
            client: SocketAddrV4::new([10, 77, 0, 9].into(), 9000 + (i % 8) as u16),
            req_id: i as u16,
            policy: Policy::ReplicatedRoute,
            replier: (i % 3) as u8,
            body: None,
        }];
        log.append(&req);
        if i % 64 == 0 {
            log.flush().map_err(io_err("write"))?;
        }
    }
    log.flush().map_err(io_err("write"))?;
    Ok(log.bytes())
}

#[cfg(test)]
mod tests;
