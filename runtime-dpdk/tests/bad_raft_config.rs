//! Cluster files whose `raft` section would crash a node or make it refuse every request
//! are rejected before anything starts: `hovercraft-node` and `hovercraft-loadgen` exit 2
//! with one line on stderr naming the file and the field (core's `RaftConfig::validate`).
//! Rootless: both programs exit before they bind a socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE: &str = env!("CARGO_BIN_EXE_hovercraft-node");
const LOADGEN: &str = env!("CARGO_BIN_EXE_hovercraft-loadgen");

const BASE: &str = r#"{
  "mode": "hovercraft", "multicast": false,
  "nodes": [{"id": 0, "address": "127.0.0.1:7000"}, {"id": 1, "address": "127.0.0.1:7001"},
            {"id": 2, "address": "127.0.0.1:7002"}],
  "raft": RAFT,
  "storage": {"dir": "DIR", "fsync": false},
  "auth": {"unauthenticated": true},
  "workload": {"app": "kv", "rate_rps": 100}
}"#;

/// (raft section, field the error must name)
const CASES: [(&str, &str); 6] = [
    (
        r#"{"max_entries_per_append": 5000}"#,
        "raft.max_entries_per_append",
    ),
    (
        r#"{"max_entries_per_append": 0}"#,
        "raft.max_entries_per_append",
    ),
    (
        r#"{"flow_control_threshold": 0}"#,
        "raft.flow_control_threshold",
    ),
    (r#"{"replier_bound": 0}"#, "raft.replier_bound"),
    (
        r#"{"election_timeout_min_us": 18446744073709551615,
            "election_timeout_max_us": 18446744073709551615}"#,
        "raft.election_timeout_min_us",
    ),
    (
        r#"{"election_timeout_max_us": 18446744073709551615}"#,
        "raft.election_timeout_max_us",
    ),
];

fn fresh_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bad-raft-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `program args…`, expecting it to exit within 10 s; returns (code, stderr).
fn exit_of(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > Duration::from_secs(10) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_raft_sections_exit_2_with_one_line_naming_file_and_field() {
    let dir = fresh_dir();
    let data = dir.join("data").display().to_string();
    let good = dir.join("good.json");
    std::fs::write(&good, BASE.replace("RAFT", "{}").replace("DIR", &data)).unwrap();
    for (i, (raft, field)) in CASES.iter().enumerate() {
        let file = dir.join(format!("bad{i}.json"));
        std::fs::write(&file, BASE.replace("RAFT", raft).replace("DIR", &data)).unwrap();
        let path = file.display().to_string();
        for (program, args) in [
            (NODE, vec!["--cluster", &path, "--id", "0"]),
            (LOADGEN, vec!["--cluster", &path]),
        ] {
            let (code, err) = exit_of(program, &args);
            assert_eq!(code, Some(2), "case {i} ({program}): {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
            assert!(
                err.contains(&path) && err.contains(&format!("field `{field}`: ")),
                "case {i} ({program}): want {path} and {field} in {err:?}"
            );
        }
    }
    // The same file with an empty raft section passes validation (the node then fails to
    // bind or runs; only that it got past the file matters here, so only the loadgen's
    // `--garbage 0` is run: it sends nothing and exits 0).
    let (code, err) = exit_of(
        LOADGEN,
        &["--cluster", &good.display().to_string(), "--garbage", "0"],
    );
    assert_eq!(code, Some(0), "{err}");
}
