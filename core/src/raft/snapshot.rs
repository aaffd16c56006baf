//! Snapshots and log compaction (Raft §7; etcd/raft-rs shape).
//!
//! **Taking one.** Every `raft.snapshot_interval_entries` applied entries the driver asks
//! the application for its state ([`Replica::snapshot_due`], then
//! [`Replica::take_snapshot`]); the replica adds the client sessions (replicated state too:
//! without them a follower would run a duplicate the others skip) and the index and term it
//! covers. The log is then compacted behind it, never past it: the in-memory log keeps
//! `raft.log_retention_entries` behind the applied index (and, at the leader, what a follower
//! still needs) so most laggards catch up from the log; storage drops everything the snapshot
//! covers ([`PersistRequest::snapshot`](super::PersistRequest::snapshot)), which bounds disk
//! use and restart time.
//!
//! **Sending one.** A follower whose next entry the leader no longer keeps gets the leader's
//! newest snapshot in chunks of `raft.snapshot_chunk_bytes` (INSTALL_SNAPSHOT_REQ), one in
//! flight at a time. The follower answers each with how many bytes it holds
//! (INSTALL_SNAPSHOT_REP), so a lost chunk is sent again from there after
//! `raft.append_retry_us`, and a transfer survives losses without starting over. A newer
//! snapshot replaces the one being sent (the follower starts again from offset 0).
//!
//! **Installing one.** With every byte in hand, the follower hands the snapshot to its driver
//! ([`Output::Restore`]), which loads the application ([`Replica::snapshot_restored`]) or
//! reports that it could not ([`Replica::snapshot_refused`]); only then does the replica
//! drop its log, take the sessions, and move its commit and applied indexes to the snapshot.
//! Persist before send: the snapshot goes to storage with the next persist request, and the
//! AppendEntries success that tells the leader "I hold everything up to here" waits for it.
//!
//! HovercRaft specifics:
//! - A snapshot carries no request bodies (every entry it covers is applied), so the
//!   unordered buffer is untouched; bodies of requests it covers expire there.
//! - Designated repliers: a follower that installs a snapshot does not answer the entries it
//!   covers. So the leader does not compact past the oldest entry a follower still owes an
//!   answer for (back to the retention or the snapshot interval, whichever is longer,
//!   `apply.rs`): a replier that lags catches up from the log and answers. Only one that
//!   falls further behind skips them; its clients time out, as when a replier fails.
//! - Bodies: a follower may know entries committed but lack a body every replica has
//!   compacted away; recovery cannot complete it (peers answer RECOVERY_COMPACTED), and a
//!   partial success below the leader's first kept index gets it a snapshot.
//! - HovercRaft++: the switch path is unaffected (the switch counts entries of the current
//!   term only); a follower being sent a snapshot is caught up directly, as a laggard.
//!
//! # Snapshot data (what storage keeps and the wire carries, opaque to both)
//!
//! ```text
//! magic "HCSN" | version u8 = 1 | sessions_len u32 | sessions (Sessions::encode) | app state
//! ```

use std::sync::Arc;

use super::progress::ProgressState;
use super::session::Sessions;
use super::{Event, Output, Replica, Role, Target};
use crate::time::{Duration, Instant};
use crate::wire::raft::{AppendResult, NodeId, RaftBody};

const MAGIC: &[u8; 4] = b"HCSN";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 9;

/// The state after applying every entry up to `index` (whose term is `term`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub index: u64,
    pub term: u64,
    /// Sessions and application state (module docs). Shared: the replica, storage and every
    /// transfer in progress hold the same bytes.
    pub data: Arc<[u8]>,
}

/// Snapshot bytes that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot data: {0}")]
    Malformed(&'static str),
    #[error("snapshot sessions: {0}")]
    Sessions(crate::wire::WireError),
}

impl Snapshot {
    /// Snapshot data from the encoded sessions and the application's state.
    pub fn compose(sessions: &[u8], app: &[u8]) -> Vec<u8> {
        let mut data = Vec::with_capacity(HEADER_LEN + sessions.len() + app.len());
        data.extend_from_slice(MAGIC);
        data.push(VERSION);
        data.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
        data.extend_from_slice(sessions);
        data.extend_from_slice(app);
        data
    }

    /// The (sessions, application state) parts of snapshot data.
    pub fn split(data: &[u8]) -> Result<(&[u8], &[u8]), SnapshotError> {
        if data.len() < HEADER_LEN || &data[..4] != MAGIC {
            return Err(SnapshotError::Malformed("no HCSN header"));
        }
        if data[4] != VERSION {
            return Err(SnapshotError::Malformed("unknown version"));
        }
        let len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
        let rest = &data[HEADER_LEN..];
        if len > rest.len() {
            return Err(SnapshotError::Malformed("sessions length past the end"));
        }
        Ok(rest.split_at(len))
    }

    /// The application's part of this snapshot.
    pub fn app_state(&self) -> Result<&[u8], SnapshotError> {
        Self::split(&self.data).map(|(_, app)| app)
    }
}

/// A follower's snapshot being received (bounded by `raft.max_snapshot_bytes`).
#[derive(Debug)]
pub(crate) struct Incoming {
    index: u64,
    term: u64,
    total: u64,
    bytes: Vec<u8>,
}

/// A leader's transfer to one follower: the snapshot at `index`, the follower holds its first
/// `offset` bytes, and the chunk in flight (if any) is due for a retry at `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotSend {
    pub index: u64,
    pub offset: u64,
    pub until: Option<Instant>,
}

impl Replica {
    /// The newest snapshot this node holds (taken, installed or restored).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// A digest of the client sessions (replicated state, like the application's): replicas
    /// at the same applied index hold equal sessions, so checkers compare it too.
    pub fn sessions_digest(&self) -> u64 {
        let mut bytes = Vec::new();
        self.sessions.encode(&mut bytes);
        crate::app::fnv1a(crate::app::FNV_OFFSET, &bytes)
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index)
    }

    /// Whether the driver should take a snapshot now ([`Replica::take_snapshot`] with the
    /// application's state at the applied index).
    pub fn snapshot_due(&self) -> bool {
        self.applied_index >= self.snapshot_index() + self.cfg.snapshot_interval_entries
    }

    /// The application's state at the applied index (what [`StateMachine::snapshot`]
    /// produced just now). Returns the length of the snapshot data.
    ///
    /// [`StateMachine::snapshot`]: crate::app::StateMachine::snapshot
    pub fn take_snapshot(&mut self, app_state: &[u8]) -> usize {
        let index = self.applied_index;
        let term = self
            .log
            .term_at(index)
            .expect("the applied index is in the log or at its compacted boundary");
        let mut sessions = Vec::new();
        if self.canary(super::Canary::SnapshotWithoutSessions) {
            Sessions::new(1).encode(&mut sessions);
        } else {
            self.sessions.encode(&mut sessions);
        }
        let data: Arc<[u8]> = Snapshot::compose(&sessions, app_state).into();
        let len = data.len();
        let s = Snapshot { index, term, data };
        self.counters.snapshots_taken += 1;
        self.snapshot_to_persist = Some(s.clone());
        self.snapshot = Some(s);
        self.compact();
        len
    }

    /// Leader: sends the next chunk of its newest snapshot to `peer`, unless one is in flight
    /// and not yet due for a retry. Starts a transfer (or restarts it with a newer snapshot).
    pub(crate) fn send_snapshot(&mut self, now: Instant, peer: NodeId) {
        let Some(snap) = self.snapshot.clone() else {
            // Compaction never runs ahead of a snapshot, so a follower behind the first kept
            // index implies one; counted should that ever break.
            self.counters.stale_messages += 1;
            return;
        };
        let p = &mut self.progress[peer as usize];
        if p.snapshot.is_none_or(|s| s.index != snap.index) {
            p.snapshot = Some(SnapshotSend {
                index: snap.index,
                offset: 0,
                until: None,
            });
            self.counters.snapshots_sent += 1;
        }
        p.inflights.clear();
        p.state = ProgressState::Probe;
        p.lagging = true;
        let Some(s) = p.snapshot.as_mut() else {
            return;
        };
        if s.until.is_some_and(|u| u > now) {
            return;
        }
        let total = snap.data.len();
        let from = (s.offset as usize).min(total);
        // A follower silent for an election timeout may be down: it gets an empty chunk (a
        // probe its answer resumes the transfer from), not 64 KiB per retry. Chunks into the
        // void ran at 128 MB/s for 100 ms before a restarted follower came back
        // (`follower-behind-snapshot.json`).
        let silent = p.last_heard + Duration::from_us(self.cfg.election_timeout_min_us) < now;
        let to = if silent {
            from
        } else {
            (from + self.cfg.snapshot_chunk_bytes).min(total)
        };
        s.until = Some(now + Duration::from_us(self.cfg.append_retry_us));
        self.counters.snapshot_bytes_sent += (to - from) as u64;
        let msg = self.msg(RaftBody::InstallSnapshotReq {
            last_idx: snap.index,
            last_term: snap.term,
            total_len: total as u64,
            offset: from as u64,
            chunk: snap.data[from..to].to_vec(),
        });
        self.send(Target::Peer(peer), msg, false);
    }

    /// Leader: a follower holds `received` bytes of snapshot `last_idx`: send what follows.
    pub(crate) fn on_install_snapshot_reply(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        last_idx: u64,
        received: u64,
    ) {
        if self.role != Role::Leader || term != self.term {
            self.counters.stale_messages += 1;
            return;
        }
        let p = &mut self.progress[from as usize];
        p.last_heard = now;
        match p.snapshot.as_mut() {
            // The answer to a copy of a chunk already answered (a retransmission crossed the
            // answer, or the network duplicated it): the chunk in flight answers for itself.
            // Sending again on each such answer doubled the bytes of a transfer for good
            // (20 MB sent for a 6.9 MB snapshot in `follower-behind-snapshot.json`).
            Some(s) if s.index == last_idx && received == s.offset && s.until.is_some() => {
                self.counters.stale_messages += 1;
                return;
            }
            Some(s) if s.index == last_idx => {
                s.offset = received;
                s.until = None;
            }
            // An answer about an older snapshot: the next chunk of the current one restarts
            // it from 0 (the follower drops what it held of the other).
            Some(s) => {
                s.offset = 0;
                s.until = None;
            }
            None => {
                self.counters.stale_messages += 1;
                return;
            }
        }
        self.send_snapshot(now, from);
    }

    /// Follower: one chunk of the leader's snapshot.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_install_snapshot(
        &mut self,
        now: Instant,
        from: NodeId,
        term: u64,
        last_idx: u64,
        last_term: u64,
        total_len: u64,
        offset: u64,
        chunk: Vec<u8>,
    ) {
        // The snapshot's index is committed (at most the leader's commit index).
        if !self.follow_leader(now, from, term, last_idx) {
            return;
        }
        if last_idx <= self.applied_index {
            // Already past it (a late chunk, or the transfer raced with AppendEntries):
            // committed entries match the leader's, so say how far we are. Not "committed"
            // but "applied": a HovercRaft follower may know entries committed whose bodies
            // it lacks and nobody keeps any more; it needs the snapshot (harsh seed 431).
            self.reply_holding_committed(from);
            return;
        }
        if total_len > self.cfg.max_snapshot_bytes || last_idx == 0 {
            self.counters.snapshots_refused += 1;
            return;
        }
        let same = self
            .incoming
            .as_ref()
            .is_some_and(|i| (i.index, i.term, i.total) == (last_idx, last_term, total_len));
        if !same {
            self.incoming = Some(Incoming {
                index: last_idx,
                term: last_term,
                total: total_len,
                bytes: Vec::new(),
            });
        }
        let Some(inc) = self.incoming.as_mut() else {
            return;
        };
        let held = inc.bytes.len() as u64;
        // Only the chunk that continues what we hold is taken (a duplicate or one after a
        // gap is answered with where to resume); never past the announced length.
        if offset == held && held + chunk.len() as u64 <= inc.total {
            inc.bytes.extend_from_slice(&chunk);
        }
        let held = inc.bytes.len() as u64;
        if held < inc.total {
            let msg = self.msg(RaftBody::InstallSnapshotRep {
                last_idx,
                received: held,
            });
            self.send(Target::Peer(from), msg, false);
            return;
        }
        let Some(inc) = self.incoming.take() else {
            return;
        };
        let snap = Snapshot {
            index: inc.index,
            term: inc.term,
            data: inc.bytes.into(),
        };
        // The sessions are checked before the application sees anything: once it loaded the
        // state, the replica must follow.
        let sessions = match Snapshot::split(&snap.data) {
            Ok((s, _)) => Sessions::decode(s, self.cfg.session_capacity).ok(),
            Err(_) => None,
        };
        let Some(sessions) = sessions else {
            self.counters.snapshots_refused += 1;
            return;
        };
        // The application loads it first; `snapshot_restored` installs it in the replica.
        self.restoring = Some((from, sessions));
        self.out.push_back(Output::Restore(snap));
    }

    /// The driver loaded snapshot `snap` (from [`Output::Restore`]) into the application:
    /// the replica drops its log, takes the sessions and moves to the snapshot's index.
    pub fn snapshot_restored(&mut self, now: Instant, snap: Snapshot) {
        let Some((leader, sessions)) = self.restoring.take() else {
            debug_assert!(false, "snapshot_restored without Output::Restore");
            return;
        };
        debug_assert!(
            snap.index > self.applied_index,
            "checked when the last chunk came"
        );
        let (index, term) = (snap.index, snap.term);
        if self.log.term_at(index) == Some(term) && index >= self.log.first_index() {
            // Our log holds the snapshot's last entry (we only lacked bodies before it): the
            // entries after it match the leader's and stay (Log Matching); those it covers go.
            self.log.compact_to(index);
            self.body_complete_index = self.body_complete_index.max(index);
            self.leader_match_index = self.leader_match_index.max(index);
            self.recoveries.retain(|&k, _| k > index);
            self.recovery_attempts.retain(|&k, _| k > index);
            self.abandoned.retain(|&k| k > index);
        } else {
            if !self.log.is_empty() {
                let first = self.log.first_index();
                self.truncate_log_from(now, first);
            }
            self.log.reset_to(index, term);
            self.mark_log_from(index + 1);
            self.body_complete_index = index;
            self.leader_match_index = index;
            self.recoveries.clear();
            self.recovery_attempts.clear();
            self.abandoned.clear();
        }
        self.sessions = sessions;
        self.pending_ids.clear(0);
        // Commit never moves back (we may know a later commit index than the snapshot's).
        self.commit_index = self.commit_index.max(index);
        self.applied_index = index;
        self.counters.snapshots_installed += 1;
        let bytes = snap.data.len() as u64;
        self.snapshot_to_persist = Some(snap.clone());
        self.snapshot = Some(snap);
        let id = self.id;
        self.balancer.report_applied(id, index);
        self.emit(Event::SnapshotInstalled { index, term, bytes });
        self.advance_body_complete();
        self.apply_committed();
        self.maybe_rejoined();
        // Durable: "I hold everything up to `index`" must survive a crash.
        let reply = self.append_reply(AppendResult::Success, index, index);
        let durable = !self.canary(super::Canary::SnapshotAckBeforePersist);
        self.send(Target::Peer(leader), reply, durable);
        self.check_invariants();
    }

    /// The driver could not load snapshot `snap` into the application: nothing changes (the
    /// leader sends it again after a time-out).
    pub fn snapshot_refused(&mut self, _snap: Snapshot) {
        self.restoring = None;
        self.counters.snapshots_refused += 1;
    }

    /// Follower: answers a snapshot it does not need with how far its committed log goes.
    fn reply_holding_committed(&mut self, leader: NodeId) {
        let commit = self.commit_index;
        let acked = self.body_complete_index.min(commit);
        let result = if acked < commit {
            AppendResult::PartialMissing
        } else {
            AppendResult::Success
        };
        let reply = self.append_reply(result, acked, commit);
        self.send(Target::Peer(leader), reply, true);
    }

    /// Restart: the replica's state starts at the durable snapshot.
    pub(crate) fn restore_snapshot(&mut self, snap: Snapshot) -> Result<(), SnapshotError> {
        let (sessions, _) = Snapshot::split(&snap.data)?;
        self.sessions = Sessions::decode(sessions, self.cfg.session_capacity)
            .map_err(SnapshotError::Sessions)?;
        self.log.reset_to(snap.index, snap.term);
        self.commit_index = snap.index;
        self.applied_index = snap.index;
        self.body_complete_index = snap.index;
        self.snapshot = Some(snap);
        Ok(())
    }
}
