//! Liveness (phase 2, as in TigerBeetle's VOPR): every request sent once the faults healed
//! and the cluster had time to settle is answered, most of them with a real reply (a cluster
//! that answers everything with DROP is up but not serving: harsh seed 9464 refused every
//! request for 130 ms and passed), and at the end all live replicas applied the same log and
//! hold the same state.
//!
//! The healed core is the servers up at the end that no lasting fault cuts off
//! (`World::core_servers`): a server crashed for good, or isolated until the end, is not
//! healed, and the core must make progress without it.
//! Liveness is "not checked" (never "ok") when it has nothing to prove: no request was sent
//! in the liveness phase (it starts past the end of the run), or the servers crashed for
//! good leave no majority up.

use super::checker::{Checker, Event};
use super::Report;
use crate::world::World;

pub struct Liveness {
    /// Requests sent from here on must be answered.
    from_ns: u64,
    /// Requests sent in the liveness phase.
    sent: u64,
    /// Requests of the liveness phase that timed out.
    timeouts: u64,
    /// Replies (not DROP) that arrived in the liveness phase.
    completed: u64,
    /// DROP answers that arrived in the liveness phase.
    refused: u64,
}

impl Liveness {
    pub fn new(from_ns: u64) -> Liveness {
        Liveness {
            from_ns,
            sent: 0,
            timeouts: 0,
            completed: 0,
            refused: 0,
        }
    }

    /// Requests of the liveness phase that were never answered.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Requests sent in the liveness phase.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl Checker for Liveness {
    fn on_event(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::RequestSent { t_ns, .. } if t_ns >= self.from_ns => self.sent += 1,
            Event::TimedOut { tag, .. } if tag >= self.from_ns => self.timeouts += 1,
            Event::Response { t_ns, .. } if t_ns >= self.from_ns => self.completed += 1,
            Event::Refused { t_ns, .. } if t_ns >= self.from_ns => self.refused += 1,
            _ => {}
        }
    }

    fn finish(&self, w: &World, r: &mut Report) {
        let live = w.core_servers();
        let majority = w.servers() / 2 + 1;
        // The application's state and the client sessions: both are replicated state (a
        // snapshot without the sessions left a follower's apart, canary
        // `snapshot-without-sessions`).
        let state: Vec<(usize, u64, u64)> = live
            .iter()
            .filter_map(|&h| {
                let n = w.node(h)?;
                let sessions = n.replica().map_or(0, |r| r.sessions_digest());
                Some((
                    h,
                    n.replica().map_or(0, |r| r.applied_index()),
                    n.app_digest() ^ sessions.rotate_left(1),
                ))
            })
            .collect();
        // Replicas that applied the same log must hold the same state, whatever else.
        if let Some(&(_, applied, digest)) = state.first() {
            if state.iter().all(|&(_, a, _)| a == applied)
                && state.iter().any(|&(_, _, d)| d != digest)
            {
                r.safety.push(format!(
                    "replicas applied the same log but hold different state: {state:?}"
                ));
            }
        }
        if live.len() < majority {
            r.not_checked.push(format!(
                "only {} of {} servers are up and reachable at the end (the others crashed or are cut off for good): no majority to make progress",
                live.len(),
                w.servers()
            ));
            return;
        }
        if self.sent == 0 {
            r.not_checked.push(format!(
                "no request was sent in the liveness phase (from {} ms)",
                self.from_ns / 1_000_000
            ));
            return;
        }
        if self.timeouts > 0 {
            r.liveness.push(format!(
                "{} of {} requests sent after the faults healed were never answered",
                self.timeouts, self.sent
            ));
        }
        // Replies counted by arrival, requests by sending: the two windows differ by one
        // round trip, which a rule of "at least half" does not notice. The swarm's worlds
        // run at most 60% of their maximum, where a healed cluster refuses little.
        if self.completed * 2 < self.sent {
            r.liveness.push(format!(
                "the healed cluster served too little: {} replies to {} requests sent after the faults healed ({} answered with DROP)",
                self.completed, self.sent, self.refused
            ));
        }
        if let Some(&(_, applied, _)) = state.first() {
            if state.iter().any(|&(_, a, _)| a != applied) {
                r.liveness.push(format!(
                    "replicas did not converge: applied indexes {state:?}"
                ));
            }
        }
    }
}
