//! `merge` of `check --shard` folders: their report.json files add up to the report of the
//! whole seed range (the same fields and values as one unsharded run, apart from wall time
//! and where it ran), failures.txt lines are merged in seed order, and the failing seeds'
//! scenarios are copied beside them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

fn report_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("report.json")
    } else {
        p.to_path_buf()
    }
}

fn read_report(p: &Path) -> Option<Value> {
    let v: Value = serde_json::from_slice(&fs::read(report_path(p)).ok()?).ok()?;
    (v["format"] == super::CHECK_REPORT_FORMAT).then_some(v)
}

/// Whether every path is a check report or a folder holding one.
pub fn all_check_reports(paths: &[PathBuf]) -> bool {
    !paths.is_empty() && paths.iter().all(|p| read_report(p).is_some())
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn seeds(v: &Value, k: &str) -> Vec<u64> {
    v[k].as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

pub fn merge_check(paths: &[PathBuf], out: &Path) -> anyhow::Result<u8> {
    let mut reports: Vec<(PathBuf, Value)> = Vec::new();
    for p in paths {
        let v = read_report(p)
            .ok_or_else(|| anyhow::anyhow!("{}: not a check report", report_path(p).display()))?;
        reports.push((p.clone(), v));
    }
    // The shards must tile one range, from one binary, profile and canary.
    let range_of = |(p, v): &(PathBuf, Value)| -> anyhow::Result<(u64, u64)> {
        v["seeds"]
            .as_str()
            .and_then(parse_range)
            .ok_or_else(|| anyhow::anyhow!("{}: bad seeds", p.display()))
    };
    reports.sort_by_key(|r| range_of(r).map(|x| x.0).unwrap_or(0));
    let (first_path, first) = &reports[0];
    for (p, v) in &reports[1..] {
        for k in ["profile", "canary", "revision"] {
            anyhow::ensure!(
                v[k] == first[k],
                "{} and {}: different {k} ({} vs {})",
                first_path.display(),
                p.display(),
                first[k],
                v[k]
            );
        }
    }
    let mut ranges = Vec::new();
    for r in &reports {
        ranges.push(range_of(r)?);
    }
    for w in ranges.windows(2) {
        anyhow::ensure!(
            w[0].1 == w[1].0,
            "the shards do not tile one range: {}..{} then {}..{}",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
    let whole = (ranges[0].0, ranges[ranges.len() - 1].1);
    let sum = |k: &str| -> u64 {
        reports
            .iter()
            .map(|(_, v)| v[k].as_u64().unwrap_or(0))
            .sum()
    };
    let cat = |k: &str| -> Vec<u64> {
        let mut all: Vec<u64> = reports.iter().flat_map(|(_, v)| seeds(v, k)).collect();
        all.sort_unstable();
        all
    };
    let mut finished_ranges: Vec<(u64, u64)> = Vec::new();
    for (_, v) in &reports {
        for r in v["finished_ranges"].as_array().into_iter().flatten() {
            let (a, b) = (r[0].as_u64().unwrap_or(0), r[1].as_u64().unwrap_or(0));
            match finished_ranges.last_mut() {
                Some((_, end)) if *end == a => *end = b,
                _ => finished_ranges.push((a, b)),
            }
        }
    }
    let stopped = reports.iter().any(|(_, v)| v["stopped_by_signal"] == true);
    let (safety, liveness, crashes) = (
        cat("safety_violations"),
        cat("liveness_failures"),
        cat("crashes"),
    );
    let simulated_ns = sum("simulated_ns");
    let code = super::check_exit_code(
        crashes.len(),
        safety.len(),
        liveness.len(),
        stopped,
        !first["canary"].is_null(),
    );
    let (argv, cwd) = super::invocation();
    let wall_s: f64 = reports
        .iter()
        .map(|(_, v)| v["wall_s"].as_f64().unwrap_or(0.0))
        .sum();
    let report = json!({
        "argv": argv,
        "working_directory": cwd,
        "format": super::CHECK_REPORT_FORMAT,
        "revision": first["revision"],
        "toolchain": first["toolchain"],
        "shard": Value::Null,
        "merged_from": reports.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
        "seeds": format!("{}..{}", whole.0, whole.1),
        "profile": first["profile"],
        "canary": first["canary"],
        "finished": sum("finished"),
        "finished_ranges": finished_ranges,
        "stopped_by_signal": stopped,
        "safety_violations": safety,
        "liveness_failures": liveness,
        "crashes": crashes,
        "undecided": sum("undecided"),
        "behind_compaction": sum("behind_compaction"),
        "simulated_ns": simulated_ns,
        "simulated_s": simulated_ns as f64 / 1e9,
        "wall_s": wall_s,
        "exit_code": code,
    });
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // failures.txt: every shard's lines, in seed order; the scenarios beside them.
    let mut lines: Vec<(u64, String)> = Vec::new();
    for (p, _) in &reports {
        let dir = if p.is_dir() {
            p.clone()
        } else {
            p.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        if let Ok(text) = fs::read_to_string(dir.join("failures.txt")) {
            for l in text.lines() {
                let seed = l
                    .split(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                lines.push((seed, format!("{l}\n")));
            }
        }
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("seed-") && name.ends_with(".json") {
                fs::copy(e.path(), out.join(&name))
                    .with_context(|| format!("copying {}", e.path().display()))?;
            }
        }
    }
    lines.sort_by_key(|(s, _)| *s);
    if !lines.is_empty() {
        let f = out.join("failures.txt");
        fs::write(&f, lines.into_iter().map(|(_, l)| l).collect::<String>())
            .with_context(|| format!("writing {}", f.display()))?;
    }
    let f = out.join("report.json");
    fs::write(&f, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", f.display()))?;
    println!("report: {}", f.display());
    println!(
        "merged {} shards: seeds {} safety_violations {} liveness_failures {} crashes {} undecided {} behind_compaction {}",
        reports.len(),
        report["finished"],
        report["safety_violations"].as_array().map_or(0, Vec::len),
        report["liveness_failures"].as_array().map_or(0, Vec::len),
        report["crashes"].as_array().map_or(0, Vec::len),
        report["undecided"],
        report["behind_compaction"]
    );
    Ok(code)
}
