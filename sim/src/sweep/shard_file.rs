//! A shard's partial result on disk (`sweep --shard k/n` writes it, `merge` reads it): JSON
//! lines, a header then one line per configuration. Numbers are written as their shortest
//! round-trip text and parsed back exactly, so merged tables are the same bytes as a whole
//! run's.

use serde_json::{json, Map, Value};

use super::table::{Cell, Row};
use super::{ConfigRows, Shard, ShardResult};

/// First line's `format`.
pub const FORMAT: &str = "hovercraft-sweep-shard/1";

/// FNV-1a 64 of a file's bytes: merge refuses shards of a different sweep file.
pub fn fnv64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Num(x) => json!({ "n": Cell::Num(*x).to_csv() }),
        Cell::Text(t) => json!({ "t": t }),
    }
}

fn row_json(r: &Row) -> Value {
    Value::Array(
        r.cells
            .iter()
            .map(|(c, v)| json!([c, cell_json(v)]))
            .collect(),
    )
}

fn cell_from(v: &Value) -> Result<Cell, String> {
    if let Some(n) = v.get("n").and_then(Value::as_str) {
        if n.is_empty() {
            return Ok(Cell::Num(f64::NAN));
        }
        return n
            .parse::<f64>()
            .map(Cell::Num)
            .map_err(|_| format!("bad number {n:?}"));
    }
    if let Some(t) = v.get("t").and_then(Value::as_str) {
        return Ok(Cell::Text(t.to_string()));
    }
    Err(format!("bad cell {v}"))
}

fn row_from(v: &Value) -> Result<Row, String> {
    let cells = v.as_array().ok_or("a row is not an array")?;
    let mut row = Row::default();
    for c in cells {
        let name = c
            .get(0)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("bad column {c}"))?;
        row.cells.push((name.to_string(), cell_from(&c[1])?));
    }
    Ok(row)
}

fn rows_from(v: &Value) -> Result<Vec<Row>, String> {
    v.as_array()
        .ok_or("rows are not an array")?
        .iter()
        .map(row_from)
        .collect()
}

/// The shard file's text: `header` (provenance: sweep file, its hash, quick, revision, ...)
/// gains `format`, `shard`, `configs` and `simulations`.
pub fn write(result: &ShardResult, mut header: Map<String, Value>) -> String {
    header.insert("format".into(), json!(FORMAT));
    header.insert("shard".into(), json!(result.shard.to_string()));
    header.insert("configs".into(), json!(result.configs));
    header.insert("simulations".into(), json!(result.simulations));
    let mut out = Value::Object(header).to_string();
    out.push('\n');
    for p in &result.parts {
        let line = json!({
            "index": p.index,
            "seeds": p.seeds,
            "runs": p.runs.iter().map(row_json).collect::<Vec<_>>(),
            "slo": p.slo.as_ref().map(row_json),
            "timeline": p.timeline.iter().map(row_json).collect::<Vec<_>>(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// Parses a shard file: its header and result. `Err` says which line and why.
pub fn read(text: &str) -> Result<(Map<String, Value>, ShardResult), String> {
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or("empty file")?;
    let header: Map<String, Value> = match serde_json::from_str(first) {
        Ok(Value::Object(m)) => m,
        _ => return Err("line 1: not a JSON object".into()),
    };
    if header.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(format!(
            "line 1: not a sweep shard (format must be {FORMAT:?})"
        ));
    }
    let shard: Shard = header
        .get("shard")
        .and_then(Value::as_str)
        .ok_or("line 1: no shard")?
        .parse()
        .map_err(|e| format!("line 1: shard {e}"))?;
    let num = |k: &str| -> Result<usize, String> {
        header
            .get(k)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| format!("line 1: no {k}"))
    };
    let (configs, simulations) = (num("configs")?, num("simulations")?);
    let mut parts = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let index = v["index"].as_u64().ok_or_else(|| at("no index".into()))? as usize;
        let seeds = v["seeds"]
            .as_array()
            .ok_or_else(|| at("no seeds".into()))?
            .iter()
            .map(|s| s.as_u64().ok_or_else(|| at("bad seed".into())))
            .collect::<Result<Vec<u64>, String>>()?;
        let slo = match &v["slo"] {
            Value::Null => None,
            r => Some(row_from(r).map_err(at)?),
        };
        parts.push(ConfigRows {
            index,
            runs: rows_from(&v["runs"]).map_err(at)?,
            slo,
            timeline: rows_from(&v["timeline"]).map_err(at)?,
            seeds,
        });
    }
    Ok((
        header,
        ShardResult {
            shard,
            configs,
            parts,
            simulations,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every f64 a table can hold comes back bit for bit (NaN as NaN).
        #[test]
        fn cells_round_trip_exactly(x in any::<f64>(), t in ".*") {
            let mut row = Row::default();
            row.push("x", x);
            row.push("t", t.as_str());
            let back = row_from(&row_json(&row)).unwrap();
            match (&row.cells[0].1, &back.cells[0].1) {
                (Cell::Num(a), Cell::Num(b)) if a.is_finite() => prop_assert_eq!(a.to_bits(), b.to_bits()),
                (Cell::Num(_), Cell::Num(b)) => prop_assert!(b.is_nan()),
                _ => prop_assert!(false, "number became text"),
            }
            prop_assert_eq!(&row.cells[1], &back.cells[1]);
        }
    }

    #[test]
    fn a_shard_file_reads_back() {
        let mut row = Row::default();
        row.push("system", "raft");
        row.push("p99_us", 12.5);
        let r = ShardResult {
            shard: Shard { index: 1, of: 3 },
            configs: 7,
            parts: vec![ConfigRows {
                index: 4,
                runs: vec![row.clone()],
                slo: Some(row.clone()),
                timeline: vec![],
                seeds: vec![1],
            }],
            simulations: 2,
        };
        let text = write(&r, Map::new());
        let (h, back) = read(&text).unwrap();
        assert_eq!(h["format"], FORMAT);
        assert_eq!(back, r);
        assert!(read("{}\n").unwrap_err().contains("not a sweep shard"));
    }
}
