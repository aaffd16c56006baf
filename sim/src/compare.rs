//! `hovercraft-sim compare A B`: two `summary.json` files side by side — typically a
//! simulator run and a real-runtime run (`hovercraft-loadgen`) of the same workload. Both
//! write the same field names for throughput and latency; replies per replica come from
//! `per_node[i].protocol.replies_sent` (simulator) or `per_replica_replies` (runtime).

use serde_json::Value;

/// The rows printed: label and JSON pointer.
const ROWS: [(&str, &str); 14] = [
    ("scenario", "/scenario"),
    ("mode", "/mode"),
    ("nodes", "/nodes"),
    ("offered_rps", "/offered_rps"),
    ("completed_rps", "/completed_rps"),
    ("dropped", "/dropped"),
    ("timed_out", "/timed_out"),
    ("measured_requests", "/measured_requests"),
    ("latency p50 (us)", "/latency_us/p50"),
    ("latency p90 (us)", "/latency_us/p90"),
    ("latency p99 (us)", "/latency_us/p99"),
    ("latency p99.9 (us)", "/latency_us/p999"),
    ("latency max (us)", "/latency_us/max"),
    ("latency mean (us)", "/latency_us/mean"),
];

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Some(v) => v.to_string(),
    }
}

/// Replies sent by each replica, from either summary shape.
fn replies(s: &Value) -> Option<Vec<u64>> {
    if let Some(a) = s["per_replica_replies"].as_array() {
        return a.iter().map(Value::as_u64).collect();
    }
    s["per_node"]
        .as_array()?
        .iter()
        .map(|n| n["protocol"]["replies_sent"].as_u64())
        .collect()
}

/// Whether `v` has the fields every summary has (a scenario or sweep file has none of
/// them): `Err` names the first one missing.
pub fn is_summary(v: &Value) -> Result<(), String> {
    for ptr in [
        "/mode",
        "/nodes",
        "/completed_rps",
        "/measured_requests",
        "/latency_us/p50",
        "/latency_us/p99",
    ] {
        if v.pointer(ptr).is_none() {
            return Err(format!("no field {}", &ptr[1..].replace('/', ".")));
        }
    }
    Ok(())
}

/// The side-by-side table, with B/A ratios for numbers.
pub fn compare(a_name: &str, a: &Value, b_name: &str, b: &Value) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        String::new(),
        a_name.to_string(),
        b_name.to_string(),
        "B/A".into(),
    ]];
    for (label, ptr) in ROWS {
        let (x, y) = (a.pointer(ptr), b.pointer(ptr));
        let ratio = match (x.and_then(Value::as_f64), y.and_then(Value::as_f64)) {
            (Some(x), Some(y)) if x != 0.0 => format!("{:.2}", y / x),
            _ => String::new(),
        };
        rows.push([label.to_string(), cell(x), cell(y), ratio]);
    }
    let fmt = |r: Option<Vec<u64>>| r.map_or("-".to_string(), |v| format!("{v:?}"));
    rows.push([
        "replies per replica".into(),
        fmt(replies(a)),
        fmt(replies(b)),
        String::new(),
    ]);
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_with_ratios_and_both_reply_shapes() {
        let sim = serde_json::json!({"scenario": "hovercraft-3", "mode": "hovercraft", "nodes": 3,
            "offered_rps": 1000.0, "completed_rps": 1000.0, "dropped": 0, "timed_out": 0,
            "latency_us": {"p50": 20.0, "p90": 25.0, "p99": 40.5, "p999": 60.0, "max": 70.0, "mean": 21.0},
            "per_node": [{"protocol": {"replies_sent": 3}}, {"protocol": {"replies_sent": 4}}]});
        let rt = serde_json::json!({"scenario": "netns-3", "mode": "hovercraft", "nodes": 3,
            "offered_rps": 1000.0, "completed_rps": 990.0, "dropped": 1, "timed_out": 1,
            "latency_us": {"p50": 200.0, "p90": 250.0, "p99": 405.0, "p999": 600.0, "max": 700.0, "mean": 210.0},
            "per_replica_replies": [5, 6, 7]});
        let t = compare("sim", &sim, "runtime", &rt);
        assert!(t.contains("latency p99 (us)"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("latency p50 (us)") && l.ends_with("10.00")),
            "{t}"
        );
        assert!(t.contains("[3, 4]") && t.contains("[5, 6, 7]"), "{t}");
        assert!(t
            .lines()
            .any(|l| l.starts_with("measured_requests") && l.contains('-')));
    }
}
