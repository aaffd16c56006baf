//! Issue 15 on 127.0.0.1: a follower that was down past the leader's retention window catches
//! up by snapshot. A 3-node kv cluster (fsync on) snapshots every 2 000 entries and keeps
//! 1 000 behind the applied index; a follower is stopped while the load goes on, so the
//! leader's log no longer holds what it needs; restarted, it installs the leader's snapshot,
//! catches up, and `hovercraft-loadgen --verify` reads back every acknowledged write. Then
//! the follower restarts once more, now from its own snapshot and bounded log; with its
//! snapshot damaged it refuses to start (exit 3). Prints the catch-up time and the snapshot's
//! size.
//!
//! `HC_REQUIRE_LOOPBACK=1` makes a missing prerequisite a failure instead of a skip.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;
use std::time::Duration;

use common::{
    loopback_addrs, skip_without_loopback, u, wait_for, ChildGuard, Cluster, ClusterSpec, Launcher,
};
use hovercraft_runtime::clock::Clock;
use serde_json::Value;

const RATE_RPS: u64 = 1_000;
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 2_000;
const LOG_RETENTION_ENTRIES: u64 = 1_000;
/// Load before the follower stops, while it is down, and after its restart.
const BEFORE_STOP_MS: u64 = 2_000;
const DOWN_MS: u64 = 7_000;
const AFTER_MS: u64 = 5_000;
const CATCH_UP_BOUND: Duration = Duration::from_secs(20);

#[test]
fn a_follower_behind_the_retention_window_catches_up_by_snapshot() {
    if skip_without_loopback("a_follower_behind_the_retention_window_catches_up_by_snapshot") {
        return;
    }
    let mut c = Cluster::new(
        Launcher::default(),
        &ClusterSpec {
            name: "snapshot-catchup".into(),
            addrs: loopback_addrs(3),
            group: None,
            client_bind: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            // The loopback stories' timers, small snapshot intervals; a large key space so a
            // lost write is not overwritten unseen (see kill_loop.rs).
            overrides: serde_json::json!({
                "raft": {"election_timeout_min_us": 150000, "election_timeout_max_us": 300000,
                         "heartbeat_us": 10000, "append_retry_us": 20000,
                         "snapshot_interval_entries": SNAPSHOT_INTERVAL_ENTRIES,
                         "log_retention_entries": LOG_RETENTION_ENTRIES},
                "workload": {"app": "kv", "rate_rps": RATE_RPS, "read_only_fraction": 0.1,
                             "kv_keys": 1_000_000}
            }),
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c)));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

fn file_bytes(c: &Cluster, i: usize, name: &str) -> u64 {
    let p = c.dir.join("data").join(format!("node{i}")).join(name);
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn steps(c: &mut Cluster) {
    let clock = Clock::new();
    let now_ms = || clock.now().as_ns() as f64 / 1e6;
    let (leader, term) =
        wait_for(Duration::from_secs(15), || c.leader()).expect("no leader elected within 15 s");
    println!("leader {leader} in term {term}");
    let duration_ms = BEFORE_STOP_MS + DOWN_MS + AFTER_MS;
    let mut lg = ChildGuard(Some(
        c.loadgen(
            "catchup",
            &[
                "--duration-ms",
                &duration_ms.to_string(),
                "--rate",
                &RATE_RPS.to_string(),
                "--verify",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    ));

    // 1. A follower stops; the others go on past the retention window.
    std::thread::sleep(Duration::from_millis(BEFORE_STOP_MS));
    let (leader, _) = c.leader().expect("a leader before the stop");
    let f = (leader + 1) % 3;
    let stopped_at = u(&c.status(f).unwrap()["applied_index"]);
    c.kill(f);
    println!("stopped follower {f} at applied index {stopped_at}");
    std::thread::sleep(Duration::from_millis(DOWN_MS));
    let ls = c.fresh_status(leader).expect("the leader still runs");
    let first_kept_min = stopped_at + LOG_RETENTION_ENTRIES;
    let leader_commit = u(&ls["commit_index"]);
    let leader_snap = u(&ls["storage"]["snapshot_index"]);
    println!(
        "leader {leader}: commit index {leader_commit}, snapshot at {leader_snap}, log {} \
         bytes on disk",
        file_bytes(c, leader, "raft.log")
    );
    assert!(
        leader_snap > first_kept_min,
        "the leader's snapshot ({leader_snap}) must be past what the follower needs \
         ({stopped_at} + retention {LOG_RETENTION_ENTRIES}) for this test to mean anything"
    );

    // 2. It restarts and catches up by snapshot.
    let target = leader_commit;
    let started = now_ms();
    c.start(f);
    let caught = wait_for(CATCH_UP_BOUND, || {
        let s = c.fresh_status(f)?;
        (u(&s["applied_index"]) >= target).then_some(s)
    });
    let catch_up_ms = now_ms() - started;
    let s = caught.unwrap_or_else(|| {
        panic!(
            "follower {f} did not reach index {target} within {CATCH_UP_BOUND:?}: {:?}",
            c.fresh_status(f)
        )
    });
    let installed = u(&s["replica"]["snapshots_installed"]);
    let err = c.stderr(f);
    let line = err
        .lines()
        .rfind(|l| l.contains("installed the leader's snapshot"))
        .unwrap_or_else(|| panic!("no snapshot installed by node {f}:\n{err}"))
        .to_string();
    assert!(installed >= 1, "{s}");
    let snapshot_bytes: u64 = line
        .split(", ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {line:?}"));
    println!("{line}");
    println!(
        "follower {f} caught up to index {target} by snapshot in {catch_up_ms:.0} ms \
         ({installed} installed, snapshot {snapshot_bytes} bytes; leader sent {} snapshot \
         bytes)",
        c.fresh_status(leader)
            .map_or(0, |s| u(&s["replica"]["snapshot_bytes_sent"]))
    );

    // 3. The load generator finishes and reads every key back.
    let mut child = lg.0.take().unwrap();
    let bound = Duration::from_millis(duration_ms + 90_000);
    let exited = wait_for(bound, || child.try_wait().unwrap());
    if exited.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(exited.is_some(), "the load generator hung past {bound:?}");
    let sum = c.summary("catchup");
    let kv = &sum["kv"];
    let v = &kv["verify"];
    println!("kv: {} acknowledged writes; verify {v}", kv["acked_writes"]);
    assert!(
        u(&kv["acked_writes"]) > RATE_RPS * duration_ms / 4_000,
        "{kv}"
    );
    assert_eq!(u(&v["lost"]), 0, "acknowledged writes lost: {v}");
    assert_eq!(u(&v["unreadable"]), 0, "{v}");
    assert!(
        out.status.success(),
        "load generator: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // 4. Every node's disk holds one snapshot and a bounded log.
    for i in 0..3 {
        let s = c
            .fresh_status(i)
            .unwrap_or_else(|| panic!("node {i} is not running"));
        let st = &s["storage"];
        let (log, snap) = (file_bytes(c, i, "raft.log"), file_bytes(c, i, "snapshot"));
        println!(
            "node {i}: snapshot at {} ({snap} bytes), raft.log {log} bytes, {} snapshots \
             written, {} log rewrites (last {} ms)",
            st["snapshot_index"],
            st["snapshots_written"],
            st["log_rewrites"],
            st["last_rewrite_ms"]
        );
        assert!(u(&st["log_rewrites"]) >= 1, "node {i}: {st}");
        assert!(snap > 0, "node {i}: no snapshot file");
        // At most an interval and a retention window of entries, with their bodies.
        assert!(log < 4 << 20, "node {i}: raft.log is {log} bytes");
    }

    // 5. The follower restarts again, now from its own snapshot and rewritten log.
    let target = c.fresh_status(leader).map_or(0, |s| u(&s["commit_index"]));
    c.kill(f);
    c.start(f);
    let again = wait_for(CATCH_UP_BOUND, || {
        let s = c.fresh_status(f)?;
        (s["leader"] != Value::Null && u(&s["applied_index"]) >= target).then_some(s)
    })
    .unwrap_or_else(|| panic!("follower {f} did not restart: {:?}", c.fresh_status(f)));
    println!(
        "follower {f} restarted from its snapshot at {} and {} entries in {} ms of replay",
        again["restored_snapshot_index"], again["restored_entries"], again["replay_ms"]
    );
    assert!(u(&again["restored_snapshot_index"]) > 0, "{again}");

    // 6. A damaged snapshot stops the node (exit 3, one line naming the file); put back, the
    //    node starts again.
    c.kill(f);
    let snap = c.dir.join("data").join(format!("node{f}")).join("snapshot");
    let good = std::fs::read(&snap).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x10;
    std::fs::write(&snap, &bad).unwrap();
    c.start(f);
    let child = c.nodes[f].as_mut().unwrap();
    let status = wait_for(Duration::from_secs(10), || child.try_wait().unwrap())
        .expect("the node with a damaged snapshot did not stop within 10 s");
    c.nodes[f] = None;
    assert_eq!(status.code(), Some(3), "{}", c.stderr(f));
    let err = c.stderr(f);
    let line = err
        .lines()
        .rfind(|l| l.contains("damaged snapshot"))
        .unwrap_or_else(|| panic!("no refusal in:\n{err}"));
    assert!(line.contains(&format!("{}: ", snap.display())), "{line}");
    println!("refused: {line}");
    std::fs::write(&snap, &good).unwrap();
    c.start(f);
    wait_for(CATCH_UP_BOUND, || {
        let s = c.fresh_status(f)?;
        (s["leader"] != Value::Null).then_some(())
    })
    .unwrap_or_else(|| panic!("follower {f} did not start again: {:?}", c.stderr(f)));
}
