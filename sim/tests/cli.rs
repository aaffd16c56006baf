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

#[test]
fn compare_rejects_files_that_are_not_summaries() {
    let out = bin()
        .arg("compare")
        .arg(repo_file("scenarios/quickstart.json"))
        .arg(repo_file("scenarios/quickstart.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("not a summary.json"), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no table for a non-summary");
}

/// A canary run succeeds (0) when a seed catches the bug and fails loudly (5) when none does;
/// the caught seed's scenario, run on its own, exits with a checker's code, not 0 or 2.
#[test]
fn canary_runs_and_checker_failures_have_their_own_exit_codes() {
    let d = tmp("canary");
    // Seed 0 catches skip-prev-log-check (sim/tests/check.rs CANARY_SEEDS).
    let out = bin()
        .args([
            "check",
            "--seeds",
            "0..1",
            "--canary",
            "skip-prev-log-check",
            "--out",
        ])
        .arg(&d)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "caught canary: {stdout}");
    assert!(
        stdout.contains("canary skip-prev-log-check caught"),
        "{stdout}"
    );
    let seed_file = d.join("canary-skip-prev-log-check").join("seed-0.json");
    assert!(seed_file.exists(), "{} written", seed_file.display());

    let out = bin()
        .arg("run")
        .arg(&seed_file)
        .arg("--out")
        .arg(d.join("run"))
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 3 | 4)),
        "run of a failing seed exits with a checker's code, got {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No swarm seed catches ack-unmatched-suffix (CANARIES_CAUGHT_ELSEWHERE).
    let out = bin()
        .args([
            "check",
            "--seeds",
            "0..1",
            "--canary",
            "ack-unmatched-suffix",
            "--out",
        ])
        .arg(&d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "missed canary: {stderr}");
    assert!(stderr.contains("NOT caught"), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Under a batch system nothing is a terminal: status lines go to stderr every few seconds,
/// and a SIGTERM (a Slurm time limit) stops the run with a report of the seeds that finished.
#[test]
fn check_prints_status_lines_and_reports_what_finished_on_sigterm() {
    let d = tmp("sigterm");
    let mut child = bin()
        .args(["check", "--seeds", "0..10000000", "--out"])
        .arg(&d)
        .env("HOVERCRAFT_PROGRESS_SECS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Seeds already running finish (well under a second each); bounded wait.
    let mut waited_ms = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(
            waited_ms < 60_000,
            "check did not stop within 60 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited_ms += 50;
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("check: seeds "), "status lines: {stderr}");
    assert!(stdout.contains("stopped by a signal"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["stopped_by_signal"], true);
    let finished = report["finished"].as_u64().unwrap();
    assert!(finished > 0 && finished < 10_000_000, "{report}");
    let in_ranges: u64 = report["finished_ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_u64().unwrap() - r[0].as_u64().unwrap())
        .sum();
    assert_eq!(in_ranges, finished);
    let _ = std::fs::remove_dir_all(&d);
}

/// summary.json carries the scenario as it ran and how the binary was built: running the
/// embedded scenario reproduces the summary, wherever the original file went.
#[test]
fn the_embedded_scenario_reruns_to_the_same_summary() {
    let d = tmp("embedded");
    let first = d.join("first");
    let out = bin()
        .arg("run")
        .arg(repo_file("scenarios/faults/leader-crash.json"))
        .arg("--out")
        .arg(&first)
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("summary.json")).unwrap()).unwrap();
    let m = &summary["manifest"];
    assert!(m["argv"].as_array().is_some_and(|a| a.len() == 5), "{m}");
    assert!(
        m["toolchain"].as_str().unwrap().starts_with("rustc "),
        "{m}"
    );
    assert!(!m["git_revision"].as_str().unwrap().is_empty());
    let scenario = d.join("embedded.json");
    std::fs::write(&scenario, m["scenario"].to_string()).unwrap();
    let second = d.join("second");
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&second)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        without_manifest(&first.join("summary.json")),
        without_manifest(&second.join("summary.json"))
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `check --shard k/4` and `sweep --shard k/3` as separate processes, merged, give what one
/// whole run gives: the same report (apart from wall time and where it ran) and
/// failures.txt; the same CSV bytes (per seed and aggregated).
#[test]
fn sharded_runs_merge_to_the_same_bytes_as_one_run() {
    let d = tmp("shards");
    // check, with a canary so some seeds fail (no-check-quorum: seed 4 and more in 0..40).
    let check = |extra: &[&str], out: &Path| {
        let o = bin()
            .args(["check", "--seeds", "0..40", "--canary", "no-check-quorum"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(matches!(o.status.code(), Some(0 | 5)), "{o:?}");
        out.join("canary-no-check-quorum")
    };
    let whole = check(&[], &d.join("whole"));
    let parts: Vec<PathBuf> = (0..4)
        .map(|k| check(&["--shard", &format!("{k}/4")], &d.join(format!("s{k}"))))
        .collect();
    let merged = d.join("merged");
    let o = bin()
        .arg("merge")
        .args(&parts)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let report = |p: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("report.json")).unwrap()).unwrap();
        for k in [
            "argv",
            "working_directory",
            "wall_s",
            "merged_from",
            "shard",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(report(&whole), report(&merged));
    assert!(!report(&whole)["liveness_failures"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        std::fs::read(whole.join("failures.txt")).unwrap(),
        std::fs::read(merged.join("failures.txt")).unwrap()
    );

    // sweep, two seeds per point.
    let sweep = d.join("sweep.json");
    std::fs::write(
        &sweep,
        serde_json::json!({
            "name": "shards", "title": "shards", "seeds": 2,
            "base": repo_file("scenarios/sweeps/base/synthetic.json"),
            "set": { "duration_ms": 20, "warmup_ms": 5 },
            "systems": [
                { "label": "unreplicated", "set": { "mode": "unreplicated", "nodes": 1 } },
                { "label": "hovercraft", "set": { "mode": "hovercraft" } }
            ],
            "axes": [ { "field": "nodes", "column": "cluster_nodes", "values": [3, 5] } ],
            "load": { "kind": "grid", "rates_rps": [20000, 150000] },
            "baseline": "unreplicated",
            "plot": { "x": "completed_rps", "y": ["p99_us"] }
        })
        .to_string(),
    )
    .unwrap();
    let o = bin()
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(d.join("sw-whole"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    for k in 0..3 {
        let o = bin()
            .arg("sweep")
            .arg(&sweep)
            .args(["--shard", &format!("{k}/3"), "--out"])
            .arg(d.join("sw-parts"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    }
    let o = bin()
        .arg("merge")
        .arg(d.join("sw-parts"))
        .arg("--out")
        .arg(d.join("sw-merged"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    for f in ["data.csv", "slo.csv", "data_agg.csv", "slo_agg.csv"] {
        assert_eq!(
            std::fs::read(d.join("sw-whole").join(f)).unwrap(),
            std::fs::read(d.join("sw-merged").join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(d.join("sw-merged/shards.png").exists());
    // A missing shard is an error that says so.
    std::fs::remove_file(d.join("sw-parts/shard-1-of-3.jsonl")).unwrap();
    let o = bin()
        .arg("merge")
        .arg(d.join("sw-parts"))
        .arg("--out")
        .arg(d.join("sw-bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing"),
        "{o:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
