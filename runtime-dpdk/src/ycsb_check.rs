//! Checks YCSB-E answers as the load generator receives them: every SCAN must be consistent
//! with the INSERTs acknowledged before it was sent (scans and inserts both go through the
//! log, so a scan linearizes after every insert acknowledged before it started).
//!
//! For a scan of up to `count` records from `start` answered with records `R`:
//! - `R` is in strictly increasing key order, every key ≥ `start`, at most `count` records;
//! - every record is a preloaded one (`ycsb_key(i)`, `i` < `records`) or one this run
//!   inserted (sent before the answer arrived), and its value is `ycsb_record(key, 0)`;
//! - no record is missing: every preloaded key and every insert acknowledged before the scan
//!   was sent that lies in `[start, last key of R]` (or `[start, ∞)` when `R` holds fewer
//!   than `count` records) is in `R`.
//!
//! Memory is bounded: in-flight requests by req_id (65536 slots), inserts up to
//! [`MAX_TRACKED_INSERTS`]; past it the report says `truncated` and scans are no longer
//! checked (they are still counted).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use hovercraft_core::app::kv::{
    ycsb_key, ycsb_record, KvReply, KvRequest, YCSB_KEY_DIGITS, YCSB_KEY_PREFIX,
};
use serde::Serialize;

/// Inserts remembered for the missing-record check.
pub const MAX_TRACKED_INSERTS: usize = 1_000_000;
const MAX_EXAMPLES: usize = 10;

#[derive(Clone, Debug, Default, Serialize)]
pub struct YcsbReport {
    pub scans_answered: u64,
    pub scan_records: u64,
    pub inserts_sent: u64,
    pub inserts_acked: u64,
    /// Scans whose answer broke one of the rules above (must be 0).
    pub violations: u64,
    /// More inserts than [`MAX_TRACKED_INSERTS`]: scans were then not checked.
    pub truncated: bool,
    pub examples: Vec<String>,
}

#[derive(Clone)]
enum Pending {
    Scan {
        start: Vec<u8>,
        count: u16,
        sent_ns: u64,
    },
    Insert {
        key: Vec<u8>,
    },
}

pub struct YcsbChecker {
    records: u64,
    /// Inserted key → when its ack arrived (None: not acknowledged yet, or never).
    inserts: BTreeMap<Vec<u8>, Option<u64>>,
    pending: Vec<Option<Pending>>,
    pub report: YcsbReport,
}

/// `n` if `key` is `ycsb_key(n)`.
fn ycsb_index(key: &[u8]) -> Option<u64> {
    let digits = key.strip_prefix(YCSB_KEY_PREFIX)?;
    if digits.len() != YCSB_KEY_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl YcsbChecker {
    pub fn new(preloaded_records: u64) -> Self {
        YcsbChecker {
            records: preloaded_records,
            inserts: BTreeMap::new(),
            pending: vec![None; 1 << 16],
            report: YcsbReport::default(),
        }
    }

    /// A request left with this req_id.
    pub fn on_send(&mut self, req_id: u16, body: &[u8], now_ns: u64) {
        let p = match KvRequest::decode(body) {
            Ok(KvRequest::Scan { start, count }) => Some(Pending::Scan {
                start,
                count,
                sent_ns: now_ns,
            }),
            Ok(KvRequest::Insert { key, .. }) => {
                self.report.inserts_sent += 1;
                if self.inserts.len() < MAX_TRACKED_INSERTS {
                    self.inserts.insert(key.clone(), None);
                } else {
                    self.report.truncated = true;
                }
                Some(Pending::Insert { key })
            }
            _ => None,
        };
        self.pending[usize::from(req_id)] = p;
    }

    /// The request timed out or was refused.
    pub fn forget(&mut self, req_id: u16) {
        self.pending[usize::from(req_id)] = None;
    }

    pub fn on_response(&mut self, req_id: u16, body: &[u8], now_ns: u64) {
        let Some(p) = self.pending[usize::from(req_id)].take() else {
            return;
        };
        match p {
            Pending::Insert { key } => {
                if KvReply::decode(body) == Ok(KvReply::Ok) {
                    self.report.inserts_acked += 1;
                    if let Some(a) = self.inserts.get_mut(&key) {
                        *a = Some(now_ns);
                    }
                }
            }
            Pending::Scan {
                start,
                count,
                sent_ns,
            } => {
                self.report.scans_answered += 1;
                let problem = match KvReply::decode(body) {
                    Ok(KvReply::Records(r)) => {
                        self.report.scan_records += r.len() as u64;
                        if self.report.truncated {
                            None
                        } else {
                            self.check_scan(&start, count, sent_ns, &r)
                        }
                    }
                    Ok(other) => Some(format!("answered {other:?}")),
                    Err(e) => Some(format!("undecodable reply: {e}")),
                };
                if let Some(why) = problem {
                    self.report.violations += 1;
                    if self.report.examples.len() < MAX_EXAMPLES {
                        self.report.examples.push(format!(
                            "scan from {} count {count}: {why}",
                            String::from_utf8_lossy(&start)
                        ));
                    }
                }
            }
        }
    }

    fn check_scan(
        &self,
        start: &[u8],
        count: u16,
        sent_ns: u64,
        r: &[(Vec<u8>, Vec<u8>)],
    ) -> Option<String> {
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        if r.len() > usize::from(count) {
            return Some(format!("{} records", r.len()));
        }
        let mut prev: Option<&[u8]> = None;
        for (k, v) in r {
            if k.as_slice() < start || prev.is_some_and(|p| p >= k.as_slice()) {
                return Some(format!("key {} out of order", show(k)));
            }
            prev = Some(k);
            let known =
                ycsb_index(k).is_some_and(|n| n < self.records) || self.inserts.contains_key(k);
            if !known {
                return Some(format!("key {} was never written", show(k)));
            }
            if *v != ycsb_record(k, 0) {
                return Some(format!("key {} has a wrong value", show(k)));
            }
        }
        let upper: Option<&[u8]> = if r.len() == usize::from(count) {
            r.last().map(|(k, _)| k.as_slice())
        } else {
            None
        };
        let within = |k: &[u8]| upper.is_none_or(|u| k <= u);
        let has = |k: &[u8]| r.binary_search_by(|(x, _)| x.as_slice().cmp(k)).is_ok();
        // Preloaded keys from `start` (at most count + 1 of them matter).
        if let Some(first) = ycsb_index(start) {
            for n in (first..self.records).take(usize::from(count) + 1) {
                let k = ycsb_key(n);
                if !within(&k) {
                    break;
                }
                if !has(&k) {
                    return Some(format!("preloaded key {} missing", show(&k)));
                }
            }
        }
        for (k, acked) in self.inserts.range(start.to_vec()..) {
            if !within(k) {
                break;
            }
            if acked.is_some_and(|a| a < sent_ns) && !has(k) {
                return Some(format!(
                    "key {} missing, though its insert was acknowledged before the scan",
                    show(k)
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(start: u64, count: u16) -> Vec<u8> {
        let mut b = Vec::new();
        KvRequest::Scan {
            start: ycsb_key(start),
            count,
        }
        .encode(&mut b);
        b
    }

    fn insert(n: u64) -> Vec<u8> {
        let key = ycsb_key(n);
        let mut b = Vec::new();
        KvRequest::Insert {
            value: ycsb_record(&key, 0),
            key,
        }
        .encode(&mut b);
        b
    }

    fn records(ns: &[u64]) -> Vec<u8> {
        let mut b = Vec::new();
        KvReply::Records(
            ns.iter()
                .map(|&n| (ycsb_key(n), ycsb_record(&ycsb_key(n), 0)))
                .collect(),
        )
        .encode(&mut b);
        b
    }

    fn ok() -> Vec<u8> {
        let mut b = Vec::new();
        KvReply::Ok.encode(&mut b);
        b
    }

    #[test]
    fn consistent_scans_pass_and_missing_acked_inserts_fail() {
        let mut c = YcsbChecker::new(10);
        c.on_send(1, &insert(10), 100);
        c.on_response(1, &ok(), 200);
        // Sent after the ack: must see key 10.
        c.on_send(2, &scan(8, 5), 300);
        c.on_response(2, &records(&[8, 9, 10]), 400);
        assert_eq!(c.report.violations, 0, "{:?}", c.report.examples);
        c.on_send(3, &scan(8, 5), 300);
        c.on_response(3, &records(&[8, 9]), 400);
        assert_eq!(c.report.violations, 1);
        assert!(c.report.examples[0].contains("acknowledged"));
        // An insert acknowledged after the scan was sent may be missing.
        c.on_send(4, &insert(11), 500);
        c.on_send(5, &scan(9, 5), 600);
        c.on_response(4, &ok(), 700);
        c.on_response(5, &records(&[9, 10]), 800);
        assert_eq!(c.report.violations, 1, "{:?}", c.report.examples);
        // A full scan bounds the range: keys past its last record are not expected.
        c.on_send(6, &scan(0, 2), 900);
        c.on_response(6, &records(&[0, 1]), 1000);
        assert_eq!(c.report.violations, 1);
    }

    #[test]
    fn bad_answers_are_violations_not_panics() {
        let mut c = YcsbChecker::new(10);
        for (i, body) in [
            records(&[3, 2]),          // out of order
            records(&[1, 2]),          // before start (start 2)
            records(&[2, 4]),          // preloaded 3 missing
            records(&[2, 3, 4, 5, 6]), // more than asked
            records(&[50]),            // never written... but also gap; either way a violation
            ok(),
            b"\xff".to_vec(),
        ]
        .iter()
        .enumerate()
        {
            c.on_send(i as u16, &scan(2, 4), 0);
            c.on_response(i as u16, body, 1);
        }
        assert_eq!(c.report.violations, 7, "{:?}", c.report.examples);
        // Unknown req_ids and junk request bodies are ignored.
        c.on_response(999, b"junk", 2);
        c.on_send(7, b"junk", 3);
        c.on_response(7, &ok(), 4);
        assert_eq!(c.report.violations, 7);
    }
}
