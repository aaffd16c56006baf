//! hovercraft-core: the sans-IO protocol core of the HovercRaft testbed.
//!
//! Nothing in this crate owns a socket, a thread or a clock. Inputs are method calls that carry
//! `now` (`handle_datagram`, `handle_timeout`); outputs are pulled (`poll_transmit`,
//! `poll_timeout`, `poll_event`). The simulator (`hovercraft-sim`) and the real runtime
//! (`hovercraft-runtime`) drive the same types through the same methods.
//!
//! Layout:
//! - [`types`]: `NodeId` and `Mode`, shared by every layer.
//! - [`time`]: `Instant`/`Duration` in nanoseconds (virtual or real, the core cannot tell).
//! - [`rng`]: seeded `ChaCha8Rng` streams derived from one master seed.
//! - [`wire`]: byte codecs — the R2P2 header, multi-packet framing, Raft messages.
//! - [`r2p2`]: R2P2 endpoints — client (requests, timeouts, DROPs) and server (reassembly).
//! - [`app`]: applications behind the [`app::StateMachine`] trait (synthetic, kv).
//! - [`raft`]: Raft and HovercRaft consensus as a component: messages, proposals, time and
//!   persistence in; messages, persist requests, committed entries and events out.
//! - [`switch`]: the HovercRaft++ in-switch aggregator (reference for the P4 program).
//! - [`node`]: the server `Node` that drivers run, one per replica: an R2P2 endpoint, an
//!   optional replica and an executor (application, reply/DROP framing, CPU accounting).
//! - [`workload`]: the `workload` section of scenario and cluster files, and the request
//!   generator of a client machine.
//! - [`loadclient`]: the load client's target choice, leader hint and outcome accounting
//!   (shared by the simulator's clients and the runtime's load generator).
//! - [`summary`]: latency percentiles and the timeline of `summary.json`.
#![forbid(unsafe_code)]

pub mod app;
pub mod loadclient;
pub mod node;
pub mod r2p2;
pub mod raft;
pub mod rng;
pub mod summary;
pub mod switch;
pub mod time;
pub mod types;
pub mod wire;
pub mod workload;

pub use node::{Node, NodeConfig, NodeEvent};
pub use time::{Duration, Instant};
pub use wire::{Transmit, WireError};
