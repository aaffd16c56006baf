//! hovercraft-sim: a deterministic discrete-event simulator that drives the sans-IO
//! HovercRaft core over a modelled datacenter network.
//!
//! Layout:
//! - [`engine`]: the event queue (virtual time in ns, deterministic tie-breaking).
//! - [`network`]: topology and routing (petgraph), NICs and RX steering, switch-port queues,
//!   multicast, the HovercRaft++ aggregator in the switch, fault rules over links.
//! - [`cpu`]: the single busy-polling core of each server node.
//! - [`workload`]: open-loop Poisson clients and service-time distributions.
//! - [`world`]: hosts and the event loop that glues it all to the core: the server driver,
//!   the application core, the client driver, fault injection, the summary.
//! - [`storage`]: each replica's storage device (write latency, what a crash loses).
//! - [`trace`]: the event trace (one line per event) and how datagrams and events read in it.
//! - [`metrics`]: latency histograms, counters and `summary.json`.
//! - [`scenario`]: scenario files, validation, errors that name file and field.
//! - [`check`]: safety and liveness checkers, swarm worlds from seeds.
//! - [`compare`]: two `summary.json` files side by side (simulator vs real runtime).
//! - [`bench`]: the `bench` subcommand (event-loop baseline vs model).
//! - [`sweep`]: sweeps over systems, axes and loads; the SLO search; tables and plots
//!   (`sweep` and `reproduce` subcommands).
//!
//! Determinism: no wall clock, no unseeded randomness, no iteration over randomly hashed
//! maps (clippy.toml forbids them). One seed and one scenario give one byte-identical run.
#![forbid(unsafe_code)]

pub mod alloc_count;
pub mod bench;
pub mod check;
pub mod compare;
pub mod cpu;
pub mod engine;
pub mod metrics;
pub mod network;
pub mod scenario;
pub mod storage;
pub mod sweep;
pub mod trace;
pub mod workload;
pub mod world;

pub use scenario::Scenario;
pub use world::World;

/// Runs a scenario to completion and returns its summary (manifest left empty).
pub fn run_scenario(
    scenario: Scenario,
    trace: Option<Box<dyn std::io::Write>>,
) -> Result<metrics::Summary, std::io::Error> {
    let mut world = World::new(scenario);
    if let Some(t) = trace {
        world.set_trace(t);
    }
    world.run()
}
