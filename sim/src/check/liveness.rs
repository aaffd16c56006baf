//! Liveness (phase 2, as in TigerBeetle's VOPR): every request sent once the faults healed
//! and the cluster had time to settle is answered, and at the end all live replicas applied
//! the same log and hold the same state.

use super::checker::{Checker, Event};
use super::Report;
use crate::world::World;

pub struct Liveness {
    /// Requests sent from here on must be answered.
    from_ns: u64,
    /// Requests of the liveness phase that timed out.
    timeouts: u64,
}

impl Liveness {
    pub fn new(from_ns: u64) -> Liveness {
        Liveness {
            from_ns,
            timeouts: 0,
        }
    }

    /// Requests of the liveness phase that were never answered.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }
}

impl Checker for Liveness {
    fn on_event(&mut self, ev: &Event<'_>) {
        if let Event::TimedOut { tag, .. } = *ev {
            if tag >= self.from_ns {
                self.timeouts += 1;
            }
        }
    }

    fn finish(&self, w: &World, r: &mut Report) {
        if self.timeouts > 0 {
            r.liveness.push(format!(
                "{} requests sent after the faults healed were never answered",
                self.timeouts
            ));
        }
        let state: Vec<(usize, u64, u64)> = w
            .live_servers()
            .iter()
            .filter_map(|&h| {
                let n = w.node(h)?;
                Some((
                    h,
                    n.replica().map_or(0, |r| r.applied_index()),
                    n.app_digest(),
                ))
            })
            .collect();
        if let Some(&(_, applied, digest)) = state.first() {
            if state.iter().any(|&(_, a, _)| a != applied) {
                r.liveness.push(format!(
                    "replicas did not converge: applied indexes {state:?}"
                ));
            } else if state.iter().any(|&(_, _, d)| d != digest) {
                r.safety.push(format!(
                    "replicas applied the same log but hold different state: {state:?}"
                ));
            }
        }
    }
}
