//! The real clock adapter. The core runs on `hovercraft_core::time::Instant` (nanoseconds
//! since an epoch the driver picks); here the epoch is the process start, read from the
//! monotonic clock. This is the only module of the workspace's protocol path that reads a
//! wall clock (clippy.toml forbids `Instant::now` everywhere else).
#![forbid(unsafe_code)]

use hovercraft_core::time::Instant;

/// Monotonic nanoseconds since this clock was made.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
}

/// The one sanctioned read of the host's monotonic clock: the real runtime must tell the core
/// what time it is, and nothing in `core` or `sim` can reach this function.
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Nanoseconds since the Unix epoch by the wall clock (0 if the clock is before 1970): only
/// for the MAC epoch (`auth.rs`), which must grow across process restarts, which a
/// monotonic clock does not.
#[allow(clippy::disallowed_methods)]
pub fn unix_time_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: monotonic_now(),
        }
    }

    /// Time since the clock was made, as the core's `Instant`.
    pub fn now(&self) -> Instant {
        let ns = monotonic_now()
            .saturating_duration_since(self.start)
            .as_nanos();
        Instant::from_ns(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
    }
}
