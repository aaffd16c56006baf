//! The story `scenarios/faults/asymmetric-leader.json`: HovercRaft, 5 nodes, the leader can
//! send but hears nobody (one-way cuts into it) for 200 ms. Before check-quorum its
//! heartbeats kept every follower from electing anyone and no request completed for the
//! whole fault (20 seeds of 20). With check-quorum it steps down within an election timeout,
//! a new leader follows within two, and requests complete during the fault; the
//! `no-check-quorum` canary brings the old behaviour back, and the same claim fails.

use hovercraft_core::raft::Canary;
use hovercraft_sim::{Scenario, World};

/// What the claim measures in one run of the story.
#[derive(Debug)]
struct Numbers {
    /// From the first fault to the first "leads term" after it.
    new_leader_after_us: Option<f64>,
    /// Requests answered while the fault lasted (from the timeline's buckets).
    completed_during_fault: f64,
    /// What the clients offered meanwhile.
    offered_during_fault: f64,
    /// Highest term any node reached.
    max_term: u64,
}

fn story(canary: Option<Canary>) -> (Scenario, Numbers) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/faults/asymmetric-leader.json");
    let mut s = Scenario::load(&path).unwrap();
    s.raft.canary = canary;
    let summary = World::new(s.clone()).run().unwrap();
    let (fault_ms, heal_ms) = (s.faults[0].at_ms(), s.faults[0].heal_ms().unwrap());
    let fault_us = fault_ms as f64 * 1e3;
    let new_leader_after_us = summary
        .story
        .iter()
        .find(|l| l.t_us >= fault_us && l.what.contains(" leads term "))
        .map(|l| l.t_us - fault_us);
    let bucket_ms = s.timeline_bucket_ms.unwrap() as f64;
    let completed_during_fault = summary
        .timeline
        .iter()
        .filter(|p| p.t_ms >= fault_ms as f64 && p.t_ms < heal_ms as f64)
        .map(|p| p.completed_rps * bucket_ms / 1e3)
        .sum();
    let offered_during_fault = summary.offered_rps * (heal_ms - fault_ms) as f64 / 1e3;
    let max_term = summary
        .per_node
        .iter()
        .filter_map(|n| n.replica.as_ref().map(|r| r.term))
        .max()
        .unwrap();
    let numbers = Numbers {
        new_leader_after_us,
        completed_during_fault,
        offered_during_fault,
        max_term,
    };
    eprintln!("asymmetric-leader, canary {canary:?}: {numbers:?}");
    (s, numbers)
}

/// The story's claim: a new leader within two (maximum) election timeouts of the fault, and
/// at least half the offered requests answered while it lasts.
fn claim(s: &Scenario, n: &Numbers) -> Result<(), String> {
    let bound_us = 2.0 * s.raft.election_timeout_max_us as f64;
    match n.new_leader_after_us {
        Some(t) if t <= bound_us => {}
        other => return Err(format!("new leader after {other:?} µs (bound {bound_us})")),
    }
    if n.completed_during_fault < 0.5 * n.offered_during_fault {
        return Err(format!(
            "{} of {} requests completed during the fault",
            n.completed_during_fault, n.offered_during_fault
        ));
    }
    Ok(())
}

#[test]
fn a_leader_that_cannot_hear_is_replaced_and_requests_complete_during_the_fault() {
    let (s, n) = story(None);
    claim(&s, &n).unwrap();
    // One election, through pre-vote: the deaf leader's own attempts raise no term.
    assert_eq!(n.max_term, 2, "{n:?}");
}

#[test]
fn without_check_quorum_the_deaf_leader_blocks_the_cluster() {
    let (s, n) = story(Some(Canary::NoCheckQuorum));
    let err = claim(&s, &n).expect_err("the canary must break the claim");
    assert!(err.contains("new leader after None"), "{err}");
    assert!(
        n.completed_during_fault < 0.05 * n.offered_during_fault,
        "{n:?}"
    );
}
