//! The cluster file: one JSON file names every node and how the cluster runs; every node and
//! the load generator read the same file. Unknown fields are rejected; every error names the
//! file, the field and the reason on one line (like scenario files).
//!
//! ```json
//! {
//!   "name": "local-3",
//!   "mode": "hovercraft",                       // unreplicated | raft | hovercraft
//!   "app": "kv",                                // synthetic | kv (default: workload.app)
//!   "seed": 1,
//!   "nodes": [{"id": 0, "address": "10.77.0.1:7000"}, ...],
//!   "multicast": true,                          // false: clients send a copy to each node
//!   "group": "239.1.1.1:7000",                  // hovercraft with multicast: same port as nodes
//!   "raft": { "election_timeout_min_us": 100000, ... },   // RaftConfig; defaults = authors'
//!   "storage": {"dir": "/var/tmp/hc", "fsync": true},
//!   "workload": { "app": "kv", "rate_rps": 2000, ... },   // scenario `workload` section
//!   "loadgen": {"duration_ms": 5000, "warmup_ms": 500, "timeout_ms": 500},
//!   "redis": {"socket": "/tmp/hc/redis-{id}.sock"},  // optional: kv app on redis-server
//!   "dpdk": {"eal_args": ["--no-huge", ...], "idle_nap_us": 0}, // optional: DPDK backend
//!   "auth": {"key_file": "cluster.key"},        // required: see `auth.rs`, or
//!                                               // {"unauthenticated": true} on loopback
//!   "limits": {"max_request_bytes": 131072, "max_reply_bytes": 1048576,  // optional
//!              "reply_amplification": {"factor": 8, "free_bytes": 1472,
//!                                      "budget_bytes_per_s": 8388608, "burst_bytes": 1048576}}
//! }
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use hovercraft_core::app::AppKind;
use hovercraft_core::node::{AmplificationLimit, ClientLimits, Mode, NodeConfig, NodeId};
use hovercraft_core::raft::{ClusterConfig, RaftConfig};
use hovercraft_core::rng::{derive_seed, Stream};
use hovercraft_core::wire::framing::ReassemblyConfig;
use hovercraft_core::workload::WorkloadConfig;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    #[serde(default = "default_name")]
    pub name: String,
    pub mode: Mode,
    /// The application every node runs; defaults to `workload.app`, else `synthetic`.
    #[serde(default)]
    pub app: Option<AppKind>,
    #[serde(default)]
    pub seed: u64,
    pub nodes: Vec<NodeEntry>,
    /// `true`: clients send HovercRaft requests once, to `group`. `false`: the "group" is the
    /// list of nodes and clients send one copy to each (for loopback, where IP multicast
    /// between processes on one address is not dependable).
    #[serde(default = "yes")]
    pub multicast: bool,
    #[serde(default)]
    pub group: Option<SocketAddrV4>,
    #[serde(default)]
    pub raft: RaftConfig,
    pub storage: StorageConfig,
    /// How often each node rewrites its status file, in ms.
    #[serde(default = "default_status_ms")]
    pub status_interval_ms: u64,
    /// A node warns (once per silence) when it heard nothing from a peer for this long.
    #[serde(default = "default_silence_ms")]
    pub peer_silence_warn_ms: u64,
    #[serde(default)]
    pub workload: Option<WorkloadConfig>,
    #[serde(default)]
    pub loadgen: LoadgenConfig,
    /// kv app only: each replica applies requests to its own local `redis-server` instead of
    /// the in-memory store (record format in `redis.rs`).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Run every node and the load generator on the DPDK backend (binaries built with
    /// `--features dpdk`) instead of kernel UDP.
    #[serde(default)]
    pub dpdk: Option<DpdkConfig>,
    /// How node-to-node datagrams are authenticated (`auth.rs`). Required: a file without it
    /// is refused, so no cluster runs unauthenticated by omission.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Client request/reply size limits and the reflection guard
    /// (`core/src/node/limits.rs`); on by default.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The directory of the cluster file: relative key paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The cluster file's name as given (for error messages about what it names).
    #[serde(skip)]
    pub file: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The 32-byte cluster key (`hovercraft-node keygen <path>`), relative to the cluster file.
    /// Never inline: the cluster file is shared with load generators, which need no key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Further keys accepted on receive (not used to send): the old or the next key during a
    /// rolling rotation (README).
    #[serde(default)]
    pub accept_key_files: Vec<PathBuf>,
    /// `true`: no MAC at all (loopback experiments only; a node says so at start).
    #[serde(default)]
    pub unauthenticated: bool,
}

/// The cluster file's `limits` section (defaults: the runtime's, printed at start).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body a node accepts; the leader answers a larger one with DROP.
    /// Default 128 KiB (the kv app's largest value is 64 KiB).
    pub max_request_bytes: usize,
    /// Largest reply body a node sends; a larger one is replaced by DROP. Default 1 MiB (the
    /// apps' own bound).
    pub max_reply_bytes: usize,
    /// The reflection guard; `null` turns it off (a closed lab network).
    pub reply_amplification: Option<AmplificationConfig>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_bytes: 128 * 1024,
            max_reply_bytes: 1 << 20,
            reply_amplification: Some(AmplificationConfig::default()),
        }
    }
}

/// Replies beyond `factor` × their request and beyond `free_bytes` draw on a per-destination
/// budget of `budget_bytes_per_s` (saved up to `burst_bytes`) on each node; past it, DROP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmplificationConfig {
    pub factor: u32,
    pub free_bytes: u64,
    pub budget_bytes_per_s: u64,
    pub burst_bytes: u64,
}

impl Default for AmplificationConfig {
    fn default() -> Self {
        // One full packet is always free (a one-packet answer is R2P2's common case); beyond
        // 8× the request, 8 MiB/s (64 Mb/s) per victim address per node, 1 MiB saved up.
        AmplificationConfig {
            factor: 8,
            free_bytes: hovercraft_core::wire::MAX_UDP_PAYLOAD as u64,
            budget_bytes_per_s: 8 << 20,
            burst_bytes: 1 << 20,
        }
    }
}

impl LimitsConfig {
    pub fn client_limits(&self) -> ClientLimits {
        ClientLimits {
            max_request_bytes: self.max_request_bytes,
            max_reply_bytes: self.max_reply_bytes,
            amplification: self.reply_amplification.map(|a| AmplificationLimit {
                factor: a.factor,
                free_bytes: a.free_bytes,
                budget_bytes_per_s: a.budget_bytes_per_s,
                burst_bytes: a.burst_bytes,
            }),
        }
    }

    /// One line for a node's start-up log.
    pub fn describe(&self) -> String {
        let guard = match self.reply_amplification {
            None => "reflection guard off".to_string(),
            Some(a) => format!(
                "replies beyond {}x their request and {} B: {} B/s per address, burst {} B",
                a.factor, a.free_bytes, a.budget_bytes_per_s, a.burst_bytes
            ),
        };
        format!(
            "client limits: requests <= {} B, replies <= {} B, {guard}",
            self.max_request_bytes, self.max_reply_bytes
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpdkConfig {
    /// EAL arguments. `{host}` becomes a name unique to the process (`n<id>` for node `id`,
    /// `c<pid>` for a load generator), for `--file-prefix=hc{host}`. E.g. `["--no-huge",
    /// "--no-pci", "-m", "256", "--no-shconf", "--file-prefix=hc{host}",
    /// "--vdev=net_af_packet0,iface=veth0,framecnt=2048"]`.
    pub eal_args: Vec<String>,
    /// The DPDK port (0: the first, e.g. the one `--vdev` made).
    #[serde(default)]
    pub port: u16,
    /// 0: busy-poll while idle (run to completion, one core per process). Otherwise an idle
    /// poller yields, then naps this many µs between polls: for machines shared by several
    /// pollers (a test with 4 processes on 2 cores).
    #[serde(default)]
    pub idle_nap_us: u64,
}

impl DpdkConfig {
    /// The EAL arguments of process `host`.
    pub fn eal_args_for(&self, host: &str) -> Vec<String> {
        self.eal_args
            .iter()
            .map(|a| a.replace("{host}", host))
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// The unix socket of node `{id}`'s redis-server, e.g. "/tmp/hc/redis-{id}.sock".
    pub socket: PathBuf,
    /// How long a starting node waits for its redis-server to answer, in ms.
    #[serde(default = "default_redis_wait_ms")]
    pub connect_timeout_ms: u64,
}

fn default_redis_wait_ms() -> u64 {
    5_000
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: NodeId,
    pub address: SocketAddrV4,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Each node keeps `<dir>/node<id>/raft.log`, `snapshot` and `status.json` here.
    pub dir: PathBuf,
    /// `false` skips fsync (microbenchmarks only: a power loss then loses acknowledged
    /// state; the node warns at start).
    #[serde(default = "yes")]
    pub fsync: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadgenConfig {
    /// Local address of the load generator's socket (port 0: any).
    pub bind: SocketAddrV4,
    /// How long to send, in ms.
    pub duration_ms: u64,
    /// Requests sent before this are not measured.
    pub warmup_ms: u64,
    /// A request unanswered after this long counts as timed out.
    pub timeout_ms: u64,
    /// Requests in flight at once (at most 65536: req_id is 16 bits).
    pub max_outstanding: usize,
    /// Width of a `timeline` bucket in `summary.json`, in ms.
    pub timeline_bucket_ms: u64,
}

impl Default for LoadgenConfig {
    fn default() -> Self {
        LoadgenConfig {
            bind: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            duration_ms: 5_000,
            warmup_ms: 500,
            timeout_ms: 500,
            max_outstanding: 4_096,
            timeline_bucket_ms: 100,
        }
    }
}

fn default_name() -> String {
    "cluster".into()
}
fn yes() -> bool {
    true
}
fn default_status_ms() -> u64 {
    100
}
fn default_silence_ms() -> u64 {
    2_000
}

/// A bad cluster file: `file: field `f`: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError {
    pub file: String,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line whatever the file spells (control characters escaped).
        let (file, field, reason) = (
            one_line(&self.file),
            one_line(&self.field),
            one_line(&self.reason),
        );
        if field.is_empty() || field == "." || field == "?" {
            write!(f, "{file}: {reason}")
        } else {
            write!(f, "{file}: field `{field}`: {reason}")
        }
    }
}

impl std::error::Error for ClusterError {}

use hovercraft_core::workload::file_error::one_line;

impl ClusterFile {
    pub fn load(path: &Path) -> Result<ClusterFile, ClusterError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ClusterError {
            file: file.clone(),
            field: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_json(&file, &text)
    }

    pub fn from_json(file: &str, text: &str) -> Result<ClusterFile, ClusterError> {
        let err = |field: String, reason: String| ClusterError {
            file: file.to_string(),
            field,
            reason,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let c: ClusterFile = serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), one_line(&e.inner().to_string())))?;
        let mut c = c;
        c.validate().map_err(|(f, r)| err(f, r))?;
        c.base_dir = match Path::new(file).parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        c.file = file.to_string();
        Ok(c)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let e = |f: &str, r: String| Err((f.to_string(), r));
        let n = self.nodes.len();
        if n == 0 || n > 64 {
            return e("nodes", format!("a cluster has 1 to 64 nodes (got {n})"));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.id as usize != i {
                return e(
                    &format!("nodes[{i}].id"),
                    format!("ids are 0..{n} in order (got {} at position {i})", node.id),
                );
            }
            let a = node.address;
            if a.port() == 0 || a.ip().is_unspecified() || a.ip().is_multicast() {
                return e(
                    &format!("nodes[{i}].address"),
                    format!("needs a unicast IP and a non-zero port (got {a})"),
                );
            }
            if self.nodes[..i].iter().any(|o| o.address == a) {
                return e(
                    &format!("nodes[{i}].address"),
                    format!("{a} is used by another node"),
                );
            }
        }
        match self.mode {
            Mode::HovercraftPlusPlus => {
                return e(
                    "mode",
                    "hovercraft++ needs the switch aggregator, which the kernel UDP runtime \
                     does not have; use unreplicated, raft or hovercraft"
                        .into(),
                )
            }
            Mode::Unreplicated if n != 1 => {
                return e("nodes", format!("mode unreplicated runs 1 node (got {n})"))
            }
            _ => {}
        }
        if self.mode == Mode::Hovercraft && self.multicast {
            let Some(g) = self.group else {
                return e(
                    "group",
                    "hovercraft with multicast needs a group address (e.g. \"239.1.1.1:7000\"), \
                     or set \"multicast\": false"
                        .into(),
                );
            };
            if !g.ip().is_multicast() {
                return e("group", format!("{} is not a multicast address", g.ip()));
            }
            if let Some((i, node)) = self
                .nodes
                .iter()
                .enumerate()
                .find(|(_, node)| node.address.port() != g.port())
            {
                return e(
                    &format!("nodes[{i}].address"),
                    format!(
                        "with multicast, every node listens on the group's port {} (got {})",
                        g.port(),
                        node.address
                    ),
                );
            }
            if let Some((i, _)) = self.nodes.iter().enumerate().find(|(i, node)| {
                self.nodes[..*i]
                    .iter()
                    .any(|o| o.address.ip() == node.address.ip())
            }) {
                return e(
                    &format!("nodes[{i}].address"),
                    "with multicast, each node needs its own IP (one host or namespace each); \
                     on one host use \"multicast\": false"
                        .into(),
                );
            }
        }
        // Core owns the protocol constants' bounds (the simulator checks the same).
        let r = &self.raft;
        r.validate().map_err(|e| (e.field.to_string(), e.reason))?;
        // Only in a build with core's `canary` feature (a workspace build with the simulator)
        // can a cluster file name one at all.
        if r.canary().is_some() {
            return e("raft.canary", "canaries are for checker tests only".into());
        }
        if let Some(c) = self.node_config(0).cluster {
            // A backstop: the checks above already name the file's own fields.
            c.validate().map_err(|e| {
                let field = match e.field {
                    "cluster.group" => "group",
                    _ => "nodes",
                };
                (field.to_string(), e.reason)
            })?;
        }
        if self.storage.dir.as_os_str().is_empty() {
            return e("storage.dir", "must name a directory".into());
        }
        if self.status_interval_ms == 0 {
            return e("status_interval_ms", "must be positive".into());
        }
        if let Some(w) = &self.workload {
            w.validate().map_err(|(f, r)| (f.to_string(), r))?;
            if let Some(app) = self.app {
                if app != w.app {
                    return e(
                        "app",
                        format!("{app:?} differs from workload.app {:?}", w.app),
                    );
                }
            }
        }
        if let Some(r) = &self.redis {
            if self.app() != AppKind::Kv {
                return e(
                    "redis",
                    format!("redis backs the kv app; this cluster runs {:?}", self.app()),
                );
            }
            if r.socket.as_os_str().is_empty() {
                return e("redis.socket", "must name a unix socket path".into());
            }
        }
        if let Some(d) = &self.dpdk {
            if d.eal_args.is_empty() {
                return e(
                    "dpdk.eal_args",
                    "needs EAL arguments (at least a --vdev or a PCI device)".into(),
                );
            }
            if d.idle_nap_us > 100_000 {
                return e("dpdk.idle_nap_us", "at most 100000".into());
            }
        }
        match &self.auth {
            None => {
                return e(
                    "auth",
                    "missing: cluster traffic is authenticated since issue 16; add \
                     \"auth\": {\"key_file\": \"cluster.key\"} (path relative to this file; \
                     create it with `hovercraft-node keygen <path>`), or for loopback \
                     experiments only \"auth\": {\"unauthenticated\": true}"
                        .into(),
                )
            }
            Some(a)
                if a.unauthenticated
                    && (a.key_file.is_some() || !a.accept_key_files.is_empty()) =>
            {
                return e(
                    "auth.unauthenticated",
                    "contradicts auth.key_file / auth.accept_key_files: choose one".into(),
                )
            }
            Some(a) if !a.unauthenticated && a.key_file.is_none() => {
                return e(
                    "auth.key_file",
                    "missing: name the cluster key file (`hovercraft-node keygen <path>`), or \
                     set \"unauthenticated\": true (loopback experiments only)"
                        .into(),
                )
            }
            Some(_) => {}
        }
        let l = &self.limits;
        if l.max_request_bytes == 0 {
            return e("limits.max_request_bytes", "must be positive".into());
        }
        if l.max_reply_bytes == 0 {
            return e("limits.max_reply_bytes", "must be positive".into());
        }
        if let Some(a) = l.reply_amplification {
            if a.factor == 0 || a.burst_bytes == 0 {
                return e(
                    "limits.reply_amplification",
                    "factor and burst_bytes must be positive (null turns the guard off)".into(),
                );
            }
        }
        let l = &self.loadgen;
        if l.duration_ms == 0 || l.warmup_ms >= l.duration_ms {
            return e(
                "loadgen.warmup_ms",
                "must be below loadgen.duration_ms (which must be positive)".into(),
            );
        }
        if l.timeout_ms == 0 || l.timeout_ms > 3_600_000 {
            return e(
                "loadgen.timeout_ms",
                format!("must be 1..=3600000 (one hour; got {})", l.timeout_ms),
            );
        }
        if l.max_outstanding == 0 || l.max_outstanding > 1 << 16 {
            return e("loadgen.max_outstanding", "must be 1..=65536".into());
        }
        if l.timeline_bucket_ms == 0 {
            return e("loadgen.timeline_bucket_ms", "must be positive".into());
        }
        Ok(())
    }

    pub fn app(&self) -> AppKind {
        self.app
            .or(self.workload.as_ref().map(|w| w.app))
            .unwrap_or(AppKind::Synthetic)
    }

    pub fn peers(&self) -> Vec<SocketAddrV4> {
        self.nodes.iter().map(|n| n.address).collect()
    }

    /// Where HovercRaft clients send requests: the multicast group, or (without multicast)
    /// a placeholder address that the runtime fans out to every node.
    pub fn group(&self) -> SocketAddrV4 {
        match (self.multicast, self.group) {
            (true, Some(g)) => g,
            // 239.255.255.255:1 is never a node (validation forbids multicast node addresses).
            _ => SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 255), 1),
        }
    }

    /// Where a datagram for `dst` really goes: the group fans out to every node when the
    /// cluster runs without multicast.
    pub fn expand(&self, dst: SocketAddrV4) -> Vec<SocketAddrV4> {
        if !self.multicast && dst == self.group() {
            self.peers()
        } else {
            vec![dst]
        }
    }

    /// Key files, resolved against the cluster file's directory: the one to send with, then
    /// every one accepted on receive. `None`: unauthenticated.
    pub fn key_paths(&self) -> Option<Vec<PathBuf>> {
        let a = self.auth.as_ref()?;
        let first = a.key_file.as_ref()?;
        Some(
            std::iter::once(first)
                .chain(&a.accept_key_files)
                .map(|p| self.base_dir.join(p))
                .collect(),
        )
    }

    /// Reads every key file the `auth` section names: the keys, the one to send with first.
    /// Errors name the cluster file and the field (`auth.key_file`, `auth.accept_key_files[i]`).
    pub fn load_keys(&self) -> Result<Vec<[u8; crate::auth::KEY_BYTES]>, ClusterError> {
        let Some(paths) = self.key_paths() else {
            return Ok(Vec::new());
        };
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                crate::auth::load_key(p).map_err(|reason| ClusterError {
                    file: self.file.clone(),
                    field: match i {
                        0 => "auth.key_file".to_string(),
                        _ => format!("auth.accept_key_files[{}]", i - 1),
                    },
                    reason,
                })
            })
            .collect()
    }

    /// Node `id`'s directory: its log file and status file.
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.storage.dir.join(format!("node{id}"))
    }

    pub fn node_config(&self, id: NodeId) -> NodeConfig {
        let kv_costs = self
            .workload
            .as_ref()
            .map(|w| w.node_kv_costs())
            .unwrap_or_default();
        NodeConfig {
            id,
            mode: self.mode,
            app: self.app(),
            kv_costs,
            reassembly: ReassemblyConfig::default(),
            seed: derive_seed(self.seed, Stream::Node, u64::from(id)),
            cluster: self.mode.is_replicated().then(|| ClusterConfig {
                peers: self.peers(),
                group: self.group(),
                campaign_at_start: false,
                switch: None,
            }),
            raft: self.raft.clone(),
            defer_execution: false,
            exec_queue_capacity: 4_096,
            client_limits: self.limits.client_limits(),
            // Raft packets leave room for the MAC trailer, so an authenticated datagram still
            // fits one 1500-byte frame (the DPDK backend does not fragment).
            cluster_datagram_overhead_bytes: if self.authenticated() {
                crate::auth::TRAILER_BYTES
            } else {
                0
            },
        }
    }

    /// Whether node-to-node traffic carries a MAC.
    pub fn authenticated(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| !a.unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "mode": "hovercraft", "app": "kv",
        "nodes": [{"id": 0, "address": "10.77.0.1:7000"}, {"id": 1, "address": "10.77.0.2:7000"},
                  {"id": 2, "address": "10.77.0.3:7000"}],
        "group": "239.1.1.1:7000",
        "storage": {"dir": "/tmp/x"},
        "workload": {"app": "kv", "rate_rps": 1000},
        "auth": {"key_file": "k/cluster.key", "accept_key_files": ["/etc/old.key"]}
    }"#;

    fn err(text: &str) -> String {
        ClusterFile::from_json("c.json", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_file_parses() {
        let c = ClusterFile::from_json("c.json", GOOD).unwrap();
        assert_eq!(c.app(), AppKind::Kv);
        assert!(c.multicast && c.storage.fsync);
        assert_eq!(c.expand(c.group()), vec![c.group()]);
        assert_eq!(c.node_config(2).cluster.unwrap().peers.len(), 3);
    }

    #[test]
    fn errors_name_file_and_field() {
        assert!(err(&GOOD.replace("\"app\": \"kv\",\n", "\"colour\": 1,"))
            .starts_with("c.json: field `colour`: unknown field `colour`, expected one of `name`"));
        assert!(err(&GOOD.replace("10.77.0.2:7000", "10.77.0.2"))
            .starts_with("c.json: field `nodes[1].address`: "));
        assert!(err(&GOOD.replace("10.77.0.3:7000", "10.77.0.3:7001"))
            .starts_with("c.json: field `nodes[2].address`: with multicast"));
        assert!(err(&GOOD.replace("\"group\": \"239.1.1.1:7000\",", ""))
            .starts_with("c.json: field `group`: "));
        assert!(err(&GOOD.replace("hovercraft\"", "hovercraft++\""))
            .starts_with("c.json: field `mode`: "));
        assert!(
            err(&GOOD.replace("1000}", "-1}")).starts_with("c.json: field `workload.rate_rps`: ")
        );
        assert!(err(&GOOD.replace("\"id\": 1", "\"id\": 5"))
            .starts_with("c.json: field `nodes[1].id`: "));
        assert!(
            err("{").starts_with("c.json: EOF while parsing"),
            "{}",
            err("{")
        );
        for e in [err("{"), err(&GOOD.replace("10.77.0.2:7000", "x"))] {
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    /// Core's `RaftConfig::validate` rejects what would panic or DROP every request.
    #[test]
    fn raft_section_is_checked_by_core() {
        let with = |raft: &str| {
            err(&GOOD.replace("\"storage\"", &format!("\"raft\": {raft}, \"storage\"")))
        };
        for (raft, field) in [
            (
                r#"{"max_entries_per_append": 5000}"#,
                "raft.max_entries_per_append",
            ),
            (
                r#"{"max_entries_per_append": 0}"#,
                "raft.max_entries_per_append",
            ),
            (
                r#"{"flow_control_threshold": 0}"#,
                "raft.flow_control_threshold",
            ),
            (r#"{"replier_bound": 0}"#, "raft.replier_bound"),
            (
                r#"{"election_timeout_min_us": 18446744073709551615, "election_timeout_max_us": 18446744073709551615}"#,
                "raft.election_timeout_min_us",
            ),
            (r#"{"heartbeat_us": 0}"#, "raft.heartbeat_us"),
            (r#"{"canary": "skip-prev-log-check"}"#, "raft.canary"),
        ] {
            let e = with(raft);
            assert!(
                e.starts_with(&format!("c.json: field `{field}`: ")),
                "{raft}: {e}"
            );
        }
        assert_eq!(
            with(r#"{"max_entries_per_append": 5000}"#),
            "c.json: field `raft.max_entries_per_append`: must be 1..=1024 (got 5000)"
        );
        assert!(err(&GOOD.replace(
            "\"storage\"",
            "\"loadgen\": {\"timeout_ms\": 18446744073709551615}, \"storage\""
        ))
        .starts_with("c.json: field `loadgen.timeout_ms`: "));
    }

    #[test]
    fn auth_is_required_and_key_paths_are_relative_to_the_file() {
        let c = ClusterFile::from_json("/etc/hc/c.json", GOOD).unwrap();
        assert_eq!(
            c.key_paths().unwrap(),
            vec![
                PathBuf::from("/etc/hc/k/cluster.key"),
                PathBuf::from("/etc/old.key")
            ]
        );
        let c = ClusterFile::from_json("c.json", GOOD).unwrap();
        assert_eq!(c.key_paths().unwrap()[0], PathBuf::from("./k/cluster.key"));
        let auth = r#""auth": {"key_file": "k/cluster.key", "accept_key_files": ["/etc/old.key"]}"#;
        let e = err(&GOOD.replace(&format!(",\n        {auth}"), ""));
        assert!(
            e.starts_with("c.json: field `auth`: missing: ")
                && e.contains("keygen")
                && !e.contains('\n'),
            "{e}"
        );
        let open = ClusterFile::from_json(
            "c.json",
            &GOOD.replace(auth, r#""auth": {"unauthenticated": true}"#),
        )
        .unwrap();
        assert!(open.key_paths().is_none());
        assert!(err(&GOOD.replace(auth, r#""auth": {}"#))
            .starts_with("c.json: field `auth.key_file`: missing"));
        assert!(err(&GOOD.replace(auth, r#""auth": {"key": "abc"}"#))
            .starts_with("c.json: field `auth.key`: unknown field"));
        assert!(err(&GOOD.replace(
            auth,
            r#""auth": {"unauthenticated": true, "key_file": "k"}"#
        ))
        .starts_with("c.json: field `auth.unauthenticated`: contradicts"));
    }

    #[test]
    fn without_multicast_the_group_fans_out() {
        let c = ClusterFile::from_json(
            "c.json",
            &GOOD
                .replace("\"group\": \"239.1.1.1:7000\",", "\"multicast\": false,")
                .replace("10.77.0.2:7000", "10.77.0.1:7001")
                .replace("10.77.0.3:7000", "10.77.0.1:7002"),
        )
        .unwrap();
        assert_eq!(c.expand(c.group()), c.peers());
    }

    #[test]
    fn authenticated_raft_packets_leave_room_for_the_mac_in_one_frame() {
        let c = ClusterFile::from_json("c.json", GOOD).unwrap();
        let cfg = c.node_config(0);
        assert_eq!(
            cfg.cluster_datagram_overhead_bytes,
            crate::auth::TRAILER_BYTES
        );
        let packet = hovercraft_core::wire::header::HEADER_LEN
            + hovercraft_core::wire::MAX_PACKET_PAYLOAD
            - cfg.cluster_datagram_overhead_bytes;
        assert!(packet + crate::auth::TRAILER_BYTES <= crate::frame::MAX_PAYLOAD);
        let open = ClusterFile::from_json(
            "c.json",
            &GOOD.replace(
                r#""auth": {"key_file": "k/cluster.key", "accept_key_files": ["/etc/old.key"]}"#,
                r#""auth": {"unauthenticated": true}"#,
            ),
        )
        .unwrap();
        assert_eq!(open.node_config(0).cluster_datagram_overhead_bytes, 0);
    }

    #[test]
    fn client_limits_default_on_and_can_be_set_or_switched_off() {
        let c = ClusterFile::from_json("c.json", GOOD).unwrap();
        let l = c.node_config(0).client_limits;
        assert_eq!(l.max_request_bytes, 128 * 1024);
        assert_eq!(l.max_reply_bytes, 1 << 20);
        assert_eq!(l.amplification.unwrap().factor, 8);
        let with =
            |limits: &str| GOOD.replace("\"group\"", &format!("\"limits\": {limits}, \"group\""));
        let off = ClusterFile::from_json(
            "c.json",
            &with(r#"{"max_request_bytes": 1000, "reply_amplification": null}"#),
        )
        .unwrap();
        let l = off.node_config(0).client_limits;
        assert_eq!((l.max_request_bytes, l.amplification), (1000, None));
        assert_eq!(
            l.max_reply_bytes,
            1 << 20,
            "unset fields keep their default"
        );
        let tuned = ClusterFile::from_json(
            "c.json",
            &with(r#"{"reply_amplification": {"budget_bytes_per_s": 5}}"#),
        )
        .unwrap();
        let a = tuned.node_config(0).client_limits.amplification.unwrap();
        assert_eq!((a.factor, a.budget_bytes_per_s), (8, 5));
        assert!(err(&with(r#"{"max_reply_bytes": 0}"#))
            .starts_with("c.json: field `limits.max_reply_bytes`: must be positive"));
        assert!(err(&with(r#"{"reply_amplification": {"factor": 0}}"#))
            .starts_with("c.json: field `limits.reply_amplification`: factor"));
        assert!(err(&with(r#"{"max_body": 1}"#))
            .starts_with("c.json: field `limits.max_body`: unknown field"));
    }
}

#[cfg(test)]
mod shipped {
    #[test]
    fn shipped_cluster_files_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters");
        for f in ["local-3.json", "netns-3.json", "local-3-redis.json"] {
            super::ClusterFile::load(&dir.join(f)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// DPDK's per-process runtime directories (`/var/run/dpdk/<file-prefix>…`) whose names start
/// with the given stem, removed on drop: processes started with `--file-prefix` leave them
/// behind, and a test or bench that starts such processes cleans up after itself.
pub struct DpdkRunDirs(pub String);

impl Drop for DpdkRunDirs {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/var/run/dpdk") else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&self.0) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
