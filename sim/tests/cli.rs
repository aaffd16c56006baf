//! The command line as a user meets it: exit codes, one-line errors, output files, and
//! byte-identical traces across runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hovercraft-sim"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hovercraft-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn repo_file(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn without_manifest(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("manifest");
    v
}

#[test]
fn run_twice_gives_identical_trace_and_summary() {
    let d = tmp("det");
    let quickstart = repo_file("scenarios/quickstart.json");
    for (i, seed) in [(0, "1"), (1, "1"), (2, "2")] {
        let out = bin()
            .args(["run", quickstart.to_str().unwrap(), "--seed", seed, "--out"])
            .arg(d.join(format!("out{i}")))
            .arg("--trace")
            .arg(d.join(format!("trace{i}.txt")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let t0 = std::fs::read(d.join("trace0.txt")).unwrap();
    let t1 = std::fs::read(d.join("trace1.txt")).unwrap();
    let t2 = std::fs::read(d.join("trace2.txt")).unwrap();
    assert!(!t0.is_empty());
    assert!(t0 == t1, "same seed: byte-identical traces");
    assert!(t0 != t2, "different seed: different trace");
    let s0 = without_manifest(&d.join("out0/summary.json"));
    let s1 = without_manifest(&d.join("out1/summary.json"));
    assert_eq!(s0, s1);
    for field in [
        "scenario",
        "seed",
        "mode",
        "nodes",
        "offered_rps",
        "completed_rps",
        "dropped",
        "latency_us",
        "simulated_ns",
        "events",
    ] {
        assert!(s0.get(field).is_some(), "summary lacks {field}");
    }
    for q in ["p50", "p99", "p999", "max"] {
        assert!(s0["latency_us"].get(q).is_some());
    }
    let full: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out0/summary.json")).unwrap()).unwrap();
    assert!(full["manifest"]["command"]
        .as_str()
        .unwrap()
        .contains("run"));
    assert!(full["manifest"]["git_revision"].is_string());
    let _ = std::fs::remove_dir_all(&d);
}

fn expect_one_line_error(json: &str, must_mention: &[&str]) {
    let d = tmp("bad");
    let f = d.join("bad.json");
    std::fs::write(&f, json).unwrap();
    let out = bin()
        .args(["run", f.to_str().unwrap(), "--out"])
        .arg(d.join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "exit code for {json}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("bad.json"), "names the file: {err}");
    for m in must_mention {
        assert!(err.contains(m), "mentions {m}: {err}");
    }
    assert!(!d.join("o").exists(), "no output for a bad scenario");
    let _ = std::fs::remove_dir_all(&d);
}

const GOOD: &str =
    r#"{"name":"x","mode":"unreplicated","nodes":1,"duration_ms":5,"workload":{"rate_rps":1000}}"#;

#[test]
fn bad_scenarios_fail_with_one_line_naming_file_and_field() {
    expect_one_line_error(
        &GOOD.replace("\"nodes\"", "\"colour\":1,\"nodes\""),
        &["colour"],
    );
    expect_one_line_error(
        &GOOD.replace("1000", "-3"),
        &["workload.rate_rps", "positive"],
    );
    expect_one_line_error(&GOOD.replace("\"nodes\":1", "\"nodes\":0"), &["nodes"]);
    expect_one_line_error(&GOOD[..40], &["EOF"]);
    expect_one_line_error(&GOOD.replace("unreplicated", "paxos"), &["mode", "paxos"]);
}

#[test]
fn missing_scenario_file_is_a_clear_error() {
    let out = bin()
        .args(["run", "/nonexistent/none.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/none.json") && err.contains("cannot read"),
        "{err}"
    );
}
