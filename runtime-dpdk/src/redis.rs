//! The Redis application backend: a replica applies every committed kv request to its own
//! local `redis-server` over a unix socket, as the paper's Redis/YCSB-E setup did. The CPU
//! cost is real here (a round trip to Redis per request), not modelled.
//!
//! Requests and replies are the kv app's ([`hovercraft_core::app::kv`]); only where the data
//! lives changes. Record format, the one YCSB's Redis binding uses:
//!
//! - a record is a hash under its key with fields `field0`..`field9`; a value of exactly
//!   [`YCSB_RECORD_BYTES`] (10 × 100 B) is split into the ten fields, any other value is
//!   stored whole in `field0`. Reading a record concatenates the fields in order.
//! - every key is also a member of the sorted set [`INDEX_KEY`] (`_indices`), all with score
//!   0, so `ZRANGEBYLEX _indices [start + LIMIT 0 count` lists keys in byte order: a SCAN is
//!   that, then one `HMGET` per key (pipelined). (YCSB's binding scores keys by a hash, which
//!   does not order them; lexicographic order is what a kv SCAN promises.)
//! - YCSB's load phase: at start, an empty Redis gets `ycsb_record(ycsb_key(i), 0)` for every
//!   `i` below the workload's `ycsb.records` (the same table the in-memory kv app holds
//!   implicitly). A non-empty Redis (a restarted replica) is kept: re-applying the log to it
//!   is idempotent for PUT/INSERT/DELETE.
//!
//! A Redis that fails or answers nonsense stops the replica ([`RedisApp::fatal`]): a replica
//! that skipped a committed write would diverge silently. The RESP client is minimal and
//! bounded (bulk strings ≤ [`MAX_BULK_BYTES`], arrays ≤ [`MAX_ARRAY_LEN`]).
//!
//! # Snapshots
//!
//! [`StateMachine::snapshot`] reads every record out of Redis and [`StateMachine::restore`]
//! writes them back. The encoding ([`SnapshotWriter`], [`parse_snapshot`]) is
//!
//! ```text
//! tag 'R' (0x52) | n u64 | n × { key_len u32 | key | value_len u32 | value }
//! ```
//!
//! (big-endian), records in strictly increasing key byte order, each the kv value a GET of the
//! key returns. It is the app's own record, not Redis's `DUMP` payload: `DUMP` is not
//! deterministic across replicas. A YCSB record (ten 100 B fields) is a hashtable-encoded hash,
//! which `DUMP` serializes in dict order, and that order depends on the per-process random hash
//! seed: two redis-server 7.0.15 processes holding the same record `DUMP` different bytes. A
//! `RESTORE`d value may also change encoding (a 50-member skiplist zset comes back as a
//! listpack), so the restored node's later `DUMP`s would differ from the leader's. Reading the
//! fields with `HMGET` in their fixed order gives the same bytes on every replica at the same
//! applied index, whatever the Redis version. The index is not stored: restoring rebuilds it.
//!
//! What it costs. Both run on the node's loop thread, so the node applies no request and
//! handles no datagram meanwhile. In particular it sends no heartbeat:
//!
//! - **snapshot**: one `DBSIZE`, then pages of [`SNAPSHOT_BATCH`] keys from the index
//!   (`ZRANGEBYLEX`), each followed by one pipelined `HMGET` per key. That is O(records) Redis
//!   commands in about 2 × records / [`SNAPSHOT_BATCH`] round trips. `Execution::cpu_ns`
//!   reports the elapsed time it really took. The snapshot is about records × (8 + key +
//!   value) bytes.
//! - **restore**: the whole snapshot is parsed and checked first (lengths, order, bounds,
//!   trailing bytes), without touching Redis. A malformed one is refused and Redis keeps its
//!   data. Only then come `FLUSHDB`, `HSET` + `ZADD` per record (pipelined by
//!   [`SNAPSHOT_BATCH`] records), and a `DBSIZE` check.
//! - **time**, measured on a 2-core VM with redis-server 7.0.15 and 200 000 YCSB records
//!   (196 MB of snapshot): about 4 µs per record to snapshot (0.8 s) and 10 µs per record to
//!   restore (2.1 s). So about 4 s and 10 s for YCSB's usual 1M records. Those times are far
//!   above the default election timeout (10–20 ms). A leader snapshotting more than a few
//!   thousand records goes silent for longer than that, and its followers elect another
//!   leader. With large Redis datasets, set `raft.snapshot_interval_entries` high enough that
//!   this is rare, or raise the election timeout.
//! - **memory**: the replica holds the whole snapshot in its own memory, beside Redis's copy
//!   of the data. The core keeps it to send to lagging followers and to persist it, and a
//!   follower holds one while it arrives in chunks. The node process briefly holds about
//!   twice the snapshot while one is composed.
//!
//! Consistency checks: a snapshot stops the replica (the fatal slot) if Redis fails, if an
//! indexed key has no record, if a record is outside the kv bounds ([`MAX_KEY_BYTES`],
//! [`MAX_VALUE_BYTES`]), or if `DBSIZE` is not the records plus the index. A key outside the
//! data model would otherwise be silently missing from every follower that restores. A restore
//! that fails in Redis after `FLUSHDB` leaves Redis partly replaced. It stops the replica too:
//! the old state is gone.
//!
//! For datasets too large for this (many GB, or where the pause on the app thread matters), the
//! alternative is Redis's own persistence: copy the leader's RDB file (`BGSAVE`, or
//! `redis-cli --rdb`) to the follower and restart the follower's redis-server from it, with the
//! follower's Raft state moved to the matching index. That is not automated here.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hovercraft_core::app::kv::{
    ycsb_key, ycsb_record, KvReply, KvRequest, MAX_KEY_BYTES, MAX_REPLY_BYTES, MAX_VALUE_BYTES,
    YCSB_FIELDS, YCSB_FIELD_BYTES, YCSB_RECORD_BYTES,
};
use hovercraft_core::app::{AppError, Execution, StateMachine};

use crate::clock::Clock;

/// The sorted set indexing every record key (YCSB's Redis binding uses the same name).
pub const INDEX_KEY: &[u8] = b"_indices";
/// Largest bulk string accepted from Redis.
pub const MAX_BULK_BYTES: usize = 4 << 20;
/// Largest array accepted from Redis.
pub const MAX_ARRAY_LEN: usize = 1 << 24;
/// Records loaded per pipelined batch at start.
const LOAD_BATCH: u64 = 500;
/// Records read (`HMGET`) or written (`HSET` + `ZADD`) per pipelined batch by snapshot and
/// restore.
pub const SNAPSHOT_BATCH: usize = 1000;
/// First byte of a snapshot of this backend.
pub const SNAPSHOT_TAG: u8 = 0x52; // 'R'
const FIELD_NAMES: [&[u8]; YCSB_FIELDS] = [
    b"field0", b"field1", b"field2", b"field3", b"field4", b"field5", b"field6", b"field7",
    b"field8", b"field9",
];

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("redis {path}: protocol error: {reason}")]
    Protocol { path: String, reason: String },
    #[error("redis {path}: {command} failed: {message}")]
    Command {
        path: String,
        command: String,
        message: String,
    },
    /// Redis answered, but what it holds is not what this backend wrote.
    #[error("redis {path}: unexpected contents: {reason}")]
    Contents { path: String, reason: String },
}

/// A RESP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

/// A blocking RESP connection over a unix socket (timeouts on both directions).
pub struct RespConn {
    path: String,
    rd: BufReader<UnixStream>,
    wr: BufWriter<UnixStream>,
}

impl RespConn {
    pub fn connect(path: &Path) -> Result<RespConn, RedisError> {
        let p = path.display().to_string();
        let io_err = |source| RedisError::Io {
            path: p.clone(),
            source,
        };
        let s = UnixStream::connect(path).map_err(io_err)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io_err)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(io_err)?;
        let r = s.try_clone().map_err(io_err)?;
        Ok(RespConn {
            path: p,
            rd: BufReader::with_capacity(64 << 10, r),
            wr: BufWriter::with_capacity(64 << 10, s),
        })
    }

    /// Tries to connect until `timeout` passed (a just-started redis-server creates its socket
    /// a moment later).
    pub fn connect_retry(path: &Path, timeout: Duration) -> Result<RespConn, RedisError> {
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        loop {
            let err = match Self::connect(path) {
                Ok(mut c) => match c.cmd(&[b"PING"]) {
                    Ok(_) => return Ok(c),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if waited >= timeout {
                return Err(err);
            }
            std::thread::sleep(step);
            waited += step;
        }
    }

    /// A connection over an already connected stream (`name` appears in errors).
    pub fn from_stream(s: UnixStream, name: &str) -> io::Result<RespConn> {
        let r = s.try_clone()?;
        Ok(RespConn {
            path: name.to_string(),
            rd: BufReader::with_capacity(64 << 10, r),
            wr: BufWriter::with_capacity(64 << 10, s),
        })
    }

    fn io(&self, source: io::Error) -> RedisError {
        RedisError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn proto(&self, reason: impl Into<String>) -> RedisError {
        RedisError::Protocol {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Queues one command (flushed by [`RespConn::flush`] or when the buffer fills).
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), RedisError> {
        let mut head = format!("*{}\r\n", args.len()).into_bytes();
        let r = (|| {
            self.wr.write_all(&head)?;
            for a in args {
                head.clear();
                head.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                self.wr.write_all(&head)?;
                self.wr.write_all(a)?;
                self.wr.write_all(b"\r\n")?;
            }
            Ok(())
        })();
        r.map_err(|e| self.io(e))
    }

    pub fn flush(&mut self) -> Result<(), RedisError> {
        self.wr.flush().map_err(|e| self.io(e))
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Result<Resp, RedisError> {
        self.read_value(0)
    }

    fn line(&mut self) -> Result<String, RedisError> {
        let mut line = Vec::new();
        // A line longer than this is not RESP from Redis.
        let n = (&mut self.rd)
            .take(64 << 10)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.io(e))?;
        if n == 0 {
            return Err(self.proto("connection closed"));
        }
        if !line.ends_with(b"\r\n") {
            return Err(self.proto("line without CRLF"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| self.proto("line is not UTF-8"))
    }

    fn read_value(&mut self, depth: u32) -> Result<Resp, RedisError> {
        if depth > 4 {
            return Err(self.proto("arrays nested too deep"));
        }
        let line = self.line()?;
        let kind = line.chars().next();
        let rest = &line[kind.map_or(0, char::len_utf8)..];
        let int = |s: &str| s.parse::<i64>().ok();
        match kind {
            Some('+') => Ok(Resp::Simple(rest.to_string())),
            Some('-') => Ok(Resp::Error(rest.to_string())),
            Some(':') => int(rest)
                .map(Resp::Int)
                .ok_or_else(|| self.proto(format!("bad integer {rest:?}"))),
            Some('$') => match int(rest) {
                Some(-1) => Ok(Resp::Bulk(None)),
                Some(n) if (0..=MAX_BULK_BYTES as i64).contains(&n) => {
                    let mut b = vec![0; n as usize + 2];
                    self.rd.read_exact(&mut b).map_err(|e| self.io(e))?;
                    if !b.ends_with(b"\r\n") {
                        return Err(self.proto("bulk string without CRLF"));
                    }
                    b.truncate(n as usize);
                    Ok(Resp::Bulk(Some(b)))
                }
                _ => Err(self.proto(format!("bad bulk length {rest:?}"))),
            },
            Some('*') => match int(rest) {
                Some(-1) => Ok(Resp::Array(None)),
                Some(n) if (0..=MAX_ARRAY_LEN as i64).contains(&n) => {
                    // Grown as elements arrive: a bogus length cannot allocate much.
                    let mut v = Vec::with_capacity((n as usize).min(1024));
                    for _ in 0..n {
                        v.push(self.read_value(depth + 1)?);
                    }
                    Ok(Resp::Array(Some(v)))
                }
                _ => Err(self.proto(format!("bad array length {rest:?}"))),
            },
            _ => Err(self.proto(format!("unknown reply type in {line:?}"))),
        }
    }

    /// One command, one reply; a Redis error reply becomes [`RedisError::Command`].
    pub fn cmd(&mut self, args: &[&[u8]]) -> Result<Resp, RedisError> {
        self.send(args)?;
        self.flush()?;
        self.expect_ok(args)
    }

    fn expect_ok(&mut self, args: &[&[u8]]) -> Result<Resp, RedisError> {
        match self.read()? {
            Resp::Error(message) => Err(RedisError::Command {
                path: self.path.clone(),
                command: String::from_utf8_lossy(args.first().copied().unwrap_or(b"?")).into(),
                message,
            }),
            r => Ok(r),
        }
    }

    pub fn int(&mut self, args: &[&[u8]]) -> Result<i64, RedisError> {
        match self.cmd(args)? {
            Resp::Int(n) => Ok(n),
            other => Err(self.proto(format!("expected an integer, got {other:?}"))),
        }
    }
}

/// The fields of a stored value (see the module docs).
fn fields(value: &[u8]) -> Vec<&[u8]> {
    if value.len() == YCSB_RECORD_BYTES {
        value.chunks(YCSB_FIELD_BYTES).collect()
    } else {
        vec![value]
    }
}

/// Queues the commands storing one record: HSET of its fields (after a DEL, so a shorter
/// value leaves no stale fields) and its index entry.
fn queue_store(c: &mut RespConn, key: &[u8], value: &[u8]) -> Result<(), RedisError> {
    c.send(&[b"DEL", key])?;
    queue_new_record(c, key, value)
}

/// Queues the two commands (HSET, ZADD) storing a record whose key does not exist.
fn queue_new_record(c: &mut RespConn, key: &[u8], value: &[u8]) -> Result<(), RedisError> {
    let mut args: Vec<&[u8]> = vec![b"HSET", key];
    for (i, f) in fields(value).into_iter().enumerate() {
        args.push(FIELD_NAMES[i]);
        args.push(f);
    }
    c.send(&args)?;
    c.send(&[b"ZADD", INDEX_KEY, b"0", key])
}

fn queue_read(c: &mut RespConn, key: &[u8]) -> Result<(), RedisError> {
    let mut args: Vec<&[u8]> = vec![b"HMGET", key];
    args.extend_from_slice(&FIELD_NAMES);
    c.send(&args)
}

/// The record an HMGET reply holds: `None` if the key has no fields.
fn record_of(c: &RespConn, r: Resp) -> Result<Option<Vec<u8>>, RedisError> {
    let Resp::Array(Some(parts)) = r else {
        return Err(c.proto(format!("HMGET: expected an array, got {r:?}")));
    };
    let mut value = Vec::new();
    let mut any = false;
    for p in parts {
        match p {
            Resp::Bulk(Some(b)) => {
                any = true;
                value.extend_from_slice(&b);
            }
            Resp::Bulk(None) => {}
            other => return Err(c.proto(format!("HMGET: unexpected element {other:?}"))),
        }
    }
    Ok(any.then_some(value))
}

/// YCSB's load phase into an empty Redis: `records` records. Returns how many were loaded
/// (0 if the database already held data).
pub fn preload(c: &mut RespConn, records: u64) -> Result<u64, RedisError> {
    if c.int(&[b"DBSIZE"])? != 0 || records == 0 {
        return Ok(0);
    }
    let mut i = 0;
    while i < records {
        let end = (i + LOAD_BATCH).min(records);
        for n in i..end {
            let key = ycsb_key(n);
            queue_store(c, &key, &ycsb_record(&key, 0))?;
        }
        c.flush()?;
        for _ in 0..(end - i) * 3 {
            c.expect_ok(&[b"load"])?;
        }
        i = end;
    }
    Ok(records)
}

/// Every record key, in order (from the index).
pub fn all_keys(c: &mut RespConn) -> Result<Vec<Vec<u8>>, RedisError> {
    match c.cmd(&[b"ZRANGEBYLEX", INDEX_KEY, b"-", b"+"])? {
        Resp::Array(Some(v)) => v
            .into_iter()
            .map(|r| match r {
                Resp::Bulk(Some(k)) => Ok(k),
                other => Err(c.proto(format!("ZRANGEBYLEX: unexpected {other:?}"))),
            })
            .collect(),
        other => Err(c.proto(format!("ZRANGEBYLEX: expected an array, got {other:?}"))),
    }
}

/// What a replica's Redis holds, for comparing replicas: DBSIZE, the number of indexed
/// records, and an FNV-1a digest over every record (key and value) in key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisDigest {
    pub dbsize: i64,
    pub records: u64,
    pub digest: u64,
}

pub fn digest(c: &mut RespConn) -> Result<RedisDigest, RedisError> {
    let dbsize = c.int(&[b"DBSIZE"])?;
    let keys = all_keys(c)?;
    let mut h = fnv(0xcbf2_9ce4_8422_2325, &dbsize.to_be_bytes());
    for chunk in keys.chunks(256) {
        for k in chunk {
            queue_read(c, k)?;
        }
        c.flush()?;
        for k in chunk {
            let r = c.read()?;
            let v = record_of(c, r)?.unwrap_or_default();
            h = fnv(h, &(k.len() as u64).to_be_bytes());
            h = fnv(h, k);
            h = fnv(h, &(v.len() as u64).to_be_bytes());
            h = fnv(h, &v);
        }
    }
    Ok(RedisDigest {
        dbsize,
        records: keys.len() as u64,
        digest: h,
    })
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Checks one snapshot record against the bounds every record the app writes obeys, and against
/// the key before it (strictly increasing: no duplicates, one canonical order).
fn check_record(prev: Option<&[u8]>, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
    if key.len() > MAX_KEY_BYTES {
        return Err("key longer than MAX_KEY_BYTES");
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err("value longer than MAX_VALUE_BYTES");
    }
    if key == INDEX_KEY {
        return Err("a record under the index's key");
    }
    if prev.is_some_and(|p| p >= key) {
        return Err("keys not in strictly increasing order");
    }
    Ok(())
}

/// Appends a snapshot to a buffer, one record at a time (format in the module docs). The
/// record count is written by [`SnapshotWriter::finish`]; a writer dropped before that leaves
/// a count of 0 followed by records, which [`parse_snapshot`] rejects (trailing bytes).
pub struct SnapshotWriter<'a> {
    out: &'a mut Vec<u8>,
    count_at: usize,
    n: u64,
    last: Option<Vec<u8>>,
}

impl<'a> SnapshotWriter<'a> {
    pub fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(SNAPSHOT_TAG);
        let count_at = out.len();
        out.extend_from_slice(&0u64.to_be_bytes());
        SnapshotWriter {
            out,
            count_at,
            n: 0,
            last: None,
        }
    }

    /// Appends one record; refuses (appending nothing) what [`parse_snapshot`] would refuse.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
        check_record(self.last.as_deref(), key, value)?;
        // Both lengths are bounded (MAX_KEY_BYTES, MAX_VALUE_BYTES), far below u32::MAX.
        self.out
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.out.extend_from_slice(key);
        self.out
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.out.extend_from_slice(value);
        self.last = Some(key.to_vec());
        self.n += 1;
        Ok(())
    }

    /// Writes the record count; returns it.
    pub fn finish(self) -> u64 {
        self.out[self.count_at..self.count_at + 8].copy_from_slice(&self.n.to_be_bytes());
        self.n
    }
}

/// A record in a snapshot: key and value.
pub type SnapshotRecord<'a> = (&'a [u8], &'a [u8]);

/// The records of a snapshot, in key order, each checked (lengths, bounds, order, nothing
/// after the last). A pure function: [`RedisApp`] calls it before touching Redis.
pub fn parse_snapshot(bytes: &[u8]) -> Result<Vec<SnapshotRecord<'_>>, &'static str> {
    let Some((&tag, mut rest)) = bytes.split_first() else {
        return Err("empty");
    };
    if tag != SNAPSHOT_TAG {
        return Err("not a redis snapshot (first byte is not 'R')");
    }
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if rest.len() < n {
            return Err("truncated");
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let n = u64::from_be_bytes(take(8)?.try_into().map_err(|_| "record count")?);
    // Every record takes at least its two lengths: this bounds the allocation below by the
    // input's size, whatever the count claims.
    let max_records = (bytes.len() / 8) as u64;
    if n > max_records {
        return Err("more records than the snapshot has bytes for");
    }
    let mut records: Vec<SnapshotRecord<'_>> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let key_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| "key length")?);
        if key_len as usize > MAX_KEY_BYTES {
            return Err("key longer than MAX_KEY_BYTES");
        }
        let key = take(key_len as usize)?;
        let value_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| "value length")?);
        if value_len as usize > MAX_VALUE_BYTES {
            return Err("value longer than MAX_VALUE_BYTES");
        }
        let value = take(value_len as usize)?;
        check_record(records.last().map(|r| r.0), key, value)?;
        records.push((key, value));
    }
    if !rest.is_empty() {
        return Err("trailing bytes");
    }
    Ok(records)
}

/// Up to `limit` index keys after `after` (from the first when `None`), in order.
fn index_page(
    c: &mut RespConn,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, RedisError> {
    let lo = match after {
        None => b"-".to_vec(),
        Some(k) => [&b"("[..], k].concat(),
    };
    let n = limit.to_string();
    match c.cmd(&[
        b"ZRANGEBYLEX",
        INDEX_KEY,
        &lo,
        b"+",
        b"LIMIT",
        b"0",
        n.as_bytes(),
    ])? {
        Resp::Array(Some(v)) if v.len() <= limit => v
            .into_iter()
            .map(|r| match r {
                Resp::Bulk(Some(k)) => Ok(k),
                other => Err(c.proto(format!("ZRANGEBYLEX: unexpected {other:?}"))),
            })
            .collect(),
        other => Err(c.proto(format!(
            "ZRANGEBYLEX: expected ≤ {limit} keys, got {other:?}"
        ))),
    }
}

/// How many keys Redis holds for `records` records: theirs plus the index (which Redis deletes
/// with its last member).
fn expected_dbsize(records: u64) -> i64 {
    records as i64 + i64::from(records > 0)
}

/// Where a replica's first Redis failure is reported; the node loop checks it after every
/// turn and stops the replica with this message.
pub type FatalSlot = Arc<Mutex<Option<String>>>;

/// The kv state machine on a local Redis.
pub struct RedisApp {
    conn: RespConn,
    fatal: FatalSlot,
    clock: Clock,
}

impl RedisApp {
    /// Connects (retrying up to `timeout` while redis-server starts) and runs the load phase
    /// if the database is empty. Returns the app and how many records were loaded.
    pub fn open(
        socket: &Path,
        preload_records: u64,
        timeout: Duration,
    ) -> Result<(RedisApp, u64), RedisError> {
        let mut conn = RespConn::connect_retry(socket, timeout)?;
        let loaded = preload(&mut conn, preload_records)?;
        Ok((
            RedisApp {
                conn,
                fatal: Arc::new(Mutex::new(None)),
                clock: Clock::new(),
            },
            loaded,
        ))
    }

    /// The slot the node loop watches.
    pub fn fatal(&self) -> FatalSlot {
        self.fatal.clone()
    }

    fn failed(&self) -> bool {
        self.fatal.lock().map_or(true, |f| f.is_some())
    }

    /// Reports a failure the replica cannot go on from (the node loop stops it).
    fn set_fatal(&self, msg: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(msg);
        }
    }

    /// Appends every record to `out` (see the module docs). On an error `out` holds part of a
    /// snapshot: the caller drops it.
    fn write_snapshot(&mut self, out: &mut Vec<u8>) -> Result<(), RedisError> {
        let c = &mut self.conn;
        let contents = |c: &RespConn, reason: String| RedisError::Contents {
            path: c.path.clone(),
            reason,
        };
        let dbsize = c.int(&[b"DBSIZE"])?;
        let mut w = SnapshotWriter::start(out);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let keys = index_page(c, after.as_deref(), SNAPSHOT_BATCH)?;
            for k in &keys {
                queue_read(c, k)?;
            }
            c.flush()?;
            for k in &keys {
                let r = c.read()?;
                let Some(v) = record_of(c, r)? else {
                    let k = String::from_utf8_lossy(k);
                    return Err(contents(
                        c,
                        format!("the index lists {k:?}, which has no record"),
                    ));
                };
                w.push(k, &v).map_err(|why| {
                    let k = String::from_utf8_lossy(k);
                    contents(c, format!("record {k:?}: {why}"))
                })?;
            }
            if keys.len() < SNAPSHOT_BATCH {
                break;
            }
            after = keys.into_iter().last();
        }
        let n = w.finish();
        if dbsize != expected_dbsize(n) {
            return Err(contents(
                c,
                format!(
                    "DBSIZE is {dbsize} for {n} indexed records: keys outside the kv data \
                     model would be missing from the snapshot"
                ),
            ));
        }
        Ok(())
    }

    /// Replaces what Redis holds by `records` (already checked by [`parse_snapshot`]).
    fn load_snapshot(&mut self, records: &[SnapshotRecord<'_>]) -> Result<(), RedisError> {
        let c = &mut self.conn;
        c.cmd(&[b"FLUSHDB"])?;
        for chunk in records.chunks(SNAPSHOT_BATCH) {
            for (k, v) in chunk {
                queue_new_record(c, k, v)?;
            }
            c.flush()?;
            for _ in 0..chunk.len() * 2 {
                c.expect_ok(&[b"restore"])?;
            }
        }
        let dbsize = c.int(&[b"DBSIZE"])?;
        let n = records.len() as u64;
        if dbsize != expected_dbsize(n) {
            return Err(RedisError::Contents {
                path: c.path.clone(),
                reason: format!("DBSIZE is {dbsize} after restoring {n} records"),
            });
        }
        Ok(())
    }

    fn apply(&mut self, req: &KvRequest, reply: &mut Vec<u8>) -> Result<(), RedisError> {
        let c = &mut self.conn;
        match req {
            KvRequest::Put { key, value } | KvRequest::Insert { key, value } => {
                queue_store(c, key, value)?;
                c.flush()?;
                for _ in 0..3 {
                    c.expect_ok(&[b"store"])?;
                }
                KvReply::Ok.encode(reply);
            }
            KvRequest::Get { key } => {
                queue_read(c, key)?;
                c.flush()?;
                let r = c.read()?;
                match record_of(c, r)? {
                    Some(v) => KvReply::Value(v).encode(reply),
                    None => KvReply::NotFound.encode(reply),
                }
            }
            KvRequest::Delete { key } => {
                let n = c.int(&[b"DEL", key])?;
                c.int(&[b"ZREM", INDEX_KEY, key])?;
                if n > 0 {
                    KvReply::Ok
                } else {
                    KvReply::NotFound
                }
                .encode(reply);
            }
            KvRequest::Scan { start, count } => {
                let mut lo = b"[".to_vec();
                lo.extend_from_slice(start);
                let n = count.to_string();
                let keys = match c.cmd(&[
                    b"ZRANGEBYLEX",
                    INDEX_KEY,
                    &lo,
                    b"+",
                    b"LIMIT",
                    b"0",
                    n.as_bytes(),
                ])? {
                    Resp::Array(Some(v)) => v,
                    other => return Err(c.proto(format!("ZRANGEBYLEX: got {other:?}"))),
                };
                let keys: Vec<Vec<u8>> = keys
                    .into_iter()
                    .filter_map(|r| match r {
                        Resp::Bulk(Some(k)) => Some(k),
                        _ => None,
                    })
                    .take(usize::from(*count))
                    .collect();
                for k in &keys {
                    queue_read(c, k)?;
                }
                c.flush()?;
                let mut records = Vec::with_capacity(keys.len());
                // Reply header: status, n; then each record costs 6 bytes of lengths.
                let mut size = 3;
                let mut full = false;
                for k in keys {
                    // Every reply must be read, even past the size limit.
                    let r = c.read()?;
                    let Some(v) = record_of(c, r)? else { continue };
                    size += 6 + k.len() + v.len();
                    full |= size > MAX_REPLY_BYTES;
                    if !full {
                        records.push((k, v));
                    }
                }
                KvReply::Records(records).encode(reply);
            }
        }
        Ok(())
    }
}

impl StateMachine for RedisApp {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn execute(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<Execution, AppError> {
        let req = KvRequest::decode(request)?;
        let t0 = self.clock.now();
        if self.failed() {
            // The node loop stops at the end of this turn; nothing more reaches Redis.
            return Ok(Execution { cpu_ns: 0 });
        }
        if let Err(e) = self.apply(&req, reply) {
            reply.clear();
            self.set_fatal(e.to_string());
        }
        Ok(Execution {
            cpu_ns: (self.clock.now() - t0).as_ns(),
        })
    }

    fn is_read_only(&self, request: &[u8]) -> bool {
        KvRequest::decode(request).is_ok_and(|r| r.is_read_only())
    }

    /// Not computed here (it needs a round trip per record); replicas are compared with
    /// [`digest`] on their Redis instead.
    fn state_digest(&self) -> u64 {
        0
    }

    /// Every record, read out of Redis (format and costs in the module docs). A Redis error or
    /// unexpected contents stop the replica (the fatal slot) and leave `out` as it was: no
    /// snapshot beats one that silently lost records. `cpu_ns` is the time it really took.
    fn snapshot(&mut self, out: &mut Vec<u8>) -> Execution {
        let t0 = self.clock.now();
        if self.failed() {
            return Execution { cpu_ns: 0 };
        }
        let start = out.len();
        if let Err(e) = self.write_snapshot(out) {
            out.truncate(start);
            self.set_fatal(format!("snapshot: {e}"));
        }
        Execution {
            cpu_ns: (self.clock.now() - t0).as_ns(),
        }
    }

    /// Parses and checks the whole snapshot first: a malformed one is refused and Redis is not
    /// touched. Then replaces Redis's contents. Should Redis fail from there on, its old state
    /// is gone and the new one partial: the replica stops (the fatal slot) and the restore
    /// fails.
    fn restore(&mut self, snapshot: &[u8]) -> Result<Execution, AppError> {
        let t0 = self.clock.now();
        let bad = |why| AppError::BadSnapshot { app: "redis", why };
        if self.failed() {
            return Err(bad("the redis backend has failed; the replica is stopping"));
        }
        let records = parse_snapshot(snapshot).map_err(bad)?;
        if let Err(e) = self.load_snapshot(&records) {
            self.set_fatal(format!(
                "restoring a snapshot of {} records failed; Redis holds part of it: {e}",
                records.len()
            ));
            return Err(bad("redis failed while loading it (the replica stops)"));
        }
        Ok(Execution {
            cpu_ns: (self.clock.now() - t0).as_ns(),
        })
    }
}

/// `{id}` in a cluster file's socket path, replaced by the node id.
pub fn socket_for(template: &Path, id: u8) -> PathBuf {
    PathBuf::from(template.to_string_lossy().replace("{id}", &id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_into_ycsb_fields() {
        let rec = ycsb_record(&ycsb_key(3), 0);
        let f = fields(&rec);
        assert_eq!(f.len(), YCSB_FIELDS);
        assert!(f.iter().all(|x| x.len() == YCSB_FIELD_BYTES));
        assert_eq!(f.concat(), rec);
        assert_eq!(fields(b"short"), vec![&b"short"[..]]);
    }

    fn parse(bytes: &[u8]) -> Result<Resp, RedisError> {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        b.write_all(bytes).unwrap();
        drop(b);
        RespConn::from_stream(a, "test").unwrap().read()
    }

    #[test]
    fn resp_parses_and_never_panics_on_junk() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Resp::Simple("OK".into()));
        assert_eq!(parse(b":-3\r\n").unwrap(), Resp::Int(-3));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Resp::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n$3\r\nabc\r\n$-1\r\n").unwrap(),
            Resp::Array(Some(vec![
                Resp::Bulk(Some(b"abc".to_vec())),
                Resp::Bulk(None)
            ]))
        );
        for junk in [
            &b""[..],
            b"\r\n",
            b"\xc3\xa9\r\n",
            b"$99999999999\r\n",
            b"*99999999999\r\n",
            b"*3\r\n:1\r\n",
            b"$5\r\nab\r\n",
            b"$2\r\nabcd",
            b":x\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"+no newline",
        ] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    fn encode(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = SnapshotWriter::start(&mut out);
        for (k, v) in records {
            w.push(k, v).unwrap();
        }
        assert_eq!(w.finish(), records.len() as u64);
        out
    }

    fn sample() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (vec![], b"empty key".to_vec()),
            (b"a".to_vec(), vec![]),
            (b"a\0".to_vec(), vec![0xff; 3]),
            (vec![b'k'; MAX_KEY_BYTES], vec![b'v'; MAX_VALUE_BYTES]),
            (ycsb_key(7), ycsb_record(&ycsb_key(7), 3)),
        ]
    }

    fn refs(v: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
        v.iter().map(|(k, v)| (&k[..], &v[..])).collect()
    }

    #[test]
    fn snapshot_codec_round_trips() {
        let records = sample();
        let bytes = encode(&refs(&records));
        assert_eq!(bytes[0], SNAPSHOT_TAG);
        assert_eq!(bytes[1..9], (records.len() as u64).to_be_bytes());
        assert_eq!(parse_snapshot(&bytes).unwrap(), refs(&records));
        // The layout, spelled out for one record.
        assert_eq!(
            encode(&[(b"ab", b"xyz")]),
            [
                &[b'R'][..],
                &1u64.to_be_bytes(),
                &2u32.to_be_bytes(),
                b"ab",
                &3u32.to_be_bytes(),
                b"xyz"
            ]
            .concat()
        );
        let empty = encode(&[]);
        assert_eq!(empty, [&[b'R'][..], &[0; 8]].concat());
        assert_eq!(parse_snapshot(&empty).unwrap(), vec![]);
    }

    #[test]
    fn snapshot_writer_refuses_what_the_parser_refuses() {
        let mut out = Vec::new();
        let mut w = SnapshotWriter::start(&mut out);
        w.push(b"m", b"1").unwrap();
        let long_key = vec![0; MAX_KEY_BYTES + 1];
        let long_value = vec![0; MAX_VALUE_BYTES + 1];
        let refused: [(&[u8], &[u8]); 5] = [
            (b"m", b"again"),
            (b"a", b"before"),
            (&long_key, b""),
            (b"z", &long_value),
            (INDEX_KEY, b""),
        ];
        for (k, v) in refused {
            assert!(w.push(k, v).is_err(), "{k:?}");
        }
        assert_eq!(w.finish(), 1);
        assert_eq!(out, encode(&[(b"m", b"1")]));
        assert_eq!(parse_snapshot(&out).unwrap(), vec![(&b"m"[..], &b"1"[..])]);
    }

    /// A record as the writer would frame it, without its checks.
    fn raw(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }

    fn raw_snapshot(n: u64, records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_TAG];
        out.extend_from_slice(&n.to_be_bytes());
        for (k, v) in records {
            raw(&mut out, k, v);
        }
        out
    }

    #[test]
    fn snapshot_parser_rejects_damage() {
        let good = encode(&refs(&sample()));
        // Every truncation, and every extension.
        for len in 0..good.len() {
            assert!(
                parse_snapshot(&good[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        for extra in [&[0u8][..], b"R", &[0; 8]] {
            let mut b = good.clone();
            b.extend_from_slice(extra);
            assert_eq!(parse_snapshot(&b), Err("trailing bytes"));
        }
        let long_key = vec![b'k'; MAX_KEY_BYTES + 1];
        let long_value = vec![b'v'; MAX_VALUE_BYTES + 1];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            ([&[b'K'][..], &good[1..]].concat(), "not a redis snapshot"),
            (raw_snapshot(u64::MAX, &[]), "more records"),
            (raw_snapshot(1 << 40, &[(b"a", b"b")]), "more records"),
            (raw_snapshot(2, &[(b"a", b"b")]), "truncated"),
            (raw_snapshot(0, &[(b"a", b"b")]), "trailing bytes"),
            (raw_snapshot(1, &[(&long_key, b"")]), "key longer"),
            (raw_snapshot(1, &[(b"k", &long_value)]), "value longer"),
            (raw_snapshot(2, &[(b"b", b""), (b"a", b"")]), "increasing"),
            (raw_snapshot(2, &[(b"a", b"1"), (b"a", b"2")]), "increasing"),
            (raw_snapshot(1, &[(INDEX_KEY, b"")]), "index"),
        ];
        for (bytes, why) in cases {
            match parse_snapshot(&bytes) {
                Err(e) => assert!(e.contains(why), "{e:?} should mention {why:?}"),
                Ok(r) => panic!("accepted {} records, expected {why:?}", r.len()),
            }
        }
        // A length field claiming gigabytes is refused without allocating them.
        let mut huge = raw_snapshot(1, &[]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_snapshot(&huge).is_err());
        // Garbage never panics.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if i == 0 {
                        SNAPSHOT_TAG
                    } else {
                        (x % 4) as u8
                    }
                })
                .collect();
            let _ = parse_snapshot(&junk);
        }
    }

    /// An app whose "Redis" is the other end of a socket pair, which never answers: what the
    /// app sent is left there to inspect.
    fn app_on_pair() -> (RedisApp, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        b.set_nonblocking(true).unwrap();
        let app = RedisApp {
            conn: RespConn::from_stream(a, "pair").unwrap(),
            fatal: Arc::new(Mutex::new(None)),
            clock: Clock::new(),
        };
        (app, b)
    }

    fn nothing_sent(peer: &mut UnixStream) {
        let mut buf = [0u8; 64];
        match peer.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("the app sent something to redis: {other:?}"),
        }
    }

    #[test]
    fn bad_snapshots_are_refused_before_redis() {
        let (mut app, mut peer) = app_on_pair();
        let good = encode(&refs(&sample()));
        for bad in [&b""[..], b"R", &good[..good.len() - 1], b"Kxxxxxxxx"] {
            assert!(
                matches!(
                    app.restore(bad),
                    Err(AppError::BadSnapshot { app: "redis", .. })
                ),
                "{bad:?}"
            );
        }
        nothing_sent(&mut peer);
        assert!(!app.failed(), "a refused snapshot is not a failure");
    }

    #[test]
    fn a_failed_backend_neither_snapshots_nor_restores() {
        let (mut app, mut peer) = app_on_pair();
        app.set_fatal("earlier failure".into());
        let mut out = b"prefix".to_vec();
        app.snapshot(&mut out);
        assert_eq!(out, b"prefix");
        assert!(app.restore(&encode(&[(b"k", b"v")])).is_err());
        nothing_sent(&mut peer);
        assert_eq!(
            app.fatal().lock().unwrap().as_deref(),
            Some("earlier failure")
        );
    }

    #[test]
    fn a_redis_that_does_not_answer_stops_the_snapshot() {
        let (mut app, peer) = app_on_pair();
        drop(peer);
        let mut out = b"prefix".to_vec();
        app.snapshot(&mut out);
        assert_eq!(out, b"prefix", "a failed snapshot leaves nothing behind");
        let fatal = app.fatal().lock().unwrap().clone();
        assert!(fatal.is_some_and(|m| m.starts_with("snapshot: ")));
    }

    #[test]
    fn socket_template() {
        assert_eq!(
            socket_for(Path::new("/tmp/r/redis-{id}.sock"), 2),
            PathBuf::from("/tmp/r/redis-2.sock")
        );
    }
}
