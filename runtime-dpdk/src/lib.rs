//! hovercraft-runtime: drives the same sans-IO `hovercraft_core::Node` over a real network.
//!
//! Placeholder until the runtime issues land: the kernel UDP backend, the `hovercraft-node`
//! and `hovercraft-loadgen` binaries, and the DPDK backend behind feature `dpdk`. It compiles
//! against the core so API drift shows up in `cargo build --workspace`.
#![forbid(unsafe_code)]

pub use hovercraft_core as core;
