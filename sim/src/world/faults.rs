//! Fault injection: timed faults from the scenario (crashes, restarts, partitions, one-way
//! links, link chaos, slow storage, clock skew, switch failure), applied as composable rules
//! over the network in the manner of turmoil, and the clock model behind clock skew.

use super::*;

/// A network fault in force until `until_ns` (turmoil-style rules that compose).
pub(super) struct LinkRule {
    pub(super) until_ns: u64,
    pub(super) kind: RuleKind,
}

pub(super) enum RuleKind {
    /// Servers in different groups cannot talk (`group_of[server]`, MAX = unlisted).
    Groups(Vec<usize>),
    /// Frames from one server to another are lost.
    OneWay(usize, usize),
    /// Frames arriving at `node` may be lost, duplicated or delayed.
    Chaos {
        node: usize,
        loss: f64,
        duplicate: f64,
        delay_max_ns: u64,
    },
}

/// A node's view of time: it may run fast or slow from some point on (clock skew).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock {
    pub(super) since_ns: u64,
    pub(super) base_ns: u64,
    pub(super) ppm: i64,
}

impl Clock {
    pub(super) fn to_node(self, t: u64) -> u64 {
        let d = t.saturating_sub(self.since_ns) as i128;
        (self.base_ns as i128 + d + d * self.ppm as i128 / 1_000_000).max(0) as u64
    }
    /// The simulated time at which the node's clock reads `tn` (rounded up).
    pub(super) fn sim_time_of(self, tn: u64) -> u64 {
        let d = tn as i128 - self.base_ns as i128;
        let real = if self.ppm == 0 {
            d
        } else {
            // Round up, so the node's clock has reached `tn` when the event fires.
            (d * 1_000_000 + 999_999 + self.ppm as i128) / (1_000_000 + self.ppm as i128)
        };
        (self.since_ns as i128 + real).max(0) as u64
    }
}

impl World {
    pub(super) fn on_fault(&mut self, t: u64, index: usize) {
        if index == u32::MAX as usize {
            // A restart scheduled by CrashLeader.
            let due: Vec<usize> = self
                .pending_restarts
                .iter()
                .filter(|&&(at, _)| at <= t)
                .map(|&(_, h)| h)
                .collect();
            self.pending_restarts.retain(|&(at, _)| at > t);
            for h in due {
                self.restart(t, h);
            }
            return;
        }
        let f = self.scenario.faults[index].clone();
        trace!(self, t, "fault {f:?}");
        let takes_leader = match f {
            Fault::CrashNode { node, .. } => {
                self.leaders().iter().any(|&(h, _)| h == node as usize)
            }
            Fault::IsolateLeader { .. } | Fault::CrashLeader { .. } => !self.leaders().is_empty(),
            _ => false,
        };
        if takes_leader {
            self.leader_lost_at.get_or_insert(t);
        }
        self.note_story(t, format!("fault: {f:?}"));
        let heal_ns = f.heal_ms().map_or(u64::MAX, |h| h * 1_000_000);
        match f {
            Fault::CrashNode { node, .. } => self.crash(node as usize),
            Fault::RestartNode { node, .. } => self.restart(t, node as usize),
            Fault::AggregatorDown { .. } => self.aggregator = None,
            Fault::AggregatorUp { .. } => {
                self.aggregator = self
                    .aggregator_cfg
                    .clone()
                    .map(|c| Aggregator::new(c).expect("validated cluster size"));
            }
            Fault::Partition { groups, .. } => {
                let mut group_of = vec![usize::MAX; self.n_servers];
                for (g, members) in groups.iter().enumerate() {
                    for &n in members {
                        group_of[n as usize] = g;
                    }
                }
                self.rules.push(LinkRule {
                    until_ns: heal_ns,
                    kind: RuleKind::Groups(group_of),
                });
            }
            Fault::CrashLeader { restart_ms, .. } => {
                if let Some(&(leader, _)) = self.leaders().iter().max_by_key(|(_, term)| *term) {
                    self.crash(leader);
                    self.note_story(t, format!("node {leader} (the leader) crashes"));
                    self.pending_restarts.push((restart_ms * 1_000_000, leader));
                    self.q
                        .schedule(restart_ms * 1_000_000, Ev::Fault { index: u32::MAX });
                }
            }
            Fault::IsolateLeader { .. } => {
                if let Some(&(leader, _)) = self.leaders().iter().max_by_key(|(_, term)| *term) {
                    let group_of = (0..self.n_servers)
                        .map(|h| usize::from(h == leader))
                        .collect();
                    trace!(self, t, "isolate h{leader}");
                    self.rules.push(LinkRule {
                        until_ns: heal_ns,
                        kind: RuleKind::Groups(group_of),
                    });
                }
            }
            Fault::OneWay { from, to, .. } => self.rules.push(LinkRule {
                until_ns: heal_ns,
                kind: RuleKind::OneWay(from as usize, to as usize),
            }),
            Fault::LinkChaos {
                node,
                loss,
                duplicate,
                delay_max_us,
                ..
            } => self.rules.push(LinkRule {
                until_ns: heal_ns,
                kind: RuleKind::Chaos {
                    node: node as usize,
                    loss,
                    duplicate,
                    delay_max_ns: delay_max_us * 1_000,
                },
            }),
            Fault::StorageSlow {
                node,
                write_latency_ns,
                ..
            } => {
                if let Role::Server(s) = &mut self.hosts[node as usize].role {
                    s.storage.set_spike(heal_ns, write_latency_ns);
                }
            }
            Fault::ClockSkew { node, ppm, .. } => {
                if let Role::Server(s) = &mut self.hosts[node as usize].role {
                    s.clock = Clock {
                        since_ns: t,
                        base_ns: s.clock.to_node(t),
                        ppm,
                    };
                }
            }
        }
    }

    /// Applies the network fault rules to a frame arriving at `host`; true if it was taken
    /// away (lost, or delayed to arrive later).
    pub(super) fn apply_rules(&mut self, t: u64, host: usize, pkt: u32) -> bool {
        self.rules.retain(|r| r.until_ns > t);
        let src = self.ip_to_host.get(self.packets.get(pkt).src.ip()).copied();
        let servers = self.n_servers;
        let mut delay = 0;
        for r in &self.rules {
            match &r.kind {
                RuleKind::Groups(group_of) => {
                    if let Some(s) = src.filter(|&s| s < servers && host < servers) {
                        if group_of[s] != group_of[host] {
                            self.lost_frames += 1;
                            self.packets.remove(pkt);
                            return true;
                        }
                    }
                }
                RuleKind::OneWay(from, to) => {
                    if src == Some(*from) && host == *to {
                        self.lost_frames += 1;
                        self.packets.remove(pkt);
                        return true;
                    }
                }
                RuleKind::Chaos {
                    node,
                    loss,
                    duplicate,
                    delay_max_ns,
                } => {
                    if host != *node {
                        continue;
                    }
                    use rand::Rng;
                    if self.net_rng.gen::<f64>() < *loss {
                        self.lost_frames += 1;
                        self.packets.remove(pkt);
                        return true;
                    }
                    if self.net_rng.gen::<f64>() < *duplicate {
                        let p = self.packets.get(pkt);
                        let copy = Packet {
                            src: p.src,
                            dst: p.dst,
                            payload: p.payload.clone(),
                            wire_bytes: p.wire_bytes,
                        };
                        let c = self.packets.insert(copy);
                        let at = t + self.net_rng.gen_range(0..=*delay_max_ns);
                        // The copy is exempt from further chaos: it is marked delivered-late.
                        self.late.push(c);
                        self.q.schedule(
                            at,
                            Ev::HostArrive {
                                host: host as u32,
                                pkt: c,
                            },
                        );
                    }
                    if *delay_max_ns > 0 && !self.late.contains(&pkt) {
                        delay = delay.max(self.net_rng.gen_range(0..=*delay_max_ns));
                    }
                }
            }
        }
        if let Some(i) = self.late.iter().position(|&p| p == pkt) {
            self.late.swap_remove(i);
            return false;
        }
        if delay > 0 {
            self.late.push(pkt);
            self.q.schedule(
                t + delay,
                Ev::HostArrive {
                    host: host as u32,
                    pkt,
                },
            );
            return true;
        }
        false
    }
}
