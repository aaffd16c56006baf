//! The fault model against what its scenario fields promise: one loss/duplication draw per
//! link traversal, no state outliving a frame, timers running from time 0, and partitions
//! that also cut what the switch's aggregator relays.

mod common;

use std::net::SocketAddrV4;

use common::scenario;
use hovercraft_sim::World;
use serde_json::{json, Value};

const SERVER: &str = "10.0.0.1:8000";

/// A single server (host 0) with link chaos on it from `at_ms`, and one idle client
/// machine (host 1) to inject frames from.
fn chaos_world(faults: Value) -> World {
    World::new(scenario(json!({
        "duration_ms": 100,
        "workload": { "rate_rps": 1.0 },
        "faults": faults
    })))
}

/// Host 1 sends `n` small frames to the server, all at the current time.
fn burst(w: &mut World, n: usize) {
    let server: SocketAddrV4 = SERVER.parse().unwrap();
    for _ in 0..n {
        w.inject(1, 7000, server, vec![0u8; 32]);
    }
}

/// Loss 0.3 with up to 200 µs of delay once measured 0.49 effective: a held-back frame drew
/// loss again when it re-arrived. One draw per traversal: the loss is 0.3.
#[test]
fn link_chaos_draws_loss_once_per_traversal() {
    let mut w = chaos_world(json!([{ "action": "link_chaos", "at_ms": 0, "heal_ms": 90,
        "node": 0, "loss": 0.3, "duplicate": 0.0, "delay_max_us": 200 }]));
    w.run_until(1_000);
    let n = 4_000;
    burst(&mut w, n);
    w.run_until(20_000_000);
    let delivered = w.host_packets_rx(0) as f64 / n as f64;
    assert!(
        (0.67..=0.73).contains(&delivered),
        "delivered {delivered} (loss 0.3 means 0.7)"
    );
}

/// Duplication 0.5 with delay: a duplicate copy once drew duplication again on arrival (one
/// write arrived 14 times). One draw per traversal: 1.5 deliveries per frame, at most 2.
#[test]
fn link_chaos_duplicates_a_frame_at_most_once() {
    let mut w = chaos_world(json!([{ "action": "link_chaos", "at_ms": 0, "heal_ms": 90,
        "node": 0, "loss": 0.0, "duplicate": 0.5, "delay_max_us": 200 }]));
    w.run_until(1_000);
    let n = 4_000;
    burst(&mut w, n);
    w.run_until(20_000_000);
    let per_frame = w.host_packets_rx(0) as f64 / n as f64;
    assert!(
        (1.46..=1.54).contains(&per_frame),
        "{per_frame} deliveries per frame (duplicate 0.5 means 1.5)"
    );
}

/// A frame lost on its second pass, or held back until its host crashed, once left its slab
/// index in a "late" table: a later frame reusing the index was taken as already delayed and
/// skipped the delay rule. Here many frames of a first burst are lost or meet a crashed
/// host; a second burst under a long delay must still be delayed, almost all of it.
#[test]
fn frames_reusing_a_slab_index_are_judged_afresh() {
    let mut w = chaos_world(json!([
        { "action": "link_chaos", "at_ms": 0, "heal_ms": 5,
          "node": 0, "loss": 0.5, "duplicate": 0.5, "delay_max_us": 2000 },
        { "action": "crash_node", "at_ms": 1, "node": 0 },
        { "action": "restart_node", "at_ms": 4, "node": 0 },
        { "action": "link_chaos", "at_ms": 10, "heal_ms": 90,
          "node": 0, "loss": 0.0, "duplicate": 0.0, "delay_max_us": 10000 }
    ]));
    w.run_until(1_000);
    burst(&mut w, 2_000);
    w.run_until(11_000_000);
    let before = w.host_packets_rx(0);
    let n = 2_000;
    burst(&mut w, n);
    // Delays are uniform in 0..10 ms: within 0.5 ms about 5% of the burst has arrived
    // (frames that skipped the delay would arrive within a few µs).
    w.run_until(11_500_000);
    let early = (w.host_packets_rx(0) - before) as f64 / n as f64;
    assert!(early < 0.10, "{early} of the burst skipped the delay");
    w.run_until(30_000_000);
    assert_eq!(
        w.host_packets_rx(0) - before,
        n as u64,
        "every frame arrives"
    );
}

/// At a low request rate nobody campaigned before the first packet, then every node did in
/// the same nanosecond: the nodes' timers now run from time 0.
#[test]
fn a_leader_is_elected_before_any_request() {
    let mut w = World::new(scenario(json!({
        "mode": "raft", "nodes": 3, "bootstrap_leader": false,
        "workload": { "rate_rps": 0.001 }
    })));
    w.run_until(40_000_000);
    assert_eq!(w.leaders().len(), 1, "{:?}", w.leaders());
}

/// In HovercRaft++ the leader's AppendEntries reach the followers through the switch's
/// aggregator. Isolating the leader once cut only direct links, so the followers kept
/// hearing it through the switch and never elected anyone: the partition must also cut the
/// relayed traffic, and the other side elects a new leader.
#[test]
fn isolating_the_leader_also_cuts_what_the_switch_relays() {
    let mut w = World::new(scenario(json!({
        "mode": "hovercraft++", "nodes": 3, "bootstrap_leader": true, "duration_ms": 100,
        "workload": { "rate_rps": 20000.0 },
        "faults": [{ "action": "isolate_leader", "at_ms": 20, "heal_ms": 90 }]
    })));
    w.run_until(19_000_000);
    let old = w.leaders();
    assert_eq!(old.len(), 1, "{old:?}");
    w.run_until(80_000_000);
    let new: Vec<_> = w
        .leaders()
        .into_iter()
        .filter(|&(h, term)| h != old[0].0 && term > old[0].1)
        .collect();
    assert_eq!(
        new.len(),
        1,
        "no new leader on the majority side: {:?}",
        w.leaders()
    );
}
