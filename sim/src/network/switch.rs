//! Switches: store and forward (forwarding latency, then the egress port's output queue),
//! unicast by the topology's routes, IP multicast replicated onto every member port except
//! the one the frame came in on. Frames addressed to the switch itself go to the aggregator.

use std::io::Write;

use super::link::{Bandwidth, Enqueued, TxQueue};
use super::topology::{Peer, SwitchTables};
use super::{NetEvent, Network};
use crate::engine::EventQueue;
use crate::trace::{trace, Tracer};

/// One switch: an output queue per port.
pub struct Switch {
    pub(crate) ports: Vec<TxQueue>,
}

impl Switch {
    pub fn new(tables: &SwitchTables, queue_bytes: u64) -> Switch {
        Switch {
            ports: tables
                .ports
                .iter()
                .map(|(_, l)| TxQueue::new(Bandwidth::from_gbps(l.bandwidth_gbps), queue_bytes))
                .collect(),
        }
    }
}

impl Network {
    /// A frame arrives at switch `s` on `in_port`.
    pub fn on_switch_arrive<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        s: usize,
        in_port: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) {
        if self.aggregator.is_hosted() && self.packets.get(pkt).dst == super::addr::switch_addr() {
            self.on_aggregator(t, s, pkt, q, tr);
            return;
        }
        let dst_ip = *self.packets.get(pkt).dst.ip();
        if dst_ip.is_multicast() {
            let ports = match self.groups.get(&dst_ip) {
                Some(members) => self.topo.multicast_ports(s, members, in_port),
                None => Vec::new(),
            };
            if ports.is_empty() {
                self.unroutable += 1;
            }
            let p = self.packets.remove(pkt);
            for port in ports {
                let copy = self.packets.insert(p.copy());
                self.forward(t, s, port, copy, q, tr);
            }
        } else {
            match self.ip_to_host.get(&dst_ip) {
                Some(&h) => {
                    let port = self.topo.switches[s].route[h];
                    self.forward(t, s, port, pkt, q, tr);
                }
                None => {
                    self.unroutable += 1;
                    let p = self.packets.remove(pkt);
                    trace!(tr, t, "drop unroutable s{s} {}->{}", p.src, p.dst);
                }
            }
        }
    }

    fn forward<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        s: usize,
        port: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) {
        self.forward_at(t + self.switch_latency_ns, s, port, pkt, q, tr);
    }

    /// Queues a frame on switch `s`'s egress `port` at `egress_ns`.
    pub(super) fn forward_at<E: From<NetEvent> + Copy>(
        &mut self,
        egress_ns: u64,
        s: usize,
        port: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) {
        let t = egress_ns;
        let wb = self.packets.get(pkt).wire_bytes;
        match self.switches[s].ports[port].enqueue(egress_ns, wb) {
            Enqueued::Dropped => {
                let p = self.packets.remove(pkt);
                trace!(
                    tr,
                    t,
                    "drop switch s{s}p{port} {}->{} bytes={wb}",
                    p.src,
                    p.dst
                );
            }
            Enqueued::Departs { end_ns } => {
                let (peer, link) = self.topo.switches[s].ports[port];
                let at = end_ns + link.latency_ns;
                let ev = match peer {
                    Peer::Host(h) => NetEvent::HostArrive {
                        host: h as u32,
                        pkt,
                    },
                    Peer::Switch { switch, port } => NetEvent::SwitchArrive {
                        switch: switch as u32,
                        in_port: port as u32,
                        pkt,
                    },
                };
                q.schedule(at, E::from(ev));
            }
        }
    }
}
