//! Fault rules over links, in the manner of turmoil's `rule.rs`: each rule in force looks at
//! a frame arriving at a host and returns a [`Verdict`]; rules are evaluated in the order
//! they were added, and the first `Drop` wins. Rules expire at their heal time.
//!
//! A frame is judged once per link traversal: a frame a rule held back, or a duplicate copy
//! a rule made, is marked judged ([`super::packet::Packet::judged`]) and delivered as it is
//! when it re-arrives. (Judging it again drew loss and duplication twice: loss 0.3 with
//! `delay_max_us` 200 measured 0.49, and one write arrived 14 times.) The mark lives on the
//! frame, not in a table of slab indexes, so nothing outlives the frame: a frame lost on its
//! second pass, or dropped at a crashed host, leaves no trace behind for a later frame that
//! reuses its index.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{NetEvent, Network};
use crate::engine::EventQueue;

/// A frame as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// The sending host, if it is one of ours; for a frame the switch's aggregator relays,
    /// the server whose datagram made the aggregator send it (so a partition between two
    /// servers also cuts what the aggregator relays between them).
    pub src: Option<usize>,
    /// The receiving host, or [`AGGREGATOR`] for a datagram into the switch's aggregator.
    pub dst: usize,
}

/// `Frame::dst` of a datagram a server sends to the switch's HovercRaft++ aggregator, which
/// acts for the other servers: a node cut off from them is cut off from it too.
pub const AGGREGATOR: usize = usize::MAX;

/// What a rule decides about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not this rule's business.
    Pass,
    /// The frame is lost.
    Drop,
    /// The frame goes on, held back by `delay_ns` (0: not at all), and a copy of it
    /// arrives `copy_after_ns` from now.
    Mangle {
        copy_after_ns: Option<u64>,
        delay_ns: u64,
    },
}

/// A network fault in force until it expires.
pub trait Rule {
    /// The rule no longer applies to frames arriving at or after this time.
    fn until_ns(&self) -> u64;
    /// The verdict on `frame`; random choices come from the network's seeded stream.
    fn verdict(&mut self, frame: &Frame, rng: &mut ChaCha8Rng) -> Verdict;
}

/// Servers in different groups cannot talk (`group_of[server]`, MAX = unlisted).
pub struct Partition {
    pub until_ns: u64,
    pub group_of: Vec<usize>,
}

impl Rule for Partition {
    fn until_ns(&self) -> u64 {
        self.until_ns
    }
    fn verdict(&mut self, f: &Frame, _: &mut ChaCha8Rng) -> Verdict {
        // Only frames between two servers (`group_of` has one entry per server).
        let src = f.src.and_then(|s| self.group_of.get(s));
        match (src, self.group_of.get(f.dst)) {
            (Some(a), Some(b)) if a != b => Verdict::Drop,
            _ => Verdict::Pass,
        }
    }
}

/// Frames from one host to another are lost.
pub struct OneWay {
    pub until_ns: u64,
    pub from: usize,
    pub to: usize,
}

impl Rule for OneWay {
    fn until_ns(&self) -> u64 {
        self.until_ns
    }
    fn verdict(&mut self, f: &Frame, _: &mut ChaCha8Rng) -> Verdict {
        if f.src == Some(self.from) && f.dst == self.to {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// Frames between `node` and the other servers are lost: those it receives (`inbound`),
/// those it sends (`outbound`), or both.
pub struct Isolate {
    pub until_ns: u64,
    pub node: usize,
    pub servers: usize,
    pub inbound: bool,
    pub outbound: bool,
}

impl Rule for Isolate {
    fn until_ns(&self) -> u64 {
        self.until_ns
    }
    fn verdict(&mut self, f: &Frame, _: &mut ChaCha8Rng) -> Verdict {
        let Some(src) = f.src.filter(|&s| s < self.servers && s != f.dst) else {
            return Verdict::Pass;
        };
        let cut_in = self.inbound && f.dst == self.node;
        let cut_out =
            self.outbound && src == self.node && (f.dst < self.servers || f.dst == AGGREGATOR);
        if cut_in || cut_out {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// Frames arriving at `node` may be lost, duplicated or delayed (uniformly in
/// `delay_min_ns..=delay_max_ns`).
pub struct Chaos {
    pub until_ns: u64,
    pub node: usize,
    pub loss: f64,
    pub duplicate: f64,
    pub delay_min_ns: u64,
    pub delay_max_ns: u64,
}

impl Rule for Chaos {
    fn until_ns(&self) -> u64 {
        self.until_ns
    }
    fn verdict(&mut self, f: &Frame, rng: &mut ChaCha8Rng) -> Verdict {
        if f.dst != self.node {
            return Verdict::Pass;
        }
        // The draws come in a fixed order: loss, duplicate (and the copy's delay), delay.
        if rng.gen::<f64>() < self.loss {
            return Verdict::Drop;
        }
        let copy_after_ns =
            (rng.gen::<f64>() < self.duplicate).then(|| rng.gen_range(0..=self.delay_max_ns));
        let delay_ns = if self.delay_max_ns > 0 {
            rng.gen_range(self.delay_min_ns..=self.delay_max_ns)
        } else {
            0
        };
        Verdict::Mangle {
            copy_after_ns,
            delay_ns,
        }
    }
}

/// The rules in force, and the fault model's own accounting.
#[derive(Default)]
pub struct Rules {
    rules: Vec<Box<dyn Rule>>,
    /// Canary `fault-double-draw`: judge held-back frames and duplicate copies again when
    /// they re-arrive (the bug this module once had), to prove the accounting catches it.
    pub(crate) double_draw: bool,
    /// Times the rules judged a frame that was already judged on its link traversal: the
    /// fault model's invariant is that this stays 0 (a frame gets one draw per traversal).
    pub(crate) rejudged: u64,
}

impl Rules {
    /// No rules yet; `double_draw` switches on the canary of that name.
    pub fn new(double_draw: bool) -> Rules {
        Rules {
            double_draw,
            ..Rules::default()
        }
    }
    pub fn push(&mut self, rule: Box<dyn Rule>) {
        self.rules.push(rule);
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Network {
    /// Whether a rule in force drops a datagram from `src` into the switch's aggregator
    /// (only a cut drops it there: the aggregator sits in the switch, past every link rule
    /// of the receiving hosts).
    pub(super) fn aggregator_input_cut(&mut self, t: u64, src: Option<usize>) -> bool {
        self.rules.rules.retain(|r| r.until_ns() > t);
        let frame = Frame {
            src,
            dst: AGGREGATOR,
        };
        for r in &mut self.rules.rules {
            if r.verdict(&frame, &mut self.rng) == Verdict::Drop {
                self.lost_frames += 1;
                return true;
            }
        }
        false
    }

    /// Applies the fault rules to a frame arriving at `host`; true if it was taken away
    /// (lost, or held back to arrive later).
    pub(super) fn apply_rules<E: From<NetEvent> + Copy>(
        &mut self,
        t: u64,
        host: usize,
        pkt: u32,
        q: &mut EventQueue<E>,
    ) -> bool {
        self.rules.rules.retain(|r| r.until_ns() > t);
        let p = self.packets.get_mut(pkt);
        if p.judged {
            if !self.rules.double_draw {
                // Judged on this traversal already: delivered as it is (once).
                p.judged = false;
                return false;
            }
            self.rules.rejudged += 1;
        }
        let src = match p.relayed_for {
            Some(origin) => Some(origin as usize),
            None => self.ip_to_host.get(p.src.ip()).copied(),
        };
        let frame = Frame { src, dst: host };
        let mut delay = 0;
        for r in &mut self.rules.rules {
            match r.verdict(&frame, &mut self.rng) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    self.lost_frames += 1;
                    self.packets.remove(pkt);
                    return true;
                }
                Verdict::Mangle {
                    copy_after_ns,
                    delay_ns,
                } => {
                    if let Some(after) = copy_after_ns {
                        let mut copy = self.packets.get(pkt).copy();
                        copy.judged = true;
                        let c = self.packets.insert(copy);
                        q.schedule(
                            t + after,
                            E::from(NetEvent::HostArrive {
                                host: host as u32,
                                pkt: c,
                            }),
                        );
                    }
                    delay = delay.max(delay_ns);
                }
            }
        }
        let p = self.packets.get_mut(pkt);
        if std::mem::take(&mut p.judged) {
            // Canary `fault-double-draw` only: a re-arrival is not held back again.
            return false;
        }
        if delay > 0 {
            p.judged = true;
            q.schedule(
                t + delay,
                E::from(NetEvent::HostArrive {
                    host: host as u32,
                    pkt,
                }),
            );
            return true;
        }
        false
    }
}
