//! Sweep files: a base scenario, the systems to compare, the axes to vary and how to load
//! them. The schema is documented in `scenarios/sweeps/README.md`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::scenario::ScenarioError;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Names the figure; results go to `results/<name>/`.
    pub name: String,
    /// Plot title.
    pub title: String,
    /// The base scenario file, relative to the sweep file.
    pub base: PathBuf,
    /// Overrides applied to the base for every run: dotted field paths to JSON values.
    #[serde(default)]
    pub set: Map<String, Value>,
    /// The systems compared (one curve each), each a label and its overrides.
    pub systems: Vec<SystemSpec>,
    /// Axes varied for every system (their cartesian product).
    #[serde(default)]
    pub axes: Vec<AxisSpec>,
    /// How each configuration is loaded.
    pub load: LoadSpec,
    /// The p99 objective, in µs, for the SLO columns and searches.
    #[serde(default = "default_slo_p99_us")]
    pub slo_p99_us: f64,
    /// A run meets the SLO only if at most this share of its requests went unanswered
    /// (dropped or timed out). Default 0.01.
    #[serde(default = "default_max_lost_fraction")]
    pub max_lost_fraction: f64,
    /// A system label: the SLO table gets a `speedup` column relative to it.
    #[serde(default)]
    pub baseline: Option<String>,
    pub plot: PlotSpec,
    /// Runs of every point, each with its own seed: the scenario's seed + 0, 1, ... With
    /// more than one, every table gets a `seed` column (one row per seed) and a `*_agg.csv`
    /// twin with the mean, median and 95% interval over seeds, which the plot draws.
    #[serde(default = "one_seed")]
    pub seeds: u32,
    /// A JSON merge patch (RFC 7386) applied to this file with `--quick`: smaller grids and
    /// shorter runs for CI.
    #[serde(default)]
    pub quick: Option<Value>,
}

fn one_seed() -> u32 {
    1
}

fn default_slo_p99_us() -> f64 {
    500.0
}

fn default_max_lost_fraction() -> f64 {
    0.01
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    pub label: String,
    #[serde(default)]
    pub set: Map<String, Value>,
}

/// An axis: either one field and its values, or named cases that each set several fields
/// (e.g. a workload: service time and read-only share together).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// Dotted path of the scenario field this axis sets, e.g. `workload.reply_bytes`.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub values: Vec<Value>,
    /// Instead of `field`/`values`: labelled cases, each with its overrides.
    #[serde(default)]
    pub cases: Vec<SystemSpec>,
    /// Column name in the tables [default: the field's last segment; required with cases].
    #[serde(default)]
    pub column: Option<String>,
}

impl AxisSpec {
    pub fn column(&self) -> String {
        self.column.clone().unwrap_or_else(|| {
            let f = self.field.as_deref().unwrap_or("");
            f.rsplit('.').next().unwrap_or("").to_string()
        })
    }

    /// The axis' points: the value shown in the tables and the overrides it makes.
    pub fn points(&self) -> Vec<(Value, Vec<(String, Value)>)> {
        match &self.field {
            Some(f) => self
                .values
                .iter()
                .map(|v| (v.clone(), vec![(f.clone(), v.clone())]))
                .collect(),
            None => self
                .cases
                .iter()
                .map(|c| {
                    let sets = c.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    (Value::String(c.label.clone()), sets)
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoadSpec {
    /// One run per configuration at the scenario's own rate.
    Fixed,
    /// One run per configuration and offered rate (requests per second).
    Grid { rates_rps: Vec<f64> },
    /// For each configuration, the highest offered rate that meets the SLO, found by
    /// doubling from `start_rps` until a run fails (or `max_rps`), then bisecting until the
    /// bracket is within `precision` (relative).
    Slo {
        start_rps: f64,
        max_rps: f64,
        #[serde(default = "default_min_rps")]
        min_rps: f64,
        #[serde(default = "default_precision")]
        precision: f64,
    },
}

fn default_min_rps() -> f64 {
    1000.0
}

fn default_precision() -> f64 {
    0.03
}

/// Which table a plot draws from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotData {
    /// `data.csv`: one row per run.
    #[default]
    Runs,
    /// `slo.csv`: one row per configuration, its best rate under the SLO.
    Slo,
    /// `timeline.csv`: one row per run and time bucket.
    Timeline,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    #[serde(default)]
    pub data: PlotData,
    /// Column on the x axis.
    pub x: String,
    /// Columns on the y axis: one panel each.
    pub y: Vec<String>,
    /// Columns whose values name a curve [default: `system`].
    #[serde(default = "default_series")]
    pub series: Vec<String>,
    /// A column: one panel per value (times each y).
    #[serde(default)]
    pub panel_by: Option<String>,
    #[serde(default)]
    pub x_log: bool,
    #[serde(default)]
    pub y_log: bool,
    /// y columns drawn on a log axis even when `y_log` is off (e.g. latency beside
    /// throughput).
    #[serde(default)]
    pub y_log_columns: Vec<String>,
    /// Where the legend goes: upper_left (default), upper_right, lower_left, lower_right,
    /// middle_right.
    #[serde(default)]
    pub legend: LegendPosition,
    /// Points with a y above this are left out (a saturated run's latency is unbounded).
    #[serde(default)]
    pub y_max: Option<f64>,
    /// Only rows whose `slo_max` is 1 (for grids: the best point under the SLO).
    #[serde(default)]
    pub only_rows_meeting_slo: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegendPosition {
    #[default]
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
    MiddleRight,
}

fn default_series() -> Vec<String> {
    vec!["system".to_string()]
}

/// A sweep file, read and checked, with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedSweep {
    pub file: PathBuf,
    pub spec: SweepSpec,
    /// The base scenario as JSON (before any override).
    pub base: Value,
    pub quick: bool,
}

fn err(file: &Path, field: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError {
        file: file.display().to_string(),
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl LoadedSweep {
    /// Reads a sweep file (applying its `quick` patch when asked) and its base scenario.
    pub fn load(file: &Path, quick: bool) -> Result<LoadedSweep, ScenarioError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| err(file, "", format!("cannot read: {e}")))?;
        let mut value: Value = serde_json::from_str(&text)
            .map_err(|e| err(file, "", format!("not valid JSON: {e}")))?;
        if quick {
            if let Some(patch) = value.get("quick").cloned() {
                merge_patch(&mut value, &patch);
            }
        }
        let spec: SweepSpec = serde_path_to_error::deserialize(&value).map_err(|e| {
            err(
                file,
                &e.path().to_string(),
                e.inner().to_string().replace('\n', " "),
            )
        })?;
        spec.validate().map_err(|(f, r)| err(file, &f, r))?;
        let base_path = file.parent().unwrap_or(Path::new(".")).join(&spec.base);
        let base_text = std::fs::read_to_string(&base_path).map_err(|e| {
            err(
                file,
                "base",
                format!("cannot read {}: {e}", base_path.display()),
            )
        })?;
        let base: Value = serde_json::from_str(&base_text)
            .map_err(|e| err(&base_path, "", format!("not valid JSON: {e}")))?;
        Ok(LoadedSweep {
            file: file.to_path_buf(),
            spec,
            base,
            quick,
        })
    }
}

impl SweepSpec {
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, r: String| Err((f.to_string(), r));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(
                "name",
                format!(
                    "must be letters, digits, '-', '_', '.' (got {:?})",
                    self.name
                ),
            );
        }
        if self.systems.is_empty() {
            return bad("systems", "at least one system".into());
        }
        for (i, s) in self.systems.iter().enumerate() {
            if self.systems[..i].iter().any(|o| o.label == s.label) {
                return bad("systems", format!("label {:?} used twice", s.label));
            }
        }
        for (i, a) in self.axes.iter().enumerate() {
            match (&a.field, a.values.is_empty(), a.cases.is_empty()) {
                (Some(_), false, true) => {}
                (None, true, false) if a.column.is_some() => {}
                (None, true, false) => {
                    return bad(&format!("axes[{i}].column"), "required with cases".into())
                }
                _ => {
                    return bad(
                        &format!("axes[{i}]"),
                        "give either `field` with non-empty `values`, or non-empty `cases`".into(),
                    )
                }
            }
        }
        if !(self.slo_p99_us.is_finite() && self.slo_p99_us > 0.0) {
            return bad(
                "slo_p99_us",
                format!("must be positive (got {})", self.slo_p99_us),
            );
        }
        if !(0.0..=1.0).contains(&self.max_lost_fraction) {
            return bad(
                "max_lost_fraction",
                format!("must be in 0..=1 (got {})", self.max_lost_fraction),
            );
        }
        if let Some(b) = &self.baseline {
            if !self.systems.iter().any(|s| &s.label == b) {
                return bad("baseline", format!("{b:?} is not a system label"));
            }
        }
        match &self.load {
            LoadSpec::Fixed => {}
            LoadSpec::Grid { rates_rps } => {
                if rates_rps.is_empty() || rates_rps.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
                    return bad("load.rates_rps", "positive rates, at least one".into());
                }
            }
            LoadSpec::Slo {
                start_rps,
                max_rps,
                min_rps,
                precision,
            } => {
                if !(*min_rps > 0.0 && min_rps <= start_rps && start_rps <= max_rps) {
                    return bad(
                        "load",
                        format!("need 0 < min_rps ≤ start_rps ≤ max_rps (got {min_rps}, {start_rps}, {max_rps})"),
                    );
                }
                if !(*precision > 0.0 && *precision < 1.0) {
                    return bad(
                        "load.precision",
                        format!("must be in (0, 1) (got {precision})"),
                    );
                }
            }
        }
        if !(1..=1000).contains(&self.seeds) {
            return bad("seeds", format!("must be 1 to 1000 (got {})", self.seeds));
        }
        if self.plot.y.is_empty() {
            return bad("plot.y", "at least one column".into());
        }
        Ok(())
    }
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else
/// replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("just made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Sets a dotted field path (`workload.rate_rps`) in a JSON object, creating objects on the
/// way; fails if the path runs through something that is not an object.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(format!("field path {path:?} has an empty segment"));
        }
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| format!("field path {path:?}: {part:?} is inside a non-object"))?;
        if parts.peek().is_none() {
            obj.insert(part.to_string(), value);
            return Ok(());
        }
        cur = obj
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Err(format!("field path {path:?} is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        merge_patch(
            &mut v,
            &json!({"b": {"c": null, "x": 4}, "e": [9], "f": "new"}),
        );
        assert_eq!(
            v,
            json!({"a": 1, "b": {"d": 3, "x": 4}, "e": [9], "f": "new"})
        );
    }

    #[test]
    fn set_path_creates_and_refuses() {
        let mut v = json!({"workload": {"rate_rps": 1}, "nodes": 3});
        set_path(&mut v, "workload.rate_rps", json!(5)).unwrap();
        set_path(&mut v, "raft.replier_policy", json!("least_loaded")).unwrap();
        assert_eq!(v["workload"]["rate_rps"], json!(5));
        assert_eq!(v["raft"]["replier_policy"], json!("least_loaded"));
        assert!(set_path(&mut v, "nodes.x", json!(1)).is_err());
        assert!(set_path(&mut v, "a..b", json!(1)).is_err());
    }
}
