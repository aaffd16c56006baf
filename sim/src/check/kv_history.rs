//! Linearizability of the kv history clients observe, online: each kv operation is recorded
//! in its key's history as it is sent and completed as its answer (or DROP, or timeout)
//! arrives; at the end every key is checked ([`super::linearizability`], Wing–Gong /
//! Porcupine search, per key).
//!
//! Memory is bounded: a key keeps at most `max_ops_per_key` operations, and all keys
//! together at most `max_ops` ([`super::checker::Limits`]). A key whose history would exceed a cap is forgotten and
//! reported "undecided" (an incomplete history proves nothing either way), never guessed.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use rustc_hash::{FxHashMap, FxHashSet};

use hovercraft_core::app::kv::KvReply;
use hovercraft_core::node::NodeEvent;

use super::checker::{Checker, Event, RequestId};
use super::linearizability::{check_history, CheckerConfig, OpKind, Operation, Verdict};
use super::Report;
use crate::world::World;

#[derive(Default)]
struct KeyHistory {
    ops: Vec<Operation>,
    /// Parallel to `ops`: refused with a promise and never executed, so it did not happen.
    not_executed: Vec<bool>,
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
    /// Client address → (host, port), learned as requests are sent.
    client_of: FxHashMap<SocketAddrV4, (usize, usize)>,
    /// Pending requests the leader of a term refused with DROP (a promise: not ordered in
    /// that term), and pending requests some node executed.
    promised: FxHashMap<RequestId, u64>,
    executed: FxHashSet<RequestId>,
    /// Refused with a promise, not executed so far: (key slot, position).
    refused: FxHashMap<RequestId, (usize, usize)>,
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
            client_of: FxHashMap::default(),
            promised: FxHashMap::default(),
            executed: FxHashSet::default(),
            refused: FxHashMap::default(),
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
            k.not_executed = Vec::new();
            k.overflowed = true;
            return;
        }
        self.pending.insert(id, (slot, k.ops.len()));
        k.ops.push(op);
        k.not_executed.push(false);
        self.ops += 1;
    }

    /// A server's view of a request: its DROP promises and executions.
    fn on_node_event(&mut self, event: &NodeEvent) {
        let (client, req_id) = match *event {
            NodeEvent::Dropped {
                client,
                req_id,
                leader_term: Some(_),
            }
            | NodeEvent::Executed { client, req_id, .. } => (client, req_id),
            _ => return,
        };
        let Some(&(host, port)) = self.client_of.get(&client) else {
            return;
        };
        let id = RequestId { host, port, req_id };
        match *event {
            NodeEvent::Dropped {
                leader_term: Some(t),
                ..
            } if self.pending.contains_key(&id) => {
                self.promised.insert(id, t);
            }
            NodeEvent::Executed { index, .. } if index > 0 => {
                if self.pending.contains_key(&id) {
                    self.executed.insert(id);
                } else if let Some((slot, i)) = self.refused.remove(&id) {
                    // Ordered by the leader of another term (a deposed leader refused it
                    // while the real one ordered it, or a late copy reached a later
                    // leader): the DROP said nothing, the outcome is unknown. (In the
                    // promise's own term it is a violation, which the exactly-once checker
                    // reports.)
                    if let Some(n) = self.keys[slot].not_executed.get_mut(i) {
                        *n = false;
                    }
                }
            }
            _ => {}
        }
    }

    /// The client heard DROP: a promise that held so far means the operation did not happen.
    fn on_refused(&mut self, id: RequestId) {
        let Some((slot, i)) = self.pending.remove(&id) else {
            return;
        };
        let promise = self.promised.remove(&id);
        let executed = self.executed.remove(&id);
        if promise.is_some() && !executed {
            if let Some(n) = self.keys[slot].not_executed.get_mut(i) {
                *n = true;
                self.refused.insert(id, (slot, i));
            }
        }
    }

    fn forget(&mut self, id: &RequestId) {
        self.promised.remove(id);
        self.executed.remove(id);
    }

    fn op_mut(&mut self, id: &RequestId) -> Option<&mut Operation> {
        let (slot, i) = self.pending.remove(id)?;
        self.keys[slot].ops.get_mut(i)
    }
}

impl Checker for KvHistory {
    fn on_event(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::RequestSent { id, addr, .. } if !self.client_of.contains_key(&addr) => {
                self.client_of.insert(addr, (id.host, id.port));
                self.on_event(ev);
            }
            Event::RequestSent {
                t_ns,
                id,
                kv: Some((key, write)),
                ..
            } => {
                // A reused req_id: the earlier request's fate is settled.
                self.refused.remove(&id);
                self.forget(&id);
                self.record(
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
                )
            }
            Event::Node { event, .. } => self.on_node_event(event),
            Event::Response { t_ns, id, body, .. } => {
                self.forget(&id);
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
            // A DROP from a non-leader says nothing: with multicast, a deposed leader may
            // refuse a request the current leader orders (seed 1060 of `check`), so the
            // outcome is unknown, like a timeout's: it stays unanswered. A DROP from the
            // leader of term T promises the request is not ordered in T: unless some node
            // executes it (in another term), the operation did not happen.
            Event::Refused { id, .. } => self.on_refused(id),
            Event::TimedOut { id, .. } => {
                self.forget(&id);
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
            .flat_map(|k| {
                k.ops
                    .iter()
                    .zip(&k.not_executed)
                    .filter(|(_, &gone)| !gone)
                    .map(|(o, _)| o.clone())
            })
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
            addr: client_addr(),
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

    fn client_addr() -> SocketAddrV4 {
        SocketAddrV4::new([10, 1, 0, 4].into(), 9000)
    }

    fn report(h: &KvHistory) -> Report {
        let mut r = Report::default();
        h.report(&mut r);
        r
    }

    /// Client `req_id` writes `value` to "a" at 100 ns and hears DROP, which the leader of
    /// term 1 sent (`promise`) or a non-leader; then `executed_term`: some node executed it.
    /// A later read observes `value`.
    fn refused_write_then_read_it(promise: bool, executed_term: Option<u64>) -> Report {
        let mut h = KvHistory::new(100, 100);
        op(&mut h, 1, b"a", Some(b"1"), 0);
        h.on_event(&Event::RequestSent {
            t_ns: 100,
            id: id(2),
            addr: client_addr(),
            kv: Some((b"a", Some(b"2"))),
        });
        fn node(event: &NodeEvent) -> Event<'_> {
            Event::Node {
                t_ns: 110,
                host: 0,
                event,
            }
        }
        h.on_event(&node(&NodeEvent::Dropped {
            client: client_addr(),
            req_id: 2,
            leader_term: promise.then_some(1),
        }));
        h.on_event(&Event::Refused {
            t_ns: 120,
            id: id(2),
        });
        if let Some(term) = executed_term {
            h.on_event(&node(&NodeEvent::Executed {
                client: client_addr(),
                req_id: 2,
                read_only: false,
                cpu_ns: 0,
                index: 9,
                term,
            }));
        }
        h.on_event(&Event::RequestSent {
            t_ns: 300,
            id: id(3),
            addr: client_addr(),
            kv: Some((b"a", None)),
        });
        let mut body = Vec::new();
        KvReply::Value(b"2".to_vec()).encode(&mut body);
        h.on_event(&Event::Response {
            t_ns: 310,
            id: id(3),
            from: crate::network::addr::server_addr(0),
            body: &body,
        });
        report(&h)
    }

    #[test]
    fn a_leaders_drop_is_a_promise_the_write_did_not_happen() {
        let r = refused_write_then_read_it(true, None);
        assert!(
            r.safety.len() == 1 && r.safety[0].starts_with("not linearizable on key a"),
            "{r:?}"
        );
    }

    #[test]
    fn other_drops_and_broken_promises_leave_the_outcome_unknown() {
        // A non-leader's DROP: the write may have happened.
        assert_eq!(refused_write_then_read_it(false, None), Report::default());
        // Executed after all (ordered in another term): unknown, not a kv violation.
        assert_eq!(refused_write_then_read_it(true, Some(2)), Report::default());
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
