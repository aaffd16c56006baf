//! Seeds as a sweep axis: per-seed rows grouped into one row per configuration, each
//! numeric column as its mean over seeds, and for the columns a figure draws, the median and
//! a 95% confidence interval of the mean (Student's t with n - 1 degrees of freedom: seeds
//! are few, so the normal 1.96 would understate the interval).
//!
//! Empty cells (no sample, e.g. no latency in a run that answered nothing) are left out of
//! a column's statistics; a column with no value in a group stays empty.

use super::table::{Cell, Row};

/// Two-sided 95% quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// t quantile for a 95% two-sided interval with `dof` degrees of freedom.
pub fn t_975(dof: usize) -> f64 {
    match dof {
        0 => f64::NAN,
        1..=30 => T_975[dof - 1],
        // Past 30 the quantile is within 2% of the normal one; interpolate toward it.
        _ => 1.960 + (2.042 - 1.960) * 30.0 / dof as f64,
    }
}

/// Mean, median and 95% interval of the finite values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn stats(values: &[f64]) -> Stats {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Stats {
            n,
            mean: f64::NAN,
            median: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        };
    }
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let (ci_low, ci_high) = if n < 2 {
        (f64::NAN, f64::NAN)
    } else {
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t_975(n - 1) * (var / n as f64).sqrt();
        (mean - half, mean + half)
    };
    Stats {
        n,
        mean,
        median,
        ci_low,
        ci_high,
    }
}

fn round3(x: f64) -> f64 {
    crate::metrics::round3(x)
}

/// Groups `rows` by the values of `group_by` (groups in order of first appearance) and
/// writes one row per group: the group columns, `seeds` (rows in the group), then every
/// other column except `skip`: numbers as their mean, text kept when all rows agree.
/// Columns in `interval` also get `<c>_median`, `<c>_ci_low` and `<c>_ci_high`.
pub fn aggregate(rows: &[Row], group_by: &[&str], skip: &[&str], interval: &[&str]) -> Vec<Row> {
    let key = |r: &Row| -> Vec<String> {
        group_by
            .iter()
            .map(|c| r.get(c).map(Cell::to_csv).unwrap_or_default())
            .collect()
    };
    let mut groups: Vec<(Vec<String>, Vec<&Row>)> = Vec::new();
    for r in rows {
        let k = key(r);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (_, members) in groups {
        let first = members[0];
        let mut row = Row::default();
        for c in group_by {
            if let Some(v) = first.get(c) {
                row.push(c, v.clone());
            }
        }
        row.push("seeds", members.len() as u64);
        // Columns in the order the rows carry them (union, first seen).
        let mut columns: Vec<&str> = Vec::new();
        for m in &members {
            for (c, _) in &m.cells {
                if !columns.contains(&c.as_str()) {
                    columns.push(c);
                }
            }
        }
        for c in columns {
            if group_by.contains(&c) || skip.contains(&c) || c == "seeds" {
                continue;
            }
            let cells: Vec<Option<&Cell>> = members.iter().map(|m| m.get(c)).collect();
            if let Some(Some(Cell::Text(t))) = cells.first() {
                let same = cells
                    .iter()
                    .all(|x| matches!(x, Some(Cell::Text(u)) if u == t));
                row.push(c, if same { t.clone() } else { String::new() });
                continue;
            }
            let values: Vec<f64> = cells
                .iter()
                .map(|x| x.and_then(Cell::as_f64).unwrap_or(f64::NAN))
                .collect();
            let s = stats(&values);
            row.push(c, round3(s.mean));
            if interval.contains(&c) {
                row.push(&format!("{c}_median"), round3(s.median));
                row.push(&format!("{c}_ci_low"), round3(s.ci_low));
                row.push(&format!("{c}_ci_high"), round3(s.ci_high));
            }
        }
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_of_five_seeds_uses_students_t() {
        // The spread of one hovercraft-3 sweep's SLO maxima (issue 18), plus two more.
        let s = stats(&[188_975.0, 147_425.0, 192_450.0, 170_000.0, 180_000.0]);
        assert_eq!(s.n, 5);
        assert!((s.mean - 175_770.0).abs() < 1e-6);
        assert_eq!(s.median, 180_000.0);
        // sd = 18 077.7; half width = 2.776 * sd / sqrt(5) = 22 442.9
        let half = s.ci_high - s.mean;
        assert!((half - 22_442.9).abs() < 0.1, "half width {half}");
        assert!((s.mean - s.ci_low - half).abs() < 1e-6);
    }

    #[test]
    fn empty_cells_are_left_out_and_one_value_has_no_interval() {
        let s = stats(&[f64::NAN, 3.0]);
        assert_eq!((s.n, s.mean, s.median), (1, 3.0, 3.0));
        assert!(s.ci_low.is_nan() && s.ci_high.is_nan());
        assert!(stats(&[]).mean.is_nan());
        assert!(t_975(100) > 1.96 && t_975(100) < t_975(30));
    }

    #[test]
    fn groups_keep_order_and_text_and_average_numbers() {
        let row = |sys: &str, seed: u64, x: f64| {
            let mut r = Row::default();
            r.push("system", sys);
            r.push("seed", seed);
            r.push("mode", "raft");
            r.push("rps", x);
            r
        };
        let rows = vec![
            row("b", 1, 10.0),
            row("a", 1, 1.0),
            row("b", 2, 20.0),
            row("a", 2, 3.0),
        ];
        let agg = aggregate(&rows, &["system"], &["seed"], &["rps"]);
        assert_eq!(agg.len(), 2);
        assert_eq!(agg[0].get("system").unwrap().label(), "b");
        assert_eq!(agg[0].num("seeds"), Some(2.0));
        assert_eq!(agg[0].num("rps"), Some(15.0));
        assert_eq!(agg[1].num("rps"), Some(2.0));
        assert_eq!(agg[1].get("mode").unwrap().label(), "raft");
        assert!(agg[0].get("seed").is_none());
        // two values: t(1) = 12.706, sd = 7.071, half = 63.53
        assert_eq!(agg[0].num("rps_ci_high"), Some(78.53));
        assert_eq!(agg[0].num("rps_median"), Some(15.0));
    }
}
