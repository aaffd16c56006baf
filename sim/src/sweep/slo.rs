//! The SLO search: the highest offered rate whose run meets the objective, by bracketing
//! (double from a start until a run fails, halve if the start already fails) and then
//! bisecting the bracket, instead of a fixed grid. A fixed grid either wastes runs far from
//! the knee or misses it; bracketing finds it to `precision` in about
//! log2(max/start) + log2(1/precision) runs whatever the system's capacity.
//!
//! It assumes "meets the SLO" is monotone in the rate, which holds for an open-loop
//! system below and above its knee; near the knee a noisy run can flip, and then the
//! search reports a rate on one side of the flip, within the final bracket.

/// Bracketing parameters (see [`super::spec::LoadSpec::Slo`]).
#[derive(Clone, Copy, Debug)]
pub struct Search {
    pub start_rps: f64,
    pub max_rps: f64,
    pub min_rps: f64,
    pub precision: f64,
}

/// At most this many runs per search, whatever the parameters (a guard, never reached with
/// sane ones: 1000 → 10M at 1% takes about 21).
const MAX_STEPS: usize = 64;

impl Search {
    /// Runs `run` at successive rates (rounded to whole requests per second) and returns
    /// every outcome in order; `ok` judges an outcome.
    pub fn run<T, E>(
        &self,
        mut run: impl FnMut(f64) -> Result<T, E>,
        ok: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, E> {
        let mut outcomes = Vec::new();
        let mut pass: Option<f64> = None;
        let mut fail: Option<f64> = None;
        let mut rate = self.start_rps.round();
        for _ in 0..MAX_STEPS {
            let outcome = run(rate)?;
            let passed = ok(&outcome);
            outcomes.push(outcome);
            if passed {
                pass = Some(pass.map_or(rate, |p: f64| p.max(rate)));
            } else {
                fail = Some(fail.map_or(rate, |f: f64| f.min(rate)));
            }
            let next = match (pass, fail) {
                (Some(p), None) if p >= self.max_rps => break,
                (Some(p), None) => (p * 2.0).min(self.max_rps),
                (None, Some(f)) if f <= self.min_rps => break,
                (None, Some(f)) => (f / 2.0).max(self.min_rps),
                (Some(p), Some(f)) => {
                    if f <= p || (f - p) / p <= self.precision {
                        break;
                    }
                    (p + f) / 2.0
                }
                (None, None) => unreachable!("one run was judged"),
            }
            .round();
            if next == rate {
                break;
            }
            rate = next;
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(capacity: f64) -> (Vec<f64>, f64) {
        let s = Search {
            start_rps: 10_000.0,
            max_rps: 4_000_000.0,
            min_rps: 1_000.0,
            precision: 0.02,
        };
        let rates: Vec<f64> = s.run(Ok::<f64, ()>, |&r| r <= capacity).unwrap();
        let best = rates
            .iter()
            .copied()
            .filter(|&r| r <= capacity)
            .fold(0.0, f64::max);
        (rates, best)
    }

    #[test]
    fn finds_the_knee_within_precision_in_few_runs() {
        for capacity in [1_500.0, 37_000.0, 90_000.0, 1_234_567.0] {
            let (rates, best) = search(capacity);
            assert!(best <= capacity, "{capacity}: {best}");
            assert!(
                best >= capacity * 0.98 - 1.0,
                "{capacity}: best {best} not within 2%: {rates:?}"
            );
            assert!(rates.len() <= 16, "{capacity}: {} runs", rates.len());
        }
    }

    #[test]
    fn stops_at_the_limits() {
        // Never fails: stops at max.
        let (rates, best) = search(1e12);
        assert_eq!(best, 4_000_000.0);
        assert!(rates.len() < 12);
        // Always fails: stops at min, reports nothing.
        let (rates, best) = search(0.0);
        assert_eq!(best, 0.0);
        assert_eq!(*rates.last().unwrap(), 1_000.0);
    }
}
