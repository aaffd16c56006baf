//! Issue 16, item 4, on 127.0.0.1: an unprivileged process sprays forged R2P2 RESPONSE and
//! DROP datagrams, for every req_id, at the load generator's port while it runs against a
//! real 3-node cluster. The load generator trusts only the cluster's members: not one forged
//! answer is accepted (before, 1,495 were accepted as real in 8 s), each is counted as
//! `client.untrusted`, and the run's own requests are answered as usual.

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use common::{loopback_addrs, skip_without_loopback, u, wait_for, Cluster, ClusterSpec, Launcher};
use hovercraft_core::r2p2::server;
use hovercraft_core::wire::{MsgType, Policy};
use serde_json::Value;

#[test]
fn forged_replies_sprayed_at_the_load_generator_are_never_accepted() {
    if skip_without_loopback("forged_replies_sprayed_at_the_load_generator_are_never_accepted") {
        return;
    }
    // The load generator's port, known in advance so the forger can aim at it.
    let client = {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("not IPv4: {other}"),
        }
    };
    let mut c = Cluster::new(
        Launcher::default(),
        &ClusterSpec {
            name: "forged-replies".into(),
            addrs: loopback_addrs(3),
            group: None,
            client_bind: Some(client),
            overrides: Value::Null,
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c, client)));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

fn steps(c: &mut Cluster, client: SocketAddrV4) {
    wait_for(Duration::from_secs(15), || c.leader()).expect("no leader elected within 15 s");
    let mut lg = c
        .loadgen("forged", &["--duration-ms", "3000", "--rate", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Spray every req_id, RESPONSE and DROP in turn, for 2.5 s (bounded by time and count).
    let forger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    // The runtime's clock adapter: the one sanctioned wall-clock reader.
    let clock = hovercraft_runtime::clock::Clock::new();
    let started = clock.now();
    let spray_for = hovercraft_core::time::Duration::from_ms(2_800);
    let mut sent = 0u64;
    let mut req_id = 0u16;
    std::thread::sleep(Duration::from_millis(300));
    while clock.now() < started + spray_for && sent < 2_000_000 {
        let kind = if sent.is_multiple_of(2) {
            MsgType::Response
        } else {
            MsgType::Drop
        };
        let mut q = VecDeque::new();
        server::send(&mut q, client, kind, Policy::LbRoute, req_id, b"forged", 0).unwrap();
        for t in q {
            if forger.send_to(&t.payload, t.dst).is_ok() {
                sent += 1;
            }
        }
        req_id = req_id.wrapping_add(1);
        if sent.is_multiple_of(64) {
            // Leave the real replies room in the client's receive buffer.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let status = wait_for(Duration::from_secs(30), || lg.try_wait().unwrap());
    if status.is_none() {
        let _ = lg.kill();
    }
    let out = lg.wait_with_output().unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let s = c.summary("forged");
    let untrusted = u(&s["client"]["untrusted"]);
    let e = &s["exactly_once"];
    println!(
        "forged datagrams sent {sent}, counted untrusted {untrusted}; run: {e}, replies from unknown addresses {}",
        s["replies_from_unknown"]
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sent > 10_000, "the forger sent only {sent} datagrams");
    // Every forged datagram that reached the client was dropped unread as untrusted (the
    // kernel may drop some when the socket buffer is full; none can count as a reply).
    assert!(
        untrusted > 0 && untrusted <= sent,
        "untrusted {untrusted} of {sent}"
    );
    assert_eq!(
        u(&s["replies_from_unknown"]),
        0,
        "a forged answer was accepted"
    );
    assert_eq!(u(&e["duplicates"]), 0, "{e}");
    // The genuine run went on: most of its requests were answered by the cluster.
    assert!(
        u(&e["responses"]) * 10 >= u(&e["sent"]) * 9,
        "genuine answers: {e}"
    );
}
