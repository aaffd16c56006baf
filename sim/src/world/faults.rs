//! Fault injection: timed faults from the scenario (crashes, restarts, partitions, one-way
//! links, link chaos, slow storage, clock skew, switch failure). Network faults become
//! rules over links ([`crate::network::rule`], in the manner of turmoil); host faults act
//! on the host. Also the clock model behind clock skew.

use std::io::Write;

use super::{Ev, Role, World};
use crate::network::rule::{Chaos, Isolate, OneWay, Partition};
use crate::scenario::Direction;
use crate::scenario::Fault;
use crate::trace::trace;

/// A node's view of time: it may run fast or slow from some point on (clock skew).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock {
    pub(super) since_ns: u64,
    pub(super) base_ns: u64,
    pub(super) ppm: i64,
}

impl Clock {
    pub(super) fn to_node(self, t: u64) -> u64 {
        if self.ppm == 0 {
            // No skew (nearly every run): the same value without 128-bit arithmetic (the
            // i128 form below is non-negative here, and its cast to u64 wraps as this does).
            return self.base_ns.wrapping_add(t.saturating_sub(self.since_ns));
        }
        let d = t.saturating_sub(self.since_ns) as i128;
        (self.base_ns as i128 + d + d * self.ppm as i128 / 1_000_000).max(0) as u64
    }
    /// The simulated time at which the node's clock reads `tn` (rounded up).
    pub(super) fn sim_time_of(self, tn: u64) -> u64 {
        let d = tn as i128 - self.base_ns as i128;
        let real = if self.ppm == 0 {
            d
        } else {
            // Round up, so the node's clock has reached `tn` when the event fires.
            (d * 1_000_000 + 999_999 + self.ppm as i128) / (1_000_000 + self.ppm as i128)
        };
        (self.since_ns as i128 + real).max(0) as u64
    }
}

impl World {
    /// A fault that lasts to the end of the run leaves the servers it cuts off out of the
    /// healed core (the leader an `isolate_leader` takes is added when it is known).
    fn note_impaired_for_good(&mut self, f: &Fault) {
        let cut: Vec<usize> = match f {
            // Everyone outside the largest group (all of them if no group is a majority).
            Fault::Partition { groups, .. } => {
                let majority = self.n_servers / 2 + 1;
                let listed: Vec<u32> = groups.iter().flatten().copied().collect();
                let unlisted: Vec<u32> = (0..self.n_servers as u32)
                    .filter(|n| !listed.contains(n))
                    .collect();
                let core = groups
                    .iter()
                    .chain(std::iter::once(&unlisted))
                    .find(|g| g.len() >= majority);
                (0..self.n_servers)
                    .filter(|&h| !core.is_some_and(|g| g.contains(&(h as u32))))
                    .collect()
            }
            Fault::OneWay { from, to, .. } => vec![*from as usize, *to as usize],
            Fault::LinkChaos { node, .. } => vec![*node as usize],
            _ => Vec::new(),
        };
        self.impaired_for_good.extend(cut);
        self.impaired_for_good.sort_unstable();
        self.impaired_for_good.dedup();
    }

    /// Puts every fault of the scenario on the event queue at its time.
    pub(super) fn schedule_faults(&mut self) {
        for (i, f) in self.scenario.faults.iter().enumerate() {
            self.q
                .schedule(f.at_ms() * 1_000_000, Ev::Fault { index: i as u32 });
        }
    }

    /// Restarts the leaders crashed by `CrashLeader` faults whose restart time has come.
    pub(super) fn on_restarts_due(&mut self, t: u64) {
        let due: Vec<usize> = self
            .pending_restarts
            .iter()
            .filter(|&&(at, _)| at <= t)
            .map(|&(_, h)| h)
            .collect();
        self.pending_restarts.retain(|&(at, _)| at > t);
        for h in due {
            self.restart(t, h);
        }
    }

    pub(super) fn on_fault(&mut self, t: u64, index: usize) {
        let f = self.scenario.faults[index].clone();
        trace!(self.tracer, t, "fault {f:?}");
        let takes_leader = match f {
            Fault::CrashNode { node, .. } => {
                self.leaders().iter().any(|&(h, _)| h == node as usize)
            }
            Fault::IsolateLeader { .. } | Fault::CrashLeader { .. } => !self.leaders().is_empty(),
            _ => false,
        };
        if takes_leader {
            self.leader_lost_at.get_or_insert(t);
        }
        self.note_story(t, format!("fault: {f:?}"));
        let until_ns = f.heal_ms().map_or(u64::MAX, |h| h * 1_000_000);
        if f.heal_ms().is_some_and(|h| h >= self.scenario.duration_ms) {
            self.note_impaired_for_good(&f);
        }
        match f {
            Fault::CrashNode { node, .. } => self.crash(node as usize),
            Fault::RestartNode { node, .. } => self.restart(t, node as usize),
            Fault::AggregatorDown { .. } => self.net.aggregator.fail(),
            Fault::AggregatorUp { .. } => self.net.aggregator.restart(),
            Fault::Partition { groups, .. } => {
                let mut group_of = vec![usize::MAX; self.n_servers];
                for (g, members) in groups.iter().enumerate() {
                    for &n in members {
                        group_of[n as usize] = g;
                    }
                }
                self.net
                    .add_rule(Box::new(Partition { until_ns, group_of }));
            }
            Fault::CrashLeader { restart_ms, .. } => {
                if let Some(&(leader, _)) = self.leaders().iter().max_by_key(|(_, term)| *term) {
                    self.crash(leader);
                    self.note_story(t, format!("node {leader} (the leader) crashes"));
                    self.pending_restarts.push((restart_ms * 1_000_000, leader));
                    self.q.schedule(restart_ms * 1_000_000, Ev::RestartsDue);
                }
            }
            Fault::IsolateLeader { direction, .. } => {
                if let Some(&(leader, _)) = self.leaders().iter().max_by_key(|(_, term)| *term) {
                    if until_ns >= self.scenario.duration_ms * 1_000_000 {
                        self.impaired_for_good.push(leader);
                    }
                    trace!(self.tracer, t, "isolate h{leader} {direction:?}");
                    self.net.add_rule(Box::new(Isolate {
                        until_ns,
                        node: leader,
                        servers: self.n_servers,
                        inbound: direction != Direction::Outbound,
                        outbound: direction != Direction::Inbound,
                    }));
                }
            }
            Fault::OneWay { from, to, .. } => self.net.add_rule(Box::new(OneWay {
                until_ns,
                from: from as usize,
                to: to as usize,
            })),
            Fault::LinkChaos {
                node,
                loss,
                duplicate,
                delay_max_us,
                delay_min_us,
                ..
            } => self.net.add_rule(Box::new(Chaos {
                until_ns,
                node: node as usize,
                loss,
                duplicate,
                delay_min_ns: delay_min_us * 1_000,
                delay_max_ns: delay_max_us * 1_000,
            })),
            Fault::StorageSlow {
                node,
                write_latency_ns,
                ..
            } => {
                if let Role::Server(s) = &mut self.hosts[node as usize].role {
                    s.storage.set_spike(until_ns, write_latency_ns);
                }
            }
            Fault::ClockSkew { node, ppm, .. } => {
                if let Role::Server(s) = &mut self.hosts[node as usize].role {
                    s.clock = Clock {
                        since_ns: t,
                        base_ns: s.clock.to_node(t),
                        ppm,
                    };
                }
            }
        }
    }
}
