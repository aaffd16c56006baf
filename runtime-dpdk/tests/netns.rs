//! The cluster story across network namespaces: 3 replicas and 1 client, each in its own
//! namespace on a bridge that floods multicast (`../shared/dpdk/netns-cluster.sh`), with
//! real IP multicast to the group. Needs root and iproute2; without them it prints why and
//! passes (set `HC_REQUIRE_NETNS=1` to make that a failure, as CI runs as root).

mod common;

use common::{netns_unavailable as unavailable, story, ClusterSpec, Launcher, Namespaces};
use std::net::{Ipv4Addr, SocketAddrV4};

#[test]
fn netns_cluster_multicast_failover_restart_and_garbage() {
    if let Some(why) = unavailable() {
        let msg = format!(
            "\n!!!!!!!! SKIPPED netns_cluster_multicast_failover_restart_and_garbage: {why} !!!!!!!!\n"
        );
        if std::env::var_os("HC_REQUIRE_NETNS").is_some() {
            panic!("{msg} (HC_REQUIRE_NETNS is set)");
        }
        eprintln!("{msg}");
        return;
    }
    let id = std::process::id() % 100_000;
    let ns = Namespaces {
        prefix: format!("hc{id}"),
        bridge: format!("hcbr{id}"),
    };
    let out = ns.run(&["up", "4"]);
    assert!(
        out.status.success(),
        "netns-cluster.sh up 4 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = |i: u8| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, i + 1), 7000);
    story(
        Launcher {
            netns_prefix: Some(ns.prefix.clone()),
            ..Launcher::default()
        },
        ClusterSpec {
            name: "netns-3".into(),
            addrs: (0..3).map(addr).collect(),
            group: Some(SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 7000)),
            client_bind: Some(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 4), 0)),
            overrides: serde_json::Value::Null,
        },
    );
}
