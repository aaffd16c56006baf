//! An authenticated 3-replica hovercraft cluster over the DPDK backend: every node and the load generator
//! own the veth of their network namespace through DPDK's `net_af_packet` (no hugepages, no
//! NIC: `../shared/dpdk/netns-cluster.sh up 4 --dpdk`), with our own Ethernet/IPv4/UDP framing
//! and real multicast to the group. 5 s of load: every request answered exactly once, every node-to-node datagram MAC-checked, replies
//! from every replica, every acknowledged write read back.
//!
//! Needs the `dpdk` feature, root and iproute2. Without them it says why and passes, unless
//! `HC_REQUIRE_DPDK=1` (set by CI after installing DPDK).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{netns_unavailable, wait_for, Cluster, ClusterSpec, Launcher, Namespaces};
use serde_json::{json, Value};

fn unavailable() -> Option<String> {
    if !cfg!(feature = "dpdk") {
        return Some("built without the `dpdk` feature (cargo test --features dpdk)".into());
    }
    netns_unavailable()
}

fn cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "0".into())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

#[test]
fn dpdk_af_packet_cluster_answers_every_request_once() {
    if let Some(why) = unavailable() {
        let msg = format!(
            "\n!!!!!!!! SKIPPED dpdk_af_packet_cluster_answers_every_request_once: {why} !!!!!!!!\n"
        );
        if std::env::var("HC_REQUIRE_DPDK").is_ok_and(|v| v == "1") {
            panic!("{msg} (HC_REQUIRE_DPDK=1)");
        }
        eprintln!("{msg}");
        return;
    }
    let id = std::process::id() % 100_000;
    let prefix = format!("hd{id}");
    let _rundirs = hovercraft_runtime::cluster::DpdkRunDirs(format!("{prefix}x"));
    let ns = Namespaces {
        prefix: prefix.clone(),
        bridge: format!("hdbr{id}"),
    };
    let out = ns.run(&["up", "4", "--dpdk"]);
    assert!(
        out.status.success(),
        "netns-cluster.sh up 4 --dpdk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = |i: u8| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, i + 1), 7000);
    // Every process may run on every allowed CPU (the EAL would pin each to the first).
    let lcores = format!("--lcores=0@({})", cpus());
    let mut c = Cluster::new(
        Launcher {
            netns_prefix: Some(prefix.clone()),
            ..Launcher::default()
        },
        &ClusterSpec {
            name: "dpdk-3".into(),
            addrs: (0..3).map(addr).collect(),
            group: Some(SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 7000)),
            client_bind: Some(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 4), 9000)),
            overrides: json!({
                "dpdk": {
                    "eal_args": ["--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                                 lcores, format!("--file-prefix={prefix}x{{host}}"),
                                 "--vdev=net_af_packet0,iface=veth0,framecnt=2048"],
                    // 4 pollers on a shared 2-core machine: nap when idle.
                    "idle_nap_us": 50
                },
                "workload": {"app": "kv", "rate_rps": 1000, "read_only_fraction": 0.1,
                             "kv_keys": 2000},
            }),
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c)));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

fn steps(c: &mut Cluster) {
    let (leader, term) =
        wait_for(Duration::from_secs(30), || c.leader()).expect("no leader within 30 s");
    println!("leader {leader} in term {term}");
    let run = c.run_counted(
        "dpdk",
        &["--duration-ms", "5000", "--verify"],
        Duration::from_secs(90),
    );
    let s = &run.summary;
    assert_eq!(s["manifest"]["runtime"], "dpdk", "{}", s["manifest"]);
    let sent = common::assert_exactly_once_from_every_replica(&run, 3_000);
    let v = &s["kv"]["verify"];
    assert_eq!((u(&v["lost"]), u(&v["unreadable"])), (0, 0), "{v}");
    for i in 0..3 {
        let st = c.status(i).expect("status");
        assert!(
            u(&st["protocol"]["requests_received"]) >= sent * 9 / 10,
            "node {i}: {st}"
        );
        // Authenticated over DPDK: Raft packets leave room for the MAC trailer, so every
        // sealed datagram fits one frame; none refused.
        assert_eq!(st["auth_mode"], "authenticated", "node {i}: {st}");
        let a = &st["auth"];
        assert!(u(&a["accepted"]) > 0, "node {i}: {a}");
        assert_eq!(u(&a["bad_mac"]) + u(&a["malformed"]), 0, "node {i}: {a}");
    }
}
