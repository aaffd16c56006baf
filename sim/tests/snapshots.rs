//! Snapshots of fixed-seed summaries: any change in simulated behaviour shows up in review as
//! a diff of these files (`cargo insta review` to accept an intended change).

mod common;

use common::scenario;
use serde_json::json;

fn summary_without_manifest(s: hovercraft_sim::Scenario) -> serde_json::Value {
    let summary = hovercraft_sim::run_scenario(s, None).unwrap();
    let mut v = serde_json::to_value(summary).unwrap();
    v.as_object_mut().unwrap().remove("manifest");
    v
}

#[test]
fn unreplicated_moderate_load_summary() {
    let s = scenario(json!({
        "name": "snap-unreplicated",
        "seed": 7,
        "duration_ms": 10, "warmup_ms": 1,
        "clients": { "machines": 2, "ports_per_machine": 2 },
        "workload": { "rate_rps": 40000.0, "reply_bytes": 2000,
                      "service_time": { "kind": "bimodal", "low_ns": 5000, "high_ns": 50000, "high_fraction": 0.1 } }
    }));
    insta::assert_json_snapshot!(summary_without_manifest(s));
}

#[test]
fn unreplicated_overload_summary() {
    let s = scenario(json!({
        "name": "snap-overload",
        "seed": 3,
        "duration_ms": 10, "warmup_ms": 1,
        "cpu": { "rx_queue_packets": 64 },
        "clients": { "machines": 1, "ports_per_machine": 1, "timeout_ms": 5 },
        "workload": { "rate_rps": 200000.0 }
    }));
    insta::assert_json_snapshot!(summary_without_manifest(s));
}

#[test]
fn hovercraft_three_nodes_summary() {
    let s = scenario(json!({
        "name": "snap-hovercraft",
        "seed": 11,
        "mode": "hovercraft",
        "nodes": 3,
        "duration_ms": 8, "warmup_ms": 1,
        "clients": { "machines": 2, "ports_per_machine": 2 },
        "workload": { "rate_rps": 60000.0, "read_only_fraction": 0.75 }
    }));
    insta::assert_json_snapshot!(summary_without_manifest(s));
}

#[test]
fn raft_three_nodes_summary() {
    let s = scenario(json!({
        "name": "snap-raft",
        "seed": 12,
        "mode": "raft",
        "nodes": 3,
        "duration_ms": 8, "warmup_ms": 1,
        "storage": { "write_latency_ns": 2000 },
        "clients": { "machines": 2, "ports_per_machine": 2 },
        "workload": { "rate_rps": 40000.0, "read_only_fraction": 0.5 }
    }));
    insta::assert_json_snapshot!(summary_without_manifest(s));
}
