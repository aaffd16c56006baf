//! An ordered key-value store, enough for YCSB-E (95% short scans, 5% inserts over 1M keys of
//! 10 fields × 100 B). State is a `BTreeMap`, so iteration (scans, the digest) is in key order
//! and identical on every replica.
//!
//! Request layout (big-endian):
//!
//! ```text
//! | tag u8 = tag::KV | op u8 | key_len u16 | key | op-specific
//! GET    = 1   nothing more
//! PUT    = 2   value_len u32 | value
//! INSERT = 3   value_len u32 | value       (YCSB's insert; same semantics as PUT)
//! SCAN   = 4   count u16                   (up to `count` records with key >= key, in order)
//! DELETE = 5   nothing more
//! ```
//!
//! Trailing bytes after a request are an error, so two encodings never mean the same request.
//!
//! Reply layout: one status byte that alone says what follows, so a reply decodes without
//! knowing the request it answers (a linearizability checker reads replies from a log):
//!
//! ```text
//! status::OK        = 0   nothing more        (PUT/INSERT applied, DELETE removed a key)
//! status::NOT_FOUND = 1   nothing more        (GET or DELETE of an absent key)
//! status::FULL      = 2   nothing more        (PUT/INSERT of a new key with max_keys keys)
//! status::VALUE     = 3   value_len u32 | value                          (GET hit)
//! status::RECORDS   = 4   n u16 | [key_len u16 | key | value_len u32 | value] * n   (SCAN)
//! ```
//!
//! A SCAN always answers RECORDS, possibly with n = 0.
//!
//! Preloaded YCSB table: a store built with [`KvCosts::preloaded_ycsb_records`] = n starts
//! with YCSB's load phase done — `ycsb_record(key, 0)` under `ycsb_key(i)` for every `i < n` —
//! without holding it: those records are generated when read, and only what is written after
//! takes memory (see [`KvApp`]).
//!
//! Limits: keys ≤ [`MAX_KEY_BYTES`], values ≤ [`MAX_VALUE_BYTES`], scan count ≤
//! [`MAX_SCAN_RECORDS`], replies ≤ [`MAX_REPLY_BYTES`] (a scan stops early rather than exceed
//! it), and at most [`KvCosts::max_keys`] keys. So the store holds at most
//! `max_keys × (MAX_KEY_BYTES + MAX_VALUE_BYTES)` payload bytes; pick `max_keys` with the value
//! sizes of the workload in mind (YCSB: ~1 KiB per key).
//!
//! CPU cost is reported, not spent: see [`KvCosts`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::{tag, AppError, Execution, StateMachine};

/// Longest key, in bytes (YCSB keys are ~24 B; 256 leaves room for composite keys).
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value, in bytes (64 KiB: 64× a YCSB record, and still fits any reply with room).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most records one SCAN may ask for (YCSB-E asks for 1–100).
pub const MAX_SCAN_RECORDS: u16 = 1000;
/// Largest reply body, in bytes (1 MiB). A scan stops before the record that would exceed it;
/// since one record is at most `6 + MAX_KEY_BYTES + MAX_VALUE_BYTES` bytes, a scan that finds
/// any record returns at least one.
pub const MAX_REPLY_BYTES: usize = 1 << 20;
/// Fixed part of every request: tag, op, key_len.
pub const REQUEST_HEADER_BYTES: usize = 4;

/// Request opcodes (second byte of a request).
pub mod op {
    pub const GET: u8 = 1;
    pub const PUT: u8 = 2;
    pub const INSERT: u8 = 3;
    pub const SCAN: u8 = 4;
    pub const DELETE: u8 = 5;
}

/// Reply status bytes (first byte of a reply); see the module docs for what follows each.
pub mod status {
    pub const OK: u8 = 0;
    pub const NOT_FOUND: u8 = 1;
    pub const FULL: u8 = 2;
    pub const VALUE: u8 = 3;
    pub const RECORDS: u8 = 4;
}

/// Framing bytes per record in a RECORDS reply: key_len u16 + value_len u32.
const RECORD_FRAMING_BYTES: usize = 6;

const NAME: &str = "kv";

/// Cost model and capacity of the store. Costs are reported in [`Execution::cpu_ns`]:
///
/// `cpu_ns = op_ns + records × per_record_ns + bytes × per_kib_ns / 1024`
///
/// where `records` is the number of records a SCAN returns (0 for other ops) and `bytes` is
/// the key and value bytes the operation carries in and out: the request's key and value plus
/// the reply's value (GET) or keys and values (SCAN). Integer arithmetic, multiplying before
/// dividing so a 1000-B YCSB record is not rounded down to 0 KiB; every step saturates, so no
/// configuration can overflow.
///
/// # Calibration: YCSB-E on Redis
///
/// The defaults stand in for the paper's application, Redis under YCSB-E (95% scans of 1–10
/// records, 5% inserts, 1M records of 10 × 100 B). They are *inferred*, not measured on Redis:
/// YCSB's Redis binding answers a scan with one `ZRANGEBYSCORE` on its key index (a skip-list
/// descent over 1M members) and then one `HGETALL` per record (a 10-field hash: ~20 dependent
/// cache misses and a 20-element reply), and an insert with `HMSET` + `ZADD`. With the network
/// path on another core (R2P2), a Redis command costs ~1 µs of dispatch plus its data
/// structure work, which gives `op_ns` ≈ 3 µs and `per_record_ns` ≈ 3.5 µs. A mean YCSB-E
/// operation then costs
///
/// `3000 + 0.95 × (5.5 × 3500 + (24 + 5.5 × 1024) × 100 / 1024) + 0.05 × 100 ≈ 21.3 µs`,
///
/// plus ~1.3 µs for the application core to send the reply (4.4 packets on average at the
/// simulator's default 300 ns per packet): ~22.6 µs, so one unreplicated server saturates at
/// ~44k requests/s, the regime the paper's 4× YCSB-E speedup of HovercRaft starts from (load
/// stepped from 1k to 180k requests/s). A GET or PUT costs ~3.1 µs, above a real Redis GET
/// (~1 µs): those ops serve the linearizability checks, not throughput measurements.
///
/// `max_keys` and `preloaded_ycsb_records` live here (rather than in a separate config)
/// because [`super::build`] passes this one value to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvCosts {
    /// Fixed cost of every operation. Default 3,000 ns: request parsing and command dispatch
    /// (~1 µs) plus a scan's index range query or an insert's index update (~2 µs: a descent
    /// of ~20 skip-list levels, the lower ones cache misses). See the type docs.
    pub op_ns: u64,
    /// Cost per record a SCAN returns. Default 3,500 ns: one Redis `HGETALL` of a 10-field
    /// record (dispatch ~1 µs, ~20 cache misses over the hash's entries ~2 µs, reply framing
    /// ~0.5 µs). This is what makes YCSB-E scans ~20 µs, the CPU-bound read-only regime where
    /// HovercRaft's read load balancing pays off.
    pub per_record_ns: u64,
    /// Cost per KiB of key and value bytes read or written. Default 100 ns: copying at
    /// ~10 GB/s, a single core's memcpy bandwidth.
    pub per_kib_ns: u64,
    /// Most keys the store holds, implicit preloaded records included; a PUT/INSERT of a new
    /// key beyond it answers FULL instead of growing. Default 4,000,000: 4× YCSB's 1M-record
    /// load, so a long run of 5% inserts does not fill it, while bounding memory (~4 GiB at
    /// YCSB's ~1 KiB per record, if every record were written).
    pub max_keys: u64,
    /// Records the store starts with, as if YCSB's load phase had stored `ycsb_record(key, 0)`
    /// under `ycsb_key(i)` for every `i` below this count. They are implicit (generated when
    /// read, no memory until written), so 1M records cost nothing per replica. Default 0.
    /// Capped at `max_keys`.
    pub preloaded_ycsb_records: u64,
}

impl Default for KvCosts {
    fn default() -> Self {
        KvCosts {
            op_ns: 3_000,
            per_record_ns: 3_500,
            per_kib_ns: 100,
            max_keys: 4_000_000,
            preloaded_ycsb_records: 0,
        }
    }
}

impl KvCosts {
    /// The CPU cost of an operation returning `records` scan records and moving `bytes` key and
    /// value bytes (see the type docs). Saturates instead of overflowing.
    pub fn cpu_ns(&self, records: u64, bytes: u64) -> u64 {
        let per_kib = u128::from(bytes) * u128::from(self.per_kib_ns) / 1024;
        let per_kib = u64::try_from(per_kib).unwrap_or(u64::MAX);
        self.op_ns
            .saturating_add(records.saturating_mul(self.per_record_ns))
            .saturating_add(per_kib)
    }
}

/// A decoded request (owned). See the module docs for the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRequest {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// YCSB's insert: same semantics as `Put` (insert or overwrite); a separate opcode so
    /// workloads and traces keep the distinction.
    Insert {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Up to `count` records with key ≥ `start`, in key order.
    Scan {
        start: Vec<u8>,
        count: u16,
    },
    Delete {
        key: Vec<u8>,
    },
}

impl KvRequest {
    /// Appends the encoded request to `out`.
    ///
    /// Fields are not checked here: a key, value or count beyond the limits encodes (lengths
    /// saturate at the field's maximum) into a request that [`KvRequest::decode`] — and so
    /// every replica alike — rejects as [`AppError::OutOfRange`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.borrowed().encode(out);
    }

    /// Parses a request. Never panics; every malformed input is an [`AppError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, AppError> {
        parse_request(bytes).map(RequestRef::into_owned)
    }

    /// GET and SCAN have no side effects.
    pub fn is_read_only(&self) -> bool {
        self.borrowed().is_read_only()
    }

    /// The request's key (a SCAN's start key).
    pub fn key(&self) -> &[u8] {
        match self {
            KvRequest::Get { key }
            | KvRequest::Put { key, .. }
            | KvRequest::Insert { key, .. }
            | KvRequest::Delete { key } => key,
            KvRequest::Scan { start, .. } => start,
        }
    }

    fn borrowed(&self) -> RequestRef<'_> {
        match self {
            KvRequest::Get { key } => RequestRef::Get { key },
            KvRequest::Put { key, value } => RequestRef::Put { key, value },
            KvRequest::Insert { key, value } => RequestRef::Insert { key, value },
            KvRequest::Scan { start, count } => RequestRef::Scan {
                start,
                count: *count,
            },
            KvRequest::Delete { key } => RequestRef::Delete { key },
        }
    }
}

/// A request borrowing from the bytes it was parsed from, so `execute` copies only what it
/// stores (a PUT's key and value) and GET/SCAN allocate nothing to parse.
#[derive(Clone, Copy, Debug)]
enum RequestRef<'a> {
    Get { key: &'a [u8] },
    Put { key: &'a [u8], value: &'a [u8] },
    Insert { key: &'a [u8], value: &'a [u8] },
    Scan { start: &'a [u8], count: u16 },
    Delete { key: &'a [u8] },
}

impl RequestRef<'_> {
    fn is_read_only(&self) -> bool {
        matches!(self, RequestRef::Get { .. } | RequestRef::Scan { .. })
    }

    fn into_owned(self) -> KvRequest {
        match self {
            RequestRef::Get { key } => KvRequest::Get { key: key.to_vec() },
            RequestRef::Put { key, value } => KvRequest::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            },
            RequestRef::Insert { key, value } => KvRequest::Insert {
                key: key.to_vec(),
                value: value.to_vec(),
            },
            RequestRef::Scan { start, count } => KvRequest::Scan {
                start: start.to_vec(),
                count,
            },
            RequestRef::Delete { key } => KvRequest::Delete { key: key.to_vec() },
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (code, key) = match *self {
            RequestRef::Get { key } => (op::GET, key),
            RequestRef::Put { key, .. } => (op::PUT, key),
            RequestRef::Insert { key, .. } => (op::INSERT, key),
            RequestRef::Scan { start, .. } => (op::SCAN, start),
            RequestRef::Delete { key } => (op::DELETE, key),
        };
        out.push(tag::KV);
        out.push(code);
        put_len_u16(out, key.len());
        out.extend_from_slice(key);
        match *self {
            RequestRef::Put { value, .. } | RequestRef::Insert { value, .. } => {
                put_len_u32(out, value.len());
                out.extend_from_slice(value);
            }
            RequestRef::Scan { count, .. } => out.extend_from_slice(&count.to_be_bytes()),
            RequestRef::Get { .. } | RequestRef::Delete { .. } => {}
        }
    }
}

fn parse_request(bytes: &[u8]) -> Result<RequestRef<'_>, AppError> {
    super::check_tag(bytes, tag::KV, NAME, REQUEST_HEADER_BYTES)?;
    let mut r = Reader::new(bytes);
    let header = r.take(REQUEST_HEADER_BYTES)?;
    let code = header[1];
    if !(op::GET..=op::DELETE).contains(&code) {
        return Err(AppError::UnknownOp(code));
    }
    let key_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if key_len > MAX_KEY_BYTES {
        return Err(out_of_range("key_len", key_len));
    }
    let key = r.take(key_len)?;
    let req = match code {
        op::GET => RequestRef::Get { key },
        op::PUT => RequestRef::Put {
            key,
            value: r.value()?,
        },
        op::INSERT => RequestRef::Insert {
            key,
            value: r.value()?,
        },
        op::SCAN => {
            let count = r.u16()?;
            if count > MAX_SCAN_RECORDS {
                return Err(out_of_range("count", usize::from(count)));
            }
            RequestRef::Scan { start: key, count }
        }
        _ => RequestRef::Delete { key },
    };
    r.finish()?;
    Ok(req)
}

/// A decoded reply. See the module docs for the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvReply {
    /// PUT/INSERT applied, or DELETE removed a key.
    Ok,
    /// GET or DELETE of an absent key.
    NotFound,
    /// PUT/INSERT of a new key refused: the store holds `max_keys` keys.
    Full,
    /// GET hit.
    Value(Vec<u8>),
    /// SCAN result, in key order (possibly empty).
    Records(Vec<(Vec<u8>, Vec<u8>)>),
}

impl KvReply {
    /// Appends the encoded reply to `out`. Like [`KvRequest::encode`], out-of-limit contents
    /// encode (lengths saturate) into bytes that [`KvReply::decode`] rejects.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            KvReply::Ok => out.push(status::OK),
            KvReply::NotFound => out.push(status::NOT_FOUND),
            KvReply::Full => out.push(status::FULL),
            KvReply::Value(value) => encode_value(out, value),
            KvReply::Records(records) => {
                out.push(status::RECORDS);
                put_len_u16(out, records.len());
                for (key, value) in records {
                    encode_record(out, key, value);
                }
            }
        }
    }

    /// Parses a reply without knowing the request it answers. Enforces the same limits the
    /// store does (key, value, record count, total size), so a checker also catches a replica
    /// that broke them. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, AppError> {
        if bytes.len() > MAX_REPLY_BYTES {
            return Err(out_of_range("reply_bytes", bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let reply = match r.u8()? {
            status::OK => KvReply::Ok,
            status::NOT_FOUND => KvReply::NotFound,
            status::FULL => KvReply::Full,
            status::VALUE => KvReply::Value(r.value()?.to_vec()),
            status::RECORDS => {
                let n = r.u16()?;
                if n > MAX_SCAN_RECORDS {
                    return Err(out_of_range("count", usize::from(n)));
                }
                // n ≤ MAX_SCAN_RECORDS, so this allocation is bounded whatever the input.
                let mut records = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let key_len = usize::from(r.u16()?);
                    if key_len > MAX_KEY_BYTES {
                        return Err(out_of_range("key_len", key_len));
                    }
                    let key = r.take(key_len)?.to_vec();
                    let value = r.value()?.to_vec();
                    records.push((key, value));
                }
                KvReply::Records(records)
            }
            other => return Err(out_of_range("status", usize::from(other))),
        };
        r.finish()?;
        Ok(reply)
    }
}

fn encode_value(out: &mut Vec<u8>, value: &[u8]) {
    out.push(status::VALUE);
    put_len_u32(out, value.len());
    out.extend_from_slice(value);
}

/// One record of a RECORDS reply; shared by `KvReply::encode` and `KvApp::execute` so the two
/// cannot drift apart.
fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_len_u16(out, key.len());
    out.extend_from_slice(key);
    put_len_u32(out, value.len());
    out.extend_from_slice(value);
}

fn put_len_u16(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
}

fn put_len_u32(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn out_of_range(field: &'static str, value: usize) -> AppError {
    AppError::OutOfRange {
        field,
        value: u64::try_from(value).unwrap_or(u64::MAX),
    }
}

/// A bounds-checked cursor: every read either succeeds or reports how many bytes it needed.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AppError> {
        let end = self.pos.saturating_add(n);
        let slice = self.bytes.get(self.pos..end).ok_or(AppError::Truncated {
            need: end,
            have: self.bytes.len(),
        })?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, AppError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AppError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AppError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `value_len u32 | value`, with the length checked before anything is read.
    fn value(&mut self) -> Result<&'a [u8], AppError> {
        let len = self.u32()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_VALUE_BYTES {
            return Err(out_of_range("value_len", len));
        }
        self.take(len)
    }

    fn finish(self) -> Result<(), AppError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            rest => Err(out_of_range("trailing_bytes", rest)),
        }
    }
}

use super::{fnv1a, kv_table, FNV_OFFSET};

/// The key-value store: the records written since it was built, over an optional table of
/// *implicit* YCSB records.
///
/// YCSB-E preloads 1M records of ~1 KiB; materialising them on every replica of a 9-node run
/// would take ~9 GiB. So the first [`KvCosts::preloaded_ycsb_records`] records
/// (`ycsb_key(i)` → `ycsb_record(key, 0)` for `i` below that count) exist implicitly and are
/// generated when read, and `overlay` holds everything written since: new keys, new values of
/// implicit keys, and tombstones for deleted implicit keys. Every operation, the cost model,
/// [`KvApp::len`], [`KvApp::get`] and the state digest behave exactly as if those records had
/// been stored with [`KvApp::load`] (a property test holds the two side by side).
#[derive(Clone)]
pub struct KvApp {
    /// Written keys. `None` is a tombstone, kept only for an implicit key (a deleted key of
    /// the overlay itself is just removed), so the map holds at most
    /// `max_keys + implicit_records` entries.
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Implicit records: `ycsb_key(0..implicit_records)`, unless the overlay says otherwise.
    implicit_records: u64,
    /// Keys present (implicit ones not deleted, plus the overlay's own), kept as writes happen
    /// so `len` and the `max_keys` check are O(1).
    live_keys: u64,
    costs: KvCosts,
}

impl KvApp {
    /// An empty store, or one holding the implicit YCSB table of
    /// `costs.preloaded_ycsb_records` records. A table larger than `costs.max_keys` is cut to
    /// `max_keys` records, which is what loading it with [`KvApp::load`] until the store is
    /// full would leave.
    pub fn new(costs: KvCosts) -> Self {
        let implicit_records = costs.preloaded_ycsb_records.min(costs.max_keys);
        KvApp {
            overlay: BTreeMap::new(),
            implicit_records,
            live_keys: implicit_records,
            costs,
        }
    }

    pub fn costs(&self) -> KvCosts {
        self.costs
    }

    /// Number of keys stored (implicit records included).
    pub fn len(&self) -> usize {
        usize::try_from(self.live_keys).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.live_keys == 0
    }

    /// Reads a value without going through the request codec (tests, checkers). An implicit
    /// record is generated, hence the `Cow`.
    pub fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self.overlay.get(key) {
            Some(Some(value)) => Some(Cow::Borrowed(value.as_slice())),
            Some(None) => None,
            None => self
                .implicit_index(key)
                .map(|_| Cow::Owned(ycsb_record(key, 0))),
        }
    }

    /// Stores a record outside the request path and its cost model: for a load phase (YCSB's
    /// 1M records) that every replica performs identically before the measured run. Enforces
    /// the same limits as PUT; a full store is `OutOfRange { field: "max_keys" }`.
    pub fn load(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), AppError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(out_of_range("key_len", key.len()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(out_of_range("value_len", value.len()));
        }
        if self.put(&key, &value) == status::FULL {
            return Err(AppError::OutOfRange {
                field: "max_keys",
                value: self.costs.max_keys,
            });
        }
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.live_keys >= self.costs.max_keys
    }

    fn contains(&self, key: &[u8]) -> bool {
        match self.overlay.get(key) {
            Some(entry) => entry.is_some(),
            None => self.implicit_index(key).is_some(),
        }
    }

    /// `i` if `key` is `ycsb_key(i)` for an implicit record `i`. `ycsb_key` is the only
    /// 24-byte `user` + 20-digit spelling of a number, so parsing is exact.
    fn implicit_index(&self, key: &[u8]) -> Option<u64> {
        if self.implicit_records == 0 || key.len() != YCSB_KEY_BYTES {
            return None;
        }
        let digits = key.strip_prefix(YCSB_KEY_PREFIX)?;
        let mut n: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        (n < self.implicit_records).then_some(n)
    }

    /// The first implicit record whose key is ≥ `start` (`implicit_records` if none): a binary
    /// search, since implicit keys are sorted by index and `start` may be any byte string.
    fn first_implicit_at_or_after(&self, start: &[u8]) -> u64 {
        let (mut lo, mut hi) = (0, self.implicit_records);
        let mut key = [0; YCSB_KEY_BYTES];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ycsb_key_into(mid, &mut key).as_slice() < start {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// PUT and INSERT: overwrite, or insert a new key unless the store is full.
    fn put(&mut self, key: &[u8], value: &[u8]) -> u8 {
        if !self.contains(key) {
            if self.is_full() {
                return status::FULL;
            }
            self.live_keys += 1;
        }
        // A fresh allocation rather than reusing the old one, so a shrinking value does not
        // keep its old capacity alive.
        self.overlay.insert(key.to_vec(), Some(value.to_vec()));
        status::OK
    }

    fn delete(&mut self, key: &[u8]) -> u8 {
        if !self.contains(key) {
            return status::NOT_FOUND;
        }
        self.live_keys -= 1;
        if self.implicit_index(key).is_some() {
            self.overlay.insert(key.to_vec(), None);
        } else {
            self.overlay.remove(key);
        }
        status::OK
    }

    /// Appends up to `count` records with key ≥ `start` to `reply` (stopping before the
    /// reply would pass [`MAX_REPLY_BYTES`]), merging the overlay and the implicit table in
    /// key order; an overlay entry hides the implicit record of the same key. Returns the
    /// records appended and their key and value bytes.
    fn scan(
        &self,
        start: &[u8],
        count: u16,
        reply_start: usize,
        reply: &mut Vec<u8>,
    ) -> (u16, u64) {
        let mut overlay = self
            .overlay
            .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
            .peekable();
        let mut next_implicit = self.first_implicit_at_or_after(start);
        let (mut n, mut bytes) = (0u16, 0u64);
        // The next implicit record's key, and its value once it is the one returned.
        let mut implicit_key = [0; YCSB_KEY_BYTES];
        let mut implicit_value;
        while n < count {
            let implicit_left = next_implicit < self.implicit_records;
            if implicit_left {
                ycsb_key_into(next_implicit, &mut implicit_key);
            }
            let take_overlay = match overlay.peek() {
                None if !implicit_left => break,
                None => false,
                Some((key, _)) => !implicit_left || key.as_slice() <= implicit_key.as_slice(),
            };
            let (key, value): (&[u8], &[u8]) = if take_overlay {
                let Some((key, entry)) = overlay.next() else {
                    break;
                };
                if implicit_left && key.as_slice() == implicit_key.as_slice() {
                    // The overlay's entry replaces (or, as a tombstone, deletes) the record.
                    next_implicit += 1;
                }
                match entry {
                    Some(value) => (key, value),
                    None => continue,
                }
            } else {
                next_implicit += 1;
                implicit_value = ycsb_record(&implicit_key, 0);
                (&implicit_key, &implicit_value)
            };
            let record_bytes = RECORD_FRAMING_BYTES + key.len() + value.len();
            if reply.len() - reply_start + record_bytes > MAX_REPLY_BYTES {
                break;
            }
            encode_record(reply, key, value);
            n += 1;
            bytes += len_u64(key.len() + value.len());
        }
        (n, bytes)
    }
}

impl KvApp {
    /// What copying `bytes` of snapshot costs (`per_kib_ns` per KiB, rounded up).
    fn copy_cost_ns(&self, bytes: usize) -> u64 {
        len_u64(bytes)
            .div_ceil(1024)
            .saturating_mul(self.costs.per_kib_ns)
    }
}

/// Widens a byte count for the cost formula.
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

impl StateMachine for KvApp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn execute(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<Execution, AppError> {
        let req = parse_request(request)?;
        let reply_start = reply.len();
        let mut records: u64 = 0;
        // Key and value bytes carried in and out, for the per-KiB cost.
        let mut bytes: u64 = 0;
        match req {
            RequestRef::Get { key } => {
                bytes += len_u64(key.len());
                match self.get(key) {
                    Some(value) => {
                        bytes += len_u64(value.len());
                        encode_value(reply, &value);
                    }
                    None => reply.push(status::NOT_FOUND),
                }
            }
            RequestRef::Put { key, value } | RequestRef::Insert { key, value } => {
                bytes += len_u64(key.len() + value.len());
                let code = self.put(key, value);
                reply.push(code);
            }
            RequestRef::Delete { key } => {
                bytes += len_u64(key.len());
                let code = self.delete(key);
                reply.push(code);
            }
            RequestRef::Scan { start, count } => {
                bytes += len_u64(start.len());
                reply.push(status::RECORDS);
                let n_at = reply.len();
                reply.extend_from_slice(&0u16.to_be_bytes());
                let (n, scanned_bytes) = self.scan(start, count, reply_start, reply);
                reply[n_at..n_at + 2].copy_from_slice(&n.to_be_bytes());
                records = u64::from(n);
                bytes += scanned_bytes;
            }
        }
        Ok(Execution {
            cpu_ns: self.costs.cpu_ns(records, bytes),
        })
    }

    fn is_read_only(&self, request: &[u8]) -> bool {
        parse_request(request).is_ok_and(|r| r.is_read_only())
    }

    /// The wrapping sum, over every record, of [`record_digest`] — a sum rather than one hash
    /// chained through the records so that the implicit table's share can be precomputed
    /// ([`implicit_table_digest`]) and corrected by the overlay: subtract the implicit records
    /// it replaces or deletes, add its values. Equal to the digest of the same records stored
    /// explicitly. O(overlay) plus a few ms for the table.
    fn state_digest(&self) -> u64 {
        let mut digest = implicit_table_digest(self.implicit_records);
        for (key, entry) in &self.overlay {
            if self.implicit_index(key).is_some() {
                digest = digest.wrapping_sub(record_digest(key, &ycsb_record(key, 0)));
            }
            if let Some(value) = entry {
                digest = digest.wrapping_add(record_digest(key, value));
            }
        }
        digest
    }

    /// ```text
    /// tag 'K' | implicit_records u64 | n u64 | n × { key_len u16 | key | present u8 |
    ///                                                [value_len u32 | value] if present }
    /// ```
    /// The overlay in key order (tombstones included), so equal states give equal bytes; the
    /// implicit table is its record count. Costs `per_kib_ns` per KiB written.
    fn snapshot(&mut self, out: &mut Vec<u8>) -> Execution {
        let start = out.len();
        out.push(super::tag::KV);
        out.extend_from_slice(&self.implicit_records.to_be_bytes());
        out.extend_from_slice(&len_u64(self.overlay.len()).to_be_bytes());
        for (key, entry) in &self.overlay {
            // Keys are at most MAX_KEY_BYTES (256) and values MAX_VALUE_BYTES (64 KiB).
            out.extend_from_slice(&(key.len() as u16).to_be_bytes());
            out.extend_from_slice(key);
            match entry {
                Some(value) => {
                    out.push(1);
                    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    out.extend_from_slice(value);
                }
                None => out.push(0),
            }
        }
        Execution {
            cpu_ns: self.copy_cost_ns(out.len() - start),
        }
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<Execution, AppError> {
        super::check_tag(snapshot, super::tag::KV, NAME, 17)?;
        let bad = |why| AppError::BadSnapshot { app: NAME, why };
        let mut rest = &snapshot[1..];
        let mut take = |n: usize| -> Result<&[u8], AppError> {
            if rest.len() < n {
                return Err(bad("truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let u64_at = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        let implicit_records = u64_at(take(8)?);
        let n = u64_at(take(8)?);
        if implicit_records > self.costs.max_keys {
            return Err(bad("more implicit records than max_keys"));
        }
        let mut next = KvApp {
            overlay: BTreeMap::new(),
            implicit_records,
            live_keys: implicit_records,
            costs: self.costs,
        };
        for _ in 0..n {
            let key_len = usize::from(u16::from_be_bytes(
                take(2)?.try_into().map_err(|_| bad("key length"))?,
            ));
            if key_len > MAX_KEY_BYTES {
                return Err(bad("key longer than MAX_KEY_BYTES"));
            }
            let key = take(key_len)?.to_vec();
            if next
                .overlay
                .last_key_value()
                .is_some_and(|(k, _)| *k >= key)
            {
                return Err(bad("keys not in strictly increasing order"));
            }
            let implicit = next.implicit_index(&key).is_some();
            let entry = match take(1)?[0] {
                0 if implicit => {
                    next.live_keys -= 1;
                    None
                }
                0 => return Err(bad("a tombstone for a key that is not implicit")),
                1 => {
                    let len =
                        u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad("value length"))?)
                            as usize;
                    if len > MAX_VALUE_BYTES {
                        return Err(bad("value longer than MAX_VALUE_BYTES"));
                    }
                    if !implicit {
                        next.live_keys += 1;
                    }
                    Some(take(len)?.to_vec())
                }
                _ => return Err(bad("present byte is neither 0 nor 1")),
            };
            if next.live_keys > self.costs.max_keys {
                return Err(bad("more keys than max_keys"));
            }
            next.overlay.insert(key, entry);
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        *self = next;
        Ok(Execution {
            cpu_ns: self.copy_cost_ns(snapshot.len()),
        })
    }
}

/// The digest of one record: a hash of `(key_len, key, value_len, value)` (the lengths keep
/// `("ab", "c")` and `("a", "bc")` apart), FNV-1a-style but over 8-byte words rather than
/// bytes, 8× shorter a dependency chain for the ~1 GB of YCSB's 1M records; SplitMix64's
/// finalizer then spreads every input bit over the output, so the sum of
/// [`KvApp::state_digest`] does not cancel differences.
fn record_digest(key: &[u8], value: &[u8]) -> u64 {
    const WORD_PRIME: u64 = 0x9E37_79B9_7F4A_7C15;
    fn absorb(mut hash: u64, bytes: &[u8]) -> u64 {
        hash = (hash ^ len_u64(bytes.len())).wrapping_mul(WORD_PRIME);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
            hash = (hash.rotate_left(23) ^ word).wrapping_mul(WORD_PRIME);
        }
        let mut tail = [0; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        (hash.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(WORD_PRIME)
    }
    let hash = absorb(absorb(FNV_OFFSET, key), value);
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The digest share of an implicit table of `records` records: the wrapping sum of
/// [`record_digest`] over them. Generating and hashing 1M records takes ~0.5 s, which would
/// dominate a short run's end-of-run digests, so the sums of the first multiples of
/// [`kv_table::STEP`] records are compiled in and only the remainder (< `STEP` records, a few
/// ms) is computed.
fn implicit_table_digest(records: u64) -> u64 {
    let checkpoint = (records / kv_table::STEP).min(kv_table::PREFIX_DIGESTS.len() as u64 - 1);
    // checkpoint < PREFIX_DIGESTS.len(), so the index fits.
    let base = kv_table::PREFIX_DIGESTS[checkpoint as usize];
    implicit_range_digest(checkpoint * kv_table::STEP, records, base)
}

/// `sum` plus the digests of implicit records `from..to`.
fn implicit_range_digest(from: u64, to: u64, sum: u64) -> u64 {
    let mut key = [0; YCSB_KEY_BYTES];
    let mut record = [0; YCSB_RECORD_BYTES];
    (from..to).fold(sum, |sum, i| {
        ycsb_key_into(i, &mut key);
        ycsb_record_into(&key, 0, &mut record);
        sum.wrapping_add(record_digest(&key, &record))
    })
}

/// YCSB key prefix, as in YCSB's `CoreWorkload`.
pub const YCSB_KEY_PREFIX: &[u8] = b"user";
/// Decimal digits after the prefix: 20, enough for any u64, so byte order equals numeric order
/// for every `n` (YCSB's ordered-insert keys have the same property).
pub const YCSB_KEY_DIGITS: usize = 20;
/// Length of every [`ycsb_key`].
pub const YCSB_KEY_BYTES: usize = YCSB_KEY_PREFIX.len() + YCSB_KEY_DIGITS;
/// Fields per YCSB record.
pub const YCSB_FIELDS: usize = 10;
/// Bytes per YCSB field.
pub const YCSB_FIELD_BYTES: usize = 100;
/// Bytes per YCSB record: the fields concatenated, field `i` at `i × YCSB_FIELD_BYTES`.
pub const YCSB_RECORD_BYTES: usize = YCSB_FIELDS * YCSB_FIELD_BYTES;
/// Leading bytes of a record that spell its version (16 lowercase hex digits).
const YCSB_VERSION_DIGITS: usize = 16;
// The letters after the version are whole 8-byte draws of the generator's stream.
const _: () = assert!((YCSB_RECORD_BYTES - YCSB_VERSION_DIGITS).is_multiple_of(8));

/// The YCSB key of record `n`: `user` + `n` zero-padded to 20 digits, so key order is numeric
/// order and scans over a range of `n` are contiguous.
pub fn ycsb_key(n: u64) -> Vec<u8> {
    ycsb_key_into(n, &mut [0; YCSB_KEY_BYTES]).to_vec()
}

/// [`ycsb_key`] into a buffer (no allocation: scans and digests generate keys by the million).
fn ycsb_key_into(mut n: u64, out: &mut [u8; YCSB_KEY_BYTES]) -> &[u8; YCSB_KEY_BYTES] {
    out[..YCSB_KEY_PREFIX.len()].copy_from_slice(YCSB_KEY_PREFIX);
    for digit in out[YCSB_KEY_PREFIX.len()..].iter_mut().rev() {
        // n % 10 < 10, so the cast keeps every bit.
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

/// A deterministic YCSB record (10 fields × 100 B of lowercase letters) for `key` at
/// `version`, generated without an RNG so every client and checker derives the same bytes.
/// Field 0 starts with `version` as 16 hex digits, so distinct versions of a key always differ
/// and a checker can tell which write a read observed ([`ycsb_record_version`]).
pub fn ycsb_record(key: &[u8], version: u64) -> Vec<u8> {
    let mut record = [0; YCSB_RECORD_BYTES];
    ycsb_record_into(key, version, &mut record);
    record.to_vec()
}

/// [`ycsb_record`] into a buffer.
fn ycsb_record_into(key: &[u8], version: u64, out: &mut [u8; YCSB_RECORD_BYTES]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in out[..YCSB_VERSION_DIGITS].iter_mut().enumerate() {
        // The nibble is < 16, so the cast keeps every bit.
        *digit = HEX[((version >> (4 * (YCSB_VERSION_DIGITS - 1 - i))) & 0xF) as usize];
    }
    // SplitMix64 stream seeded from (key, version): cheap, well mixed, and needs no RNG crate.
    let mut state = fnv1a(FNV_OFFSET, key) ^ version.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in out[YCSB_VERSION_DIGITS..].chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&letters(z).to_le_bytes());
    }
}

/// Maps each byte `b` of `z` to the letter `b'a' + b % 26`, eight at a time: implicit tables
/// generate records by the million, and a byte loop with a division each dominated that.
/// The even and odd bytes sit in 16-bit lanes, so the arithmetic of one never carries into
/// the next: `b × 79 ≤ 20145` fits a lane, and `(b × 79) >> 11 = b / 26` for every byte.
fn letters(z: u64) -> u64 {
    const LANES: u64 = 0x00FF_00FF_00FF_00FF;
    const QUOTIENT: u64 = 0x001F_001F_001F_001F;
    const A: u64 = 0x0061_0061_0061_0061;
    let modulo = |lanes: u64| {
        let quotient = (lanes.wrapping_mul(79) >> 11) & QUOTIENT;
        lanes - quotient * 26 + A
    };
    modulo(z & LANES) | (modulo((z >> 8) & LANES) << 8)
}

/// The version a [`ycsb_record`] was generated with, or `None` if `record` is not one.
pub fn ycsb_record_version(record: &[u8]) -> Option<u64> {
    if record.len() != YCSB_RECORD_BYTES {
        return None;
    }
    let digits = &record[..YCSB_VERSION_DIGITS];
    if !digits
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(req: &KvRequest) -> Vec<u8> {
        let mut out = Vec::new();
        req.encode(&mut out);
        out
    }

    /// Executes `req`, checks the reply decodes and fits, returns it with the reported cost.
    fn run(app: &mut KvApp, req: &KvRequest) -> (KvReply, u64) {
        let mut reply = Vec::new();
        let exec = app.execute(&enc(req), &mut reply).unwrap();
        assert!(reply.len() <= MAX_REPLY_BYTES);
        (KvReply::decode(&reply).unwrap(), exec.cpu_ns)
    }

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }
    fn get(key: &str) -> KvRequest {
        KvRequest::Get { key: k(key) }
    }
    fn put(key: &str, value: &str) -> KvRequest {
        KvRequest::Put {
            key: k(key),
            value: k(value),
        }
    }
    fn insert(key: &str, value: &str) -> KvRequest {
        KvRequest::Insert {
            key: k(key),
            value: k(value),
        }
    }
    fn scan(start: &str, count: u16) -> KvRequest {
        KvRequest::Scan {
            start: k(start),
            count,
        }
    }
    fn delete(key: &str) -> KvRequest {
        KvRequest::Delete { key: k(key) }
    }
    fn records(pairs: &[(&str, &str)]) -> KvReply {
        KvReply::Records(pairs.iter().map(|(a, b)| (k(a), k(b))).collect())
    }

    /// Golden request and reply bytes, so the layout in the docs is pinned.
    #[test]
    fn golden_layouts() {
        assert_eq!(enc(&get("ab")), [0x4B, 1, 0, 2, b'a', b'b']);
        assert_eq!(
            enc(&put("a", "xy")),
            [0x4B, 2, 0, 1, b'a', 0, 0, 0, 2, b'x', b'y']
        );
        assert_eq!(enc(&insert("", "")), [0x4B, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(&scan("a", 300)), [0x4B, 4, 0, 1, b'a', 0x01, 0x2C]);
        assert_eq!(enc(&delete("z")), [0x4B, 5, 0, 1, b'z']);

        let mut out = Vec::new();
        KvReply::Ok.encode(&mut out);
        KvReply::NotFound.encode(&mut out);
        KvReply::Full.encode(&mut out);
        assert_eq!(out, [0, 1, 2]);
        let mut out = Vec::new();
        KvReply::Value(k("hi")).encode(&mut out);
        assert_eq!(out, [3, 0, 0, 0, 2, b'h', b'i']);
        let mut out = Vec::new();
        records(&[("a", "b")]).encode(&mut out);
        assert_eq!(out, [4, 0, 1, 0, 1, b'a', 0, 0, 0, 1, b'b']);
        let mut out = Vec::new();
        records(&[]).encode(&mut out);
        assert_eq!(out, [4, 0, 0]);
    }

    #[test]
    fn put_get_delete() {
        let mut app = KvApp::new(KvCosts::default());
        assert_eq!(run(&mut app, &get("a")).0, KvReply::NotFound);
        assert_eq!(run(&mut app, &put("a", "1")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &get("a")).0, KvReply::Value(k("1")));
        assert_eq!(run(&mut app, &insert("a", "22")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &get("a")).0, KvReply::Value(k("22")));
        // Empty values are values, not absence.
        assert_eq!(run(&mut app, &put("e", "")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &get("e")).0, KvReply::Value(vec![]));
        assert_eq!(app.len(), 2);
        assert_eq!(run(&mut app, &delete("a")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &delete("a")).0, KvReply::NotFound);
        assert_eq!(run(&mut app, &get("a")).0, KvReply::NotFound);
        assert_eq!(app.get(b"e").as_deref(), Some(&b""[..]));
        assert_eq!(app.len(), 1);
        assert_eq!(app.name(), "kv");
    }

    #[test]
    fn scan_semantics() {
        let mut app = KvApp::new(KvCosts::default());
        // Inserted out of order; scans come back in key order.
        for key in ["d", "b", "a", "c", "e"] {
            run(&mut app, &put(key, &key.to_uppercase()));
        }
        // Start key inclusive.
        assert_eq!(
            run(&mut app, &scan("b", 2)).0,
            records(&[("b", "B"), ("c", "C")])
        );
        // Start key absent: begins at the next key.
        assert_eq!(
            run(&mut app, &scan("bb", 2)).0,
            records(&[("c", "C"), ("d", "D")])
        );
        // Empty start: from the beginning; count limits.
        assert_eq!(
            run(&mut app, &scan("", 3)).0,
            records(&[("a", "A"), ("b", "B"), ("c", "C")])
        );
        // Past the end: fewer than count, then none.
        assert_eq!(
            run(&mut app, &scan("d", 10)).0,
            records(&[("d", "D"), ("e", "E")])
        );
        assert_eq!(run(&mut app, &scan("f", 10)).0, records(&[]));
        assert_eq!(run(&mut app, &scan("a", 0)).0, records(&[]));
        // The maximum count is accepted.
        let (reply, _) = run(&mut app, &scan("", MAX_SCAN_RECORDS));
        assert!(matches!(reply, KvReply::Records(r) if r.len() == 5));
    }

    #[test]
    fn scan_stops_at_reply_limit() {
        let mut app = KvApp::new(KvCosts::default());
        for i in 0..20 {
            let key = format!("k{i:02}").into_bytes();
            app.load(key, vec![b'v'; MAX_VALUE_BYTES]).unwrap();
        }
        let mut reply = Vec::new();
        app.execute(&enc(&scan("", 1000)), &mut reply).unwrap();
        // status + n, then records of 6 + 3 + 65536 bytes each.
        let per_record = RECORD_FRAMING_BYTES + 3 + MAX_VALUE_BYTES;
        let fit = (MAX_REPLY_BYTES - 3) / per_record;
        assert_eq!(fit, 15);
        assert_eq!(reply.len(), 3 + fit * per_record);
        match KvReply::decode(&reply).unwrap() {
            KvReply::Records(r) => {
                assert_eq!(r.len(), fit);
                assert_eq!(r[0].0, b"k00");
                assert_eq!(r[fit - 1].0, format!("k{:02}", fit - 1).into_bytes());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn full_when_max_keys_reached() {
        let costs = KvCosts {
            max_keys: 2,
            ..KvCosts::default()
        };
        let mut app = KvApp::new(costs);
        assert_eq!(run(&mut app, &put("a", "1")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &insert("b", "2")).0, KvReply::Ok);
        let before = app.state_digest();
        assert_eq!(run(&mut app, &put("c", "3")).0, KvReply::Full);
        assert_eq!(run(&mut app, &insert("c", "3")).0, KvReply::Full);
        assert_eq!(
            app.state_digest(),
            before,
            "a refused write changes nothing"
        );
        assert_eq!(run(&mut app, &get("c")).0, KvReply::NotFound);
        // Overwriting an existing key is still allowed when full.
        assert_eq!(run(&mut app, &put("a", "9")).0, KvReply::Ok);
        assert_eq!(
            app.load(k("c"), k("3")),
            Err(AppError::OutOfRange {
                field: "max_keys",
                value: 2
            })
        );
        // Deleting frees a slot.
        assert_eq!(run(&mut app, &delete("b")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &put("c", "3")).0, KvReply::Ok);
        assert_eq!(app.len(), 2);

        let mut none = KvApp::new(KvCosts {
            max_keys: 0,
            ..KvCosts::default()
        });
        assert_eq!(run(&mut none, &put("a", "1")).0, KvReply::Full);
        assert!(none.is_empty());
    }

    #[test]
    fn cost_formula() {
        let d = KvCosts::default();
        assert_eq!(
            (
                d.op_ns,
                d.per_record_ns,
                d.per_kib_ns,
                d.max_keys,
                d.preloaded_ycsb_records
            ),
            (3_000, 3_500, 100, 4_000_000, 0)
        );
        // Round numbers below, to keep the arithmetic readable.
        let costs = KvCosts {
            op_ns: 1_000,
            per_record_ns: 500,
            ..d
        };
        let mut app = KvApp::new(costs);
        let key = ycsb_key(7);
        let value = ycsb_record(&key, 0);
        assert_eq!((key.len(), value.len()), (24, 1000));
        // PUT: 24 + 1000 = 1024 bytes = 1 KiB.
        let put_req = KvRequest::Put {
            key: key.clone(),
            value,
        };
        assert_eq!(run(&mut app, &put_req).1, 1_000 + 100);
        // GET hit: same bytes out.
        assert_eq!(run(&mut app, &KvRequest::Get { key: key.clone() }).1, 1_100);
        // GET miss: 24 bytes of key -> 24 * 100 / 1024 = 2.
        assert_eq!(run(&mut app, &KvRequest::Get { key: ycsb_key(8) }).1, 1_002);
        // SCAN of 3 records of 24 + 1000 bytes, from a 24-byte start key:
        // 1000 + 3 * 500 + (24 + 3 * 1024) * 100 / 1024 = 1000 + 1500 + 302.
        for n in [5, 6] {
            let key = ycsb_key(n);
            app.load(key.clone(), ycsb_record(&key, 0)).unwrap();
        }
        let scan_req = KvRequest::Scan {
            start: ycsb_key(0),
            count: 10,
        };
        assert_eq!(run(&mut app, &scan_req).1, 2_802);
        // DELETE: 1000 + 24 * 100 / 1024.
        assert_eq!(run(&mut app, &KvRequest::Delete { key }).1, 1_002);
        // Custom costs; and saturation instead of overflow.
        let custom = KvCosts {
            op_ns: 7,
            per_record_ns: 11,
            per_kib_ns: 2048,
            max_keys: 1,
            preloaded_ycsb_records: 0,
        };
        assert_eq!(custom.cpu_ns(3, 100), 7 + 33 + 200);
        let huge = KvCosts {
            op_ns: u64::MAX,
            per_record_ns: u64::MAX,
            per_kib_ns: u64::MAX,
            max_keys: u64::MAX,
            preloaded_ycsb_records: 0,
        };
        assert_eq!(huge.cpu_ns(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(
            KvCosts {
                op_ns: 0,
                per_record_ns: 0,
                ..huge
            }
            .cpu_ns(0, u64::MAX),
            u64::MAX
        );
    }

    #[test]
    fn digests_converge_and_diverge() {
        let ops = [
            put("a", "1"),
            insert("b", "2"),
            put("a", "3"),
            delete("b"),
            insert("c", "4"),
        ];
        let mut x = KvApp::new(KvCosts::default());
        let mut y = KvApp::new(KvCosts::default());
        assert_eq!(x.state_digest(), y.state_digest());
        for req in &ops {
            run(&mut x, req);
            run(&mut y, req);
        }
        assert_eq!(x.state_digest(), y.state_digest());
        // Reads change nothing.
        run(&mut x, &get("a"));
        run(&mut x, &scan("", 10));
        assert_eq!(x.state_digest(), y.state_digest());
        // One more write does.
        run(&mut x, &put("d", "5"));
        assert_ne!(x.state_digest(), y.state_digest());
        // Framing: moving a byte between key and value changes the digest.
        let mut p = KvApp::new(KvCosts::default());
        let mut q = KvApp::new(KvCosts::default());
        run(&mut p, &put("ab", "c"));
        run(&mut q, &put("a", "bc"));
        assert_ne!(p.state_digest(), q.state_digest());
    }

    #[test]
    fn read_only_classification() {
        let app = KvApp::new(KvCosts::default());
        for (req, ro) in [
            (get("a"), true),
            (scan("a", 1), true),
            (put("a", "b"), false),
            (insert("a", "b"), false),
            (delete("a"), false),
        ] {
            assert_eq!(req.is_read_only(), ro);
            assert_eq!(app.is_read_only(&enc(&req)), ro);
            assert_eq!(req.key(), b"a");
        }
        // Malformed requests are not read-only.
        assert!(!app.is_read_only(&[tag::KV, op::GET]));
        assert!(!app.is_read_only(&[tag::SYNTHETIC, op::GET, 0, 0]));
    }

    #[test]
    fn request_errors() {
        let d = KvRequest::decode;
        assert_eq!(d(&[]), Err(AppError::Truncated { need: 4, have: 0 }));
        assert_eq!(
            d(&[tag::SYNTHETIC]),
            Err(AppError::WrongApp {
                expected: "kv",
                found: tag::SYNTHETIC
            })
        );
        assert_eq!(
            d(&[tag::KV, 1, 0]),
            Err(AppError::Truncated { need: 4, have: 3 })
        );
        assert_eq!(d(&[tag::KV, 0, 0, 0]), Err(AppError::UnknownOp(0)));
        assert_eq!(d(&[tag::KV, 6, 0, 0]), Err(AppError::UnknownOp(6)));
        assert_eq!(
            d(&[tag::KV, 1, 0, 2, b'a']),
            Err(AppError::Truncated { need: 6, have: 5 })
        );
        let mut trailing = enc(&get("a"));
        trailing.push(0);
        assert_eq!(d(&trailing), Err(out_of_range("trailing_bytes", 1)));
        // Value length announced but missing.
        assert_eq!(
            d(&[tag::KV, 2, 0, 0, 0, 0, 0, 3, b'x']),
            Err(AppError::Truncated { need: 11, have: 9 })
        );
        // Scan count missing.
        assert_eq!(
            d(&[tag::KV, 4, 0, 0, 0]),
            Err(AppError::Truncated { need: 6, have: 5 })
        );

        // Limits: exactly at the limit is fine, one past is OutOfRange.
        let at_limit = KvRequest::Put {
            key: vec![1; MAX_KEY_BYTES],
            value: vec![2; MAX_VALUE_BYTES],
        };
        assert_eq!(d(&enc(&at_limit)), Ok(at_limit));
        let long_key = KvRequest::Get {
            key: vec![1; MAX_KEY_BYTES + 1],
        };
        assert_eq!(d(&enc(&long_key)), Err(out_of_range("key_len", 257)));
        // A key too long for the u16 length field saturates and is still rejected.
        let huge_key = KvRequest::Get {
            key: vec![1; 70_000],
        };
        assert_eq!(d(&enc(&huge_key)), Err(out_of_range("key_len", 65_535)));
        let long_value = KvRequest::Insert {
            key: vec![],
            value: vec![0; MAX_VALUE_BYTES + 1],
        };
        assert_eq!(
            d(&enc(&long_value)),
            Err(out_of_range("value_len", MAX_VALUE_BYTES + 1))
        );
        assert_eq!(
            d(&enc(&scan("", MAX_SCAN_RECORDS + 1))),
            Err(out_of_range("count", 1001))
        );

        // execute reports the same errors and leaves state and reply untouched.
        let mut app = KvApp::new(KvCosts::default());
        let mut reply = Vec::new();
        assert_eq!(
            app.execute(&enc(&long_value), &mut reply),
            Err(out_of_range("value_len", MAX_VALUE_BYTES + 1))
        );
        assert!(reply.is_empty() && app.is_empty());
        assert_eq!(
            app.load(vec![0; MAX_KEY_BYTES + 1], vec![]),
            Err(out_of_range("key_len", 257))
        );
        assert_eq!(
            app.load(vec![], vec![0; MAX_VALUE_BYTES + 1]),
            Err(out_of_range("value_len", MAX_VALUE_BYTES + 1))
        );
    }

    #[test]
    fn reply_errors() {
        let d = KvReply::decode;
        assert_eq!(d(&[]), Err(AppError::Truncated { need: 1, have: 0 }));
        assert_eq!(d(&[5]), Err(out_of_range("status", 5)));
        assert_eq!(d(&[0, 0]), Err(out_of_range("trailing_bytes", 1)));
        assert_eq!(
            d(&[3, 0, 0, 0, 2, b'x']),
            Err(AppError::Truncated { need: 7, have: 6 })
        );
        assert_eq!(
            d(&[3, 0, 1, 0, 1]),
            Err(out_of_range("value_len", MAX_VALUE_BYTES + 1))
        );
        assert_eq!(d(&[4, 0x03, 0xE9]), Err(out_of_range("count", 1001)));
        // n says two records, one present.
        assert_eq!(
            d(&[4, 0, 2, 0, 0, 0, 0, 0, 0]),
            Err(AppError::Truncated { need: 11, have: 9 })
        );
        assert_eq!(d(&[4, 0, 1, 1, 1]), Err(out_of_range("key_len", 257)));
        assert_eq!(
            d(&vec![0; MAX_REPLY_BYTES + 1]),
            Err(out_of_range("reply_bytes", MAX_REPLY_BYTES + 1))
        );
    }

    #[test]
    fn ycsb_helpers() {
        assert_eq!(ycsb_key(42), b"user00000000000000000042");
        assert_eq!(ycsb_key(u64::MAX).len(), YCSB_KEY_BYTES);
        // Key order is numeric order, across digit-count boundaries too.
        let ns = [
            0,
            9,
            10,
            99,
            100,
            999_999,
            1_000_000,
            u64::MAX - 1,
            u64::MAX,
        ];
        for w in ns.windows(2) {
            assert!(ycsb_key(w[0]) < ycsb_key(w[1]));
        }
        let key = ycsb_key(1);
        let r0 = ycsb_record(&key, 0);
        assert_eq!(r0.len(), YCSB_RECORD_BYTES);
        assert_eq!(r0, ycsb_record(&key, 0), "deterministic");
        assert!(r0.iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(r0, ycsb_record(&key, 1));
        assert_ne!(r0, ycsb_record(&ycsb_key(2), 0));
        assert_eq!(ycsb_record_version(&r0), Some(0));
        assert_eq!(
            ycsb_record_version(&ycsb_record(&key, u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(ycsb_record_version(b"short"), None);
        assert_eq!(ycsb_record_version(&[b'+'; YCSB_RECORD_BYTES]), None);
    }

    /// The record generator as first written (one byte at a time into a Vec): the buffer
    /// version must produce the same bytes, or stored traces and checkers would disagree.
    fn reference_ycsb_record(key: &[u8], version: u64) -> Vec<u8> {
        let mut record = Vec::with_capacity(YCSB_RECORD_BYTES);
        record.extend_from_slice(format!("{version:016x}").as_bytes());
        let mut state = fnv1a(FNV_OFFSET, key) ^ version.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        while record.len() < YCSB_RECORD_BYTES {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            for b in z.to_le_bytes() {
                if record.len() < YCSB_RECORD_BYTES {
                    record.push(b'a' + b % 26);
                }
            }
        }
        record
    }

    #[test]
    fn letters_are_bytes_mod_26() {
        for b in 0..=255u8 {
            let z = u64::from_le_bytes([b, 0, 255, b, 1, 25, 26, b]);
            let expected = [b, 0, 255, b, 1, 25, 26, b].map(|x| b'a' + x % 26);
            assert_eq!(letters(z).to_le_bytes(), expected, "byte {b}");
        }
    }

    #[test]
    fn ycsb_generators_match_reference() {
        for n in [0, 1, 42, 999_999, u64::MAX] {
            assert_eq!(ycsb_key(n), format!("user{n:020}").into_bytes());
            for version in [0, 1, 0xdead_beef, u64::MAX] {
                let key = ycsb_key(n);
                assert_eq!(
                    ycsb_record(&key, version),
                    reference_ycsb_record(&key, version)
                );
            }
        }
    }

    /// A store with `n` implicit records, and the same records loaded explicitly.
    fn implicit_and_loaded(n: u64, max_keys: u64) -> (KvApp, KvApp) {
        let costs = KvCosts {
            max_keys,
            ..KvCosts::default()
        };
        let implicit = KvApp::new(KvCosts {
            preloaded_ycsb_records: n,
            ..costs
        });
        let mut loaded = KvApp::new(costs);
        for i in 0..n.min(max_keys) {
            let key = ycsb_key(i);
            loaded.load(key.clone(), ycsb_record(&key, 0)).unwrap();
        }
        (implicit, loaded)
    }

    #[test]
    fn implicit_table_reads_like_a_loaded_one() {
        let (mut app, mut loaded) = implicit_and_loaded(20, 100);
        assert_eq!((app.len(), loaded.len()), (20, 20));
        assert_eq!(app.state_digest(), loaded.state_digest());
        let key = ycsb_key(3);
        assert_eq!(
            app.get(&key).as_deref(),
            Some(ycsb_record(&key, 0).as_slice())
        );
        assert_eq!(app.get(&ycsb_key(20)), None);
        // Near misses of an implicit key are other keys.
        let mut long = ycsb_key(3);
        long.push(b'0');
        for other in [&key[..23], &long[..], b"USER00000000000000000003"] {
            assert_eq!(app.get(other), None, "{}", String::from_utf8_lossy(other));
        }
        // A scan from between two keys, across an overwrite, a delete and an added key.
        for store in [&mut app, &mut loaded] {
            run(
                store,
                &KvRequest::Put {
                    key: ycsb_key(5),
                    value: k("five"),
                },
            );
            run(store, &KvRequest::Delete { key: ycsb_key(6) });
            run(store, &put("user00000000000000000007a", "between"));
        }
        let start = b"user000000000000000000045".to_vec();
        let req = KvRequest::Scan { start, count: 4 };
        let (reply, cost) = run(&mut app, &req);
        assert_eq!((reply.clone(), cost), run(&mut loaded, &req));
        let KvReply::Records(records) = reply else {
            panic!("scan answers records")
        };
        let keys: Vec<_> = records.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            [
                ycsb_key(5),
                ycsb_key(7),
                k("user00000000000000000007a"),
                ycsb_key(8)
            ]
        );
        assert_eq!(records[0].1, k("five"));
        assert_eq!(app.len(), 20);
        assert_eq!(app.state_digest(), loaded.state_digest());
        // Deleting every implicit record leaves only the added key.
        for i in 0..20 {
            let req = KvRequest::Delete { key: ycsb_key(i) };
            assert_eq!(run(&mut app, &req), run(&mut loaded, &req));
        }
        assert_eq!(app.len(), 1);
        assert_eq!(app.state_digest(), loaded.state_digest());
    }

    #[test]
    fn implicit_table_counts_toward_max_keys() {
        let (mut app, _) = implicit_and_loaded(3, 4);
        assert_eq!(run(&mut app, &put("a", "1")).0, KvReply::Ok);
        assert_eq!(run(&mut app, &put("b", "1")).0, KvReply::Full);
        // Overwriting an implicit record takes no new slot; deleting one frees a slot.
        let over = KvRequest::Put {
            key: ycsb_key(0),
            value: k("x"),
        };
        assert_eq!(run(&mut app, &over).0, KvReply::Ok);
        assert_eq!(
            run(&mut app, &KvRequest::Delete { key: ycsb_key(1) }).0,
            KvReply::Ok
        );
        assert_eq!(run(&mut app, &put("b", "1")).0, KvReply::Ok);
        // A table larger than max_keys is cut, like a load that stops when the store is full.
        let (big, loaded) = implicit_and_loaded(10, 4);
        assert_eq!(big.len(), 4);
        assert_eq!(big.get(&ycsb_key(4)), None);
        assert_eq!(big.state_digest(), loaded.state_digest());
    }

    /// Spot checks of the compiled-in prefix digests (the whole table: the ignored test
    /// `kv_table_is_current`): the first checkpoints, and the chunk that ends at YCSB's 1M.
    #[test]
    fn implicit_digest_table_spot_checks() {
        let table = &kv_table::PREFIX_DIGESTS;
        let step = kv_table::STEP;
        assert_eq!(table[0], 0);
        assert_eq!(implicit_range_digest(0, step, 0), table[1]);
        let k = (1_000_000 / step) as usize;
        assert_eq!(
            implicit_range_digest((k as u64 - 1) * step, k as u64 * step, table[k - 1]),
            table[k]
        );
        // Between and beyond checkpoints the remainder is computed.
        assert_eq!(
            implicit_table_digest(step + 7),
            implicit_range_digest(step, step + 7, table[1])
        );
        let last = (table.len() - 1) as u64 * step;
        assert_eq!(
            implicit_table_digest(last + 3),
            implicit_range_digest(last, last + 3, table[table.len() - 1])
        );
    }

    /// Recomputes every compiled-in prefix digest (~6 s in a release build). Run it after
    /// changing `ycsb_key`, `ycsb_record` or `record_digest`:
    /// `cargo test --release -p hovercraft-core kv_table_is_current -- --ignored --nocapture`
    /// prints the table to paste into `core/src/app/kv_table.rs`.
    #[test]
    #[ignore = "slow: recomputes 10M records"]
    fn kv_table_is_current() {
        let step = kv_table::STEP;
        let mut sums = vec![0u64];
        for k in 1..kv_table::PREFIX_DIGESTS.len() as u64 {
            let prev = *sums.last().unwrap();
            sums.push(implicit_range_digest((k - 1) * step, k * step, prev));
        }
        if sums != kv_table::PREFIX_DIGESTS {
            for row in sums.chunks(4) {
                let row: Vec<String> = row.iter().map(|d| format!("0x{d:016x},")).collect();
                println!("    {}", row.join(" "));
            }
            panic!("kv_table.rs is stale: paste the table printed above");
        }
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..=max)
    }

    fn arb_request() -> impl Strategy<Value = KvRequest> {
        let key = || arb_bytes(MAX_KEY_BYTES);
        // Values stay small to keep the tests fast; the limit itself is tested above.
        let value = || arb_bytes(2048);
        prop_oneof![
            key().prop_map(|key| KvRequest::Get { key }),
            (key(), value()).prop_map(|(key, value)| KvRequest::Put { key, value }),
            (key(), value()).prop_map(|(key, value)| KvRequest::Insert { key, value }),
            (key(), 0..=MAX_SCAN_RECORDS)
                .prop_map(|(start, count)| KvRequest::Scan { start, count }),
            key().prop_map(|key| KvRequest::Delete { key }),
        ]
    }

    fn arb_reply() -> impl Strategy<Value = KvReply> {
        prop_oneof![
            Just(KvReply::Ok),
            Just(KvReply::NotFound),
            Just(KvReply::Full),
            arb_bytes(2048).prop_map(KvReply::Value),
            proptest::collection::vec((arb_bytes(MAX_KEY_BYTES), arb_bytes(256)), 0..16)
                .prop_map(KvReply::Records),
        ]
    }

    /// Requests over a tiny key space, so puts, deletes and scans collide.
    fn arb_small_request() -> impl Strategy<Value = KvRequest> {
        let key = || proptest::collection::vec(0u8..4, 0..3);
        let value = || arb_bytes(8);
        prop_oneof![
            key().prop_map(|key| KvRequest::Get { key }),
            (key(), value()).prop_map(|(key, value)| KvRequest::Put { key, value }),
            (key(), value()).prop_map(|(key, value)| KvRequest::Insert { key, value }),
            (key(), 0u16..6).prop_map(|(start, count)| KvRequest::Scan { start, count }),
            key().prop_map(|key| KvRequest::Delete { key }),
        ]
    }

    /// Keys around a 50-record implicit table: its keys, keys past it, and byte strings that
    /// sort between, before and after them (prefixes, extensions, other letters).
    fn arb_ycsb_key() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => (0u64..60).prop_map(ycsb_key),
            1 => ((0u64..60), 0usize..=YCSB_KEY_BYTES).prop_map(|(n, len)| ycsb_key(n)[..len].to_vec()),
            1 => ((0u64..60), any::<u8>()).prop_map(|(n, b)| {
                let mut key = ycsb_key(n);
                key.push(b);
                key
            }),
            1 => arb_bytes(3),
        ]
    }

    fn arb_ycsb_request() -> impl Strategy<Value = KvRequest> {
        let value = || arb_bytes(8);
        prop_oneof![
            arb_ycsb_key().prop_map(|key| KvRequest::Get { key }),
            (arb_ycsb_key(), value()).prop_map(|(key, value)| KvRequest::Put { key, value }),
            (arb_ycsb_key(), value()).prop_map(|(key, value)| KvRequest::Insert { key, value }),
            (arb_ycsb_key(), 0u16..70).prop_map(|(start, count)| KvRequest::Scan { start, count }),
            arb_ycsb_key().prop_map(|key| KvRequest::Delete { key }),
        ]
    }

    proptest! {
        #[test]
        fn request_round_trips(req in arb_request()) {
            let bytes = enc(&req);
            prop_assert_eq!(KvRequest::decode(&bytes), Ok(req));
        }

        #[test]
        fn reply_round_trips(reply in arb_reply()) {
            let mut bytes = Vec::new();
            reply.encode(&mut bytes);
            prop_assert_eq!(KvReply::decode(&bytes), Ok(reply));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in arb_bytes(64)) {
            let _ = KvRequest::decode(&bytes);
            let _ = KvReply::decode(&bytes);
            let mut app = KvApp::new(KvCosts::default());
            let _ = app.is_read_only(&bytes);
            let mut reply = Vec::new();
            if app.execute(&bytes, &mut reply).is_err() {
                prop_assert!(reply.is_empty());
            }
        }

        #[test]
        fn tagged_bytes_never_panic(code in 0u8..7, rest in arb_bytes(64)) {
            // Past the tag and (mostly) valid opcodes, so the field parsers get exercised.
            let mut bytes = vec![tag::KV, code];
            bytes.extend_from_slice(&rest);
            let mut app = KvApp::new(KvCosts::default());
            app.load(vec![], vec![1]).unwrap();
            let mut reply = Vec::new();
            match app.execute(&bytes, &mut reply) {
                Ok(_) => { KvReply::decode(&reply).unwrap(); }
                Err(_) => prop_assert!(reply.is_empty()),
            }
            // Same for replies: past the status byte.
            let mut reply_bytes = vec![code];
            reply_bytes.extend_from_slice(&rest);
            let _ = KvReply::decode(&reply_bytes);
        }

        /// The store agrees with a plain BTreeMap model on every reply, and replicas that
        /// apply the same sequence end with the same digest.
        #[test]
        fn matches_model(ops in proptest::collection::vec(arb_small_request(), 0..60)) {
            let costs = KvCosts { max_keys: 5, ..KvCosts::default() };
            let mut app = KvApp::new(costs);
            let mut twin = KvApp::new(costs);
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for req in &ops {
                let expected = match req {
                    KvRequest::Get { key } => match model.get(key) {
                        Some(v) => KvReply::Value(v.clone()),
                        None => KvReply::NotFound,
                    },
                    KvRequest::Put { key, value } | KvRequest::Insert { key, value } => {
                        if model.contains_key(key) || model.len() < 5 {
                            model.insert(key.clone(), value.clone());
                            KvReply::Ok
                        } else {
                            KvReply::Full
                        }
                    }
                    KvRequest::Scan { start, count } => KvReply::Records(
                        model
                            .range(start.clone()..)
                            .take(usize::from(*count))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    KvRequest::Delete { key } => match model.remove(key) {
                        Some(_) => KvReply::Ok,
                        None => KvReply::NotFound,
                    },
                };
                prop_assert_eq!(run(&mut app, req).0, expected);
                run(&mut twin, req);
            }
            prop_assert_eq!(app.len(), model.len());
            prop_assert_eq!(app.state_digest(), twin.state_digest());
        }

        /// A store with 50 implicit YCSB records answers, costs and digests every operation
        /// exactly like one whose 50 records were loaded explicitly.
        #[test]
        fn implicit_table_matches_loaded_table(
            max_keys in 45u64..60,
            ops in proptest::collection::vec(arb_ycsb_request(), 0..80),
        ) {
            let (mut app, mut loaded) = implicit_and_loaded(50, max_keys);
            for req in &ops {
                prop_assert_eq!(run(&mut app, req), run(&mut loaded, req), "{:?}", req);
                prop_assert_eq!(app.len(), loaded.len());
            }
            prop_assert_eq!(app.state_digest(), loaded.state_digest());
            for i in 0..60 {
                let key = ycsb_key(i);
                prop_assert_eq!(app.get(&key), loaded.get(&key));
            }
            let all = KvRequest::Scan { start: vec![], count: MAX_SCAN_RECORDS };
            prop_assert_eq!(run(&mut app, &all), run(&mut loaded, &all));
        }
    }
}
