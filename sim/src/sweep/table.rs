//! Result tables: rows of named cells, written as CSV (the format the notebooks read).

use std::fmt::Write as _;

/// One cell of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Num(f64),
    Text(String),
}

impl Cell {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Num(x) => Some(*x),
            Cell::Text(s) => s.parse().ok(),
        }
    }

    /// The cell as CSV text: numbers in their shortest round-trip form (deterministic),
    /// text quoted only when it must be.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Num(x) if x.is_finite() => format!("{x}"),
            Cell::Num(_) => String::new(),
            Cell::Text(s) if s.contains([',', '"', '\n']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Text(s) => s.clone(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Cell::Num(x) => format!("{x}"),
            Cell::Text(s) => s.clone(),
        }
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Num(x)
    }
}

impl From<u64> for Cell {
    fn from(x: u64) -> Self {
        Cell::Num(x as f64)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

/// Converts a JSON axis value into a cell (numbers stay numbers).
impl From<&serde_json::Value> for Cell {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Number(n) => Cell::Num(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Cell::Text(s.clone()),
            serde_json::Value::Bool(b) => Cell::Num(if *b { 1.0 } else { 0.0 }),
            other => Cell::Text(other.to_string()),
        }
    }
}

/// A row: cells in column order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub cells: Vec<(String, Cell)>,
}

impl Row {
    pub fn push(&mut self, column: &str, cell: impl Into<Cell>) {
        self.cells.push((column.to_string(), cell.into()));
    }

    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }

    pub fn num(&self, column: &str) -> Option<f64> {
        self.get(column).and_then(Cell::as_f64)
    }

    pub fn set(&mut self, column: &str, cell: impl Into<Cell>) {
        let cell = cell.into();
        match self.cells.iter_mut().find(|(c, _)| c == column) {
            Some((_, v)) => *v = cell,
            None => self.cells.push((column.to_string(), cell)),
        }
    }
}

/// Writes rows as CSV. The header is the union of columns in first-seen order, so rows of
/// different shapes (e.g. with and without a speedup column) still line up; a missing cell
/// is empty.
pub fn to_csv(rows: &[Row]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for r in rows {
        for (c, _) in &r.cells {
            if !columns.contains(&c.as_str()) {
                columns.push(c);
            }
        }
    }
    let mut out = columns.join(",");
    out.push('\n');
    for r in rows {
        let line: Vec<String> = columns
            .iter()
            .map(|c| r.get(c).map(Cell::to_csv).unwrap_or_default())
            .collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_unions_columns() {
        let mut a = Row::default();
        a.push("system", "raft");
        a.push("p99_us", 12.5);
        let mut b = Row::default();
        b.push("system", "a,b");
        b.push("speedup", 2.0);
        assert_eq!(
            to_csv(&[a, b]),
            "system,p99_us,speedup\nraft,12.5,\n\"a,b\",,2\n"
        );
    }
}
