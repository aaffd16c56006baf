//! The scenario's `workload` section: the application, the offered rate, request and reply
//! sizes, service times, the kv key space and YCSB-E. The simulator's scenario files and the
//! runtime's cluster files share it, so both send the same load.

use crate::app::kv::{KvCosts, MAX_SCAN_RECORDS};
use crate::app::AppKind;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    #[serde(default = "default_app")]
    pub app: AppKind,
    /// Offered load: open-loop Poisson arrivals, in requests per second (all machines).
    pub rate_rps: f64,
    /// Application bytes of a request (R2P2 body; synthetic needs at least 16).
    #[serde(default = "default_request_bytes")]
    pub request_bytes: u32,
    /// Application bytes of a reply.
    #[serde(default = "default_reply_bytes")]
    pub reply_bytes: u32,
    #[serde(default)]
    pub service_time: ServiceTime,
    /// Share of requests that are read-only (REPLICATED_ROUTE_NO_SE), 0..=1. For the kv app:
    /// the share of GETs (the rest are PUTs).
    #[serde(default)]
    pub read_only_fraction: f64,
    /// kv app: how many keys requests spread over (few keys: much contention).
    #[serde(default = "default_kv_keys")]
    pub kv_keys: u32,
    /// kv app: send YCSB-E (scans and inserts over a preloaded table) instead of GETs and PUTs
    /// over `kv_keys` keys. `read_only_fraction` and `kv_keys` do not apply then.
    #[serde(default)]
    pub ycsb: Option<YcsbConfig>,
    /// kv app: the store's CPU cost model and capacity (defaults: the YCSB-E-on-Redis
    /// calibration documented on `KvCosts`).
    #[serde(default)]
    pub kv_costs: KvCosts,
}

impl WorkloadConfig {
    /// The kv store every replica builds: `kv_costs`, with YCSB's table preloaded (implicitly)
    /// when `ycsb` is present.
    pub fn node_kv_costs(&self) -> KvCosts {
        match &self.ycsb {
            Some(y) => KvCosts {
                preloaded_ycsb_records: y.records,
                ..self.kv_costs
            },
            None => self.kv_costs,
        }
    }
}

/// YCSB-E as the paper ran it: 95% scans of 1–10 records (uniform length) starting at a key
/// chosen over the preloaded records, 5% inserts of a new 10 × 100 B record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YcsbConfig {
    /// Records of the load phase, preloaded by every replica (implicitly: no memory until
    /// written) under keys `ycsb_key(0..records)`.
    pub records: u64,
    /// A scan asks for a uniform 1..=scan_max_records records.
    pub scan_max_records: u16,
    /// Share of requests that insert a new record; the rest are scans (read-only).
    pub insert_fraction: f64,
    /// How scans pick their start key among the preloaded records.
    pub key_distribution: KeyDistribution,
    /// Skew of `zipfian` (YCSB's zipfian constant); ignored by `uniform`.
    pub zipf_theta: f64,
}

impl Default for YcsbConfig {
    fn default() -> Self {
        YcsbConfig {
            records: 1_000_000,
            scan_max_records: 10,
            insert_fraction: 0.05,
            key_distribution: KeyDistribution::Uniform,
            zipf_theta: 0.99,
        }
    }
}

/// Most YCSB records a scenario may preload. The table takes no memory, but the replicas'
/// state digest covers every record once per process (~0.5 s per million).
pub const MAX_YCSB_RECORDS: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    /// Every record equally likely.
    Uniform,
    /// YCSB's scrambled zipfian: popularity ranks drawn from Zipf(records, zipf_theta), each
    /// rank mapped to a record by a hash, so the hot records are spread over the key space
    /// rather than adjacent (adjacent hot keys would make scans overlap).
    Zipfian,
}

fn default_kv_keys() -> u32 {
    16
}

fn default_app() -> AppKind {
    AppKind::Synthetic
}
fn default_request_bytes() -> u32 {
    16
}
fn default_reply_bytes() -> u32 {
    16
}

/// Service-time distribution of synthetic requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceTime {
    Fixed {
        ns: u64,
    },
    Exponential {
        mean_ns: u64,
    },
    /// `low_ns` with probability 1 − `high_fraction`, else `high_ns`.
    Bimodal {
        low_ns: u64,
        high_ns: u64,
        high_fraction: f64,
    },
}

impl Default for ServiceTime {
    fn default() -> Self {
        ServiceTime::Fixed { ns: 10_000 }
    }
}

impl ServiceTime {
    pub fn mean_ns(&self) -> f64 {
        match *self {
            ServiceTime::Fixed { ns } => ns as f64,
            ServiceTime::Exponential { mean_ns } => mean_ns as f64,
            ServiceTime::Bimodal {
                low_ns,
                high_ns,
                high_fraction,
            } => low_ns as f64 * (1.0 - high_fraction) + high_ns as f64 * high_fraction,
        }
    }
}

impl WorkloadConfig {
    /// Checks what the types cannot (ranges and combinations); `Err` names the field. The
    /// real runtime's load generator uses it too.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        fn positive(field: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if !(v.is_finite() && v > 0.0) {
                return Err((field, format!("must be a positive number (got {v})")));
            }
            Ok(())
        }
        let w = self;
        positive("workload.rate_rps", w.rate_rps)?;
        if w.rate_rps > 100e6 {
            return Err((
                "workload.rate_rps",
                format!("at most 1e8 (got {})", w.rate_rps),
            ));
        }
        if !(0.0..=1.0).contains(&w.read_only_fraction) {
            return Err((
                "workload.read_only_fraction",
                format!("must be within 0..=1 (got {})", w.read_only_fraction),
            ));
        }
        if w.app == AppKind::Synthetic
            && (w.request_bytes as usize) < crate::app::synthetic::HEADER_BYTES
        {
            return Err((
                "workload.request_bytes",
                format!(
                    "synthetic requests carry a {}-byte header (got {})",
                    crate::app::synthetic::HEADER_BYTES,
                    w.request_bytes
                ),
            ));
        }
        if w.request_bytes > 64 * 1024 {
            return Err(("workload.request_bytes", "at most 64 KiB".into()));
        }
        if w.reply_bytes > crate::app::synthetic::MAX_REPLY_BYTES {
            return Err(("workload.reply_bytes", "at most 1 MiB".into()));
        }
        match w.service_time {
            ServiceTime::Fixed { ns } if ns > 1_000_000_000 => {
                return Err(("workload.service_time.ns", "at most 1 s".into()))
            }
            ServiceTime::Exponential { mean_ns } if mean_ns == 0 || mean_ns > 1_000_000_000 => {
                return Err(("workload.service_time.mean_ns", "must be 1..=1e9".into()))
            }
            ServiceTime::Bimodal {
                low_ns,
                high_ns,
                high_fraction,
            } => {
                if !(0.0..=1.0).contains(&high_fraction) {
                    return Err((
                        "workload.service_time.high_fraction",
                        format!("must be within 0..=1 (got {high_fraction})"),
                    ));
                }
                if low_ns > 1_000_000_000 {
                    return Err(("workload.service_time.low_ns", "at most 1 s".into()));
                }
                if high_ns > 1_000_000_000 {
                    return Err(("workload.service_time.high_ns", "at most 1 s".into()));
                }
            }
            _ => {}
        }
        if w.app == AppKind::Kv && (w.kv_keys == 0 || w.kv_keys > 1_000_000) {
            return Err(("workload.kv_keys", "must be 1..=1000000".into()));
        }
        validate_kv(w)?;
        Ok(())
    }
}

/// The kv cost model and the YCSB section.
fn validate_kv(w: &WorkloadConfig) -> Result<(), (&'static str, String)> {
    let c = &w.kv_costs;
    for (field, value, max, what) in [
        ("workload.kv_costs.op_ns", c.op_ns, 1_000_000_000, "1 s"),
        // A 1000-record scan then costs at most 1 s; likewise a 1 MiB reply.
        (
            "workload.kv_costs.per_record_ns",
            c.per_record_ns,
            1_000_000,
            "1 ms",
        ),
        (
            "workload.kv_costs.per_kib_ns",
            c.per_kib_ns,
            1_000_000,
            "1 ms",
        ),
    ] {
        if value > max {
            return Err((field, format!("at most {max} ({what}; got {value})")));
        }
    }
    if c.max_keys > 1_000_000_000 {
        return Err((
            "workload.kv_costs.max_keys",
            format!("at most 1000000000 (got {})", c.max_keys),
        ));
    }
    if c.preloaded_ycsb_records > MAX_YCSB_RECORDS {
        return Err((
            "workload.kv_costs.preloaded_ycsb_records",
            format!(
                "at most {MAX_YCSB_RECORDS} (got {})",
                c.preloaded_ycsb_records
            ),
        ));
    }
    if c.preloaded_ycsb_records > c.max_keys {
        return Err((
            "workload.kv_costs.preloaded_ycsb_records",
            format!(
                "must be at most workload.kv_costs.max_keys ({} > {})",
                c.preloaded_ycsb_records, c.max_keys
            ),
        ));
    }
    let Some(y) = &w.ycsb else {
        return Ok(());
    };
    if w.app != AppKind::Kv {
        return Err(("workload.ycsb", "needs workload.app \"kv\"".into()));
    }
    // Reject rather than ignore: a scenario that sets these expects them to matter.
    if w.read_only_fraction != 0.0 {
        return Err((
            "workload.read_only_fraction",
            "does not apply with workload.ycsb (scans are the read-only share, 1 - insert_fraction); remove it".into(),
        ));
    }
    if w.kv_keys != default_kv_keys() {
        return Err((
            "workload.kv_keys",
            "does not apply with workload.ycsb (keys come from ycsb.records); remove it".into(),
        ));
    }
    if y.records == 0 || y.records > MAX_YCSB_RECORDS {
        return Err((
            "workload.ycsb.records",
            format!("must be 1..={MAX_YCSB_RECORDS} (got {})", y.records),
        ));
    }
    if y.records > c.max_keys {
        return Err((
            "workload.ycsb.records",
            format!(
                "must be at most workload.kv_costs.max_keys ({} > {})",
                y.records, c.max_keys
            ),
        ));
    }
    if c.preloaded_ycsb_records != 0 && c.preloaded_ycsb_records != y.records {
        return Err((
            "workload.kv_costs.preloaded_ycsb_records",
            "is set by workload.ycsb.records; remove it".into(),
        ));
    }
    if y.scan_max_records == 0 || y.scan_max_records > MAX_SCAN_RECORDS {
        return Err((
            "workload.ycsb.scan_max_records",
            format!(
                "must be 1..={MAX_SCAN_RECORDS} (got {})",
                y.scan_max_records
            ),
        ));
    }
    if !(0.0..=1.0).contains(&y.insert_fraction) {
        return Err((
            "workload.ycsb.insert_fraction",
            format!("must be within 0..=1 (got {})", y.insert_fraction),
        ));
    }
    if !(y.zipf_theta.is_finite() && y.zipf_theta > 0.0 && y.zipf_theta <= 10.0) {
        return Err((
            "workload.ycsb.zipf_theta",
            format!("must be within (0, 10] (got {})", y.zipf_theta),
        ));
    }
    Ok(())
}
