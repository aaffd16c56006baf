//! The cluster story across network namespaces: 3 replicas and 1 client, each in its own
//! namespace on a bridge that floods multicast (`../shared/dpdk/netns-cluster.sh`), with
//! real IP multicast to the group. Needs root and iproute2; without them it prints why and
//! passes (set `HC_REQUIRE_NETNS=1` to make that a failure, as CI runs as root).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;

use common::{story, ClusterSpec, Launcher};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/dpdk/netns-cluster.sh")
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        });
    if uid.as_deref() != Some("0") {
        return Some(format!("not root (effective uid {uid:?})"));
    }
    if !Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("`ip` (iproute2) not found".into());
    }
    if !script().exists() {
        return Some(format!("{} not found", script().display()));
    }
    None
}

/// Tears the namespaces down when dropped (also on panic).
struct Namespaces {
    prefix: String,
    bridge: String,
}

impl Namespaces {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("HC_NS_PREFIX", &self.prefix)
            .env("HC_BRIDGE", &self.bridge)
            .output()
            .expect("run netns-cluster.sh")
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!(
                "netns-cluster.sh down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

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
