//! Issue 16, "no port sharing": while a node's socket is open (the node's own options,
//! `server::node_socket`, unicast and multicast), another process cannot bind its port, not
//! even with SO_REUSEADDR and SO_REUSEPORT set, whether it runs as another user (`nobody`,
//! through setpriv, when the test runs as root) or as the same user. Before, a multicast node
//! set SO_REUSEADDR, so any local user could bind the port beside it and read its traffic.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;

use hovercraft_runtime::cluster::ClusterFile;
use hovercraft_runtime::io::{Io, UdpIo};
use hovercraft_runtime::server::node_socket;
use socket2::{Domain, Protocol, Socket, Type};

const PROBE_ENV: &str = "HC_PORT_PROBE";

/// The helper run in a child process: tries to bind the address in `HC_PORT_PROBE` with
/// both reuse options and prints the outcome. Does nothing in a normal test run.
#[test]
fn probe_helper() {
    let Ok(addr) = std::env::var(PROBE_ENV) else {
        return;
    };
    let addr: SocketAddrV4 = addr.parse().unwrap();
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    match s.bind(&SocketAddr::V4(addr).into()) {
        Ok(()) => println!("PROBE: BOUND {addr}"),
        Err(e) => println!("PROBE: REFUSED {addr}: {e}"),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs the probe in a child process (as `nobody` when `other_user`); the probe's line.
fn probe(addr: SocketAddrV4, other_user: bool) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut c = if other_user {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = c
        .args(["--exact", "probe_helper", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, addr.to_string())
        .output()
        .expect("run the probe");
    let text = String::from_utf8_lossy(&out.stdout);
    // libtest prints "test probe_helper ... " on the same line, before the probe's output.
    text.lines()
        .find_map(|l| l.find("PROBE: ").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| {
            format!(
                "NO PROBE OUTPUT ({}): {} {}",
                out.status,
                text.replace('\n', " "),
                String::from_utf8_lossy(&out.stderr).replace('\n', " ")
            )
        })
}

fn cluster(multicast: bool, port: u16) -> ClusterFile {
    let (nodes, group) = if multicast {
        (
            format!(r#"[{{"id": 0, "address": "127.0.0.1:{port}"}}]"#),
            format!(r#""multicast": true, "group": "239.77.1.1:{port}","#),
        )
    } else {
        (
            format!(
                r#"[{{"id": 0, "address": "127.0.0.1:{port}"}}, {{"id": 1, "address": "127.0.0.1:{}"}}]"#,
                port + 1
            ),
            r#""multicast": false,"#.to_string(),
        )
    };
    let text = format!(
        r#"{{"mode": "hovercraft", "nodes": {nodes}, {group}
            "storage": {{"dir": "/tmp/unused"}}, "auth": {{"unauthenticated": true}}}}"#
    );
    ClusterFile::from_json("port-sharing.json", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn free_port() -> u16 {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.local_addr().unwrap().port()
}

#[test]
fn nobody_else_can_bind_a_nodes_port() {
    let users: Vec<bool> = if is_root() && Command::new("setpriv").arg("--version").output().is_ok()
    {
        vec![true, false]
    } else {
        eprintln!(
            "\n!!!!!!!! SKIPPED the other-user probe: not root or no setpriv; probing as the \
             same user only !!!!!!!!\n"
        );
        vec![false]
    };
    let mut checked = 0;
    for multicast in [false, true] {
        let port = free_port();
        let c = cluster(multicast, port);
        let opts = node_socket(&c, 0);
        let io = match UdpIo::open(&opts) {
            Ok(io) => io,
            Err(e) if multicast => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED the multicast case: cannot open the node's socket \
                     here ({e}) !!!!!!!!\n"
                );
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        for &other in &users {
            for addr in [
                opts.bind,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            ] {
                let line = probe(addr, other);
                println!(
                    "multicast {multicast}, other user {other}, node bound {}, probe {line}",
                    opts.bind
                );
                assert!(
                    line.starts_with("PROBE: REFUSED") && line.contains("in use"),
                    "the node's port was shared (multicast {multicast}, other user {other}): \
                     {line}"
                );
                checked += 1;
            }
        }
        // The node's socket stayed open through every probe.
        assert_eq!(io.local_addr().port(), port);
    }
    assert!(checked >= 3, "nothing was probed");
}
