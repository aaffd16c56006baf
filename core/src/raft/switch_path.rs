//! HovercRaft++ on the leader and followers: AppendEntries go once to the switch, which fans
//! them out and answers with one APPEND_ENTRIES_REP_GROUP when a majority holds them. The
//! leader's cost per batch then does not depend on the number of followers.
//!
//! If the switch stops answering (no group reply within `switch_timeout_us`), the leader
//! falls back to HovercRaft's direct fan-out/fan-in and probes the switch every
//! `switch_probe_us`; the first group reply brings it back. Correctness never depends on the
//! switch: it only counts, and both paths commit by the same Raft rules.

use super::timers::Timer;
use super::{Event, Replica, Role, Target};
use crate::time::{Duration, Instant};
use crate::types::Mode;
use crate::wire::raft::{GroupDone, NodeId, RaftBody};

impl Replica {
    /// A batch up to `last` went through the switch; its group reply is due within the switch
    /// time-out. The timer always runs for the oldest batch in flight.
    fn set_switch_in_flight(&mut self, last: u64, now: Instant) {
        if self.switch_in_flight.is_empty() {
            self.timers.set(
                Timer::SwitchReply,
                now + Duration::from_us(self.cfg.switch_timeout_us),
            );
        }
        self.switch_in_flight.push_back((last, now));
    }

    pub(crate) fn clear_switch_in_flight(&mut self) {
        self.switch_in_flight.clear();
        self.timers.stop(Timer::SwitchReply);
    }

    /// A majority holds everything up to `index`: the batches it covers are confirmed, and
    /// the time-out moves on to the oldest one still in flight.
    pub(crate) fn confirm_switch_in_flight(&mut self, index: u64) {
        let before = self.switch_in_flight.len();
        while self
            .switch_in_flight
            .front()
            .is_some_and(|&(last, _)| last <= index)
        {
            self.switch_in_flight.pop_front();
        }
        if self.switch_in_flight.len() == before {
            return;
        }
        match self.switch_in_flight.front() {
            None => self.timers.stop(Timer::SwitchReply),
            Some(&(_, sent)) => self.timers.set(
                Timer::SwitchReply,
                sent + Duration::from_us(self.cfg.switch_timeout_us),
            ),
        }
    }

    /// A follower the leader is catching up directly (it lags the switch path).
    pub(crate) fn catching_up(&self, peer: NodeId) -> bool {
        self.progress[peer as usize].lagging
    }

    /// Leader, switch path: send the next batches, as many as the window allows. The window
    /// is one batch unless the leader has a backlog (a full window of batches not yet held by
    /// a majority), as on the direct path: with one batch per round trip, a leader whose core
    /// is saturated handles a group reply once per burst of client requests, commits one batch
    /// per burst and never drains (5 nodes at 60% of the maximum with 4-entry batches fell to
    /// a fifth of the offered rate and refused the rest for good; swarm seed 4587).
    pub(crate) fn send_switch_append(&mut self, now: Instant) {
        if self.cluster.switch.is_none() {
            return;
        }
        let batch = self.cfg.max_entries_per_append;
        let backlog = self.log.last_index().saturating_sub(self.commit_index);
        let window = if backlog >= (self.cfg.max_appends_in_flight * batch) as u64 {
            self.cfg.max_appends_in_flight
        } else {
            1
        };
        // Bounded by the window: each turn sends one batch or stops.
        for _ in 0..window {
            if self.switch_in_flight.len() >= window || self.switch_next > self.log.last_index() {
                return;
            }
            // A batch beyond the first goes only when full: a partial one would cost every
            // node a packet for a few entries the next round trip carries anyway.
            let unsent = self.log.last_index() + 1 - self.switch_next;
            if !self.switch_in_flight.is_empty() && unsent < batch as u64 {
                return;
            }
            self.send_one_switch_append(now);
        }
    }

    fn send_one_switch_append(&mut self, now: Instant) {
        let next = self.switch_next.max(self.log.first_index());
        let prev = next - 1;
        let Some(prev_term) = self.log.term_at(prev) else {
            return;
        };
        if self.body_complete_index < prev {
            // The switch counts the leader as holding the batch and everything before it,
            // and tells followers what a majority so holds is committed. A new leader may
            // hold inherited entries as metadata only: counted anyway, followers applied
            // entries whose bodies only one replica held, and this leader, finding them
            // nowhere, dropped them (harsh seed 8635). So the batch waits until we hold every
            // body before it (recovery is under way); heartbeats go direct meanwhile.
            return;
        }
        let entries = self.log.slice_meta(next, self.cfg.max_entries_per_append);
        let last = prev + entries.len() as u64;
        let msg = self.msg(RaftBody::AppendEntriesReq {
            prev_log_idx: prev,
            prev_log_term: prev_term,
            leader_commit: self.commit_index,
            entries,
        });
        self.counters.switch_appends += 1;
        self.counters.append_entries_sent += 1;
        self.set_switch_in_flight(last, now);
        self.switch_next = last + 1;
        self.last_switch_append = now;
        // Followers on the switch path get this batch too; lagging ones are caught up directly.
        for (i, p) in self.progress.iter_mut().enumerate() {
            if i != self.id as usize && !p.lagging {
                p.next_index = p.next_index.max(last + 1);
            }
        }
        // Durable: the switch counts the leader as holding these entries.
        self.send(Target::Switch, msg, true);
    }

    /// Leader: the switch path's timers — fall back when it went silent, probe to return.
    pub(crate) fn switch_timers(&mut self, now: Instant) {
        if self.via_switch() {
            if !self.switch_in_flight.is_empty() && self.timers.expired(Timer::SwitchReply, now) {
                self.fall_back(now);
            }
        } else if self.mode == Mode::HovercraftPlusPlus
            && self.timers.expired(Timer::SwitchProbe, now)
        {
            self.probe_switch(now);
        }
    }

    fn fall_back(&mut self, now: Instant) {
        self.use_switch = false;
        self.clear_switch_in_flight();
        self.counters.switch_fallbacks += 1;
        self.timers.set(
            Timer::SwitchProbe,
            now + Duration::from_us(self.cfg.switch_probe_us),
        );
        self.emit(Event::SwitchPath {
            via_switch: false,
            term: self.term,
        });
        // Followers probably hold what went through the switch; those that do not say so
        // (a failed AppendEntries) and the leader backs up for them.
        let next = self.switch_next;
        for (i, p) in self.progress.iter_mut().enumerate() {
            if i != self.id as usize {
                p.become_probe(next);
                p.lagging = false;
            }
        }
        self.broadcast_append(now);
    }

    /// In fall-back: send, through the switch, an entry followers can count at once; a group
    /// reply for it means the switch is back. Direct replication goes on meanwhile, so nothing
    /// waits for the probe.
    fn probe_switch(&mut self, now: Instant) {
        self.timers.set(
            Timer::SwitchProbe,
            now + Duration::from_us(self.cfg.switch_probe_us),
        );
        let index = if self.canary(super::Canary::ProbeNeedsCaughtUpFollowers) {
            self.log.last_index()
        } else {
            self.probe_index()
        };
        self.send_entry_via_switch(index);
    }

    /// The newest entry of this term that a majority of followers already hold (from their
    /// direct acknowledgements), or the last entry if there is none. Probing with the last
    /// entry never worked under load: followers on the direct path trail the leader by
    /// hundreds of entries, answer such a probe "need more", and the switch never counts a
    /// majority (at 80% of the HovercRaft++ maximum the leader never returned to the switch).
    fn probe_index(&self) -> u64 {
        let last = self.log.last_index();
        let mut matched: Vec<u64> = self
            .progress
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != self.id as usize)
            .map(|(_, p)| p.match_index)
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        // The leader is one of the majority; the switch counts it once it persisted the entry.
        let k = self
            .quorum()
            .checked_sub(2)
            .and_then(|i| matched.get(i).copied())
            .unwrap_or(last)
            .min(self.persisted_index);
        if k > 0 && self.log.term_at(k) == Some(self.term) {
            k
        } else {
            last
        }
    }

    /// Idle heartbeat through the switch: re-send the newest entry (one datagram for the
    /// leader, however many followers). Its group reply also proves the switch alive; none
    /// within the switch timeout makes the leader fall back. Returns false if not possible.
    pub(crate) fn switch_heartbeat(&mut self, now: Instant) -> bool {
        if !self.switch_in_flight.is_empty() {
            return true; // a batch in flight already reaches every follower
        }
        let last = self.log.last_index();
        if !self.send_entry_via_switch(last) {
            return false;
        }
        self.set_switch_in_flight(last, now);
        self.last_switch_append = now;
        true
    }

    /// AppendEntries(prev = index − 1, [index]) to the switch, if that entry is of this term
    /// (only such an entry may be counted by the switch: Raft §5.4.2).
    fn send_entry_via_switch(&mut self, index: u64) -> bool {
        if self.cluster.switch.is_none() {
            return false;
        }
        if index == 0 || self.log.term_at(index) != Some(self.term) {
            return false;
        }
        if self.body_complete_index + 1 < index {
            // The switch would count us as holding every entry before `index`, bodies too.
            return false;
        }
        let Some(prev_term) = self.log.term_at(index - 1) else {
            return false;
        };
        let entries = self.log.slice_meta(index, 1);
        let msg = self.msg(RaftBody::AppendEntriesReq {
            prev_log_idx: index - 1,
            prev_log_term: prev_term,
            leader_commit: self.commit_index,
            entries,
        });
        self.send(Target::Switch, msg, true);
        true
    }

    /// A group reply from the switch: a majority holds `commit_idx`.
    pub(crate) fn on_group_reply(
        &mut self,
        now: Instant,
        term: u64,
        last_log_idx: u64,
        commit_idx: u64,
        dones: &[GroupDone],
    ) {
        if term != self.term {
            self.counters.stale_messages += 1;
            return;
        }
        self.counters.group_replies += 1;
        match self.role {
            Role::Leader => {
                for d in dones {
                    let Some(p) = self.progress.get_mut(d.peer as usize) else {
                        continue;
                    };
                    // A follower whose applied index moved is alive (it answers the switch,
                    // not us, so this is how we hear from it).
                    if d.done > p.reported_done {
                        p.reported_done = d.done;
                        p.last_heard = now;
                    }
                    self.balancer.report_applied(d.peer, d.done);
                }
                if !self.use_switch {
                    // The probe came back: the switch works again.
                    self.use_switch = true;
                    self.timers.stop(Timer::SwitchProbe);
                    self.counters.switch_returns += 1;
                    self.switch_next = self.log.last_index() + 1;
                    self.clear_switch_in_flight();
                    self.emit(Event::SwitchPath {
                        via_switch: true,
                        term: self.term,
                    });
                }
                self.confirm_switch_in_flight(last_log_idx);
                // The switch only counts entries of this term; check anyway, it is cheap. It
                // also counts the leader as holding the whole batch, and so everything before
                // it: true only up to the leader's complete prefix (a new leader may hold
                // earlier entries as metadata only, as in `maybe_commit`).
                self.advance_body_complete();
                if commit_idx > self.commit_index
                    && commit_idx <= self.log.last_index()
                    && commit_idx <= self.body_complete_index
                    && self.log.term_at(commit_idx) == Some(self.term)
                {
                    self.commit_index = commit_idx;
                    self.counters.commit_advances += 1;
                    self.emit(Event::Committed {
                        index: commit_idx,
                        entry_term: self.log.term_at(commit_idx).unwrap_or(0),
                        term: self.term,
                    });
                    self.apply_committed();
                }
                self.send_switch_append(now);
            }
            Role::Follower | Role::Candidate => {
                // Same rule as ANNOUNCE_COMMIT: our log matches the leader's if it ends in
                // an entry of this term.
                if self.log.last_term() == self.term {
                    let upto = commit_idx.min(self.log.last_index());
                    if upto > self.commit_index {
                        self.commit_index = upto;
                        self.apply_committed();
                    }
                }
            }
        }
    }
}
