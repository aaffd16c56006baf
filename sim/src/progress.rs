//! Progress of batch commands (`check`, `sweep`): a bar on a terminal, and a status line
//! every few seconds when stderr is not one (Slurm, CI, `| tee`), where a bar prints nothing
//! until the end. Also the stop flag that SIGINT and SIGTERM raise, so a stopped batch (a
//! Slurm time limit sends SIGTERM) still reports what finished. Wall time lives here, in the
//! binary, never in the library.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between status lines when stderr is not a terminal
/// (`HOVERCRAFT_PROGRESS_SECS` overrides; 0 turns them off).
const DEFAULT_STATUS_EVERY_S: u64 = 5;

/// Raised by the first SIGINT or SIGTERM; a second one ends the process at once.
pub fn stop_flag() -> &'static AtomicBool {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Order matters: the conditional exit sees the flag before this signal sets it.
            let registered =
                signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())
                    .and_then(|_| signal_hook::flag::register(sig, flag.clone()));
            if let Err(e) = registered {
                eprintln!("warning: cannot handle signal {sig}: {e} (a stop will lose the report)");
            }
        }
        flag
    })
}

/// Whether a stop was asked for.
pub fn stopping() -> bool {
    stop_flag().load(Ordering::Relaxed)
}

struct Counts {
    total: AtomicU64,
    done: AtomicU64,
    failures: AtomicU64,
}

/// A bar on a terminal, periodic lines elsewhere.
pub struct BatchProgress {
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    reporter: Option<(Sender<()>, JoinHandle<()>)>,
}

impl BatchProgress {
    /// `what` names the units counted (`seeds`, `runs`); `prefix` the batch (`check`, a
    /// sweep's name).
    pub fn new(prefix: &str, what: &'static str, total: u64) -> BatchProgress {
        let counts = Arc::new(Counts {
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{prefix:>22}} {{bar:30}} {{pos}}/{{len}} {what}, {{per_sec}}, eta {{eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(prefix.to_string());
            return BatchProgress {
                bar: Some(bar),
                counts,
                reporter: None,
            };
        }
        let every_s = std::env::var("HOVERCRAFT_PROGRESS_SECS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_STATUS_EVERY_S);
        if every_s == 0 {
            return BatchProgress {
                bar: None,
                counts,
                reporter: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let c = counts.clone();
        let prefix = prefix.to_string();
        let handle = std::thread::spawn(move || {
            let started = crate::wall_now();
            // Ends when the batch finishes (a message) or drops its sender.
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(every_s))
            {
                eprintln!(
                    "{}",
                    status_line(&prefix, what, &c, started.elapsed().as_secs_f64())
                );
            }
        });
        BatchProgress {
            bar: None,
            counts,
            reporter: Some((tx, handle)),
        }
    }

    pub fn set_total(&self, total: u64) {
        self.counts.total.store(total, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    pub fn inc(&self, failed: bool) {
        self.counts.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.counts.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn finish(mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some((tx, handle)) = self.reporter.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
    }
}

impl Drop for BatchProgress {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.reporter.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
    }
}

fn status_line(prefix: &str, what: &str, c: &Counts, elapsed_s: f64) -> String {
    let done = c.done.load(Ordering::Relaxed);
    let total = c.total.load(Ordering::Relaxed);
    let failures = c.failures.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed_s.max(1e-9);
    let eta = if rate > 0.0 && total >= done {
        human_duration((total - done) as f64 / rate)
    } else {
        "?".into()
    };
    format!(
        "{prefix}: {what} {done}/{total}, {rate:.1}/s, {failures} failure{}, eta {eta}",
        if failures == 1 { "" } else { "s" }
    )
}

/// 42s, 8m 02s, 3h 05m, 2d 04h.
fn human_duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_reads_well() {
        let c = Counts {
            total: AtomicU64::new(10_000),
            done: AtomicU64::new(3_812),
            failures: AtomicU64::new(0),
        };
        assert_eq!(
            status_line("check", "seeds", &c, 200.0),
            "check: seeds 3812/10000, 19.1/s, 0 failures, eta 5m 25s"
        );
        assert_eq!(human_duration(7_500.0), "2h 05m");
        assert_eq!(human_duration(200_000.0), "2d 07h");
    }
}
