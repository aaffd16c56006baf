//! The replica's durable state on disk: one append-only log file per node.
//!
//! Every persist request of the core (term, vote, and the log entries that changed) becomes
//! one record; the driver writes a batch of records, fsyncs (unless `fsync: false`), and only
//! then reports them persisted (`Node::handle_persisted`), so nothing that depends on them
//! leaves the node earlier. On start the file is replayed record by record into a
//! `DurableState` for `Node::restored`, the same way the simulator's storage builds its image.
//!
//! Record: `len u32 LE | crc32(payload) u32 LE | payload`. Payload: `term u64 | has_vote u8 |
//! vote u8 | has_from u8 | from u64 | last_index u64 | n u32 | n × entry`, entry: `term u64 |
//! client ip u32 | port u16 | req_id u16 | policy u8 | replier u8 | has_body u8 | [len u32 |
//! body]` (integers big-endian inside the payload). A torn or corrupt tail (a crash in the
//! middle of a write) ends the replay and is cut off; what came before is intact.
//!
//! Growth: the file grows with the log (about 40 bytes per metadata-only HovercRaft entry,
//! plus the body where the node held it when the entry was persisted) and with rewritten
//! suffixes. The core has no snapshots yet, so the file is never cut: a restart replays all
//! of it. A long-running cluster needs a fresh `storage.dir` per experiment.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use hovercraft_core::raft::{DurableState, PersistRequest};
use hovercraft_core::wire::raft::LogEntry;
use hovercraft_core::wire::Policy;

/// Largest record accepted on replay; anything bigger is corruption.
const MAX_RECORD_BYTES: usize = 256 << 20;

pub struct LogFile {
    file: File,
    path: PathBuf,
    fsync: bool,
    pending: Vec<u8>,
    record: Vec<u8>,
    /// Bytes in the file (after the last flush).
    pub bytes: u64,
}

/// What replay found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub records: u64,
    /// Bytes of a torn or corrupt tail that were cut off.
    pub cut_bytes: u64,
}

impl LogFile {
    /// Opens (or creates) the log at `path` and replays it.
    pub fn open(path: &Path, fsync: bool) -> io::Result<(LogFile, DurableState, Replay)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let (state, good, records) = replay(&data);
        let replay = Replay {
            records,
            cut_bytes: (data.len() - good) as u64,
        };
        if good < data.len() {
            file.set_len(good as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(good as u64))?;
        Ok((
            LogFile {
                file,
                path: path.to_path_buf(),
                fsync,
                pending: Vec::new(),
                record: Vec::new(),
                bytes: good as u64,
            },
            state,
            replay,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one persist request; `entries` are the log entries `log_from..=last_index`.
    pub fn append(&mut self, req: &PersistRequest, entries: &[LogEntry]) {
        let p = &mut self.record;
        p.clear();
        p.extend_from_slice(&req.term.to_be_bytes());
        p.push(req.voted_for.is_some() as u8);
        p.push(req.voted_for.unwrap_or(0));
        p.push(req.log_from.is_some() as u8);
        p.extend_from_slice(&req.log_from.unwrap_or(0).to_be_bytes());
        p.extend_from_slice(&req.last_index.to_be_bytes());
        let n = if req.log_from.is_some() {
            entries.len()
        } else {
            0
        };
        p.extend_from_slice(&(n as u32).to_be_bytes());
        for e in &entries[..n] {
            encode_entry(e, p);
        }
        self.pending
            .extend_from_slice(&(p.len() as u32).to_le_bytes());
        self.pending
            .extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        self.pending.extend_from_slice(p);
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
        Ok(())
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

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn decode_entry(c: &mut Cursor<'_>) -> Option<LogEntry> {
    let term = c.u64()?;
    let ip = c.u32()?;
    let port = c.u16()?;
    let req_id = c.u16()?;
    let policy = Policy::from_u8(c.u8()?).ok()?;
    let replier = c.u8()?;
    let body = match c.u8()? {
        0 => None,
        1 => {
            let n = c.u32()? as usize;
            Some(c.take(n)?.to_vec())
        }
        _ => return None,
    };
    Some(LogEntry {
        term,
        client: SocketAddrV4::new(ip.into(), port),
        req_id,
        policy,
        replier,
        body,
    })
}

/// Applies one record's payload to `state`; `None` if it does not decode.
fn apply(state: &mut DurableState, payload: &[u8]) -> Option<()> {
    let mut c = Cursor(payload);
    let term = c.u64()?;
    let has_vote = c.u8()?;
    let vote = c.u8()?;
    let has_from = c.u8()?;
    let from = c.u64()?;
    let last_index = c.u64()?;
    let n = c.u32()? as usize;
    let mut entries = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        entries.push(decode_entry(&mut c)?);
    }
    if !c.0.is_empty() || has_vote > 1 || has_from > 1 {
        return None;
    }
    if has_from == 1 && (from == 0 || from - 1 > state.entries.len() as u64) {
        return None; // a gap: not something this writer produces
    }
    state.term = term;
    state.voted_for = (has_vote == 1).then_some(vote);
    if has_from == 1 {
        state.entries.truncate((from - 1) as usize);
        state.entries.extend(entries);
    }
    state.entries.truncate(last_index as usize);
    Some(())
}

/// Replays records; returns the state, the length of the good prefix and the record count.
fn replay(data: &[u8]) -> (DurableState, usize, u64) {
    let mut state = DurableState::default();
    let mut pos = 0;
    let mut records = 0;
    while data.len() - pos >= 8 {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES || data.len() - pos - 8 < len {
            break;
        }
        let payload = &data[pos + 8..pos + 8 + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let mut next = state.clone();
        if apply(&mut next, payload).is_none() {
            break;
        }
        state = next;
        pos += 8 + len;
        records += 1;
    }
    (state, pos, records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, req_id: u16, body: Option<&[u8]>) -> LogEntry {
        LogEntry {
            term,
            client: SocketAddrV4::new([10, 77, 0, 4].into(), 4242),
            req_id,
            policy: Policy::ReplicatedRoute,
            replier: 2,
            body: body.map(|b| b.to_vec()),
        }
    }

    fn req(seq: u64, term: u64, vote: Option<u8>, from: Option<u64>, last: u64) -> PersistRequest {
        PersistRequest {
            seq,
            term,
            voted_for: vote,
            log_from: from,
            last_index: last,
            // `LogFile::append` takes the entries beside the request.
            entries: Vec::new(),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hc-storage-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn replays_votes_appends_and_truncations() {
        let path = dir("replay").join("raft.log");
        {
            let (mut f, s, _) = LogFile::open(&path, true).unwrap();
            assert_eq!(s, DurableState::default());
            f.append(&req(1, 1, Some(0), None, 0), &[]);
            f.append(
                &req(2, 1, Some(0), Some(1), 3),
                &[
                    entry(1, 1, Some(b"a")),
                    entry(1, 2, None),
                    entry(1, 3, None),
                ],
            );
            f.flush().unwrap();
            // A new leader rewrites the suffix from index 3.
            f.append(&req(3, 2, None, Some(3), 3), &[entry(2, 9, Some(b"z"))]);
            f.flush().unwrap();
        }
        let (_, s, r) = LogFile::open(&path, true).unwrap();
        assert_eq!(
            r,
            Replay {
                records: 3,
                cut_bytes: 0
            }
        );
        assert_eq!((s.term, s.voted_for), (2, None));
        assert_eq!(
            s.entries,
            vec![
                entry(1, 1, Some(b"a")),
                entry(1, 2, None),
                entry(2, 9, Some(b"z"))
            ]
        );
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        let path = dir("torn").join("raft.log");
        {
            let (mut f, _, _) = LogFile::open(&path, false).unwrap();
            f.append(&req(1, 3, Some(1), Some(1), 1), &[entry(3, 1, None)]);
            f.append(&req(2, 3, Some(1), Some(2), 2), &[entry(3, 2, None)]);
            f.flush().unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap(); // the crash tore the last record
        drop(f);
        let (mut f, s, r) = LogFile::open(&path, false).unwrap();
        assert_eq!(s.entries.len(), 1);
        assert_eq!(r.records, 1);
        assert!(r.cut_bytes > 0);
        f.append(&req(3, 4, None, Some(2), 2), &[entry(4, 7, None)]);
        f.flush().unwrap();
        let (_, s, _) = LogFile::open(&path, false).unwrap();
        assert_eq!(s.term, 4);
        assert_eq!(s.entries[1].req_id, 7);
    }

    #[test]
    fn garbage_file_replays_to_empty_not_panic() {
        let path = dir("garbage").join("raft.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, [0xFFu8; 100]).unwrap();
        let (_, s, r) = LogFile::open(&path, false).unwrap();
        assert_eq!(s, DurableState::default());
        assert_eq!(r.cut_bytes, 100);
    }
}
