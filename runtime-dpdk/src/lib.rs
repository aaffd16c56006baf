//! hovercraft-runtime: drives the same sans-IO `hovercraft_core::Node` over a real network.
//!
//! - [`auth`]: the MAC trailer and replay window of node-to-node datagrams, key files.
//! - [`clock`]: the real clock adapter (the only place that reads the wall clock).
//! - [`io`]: the [`io::Io`] backend trait and its kernel UDP backend (non-blocking sockets,
//!   multicast join, `ppoll` wait with nanosecond timeouts).
//! - [`cluster`]: the cluster file (`cluster.json`): nodes, mode, app, raft, storage, workload.
//! - [`scenario`]: what `hovercraft-loadgen --scenario` takes from a simulator scenario file.
//! - [`redis`]: the Redis application backend (each replica applies to its own redis-server).
//! - [`ycsb_check`]: YCSB-E scans checked against the inserts acknowledged before them.
//! - [`storage`]: the append-only Raft log file (header with the cluster and node identity,
//!   checksummed numbered records, linear replay that cuts only a torn last write), the
//!   durable snapshot beside it (the log is rewritten behind each one), and the storage
//!   thread (`storage::writer`: group-committed fsync off the event loop).
//! - [`server`]: the node's event loop (`hovercraft-node`).
//! - [`bench`]: the runtime bench — raw R2P2 ping-pong against the cluster, same backend.
//! - [`loadgen`]: the open-loop load generator (`hovercraft-loadgen`), its summary and the
//!   read-back verification of acknowledged kv writes.
//! - [`frame`]: our Ethernet/IPv4/UDP framing (used by the DPDK backend; safe, always built).
//! - `dpdk` (feature `dpdk`): the DPDK backend — the crate's only module allowed `unsafe`.
#![deny(unsafe_code)]

pub use hovercraft_core as core;

pub mod auth;
pub mod bench;
pub mod clock;
pub mod cluster;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod frame;
pub mod io;
pub mod loadgen;
pub mod redis;
pub mod scenario;
pub mod server;
pub mod storage;
pub mod ycsb_check;
