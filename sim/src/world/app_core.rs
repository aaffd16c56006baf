//! The separate application core (scenarios with `app_core: separate`): the network core
//! orders requests and hands them over; this core executes one request at a time (its
//! service time, then its reply's TX cost) and sends the reply itself.

use std::io::Write;
use std::net::SocketAddrV4;

use hovercraft_core::time::Instant;

use super::{Ev, Observation, Observed, Role, World};
use crate::check::checker::Event;
use crate::network::addr::SERVER_PORT;
use crate::trace::trace;

impl World {
    /// Hands ready requests to a separate application core (if idle and not yet woken).
    pub(super) fn kick_app_core(&mut self, at_ns: u64, host: usize) {
        let Role::Server(server) = &mut self.hosts[host].role else {
            return;
        };
        if server.app_run_scheduled || !server.node.has_ready_execution() {
            return;
        }
        server.app_run_scheduled = true;
        let at = at_ns.max(server.app_busy_until_ns);
        self.q.schedule(at, Ev::AppRun { host: host as u32 });
    }

    /// The application core runs one request: its service time, then its reply's TX cost.
    /// A run that costs nothing and sends nothing (a follower executing an entry another
    /// replica answers, at zero service time) would wake the core again at the same instant;
    /// when no other event is queued for that instant that wake-up would be the very next
    /// event, so the next request runs here instead (same order, one event fewer).
    pub(super) fn on_app_run(&mut self, t: u64, host: usize) {
        loop {
            let Some(end) = self.app_run_once(t, host) else {
                return;
            };
            let Role::Server(server) = &self.hosts[host].role else {
                return;
            };
            if end > t
                || !server.node.has_ready_execution()
                || self.q.peek_time_ns().is_some_and(|p| p <= t)
            {
                self.kick_app_core(end, host);
                return;
            }
        }
    }

    /// One request on the application core: when it ends (`None` if nothing ran).
    fn app_run_once(&mut self, t: u64, host: usize) -> Option<u64> {
        let tx_ns = self.scenario.cpu.tx_ns_per_packet;
        let (w0, w1) = (self.metrics.window_start_ns, self.metrics.window_end_ns);
        let observe = self.observe;
        let tracing = self.tracer.is_on();
        let down = self.hosts[host].down;
        let Role::Server(server) = &mut self.hosts[host].role else {
            return None;
        };
        server.app_run_scheduled = false;
        if down {
            return None;
        }
        let now = Instant::from_ns(server.clock.to_node(t));
        let cost = server.node.execute_next(now)?;
        let _ = server.node.take_app_cpu_ns();
        let mut out = std::mem::take(&mut self.scratch_tx);
        let mut n = 0;
        while let Some(tx) = server.node.poll_transmit() {
            n += 1;
            out.push((t + cost + n * tx_ns, tx.dst, tx.payload));
        }
        let end = t + cost + n * tx_ns;
        server.app_busy_until_ns = end;
        server.app_cpu.busy_ns += end - t;
        server.app_cpu.busy_in_window_ns += end.min(w1).saturating_sub(t.max(w0));
        server.app_cpu.handlers += 1;
        if !(tracing || observe || self.checks.is_some()) {
            // The common case: nobody looks, so drain without collecting.
            while server.node.poll_event().is_some() {}
        } else {
            let mut events = Vec::new();
            while let Some(ev) = server.node.poll_event() {
                events.push(ev);
            }
            if tracing {
                for ev in &events {
                    trace!(self.tracer, t, "app h{host} {ev:?}");
                }
            }
            if let Some(checks) = self.checks.as_mut() {
                for event in &events {
                    checks.on_event(&Event::Node {
                        t_ns: t,
                        host,
                        event,
                    });
                }
            }
            if observe {
                self.observations
                    .extend(events.into_iter().map(|what| Observation {
                        t_ns: t,
                        host,
                        what: Observed::Node(what),
                    }));
            }
        }
        let src = SocketAddrV4::new(self.hosts[host].ip, SERVER_PORT);
        for (at, dst, payload) in out.drain(..) {
            self.send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        Some(end)
    }
}
