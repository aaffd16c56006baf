//! Linearizability of the kv history clients observe, online: each kv operation is recorded
//! in its key's history as it is sent and completed as its answer (or DROP, or timeout)
//! arrives; at the end every key is checked ([`super::linearizability`], Wing–Gong /
//! Porcupine search, per key).
//!
//! Memory is bounded: a key keeps at most `max_ops_per_key` operations, and all keys
//! together at most `max_ops` ([`super::checker::Limits`]). A key whose history would exceed a cap is forgotten and
//! reported "undecided" (an incomplete history proves nothing either way), never guessed.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use hovercraft_core::app::kv::KvReply;

use super::checker::{Checker, Event, RequestId};
use super::linearizability::{check_history, CheckerConfig, OpKind, Operation, Verdict};
use super::Report;
use crate::world::World;

#[derive(Default)]
struct KeyHistory {
    ops: Vec<Operation>,
    /// It reached a cap: its history is incomplete, so it is not checked.
    overflowed: bool,
}

pub struct KvHistory {
    max_ops_per_key: usize,
    max_ops: usize,
    slot_of_key: BTreeMap<Vec<u8>, usize>,
    keys: Vec<KeyHistory>,
    /// Requests awaiting their outcome: (key slot, position in its history).
    pending: FxHashMap<RequestId, (usize, usize)>,
    ops: usize,
    /// The smallest key that overflowed and was never recorded (no slot was free).
    unrecorded: Option<Vec<u8>>,
}

impl KvHistory {
    pub fn new(max_ops_per_key: usize, max_ops: usize) -> KvHistory {
        KvHistory {
            max_ops_per_key,
            max_ops,
            slot_of_key: BTreeMap::new(),
            keys: Vec::new(),
            pending: FxHashMap::default(),
            ops: 0,
            unrecorded: None,
        }
    }

    /// Every operation recorded, key by key.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.keys.iter().flat_map(|k| &k.ops)
    }

    fn record(&mut self, id: RequestId, op: Operation) {
        let slot = match self.slot_of_key.get(&op.key) {
            Some(&s) => s,
            None if self.ops < self.max_ops => {
                self.keys.push(KeyHistory::default());
                self.slot_of_key.insert(op.key.clone(), self.keys.len() - 1);
                self.keys.len() - 1
            }
            None => {
                if self.unrecorded.as_ref().is_none_or(|k| op.key < *k) {
                    self.unrecorded = Some(op.key);
                }
                return;
            }
        };
        let k = &mut self.keys[slot];
        if k.overflowed {
            return;
        }
        if k.ops.len() >= self.max_ops_per_key || self.ops >= self.max_ops {
            self.ops -= k.ops.len();
            k.ops = Vec::new();
            k.overflowed = true;
            return;
        }
        self.pending.insert(id, (slot, k.ops.len()));
        k.ops.push(op);
        self.ops += 1;
    }

    fn op_mut(&mut self, id: &RequestId) -> Option<&mut Operation> {
        let (slot, i) = self.pending.remove(id)?;
        self.keys[slot].ops.get_mut(i)
    }
}

impl Checker for KvHistory {
    fn on_event(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::RequestSent {
                t_ns,
                id,
                kv: Some((key, write)),
            } => self.record(
                id,
                Operation {
                    client: ((id.host as u64) << 16) | id.port as u64,
                    key: key.to_vec(),
                    kind: match write {
                        Some(v) => OpKind::Write { value: v.to_vec() },
                        None => OpKind::Read { observed: None },
                    },
                    call_ns: t_ns,
                    return_ns: None,
                },
            ),
            Event::Response { t_ns, id, body, .. } => {
                let Some(op) = self.op_mut(&id) else {
                    return;
                };
                match &mut op.kind {
                    OpKind::Read { observed } => match KvReply::decode(body) {
                        Ok(KvReply::Value(v)) => {
                            *observed = Some(v);
                            op.return_ns = Some(t_ns);
                        }
                        Ok(KvReply::NotFound) => op.return_ns = Some(t_ns),
                        // A GET whose reply did not parse says nothing.
                        _ => {}
                    },
                    _ => op.return_ns = Some(t_ns),
                }
            }
            // A DROP does not prove the request was not executed: with multicast, a deposed
            // leader may refuse a request the current leader orders (seed 1060 of `check`).
            // So a refused operation has an unknown outcome, like a timeout: it stays
            // unanswered.
            Event::Refused { id, .. } | Event::TimedOut { id, .. } => {
                self.pending.remove(&id);
            }
            _ => {}
        }
    }

    fn finish(&self, _: &World, r: &mut Report) {
        self.report(r);
    }
}

impl KvHistory {
    /// Checks every key whose history is complete; reports the first failure, else the
    /// first key left undecided (by the search budget or by a cap).
    fn report(&self, r: &mut Report) {
        let ops: Vec<Operation> = self
            .keys
            .iter()
            .filter(|k| !k.overflowed)
            .flat_map(|k| k.ops.iter().cloned())
            .collect();
        // The smallest key that could not be checked because it reached a cap.
        let overflowed = self
            .slot_of_key
            .iter()
            .filter(|&(_, &s)| self.keys[s].overflowed)
            .map(|(k, _)| k)
            .chain(self.unrecorded.as_ref())
            .min();
        let verdict = if ops.is_empty() {
            Verdict::Linearizable
        } else {
            check_history(&ops, &CheckerConfig::default())
        };
        let capped = |key: &[u8]| {
            format!(
                "linearizability undecided on key {}: its history reached the cap ({} operations per key, {} in all)",
                String::from_utf8_lossy(key),
                self.max_ops_per_key,
                self.max_ops
            )
        };
        match verdict {
            Verdict::NotLinearizable { key, explanation } => {
                r.safety.push(format!(
                    "not linearizable on key {}: {explanation}",
                    String::from_utf8_lossy(&key)
                ));
            }
            Verdict::Undecided {
                key,
                states_explored,
            } if overflowed.is_none_or(|o| key < *o) => r.undecided.push(format!(
                "linearizability undecided on key {} after {states_explored} states",
                String::from_utf8_lossy(&key)
            )),
            _ => {
                if let Some(key) = overflowed {
                    r.undecided.push(capped(key));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(req_id: u16) -> RequestId {
        RequestId {
            host: 3,
            port: 0,
            req_id,
        }
    }

    /// Client `req_id` writes (or reads, `write: None`) `key` from `call_ns` to `call_ns + 10`.
    fn op(h: &mut KvHistory, req_id: u16, key: &[u8], write: Option<&[u8]>, call_ns: u64) {
        h.on_event(&Event::RequestSent {
            t_ns: call_ns,
            id: id(req_id),
            kv: Some((key, write)),
        });
        let mut body = Vec::new();
        match write {
            Some(_) => KvReply::Ok.encode(&mut body),
            None => KvReply::Value(b"1".to_vec()).encode(&mut body),
        }
        h.on_event(&Event::Response {
            t_ns: call_ns + 10,
            id: id(req_id),
            from: crate::network::addr::server_addr(0),
            body: &body,
        });
    }

    fn report(h: &KvHistory) -> Report {
        let mut r = Report::default();
        h.report(&mut r);
        r
    }

    #[test]
    fn a_key_past_its_cap_is_undecided_never_guessed() {
        let mut h = KvHistory::new(2, 100);
        op(&mut h, 1, b"a", Some(b"1"), 0);
        op(&mut h, 2, b"a", None, 100);
        op(&mut h, 3, b"b", Some(b"1"), 0);
        op(&mut h, 4, b"b", None, 100);
        assert_eq!(report(&h), Report::default());
        // A third operation on "a" overflows it: its history is forgotten, "b" is still checked.
        op(&mut h, 5, b"a", None, 200);
        assert_eq!(h.operations().count(), 2);
        let r = report(&h);
        assert!(r.safety.is_empty(), "{r:?}");
        assert_eq!(r.undecided.len(), 1, "{r:?}");
        assert!(r.undecided[0]
            .starts_with("linearizability undecided on key a: its history reached the cap"));
    }

    #[test]
    fn a_violation_on_a_complete_key_beats_a_capped_key() {
        let mut h = KvHistory::new(1, 3);
        op(&mut h, 1, b"a", Some(b"1"), 0);
        op(&mut h, 2, b"a", Some(b"2"), 100);
        // "z" reads a value nobody wrote.
        op(&mut h, 3, b"z", None, 0);
        let r = report(&h);
        assert_eq!(r.safety.len(), 1, "{r:?}");
        assert!(
            r.safety[0].starts_with("not linearizable on key z"),
            "{r:?}"
        );
    }

    #[test]
    fn new_keys_past_the_total_cap_are_undecided() {
        let mut h = KvHistory::new(10, 2);
        op(&mut h, 1, b"b", Some(b"1"), 0);
        op(&mut h, 2, b"b", None, 100);
        op(&mut h, 3, b"c", Some(b"1"), 200);
        let r = report(&h);
        assert!(r.safety.is_empty(), "{r:?}");
        assert_eq!(r.undecided.len(), 1, "{r:?}");
        assert!(
            r.undecided[0].starts_with("linearizability undecided on key c"),
            "{r:?}"
        );
    }
}
