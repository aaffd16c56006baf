//! The `sweep` and `reproduce` subcommands: run sweep files, write their tables, figure and
//! manifest. (Wall time is measured here, in the binary, never in the library.)

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use hovercraft_sim::sweep::{plot, table, LoadedSweep, PlotData, Progress};

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
    if !result.slo.is_empty() {
        for r in &result.slo {
            let key: Vec<String> = r
                .cells
                .iter()
                .filter(|(c, _)| c != "figure")
                .take_while(|(c, _)| c != "max_rps_under_slo")
                .map(|(c, v)| format!("{c}={}", v.label()))
                .collect();
            let speedup = r
                .num("speedup")
                .filter(|s| s.is_finite())
                .map(|s| format!(", speedup {s:.2}x"))
                .unwrap_or_default();
            println!(
                "  {}: max {:.0} rps under p99 {} µs{speedup}",
                key.join(" "),
                r.num("max_rps_under_slo").unwrap_or(0.0),
                sweep.spec.slo_p99_us
            );
        }
    }
    Ok(wall_s)
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
