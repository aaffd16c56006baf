//! The `sweep` and `reproduce` subcommands: run sweep files, write their tables, figure and
//! manifest. (Wall time is measured here, in the binary, never in the library.)

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use hovercraft_sim::sweep::{
    plot, shard_file, table, LoadedSweep, PlotData, Progress, Shard, SweepResult,
};

struct Bar(crate::progress::BatchProgress);

impl Progress for Bar {
    fn set_total(&self, runs: u64) {
        self.0.set_total(runs);
    }
    fn run_done(&self) {
        self.0.inc(false);
    }
}

/// Where sweep files live, relative to the repository root.
pub const SWEEPS_DIR: &str = "scenarios/sweeps";

/// Runs one sweep file into `out` and returns its wall time in seconds.
pub fn sweep(file: &Path, quick: bool, out: &Path, command: &str) -> anyhow::Result<f64> {
    let sweep = LoadedSweep::load(file, quick)?;
    let name = sweep.spec.name.clone();
    let bar = Bar(crate::progress::BatchProgress::new(&name, "runs", 0));
    let started = super::wall_now();
    let result = sweep.run(&bar)?;
    bar.0.finish();
    let wall_s = started.elapsed().as_secs_f64();
    write_outputs(&sweep, &result, out, command, wall_s, None)?;
    Ok(wall_s)
}

/// Runs one shard of a sweep file and writes `out/shard-K-of-N.jsonl` (see
/// `hovercraft_sim::sweep::shard_file`); `merge` turns the shards into the sweep's folder.
pub fn sweep_shard(file: &Path, quick: bool, out: &Path, shard: Shard) -> anyhow::Result<()> {
    let sweep = LoadedSweep::load(file, quick)?;
    let text = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let label = format!("{} {shard}", sweep.spec.name);
    let bar = Bar(crate::progress::BatchProgress::new(&label, "runs", 0));
    let started = super::wall_now();
    let result = sweep.run_shard(shard, &bar)?;
    bar.0.finish();
    let wall_s = started.elapsed().as_secs_f64();
    let (argv, cwd) = super::invocation();
    let abs = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let header = json!({
        "sweep_file": abs.display().to_string(),
        "sweep_fnv64": shard_file::fnv64(&text),
        "quick": quick,
        "argv": argv,
        "working_directory": cwd,
        "git_revision": super::git_revision(),
        "toolchain": super::toolchain(),
        "threads": rayon::current_num_threads(),
        "wall_s": (wall_s * 10.0).round() / 10.0,
    });
    let serde_json::Value::Object(header) = header else {
        unreachable!("a JSON object literal")
    };
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let f = out.join(format!("shard-{}-of-{}.jsonl", shard.index, shard.of));
    fs::write(&f, shard_file::write(&result, header))
        .with_context(|| format!("writing {}", f.display()))?;
    println!(
        "{label}: {} of {} configurations in {wall_s:.1} s -> {} (merge the shards with \
         `hovercraft-sim merge`)",
        result.parts.len(),
        result.configs,
        f.display()
    );
    Ok(())
}

/// `merge PATH... --out DIR`: shard files (or folders holding `shard-*.jsonl`) of one sweep
/// into the folder a whole run writes, byte for byte the same tables and figure.
pub fn merge(paths: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".jsonl"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "merge: no shard-*.jsonl in {paths:?}");
    let mut shards = Vec::new();
    let mut first: Option<(PathBuf, serde_json::Map<String, serde_json::Value>)> = None;
    let mut wall_s = 0.0;
    for f in &files {
        let text = fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let (header, result) =
            shard_file::read(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        wall_s += header.get("wall_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
        if let Some((f0, h0)) = &first {
            for k in ["sweep_fnv64", "quick", "git_revision"] {
                anyhow::ensure!(
                    header.get(k) == h0.get(k),
                    "{} and {}: different {k} ({} vs {}); shards must come from one sweep file \
                     and one binary",
                    f0.display(),
                    f.display(),
                    h0.get(k).cloned().unwrap_or_default(),
                    header.get(k).cloned().unwrap_or_default()
                );
            }
        } else {
            first = Some((f.clone(), header));
        }
        shards.push(result);
    }
    let (f0, h0) = first.expect("at least one file");
    let sweep_file = PathBuf::from(h0["sweep_file"].as_str().unwrap_or_default());
    let quick = h0["quick"].as_bool().unwrap_or(false);
    let text = fs::read(&sweep_file).with_context(|| {
        format!(
            "{}: the sweep file {} is needed to merge",
            f0.display(),
            sweep_file.display()
        )
    })?;
    anyhow::ensure!(
        Some(shard_file::fnv64(&text).as_str()) == h0["sweep_fnv64"].as_str(),
        "{} changed since the shards ran (its hash differs)",
        sweep_file.display()
    );
    if h0["git_revision"].as_str() != Some(super::git_revision().as_str()) {
        eprintln!(
            "warning: shards ran at revision {}, this binary is {}",
            h0["git_revision"],
            super::git_revision()
        );
    }
    let sweep = LoadedSweep::load(&sweep_file, quick)?;
    let result = sweep.assemble(shards)?;
    let command = super::invocation().0.join(" ");
    write_outputs(&sweep, &result, out, &command, wall_s, Some(files.len()))
}

/// The sweep's folder: tables, figure and manifest.
fn write_outputs(
    sweep: &LoadedSweep,
    result: &SweepResult,
    out: &Path,
    command: &str,
    wall_s: f64,
    merged_shards: Option<usize>,
) -> anyhow::Result<()> {
    let name = sweep.spec.name.clone();
    let file = &sweep.file;
    let quick = sweep.quick;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: String| -> anyhow::Result<()> {
        let f = out.join(name);
        fs::write(&f, text).with_context(|| format!("writing {}", f.display()))
    };
    write("data.csv", table::to_csv(&result.runs))?;
    if !result.slo.is_empty() {
        write("slo.csv", table::to_csv(&result.slo))?;
    }
    if !result.timeline.is_empty() {
        write("timeline.csv", table::to_csv(&result.timeline))?;
    }
    for (name, rows) in [
        ("data_agg.csv", &result.runs_agg),
        ("slo_agg.csv", &result.slo_agg),
        ("timeline_agg.csv", &result.timeline_agg),
    ] {
        if !rows.is_empty() {
            write(name, table::to_csv(rows))?;
        }
    }
    // With several seeds the figure draws the means and their intervals.
    let several = sweep.spec.seeds > 1;
    let rows = match sweep.spec.plot.data {
        PlotData::Runs if several => &result.runs_agg,
        PlotData::Slo if several => &result.slo_agg,
        PlotData::Timeline if several => &result.timeline_agg,
        PlotData::Runs => &result.runs,
        PlotData::Slo => &result.slo,
        PlotData::Timeline => &result.timeline,
    };
    let mut title = sweep.spec.title.clone();
    if quick {
        title.push_str(" [quick]");
    }
    plot::write(
        &out.join(&name),
        &title,
        rows,
        &sweep.spec.plot,
        Some(sweep.spec.slo_p99_us),
    )
    .map_err(|e| anyhow::anyhow!("plotting {name}: {e}"))?;
    let (argv, cwd) = super::invocation();
    let manifest = json!({
        "figure": name,
        "title": sweep.spec.title,
        "command": command,
        "argv": argv,
        "working_directory": cwd,
        "toolchain": super::toolchain(),
        "sweep_file": file.display().to_string(),
        "base_scenario": sweep.spec.base.display().to_string(),
        "quick": quick,
        "seeds": result.seeds,
        "seeds_per_point": sweep.spec.seeds,
        "interval": if sweep.spec.seeds > 1 {
            "*_agg.csv: mean over seeds, median, and 95% confidence interval of the mean (Student's t, n-1 degrees of freedom); empty cells are left out"
        } else {
            "one seed per point: no interval"
        },
        "slo_p99_us": sweep.spec.slo_p99_us,
        "runs": result.runs.len(),
        "simulations": result.simulations,
        "git_revision": super::git_revision(),
        "threads": rayon::current_num_threads(),
        "wall_s": (wall_s * 10.0).round() / 10.0,
        "merged_shards": merged_shards,
        "note": "data.csv, slo.csv and timeline.csv are deterministic: the command regenerates them byte for byte at this revision; wall_s and threads are the only machine-dependent fields",
    });
    write(
        "manifest.json",
        serde_json::to_string_pretty(&manifest).context("manifest")? + "\n",
    )?;
    println!(
        "{name}: {} runs ({} simulations) in {wall_s:.1} s -> {}",
        result.runs.len(),
        result.simulations,
        out.display()
    );
    // One line per configuration; with several seeds, the mean and its 95% interval.
    let slo_rows = if result.slo_agg.is_empty() {
        &result.slo
    } else {
        &result.slo_agg
    };
    if !slo_rows.is_empty() {
        for r in slo_rows {
            let key: Vec<String> = r
                .cells
                .iter()
                .filter(|(c, _)| c != "figure" && c != "seeds")
                .take_while(|(c, _)| c != "max_rps_under_slo")
                .map(|(c, v)| format!("{c}={}", v.label()))
                .collect();
            let interval = match (
                r.num("max_rps_under_slo_ci_low").filter(|x| x.is_finite()),
                r.num("max_rps_under_slo_ci_high").filter(|x| x.is_finite()),
            ) {
                (Some(lo), Some(hi)) => format!(
                    " (95% CI {lo:.0}-{hi:.0}, {} seeds)",
                    r.num("seeds").unwrap_or(0.0)
                ),
                _ => String::new(),
            };
            let speedup = r
                .num("speedup")
                .filter(|s| s.is_finite())
                .map(|s| format!(", speedup {s:.2}x"))
                .unwrap_or_default();
            println!(
                "  {}: max {:.0} rps{interval} under p99 {} µs{speedup}",
                key.join(" "),
                r.num("max_rps_under_slo").unwrap_or(0.0),
                sweep.spec.slo_p99_us
            );
        }
    }
    Ok(())
}

/// The figures: every sweep file in `dir`, by name, sorted.
pub fn figures(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "json") {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                out.push((stem.to_string(), p.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn reproduce(
    figure: &str,
    quick: bool,
    sweeps: &Path,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let all = figures(sweeps)?;
    let chosen: Vec<&(String, PathBuf)> = if figure == "all" {
        all.iter().collect()
    } else {
        let f = all.iter().find(|(n, _)| n == figure).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown figure {figure:?}; known: all, {}",
                all.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        vec![f]
    };
    // Quick results go beside, not over, the committed full results.
    let root = out.map(Path::to_path_buf).unwrap_or_else(|| {
        if quick {
            PathBuf::from("results/quick")
        } else {
            PathBuf::from("results")
        }
    });
    let mut total = 0.0;
    for (name, file) in chosen {
        let command = format!(
            "cargo run --release -- reproduce {name}{}{}",
            if quick { " --quick" } else { "" },
            out.map(|o| format!(" --out {}", o.display()))
                .unwrap_or_default()
        );
        total += sweep(file, quick, &root.join(name), &command)?;
    }
    println!(
        "reproduce {figure}{}: {total:.1} s wall",
        if quick { " --quick" } else { "" }
    );
    Ok(())
}
