//! Exactly-once replies: at most one reply per log index, only from the entry's designated
//! replier, and only for an entry that ended up committed. Replies are recorded as they
//! happen and judged at the end against the log of the live node that committed most.
//!
//! And exactly-once per *request* (client address, req_id), as sent: a request is executed
//! at one log index only (every replica may execute that index), is answered at most once,
//! and a DROP from the leader of term T (a promise: not ordered in T) is never followed by
//! an execution of an entry of term T. A client reusing a req_id starts a new request. One
//! request duplicated into two log indexes, each answered once, passes the per-index checks
//! and fails these (issue 14).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use rustc_hash::FxHashMap;

use hovercraft_core::node::NodeEvent;

use super::checker::{Checker, Event};
use super::Report;
use crate::world::World;

/// Findings reported at most, counting those of the checkers reported before this one.
const MAX_FINDINGS: usize = 20;

/// One reply: (node, client, req_id, when).
type Reply = (usize, SocketAddrV4, u16, u64);

/// What one request (as sent) led to.
#[derive(Default)]
struct Request {
    /// (log index, entry term) of its first execution.
    executed: Option<(u64, u64)>,
    replies: u32,
    /// Terms whose leader refused it with DROP.
    promises: Vec<u64>,
    /// A violation was reported for it (one finding per request).
    reported: bool,
}

pub struct Replies {
    /// Log indexes whose replies are remembered; replies to later indexes are not checked.
    max_indexes: usize,
    /// Replies to one index remembered (all are counted).
    max_per_index: usize,
    /// index → how many replies it got, and the first of them.
    replies: BTreeMap<u64, (usize, Vec<Reply>)>,
    unchecked: bool,
    /// Requests in flight or done, by identity (at most `max_indexes`).
    requests: FxHashMap<(SocketAddrV4, u16), Request>,
    requests_unchecked: bool,
    /// Per-request violations, in the order found (at most MAX_FINDINGS).
    findings: Vec<String>,
}

impl Replies {
    pub fn new(max_indexes: usize, max_per_index: usize) -> Replies {
        Replies {
            max_indexes,
            max_per_index,
            replies: BTreeMap::new(),
            unchecked: false,
            requests: FxHashMap::default(),
            requests_unchecked: false,
            findings: Vec::new(),
        }
    }

    fn found(&mut self, f: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(f);
        }
    }

    /// Per-request bookkeeping; `None` for a request sent before the cap was reached
    /// or never seen sent.
    fn request(&mut self, client: SocketAddrV4, req_id: u16) -> Option<&mut Request> {
        self.requests.get_mut(&(client, req_id))
    }

    fn on_request_event(&mut self, t_ns: u64, host: usize, event: &NodeEvent) {
        match *event {
            NodeEvent::Executed {
                client,
                req_id,
                index,
                term,
                ..
            } if index > 0 => {
                let Some(r) = self.request(client, req_id) else {
                    return;
                };
                let first = *r.executed.get_or_insert((index, term));
                let broken = r.promises.contains(&term);
                let new = !r.reported && (first.0 != index || broken);
                r.reported |= new;
                if new && first.0 != index {
                    self.found(format!("{client}#{req_id} executed at two log indexes: {} and {index} (node {host}, {t_ns} ns)", first.0));
                } else if new {
                    self.found(format!("{client}#{req_id} was refused with DROP by the leader of term {term}, yet executed at index {index} of term {term} (node {host}, {t_ns} ns)"));
                }
            }
            NodeEvent::Replied { client, req_id, .. } => {
                let Some(r) = self.request(client, req_id) else {
                    return;
                };
                r.replies += 1;
                let new = r.replies == 2 && !r.reported;
                r.reported |= new;
                if new {
                    self.found(format!(
                        "{client}#{req_id} answered twice (node {host}, {t_ns} ns)"
                    ));
                }
            }
            NodeEvent::Dropped {
                client,
                req_id,
                leader_term: Some(term),
            } => {
                let Some(r) = self.request(client, req_id) else {
                    return;
                };
                if !r.promises.contains(&term) && r.promises.len() < 8 {
                    r.promises.push(term);
                }
                let broken = r.executed.filter(|&(_, t)| t == term && !r.reported);
                r.reported |= broken.is_some();
                if let Some((index, t)) = broken {
                    self.found(format!("{client}#{req_id} was executed at index {index} of term {t}, then refused with DROP by the leader of term {term} (node {host}, {t_ns} ns)"));
                }
            }
            _ => {}
        }
    }
}

impl Checker for Replies {
    fn on_event(&mut self, ev: &Event<'_>) {
        if let Event::RequestSent { addr, id, .. } = *ev {
            // A new request: a reused req_id starts afresh.
            let key = (addr, id.req_id);
            if self.requests.len() < self.max_indexes || self.requests.contains_key(&key) {
                self.requests.insert(key, Request::default());
            } else {
                self.requests_unchecked = true;
            }
            return;
        }
        if let Event::Node { t_ns, host, event } = *ev {
            self.on_request_event(t_ns, host, event);
        }
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
        for f in &self.findings {
            if r.safety.len() < MAX_FINDINGS {
                r.safety.push(f.clone());
            }
        }
        if self.requests_unchecked {
            r.undecided.push(format!(
                "exactly-once requests: only the first {} requests were checked",
                self.max_indexes
            ));
        }
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
