//! The storage thread: writes and fsyncs the log off the event loop, so a slow disk delays
//! only what depends on durability (votes, a follower's acknowledgements, the leader's own
//! share of a majority), never the loop's timers, heartbeats or receive path.
//!
//! The event loop submits one batch of persist requests per turn over a bounded channel of
//! [`QUEUE_BATCHES`] batches. The thread takes everything queued at once, writes it, and issues
//! one fsync for all of it (group commit: under load, one fsync covers many turns). Only then
//! does it publish the highest persisted sequence number and wake the loop, which calls
//! `Node::handle_persisted` — the core holds every message that depends on those requests
//! until that call, so persist-before-send holds however far the disk lags.
//!
//! Full queue (the disk is [`QUEUE_BATCHES`] batches behind): `try_submit` hands the batch
//! back; the event loop keeps it, stops receiving datagrams (no new entries or votes arrive;
//! the kernel socket buffer holds what peers and clients send, then drops, and they
//! retransmit), keeps firing timers and sending what is already released, and waits for the
//! thread's next report. If even the batch it keeps grows past [`MAX_HELD_REQUESTS`] (timers
//! alone produce new state), it blocks in `submit_blocking` until the thread takes it: memory
//! stays bounded whatever the disk does.
//!
//! Snapshots: a persist request's snapshot is written (atomically, synced) before its record
//! and after every record before it, so its sequence number is reported only once both are
//! durable. After the report — nothing waits for it — the thread rewrites the log behind the
//! newest snapshot written in that commit (`LogFile::rewrite`), once per snapshot (a
//! second snapshot in one commit rewrites the log behind the first before it replaces it). The next
//! commit waits for the rewrite: a pause of the storage thread (reading, replaying and
//! rewriting a log of about `raft.snapshot_interval_entries` entries, plus two syncs) once
//! per snapshot, never of the event loop.
//!
//! A write or fsync error is final: the thread records it and stops; the loop stops the node
//! (continuing without durability would break Raft's promises).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hovercraft_core::raft::PersistRequest;
use serde::Serialize;

use hovercraft_core::time::Instant;

use super::LogFile;
use crate::clock::Clock;
use crate::io::{wake_pair, Wake, Waker};

/// Batches (one per event-loop turn at most) queued between the loop and the thread.
pub const QUEUE_BATCHES: usize = 256;
/// Persist requests the loop may hold back while the queue is full before it blocks.
pub const MAX_HELD_REQUESTS: usize = 1_024;

/// What the storage thread reports (read by the loop and the status file).
#[derive(Default)]
struct Shared {
    persisted_seq: AtomicU64,
    file_bytes: AtomicU64,
    commits: AtomicU64,
    records: AtomicU64,
    snapshot_index: AtomicU64,
    snapshot_file_bytes: AtomicU64,
    snapshots_written: AtomicU64,
    log_rewrites: AtomicU64,
    last_snapshot_write_us: AtomicU64,
    last_rewrite_us: AtomicU64,
    /// The first write or fsync error; the thread stops after it.
    failed: Mutex<Option<String>>,
}

/// Storage counters for `status.json`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StorageCounters {
    pub file_bytes: u64,
    /// Group commits (one write and one fsync each).
    pub commits: u64,
    pub records: u64,
    /// The newest durable snapshot's index and its file's size (0 without one).
    pub snapshot_index: u64,
    pub snapshot_file_bytes: u64,
    /// Snapshots written, and rewrites of the log behind one, since the node started.
    pub snapshots_written: u64,
    pub log_rewrites: u64,
    /// How long the last snapshot write (file, sync, rename, directory sync) and the last
    /// rewrite of the log took on the storage thread.
    pub last_snapshot_write_ms: f64,
    pub last_rewrite_ms: f64,
    /// Turns in which the queue was full and the loop stopped receiving.
    pub queue_full_turns: u64,
    /// Times the loop blocked because even its held-back batch was full.
    pub blocked_submits: u64,
}

/// The event loop's handle on the storage thread.
pub struct Writer {
    tx: Option<SyncSender<Vec<PersistRequest>>>,
    shared: Arc<Shared>,
    wake: Wake,
    thread: Option<JoinHandle<()>>,
    path: String,
    submitted_seq: u64,
    reported_seq: u64,
    queue_full_turns: u64,
    blocked_submits: u64,
}

impl Writer {
    /// Starts the thread on an opened (replayed) log.
    pub fn start(log: LogFile) -> std::io::Result<Writer> {
        let (waker, wake) = wake_pair()?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let shared = Arc::new(Shared::default());
        shared.file_bytes.store(log.bytes(), Ordering::Relaxed);
        let (index, bytes) = log.snapshot_stats();
        shared.snapshot_index.store(index, Ordering::Relaxed);
        shared.snapshot_file_bytes.store(bytes, Ordering::Relaxed);
        let path = log.path().display().to_string();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("storage".into())
            .spawn(move || run(log, rx, &s, &waker))?;
        Ok(Writer {
            tx: Some(tx),
            shared,
            wake,
            thread: Some(thread),
            path,
            submitted_seq: 0,
            reported_seq: 0,
            queue_full_turns: 0,
            blocked_submits: 0,
        })
    }

    /// Queues a batch; `Err(batch)` when the queue is full (the caller keeps it and applies
    /// backpressure, see the module doc).
    pub fn try_submit(&mut self, batch: Vec<PersistRequest>) -> Result<(), Vec<PersistRequest>> {
        let Some(last) = batch.last().map(|r| r.seq) else {
            return Ok(());
        };
        let Some(tx) = &self.tx else {
            return Err(batch);
        };
        match tx.try_send(batch) {
            Ok(()) => {
                self.submitted_seq = last;
                Ok(())
            }
            Err(TrySendError::Full(b)) => {
                self.queue_full_turns += 1;
                Err(b)
            }
            // The thread stopped on an error; `poll` reports it.
            Err(TrySendError::Disconnected(b)) => Err(b),
        }
    }

    /// Queues a batch, waiting for room (the loop's last resort, see the module doc).
    pub fn submit_blocking(&mut self, batch: Vec<PersistRequest>) -> anyhow::Result<()> {
        let Some(last) = batch.last().map(|r| r.seq) else {
            return Ok(());
        };
        self.blocked_submits += 1;
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            self.poll()?;
            anyhow::bail!("{}: the storage thread stopped", self.path);
        }
        self.submitted_seq = last;
        Ok(())
    }

    /// The highest sequence number fsynced since the last call (`None`: no progress), or the
    /// thread's error.
    pub fn poll(&mut self) -> anyhow::Result<Option<u64>> {
        let seq = self.shared.persisted_seq.load(Ordering::Acquire);
        if seq > self.reported_seq {
            self.reported_seq = seq;
            return Ok(Some(seq));
        }
        let failed = self
            .shared
            .failed
            .lock()
            .map_or_else(|_| Some("lock poisoned".into()), |f| f.clone());
        match failed {
            Some(e) => Err(anyhow::anyhow!(
                "cannot write {}: {e}; stopping (a node that cannot persist must not send \
                 what depends on it)",
                self.path
            )),
            None => Ok(None),
        }
    }

    /// Whether a submitted batch is not yet reported persisted.
    pub fn in_flight(&self) -> bool {
        self.submitted_seq > self.reported_seq
    }

    /// Signalled after every group commit (and on failure).
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    pub fn counters(&self) -> StorageCounters {
        StorageCounters {
            file_bytes: self.shared.file_bytes.load(Ordering::Relaxed),
            commits: self.shared.commits.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
            snapshot_index: self.shared.snapshot_index.load(Ordering::Relaxed),
            snapshot_file_bytes: self.shared.snapshot_file_bytes.load(Ordering::Relaxed),
            snapshots_written: self.shared.snapshots_written.load(Ordering::Relaxed),
            log_rewrites: self.shared.log_rewrites.load(Ordering::Relaxed),
            last_snapshot_write_ms: ms(&self.shared.last_snapshot_write_us),
            last_rewrite_ms: ms(&self.shared.last_rewrite_us),
            queue_full_turns: self.queue_full_turns,
            blocked_submits: self.blocked_submits,
        }
    }
}

impl Drop for Writer {
    /// Closes the queue and waits until what was queued is written (a clean stop loses
    /// nothing that was submitted).
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ms(us: &AtomicU64) -> f64 {
    us.load(Ordering::Relaxed) as f64 / 1e3
}

fn fail(shared: &Shared, waker: &Waker, e: String) {
    if let Ok(mut f) = shared.failed.lock() {
        *f = Some(e);
    }
    waker.wake();
}

fn run(mut log: LogFile, rx: Receiver<Vec<PersistRequest>>, shared: &Shared, waker: &Waker) {
    let clock = Clock::new();
    let since_us = |t: Instant| (clock.now() - t).as_ns() / 1_000;
    while let Ok(first) = rx.recv() {
        let mut last = 0;
        let mut records = 0;
        let mut batch = Some(first);
        let mut taken = 0;
        // Everything queued now joins this commit, bounded so a producer that keeps pace
        // with the drain cannot grow one commit's buffer without end.
        while let Some(b) = batch {
            for req in &b {
                if let Some(s) = &req.snapshot {
                    let t = clock.now();
                    if let Err(e) = log.write_snapshot(req) {
                        return fail(shared, waker, format!("writing snapshot {}: {e}", s.index));
                    }
                    shared
                        .last_snapshot_write_us
                        .store(since_us(t), Ordering::Relaxed);
                    shared.snapshots_written.fetch_add(1, Ordering::Relaxed);
                    let (index, bytes) = log.snapshot_stats();
                    shared.snapshot_index.store(index, Ordering::Relaxed);
                    shared.snapshot_file_bytes.store(bytes, Ordering::Relaxed);
                }
                log.append(req);
                last = req.seq;
                records += 1;
            }
            taken += 1;
            batch = if taken < 2 * QUEUE_BATCHES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if let Err(e) = log.flush() {
            return fail(shared, waker, e.to_string());
        }
        shared.file_bytes.store(log.bytes(), Ordering::Relaxed);
        shared.commits.fetch_add(1, Ordering::Relaxed);
        shared.records.fetch_add(records, Ordering::Relaxed);
        shared.persisted_seq.store(last, Ordering::Release);
        waker.wake();
        if log.rewrite_due() {
            let t = clock.now();
            if let Err(e) = log.rewrite() {
                let index = log.snapshot_stats().0;
                return fail(
                    shared,
                    waker,
                    format!("rewriting the log behind snapshot {index}: {e}"),
                );
            }
            shared.last_rewrite_us.store(since_us(t), Ordering::Relaxed);
            shared.log_rewrites.store(log.rewrites(), Ordering::Relaxed);
            shared.file_bytes.store(log.bytes(), Ordering::Relaxed);
        }
    }
}
