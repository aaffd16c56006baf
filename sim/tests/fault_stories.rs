//! Failure stories with a number to meet (issue 14): each loads its scenario from
//! `scenarios/faults/`, runs it with every checker on, and checks the story's own claim —
//! and that the canary re-introducing the bug it guards against breaks that claim.

use hovercraft_sim::check::run_checked;
use hovercraft_sim::{Scenario, World};

fn load(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/faults")
        .join(name);
    Scenario::load(&path).unwrap()
}

/// When the leader returned to the switch path after `after_us`, from the run's story.
fn switch_return_us(s: Scenario, after_us: f64) -> Option<f64> {
    let summary = World::new(s).run().unwrap();
    summary
        .story
        .iter()
        .find(|l| l.t_us > after_us && l.what.contains("returns to the switch path"))
        .map(|l| l.t_us)
}

/// HovercRaft++ at 80% and 90% of its 5-node maximum (1.75M req/s): the aggregator reboots
/// (down 20 ms). The leader falls back at once and must return within 10 ms of the switch
/// coming back, answering everything sent after. Its probe used to be the last entry, which
/// followers on the direct path (hundreds of entries behind under load) could not count, so
/// the switch never saw a majority: the leader returned only once load fell.
#[test]
fn hovercraftpp_returns_to_the_switch_under_load_after_a_reboot() {
    let s = load("switch-reboot-under-load.json");
    let up_us = 40_000.0;
    for rate in [1_400_000.0, 1_570_000.0] {
        let mut s = s.clone();
        s.workload.rate_rps = rate;
        let o = run_checked(s.seed, s.clone());
        assert!(o.panic.is_none() && o.report.ok(), "{rate}: {:?}", o.report);
        // Every request sent after the heal was answered (liveness checked from 160 ms).
        assert!(
            o.report
                .not_checked
                .iter()
                .all(|n| !n.contains("liveness phase")),
            "{rate}: liveness not checked: {:?}",
            o.report.not_checked
        );
        let back = switch_return_us(s, up_us).expect("returns to the switch");
        assert!(
            back - up_us < 10_000.0,
            "{rate} req/s: back after {} µs",
            back - up_us
        );
    }
    // At 90% load the old probe leaves the leader off the switch for 20–40 ms (seeds 1–5).
    let mut canary = s.clone();
    canary.workload.rate_rps = 1_570_000.0;
    canary.raft.canary = Some(hovercraft_core::raft::Canary::ProbeNeedsCaughtUpFollowers);
    let back = switch_return_us(canary, up_us);
    assert!(
        back.is_none_or(|t| t - up_us >= 10_000.0),
        "the canary must keep the leader off the switch for 10 ms or more: {back:?}"
    );
}
