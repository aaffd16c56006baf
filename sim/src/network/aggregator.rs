//! The HovercRaft++ aggregator, hosted in the ToR switch's data path: frames addressed to
//! the switch are handed to it, and what it sends leaves through the switch's egress
//! queues after the aggregator's latency. It can fail and restart (a fault), losing its
//! state.

use std::io::Write;

use bytes::Bytes;

use hovercraft_core::node::Mode;
use hovercraft_core::switch::{Aggregator, AggregatorConfig};

use super::packet::Packet;
use super::{addr, wire_bytes, NetEvent, Network};
use crate::engine::EventQueue;
use crate::scenario::Scenario;
use crate::trace::{trace, Tracer};

/// The aggregator slot of the switch: configured in HovercRaft++ mode only.
pub struct AggregatorHost {
    /// `None` while it is down.
    running: Option<Aggregator>,
    cfg: Option<AggregatorConfig>,
    latency_ns: u64,
    /// Frames that reached it while it was down.
    pub(crate) drops: u64,
}

impl AggregatorHost {
    pub fn new(scenario: &Scenario) -> AggregatorHost {
        let cfg = (scenario.mode == Mode::HovercraftPlusPlus).then(|| AggregatorConfig {
            peers: (0..scenario.nodes as usize)
                .map(addr::server_addr)
                .collect(),
            slots: scenario.network.aggregator_slots,
        });
        AggregatorHost {
            running: cfg
                .clone()
                .map(|c| Aggregator::new(c).expect("validated cluster size")),
            cfg,
            latency_ns: scenario.network.aggregator_latency_ns,
            drops: 0,
        }
    }

    /// Whether the switch hosts an aggregator at all (up or down).
    pub fn is_hosted(&self) -> bool {
        self.cfg.is_some()
    }

    /// The aggregator fails: its state is lost.
    pub fn fail(&mut self) {
        self.running = None;
    }

    /// The aggregator restarts with empty state.
    pub fn restart(&mut self) {
        self.running = self
            .cfg
            .clone()
            .map(|c| Aggregator::new(c).expect("validated cluster size"));
    }
}

impl Network {
    /// The switch's data path runs the aggregator on a frame addressed to it.
    pub(super) fn on_aggregator<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        s: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
        tr: &mut Tracer,
    ) {
        let p = self.packets.remove(pkt);
        if self.aggregator.running.is_none() {
            self.aggregator.drops += 1;
            trace!(tr, t, "drop aggregator-down {}", p.src);
            return;
        }
        let sender = self.ip_to_host.get(p.src.ip()).copied();
        if self.aggregator_input_cut(t, sender) {
            trace!(tr, t, "drop aggregator-cut {}", p.src);
            return;
        }
        let Some(agg) = self.aggregator.running.as_mut() else {
            return;
        };
        if let Err(e) = agg.handle_datagram(p.src, &p.payload) {
            trace!(tr, t, "aggregator-reject {}: {e}", p.src);
        }
        let egress_ns = t + self.aggregator.latency_ns;
        // What the aggregator sends now, it sends because of this datagram: fault rules
        // between servers judge it as a frame from this datagram's sender.
        let origin = self.ip_to_host.get(p.src.ip()).map(|&h| h as u32);
        let mut outs = Vec::new();
        while let Some(tx) = agg.poll_transmit() {
            outs.push(tx);
        }
        for tx in outs {
            let Some(&h) = self.ip_to_host.get(tx.dst.ip()) else {
                self.unroutable += 1;
                continue;
            };
            let port = self.topo.switches[s].route[h];
            let wb = wire_bytes(tx.payload.len());
            let mut frame = Packet::new(addr::switch_addr(), tx.dst, Bytes::from(tx.payload), wb);
            frame.relayed_for = origin;
            let copy = self.packets.insert(frame);
            self.forward_at(egress_ns, s, port, copy, q, tr);
        }
    }
}
