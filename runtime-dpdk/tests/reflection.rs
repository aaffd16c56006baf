//! Issue 16, "reflection" and "byte budgets": R2P2 answers a request at its source address,
//! so whoever forges a victim's source address makes a node send the victim the answers.
//! Here the victim is the attacker's own socket (with a spoofed source the same bytes would go
//! to someone else; `forged_cluster.rs` shows spoofing works on this runtime): it stores 16
//! values of 60 KiB, then asks for them with 25-byte GETs at 1 000 per second for 1.5 s.
//!
//! - With the reflection guard (`core/src/node/limits.rs`; budget set low here, 1 MiB/s and
//!   256 KiB saved up, so the bound is sharp), what comes back is bounded by the budget plus
//!   one free packet per answer, and the rest are DROPs counted by the node.
//! - With the guard off (`"reply_amplification": null`), every GET is answered in full: the
//!   amplification the guard removes (printed, ×2 400 or so).
//! - A request over `limits.max_request_bytes` is answered DROP and counted; in a replicated
//!   cluster by the leader alone, and never ordered (second test).

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use common::{loopback_addrs, skip_without_loopback, wait_for, Cluster, ClusterSpec, Launcher};
use hovercraft_core::app::kv::KvRequest;
use hovercraft_core::r2p2::server;
use hovercraft_core::wire::header::Header;
use hovercraft_core::wire::{MsgType, Policy};
use hovercraft_runtime::clock::Clock;
use serde_json::{json, Value};

const VALUE_BYTES: usize = 60 * 1024;
const KEYS: usize = 16;
const BUDGET_BYTES_PER_S: u64 = 1 << 20;
const BURST_BYTES: u64 = 256 * 1024;

#[test]
fn amplified_replies_are_bounded_and_oversize_requests_refused() {
    if skip_without_loopback("amplified_replies_are_bounded_and_oversize_requests_refused") {
        return;
    }
    let guarded = run(
        "reflection-guarded",
        json!({"max_request_bytes": 100_000,
               "reply_amplification": {"budget_bytes_per_s": BUDGET_BYTES_PER_S,
                                       "burst_bytes": BURST_BYTES}}),
    );
    let open = run("reflection-open", json!({"reply_amplification": null}));
    println!(
        "guard on:  {} GETs ({} B) drew {} B of answers (x{:.0}): {} full answers, {} DROPs \
         (node: {} refused by the guard) in {:.2} s",
        guarded.gets,
        guarded.request_bytes,
        guarded.reply_bytes,
        guarded.ratio(),
        guarded.answers,
        guarded.drops,
        guarded.refused_amplification,
        guarded.elapsed_s
    );
    println!(
        "guard off: {} GETs ({} B) drew {} B of answers (x{:.0}): {} full answers, {} DROPs",
        open.gets,
        open.request_bytes,
        open.reply_bytes,
        open.ratio(),
        open.answers,
        open.drops
    );
    // The bound: what the budget allows over the run, plus one free packet per answer.
    let budget = BURST_BYTES as f64 + BUDGET_BYTES_PER_S as f64 * guarded.elapsed_s;
    let free = (guarded.answers + guarded.drops) as f64 * 1600.0;
    assert!(
        (guarded.reply_bytes as f64) <= budget * 1.05 + free,
        "{} B of answers, budget {budget:.0} B + free {free:.0} B",
        guarded.reply_bytes
    );
    assert!(guarded.answers >= 4, "the budget is usable");
    assert_eq!(
        guarded.refused_amplification, guarded.drops,
        "every DROP the client saw counted by the node as the guard's"
    );
    assert!(guarded.drops > guarded.gets / 2, "most GETs refused");
    assert_eq!(guarded.refused_too_large, 1, "the 120 KiB PUT");
    assert_eq!(open.refused_amplification, 0);
    assert!(
        open.answers * 10 >= open.gets * 9,
        "without the guard nearly every GET is answered in full ({} of {})",
        open.answers,
        open.gets
    );
    assert!(open.ratio() > 20.0 * guarded.ratio());
}

/// HovercRaft, 3 nodes, clients sending a copy to each: a request over the limit is counted
/// by every node, answered by exactly one DROP (the leader's) and never executed; a request
/// within it is answered as usual.
#[test]
fn an_oversize_request_is_refused_by_the_leader_and_never_ordered() {
    if skip_without_loopback("an_oversize_request_is_refused_by_the_leader_and_never_ordered") {
        return;
    }
    let addrs = loopback_addrs(3);
    let mut c = Cluster::new(
        Launcher::default(),
        &ClusterSpec {
            name: "oversize-replicated".into(),
            addrs: addrs.clone(),
            group: None,
            client_bind: None,
            overrides: json!({"limits": {"max_request_bytes": 100_000}}),
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(15), || c.leader()).expect("no leader within 15 s");
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let answers = |req: &KvRequest, req_id: u16| -> Vec<MsgType> {
            for &a in &addrs {
                send(&sock, a, req_id, req);
            }
            let mut got = Vec::new();
            let mut buf = vec![0u8; 2048];
            // Bounded: stops at the first 300 ms without a datagram.
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                if let Ok((h, _)) = Header::decode(&buf[..n]) {
                    if h.req_id == req_id && h.first {
                        got.push(h.msg_type);
                    }
                }
            }
            got
        };
        let big = KvRequest::Put {
            key: b"big".to_vec(),
            value: vec![7; 120 * 1024],
        };
        assert_eq!(answers(&big, 1), vec![MsgType::Drop], "one DROP, no answer");
        let small = KvRequest::Put {
            key: b"small".to_vec(),
            value: vec![7; 1024],
        };
        assert_eq!(answers(&small, 2), vec![MsgType::Response]);
        std::thread::sleep(Duration::from_millis(200)); // fresh status files
        for i in 0..3 {
            let st = c.status(i).expect("status");
            let p = &st["protocol"];
            assert_eq!(p["requests_refused_too_large"], 1, "node {i}: {p}");
            assert_eq!(
                p["requests_executed"], 1,
                "node {i}: only the small PUT ran: {p}"
            );
        }
    }));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

struct Outcome {
    gets: u64,
    request_bytes: u64,
    reply_bytes: u64,
    answers: u64,
    drops: u64,
    elapsed_s: f64,
    refused_amplification: u64,
    refused_too_large: u64,
}

impl Outcome {
    fn ratio(&self) -> f64 {
        self.reply_bytes as f64 / self.request_bytes.max(1) as f64
    }
}

fn run(name: &str, limits: Value) -> Outcome {
    let addrs = loopback_addrs(1);
    let mut c = Cluster::new(
        Launcher::default(),
        &ClusterSpec {
            name: name.into(),
            addrs: addrs.clone(),
            group: None,
            client_bind: None,
            overrides: json!({"mode": "unreplicated", "limits": limits}),
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c, addrs[0])));
    match r {
        Ok(o) => o,
        Err(e) => {
            c.dump_logs();
            std::panic::resume_unwind(e)
        }
    }
}

/// Sends one request; returns its UDP payload bytes.
fn send(sock: &UdpSocket, node: SocketAddrV4, req_id: u16, req: &KvRequest) -> u64 {
    let mut body = Vec::new();
    req.encode(&mut body);
    let mut q = VecDeque::new();
    server::send(
        &mut q,
        node,
        MsgType::Request,
        Policy::LbRoute,
        req_id,
        &body,
        0,
    )
    .unwrap();
    let mut bytes = 0;
    for t in q {
        sock.send_to(&t.payload, t.dst).unwrap();
        bytes += t.payload.len() as u64;
    }
    bytes
}

/// What came back: (RESPONSE payload bytes, complete RESPONSEs, DROPs).
#[derive(Default)]
struct Received {
    bytes: u64,
    answers: u64,
    drops: u64,
}

fn drain(sock: &UdpSocket, got: &mut Received) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        let Ok((h, _)) = Header::decode(&buf[..n]) else {
            continue;
        };
        match h.msg_type {
            MsgType::Response => {
                got.bytes += n as u64;
                got.answers += u64::from(h.last);
            }
            MsgType::Drop => got.drops += 1,
            _ => {}
        }
    }
}

fn steps(c: &mut Cluster, node: SocketAddrV4) -> Outcome {
    wait_for(Duration::from_secs(15), || c.status(0)).expect("the node wrote no status");
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let clock = Clock::new();
    // Store the values, one at a time (each answered before the next).
    for k in 0..KEYS {
        let put = KvRequest::Put {
            key: format!("k{k}").into_bytes(),
            value: vec![k as u8; VALUE_BYTES],
        };
        send(&sock, node, k as u16, &put);
        let mut buf = vec![0u8; 2048];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer to a PUT");
        let (h, _) = Header::decode(&buf[..n]).unwrap();
        assert_eq!(h.msg_type, MsgType::Response, "PUT k{k}");
    }
    // Over the request limit where one is set (100 000 B): DROP.
    let big = KvRequest::Put {
        key: b"big".to_vec(),
        value: vec![0; 120 * 1024],
    };
    send(&sock, node, 999, &big);
    let mut buf = vec![0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to the big PUT");
    let (h, _) = Header::decode(&buf[..n]).unwrap();
    let big_refused = h.msg_type == MsgType::Drop;
    // The blast: 1 000 GETs per second for 1.5 s, answers counted as they come.
    sock.set_nonblocking(true).unwrap();
    let mut got = Received::default();
    let (mut gets, mut request_bytes) = (0u64, 0u64);
    let start = clock.now();
    let run_for = hovercraft_core::time::Duration::from_ms(1_500);
    while clock.now() < start + run_for {
        let get = KvRequest::Get {
            key: format!("k{}", gets as usize % KEYS).into_bytes(),
        };
        request_bytes += send(&sock, node, 1000 + gets as u16, &get);
        gets += 1;
        drain(&sock, &mut got);
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed_s = (clock.now().saturating_since(start).as_ns()) as f64 / 1e9;
    // Stragglers, bounded.
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(10));
        drain(&sock, &mut got);
    }
    std::thread::sleep(Duration::from_millis(200)); // a fresh status file
    let st = c.status(0).expect("status");
    let p = &st["protocol"];
    // Counters that are still 0 are left out of the status file (as of summaries).
    let count = |name: &str| p[name].as_u64().unwrap_or(0);
    let refused_too_large = count("requests_refused_too_large");
    assert_eq!(
        big_refused,
        refused_too_large == 1,
        "the node's count agrees with what the client saw: {p}"
    );
    Outcome {
        gets,
        request_bytes,
        reply_bytes: got.bytes,
        answers: got.answers,
        drops: got.drops,
        elapsed_s,
        refused_amplification: count("replies_refused_amplification"),
        refused_too_large,
    }
}
