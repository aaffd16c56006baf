//! Issue 16, "authenticated cluster traffic": while `hovercraft-loadgen` runs against an
//! authenticated 3-node cluster, an attacker sends every node VoteRequests and AppendEntries
//! (one fake entry) claiming to come from each other member, with term `u64::MAX`, 2^62 and
//! the current term + 1: without a trailer, with a trailer under a wrong key, and — built
//! with the real key, standing in for recordings of genuine traffic — with the claimed
//! sender's previous epoch (a recording from before its restart) and addressed to another
//! node (a recording of a message to someone else). Then it replays, byte for byte, genuine
//! datagrams it captured between the nodes earlier in the run. Every one is refused and
//! counted by reason, no term moves, and the run loses nothing.
//!
//! Where root and iproute2 are available (CI), the cluster runs in a network namespace of its
//! own and the attacker is a thread in that namespace with raw sockets: every forged datagram
//! carries the claimed member's own source address and port (IP_HDRINCL), and the capture is
//! a raw UDP socket that sees every datagram the namespace delivers. Elsewhere the forgeries
//! come from another loopback port and the capture-and-replay part is skipped, with a line a
//! reader cannot miss (`HC_REQUIRE_NETNS=1`, set by CI as root, makes that a failure).

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::{
    loopback_addrs, root_and_ip_unavailable, skip_without_loopback, u, wait_for, Cluster,
    ClusterSpec, Launcher,
};
use hovercraft_core::wire::framing;
use hovercraft_core::wire::raft::{LogEntry, RaftBody, RaftMessage};
use hovercraft_core::wire::Policy;
use hovercraft_runtime::auth::{self, Sealer};
use serde_json::Value;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

#[test]
fn forged_and_replayed_cluster_messages_are_refused() {
    if skip_without_loopback("forged_and_replayed_cluster_messages_are_refused") {
        return;
    }
    let netns = match root_and_ip_unavailable() {
        None => Some(Netns::create(&format!(
            "hcforge{}",
            std::process::id() % 100_000
        ))),
        Some(why) => {
            let msg = format!(
                "\n!!!!!!!! SKIPPED (part of forged_and_replayed_cluster_messages_are_refused): \
                 spoofed source addresses and the replay of captured datagrams need a network \
                 namespace: {why}; forging from another loopback port instead !!!!!!!!\n"
            );
            if std::env::var_os("HC_REQUIRE_NETNS").is_some() {
                panic!("{msg} (HC_REQUIRE_NETNS is set)");
            }
            eprintln!("{msg}");
            None
        }
    };
    let mut c = Cluster::new(
        Launcher {
            netns: netns.as_ref().map(|n| n.0.clone()),
            ..Launcher::default()
        },
        &ClusterSpec {
            name: "forged-cluster".into(),
            addrs: loopback_addrs(3),
            group: None,
            client_bind: None,
            overrides: Value::Null,
        },
    );
    let attacker = match &netns {
        Some(n) => n.attacker(),
        None => Attacker::Plain(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()),
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c, &attacker)));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

/// A network namespace with only `lo` up, deleted when dropped (also on panic).
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let ip = |args: &[&str]| {
            let o = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .output();
        ip(&["netns", "add", name]);
        let ns = Netns(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// The attacker's raw sockets, made by a thread that entered the namespace (a socket
    /// stays in the namespace it was made in; the test's own threads stay outside).
    fn attacker(&self) -> Attacker {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            // IPPROTO_RAW: the caller writes the IP header, source address included.
            let send = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))).unwrap();
            let capture = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).unwrap();
            capture
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            Attacker::Spoofing { send, capture }
        })
        .join()
        .expect("attacker thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
    }
}

enum Attacker {
    /// Raw sockets in the cluster's namespace: any source address; sees every datagram.
    Spoofing { send: Socket, capture: Socket },
    /// A UDP socket on another loopback port: its own source address only.
    Plain(UdpSocket),
}

impl Attacker {
    /// Sends `payload` to `to`, claiming to come from `from` where it can.
    fn send(&self, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
        match self {
            Attacker::Spoofing { send, .. } => {
                send_ip(send, to, &ip_udp(from, to, payload));
            }
            Attacker::Plain(s) => {
                s.send_to(payload, to).unwrap();
            }
        }
    }

    /// Up to `max` IPv4 datagrams from one member to another seen within `window`, whole
    /// (IP header included) as they went by: `(destination, packet)`.
    fn capture(
        &self,
        members: &[SocketAddrV4],
        window: Duration,
        max: usize,
    ) -> Vec<(SocketAddrV4, Vec<u8>)> {
        let Attacker::Spoofing { capture, .. } = self else {
            return Vec::new();
        };
        let mut sock = capture;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 65536];
        // A real-time bound on a real capture (the workspace lint is for core and sim).
        #[allow(clippy::disallowed_methods)]
        let end = Instant::now() + window;
        #[allow(clippy::disallowed_methods)]
        let open = || Instant::now() < end;
        while open() && seen.len() < max {
            let Ok(n) = sock.read(&mut buf) else { continue };
            let p = &buf[..n];
            if let Some((from, to)) = udp_ends(p) {
                if members.contains(&from) && members.contains(&to) {
                    seen.push((to, p.to_vec()));
                }
            }
        }
        seen
    }

    /// Sends a captured IP packet again: headers and datagram unchanged, except the UDP
    /// checksum, set to 0 ("none"). Loopback leaves checksums to offload, so a capture holds
    /// only the partial sum, which the receiving kernel would refuse before any node saw it.
    fn replay(&self, to: SocketAddrV4, packet: &[u8]) {
        if let Attacker::Spoofing { send, .. } = self {
            let mut p = packet.to_vec();
            let ihl = usize::from(p[0] & 0x0F) * 4;
            p[ihl + 6..ihl + 8].fill(0);
            send_ip(send, to, &p);
        }
    }
}

fn send_ip(send: &Socket, to: SocketAddrV4, packet: &[u8]) {
    let n = send
        .send_to(packet, &SockAddr::from(to))
        .unwrap_or_else(|e| panic!("raw send to {to}: {e}"));
    assert_eq!(n, packet.len());
}

/// IPv4 + UDP headers around `payload` (UDP checksum 0: none, as IPv4 allows; the kernel
/// fills the IP checksum and identification).
fn ip_udp(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).unwrap();
    let total = 20 + udp_len;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]); // id, DF, TTL, UDP, checksum
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Source and destination of an IPv4 UDP packet, if it is one.
fn udp_ends(p: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4)> {
    let ihl = usize::from(*p.first()? & 0x0F) * 4;
    if p.len() < ihl + 8 || *p.get(9)? != 17 {
        return None;
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    let port = |o: usize| u16::from_be_bytes([p[o], p[o + 1]]);
    Some((
        SocketAddrV4::new(ip(12), port(ihl)),
        SocketAddrV4::new(ip(16), port(ihl + 2)),
    ))
}

fn rejected(c: &Cluster) -> (u64, Vec<Value>) {
    let mut total = 0;
    let mut all = Vec::new();
    for i in 0..3 {
        let s = c.status(i).expect("a status file");
        assert_eq!(s["auth_mode"], "authenticated");
        total += u(&s["io"]["rx_rejected"]);
        all.push(s["auth"].clone());
    }
    (total, all)
}

fn messages(from: u8, term: u64) -> Vec<RaftMessage> {
    let entry = LogEntry {
        term,
        client: "127.0.0.1:9".parse().unwrap(),
        req_id: 7,
        policy: Policy::ReplicatedRoute,
        replier: from,
        body: Some(b"forged".to_vec()),
    };
    vec![
        RaftMessage {
            from,
            term,
            body: RaftBody::VoteRequest {
                last_log_idx: 1 << 40,
                last_log_term: term,
            },
        },
        RaftMessage {
            from,
            term,
            body: RaftBody::AppendEntriesReq {
                prev_log_idx: 0,
                prev_log_term: 0,
                leader_commit: 1 << 30,
                entries: vec![entry],
            },
        },
    ]
}

fn packets(m: &RaftMessage) -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    m.encode(&mut body);
    let mut out = Vec::new();
    framing::fragment(m.r2p2_type(), Policy::LbRoute, 99, &body, |p| out.push(p)).unwrap();
    out
}

fn steps(c: &mut Cluster, attacker: &Attacker) {
    let (leader, term) =
        wait_for(Duration::from_secs(15), || c.leader()).expect("no leader within 15 s");
    println!("leader {leader} in term {term}");
    let key = std::fs::read(c.dir.join("cluster.key")).unwrap();
    let key: [u8; 32] = key.try_into().unwrap();
    let cluster =
        hovercraft_runtime::cluster::ClusterFile::load(&c.file).unwrap_or_else(|e| panic!("{e}"));
    let cluster_id = hovercraft_runtime::storage::cluster_id(cluster.mode, &cluster.peers());
    let real = auth::subkey(&key, cluster_id, &cluster.name);
    let wrong = auth::subkey(&[0x5A; 32], cluster_id, &cluster.name);
    let epoch_of = |i: usize| -> u64 {
        std::fs::read_to_string(
            c.dir
                .join("data")
                .join(format!("node{i}"))
                .join("auth_epoch"),
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    };
    let (before, _) = rejected(c);
    let lg = c
        .loadgen(
            "forged",
            &["--duration-ms", "3000", "--rate", "1000", "--verify"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Genuine traffic first (the capture would see the forgeries too).
    let captured = attacker.capture(&c.addrs, Duration::from_millis(400), 4000);
    let mut sent = 0u64;
    let mut stale = 0u64;
    let mut d = Vec::new();
    for round in 0..20 {
        for target in 0..3usize {
            for claimed in (0..3u8).filter(|&s| s as usize != target) {
                let other = (0..3u8)
                    .find(|&x| x != claimed && x as usize != target)
                    .unwrap();
                for t in [u64::MAX, 1 << 62, term + 1] {
                    for m in messages(claimed, t) {
                        for p in packets(&m) {
                            let e = epoch_of(claimed as usize);
                            let mut forms = vec![p.clone()];
                            Sealer::new(wrong, claimed, e + 1).seal(target as u8, &p, &mut d);
                            forms.push(d.clone());
                            // Only pairs that surely talked (the leader and a follower):
                            // a receiver that never heard a peer has no epoch to compare.
                            if target == leader || claimed as usize == leader {
                                Sealer::new(real, claimed, e - 1).seal(target as u8, &p, &mut d);
                                forms.push(d.clone());
                                stale += 1;
                            }
                            Sealer::new(real, claimed, e).seal(other, &p, &mut d);
                            forms.push(d.clone());
                            for f in forms {
                                attacker.send(c.addrs[claimed as usize], c.addrs[target], &f);
                                sent += 1;
                            }
                        }
                    }
                }
            }
        }
        if round % 4 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Byte-for-byte replays of genuine datagrams, each twice: the newest are still inside
    // the receivers' windows (refused as seen), the oldest may have slid out (too old).
    let mut replays = 0u64;
    for _ in 0..2 {
        for (to, p) in &captured {
            attacker.replay(*to, p);
            replays += 1;
        }
    }
    common::finish(lg, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    let (after, counters) = rejected(c);
    println!(
        "forged datagrams sent {sent} ({}), captured genuine ones replayed {replays}; \
         rejected by the nodes {}",
        match attacker {
            Attacker::Spoofing { .. } => "each with the claimed member's source address",
            Attacker::Plain(_) => "from another loopback port",
        },
        after - before
    );
    for (i, a) in counters.iter().enumerate() {
        println!("node {i}: auth {a}");
    }
    assert_eq!(
        after - before,
        sent + replays,
        "every forged and replayed datagram refused and counted"
    );
    let sum = |f: &str| counters.iter().map(|a| u(&a[f])).sum::<u64>();
    let each = (sent - stale) / 3;
    assert_eq!(sum("malformed"), each, "no trailer");
    assert_eq!(sum("bad_mac"), each, "wrong key");
    assert_eq!(sum("stale_epoch"), stale, "earlier incarnation");
    assert_eq!(sum("misdirected"), each, "another node's message");
    assert_eq!(
        sum("replayed") + sum("too_old"),
        replays,
        "captured and replayed"
    );
    if let Attacker::Spoofing { .. } = attacker {
        assert!(
            captured.len() >= 50,
            "captured only {} member-to-member datagrams",
            captured.len()
        );
    }
    for i in 0..3 {
        let s = c.status(i).unwrap();
        let t = u(&s["term"]);
        assert!(
            t < term + 3,
            "node {i}: term {t}, was {term}: a forged term got through"
        );
        assert!(c.alive(i), "node {i} died:\n{}", c.stderr(i));
    }
    let s = c.summary("forged");
    let e = &s["exactly_once"];
    assert_eq!(u(&e["duplicates"]), 0, "{e}");
    let v = &s["kv"]["verify"];
    assert_eq!(u(&v["lost"]), 0, "acknowledged writes lost: {v}");
    assert!(u(&e["responses"]) * 10 >= u(&e["sent"]) * 9, "answers: {e}");
}
