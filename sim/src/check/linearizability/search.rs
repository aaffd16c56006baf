//! The search (Wing & Gong, with Lowe's just-in-time linearization and Porcupine's
//! memoization) over one key's operations, with the reductions the module docs describe.

use super::*;

/// Stands for any value no pending read observed, in cache keys. Never a real value id:
/// those are at most the operation count, which `check_key` keeps below `u32::MAX - 1`.
pub(super) const UNREAD: u32 = u32::MAX;

/// Values as u32 ids, so the search compares and hashes integers, never byte strings. Ids
/// follow first appearance in input order, so they are deterministic; the map is only
/// probed, never iterated.
pub(super) struct Interner<'v> {
    pub(super) ids: FxHashMap<&'v [u8], u32>,
    /// Indexed by id; id `ABSENT` is `None`.
    pub(super) values: Vec<Option<&'v [u8]>>,
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
    pub(super) fn intern(&mut self, v: Option<&'v [u8]>) -> u32 {
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
pub(super) enum Effect {
    /// Observed this value id.
    Read(u32),
    /// Set the register to this value id (`ABSENT` for a delete).
    Write(u32),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Op {
    pub(super) call_ns: u64,
    /// `u64::MAX` for unanswered operations, which are kept apart and never bound anything.
    pub(super) return_ns: u64,
    pub(super) effect: Effect,
    /// Index in the caller's slice, for explanations and a deterministic tie-break.
    pub(super) source: usize,
}

/// The furthest the search got, for explaining a failure.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deepest {
    /// Answered operations linearized.
    pub(super) linearized: u32,
    pub(super) state: u32,
    pub(super) stuck: Stuck,
}

impl Deepest {
    /// A step rejected because it strands a read got one step further than a dead end at
    /// the same depth, and names the read: prefer it.
    pub(super) fn rank(&self) -> (u32, u8) {
        match self.stuck {
            Stuck::Deadline { .. } => (self.linearized, 0),
            Stuck::Strands { .. } => (self.linearized, 1),
        }
    }
}

/// Why the search could not go past a configuration.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stuck {
    /// The pending answered operation with the earliest return: the one that had to take
    /// effect next at the latest.
    Deadline { blocker: u32 },
    /// Linearizing `op` next leaves `read` unsatisfiable (see `Search::stranded`).
    Strands { op: u32, read: u32 },
}

pub(super) enum Outcome {
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
pub(super) struct Undo {
    pub(super) op: u32,
    pub(super) state: u32,
    pub(super) frontier: u32,
}

/// One level of the search. Its candidates are not stored: they are a function of the
/// configuration, which backtracking restores exactly, so only the top frame's list is kept
/// and a parent's is recomputed when the search returns to it. This keeps the stack at
/// O(1) per level instead of O(concurrency).
pub(super) struct Frame {
    /// Index of the next candidate to try.
    pub(super) next: usize,
    /// The step that led to this frame (none for the root).
    pub(super) undo: Option<Undo>,
}

/// Memoization is only an optimization (a configuration explored twice gets the same
/// answer twice), so past this many cached u32 words (64 MiB) new configurations are no
/// longer remembered, which bounds memory whatever the concurrency; the state budget still
/// bounds time.
pub(super) const MAX_CACHE_WORDS: usize = 1 << 24;

/// The answered operations that bound the next step.
pub(super) struct Window {
    /// Earliest return among the answered operations not yet linearized: anything called
    /// later cannot go next.
    pub(super) min_return_ns: u64,
    pub(super) blocker: u32,
    /// Answered ids `frontier..end` are the not-yet-linearized ones past the frontier that
    /// were called by `min_return_ns`.
    pub(super) end: u32,
}

/// The search state for one key. Op ids: `0..answered.len()` are the answered operations in
/// call order, `answered.len() + k` is unanswered operation `k`.
pub(super) struct Search {
    pub(super) answered: Vec<Op>,
    pub(super) unanswered: Vec<Op>,
    pub(super) linearized: Vec<bool>,
    /// One past the highest linearized answered id (0 if none).
    pub(super) frontier: u32,
    /// Answered ids below `frontier` not yet linearized, ascending. Every one of them was
    /// pending when the operation at `frontier - 1` was called, so this stays as small as
    /// the concurrency — which is why the cache key uses it instead of a bitset over all
    /// operations.
    pub(super) missing: Vec<u32>,
    /// Register value id.
    pub(super) state: u32,
    /// Per value id, how to find who still needs it and who can still produce it.
    pub(super) by_value: Vec<ValueIndex>,
    /// Unanswered ids linearized, in the order they were (a stack, as steps are undone
    /// last-in first-out).
    pub(super) unanswered_done: Vec<u32>,
    /// Per unanswered operation `k`: the highest id of an answered read of its value. Once
    /// every answered id up to it is linearized, no read can use it any more (it is only
    /// tried right before a read of its value), so whether it was linearized no longer
    /// matters to the future of the search.
    pub(super) useful_until: Vec<u32>,
}

/// Per value, for `stranded`: ids ascending, so the part at or past the frontier (all not
/// linearized) is a suffix found by binary search.
#[derive(Default)]
pub(super) struct ValueIndex {
    /// Answered reads that observed the value.
    pub(super) reads: Vec<u32>,
    /// `suffix_earliest[i]` = (return, id) of the earliest-returning read in `reads[i..]`.
    pub(super) suffix_earliest: Vec<(u64, u32)>,
    /// Answered writes/deletes producing the value (ascending id = ascending call).
    pub(super) producers: Vec<u32>,
    /// Unanswered ones (ascending call).
    pub(super) unanswered_producers: Vec<u32>,
}

impl Search {
    pub(super) fn new(
        answered: Vec<Op>,
        unanswered: Vec<Op>,
        initial: u32,
        value_count: usize,
    ) -> Self {
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
    pub(super) fn stranded(&self, value: u32) -> Option<u32> {
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
    pub(super) fn awaited(&self, value: u32) -> bool {
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

    pub(super) fn answered_count(&self) -> u32 {
        // Bounded by the u32 check in `check_key`.
        u32::try_from(self.answered.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn op(&self, id: u32) -> Option<&Op> {
        let id = id as usize;
        match id.checked_sub(self.answered.len()) {
            None => self.answered.get(id),
            Some(k) => self.unanswered.get(k),
        }
    }

    pub(super) fn depth(&self) -> u32 {
        let missing = u32::try_from(self.missing.len()).unwrap_or(u32::MAX);
        self.frontier.saturating_sub(missing)
    }

    /// Depth-first search over linearization orders, iterative so a long history cannot
    /// overflow the call stack.
    pub(super) fn run(&mut self, budget: u64, max_cache_words: usize) -> Outcome {
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

    pub(super) fn apply(&mut self, id: u32, next_state: u32) -> Undo {
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

    pub(super) fn undo(&mut self, u: Undo) {
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
    pub(super) fn window(&self) -> Option<Window> {
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
    pub(super) fn candidates(&self, w: &Window) -> Vec<u32> {
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
    pub(super) fn cache_key(&self) -> Box<[u32]> {
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
