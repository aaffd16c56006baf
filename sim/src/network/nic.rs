//! Each host's NIC: frames leave through its TX queue into the uplink; arriving frames may
//! be lost (fault rules, configured loss), are counted, and are steered onto an RX ring.

use std::io::Write;
use std::net::SocketAddrV4;

use bytes::Bytes;

use super::link::{Enqueued, TxQueue};
use super::packet::Packet;
use super::{addr, wire_bytes, NetEvent, Network};
use crate::cpu::RxClass;
use crate::engine::EventQueue;
use crate::trace::{describe, trace, Tracer};

/// One host's NIC and its counters.
pub struct Nic {
    pub(crate) tx: TxQueue,
    /// Probability that a frame arriving here is lost, and whether only multicast frames are.
    pub(crate) rx_loss: Option<(f64, bool)>,
    pub(crate) packets_rx: u64,
    pub(crate) bytes_rx: u64,
    pub(crate) packets_tx: u64,
    pub(crate) bytes_tx: u64,
    pub(crate) packets_tx_in_window: u64,
    pub(crate) bytes_tx_in_window: u64,
}

impl Nic {
    pub fn new(tx: TxQueue) -> Nic {
        Nic {
            tx,
            rx_loss: None,
            packets_rx: 0,
            bytes_rx: 0,
            packets_tx: 0,
            bytes_tx: 0,
            packets_tx_in_window: 0,
            bytes_tx_in_window: 0,
        }
    }
}

impl Network {
    /// Host `host` sends a datagram at `t`: it queues on the NIC, then crosses the uplink.
    #[allow(clippy::too_many_arguments)]
    pub fn send<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        host: usize,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: Vec<u8>,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) {
        let wb = wire_bytes(payload.len());
        let nic = &mut self.nics[host];
        match nic.tx.enqueue(t, wb) {
            Enqueued::Dropped => {
                trace!(tr, t, "drop nic h{host} {src}->{dst} bytes={wb}");
            }
            Enqueued::Departs { end_ns } => {
                nic.packets_tx += 1;
                nic.bytes_tx += wb as u64;
                if t >= self.window_ns.0 && t < self.window_ns.1 {
                    nic.packets_tx_in_window += 1;
                    nic.bytes_tx_in_window += wb as u64;
                }
                let (switch, in_port, link) = self.topo.uplink[host];
                let pkt = self
                    .packets
                    .insert(Packet::new(src, dst, Bytes::from(payload), wb));
                q.schedule(
                    end_ns + link.latency_ns,
                    E::from(NetEvent::SwitchArrive {
                        switch: switch as u32,
                        in_port: in_port as u32,
                        pkt,
                    }),
                );
            }
        }
    }

    /// A frame reaches live host `host`'s NIC. Returns the RX ring it is steered onto, or
    /// `None` if it was taken away (lost, or held back to arrive later).
    pub fn receive<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        host: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) -> Option<RxClass> {
        let wb = self.packets.get(pkt).wire_bytes;
        if !self.rules.is_empty() && self.apply_rules(t, host, pkt, q) {
            return None;
        }
        if let Some((p, multicast_only)) = self.nics[host].rx_loss {
            let multicast = self.packets.get(pkt).dst.ip().is_multicast();
            if (multicast || !multicast_only) && rand::Rng::gen::<f64>(&mut self.rng) < p {
                self.lost_frames += 1;
                let lost = self.packets.remove(pkt);
                trace!(tr, t, "lost h{host} {}->{}", lost.src, lost.dst);
                return None;
            }
        }
        let nic = &mut self.nics[host];
        nic.packets_rx += 1;
        nic.bytes_rx += wb as u64;
        if tr.out.is_some() {
            let p = self.packets.get(pkt);
            let what = describe(&p.payload);
            trace!(tr, t, "rx h{host} {}->{} {what} bytes={wb}", p.src, p.dst);
        }
        Some(self.steer(pkt))
    }

    /// The NIC steers by source address: the cluster's own hosts and the aggregator go to
    /// the cluster ring, everyone else to the client ring.
    fn steer(&self, pkt: u32) -> RxClass {
        let src_ip = *self.packets.get(pkt).src.ip();
        if src_ip == *addr::switch_addr().ip()
            || self
                .ip_to_host
                .get(&src_ip)
                .is_some_and(|&h| h < self.n_servers)
        {
            RxClass::Cluster
        } else {
            RxClass::Client
        }
    }
}
