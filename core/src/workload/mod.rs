//! The offered load, shared by the simulator's client machines and the runtime's load
//! generator so that both send the same requests from the same seed.
//!
//! - [`config`]: the `workload` section of scenario and cluster files, and its validation.
//! - [`generator`]: one client machine's arrivals and request bodies, drawn from seeded streams.

pub mod config;
pub mod generator;

pub use config::{KeyDistribution, ServiceTime, WorkloadConfig, YcsbConfig, MAX_YCSB_RECORDS};
pub use generator::{Generator, RequestSpec};
