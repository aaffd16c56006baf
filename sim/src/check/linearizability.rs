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

/// Value id of "absent" in the interned value table.
const ABSENT: u32 = 0;

/// The period a value produced exactly once must have been current (Gibbons & Korach's
/// "forward zone"): its producer takes effect no later than the earliest return among the
/// producer and its reads (`from_ns`), and its last read no earlier than the latest call
/// among them (`to_ns`); with nothing else producing the value, no mutation can take effect
/// in between.
#[derive(Clone, Copy, Debug)]
struct Zone {
    value: u32,
    producer: Op,
    from_ns: u64,
    from_op: Op,
    to_ns: u64,
    to_op: Op,
}

enum ZoneViolation {
    /// Two values would have to be current at once.
    Overlap { first: Zone, second: Zone },
    /// An answered mutation lies strictly inside a zone.
    Inside { zone: Zone, mutation: Op },
}

/// A search-free test of necessary conditions, in O(n log n), that catches stale reads
/// however concurrent the history (the search alone has to refute every interleaving
/// before one, which can exceed the budget). Only values other than the initial one with
/// exactly one producer are used; unanswered producers count as producers (they returned
/// "never"), unanswered mutations are never the intruder (they may not have happened).
/// Both conditions are strict in time, so touching intervals never count.
fn zone_violation(
    answered: &[Op],
    unanswered: &[Op],
    initial: u32,
    value_count: usize,
) -> Option<ZoneViolation> {
    // Per value: producer count and the last producer seen.
    let mut producers: Vec<(u32, Option<Op>)> = vec![(0, None); value_count];
    for op in answered.iter().chain(unanswered) {
        if let Effect::Write(v) = op.effect {
            if let Some(slot) = producers.get_mut(v as usize) {
                *slot = (slot.0.saturating_add(1), Some(*op));
            }
        }
    }
    // Per value: earliest-returning and latest-called read.
    let mut reads: Vec<Option<(Op, Op)>> = vec![None; value_count];
    for op in answered {
        if let Effect::Read(v) = op.effect {
            if let Some(slot) = reads.get_mut(v as usize) {
                *slot = Some(match *slot {
                    None => (*op, *op),
                    Some((first, last)) => (
                        if op.return_ns < first.return_ns {
                            *op
                        } else {
                            first
                        },
                        if op.call_ns > last.call_ns { *op } else { last },
                    ),
                });
            }
        }
    }
    let mut zones: Vec<Zone> = Vec::new();
    for (v, (producer_info, read_info)) in (0u32..).zip(producers.iter().zip(&reads)) {
        let (&(1, Some(producer)), Some((first_read, last_read))) = (producer_info, read_info)
        else {
            continue;
        };
        if v == initial {
            continue;
        }
        let (from_ns, from_op) = if producer.return_ns <= first_read.return_ns {
            (producer.return_ns, producer)
        } else {
            (first_read.return_ns, *first_read)
        };
        let (to_ns, to_op) = if producer.call_ns >= last_read.call_ns {
            (producer.call_ns, producer)
        } else {
            (last_read.call_ns, *last_read)
        };
        if from_ns < to_ns {
            zones.push(Zone {
                value: v,
                producer,
                from_ns,
                from_op,
                to_ns,
                to_op,
            });
        }
    }
    zones.sort_by_key(|z| (z.from_ns, z.to_ns, z.value));
    let mut reach: Option<Zone> = None;
    for zone in &zones {
        if let Some(r) = reach {
            if zone.from_ns < r.to_ns {
                return Some(ZoneViolation::Overlap {
                    first: r,
                    second: *zone,
                });
            }
        }
        if reach.is_none_or(|r| zone.to_ns > r.to_ns) {
            reach = Some(*zone);
        }
    }
    // Zones are now disjoint and sorted: the only one that can contain a mutation is the
    // last starting before the mutation's call.
    for op in answered {
        let Effect::Write(v) = op.effect else {
            continue;
        };
        let starts_before = zones.partition_point(|z| z.from_ns < op.call_ns);
        let Some(zone) = starts_before.checked_sub(1).and_then(|i| zones.get(i)) else {
            continue;
        };
        if op.return_ns < zone.to_ns && v != zone.value {
            return Some(ZoneViolation::Inside {
                zone: *zone,
                mutation: *op,
            });
        }
    }
    None
}

/// Stands for any value no pending read observed, in cache keys. Never a real value id:
/// those are at most the operation count, which `check_key` keeps below `u32::MAX - 1`.
const UNREAD: u32 = u32::MAX;

/// Values as u32 ids, so the search compares and hashes integers, never byte strings. Ids
/// follow first appearance in input order, so they are deterministic; the map is only
/// probed, never iterated.
struct Interner<'v> {
    ids: FxHashMap<&'v [u8], u32>,
    /// Indexed by id; id `ABSENT` is `None`.
    values: Vec<Option<&'v [u8]>>,
}

impl Default for Interner<'_> {
    fn default() -> Self {
        Interner {
            ids: FxHashMap::default(),
            values: vec![None],
        }
    }
}

impl<'v> Interner<'v> {
    fn intern(&mut self, v: Option<&'v [u8]>) -> u32 {
        let Some(bytes) = v else {
            return ABSENT;
        };
        if let Some(&id) = self.ids.get(bytes) {
            return id;
        }
        // Cannot saturate: `check_key` caps the operation count, hence the value count,
        // below u32::MAX.
        let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.values.push(Some(bytes));
        self.ids.insert(bytes, id);
        id
    }
}

#[derive(Clone, Copy, Debug)]
enum Effect {
    /// Observed this value id.
    Read(u32),
    /// Set the register to this value id (`ABSENT` for a delete).
    Write(u32),
}

#[derive(Clone, Copy, Debug)]
struct Op {
    call_ns: u64,
    /// `u64::MAX` for unanswered operations, which are kept apart and never bound anything.
    return_ns: u64,
    effect: Effect,
    /// Index in the caller's slice, for explanations and a deterministic tie-break.
    source: usize,
}

/// The furthest the search got, for explaining a failure.
#[derive(Clone, Copy, Debug)]
struct Deepest {
    /// Answered operations linearized.
    linearized: u32,
    state: u32,
    stuck: Stuck,
}

impl Deepest {
    /// A step rejected because it strands a read got one step further than a dead end at
    /// the same depth, and names the read: prefer it.
    fn rank(&self) -> (u32, u8) {
        match self.stuck {
            Stuck::Deadline { .. } => (self.linearized, 0),
            Stuck::Strands { .. } => (self.linearized, 1),
        }
    }
}

/// Why the search could not go past a configuration.
#[derive(Clone, Copy, Debug)]
enum Stuck {
    /// The pending answered operation with the earliest return: the one that had to take
    /// effect next at the latest.
    Deadline { blocker: u32 },
    /// Linearizing `op` next leaves `read` unsatisfiable (see `Search::stranded`).
    Strands { op: u32, read: u32 },
}

enum Outcome {
    Linearizable,
    Exhausted {
        deepest: Deepest,
        states_explored: u64,
    },
    BudgetSpent {
        states_explored: u64,
    },
}

/// What a step changed, to undo it when the search backtracks.
#[derive(Clone, Copy, Debug)]
struct Undo {
    op: u32,
    state: u32,
    frontier: u32,
}

/// One level of the search. Its candidates are not stored: they are a function of the
/// configuration, which backtracking restores exactly, so only the top frame's list is kept
/// and a parent's is recomputed when the search returns to it. This keeps the stack at
/// O(1) per level instead of O(concurrency).
struct Frame {
    /// Index of the next candidate to try.
    next: usize,
    /// The step that led to this frame (none for the root).
    undo: Option<Undo>,
}

/// Memoization is only an optimization (a configuration explored twice gets the same
/// answer twice), so past this many cached u32 words (64 MiB) new configurations are no
/// longer remembered, which bounds memory whatever the concurrency; the state budget still
/// bounds time.
const MAX_CACHE_WORDS: usize = 1 << 24;

/// The answered operations that bound the next step.
struct Window {
    /// Earliest return among the answered operations not yet linearized: anything called
    /// later cannot go next.
    min_return_ns: u64,
    blocker: u32,
    /// Answered ids `frontier..end` are the not-yet-linearized ones past the frontier that
    /// were called by `min_return_ns`.
    end: u32,
}

/// The search state for one key. Op ids: `0..answered.len()` are the answered operations in
/// call order, `answered.len() + k` is unanswered operation `k`.
struct Search {
    answered: Vec<Op>,
    unanswered: Vec<Op>,
    linearized: Vec<bool>,
    /// One past the highest linearized answered id (0 if none).
    frontier: u32,
    /// Answered ids below `frontier` not yet linearized, ascending. Every one of them was
    /// pending when the operation at `frontier - 1` was called, so this stays as small as
    /// the concurrency — which is why the cache key uses it instead of a bitset over all
    /// operations.
    missing: Vec<u32>,
    /// Register value id.
    state: u32,
    /// Per value id, how to find who still needs it and who can still produce it.
    by_value: Vec<ValueIndex>,
    /// Unanswered ids linearized, in the order they were (a stack, as steps are undone
    /// last-in first-out).
    unanswered_done: Vec<u32>,
    /// Per unanswered operation `k`: the highest id of an answered read of its value. Once
    /// every answered id up to it is linearized, no read can use it any more (it is only
    /// tried right before a read of its value), so whether it was linearized no longer
    /// matters to the future of the search.
    useful_until: Vec<u32>,
}

/// Per value, for `stranded`: ids ascending, so the part at or past the frontier (all not
/// linearized) is a suffix found by binary search.
#[derive(Default)]
struct ValueIndex {
    /// Answered reads that observed the value.
    reads: Vec<u32>,
    /// `suffix_earliest[i]` = (return, id) of the earliest-returning read in `reads[i..]`.
    suffix_earliest: Vec<(u64, u32)>,
    /// Answered writes/deletes producing the value (ascending id = ascending call).
    producers: Vec<u32>,
    /// Unanswered ones (ascending call).
    unanswered_producers: Vec<u32>,
}

impl Search {
    fn new(answered: Vec<Op>, unanswered: Vec<Op>, initial: u32, value_count: usize) -> Self {
        let total = answered.len() + unanswered.len();
        let mut by_value: Vec<ValueIndex> = Vec::new();
        by_value.resize_with(value_count, ValueIndex::default);
        let ids = (0u32..).zip(answered.iter().chain(&unanswered));
        for (id, op) in ids {
            let unanswered_op = id as usize >= answered.len();
            match op.effect {
                Effect::Read(v) => {
                    if let Some(index) = by_value.get_mut(v as usize) {
                        index.reads.push(id);
                    }
                }
                Effect::Write(v) => {
                    if let Some(index) = by_value.get_mut(v as usize) {
                        if unanswered_op {
                            index.unanswered_producers.push(id);
                        } else {
                            index.producers.push(id);
                        }
                    }
                }
            }
        }
        for index in &mut by_value {
            let mut earliest = (u64::MAX, u32::MAX);
            let mut suffix: Vec<(u64, u32)> = index
                .reads
                .iter()
                .rev()
                .map(|&id| {
                    let r = answered
                        .get(id as usize)
                        .map_or(u64::MAX, |op| op.return_ns);
                    earliest = earliest.min((r, id));
                    earliest
                })
                .collect();
            suffix.reverse();
            index.suffix_earliest = suffix;
        }
        let useful_until = unanswered
            .iter()
            .map(|op| match op.effect {
                Effect::Write(v) => by_value
                    .get(v as usize)
                    .and_then(|index| index.reads.last().copied())
                    .unwrap_or(0),
                Effect::Read(_) => 0,
            })
            .collect();
        Search {
            answered,
            unanswered,
            linearized: vec![false; total],
            frontier: 0,
            missing: Vec::new(),
            state: initial,
            by_value,
            unanswered_done: Vec::new(),
            useful_until,
        }
    }

    /// Some read of `value` not yet linearized that can no longer be satisfied, if any: the
    /// register no longer holds `value`, so a producer of it must still take effect before
    /// that read returns, and none not yet linearized was called in time. This is what cuts
    /// a wrong guess (a write placed too early, then overwritten while a read of it is
    /// pending) at once instead of after exploring everything that follows it.
    fn stranded(&self, value: u32) -> Option<u32> {
        let index = self.by_value.get(value as usize)?;
        let call_of = |id: u32| self.op(id).map_or(u64::MAX, |op| op.call_ns);
        let return_of = |id: u32| self.op(id).map_or(u64::MAX, |op| op.return_ns);
        let is_value = |id: u32, want_read: bool| match self.op(id).map(|op| op.effect) {
            Some(Effect::Read(v)) => want_read && v == value,
            Some(Effect::Write(v)) => !want_read && v == value,
            None => false,
        };

        let first_pending = index.reads.partition_point(|&id| id < self.frontier);
        let mut earliest_read = index.suffix_earliest.get(first_pending).copied();
        for &m in &self.missing {
            if is_value(m, true) {
                let r = (return_of(m), m);
                earliest_read = Some(earliest_read.map_or(r, |e| e.min(r)));
            }
        }
        let (deadline_ns, read) = earliest_read?;

        let first_pending = index.producers.partition_point(|&id| id < self.frontier);
        let mut earliest_call_ns = index.producers.get(first_pending).map(|&id| call_of(id));
        for &m in &self.missing {
            if is_value(m, false) {
                let c = call_of(m);
                earliest_call_ns = Some(earliest_call_ns.map_or(c, |e| e.min(c)));
            }
        }
        let unanswered = index
            .unanswered_producers
            .iter()
            .find(|&&id| !self.linearized.get(id as usize).copied().unwrap_or(true));
        if let Some(&id) = unanswered {
            let c = call_of(id);
            earliest_call_ns = Some(earliest_call_ns.map_or(c, |e| e.min(c)));
        }
        earliest_call_ns
            .is_none_or(|c| c > deadline_ns)
            .then_some(read)
    }

    /// Whether some read not yet linearized observed `value`.
    fn awaited(&self, value: u32) -> bool {
        let Some(index) = self.by_value.get(value as usize) else {
            return false;
        };
        if index
            .reads
            .last()
            .is_some_and(|&last| last >= self.frontier)
        {
            return true;
        }
        self.missing.iter().any(|&m| {
            self.answered
                .get(m as usize)
                .is_some_and(|op| matches!(op.effect, Effect::Read(v) if v == value))
        })
    }

    fn answered_count(&self) -> u32 {
        // Bounded by the u32 check in `check_key`.
        u32::try_from(self.answered.len()).unwrap_or(u32::MAX)
    }

    fn op(&self, id: u32) -> Option<&Op> {
        let id = id as usize;
        match id.checked_sub(self.answered.len()) {
            None => self.answered.get(id),
            Some(k) => self.unanswered.get(k),
        }
    }

    fn depth(&self) -> u32 {
        let missing = u32::try_from(self.missing.len()).unwrap_or(u32::MAX);
        self.frontier.saturating_sub(missing)
    }

    /// Depth-first search over linearization orders, iterative so a long history cannot
    /// overflow the call stack.
    fn run(&mut self, budget: u64, max_cache_words: usize) -> Outcome {
        let Some(root) = self.window() else {
            return Outcome::Linearizable;
        };
        let mut seen: FxHashSet<Box<[u32]>> = FxHashSet::default();
        let root_key = self.cache_key();
        let mut cache_words = root_key.len();
        seen.insert(root_key);
        let mut deepest = Deepest {
            linearized: 0,
            state: self.state,
            stuck: Stuck::Deadline {
                blocker: root.blocker,
            },
        };
        let mut stack = vec![Frame {
            next: 0,
            undo: None,
        }];
        // Candidates of the top frame; None after backtracking into a parent.
        let mut top_candidates = Some(self.candidates(&root));
        let mut states_explored: u64 = 0;
        while let Some(top) = stack.last_mut() {
            let candidates = match top_candidates.as_ref() {
                Some(c) => c,
                None => {
                    let Some(window) = self.window() else {
                        return Outcome::Linearizable;
                    };
                    top_candidates.insert(self.candidates(&window))
                }
            };
            let Some(&id) = candidates.get(top.next) else {
                // Every choice from this configuration failed: back up one step.
                let undo = top.undo;
                stack.pop();
                top_candidates = None;
                if let Some(u) = undo {
                    self.undo(u);
                }
                continue;
            };
            top.next += 1;
            if states_explored >= budget {
                return Outcome::BudgetSpent { states_explored };
            }
            states_explored += 1;
            let Some(op) = self.op(id).copied() else {
                continue;
            };
            let next_state = match op.effect {
                Effect::Read(v) if v == self.state => v,
                // Candidates only hold reads of the current value; kept for robustness.
                Effect::Read(_) => continue,
                Effect::Write(v) => v,
            };
            let undo = self.apply(id, next_state);
            let Some(window) = self.window() else {
                return Outcome::Linearizable;
            };
            if undo.state != next_state {
                if let Some(read) = self.stranded(undo.state) {
                    self.undo(undo);
                    let here = Deepest {
                        linearized: self.depth(),
                        state: self.state,
                        stuck: Stuck::Strands { op: id, read },
                    };
                    if here.rank() > deepest.rank() {
                        deepest = here;
                    }
                    continue;
                }
            }
            let key = self.cache_key();
            if seen.contains(&key) {
                self.undo(undo);
                continue;
            }
            if cache_words.saturating_add(key.len()) <= max_cache_words {
                cache_words += key.len();
                seen.insert(key);
            }
            let here = Deepest {
                linearized: self.depth(),
                state: self.state,
                stuck: Stuck::Deadline {
                    blocker: window.blocker,
                },
            };
            if here.rank() > deepest.rank() {
                deepest = here;
            }
            top_candidates = Some(self.candidates(&window));
            stack.push(Frame {
                next: 0,
                undo: Some(undo),
            });
        }
        Outcome::Exhausted {
            deepest,
            states_explored,
        }
    }

    fn apply(&mut self, id: u32, next_state: u32) -> Undo {
        let undo = Undo {
            op: id,
            state: self.state,
            frontier: self.frontier,
        };
        if let Some(flag) = self.linearized.get_mut(id as usize) {
            *flag = true;
        }
        self.state = next_state;
        if id < self.answered_count() {
            if id < self.frontier {
                if let Ok(pos) = self.missing.binary_search(&id) {
                    self.missing.remove(pos);
                }
            } else {
                // Nothing at or past the frontier was linearized, so everything skipped
                // over is now missing; all of it is above the current `missing`, so the
                // vector stays sorted.
                self.missing.extend(self.frontier..id);
                self.frontier = id + 1;
            }
        } else {
            self.unanswered_done.push(id);
        }
        undo
    }

    fn undo(&mut self, u: Undo) {
        if let Some(flag) = self.linearized.get_mut(u.op as usize) {
            *flag = false;
        }
        self.state = u.state;
        if u.op < self.answered_count() {
            if u.op < u.frontier {
                if let Err(pos) = self.missing.binary_search(&u.op) {
                    self.missing.insert(pos, u.op);
                }
            } else {
                // Steps are undone last-in first-out, so `missing` holds exactly what it
                // held before plus the ids this step skipped over, all at or past the old
                // frontier.
                let keep = self.missing.partition_point(|&m| m < u.frontier);
                self.missing.truncate(keep);
                self.frontier = u.frontier;
            }
        } else if self.unanswered_done.last() == Some(&u.op) {
            self.unanswered_done.pop();
        }
    }

    /// None when every answered operation is linearized: the remaining unanswered ones can
    /// be left out, so the history is linearizable.
    fn window(&self) -> Option<Window> {
        let mut best: Option<(u64, u32)> = None;
        for &m in &self.missing {
            if let Some(op) = self.answered.get(m as usize) {
                if best.is_none_or(|(r, _)| op.return_ns < r) {
                    best = Some((op.return_ns, m));
                }
            }
        }
        let mut end = self.frontier;
        while let Some(op) = self.answered.get(end as usize) {
            // Calls are sorted, so once one is past the earliest return all later ones are.
            if best.is_some_and(|(r, _)| op.call_ns > r) {
                break;
            }
            if best.is_none_or(|(r, _)| op.return_ns < r) {
                best = Some((op.return_ns, end));
            }
            end += 1;
        }
        best.map(|(min_return_ns, blocker)| Window {
            min_return_ns,
            blocker,
            end,
        })
    }

    /// Operations worth trying next, in call order.
    ///
    /// Besides the read and unanswered reductions below, mutations are grouped into classes
    /// of equal effect on
    /// the future: the same value, or any value no pending read observed (`UNREAD`). Of a
    /// class only the one with the earliest return is tried: if a valid continuation starts
    /// with another member, swapping the two is still valid (the earlier-returning one goes
    /// first; everything placed before the other one's old position was called before that
    /// one returned). Without this, `k` concurrent deletes would be tried in `2^k` subsets.
    fn candidates(&self, w: &Window) -> Vec<u32> {
        // (class, return, id) of each candidate mutation.
        let mut mutations: Vec<(u32, u64, u32)> = Vec::new();
        let mut read_values = Vec::new();
        let mut missing_read_values: Vec<u32> = self
            .missing
            .iter()
            .filter_map(|&m| match self.answered.get(m as usize)?.effect {
                Effect::Read(v) => Some(v),
                Effect::Write(_) => None,
            })
            .collect();
        missing_read_values.sort_unstable();
        missing_read_values.dedup();
        let class_of = |v: u32| {
            let read_past_frontier = self
                .by_value
                .get(v as usize)
                .and_then(|index| index.reads.last())
                .is_some_and(|&last| last >= self.frontier);
            if read_past_frontier || missing_read_values.binary_search(&v).is_ok() {
                v
            } else {
                UNREAD
            }
        };
        let past_frontier = self.frontier..w.end;
        for id in self.missing.iter().copied().chain(past_frontier) {
            let Some(op) = self.answered.get(id as usize) else {
                continue;
            };
            if op.call_ns > w.min_return_ns {
                continue;
            }
            match op.effect {
                // A read of the current value goes next with no branching: nothing pending
                // must precede it and it changes nothing, so moving it to the front of a
                // valid continuation keeps that continuation valid.
                Effect::Read(v) if v == self.state => return vec![id],
                Effect::Read(v) => read_values.push(v),
                Effect::Write(v) => mutations.push((class_of(v), op.return_ns, id)),
            }
        }
        mutations.sort_unstable();
        mutations.dedup_by_key(|m| m.0);
        // When nobody pending awaits the current value either, a write nobody awaits can
        // go first with no branching: moved to the front of a valid continuation it is
        // followed by a mutation (no read can see the current value), and where it was, no
        // read saw it. This keeps pending blind writes from multiplying configurations.
        if let Some(&(UNREAD, _, id)) = mutations.last() {
            if class_of(self.state) == UNREAD {
                return vec![id];
            }
        }
        let mut chosen: Vec<u32> = mutations.iter().map(|m| m.2).collect();
        if !self.unanswered.is_empty() && !read_values.is_empty() {
            read_values.sort_unstable();
            read_values.dedup();
            // An unanswered mutation only right before a read that can observe it (placed
            // anywhere else, no read sees it before the next mutation, so it can be removed), and only when no answered candidate produces the same value (that one
            // must take effect anyway and dominates by the argument above). Of several
            // unanswered producers already called, the first suffices: each stays callable
            // from now on, so they are interchangeable.
            for &v in &read_values {
                if mutations.binary_search_by_key(&v, |m| m.0).is_ok() {
                    continue;
                }
                let Some(index) = self.by_value.get(v as usize) else {
                    continue;
                };
                let first = index
                    .unanswered_producers
                    .iter()
                    .copied()
                    .find(|&id| !self.linearized.get(id as usize).copied().unwrap_or(true));
                if let Some(id) = first {
                    if self.op(id).is_some_and(|op| op.call_ns <= w.min_return_ns) {
                        chosen.push(id);
                    }
                }
            }
        }
        chosen.sort_unstable();
        chosen
    }

    /// The configuration: register value and the set of linearized operations — the
    /// answered part as (frontier, missing), then the unanswered ones linearized that could
    /// still matter (see `useful_until`). Answered ids are below `answered.len()` and
    /// unanswered ids at or above it, so the encoding is unambiguous.
    fn cache_key(&self) -> Box<[u32]> {
        let oldest_pending = self.missing.first().copied().unwrap_or(self.frontier);
        let na = self.answered.len();
        let mut unanswered: Vec<u32> = self
            .unanswered_done
            .iter()
            .copied()
            .filter(|&id| {
                let k = (id as usize).saturating_sub(na);
                self.useful_until
                    .get(k)
                    .is_some_and(|&last| last >= oldest_pending)
            })
            .collect();
        unanswered.sort_unstable();
        let mut key = Vec::with_capacity(2 + self.missing.len() + unanswered.len());
        // A value no pending read observed can never be read again: only a mutation can
        // follow it, and it cannot strand anything. All such values lead to the same future,
        // so they share one id here — this is what merges the many orders of concurrent
        // writes nobody (or nobody any more) reads.
        key.push(if self.awaited(self.state) {
            self.state
        } else {
            UNREAD
        });
        key.push(self.frontier);
        key.extend_from_slice(&self.missing);
        key.extend_from_slice(&unanswered);
        key.into_boxed_slice()
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
mod tests {
    use super::*;

    const K: &[u8] = b"k";

    fn write(client: u64, value: &str, call_ns: u64, return_ns: Option<u64>) -> Operation {
        write_key(K, client, value, call_ns, return_ns)
    }

    fn write_key(
        key: &[u8],
        client: u64,
        value: &str,
        call_ns: u64,
        return_ns: Option<u64>,
    ) -> Operation {
        Operation {
            client,
            key: key.to_vec(),
            kind: OpKind::Write {
                value: value.as_bytes().to_vec(),
            },
            call_ns,
            return_ns,
        }
    }

    fn read(
        client: u64,
        observed: Option<&str>,
        call_ns: u64,
        return_ns: Option<u64>,
    ) -> Operation {
        read_key(K, client, observed, call_ns, return_ns)
    }

    fn read_key(
        key: &[u8],
        client: u64,
        observed: Option<&str>,
        call_ns: u64,
        return_ns: Option<u64>,
    ) -> Operation {
        Operation {
            client,
            key: key.to_vec(),
            kind: OpKind::Read {
                observed: observed.map(|s| s.as_bytes().to_vec()),
            },
            call_ns,
            return_ns,
        }
    }

    fn delete(client: u64, call_ns: u64, return_ns: Option<u64>) -> Operation {
        Operation {
            client,
            key: K.to_vec(),
            kind: OpKind::Delete,
            call_ns,
            return_ns,
        }
    }

    fn check(ops: &[Operation]) -> Verdict {
        check_history(ops, &CheckerConfig::default())
    }

    fn assert_fails_on(v: &Verdict, key: &[u8]) -> String {
        match v {
            Verdict::NotLinearizable {
                key: k,
                explanation,
            } => {
                assert_eq!(k.as_slice(), key, "{v}");
                explanation.clone()
            }
            other => panic!("expected NotLinearizable on {key:?}, got {other:?}"),
        }
    }

    /// xorshift64*: enough randomness for test histories, fixed seed, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn new(seed: u64) -> Self {
            XorShift(seed.max(1))
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform-enough in `0..n` (n > 0).
        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    #[test]
    fn empty_history_and_unanswered_reads_are_linearizable() {
        assert_eq!(check(&[]), Verdict::Linearizable);
        // An unanswered read's "observed" value is meaningless and must be ignored.
        let ops = [read(1, Some("never"), 0, None)];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn sequential_linearizable() {
        let ops = [
            read(1, None, 0, Some(10)),
            write(1, "a", 20, Some(30)),
            read(2, Some("a"), 40, Some(50)),
            write(2, "b", 60, Some(70)),
            read(1, Some("b"), 80, Some(90)),
            delete(1, 100, Some(110)),
            read(2, None, 120, Some(130)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn sequential_read_of_never_written_value_rejected() {
        let ops = [
            write(1, "a", 0, Some(10)),
            read(2, Some("zzz"), 20, Some(30)),
        ];
        let why = assert_fails_on(&check(&ops), K);
        assert!(why.contains("\"zzz\""), "{why}");
        assert!(why.contains("client 2"), "{why}");
    }

    #[test]
    fn concurrent_write_and_read_may_see_old_or_new_value() {
        for observed in [None, Some("a")] {
            let ops = [
                write(1, "a", 0, Some(100)),
                read(2, observed, 50, Some(150)),
            ];
            assert_eq!(check(&ops), Verdict::Linearizable, "read saw {observed:?}");
        }
        // Overlapping writes: a later read may see either, but then a still later one must
        // not go back.
        let ops = [
            write(1, "a", 0, Some(100)),
            write(2, "b", 10, Some(90)),
            read(3, Some("a"), 200, Some(210)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
        let ops = [
            write(1, "a", 0, Some(100)),
            write(2, "b", 10, Some(90)),
            read(3, Some("a"), 200, Some(210)),
            read(3, Some("b"), 220, Some(230)),
        ];
        assert_fails_on(&check(&ops), K);
    }

    #[test]
    fn stale_read_after_two_completed_writes_rejected() {
        let ops = [
            write(1, "1", 0, Some(10)),
            write(1, "2", 20, Some(30)),
            read(2, Some("1"), 40, Some(50)),
        ];
        let why = assert_fails_on(&check(&ops), K);
        assert!(why.contains("observed \"1\""), "{why}");
        assert!(why.contains("write of \"2\""), "{why}");
    }

    #[test]
    fn read_your_writes_violation_across_clients_rejected() {
        // Client 1's write completes; client 2 then reads, starting after it, and misses it.
        let ops = [write(1, "x", 0, Some(10)), read(2, None, 11, Some(20))];
        // Only the search can see this one (absent is the initial value): its explanation
        // names the furthest it got.
        let why = assert_fails_on(&check(&ops), K);
        assert!(why.contains("longest valid prefix"), "{why}");
        assert!(why.contains("strand read by client 2"), "{why}");
        // Client 1 overwrites, client 2 (strictly later) sees the old value, client 1 the new.
        let ops = [
            write(1, "1", 0, Some(10)),
            write(1, "2", 20, Some(30)),
            read(1, Some("2"), 31, Some(40)),
            read(2, Some("1"), 41, Some(50)),
        ];
        assert_fails_on(&check(&ops), K);
    }

    #[test]
    fn touching_intervals_are_concurrent() {
        // The write returns in the same nanosecond the read is called: no order between them.
        let ops = [write(1, "x", 0, Some(10)), read(2, None, 10, Some(20))];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn unanswered_write_seen_later_is_linearizable() {
        let ops = [
            write(1, "a", 0, Some(10)),
            write(2, "b", 20, None),
            read(3, Some("a"), 30, Some(40)),
            read(3, Some("b"), 1_000, Some(1_010)),
            read(4, Some("b"), 2_000, Some(2_010)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn unanswered_write_may_never_take_effect() {
        let ops = [
            write(1, "a", 0, Some(10)),
            write(2, "b", 20, None),
            read(3, Some("a"), 30, Some(40)),
            read(3, Some("a"), 1_000, Some(1_010)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
        // Once seen, it took effect and cannot be undone by nothing.
        let ops = [
            write(1, "a", 0, Some(10)),
            write(2, "b", 20, None),
            read(3, Some("b"), 30, Some(40)),
            read(3, Some("a"), 1_000, Some(1_010)),
        ];
        assert_fails_on(&check(&ops), K);
    }

    #[test]
    fn unanswered_write_seen_before_its_call_rejected() {
        let ops = [read(3, Some("b"), 0, Some(10)), write(2, "b", 20, None)];
        let why = assert_fails_on(&check(&ops), K);
        assert!(
            why.contains("before any operation producing \"b\""),
            "{why}"
        );
    }

    #[test]
    fn delete_semantics() {
        let ops = [
            write(1, "a", 0, Some(10)),
            delete(1, 20, Some(30)),
            read(2, None, 40, Some(50)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
        let ops = [
            write(1, "a", 0, Some(10)),
            delete(1, 20, Some(30)),
            read(2, Some("a"), 40, Some(50)),
        ];
        assert_fails_on(&check(&ops), K);
        // An unanswered delete explains a later "not found"...
        let ops = [
            write(1, "a", 0, Some(10)),
            delete(1, 20, None),
            read(2, None, 40, Some(50)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
        // ...but not one before it was issued.
        let ops = [
            write(1, "a", 0, Some(10)),
            read(2, None, 15, Some(18)),
            delete(1, 20, None),
        ];
        assert_fails_on(&check(&ops), K);
    }

    #[test]
    fn check_key_respects_initial_value() {
        let r = read(1, Some("init"), 0, Some(10));
        let cfg = CheckerConfig::default();
        assert_eq!(
            check_key(&[&r], Some(b"init".to_vec()), &cfg),
            KeyVerdict::Linearizable
        );
        assert!(matches!(
            check_key(&[&r], None, &cfg),
            KeyVerdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn multi_key_names_the_bad_key() {
        let ops = [
            write_key(b"good", 1, "1", 0, Some(10)),
            write_key(b"bad", 1, "1", 0, Some(10)),
            write_key(b"bad", 1, "2", 20, Some(30)),
            read_key(b"good", 2, Some("1"), 40, Some(50)),
            read_key(b"bad", 2, Some("1"), 40, Some(50)),
        ];
        assert_fails_on(&check(&ops), b"bad");
        // With two bad keys, the smaller one is reported whatever the input order.
        let mut ops = ops.to_vec();
        ops.push(read_key(b"aaa", 3, Some("ghost"), 0, Some(1)));
        assert_fails_on(&check(&ops), b"aaa");
        ops.reverse();
        assert_fails_on(&check(&ops), b"aaa");
    }

    /// `writers` writes of distinct values and as many reads, all concurrent, the reads
    /// seeing the values in reverse order: linearizable, but the first orders tried write
    /// everything before reading anything.
    fn pathological(writers: u64) -> Vec<Operation> {
        let mut ops = Vec::new();
        for i in 0..writers {
            ops.push(write(i, &format!("v{i}"), i, Some(1_000 + i)));
        }
        for i in 0..writers {
            let v = format!("v{}", writers - 1 - i);
            ops.push(read(100 + i, Some(&v), 2 * i, Some(1_000 + 2 * i)));
        }
        ops
    }

    #[test]
    fn tiny_budget_gives_undecided_never_a_wrong_verdict() {
        let ops = pathological(12);
        let tiny = CheckerConfig {
            max_states_per_key: 20,
        };
        assert_eq!(
            check_history(&ops, &tiny),
            Verdict::Undecided {
                key: K.to_vec(),
                states_explored: 20
            }
        );
        assert_eq!(check(&ops), Verdict::Linearizable);
        // A zero budget still decides what needs no search.
        let zero = CheckerConfig {
            max_states_per_key: 0,
        };
        assert_eq!(check_history(&[], &zero), Verdict::Linearizable);
        let ghost = [read(1, Some("ghost"), 0, Some(1))];
        assert_fails_on(&check_history(&ghost, &zero), K);
        // A proven failure on another key wins over an undecided key.
        let mut ops = ops;
        ops.push(read_key(b"z", 1, Some("ghost"), 0, Some(1)));
        assert_fails_on(&check_history(&ops, &tiny), b"z");
    }

    #[test]
    fn malformed_return_before_call_does_not_panic() {
        let ops = [write(1, "a", 0, Some(10)), read(2, Some("a"), 50, Some(40))];
        let why = assert_fails_on(&check(&ops), K);
        assert!(why.starts_with("malformed: return before call"), "{why}");
        // Extreme values anywhere must not overflow.
        let ops = [
            write(1, "a", u64::MAX, Some(u64::MAX)),
            read(2, Some("a"), u64::MAX, Some(0)),
            read(2, Some("a"), 0, Some(u64::MAX)),
            delete(3, u64::MAX, None),
        ];
        let _ = check(&ops);
        let ops = [
            write(1, "a", u64::MAX, Some(u64::MAX)),
            read(2, Some("a"), 0, Some(u64::MAX)),
            read(2, None, u64::MAX, Some(u64::MAX)),
        ];
        assert_eq!(check(&ops), Verdict::Linearizable);
    }

    #[test]
    fn binary_values_are_shown_as_hex() {
        let ops = [Operation {
            client: 7,
            key: vec![0, 1],
            kind: OpKind::Read {
                observed: Some(vec![0xff, 0x00]),
            },
            call_ns: 0,
            return_ns: Some(1),
        }];
        let v = check(&ops);
        let why = assert_fails_on(&v, &[0, 1]);
        assert!(why.contains("0xff00"), "{why}");
        assert!(v.to_string().contains("key 0x0001"), "{v}");
    }

    /// Simulates an atomic map: each operation takes effect at a strictly increasing
    /// instant, and its call and return are drawn around that instant (so operations
    /// overlap). Some answers are lost (unanswered), some unanswered writes never take
    /// effect. The result is linearizable by construction.
    fn linearizable_history(
        rng: &mut XorShift,
        op_count: usize,
        key_count: u64,
        spread_ns: u64,
    ) -> Vec<Operation> {
        let mut registers: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut ops = Vec::with_capacity(op_count);
        let mut at_ns = spread_ns;
        for i in 0..op_count {
            at_ns += 1 + rng.below(20);
            let key = format!("key{}", rng.below(key_count)).into_bytes();
            let call_ns = at_ns - rng.below(spread_ns + 1);
            let answered = !rng.chance(5);
            let return_ns = answered.then(|| at_ns + rng.below(spread_ns + 1));
            let client = rng.below(8);
            let register = registers.entry(key.clone()).or_default();
            let kind = match rng.below(100) {
                0..=44 => OpKind::Read {
                    observed: register.clone(),
                },
                45..=84 => {
                    let value = format!("v{i}").into_bytes();
                    *register = Some(value.clone());
                    OpKind::Write { value }
                }
                85..=96 => {
                    *register = None;
                    OpKind::Delete
                }
                _ => {
                    // Lost before taking effect: unanswered, no effect on the register.
                    ops.push(Operation {
                        client,
                        key,
                        kind: OpKind::Write {
                            value: format!("lost{i}").into_bytes(),
                        },
                        call_ns,
                        return_ns: None,
                    });
                    continue;
                }
            };
            ops.push(Operation {
                client,
                key,
                kind,
                call_ns,
                return_ns,
            });
        }
        ops
    }

    #[test]
    fn randomized_linearizable_histories_accepted_and_corruption_rejected() {
        let mut rng = XorShift::new(0x5eed_1234);
        for round in 0..200 {
            let op_count = 1 + rng.below(300) as usize;
            let key_count = 1 + rng.below(4);
            let spread_ns = rng.below(120);
            let mut ops = linearizable_history(&mut rng, op_count, key_count, spread_ns);
            assert_eq!(check(&ops), Verdict::Linearizable, "round {round}: {ops:?}");
            // Shuffling the input changes nothing.
            ops.reverse();
            assert_eq!(check(&ops), Verdict::Linearizable, "round {round} reversed");

            let reads: Vec<usize> = (0..ops.len())
                .filter(|&i| {
                    matches!(ops[i].kind, OpKind::Read { .. }) && ops[i].return_ns.is_some()
                })
                .collect();
            if reads.is_empty() {
                continue;
            }
            let victim = reads[rng.below(reads.len() as u64) as usize];
            ops[victim].kind = OpKind::Read {
                observed: Some(b"never written".to_vec()),
            };
            let key = ops[victim].key.clone();
            let why = assert_fails_on(&check(&ops), &key);
            assert!(why.contains("never written"), "{why}");
        }
    }

    #[test]
    fn large_history_needs_few_states_per_operation() {
        // Thousands of operations on one key, from one to ~50 open at any instant: the
        // search must not backtrack much. A state budget instead of a timer keeps this
        // deterministic; release-mode time for each is a few milliseconds.
        let mut rng = XorShift::new(42);
        for (spread_ns, states_per_op) in [(0, 2), (30, 2), (120, 2), (500, 4)] {
            let ops = linearizable_history(&mut rng, 5_000, 1, spread_ns);
            let cfg = CheckerConfig {
                max_states_per_key: states_per_op * ops.len() as u64,
            };
            assert_eq!(
                check_history(&ops, &cfg),
                Verdict::Linearizable,
                "spread {spread_ns}"
            );
        }
    }

    #[test]
    fn stale_read_in_large_concurrent_history_rejected_quickly() {
        let mut rng = XorShift::new(99);
        for spread_ns in [30, 500] {
            let mut ops = linearizable_history(&mut rng, 5_000, 1, spread_ns);
            let answered_write =
                |o: &Operation| matches!(o.kind, OpKind::Write { .. }) && o.return_ns.is_some();
            // A read in the second half, a write that completed before it was called, and
            // an older write that completed before that one was called: the read now sees
            // the older write's (unique) value, which was certainly overwritten.
            let read = (ops.len() / 2..ops.len())
                .find(|&i| matches!(ops[i].kind, OpKind::Read { .. }) && ops[i].return_ns.is_some())
                .expect("generator makes reads");
            let newer = (0..ops.len())
                .filter(|&i| answered_write(&ops[i]) && ops[i].return_ns < Some(ops[read].call_ns))
                .max_by_key(|&i| ops[i].call_ns)
                .expect("writes before the read");
            let older = (0..ops.len())
                .filter(|&i| answered_write(&ops[i]) && ops[i].return_ns < Some(ops[newer].call_ns))
                .max_by_key(|&i| ops[i].call_ns)
                .expect("writes before that one");
            let OpKind::Write { value } = ops[older].kind.clone() else {
                unreachable!()
            };
            ops[read].kind = OpKind::Read {
                observed: Some(value),
            };
            // The zone pre-check needs no search at all...
            let no_search = CheckerConfig {
                max_states_per_key: 0,
            };
            let why = assert_fails_on(&check_history(&ops, &no_search), b"key0");
            assert!(why.contains("produced only once"), "{why}");
            // ...and the search alone refutes it too when concurrency is moderate.
            if spread_ns <= 30 {
                let refs: Vec<&Operation> = ops.iter().collect();
                let tuning = Tuning {
                    max_cache_words: MAX_CACHE_WORDS,
                    zones: false,
                };
                let cfg = CheckerConfig {
                    max_states_per_key: 10 * ops.len() as u64,
                };
                assert!(matches!(
                    check_key_tuned(&refs, None, &cfg, tuning),
                    KeyVerdict::NotLinearizable { .. }
                ));
            }
        }
    }

    /// Reference checker, written for obviousness rather than speed: a search over every
    /// order of the answered operations plus any subset of the unanswered writes/deletes,
    /// memoized on (set done, value), with none of the reductions. At most 64 operations.
    fn reference(ops: &[Operation]) -> bool {
        let ops: Vec<&Operation> = ops
            .iter()
            .filter(|o| o.return_ns.is_some() || !matches!(o.kind, OpKind::Read { .. }))
            .collect();
        assert!(ops.len() <= 64);
        let must = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.return_ns.is_some())
            .fold(0u64, |m, (i, _)| m | 1 << i);
        let mut seen = std::collections::BTreeSet::new();
        reference_from(&ops, must, 0, None, &mut seen)
    }

    fn reference_from(
        ops: &[&Operation],
        must: u64,
        done: u64,
        state: Option<Vec<u8>>,
        seen: &mut std::collections::BTreeSet<(u64, Option<Vec<u8>>)>,
    ) -> bool {
        if done & must == must {
            return true;
        }
        if !seen.insert((done, state.clone())) {
            return false;
        }
        let pending = |j: usize| done & (1 << j) == 0;
        for i in (0..ops.len()).filter(|&i| pending(i)) {
            let blocked = (0..ops.len()).any(|j| {
                j != i && pending(j) && ops[j].return_ns.is_some_and(|r| r < ops[i].call_ns)
            });
            if blocked {
                continue;
            }
            let next = match &ops[i].kind {
                OpKind::Read { observed } if *observed == state => state.clone(),
                OpKind::Read { .. } => continue,
                OpKind::Write { value } => Some(value.clone()),
                OpKind::Delete => None,
            };
            if reference_from(ops, must, done | 1 << i, next, seen) {
                return true;
            }
        }
        false
    }

    fn random_op(rng: &mut XorShift, client: u64, horizon_ns: u64, values: &[&str]) -> Operation {
        let call_ns = rng.below(horizon_ns);
        let return_ns = (!rng.chance(15)).then(|| call_ns + rng.below(10));
        let pick = |rng: &mut XorShift| {
            values[rng.below(values.len() as u64) as usize]
                .as_bytes()
                .to_vec()
        };
        let kind = match rng.below(3) {
            0 => OpKind::Read {
                observed: (!rng.chance(25)).then(|| pick(rng)),
            },
            1 => OpKind::Write { value: pick(rng) },
            _ => OpKind::Delete,
        };
        Operation {
            client,
            key: K.to_vec(),
            kind,
            call_ns,
            return_ns,
        }
    }

    fn assert_agrees(ops: &[Operation], label: &str) -> bool {
        let expected = reference(ops);
        let got = check(ops);
        assert!(
            !matches!(got, Verdict::Undecided { .. }),
            "{label}: {got:?}"
        );
        assert_eq!(
            got.is_linearizable(),
            expected,
            "{label}: {ops:?} -> {got:?}"
        );
        // Without the zone pre-check, or without memoization (which may then run out of
        // budget, but must never answer wrongly), the answer is the same.
        let refs: Vec<&Operation> = ops.iter().collect();
        for tuning in [
            Tuning {
                max_cache_words: MAX_CACHE_WORDS,
                zones: false,
            },
            Tuning {
                max_cache_words: 0,
                zones: true,
            },
        ] {
            let cfg = CheckerConfig {
                max_states_per_key: 100_000,
            };
            match check_key_tuned(&refs, None, &cfg, tuning) {
                KeyVerdict::Linearizable => assert!(expected, "{tuning:?}, {label}: {ops:?}"),
                KeyVerdict::NotLinearizable { .. } => {
                    assert!(!expected, "{tuning:?}, {label}: {ops:?}")
                }
                KeyVerdict::Undecided { .. } => assert!(tuning.max_cache_words == 0, "{label}"),
            }
        }
        expected
    }

    #[test]
    fn agrees_with_reference_on_random_histories() {
        let mut rng = XorShift::new(7);
        let (mut accepted, mut rejected) = (0, 0);
        // Small random histories, with duplicate values, touching intervals and lost
        // answers: the corner cases of every reduction.
        for round in 0..20_000 {
            let n = 1 + rng.below(12);
            let values: &[&str] = if rng.chance(50) {
                &["a", "b"]
            } else {
                &["a", "b", "c"]
            };
            let horizon_ns = 1 + n * rng.below(5);
            let ops: Vec<Operation> = (0..n)
                .map(|i| random_op(&mut rng, i, horizon_ns, values))
                .collect();
            if assert_agrees(&ops, &format!("random round {round}")) {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        // Linearizable histories of up to 40 operations with one read's answer replaced by
        // another value of the history: often still linearizable, often not, rarely caught
        // by the pre-check alone.
        for round in 0..3_000 {
            let n = 1 + rng.below(40) as usize;
            let spread_ns = rng.below(60);
            let mut ops = linearizable_history(&mut rng, n, 1, spread_ns);
            let reads: Vec<usize> = (0..ops.len())
                .filter(|&i| matches!(ops[i].kind, OpKind::Read { .. }))
                .collect();
            if !reads.is_empty() && rng.chance(80) {
                let victim = reads[rng.below(reads.len() as u64) as usize];
                let donor = &ops[rng.below(ops.len() as u64) as usize];
                let observed = match &donor.kind {
                    OpKind::Read { observed } => observed.clone(),
                    OpKind::Write { value } => Some(value.clone()),
                    OpKind::Delete => None,
                };
                ops[victim].kind = OpKind::Read { observed };
            }
            if assert_agrees(&ops, &format!("perturbed round {round}")) {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        // The generators must exercise both answers.
        assert!(
            accepted > 2_000 && rejected > 2_000,
            "{accepted} accepted, {rejected} rejected"
        );
    }
}
