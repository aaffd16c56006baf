//! One seed and one scenario give one run, byte for byte.

mod common;

use common::{scenario, SharedBuf};
use hovercraft_sim::metrics::Summary;
use hovercraft_sim::Scenario;
use serde_json::json;

fn traced_run(s: Scenario) -> (Vec<u8>, Summary) {
    let buf = SharedBuf::default();
    let summary = hovercraft_sim::run_scenario(s, Some(Box::new(buf.clone()))).unwrap();
    let trace = buf.0.borrow().clone();
    (trace, summary)
}

fn quick() -> Scenario {
    scenario(json!({
        "duration_ms": 20, "warmup_ms": 2,
        "workload": { "rate_rps": 60000.0,
                      "service_time": { "kind": "exponential", "mean_ns": 8000 },
                      "reply_bytes": 3000 }
    }))
}

#[test]
fn same_seed_same_bytes_different_seed_different_trace() {
    let (trace_a, summary_a) = traced_run(quick());
    let (trace_b, summary_b) = traced_run(quick());
    assert!(trace_a.len() > 100_000, "the trace covers the run");
    assert!(trace_a == trace_b, "same seed, same trace bytes");
    assert_eq!(summary_a, summary_b);

    let mut other = quick();
    other.seed = 2;
    let (trace_c, summary_c) = traced_run(other);
    assert!(trace_a != trace_c, "another seed draws another run");
    assert_ne!(summary_a.latency_us, summary_c.latency_us);
}

#[test]
fn tracing_does_not_change_the_run() {
    let (_, traced) = traced_run(quick());
    let untraced = hovercraft_sim::run_scenario(quick(), None).unwrap();
    assert_eq!(traced, untraced);
}

/// The replicated modes, with a fault schedule, replay byte for byte too.
#[test]
fn replicated_runs_with_faults_replay_byte_for_byte() {
    for mode in ["raft", "hovercraft", "hovercraft++"] {
        let mut patch = json!({
            "mode": mode, "nodes": 5, "duration_ms": 20, "warmup_ms": 2,
            "bootstrap_leader": false,
            "storage": { "write_latency_ns": 3000 },
            "workload": { "rate_rps": 40000.0, "read_only_fraction": 0.5,
                          "service_time": { "kind": "exponential", "mean_ns": 5000 } },
            "faults": [ { "action": "crash_node", "at_ms": 12, "node": 3 } ]
        });
        if mode == "hovercraft++" {
            patch["faults"] = json!([
                { "action": "aggregator_down", "at_ms": 10 },
                { "action": "aggregator_up", "at_ms": 15 },
                { "action": "crash_node", "at_ms": 12, "node": 3 }
            ]);
        }
        let (a, sa) = traced_run(scenario(patch.clone()));
        let (b, sb) = traced_run(scenario(patch));
        assert!(a.len() > 10_000, "{mode}");
        assert!(a == b, "{mode}: same seed, same trace bytes");
        assert_eq!(sa, sb, "{mode}");
    }
}
