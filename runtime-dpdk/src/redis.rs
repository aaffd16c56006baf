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
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hovercraft_core::app::kv::{
    ycsb_key, ycsb_record, KvReply, KvRequest, MAX_REPLY_BYTES, YCSB_FIELDS, YCSB_FIELD_BYTES,
    YCSB_RECORD_BYTES,
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
            if let Ok(mut f) = self.fatal.lock() {
                f.get_or_insert(e.to_string());
            }
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

    /// Not yet: Redis snapshots go through Redis itself (DUMP/RESTORE). Until then a node
    /// on Redis that must snapshot stops with a fatal error rather than lose state.
    fn snapshot(&mut self, _out: &mut Vec<u8>) -> Execution {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert("snapshots of the redis backend are not implemented".into());
        }
        Execution { cpu_ns: 0 }
    }

    fn restore(&mut self, _snapshot: &[u8]) -> Result<Execution, AppError> {
        Err(AppError::BadSnapshot {
            app: "redis",
            why: "snapshots of the redis backend are not implemented",
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

    #[test]
    fn socket_template() {
        assert_eq!(
            socket_for(Path::new("/tmp/r/redis-{id}.sock"), 2),
            PathBuf::from("/tmp/r/redis-2.sock")
        );
    }
}
