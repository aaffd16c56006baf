//! Sweeps and figure reproduction: determinism of the tables, the SLO search against the
//! arithmetic capacity, and errors that name the sweep file and field.

use std::path::{Path, PathBuf};
use std::process::Command;

use hovercraft_sim::sweep::{table, LoadedSweep, PlotData, Quiet};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hovercraft-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn repo_file(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

/// Writes a sweep file whose base is the repository's synthetic base scenario.
fn sweep_file(dir: &Path, body: serde_json::Value) -> PathBuf {
    let mut v = body;
    v["base"] = serde_json::Value::String(
        repo_file("scenarios/sweeps/base/synthetic.json")
            .display()
            .to_string(),
    );
    let f = dir.join("sweep.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    f
}

fn small_sweep() -> serde_json::Value {
    serde_json::json!({
        "name": "t", "title": "t",
        "set": { "duration_ms": 20, "warmup_ms": 5 },
        "systems": [
            { "label": "unreplicated", "set": { "mode": "unreplicated", "nodes": 1 } },
            { "label": "hovercraft", "set": { "mode": "hovercraft" } }
        ],
        "axes": [ { "field": "nodes", "column": "cluster_nodes", "values": [3, 5] } ],
        "load": { "kind": "grid", "rates_rps": [20000, 60000, 150000] },
        "baseline": "unreplicated",
        "plot": { "x": "completed_rps", "y": ["p99_us"] }
    })
}

#[test]
fn a_sweep_gives_identical_tables_twice_and_runs_duplicates_once() {
    let d = tmp("det");
    let f = sweep_file(&d, small_sweep());
    let s = LoadedSweep::load(&f, false).unwrap();
    let a = s.run(&Quiet).unwrap();
    let b = s.run(&Quiet).unwrap();
    assert_eq!(table::to_csv(&a.runs), table::to_csv(&b.runs));
    assert_eq!(table::to_csv(&a.slo), table::to_csv(&b.slo));
    // The columns a plot may name are exactly the columns written.
    let header = |rows: &[table::Row]| {
        let mut cols: Vec<String> = Vec::new();
        for r in rows {
            for (c, _) in &r.cells {
                if !cols.contains(c) {
                    cols.push(c.clone());
                }
            }
        }
        cols.sort();
        cols
    };
    let declared = |d| {
        let mut c = s.table_columns(d);
        c.sort();
        c
    };
    assert_eq!(header(&a.runs), declared(PlotData::Runs));
    assert_eq!(header(&a.slo), declared(PlotData::Slo));
    // 2 systems × 2 sizes × 3 rates = 12 rows, but unreplicated ignores the size: 9 runs.
    assert_eq!(a.runs.len(), 12);
    assert_eq!(a.simulations, 9);
    // The baseline's speedup over itself is 1; hovercraft beats it at both sizes.
    for r in &a.slo {
        let sys = r.get("system").unwrap().label();
        let speedup = r.num("speedup").unwrap();
        if sys == "unreplicated" {
            assert_eq!(speedup, 1.0);
        } else {
            assert!(speedup > 1.5, "{sys}: {speedup}");
        }
    }
}

/// Unreplicated, 10 µs service, application on its own core that also sends the replies
/// (300 ns each): capacity 1 / 10.3 µs = 97.1k req/s. The SLO search must land just under
/// it — within the 3% bracket plus the queueing a 500 µs p99 allows near saturation.
#[test]
fn slo_search_lands_just_under_the_arithmetic_capacity() {
    let d = tmp("slo");
    let f = sweep_file(
        &d,
        serde_json::json!({
            "name": "t", "title": "t",
            "systems": [ { "label": "unreplicated", "set": { "mode": "unreplicated", "nodes": 1 } } ],
            "load": { "kind": "slo", "start_rps": 20000, "max_rps": 1000000, "precision": 0.02 },
            "plot": { "data": "slo", "x": "system", "y": ["max_rps_under_slo"] }
        }),
    );
    let r = LoadedSweep::load(&f, false).unwrap().run(&Quiet).unwrap();
    let max = r.slo[0].num("max_rps_under_slo").unwrap();
    let capacity = 1e9 / 10_300.0;
    assert!(
        max <= capacity * 1.01 && max >= capacity * 0.85,
        "max under SLO {max:.0} vs capacity {capacity:.0}"
    );
    // Bracketing: about log2(1M/20k) + log2(1/0.02) runs, not a grid.
    assert!(r.runs.len() <= 14, "{} runs", r.runs.len());
}

#[test]
fn bad_sweep_files_name_the_file_and_field() {
    let d = tmp("bad");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"bogus": 1}), "bogus"),
        (serde_json::json!({"systems": []}), "systems"),
        (
            serde_json::json!({"axes": [{"field": "nodes.x", "values": [1]}]}),
            "nodes.x",
        ),
        (
            serde_json::json!({"systems": [{"label": "x", "set": {"nodes": 0}}], "baseline": null}),
            "nodes",
        ),
        (
            serde_json::json!({"load": {"kind": "slo", "start_rps": 10, "max_rps": 5}}),
            "load",
        ),
        (serde_json::json!({"baseline": "nope"}), "baseline"),
        // A typo in a plot column fails before anything runs (it once gave an empty figure).
        (
            serde_json::json!({"plot": {"x": "completed_rps", "y": ["p99"]}}),
            "no column \"p99\"",
        ),
        (
            serde_json::json!({"plot": {"x": "rate", "y": ["p99_us"]}}),
            "plot.x",
        ),
        (
            serde_json::json!({"plot": {"data": "slo", "x": "system", "y": ["p50_us"]}}),
            "slo.csv",
        ),
    ];
    for (patch, needle) in cases {
        let mut v = small_sweep();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        let f = sweep_file(&d, v);
        let err = LoadedSweep::load(&f, false)
            .and_then(|s| s.check().map(|_| s))
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("sweep.json"), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

/// The command a manifest names regenerates byte-identical tables; the figure files exist.
#[test]
fn reproduce_quick_writes_the_figure_folder_and_is_repeatable() {
    let d = tmp("repro");
    let run = |out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_hovercraft-sim"))
            .current_dir(repo_file(""))
            .args(["reproduce", "fig-leader-cost", "--quick", "--out"])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&d.join("a"));
    run(&d.join("b"));
    let fig = |x: &str, f: &str| d.join(x).join("fig-leader-cost").join(f);
    for f in [
        "data.csv",
        "manifest.json",
        "fig-leader-cost.png",
        "fig-leader-cost.svg",
    ] {
        assert!(fig("a", f).exists(), "{f} missing");
    }
    assert_eq!(
        std::fs::read(fig("a", "data.csv")).unwrap(),
        std::fs::read(fig("b", "data.csv")).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fig("a", "manifest.json")).unwrap()).unwrap();
    assert!(manifest["command"]
        .as_str()
        .unwrap()
        .contains("reproduce fig-leader-cost --quick"));
    assert!(manifest["git_revision"].is_string());
    // An unknown figure is a one-line error listing the known ones.
    let o = Command::new(env!("CARGO_BIN_EXE_hovercraft-sim"))
        .current_dir(repo_file(""))
        .args(["reproduce", "fig-nope", "--quick", "--out"])
        .arg(d.join("c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fig-leader-cost"), "{err}");
}

/// `seeds: 3` runs every point with three seeds, keeps one row per seed, and aggregates:
/// the mean of the per-seed SLO maxima with a 95% interval around it, speedups paired by
/// seed (the baseline's is exactly 1 for every seed).
#[test]
fn seeds_run_every_point_and_aggregate_with_an_interval() {
    let d = tmp("seeds");
    let mut v = small_sweep();
    v["seeds"] = serde_json::json!(3);
    v["load"] = serde_json::json!({ "kind": "grid", "rates_rps": [20000, 150000] });
    let f = sweep_file(&d, v);
    let s = LoadedSweep::load(&f, false).unwrap();
    let r = s.run(&Quiet).unwrap();
    // 2 systems × 2 sizes × 2 rates × 3 seeds.
    assert_eq!(r.runs.len(), 24);
    assert_eq!(r.seeds.len(), 3);
    assert_eq!(r.slo.len(), 12);
    for row in &r.slo {
        if row.get("system").unwrap().label() == "unreplicated" {
            assert_eq!(row.num("speedup"), Some(1.0));
        }
    }
    assert_eq!(r.slo_agg.len(), 4);
    assert_eq!(r.runs_agg.len(), 8);
    for a in &r.slo_agg {
        assert_eq!(a.num("seeds"), Some(3.0));
        let sys = a.get("system").unwrap().label();
        let nodes = a.num("cluster_nodes").unwrap();
        let per_seed: Vec<f64> = r
            .slo
            .iter()
            .filter(|x| {
                x.get("system").unwrap().label() == sys && x.num("cluster_nodes") == Some(nodes)
            })
            .map(|x| x.num("max_rps_under_slo").unwrap())
            .collect();
        assert_eq!(per_seed.len(), 3);
        let mean = per_seed.iter().sum::<f64>() / 3.0;
        let m = a.num("max_rps_under_slo").unwrap();
        assert!((m - mean).abs() < 0.001, "{sys} {nodes}: {m} vs {mean}");
        let (lo, hi) = (
            a.num("max_rps_under_slo_ci_low").unwrap(),
            a.num("max_rps_under_slo_ci_high").unwrap(),
        );
        assert!(lo <= m && m <= hi, "{lo} {m} {hi}");
    }
    // The plot's columns are checked against the aggregated table.
    let declared = s.table_columns(PlotData::Slo);
    for row in &r.slo_agg {
        for (c, _) in &row.cells {
            assert!(declared.contains(c), "undeclared column {c}");
        }
    }
    // One seed: no aggregated tables, nothing changes.
    let one = LoadedSweep::load(&sweep_file(&d, small_sweep()), false)
        .unwrap()
        .run(&Quiet)
        .unwrap();
    assert!(one.slo_agg.is_empty() && one.runs_agg.is_empty());
}
