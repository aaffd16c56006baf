//! The offered load, shared by the simulator's client machines and the runtime's load
//! generator so that both send the same requests from the same seed.
//!
//! - [`config`]: the `workload` section of scenario and cluster files, and its validation.
//! - [`file_error`]: the one-line file/field/reason error of scenario-shaped files.
//! - [`generator`]: one client machine's arrivals and request bodies, drawn from seeded streams.

pub mod config;
pub mod file_error;
pub mod generator;

pub use config::{KeyDistribution, ServiceTime, WorkloadConfig, YcsbConfig, MAX_YCSB_RECORDS};
pub use file_error::ScenarioError;
pub use generator::{Generator, RequestSpec};

/// The top-level fields of a simulator scenario file. The runtime's load generator reads only
/// some of them (`--scenario`), but refuses a field not in this list, so a typo is an error
/// there too; a simulator test keeps the list equal to its `Scenario` type.
pub const SCENARIO_FIELDS: [&str; 16] = [
    "name",
    "seed",
    "mode",
    "nodes",
    "duration_ms",
    "warmup_ms",
    "network",
    "cpu",
    "clients",
    "workload",
    "raft",
    "storage",
    "bootstrap_leader",
    "faults",
    "slo_p99_us",
    "timeline_bucket_ms",
];
