//! Open-loop clients: Poisson arrivals at a target rate, request bodies built for the
//! application, service times drawn from the scenario's distribution. Every draw comes from
//! the client machine's own seeded stream.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use hovercraft_core::app::kv::KvRequest;
use hovercraft_core::app::synthetic::{SyntheticRequest, MAX_SERVICE_NS};
use hovercraft_core::app::AppKind;

use crate::scenario::{ServiceTime, WorkloadConfig};

/// One request to send.
pub struct RequestSpec {
    pub read_only: bool,
    /// For the kv app: the key, and the value written (None for a GET).
    pub kv: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

pub struct Generator {
    cfg: WorkloadConfig,
    /// Mean gap between this machine's arrivals, in ns.
    mean_gap_ns: f64,
    arrivals: ChaCha8Rng,
    draws: ChaCha8Rng,
    /// Distinguishes this machine's written values from every other machine's.
    machine: u32,
    writes: u64,
}

impl Generator {
    /// The generator of client machine `machine` (of `machines`).
    pub fn new(
        cfg: &WorkloadConfig,
        machines: u32,
        machine: u32,
        arrivals: ChaCha8Rng,
        draws: ChaCha8Rng,
    ) -> Self {
        Generator {
            mean_gap_ns: 1e9 * machines as f64 / cfg.rate_rps,
            cfg: cfg.clone(),
            arrivals,
            draws,
            machine,
            writes: 0,
        }
    }

    /// Gap to the next arrival: exponential with the machine's mean (Poisson process).
    pub fn next_gap_ns(&mut self) -> u64 {
        exp_sample(&mut self.arrivals, self.mean_gap_ns)
    }

    /// Draws the next request and writes its body into `body` (cleared first).
    pub fn next_request(&mut self, body: &mut Vec<u8>) -> RequestSpec {
        if self.cfg.app == AppKind::Kv {
            return self.next_kv_request(body);
        }
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
        RequestSpec {
            read_only,
            kv: None,
        }
    }

    /// A GET (with probability `read_only_fraction`) or a PUT of a value no one else writes,
    /// on one of `kv_keys` keys: a small key space makes operations contend, which is what a
    /// linearizability check needs.
    fn next_kv_request(&mut self, body: &mut Vec<u8>) -> RequestSpec {
        let key = format!("k{:04}", self.draws.gen_range(0..self.cfg.kv_keys.max(1))).into_bytes();
        let read_only = self.draws.gen::<f64>() < self.cfg.read_only_fraction;
        body.clear();
        if read_only {
            KvRequest::Get { key: key.clone() }.encode(body);
            return RequestSpec {
                read_only,
                kv: Some((key, None)),
            };
        }
        self.writes += 1;
        let value = format!("m{}-{}", self.machine, self.writes).into_bytes();
        KvRequest::Put {
            key: key.clone(),
            value: value.clone(),
        }
        .encode(body);
        RequestSpec {
            read_only,
            kv: Some((key, Some(value))),
        }
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
            kv_keys: 16,
        };
        let mut g = Generator::new(
            &cfg,
            2,
            0,
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
