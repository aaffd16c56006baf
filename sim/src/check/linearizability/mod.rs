//! Linearizability checker for the key-value histories that clients observe.
//!
//! A history is a set of client operations (GET, PUT/INSERT, DELETE), each with the virtual
//! time it was invoked and, if it was answered, the time its answer arrived. The history is
//! linearizable if there is one total order of the operations that (a) respects real time
//! (if `a` returned before `b` was called, `a` comes first) and (b) is a legal sequential run
//! of a key-value map.
//!
//! # Semantics
//!
//! - Linearizability is compositional (Herlihy & Wing): a history is linearizable iff every
//!   per-key sub-history is. Each key is checked alone as a register holding an optional
//!   value; every key starts absent (`None`).
//! - Real-time order is strict: `a` precedes `b` iff `a.return_ns < b.call_ns`. Operations
//!   whose times merely touch (`a.return_ns == b.call_ns`) are concurrent, because with
//!   nanosecond timestamps two events in the same nanosecond carry no order we can trust;
//!   this can only make the checker more permissive, never report a spurious violation.
//! - An unanswered operation (`return_ns == None`) may take effect at any time after its
//!   call, or never. An unanswered read constrains nothing and is dropped. An unanswered
//!   write or delete may or may not have taken effect.
//! - A malformed operation (`return_ns < call_ns`) makes its key `NotLinearizable` with an
//!   explanation starting with `"malformed: return before call"`: such a history cannot come
//!   from a correct recorder, and saying so beats silently reinterpreting it.
//!
//! # Algorithm
//!
//! Per key, in order:
//!
//! 1. Malformed operations are reported.
//! 2. Every answered read of a value is checked against the earliest call of an operation
//!    producing that value ("read a value nobody wrote", "read it before anyone wrote it").
//! 3. Zones (Gibbons & Korach): a value produced exactly once must stay current from the
//!    earliest return to the latest call among its producer and its reads; two such periods
//!    must not overlap and no answered mutation may lie strictly inside one. This catches
//!    stale reads in O(n log n) however concurrent the history, with an explanation naming
//!    the operations involved.
//! 4. The search: Wing & Gong's, with Lowe's just-in-time linearization and Porcupine's
//!    memoization. A depth-first search over "which operation takes effect next", where an
//!    operation is a candidate iff it was called no later than the earliest return among
//!    the answered operations not yet linearized (anything called later would jump over an
//!    operation that must precede it). A cache of configurations — (set of linearized
//!    operations, register value) — already explored prunes every configuration reached
//!    twice. Steps 2 and 3 only ever reject; the search alone accepts.
//!
//! The search uses reductions that keep the common case linear. Each one preserves the
//! verdict exactly (the argument is given where it is implemented, and the tests compare
//! against a plain exhaustive search):
//!
//! - A candidate read that sees the current value is linearized at once, with no branching.
//! - An unanswered write/delete is dropped unless some answered read returning at or after
//!   its call observed its value, and is only tried right before a candidate read of its
//!   value.
//! - Mutations with the same effect on the future (same value, or any value no pending read
//!   observed) are tried once, the earliest-returning one; when nobody awaits the current
//!   value either, such a blind write goes next with no branching.
//! - A value no pending read observed is one value in the cache key, so orders of
//!   concurrent writes that no one reads converge.
//! - A step after which some pending read can no longer find a producer of its value in
//!   time (`Search::stranded`) is cut at once.
//!
//! # Complexity
//!
//! Let `n` be the operations on a key, `C` the largest number of answered operations open at
//! one instant (the concurrency) and `U` the unanswered writes/deletes kept. Steps 1–3 take
//! O(n log n). Each search state costs O(C log C + U) time, and its cache entry O(C + U)
//! memory; cached keys are capped at 64 MiB (`MAX_CACHE_WORDS`, beyond which configurations
//! are no longer remembered) and the stack is O(1) per level, so memory is O(n) plus that
//! cap. When the history is linearizable the search explores about one state per operation
//! (measured on random histories: 1.0–1.1 per operation with up to ~12 operations open,
//! ~1.7 with ~50 open, 10–20 with ~200 open); 5 000 operations on one key check in 2–40 ms
//! in release mode. In the worst case — a violation only the search can find, among
//! heavily concurrent writes that are all read — the search is exponential in `C`
//! (checking linearizability is NP-complete), which is why it is bounded: after
//! `max_states_per_key` states the key is `Undecided`, never guessed. With the default
//! budget that costs about 1 s for a key when `C` is in the tens or hundreds, about 12 s
//! when it is in the thousands (each state then costs more); lower the budget to bound it
//! harder.
//!
//! Determinism: keys are checked in sorted order, operations are ordered by
//! `(call_ns, return_ns, position in the input)`, candidates are tried in that order, and the
//! hash set used as the cache is only ever probed, never iterated.

use std::collections::BTreeMap;
use std::fmt;

use rustc_hash::{FxHashMap, FxHashSet};

mod search;
mod zones;

use search::*;
use zones::*;

/// One client operation, as observed: invoked at `call_ns`, answered at `return_ns`
/// (None = never answered: it may or may not have taken effect, at any time after call_ns).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// Which client issued it. Only used in explanations: a client may have several
    /// operations pending at once.
    pub client: u64,
    pub key: Vec<u8>,
    pub kind: OpKind,
    pub call_ns: u64,
    pub return_ns: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OpKind {
    /// A GET and what it returned (None = not found); only meaningful if answered.
    Read {
        observed: Option<Vec<u8>>,
    },
    /// A PUT or INSERT.
    Write {
        value: Vec<u8>,
    },
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    Linearizable,
    /// The smallest key proven to fail (keys before it are linearizable or undecided) and a
    /// human-readable explanation (e.g. which read saw what).
    NotLinearizable {
        key: Vec<u8>,
        explanation: String,
    },
    /// The search budget ran out on some key before deciding (the smallest such key) and no
    /// key was proven to fail: never guess.
    Undecided {
        key: Vec<u8>,
        states_explored: u64,
    },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable { key, explanation } => {
                write!(
                    f,
                    "not linearizable on key {}: {explanation}",
                    show_bytes(key)
                )
            }
            Verdict::Undecided {
                key,
                states_explored,
            } => write!(
                f,
                "undecided on key {} after {states_explored} states (search budget spent)",
                show_bytes(key)
            ),
        }
    }
}

/// The outcome for one key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyVerdict {
    Linearizable,
    NotLinearizable { explanation: String },
    Undecided { states_explored: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckerConfig {
    /// Search states (attempts to linearize one operation) allowed per key before giving up
    /// with `Undecided`. Bounds the time spent on a key (memory is capped separately).
    pub max_states_per_key: u64,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        // Linearizable histories of realistic concurrency need about one state per
        // operation; a million leaves room for heavy backtracking while keeping a
        // pathological key to around a second (see the module docs).
        CheckerConfig {
            max_states_per_key: 1_000_000,
        }
    }
}

/// Checks a whole history, key by key in sorted key order.
///
/// Returns the first key (in that order) proven not linearizable; otherwise the first key
/// whose search ran out of budget; otherwise `Linearizable`.
pub fn check_history(ops: &[Operation], cfg: &CheckerConfig) -> Verdict {
    let mut by_key: BTreeMap<&[u8], Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_slice()).or_default().push(op);
    }
    let mut first_undecided: Option<Verdict> = None;
    for (key, key_ops) in &by_key {
        match check_key(key_ops, None, cfg) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::NotLinearizable { explanation } => {
                return Verdict::NotLinearizable {
                    key: key.to_vec(),
                    explanation,
                };
            }
            KeyVerdict::Undecided { states_explored } => {
                // Keep going: a later key may still be proven to fail, which is a firm
                // verdict about the whole history.
                if first_undecided.is_none() {
                    first_undecided = Some(Verdict::Undecided {
                        key: key.to_vec(),
                        states_explored,
                    });
                }
            }
        }
    }
    first_undecided.unwrap_or(Verdict::Linearizable)
}

/// Checks the operations of one key as a single register starting at `initial`.
///
/// The `key` field of the operations is not consulted: the caller decides what one register
/// is (`check_history` groups by key). A key with `u32::MAX - 1` or more operations is
/// `Undecided` with no states explored (ids are 32-bit to keep the cache small).
pub fn check_key(ops: &[&Operation], initial: Option<Vec<u8>>, cfg: &CheckerConfig) -> KeyVerdict {
    check_key_tuned(ops, initial, cfg, Tuning::default())
}

/// Internal knobs, so tests can show that the optimizations never change an answer.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    /// Memoization cache size limit (see `MAX_CACHE_WORDS`).
    max_cache_words: usize,
    /// Whether to run the zone pre-check (`zone_violation`).
    zones: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_cache_words: MAX_CACHE_WORDS,
            zones: true,
        }
    }
}

fn check_key_tuned(
    ops: &[&Operation],
    initial: Option<Vec<u8>>,
    cfg: &CheckerConfig,
    tuning: Tuning,
) -> KeyVerdict {
    if let Some(bad) = ops
        .iter()
        .find(|op| op.return_ns.is_some_and(|r| r < op.call_ns))
    {
        return KeyVerdict::NotLinearizable {
            explanation: format!(
                "malformed: return before call: {}",
                describe(bad, observed_bytes(bad))
            ),
        };
    }
    // Op ids and value ids are u32 to keep cache entries small; a key with four billion
    // operations is out of reach anyway, so decline it rather than truncate ids.
    if u32::try_from(ops.len()).map_or(true, |n| n >= u32::MAX - 1) {
        return KeyVerdict::Undecided { states_explored: 0 };
    }

    // Intern values: the search compares u32 ids, never byte strings. Ids follow first
    // appearance in input order, so they are deterministic; the map is only probed.
    let mut interner = Interner::default();
    let initial_id = interner.intern(initial.as_deref());

    let mut answered: Vec<Op> = Vec::new();
    let mut unanswered: Vec<Op> = Vec::new();
    for (source, op) in ops.iter().enumerate() {
        let effect = match &op.kind {
            OpKind::Read { observed } => Effect::Read(interner.intern(observed.as_deref())),
            OpKind::Write { value } => Effect::Write(interner.intern(Some(value))),
            OpKind::Delete => Effect::Write(ABSENT),
        };
        match (op.return_ns, effect) {
            (Some(return_ns), _) => answered.push(Op {
                call_ns: op.call_ns,
                return_ns,
                effect,
                source,
            }),
            // An unanswered read observed nothing anyone can rely on.
            (None, Effect::Read(_)) => {}
            (None, Effect::Write(_)) => unanswered.push(Op {
                call_ns: op.call_ns,
                return_ns: u64::MAX,
                effect,
                source,
            }),
        }
    }
    let values = interner.values;
    let value_count = values.len();
    answered.sort_by_key(|op| (op.call_ns, op.return_ns, op.source));
    unanswered.sort_by_key(|op| (op.call_ns, op.source));

    let show_value = |v: u32| show_optional(values.get(v as usize).copied().flatten());
    let describe_op = |op: &Op| {
        let original = ops.get(op.source).copied();
        original.map_or_else(String::new, |o| describe(o, observed_bytes(o)))
    };

    // Pre-check: a read of v needs an operation producing v called no later than the read
    // returned (or v is the initial value). Cheap, and names the culprit precisely.
    let mut earliest_producer_ns: Vec<Option<u64>> = vec![None; value_count];
    for op in answered.iter().chain(&unanswered) {
        if let Effect::Write(v) = op.effect {
            if let Some(slot) = earliest_producer_ns.get_mut(v as usize) {
                *slot = Some(slot.map_or(op.call_ns, |t| t.min(op.call_ns)));
            }
        }
    }
    for op in &answered {
        let Effect::Read(v) = op.effect else { continue };
        if v == initial_id {
            continue;
        }
        match earliest_producer_ns.get(v as usize).copied().flatten() {
            None => {
                return KeyVerdict::NotLinearizable {
                    explanation: format!(
                        "{} but no write or delete of this key produced {} (initial value {})",
                        describe_op(op),
                        show_value(v),
                        show_value(initial_id),
                    ),
                };
            }
            Some(first_ns) if first_ns > op.return_ns => {
                return KeyVerdict::NotLinearizable {
                    explanation: format!(
                        "{} before any operation producing {} was invoked (the earliest at {} ns)",
                        describe_op(op),
                        show_value(v),
                        first_ns,
                    ),
                };
            }
            Some(_) => {}
        }
    }

    // Drop unanswered mutations whose value no read could have observed after them: in any
    // valid order no read sits between such a mutation and the next one, so removing it
    // from that order keeps it valid, and an unanswered operation may not have happened.
    let mut latest_read_return_ns: Vec<Option<u64>> = vec![None; value_count];
    for op in &answered {
        if let Effect::Read(v) = op.effect {
            if let Some(slot) = latest_read_return_ns.get_mut(v as usize) {
                *slot = Some(slot.map_or(op.return_ns, |t| t.max(op.return_ns)));
            }
        }
    }
    unanswered.retain(|op| match op.effect {
        Effect::Write(v) => latest_read_return_ns
            .get(v as usize)
            .copied()
            .flatten()
            .is_some_and(|t| t >= op.call_ns),
        Effect::Read(_) => false,
    });

    if let Some(violation) = tuning
        .zones
        .then(|| zone_violation(&answered, &unanswered, initial_id, value_count))
        .flatten()
    {
        let zone_text = |z: &Zone| {
            let other = |op: &Op| {
                if op.source == z.producer.source {
                    "it".to_string()
                } else {
                    describe_op(op)
                }
            };
            format!(
                "{} was produced only once, by {}, so it had to stay current from {} ns (when \
                 {} returned) until {} ns (when {} was invoked)",
                show_value(z.value),
                describe_op(&z.producer),
                z.from_ns,
                other(&z.from_op),
                z.to_ns,
                other(&z.to_op),
            )
        };
        let explanation = match violation {
            ZoneViolation::Inside { zone, mutation } => format!(
                "{}, yet {} took effect entirely within that period",
                zone_text(&zone),
                describe_op(&mutation)
            ),
            ZoneViolation::Overlap { first, second } => format!(
                "{}; and {}: the two periods overlap, but the key holds one value at a time",
                zone_text(&first),
                zone_text(&second)
            ),
        };
        return KeyVerdict::NotLinearizable { explanation };
    }

    let answered_count = answered.len();
    let unanswered_count = unanswered.len();
    let mut search = Search::new(answered, unanswered, initial_id, value_count);
    match search.run(cfg.max_states_per_key, tuning.max_cache_words) {
        Outcome::Linearizable => KeyVerdict::Linearizable,
        Outcome::BudgetSpent { states_explored } => KeyVerdict::Undecided { states_explored },
        Outcome::Exhausted {
            deepest,
            states_explored,
        } => {
            let describe_id = |id: u32| search.op(id).map_or_else(String::new, describe_op);
            let then = match deepest.stuck {
                Stuck::Deadline { blocker } => format!(
                    "{} cannot take effect before its return",
                    describe_id(blocker)
                ),
                Stuck::Strands { op, read } => format!(
                    "{} would strand {} (no operation producing that value is left that was \
                     invoked before the read returned)",
                    describe_id(op),
                    describe_id(read)
                ),
            };
            KeyVerdict::NotLinearizable {
                explanation: format!(
                    "no order of the {answered_count} answered operations (with any subset of \
                     {unanswered_count} relevant unanswered writes/deletes) respects both real \
                     time and register semantics ({states_explored} states explored); the \
                     longest valid prefix linearizes {} of them and leaves the key {}, after \
                     which {then}",
                    deepest.linearized,
                    show_value(deepest.state),
                ),
            }
        }
    }
}

fn observed_bytes(op: &Operation) -> Option<&[u8]> {
    match &op.kind {
        OpKind::Read { observed } => observed.as_deref(),
        OpKind::Write { value } => Some(value),
        OpKind::Delete => None,
    }
}

/// E.g. `read by client 2 (call 300 ns, return 400 ns) observed "1"`.
fn describe(op: &Operation, value: Option<&[u8]>) -> String {
    let interval = match op.return_ns {
        Some(r) => format!("call {} ns, return {} ns", op.call_ns, r),
        None => format!("call {} ns, never answered", op.call_ns),
    };
    match &op.kind {
        OpKind::Read { .. } => format!(
            "read by client {} ({interval}) observed {}",
            op.client,
            show_optional(value)
        ),
        OpKind::Write { .. } => format!(
            "write of {} by client {} ({interval})",
            show_optional(value),
            op.client
        ),
        OpKind::Delete => format!("delete by client {} ({interval})", op.client),
    }
}

fn show_optional(v: Option<&[u8]>) -> String {
    match v {
        None => "absent".to_string(),
        Some(bytes) => show_bytes(bytes),
    }
}

/// Printable UTF-8 as a quoted string, anything else as hex; long values are cut so an
/// explanation stays one readable line.
fn show_bytes(bytes: &[u8]) -> String {
    const MAX_SHOWN_BYTES: usize = 32;
    let shown = bytes.get(..MAX_SHOWN_BYTES).unwrap_or(bytes);
    let cut = if shown.len() < bytes.len() {
        format!("… ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    match std::str::from_utf8(shown) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}{cut}"),
        _ => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{cut}")
        }
    }
}

#[cfg(test)]
mod tests;
