//! The request generator of one client machine: Poisson arrivals at its share of the
//! offered rate, request bodies built for the application (synthetic, kv GET/PUT, YCSB-E),
//! service times drawn from the workload's distribution. Every draw comes from the
//! machine's own seeded streams (arrivals and draws apart), so a run is reproducible.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};

use crate::app::kv::{ycsb_key, ycsb_record, KvRequest};
use crate::app::synthetic::{SyntheticRequest, MAX_SERVICE_NS};
use crate::app::AppKind;

use super::config::{KeyDistribution, ServiceTime, WorkloadConfig, YcsbConfig};

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
    /// Distinguishes this machine's written values (and inserted keys) from every other
    /// machine's.
    machine: u32,
    machines: u32,
    writes: u64,
    /// The kv app's YCSB-E mix, when the scenario asks for it.
    ycsb: Option<Ycsb>,
}

/// What YCSB-E draws from.
struct Ycsb {
    cfg: YcsbConfig,
    /// Popularity ranks 1..=records, for `zipfian` (validation admits only parameters
    /// `Zipf::new` accepts; were it to refuse, keys would be uniform rather than a panic).
    zipf: Option<Zipf<f64>>,
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
            machines,
            writes: 0,
            ycsb: cfg
                .ycsb
                .as_ref()
                .filter(|_| cfg.app == AppKind::Kv)
                .map(|y| Ycsb {
                    zipf: (y.key_distribution == KeyDistribution::Zipfian)
                        .then(|| Zipf::new(y.records, y.zipf_theta).ok())
                        .flatten(),
                    cfg: y.clone(),
                }),
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
        if self.ycsb.is_some() {
            return self.next_ycsb_request(body);
        }
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

impl Generator {
    /// YCSB-E: an insert (probability `insert_fraction`) of a fresh record at a key no other
    /// machine uses, else a read-only scan of a uniform 1..=`scan_max_records` records from a
    /// key drawn over the preloaded records.
    ///
    /// Scans draw over the preloaded records only (YCSB also covers the keys inserted so far,
    /// but a machine knows only its own inserts); with 5% inserts a run adds a few thousand
    /// records to 1M, so the difference is negligible. Scans and inserts are not recorded
    /// for the linearizability checker (`kv` stays `None`): its model is GET/PUT.
    fn next_ycsb_request(&mut self, body: &mut Vec<u8>) -> RequestSpec {
        let Some(ycsb) = &self.ycsb else {
            return RequestSpec {
                read_only: false,
                kv: None,
            };
        };
        let y = &ycsb.cfg;
        body.clear();
        if self.draws.gen::<f64>() < y.insert_fraction {
            // Keys past the table, interleaved by machine: unique, and in the order sent.
            let n = y
                .records
                .saturating_add(self.writes.saturating_mul(u64::from(self.machines)))
                .saturating_add(u64::from(self.machine));
            self.writes += 1;
            let key = ycsb_key(n);
            let value = ycsb_record(&key, 0);
            KvRequest::Insert { key, value }.encode(body);
            return RequestSpec {
                read_only: false,
                kv: None,
            };
        }
        let start = match &ycsb.zipf {
            // The rank is in 1..=records; a hash scatters ranks over the records.
            Some(zipf) => {
                scramble((zipf.sample(&mut self.draws) as u64).saturating_sub(1)) % y.records
            }
            None => self.draws.gen_range(0..y.records),
        };
        let count = self.draws.gen_range(1..=y.scan_max_records);
        KvRequest::Scan {
            start: ycsb_key(start),
            count,
        }
        .encode(body);
        RequestSpec {
            read_only: true,
            kv: None,
        }
    }
}

/// YCSB's scrambling of zipfian ranks: FNV-1a over the rank's 8 bytes (little-endian), as
/// YCSB's `Utils.fnvhash64`, so consecutive ranks land far apart.
fn scramble(rank: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rank.to_le_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
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
    use crate::rng::{stream_rng, Stream};

    fn kv_cfg(ycsb: Option<YcsbConfig>) -> WorkloadConfig {
        WorkloadConfig {
            app: AppKind::Kv,
            rate_rps: 100_000.0,
            request_bytes: 16,
            reply_bytes: 16,
            service_time: ServiceTime::default(),
            read_only_fraction: 0.0,
            kv_keys: 16,
            ycsb,
            kv_costs: Default::default(),
        }
    }

    fn generator(cfg: &WorkloadConfig, machines: u32, machine: u32) -> Generator {
        Generator::new(
            cfg,
            machines,
            machine,
            stream_rng(7, Stream::Client, u64::from(machine)),
            stream_rng(7, Stream::Workload, u64::from(machine)),
        )
    }

    /// The record index a YCSB key names.
    fn index(key: &[u8]) -> u64 {
        std::str::from_utf8(&key[4..]).unwrap().parse().unwrap()
    }

    #[test]
    fn ycsb_e_mix_scan_lengths_and_insert_share() {
        let cfg = kv_cfg(Some(YcsbConfig::default()));
        let mut g = generator(&cfg, 4, 1);
        let mut body = Vec::new();
        let n = 200_000;
        let mut by_len = [0u32; 11];
        let mut inserts = 0;
        for _ in 0..n {
            let spec = g.next_request(&mut body);
            assert!(
                spec.kv.is_none(),
                "YCSB ops stay out of the GET/PUT history"
            );
            match KvRequest::decode(&body).unwrap() {
                KvRequest::Scan { start, count } => {
                    assert!(spec.read_only);
                    assert!(index(&start) < 1_000_000);
                    by_len[usize::from(count)] += 1;
                }
                KvRequest::Insert { key, value } => {
                    assert!(!spec.read_only);
                    assert_eq!(value, ycsb_record(&key, 0));
                    inserts += 1;
                }
                other => panic!("YCSB-E sends scans and inserts, got {other:?}"),
            }
        }
        let share = f64::from(inserts) / f64::from(n);
        assert!((share - 0.05).abs() < 0.003, "insert share {share}");
        assert_eq!(by_len[0], 0);
        for (len, &count) in by_len.iter().enumerate().skip(1) {
            let share = f64::from(count) / f64::from(n);
            assert!((share - 0.095).abs() < 0.004, "length {len}: share {share}");
        }
    }

    #[test]
    fn ycsb_inserted_keys_are_unique_across_machines() {
        let y = YcsbConfig {
            records: 1000,
            insert_fraction: 0.5,
            ..YcsbConfig::default()
        };
        let cfg = kv_cfg(Some(y));
        let mut keys = std::collections::BTreeSet::new();
        let mut body = Vec::new();
        let mut inserts = 0;
        for machine in 0..3 {
            let mut g = generator(&cfg, 3, machine);
            for _ in 0..2000 {
                g.next_request(&mut body);
                if let KvRequest::Insert { key, .. } = KvRequest::decode(&body).unwrap() {
                    assert!(index(&key) >= 1000, "inserts go past the preloaded table");
                    assert_eq!((index(&key) - 1000) % 3, u64::from(machine));
                    keys.insert(key);
                    inserts += 1;
                }
            }
        }
        assert!(inserts > 2500);
        assert_eq!(keys.len(), inserts, "every inserted key is new");
    }

    /// Share of scans that start at the 10 most frequent start keys.
    fn top10_share(key_distribution: KeyDistribution) -> f64 {
        let y = YcsbConfig {
            records: 1000,
            insert_fraction: 0.0,
            key_distribution,
            ..YcsbConfig::default()
        };
        let mut g = generator(&kv_cfg(Some(y)), 1, 0);
        let mut counts = vec![0u32; 1000];
        let mut body = Vec::new();
        let n = 100_000;
        for _ in 0..n {
            g.next_request(&mut body);
            let KvRequest::Scan { start, .. } = KvRequest::decode(&body).unwrap() else {
                panic!("insert_fraction 0 sends only scans");
            };
            counts[index(&start) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        f64::from(counts[..10].iter().sum::<u32>()) / f64::from(n)
    }

    #[test]
    fn zipfian_start_keys_are_skewed() {
        let uniform = top10_share(KeyDistribution::Uniform);
        let zipfian = top10_share(KeyDistribution::Zipfian);
        // Uniform: ~1% of scans on 10 of 1000 keys. Zipf(1000, 0.99): ~39% on the top 10 ranks.
        assert!(uniform < 0.02, "uniform top-10 share {uniform}");
        assert!(zipfian > 0.3, "zipfian top-10 share {zipfian}");
    }

    #[test]
    fn kv_without_ycsb_keeps_get_put() {
        let cfg = WorkloadConfig {
            read_only_fraction: 0.5,
            ..kv_cfg(None)
        };
        let mut g = generator(&cfg, 1, 0);
        let mut body = Vec::new();
        for _ in 0..100 {
            let spec = g.next_request(&mut body);
            let (key, write) = spec.kv.expect("GET/PUT ops feed the checker");
            assert_eq!(write.is_none(), spec.read_only);
            assert!(key.starts_with(b"k0"));
        }
    }

    #[test]
    fn poisson_gaps_have_the_configured_mean() {
        let cfg = WorkloadConfig {
            app: AppKind::Synthetic,
            read_only_fraction: 0.75,
            ..kv_cfg(None)
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
