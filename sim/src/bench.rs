//! `hovercraft-sim bench`: how fast the model runs, as a ratio against a bare event loop
//! measured in the same process, so the figure means the same on any machine.
//!
//! (a) baseline: the same [`EventQueue`] holding as many pending events as the model does on
//!     average (measured in the same run); each step
//!     pops one and schedules one at an exponential ChaCha8 draw ahead — the irreducible cost
//!     of a discrete-event simulation. (b) the `unreplicated` model at high load. Wall time is
//!     read here only to report speed; it never reaches the model.
//!
//! (c) the work users size sweeps by: a star of `n` servers and 4 client machines at
//!     1M req/s of 64-byte requests and replies (Poisson, no service time), for 0.1 s
//!     simulated, in `raft`, `hovercraft` and `hovercraft++`: CPU seconds per simulated
//!     second (of the loaded 0.1 s; the drain after it is charged to it too) and delivered
//!     packets per CPU second. The same star was run in ns-3 for the issue-17 comparison.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::EventQueue;
use crate::scenario::Scenario;
use crate::world::World;

pub struct BenchReport {
    /// Pending events in the baseline queue: the model's own mean, so both loops pay for a
    /// heap of the same depth.
    pub pending: usize,
    pub baseline_events: u64,
    pub baseline_events_per_s: f64,
    pub model_events: u64,
    pub model_events_per_s: f64,
}

impl BenchReport {
    pub fn ratio(&self) -> f64 {
        self.model_events_per_s / self.baseline_events_per_s
    }
}

#[allow(clippy::disallowed_methods)] // wall time measures speed; it never feeds the model
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// The bare loop: `events` pops and pushes with `pending` events in the queue.
pub fn baseline(events: u64, pending: usize, seed: u64) -> (u64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut q: EventQueue<u64> = EventQueue::new();
    for i in 0..pending as u64 {
        q.schedule(rng.gen_range(0..1_000_000), i);
    }
    let start = wall_now();
    let mut checksum = 0u64;
    for _ in 0..events {
        let (t, e) = q.pop().expect("population is constant");
        checksum = checksum.wrapping_add(e);
        let u: f64 = rng.gen();
        q.schedule(t + (-(1.0 - u).ln() * 1_000.0) as u64, e);
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    (events, events as f64 / secs)
}

/// The model at high load: the unreplicated server at ~90% of its capacity.
pub fn model_scenario(duration_ms: u64) -> Scenario {
    let json = format!(
        r#"{{"name":"bench","seed":1,"mode":"unreplicated","nodes":1,"duration_ms":{duration_ms},
            "warmup_ms":1,"workload":{{"rate_rps":700000,"service_time":{{"kind":"fixed","ns":500}}}}}}"#
    );
    Scenario::from_json("<bench>", &json).expect("bench scenario is valid")
}

/// Runs the model; returns (events, events per second, mean pending events).
pub fn model(duration_ms: u64) -> (u64, f64, f64) {
    let mut world = World::new(model_scenario(duration_ms));
    let start = wall_now();
    world.run_until(u64::MAX);
    let secs = start.elapsed().as_secs_f64();
    let events = world.events();
    (events, events as f64 / secs, world.mean_pending_events())
}

/// The 1M req/s star: `nodes` servers in `mode`, 4 client machines, 64-byte requests and
/// replies, no service time, `duration_ms` simulated under load.
pub fn star_scenario(mode: &str, nodes: usize, duration_ms: u64) -> Scenario {
    // Warm-up below the duration even for the short runs of `--quick`.
    let warmup_ms = (duration_ms / 5).clamp(1, 10);
    let json = format!(
        r#"{{"name":"star-{mode}-{nodes}","seed":1,"mode":"{mode}","nodes":{nodes},
            "duration_ms":{duration_ms},"warmup_ms":{warmup_ms},
            "clients":{{"machines":4,"ports_per_machine":8,"timeout_ms":50}},
            "workload":{{"app":"synthetic","rate_rps":1000000,"request_bytes":64,
                         "reply_bytes":64,"service_time":{{"kind":"fixed","ns":0}},
                         "read_only_fraction":0}}}}"#
    );
    Scenario::from_json("<bench star>", &json).expect("bench star scenario is valid")
}

/// One star run.
pub struct StarReport {
    pub mode: &'static str,
    pub nodes: usize,
    pub loaded_ms: u64,
    pub events: u64,
    pub packets: u64,
    pub mean_pending: f64,
    pub wall_s: f64,
    /// Heap allocations during the run (0 where the allocator does not count: see
    /// [`crate::alloc_count`]).
    pub allocations: u64,
}

impl StarReport {
    /// CPU (wall, single-threaded) seconds per simulated second of load.
    pub fn cpu_s_per_sim_s(&self) -> f64 {
        self.wall_s / (self.loaded_ms as f64 / 1e3)
    }

    pub fn packets_per_cpu_s(&self) -> f64 {
        self.packets as f64 / self.wall_s
    }

    pub fn allocations_per_packet(&self) -> f64 {
        self.allocations as f64 / self.packets.max(1) as f64
    }
}

pub fn star(mode: &'static str, nodes: usize, loaded_ms: u64) -> StarReport {
    let mut world = World::new(star_scenario(mode, nodes, loaded_ms));
    let allocations_before = crate::alloc_count::allocations();
    let start = wall_now();
    // To the run's end (replicas keep heartbeating forever after it).
    world.run_to_end();
    let wall_s = start.elapsed().as_secs_f64();
    let allocations = crate::alloc_count::allocations() - allocations_before;
    StarReport {
        mode,
        nodes,
        loaded_ms,
        events: world.events(),
        packets: world.packets_delivered(),
        mean_pending: world.mean_pending_events(),
        wall_s,
        allocations,
    }
}

pub fn run(quick: bool) -> BenchReport {
    let (model_ms, base_events) = if quick {
        (50, 2_000_000)
    } else {
        (400, 20_000_000)
    };
    // Warm both paths once so neither pays first-touch costs in the measurement.
    baseline(base_events / 10, 64, 7);
    model(model_ms / 10);
    let (model_events, model_events_per_s, mean_pending) = model(model_ms);
    let pending = (mean_pending.round() as usize).max(1);
    let (baseline_events, baseline_events_per_s) = baseline(base_events, pending, 7);
    BenchReport {
        pending,
        baseline_events,
        baseline_events_per_s,
        model_events,
        model_events_per_s,
    }
}

#[cfg(test)]
mod tests {
    /// `bench --quick` warms up on a 5 ms star: every duration it uses must be a valid
    /// scenario (CI once found the warm-up longer than the run).
    #[test]
    fn star_scenarios_are_valid_for_every_bench_duration() {
        for mode in ["raft", "hovercraft", "hovercraft++"] {
            for ms in [5, 20, 25, 100] {
                let s = super::star_scenario(mode, 5, ms);
                assert!(s.warmup_ms < s.duration_ms, "{mode} {ms}");
            }
        }
    }
}
