//! Exactly-once replies: at most one reply per log index, only from the entry's designated
//! replier, and only for an entry that ended up committed. Replies are recorded as they
//! happen and judged at the end against the log of the live node that committed most.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use hovercraft_core::node::NodeEvent;

use super::checker::{Checker, Event};
use super::Report;
use crate::world::World;

/// Findings reported at most, counting those of the checkers reported before this one.
const MAX_FINDINGS: usize = 20;

/// One reply: (node, client, req_id, when).
type Reply = (usize, SocketAddrV4, u16, u64);

pub struct Replies {
    /// Log indexes whose replies are remembered; replies to later indexes are not checked.
    max_indexes: usize,
    /// Replies to one index remembered (all are counted).
    max_per_index: usize,
    /// index → how many replies it got, and the first of them.
    replies: BTreeMap<u64, (usize, Vec<Reply>)>,
    unchecked: bool,
}

impl Replies {
    pub fn new(max_indexes: usize, max_per_index: usize) -> Replies {
        Replies {
            max_indexes,
            max_per_index,
            replies: BTreeMap::new(),
            unchecked: false,
        }
    }
}

impl Checker for Replies {
    fn on_event(&mut self, ev: &Event<'_>) {
        let Event::Node {
            t_ns,
            host,
            event:
                &NodeEvent::Replied {
                    client,
                    req_id,
                    index,
                },
        } = *ev
        else {
            return;
        };
        if index == 0 {
            return;
        }
        if self.replies.len() >= self.max_indexes && !self.replies.contains_key(&index) {
            self.unchecked = true;
            return;
        }
        let (count, first) = self.replies.entry(index).or_default();
        *count += 1;
        if first.len() < self.max_per_index {
            first.push((host, client, req_id, t_ns));
        }
    }

    fn finish(&self, w: &World, r: &mut Report) {
        // The reference log: the live node that committed most.
        let reference = w
            .live_servers()
            .into_iter()
            .filter_map(|h| {
                w.node(h)
                    .and_then(|n| n.replica())
                    .map(|r| (r.commit_index(), h))
            })
            .max();
        for (index, (count, rs)) in &self.replies {
            if *count > 1 && r.safety.len() < MAX_FINDINGS {
                r.safety
                    .push(format!("index {index} answered {count} times: {rs:?}"));
            }
            let Some((commit, h)) = reference else {
                continue;
            };
            let log = w.node(h).and_then(|n| n.replica()).map(|r| r.log());
            let Some(log) = log else { continue };
            let (host, client, req_id, t) = rs[0];
            if *index > commit {
                if r.safety.len() < MAX_FINDINGS {
                    r.safety.push(format!("node {host} answered {client}#{req_id} (index {index}) at {t} ns, but index {index} was never committed"));
                }
                continue;
            }
            if let Some(e) = log.get(*index) {
                if (e.client, e.req_id) != (client, req_id) && r.safety.len() < MAX_FINDINGS {
                    r.safety.push(format!(
                        "node {host} answered {client}#{req_id} for index {index}, which holds {}#{}",
                        e.client, e.req_id
                    ));
                } else if e.replier as usize != host && r.safety.len() < MAX_FINDINGS {
                    r.safety.push(format!(
                        "node {host} answered index {index}, whose designated replier is node {}",
                        e.replier
                    ));
                }
            }
        }
        if self.unchecked {
            r.undecided.push(format!(
                "exactly-once replies: only the first {} indexes were checked",
                self.max_indexes
            ));
        }
    }
}
