//! The replica's durable state on disk: per node (`<storage.dir>/node<id>/`) an append-only
//! log file `raft.log` and the newest snapshot `snapshot` ([`snapshot`] module), replayed
//! into a `DurableState` for `Node::restore_from`.
//!
//! Every persist request of the core (term, vote, and the log entries that changed) becomes
//! one record; a request that carries a snapshot has it written first (atomically: a
//! temporary file, synced and renamed). The event loop hands batches of requests to the
//! storage thread ([`writer::Writer`]), which writes and fsyncs them (unless `fsync: false`)
//! and only then reports them persisted, so `Node::handle_persisted` — and everything the
//! core holds back until then — happens after the fsync (persist before send).
//!
//! After each snapshot the storage thread rewrites the log behind it ([`LogFile::rewrite`]):
//! a new file holding only the term, the vote and the entries after the snapshot's index,
//! synced and renamed over the old one. A crash anywhere leaves the old snapshot and the old
//! log, the new snapshot and the old log (replay applies the snapshot where it was written,
//! so entries it covers are skipped), or the new snapshot and the new log.
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
//! kind u8 | from u64 | last_index u64 | [base_term u64] | n u32 | n × entry`, entry: `term
//! u64 | client ip u32 | port u16 | req_id u16 | policy u8 | replier u8 | has_body u8 | [len
//! u32 | body]`. `kind` 0: the log did not change (bar a truncation to `last_index`); 1: the
//! entries from `from` on changed; 2 (only as the first record of a log rewritten behind a
//! snapshot, and only there): the log restarts after index `from - 1`, whose entry (held by
//! the snapshot) has term `base_term`. Logs without kind 2 are those written before
//! snapshots, read unchanged.
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
//! With a snapshot: it is read first and refused on any damage (it was renamed into place
//! whole, so it cannot be torn) or another identity, like the log; a leftover
//! `snapshot.tmp` is ignored. Replay applies it before the record it was written before
//! (`log_records`), or — in a log rewritten behind it — at the start. Refused as well, with
//! one line: a log rewritten behind a snapshot other than the one beside it, or with none
//! beside it; a log shorter than the records the snapshot follows (they were synced first);
//! a snapshot without a log (the term and vote would be lost); a record that truncates the
//! log behind its start. Replay stays one pass (applying the snapshot drops entries once).
//!
//! # Repair
//!
//! Stop the node, move its storage dir away (`<storage.dir>/node<id>`; keep it for a
//! post-mortem), and restart it with `hovercraft-node --rejoin`: it starts empty and catches
//! up from the leader (by snapshot if it is behind the leader's first kept entry). A node that
//! lost durable state must not vote until it has caught up: it may have voted in the current
//! term, and with an empty log it would vote for a candidate missing committed entries
//! (Raft dissertation §11.7.2). With `--rejoin` it writes a `rejoining` marker (synced) before
//! sending anything, neither votes nor campaigns until it has applied what the first leader
//! it hears had committed, votes afterwards only in later terms, and answers none of the
//! entries up to that commit index (it may have answered them before; `tests/damaged_log.rs`:
//! 0 duplicates, 354 of 5996 requests before). The marker goes once it has caught up; a
//! restart meanwhile goes on rejoining. Residual risk, as without a membership change: a
//! node that, before losing its state, campaigned in a term above its leader's with every
//! RequestVote lost could vote again in that term. Wipe one node at a time.
//!
//! # Old files
//!
//! Logs written before format version 1 (no header) are **refused**, with a message saying to
//! start the node on a fresh storage dir: they carry no cluster or node identity to check, and
//! their replay had exactly the bugs this format fixes.
//!
//! # Growth
//!
//! The log grows with the entries since the last snapshot (about 60 bytes per metadata-only
//! HovercRaft entry in its own record, less when records carry several; plus the body where
//! the node held it when the entry was persisted) and with rewritten suffixes; each snapshot
//! cuts it back to the entries after it (`raft.snapshot_interval_entries` bounds them). Disk
//! use is then about one snapshot (the application's state and the sessions) plus one
//! interval of log, and a restart replays no more than that. Replay reads both files into
//! memory (the state it rebuilds is held in memory anyway).
#![forbid(unsafe_code)]

pub mod snapshot;
pub mod writer;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use hovercraft_core::app::AppKind;
use hovercraft_core::node::{Mode, NodeId};
use hovercraft_core::raft::{DurableState, PersistRequest, Snapshot};
use hovercraft_core::wire::raft::{LogEntry, MAX_WIRE_NUMBER};
use hovercraft_core::wire::Policy;

use self::snapshot::SnapshotFile;
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
    encode_header_for(&MAGIC, id)
}

/// The identity header with `magic` (the log's, or the snapshot file's).
fn encode_header_for(magic: &[u8; 8], id: &LogIdentity) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..8].copy_from_slice(magic);
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
         dir (move <storage.dir>/node<id> away, restart with --rejoin): it catches up from the leader"
    )]
    Headerless,
    #[error(
        "not a {file} of this runtime ({reason}); refusing to start: move this node's \
         storage dir away and restart it with --rejoin"
    )]
    BadHeader { file: &'static str, reason: String },
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
         it with --rejoin so it catches up from the leader; see runtime-dpdk/src/storage.rs)"
    )]
    Corrupt {
        offset: u64,
        record: u64,
        reason: String,
    },
    /// A damaged snapshot file, or a log and snapshot that do not fit together.
    #[error(
        "{reason}; refusing to start (repair: move this node's storage dir away and restart \
         it with --rejoin so it catches up from the leader; see runtime-dpdk/src/storage.rs)"
    )]
    Snapshot { reason: String },
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
    /// Bytes of the snapshot file replay started from (0: none).
    pub snapshot_file_bytes: u64,
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

/// Checks the header of a non-empty log file against `want`.
fn check_header(data: &[u8], want: &LogIdentity) -> Result<(), ReplayError> {
    check_header_for(data, want, &MAGIC, "raft log")
}

/// Checks the identity header (magic `magic`, of a `file`) of a file against `want`.
fn check_header_for(
    data: &[u8],
    want: &LogIdentity,
    magic: &[u8; 8],
    file: &'static str,
) -> Result<(), ReplayError> {
    let bad = |reason: String| ReplayError::BadHeader { file, reason };
    if data.len() < magic.len() || data[..magic.len()] != *magic {
        // A pre-header log starts with a record `len u32 | crc u32 | payload`.
        if *magic == MAGIC && data.len() >= 8 {
            let len = le_u32(data, 0) as usize;
            if len <= data.len() - 8 && crc32fast::hash(&data[8..8 + len]) == le_u32(data, 4) {
                return Err(ReplayError::Headerless);
            }
        }
        return Err(bad(format!(
            "no {:?} magic at byte 0",
            String::from_utf8_lossy(magic)
        )));
    }
    if data.len() < HEADER_BYTES {
        return Err(bad(format!(
            "the file ({} bytes) ends inside the {HEADER_BYTES}-byte header",
            data.len()
        )));
    }
    let h = &data[..HEADER_BYTES];
    let version = le_u32(h, 8);
    if version != FORMAT_VERSION {
        return Err(ReplayError::Version { found: version });
    }
    if crc32fast::hash(&h[..HEADER_BYTES - 4]) != le_u32(h, HEADER_BYTES - 4)
        || le_u32(h, 12) as usize != HEADER_BYTES
    {
        return Err(bad("header checksum mismatch".into()));
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
    replay_with(data, want, None)
}

/// [`replay`] of a log with the snapshot file beside it: the snapshot takes effect at its place
/// in the sequence of records ([`snapshot`] module doc), or — in a log rewritten behind it —
/// before the record that restarts the log after its index.
pub fn replay_with(
    data: &[u8],
    want: &LogIdentity,
    snap: Option<&SnapshotFile>,
) -> Result<(DurableState, Replay), ReplayError> {
    check_header(data, want)?;
    let mut state = LogState::default();
    let mut pending = snap;
    let mut pos = HEADER_BYTES;
    let mut index = 0u64;
    let corrupt = |pos: usize, index: u64, reason: String| ReplayError::Corrupt {
        offset: pos as u64,
        record: index,
        reason,
    };
    let mismatch = |reason: String| ReplayError::Snapshot { reason };
    let mut cut = None;
    while pos < data.len() {
        if let Some(sf) = pending.filter(|sf| sf.log_records == index) {
            state
                .apply_snapshot(&sf.snapshot)
                .map_err(|r| mismatch(format!("before record {index} at byte {pos}: {r}")))?;
            pending = None;
        }
        match frame_at(data, pos, index) {
            Frame::Good { payload, end } => {
                apply(&mut state, payload, index == 0).map_err(|r| corrupt(pos, index, r))?;
                if index == 0 && state.snapshot.is_none() && state.base_index > 0 {
                    // A log rewritten behind a snapshot: the one beside it, or a newer one
                    // written since (applied at its place later).
                    match pending {
                        Some(sf) if sf.snapshot.index == state.base_index => {
                            if sf.snapshot.term != state.base_term {
                                return Err(mismatch(format!(
                                    "record 0 restarts the log after index {} of term {}, but \
                                     the snapshot beside it at that index has term {}",
                                    state.base_index, state.base_term, sf.snapshot.term
                                )));
                            }
                            state.snapshot = Some(sf.snapshot.clone());
                            pending = None;
                        }
                        Some(sf) if sf.snapshot.index < state.base_index => {
                            return Err(mismatch(format!(
                                "record 0 restarts the log after index {} (it was rewritten \
                                 behind a snapshot at that index), but the snapshot beside it \
                                 is at index {}: entries {}..={} are in neither",
                                state.base_index,
                                sf.snapshot.index,
                                sf.snapshot.index + 1,
                                state.base_index
                            )))
                        }
                        Some(_) => {}
                        None => {
                            return Err(mismatch(format!(
                                "record 0 restarts the log after index {} (it was rewritten \
                                 behind a snapshot), but there is no snapshot file beside it",
                                state.base_index
                            )))
                        }
                    }
                }
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
    if let Some(sf) = pending {
        // Written after every record the log holds (the record after it did not reach the
        // disk), or the log lost records the snapshot followed: those were synced before the
        // snapshot was written, so that is damage.
        if sf.log_records != index {
            return Err(mismatch(format!(
                "the snapshot beside the log was written after its first {} records, but the \
                 log holds {index}: records synced before the snapshot are missing",
                sf.log_records
            )));
        }
        state
            .apply_snapshot(&sf.snapshot)
            .map_err(|r| mismatch(format!("after the last record: {r}")))?;
    }
    let cut = cut.map(|(reason, at)| Cut {
        offset: at as u64,
        record: index,
        bytes: (data.len() - at) as u64,
        reason,
    });
    Ok((
        DurableState {
            term: state.term,
            voted_for: state.voted_for,
            snapshot: state.snapshot,
            entries: state.entries,
        },
        Replay {
            records: index,
            good_bytes: pos as u64,
            cut,
            snapshot_file_bytes: snap.map_or(0, SnapshotFile::file_bytes),
        },
    ))
}

/// The log as replay rebuilds it: the hard state, and the entries after `base_index` (the
/// snapshot's index, or 0), whose entry had `base_term`.
#[derive(Default)]
struct LogState {
    term: u64,
    voted_for: Option<NodeId>,
    base_index: u64,
    base_term: u64,
    entries: Vec<LogEntry>,
    /// The snapshot the entries follow, once replay reached it.
    snapshot: Option<Snapshot>,
}

impl LogState {
    fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    /// The term of the entry at `index`, if the log holds it (or it is the base).
    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        let i = index.checked_sub(self.base_index + 1)?;
        self.entries.get(i as usize).map(|e| e.term)
    }

    /// The snapshot takes effect here: the entries it covers go; those after it stay if the
    /// log holds its last entry with its term, else they conflict with it and go too (Raft
    /// §7: a follower that installed a leader's snapshot may have crashed before the record
    /// that dropped its old suffix reached the disk).
    fn apply_snapshot(&mut self, s: &Snapshot) -> Result<(), String> {
        if s.index < self.base_index {
            return Err(format!(
                "the snapshot (index {}) is older than the log, which starts after index {}",
                s.index, self.base_index
            ));
        }
        if self.term_at(s.index) == Some(s.term) {
            self.entries.drain(..(s.index - self.base_index) as usize);
        } else {
            self.entries.clear();
        }
        self.base_index = s.index;
        self.base_term = s.term;
        self.snapshot = Some(s.clone());
        Ok(())
    }
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

/// One log entry as a record carries it (public for the fuzz targets, which build records
/// with fields the writer never would).
pub fn encode_entry(e: &LogEntry, out: &mut Vec<u8>) {
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

/// What a record says about the log (its `log_from` byte).
const LOG_UNCHANGED: u8 = 0;
/// Entries from `from` on changed.
const LOG_FROM: u8 = 1;
/// The log restarts after `from - 1`, which a snapshot holds (a log rewritten behind a
/// snapshot starts with this record; nowhere else).
const LOG_RESTART: u8 = 2;

/// Encodes one persist request as a record payload (`entries` are `log_from..=last_index`).
pub fn encode_payload(req: &PersistRequest, out: &mut Vec<u8>) {
    let entries: &[LogEntry] = if req.log_from.is_some() {
        &req.entries
    } else {
        &[]
    };
    let kind = if req.log_from.is_some() {
        LOG_FROM
    } else {
        LOG_UNCHANGED
    };
    encode_record(
        req.term,
        req.voted_for,
        kind,
        req.log_from.unwrap_or(0),
        req.last_index,
        0,
        entries,
        out,
    );
}

/// Encodes the record that starts a log rewritten behind snapshot (`base_index`,
/// `base_term`): the hard state and the entries after the snapshot (or the first of them).
pub fn encode_restart(
    term: u64,
    voted_for: Option<NodeId>,
    base_index: u64,
    base_term: u64,
    entries: &[LogEntry],
    out: &mut Vec<u8>,
) {
    let last = base_index + entries.len() as u64;
    encode_record(
        term,
        voted_for,
        LOG_RESTART,
        base_index + 1,
        last,
        base_term,
        entries,
        out,
    );
}

/// `term u64 | has_vote u8 | vote u8 | kind u8 | from u64 | last_index u64 | [base_term u64,
/// LOG_RESTART only] | n u32 | n × entry`.
#[allow(clippy::too_many_arguments)]
fn encode_record(
    term: u64,
    voted_for: Option<NodeId>,
    kind: u8,
    from: u64,
    last_index: u64,
    base_term: u64,
    entries: &[LogEntry],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&term.to_be_bytes());
    out.push(voted_for.is_some() as u8);
    out.push(voted_for.unwrap_or(0));
    out.push(kind);
    out.extend_from_slice(&from.to_be_bytes());
    out.extend_from_slice(&last_index.to_be_bytes());
    if kind == LOG_RESTART {
        out.extend_from_slice(&base_term.to_be_bytes());
    }
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        encode_entry(e, out);
    }
}

/// Applies one record's payload to `state` in place, after checking that the writer could
/// have produced it (`first`: it is the file's first record); on `Err` the state is unchanged.
fn apply(state: &mut LogState, payload: &[u8], first: bool) -> Result<(), String> {
    let mut c = Cursor(payload);
    let term = c.u64()?;
    let has_vote = c.flag()?;
    let vote = c.u8()?;
    let kind = c.u8()?;
    let from = c.u64()?;
    let last_index = c.u64()?;
    let base_term = if kind == LOG_RESTART { c.u64()? } else { 0 };
    // No node holds a term or index above the wire limit (2^62; peers' messages beyond it
    // are dropped), so no writer wrote one; refusing it here also keeps `from + i` and
    // `kept + n` below from overflowing (found by fuzz target `storage_replay`).
    if let Some(v) = [term, from, last_index, base_term]
        .into_iter()
        .find(|&v| v > MAX_WIRE_NUMBER)
    {
        return Err(format!(
            "a term or index of {v}, above the limit of {MAX_WIRE_NUMBER}"
        ));
    }
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
    let held = state.last_index();
    // Entries the record carries at or before the log's start (a snapshot holds them), the
    // index they follow, and its term.
    let (skip, kept, mut prev) = match kind {
        LOG_UNCHANGED => {
            if n > 0 {
                return Err(format!("{n} entries without a start index"));
            }
            (0, held, 0)
        }
        LOG_FROM => {
            if from == 0 || from - 1 > held {
                return Err(format!(
                    "a gap: entries from index {from} while the log ends at {held}"
                ));
            }
            let kept = (from - 1).max(state.base_index);
            let prev = state.term_at(kept).unwrap_or(0);
            (((kept + 1 - from) as usize).min(n), kept, prev)
        }
        LOG_RESTART => {
            if !first {
                return Err(format!(
                    "the log restarts after index {} in the middle of the file (only a \
                     rewritten log's first record does)",
                    from.saturating_sub(1)
                ));
            }
            if from == 0 {
                return Err("the log restarts after index -1".into());
            }
            let base = from - 1;
            if let Some(s) = &state.snapshot {
                if (s.index, s.term) != (base, base_term) {
                    return Err(format!(
                        "the log restarts after index {base} (term {base_term}), but the \
                         snapshot before it is at index {} (term {})",
                        s.index, s.term
                    ));
                }
            }
            (0, base, base_term)
        }
        k => return Err(format!("unknown log change kind {k}")),
    };
    for (i, e) in entries.iter().enumerate().skip(skip) {
        if e.term < prev || e.term > term {
            return Err(format!(
                "entry {} has term {} (previous entry {prev}, record term {term})",
                from + i as u64,
                e.term
            ));
        }
        prev = e.term;
    }
    let end = kept + (n - skip) as u64;
    if last_index > end {
        return Err(format!(
            "last index {last_index} beyond the {end} entries the log holds"
        ));
    }
    let base = if kind == LOG_RESTART {
        kept
    } else {
        state.base_index
    };
    if last_index < base {
        return Err(format!(
            "last index {last_index} before the log's start after index {base} (a snapshot \
             holds those entries; they are never rewritten)"
        ));
    }
    state.term = term;
    state.voted_for = vote;
    match kind {
        LOG_FROM => {
            state.entries.truncate((kept - state.base_index) as usize);
            state.entries.extend(entries.into_iter().skip(skip));
        }
        LOG_RESTART => {
            state.base_index = kept;
            state.base_term = base_term;
            state.entries = entries;
        }
        _ => {}
    }
    state
        .entries
        .truncate((last_index - state.base_index) as usize);
    Ok(())
}

/// Largest record a rewrite writes (more entries go into further records): keeps one record's
/// buffer, and what a damaged record takes with it, small.
const REWRITE_RECORD_BYTES: usize = 1 << 20;

/// The open log: replayed, positioned at its end, appending whole records; and the snapshot
/// beside it.
pub struct LogFile {
    file: File,
    path: PathBuf,
    identity: LogIdentity,
    fsync: bool,
    pending: Vec<u8>,
    record: Vec<u8>,
    next_record: u64,
    /// Bytes in the file (after the last flush).
    bytes: u64,
    /// The newest durable snapshot.
    snapshot: Option<SnapshotFile>,
    /// A snapshot was written since the log was last rewritten behind one.
    rewrite_due: bool,
    rewrites: u64,
    /// The log's last index once what was appended is written.
    last_index: u64,
}

fn lock_error(e: std::fs::TryLockError) -> io::Error {
    match e {
        std::fs::TryLockError::WouldBlock => io::Error::new(
            io::ErrorKind::WouldBlock,
            "another process (a node with the same id?) holds it",
        ),
        std::fs::TryLockError::Error(e) => e,
    }
}

impl LogFile {
    /// Opens the log at `path` (creating it with `identity`'s header if it is missing or
    /// empty) and the snapshot beside it, replays them, and cuts a torn last write.
    pub fn open(
        path: &Path,
        identity: &LogIdentity,
        fsync: bool,
    ) -> Result<(LogFile, DurableState, Replay), StorageError> {
        let err = |op: &'static str| {
            let path = path.display().to_string();
            move |source| StorageError::Io { path, op, source }
        };
        let refused = |p: &Path, error| StorageError::Replay {
            path: p.display().to_string(),
            error,
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
        // A leftover `snapshot.tmp` (a crash while writing one) is not read: the rename that
        // would have made it the snapshot never happened.
        let snap_path = snapshot::snapshot_path(path);
        let snap = match std::fs::read(&snap_path) {
            Ok(d) => Some(snapshot::decode(&d, identity).map_err(|e| refused(&snap_path, e))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StorageError::Io {
                    path: snap_path.display().to_string(),
                    op: "read",
                    source: e,
                })
            }
        };
        if data.is_empty() {
            if snap.is_some() {
                // The log is only ever replaced by a rename, never emptied: its term and
                // vote are lost, and the node must not vote as if it had never voted.
                return Err(refused(
                    path,
                    ReplayError::Snapshot {
                        reason: "the log is missing or empty, but a snapshot file is beside it: \
                                 the term and vote the log held are lost"
                            .into(),
                    },
                ));
            }
            create(path, identity).map_err(err("create"))?;
            data.extend_from_slice(&encode_header(identity));
        }
        let (state, replay) =
            replay_with(&data, identity, snap.as_ref()).map_err(|e| refused(path, e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err("open"))?;
        // Two processes appending to one log would interleave records: the second one stops.
        file.try_lock().map_err(|e| err("lock")(lock_error(e)))?;
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
                identity: identity.clone(),
                fsync,
                pending: Vec::new(),
                record: Vec::new(),
                next_record: replay.records,
                bytes: replay.good_bytes,
                snapshot: snap,
                rewrite_due: false,
                rewrites: 0,
                last_index: state.last_index(),
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

    /// The newest durable snapshot: its index and the bytes of its file (0, 0 without one).
    pub fn snapshot_stats(&self) -> (u64, u64) {
        self.snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.snapshot.index, s.file_bytes()))
    }

    /// Queues one persist request as a record (written by the next [`LogFile::flush`]). Its
    /// snapshot, if any, must have been written first ([`LogFile::write_snapshot`]).
    pub fn append(&mut self, req: &PersistRequest) {
        self.record.clear();
        encode_payload(req, &mut self.record);
        push_frame(self.next_record, &self.record, &mut self.pending);
        self.next_record += 1;
        self.last_index = req.last_index;
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

    /// Makes `req`'s snapshot (if any) the durable snapshot, at this point of the log: what
    /// was queued is written (and synced) first, then the snapshot file (atomically,
    /// `snapshot` module doc). Call it before [`LogFile::append`] of the same request:
    /// records appended after it follow the snapshot. The log is rewritten behind it by the
    /// next [`LogFile::rewrite`].
    pub fn write_snapshot(&mut self, req: &PersistRequest) -> io::Result<()> {
        let Some(snap) = &req.snapshot else {
            return Ok(());
        };
        // The log's records may depend on the snapshot beside it (those after an installed
        // one continue the log after its index), and replay knows only the snapshot in the
        // file: before it is replaced, the log is rewritten behind it. So the log always
        // depends on the current snapshot only.
        self.rewrite()?;
        // The request's term and vote first, in a record of their own (persisted a moment
        // early, which is always safe): a crash between the snapshot and the request's record
        // then never leaves a snapshot of a term above the durable one (one that arrived in
        // the message that raised the term). And a snapshot always follows a record: a log
        // that lost every record beside a snapshot is damage, never a node that wrote nothing.
        let hard = PersistRequest {
            log_from: None,
            last_index: self.last_index,
            entries: Vec::new(),
            snapshot: None,
            ..*req
        };
        self.append(&hard);
        // Replay places the snapshot after the records before it: they must be durable
        // before it is (the order a crash can leave).
        self.flush()?;
        let sf = SnapshotFile {
            log_records: self.next_record,
            snapshot: snap.clone(),
        };
        snapshot::write(&self.path, &self.identity, &sf, self.fsync)?;
        self.snapshot = Some(sf);
        self.rewrite_due = true;
        Ok(())
    }

    /// Rewrites of the log behind a snapshot since it was opened.
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }

    /// Whether a snapshot was written that the log was not yet rewritten behind.
    pub fn rewrite_due(&self) -> bool {
        self.rewrite_due
    }

    /// Rewrites the log behind the newest snapshot, if one was written since the last rewrite:
    /// a new file with only the hard state and the entries after the snapshot's index, synced
    /// and renamed over the log (the directory synced). A crash before the rename leaves the
    /// old log, which replays with the new snapshot the same way. Returns whether it rewrote.
    ///
    /// The new log is what replay makes of the old one and the snapshot, read back from the
    /// disk: it holds exactly what a restart would have restored.
    pub fn rewrite(&mut self) -> io::Result<bool> {
        if !self.rewrite_due {
            return Ok(false);
        }
        self.flush()?;
        let Some(sf) = self.snapshot.clone() else {
            return Ok(false);
        };
        let data = std::fs::read(&self.path)?;
        let (state, r) = replay_with(&data, &self.identity, Some(&sf)).map_err(|e| {
            io::Error::other(format!("replay of the log as written refused it: {e}"))
        })?;
        if let Some(cut) = r.cut {
            return Err(io::Error::other(format!(
                "the log as written ends in a torn record at byte {}: {}",
                cut.offset, cut.reason
            )));
        }
        drop(data);
        let s = &sf.snapshot;
        let tmp = self.path.with_extension("log.new");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        // Locked before it becomes the log: no moment in which the log is unlocked.
        file.try_lock().map_err(lock_error)?;
        let mut out = io::BufWriter::new(file);
        out.write_all(&encode_header(&self.identity))?;
        let mut bytes = HEADER_BYTES as u64;
        let mut records = 0u64;
        let mut payload = Vec::new();
        let mut frame = Vec::new();
        let mut rest = &state.entries[..];
        loop {
            let take = record_chunk(rest);
            payload.clear();
            if records == 0 {
                encode_restart(
                    state.term,
                    state.voted_for,
                    s.index,
                    s.term,
                    &rest[..take],
                    &mut payload,
                );
            } else {
                let from = s.index + 1 + (state.entries.len() - rest.len()) as u64;
                encode_record(
                    state.term,
                    state.voted_for,
                    LOG_FROM,
                    from,
                    from + take as u64 - 1,
                    0,
                    &rest[..take],
                    &mut payload,
                );
            }
            frame.clear();
            push_frame(records, &payload, &mut frame);
            out.write_all(&frame)?;
            bytes += frame.len() as u64;
            records += 1;
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        if self.fsync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if self.fsync {
            snapshot::sync_dir(&self.path)?;
        }
        file.seek(SeekFrom::Start(bytes))?;
        // The old file (and its lock) closes here.
        self.file = file;
        self.next_record = records;
        self.bytes = bytes;
        self.last_index = s.index + state.entries.len() as u64;
        self.rewrite_due = false;
        self.rewrites += 1;
        Ok(true)
    }
}

/// How many of `entries` (at least one, if any) the next rewritten record takes.
fn record_chunk(entries: &[LogEntry]) -> usize {
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        bytes += MIN_ENTRY_BYTES + e.body.as_ref().map_or(0, |b| 4 + b.len());
        if bytes > REWRITE_RECORD_BYTES && i > 0 {
            return i;
        }
    }
    entries.len()
}

/// Appends record number `record` holding `payload`, framed, to `out`.
fn push_frame(record: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut frame = [0u8; FRAME_BYTES];
    frame[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    frame[4..12].copy_from_slice(&record.to_le_bytes());
    frame[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&frame[..16]);
    frame[16..20].copy_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(&frame);
    out.extend_from_slice(payload);
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
    snapshot::sync_dir(path)
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
