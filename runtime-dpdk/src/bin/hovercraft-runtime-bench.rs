//! `hovercraft-runtime-bench [--duration-ms MS] [--window N] [--dpdk --netns-prefix P]`: in
//! one run, the raw packet path (an R2P2 ping-pong with no protocol, `echo` below) and a 3-node
//! hovercraft cluster, both on the same backend and driven by the same closed-loop client;
//! prints RPS and p99 of each, and `ratio X` (cluster RPS / raw RPS) as its last line.
//!
//! Backends:
//! - kernel UDP on 127.0.0.1 (default): nodes without multicast (the client sends a copy to
//!   each), like the loopback tests.
//! - `--dpdk --netns-prefix P`: DPDK `net_af_packet` on the veths of namespaces made by
//!   `netns-cluster.sh up 4 --dpdk` (prefix P). The echo server and nodes run in P0..P2
//!   (10.77.0.1..3), the client in this process, which must run in P3 (10.77.0.4), e.g.
//!   `ip netns exec P3 hovercraft-runtime-bench --dpdk --netns-prefix P`. Real multicast to
//!   239.1.1.1. Needs a binary built with `--features dpdk`.
//!
//! `hovercraft-runtime-bench echo --bind ADDR [--cluster FILE]`: the raw ping-pong server (the
//! bench starts it; on DPDK when the cluster file says so).
//!
//! `hovercraft-runtime-bench replay [--entries 5000,10000,...] [--dir D] [--snapshot-bytes B]
//! [--fsync]`: how long a node's start-up replay of its `raft.log` takes (open, read, check,
//! rebuild the state) for logs of that many metadata-only entries, one record each (issue 15:
//! replay must be linear); then, unless `--snapshot-bytes 0`, writes a snapshot at half the
//! entries, rewrites the log behind it (the storage thread's pause per snapshot; `--fsync`
//! syncs as a node does) and replays again. Prints one table row per size.
//! Exit codes: 1 a run failed (a child did not start, no leader, bad arguments).
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hovercraft_core::rng::{stream_rng, Stream};
use hovercraft_core::wire::Policy;
use hovercraft_core::workload::{Generator, ServiceTime, WorkloadConfig};
use hovercraft_runtime::bench::{self, BenchResult, ClosedLoop};
use hovercraft_runtime::cluster::ClusterFile;
use hovercraft_runtime::core as hovercraft_core;
use hovercraft_runtime::io::{open_backend, Io, UdpOptions};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "hovercraft-runtime-bench",
    about = "Raw R2P2 ping-pong vs a 3-node HovercRaft cluster on the same backend"
)]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Measured time of each of the two runs.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Unmeasured time before each run.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// Requests in flight at once (closed loop).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Application bytes of each request and reply.
    #[arg(long, default_value_t = 24)]
    request_bytes: u32,
    #[arg(long, default_value_t = 8)]
    reply_bytes: u32,
    /// Use the DPDK backend (net_af_packet on the namespaces' veths; needs --netns-prefix).
    #[arg(long)]
    dpdk: bool,
    /// Namespaces P0..P3 of `netns-cluster.sh up 4 [--dpdk]`; this process runs in P3.
    #[arg(long)]
    netns_prefix: Option<String>,
    /// DPDK: an idle poller yields, then naps this long between polls (0: pure busy-poll).
    /// 4 pollers share the machine during the cluster run.
    #[arg(long, default_value_t = 50)]
    idle_nap_us: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// The raw ping-pong server: answers every R2P2 REQUEST with an empty-protocol RESPONSE.
    Echo {
        #[arg(long)]
        bind: SocketAddrV4,
        #[arg(long, default_value_t = 8)]
        reply_bytes: usize,
        /// Take the backend (e.g. `dpdk`) from this cluster file.
        #[arg(long)]
        cluster: Option<PathBuf>,
    },
    /// Time to replay raft.log files of N entries (one record per entry).
    Replay {
        #[arg(long, value_delimiter = ',', default_values_t = [5_000u64, 10_000, 20_000, 40_000, 80_000, 1_000_000])]
        entries: Vec<u64>,
        /// Where to write the logs (default: a scratch directory under the system temp dir,
        /// removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Then a snapshot of this many bytes at half the log's entries: time to write it
        /// and rewrite the log behind it (the storage thread's pause per snapshot), and the
        /// replay after (0: skip).
        #[arg(long, default_value_t = 1 << 20)]
        snapshot_bytes: usize,
        /// Sync the snapshot and the rewritten log as a node with `storage.fsync` does.
        #[arg(long)]
        fsync: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match &args.cmd {
        Some(Cmd::Echo {
            bind,
            reply_bytes,
            cluster,
        }) => echo(*bind, *reply_bytes, cluster.as_deref()),
        Some(Cmd::Replay {
            entries,
            dir,
            snapshot_bytes,
            fsync,
        }) => replay(entries, dir.as_deref(), *snapshot_bytes, *fsync),
        None => run(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hovercraft-runtime-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The largest log the replay bench writes (about 60 bytes per entry on disk).
const MAX_REPLAY_ENTRIES: u64 = 50_000_000;

fn replay(
    sizes: &[u64],
    dir: Option<&Path>,
    snapshot_bytes: usize,
    fsync: bool,
) -> anyhow::Result<()> {
    use hovercraft_core::raft::{PersistRequest, Snapshot};
    use hovercraft_runtime::storage::{bench_identity, write_bench_log, LogFile};
    if let Some(&n) = sizes.iter().find(|&&n| n > MAX_REPLAY_ENTRIES) {
        anyhow::bail!("--entries {n}: at most {MAX_REPLAY_ENTRIES} per log");
    }
    let scratch = dir.is_none().then(|| {
        std::env::temp_dir().join(format!("hovercraft-replay-bench-{}", std::process::id()))
    });
    let _cleanup = Guard {
        children: Vec::new(),
        dir: scratch.clone(),
    };
    let dir = dir.map_or_else(|| scratch.clone().unwrap_or_default(), Path::to_path_buf);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ms = |clock: &hovercraft_runtime::clock::Clock| clock.now().as_ns() as f64 / 1e6;
    print!(
        "{:>9} {:>9} {:>10} {:>10} {:>12}",
        "entries", "records", "file_mb", "replay_ms", "entries_per_s"
    );
    if snapshot_bytes > 0 {
        print!(
            " | {:>8} {:>10} {:>10} {:>12} {:>16}",
            "snap_mb", "snap_ms", "rewrite_ms", "log_after_mb", "replay_after_ms"
        );
    }
    println!();
    for &n in sizes {
        // One directory per log: the snapshot file sits beside the log it belongs to.
        let node_dir = dir.join(format!("n{n}"));
        let path = node_dir.join("raft.log");
        let file_bytes = write_bench_log(&path, n)?;
        let clock = hovercraft_runtime::clock::Clock::new();
        let (log, state, r) = LogFile::open(&path, &bench_identity(), fsync)?;
        let replay_ms = ms(&clock);
        anyhow::ensure!(
            state.entries.len() as u64 == n && r.cut.is_none(),
            "{}: replayed {} entries of {n}",
            path.display(),
            state.entries.len()
        );
        print!(
            "{n:>9} {:>9} {:>10.1} {replay_ms:>10.1} {:>12.0}",
            r.records,
            file_bytes as f64 / 1e6,
            n as f64 / (replay_ms / 1e3).max(1e-9)
        );
        if snapshot_bytes > 0 {
            let mut log = log;
            let req = PersistRequest {
                seq: n + 2,
                term: state.term,
                voted_for: state.voted_for,
                log_from: None,
                last_index: n,
                entries: Vec::new(),
                snapshot: Some(Snapshot {
                    index: n / 2,
                    term: state.term,
                    data: vec![0x5a; snapshot_bytes].into(),
                }),
            };
            let shown = path.display().to_string();
            let io = |op: &'static str| {
                let shown = shown.clone();
                move |e| anyhow::anyhow!("{shown}: {op}: {e}")
            };
            let clock = hovercraft_runtime::clock::Clock::new();
            log.write_snapshot(&req).map_err(io("snapshot"))?;
            log.append(&req);
            log.flush().map_err(io("write"))?;
            let snap_ms = ms(&clock);
            let clock = hovercraft_runtime::clock::Clock::new();
            log.rewrite().map_err(io("rewrite"))?;
            let rewrite_ms = ms(&clock);
            let log_after = log.bytes();
            drop(log);
            let clock = hovercraft_runtime::clock::Clock::new();
            let (_, after, _) = LogFile::open(&path, &bench_identity(), fsync)?;
            let replay_after_ms = ms(&clock);
            anyhow::ensure!(
                after.entries.len() as u64 == n - n / 2 && after.snapshot.is_some(),
                "{}: replayed {} entries after the snapshot",
                path.display(),
                after.entries.len()
            );
            print!(
                " | {:>8.1} {snap_ms:>10.1} {rewrite_ms:>10.1} {:>12.2} {replay_after_ms:>16.1}",
                snapshot_bytes as f64 / 1e6,
                log_after as f64 / 1e6
            );
        } else {
            drop(log);
        }
        println!();
        std::fs::remove_dir_all(&node_dir)
            .with_context(|| format!("cannot remove {}", node_dir.display()))?;
    }
    Ok(())
}

fn udp(bind: SocketAddrV4) -> UdpOptions {
    UdpOptions {
        bind,
        advertised: None,
        join: None,
        multicast_if: (!bind.ip().is_unspecified()).then_some(*bind.ip()),
    }
}

fn echo(bind: SocketAddrV4, reply_bytes: usize, cluster: Option<&Path>) -> anyhow::Result<()> {
    let dpdk = match cluster {
        Some(p) => ClusterFile::load(p)?.dpdk,
        None => None,
    };
    let mut io = open_backend(dpdk.as_ref(), "e", &udp(bind), bind, Vec::new())?;
    // Runs until the bench kills it.
    bench::echo_serve(io.as_mut(), reply_bytes, &|| false);
    Ok(())
}

/// Children killed (and the scratch directory removed) however the bench ends.
struct Guard {
    children: Vec<Child>,
    dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// This run's DPDK `--file-prefix` stem.
fn dpdk_tag() -> String {
    format!("hcb{}", std::process::id())
}

/// Where everything runs.
struct Setup {
    backend: &'static str,
    netns: Option<String>,
    echo: SocketAddrV4,
    nodes: Vec<SocketAddrV4>,
    client: SocketAddrV4,
    /// Real multicast group (DPDK), or none (loopback: a copy to each node).
    group: Option<SocketAddrV4>,
    dpdk: Option<Value>,
}

impl Setup {
    fn new(args: &Args) -> anyhow::Result<Setup> {
        if !args.dpdk {
            anyhow::ensure!(
                args.netns_prefix.is_none(),
                "--netns-prefix is for --dpdk (the UDP bench runs on 127.0.0.1)"
            );
            let socks = (0..5)
                .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
                .collect::<Result<Vec<_>, _>>()?;
            let a = socks
                .iter()
                .map(|s| match s.local_addr()? {
                    std::net::SocketAddr::V4(a) => Ok(a),
                    other => anyhow::bail!("not IPv4: {other}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            return Ok(Setup {
                backend: "udp",
                netns: None,
                echo: a[0],
                nodes: a[1..4].to_vec(),
                client: a[4],
                group: None,
                dpdk: None,
            });
        }
        let p = args
            .netns_prefix
            .clone()
            .context("--dpdk needs --netns-prefix (namespaces of netns-cluster.sh up 4 --dpdk)")?;
        let ip = |i: u8| Ipv4Addr::new(10, 77, 0, i + 1);
        let cpus = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Cpus_allowed_list:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .unwrap_or_else(|| "0".into());
        let tag = dpdk_tag();
        Ok(Setup {
            backend: "dpdk",
            echo: SocketAddrV4::new(ip(0), 7000),
            nodes: (0..3).map(|i| SocketAddrV4::new(ip(i), 7000)).collect(),
            client: SocketAddrV4::new(ip(3), 9000),
            group: Some(SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 7000)),
            dpdk: Some(json!({
                "eal_args": ["--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                             format!("--lcores=0@({cpus})"),
                             format!("--file-prefix={tag}{{host}}"),
                             "--vdev=net_af_packet0,iface=veth0,framecnt=2048"],
                "idle_nap_us": args.idle_nap_us,
            })),
            netns: Some(p),
        })
    }

    fn command(&self, host: usize, program: &Path) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(p) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &format!("{p}{host}")])
                    .arg(program);
                c
            }
        }
    }

    /// The cluster file of the cluster run (also names the backend for the echo server).
    fn cluster_file(&self, dir: &Path) -> Value {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, a)| json!({"id": i, "address": a.to_string()}))
            .collect();
        let mut c = json!({
            "name": format!("bench-{}-3", self.backend),
            "mode": "hovercraft",
            "app": "synthetic",
            "seed": 1,
            "nodes": nodes,
            "multicast": self.group.is_some(),
            "raft": {"election_timeout_min_us": 150000, "election_timeout_max_us": 300000,
                     "heartbeat_us": 10000, "append_retry_us": 20000},
            "storage": {"dir": dir.join("data"), "fsync": false},
            "status_interval_ms": 50,
        });
        if let Some(g) = self.group {
            c["group"] = json!(g.to_string());
        }
        if let Some(d) = &self.dpdk {
            c["dpdk"] = d.clone();
            // The MAC trailer does not fit a full-size frame on DPDK yet (cluster.rs).
            c["auth"] = json!({"unauthenticated": true});
        } else {
            // Measured as deployed: node-to-node traffic authenticated (key made in `main`).
            c["auth"] = json!({"key_file": "cluster.key"});
        }
        c
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let p = exe.with_file_name(name);
    anyhow::ensure!(
        p.exists(),
        "{} not found next to {} (build the whole crate: cargo build -p hovercraft-runtime)",
        p.display(),
        exe.display()
    );
    Ok(p)
}

fn workload(args: &Args) -> anyhow::Result<WorkloadConfig> {
    let w: WorkloadConfig = serde_json::from_value(json!({
        "app": "synthetic",
        "rate_rps": 1.0,
        "request_bytes": args.request_bytes,
        "reply_bytes": args.reply_bytes,
    }))
    .context("--request-bytes/--reply-bytes")?;
    Ok(WorkloadConfig {
        service_time: ServiceTime::Fixed { ns: 0 },
        ..w
    })
}

fn measure(
    io: &mut dyn Io,
    args: &Args,
    dsts: Vec<SocketAddrV4>,
    sources: Vec<SocketAddrV4>,
) -> anyhow::Result<BenchResult> {
    let mut body = Vec::new();
    Generator::new(
        &workload(args)?,
        1,
        0,
        stream_rng(1, Stream::Client, 0),
        stream_rng(1, Stream::Workload, 0),
    )
    .next_request(&mut body);
    bench::closed_loop(
        io,
        &ClosedLoop {
            dsts,
            sources,
            policy: Policy::ReplicatedRoute,
            body,
            window: args.window,
            warmup: Duration::from_millis(args.warmup_ms),
            duration: Duration::from_millis(args.duration_ms),
            timeout: Duration::from_millis(500),
        },
    )
}

/// Polls `f` every 20 ms until it is true or `timeout` passed.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(step);
        waited += step;
    }
    f()
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    let p = dir.join(name);
    std::fs::File::create(&p).with_context(|| format!("cannot create {}", p.display()))
}

fn raw(
    args: &Args,
    s: &Setup,
    io: &mut dyn Io,
    dir: &Path,
    file: &Path,
) -> anyhow::Result<BenchResult> {
    let child = s
        .command(0, &std::env::current_exe()?)
        .args(["echo", "--bind", &s.echo.to_string()])
        .args(["--reply-bytes", &args.reply_bytes.to_string()])
        .arg("--cluster")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(log_file(dir, "echo.stderr")?)
        .spawn()
        .context("cannot start the echo server")?;
    let _guard = Guard {
        children: vec![child],
        dir: None,
    };
    // Wait (bounded) until the echo server answers a short probe.
    let up = wait_until(Duration::from_secs(15), || {
        bench::closed_loop(
            io,
            &ClosedLoop {
                dsts: vec![s.echo],
                sources: vec![s.echo],
                policy: Policy::LbRoute,
                body: vec![0; 8],
                window: 1,
                warmup: Duration::ZERO,
                duration: Duration::from_millis(20),
                timeout: Duration::from_millis(20),
            },
        )
        .is_ok_and(|r| r.completed > 0)
    });
    anyhow::ensure!(
        up,
        "the echo server on {} did not answer within 15 s (log: {})",
        s.echo,
        dir.join("echo.stderr").display()
    );
    measure(io, args, vec![s.echo], vec![s.echo])
}

fn cluster(
    args: &Args,
    s: &Setup,
    io: &mut dyn Io,
    dir: &Path,
    file: &Path,
) -> anyhow::Result<BenchResult> {
    let node_bin = sibling("hovercraft-node")?;
    let mut guard = Guard {
        children: Vec::new(),
        dir: None,
    };
    for i in 0..s.nodes.len() {
        guard.children.push(
            s.command(i, &node_bin)
                .arg("--cluster")
                .arg(file)
                .args(["--id", &i.to_string()])
                .stdout(Stdio::null())
                .stderr(log_file(dir, &format!("node{i}.stderr"))?)
                .spawn()
                .with_context(|| format!("cannot start {}", node_bin.display()))?,
        );
    }
    let leader = || {
        (0..s.nodes.len()).any(|i| {
            let p = dir
                .join("data")
                .join(format!("node{i}"))
                .join("status.json");
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|s| s["role"] == "leader")
        })
    };
    anyhow::ensure!(
        wait_until(Duration::from_secs(30), leader),
        "no leader within 30 s (logs in {})",
        dir.display()
    );
    let dsts = match s.group {
        Some(g) => vec![g],
        None => s.nodes.clone(),
    };
    measure(io, args, dsts, s.nodes.clone())
}

fn line(what: &str, r: &BenchResult) {
    println!(
        "{what}: {:.0} rps, p50 {:.1} us, p99 {:.1} us ({} completed, {} timed out, {} dropped; replies per source {:?})",
        r.rps, r.p50_us, r.p99_us, r.completed, r.timeouts, r.drops, r.per_source
    );
}

fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=4096).contains(&args.window),
        "--window must be 1..=4096"
    );
    anyhow::ensure!(args.duration_ms > 0, "--duration-ms must be positive");
    let dir = std::env::temp_dir().join(format!("hovercraft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _cleanup = Guard {
        children: Vec::new(),
        dir: Some(dir.clone()),
    };
    let s = Setup::new(args)?;
    let _rundirs = hovercraft_runtime::cluster::DpdkRunDirs(dpdk_tag());
    hovercraft_runtime::auth::keygen(&dir.join("cluster.key")).map_err(anyhow::Error::msg)?;
    let text = serde_json::to_string_pretty(&s.cluster_file(&dir))?;
    let file = dir.join("cluster.json");
    std::fs::write(&file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    let cluster_file = ClusterFile::from_json(&file.display().to_string(), &text)?;
    // One client endpoint for both runs (DPDK allows one per process).
    let mut io = open_backend(
        cluster_file.dpdk.as_ref(),
        "c",
        &udp(s.client),
        s.client,
        Vec::new(),
    )?;
    println!(
        "backend {}{}, closed loop, window {}, {} ms measured after {} ms warm-up, {} B requests, {} B replies",
        s.backend,
        match &s.netns {
            Some(p) => format!(" (net_af_packet in namespaces {p}0..{p}3, idle nap {} us)", args.idle_nap_us),
            None => " (kernel, 127.0.0.1)".into(),
        },
        args.window, args.duration_ms, args.warmup_ms, args.request_bytes, args.reply_bytes
    );
    let r = raw(args, &s, io.as_mut(), &dir, &file)?;
    line(&format!("raw {} ping-pong", s.backend), &r);
    let c = cluster(args, &s, io.as_mut(), &dir, &file)?;
    line(&format!("hovercraft {} 3 nodes", s.backend), &c);
    anyhow::ensure!(r.rps > 0.0, "the raw run completed no request");
    println!("ratio {:.3}", c.rps / r.rps);
    Ok(())
}
