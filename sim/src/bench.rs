//! `hovercraft-sim bench`: how fast the model runs, as a ratio against a bare event loop
//! measured in the same process, so the figure means the same on any machine.
//!
//! (a) baseline: the same [`EventQueue`] holding as many pending events as the model does on
//!     average (measured in the same run); each step
//!     pops one and schedules one at an exponential ChaCha8 draw ahead — the irreducible cost
//!     of a discrete-event simulation. (b) the `unreplicated` model at high load. Wall time is
//!     read here only to report speed; it never reaches the model.

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
