//! Swarm testing: every option of a checked run — cluster size, mode, workload, storage
//! speed and a fault schedule — is drawn from one seed, so a range of seeds explores many
//! different worlds, and one seed replays one world exactly.
//!
//! The schedule has two phases, as in TigerBeetle's VOPR: faults (crashes and restarts,
//! partitions, one-way links, loss/duplication/reordering, slow storage, clock skew, switch
//! failure) during the first part of the run, all healed by `HEAL_BY_MS`; then, from
//! `LIVENESS_FROM_MS`, every request must be answered.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use hovercraft_core::rng::{stream_rng, Stream};

use crate::scenario::Scenario;

pub const DURATION_MS: u64 = 200;
pub const FAULTS_FROM_MS: u64 = 10;
pub const HEAL_BY_MS: u64 = 100;
/// Every fault healed 60 ms before: a few election timeouts to settle.
pub const LIVENESS_FROM_MS: u64 = 160;

/// The world of `seed` (optionally with a canary bug switched on).
pub fn scenario_for_seed(seed: u64, canary: Option<&str>) -> Scenario {
    let json = scenario_json(seed, canary);
    Scenario::from_json(&format!("<seed {seed}>"), &json.to_string())
        .expect("swarm scenarios are valid by construction")
}

pub fn scenario_json(seed: u64, canary: Option<&str>) -> Value {
    let mut rng = stream_rng(seed, Stream::Faults, 0);
    let mode = *["raft", "hovercraft", "hovercraft++"]
        .choose(&mut rng)
        .expect("non-empty");
    let nodes: u32 = *[3, 3, 5, 5, 7].choose(&mut rng).expect("non-empty");
    let rate = rng.gen_range(2_000.0..12_000.0f64).round();
    let read_only = *[0.0, 0.5, 0.9].choose(&mut rng).expect("non-empty");
    let storage_ns = *[0u64, 2_000, 20_000].choose(&mut rng).expect("non-empty");
    let mut faults = Vec::new();
    let n_faults = rng.gen_range(1..=4);
    // At most a minority of nodes is down at any time: crash/restart windows do not overlap.
    let mut next_crash_ok_ms = FAULTS_FROM_MS;
    for _ in 0..n_faults {
        let at = rng.gen_range(FAULTS_FROM_MS..HEAL_BY_MS - 5);
        let heal = rng.gen_range(at + 1..=HEAL_BY_MS);
        let node = rng.gen_range(0..nodes);
        let kind = rng.gen_range(0..8);
        match kind {
            0 | 1 => {
                let at = at.max(next_crash_ok_ms);
                if at >= HEAL_BY_MS - 2 {
                    continue;
                }
                let restart = rng.gen_range(at + 1..=HEAL_BY_MS);
                next_crash_ok_ms = restart + 1;
                faults.push(json!({ "action": "crash_node", "at_ms": at, "node": node }));
                faults.push(json!({ "action": "restart_node", "at_ms": restart, "node": node }));
            }
            2 => {
                if rng.gen_bool(0.5) {
                    faults.push(json!({ "action": "isolate_leader", "at_ms": at, "heal_ms": heal }));
                } else {
                    let at = at.max(next_crash_ok_ms);
                    if at >= HEAL_BY_MS - 2 {
                        continue;
                    }
                    let restart = rng.gen_range(at + 1..=HEAL_BY_MS);
                    next_crash_ok_ms = restart + 1;
                    faults.push(json!({ "action": "crash_leader", "at_ms": at, "restart_ms": restart }));
                }
            }
            3 => {
                let mut ids: Vec<u32> = (0..nodes).collect();
                ids.shuffle(&mut rng);
                let cut = rng.gen_range(1..nodes) as usize;
                faults.push(json!({ "action": "partition", "at_ms": at, "heal_ms": heal,
                                    "groups": [ids[..cut].to_vec(), ids[cut..].to_vec()] }));
            }
            4 => {
                let to = (node + rng.gen_range(1..nodes)) % nodes;
                faults.push(json!({ "action": "one_way", "at_ms": at, "heal_ms": heal, "from": node, "to": to }));
            }
            5 => faults.push(json!({ "action": "link_chaos", "at_ms": at, "heal_ms": heal, "node": node,
                                     "loss": rng.gen_range(0.0..0.05f64), "duplicate": rng.gen_range(0.0..0.05f64),
                                     "delay_max_us": rng.gen_range(0..200u64) })),
            6 => faults.push(json!({ "action": "storage_slow", "at_ms": at, "heal_ms": heal, "node": node,
                                     "write_latency_ns": rng.gen_range(10_000..200_000u64) })),
            _ => {
                if mode == "hovercraft++" {
                    faults.push(json!({ "action": "aggregator_down", "at_ms": at }));
                    faults.push(json!({ "action": "aggregator_up", "at_ms": heal }));
                } else {
                    faults.push(json!({ "action": "clock_skew", "at_ms": at, "node": node,
                                        "ppm": rng.gen_range(-50_000..50_000i64) }));
                }
            }
        }
    }
    faults.sort_by_key(|f| f["at_ms"].as_u64());
    // Small AppendEntries batches let an earlier term's entries reach a majority on their own,
    // before the new leader's first entry (the Raft Figure 8 situation).
    let batch = *[4u64, 8, 30].choose(&mut rng).expect("non-empty");
    let mut raft = json!({ "max_entries_per_append": batch });
    if let Some(c) = canary {
        raft["canary"] = json!(c);
    }
    // A third of the worlds run the kv store with a few hot keys, so the client history can
    // be checked for linearizability.
    let workload = if rng.gen_bool(1.0 / 3.0) {
        json!({ "app": "kv", "rate_rps": rate, "read_only_fraction": 0.5,
                "kv_keys": rng.gen_range(1..8u32) })
    } else {
        json!({ "rate_rps": rate, "read_only_fraction": read_only,
                "service_time": { "kind": "exponential", "mean_ns": rng.gen_range(1_000..10_000u64) } })
    };
    json!({
        "name": format!("check-seed-{seed}"),
        "seed": seed,
        "mode": mode,
        "nodes": nodes,
        "duration_ms": DURATION_MS,
        "warmup_ms": 5,
        "bootstrap_leader": rng.gen_bool(0.5),
        "storage": { "write_latency_ns": storage_ns },
        "clients": { "machines": 2, "ports_per_machine": 4, "timeout_ms": 30 },
        "raft": raft,
        "workload": workload,
        "faults": faults
    })
}
