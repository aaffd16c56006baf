//! The client driver: each client machine runs an open-loop load generator over several
//! R2P2 client ports, sends requests where the mode wants them (the leader it believes in,
//! or the cluster's multicast group), and records what comes back (latency, drops,
//! timeouts, and for the kv app the history the linearizability checker needs).

use std::io::Write;
use std::net::SocketAddrV4;

use hovercraft_core::loadclient::Targets;
use hovercraft_core::r2p2::client::{Client, ClientConfig, ClientEvent, ClientStats};
use hovercraft_core::rng::{stream_rng, Stream};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::framing::ReassemblyConfig;

use super::{Ev, Role, World};
use crate::check::checker::{Event, RequestId};
use crate::check::Checkers;
use crate::network::addr::{client_ip, cluster_group, server_addr, CLIENT_BASE_PORT};
use crate::network::packet::Packet;
use crate::scenario::Scenario;
use crate::trace::trace;
use crate::workload::Generator;

/// How often client machines check for timed-out requests. Coarse on purpose: a load
/// generator notices a timeout a little late, and the run saves one event per request.
pub const CLIENT_TICK_NS: u64 = 1_000_000;

pub(super) struct ClientHost {
    ports: Vec<Client>,
    /// Where this machine's requests go; in `raft` mode, the server it believes leads
    /// (learned from replies and redirects; moved on after a timeout).
    targets: Targets,
    next_port: usize,
    generator: Generator,
}

impl ClientHost {
    /// Client machine `m` of `scenario`.
    pub(super) fn new(scenario: &Scenario, m: usize) -> ClientHost {
        let cc = &scenario.clients;
        let ip = client_ip(m);
        let ports = (0..cc.ports_per_machine)
            .map(|p| {
                Client::new(
                    SocketAddrV4::new(ip, CLIENT_BASE_PORT + p as u16),
                    ClientConfig {
                        timeout: Duration::from_ms(cc.timeout_ms),
                        max_outstanding: cc.max_outstanding_per_port as usize,
                        reassembly: ReassemblyConfig::default(),
                    },
                )
            })
            .collect();
        let generator = Generator::new(
            &scenario.workload,
            cc.machines,
            m as u32,
            stream_rng(scenario.seed, Stream::Client, m as u64),
            stream_rng(scenario.seed, Stream::Workload, m as u64),
        );
        ClientHost {
            ports,
            targets: Targets::new(
                scenario.mode,
                (0..scenario.nodes as usize).map(server_addr).collect(),
                cluster_group(),
            ),
            next_port: 0,
            generator,
        }
    }

    /// The R2P2 counters of all its ports.
    pub(super) fn stats(&self) -> ClientStats {
        let mut r2p2 = ClientStats::default();
        for p in &self.ports {
            r2p2.sent += p.stats.sent;
            r2p2.responses += p.stats.responses;
            r2p2.drops += p.stats.drops;
            r2p2.timeouts += p.stats.timeouts;
            r2p2.unmatched += p.stats.unmatched;
            r2p2.rejected_packets += p.stats.rejected_packets;
        }
        r2p2
    }
}

impl World {
    fn client_mut(&mut self, host: usize) -> &mut ClientHost {
        match &mut self.hosts[host].role {
            Role::Client(c) => c,
            Role::Server(_) => unreachable!("host {host} is a server"),
        }
    }

    /// Schedules client machine `host`'s first request and its first timeout tick.
    pub(super) fn start_client(&mut self, host: usize) {
        let gap = self.client_mut(host).generator.next_gap_ns();
        let host = host as u32;
        self.q.schedule(gap, Ev::ClientArrival { host });
        self.q.schedule(CLIENT_TICK_NS, Ev::ClientTick { host });
    }

    pub(super) fn on_client_arrival(&mut self, t: u64, host: usize) {
        if t >= self.send_end_ns {
            return;
        }
        let mut body = std::mem::take(&mut self.scratch_body);
        let mut out = std::mem::take(&mut self.scratch_tx);
        let c = self.client_mut(host);
        let spec = c.generator.next_request(&mut body);
        let gap = c.generator.next_gap_ns();
        let (dst, policy) = c.targets.target(spec.read_only);
        let port = c.next_port;
        c.next_port = (port + 1) % c.ports.len();
        let client = &mut c.ports[port];
        // The tag is the send time: it says whether the request is measured, and lets the
        // liveness check find requests sent after the faults healed.
        let result = client.send_request(Instant::from_ns(t), dst, policy, &body, t);
        let src = client.local_addr();
        while let Some(tx) = client.poll_transmit() {
            out.push((t, tx.dst, tx.payload));
        }
        self.scratch_body = body;
        self.metrics.on_send(t, result.is_ok());
        match result {
            Ok(req_id) => {
                if let Some(checks) = self.checks.as_mut() {
                    checks.on_event(&Event::RequestSent {
                        t_ns: t,
                        id: RequestId { host, port, req_id },
                        addr: src,
                        kv: spec
                            .kv
                            .as_ref()
                            .map(|(key, write)| (key.as_slice(), write.as_deref())),
                    });
                }
                trace!(self.tracer, t, "send h{host} {src}#{req_id} -> {dst}");
            }
            Err(e) => {
                trace!(self.tracer, t, "refuse h{host} {src}: {e}");
            }
        }
        for (at, dst, payload) in out.drain(..) {
            self.send(at, host, src, dst, payload);
        }
        self.scratch_tx = out;
        self.q
            .schedule(t + gap, Ev::ClientArrival { host: host as u32 });
    }

    pub(super) fn client_receive(&mut self, t: u64, host: usize, p: Packet) {
        let port = p.dst.port().wrapping_sub(CLIENT_BASE_PORT) as usize;
        let c = self.client_mut(host);
        let Some(client) = c.ports.get_mut(port) else {
            self.metrics.unroutable += 1;
            return;
        };
        if let Err(e) = client.handle_datagram(Instant::from_ns(t), p.src, &p.payload) {
            trace!(self.tracer, t, "reject h{host} {}: {e}", p.src);
            return;
        }
        self.drain_client_events(t, host, port);
    }

    pub(super) fn on_client_tick(&mut self, t: u64, host: usize) {
        let c = self.client_mut(host);
        for port in 0..c.ports.len() {
            c.ports[port].handle_timeout(Instant::from_ns(t));
        }
        for port in 0..self.client_mut(host).ports.len() {
            self.drain_client_events(t, host, port);
        }
        if t + CLIENT_TICK_NS <= self.hard_end_ns {
            self.q
                .schedule(t + CLIENT_TICK_NS, Ev::ClientTick { host: host as u32 });
        }
    }

    fn drain_client_events(&mut self, t: u64, host: usize, port: usize) {
        let tracing = self.tracer.is_on();
        let c = match &mut self.hosts[host].role {
            Role::Client(c) => c,
            Role::Server(_) => unreachable!(),
        };
        let mut lines = Vec::new();
        while let Some(ev) = c.ports[port].poll_event() {
            c.targets.on_event(&ev);
            if let Some(checks) = self.checks.as_mut() {
                check_client_event(checks, t, host, port, &ev);
            }
            match ev {
                ClientEvent::Response {
                    req_id,
                    tag,
                    from,
                    latency_ns,
                    ..
                } => {
                    self.metrics.on_response(t, tag, latency_ns);
                    if tracing {
                        lines.push(format!(
                            "done h{host}:{port}#{req_id} from={from} latency_ns={latency_ns}"
                        ));
                    }
                }
                ClientEvent::Dropped { req_id, tag, .. } => {
                    // Refused by the replica that answered; another (the real leader) may still
                    // have ordered it, so its outcome is unknown to the client.
                    self.metrics.on_dropped(t, tag);
                    if tracing {
                        lines.push(format!("dropped h{host}:{port}#{req_id}"));
                    }
                }
                ClientEvent::TimedOut { req_id, tag } => {
                    // Unknown outcome: it may or may not have taken effect.
                    self.metrics.on_timed_out(t, tag);
                    if tracing {
                        lines.push(format!("timeout h{host}:{port}#{req_id}"));
                    }
                }
            }
        }
        // After a timeout the believed leader may be gone: the next one, once per batch.
        c.targets.end_of_events();
        for l in lines {
            trace!(self.tracer, t, "{l}");
        }
    }
}

/// Tells the checkers what a client port saw.
fn check_client_event(
    checks: &mut Checkers,
    t_ns: u64,
    host: usize,
    port: usize,
    ev: &ClientEvent,
) {
    let id = |req_id| RequestId { host, port, req_id };
    checks.on_event(&match *ev {
        ClientEvent::Response {
            req_id,
            from,
            ref body,
            ..
        } => Event::Response {
            t_ns,
            id: id(req_id),
            from,
            body,
        },
        ClientEvent::Dropped { req_id, .. } => Event::Refused {
            t_ns,
            id: id(req_id),
        },
        ClientEvent::TimedOut { req_id, tag } => Event::TimedOut {
            t_ns,
            id: id(req_id),
            tag,
        },
    });
}
