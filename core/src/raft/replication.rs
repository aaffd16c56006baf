//! Log replication (Raft §5.3) with HovercRaft's changes: metadata-only entries, partial
//! success when a request body is missing, recovery of bodies from the leader, and
//! ANNOUNCE_COMMIT so designated repliers answer without waiting for the next AppendEntries.

use std::net::SocketAddrV4;

use super::progress::ProgressState;
use super::timers::Timer;
use super::{Event, Replica, Role, Target};
use crate::time::{Duration, Instant};
use crate::types::Mode;
use crate::wire::raft::{AppendResult, LogEntry, NodeId, RaftBody};
use crate::wire::Policy;

/// Largest AppendEntries body the leader builds (entries beyond it wait for the next one);
/// well under what a receiver's reassembly accepts (`ReassemblyConfig::max_packets`).
pub const MAX_APPEND_BYTES: usize = 64 * 1024;

/// A missing body is asked of every other replica this many times before a read is given up
/// (and a write's recovery is reported as exhausted).
const GIVE_UP_ROUNDS: u64 = 4;

impl Replica {
    /// Sends AppendEntries to every follower whose window allows (see `Progress::may_send`).
    pub(crate) fn broadcast_append(&mut self, now: Instant) {
        if self.via_switch() {
            self.send_switch_append(now);
            return;
        }
        for peer in 0..self.n() as NodeId {
            if peer != self.id {
                self.send_appends(now, peer);
            }
        }
        // A one-node cluster commits on its own.
        if self.n() == 1 {
            self.maybe_commit(now);
        }
    }

    /// Heartbeat: every follower with nothing in flight gets an AppendEntries (empty if it
    /// is up to date); one whose oldest AppendEntries went unanswered for `append_retry_us`
    /// is probed again from what it acknowledged.
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        // Through the switch, recent AppendEntries already reached every follower, and an idle
        // heartbeat is one datagram to the switch.
        let switch_recent = self.via_switch()
            && (self.last_switch_append + Duration::from_us(self.cfg.heartbeat_us) > now
                || self.switch_heartbeat(now));
        for peer in 0..self.n() as NodeId {
            if peer == self.id || (switch_recent && !self.catching_up(peer)) {
                continue;
            }
            self.retry_append(now, peer);
        }
        self.timers.set(
            Timer::Heartbeat,
            now + Duration::from_us(self.cfg.heartbeat_us),
        );
        if self.n() == 1 {
            self.maybe_commit(now);
        }
    }

    /// Leader: when the oldest AppendEntries in flight to some follower is due for a retry.
    pub(crate) fn append_retry_deadline(&self) -> Option<Instant> {
        if self.role != Role::Leader {
            return None;
        }
        self.progress
            .iter()
            .filter_map(|p| {
                p.inflights
                    .front()
                    .map(|f| f.until)
                    .or(p.snapshot.and_then(|s| s.until))
            })
            .min()
    }

    /// Leader: retries, at their deadline rather than at the next heartbeat, the
    /// AppendEntries that went unanswered for `append_retry_us`. A lost probe used to cost a
    /// whole heartbeat period on top (2–3 ms for a 2 ms retry): at 200k req/s, 400–600
    /// entries more for the follower to catch up.
    pub(crate) fn retry_appends(&mut self, now: Instant) {
        let via_switch = self.via_switch();
        for peer in 0..self.n() as NodeId {
            let p = &mut self.progress[peer as usize];
            if peer != self.id
                && p.snapshot
                    .is_some_and(|s| s.until.is_some_and(|u| u <= now))
            {
                // A chunk went unanswered: send it again.
                self.send_snapshot(now, peer);
                continue;
            }
            if peer == self.id || p.in_flight_at(now) || p.inflights.is_empty() {
                continue;
            }
            if via_switch && !p.lagging {
                // On the switch path: the switch's batches reach it, not ours.
                let next = p.next_index;
                p.become_probe(next);
                continue;
            }
            self.retry_append(now, peer);
        }
    }

    /// Leader: the follower's AppendEntries in flight went unanswered too long (or none is in
    /// flight): probe it again from just after what it acknowledged.
    pub(crate) fn retry_append(&mut self, now: Instant, peer: NodeId) {
        let p = &mut self.progress[peer as usize];
        if p.in_flight_at(now) {
            return;
        }
        if let Some(oldest) = p.inflights.front().copied() {
            // Everything from the oldest unanswered one on may be lost: resend from there.
            p.become_probe(oldest.first.max(p.log_match + 1));
            self.counters.append_retries += 1;
        }
        self.send_append(now, peer);
    }

    /// Leader: sends the follower as many AppendEntries as its state and window allow.
    pub(crate) fn send_appends(&mut self, now: Instant, peer: NodeId) {
        let batch = self.cfg.max_entries_per_append;
        // The window opens only for a follower with a backlog (behind by a full window or
        // more): one that keeps up gets one AppendEntries per round trip carrying all that
        // was proposed meanwhile. Streaming full batches to every follower cost a saturated
        // 9-node HovercRaft leader its maximum (p99 63 µs -> 562 µs at 1.15M req/s).
        let behind = self
            .log
            .last_index()
            .saturating_sub(self.progress[peer as usize].log_match);
        let window = if behind >= (self.cfg.max_appends_in_flight * batch) as u64 {
            self.cfg.max_appends_in_flight
        } else {
            1
        };
        // Bounded by the window; the loop stops as soon as a send made no progress.
        for _ in 0..window {
            let last = self.log.last_index();
            let p = &self.progress[peer as usize];
            if !p.may_send(last, batch, window) {
                break;
            }
            let before = (p.inflights.len(), p.next_index);
            self.send_append(now, peer);
            let p = &self.progress[peer as usize];
            if (p.inflights.len(), p.next_index) == before || p.next_index > last {
                break;
            }
        }
    }

    pub(crate) fn send_append(&mut self, now: Instant, peer: NodeId) {
        let p = &self.progress[peer as usize];
        if p.snapshot.is_some() || p.next_index < self.log.first_index() {
            // It needs entries we no longer keep: a snapshot first (snapshot.rs).
            self.send_snapshot(now, peer);
            return;
        }
        let next = p.next_index;
        let prev = next - 1;
        let Some(prev_term) = self.log.term_at(prev) else {
            debug_assert!(false, "next index {next} within the log");
            self.counters.stale_messages += 1;
            return;
        };
        // Keep a message within what a receiver reassembles (at least one entry goes).
        let with_bodies = self.mode == Mode::Raft || self.far_behind(next);
        let keep = self.log.fit(
            next,
            self.cfg.max_entries_per_append,
            MAX_APPEND_BYTES,
            |e| {
                if with_bodies {
                    e.encoded_len()
                } else {
                    e.encoded_len() - e.body.as_ref().map_or(0, |b| b.len())
                }
            },
        );
        let entries = if with_bodies {
            self.log.slice(next, keep)
        } else {
            // HovercRaft orders metadata only: bodies travelled by multicast (never copied).
            self.log.slice_meta(next, keep)
        };
        let sent_last = prev + entries.len() as u64;
        let msg = self.msg(RaftBody::AppendEntriesReq {
            prev_log_idx: prev,
            prev_log_term: prev_term,
            leader_commit: self.commit_index,
            entries,
        });
        self.counters.append_entries_sent += 1;
        let p = &mut self.progress[peer as usize];
        p.sent(
            next,
            sent_last,
            now + Duration::from_us(self.cfg.append_retry_us),
        );
        // Not durable: the leader may replicate before its own write completes (Raft §10.2.1);
        // its own log counts towards commit only once persisted.
        self.send(Target::Peer(peer), msg, false);
    }

    /// HovercRaft: whether a follower whose next entry is `next` is so far behind that the
    /// bodies it lacks are long gone from its unordered buffer (which keeps the newest
    /// arrivals, ordered or refused). It then gets bodies in its AppendEntries, as in Raft:
    /// one packet per batch instead of one recovery round trip per body. Catching up two
    /// followers thousands of entries behind by recovery alone cost a loaded HovercRaft++
    /// leader a fifth of its core and never finished (swarm seed 9862).
    fn far_behind(&self, next: u64) -> bool {
        let lag = self.log.last_index().saturating_sub(next);
        lag >= (self.cfg.unordered_capacity as u64 / 4).min(self.cfg.replier_max_lag)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_entries(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        prev_log_idx: u64,
        prev_log_term: u64,
        leader_commit: u64,
        entries: Vec<LogEntry>,
        via_switch: bool,
    ) {
        self.counters.append_entries_received += 1;
        if !self.follow_leader(now, from, term, leader_commit) {
            return;
        }

        let skip_check =
            self.canary(super::Canary::SkipPrevLogCheck) && prev_log_idx <= self.log.last_index();
        if self.log.term_at(prev_log_idx) != Some(prev_log_term) && !skip_check {
            // Log matching fails: ask the leader to back up (hint: our last index). Behind the
            // switch this is "need more": the leader catches us up directly.
            let hint = self.log.last_index().min(prev_log_idx.saturating_sub(1));
            let result = if via_switch {
                AppendResult::NeedMore
            } else {
                AppendResult::Failure
            };
            let reply = self.append_reply(result, hint, 0);
            self.send(Target::Peer(from), reply, true);
            return;
        }
        let n_entries = entries.len() as u64;
        for (i, mut e) in entries.into_iter().enumerate() {
            let index = prev_log_idx + 1 + i as u64;
            match self.log.term_at(index) {
                Some(t) if t == e.term => {
                    // Already have it; a catch-up AppendEntries may bring a body it lacks.
                    if e.body.is_some() && self.log.get(index).is_some_and(|o| o.body.is_none()) {
                        if let Some(body) = e.body.take() {
                            self.log.set_body(index, body);
                        }
                        self.body_filled_at(index);
                        self.recoveries.remove(&index);
                    }
                    continue;
                }
                Some(_) => {
                    // Conflict: an uncommitted suffix from an older leader. Committed entries
                    // never conflict (Leader Completeness), so this never cuts them; a message
                    // that says otherwise is not from a correct leader (forged, or corrupted
                    // in a way the checksum missed) and is dropped, never obeyed or asserted
                    // on (it was a debug assertion a peer could trip).
                    if index <= self.commit_index {
                        self.counters.stale_messages += 1;
                        return;
                    }
                    self.truncate_log_from(now, index);
                }
                None => {}
            }
            if e.body.is_none() {
                e.body = self.unordered.remove(&(e.client, e.req_id));
            }
            self.log.append(e);
            self.mark_log_from(index);
        }
        let matched = prev_log_idx + n_entries;
        self.leader_match_index = self.leader_match_index.max(matched);
        self.advance_body_complete();
        self.request_missing_bodies(now, matched);
        if leader_commit > self.commit_index {
            self.commit_index = leader_commit.min(matched).max(self.commit_index);
            self.apply_committed();
        }
        let acked = self.body_complete_index.min(matched);
        let result = if acked < matched {
            AppendResult::PartialMissing
        } else {
            AppendResult::Success
        };
        let reply = self.append_reply(result, acked, matched);
        // A full success for an AppendEntries the switch relayed goes back to the switch,
        // which counts it; anything else goes to the leader, which handles it directly.
        let to = match (via_switch, result, self.cluster.switch) {
            (true, AppendResult::Success, Some(_)) => Target::Switch,
            _ => Target::Peer(from),
        };
        // Durable: acknowledging entries promises they survive a crash.
        self.send(to, reply, true);
    }

    /// Follower side of a message only a leader sends (AppendEntries, a snapshot chunk) of
    /// `term` from `from`, which says `commit` is committed: whether to handle it. One of an
    /// older term is answered with a failure carrying our term (the sender steps down); a
    /// second claimant to a term's leadership is dropped. Otherwise `from` leads us: our
    /// election timer starts again, and a rejoining node learns its first leader's commit.
    pub(crate) fn follow_leader(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        commit: u64,
    ) -> bool {
        if term < self.term {
            self.counters.stale_messages += 1;
            let reply = self.append_reply(AppendResult::Failure, self.log.last_index(), 0);
            self.send(Target::Peer(from), reply, true);
            return false;
        }
        if self.rival_leader(term, from) {
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(now, term, Some(from));
        }
        self.reset_election_deadline(now);
        if self.rejoin.is_some() {
            self.note_leader_while_rejoining(term, commit);
        }
        true
    }

    pub(crate) fn append_reply(
        &self,
        result: AppendResult,
        last_log_idx: u64,
        first_idx: u64,
    ) -> crate::wire::raft::RaftMessage {
        self.msg(RaftBody::AppendEntriesRep {
            result,
            last_log_idx,
            first_idx,
            done: self.applied_index,
        })
    }

    /// Leader: a follower answered. `last_log_idx` is what it holds durably with every body
    /// it needs (counted for commit); `first_idx` is how far its log matches ours (where to
    /// continue); `done` is its applied index (frees its reply slots).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_append_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        result: AppendResult,
        last_log_idx: u64,
        first_idx: u64,
        done: u64,
    ) {
        if self.role != Role::Leader || term != self.term {
            self.counters.stale_messages += 1;
            return;
        }
        self.balancer.report_applied(from, done);
        let last = self.log.last_index();
        let p = &mut self.progress[from as usize];
        p.last_heard = now;
        // A follower that recovered missing bodies reports its new acknowledged index on its
        // own (first_idx = 0). That answers no AppendEntries: it must neither free the
        // follower's one in-flight slot nor trigger a send, or every recovery would add one
        // more AppendEntries in flight and the leader would flood the follower (the
        // scenarios/faults/leader-crash.json restart did exactly that).
        if result == AppendResult::Success && first_idx == 0 && last_log_idx > 0 {
            p.acknowledge_match(last_log_idx, last);
            self.maybe_commit(now);
            return;
        }
        if result == AppendResult::PartialMissing && last_log_idx + 1 < self.log.first_index() {
            // Its log matches ours but it lacks a body of an entry we no longer keep, nor may
            // anyone (every replica compacts behind its applied index): recovery can never
            // complete it, only a snapshot. (Harsh seed 140, with a 32-entry retention: the
            // follower asked for body 1004 for good while the leader heartbeated it.)
            p.acknowledge_match(last_log_idx, last);
            self.send_snapshot(now, from);
            self.maybe_commit(now);
            return;
        }
        // Only an answer to an AppendEntries in flight frees its slot and may trigger sends.
        // Three kinds of reply answer none:
        // - NeedMore answers a batch the switch relayed, never a direct AppendEntries. Each
        //   batch a lagging follower cannot take yields one; while a direct catch-up is in
        //   flight it only confirms the follower lags.
        // - A success acknowledging less than the oldest message in flight carries is a late
        //   or duplicate answer to an earlier message (a retransmission, or a partial success
        //   to a switch batch).
        // - A rejection older than what we know (`Progress::stale_rejection`): behind one lost
        //   AppendEntries, every later one of the window is rejected too; the first rejection
        //   already sent the probe.
        // Were each of them to trigger a send, every one would leave one more AppendEntries
        // in flight for good: with HovercRaft++ under load, a restarted follower gained one
        // per switch batch, the leader re-sent the same range on every stale reply, and the
        // follower, flooded (~1.2M AppendEntries/s), fell ever further behind
        // (repro-catchup: sim/tests/check.rs `restarted_leader_catches_up_behind_the_switch`).
        let rejected = matches!(result, AppendResult::Failure | AppendResult::NeedMore);
        if result != AppendResult::Failure {
            p.rejections_below_match = 0;
        }
        if rejected && last_log_idx < p.log_match {
            if result == AppendResult::Failure && p.proves_log_lost() {
                // Rejection after rejection below what it acknowledged, and no other answer
                // between: not late answers but a follower that lost its log (its storage
                // wiped, rejoined empty). Believe it, or it is never caught up (the runtime's
                // damaged-log story: the wiped node sat at index 0 for good).
                p.forget(last_log_idx);
                self.counters.followers_lost_log += 1;
            } else {
                // Older than an acknowledgement we already have (a delayed or reordered
                // answer): the follower holds more than it claims here. Not a follower behind
                // compaction either: the leader compacts up to what every follower
                // acknowledged, so such late rejections asked for compacted entries (harsh
                // seeds 198, 380, 1318 counted them as followers behind compaction).
                self.counters.stale_rejections += 1;
                self.maybe_commit(now);
                return;
            }
        }
        if rejected && last_log_idx + 1 < self.log.first_index() {
            // It holds nothing past `last_log_idx`, and we kept nothing before our first
            // index: no AppendEntries we can send matches its log. It gets our snapshot.
            // (Before snapshots, the leader re-sent the same rejected AppendEntries every
            // round trip, ~20k/s, forever.)
            if !p.behind_compaction {
                p.behind_compaction = true;
                self.counters.followers_behind_compaction += 1;
                self.emit(Event::FollowerBehindCompaction {
                    follower: from,
                    needs: last_log_idx + 1,
                    first_kept: self.log.first_index(),
                    term: self.term,
                });
            }
            let p = &mut self.progress[from as usize];
            p.back_up(last_log_idx);
            p.lagging = true;
            self.send_snapshot(now, from);
            self.maybe_commit(now);
            return;
        }
        let answers = match result {
            AppendResult::NeedMore => !p.in_flight_at(now),
            AppendResult::Failure => !p.stale_rejection(last_log_idx),
            AppendResult::Success | AppendResult::PartialMissing => {
                let matched = first_idx.max(last_log_idx);
                p.inflights.is_empty() || p.free_upto(matched) > 0
            }
        };
        if !answers {
            match result {
                AppendResult::NeedMore => p.lagging = true,
                AppendResult::Failure => self.counters.stale_rejections += 1,
                _ => p.acknowledge(last_log_idx, first_idx, last),
            }
            self.maybe_commit(now);
            return;
        }
        if rejected {
            // Back to one at a time from where its log ends (etcd: a rejection in
            // StateReplicate becomes StateProbe).
            p.back_up(last_log_idx);
            p.lagging = true;
        } else {
            p.acknowledge(last_log_idx, first_idx, last);
            p.behind_compaction = false;
            if p.snapshot.is_some_and(|s| p.log_match >= s.index) {
                // Installed (or no longer needed): replicate from the log again.
                p.snapshot = None;
            }
            if p.log_match + 1 >= self.switch_next {
                p.lagging = false;
            }
            if p.state == ProgressState::Probe {
                p.become_replicate();
            }
        }
        self.maybe_commit(now);
        // Behind the switch, direct AppendEntries only catch a follower up.
        let direct = !self.via_switch() || self.catching_up(from);
        if direct {
            if rejected {
                self.send_append(now, from);
            } else {
                self.send_appends(now, from);
            }
        }
    }
    /// Leader: commit the highest index a majority holds, if it is of the current term.
    /// Entries of earlier terms are never committed by counting (Raft §5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self, now: Instant) {
        // The leader counts itself like a follower: what it holds durably with every body it
        // must execute. A new leader may hold entries of earlier terms as metadata only;
        // counting them committed writes whose bodies maybe no majority holds, and made
        // dropping an unrecoverable suffix (`drop_unrecoverable_suffix`) unsafe.
        self.advance_body_complete();
        let own = self.persisted_index.min(self.body_complete_index);
        let mut matches: Vec<u64> = (0..self.n())
            .map(|i| {
                if i == self.id as usize {
                    own
                } else {
                    self.progress[i].match_index
                }
            })
            .collect();
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.quorum() - 1];
        let term_ok = self.log.term_at(candidate) == Some(self.term)
            || self.canary(super::Canary::CommitPreviousTerm);
        if candidate > self.commit_index && term_ok {
            self.commit_index = candidate;
            self.counters.commit_advances += 1;
            self.emit(Event::Committed {
                index: candidate,
                entry_term: self.log.term_at(candidate).unwrap_or(0),
                term: self.term,
            });
            self.apply_committed();
            if self.mode != Mode::Raft && !self.via_switch() {
                self.announce_commit();
            } else if self.via_switch() {
                // Through the switch, followers learn commits from its group replies. But
                // this commit came from direct acknowledgements: a follower that had to
                // recover a body answers the leader, not the switch, so when too few
                // followers held the whole batch on arrival the switch never counts a
                // majority for it. Announce the commit ourselves, and if it covers the batch
                // in flight, stop waiting for a group reply that will not come and send the
                // next batch. (Waiting for the switch time-out instead stalled every replier
                // for 1 ms per such batch: under 1% multicast loss, hovercraft++ fell from
                // 1.6M to 0.2M req/s within the SLO.)
                self.announce_commit();
                let before = self.switch_in_flight.len();
                self.confirm_switch_in_flight(self.commit_index);
                if self.switch_in_flight.len() < before {
                    self.send_switch_append(now);
                }
            }
        }
    }

    /// HovercRaft: tell followers the new commit index at once (one multicast datagram),
    /// so designated repliers answer without waiting for the next AppendEntries.
    fn announce_commit(&mut self) {
        if self.n() == 1 {
            return;
        }
        let msg = self.msg(RaftBody::AnnounceCommitReq {
            commit_idx: self.commit_index,
        });
        self.counters.announce_commits_sent += 1;
        self.send(Target::Group, msg, false);
    }

    pub(crate) fn on_announce_commit(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        commit_idx: u64,
    ) {
        if term != self.term || self.role == Role::Leader {
            self.counters.stale_messages += 1;
            return;
        }
        if self.rival_leader(term, from) {
            return;
        }
        if self.leader != Some(from) {
            self.become_follower(now, term, Some(from));
        }
        // An entry of the current term in our log was written by this leader, and AppendEntries'
        // consistency check means everything before it matches the leader's log too (log
        // matching). So if our last entry is of this term, every index up to it may commit.
        if self.log.last_term() == self.term {
            let upto = commit_idx.min(self.log.last_index());
            if upto > self.commit_index {
                self.commit_index = upto;
                self.apply_committed();
            }
        }
    }

    // ---- recovery of missing bodies ----------------------------------------------------------

    /// Follower: ask the leader for bodies of entries up to `upto` that we must execute but
    /// never received (lost multicast, evicted or expired from the unordered buffer).
    fn request_missing_bodies(&mut self, now: Instant, upto: u64) {
        let n = self.n() as u64;
        if n < 2 {
            return;
        }
        let mut index = self.body_complete_index + 1;
        let mut abandoned_any = false;
        let mut drop_from = None;
        while index <= upto && self.recoveries.len() < self.cfg.max_recoveries_in_flight {
            let missing = self
                .log
                .get(index)
                .filter(|e| self.must_execute(index, e) && e.body.is_none())
                .map(|e| (e.policy, e.client, e.req_id));
            if let Some((policy, client, req_id)) = missing {
                if !self.recoveries.contains_key(&index) {
                    let attempt = self.recovery_attempts.get(&index).copied().unwrap_or(0);
                    let give_up = GIVE_UP_ROUNDS * (n - 1);
                    if attempt >= give_up && !self.canary(super::Canary::RecoverByIndexOnly) {
                        if policy == Policy::ReplicatedRouteNoSe {
                            // Every replica was asked, several times: nobody holds this read's
                            // body (its only holders crashed, truncated it or are cut off). A
                            // read changes nothing, so skip it: its client times out ("outcome
                            // unknown") instead of this node stalling — and, were it the
                            // leader, flow control refusing every request behind it. An
                            // uncommitted read too: a follower that cannot acknowledge past it
                            // holds back every commit after it (the mark goes if the entry is
                            // truncated away).
                            self.abandoned.insert(index);
                            self.counters.reads_abandoned += 1;
                            abandoned_any = true;
                            index += 1;
                            continue;
                        }
                        if self.role == Role::Leader
                            && index > self.commit_index
                            && !self.canary(super::Canary::KeepUnrecoverableSuffix)
                        {
                            drop_from = Some(index);
                            break;
                        }
                        if attempt == give_up {
                            // A committed write is held by a majority: keep asking, but say so.
                            self.counters.recoveries_exhausted += 1;
                        }
                    }
                    let msg = self.msg(RaftBody::RecoveryReq {
                        log_idx: index,
                        client,
                        req_id,
                    });
                    // Ask the leader first; on each retry the next peer. Any replica that
                    // holds the body answers, so a body survives as long as one copy does
                    // (a new leader may lack bodies its predecessor ordered).
                    let base = self
                        .leader
                        .filter(|&l| l != self.id)
                        .unwrap_or((self.id + 1) % n as u8) as u64;
                    let mut target = (base + attempt) % n;
                    if target == self.id as u64 {
                        target = (target + 1) % n;
                    }
                    self.recovery_attempts.insert(index, attempt + 1);
                    self.recoveries.insert(index, now);
                    self.counters.recovery_requests += 1;
                    self.send(Target::Peer(target as NodeId), msg, false);
                }
            }
            index += 1;
        }
        if abandoned_any {
            // As if the bodies had come: apply, and acknowledge past them at once.
            self.after_body_filled(now);
        }
        if let Some(index) = drop_from {
            self.drop_unrecoverable_suffix(now, index);
        }
    }

    /// Leader: no reachable replica holds the body of the uncommitted write at `index` (its
    /// only holders crashed or are cut off). Nobody can execute it, so nothing after it can
    /// commit: the cluster would stall until a holder comes back, maybe never (harsh seed
    /// 9464: an old leader isolated for good held bodies its successor had only as
    /// metadata; the successor refused every request until the end).
    ///
    /// So step down and forget the log from `index` on. This is safe because this node never
    /// counted itself as holding anything past its complete prefix (`maybe_commit`): losing
    /// entries it never acknowledged is what a crash before persisting them does, which Raft
    /// allows. It steps down first because a leader must never lose entries of its own term
    /// and go on appending in that term (two different entries could then share an index
    /// and a term). The next leader either has the body or, lacking it too, does the same,
    /// and the term after orders the requests again from bodies clients resend.
    fn drop_unrecoverable_suffix(&mut self, now: Instant, index: u64) {
        debug_assert!(index > self.commit_index && index > self.body_complete_index);
        self.counters.unrecoverable_suffixes_dropped += 1;
        // Followers lacking the body drop it too, or the next leader, elected with the
        // longest log, would hold it again and re-replicate it to us (seed 7088: four
        // leaders in turn dropped the same entry and got it back from the next).
        let msg = self.msg(RaftBody::DropSuffix {
            from_idx: index,
            entry_term: self.log.term_at(index).unwrap_or(0),
        });
        for peer in 0..self.n() as NodeId {
            if peer != self.id {
                self.send(Target::Peer(peer), msg.clone(), false);
            }
        }
        self.become_follower(now, self.term, None);
        self.truncate_log_from(now, index);
    }

    /// Follower: our leader stepped down for want of the body of its uncommitted entry
    /// (`from_idx`, `entry_term`). If we lack it too, we never acknowledged anything from
    /// there on (acknowledgements stop at the complete prefix), so dropping it is safe, as in
    /// `drop_unrecoverable_suffix`; a follower that holds the body keeps it (it may have
    /// acknowledged it, and the next leader may be one that can serve it).
    pub(crate) fn on_drop_suffix(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        from_idx: u64,
        entry_term: u64,
    ) {
        if term != self.term || self.role != Role::Follower || self.leader != Some(from) {
            self.counters.stale_messages += 1;
            return;
        }
        // It stepped down: we know no leader in this term any more, and a pre-vote for the
        // next one need not wait out the lease of a leader that is gone.
        self.leader = None;
        self.leader_heard_at = None;
        self.emit(Event::RoleChanged {
            role: self.role,
            term: self.term,
            leader: None,
        });
        if from_idx <= self.commit_index.max(self.body_complete_index)
            || self.log.term_at(from_idx) != Some(entry_term)
        {
            return;
        }
        self.counters.unrecoverable_suffixes_dropped += 1;
        self.truncate_log_from(now, from_idx);
    }

    /// Removes the log from `index` on (a conflicting suffix, or one nobody can execute): its
    /// bodies go back to the unordered buffer, the truncation is persisted, and the volatile
    /// per-index state of the removed entries is forgotten.
    pub(crate) fn truncate_log_from(&mut self, now: Instant, index: u64) {
        let removed = self.log.truncate_from(index);
        self.keep_bodies(now, removed);
        self.mark_log_from(index);
        self.forget_from(index);
    }

    /// Volatile per-index state of the entries from `index` on, which a truncation removed.
    fn forget_from(&mut self, index: u64) {
        self.body_complete_index = self.body_complete_index.min(index - 1);
        self.leader_match_index = self.leader_match_index.min(index - 1);
        self.recoveries.retain(|&k, _| k < index);
        self.recovery_attempts.retain(|&k, _| k < index);
        let _ = self.abandoned.split_off(&index);
    }

    pub(crate) fn retry_recoveries(&mut self, now: Instant) {
        let retry = Duration::from_us(self.cfg.recovery_retry_us);
        let due: Vec<u64> = self
            .recoveries
            .iter()
            .filter(|(_, &t)| t + retry <= now)
            .map(|(&k, _)| k)
            .collect();
        for k in due {
            self.recoveries.remove(&k);
        }
        let below = self.body_complete_index;
        self.recovery_attempts.retain(|&k, _| k > below);
        let upto = self.log.last_index().min(
            self.commit_index
                .max(self.body_complete_index + self.cfg.max_recoveries_in_flight as u64),
        );
        self.request_missing_bodies(now, upto);
    }

    /// The body of request (client, req_id), which the asker holds at `log_idx`: from our
    /// entry there, else from the same request held under another index near it (a leader
    /// change may have ordered it again elsewhere), else from the unordered buffer.
    fn find_body(
        &mut self,
        log_idx: u64,
        client: SocketAddrV4,
        req_id: u16,
    ) -> Option<(Vec<u8>, Policy)> {
        let same = |e: &LogEntry| e.client == client && e.req_id == req_id && e.body.is_some();
        if let Some(e) = self.log.get(log_idx).filter(|e| same(e)) {
            return Some((e.body.clone()?, e.policy));
        }
        if self.canary(super::Canary::RecoverByIndexOnly) {
            return None;
        }
        let window = 4 * self.cfg.max_entries_per_append as u64 + 64;
        let from = log_idx.saturating_sub(window).max(self.log.first_index());
        let to = (log_idx + window).min(self.log.last_index());
        let found = (from..=to)
            .filter_map(|i| self.log.get(i))
            .find(|e| same(e))
            .map(|e| (e.body.clone().unwrap_or_default(), e.policy))
            .or_else(|| {
                self.unordered
                    .get(&(client, req_id))
                    .map(|b| (b.to_vec(), Policy::ReplicatedRoute))
            });
        if found.is_some() {
            self.counters.recovery_by_identity += 1;
        }
        found
    }

    /// Follower: the bodies of a truncated suffix go back to the unordered buffer, where the
    /// same requests, ordered again by the new leader (as metadata), find them. Dropping them
    /// lost requests whose only copy was a deposed leader's log.
    pub(crate) fn keep_bodies(&mut self, now: Instant, removed: Vec<LogEntry>) {
        if self.canary(super::Canary::RecoverByIndexOnly) {
            return;
        }
        for e in removed {
            if let Some(body) = e.body {
                self.unordered.insert(now, (e.client, e.req_id), body);
                self.counters.bodies_kept_on_truncation += 1;
            }
        }
    }

    /// Leader: send the body of entry `log_idx` to a follower that lacks it.
    pub(crate) fn on_recovery_request(
        &mut self,
        from: NodeId,
        term: u64,
        log_idx: u64,
        client: SocketAddrV4,
        req_id: u16,
    ) {
        // Any replica holding the body answers, whatever its role or term: a body is a
        // fact about (client, req_id), checked by the asker against its own entry.
        let _ = term;
        let Some((body, policy)) = self.find_body(log_idx, client, req_id) else {
            let silent = self.canary(super::Canary::SilentAboutCompactedBodies);
            if let Some(s) = self
                .snapshot
                .as_ref()
                .filter(|s| log_idx < self.log.first_index() && s.index >= log_idx && !silent)
            {
                // Compacted: we applied it (so it is committed), and our snapshot holds its
                // effect. Saying so keeps the asker from taking "nobody holds the body" for
                // "never committed" (harsh seed 8635: a new leader dropped committed entries
                // whose bodies every other replica had compacted).
                let msg = self.msg(RaftBody::RecoveryCompacted {
                    log_idx,
                    snapshot_idx: s.index,
                    snapshot_term: s.term,
                });
                self.counters.recoveries_compacted += 1;
                self.send(Target::Peer(from), msg, false);
                return;
            }
            self.counters.stale_messages += 1;
            return;
        };
        let msg = self.msg(RaftBody::RecoveryRep {
            log_idx,
            client,
            req_id,
            policy,
            body,
        });
        self.counters.recovery_replies += 1;
        self.send(Target::Peer(from), msg, false);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_recovery_reply(
        &mut self,
        now: Instant,
        term: u64,
        log_idx: u64,
        client: SocketAddrV4,
        req_id: u16,
        body: Vec<u8>,
    ) {
        self.recoveries.remove(&log_idx);
        let _ = term;
        let Some(e) = self.log.get(log_idx) else {
            return;
        };
        if e.client != client || e.req_id != req_id || e.body.is_some() {
            return;
        }
        self.log.set_body(log_idx, body);
        self.body_filled_at(log_idx);
        self.after_body_filled(now);
    }

    /// A peer no longer holds the body of entry `log_idx`: its snapshot at `snapshot_idx` (of
    /// `snapshot_term`) covers it. If our log holds that entry, Log Matching makes our log up
    /// to it the peer's, all applied there, so committed: we learn the commit index, and that
    /// only a snapshot brings the state (recovery never will). A leader steps down so that a
    /// node holding the state leads, and does not campaign until it has it; as a follower it
    /// gets the snapshot from its leader (a partial success below the leader's first kept
    /// index asks for one).
    pub(crate) fn on_recovery_compacted(
        &mut self,
        now: Instant,
        log_idx: u64,
        snapshot_idx: u64,
        snapshot_term: u64,
    ) {
        self.recoveries.remove(&log_idx);
        if snapshot_idx <= self.applied_index
            || log_idx > snapshot_idx
            || self.log.term_at(snapshot_idx) != Some(snapshot_term)
        {
            self.counters.stale_messages += 1;
            return;
        }
        self.counters.recoveries_compacted += 1;
        self.needs_snapshot_upto = self.needs_snapshot_upto.max(snapshot_idx);
        if snapshot_idx > self.commit_index {
            self.commit_index = snapshot_idx;
            self.apply_committed();
        }
        if self.role == Role::Leader {
            self.become_follower(now, self.term, None);
        }
    }

    /// Follower: a multicast body arrived; it may complete an entry ordered before it came.
    pub(crate) fn on_body_arrived(&mut self, now: Instant, client: SocketAddrV4, req_id: u16) {
        // Only entries past the complete prefix can be waiting for a body; look a bounded way.
        let from = self.body_complete_index + 1;
        let to = self
            .log
            .last_index()
            .min(from + 4 * self.cfg.max_entries_per_append as u64);
        let mut found = None;
        for index in from..=to {
            if let Some(e) = self.log.get(index) {
                if e.body.is_none() && e.client == client && e.req_id == req_id {
                    found = Some(index);
                    break;
                }
            }
        }
        let Some(index) = found else { return };
        if let Some(body) = self.unordered.remove(&(client, req_id)) {
            self.log.set_body(index, body);
        }
        self.body_filled_at(index);
        self.recoveries.remove(&index);
        self.after_body_filled(now);
    }

    /// An entry got its body after it was ordered: write the entry again, with the body.
    /// Acknowledging it says "durable, with every body I must execute" (the leader compacts
    /// behind such acknowledgements), so a body held only in memory was lost with a crash
    /// that took every other copy: harsh seed 2434, where two restarted followers of three
    /// waited forever for the body of a write the leader had compacted away.
    fn body_filled_at(&mut self, index: u64) {
        if !self.canary(super::Canary::RecoveredBodyNotPersisted) {
            self.mark_log_from(index);
        }
    }

    fn after_body_filled(&mut self, now: Instant) {
        let before = self.body_complete_index;
        self.advance_body_complete();
        self.apply_committed();
        // Tell the leader at once when entries it may still be counting towards a majority are
        // now complete. Entries this node knows are committed need no word: the next
        // AppendEntries reply reports them anyway. (Under overload, followers whose RX rings
        // overflow recover many bodies of committed entries; acknowledging each one cost the
        // saturated leader one more packet per recovery.)
        // Only entries known to match the leader's log: a node backing up from an old
        // leader's suffix once completed bodies there and acknowledged that suffix as the
        // new leader's, which then counted it as holding entries it did not (harsh seed 153:
        // the leader's view of it never recovered and it stayed thousands of entries behind).
        let complete = if self.canary(super::Canary::AckUnmatchedSuffix) {
            self.body_complete_index.min(self.log.last_index())
        } else {
            self.body_complete_index.min(self.leader_match_index)
        };
        if self.role == Role::Leader {
            // Its own complete prefix counts towards a majority.
            self.maybe_commit(now);
        } else if complete > before.max(self.commit_index) {
            if let Some(leader) = self.leader {
                let reply = self.append_reply(AppendResult::Success, complete, 0);
                self.send(Target::Peer(leader), reply, true);
            }
        }
    }
}

// Tests: core/tests/replica_alone.rs drives a replica alone (the lagging-follower story lives
// there).
