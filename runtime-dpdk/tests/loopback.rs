//! Rootless tests of the real runtime on 127.0.0.1: three `hovercraft-node` processes on
//! different ports (`"multicast": false`: the load generator sends each node a copy), the
//! whole cluster story, and the one-line errors for bad cluster files and silent peers.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fresh_dir, story, wait_for, ClusterSpec, Launcher, NODE};

fn free_ports(n: usize) -> Vec<u16> {
    // Hold them all at once so they differ; the race with other programs is harmless here.
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

fn loopback_addrs(n: usize) -> Vec<SocketAddrV4> {
    free_ports(n)
        .into_iter()
        .map(|p| SocketAddrV4::new(Ipv4Addr::LOCALHOST, p))
        .collect()
}

#[test]
fn loopback_cluster_failover_restart_and_garbage() {
    story(
        Launcher::default(),
        ClusterSpec {
            name: "loopback-3".into(),
            addrs: loopback_addrs(3),
            group: None,
            client_bind: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            overrides: serde_json::Value::Null,
        },
    );
}

/// Runs `hovercraft-node` on a cluster file, expecting it to exit; returns (code, stderr).
fn node_exit(file: &std::path::Path, id: &str) -> (Option<i32>, String) {
    let mut child = Command::new(NODE)
        .arg("--cluster")
        .arg(file)
        .args(["--id", id])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_for(Duration::from_secs(10), || child.try_wait().unwrap());
    if st.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const GOOD: &str = r#"{
  "mode": "hovercraft", "multicast": false,
  "nodes": [{"id": 0, "address": "127.0.0.1:PORT0"}, {"id": 1, "address": "127.0.0.1:PORT1"},
            {"id": 2, "address": "127.0.0.1:PORT2"}],
  "storage": {"dir": "DIR", "fsync": false},
  "auth": {"unauthenticated": true},
  "peer_silence_warn_ms": 300,
  "workload": {"app": "kv", "rate_rps": 100}
}"#;

fn good(dir: &std::path::Path) -> String {
    let p = free_ports(3);
    GOOD.replace("PORT0", &p[0].to_string())
        .replace("PORT1", &p[1].to_string())
        .replace("PORT2", &p[2].to_string())
        .replace("DIR", &dir.join("data").display().to_string())
}

#[test]
fn bad_cluster_files_give_one_line_errors_and_exit_2() {
    let dir = fresh_dir("bad-cluster");
    let base = good(&dir);
    let cases = [
        (base.replace("\"mode\"", "\"mood\""), "field `mood`"),
        (
            base.replace("127.0.0.1:", "127.0.0.1;"),
            "field `nodes[0].address`",
        ),
        (
            base.replace("\"multicast\": false", "\"multicast\": true"),
            "field `group`",
        ),
        (
            base.replace("\"rate_rps\": 100", "\"rate_rps\": 0"),
            "field `workload.rate_rps`",
        ),
        (base.replace("hovercraft", "hovercraft++"), "field `mode`"),
        ("{ not json".to_string(), "key must be a string"),
        // A cluster file from before authentication: refused, saying what to add.
        (
            base.replace("\"auth\": {\"unauthenticated\": true},", ""),
            "field `auth`: missing: cluster traffic is authenticated",
        ),
        (
            base.replace("\"unauthenticated\": true", "\"key_file\": \"none.key\""),
            "field `auth.key_file`: cannot read",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = dir.join(format!("bad{i}.json"));
        std::fs::write(&file, text).unwrap();
        let (code, err) = node_exit(&file, "0");
        assert_eq!(code, Some(2), "case {i}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(want),
            "case {i}: want {want:?} in {err:?}"
        );
    }
    let (code, err) = node_exit(&dir.join("missing.json"), "0");
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.json: cannot read"), "{err}");
    let file = dir.join("good.json");
    std::fs::write(&file, &base).unwrap();
    let (code, err) = node_exit(&file, "7");
    assert_eq!(code, Some(2));
    assert!(err.contains("--id 7 is not a node"), "{err}");
    // An address this host does not have: exit 1 with the address named.
    let file = dir.join("foreign.json");
    std::fs::write(&file, base.replacen("127.0.0.1", "192.0.2.1", 1)).unwrap();
    let (code, err) = node_exit(&file, "0");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot bind UDP 192.0.2.1:"), "{err}");
}

#[test]
fn a_node_whose_peers_are_unreachable_says_so() {
    let dir = fresh_dir("silent-peers");
    let file = dir.join("cluster.json");
    let text = good(&dir);
    std::fs::write(&file, &text).unwrap();
    let mut child = Command::new(NODE)
        .arg("--cluster")
        .arg(&file)
        .args(["--id", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("no datagram from peer"))
        .unwrap_or_else(|| panic!("no silence warning in:\n{err}"));
    assert!(
        line.contains("1 (127.0.0.1:") && line.contains("2 (127.0.0.1:"),
        "names both peers: {line}"
    );
    assert!(
        err.contains("storage.fsync is off"),
        "warns about fsync: {err}"
    );
}
