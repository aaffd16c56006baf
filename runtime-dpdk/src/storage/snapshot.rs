//! The durable snapshot: `<storage.dir>/node<id>/snapshot`, beside `raft.log`.
//!
//! # Format (version 1)
//!
//! The log's 96-byte identity header with magic `"HCRFTSNP"` (same fields, same checks: a
//! node refuses another cluster's or node's snapshot naming the field), then (little
//! endian) `log_records u64 | index u64 | term u64 | data_len u64 | data | crc32 u32`, the
//! checksum over every byte before it (header included). `data` is the core's snapshot data
//! (sessions and application state), opaque here.
//!
//! `log_records` places the snapshot in the log's sequence of records: it was written after
//! the log's first `log_records` records and before the next one (the record of the persist
//! request that carried it). Replay applies it at exactly that point, so a crash between
//! the snapshot and the log's rewrite replays like the node's own history: the records
//! before it, the snapshot (entries it covers go; the entries after it stay when the log
//! holds the snapshot's last entry with its term, otherwise they conflict and go too — Raft
//! §7), then the records after it.
//!
//! # Writing (atomic)
//!
//! `snapshot.tmp` is written whole and fsynced, renamed over `snapshot`, and the directory is
//! fsynced: a crash leaves the old snapshot or the new one, never a mix (a leftover
//! `snapshot.tmp` is ignored and overwritten by the next snapshot). Any damage to `snapshot`
//! itself is therefore real damage, and refused like damage before a log's last record.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use hovercraft_core::raft::Snapshot;
use hovercraft_core::wire::raft::MAX_WIRE_NUMBER;

use super::{check_header_for, encode_header_for, le_u64, LogIdentity, ReplayError, HEADER_BYTES};

pub const SNAPSHOT_MAGIC: [u8; 8] = *b"HCRFTSNP";
/// The snapshot's file name in a node's storage dir.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Bytes between the header and the data (`log_records`, `index`, `term`, `data_len`).
const META_BYTES: usize = 32;
const CRC_BYTES: usize = 4;

/// A snapshot as its file holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Log records written before the snapshot (it takes effect before record number
    /// `log_records` of the log it was written beside).
    pub log_records: u64,
    pub snapshot: Snapshot,
}

impl SnapshotFile {
    /// Bytes of its file.
    pub fn file_bytes(&self) -> u64 {
        (HEADER_BYTES + META_BYTES + self.snapshot.data.len() + CRC_BYTES) as u64
    }
}

/// The snapshot file beside log `log_path`.
pub fn snapshot_path(log_path: &Path) -> PathBuf {
    log_path.with_file_name(SNAPSHOT_FILE)
}

fn damaged(reason: String) -> ReplayError {
    ReplayError::Snapshot {
        reason: format!("damaged snapshot: {reason}"),
    }
}

/// Reads a snapshot file's bytes, checking its header against `want` and its checksum.
/// Never panics on any input.
pub fn decode(data: &[u8], want: &LogIdentity) -> Result<SnapshotFile, ReplayError> {
    check_header_for(data, want, &SNAPSHOT_MAGIC, "snapshot")?;
    let min = HEADER_BYTES + META_BYTES + CRC_BYTES;
    if data.len() < min {
        return Err(damaged(format!(
            "the file ({} bytes) ends before the end of its {min}-byte frame (truncated)",
            data.len()
        )));
    }
    let m = HEADER_BYTES;
    let (log_records, index, term, data_len) = (
        le_u64(data, m),
        le_u64(data, m + 8),
        le_u64(data, m + 16),
        le_u64(data, m + 24),
    );
    let end = data.len() - CRC_BYTES;
    let mut crc = [0u8; CRC_BYTES];
    crc.copy_from_slice(&data[end..]);
    if crc32fast::hash(&data[..end]) != u32::from_le_bytes(crc) {
        let held = (data.len() - min) as u64;
        return Err(damaged(if held < data_len {
            format!(
                "checksum mismatch; it declares {data_len} bytes of data and holds {held} \
                 (truncated)"
            )
        } else {
            format!("checksum mismatch over its {} bytes", data.len())
        }));
    }
    // The checksum holds, so these were written so: still checked, as the writer never does.
    if (data.len() - min) as u64 != data_len {
        return Err(damaged(format!(
            "it declares {data_len} bytes of data and holds {}",
            data.len() - min
        )));
    }
    if index == 0 {
        return Err(damaged("a snapshot at index 0".into()));
    }
    // As for log records: no node holds a term or index above the wire limit, and replay's
    // arithmetic on the log after the snapshot relies on it.
    if index > MAX_WIRE_NUMBER || term > MAX_WIRE_NUMBER {
        return Err(damaged(format!(
            "index {index} or term {term} above the limit of {MAX_WIRE_NUMBER}"
        )));
    }
    Ok(SnapshotFile {
        log_records,
        snapshot: Snapshot {
            index,
            term,
            data: data[m + META_BYTES..end].into(),
        },
    })
}

/// Writes `snap` atomically as the snapshot file of `log_path`'s directory (module doc);
/// syncs the file and the directory when `fsync`.
pub fn write(
    log_path: &Path,
    identity: &LogIdentity,
    snap: &SnapshotFile,
    fsync: bool,
) -> io::Result<()> {
    let path = snapshot_path(log_path);
    let tmp = path.with_extension("tmp");
    let s = &snap.snapshot;
    let mut head = Vec::with_capacity(HEADER_BYTES + META_BYTES);
    head.extend_from_slice(&encode_header_for(&SNAPSHOT_MAGIC, identity));
    for v in [snap.log_records, s.index, s.term, s.data.len() as u64] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&s.data);
    let mut f = BufWriter::new(File::create(&tmp)?);
    f.write_all(&head)?;
    f.write_all(&s.data)?;
    f.write_all(&crc.finalize().to_le_bytes())?;
    let f = f.into_inner().map_err(io::IntoInnerError::into_error)?;
    if fsync {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(&tmp, &path)?;
    if fsync {
        sync_dir(&path)?;
    }
    Ok(())
}

/// Makes a rename in `path`'s directory durable.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })?
        .sync_all(),
        None => Ok(()),
    }
}
