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
/// Terms whose leader is remembered; later terms are not checked for two leaders.
pub const MAX_TERMS: usize = 1 << 16;
/// Log indexes whose executed entry is remembered; later indexes are not checked.
pub const MAX_INDEXES: usize = 1 << 20;

#[derive(Default)]
pub struct RaftSafety {
    findings: Vec<String>,
    leader_of_term: BTreeMap<u64, usize>,
    /// index → (term, client, req_id, node) of its first execution.
    executed: BTreeMap<u64, (u64, SocketAddrV4, u16, usize)>,
    terms_unchecked: bool,
    indexes_unchecked: bool,
}

impl RaftSafety {
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
                } else if self.leader_of_term.len() < MAX_TERMS {
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
                None if self.executed.len() < MAX_INDEXES => {
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
                "one leader per term: only the first {MAX_TERMS} terms were checked"
            ));
        }
        if self.indexes_unchecked {
            r.undecided.push(format!(
                "state machine safety: only the first {MAX_INDEXES} indexes were checked"
            ));
        }
    }
}
