//! A `Replica` driven alone through elections and replication: no `Node`, no application,
//! no R2P2 framing (the harness is `util/mod.rs`). What the consensus component promises on
//! its own, before any driver wraps it.

mod util;

use std::net::SocketAddrV4;

use hovercraft_core::raft::{ApplyMode, RaftConfig, Replica, Role, Target};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::types::Mode;
use hovercraft_core::wire::raft::{AppendResult, LogEntry, RaftBody, RaftMessage};
use hovercraft_core::wire::Policy;
use util::{drain_one, Cluster};

/// (index, term, req_id) of what replica `i` applied.
fn applied(c: &Cluster, i: usize) -> Vec<(u64, u64, u16)> {
    c.applied[i]
        .iter()
        .map(|a| (a.index, a.term, a.req_id))
        .collect()
}

#[test]
fn raft_elects_one_leader_then_replicates_and_applies_everywhere_in_order() {
    let mut c = Cluster::new(3, Mode::Raft, RaftConfig::default());
    let leader = c.elect(100);
    let term = c.replicas[leader].term();
    assert!(term >= 1);
    c.tick(Duration::from_ms(2)); // heartbeats tell everyone who leads
    for (i, r) in c.replicas.iter().enumerate() {
        assert_eq!(r.term(), term, "node {i} agrees on the term");
        assert_eq!(r.leader(), Some(leader as u8), "node {i} knows the leader");
        assert_eq!(r.role() == Role::Leader, i == leader);
    }
    for req_id in 0..5u16 {
        c.request(
            Some(leader),
            req_id,
            Policy::ReplicatedRoute,
            &[req_id as u8; 8],
        );
    }
    c.deliver_all();
    c.tick(Duration::from_ms(2)); // the next AppendEntries carries the commit index
    let want = applied(&c, leader);
    assert_eq!(
        want.iter().map(|a| a.2).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "the leader applied every write in order"
    );
    for i in 0..3 {
        assert_eq!(applied(&c, i), want, "node {i} applied the same log");
        assert_eq!(
            c.replicas[i].commit_index(),
            c.replicas[leader].last_index()
        );
        // Vanilla Raft: only the leader answers.
        assert!(c.applied[i].iter().all(|a| a.reply == (i == leader)));
        assert_eq!(&*c.applied[i][0].body, &[0u8; 8][..], "raft ships bodies");
    }
    // A follower refuses requests and names the leader.
    let follower = (leader + 1) % 3;
    c.request(Some(follower), 99, Policy::ReplicatedRoute, b"x");
    assert_eq!(
        c.refused,
        vec![(
            follower,
            99,
            hovercraft_core::raft::Refusal::NotLeader {
                leader: Some(leader as u8)
            }
        )]
    );
}

#[test]
fn hovercraft_orders_metadata_only_and_one_designated_replier_answers_each_request() {
    let mut c = Cluster::new(5, Mode::Hovercraft, RaftConfig::default());
    let leader = c.elect(100);
    for req_id in 0..40u16 {
        c.request(None, req_id, Policy::ReplicatedRoute, &[7; 16]);
        c.deliver_all();
    }
    c.tick(Duration::from_ms(2));
    let want = applied(&c, leader);
    assert_eq!(want.len(), 40);
    for i in 0..5 {
        assert_eq!(applied(&c, i), want, "node {i} applied the same log");
    }
    for req_id in 0..40u16 {
        let repliers: Vec<usize> = (0..5)
            .filter(|&i| c.applied[i].iter().any(|a| a.req_id == req_id && a.reply))
            .collect();
        assert_eq!(
            repliers.len(),
            1,
            "request {req_id}: one replier, got {repliers:?}"
        );
    }
    let spread = (0..5)
        .filter(|&i| c.applied[i].iter().any(|a| a.reply))
        .count();
    assert!(
        spread >= 3,
        "replies are balanced over replicas ({spread} answered)"
    );
    // Bodies travelled by multicast: AppendEntries carry metadata only.
    for m in &c.sent {
        if let RaftBody::AppendEntriesReq { entries, .. } = &m.msg.body {
            assert!(entries.iter().all(|e| e.body.is_none()));
        }
    }
}

#[test]
fn a_vote_is_sent_only_once_it_is_durable() {
    let mut c = Cluster::new(3, Mode::Raft, RaftConfig::default());
    c.slow_storage = vec![true; 3];
    // The first election timer fires: pre-votes change nothing durable and flow at once;
    // with a majority of them the node stands, and its RequestVote waits for its own write.
    let vote_requests = |c: &Cluster| {
        c.sent
            .iter()
            .filter(|m| matches!(m.msg.body, RaftBody::VoteRequest { .. }))
            .count()
    };
    let candidate = loop {
        c.tick(Duration::from_ms(1));
        if let Some(i) = (0..3).find(|&i| c.replicas[i].role() == Role::Candidate) {
            break i;
        }
        assert!(c.now < Instant::from_ns(100_000_000), "nobody stood");
    };
    assert_eq!(
        vote_requests(&c),
        0,
        "nothing before the term and vote persist"
    );
    c.complete_writes(candidate);
    assert_eq!(vote_requests(&c), 2, "RequestVote once they are durable");
    // Voters grant, but their replies wait for their own writes.
    let sent_before = c.sent.len();
    c.deliver_all();
    assert_eq!(
        c.sent.len(),
        sent_before,
        "no vote leaves before it is durable"
    );
    for i in (0..3).filter(|&i| i != candidate) {
        c.complete_writes(i);
    }
    let votes = c.sent[sent_before..]
        .iter()
        .filter(|m| matches!(m.msg.body, RaftBody::VoteReply { granted: true }))
        .count();
    assert_eq!(votes, 2);
    c.deliver_all();
    assert_eq!(c.replicas[candidate].role(), Role::Leader);
}

const SWITCH: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(10, 0, 255, 254), 8000);

/// Node 0 of three in HovercRaft++, elected leader of term 1, holding `writes` client
/// writes after its no-op; two entries per AppendEntries; the switch confirmed every batch.
fn switch_leader(writes: u16) -> Replica {
    let mut r = Replica::new(
        Mode::HovercraftPlusPlus,
        0,
        util::cluster_config(3, true, Some(SWITCH)),
        RaftConfig {
            max_entries_per_append: 2,
            ..RaftConfig::default()
        },
        1,
        Instant::ZERO,
        ApplyMode::OnCommit,
    );
    let now = Instant::ZERO;
    r.handle_timeout(now);
    drain_one(&mut r, now);
    r.step(now, msg(1, RaftBody::PreVoteReply { granted: true }), false);
    drain_one(&mut r, now);
    r.step(now, msg(1, RaftBody::VoteReply { granted: true }), false);
    assert_eq!(r.role(), Role::Leader);
    for req_id in 0..writes {
        r.propose(now, util::CLIENT, req_id, Policy::ReplicatedRoute, b"w");
    }
    loop {
        let sent = drain_one(&mut r, now);
        let Some(last) = sent.iter().rev().find_map(|(to, m)| match &m.body {
            RaftBody::AppendEntriesReq {
                prev_log_idx,
                entries,
                ..
            } if *to == Target::Switch && !entries.is_empty() => {
                Some(prev_log_idx + entries.len() as u64)
            }
            _ => None,
        }) else {
            break;
        };
        let group = RaftBody::AppendEntriesRepGroup {
            last_log_idx: last,
            commit_idx: last,
            dones: vec![],
        };
        r.step(
            now,
            msg(hovercraft_core::switch::SWITCH_NODE_ID, group),
            true,
        );
    }
    r
}

fn msg(from: u8, body: RaftBody) -> RaftMessage {
    RaftMessage {
        from,
        term: 1,
        body,
    }
}

fn reply(result: AppendResult, last_log_idx: u64, first_idx: u64) -> RaftMessage {
    msg(
        2,
        RaftBody::AppendEntriesRep {
            result,
            last_log_idx,
            first_idx,
            done: 0,
        },
    )
}

/// (prev_log_idx, n_entries) of every AppendEntries sent straight to node `to`.
fn appends_to(sent: &[(Target, RaftMessage)], to: u8) -> Vec<(u64, usize)> {
    sent.iter()
        .filter(|(dst, _)| *dst == Target::Peer(to))
        .filter_map(|(_, m)| match &m.body {
            RaftBody::AppendEntriesReq {
                prev_log_idx,
                entries,
                ..
            } => Some((*prev_log_idx, entries.len())),
            _ => None,
        })
        .collect()
}

/// A lagging follower behind the switch is caught up directly: probed with one AppendEntries,
/// then, once its log matched and while it trails by a window or more, with up to
/// `max_appends_in_flight` full batches at once. The
/// "need more" it answers each later switch batch with, late answers to earlier direct
/// AppendEntries, and the rejections of the rest of the window behind a lost one must not
/// add more: once they did, each left one more AppendEntries circulating for good, and a
/// leader restarted under load was flooded with copies of the same range and never caught
/// up (repro-catchup.json).
#[test]
fn a_lagging_follower_gets_at_most_its_window_whatever_else_it_answers() {
    let mut leader = switch_leader(9);
    let now = Instant::from_ns(10_000);
    assert_eq!((leader.last_index(), leader.commit_index()), (10, 10));
    let step = |r: &mut Replica, m: RaftMessage| {
        r.step(now, m, false);
        appends_to(&drain_one(r, now), 2)
    };

    // Follower 2 cannot take the switch's batch: the leader catches it up directly.
    assert_eq!(
        step(&mut leader, reply(AppendResult::NeedMore, 0, 0)),
        vec![(0, 2)]
    );
    // More switch batches it cannot take: each answered "need more", none sends again.
    for _ in 0..3 {
        assert_eq!(
            step(&mut leader, reply(AppendResult::NeedMore, 0, 0)),
            vec![]
        );
    }
    // A late success acknowledging less than the AppendEntries in flight carries (here: an
    // earlier, empty one) does not answer it either.
    assert_eq!(
        step(&mut leader, reply(AppendResult::Success, 0, 0)),
        vec![]
    );
    // The answer to the probe in flight matched: the next ranges go, a full window of them
    // (4 batches of 2); a duplicate of that answer sends nothing.
    assert_eq!(
        step(&mut leader, reply(AppendResult::Success, 2, 2)),
        vec![(2, 2), (4, 2), (6, 2), (8, 2)]
    );
    assert_eq!(
        step(&mut leader, reply(AppendResult::Success, 2, 2)),
        vec![]
    );
    // An answer to the first batch frees one slot; everything is in flight already.
    assert_eq!(
        step(&mut leader, reply(AppendResult::Success, 4, 4)),
        vec![]
    );
    // The batch after it (5..=6) was lost: the next one is rejected (the follower holds up
    // to 4). Back to probing from 5, once; the rejections of the rest of the window are
    // stale and send nothing.
    assert_eq!(
        step(&mut leader, reply(AppendResult::Failure, 4, 0)),
        vec![(4, 2)]
    );
    for _ in 0..2 {
        assert_eq!(
            step(&mut leader, reply(AppendResult::Failure, 4, 0)),
            vec![]
        );
    }
    // A rejection claiming less than the follower acknowledged is older still.
    assert_eq!(
        step(&mut leader, reply(AppendResult::Failure, 1, 0)),
        vec![]
    );
    assert_eq!(leader.counters.stale_rejections, 3);
    // The probe matched. Only 4 entries are left, less than a window (4 batches of 2): a
    // follower without a backlog gets one AppendEntries at a time (the window opens only
    // for a backlog, so a saturated leader does not stream to followers that keep up).
    assert_eq!(
        step(&mut leader, reply(AppendResult::Success, 6, 6)),
        vec![(6, 2)]
    );
}

#[test]
fn the_driver_paces_the_application_when_it_applies_entries_itself() {
    let mut r = Replica::new(
        Mode::Raft,
        0,
        util::cluster_config(1, true, None),
        RaftConfig::default(),
        1,
        Instant::ZERO,
        ApplyMode::Driver,
    );
    r.handle_timeout(Instant::ZERO);
    drain_one(&mut r, Instant::ZERO);
    assert_eq!(r.role(), Role::Leader, "a one-node cluster elects itself");
    for req_id in 0..3 {
        r.propose(
            Instant::ZERO,
            util::CLIENT,
            req_id,
            Policy::ReplicatedRoute,
            b"b",
        );
    }
    drain_one(&mut r, Instant::ZERO);
    assert_eq!(r.commit_index(), 4, "no-op + 3 writes committed");
    let mut seen = Vec::new();
    while let Some(c) = r.next_to_apply() {
        let (index, req_id) = (c.index, c.req_id);
        assert!(c.reply, "the only node answers");
        seen.push(req_id);
        assert_eq!(
            r.applied_index(),
            index - 1,
            "applied only when the driver says so"
        );
        r.handle_applied(index);
    }
    assert_eq!(seen, vec![0, 1, 2]);
    assert_eq!(r.applied_index(), 4);
}

/// Node 1 of three HovercRaft replicas, a follower.
fn hovercraft_follower() -> Replica {
    Replica::new(
        Mode::Hovercraft,
        1,
        util::cluster_config(3, false, None),
        RaftConfig::default(),
        1,
        Instant::ZERO,
        ApplyMode::OnCommit,
    )
}

fn meta(
    term: u64,
    req_id: u16,
    policy: Policy,
    replier: u8,
) -> hovercraft_core::wire::raft::LogEntry {
    hovercraft_core::wire::raft::LogEntry {
        term,
        client: util::CLIENT,
        req_id,
        policy,
        replier,
        body: None,
    }
}

fn append(
    from: u8,
    term: u64,
    prev: (u64, u64),
    commit: u64,
    entries: Vec<hovercraft_core::wire::raft::LogEntry>,
) -> RaftMessage {
    RaftMessage {
        from,
        term,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: prev.0,
            prev_log_term: prev.1,
            leader_commit: commit,
            entries,
        },
    }
}

fn recovery_requests(sent: &[(Target, RaftMessage)]) -> usize {
    sent.iter()
        .filter(|(_, m)| matches!(m.body, RaftBody::RecoveryReq { .. }))
        .count()
}

/// A deposed leader's suffix is cut by the new leader, which orders the same request again
/// (as metadata): the body of the cut entry serves it. Dropping it lost the request when that
/// log was its only copy (issue 14, item 2).
#[test]
fn a_truncated_suffix_keeps_its_bodies_for_the_same_requests_ordered_again() {
    let mut r = hovercraft_follower();
    let t = Instant::ZERO;
    r.propose(t, util::CLIENT, 7, Policy::ReplicatedRoute, b"body-7");
    r.step(
        t,
        append(
            0,
            1,
            (0, 0),
            0,
            vec![meta(1, 7, Policy::ReplicatedRoute, 1)],
        ),
        false,
    );
    drain_one(&mut r, t);
    assert_eq!(
        r.log().get(1).unwrap().body.as_deref(),
        Some(&b"body-7"[..])
    );
    // Leader 2 of term 2 never saw entry 1 of term 1: it orders request 7 at index 1 again.
    r.step(
        t,
        append(
            2,
            2,
            (0, 0),
            1,
            vec![meta(2, 7, Policy::ReplicatedRoute, 1)],
        ),
        false,
    );
    let sent = drain_one(&mut r, t);
    assert_eq!(r.log().get(1).unwrap().term, 2);
    assert_eq!(
        r.log().get(1).unwrap().body.as_deref(),
        Some(&b"body-7"[..])
    );
    assert_eq!(recovery_requests(&sent), 0, "no recovery needed");
    assert_eq!(r.counters.bodies_kept_on_truncation, 1);
    assert_eq!(r.applied_index(), 1, "and it applies");
}

/// Recovery is by request identity: a replica holding the body under another index (or only
/// in its unordered buffer) answers.
#[test]
fn a_body_held_under_another_index_answers_a_recovery_request() {
    let mut r = hovercraft_follower();
    let t = Instant::ZERO;
    r.propose(t, util::CLIENT, 7, Policy::ReplicatedRoute, b"body-7");
    r.propose(t, util::CLIENT, 8, Policy::ReplicatedRoute, b"body-8");
    r.step(
        t,
        append(
            0,
            1,
            (0, 0),
            0,
            vec![meta(1, 7, Policy::ReplicatedRoute, 1)],
        ),
        false,
    );
    drain_one(&mut r, t);
    for (log_idx, req_id, body) in [(5, 7, &b"body-7"[..]), (9, 8, &b"body-8"[..])] {
        let ask = RaftMessage {
            from: 2,
            term: 1,
            body: RaftBody::RecoveryReq {
                log_idx,
                client: util::CLIENT,
                req_id,
            },
        };
        r.step(t, ask, false);
        let sent = drain_one(&mut r, t);
        assert!(
            sent.iter().any(|(to, m)| *to == Target::Peer(2)
                && matches!(&m.body, RaftBody::RecoveryRep { body: b, log_idx: i, .. } if b == body && *i == log_idx)),
            "request {req_id} answered: {sent:?}"
        );
    }
    assert_eq!(r.counters.recovery_by_identity, 2);
}

/// A committed read whose body nobody can give back is given up after every replica was
/// asked a few times, instead of stalling its replier (and the leader's flow control) for
/// good; a missing write is asked for on, and reported.
#[test]
fn a_read_nobody_holds_is_given_up_after_bounded_retries() {
    let mut r = hovercraft_follower();
    let mut t = Instant::ZERO;
    // Entry 1: a read assigned to us, whose body never arrives; entry 2: a write we hold.
    r.propose(t, util::CLIENT, 2, Policy::ReplicatedRoute, b"w");
    r.step(
        t,
        append(
            0,
            1,
            (0, 0),
            2,
            vec![
                meta(1, 1, Policy::ReplicatedRouteNoSe, 1),
                meta(1, 2, Policy::ReplicatedRoute, 1),
            ],
        ),
        false,
    );
    let mut asked = recovery_requests(&drain_one(&mut r, t));
    assert_eq!(r.applied_index(), 0, "stuck behind the missing read");
    for _ in 0..20 {
        t += Duration::from_ms(1);
        r.handle_timeout(t);
        asked += recovery_requests(&drain_one(&mut r, t));
    }
    assert_eq!(asked, 8, "4 rounds over 2 peers, then no more");
    assert_eq!(r.counters.reads_abandoned, 1);
    assert_eq!(r.applied_index(), 2, "the write behind it applied");
}

/// A leader that found no body for its uncommitted write anywhere steps down and tells its
/// followers (DROP_SUFFIX): a follower lacking the body too drops its log from there (it never
/// acknowledged it); one holding the body, or hearing it from a node that is not its leader,
/// or about an entry it does not hold, keeps its log.
#[test]
fn a_follower_lacking_the_body_drops_the_suffix_its_leader_dropped() {
    let t = Instant::ZERO;
    let drop = |from: u8, from_idx: u64, entry_term: u64| RaftMessage {
        from,
        term: 1,
        body: RaftBody::DropSuffix {
            from_idx,
            entry_term,
        },
    };
    let setup = |with_body: bool| {
        let mut r = hovercraft_follower();
        if with_body {
            r.propose(t, util::CLIENT, 2, Policy::ReplicatedRoute, b"w");
        }
        r.propose(t, util::CLIENT, 1, Policy::ReplicatedRoute, b"v");
        r.step(
            t,
            append(
                0,
                1,
                (0, 0),
                1,
                vec![
                    meta(1, 1, Policy::ReplicatedRoute, 1),
                    meta(1, 2, Policy::ReplicatedRoute, 0),
                    meta(1, 3, Policy::ReplicatedRoute, 0),
                ],
            ),
            false,
        );
        drain_one(&mut r, t);
        r
    };
    let mut r = setup(false);
    r.step(t, drop(2, 2, 1), false);
    assert_eq!(r.last_index(), 3, "not from its leader: ignored");
    assert_eq!(r.leader(), Some(0));
    // From its leader, the leader is gone (whatever the follower's log holds).
    for (msg, why) in [
        (drop(0, 2, 7), "another entry at that index"),
        (drop(0, 1, 1), "committed: never dropped"),
    ] {
        let mut r = setup(false);
        r.step(t, msg, false);
        assert_eq!(r.last_index(), 3, "{why}");
        assert_eq!(r.leader(), None, "{why}: its leader stepped down");
    }
    // Lacks the body of entry 2: drops 2 and 3, keeps the committed entry 1.
    let mut r = setup(false);
    r.step(t, drop(0, 2, 1), false);
    assert_eq!(r.last_index(), 1);
    assert_eq!(r.leader(), None);
    assert_eq!(r.counters.unrecoverable_suffixes_dropped, 1);
    // The drop is written before anything that depends on it goes out.
    let persist = r.poll_persist().expect("the truncation is persisted");
    assert_eq!((persist.log_from, persist.last_index), (Some(2), 1));
    // Holds the body of entry 2 (it may have acknowledged it): keeps everything.
    let mut r = setup(true);
    r.step(t, drop(0, 2, 1), false);
    assert_eq!(r.last_index(), 3);
}

/// What a follower acknowledges on its own (bodies completed after the AppendEntries that
/// brought their entries) stays within what is known to match its current leader's log: a
/// suffix an old leader left, completed while the new leader backs it up, is not the new
/// leader's (harsh seed 153: acknowledging it made the leader count entries the follower did
/// not hold, and never catch it up). With the `ack-unmatched-suffix` canary it is
/// acknowledged.
#[test]
fn a_follower_never_acknowledges_an_old_leaders_suffix_to_the_new_leader() {
    fn run(cfg: RaftConfig) -> Vec<(Target, RaftMessage)> {
        let mut r = Replica::new(
            Mode::Hovercraft,
            1,
            util::cluster_config(3, false, None),
            cfg,
            1,
            Instant::ZERO,
            ApplyMode::OnCommit,
        );
        let t = Instant::ZERO;
        r.propose(t, util::CLIENT, 1, Policy::ReplicatedRoute, b"a");
        // Leader 0 of term 1: three writes; we hold the first body only.
        r.step(
            t,
            append(
                0,
                1,
                (0, 0),
                0,
                (1..=3)
                    .map(|id| meta(1, id, Policy::ReplicatedRoute, 0))
                    .collect(),
            ),
            false,
        );
        drain_one(&mut r, t);
        // Leader 2 of term 2 holds another entry at index 2: log matching fails there.
        r.step(t, append(2, 2, (2, 2), 0, vec![]), false);
        drain_one(&mut r, t);
        // The old suffix's bodies arrive late.
        r.propose(t, util::CLIENT, 2, Policy::ReplicatedRoute, b"b");
        r.propose(t, util::CLIENT, 3, Policy::ReplicatedRoute, b"c");
        drain_one(&mut r, t)
    }
    let acks_to_new_leader = |sent: &[(Target, RaftMessage)]| {
        sent.iter()
            .filter(|(to, m)| {
                *to == Target::Peer(2)
                    && matches!(
                        m.body,
                        RaftBody::AppendEntriesRep {
                            result: AppendResult::Success,
                            last_log_idx: 2..,
                            ..
                        }
                    )
            })
            .count()
    };
    assert_eq!(acks_to_new_leader(&run(RaftConfig::default())), 0);
    #[cfg(feature = "canary")]
    {
        let cfg = RaftConfig {
            canary: Some(hovercraft_core::raft::Canary::AckUnmatchedSuffix),
            ..RaftConfig::default()
        };
        assert!(
            acks_to_new_leader(&run(cfg)) > 0,
            "the canary acknowledges it"
        );
    }
}

/// An uncommitted read nobody can give back is given up too: a follower that could not
/// acknowledge past it would hold back every commit after it.
#[test]
fn an_uncommitted_read_nobody_holds_is_given_up() {
    let mut r = hovercraft_follower();
    let mut t = Instant::ZERO;
    r.propose(t, util::CLIENT, 2, Policy::ReplicatedRoute, b"w");
    r.step(
        t,
        append(
            0,
            1,
            (0, 0),
            0,
            vec![
                meta(1, 1, Policy::ReplicatedRouteNoSe, 1),
                meta(1, 2, Policy::ReplicatedRoute, 1),
            ],
        ),
        false,
    );
    drain_one(&mut r, t);
    let mut acked = 0;
    for _ in 0..20 {
        t += Duration::from_ms(1);
        r.handle_timeout(t);
        for (_, m) in drain_one(&mut r, t) {
            if let RaftBody::AppendEntriesRep {
                result: AppendResult::Success,
                last_log_idx,
                ..
            } = m.body
            {
                acked = acked.max(last_log_idx);
            }
        }
    }
    assert_eq!(r.counters.reads_abandoned, 1);
    assert_eq!(acked, 2, "it acknowledges past the read it gave up");
}

/// Exactly-once (issue 14): copies of a request reaching the leader — while its entry is in
/// the log, and after it was applied — are not ordered again; a refused request's copy is
/// refused again.
#[test]
fn a_duplicated_request_is_ordered_and_applied_once() {
    let mut c = Cluster::new(3, Mode::Raft, RaftConfig::default());
    let leader = c.elect(100);
    c.request(Some(leader), 7, Policy::ReplicatedRoute, b"w");
    c.request(Some(leader), 7, Policy::ReplicatedRoute, b"w"); // in the log
    c.deliver_all();
    c.tick(Duration::from_ms(2));
    c.request(Some(leader), 7, Policy::ReplicatedRoute, b"w"); // applied
    c.deliver_all();
    c.tick(Duration::from_ms(2));
    for i in 0..3 {
        let got: Vec<u16> = c.applied[i].iter().map(|a| a.req_id).collect();
        assert_eq!(got, vec![7], "node {i} applied request 7 once");
    }
    assert_eq!(c.replicas[leader].counters.duplicates_ignored, 2);
    assert_eq!(c.replicas[leader].last_index(), 2, "no-op + one entry");
    // A follower's refusal sticks when it later sees a copy (here: while still a follower).
    let follower = (leader + 1) % 3;
    c.request(Some(follower), 8, Policy::ReplicatedRoute, b"x");
    c.request(Some(follower), 8, Policy::ReplicatedRoute, b"x");
    assert_eq!(c.refused.len(), 2);
}

/// A request that reached the log twice (a session evicted, a deposed leader's copy) is
/// executed by no replica the second time: the sessions decide at apply time, alike
/// everywhere.
#[test]
fn a_duplicate_entry_in_the_log_is_skipped_by_every_replica() {
    let mut c = Cluster::new(3, Mode::Raft, RaftConfig::default());
    let leader = c.elect(100);
    let follower = (leader + 1) % 3;
    let term = c.replicas[leader].term();
    let entry = |req_id| LogEntry {
        term,
        client: util::CLIENT,
        req_id,
        policy: Policy::ReplicatedRoute,
        replier: follower as u8,
        body: Some(vec![1]),
    };
    let last = c.replicas[follower].last_index();
    let last_term = c.replicas[follower].log().last_term();
    let msg = RaftMessage {
        from: leader as u8,
        term,
        body: RaftBody::AppendEntriesReq {
            prev_log_idx: last,
            prev_log_term: last_term,
            leader_commit: last + 3,
            entries: vec![entry(5), entry(6), entry(5)],
        },
    };
    let now = c.now;
    c.replicas[follower].step(now, msg, false);
    c.settle(follower);
    let got: Vec<(u64, u16, bool)> = c.applied[follower]
        .iter()
        .map(|a| (a.index, a.req_id, a.reply))
        .collect();
    assert_eq!(got, vec![(last + 1, 5, true), (last + 2, 6, true)]);
    assert_eq!(c.replicas[follower].applied_index(), last + 3);
    assert_eq!(c.replicas[follower].counters.duplicates_skipped, 1);
}

/// A follower that lost everything (its storage wiped) comes back behind the leader's
/// compaction point: its rejection asks for an index the leader no longer keeps. The leader
/// counts it (`followers_behind_compaction`, once per episode) and sends its snapshot in
/// chunks, one in flight: a second rejection adds nothing, an unanswered chunk goes again
/// after `append_retry_us`, each answer brings the next chunk, and once the follower holds
/// it all, replication continues from the log after the snapshot. (Before snapshots, the
/// leader answered each rejection with the same AppendEntries at once: ~20k per second,
/// forever.)
#[test]
fn a_follower_behind_the_compaction_point_gets_the_snapshot_in_chunks() {
    let cfg = RaftConfig {
        log_retention_entries: 0,
        snapshot_interval_entries: 1000,
        snapshot_chunk_bytes: 4,
        ..RaftConfig::default()
    };
    let mut leader = Replica::new(
        Mode::Raft,
        0,
        util::cluster_config(3, true, None),
        cfg.clone(),
        1,
        Instant::ZERO,
        ApplyMode::OnCommit,
    );
    let now = Instant::ZERO;
    leader.handle_timeout(now);
    drain_one(&mut leader, now);
    leader.step(now, msg(1, RaftBody::PreVoteReply { granted: true }), false);
    drain_one(&mut leader, now);
    leader.step(now, msg(1, RaftBody::VoteReply { granted: true }), false);
    assert_eq!(leader.role(), Role::Leader);
    // Follower 1 holds everything (and frees its reply slots): the leader commits, applies,
    // snapshots and compacts.
    for batch in 0..80u16 {
        for req_id in batch * 30..(batch + 1) * 30 {
            leader.propose(now, util::CLIENT, req_id, Policy::ReplicatedRoute, b"w");
        }
        drain_one(&mut leader, now);
        let last = leader.last_index();
        let ack = RaftBody::AppendEntriesRep {
            result: AppendResult::Success,
            last_log_idx: last,
            first_idx: last,
            done: last,
        };
        leader.step(now, msg(1, ack), false);
        drain_one(&mut leader, now);
    }
    let last = leader.last_index();
    assert_eq!(last, 2401);
    assert_eq!(leader.commit_index(), last);
    let snap = leader
        .snapshot()
        .expect("a snapshot every 1000 entries")
        .clone();
    // Taken at the first applied index 1000 past the previous one (batches of 30).
    assert_eq!(snap.index, 2041);
    assert_eq!(leader.counters.snapshots_taken, 2);
    let first = leader.log().first_index();
    assert!(
        first > 1000 && first <= snap.index + 1,
        "compacted to {first}"
    );

    // Follower 2 holds nothing: each rejection asks for index 1.
    let chunks_to_2 = |sent: &[(Target, RaftMessage)]| -> Vec<(u64, u64, usize)> {
        sent.iter()
            .filter(|(dst, _)| *dst == Target::Peer(2))
            .filter_map(|(_, m)| match &m.body {
                RaftBody::InstallSnapshotReq {
                    last_idx,
                    offset,
                    chunk,
                    ..
                } => Some((*last_idx, *offset, chunk.len())),
                _ => None,
            })
            .collect()
    };
    let t = Instant::from_ns(10_000);
    leader.step(t, reply(AppendResult::Failure, 0, 0), false);
    let sent = drain_one(&mut leader, t);
    assert_eq!(
        appends_to(&sent, 2),
        vec![],
        "no AppendEntries it cannot use"
    );
    assert_eq!(chunks_to_2(&sent), vec![(2041, 0, 4)], "the first chunk");
    leader.step(t, reply(AppendResult::Failure, 0, 0), false);
    assert_eq!(drain_one(&mut leader, t), vec![], "one chunk in flight");
    assert_eq!(leader.counters.followers_behind_compaction, 1);
    // The chunk is lost: sent again once the retry time passed.
    let later = t + Duration::from_us(cfg.append_retry_us);
    leader.handle_timeout(later);
    assert_eq!(
        chunks_to_2(&drain_one(&mut leader, later)),
        vec![(2041, 0, 4)]
    );
    // Each answer brings the next chunk, from where the follower says it is.
    let total = snap.data.len() as u64;
    let mut offset = 0;
    while offset + 4 < total {
        offset += 4;
        let ack = RaftBody::InstallSnapshotRep {
            last_idx: 2041,
            received: offset,
        };
        leader.step(later, msg(2, ack), false);
        let want = (total - offset).min(4) as usize;
        assert_eq!(
            chunks_to_2(&drain_one(&mut leader, later)),
            vec![(2041, offset, want)]
        );
    }
    // Installed: replication continues from the log after the snapshot.
    leader.step(later, reply(AppendResult::Success, 2041, 2041), false);
    let sent = drain_one(&mut leader, later);
    assert_eq!(chunks_to_2(&sent), vec![]);
    // 360 entries behind: a full window of batches at once.
    assert_eq!(
        appends_to(&sent, 2),
        vec![(2041, 30), (2071, 30), (2101, 30), (2131, 30)]
    );
    assert_eq!(leader.counters.snapshots_sent, 1);
}
