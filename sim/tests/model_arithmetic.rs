//! The model checked against arithmetic a reader can redo by hand.

mod common;

use std::net::SocketAddrV4;

use common::scenario;
use hovercraft_sim::network::link::Bandwidth;
use hovercraft_sim::network::wire_bytes;
use hovercraft_sim::World;
use serde_json::json;

/// At low load there is no queueing, so the median latency is the sum of every fixed cost on
/// the path: client NIC serialization, link, switch, switch-port serialization, link, server
/// RX cost, service time, server TX cost, and the same network path back.
#[test]
fn low_load_latency_is_the_sum_of_path_costs() {
    let s = scenario(json!({
        "duration_ms": 200, "warmup_ms": 10,
        "workload": { "rate_rps": 2000.0, "request_bytes": 16, "reply_bytes": 512,
                      "service_time": { "kind": "fixed", "ns": 10000 } }
    }));
    let net = s.network.clone();
    let cpu = s.cpu.clone();
    let bw = Bandwidth::from_gbps(net.bandwidth_gbps);
    // UDP payloads: R2P2 header (8) + application bytes.
    let req_ser = bw.serialization_ns(wire_bytes(8 + 16));
    let rep_ser = bw.serialization_ns(wire_bytes(8 + 512));
    let one_way =
        |ser: u64| ser + net.link_latency_ns + net.switch_latency_ns + ser + net.link_latency_ns;
    let expected_ns =
        one_way(req_ser) + cpu.rx_ns_per_packet + 10_000 + cpu.tx_ns_per_packet + one_way(rep_ser);
    // The numbers, for a reader checking by hand: 90 B and 586 B on the wire at 10 Gb/s.
    assert_eq!((req_ser, rep_ser), (72, 469));
    assert_eq!(expected_ns, 16_882);

    let summary = World::new(s).run().unwrap();
    let p50_ns = summary.latency_us.p50 * 1e3;
    let err = (p50_ns - expected_ns as f64).abs() / expected_ns as f64;
    assert!(
        err < 0.05,
        "p50 {p50_ns} ns vs analytic {expected_ns} ns ({:.2}% off)",
        err * 100.0
    );
    assert!(summary.measured_requests > 300);
    assert_eq!(summary.dropped, 0);
}

/// Offered 1.5× its capacity, a server completes exactly what its bottleneck core can do.
/// One core for everything: 1 / (S + RX + TX). A separate application core (the default):
/// 1 / (S + TX), since the application core runs the service and sends the reply while the
/// other core receives.
#[test]
fn saturated_throughput_equals_core_capacity() {
    let service_ns = 10_000u64;
    for app_core in ["shared", "separate"] {
        let s = scenario(json!({
            "duration_ms": 100, "warmup_ms": 10,
            "cpu": { "app_core": app_core },
            "workload": { "rate_rps": 1.5e9 / service_ns as f64,
                          "service_time": { "kind": "fixed", "ns": service_ns } }
        }));
        let per_request_ns = match app_core {
            "shared" => service_ns + s.cpu.rx_ns_per_packet + s.cpu.tx_ns_per_packet,
            _ => service_ns + s.cpu.tx_ns_per_packet,
        };
        let capacity_rps = 1e9 / per_request_ns as f64;
        let summary = World::new(s).run().unwrap();
        let err = (summary.completed_rps - capacity_rps).abs() / capacity_rps;
        assert!(
            err < 0.02,
            "{app_core}: completed {} rps vs capacity {capacity_rps:.0} rps ({:.2}% off)",
            summary.completed_rps,
            err * 100.0
        );
        assert!(summary.offered_rps > 1.4 * capacity_rps);
        // The excess is refused or dropped, and counted; the bottleneck core is saturated.
        let n = &summary.per_node[0];
        match app_core {
            "shared" => {
                assert!(summary.network.rx_queue_drops > 0);
                assert!(n.cpu_busy_fraction > 0.99);
            }
            _ => {
                assert!(
                    summary.dropped_by_server > 0,
                    "full application queue answers DROP"
                );
                assert!(n.app_core_busy_fraction.unwrap() > 0.99);
            }
        }
    }
}

/// The switch replicates a multicast frame once per member port: a group of k hosts gets
/// exactly k deliveries, and the sender (not a member) none.
#[test]
fn multicast_to_k_hosts_is_delivered_exactly_k_times() {
    let s = scenario(json!({ "clients": { "machines": 8 }, "workload": { "rate_rps": 1.0 } }));
    let mut w = World::new(s);
    // Hosts: 0 = server, 1..=8 = client machines. Group = 5 client machines.
    let members: Vec<usize> = (2..=6).collect();
    let group = "239.9.9.9".parse().unwrap();
    w.set_multicast_group(group, members.clone());
    let before: Vec<u64> = (0..9).map(|h| w.host_packets_rx(h)).collect();
    w.inject(1, 5555, SocketAddrV4::new(group, 8000), vec![0u8; 100]);
    w.run_until(1_000_000);
    let got: Vec<u64> = (0..9).map(|h| w.host_packets_rx(h) - before[h]).collect();
    for (h, &copies) in got.iter().enumerate() {
        let want = u64::from(members.contains(&h));
        assert_eq!(copies, want, "host {h} got {copies} copies");
    }
    assert_eq!(got.iter().sum::<u64>(), members.len() as u64);
}

/// Two senders at line rate into one switch port overflow its queue: the excess is dropped
/// and counted, and every frame is either delivered or counted as dropped.
#[test]
fn a_full_switch_port_queue_drops_and_counts() {
    let s = scenario(json!({
        "network": { "switch_queue_bytes": 4000 },
        "clients": { "machines": 2 },
        "workload": { "rate_rps": 1.0 }
    }));
    let mut w = World::new(s);
    let server = "10.0.0.1:8000".parse().unwrap();
    for _ in 0..20 {
        w.inject(1, 7000, server, vec![0u8; 1472]);
        w.inject(2, 7000, server, vec![0u8; 1472]);
    }
    w.run_until(1_000_000);
    let delivered = w.host_packets_rx(0);
    let dropped = w.switch_queue_drops();
    assert!(
        dropped > 0,
        "a 4000-byte queue must overflow at 2x line rate"
    );
    assert_eq!(delivered + dropped, 40);
    // Twice line rate for 20 frame times: about half the frames cannot fit.
    assert!((15..=22).contains(&dropped), "dropped {dropped}");
}
