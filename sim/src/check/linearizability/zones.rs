//! The zone pre-check (Gibbons & Korach): stale reads found in O(n log n), before any
//! search.

use super::*;

/// Value id of "absent" in the interned value table.
pub(super) const ABSENT: u32 = 0;

/// The period a value produced exactly once must have been current (Gibbons & Korach's
/// "forward zone"): its producer takes effect no later than the earliest return among the
/// producer and its reads (`from_ns`), and its last read no earlier than the latest call
/// among them (`to_ns`); with nothing else producing the value, no mutation can take effect
/// in between.
#[derive(Clone, Copy, Debug)]
pub(super) struct Zone {
    pub(super) value: u32,
    pub(super) producer: Op,
    pub(super) from_ns: u64,
    pub(super) from_op: Op,
    pub(super) to_ns: u64,
    pub(super) to_op: Op,
}

pub(super) enum ZoneViolation {
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
pub(super) fn zone_violation(
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
