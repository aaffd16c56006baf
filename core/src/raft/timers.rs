//! The replica's own deadlines in one table (quinn-proto `connection/timer.rs`), and which
//! role each one runs in. Deadlines that belong to a structure (the unordered buffer's
//! expiry, recovery retries) are asked of that structure.

use super::Role;
use crate::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Follower or candidate: no word from a leader this long starts an election.
    Election = 0,
    /// Leader: AppendEntries (or a switch heartbeat) to every follower.
    Heartbeat = 1,
    /// HovercRaft++ leader: no group reply for the batch in flight makes it fall back.
    SwitchReply = 2,
    /// HovercRaft++ leader in fall-back: probe the switch to return to it.
    SwitchProbe = 3,
    /// Leader with check-quorum: when its proof of a live majority runs out (it then steps
    /// down unless fresher proof arrived meanwhile).
    CheckQuorum = 4,
}

impl Timer {
    const COUNT: usize = 5;
    const ALL: [Timer; Timer::COUNT] = [
        Timer::Election,
        Timer::Heartbeat,
        Timer::SwitchReply,
        Timer::SwitchProbe,
        Timer::CheckQuorum,
    ];

    /// Whether this timer means anything in `role` (a stale deadline of another role is kept
    /// but never fires).
    fn runs_as(self, role: Role) -> bool {
        match self {
            Timer::Election => role != Role::Leader,
            Timer::Heartbeat | Timer::SwitchReply | Timer::SwitchProbe | Timer::CheckQuorum => {
                role == Role::Leader
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// Whether `timer` is set and due at `now`.
    pub fn expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| t <= now)
    }

    /// The earliest deadline that runs in `role`.
    pub fn next(&self, role: Role) -> Option<Instant> {
        Timer::ALL
            .iter()
            .filter(|t| t.runs_as(role))
            .filter_map(|&t| self.get(t))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_skips_the_timers_of_other_roles() {
        let mut t = TimerTable::default();
        t.set(Timer::Election, Instant::from_ns(5));
        t.set(Timer::Heartbeat, Instant::from_ns(3));
        assert_eq!(t.next(Role::Follower), Some(Instant::from_ns(5)));
        assert_eq!(t.next(Role::Leader), Some(Instant::from_ns(3)));
        t.stop(Timer::Heartbeat);
        assert_eq!(t.next(Role::Leader), None);
        assert!(t.expired(Timer::Election, Instant::from_ns(5)));
        assert!(!t.expired(Timer::Heartbeat, Instant::from_ns(5)));
    }
}
