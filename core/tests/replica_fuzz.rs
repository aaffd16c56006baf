//! Bad input never panics: a `Replica` driven by arbitrary Raft messages, as a peer that is
//! buggy, forged or corrupted could send them, interleaved with client requests, timeouts and
//! storage completions. Terms and indexes are drawn both small (to reach deep into the
//! protocol's code) and huge (`u64::MAX` and its neighbours, which once wrapped a node's term
//! to 0 and overflowed `index + 1`). Run in a debug build, so arithmetic overflow, the core's
//! debug assertions and its invariant checks are all armed.

mod util;

use hovercraft_core::raft::{ApplyMode, RaftConfig, Replica};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::types::Mode;
use hovercraft_core::wire::raft::{
    AppendResult, GroupDone, LogEntry, RaftBody, RaftMessage, MAX_WIRE_NUMBER,
};
use hovercraft_core::wire::Policy;
use proptest::prelude::*;

/// Small numbers most of the time (where the protocol's branches are), extremes sometimes.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..12,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(MAX_WIRE_NUMBER),
        1 => Just(MAX_WIRE_NUMBER + 1),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::ReplicatedRoute),
        Just(Policy::ReplicatedRouteNoSe),
        Just(Policy::FixedRoute),
    ]
}

fn entry() -> impl Strategy<Value = LogEntry> {
    (
        number(),
        0u16..4,
        policy(),
        0u8..4,
        proptest::option::of(Just(b"v".to_vec())),
    )
        .prop_map(|(term, req_id, policy, replier, body)| LogEntry {
            term,
            client: util::CLIENT,
            req_id,
            policy,
            replier,
            body,
        })
}

fn result() -> impl Strategy<Value = AppendResult> {
    prop_oneof![
        Just(AppendResult::Success),
        Just(AppendResult::Failure),
        Just(AppendResult::NeedMore),
        Just(AppendResult::PartialMissing),
    ]
}

fn body() -> impl Strategy<Value = RaftBody> {
    prop_oneof![
        (number(), number()).prop_map(|(last_log_idx, last_log_term)| RaftBody::VoteRequest {
            last_log_idx,
            last_log_term
        }),
        any::<bool>().prop_map(|granted| RaftBody::VoteReply { granted }),
        (number(), number()).prop_map(|(last_log_idx, last_log_term)| {
            RaftBody::PreVoteRequest {
                last_log_idx,
                last_log_term,
            }
        }),
        any::<bool>().prop_map(|granted| RaftBody::PreVoteReply { granted }),
        (
            number(),
            number(),
            number(),
            proptest::collection::vec(entry(), 0..4)
        )
            .prop_map(|(prev_log_idx, prev_log_term, leader_commit, entries)| {
                RaftBody::AppendEntriesReq {
                    prev_log_idx,
                    prev_log_term,
                    leader_commit,
                    entries,
                }
            }),
        (result(), number(), number(), number()).prop_map(
            |(result, last_log_idx, first_idx, done)| RaftBody::AppendEntriesRep {
                result,
                last_log_idx,
                first_idx,
                done,
            }
        ),
        (
            number(),
            number(),
            proptest::collection::vec((0u8..5, number()), 0..4)
        )
            .prop_map(|(last_log_idx, commit_idx, dones)| {
                RaftBody::AppendEntriesRepGroup {
                    last_log_idx,
                    commit_idx,
                    dones: dones
                        .into_iter()
                        .map(|(peer, done)| GroupDone { peer, done })
                        .collect(),
                }
            }),
        number().prop_map(|commit_idx| RaftBody::AnnounceCommitReq { commit_idx }),
        (number(), number())
            .prop_map(|(commit_idx, done)| RaftBody::AnnounceCommitRep { commit_idx, done }),
        (number(), 0u16..4).prop_map(|(log_idx, req_id)| RaftBody::RecoveryReq {
            log_idx,
            client: util::CLIENT,
            req_id,
        }),
        (number(), 0u16..4, policy()).prop_map(|(log_idx, req_id, policy)| {
            RaftBody::RecoveryRep {
                log_idx,
                client: util::CLIENT,
                req_id,
                policy,
                body: b"v".to_vec(),
            }
        }),
        (number(), number()).prop_map(|(from_idx, entry_term)| RaftBody::DropSuffix {
            from_idx,
            entry_term
        }),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    /// A message from `from` (ids past the cluster, and the switch's 0xFF, included).
    Message {
        from: u8,
        term: u64,
        body: RaftBody,
        via_switch: bool,
    },
    /// A client request's body arrives (multicast) or, at a leader, is proposed.
    Request { req_id: u16, read_only: bool },
    /// Time passes by this many µs and timers fire.
    Tick(u64),
    /// Storage completes everything asked of it so far.
    Persisted,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (prop_oneof![0u8..3, Just(7u8), Just(0xFF)], number(), body(), any::<bool>())
            .prop_map(|(from, term, body, via_switch)| Step::Message { from, term, body, via_switch }),
        2 => (0u16..4, any::<bool>()).prop_map(|(req_id, read_only)| Step::Request { req_id, read_only }),
        2 => (1u64..30_000).prop_map(Step::Tick),
        2 => Just(Step::Persisted),
    ]
}

fn run(mode: Mode, switch: bool, steps: Vec<Step>) {
    let switch = switch.then(|| std::net::SocketAddrV4::new([10, 0, 255, 254].into(), 8000));
    let mut r = Replica::new(
        mode,
        1,
        util::cluster_config(3, false, switch),
        RaftConfig::default(),
        7,
        Instant::ZERO,
        ApplyMode::OnCommit,
    );
    let mut now = Instant::ZERO;
    let mut persist_seq = 0;
    for s in steps {
        match s {
            Step::Message {
                from,
                term,
                body,
                via_switch,
            } => r.step(now, RaftMessage { from, term, body }, via_switch),
            Step::Request { req_id, read_only } => {
                let policy = if read_only {
                    Policy::ReplicatedRouteNoSe
                } else {
                    Policy::ReplicatedRoute
                };
                r.propose(now, util::CLIENT, req_id, policy, b"v");
            }
            Step::Tick(us) => {
                now += Duration::from_us(us);
                r.handle_timeout(now);
            }
            Step::Persisted => {
                while let Some(p) = r.poll_persist() {
                    persist_seq = p.seq;
                }
                r.handle_persisted(now, persist_seq);
            }
        }
        while r.poll_output().is_some() {}
        // Nothing a message says moves a term or an index past the wire's range.
        assert!(r.term() <= MAX_WIRE_NUMBER + 1, "term {}", r.term());
        assert!(r.commit_index() <= r.last_index().max(MAX_WIRE_NUMBER));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_hovercraft_replica_never_panics_on_arbitrary_messages(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        run(Mode::Hovercraft, false, steps);
    }

    #[test]
    fn a_hovercraft_plus_plus_replica_never_panics_on_arbitrary_messages(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        run(Mode::HovercraftPlusPlus, true, steps);
    }

    #[test]
    fn a_raft_replica_never_panics_on_arbitrary_messages(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        run(Mode::Raft, false, steps);
    }
}
