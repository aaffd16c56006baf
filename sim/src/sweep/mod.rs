//! Sweeps (`hovercraft-sim sweep`, `hovercraft-sim reproduce`): one base scenario run for
//! every system × axis value × offered load, in parallel, into tables and a plot.
//!
//! - [`spec`]: the sweep file format.
//! - [`slo`]: the bracketing search for the highest rate meeting a p99 objective.
//! - [`table`]: rows and CSV.
//! - [`plot`]: PNG and SVG figures.
//!
//! Determinism: every run is a pure function of its scenario, runs are collected in the
//! order of the sweep file (whatever order rayon runs them in), and identical scenarios
//! (e.g. the unreplicated system under a `nodes` axis) run once. So `data.csv` is
//! byte-identical between runs of the same sweep file and code.

pub mod aggregate;
pub mod plot;
pub mod shard_file;
pub mod slo;
pub mod spec;
pub mod table;

use std::collections::BTreeMap;
use std::sync::Mutex;

use rayon::prelude::*;
use serde_json::Value;

use crate::metrics::Summary;
use crate::scenario::{Scenario, ScenarioError};
use hovercraft_core::raft::Role;
pub use spec::{LoadSpec, LoadedSweep, PlotData, SweepSpec};
use table::Row;

/// The outcome of a sweep: its three tables.
#[derive(Debug, Default)]
pub struct SweepResult {
    /// `data.csv`: one row per run.
    pub runs: Vec<Row>,
    /// `slo.csv`: per configuration, the best rate meeting the SLO (grid and SLO loads).
    pub slo: Vec<Row>,
    /// `timeline.csv`: per run and time bucket (scenarios with `timeline_bucket_ms`).
    pub timeline: Vec<Row>,
    /// With `seeds` > 1: the tables above aggregated over seeds (mean, median, 95%
    /// interval); empty otherwise. `runs_agg` only for fixed and grid loads (an SLO search
    /// tries different rates per seed).
    pub runs_agg: Vec<Row>,
    pub slo_agg: Vec<Row>,
    pub timeline_agg: Vec<Row>,
    /// Seeds used (sorted, distinct).
    pub seeds: Vec<u64>,
    /// Distinct simulations run.
    pub simulations: usize,
}

/// Which configurations a process runs: those whose index mod `of` is `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, of: 1 };

    pub fn owns(&self, config: usize) -> bool {
        config % self.of == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `k/n` with 0 <= k < n.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected k/n, e.g. 0/4"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: k is not a number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: n is not a number"))?;
        if n == 0 || k >= n {
            return Err(format!("{s:?}: need 0 <= k < n"));
        }
        Ok(Shard { index: k, of: n })
    }
}

/// One configuration's rows, before speedups and aggregates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigRows {
    /// The configuration's index in the sweep (systems × axes × seeds, file order).
    pub index: usize,
    pub runs: Vec<Row>,
    pub slo: Option<Row>,
    pub timeline: Vec<Row>,
    pub seeds: Vec<u64>,
}

/// What one shard ran.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardResult {
    pub shard: Shard,
    /// Configurations in the whole sweep.
    pub configs: usize,
    pub parts: Vec<ConfigRows>,
    /// Distinct simulations this shard ran.
    pub simulations: usize,
}

/// One configuration: a system at one point of the axes (the load still to choose).
#[derive(Clone, Debug)]
struct Config {
    system: String,
    /// (column, value) for each axis.
    axes: Vec<(String, Value)>,
    /// The run's seed, when the sweep runs several per point.
    seed: Option<u64>,
    scenario: Value,
}

/// Relative cost of simulating a configuration: servers × simulated duration (a run's cost
/// grows with the packets it delivers, which grow with both).
fn estimated_cost(c: &Config) -> u64 {
    let field =
        |k: &str, default: u64| c.scenario.get(k).and_then(Value::as_u64).unwrap_or(default);
    field("nodes", 1).max(1) * field("duration_ms", 100).max(1)
}

/// `f(0..n)` on every rayon thread, taking jobs in decreasing `cost` (greedy longest
/// first), results in index order. Each job's result depends only on its index, so the
/// order jobs run in changes nothing but the wall time.
fn longest_first<T: Send>(
    n: usize,
    cost: impl Fn(usize) -> u64,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(i))); // stable: ties keep file order
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    rayon::scope(|s| {
        for _ in 0..rayon::current_num_threads().min(n) {
            s.spawn(|_| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                let out = f(i);
                *slots[i].lock().expect("slot lock") = Some(out);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().expect("slot lock").expect("every job ran"))
        .collect()
}

/// A configuration's runs, in order, and the index of its best run under the SLO.
type ConfigRuns = (Vec<RunOutcome>, Option<usize>);

/// What a run is judged on and reported with.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub offered_rps: f64,
    pub summary: Summary,
}

impl RunOutcome {
    /// Share of the measured requests that were never answered (DROP or timeout).
    pub fn lost_fraction(&self) -> f64 {
        let s = &self.summary;
        s.dropped as f64 / (s.measured_requests + s.dropped).max(1) as f64
    }

    /// Meets the SLO: p99 under the objective, nearly everything offered answered, and at
    /// most `slo.max_lost_fraction` never answered (p99 is over answered requests only, so a
    /// run that loses much must not pass on the latency of the few it answered).
    pub fn meets_slo(&self, slo: Slo) -> bool {
        let s = &self.summary;
        s.measured_requests > 0
            && s.latency_us.p99 <= slo.p99_us
            && s.completed_rps >= 0.95 * s.offered_rps
            && self.lost_fraction() <= slo.max_lost_fraction
            && s.client_refused == 0
    }
}

/// The objective a run is judged against.
#[derive(Clone, Copy, Debug)]
pub struct Slo {
    pub p99_us: f64,
    pub max_lost_fraction: f64,
}

/// Progress reporting, so the library stays free of terminal code.
pub trait Progress: Sync {
    fn set_total(&self, runs: u64);
    fn run_done(&self);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn set_total(&self, _: u64) {}
    fn run_done(&self) {}
}

fn scenario_error(sweep: &LoadedSweep, what: &str, e: ScenarioError) -> ScenarioError {
    ScenarioError {
        file: format!("{} ({what}, from base {})", sweep.file.display(), e.file),
        field: e.field,
        reason: e.reason,
    }
}

impl LoadedSweep {
    /// Every configuration: systems × axes' cartesian product, overrides applied in the order
    /// base → `set` → axis values → the system's own `set` (so a system can pin a field an
    /// axis varies, e.g. unreplicated's single node).
    fn configs(&self) -> Result<Vec<Config>, ScenarioError> {
        let spec = &self.spec;
        let mut base = self.base.clone();
        for (path, v) in &spec.set {
            spec::set_path(&mut base, path, v.clone()).map_err(|r| ScenarioError {
                file: self.file.display().to_string(),
                field: format!("set.{path}"),
                reason: r,
            })?;
        }
        type Point = Vec<(String, Value, Vec<(String, Value)>)>;
        let mut points: Vec<Point> = vec![Vec::new()];
        for axis in &spec.axes {
            let mut next = Vec::new();
            for p in &points {
                for (shown, sets) in axis.points() {
                    let mut q = p.clone();
                    q.push((axis.column(), shown, sets));
                    next.push(q);
                }
            }
            points = next;
        }
        let mut out = Vec::new();
        for system in &spec.systems {
            for p in &points {
                let mut s = base.clone();
                for (column, _, sets) in p {
                    for (field, v) in sets {
                        spec::set_path(&mut s, field, v.clone()).map_err(|r| ScenarioError {
                            file: self.file.display().to_string(),
                            field: format!("axes.{column}"),
                            reason: r,
                        })?;
                    }
                }
                for (path, v) in &system.set {
                    spec::set_path(&mut s, path, v.clone()).map_err(|r| ScenarioError {
                        file: self.file.display().to_string(),
                        field: format!("systems.{}.set.{path}", system.label),
                        reason: r,
                    })?;
                }
                let axes: Vec<(String, Value)> =
                    p.iter().map(|(c, v, _)| (c.clone(), v.clone())).collect();
                if spec.seeds <= 1 {
                    out.push(Config {
                        system: system.label.clone(),
                        axes,
                        seed: None,
                        scenario: s,
                    });
                    continue;
                }
                let first = s.get("seed").and_then(Value::as_u64).unwrap_or(0);
                for k in 0..u64::from(spec.seeds) {
                    let seed = first.wrapping_add(k);
                    let mut with_seed = s.clone();
                    spec::set_path(&mut with_seed, "seed", Value::from(seed)).map_err(|r| {
                        ScenarioError {
                            file: self.file.display().to_string(),
                            field: "seeds".into(),
                            reason: r,
                        }
                    })?;
                    out.push(Config {
                        system: system.label.clone(),
                        axes: axes.clone(),
                        seed: Some(seed),
                        scenario: with_seed,
                    });
                }
            }
        }
        Ok(out)
    }

    fn describe(&self, c: &Config) -> String {
        let axes: Vec<String> = c.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "system {}{}{}",
            c.system,
            if axes.is_empty() { "" } else { ", " },
            axes.join(", ")
        )
    }

    /// Parses and validates every configuration's scenario at a representative rate, so a
    /// bad sweep fails before any simulation runs.
    pub fn check(&self) -> Result<(), ScenarioError> {
        self.check_plot_columns()?;
        for c in self.configs()? {
            self.scenario_at(&c, None)?;
        }
        Ok(())
    }

    /// The columns of the table a plot draws from: key columns (figure, system, axes),
    /// then what every row of that table carries.
    pub fn table_columns(&self, data: PlotData) -> Vec<String> {
        let mut cols: Vec<String> = vec!["figure".into(), "system".into()];
        cols.extend(self.axis_columns());
        let rest: &[&[&str]] = match data {
            PlotData::Runs => &[
                RUN_COLUMNS,
                LEADER_COLUMNS,
                &["recoveries_per_kreq", "failover_ms", "slo_max"],
            ],
            PlotData::Slo => &[
                SLO_COLUMNS,
                LEADER_COLUMNS,
                &["recoveries_per_kreq", "lost_fraction", "runs"],
            ],
            PlotData::Timeline => &[TIMELINE_COLUMNS],
        };
        for c in rest.iter().flat_map(|r| r.iter()) {
            if !cols.iter().any(|x| x == c) {
                cols.push((*c).to_string());
            }
        }
        if data == PlotData::Slo && self.spec.baseline.is_some() {
            cols.push("speedup".into());
        }
        if self.spec.seeds > 1 {
            // The plot reads the aggregated table: every column also has its interval.
            let stats: Vec<String> = cols
                .iter()
                .flat_map(|c| ["median", "ci_low", "ci_high"].map(|s| format!("{c}_{s}")))
                .collect();
            cols.insert(2, "seed".into());
            cols.push("seeds".into());
            cols.extend(stats);
        }
        cols
    }

    /// Every column the plot names exists in its table: a typo fails before the sweep runs,
    /// not after, with an empty figure.
    fn check_plot_columns(&self) -> Result<(), ScenarioError> {
        let plot = &self.spec.plot;
        let cols = self.table_columns(plot.data);
        let table = match plot.data {
            PlotData::Runs => "data.csv",
            PlotData::Slo => "slo.csv",
            PlotData::Timeline => "timeline.csv",
        };
        let named = std::iter::once(("plot.x", &plot.x))
            .chain(plot.y.iter().map(|c| ("plot.y", c)))
            .chain(plot.series.iter().map(|c| ("plot.series", c)))
            .chain(plot.panel_by.iter().map(|c| ("plot.panel_by", c)))
            .chain(plot.y_log_columns.iter().map(|c| ("plot.y_log_columns", c)));
        for (field, c) in named {
            if !cols.iter().any(|x| x == c) {
                return Err(ScenarioError {
                    file: self.file.display().to_string(),
                    field: field.into(),
                    reason: format!("{table} has no column {c:?} (it has: {})", cols.join(", ")),
                });
            }
        }
        Ok(())
    }

    fn scenario_at(&self, c: &Config, rate_rps: Option<f64>) -> Result<Scenario, ScenarioError> {
        let mut v = c.scenario.clone();
        if let Some(r) = rate_rps {
            spec::set_path(&mut v, "workload.rate_rps", Value::from(r)).map_err(|r| {
                ScenarioError {
                    file: self.file.display().to_string(),
                    field: "load".into(),
                    reason: r,
                }
            })?;
        }
        let text = v.to_string();
        let what = self.describe(c);
        Scenario::from_json("scenario", &text).map_err(|e| scenario_error(self, &what, e))
    }

    /// Runs the sweep. `progress` hears about every finished simulation.
    pub fn run(&self, progress: &dyn Progress) -> Result<SweepResult, ScenarioError> {
        let part = self.run_shard(Shard::WHOLE, progress)?;
        self.assemble(vec![part])
    }

    /// Number of configurations (the unit shards split).
    pub fn config_count(&self) -> Result<usize, ScenarioError> {
        Ok(self.configs()?.len())
    }

    /// Runs the configurations of one shard (index mod `of` == `index`: interleaved, so
    /// cheap and costly configurations spread over the shards) and returns their rows,
    /// before anything that needs every configuration (speedups, seed aggregates).
    pub fn run_shard(
        &self,
        shard: Shard,
        progress: &dyn Progress,
    ) -> Result<ShardResult, ScenarioError> {
        self.check()?;
        let all = self.configs()?;
        let total = all.len();
        let (indexes, configs): (Vec<usize>, Vec<Config>) = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shard.owns(*i))
            .unzip();
        let slo_us = Slo {
            p99_us: self.spec.slo_p99_us,
            max_lost_fraction: self.spec.max_lost_fraction,
        };
        // Identical scenarios run once: the key is the canonical JSON of the scenario
        // (serde_json's map is ordered, so equal scenarios print equal).
        let cache: Mutex<BTreeMap<String, RunOutcome>> = Mutex::new(BTreeMap::new());
        let run_one = |c: &Config, rate: Option<f64>| -> Result<RunOutcome, ScenarioError> {
            let scenario = self.scenario_at(c, rate)?;
            let key = serde_json::to_string(&scenario).unwrap_or_default();
            if let Some(hit) = cache.lock().expect("cache lock").get(&key) {
                progress.run_done();
                return Ok(hit.clone());
            }
            let offered_rps = scenario.workload.rate_rps;
            let summary = crate::run_scenario(scenario, None).map_err(|e| ScenarioError {
                file: self.file.display().to_string(),
                field: String::new(),
                reason: format!("run failed: {e}"),
            })?;
            let out = RunOutcome {
                offered_rps,
                summary,
            };
            cache.lock().expect("cache lock").insert(key, out.clone());
            progress.run_done();
            Ok(out)
        };

        // Per configuration: its runs, in order, and the index of the best run under the SLO.
        let per_config: Vec<Result<ConfigRuns, ScenarioError>> = match &self.spec.load {
            LoadSpec::Fixed => {
                progress.set_total(configs.len() as u64);
                configs
                    .par_iter()
                    .map(|c| {
                        let r = run_one(c, None)?;
                        let best = r.meets_slo(slo_us).then_some(0);
                        Ok((vec![r], best))
                    })
                    .collect()
            }
            LoadSpec::Grid { rates_rps } => {
                progress.set_total((configs.len() * rates_rps.len()) as u64);
                let jobs: Vec<(usize, f64)> = (0..configs.len())
                    .flat_map(|i| rates_rps.iter().map(move |&r| (i, r)))
                    .collect();
                let outcomes: Vec<Result<RunOutcome, ScenarioError>> = jobs
                    .par_iter()
                    .map(|&(i, r)| run_one(&configs[i], Some(r)))
                    .collect();
                let mut it = outcomes.into_iter();
                (0..configs.len())
                    .map(|_| {
                        let runs: Vec<RunOutcome> = it
                            .by_ref()
                            .take(rates_rps.len())
                            .collect::<Result<_, _>>()?;
                        let best = best_under_slo(&runs, slo_us);
                        Ok((runs, best))
                    })
                    .collect()
            }
            LoadSpec::Slo {
                start_rps,
                max_rps,
                min_rps,
                precision,
            } => {
                // The number of runs is not known in advance; a typical search takes
                // about log2(max/start) + log2(1/precision) runs.
                let per = ((max_rps / start_rps).log2().ceil() + (1.0 / precision).log2().ceil())
                    .max(1.0) as u64;
                progress.set_total(configs.len() as u64 * per);
                let search = slo::Search {
                    start_rps: *start_rps,
                    max_rps: *max_rps,
                    min_rps: *min_rps,
                    precision: *precision,
                };
                // Searches differ in length (a 9-node search costs ~3x a 3-node one); the
                // longest go first so no core waits at the end on one long search.
                longest_first(
                    configs.len(),
                    |i| estimated_cost(&configs[i]),
                    |i| {
                        let c = &configs[i];
                        let runs =
                            search.run(|rate| run_one(c, Some(rate)), |r| r.meets_slo(slo_us))?;
                        let best = best_under_slo(&runs, slo_us);
                        Ok((runs, best))
                    },
                )
            }
        };

        let mut parts = Vec::with_capacity(configs.len());
        for ((c, outcome), &index) in configs.iter().zip(per_config).zip(&indexes) {
            let (runs, best) = outcome?;
            let mut part = ConfigRows {
                index,
                ..ConfigRows::default()
            };
            for (step, r) in runs.iter().enumerate() {
                part.seeds.push(r.summary.seed);
                let mut row = self.run_row(c, r, step);
                row.push("slo_max", u64::from(best == Some(step)));
                part.runs.push(row);
                for p in &r.summary.timeline {
                    let mut t = self.key_row(c);
                    t.push("offered_rps", r.offered_rps);
                    t.push("t_ms", p.t_ms);
                    t.push("completed_rps", p.completed_rps);
                    // A bucket without a reply has no latency (empty cells, not 0).
                    let latency = |x: f64| if p.completed_rps == 0.0 { f64::NAN } else { x };
                    t.push("p50_us", latency(p.p50_us));
                    t.push("p99_us", latency(p.p99_us));
                    t.push("dropped", p.dropped);
                    t.push("timed_out", p.timed_out);
                    part.timeline.push(t);
                }
            }
            if !matches!(self.spec.load, LoadSpec::Fixed) {
                let mut row = self.key_row(c);
                match best {
                    Some(i) => {
                        let r = &runs[i];
                        row.push("max_rps_under_slo", r.summary.completed_rps);
                        row.push("offered_rps", r.offered_rps);
                        row.push("p99_us", r.summary.latency_us.p99);
                        push_leader_columns(&mut row, &r.summary);
                        row.push("recoveries_per_kreq", recoveries_per_kreq(&r.summary));
                        row.push("lost_fraction", round3(r.lost_fraction()));
                    }
                    None => {
                        row.push("max_rps_under_slo", 0.0);
                        row.push("offered_rps", 0.0);
                        row.push("p99_us", f64::NAN);
                    }
                }
                row.push("runs", runs.len() as u64);
                part.slo = Some(row);
            }
            parts.push(part);
        }
        let simulations = cache.lock().expect("cache lock").len();
        Ok(ShardResult {
            shard,
            configs: total,
            parts,
            simulations,
        })
    }

    /// The tables of a whole sweep from the shards that together ran every configuration
    /// once: rows in configuration order, then speedups and seed aggregates. The same rows
    /// whichever shards they came from, so sharded and whole runs write the same bytes.
    pub fn assemble(&self, shards: Vec<ShardResult>) -> Result<SweepResult, ScenarioError> {
        let total = self.configs()?.len();
        let bad = |reason: String| ScenarioError {
            file: self.file.display().to_string(),
            field: String::new(),
            reason,
        };
        let mut simulations = 0;
        let mut slots: Vec<Option<ConfigRows>> = (0..total).map(|_| None).collect();
        for sh in shards {
            if sh.configs != total {
                return Err(bad(format!(
                    "shard {} ran a sweep of {} configurations; this sweep has {total}",
                    sh.shard, sh.configs
                )));
            }
            simulations += sh.simulations;
            for part in sh.parts {
                let i = part.index;
                match slots.get_mut(i) {
                    Some(slot @ None) => *slot = Some(part),
                    Some(Some(_)) => {
                        return Err(bad(format!("configuration {i} is in two shards")))
                    }
                    None => return Err(bad(format!("configuration {i} out of range"))),
                }
            }
        }
        let missing: Vec<usize> = (0..total).filter(|&i| slots[i].is_none()).collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "{} of {total} configurations missing (first: {}); is a shard missing?",
                missing.len(),
                missing[0]
            )));
        }
        let mut result = SweepResult::default();
        let mut seeds = Vec::new();
        for part in slots.into_iter().flatten() {
            seeds.extend(part.seeds);
            result.runs.extend(part.runs);
            result.timeline.extend(part.timeline);
            result.slo.extend(part.slo);
        }
        if let Some(b) = &self.spec.baseline {
            // With several seeds each seed is compared with the baseline's same seed.
            let mut match_on = self.axis_columns();
            if self.spec.seeds > 1 {
                match_on.push("seed".into());
            }
            add_speedups(&mut result.slo, b, &match_on);
        }
        if self.spec.seeds > 1 {
            self.aggregate_seeds(&mut result);
        }
        seeds.sort_unstable();
        seeds.dedup();
        result.seeds = seeds;
        result.simulations = simulations;
        Ok(result)
    }

    /// The per-seed tables grouped over seeds (see [`aggregate`]).
    fn aggregate_seeds(&self, result: &mut SweepResult) {
        let axes = self.axis_columns();
        let mut group: Vec<&str> = vec!["figure", "system"];
        group.extend(axes.iter().map(String::as_str));
        let with_plot = |cols: &[&'static str]| -> Vec<String> {
            let mut v: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
            for y in &self.spec.plot.y {
                if !v.contains(y) {
                    v.push(y.clone());
                }
            }
            v
        };
        let slo_interval = with_plot(&["max_rps_under_slo", "speedup", "p99_us"]);
        let slo_interval: Vec<&str> = slo_interval.iter().map(String::as_str).collect();
        result.slo_agg = aggregate::aggregate(&result.slo, &group, &["seed"], &slo_interval);
        let run_interval = with_plot(&["completed_rps", "p50_us", "p99_us", "p999_us"]);
        let run_interval: Vec<&str> = run_interval.iter().map(String::as_str).collect();
        let mut run_group = group.clone();
        run_group.push("offered_rps");
        if matches!(self.spec.load, LoadSpec::Fixed | LoadSpec::Grid { .. }) {
            result.runs_agg = aggregate::aggregate(
                &result.runs,
                &run_group,
                &["seed", "step", "slo_max"],
                &run_interval,
            );
        }
        let mut timeline_group = run_group;
        timeline_group.push("t_ms");
        let timeline_interval = with_plot(&["completed_rps", "p50_us", "p99_us"]);
        let timeline_interval: Vec<&str> = timeline_interval.iter().map(String::as_str).collect();
        result.timeline_agg = aggregate::aggregate(
            &result.timeline,
            &timeline_group,
            &["seed"],
            &timeline_interval,
        );
    }

    fn axis_columns(&self) -> Vec<String> {
        self.spec.axes.iter().map(|a| a.column()).collect()
    }

    /// The columns that identify a configuration: figure, system, axes.
    fn key_row(&self, c: &Config) -> Row {
        let mut row = Row::default();
        row.push("figure", self.spec.name.as_str());
        row.push("system", c.system.as_str());
        for (col, v) in &c.axes {
            row.push(col, v);
        }
        if let Some(seed) = c.seed {
            row.push("seed", seed);
        }
        row
    }

    fn run_row(&self, c: &Config, r: &RunOutcome, step: usize) -> Row {
        let s = &r.summary;
        let mut row = self.key_row(c);
        let slo_us = Slo {
            p99_us: self.spec.slo_p99_us,
            max_lost_fraction: self.spec.max_lost_fraction,
        };
        row.push("step", step as u64);
        row.push("mode", s.mode);
        // The axis may be called `nodes` too; the run's real node count wins the name.
        row.set("nodes", u64::from(s.nodes));
        row.set("seed", s.seed);
        row.push("offered_rps", r.offered_rps);
        row.push("sent_rps", s.offered_rps);
        row.push("completed_rps", s.completed_rps);
        // No answered request, no latency: an empty cell, not 0 (which plots as a point).
        let latency = |x: f64| {
            if s.measured_requests == 0 {
                f64::NAN
            } else {
                x
            }
        };
        row.push("p50_us", latency(s.latency_us.p50));
        row.push("p99_us", latency(s.latency_us.p99));
        row.push("p999_us", latency(s.latency_us.p999));
        row.push("mean_us", latency(s.latency_us.mean));
        row.push("dropped", s.dropped);
        row.push("timed_out", s.timed_out);
        row.push("lost_fraction", round3(r.lost_fraction()));
        row.push("client_refused", s.client_refused);
        row.push("switch_queue_drops", s.network.switch_queue_drops);
        row.push("meets_slo", u64::from(r.meets_slo(slo_us)));
        push_leader_columns(&mut row, s);
        row.push("recoveries_per_kreq", recoveries_per_kreq(s));
        // Time without a leader after the first fault that took it away (fault scenarios).
        row.push(
            "failover_ms",
            s.failover_us
                .first()
                .map_or(f64::NAN, |us| round3(us / 1e3)),
        );
        row
    }
}

/// `data.csv` columns after the key columns, as `run_row` pushes them.
const RUN_COLUMNS: &[&str] = &[
    "step",
    "mode",
    "nodes",
    "seed",
    "offered_rps",
    "sent_rps",
    "completed_rps",
    "p50_us",
    "p99_us",
    "p999_us",
    "mean_us",
    "dropped",
    "timed_out",
    "lost_fraction",
    "client_refused",
    "switch_queue_drops",
    "meets_slo",
];

/// `slo.csv` columns after the key columns.
const SLO_COLUMNS: &[&str] = &["max_rps_under_slo", "offered_rps", "p99_us"];

/// `timeline.csv` columns after the key columns.
const TIMELINE_COLUMNS: &[&str] = &[
    "offered_rps",
    "t_ms",
    "completed_rps",
    "p50_us",
    "p99_us",
    "dropped",
    "timed_out",
];

/// What `push_leader_columns` adds.
const LEADER_COLUMNS: &[&str] = &[
    "leader_cpu_busy",
    "leader_app_busy",
    "leader_nic_busy",
    "leader_cpu_ns_per_req",
    "leader_tx_bytes_per_req",
    "leader_tx_pkts_per_req",
    "max_app_busy",
];

/// Body recovery requests (all replicas) per 1000 answered requests: the cost of
/// multicast loss.
fn recoveries_per_kreq(s: &Summary) -> f64 {
    let recoveries: u64 = s
        .per_node
        .iter()
        .filter_map(|n| n.replica.as_ref())
        .map(|r| r.counters.recovery_requests)
        .sum();
    round3(recoveries as f64 * 1000.0 / (s.measured_requests.max(1)) as f64)
}

fn round3(x: f64) -> f64 {
    crate::metrics::round3(x)
}

/// The node that leads at the end of the run (the only server when unreplicated).
pub fn leader(s: &Summary) -> Option<&crate::metrics::NodeSummary> {
    s.per_node
        .iter()
        .find(|n| n.replica.as_ref().is_some_and(|r| r.role == Role::Leader))
        .or_else(|| s.per_node.iter().find(|n| n.replica.is_none()))
}

/// The leader's costs per answered request and the busiest core: what decides who
/// saturates first.
fn push_leader_columns(row: &mut Row, s: &Summary) {
    let window_s = (s.duration_ms - s.warmup_ms) as f64 / 1e3;
    let completed = (s.completed_rps * window_s).max(1.0);
    match leader(s) {
        Some(l) => {
            row.push("leader_cpu_busy", l.cpu_busy_fraction);
            row.push(
                "leader_app_busy",
                l.app_core_busy_fraction.unwrap_or(f64::NAN),
            );
            row.push("leader_nic_busy", l.nic_busy_fraction);
            row.push(
                "leader_cpu_ns_per_req",
                round3(l.cpu.busy_in_window_ns as f64 / completed),
            );
            row.push(
                "leader_tx_bytes_per_req",
                round3(l.host.bytes_tx_in_window as f64 / completed),
            );
            row.push(
                "leader_tx_pkts_per_req",
                round3(l.host.packets_tx_in_window as f64 / completed),
            );
        }
        None => {
            // All but max_app_busy, pushed below.
            for c in &LEADER_COLUMNS[..LEADER_COLUMNS.len() - 1] {
                row.push(c, f64::NAN);
            }
        }
    }
    let max_app = s
        .per_node
        .iter()
        .filter_map(|n| n.app_core_busy_fraction)
        .fold(f64::NAN, f64::max);
    row.push("max_app_busy", max_app);
}

/// The run with the highest answered rate among those meeting the SLO.
fn best_under_slo(runs: &[RunOutcome], slo_us: Slo) -> Option<usize> {
    runs.iter()
        .enumerate()
        .filter(|(_, r)| r.meets_slo(slo_us))
        .max_by(|a, b| {
            a.1.summary
                .completed_rps
                .total_cmp(&b.1.summary.completed_rps)
        })
        .map(|(i, _)| i)
}

/// Adds `speedup` (max rate under SLO / the baseline system's at the same axis values).
fn add_speedups(rows: &mut [Row], baseline: &str, axes: &[String]) {
    let key = |r: &Row| -> Vec<String> {
        axes.iter()
            .map(|a| r.get(a).map(|c| c.label()).unwrap_or_default())
            .collect()
    };
    let base: Vec<(Vec<String>, f64)> = rows
        .iter()
        .filter(|r| r.get("system").is_some_and(|s| s.label() == baseline))
        .map(|r| (key(r), r.num("max_rps_under_slo").unwrap_or(0.0)))
        .collect();
    for r in rows.iter_mut() {
        let k = key(r);
        let b = base.iter().find(|(bk, _)| *bk == k).map(|(_, v)| *v);
        let speedup = match (b, r.num("max_rps_under_slo")) {
            (Some(b), Some(v)) if b > 0.0 => round3(v / b),
            _ => f64::NAN,
        };
        r.push("speedup", speedup);
    }
}

#[cfg(test)]
mod tests {
    use super::longest_first;

    #[test]
    fn longest_first_returns_results_in_index_order_whatever_ran_first() {
        let costs = [3u64, 9, 1, 9, 5, 0, 7];
        let ran = std::sync::Mutex::new(Vec::new());
        let out = longest_first(
            costs.len(),
            |i| costs[i],
            |i| {
                ran.lock().unwrap().push(i);
                i * 10
            },
        );
        assert_eq!(out, vec![0, 10, 20, 30, 40, 50, 60]);
        let ran = ran.into_inner().unwrap();
        assert_eq!(ran.len(), costs.len());
        // The two most expensive jobs start before any other (whichever thread takes them).
        let mut first_two = ran[..2].to_vec();
        first_two.sort_unstable();
        if rayon::current_num_threads() == 1 {
            assert_eq!(ran, vec![1, 3, 6, 4, 0, 2, 5]);
        } else {
            assert!(first_two == vec![1, 3] || ran[0] == 1, "{ran:?}");
        }
        assert!(longest_first(0, |_| 0, |i| i).is_empty());
    }
}
