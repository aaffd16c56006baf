//! Pre-vote and check-quorum (Raft dissertation §9.6, etcd `PreVote` / `CheckQuorum`), one
//! test per claim, on `Replica`s alone (harness: `util/mod.rs`; HovercRaft++ with the
//! switch aggregator model in between).

mod util;

use hovercraft_core::raft::{RaftConfig, Role};
use hovercraft_core::switch::{Aggregator, AggregatorConfig};
use hovercraft_core::time::Duration;
use hovercraft_core::types::Mode;
use hovercraft_core::wire::framing;
use hovercraft_core::wire::raft::RaftMessage;
use hovercraft_core::wire::{Header, Policy};
use util::{Cluster, Dest};

const MS: Duration = Duration::from_ms(1);

/// Ticks 1 ms at a time, `ms` times.
fn run_ms(c: &mut Cluster, ms: u64) {
    for _ in 0..ms {
        c.tick(MS);
    }
}

fn terms(c: &Cluster) -> Vec<u64> {
    c.replicas.iter().map(|r| r.term()).collect()
}

/// A 5-node HovercRaft cluster with a settled leader.
fn settled(cfg: RaftConfig) -> (Cluster, usize) {
    let mut c = Cluster::new(5, Mode::Hovercraft, cfg);
    let leader = c.elect(200);
    run_ms(&mut c, 5);
    assert_eq!(c.leader(), Some(leader));
    (c, leader)
}

/// Check-quorum: a leader that can send but hears nobody (one-way cuts into it) steps down
/// within one election timeout, in its own term; the others then elect a new leader (one
/// term up, through pre-vote) within two election timeouts of the cut.
#[test]
fn a_leader_cut_off_from_receiving_steps_down_and_a_new_leader_is_elected() {
    let cfg = RaftConfig::default();
    let (mut c, old) = settled(cfg.clone());
    let term = c.replicas[old].term();
    let elections = c.replicas[old].counters.elections_started;
    c.cut = (0..5).filter(|&i| i != old).map(|i| (i, old)).collect();
    let cut_at = c.now;
    let mut stepped_down = None;
    let mut elected = None;
    for _ in 0..(2 * cfg.election_timeout_max_us / 1000) {
        c.tick(MS);
        if stepped_down.is_none() && c.replicas[old].role() != Role::Leader {
            stepped_down = Some(c.now);
            assert_eq!(c.replicas[old].term(), term, "steps down in its own term");
            assert_eq!(c.replicas[old].leader(), None);
        }
        if let Some(l) = c.leader().filter(|&l| l != old) {
            elected = Some((l, c.now));
            break;
        }
    }
    let down_at = stepped_down.expect("the deaf leader stepped down");
    // One election timeout (the minimum), plus the 1 ms tick of this harness.
    assert!(
        down_at <= cut_at + Duration::from_us(cfg.election_timeout_min_us) + MS,
        "cut at {cut_at:?}, stepped down at {down_at:?}"
    );
    assert_eq!(c.replicas[old].counters.quorum_lost, 1);
    let (new, _) = elected.expect("a new leader within two election timeouts");
    assert_eq!(c.replicas[new].term(), term + 1);
    // The deaf node's own campaigns never got past pre-vote: no term of its own.
    assert_eq!(c.replicas[old].counters.elections_started, elections);
    assert!(c.replicas[old].counters.pre_votes_started > 0);
}

/// Pre-vote: a node partitioned away for many election timeouts asks for pre-votes, never
/// gets a majority, and so never raises its term; when it rejoins, the leader keeps leading
/// in the same term and the node follows it.
#[test]
fn a_partitioned_node_rejoining_neither_raises_the_term_nor_deposes_the_leader() {
    let (mut c, leader) = settled(RaftConfig::default());
    let before = terms(&c);
    let x = (leader + 1) % 5;
    c.cut = (0..5)
        .filter(|&i| i != x)
        .flat_map(|i| [(i, x), (x, i)])
        .collect();
    run_ms(&mut c, 200);
    assert!(
        c.replicas[x].counters.pre_votes_started >= 5,
        "it kept trying"
    );
    assert_eq!(c.replicas[x].counters.elections_started, 0);
    assert_eq!(terms(&c), before, "no term moved");
    c.cut.clear();
    run_ms(&mut c, 50);
    assert_eq!(terms(&c), before, "rejoining raised no term");
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.replicas[leader].counters.times_leader, 1);
    assert_eq!(
        c.replicas[x].leader(),
        Some(leader as u8),
        "it follows again"
    );
}

/// The leader lease: a follower that stops hearing the leader (a one-way cut from the
/// leader to it) but still reaches everyone, with a log as good as theirs, cannot depose
/// the leader: peers that hear the leader refuse its pre-votes.
#[test]
fn a_follower_that_stops_hearing_the_leader_cannot_depose_it() {
    let (mut c, leader) = settled(RaftConfig::default());
    let before = terms(&c);
    let x = (leader + 2) % 5;
    c.cut = vec![(leader, x)];
    run_ms(&mut c, 200);
    assert!(c.replicas[x].counters.pre_votes_started >= 5);
    assert_eq!(c.replicas[x].counters.elections_started, 0);
    assert_eq!(terms(&c), before);
    assert_eq!(c.leader(), Some(leader));
}

/// Delivers every message addressed to the switch through the aggregator model, and what it
/// sends on to the replicas (relayed AppendEntries, group replies), until nothing is left.
fn pump_switch(c: &mut Cluster, agg: &mut Aggregator) {
    loop {
        let to_switch: Vec<_> = c.queue.drain(..).collect();
        if to_switch.is_empty() {
            return;
        }
        for m in to_switch {
            assert_eq!(m.to, Dest::Switch);
            let mut body = Vec::new();
            m.msg.encode(&mut body);
            framing::fragment(m.msg.r2p2_type(), Policy::FixedRoute, 1, &body, |p| {
                agg.handle_datagram(util::addr(m.from), &p).unwrap();
            })
            .unwrap();
        }
        while let Some(t) = agg.poll_transmit() {
            let j = (0..c.n()).find(|&j| util::addr(j) == t.dst).unwrap();
            let (_, body) = Header::decode(&t.payload).unwrap();
            let msg = RaftMessage::decode(body).unwrap();
            let now = c.now;
            c.replicas[j].step(now, msg, true);
            c.settle(j);
        }
        c.deliver_all();
    }
}

/// HovercRaft++: followers answer the switch, not the leader, so an idle leader hears from
/// none of them directly; the switch's group replies prove a live majority, and a healthy
/// idle cluster keeps its leader for 50 election timeouts (and longer).
#[test]
fn an_idle_hovercraft_pp_cluster_keeps_its_leader() {
    let mut c = Cluster::new(5, Mode::HovercraftPlusPlus, RaftConfig::default());
    let mut agg = Aggregator::new(AggregatorConfig {
        peers: (0..5).map(util::addr).collect(),
        slots: 64,
    })
    .unwrap();
    let mut leader = None;
    for _ in 0..200 {
        c.tick(MS);
        pump_switch(&mut c, &mut agg);
        leader = c.leader();
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a leader");
    let term = c.replicas[leader].term();
    let start = c.now;
    while c.now < start + Duration::from_ms(500) {
        c.tick(MS);
        pump_switch(&mut c, &mut agg);
        assert_eq!(c.leader(), Some(leader), "at {:?}", c.now);
    }
    let r = &c.replicas[leader];
    assert!(r.via_switch(), "still on the switch path");
    assert!(r.counters.group_replies > 400, "{:?}", r.counters);
    assert_eq!(r.counters.quorum_lost, 0);
    assert_eq!(terms(&c), vec![term; 5]);
}

/// With both switched off, elections are the Raft paper's again: the deaf leader keeps
/// leading (and keeps everyone following it), and a partitioned node raises its term and
/// deposes the leader when it rejoins.
#[test]
fn with_both_off_the_old_behaviour_returns() {
    let off = RaftConfig {
        check_quorum: false,
        pre_vote: false,
        ..RaftConfig::default()
    };
    let (mut c, old) = settled(off.clone());
    let term = c.replicas[old].term();
    c.cut = (0..5).filter(|&i| i != old).map(|i| (i, old)).collect();
    run_ms(&mut c, 200);
    assert_eq!(c.leader(), Some(old), "the deaf leader still leads");
    assert_eq!(terms(&c), vec![term; 5], "and nobody else stood");

    let (mut c, leader) = settled(off);
    let x = (leader + 1) % 5;
    c.cut = (0..5)
        .filter(|&i| i != x)
        .flat_map(|i| [(i, x), (x, i)])
        .collect();
    run_ms(&mut c, 200);
    assert!(
        c.replicas[x].term() > term + 5,
        "the partitioned node inflated its term"
    );
    c.cut.clear();
    run_ms(&mut c, 50);
    // Its higher term reaches the leader (in the answer to an AppendEntries): deposed.
    assert!(c.replicas[leader].term() > term, "the leader was deposed");
    assert_eq!(c.replicas[leader].counters.times_leader, 1);
}

/// A node that lost its durable state (storage moved away after damage) rejoins empty. It
/// must not vote until it has caught up (Raft dissertation §11.7.2): it may have voted in the
/// current term already, and with an empty log it would vote for a candidate lacking
/// committed entries. Nor may it answer again entries it may have answered before. Once it
/// applied what its first leader had committed, it votes again, in later terms only.
#[test]
fn a_node_that_lost_its_state_neither_votes_nor_answers_again_until_caught_up() {
    use hovercraft_core::raft::{ApplyMode, Replica};
    use hovercraft_core::time::Instant;
    use hovercraft_core::wire::raft::RaftBody;
    let mut c = Cluster::new(3, Mode::Raft, RaftConfig::default());
    let leader = c.elect(100);
    for req_id in 0..40u16 {
        c.request(Some(leader), req_id, Policy::ReplicatedRoute, b"w");
    }
    run_ms(&mut c, 3);
    let wiped = (leader + 1) % 3;
    let term = c.replicas[leader].term();
    let commit = c.replicas[leader].commit_index();
    assert!(commit >= 41);
    // Node `wiped` loses everything and rejoins empty.
    let mut fresh = Replica::new(
        Mode::Raft,
        wiped as u8,
        util::cluster_config(3, false, None),
        RaftConfig::default(),
        7,
        c.now,
        ApplyMode::OnCommit,
    );
    fresh.start_rejoining();
    c.replicas[wiped] = fresh;
    c.applied[wiped].clear();
    let ask = |c: &mut Cluster, term: u64| {
        let other = 3 - leader - wiped;
        let msg = RaftMessage {
            from: other as u8,
            term,
            body: RaftBody::VoteRequest {
                last_log_idx: 0,
                last_log_term: 0,
            },
        };
        c.replicas[wiped].step(c.now, msg, false);
        c.settle(wiped);
        let granted = c.queue.iter().any(|m| {
            m.from == wiped && matches!(m.msg.body, RaftBody::VoteReply { granted: true })
        });
        c.queue.clear();
        granted
    };
    // Before it heard any leader: no vote, even for an empty log in a higher term.
    assert!(!ask(&mut c, term));
    assert!(c.replicas[wiped].is_rejoining());
    // It never campaigns while rejoining, however long it hears no leader.
    c.cut = vec![(leader, wiped), (wiped, leader)];
    run_ms(&mut c, 60);
    assert_eq!(c.replicas[wiped].role(), Role::Follower);
    assert!(c.replicas[wiped].term() <= term);
    c.cut.clear();
    // The leader catches it up; it answers none of the entries up to the commit index it
    // first heard.
    run_ms(&mut c, 30);
    let term_now = c.replicas[leader].term();
    assert_eq!(term_now, term, "no election happened meanwhile");
    assert!(!c.replicas[wiped].is_rejoining(), "caught up");
    assert!(c.replicas[wiped].applied_index() >= commit);
    assert!(
        c.applied[wiped]
            .iter()
            .all(|a| a.index > commit || !a.reply),
        "answered again an entry it may have answered before losing its state"
    );
    assert_eq!(c.replicas[wiped].counters.rejoined, 1);
    // Caught up: still no vote in the term it rejoined in (it may have voted in it), but in
    // a later one, for an up-to-date log.
    assert!(!ask(&mut c, term));
    let other = 3 - leader - wiped;
    let last = c.replicas[other].last_index();
    let last_term = c.replicas[other].log().last_term();
    let msg = RaftMessage {
        from: other as u8,
        term: term + 1,
        body: RaftBody::VoteRequest {
            last_log_idx: last,
            last_log_term: last_term,
        },
    };
    c.replicas[wiped].step(c.now + Duration::from_ms(100), msg, false);
    c.settle(wiped);
    assert!(c
        .queue
        .iter()
        .any(|m| m.from == wiped && matches!(m.msg.body, RaftBody::VoteReply { granted: true })));
    let _ = Instant::ZERO;
}
