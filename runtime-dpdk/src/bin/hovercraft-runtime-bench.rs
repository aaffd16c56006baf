//! `hovercraft-runtime-bench [--duration-ms MS] [--window N]`: in one run, the raw packet path
//! (an R2P2 ping-pong with no protocol, `echo` below) and a 3-node hovercraft cluster, both on
//! kernel UDP over 127.0.0.1 and driven by the same closed-loop client; prints RPS and p99 of
//! each, and `ratio X` (cluster RPS / raw RPS) as its last line.
//!
//! `hovercraft-runtime-bench echo --bind ADDR`: the raw ping-pong server (the bench starts it).
//! Exit codes: 2 bad arguments, 1 a run failed (a child did not start, no leader).
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hovercraft_core::rng::{stream_rng, Stream};
use hovercraft_core::wire::Policy;
use hovercraft_runtime::bench::{self, BenchResult, ClosedLoop};
use hovercraft_runtime::core as hovercraft_core;
use hovercraft_runtime::io::{Io, UdpIo, UdpOptions};
use hovercraft_sim::scenario::{ServiceTime, WorkloadConfig};
use hovercraft_sim::workload::Generator;

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
}

#[derive(Subcommand)]
enum Cmd {
    /// The raw ping-pong server: answers every R2P2 REQUEST with an empty-protocol RESPONSE.
    Echo {
        #[arg(long)]
        bind: SocketAddrV4,
        #[arg(long, default_value_t = 8)]
        reply_bytes: usize,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match &args.cmd {
        Some(Cmd::Echo { bind, reply_bytes }) => echo(*bind, *reply_bytes),
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

fn echo(bind: SocketAddrV4, reply_bytes: usize) -> anyhow::Result<()> {
    let mut io = UdpIo::open(&UdpOptions {
        bind,
        advertised: None,
        join: None,
        multicast_if: None,
    })?;
    // Runs until the bench kills it.
    bench::echo_serve(&mut io, reply_bytes, &|| false);
    Ok(())
}

/// Children killed (and the scratch directory removed) however the bench ends.
struct Guard {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let socks = (0..n)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    socks
        .iter()
        .map(|s| Ok(s.local_addr()?.port()))
        .collect::<Result<_, std::io::Error>>()
        .map_err(Into::into)
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

fn workload(args: &Args) -> WorkloadConfig {
    serde_json::from_value(serde_json::json!({
        "app": "synthetic",
        "rate_rps": 1.0,
        "request_bytes": args.request_bytes,
        "reply_bytes": args.reply_bytes,
    }))
    .map(|w: WorkloadConfig| WorkloadConfig {
        service_time: ServiceTime::Fixed { ns: 0 },
        ..w
    })
    .expect("a valid built-in workload")
}

fn client_io() -> anyhow::Result<UdpIo> {
    Ok(UdpIo::open(&UdpOptions {
        bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        advertised: None,
        join: None,
        multicast_if: None,
    })?)
}

fn measure(io: &mut dyn Io, args: &Args, dsts: Vec<SocketAddrV4>) -> anyhow::Result<BenchResult> {
    let mut body = Vec::new();
    let w = workload(args);
    Generator::new(
        &w,
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

fn raw(args: &Args, dir: &Path) -> anyhow::Result<BenchResult> {
    let port = free_ports(1)?[0];
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let child = Command::new(std::env::current_exe()?)
        .args(["echo", "--bind", &addr.to_string()])
        .args(["--reply-bytes", &args.reply_bytes.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the echo server")?;
    let _guard = Guard {
        children: vec![child],
        dir: dir.join("raw"),
    };
    let mut io = client_io()?;
    // Wait (bounded) until the echo server answers a short probe.
    let up = wait_until(Duration::from_secs(5), || {
        bench::closed_loop(
            &mut io,
            &ClosedLoop {
                dsts: vec![addr],
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
    anyhow::ensure!(up, "the echo server on {addr} did not answer within 5 s");
    measure(&mut io, args, vec![addr])
}

fn cluster(args: &Args, dir: &Path) -> anyhow::Result<BenchResult> {
    let node_bin = sibling("hovercraft-node")?;
    let addrs: Vec<SocketAddrV4> = free_ports(3)?
        .into_iter()
        .map(|p| SocketAddrV4::new(Ipv4Addr::LOCALHOST, p))
        .collect();
    let dir = dir.join("cluster");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let nodes: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| serde_json::json!({"id": i, "address": a.to_string()}))
        .collect();
    let file = dir.join("cluster.json");
    let text = serde_json::json!({
        "name": "bench-udp-3",
        "mode": "hovercraft",
        "app": "synthetic",
        "seed": 1,
        "nodes": nodes,
        "multicast": false,
        "raft": {"election_timeout_min_us": 150000, "election_timeout_max_us": 300000,
                 "heartbeat_us": 10000, "append_retry_us": 20000},
        "storage": {"dir": dir.join("data"), "fsync": false},
        "status_interval_ms": 50,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&text)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    let mut guard = Guard {
        children: Vec::new(),
        dir: dir.clone(),
    };
    for i in 0..addrs.len() {
        let log = std::fs::File::create(dir.join(format!("node{i}.stderr")))?;
        guard.children.push(
            Command::new(&node_bin)
                .arg("--cluster")
                .arg(&file)
                .args(["--id", &i.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", node_bin.display()))?,
        );
    }
    let leader = || {
        (0..addrs.len()).any(|i| {
            let p = dir
                .join("data")
                .join(format!("node{i}"))
                .join("status.json");
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|s| s["role"] == "leader")
        })
    };
    anyhow::ensure!(
        wait_until(Duration::from_secs(15), leader),
        "no leader within 15 s (logs in {})",
        dir.display()
    );
    let mut io = client_io()?;
    let r = measure(&mut io, args, addrs);
    drop(guard);
    r
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
    let _cleanup = Guard {
        children: Vec::new(),
        dir: dir.clone(),
    };
    println!(
        "backend udp (kernel, 127.0.0.1), closed loop, window {}, {} ms measured after {} ms warm-up, {} B requests, {} B replies",
        args.window, args.duration_ms, args.warmup_ms, args.request_bytes, args.reply_bytes
    );
    let r = raw(args, &dir)?;
    line("raw udp ping-pong", &r);
    let c = cluster(args, &dir)?;
    line("hovercraft udp 3 nodes", &c);
    anyhow::ensure!(r.rps > 0.0, "the raw run completed no request");
    println!("ratio {:.3}", c.rps / r.rps);
    Ok(())
}
