//! `hovercraft-loadgen --cluster cluster.json [--out DIR] [--rate RPS] [--duration-ms MS]
//! [--verify]`: open-loop Poisson load from the file's `workload` section; writes
//! `DIR/summary.json`. Exit codes: 2 bad cluster file or arguments, 1 runtime failure,
//! (with `--verify`) an acknowledged write not read back, or (YCSB-E) an inconsistent scan.
#![forbid(unsafe_code)]

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hovercraft_runtime::cluster::ClusterFile;
use hovercraft_runtime::loadgen::{self, LoadgenOptions};

#[derive(Parser)]
#[command(
    name = "hovercraft-loadgen",
    about = "Open-loop load generator for a HovercRaft cluster"
)]
struct Args {
    #[arg(long)]
    cluster: PathBuf,
    /// Where summary.json goes (default: results/runtime/<cluster name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take the `workload` section from this simulator scenario file instead (so a
    /// simulator run and a runtime run of the same scenario can be compared).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Overrides workload.rate_rps.
    #[arg(long)]
    rate: Option<f64>,
    /// Overrides loadgen.duration_ms.
    #[arg(long)]
    duration_ms: Option<u64>,
    /// Overrides the cluster file's seed (arrivals and request draws).
    #[arg(long)]
    seed: Option<u64>,
    /// Local address (overrides loadgen.bind), e.g. 10.77.0.4:0.
    #[arg(long)]
    bind: Option<SocketAddrV4>,
    /// kv app: after the run, read back every key with an acknowledged write.
    #[arg(long)]
    verify: bool,
    /// Robustness check instead of a run: send N malformed datagrams to every node and exit.
    #[arg(long, value_name = "N")]
    garbage: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cluster = match ClusterFile::load(&args.cluster) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hovercraft-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.scenario {
        let s = match hovercraft_runtime::scenario::ScenarioLoad::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hovercraft-loadgen: {e}");
                return ExitCode::from(2);
            }
        };
        if s.workload.app != cluster.app() {
            eprintln!(
                "hovercraft-loadgen: {}: field `workload.app`: {:?}, but the cluster's nodes run {:?}",
                path.display(),
                s.workload.app,
                cluster.app()
            );
            return ExitCode::from(2);
        }
        if s.mode != cluster.mode {
            eprintln!(
                "hovercraft-loadgen: note: scenario mode {} differs from the cluster's {}",
                s.mode.as_str(),
                cluster.mode.as_str()
            );
        }
        cluster.workload = Some(s.workload);
        // The scenario's timing too, so both runs measure the same window.
        cluster.loadgen.duration_ms = s.duration_ms;
        cluster.loadgen.warmup_ms = s.warmup_ms;
    }
    if let Some(n) = args.garbage {
        let bind = args.bind.unwrap_or(cluster.loadgen.bind);
        return match loadgen::send_garbage(&cluster, bind, n, args.seed.unwrap_or(cluster.seed)) {
            Ok(sent) => {
                println!(
                    "sent {sent} malformed datagrams to {} nodes",
                    cluster.nodes.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hovercraft-loadgen: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results/runtime").join(&cluster.name));
    let opts = LoadgenOptions {
        cluster_file: args.cluster.display().to_string(),
        cluster,
        rate_rps: args.rate,
        duration_ms: args.duration_ms,
        seed: args.seed,
        bind: args.bind,
        verify: args.verify,
        out: out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let s = match loadgen::run(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hovercraft-loadgen: {e:#}");
            return ExitCode::from(1);
        }
    };
    let e = &s.exactly_once;
    println!(
        "{} (mode {}, {} nodes): offered {:.0} rps, completed {:.0} rps; dropped {} (server DROP {}, timed out {}), client refused {}",
        s.scenario, s.mode, s.nodes, s.offered_rps, s.completed_rps, s.dropped, s.dropped_by_server, s.timed_out, s.client_refused
    );
    println!(
        "  latency (µs, {} requests): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        s.measured_requests,
        s.latency_us.p50,
        s.latency_us.p99,
        s.latency_us.p999,
        s.latency_us.max
    );
    println!(
        "  replies per replica {:?}; sent {} answered {} dropped {} timed out {} duplicates {} late {} unresolved {}; longest gap {:.1} ms",
        s.per_replica_replies, e.sent, e.responses, e.drops, e.timeouts, e.duplicates, e.late, e.unresolved, s.longest_gap_ms
    );
    let mut code = ExitCode::SUCCESS;
    if let Some(kv) = &s.kv {
        print!(
            "  kv: {} writes ({} acknowledged) over {} keys",
            kv.writes, kv.acked_writes, kv.keys_written
        );
        match &kv.verify {
            Some(v) => {
                println!(
                    "; verify: {} keys, {} ok, {} lost, {} unreadable",
                    v.keys, v.ok, v.lost, v.unreadable
                );
                for ex in &v.examples {
                    println!("    {ex}");
                }
                if v.lost > 0 || v.unreadable > 0 {
                    code = ExitCode::from(1);
                }
            }
            None => println!(),
        }
    }
    if let Some(y) = &s.ycsb {
        println!(
            "  ycsb: {} scans answered ({} records), {} inserts ({} acknowledged); {} inconsistent scans{}",
            y.scans_answered,
            y.scan_records,
            y.inserts_sent,
            y.inserts_acked,
            y.violations,
            if y.truncated { " (insert history truncated: later scans unchecked)" } else { "" }
        );
        for ex in &y.examples {
            println!("    {ex}");
        }
        if y.violations > 0 {
            code = ExitCode::from(1);
        }
    }
    println!("  wrote {}", out.join("summary.json").display());
    code
}
