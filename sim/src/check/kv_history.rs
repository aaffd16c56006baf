//! Linearizability of the kv history clients observe, online: each kv operation is recorded
//! in its key's history as it is sent and completed as its answer (or DROP, or timeout)
//! arrives; at the end every key is checked ([`super::linearizability`], Wing–Gong /
//! Porcupine search, per key).
//!
//! Memory is bounded: a key keeps at most [`MAX_OPS_PER_KEY`] operations, and all keys
//! together at most [`MAX_OPS`]. A key whose history would exceed a cap is forgotten and
//! reported "undecided" (an incomplete history proves nothing either way), never guessed.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use hovercraft_core::app::kv::KvReply;

use super::checker::{Checker, Event, RequestId};
use super::linearizability::{check_history, CheckerConfig, OpKind, Operation, Verdict};
use super::Report;
use crate::world::World;

/// Operations one key's history may hold.
pub const MAX_OPS_PER_KEY: usize = 1 << 16;
/// Operations all histories together may hold.
pub const MAX_OPS: usize = 1 << 20;

#[derive(Default)]
struct KeyHistory {
    ops: Vec<Operation>,
    /// It reached a cap: its history is incomplete, so it is not checked.
    overflowed: bool,
}

#[derive(Default)]
pub struct KvHistory {
    slot_of_key: BTreeMap<Vec<u8>, usize>,
    keys: Vec<KeyHistory>,
    /// Requests awaiting their outcome: (key slot, position in its history).
    pending: FxHashMap<RequestId, (usize, usize)>,
    ops: usize,
    /// The smallest key that overflowed and was never recorded (no slot was free).
    unrecorded: Option<Vec<u8>>,
}

impl KvHistory {
    /// Every operation recorded, key by key.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.keys.iter().flat_map(|k| &k.ops)
    }

    fn record(&mut self, id: RequestId, op: Operation) {
        let slot = match self.slot_of_key.get(&op.key) {
            Some(&s) => s,
            None if self.ops < MAX_OPS => {
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
        if k.ops.len() >= MAX_OPS_PER_KEY || self.ops >= MAX_OPS {
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
                "linearizability undecided on key {}: its history reached the cap ({MAX_OPS_PER_KEY} operations per key, {MAX_OPS} in all)",
                String::from_utf8_lossy(key)
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
