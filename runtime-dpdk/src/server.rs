//! The node's event loop (`hovercraft-node`): one `hovercraft_core::Node` on one [`Io`]
//! backend, with the append-only log file for durability and a status file for operators and
//! tests.
//!
//! Each turn: drain up to [`RX_BATCH`] datagrams into the node, fire its timer if due, then
//! drain its outputs in the order the core's contract needs — persist requests go to the
//! storage thread ([`Writer`]), and `handle_persisted` releases what depends on them only once
//! the thread reports them written and fsynced — and finally wait (`ppoll`) until a datagram
//! arrives, the storage thread reports, or the next timer is due. The fsync never runs on
//! this thread, so a slow disk does not stall timers, heartbeats or the receive path; when
//! the storage queue is full the loop stops receiving until the disk catches up (backpressure,
//! see `storage::writer`). A malformed datagram is counted, logged (rate-limited) and
//! dropped; nothing a peer sends can stop the loop.
#![forbid(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use anyhow::Context;
use hovercraft_core::app::AppKind;
use hovercraft_core::node::{Mode, Node, NodeEvent, NodeId};
use hovercraft_core::raft::{PersistRequest, Role};
use hovercraft_core::time::{Duration, Instant};
use serde::Serialize;

use crate::auth::{self, AuthCounters, Opener, Sealer};
use crate::clock::Clock;
use crate::cluster::ClusterFile;
use crate::io::{self as backend, Io, UdpOptions, MAX_DATAGRAM};
use crate::redis::{self, FatalSlot, RedisApp};
use crate::storage::writer::{StorageCounters, Writer, MAX_HELD_REQUESTS};
use crate::storage::{self, LogFile, LogIdentity};

/// Datagrams handled per turn before the node's outputs are drained.
pub const RX_BATCH: usize = 64;
/// Longest sleep of the loop (the status file and silence checks run at least this often).
const MAX_WAIT: StdDuration = StdDuration::from_millis(50);

/// Counters of the I/O layer (the core counts protocol events).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct IoCounters {
    pub rx_datagrams: u64,
    pub tx_datagrams: u64,
    /// Datagrams the core rejected (malformed, unexpected, unknown sender).
    pub rx_rejected: u64,
    pub rx_io_errors: u64,
    /// Sends that failed (full socket buffer, unreachable network): lost datagrams.
    pub tx_errors: u64,
}

/// What `status.json` holds (rewritten every `status_interval_ms`).
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub id: NodeId,
    pub pid: u32,
    pub mode: &'static str,
    pub address: String,
    pub uptime_ms: u64,
    pub role: Option<Role>,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub log_file_bytes: u64,
    pub restored_entries: u64,
    /// Index of the snapshot the node restarted from (0: none).
    pub restored_snapshot_index: u64,
    /// Time the start-up replay of the log took.
    pub replay_ms: f64,
    pub io: IoCounters,
    /// "authenticated" (MAC on every node-to-node datagram) or "unauthenticated".
    pub auth_mode: &'static str,
    /// Cluster datagrams accepted and refused by reason (absent when unauthenticated).
    pub auth: Option<AuthCounters>,
    pub storage: Option<StorageCounters>,
    pub protocol: hovercraft_core::node::NodeCounters,
    pub replica: Option<hovercraft_core::raft::ReplicaCounters>,
}

/// Logs at most once per interval (bad input must not flood the log either).
struct RateLimited {
    next: Instant,
    suppressed: u64,
}

impl RateLimited {
    fn new() -> Self {
        RateLimited {
            next: Instant::ZERO,
            suppressed: 0,
        }
    }
    fn log(&mut self, now: Instant, msg: impl FnOnce() -> String) {
        if now < self.next {
            self.suppressed += 1;
            return;
        }
        let more = match std::mem::take(&mut self.suppressed) {
            0 => String::new(),
            n => format!(" ({n} similar suppressed)"),
        };
        eprintln!("{}{more}", msg());
        self.next = now + Duration::from_ms(1_000);
    }
}

/// YCSB records a replica starts with (its Redis gets them loaded).
fn cfg_preloaded(cluster: &ClusterFile, id: NodeId) -> u64 {
    let c = cluster.node_config(id).kv_costs;
    c.preloaded_ycsb_records.min(c.max_keys)
}

pub struct Server {
    id: NodeId,
    cluster: ClusterFile,
    clock: Clock,
    node: Node,
    io: Box<dyn Io>,
    /// The storage thread (replicated modes).
    writer: Option<Writer>,
    /// Persist requests the full storage queue did not take yet (backpressure: the loop
    /// receives nothing while this is non-empty).
    held: Vec<PersistRequest>,
    status_path: PathBuf,
    counters: IoCounters,
    spin_service_time: bool,
    restored_entries: u64,
    restored_snapshot_index: u64,
    replay_ms: f64,
    last_heard: Vec<Instant>,
    silence_warned: bool,
    bad_rx: RateLimited,
    bad_tx: RateLimited,
    /// The Redis backend's first failure (the replica stops on it).
    app_fatal: Option<FatalSlot>,
    /// `<dir>/rejoining` while this node, which lost its durable state, catches up without
    /// voting (removed once caught up; a restart meanwhile goes on rejoining).
    rejoin_marker: Option<PathBuf>,
    /// MAC on node-to-node datagrams (`None`: the cluster file says unauthenticated).
    auth: Option<Auth>,
}

/// This node's sending and receiving halves of `auth.rs`, and a buffer for sealed datagrams.
struct Auth {
    sealer: Sealer,
    opener: Opener,
    sealed: Vec<u8>,
}

/// Loads the keys and picks this process's epoch. Errors are one line naming the file.
fn open_auth(
    cluster: &ClusterFile,
    id: NodeId,
    dir: &std::path::Path,
) -> anyhow::Result<Option<Auth>> {
    let Some(paths) = cluster.key_paths() else {
        return Ok(None);
    };
    let cluster_id = storage::cluster_id(cluster.mode, &cluster.peers());
    let keys = cluster
        .load_keys()
        .map_err(|e| anyhow::anyhow!("node {id}: {e}"))?;
    let subkeys: Vec<[u8; 32]> = keys
        .iter()
        .map(|k| auth::subkey(k, cluster_id, &cluster.name))
        .collect();
    if paths.len() != subkeys.len() {
        anyhow::bail!("node {id}: {}: field `auth`: no key loaded", cluster.file);
    }
    let epoch = auth::next_epoch(&dir.join("auth_epoch"), crate::clock::unix_time_ns())
        .map_err(|e| anyhow::anyhow!("node {id}: {e}"))?;
    Ok(Some(Auth {
        sealer: Sealer::new(subkeys[0], id, epoch),
        opener: Opener::new(subkeys, id, cluster.nodes.len()),
        sealed: Vec::with_capacity(MAX_DATAGRAM),
    }))
}

/// The marker file of a node rejoining after the loss of its storage.
pub const REJOIN_MARKER: &str = "rejoining";

/// The kernel UDP socket options of node `id` (public for the port-sharing test).
pub fn node_socket(cluster: &ClusterFile, id: NodeId) -> UdpOptions {
    let me = cluster.nodes[id as usize].address;
    if cluster.mode == Mode::Hovercraft && cluster.multicast {
        let group = cluster.group();
        UdpOptions {
            // The wildcard receives unicast to our address and the group, on one port.
            bind: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, me.port()),
            advertised: Some(me),
            join: Some((*group.ip(), *me.ip())),
            multicast_if: Some(*me.ip()),
        }
    } else {
        UdpOptions {
            bind: me,
            advertised: None,
            join: None,
            multicast_if: None,
        }
    }
}

impl Server {
    /// Opens the log (replaying it), builds the node and binds its socket.
    pub fn start(cluster: ClusterFile, id: NodeId) -> anyhow::Result<Server> {
        Self::start_with(cluster, id, false)
    }

    /// As [`Server::start`]; `rejoin`: this node's storage was moved away (repair after
    /// damage, `storage.rs`), so it starts empty and must not vote until it caught up.
    pub fn start_with(cluster: ClusterFile, id: NodeId, rejoin: bool) -> anyhow::Result<Server> {
        let clock = Clock::new();
        let dir = cluster.node_dir(id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create storage dir {}", dir.display()))?;
        // Bind first: a wrong address is the most common mistake, and it is one line.
        let me = cluster.nodes[id as usize].address;
        let groups = if cluster.mode == Mode::Hovercraft && cluster.multicast {
            vec![*cluster.group().ip()]
        } else {
            Vec::new()
        };
        let io = backend::open_backend(
            cluster.dpdk.as_ref(),
            &format!("n{id}"),
            &node_socket(&cluster, id),
            me,
            groups,
        )
        .map_err(|e| {
            if cluster.dpdk.is_some() {
                anyhow::anyhow!("node {id}: {e:#}")
            } else {
                anyhow::anyhow!("node {id}: {e} (is {me} an address of this host or namespace?)")
            }
        })?;
        let auth = open_auth(&cluster, id, &dir)?;
        match &auth {
            Some(a) => eprintln!(
                "node {id}: cluster traffic authenticated (BLAKE3 MAC, epoch {}, {} key(s) \
                 accepted)",
                a.sealer.epoch(),
                cluster.key_paths().map_or(0, |k| k.len())
            ),
            None => eprintln!(
                "node {id}: warning: cluster traffic is UNAUTHENTICATED (\"auth\": \
                 {{\"unauthenticated\": true}}): any host that can reach this port can speak \
                 as a member; loopback experiments only"
            ),
        }
        eprintln!("node {id}: {}", cluster.limits.describe());
        let cfg = cluster.node_config(id);
        let mut restored_entries = 0;
        let mut restored_snapshot_index = 0;
        let mut replay_ms = 0.0;
        // Storage first (its refusal is the most specific error), then the application, then
        // the node: the application that runs is the one the snapshot is loaded into.
        let (durable, writer) = if cluster.mode.is_replicated() {
            if !cluster.storage.fsync {
                eprintln!(
                    "node {id}: warning: storage.fsync is off: acknowledged state is lost on \
                     power failure (fine for microbenchmarks only)"
                );
            }
            let path = dir.join("raft.log");
            let started = clock.now();
            // The error names the file, and for damage the byte offset and record number.
            let (log, durable, replay) =
                LogFile::open(&path, &LogIdentity::of(&cluster, id), cluster.storage.fsync)
                    .map_err(|e| anyhow::Error::new(e).context(format!("node {id}")))?;
            replay_ms = (clock.now() - started).as_ns() as f64 / 1e6;
            if let Some(cut) = &replay.cut {
                eprintln!(
                    "node {id}: cut a torn last write from {}: {} bytes at byte {} (record {}): {}",
                    path.display(),
                    cut.bytes,
                    cut.offset,
                    cut.record,
                    cut.reason
                );
            }
            restored_entries = durable.entries.len() as u64;
            if let Some(s) = &durable.snapshot {
                restored_snapshot_index = s.index;
                eprintln!(
                    "node {id}: restored snapshot at index {} (term {}, {} bytes) from {}",
                    s.index,
                    s.term,
                    replay.snapshot_file_bytes,
                    storage::snapshot::snapshot_path(&path).display()
                );
            }
            if replay.records > 0 {
                eprintln!(
                    "node {id}: restored term {} vote {:?} and {} log entries ({} records) \
                     from {} in {replay_ms:.1} ms",
                    durable.term,
                    durable.voted_for,
                    durable.entries.len(),
                    replay.records,
                    path.display()
                );
            }
            let writer = Writer::start(log)
                .with_context(|| format!("node {id}: cannot start the storage thread"))?;
            (Some(durable), Some(writer))
        } else {
            (None, None)
        };
        let mut node =
            Node::new_at(cfg, clock.now()).map_err(|e| anyhow::anyhow!("node {id}: {e}"))?;
        let mut app_fatal = None;
        if let Some(r) = &cluster.redis {
            let socket = redis::socket_for(&r.socket, id);
            let records = cfg_preloaded(&cluster, id);
            let (app, loaded) = RedisApp::open(
                &socket,
                records,
                StdDuration::from_millis(r.connect_timeout_ms),
            )
            .with_context(|| format!("node {id}: redis backend"))?;
            eprintln!(
                "node {id}: kv app on redis {} ({})",
                socket.display(),
                if loaded > 0 {
                    format!("loaded {loaded} YCSB records")
                } else {
                    "kept its data".to_string()
                }
            );
            app_fatal = Some(app.fatal());
            node = node.with_app(Box::new(app));
        }
        if let Some(durable) = durable {
            node = node
                .restore_from(durable)
                .map_err(|e| anyhow::anyhow!("node {id}: {e}"))?;
        }
        let marker = dir.join(REJOIN_MARKER);
        let mut rejoin_marker = None;
        if cluster.mode.is_replicated() && (rejoin || marker.exists()) {
            if !marker.exists() {
                if restored_entries > 0 || restored_snapshot_index > 0 {
                    anyhow::bail!(
                        "node {id}: --rejoin is for a node whose storage dir was moved away, \
                         but {} holds a log; without --rejoin it restarts from it",
                        dir.display()
                    );
                }
                // Durable before anything is sent: a crash while rejoining must not restart
                // as a voter with a short log.
                write_synced(&marker)
                    .with_context(|| format!("node {id}: cannot write {}", marker.display()))?;
            }
            node.start_rejoining();
            eprintln!(
                "node {id}: rejoining after the loss of its storage ({}): no vote and no \
                 campaign until it has applied what its leader had committed",
                marker.display()
            );
            rejoin_marker = Some(marker);
        }
        eprintln!(
            "node {id}: {} mode, app {:?}, {}, listening on {}{}",
            cluster.mode.as_str(),
            cluster.app(),
            if cluster.dpdk.is_some() {
                "DPDK"
            } else {
                "kernel UDP"
            },
            io.local_addr(),
            if cluster.mode == Mode::Hovercraft && cluster.multicast {
                format!(" and group {}", cluster.group())
            } else {
                String::new()
            }
        );
        let now = clock.now();
        Ok(Server {
            id,
            status_path: dir.join("status.json"),
            spin_service_time: cluster.app() == AppKind::Synthetic,
            last_heard: vec![now; cluster.nodes.len()],
            cluster,
            clock,
            node,
            io,
            writer,
            held: Vec::new(),
            counters: IoCounters::default(),
            restored_entries,
            restored_snapshot_index,
            replay_ms,
            silence_warned: false,
            bad_rx: RateLimited::new(),
            bad_tx: RateLimited::new(),
            app_fatal,
            rejoin_marker,
            auth,
        })
    }

    /// A failed application backend stops the replica before anything it produced is sent.
    fn check_app(&self) -> anyhow::Result<()> {
        let Some(slot) = &self.app_fatal else {
            return Ok(());
        };
        let msg = slot
            .lock()
            .map_or_else(|_| Some("lock poisoned".into()), |m| m.clone());
        match msg {
            None => Ok(()),
            Some(m) => Err(anyhow::anyhow!(
                "node {}: {m}; stopping (a replica that skipped a committed request would \
                 diverge)",
                self.id
            )),
        }
    }

    /// Runs until the process is killed (or an unrecoverable storage error).
    pub fn run(mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let status_every = Duration::from_ms(self.cluster.status_interval_ms);
        let mut next_status = self.clock.now();
        loop {
            // Backpressure: while the storage queue is full, take no new input.
            let got = if self.held.is_empty() {
                self.receive_batch(&mut buf)
            } else {
                0
            };
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|t| t <= now) {
                self.node.handle_timeout(now);
            }
            self.drain()?;
            let now = self.clock.now();
            if now >= next_status {
                self.check_silence(now);
                self.write_status(now);
                self.check_rejoined();
                next_status = now + status_every;
            }
            if got < RX_BATCH {
                let deadline = self
                    .node
                    .poll_timeout()
                    .unwrap_or(Instant::MAX)
                    .min(next_status);
                let now = self.clock.now();
                if deadline > now {
                    let wait = StdDuration::from_nanos((deadline - now).as_ns()).min(MAX_WAIT);
                    if let Err(e) = self.wait(wait) {
                        self.bad_rx
                            .log(now, || format!("node {}: wait failed: {e}", self.id));
                    }
                }
            }
        }
    }

    /// Waits for a datagram, the storage thread's next report (when one is due), or the
    /// timeout.
    fn wait(&mut self, timeout: StdDuration) -> io::Result<()> {
        let Some(w) = self.writer.as_ref().filter(|w| w.in_flight()) else {
            return self.io.wait(timeout);
        };
        let r = if self.held.is_empty() {
            self.io.wait_or_wake(timeout, w.wake())
        } else {
            // Not receiving: a waiting datagram must not end the wait. A zero wait still
            // flushes what a batching backend (DPDK) queued for sending.
            self.io
                .wait(StdDuration::ZERO)
                .and_then(|()| w.wake().wait(timeout))
        };
        w.wake().clear();
        r
    }

    fn receive_batch(&mut self, buf: &mut [u8]) -> usize {
        let mut got = 0;
        while got < RX_BATCH {
            match self.io.recv(buf) {
                Ok(Some((n, src))) => {
                    got += 1;
                    self.counters.rx_datagrams += 1;
                    let now = self.clock.now();
                    let mut bytes = &buf[..n];
                    let mut from = src;
                    match self.auth.as_mut() {
                        Some(a) if auth::is_cluster_datagram(bytes) => {
                            match a.opener.open(bytes) {
                                Ok((sender, packet)) => {
                                    // The MAC, not the source address, says who sent it: the
                                    // core sees the member's configured address.
                                    bytes = packet;
                                    from = self.cluster.nodes[sender as usize].address;
                                    self.last_heard[sender as usize] = now;
                                }
                                Err(reason) => {
                                    self.counters.rx_rejected += 1;
                                    let id = self.id;
                                    self.bad_rx.log(now, || {
                                        format!(
                                            "node {id}: dropped a cluster datagram from {src} \
                                             ({n} bytes): {}",
                                            reason.as_str()
                                        )
                                    });
                                    continue;
                                }
                            }
                        }
                        // Client traffic (and everything when unauthenticated).
                        _ => {
                            if self.auth.is_none() {
                                if let Some(p) =
                                    self.cluster.nodes.iter().position(|x| x.address == from)
                                {
                                    self.last_heard[p] = now;
                                }
                            }
                        }
                    }
                    if let Err(e) = self.node.handle_datagram(now, from, bytes) {
                        self.counters.rx_rejected += 1;
                        let id = self.id;
                        self.bad_rx.log(now, || {
                            format!(
                                "node {id}: dropped a bad datagram from {from} ({n} bytes): {e}"
                            )
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.counters.rx_io_errors += 1;
                    let id = self.id;
                    self.bad_rx.log(self.clock.now(), || {
                        format!("node {id}: receive error: {e}")
                    });
                    // ICMP errors are reported once each; keep draining.
                    if e.kind() != io::ErrorKind::ConnectionRefused {
                        break;
                    }
                }
            }
        }
        got
    }

    /// Hands new persist requests to the storage thread, releases what its fsyncs covered
    /// (`handle_persisted`), transmits, and reads events, until the node has nothing more
    /// to say.
    fn drain(&mut self) -> anyhow::Result<()> {
        loop {
            let persisted = self.persist()?;
            if let Some(seq) = persisted {
                self.node.handle_persisted(self.clock.now(), seq);
            }
            self.check_app()?;
            self.transmit_all();
            while let Some(ev) = self.node.poll_event() {
                match ev {
                    NodeEvent::RoleChanged { role, term, leader } => eprintln!(
                        "node {}: {:?} in term {term}, leader {}",
                        self.id,
                        role,
                        leader.map_or("unknown".to_string(), |l| l.to_string())
                    ),
                    // Rare (once per laggard and transfer): worth a line each.
                    NodeEvent::FollowerBehindCompaction {
                        follower,
                        needs,
                        first_kept,
                        term,
                    } => eprintln!(
                        "node {}: follower {follower} needs index {needs}, the log starts at \
                         {first_kept} (term {term}): sending it a snapshot",
                        self.id
                    ),
                    NodeEvent::SnapshotInstalled { index, term, bytes } => eprintln!(
                        "node {}: installed the leader's snapshot at index {index} (term \
                         {term}, {bytes} bytes)",
                        self.id
                    ),
                    _ => {}
                }
            }
            if persisted.is_none() {
                return Ok(());
            }
        }
    }

    /// Submits what the node asks to persist; returns the newest sequence number the storage
    /// thread made durable since the last call. Stops the node on a storage error (losing
    /// durability silently would break Raft's promises).
    fn persist(&mut self) -> anyhow::Result<Option<u64>> {
        let Some(w) = self.writer.as_mut() else {
            // Unreplicated: nothing to persist (the core asks for nothing).
            while self.node.poll_persist().is_some() {}
            return Ok(None);
        };
        let mut batch = std::mem::take(&mut self.held);
        while let Some(req) = self.node.poll_persist() {
            batch.push(req);
        }
        if batch.len() > MAX_HELD_REQUESTS {
            w.submit_blocking(batch)
                .with_context(|| format!("node {}", self.id))?;
        } else if let Err(b) = w.try_submit(batch) {
            self.held = b;
        }
        w.poll().with_context(|| format!("node {}", self.id))
    }

    fn transmit_all(&mut self) {
        let mut spun_ns = 0;
        while let Some(tx) = self.node.poll_transmit() {
            // The synthetic app only reports its service time: spend it for real before the
            // reply that follows it leaves, as the authors' synthetic server does.
            if self.spin_service_time && tx.after_app_cpu_ns > spun_ns {
                self.spin(tx.after_app_cpu_ns - spun_ns);
                spun_ns = tx.after_app_cpu_ns;
            }
            let payload = match self.auth.as_mut() {
                Some(a) if auth::is_cluster_datagram(&tx.payload) => {
                    // A member's address names that member; anything else (the group) is
                    // for every node. One seal covers the fan-out below.
                    let dst_id = self
                        .cluster
                        .nodes
                        .iter()
                        .position(|x| x.address == tx.dst)
                        .map_or(auth::DST_ALL, |p| p as u8);
                    a.sealer.seal(dst_id, &tx.payload, &mut a.sealed);
                    &a.sealed[..]
                }
                _ => &tx.payload[..],
            };
            for dst in self.cluster.expand(tx.dst) {
                match self.io.send(dst, payload) {
                    Ok(()) => self.counters.tx_datagrams += 1,
                    Err(e) => {
                        self.counters.tx_errors += 1;
                        let id = self.id;
                        self.bad_tx.log(self.clock.now(), || {
                            format!("node {id}: send to {dst} failed (datagram dropped): {e}")
                        });
                    }
                }
            }
        }
        let total = self.node.take_app_cpu_ns();
        if self.spin_service_time && total > spun_ns {
            self.spin(total - spun_ns);
        }
    }

    fn spin(&self, ns: u64) {
        let until = self.clock.now() + Duration::from_ns(ns.min(1_000_000_000));
        while self.clock.now() < until {
            std::hint::spin_loop();
        }
    }

    /// UDP has no connections: an unreachable or dead peer shows as silence. A leader hears
    /// from every follower; a follower or candidate hears at least from a leader or voters.
    fn check_silence(&mut self, now: Instant) {
        let limit = Duration::from_ms(self.cluster.peer_silence_warn_ms);
        let Some(r) = self.node.replica() else {
            return;
        };
        let others = (0..self.cluster.nodes.len()).filter(|&p| p != self.id as usize);
        let silent: Vec<usize> = others
            .clone()
            .filter(|&p| now - self.last_heard[p] >= limit)
            .collect();
        let warn = if r.role() == Role::Leader {
            !silent.is_empty()
        } else {
            silent.len() == others.count()
        };
        if warn && !self.silence_warned {
            let names: Vec<String> = silent
                .iter()
                .map(|&p| format!("{p} ({})", self.cluster.nodes[p].address))
                .collect();
            eprintln!(
                "node {}: no datagram from peer {} for {} s: down or unreachable?",
                self.id,
                names.join(", "),
                self.cluster.peer_silence_warn_ms as f64 / 1e3
            );
        }
        if !warn && self.silence_warned {
            eprintln!("node {}: peers heard again", self.id);
        }
        self.silence_warned = warn;
    }

    pub fn status(&self, now: Instant) -> Status {
        let r = self.node.replica();
        Status {
            id: self.id,
            pid: std::process::id(),
            mode: self.cluster.mode.as_str(),
            address: self.cluster.nodes[self.id as usize].address.to_string(),
            uptime_ms: now.as_ns() / 1_000_000,
            role: r.map(|r| r.role()),
            term: r.map_or(0, |r| r.term()),
            leader: r.and_then(|r| r.leader()),
            commit_index: r.map_or(0, |r| r.commit_index()),
            applied_index: r.map_or(0, |r| r.applied_index()),
            last_index: r.map_or(0, |r| r.last_index()),
            log_file_bytes: self.writer.as_ref().map_or(0, |w| w.counters().file_bytes),
            restored_entries: self.restored_entries,
            restored_snapshot_index: self.restored_snapshot_index,
            replay_ms: self.replay_ms,
            io: self.counters,
            auth_mode: if self.auth.is_some() {
                "authenticated"
            } else {
                "unauthenticated"
            },
            auth: self.auth.as_ref().map(|a| a.opener.counters),
            storage: self.writer.as_ref().map(Writer::counters),
            protocol: self.node.counters(),
            replica: r.map(|r| r.counters),
        }
    }

    /// A rejoining node that caught up (what it applied is durable: it applies only what it
    /// persisted) removes its marker: from now on it restarts as any node.
    fn check_rejoined(&mut self) {
        let Some(marker) = &self.rejoin_marker else {
            return;
        };
        if self.node.is_rejoining() {
            return;
        }
        let id = self.id;
        match remove_synced(marker) {
            Ok(()) => {
                eprintln!("node {id}: caught up after rejoining: it votes again");
                self.rejoin_marker = None;
            }
            Err(e) => eprintln!("node {id}: cannot remove {}: {e}", marker.display()),
        }
    }

    /// Rewrites `status.json` atomically (write a temporary file, rename it over).
    fn write_status(&mut self, now: Instant) {
        let status = self.status(now);
        let tmp = self.status_path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&status).unwrap_or_default();
        let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.status_path));
        if let Err(e) = r {
            let id = self.id;
            let path = self.status_path.display().to_string();
            self.bad_tx
                .log(now, || format!("node {id}: cannot write {path}: {e}"));
        }
    }
}

/// Creates `path` (empty) and makes it durable: file and directory synced.
fn write_synced(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::create(path)?.sync_all()?;
    sync_dir(path)
}

/// Removes `path` durably (the directory synced).
fn remove_synced(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    sync_dir(path)
}

fn sync_dir(path: &std::path::Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}
