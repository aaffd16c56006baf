//! The Redis application backend under YCSB-E: three `hovercraft-node` processes on
//! 127.0.0.1, each applying committed requests to its own `redis-server` (started here on a
//! unix socket in a temp dir, killed on drop), YCSB-E load (95% scans of up to 100 records,
//! 5% inserts, zipfian start keys). Afterwards all three Redis instances must hold identical
//! data (DBSIZE and a digest of every record), and every scan must have been consistent with
//! the inserts acknowledged before it. Without `redis-server` the test says so loudly and
//! passes, unless `HC_REQUIRE_REDIS=1` (set by CI after installing it).
//!
//! Also the backend's snapshots, without a cluster: a snapshot of one Redis restored into
//! another holds the same data, replicas with the same history snapshot the same bytes, and a
//! damaged snapshot leaves its target as it was.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{wait_for, Cluster, ClusterSpec, Launcher};
use hovercraft_core::app::kv::{ycsb_key, ycsb_record, KvRequest, YCSB_RECORD_BYTES};
use hovercraft_core::app::{AppError, StateMachine};
use hovercraft_runtime::redis::{digest, RedisApp, RedisDigest, RespConn, SNAPSHOT_BATCH};
use serde_json::{json, Value};

const RECORDS: u64 = 500;

/// redis-server processes and their directory, gone when dropped (also on panic).
struct Redises {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Redises {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Redises {
    fn socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("redis-{i}.sock"))
    }

    fn start(n: usize) -> Redises {
        // Unix socket paths are limited to 107 bytes: a short directory under /tmp, one per
        // call (the tests of this file run in parallel).
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hc-redis-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redises {
            dir,
            children: Vec::new(),
        };
        for i in 0..n {
            let data = r.dir.join(format!("data-{i}"));
            std::fs::create_dir_all(&data).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", "0", "--unixsocket"])
                .arg(r.socket(i))
                .args([
                    "--unixsocketperm",
                    "700",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&data)
                .arg("--logfile")
                .arg(r.dir.join(format!("redis-{i}.log")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            r.children.push(child);
        }
        r
    }

    fn kill(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }

    fn connect(&self, i: usize) -> RespConn {
        RespConn::connect_retry(&self.socket(i), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("redis {i} did not come up: {e}"))
    }
}

fn redis_unavailable() -> Option<String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("redis-server --version exited {}", o.status)),
        Err(e) => Some(format!("redis-server not found ({e})")),
    }
}

/// Whether `test` must be skipped for want of redis-server (said loudly; a failure instead
/// under `HC_REQUIRE_REDIS=1`).
fn skip_without_redis(test: &str) -> bool {
    let Some(why) = redis_unavailable() else {
        return false;
    };
    let msg = format!("\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n");
    if std::env::var("HC_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("{msg} (HC_REQUIRE_REDIS=1)");
    }
    eprintln!("{msg}");
    true
}

fn loopback_addrs(n: usize) -> Vec<SocketAddrV4> {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    socks
        .iter()
        .map(|s| SocketAddrV4::new(Ipv4Addr::LOCALHOST, s.local_addr().unwrap().port()))
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

#[test]
fn redis_replicas_converge_under_ycsb_e() {
    if skip_without_redis("redis_replicas_converge_under_ycsb_e") {
        return;
    }
    let redises = Redises::start(3);
    for i in 0..3 {
        redises.connect(i);
    }
    let socket_template = redises.dir.join("redis-{id}.sock");
    let mut c = Cluster::new(
        Launcher::default(),
        &ClusterSpec {
            name: "redis-ycsb-e".into(),
            addrs: loopback_addrs(3),
            group: None,
            client_bind: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            overrides: json!({
                "workload": {"app": "kv", "rate_rps": 400,
                             "ycsb": {"records": RECORDS, "scan_max_records": 100,
                                      "insert_fraction": 0.05,
                                      "key_distribution": "zipfian"}},
                "redis": {"socket": socket_template},
            }),
        },
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| steps(&mut c, &redises)));
    if let Err(e) = r {
        c.dump_logs();
        std::panic::resume_unwind(e);
    }
}

fn steps(c: &mut Cluster, redises: &Redises) {
    let (leader, term) =
        wait_for(Duration::from_secs(20), || c.leader()).expect("no leader within 20 s");
    println!("leader {leader} in term {term}");
    let run = c.run_counted("ycsb", &["--duration-ms", "4000"], Duration::from_secs(60));
    common::assert_resolved_exactly_once(&run, 800);
    let s = &run.summary;
    let replies: Vec<u64> = s["per_replica_replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(u)
        .collect();
    assert!(
        replies.iter().all(|&r| r > 0),
        "replies from every replica: {replies:?}"
    );
    let y = &s["ycsb"];
    println!("ycsb: {y}");
    assert_eq!(u(&y["violations"]), 0, "inconsistent scans: {y}");
    assert!(
        u(&y["scans_answered"]) > 500 && u(&y["scan_records"]) > 5_000,
        "{y}"
    );
    let acked = u(&y["inserts_acked"]);
    assert!(acked > 20, "{y}");

    // Every replica applied the same log: wait (bounded) until all report the same applied
    // index, then compare what their Redis instances hold.
    let settled = wait_for(Duration::from_secs(15), || {
        let applied: Vec<u64> = (0..3)
            .map(|i| c.status(i).map_or(0, |s| u(&s["applied_index"])))
            .collect();
        (applied[0] > 0 && applied.iter().all(|&a| a == applied[0])).then_some(applied)
    });
    assert!(
        settled.is_some(),
        "replicas did not settle on one applied index"
    );
    let digests: Vec<RedisDigest> = (0..3)
        .map(|i| digest(&mut redises.connect(i)).unwrap())
        .collect();
    println!("redis digests: {digests:?}");
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "replicas' Redis differ: {digests:?}"
    );
    let d = digests[0];
    assert_eq!(
        d.dbsize as u64,
        d.records + 1,
        "records plus the index: {d:?}"
    );
    assert!(
        (RECORDS + acked..=RECORDS + u(&y["inserts_sent"])).contains(&d.records),
        "{RECORDS} preloaded + {acked} acknowledged inserts: {d:?}"
    );
}

const CONNECT: Duration = Duration::from_secs(10);

fn exec(app: &mut RedisApp, req: KvRequest) {
    let mut body = Vec::new();
    req.encode(&mut body);
    let mut reply = Vec::new();
    app.execute(&body, &mut reply).unwrap();
    assert!(
        app.fatal().lock().unwrap().is_none(),
        "redis failed: {:?}",
        app.fatal()
    );
}

/// The same writes on any app: YCSB records overwritten, short values, inserts past the
/// preloaded table, deletes (including of a key that is not there).
fn history(app: &mut RedisApp) {
    for i in (0..SNAP_RECORDS).step_by(7) {
        let key = ycsb_key(i);
        let value = ycsb_record(&key, 1 + i);
        assert_eq!(value.len(), YCSB_RECORD_BYTES);
        exec(app, KvRequest::Put { key, value });
    }
    for i in 0..200u64 {
        exec(
            app,
            KvRequest::Insert {
                key: format!("new{i:04}").into_bytes(),
                value: vec![i as u8; (i % 50) as usize],
            },
        );
    }
    exec(
        app,
        KvRequest::Put {
            key: b"bin\x00\xff".to_vec(),
            value: b"".to_vec(),
        },
    );
    for i in (0..SNAP_RECORDS).step_by(11) {
        exec(app, KvRequest::Delete { key: ycsb_key(i) });
    }
    exec(
        app,
        KvRequest::Delete {
            key: b"absent".to_vec(),
        },
    );
}

/// More records than one snapshot batch, so both paging and pipelining are crossed.
const SNAP_RECORDS: u64 = SNAPSHOT_BATCH as u64 * 2 + 345;

#[test]
fn redis_snapshot_restores_into_another_redis() {
    if skip_without_redis("redis_snapshot_restores_into_another_redis") {
        return;
    }
    let mut redises = Redises::start(3);
    let open = |r: &Redises, i: usize, records: u64| {
        let (app, loaded) = RedisApp::open(&r.socket(i), records, CONNECT).unwrap();
        assert_eq!(loaded, records);
        app
    };
    // The source, and a twin given the same history in a separate redis-server (another
    // random hash seed: Redis's own DUMP of a YCSB record would differ between them).
    let mut source = open(&redises, 0, SNAP_RECORDS);
    history(&mut source);
    let mut twin = open(&redises, 2, SNAP_RECORDS);
    history(&mut twin);
    let mut snap = Vec::new();
    let cost = source.snapshot(&mut snap);
    assert!(
        source.fatal().lock().unwrap().is_none(),
        "{:?}",
        source.fatal()
    );
    let want = digest(&mut redises.connect(0)).unwrap();
    println!(
        "snapshot of {} records: {} bytes in {:.2} ms",
        want.records,
        snap.len(),
        cost.cpu_ns as f64 / 1e6
    );
    assert!(cost.cpu_ns > 0);
    assert_eq!(snap[0], b'R');
    assert_eq!(snap[1..9], want.records.to_be_bytes());
    assert_eq!(want.records, SNAP_RECORDS - SNAP_RECORDS.div_ceil(11) + 201);
    let mut twin_snap = Vec::new();
    twin.snapshot(&mut twin_snap);
    assert!(twin_snap == snap, "same history, different snapshot bytes");

    // The target holds other data, all of which the restore replaces.
    let mut target = open(&redises, 1, 40);
    exec(
        &mut target,
        KvRequest::Put {
            key: b"only-on-target".to_vec(),
            value: b"x".to_vec(),
        },
    );
    let before = digest(&mut redises.connect(1)).unwrap();
    assert_ne!(before, want);

    // Damaged snapshots are refused and leave the target alone.
    let mut damaged: Vec<Vec<u8>> = vec![
        Vec::new(),
        snap[..snap.len() - 1].to_vec(),
        snap[..snap.len() / 2].to_vec(),
        [&snap[..], b"x"].concat(),
    ];
    let mut wrong_tag = snap.clone();
    wrong_tag[0] = b'K';
    damaged.push(wrong_tag);
    let mut short_count = snap.clone();
    short_count[8] -= 1;
    damaged.push(short_count);
    let mut long_key = snap.clone();
    long_key[9..13].copy_from_slice(&4096u32.to_be_bytes());
    damaged.push(long_key);
    for bad in &damaged {
        assert!(
            matches!(target.restore(bad), Err(AppError::BadSnapshot { .. })),
            "accepted a damaged snapshot of {} bytes",
            bad.len()
        );
    }
    assert!(target.fatal().lock().unwrap().is_none());
    assert_eq!(digest(&mut redises.connect(1)).unwrap(), before);

    // The snapshot restores to the same data; a snapshot of the result is the same bytes.
    let cost = target.restore(&snap).unwrap();
    println!("restored in {:.2} ms", cost.cpu_ns as f64 / 1e6);
    assert!(
        target.fatal().lock().unwrap().is_none(),
        "{:?}",
        target.fatal()
    );
    assert_eq!(digest(&mut redises.connect(1)).unwrap(), want);
    let mut again = Vec::new();
    target.snapshot(&mut again);
    assert!(
        again == snap,
        "a restored replica snapshots different bytes"
    );
    // And the restored data serves the app: the history's writes apply the same on it.
    history(&mut target);
    history(&mut source);
    assert_eq!(
        digest(&mut redises.connect(1)).unwrap(),
        digest(&mut redises.connect(0)).unwrap()
    );

    // An empty database snapshots to no records, and restoring that empties a database.
    redises.connect(2).cmd(&[b"FLUSHDB"]).unwrap();
    let mut empty = Vec::new();
    twin.snapshot(&mut empty);
    assert_eq!(empty, [&b"R"[..], &[0; 8]].concat());
    target.restore(&empty).unwrap();
    assert_eq!(digest(&mut redises.connect(1)).unwrap().dbsize, 0);

    // A key outside the data model cannot be snapshotted: the replica stops rather than ship
    // a snapshot without it.
    redises.connect(2).cmd(&[b"SET", b"stray", b"1"]).unwrap();
    let mut out = b"kept".to_vec();
    twin.snapshot(&mut out);
    assert_eq!(out, b"kept");
    let fatal = twin.fatal().lock().unwrap().clone().unwrap_or_default();
    assert!(fatal.contains("DBSIZE"), "{fatal}");

    // A Redis gone before the restore: it fails and the replica stops.
    redises.kill(1);
    assert!(target.restore(&snap).is_err());
    assert!(target.fatal().lock().unwrap().is_some());
}
