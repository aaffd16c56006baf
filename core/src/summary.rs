//! Summary types that the simulator's and the runtime's `summary.json` share: latency
//! percentiles, the per-bucket timeline, and the rounding that keeps numbers stable.

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencyUs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencyUs {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| (ns as f64 / 1e3 * 1000.0).round() / 1000.0;
        if h.is_empty() {
            return LatencyUs {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        LatencyUs {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: (h.mean() / 1e3 * 1000.0).round() / 1000.0,
        }
    }
}

/// Completions and latency per bucket of run time (simulated or real), bucketed by when the reply (or the
/// DROP, or the timeout) reached the client, so a plot shows what clients saw at that time.
pub struct Timeline {
    pub bucket_ns: u64,
    pub buckets: Vec<TimelineBucket>,
}

pub struct TimelineBucket {
    pub completed: u64,
    pub dropped: u64,
    pub timed_out: u64,
    pub latency_ns: Histogram<u64>,
}

impl Timeline {
    /// Buckets cover [0, end_ns); events past the end fall in the last bucket.
    pub fn new(bucket_ns: u64, end_ns: u64, max_latency_ns: u64) -> Self {
        let n = end_ns.div_ceil(bucket_ns.max(1)).max(1) as usize;
        Timeline {
            bucket_ns: bucket_ns.max(1),
            buckets: (0..n)
                .map(|_| TimelineBucket {
                    completed: 0,
                    dropped: 0,
                    timed_out: 0,
                    // Two significant digits: 1% resolution is plenty for a plot and keeps
                    // hundreds of buckets small.
                    latency_ns: Histogram::new_with_bounds(1, max_latency_ns.max(2), 2)
                        .expect("valid histogram bounds"),
                })
                .collect(),
        }
    }

    pub fn bucket(&mut self, t_ns: u64) -> &mut TimelineBucket {
        let i = ((t_ns / self.bucket_ns) as usize).min(self.buckets.len() - 1);
        &mut self.buckets[i]
    }

    pub fn summary(&self) -> Vec<TimelinePoint> {
        let bucket_s = self.bucket_ns as f64 / 1e9;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let lat = LatencyUs::from_histogram(&b.latency_ns);
                TimelinePoint {
                    t_ms: round3((i as u64 * self.bucket_ns) as f64 / 1e6),
                    completed_rps: round3(b.completed as f64 / bucket_s),
                    dropped: b.dropped,
                    timed_out: b.timed_out,
                    p50_us: lat.p50,
                    p99_us: lat.p99,
                }
            })
            .collect()
    }
}

/// One bucket of the timeline in `summary.json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimelinePoint {
    /// Start of the bucket, in ms from the start of the run.
    pub t_ms: f64,
    /// Replies received in the bucket, per second.
    pub completed_rps: f64,
    pub dropped: u64,
    pub timed_out: u64,
    /// Latency of the requests answered in the bucket.
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Rounds to 3 decimals so summaries stay readable and stable.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
