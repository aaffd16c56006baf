//! Every scenario shipped in `scenarios/` parses, validates and runs briefly.

use std::path::Path;

#[test]
fn every_shipped_scenario_loads_and_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let mut s = hovercraft_sim::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // A short run: this checks wiring, not results.
        s.duration_ms = s.duration_ms.min(5);
        s.warmup_ms = s.warmup_ms.min(1);
        let summary = hovercraft_sim::World::new(s).run().unwrap();
        assert!(summary.completed_rps > 0.0, "{}", path.display());
        n += 1;
    }
    assert!(n >= 4, "found {n} scenarios");
}
