//! What `hovercraft-loadgen --scenario FILE` takes from a simulator scenario file: the mode
//! (to warn when it differs from the cluster's), the duration, the warm-up and the
//! `workload` section, so a simulated and a real run measure the same load over the same
//! window. The other sections (network, cpu, clients, faults, …) model the simulated
//! datacenter: they are ignored here and checked by the simulator, which the runtime does
//! not depend on (DESIGN.md §2).

use std::path::Path;

use hovercraft_core::node::Mode;
use hovercraft_core::workload::{WorkloadConfig, SCENARIO_FIELDS};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct ScenarioLoad {
    pub mode: Mode,
    /// Time during which the load generator sends, in ms.
    pub duration_ms: u64,
    /// Requests sent before this time are not measured, in ms.
    #[serde(default)]
    pub warmup_ms: u64,
    pub workload: WorkloadConfig,
}

/// A scenario that could not be read, worded as the simulator words it.
pub use hovercraft_core::workload::ScenarioError;

impl ScenarioLoad {
    pub fn load(path: &Path) -> Result<ScenarioLoad, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            field: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_json(&file, &text)
    }

    /// Parses scenario JSON and checks the fields taken; `file` names the source in errors.
    pub fn from_json(file: &str, text: &str) -> Result<ScenarioLoad, ScenarioError> {
        let error = |field: String, reason: String| ScenarioError {
            file: file.to_string(),
            field,
            reason,
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let s: ScenarioLoad = serde_path_to_error::deserialize(de).map_err(|e| {
            let reason = e.inner().to_string();
            error(
                e.path().to_string(),
                reason.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })?;
        // The sections not taken here are the simulator's, but a name that is none of them is
        // a typo the simulator would refuse too.
        if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) {
            if let Some(k) = fields
                .keys()
                .find(|k| !SCENARIO_FIELDS.contains(&k.as_str()))
            {
                return Err(error(
                    k.clone(),
                    format!(
                        "unknown field, expected one of {}",
                        SCENARIO_FIELDS.join(", ")
                    ),
                ));
            }
        }
        s.validate().map_err(|(f, r)| error(f.to_string(), r))?;
        Ok(s)
    }

    /// The simulator's checks of the fields taken.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.duration_ms == 0 {
            return Err(("duration_ms", "must be at least 1 ms".into()));
        }
        if self.duration_ms > 3_600_000 {
            return Err(("duration_ms", "at most one simulated hour".into()));
        }
        if self.warmup_ms >= self.duration_ms {
            return Err((
                "warmup_ms",
                format!(
                    "must be less than duration_ms ({} >= {})",
                    self.warmup_ms, self.duration_ms
                ),
            ));
        }
        self.workload.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_yields_its_workload() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/runtime");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let s = ScenarioLoad::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(s.warmup_ms < s.duration_ms);
                n += 1;
            }
        }
        assert!(n > 0, "scenarios/runtime holds scenario files");
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = ScenarioLoad::from_json(
            "s.json",
            r#"{"mode": "raft", "duration_ms": 10, "workload": {"rate_rps": -1}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s.json: field `workload.rate_rps`: "),
            "{e}"
        );
        let e = ScenarioLoad::from_json(
            "s.json",
            r#"{"mode": "raft", "duration_ms": 10, "workload": {"rate_rps": 1, "x": 1}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("s.json: field `workload.x`: "),
            "{e}"
        );
        let e = ScenarioLoad::from_json(
            "s.json",
            r#"{"mode": "raft", "duration_ms": 10, "workload": {"rate_rps": 1}, "netwrok": {}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s.json: field `netwrok`: unknown field"),
            "{e}"
        );
    }
}
