//! Raft safety, online: at most one leader per term; a leader commits by counting only
//! entries of its own term (§5.4.2); state machine safety (no two nodes execute different
//! entries at one index, which with per-node log order also covers log matching for
//! everything executed).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use hovercraft_core::node::NodeEvent;
use hovercraft_core::raft::Role;

use super::checker::{Checker, Event};
use super::Report;
use crate::world::World;

/// Findings reported at most (later ones add nothing a human reads).
pub const MAX_FINDINGS: usize = 20;
pub struct RaftSafety {
    /// Terms whose leader is remembered; later terms are not checked for two leaders.
    max_terms: usize,
    /// Log indexes whose executed entry is remembered; later indexes are not checked.
    max_indexes: usize,
    findings: Vec<String>,
    leader_of_term: BTreeMap<u64, usize>,
    /// index → (term, client, req_id, node) of its first execution.
    executed: BTreeMap<u64, (u64, SocketAddrV4, u16, usize)>,
    terms_unchecked: bool,
    indexes_unchecked: bool,
}

impl RaftSafety {
    pub fn new(max_terms: usize, max_indexes: usize) -> RaftSafety {
        RaftSafety {
            max_terms,
            max_indexes,
            findings: Vec::new(),
            leader_of_term: BTreeMap::new(),
            executed: BTreeMap::new(),
            terms_unchecked: false,
            indexes_unchecked: false,
        }
    }

    fn found(&mut self, what: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(what);
        }
    }
}

impl Checker for RaftSafety {
    fn on_event(&mut self, ev: &Event<'_>) {
        let Event::Node { t_ns, host, event } = *ev else {
            return;
        };
        match *event {
            NodeEvent::RoleChanged {
                role: Role::Leader,
                term,
                ..
            } => {
                if let Some(&other) = self.leader_of_term.get(&term) {
                    if other != host {
                        self.found(format!(
                            "two leaders in term {term}: node {other} and node {host} (at {t_ns} ns)"
                        ));
                    }
                } else if self.leader_of_term.len() < self.max_terms {
                    self.leader_of_term.insert(term, host);
                } else {
                    self.terms_unchecked = true;
                }
            }
            NodeEvent::Executed {
                index,
                term,
                client,
                req_id,
                ..
            } if index > 0 => match self.executed.get(&index) {
                Some(&(t, c, id, first)) if (t, c, id) != (term, client, req_id) => {
                    self.found(format!(
                        "state machine safety: index {index} executed as {c}#{id} (term {t}) on node {first} but as {client}#{req_id} (term {term}) on node {host} at {t_ns} ns"
                    ));
                }
                Some(_) => {}
                None if self.executed.len() < self.max_indexes => {
                    self.executed.insert(index, (term, client, req_id, host));
                }
                None => self.indexes_unchecked = true,
            },
            NodeEvent::Committed {
                index,
                entry_term,
                term,
            } if entry_term != term => {
                self.found(format!(
                    "node {host} committed index {index} of term {entry_term} by counting replicas in term {term} (Raft §5.4.2, Figure 8)"
                ));
            }
            _ => {}
        }
    }

    fn finish(&self, _: &World, r: &mut Report) {
        r.safety.extend(self.findings.iter().cloned());
        if self.terms_unchecked {
            r.undecided.push(format!(
                "one leader per term: only the first {} terms were checked",
                self.max_terms
            ));
        }
        if self.indexes_unchecked {
            r.undecided.push(format!(
                "state machine safety: only the first {} indexes were checked",
                self.max_indexes
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(c: &mut RaftSafety, host: usize, term: u64) {
        c.on_event(&Event::Node {
            t_ns: term,
            host,
            event: &NodeEvent::RoleChanged {
                role: Role::Leader,
                term,
                leader: Some(host as u8),
            },
        });
    }

    #[test]
    fn two_leaders_in_a_term_are_found_and_terms_past_the_cap_are_left_undecided() {
        let mut c = RaftSafety::new(2, 10);
        leader(&mut c, 0, 1);
        leader(&mut c, 1, 1);
        assert_eq!(c.findings.len(), 1);
        leader(&mut c, 1, 2);
        // Term 3 is past the cap: not remembered, so a second leader in it goes unseen.
        leader(&mut c, 2, 3);
        leader(&mut c, 0, 3);
        assert_eq!(c.findings.len(), 1);
        assert!(c.terms_unchecked);
    }
}
