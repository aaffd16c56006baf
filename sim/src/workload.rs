//! Open-loop clients: Poisson arrivals at a target rate, request bodies built for the
//! application, service times drawn from the scenario's distribution. Every draw comes from
//! the client machine's own seeded stream.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use hovercraft_core::app::synthetic::{SyntheticRequest, MAX_SERVICE_NS};

use crate::scenario::{ServiceTime, WorkloadConfig};

/// One request to send.
pub struct RequestSpec {
    pub read_only: bool,
}

pub struct Generator {
    cfg: WorkloadConfig,
    /// Mean gap between this machine's arrivals, in ns.
    mean_gap_ns: f64,
    arrivals: ChaCha8Rng,
    draws: ChaCha8Rng,
}

impl Generator {
    pub fn new(
        cfg: &WorkloadConfig,
        machines: u32,
        arrivals: ChaCha8Rng,
        draws: ChaCha8Rng,
    ) -> Self {
        Generator {
            mean_gap_ns: 1e9 * machines as f64 / cfg.rate_rps,
            cfg: cfg.clone(),
            arrivals,
            draws,
        }
    }

    /// Gap to the next arrival: exponential with the machine's mean (Poisson process).
    pub fn next_gap_ns(&mut self) -> u64 {
        exp_sample(&mut self.arrivals, self.mean_gap_ns)
    }

    /// Draws the next request and writes its body into `body` (cleared first).
    pub fn next_request(&mut self, body: &mut Vec<u8>) -> RequestSpec {
        let service_ns = match self.cfg.service_time {
            ServiceTime::Fixed { ns } => ns,
            // Clamped to what the synthetic app accepts: a draw past 1 s would be rejected.
            ServiceTime::Exponential { mean_ns } => {
                exp_sample(&mut self.draws, mean_ns as f64).min(MAX_SERVICE_NS)
            }
            ServiceTime::Bimodal {
                low_ns,
                high_ns,
                high_fraction,
            } => {
                if self.draws.gen::<f64>() < high_fraction {
                    high_ns
                } else {
                    low_ns
                }
            }
        };
        let read_only = self.cfg.read_only_fraction > 0.0
            && self.draws.gen::<f64>() < self.cfg.read_only_fraction;
        body.clear();
        SyntheticRequest {
            service_ns,
            reply_bytes: self.cfg.reply_bytes,
            read_only,
        }
        .encode(self.cfg.request_bytes as usize, body);
        RequestSpec { read_only }
    }
}

/// An exponential draw with the given mean, rounded to whole ns.
fn exp_sample(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    // 1 − u is in (0, 1], so the log is finite.
    let u: f64 = rng.gen();
    (-(1.0 - u).ln() * mean).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use hovercraft_core::rng::{stream_rng, Stream};

    #[test]
    fn poisson_gaps_have_the_configured_mean() {
        let cfg = WorkloadConfig {
            app: hovercraft_core::app::AppKind::Synthetic,
            rate_rps: 100_000.0,
            request_bytes: 16,
            reply_bytes: 16,
            service_time: ServiceTime::default(),
            read_only_fraction: 0.75,
        };
        let mut g = Generator::new(
            &cfg,
            2,
            stream_rng(1, Stream::Client, 0),
            stream_rng(1, Stream::Workload, 0),
        );
        let n = 200_000;
        let total: u64 = (0..n).map(|_| g.next_gap_ns()).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 20_000.0).abs() < 200.0, "mean gap {mean}");
        let mut body = Vec::new();
        let ro = (0..n)
            .filter(|_| g.next_request(&mut body).read_only)
            .count();
        let share = ro as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "read-only share {share}");
        assert_eq!(body.len(), 16);
    }
}
