//! Raft's safety claims checked on the core alone, in the manner of etcd's
//! `raft_paper_test.go`: a handful of `Node`s wired by an in-memory network whose every
//! delivery the test controls, so a schedule from the Raft paper can be replayed exactly.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use hovercraft_core::app::kv::KvCosts;
use hovercraft_core::app::synthetic::SyntheticRequest;
use hovercraft_core::app::AppKind;
use hovercraft_core::node::{Mode, Node, NodeConfig, NodeError, NodeEvent};
use hovercraft_core::raft::{ClusterConfig, RaftConfig, Role};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::framing::{self, ReassemblyConfig};
use hovercraft_core::wire::raft::{RaftBody, RaftMessage};
use hovercraft_core::wire::{Header, MsgType, Policy};

fn addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, i as u8 + 1].into(), 8000)
}
const CLIENT: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(10, 1, 0, 1), 9000);

struct Datagram {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

impl Datagram {
    fn raft(&self) -> Option<RaftMessage> {
        let (h, body) = Header::decode(&self.bytes).ok()?;
        matches!(
            h.msg_type,
            MsgType::RaftReq | MsgType::RaftRep | MsgType::RaftMsg
        )
        .then(|| RaftMessage::decode(body).ok())
        .flatten()
    }
}

/// A cluster whose network is a queue the test drains by hand.
struct Cluster {
    nodes: Vec<Node>,
    now: Instant,
    queue: VecDeque<Datagram>,
    down: Vec<bool>,
    /// (index, term of the entry) every node applied, in order.
    applied: Vec<Vec<u64>>,
}

impl Cluster {
    fn new(n: usize, raft: RaftConfig) -> Cluster {
        let nodes = (0..n)
            .map(|i| {
                Node::new(NodeConfig {
                    id: i as u8,
                    mode: Mode::Raft,
                    app: AppKind::Synthetic,
                    kv_costs: KvCosts::default(),
                    reassembly: ReassemblyConfig::default(),
                    seed: 100 + i as u64,
                    cluster: Some(ClusterConfig {
                        peers: (0..n).map(addr).collect(),
                        group: SocketAddrV4::new([239, 1, 1, 1].into(), 8000),
                        campaign_at_start: false,
                        switch: None,
                    }),
                    raft: raft.clone(),
                    defer_execution: false,
                    exec_queue_capacity: 64,
                    client_limits: hovercraft_core::node::ClientLimits::UNLIMITED,
                    cluster_datagram_overhead_bytes: 0,
                })
                .unwrap()
            })
            .collect();
        Cluster {
            nodes,
            now: Instant::ZERO,
            queue: VecDeque::new(),
            down: vec![false; n],
            applied: vec![Vec::new(); n],
        }
    }

    /// Collects what node `i` produced: persists (made durable at once), datagrams, events.
    fn collect(&mut self, i: usize) {
        while let Some(p) = self.nodes[i].poll_persist() {
            self.nodes[i].handle_persisted(self.now, p.seq);
        }
        while let Some(t) = self.nodes[i].poll_transmit() {
            if let Some(to) = (0..self.nodes.len()).find(|&j| addr(j) == t.dst) {
                self.queue.push_back(Datagram {
                    from: i,
                    to,
                    bytes: t.payload,
                });
            }
        }
        while let Some(ev) = self.nodes[i].poll_event() {
            if let NodeEvent::Executed { index, .. } = ev {
                self.applied[i].push(index);
            }
        }
    }

    /// Fires node `i`'s next timer (election timeout or heartbeat).
    fn fire(&mut self, i: usize) {
        let t = self.nodes[i]
            .poll_timeout()
            .expect("a replica always has a timer");
        self.now = self.now.max(t);
        self.nodes[i].handle_timeout(self.now);
        self.collect(i);
    }

    /// Delivers queued datagrams that `pass` lets through (dropping those to or from a node
    /// that is down, or that `pass` rejects), until the queue is empty.
    fn deliver(&mut self, mut pass: impl FnMut(&Datagram) -> bool) {
        self.deliver_with(|_, d| pass(d))
    }

    /// Like `deliver`, with the cluster's current state at hand to decide.
    fn deliver_with(&mut self, mut pass: impl FnMut(&Cluster, &Datagram) -> bool) {
        let mut budget = 100_000;
        while let Some(d) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "the network did not quiesce");
            if self.down[d.from] || self.down[d.to] || !pass(self, &d) {
                continue;
            }
            self.now += Duration::from_us(1);
            if std::env::var("TRACE_NET").is_ok() {
                eprintln!("{} -> {}: {:?}", d.from, d.to, d.raft());
            }
            let _ = self.nodes[d.to].handle_datagram(self.now, addr(d.from), &d.bytes);
            self.collect(d.to);
        }
    }

    fn deliver_all(&mut self) {
        self.deliver(|_| true);
    }

    /// A client write arrives at node `i`.
    fn client_write(&mut self, i: usize, req_id: u16) {
        let mut body = Vec::new();
        SyntheticRequest {
            service_ns: 1,
            reply_bytes: 0,
            read_only: false,
        }
        .encode(16, &mut body);
        let mut pkts = Vec::new();
        framing::fragment(
            MsgType::Request,
            Policy::ReplicatedRoute,
            req_id,
            &body,
            |p| pkts.push(p),
        )
        .unwrap();
        self.now += Duration::from_us(1);
        self.nodes[i]
            .handle_datagram(self.now, CLIENT, &pkts[0])
            .unwrap();
        self.collect(i);
    }

    fn replica(&self, i: usize) -> &hovercraft_core::raft::Replica {
        self.nodes[i].replica().unwrap()
    }

    fn elect(&mut self, i: usize, mut pass: impl FnMut(&Datagram) -> bool) {
        self.elect_with(i, |_, d| pass(d))
    }

    fn elect_with(&mut self, i: usize, pass: impl FnMut(&Cluster, &Datagram) -> bool) {
        self.fire(i);
        // A candidate at once, or (pre-vote, the default) a follower asking for pre-votes.
        assert_ne!(self.replica(i).role(), Role::Leader);
        self.deliver_with(pass);
        assert_eq!(
            self.replica(i).role(),
            Role::Leader,
            "node {i} should have won"
        );
    }

    fn log_terms(&self, i: usize) -> Vec<u64> {
        let log = self.replica(i).log();
        (log.first_index()..=log.last_index())
            .map(|k| log.term_at(k).unwrap())
            .collect()
    }
}

fn appends_to(d: &Datagram, to: usize) -> bool {
    d.to == to
        && matches!(
            d.raft(),
            Some(RaftMessage {
                body: RaftBody::AppendEntriesReq { .. },
                ..
            })
        )
}

/// Raft §5.2: a node that times out becomes a candidate of a new term and, with votes from a
/// majority, the single leader of that term; a node that hears of a higher term steps down.
#[test]
fn election_candidate_wins_with_a_majority_and_others_follow() {
    let mut c = Cluster::new(3, RaftConfig::default());
    c.elect(0, |_| true);
    assert_eq!(c.replica(0).term(), 1);
    for i in 1..3 {
        assert_eq!(c.replica(i).role(), Role::Follower);
        assert_eq!(c.replica(i).leader(), Some(0));
    }
    // Node 2 times out (say it missed heartbeats): term 2, and node 0 steps down on hearing it.
    c.fire(2);
    c.deliver_all();
    assert_eq!(c.replica(0).term(), 2);
    assert_ne!(c.replica(0).role(), Role::Leader);
    let leaders = (0..3)
        .filter(|&i| c.replica(i).role() == Role::Leader)
        .count();
    assert!(leaders <= 1);
}

/// Raft §5.4.1: a node does not vote for a candidate whose log is less up to date than its own.
#[test]
fn election_restriction_stale_log_cannot_win() {
    let mut c = Cluster::new(3, RaftConfig::default());
    c.elect(0, |_| true);
    c.client_write(0, 1);
    // Only node 1 receives the new entry; node 2 is left behind.
    c.deliver(|d| d.to != 2);
    assert!(c.replica(1).last_index() > c.replica(2).last_index());
    c.down[0] = true;
    c.fire(2);
    c.deliver_all();
    assert_ne!(
        c.replica(2).role(),
        Role::Leader,
        "node 1 refuses the stale candidate"
    );
}

/// Raft §5.4.2 and Figure 8: a leader never commits an entry from an earlier term by counting
/// replicas, because a later leader may still overwrite it. Replayed step by step with
/// AppendEntries limited to one entry, so the earlier-term entry reaches a majority alone.
#[test]
fn commit_figure_8_previous_term_entry_is_not_committed_by_counting() {
    // The paper's schedule, step by step: plain Raft §5, without the dissertation's
    // pre-vote and check-quorum (whose lease and step-down would change the steps).
    let raft = RaftConfig {
        max_entries_per_append: 1,
        pre_vote: false,
        check_quorum: false,
        ..RaftConfig::default()
    };
    let mut c = Cluster::new(5, raft);
    // (a) S0 leads term 1; its no-op (index 1) commits everywhere. A client write becomes
    //     index 2 (term 1) and reaches S1 only.
    c.elect(0, |_| true);
    c.fire(0);
    c.deliver_all();
    assert_eq!(c.replica(0).commit_index(), 1);
    c.client_write(0, 7);
    c.deliver(|d| !(appends_to(d, 2) || appends_to(d, 3) || appends_to(d, 4)));
    assert_eq!(c.log_terms(1), vec![1, 1]);
    assert_eq!(
        c.replica(0).commit_index(),
        1,
        "index 2 is on S0 and S1 only"
    );

    // (b) S0 crashes. S4 wins term 2 with votes from S2, S3 (S1's log is newer: it refuses);
    //     its no-op becomes index 2 (term 2), which it replicates to nobody before crashing.
    c.down[0] = true;
    c.elect(4, |d| {
        d.from != 4
            || !matches!(
                d.raft(),
                Some(RaftMessage {
                    body: RaftBody::AppendEntriesReq { .. },
                    ..
                })
            )
    });
    assert_eq!(c.log_terms(4), vec![1, 2]);
    c.down[4] = true;

    // (c) S0 comes back and wins term 3 (S1, S2, S3 vote). It appends its no-op at index 3
    //     (term 3) and replicates index 2 (term 1) to S2: now S0, S1, S2 — a majority — hold
    //     index 2 of term 1. The entry of term 3 is held back.
    c.down[0] = false;
    c.queue.clear();
    // S0 still believes it leads term 1; its heartbeat is answered with term 2 and it steps
    // down, as a restarted node would be a follower.
    c.fire(0);
    c.deliver_all();
    assert_eq!(
        (c.replica(0).role(), c.replica(0).term()),
        (Role::Follower, 2)
    );
    // An AppendEntries carrying the term-3 entry is held back from any node that would accept
    // it (one whose log matches at its previous index); the others reject it and make the
    // leader back up to index 2, which they accept.
    c.elect_with(0, |c, d| match d.raft() {
        Some(RaftMessage {
            body:
                RaftBody::AppendEntriesReq {
                    prev_log_idx,
                    prev_log_term,
                    ref entries,
                    ..
                },
            ..
        }) if entries.iter().any(|e| e.term == 3) => {
            c.replica(d.to).log().term_at(prev_log_idx) != Some(prev_log_term)
        }
        _ => true,
    });
    assert_eq!(c.replica(0).term(), 3);
    assert_eq!(c.log_terms(2), vec![1, 1], "S2 got index 2 of term 1");
    assert_eq!(c.log_terms(1), vec![1, 1]);
    assert_eq!(
        c.replica(0).commit_index(),
        1,
        "a majority holds index 2, but it is of term 1: it must not be committed by counting"
    );

    // (d) S0 crashes again. S4 (last term 2) wins term 4 with S1, S2, S3 and overwrites index 2
    //     with its own term-2 entry: had index 2 been committed, this would lose it.
    c.down[0] = true;
    c.down[4] = false;
    c.queue.clear();
    c.fire(4); // term 3 (stale): loses
    c.deliver_all();
    c.fire(4);
    c.deliver_all();
    for _ in 0..3 {
        c.fire(4);
        c.deliver_all();
    }
    assert_eq!(c.replica(4).role(), Role::Leader);
    for i in 1..4 {
        assert_eq!(
            c.log_terms(i)[1],
            2,
            "S{i}: index 2 overwritten by the term-2 entry"
        );
    }
    // State machine safety: nobody applied the term-1 entry at index 2.
    for i in 0..5 {
        assert!(!c.applied[i].contains(&2) || i == 4 || c.log_terms(i)[1] == 2);
    }
}

/// AppendEntries from a stale term is refused with our term; a wrong previous index gets a
/// failure; a duplicate changes nothing; a message from a stranger is rejected.
#[test]
fn append_entries_stale_wrong_prev_duplicate_and_stranger() {
    let mut c = Cluster::new(3, RaftConfig::default());
    c.elect(0, |_| true);
    c.client_write(0, 1);
    c.deliver_all();
    c.fire(0);
    c.deliver_all();
    let before: Vec<u64> = c.log_terms(1);
    let commit = c.replica(1).commit_index();
    let send = |c: &mut Cluster, from: usize, to: usize, msg: RaftMessage| {
        let mut body = Vec::new();
        msg.encode(&mut body);
        let mut pkts = Vec::new();
        framing::fragment(msg.r2p2_type(), Policy::FixedRoute, 99, &body, |p| {
            pkts.push(p)
        })
        .unwrap();
        c.now += Duration::from_us(1);
        let r = c.nodes[to].handle_datagram(c.now, addr(from), &pkts[0]);
        c.collect(to);
        r
    };
    let replies_to = |c: &mut Cluster, to: usize| -> Vec<RaftMessage> {
        let out: Vec<RaftMessage> = c
            .queue
            .iter()
            .filter(|d| d.to == to)
            .filter_map(|d| d.raft())
            .collect();
        c.queue.clear();
        out
    };
    // Stale term 0: refused, the reply carries term 1.
    let stale = RaftMessage {
        from: 0,
        term: 0,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: 0,
            prev_log_term: 0,
            leader_commit: 0,
            entries: vec![],
        },
    };
    send(&mut c, 0, 1, stale).unwrap();
    let r = replies_to(&mut c, 0);
    assert!(
        matches!(
            r[..],
            [RaftMessage {
                term: 1,
                body: RaftBody::AppendEntriesRep {
                    result: hovercraft_core::wire::raft::AppendResult::Failure,
                    ..
                },
                ..
            }]
        ),
        "{r:?}"
    );
    // Wrong previous index: failure, log unchanged.
    let wrong = RaftMessage {
        from: 0,
        term: 1,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: 50,
            prev_log_term: 1,
            leader_commit: 0,
            entries: vec![],
        },
    };
    send(&mut c, 0, 1, wrong).unwrap();
    let r = replies_to(&mut c, 0);
    assert!(matches!(
        r[..],
        [RaftMessage {
            body: RaftBody::AppendEntriesRep {
                result: hovercraft_core::wire::raft::AppendResult::Failure,
                ..
            },
            ..
        }]
    ));
    assert_eq!(c.log_terms(1), before);
    // Duplicate of entries already held: success, nothing appended or applied twice.
    let log = c.replica(0).log();
    let entries = log.slice(1, 10);
    let dup = RaftMessage {
        from: 0,
        term: 1,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: 0,
            prev_log_term: 0,
            leader_commit: commit,
            entries,
        },
    };
    let applied_before = c.applied[1].len();
    send(&mut c, 0, 1, dup.clone()).unwrap();
    send(&mut c, 0, 1, dup).unwrap();
    assert_eq!(c.log_terms(1), before);
    assert_eq!(c.applied[1].len(), applied_before);
    c.queue.clear();
    // A stranger (not a peer address), or a peer claiming another id: rejected, typed.
    let stranger = RaftMessage {
        from: 0,
        term: 9,
        body: RaftBody::VoteReply { granted: true },
    };
    let mut body = Vec::new();
    stranger.encode(&mut body);
    let mut pkts = Vec::new();
    framing::fragment(MsgType::RaftRep, Policy::FixedRoute, 1, &body, |p| {
        pkts.push(p)
    })
    .unwrap();
    let r = c.nodes[1].handle_datagram(c.now, SocketAddrV4::new([6, 6, 6, 6].into(), 1), &pkts[0]);
    assert!(matches!(r, Err(NodeError::UnknownSender(_))));
    let r = c.nodes[1].handle_datagram(c.now, addr(2), &pkts[0]);
    assert!(
        matches!(r, Err(NodeError::UnknownSender(_))),
        "node 2 claiming to be node 0"
    );
    assert_eq!(c.replica(1).term(), 1, "rejected messages change nothing");
}

/// Random bytes (and random mutations of real Raft traffic) fed to a follower never panic it
/// and never change what it has committed.
#[test]
fn fuzz_random_datagrams_never_panic_or_change_the_committed_log() {
    use rand::{Rng, SeedableRng};
    let mut c = Cluster::new(3, RaftConfig::default());
    c.elect(0, |_| true);
    for r in 0..20 {
        c.client_write(0, r);
    }
    c.deliver_all();
    c.fire(0);
    c.deliver_all();
    let commit = c.replica(1).commit_index();
    let committed: Vec<u64> = c.log_terms(1)[..commit as usize].to_vec();
    // Real traffic to mutate.
    c.client_write(0, 100);
    let samples: Vec<Vec<u8>> = c.queue.iter().map(|d| d.bytes.clone()).collect();
    c.queue.clear();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            let n = rng.gen_range(0..300);
            (0..n).map(|_| rng.gen()).collect::<Vec<u8>>()
        } else {
            let mut b = samples[round % samples.len()].clone();
            for _ in 0..rng.gen_range(1..4) {
                let k = rng.gen_range(0..b.len());
                b[k] = rng.gen();
            }
            b
        };
        if round % 3 == 0 && bytes.len() >= 8 {
            bytes[0] = 0xCC;
            bytes[1] = 8;
        }
        let from = addr(rng.gen_range(0..3));
        let _ = c.nodes[1].handle_datagram(c.now, from, &bytes);
        c.collect(1);
        c.queue.clear();
        assert!(c.replica(1).commit_index() >= commit);
        assert_eq!(
            &c.log_terms(1)[..commit as usize],
            &committed[..],
            "round {round}"
        );
    }
}
