//! The checkers' verdicts as `run` prints them and `summary.json` records them: every
//! checker says ok, violated, undecided or not checked, and never "ok" for what it did not
//! check.

use hovercraft_sim::check::{history_json, run_checked, CheckVerdict, Report};
use hovercraft_sim::Scenario;

fn scenario(json: &str) -> Scenario {
    Scenario::from_json("<test>", json).unwrap()
}

fn verdict<'a>(r: &'a Report, name: &str) -> &'a CheckVerdict {
    &r.checks
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no checker {name} in {r:?}"))
        .1
}

/// A fault healing at 90 ms of a 100 ms run puts the liveness phase (heal + 60 ms) past the
/// end: no request falls in it, so liveness once passed vacuously. It is "not checked".
#[test]
fn liveness_past_the_end_of_the_run_is_not_checked() {
    let s = scenario(
        r#"{"name":"t","seed":3,"mode":"raft","nodes":3,"duration_ms":100,"warmup_ms":5,
            "workload":{"rate_rps":5000},
            "faults":[{"action":"partition","at_ms":30,"heal_ms":90,"groups":[[0],[1,2]]}]}"#,
    );
    let o = run_checked(3, s);
    assert!(o.report.ok(), "{:?}", o.report);
    assert!(
        matches!(
            verdict(&o.report, "liveness"),
            CheckVerdict::NotChecked { .. }
        ),
        "{:?}",
        o.report
    );
    assert_eq!(verdict(&o.report, "raft_safety"), &CheckVerdict::Ok);
}

/// A node crashed for good is not part of the healed core: with one of five down for good,
/// liveness is checked on the other four (and holds).
#[test]
fn a_node_crashed_for_good_is_left_out_of_the_healed_core() {
    let s = scenario(
        r#"{"name":"t","seed":4,"mode":"raft","nodes":5,"duration_ms":200,"warmup_ms":5,
            "workload":{"rate_rps":5000},
            "faults":[{"action":"crash_node","at_ms":20,"node":1}]}"#,
    );
    let o = run_checked(4, s);
    assert!(o.report.ok(), "{:?}", o.report);
    assert_eq!(verdict(&o.report, "liveness"), &CheckVerdict::Ok);
}

/// Two of three nodes crashed for good leave no majority: no progress is possible, so
/// liveness is "not checked" (it once failed, as if the crashed nodes had healed).
#[test]
fn no_majority_left_up_means_liveness_is_not_checked() {
    let s = scenario(
        r#"{"name":"t","seed":5,"mode":"raft","nodes":3,"duration_ms":200,"warmup_ms":5,
            "workload":{"rate_rps":5000},
            "faults":[{"action":"crash_node","at_ms":20,"node":1},
                      {"action":"crash_node","at_ms":20,"node":2}]}"#,
    );
    let o = run_checked(5, s);
    assert!(o.report.ok(), "{:?}", o.report);
    match verdict(&o.report, "liveness") {
        CheckVerdict::NotChecked { message } => assert!(message.contains("no majority")),
        v => panic!("{v:?}"),
    }
}

/// `--history` exports the kv history, one Porcupine-style object per operation.
#[test]
fn the_kv_history_exports_one_object_per_operation() {
    let s = scenario(
        r#"{"name":"t","seed":9,"mode":"hovercraft","nodes":3,"duration_ms":80,"warmup_ms":5,
            "workload":{"app":"kv","rate_rps":5000,"read_only_fraction":0.5,"kv_keys":2},
            "faults":[{"action":"crash_leader","at_ms":20,"restart_ms":40}]}"#,
    );
    let mut w = hovercraft_sim::check::checked_world(s);
    w.run_to_end();
    let recorded = w.checkers().unwrap().kv.operations().count();
    let h = history_json(&w);
    let ops = h.as_array().unwrap();
    assert_eq!(ops.len(), recorded);
    assert!(ops.len() > 100, "{}", ops.len());
    for op in ops {
        for field in [
            "client",
            "op",
            "key",
            "value",
            "output",
            "call_ns",
            "return_ns",
        ] {
            assert!(op.get(field).is_some(), "{field} missing in {op}");
        }
        let answered = !op["return_ns"].is_null();
        match op["op"].as_str().unwrap() {
            "put" => {
                assert!(op["value"].is_string());
                assert_eq!(op["output"].is_null(), !answered, "{op}");
            }
            "get" => assert!(op["value"].is_null()),
            other => panic!("unexpected op {other}"),
        }
    }
    assert!(ops
        .iter()
        .any(|o| o["op"] == "get" && o["output"].is_string()));
    let r = hovercraft_sim::check::check_world(&w);
    assert_eq!(verdict(&r, "linearizability"), &CheckVerdict::Ok);
}
