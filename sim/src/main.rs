//! The `hovercraft-sim` command line.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use hovercraft_sim::check::swarm::{Profile, SwarmOptions};
use hovercraft_sim::metrics::Summary;
use hovercraft_sim::scenario::Scenario;

mod cmd_merge;
mod cmd_sweep;
mod progress;

// Exit codes, the same for `run`, `check` and `replay`: scripts tell a protocol bug from a
// stuck cluster, a crashed run and a typo in a file.
const EXIT_OK: u8 = 0;
/// A safety checker failed (linearizability, Raft safety, exactly-once, ...).
const EXIT_SAFETY: u8 = 1;
/// Bad input: a malformed or impossible file, flag or value; nothing was judged.
const EXIT_BAD_INPUT: u8 = 2;
/// A liveness checker failed (no progress after the faults healed).
const EXIT_LIVENESS: u8 = 3;
/// A run panicked or broke the simulator's own invariants.
const EXIT_CRASH: u8 = 4;
/// `check --canary`: no seed caught the re-introduced bug (the checkers did not bite).
const EXIT_CANARY_MISSED: u8 = 5;
/// `check` stopped by SIGINT/SIGTERM before every seed ran, none of those that ran failing.
const EXIT_STOPPED: u8 = 130;

/// One finished seed of `check`, small unless it failed.
struct Finished {
    seed: u64,
    simulated_ns: u64,
    undecided: bool,
    behind_compaction: bool,
    failure: Option<Box<hovercraft_sim::check::SeedOutcome>>,
}

// A simulation allocates and frees small buffers (packets, log entries) at a high rate; glibc's
// malloc spent ~15% of a HovercRaft run in malloc/free and `malloc_consolidate`. The
// allocator never changes what a run computes: nothing reads addresses. Each allocation is
// counted per thread, for `bench`.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

struct CountingAlloc;

// SAFETY: every method forwards to mimalloc's allocator with the caller's arguments
// unchanged; counting touches only a thread-local integer and never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        hovercraft_sim::alloc_count::note_allocation();
        // SAFETY: forwarded as is (the caller upholds `GlobalAlloc::alloc`'s contract).
        unsafe { std::alloc::GlobalAlloc::alloc(&mimalloc::MiMalloc, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        hovercraft_sim::alloc_count::note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::GlobalAlloc::alloc_zeroed(&mimalloc::MiMalloc, layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from mimalloc, with `layout`.
        unsafe { std::alloc::GlobalAlloc::dealloc(&mimalloc::MiMalloc, ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        hovercraft_sim::alloc_count::note_allocation();
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s size contract.
        unsafe { std::alloc::GlobalAlloc::realloc(&mimalloc::MiMalloc, ptr, layout, new_size) }
    }
}

#[derive(Parser)]
#[command(
    name = "hovercraft-sim",
    version = VERSION,
    about = "Deterministic simulator for HovercRaft (EuroSys 2020)"
)]
struct Cli {
    /// Worker threads for check, sweep and reproduce [default: one per core; the
    /// RAYON_NUM_THREADS environment variable also sets it]. Results do not depend on it.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

/// `--version`: the crate version, the revision and the compiler it was built with.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("HOVERCRAFT_GIT_REVISION"),
    ", ",
    env!("HOVERCRAFT_TOOLCHAIN"),
    ")"
);

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and write DIR/summary.json. A scenario with faults runs every
    /// checker: exit 1 on a safety violation, 3 on a liveness failure, 4 when the simulator's
    /// own invariants fail; 2 for bad input.
    Run {
        /// Scenario file (JSON); see scenarios/README.md.
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Output folder [default: results/<scenario name>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write one line per simulated event to FILE (deterministic).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Write the run's kv client history to FILE (Porcupine-style JSON, one object per
        /// operation), to cross-check the linearizability verdict independently.
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Swarm-test seeds: each seed derives a world (cluster, mode, workload, faults) and runs
    /// it with every safety and liveness checker. Exit 0: all passed; 1: a safety violation;
    /// 3: a liveness failure; 4: a run crashed; 2: bad input. With --canary: 0 when some
    /// seed caught the bug, 5 when none did.
    Check {
        /// Seeds to run, as A..B (B excluded).
        #[arg(long, default_value = "0..100")]
        seeds: String,
        /// Re-introduce a known bug (commit-previous-term, vote-not-persisted,
        /// reply-before-commit, skip-prev-log-check, apply-twice-after-recovery,
        /// deposed-leader-serves-reads, no-request-dedupe, recover-by-index-only,
        /// probe-needs-caught-up-followers, no-check-quorum, recovered-body-not-persisted,
        /// ack-unmatched-suffix, keep-unrecoverable-suffix,
        /// and the fault model's fault-double-draw).
        #[arg(long)]
        canary: Option<String>,
        /// Distribution of worlds: harsh (VOPR-like fault rates, the default) or gentle (the
        /// first round's mild faults; old gentle seeds keep their worlds there).
        #[arg(long, default_value = "harsh")]
        profile: Profile,
        /// For each failing seed, also search for a smaller fault schedule that still fails
        /// and write it as a scenario file.
        #[arg(long)]
        shrink: bool,
        /// Where failing scenarios are written (git-ignored by default; a canary run writes
        /// into DIR/canary-NAME/).
        #[arg(long, default_value = "results/check")]
        out: PathBuf,
        /// Run only part K of N of the seed range (contiguous); `merge` adds the shards'
        /// report.json files up into the report of the whole range.
        #[arg(long, value_name = "K/N")]
        shard: Option<hovercraft_sim::sweep::Shard>,
    },
    /// Replay one seed of `check` with every checker on and print what it finds.
    Replay {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        canary: Option<String>,
        #[arg(long, default_value = "harsh")]
        profile: Profile,
        /// Also write a trace of the run.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Also write the run's kv client history (see `run --history`).
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Run a sweep file (a base scenario over systems, axes and loads) in parallel and write
    /// DIR/data.csv, slo.csv, timeline.csv, a PNG and SVG plot and manifest.json.
    Sweep {
        /// Sweep file (JSON); see scenarios/sweeps/README.md.
        sweep: PathBuf,
        /// Apply the file's `quick` patch: smaller grids, shorter runs.
        #[arg(long)]
        quick: bool,
        /// Output folder [default: results/<sweep name>/, or results/quick/<name>/ with --quick].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only shard K of N (configurations whose index mod N is K) and write
        /// OUT/shard-K-of-N.jsonl; `merge` rebuilds the folder from all N.
        #[arg(long, value_name = "K/N")]
        shard: Option<hovercraft_sim::sweep::Shard>,
    },
    /// Merge `sweep --shard` results (shard files, or folders of them) into the folder one
    /// whole run writes: the same data.csv, slo.csv, timeline.csv (byte for byte), figure and
    /// manifest. Given folders of `check --shard` (each with report.json), writes the report,
    /// failures.txt and failing seeds' scenarios of the whole range.
    Merge {
        /// Shard files or folders holding shard-*.jsonl.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Regenerate a paper figure (a sweep file in scenarios/sweeps/), or `all` of them, into
    /// results/<figure>/ (results/quick/<figure>/ with --quick).
    Reproduce {
        /// Figure name (e.g. fig-latency-3nodes) or `all`.
        figure: String,
        #[arg(long)]
        quick: bool,
        /// Root folder for the figures' folders.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the sweep files are.
        #[arg(long, default_value = cmd_sweep::SWEEPS_DIR)]
        sweeps: PathBuf,
    },
    /// Print two summary.json files side by side (e.g. a simulator run and a real-runtime
    /// run of the same workload): throughput, latency percentiles, replies per replica.
    Compare { a: PathBuf, b: PathBuf },
    /// Measure simulator speed: a bare event loop vs the model, as a ratio.
    Bench {
        /// A shorter run (for CI smoke tests).
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if n == 0 {
            eprintln!("error: --threads: must be at least 1");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("error: --threads: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    let result = match cli.command {
        Command::Run {
            scenario,
            seed,
            out,
            trace,
            history,
        } => match run(&scenario, seed, out, trace, history) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Compare { a, b } => compare(&a, &b),
        Command::Bench { quick } => {
            bench(quick);
            Ok(())
        }
        Command::Sweep {
            sweep,
            quick,
            out,
            shard,
        } => sweep_command(&sweep, quick, out, shard),
        Command::Merge { paths, out } if cmd_merge::all_check_reports(&paths) => {
            match cmd_merge::merge_check(&paths, &out) {
                Ok(code) => return ExitCode::from(code),
                Err(e) => Err(e),
            }
        }
        Command::Merge { paths, out } => cmd_sweep::merge(&paths, &out),
        Command::Reproduce {
            figure,
            quick,
            out,
            sweeps,
        } => cmd_sweep::reproduce(&figure, quick, &sweeps, out.as_deref()),
        Command::Check {
            seeds,
            canary,
            profile,
            shrink,
            out,
            shard,
        } => match check(&seeds, canary.as_deref(), profile, shrink, &out, shard) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Replay {
            seed,
            canary,
            profile,
            trace,
            history,
        } => match replay(seed, canary.as_deref(), profile, trace, history) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the chain of contexts says file, field and reason.
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(
    path: &Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    trace: Option<PathBuf>,
    history: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let mut scenario = Scenario::load(path)?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    // What ran, with every default filled in: the file may change or vanish later.
    let resolved = serde_json::to_value(&scenario).context("serializing the scenario")?;
    let out_dir = out.unwrap_or_else(|| PathBuf::from("results").join(&scenario.name));
    let trace_writer: Option<Box<dyn std::io::Write>> = match &trace {
        Some(t) => {
            if let Some(parent) = t.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let f = fs::File::create(t)
                .with_context(|| format!("creating trace file {}", t.display()))?;
            Some(Box::new(BufWriter::with_capacity(1 << 20, f)))
        }
        None => None,
    };
    let started = wall_now();
    // Scenarios with faults run with every checker on (safety, exactly-once, liveness).
    let checking = !scenario.faults.is_empty();
    let liveness_from_ms = hovercraft_sim::check::liveness_from_ms(&scenario);
    let mut world = hovercraft_sim::World::new(scenario);
    if let Some(t) = trace_writer {
        world.set_trace(t);
    }
    // The history is recorded by the kv checker, so `--history` turns the checkers on.
    if checking || history.is_some() {
        world.set_checkers(hovercraft_sim::check::Checkers::new(
            liveness_from_ms * 1_000_000,
        ));
    }
    // A panic is a crash of the run (exit 4, as `check` counts it), not a usage error; the
    // panic hook has already printed where.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run_to_end())).is_err() {
        eprintln!("the run crashed (see the panic above): exit {EXIT_CRASH}");
        return Ok(EXIT_CRASH);
    }
    let report = checking.then(|| hovercraft_sim::check::check_world(&world));
    if let Some(file) = &history {
        write_history(&world, file)?;
    }
    let mut summary = world.finish().with_context(|| {
        format!(
            "writing trace {}",
            trace.as_deref().unwrap_or(Path::new("?")).display()
        )
    })?;
    let wall = started.elapsed();
    let (argv, cwd) = invocation();
    summary.manifest.command = argv.join(" ");
    summary.manifest.argv = argv;
    summary.manifest.working_directory = cwd;
    summary.manifest.scenario_file = path.display().to_string();
    summary.manifest.scenario = resolved;
    summary.manifest.git_revision = git_revision();
    summary.manifest.toolchain = toolchain().to_string();
    summary.manifest.wall_ms = wall.as_millis() as u64;
    summary.manifest.simulated_ns_per_wall_s =
        (summary.simulated_ns as f64 / wall.as_secs_f64().max(1e-9)).round();
    summary.checks = report.as_ref().map(|r| r.checks.iter().cloned().collect());
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let file = out_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).context("serializing summary")?;
    fs::write(&file, json + "\n").with_context(|| format!("writing {}", file.display()))?;
    print_summary(&summary, &file, wall.as_secs_f64());
    if let Some(file) = &history {
        println!("  wrote {}", file.display());
    }
    let Some(r) = report else {
        return Ok(EXIT_OK);
    };
    print_checks(&r, liveness_from_ms);
    let code = if !r.model.is_empty() {
        EXIT_CRASH
    } else if !r.safety.is_empty() {
        EXIT_SAFETY
    } else if !r.liveness.is_empty() {
        EXIT_LIVENESS
    } else {
        EXIT_OK
    };
    if code != EXIT_OK {
        eprintln!("checkers failed (see above): exit {code}");
    }
    Ok(code)
}

/// Every checker's verdict, one line each.
fn print_checks(r: &hovercraft_sim::check::Report, liveness_from_ms: u64) {
    println!("  checkers (liveness from {liveness_from_ms} ms):");
    for (name, verdict) in &r.checks {
        println!("    {name:<22} {}", verdict.line());
    }
}

fn write_history(world: &hovercraft_sim::World, file: &Path) -> anyhow::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(&hovercraft_sim::check::history_json(world))
        .context("serializing the history")?;
    fs::write(file, json + "\n").with_context(|| format!("writing {}", file.display()))
}

fn print_summary(s: &Summary, file: &Path, wall_s: f64) {
    println!(
        "{} (mode {}, {} node{}, seed {}): {:.1} ms simulated in {:.2} s wall, {} events",
        s.scenario,
        s.mode,
        s.nodes,
        if s.nodes == 1 { "" } else { "s" },
        s.seed,
        s.simulated_ns as f64 / 1e6,
        wall_s,
        s.events
    );
    println!(
        "  throughput: offered {:.0} rps, completed {:.0} rps; dropped {} (server DROP {}, timed out {}), client refused {}",
        s.offered_rps, s.completed_rps, s.dropped, s.dropped_by_server, s.timed_out, s.client_refused
    );
    println!(
        "  latency (µs, {} requests): p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        s.measured_requests,
        s.latency_us.p50,
        s.latency_us.p99,
        s.latency_us.p999,
        s.latency_us.max
    );
    for n in &s.per_node {
        let app = n
            .app_core_busy_fraction
            .map(|f| format!(", app core {:.1}%", f * 100.0))
            .unwrap_or_default();
        let role = n
            .replica
            .as_ref()
            .map(|r| format!(" ({:?}, term {})", r.role, r.term).to_lowercase())
            .unwrap_or_default();
        println!(
            "  node {}{role}: cpu busy {:.1}%{app}, rx {} pkts, tx {} pkts, replies {}, rx-queue drops {}",
            n.id,
            n.cpu_busy_fraction * 100.0,
            n.host.packets_rx,
            n.host.packets_tx,
            n.protocol.replies_sent,
            n.cpu.rx_queue_drops + n.cpu.cluster_rx_queue_drops
        );
    }
    println!(
        "  network drops: nic {}, switch {}, rx-queue {}",
        s.network.nic_tx_drops, s.network.switch_queue_drops, s.network.rx_queue_drops
    );
    let behind: u64 = s
        .per_node
        .iter()
        .filter_map(|n| n.replica.as_ref())
        .map(|r| r.counters.followers_behind_compaction)
        .sum();
    if behind > 0 {
        println!(
            "  followers behind compaction: {behind} (each was sent a snapshot; see the story)"
        );
    }
    if !s.story.is_empty() {
        println!("  story:");
        for l in &s.story {
            println!("    {:>10.1} µs  {}", l.t_us, l.what);
        }
    }
    for f in &s.failover_us {
        println!("  failover: new leader {f:.1} µs after the leader was lost");
    }
    println!("  wrote {}", file.display());
}

fn parse_seeds(s: &str) -> anyhow::Result<std::ops::Range<u64>> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| anyhow::anyhow!("--seeds: expected A..B, got {s:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--seeds: start {a:?}: {e}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--seeds: end {b:?}: {e}"))?;
    anyhow::ensure!(a < b, "--seeds: empty range {a}..{b}");
    Ok(a..b)
}

fn check_canary(canary: Option<&str>) -> anyhow::Result<()> {
    if let Some(c) = canary {
        let known: Vec<&str> = hovercraft_core::raft::Canary::ALL
            .iter()
            .map(|c| c.name())
            .chain(
                hovercraft_sim::scenario::NetCanary::ALL
                    .iter()
                    .map(|c| c.name()),
            )
            .collect();
        anyhow::ensure!(
            known.contains(&c),
            "--canary: unknown {c:?}; known: {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// Runs one block of seeds on every thread; seeds not started when a stop is asked are
/// skipped.
fn run_block(
    block: std::ops::Range<u64>,
    opts: &SwarmOptions<'_>,
    bar: &progress::BatchProgress,
) -> Vec<Finished> {
    use rayon::prelude::*;
    block
        .into_par_iter()
        .filter_map(|seed| {
            if progress::stopping() {
                return None;
            }
            let o = hovercraft_sim::check::run_seed_with(seed, opts);
            let failed = o.panic.is_some() || !o.report.ok() || !o.report.model.is_empty();
            bar.inc(failed);
            Some(Finished {
                seed,
                simulated_ns: o.simulated_ns,
                undecided: !o.report.undecided.is_empty(),
                behind_compaction: o.followers_behind_compaction > 0,
                failure: failed.then(|| Box::new(o)),
            })
        })
        .collect()
}

/// Finished seeds (sorted) as half-open ranges.
fn seed_ranges(seeds: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in seeds {
        match out.last_mut() {
            Some((_, end)) if *end == s => *end = s + 1,
            _ => out.push((s, s + 1)),
        }
    }
    out
}

fn replay_command(seed: u64, opts: &SwarmOptions<'_>) -> String {
    let mut cmd = format!("hovercraft-sim replay --seed {seed}");
    if opts.profile != Profile::Harsh {
        cmd += &format!(" --profile {}", opts.profile.name());
    }
    if let Some(c) = opts.canary {
        cmd += &format!(" --canary {c}");
    }
    cmd
}

/// `check`'s exit code from what the finished seeds found.
fn check_exit_code(
    crashes: usize,
    safety: usize,
    liveness: usize,
    stopped: bool,
    canary: bool,
) -> u8 {
    let code = if crashes > 0 {
        EXIT_CRASH
    } else if safety > 0 {
        EXIT_SAFETY
    } else if liveness > 0 {
        EXIT_LIVENESS
    } else if stopped {
        EXIT_STOPPED
    } else {
        EXIT_OK
    };
    // With a canary the expected outcome is a failure: exit 0 when some seed caught it.
    match (canary, code) {
        (false, c) => c,
        (true, EXIT_OK) => EXIT_CANARY_MISSED,
        (true, EXIT_STOPPED) => EXIT_STOPPED,
        (true, _) => EXIT_OK,
    }
}

/// `report.json`'s `format`.
const CHECK_REPORT_FORMAT: &str = "hovercraft-check-report/1";

/// Seeds `range` split in `shard.of` contiguous parts: part `shard.index`.
fn shard_range(
    range: std::ops::Range<u64>,
    shard: hovercraft_sim::sweep::Shard,
) -> std::ops::Range<u64> {
    let len = u128::from(range.end - range.start);
    let at = |k: usize| range.start + (len * k as u128 / shard.of as u128) as u64;
    at(shard.index)..at(shard.index + 1)
}

#[allow(clippy::too_many_arguments)]
fn check(
    seeds: &str,
    canary: Option<&str>,
    profile: Profile,
    shrink: bool,
    out: &Path,
    shard: Option<hovercraft_sim::sweep::Shard>,
) -> anyhow::Result<u8> {
    let opts = SwarmOptions { canary, profile };
    // Canary runs write apart, so one canary's seeds never overwrite another's.
    let out = &match canary {
        Some(c) => out.join(format!("canary-{c}")),
        None => out.to_path_buf(),
    };
    let range = parse_seeds(seeds)?;
    // A shard runs its contiguous part of the range; `merge` adds the reports up.
    let range = match shard {
        Some(sh) => shard_range(range, sh),
        None => range,
    };
    check_canary(canary)?;
    let n = range.end - range.start;
    // SIGINT/SIGTERM (a Slurm time limit) stop new seeds; what finished is reported.
    progress::stop_flag();
    let bar = progress::BatchProgress::new("check", "seeds", n);
    let started = wall_now();
    // Passing seeds keep only what the report counts, so a long range stays small in memory.
    // Blocks in seed order, so a stopped run has finished a prefix of the range (plus part
    // of one block), not a piece of each half as rayon's splitting would leave.
    const BLOCK_SEEDS: u64 = 1024;
    let mut finished: Vec<Finished> = Vec::new();
    let mut block_start = range.start;
    while block_start < range.end && !progress::stopping() {
        let block = block_start..(block_start + BLOCK_SEEDS).min(range.end);
        block_start = block.end;
        finished.extend(run_block(block, &opts, &bar));
    }
    bar.finish();
    let stopped = progress::stopping();
    let done = finished.len() as u64;
    let mut outcomes: Vec<hovercraft_sim::check::SeedOutcome> = Vec::new();
    let mut simulated_ns_total: u128 = 0;
    let mut undecided = 0;
    let mut behind: Vec<u64> = Vec::new();
    let mut finished_seeds: Vec<u64> = Vec::with_capacity(finished.len());
    for f in finished {
        finished_seeds.push(f.seed);
        simulated_ns_total += u128::from(f.simulated_ns);
        undecided += usize::from(f.undecided);
        if f.behind_compaction {
            behind.push(f.seed);
        }
        if let Some(o) = f.failure {
            outcomes.push(*o);
        }
    }
    behind.sort_unstable();
    finished_seeds.sort_unstable();
    let finished_ranges = seed_ranges(&finished_seeds);
    outcomes.sort_by_key(|o| o.seed);
    let wall_s = started.elapsed().as_secs_f64();
    let safety: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.report.safety.is_empty())
        .collect();
    let liveness: Vec<_> = outcomes
        .iter()
        .filter(|o| o.report.safety.is_empty() && !o.report.liveness.is_empty())
        .collect();
    // A run that panicked, or broke the simulator's own invariants (the fault model).
    let crashes: Vec<_> = outcomes
        .iter()
        .filter(|o| o.panic.is_some() || !o.report.model.is_empty())
        .collect();
    let simulated_s = simulated_ns_total as f64 / 1e9;
    // Every failing seed, one line each, and the scenario files of the first hundred (the
    // first ten are also shown below in full).
    let mut listed: Vec<&&hovercraft_sim::check::SeedOutcome> = safety
        .iter()
        .chain(liveness.iter())
        .chain(crashes.iter())
        .collect();
    listed.sort_by_key(|o| o.seed);
    listed.dedup_by_key(|o| o.seed);
    if !listed.is_empty() {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let mut lines = String::new();
        for o in &listed {
            let (kind, what) = if let Some(p) = &o.panic {
                ("crash", p.clone())
            } else if let Some(m) = o.report.model.first() {
                ("crash", m.clone())
            } else if let Some(m) = o.report.safety.first() {
                ("safety", m.clone())
            } else {
                (
                    "liveness",
                    o.report.liveness.first().cloned().unwrap_or_default(),
                )
            };
            lines.push_str(&format!("{} {kind} {}\n", o.seed, what.replace('\n', " ")));
        }
        // The scenarios of the first hundred, to study a class of failures at once.
        for o in listed.iter().take(100) {
            let json = hovercraft_sim::check::swarm::scenario_json_with(o.seed, &opts);
            let file = out.join(format!("seed-{}.json", o.seed));
            std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")
                .with_context(|| format!("writing {}", file.display()))?;
        }
        let file = out.join("failures.txt");
        std::fs::write(&file, lines).with_context(|| format!("writing {}", file.display()))?;
        println!("every failing seed: {}", file.display());
    }
    for o in safety
        .iter()
        .chain(liveness.iter())
        .chain(crashes.iter())
        .take(10)
    {
        let what = o
            .panic
            .clone()
            .or_else(|| o.report.model.first().cloned())
            .or_else(|| o.report.safety.first().cloned())
            .or_else(|| o.report.liveness.first().cloned())
            .unwrap_or_default();
        println!("seed {}: {what}", o.seed);
        println!("  replay: {}", replay_command(o.seed, &opts));
        let json = hovercraft_sim::check::swarm::scenario_json_with(o.seed, &opts);
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let file = out.join(format!("seed-{}.json", o.seed));
        std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", file.display()))?;
        println!(
            "  scenario: {} (run it with `hovercraft-sim run`)",
            file.display()
        );
        if shrink && o.panic.is_none() {
            if let Some(small) = hovercraft_sim::check::shrink(o.seed, &opts) {
                let file = out.join(format!("seed-{}-shrunk.json", o.seed));
                std::fs::write(&file, serde_json::to_string_pretty(&small)? + "\n")
                    .with_context(|| format!("writing {}", file.display()))?;
                println!(
                    "  shrunk to {} fault(s): {}",
                    small["faults"].as_array().map_or(0, |f| f.len()),
                    file.display()
                );
            }
        }
    }
    println!(
        "simulated {:.1} s in {:.1} s wall ({:.1} simulated s per wall s, {:.1} seeds/s), profile {}",
        simulated_s,
        wall_s,
        simulated_s / wall_s.max(1e-9),
        done as f64 / wall_s.max(1e-9),
        profile.name()
    );
    if !behind.is_empty() {
        println!(
            "a follower fell behind compaction (it needed a snapshot) in seeds {:?}{}",
            &behind[..behind.len().min(10)],
            if behind.len() > 10 { " …" } else { "" }
        );
    }
    let code = check_exit_code(
        crashes.len(),
        safety.len(),
        liveness.len(),
        stopped,
        canary.is_some(),
    );
    // A machine-readable report of what ran, beside the failing seeds' scenarios.
    let seeds_of = |v: &[&hovercraft_sim::check::SeedOutcome]| -> Vec<u64> {
        v.iter().map(|o| o.seed).collect()
    };
    let (argv, cwd) = invocation();
    let report = serde_json::json!({
        "argv": argv,
        "working_directory": cwd,
        "format": CHECK_REPORT_FORMAT,
        "revision": git_revision(),
        "toolchain": toolchain(),
        "shard": shard.map(|s| s.to_string()),
        "seeds": format!("{}..{}", range.start, range.end),
        "profile": profile.name(),
        "canary": canary,
        "finished": done,
        "finished_ranges": finished_ranges,
        "stopped_by_signal": stopped,
        "safety_violations": seeds_of(&safety),
        "liveness_failures": seeds_of(&liveness),
        "crashes": seeds_of(&crashes),
        "undecided": undecided,
        "behind_compaction": behind.len(),
        "simulated_ns": simulated_ns_total as u64,
        "simulated_s": simulated_s,
        "wall_s": wall_s,
        "exit_code": code,
    });
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = out.join("report.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    println!("report: {}", file.display());
    if stopped {
        let shown: Vec<String> = finished_ranges
            .iter()
            .take(8)
            .map(|(a, b)| format!("{a}..{b}"))
            .collect();
        println!(
            "stopped by a signal: {done} of {n} seeds finished ({}{}); seeds not started were \
             skipped and the counts below are of the finished ones",
            shown.join(", "),
            if finished_ranges.len() > 8 {
                ", …"
            } else {
                ""
            }
        );
    }
    println!(
        "seeds {} safety_violations {} liveness_failures {} crashes {} undecided {} behind_compaction {}",
        done,
        safety.len(),
        liveness.len(),
        crashes.len(),
        undecided,
        behind.len()
    );
    match canary {
        Some(c) if code == EXIT_OK => println!(
            "canary {c} caught by {} of {done} seeds (first: seed {})",
            listed.len(),
            listed.first().map_or(0, |o| o.seed)
        ),
        Some(c) => eprintln!(
            "canary {c} NOT caught: all {done} seeds passed with the bug re-introduced \
             (try more seeds, or the checkers miss it)"
        ),
        None => {}
    }
    Ok(code)
}

fn replay(
    seed: u64,
    canary: Option<&str>,
    profile: Profile,
    trace: Option<PathBuf>,
    history: Option<PathBuf>,
) -> anyhow::Result<u8> {
    check_canary(canary)?;
    let opts = SwarmOptions { canary, profile };
    let scenario = hovercraft_sim::check::swarm::scenario_for_seed_with(seed, &opts);
    println!(
        "seed {seed}: {} with {} nodes, {} fault(s)",
        scenario.mode.as_str(),
        scenario.nodes,
        scenario.faults.len()
    );
    for f in &scenario.faults {
        println!("  {f:?}");
    }
    if let Some(t) = &trace {
        let f =
            fs::File::create(t).with_context(|| format!("creating trace file {}", t.display()))?;
        let mut w = hovercraft_sim::World::new(scenario.clone());
        w.set_trace(Box::new(BufWriter::with_capacity(1 << 20, f)));
        w.run_to_end();
        w.finish()
            .with_context(|| format!("writing trace {}", t.display()))?;
    }
    if let Some(file) = &history {
        let mut w = hovercraft_sim::check::checked_world(scenario.clone());
        w.run_to_end();
        write_history(&w, file)?;
        println!("wrote {}", file.display());
    }
    let o = hovercraft_sim::check::run_seed_with(seed, &opts);
    if let Some(p) = &o.panic {
        println!("crash: {p}");
        return Ok(EXIT_CRASH);
    }
    for (name, verdict) in &o.report.checks {
        println!("  {name:<22} {}", verdict.line());
    }
    if !o.report.model.is_empty() {
        return Ok(EXIT_CRASH);
    }
    Ok(if !o.report.safety.is_empty() {
        EXIT_SAFETY
    } else if !o.report.liveness.is_empty() {
        EXIT_LIVENESS
    } else {
        println!("ok: no violation");
        EXIT_OK
    })
}

fn sweep_command(
    file: &Path,
    quick: bool,
    out: Option<PathBuf>,
    shard: Option<hovercraft_sim::sweep::Shard>,
) -> anyhow::Result<()> {
    let name = hovercraft_sim::sweep::LoadedSweep::load(file, quick)?
        .spec
        .name;
    let out = out.unwrap_or_else(|| {
        let root = if quick { "results/quick" } else { "results" };
        PathBuf::from(root).join(name)
    });
    let command = format!(
        "cargo run --release -- sweep {}{} --out {}",
        file.display(),
        if quick { " --quick" } else { "" },
        out.display()
    );
    match shard {
        Some(shard) => cmd_sweep::sweep_shard(file, quick, &out, shard),
        None => cmd_sweep::sweep(file, quick, &out, &command).map(|_| ()),
    }
}

fn bench(quick: bool) {
    use hovercraft_sim::bench;
    // The work researchers size sweeps by (the 1M req/s star); the ratio line stays last.
    let shapes: &[(&'static str, usize)] = if quick {
        &[("hovercraft", 5)]
    } else {
        &[
            ("raft", 5),
            ("hovercraft", 3),
            ("hovercraft", 5),
            ("hovercraft", 9),
            ("hovercraft++", 5),
        ]
    };
    let loaded_ms = if quick { 20 } else { 100 };
    bench::star("hovercraft", 5, loaded_ms / 4); // warm-up
    for &(mode, nodes) in shapes {
        let s = bench::star(mode, nodes, loaded_ms);
        println!(
            "star {mode:<12} {nodes} nodes, 1M req/s, {loaded_ms} ms: {:.2} CPU s per simulated s, \
             {:.2} M packets per CPU s ({} packets, {} events, {:.0} pending, {:.2} allocations \
             per packet)",
            s.cpu_s_per_sim_s(),
            s.packets_per_cpu_s() / 1e6,
            s.packets,
            s.events,
            s.mean_pending,
            s.allocations_per_packet()
        );
    }
    let r = bench::run(quick);
    println!(
        "baseline (event queue + ChaCha8 draws, {} pending): {} events, {:.2} M events/s",
        r.pending,
        r.baseline_events,
        r.baseline_events_per_s / 1e6
    );
    println!(
        "model (unreplicated, high load):                    {} events, {:.2} M events/s",
        r.model_events,
        r.model_events_per_s / 1e6
    );
    println!("ratio {:.2}", r.ratio());
}

/// The git revision this binary was built from, with `-dirty` if a tracked file outside
/// `results/` differed; "unknown" when built outside a checkout. Embedded by build.rs, so it
/// does not depend on where the binary runs.
fn git_revision() -> String {
    env!("HOVERCRAFT_GIT_REVISION").to_string()
}

/// The compiler that built this binary (`rustc --version`).
fn toolchain() -> &'static str {
    env!("HOVERCRAFT_TOOLCHAIN")
}

/// The command as typed (argv) and where it ran.
fn invocation() -> (Vec<String>, String) {
    let argv = std::env::args().collect();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    (argv, cwd)
}

#[allow(clippy::disallowed_methods)] // wall time for the manifest only; never reaches the model
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

fn compare(a: &Path, b: &Path) -> anyhow::Result<()> {
    let read = |p: &Path| -> anyhow::Result<serde_json::Value> {
        let text = fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
        hovercraft_sim::compare::is_summary(&v).map_err(|why| {
            anyhow::anyhow!(
                "{}: not a summary.json of `run` or `hovercraft-loadgen` ({why})",
                p.display()
            )
        })?;
        Ok(v)
    };
    print!(
        "{}",
        hovercraft_sim::compare::compare(
            &a.display().to_string(),
            &read(a)?,
            &b.display().to_string(),
            &read(b)?
        )
    );
    Ok(())
}
