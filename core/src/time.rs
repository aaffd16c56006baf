//! Virtual time. The core never reads a clock: every input carries `now`, and drivers decide
//! what `now` means (simulated nanoseconds in `sim`, a monotonic clock in the runtime).

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in time, in nanoseconds since an arbitrary epoch chosen by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

/// A span of time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    pub const MAX: Instant = Instant(u64::MAX);

    pub const fn from_ns(ns: u64) -> Self {
        Instant(ns)
    }
    pub const fn as_ns(self) -> u64 {
        self.0
    }
    /// Time elapsed since `earlier`, or zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_ns(ns: u64) -> Self {
        Duration(ns)
    }
    /// Saturates at `u64::MAX` ns (~584 years, "never") instead of wrapping: a huge
    /// configured time-out must not become a short one.
    pub const fn from_us(us: u64) -> Self {
        Duration(us.saturating_mul(1_000))
    }
    /// Saturates like [`Duration::from_us`].
    pub const fn from_ms(ms: u64) -> Self {
        Duration(ms.saturating_mul(1_000_000))
    }
    pub const fn as_ns(self) -> u64 {
        self.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        // Saturate rather than wrap: a deadline past the end of time is simply "never".
        Instant(self.0.saturating_add(d.0))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, o: Duration) -> Duration {
        Duration(self.0.saturating_add(o.0))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_ns(1), Instant::MAX);
        assert_eq!(Instant::from_ns(5) - Instant::from_ns(9), Duration::ZERO);
        assert_eq!(Duration::from_ms(2).as_ns(), 2_000_000);
        assert_eq!(Duration::from_us(3).as_ns(), 3_000);
        assert_eq!(Duration::from_us(u64::MAX).as_ns(), u64::MAX);
        assert_eq!(Duration::from_ms(u64::MAX / 1_000).as_ns(), u64::MAX);
    }
}
