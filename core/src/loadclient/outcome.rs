//! What each request's outcome counts for, as a client sees it.
//!
//! Latency is measured at the client. Only requests *sent* inside the measurement window
//! [start, end) are measured, including those answered after the window closes, so an
//! overloaded run reports its real queueing delay. Throughput counts replies *received*
//! inside the window. The timeline buckets every outcome by when it reached the client.
//!
//! Times are ns from the start of the run (simulated, or since the load generator began);
//! a request's tag is its (scheduled) send time.

use hdrhistogram::Histogram;

use crate::summary::Timeline;

/// Counters and histograms of one run's client outcomes.
pub struct Outcomes {
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub latency_ns: Histogram<u64>,
    pub sent_in_window: u64,
    pub completed_in_window: u64,
    pub measured_dropped: u64,
    pub measured_timed_out: u64,
    pub client_refused: u64,
    /// Per-bucket completions and latency over the whole run, when asked for.
    pub timeline: Option<Timeline>,
}

impl Outcomes {
    pub fn new(window_start_ns: u64, window_end_ns: u64, max_latency_ns: u64) -> Self {
        Outcomes {
            window_start_ns,
            window_end_ns,
            latency_ns: Histogram::new_with_bounds(1, max_latency_ns.max(2), 3)
                .expect("valid histogram bounds"),
            sent_in_window: 0,
            completed_in_window: 0,
            measured_dropped: 0,
            measured_timed_out: 0,
            client_refused: 0,
            timeline: None,
        }
    }

    pub fn in_window(&self, t_ns: u64) -> bool {
        t_ns >= self.window_start_ns && t_ns < self.window_end_ns
    }

    pub fn window_s(&self) -> f64 {
        (self.window_end_ns - self.window_start_ns) as f64 / 1e9
    }

    /// A send at `tag_ns`: taken by the client endpoint, or refused (too many in flight).
    pub fn on_send(&mut self, tag_ns: u64, accepted: bool) {
        if !self.in_window(tag_ns) {
            return;
        }
        if accepted {
            self.sent_in_window += 1;
        } else {
            self.client_refused += 1;
        }
    }

    /// A RESPONSE at `now_ns` to the request sent at `tag_ns`.
    pub fn on_response(&mut self, now_ns: u64, tag_ns: u64, latency_ns: u64) {
        if self.in_window(now_ns) {
            self.completed_in_window += 1;
        }
        if self.in_window(tag_ns) {
            self.latency_ns.saturating_record(latency_ns);
        }
        if let Some(tl) = &mut self.timeline {
            let b = tl.bucket(now_ns);
            b.completed += 1;
            b.latency_ns.saturating_record(latency_ns);
        }
    }

    /// A DROP at `now_ns`: refused by the server that answered.
    pub fn on_dropped(&mut self, now_ns: u64, tag_ns: u64) {
        if self.in_window(tag_ns) {
            self.measured_dropped += 1;
        }
        if let Some(tl) = &mut self.timeline {
            tl.bucket(now_ns).dropped += 1;
        }
    }

    /// No answer before the client's timeout, noticed at `now_ns`.
    pub fn on_timed_out(&mut self, now_ns: u64, tag_ns: u64) {
        if self.in_window(tag_ns) {
            self.measured_timed_out += 1;
        }
        if let Some(tl) = &mut self.timeline {
            tl.bucket(now_ns).timed_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_sent_in_the_window_are_measured() {
        let mut o = Outcomes::new(100, 200, 1_000);
        o.timeline = Some(Timeline::new(100, 300, 1_000));
        o.on_send(50, true);
        o.on_send(150, true);
        o.on_send(150, false);
        assert_eq!((o.sent_in_window, o.client_refused), (1, 1));
        // Sent before the window, answered inside it: a completion, not a latency sample.
        o.on_response(120, 50, 70);
        // Sent inside, answered after: a latency sample, not a completion.
        o.on_response(250, 150, 100);
        assert_eq!(o.completed_in_window, 1);
        assert_eq!(o.latency_ns.len(), 1);
        o.on_dropped(160, 150);
        o.on_timed_out(260, 60);
        assert_eq!((o.measured_dropped, o.measured_timed_out), (1, 0));
        let tl = o.timeline.as_ref().unwrap();
        assert_eq!(tl.buckets[1].completed + tl.buckets[2].completed, 2);
        assert_eq!((tl.buckets[1].dropped, tl.buckets[2].timed_out), (1, 1));
    }
}
