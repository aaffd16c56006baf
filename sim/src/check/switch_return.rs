//! HovercRaft++ returns to the switch (liveness of the fast path): once the aggregator is
//! back and every fault has healed, the leader of the healed core must be on the switch
//! path within [`return_bound_ns`] (two probe periods and 2 ms). The direct fall-back
//! answers every request too, so the request-level liveness check cannot see a leader that
//! never comes back; this one does (the bug of issue 14: a probe followers trailing under
//! load could never count).
//!
//! "Not checked" when the run is not HovercRaft++, the aggregator is down at the end, or
//! the run ends too soon after the heal (or after the last election) to tell.

use super::checker::{Checker, Event};
use super::Report;
use crate::scenario::Fault;
use crate::world::World;
use hovercraft_core::node::Mode;
use hovercraft_core::node::NodeEvent;
use hovercraft_core::raft::Role;

/// How soon after the heal the leader must be back on the switch path: two probe periods
/// (`raft.switch_probe_us`, 5 ms by default) and [`RETURN_SLACK_NS`]. The first probe after
/// the heal may still meet followers catching up from the faults; by the second they have
/// caught up. Measured over harsh seeds 0..10000: the slowest return took 11.2 ms (2.2
/// probe periods); with the `probe-needs-caught-up-followers` canary, at 30–60% of the ++
/// maximum, up to 15 ms (and never at 80% and more, `scenarios/faults`). The switch-reboot
/// story holds the tighter promise (back within 10 ms of the aggregator's return,
/// `sim/tests/fault_stories.rs`).
pub fn return_bound_ns(switch_probe_us: u64) -> u64 {
    2 * switch_probe_us * 1_000 + RETURN_SLACK_NS
}

/// Beyond two probe periods: a probe's round trip and the leader's queue under load.
pub const RETURN_SLACK_NS: u64 = 2_000_000;

#[derive(Default)]
pub struct SwitchReturn {
    /// Per server host: (time, on the switch path) at each change.
    changes: Vec<Vec<(u64, bool)>>,
    /// Per server host: when it last became leader.
    leading_since: Vec<u64>,
}

impl SwitchReturn {
    fn host(&mut self, host: usize) {
        if self.changes.len() <= host {
            self.changes.resize(host + 1, Vec::new());
            self.leading_since.resize(host + 1, 0);
        }
    }

    /// Whether `host` was on the switch path at some time in `from..=to` (a node starts on
    /// it).
    fn on_switch_within(&self, host: usize, from: u64, to: u64) -> bool {
        let changes = self.changes.get(host).map_or(&[][..], |c| &c[..]);
        let at_from = changes
            .iter()
            .take_while(|&&(t, _)| t <= from)
            .last()
            .is_none_or(|&(_, on)| on);
        at_from || changes.iter().any(|&(t, on)| on && t > from && t <= to)
    }
}

impl Checker for SwitchReturn {
    fn on_event(&mut self, ev: &Event<'_>) {
        if let Event::Node { t_ns, host, event } = *ev {
            match *event {
                NodeEvent::SwitchPath { via_switch, .. } => {
                    self.host(host);
                    self.changes[host].push((t_ns, via_switch));
                }
                NodeEvent::RoleChanged {
                    role: Role::Leader, ..
                } => {
                    self.host(host);
                    self.leading_since[host] = t_ns;
                }
                _ => {}
            }
        }
        if let Event::Restarted { t_ns, host } = *ev {
            // A restarted node starts on the switch path (its volatile state is new).
            self.host(host);
            self.changes[host].push((t_ns, true));
        }
    }

    fn finish(&self, w: &World, r: &mut Report) {
        let s = w.scenario();
        if s.mode != Mode::HovercraftPlusPlus {
            r.not_checked
                .push("not HovercRaft++ (no switch path)".into());
            return;
        }
        let duration_ns = s.duration_ms * 1_000_000;
        let mut aggregator_up_ns = 0;
        let mut aggregator_up = true;
        for f in &s.faults {
            match *f {
                Fault::AggregatorDown { .. } => aggregator_up = false,
                Fault::AggregatorUp { at_ms } => {
                    aggregator_up = true;
                    aggregator_up_ns = at_ms * 1_000_000;
                }
                _ => {}
            }
        }
        let healed_ns = super::healed_ms(s) * 1_000_000;
        if !aggregator_up {
            r.not_checked
                .push("the aggregator is down at the end of the run".into());
            return;
        }
        let core = w.core_servers();
        let Some(&(leader, term)) = w
            .leaders()
            .iter()
            .filter(|(h, _)| core.contains(h))
            .max_by_key(|&&(_, term)| term)
        else {
            r.not_checked
                .push("no leader in the healed core at the end".into());
            return;
        };
        let since = self.leading_since.get(leader).copied().unwrap_or(0);
        let from = aggregator_up_ns.max(healed_ns).max(since);
        let bound_ns = return_bound_ns(s.raft.switch_probe_us);
        let by = from + bound_ns;
        if by > duration_ns {
            r.not_checked.push(format!(
                "the run ends {} ms after the switch path could return: too soon to tell",
                duration_ns.saturating_sub(from) / 1_000_000
            ));
            return;
        }
        if !self.on_switch_within(leader, from, by) {
            r.liveness.push(format!(
                "leader h{leader} (term {term}) stayed on direct fan-out: not back on the switch path {} ms after it could return (aggregator up at {} ms, faults healed at {} ms, leading since {:.3} ms)",
                bound_ns as f64 / 1e6,
                aggregator_up_ns / 1_000_000,
                healed_ns / 1_000_000,
                since as f64 / 1e6
            ));
        }
    }
}
