//! Persist before send (DESIGN.md §4), online: a granted vote goes out only once storage
//! holds that vote, and an AppendEntries acknowledgement only once storage holds the
//! acknowledged entries, with the body of every write among them (checked when the storage
//! keeps a log image).

use hovercraft_core::wire::raft::{AppendResult, RaftBody, RaftMessage};
use hovercraft_core::wire::{Header, MsgType};

use super::checker::{Checker, Event};
use super::Report;
use crate::storage::Storage;
use crate::world::World;

/// Violations remembered (and reported); later ones are only counted.
pub const MAX_FINDINGS: usize = 5;

#[derive(Default)]
pub struct PersistBeforeSend {
    findings: Vec<String>,
    /// Every violation seen, reported or not.
    pub violations: u64,
}

impl Checker for PersistBeforeSend {
    fn on_event(&mut self, ev: &Event<'_>) {
        let Event::Transmit {
            t_ns,
            host,
            storage,
            payload,
        } = *ev
        else {
            return;
        };
        if let Some(v) = violation(storage, payload, host) {
            self.violations += 1;
            if self.findings.len() < MAX_FINDINGS {
                self.findings.push(format!("at {t_ns} ns: {v}"));
            }
        }
    }

    fn finish(&self, _: &World, r: &mut Report) {
        for v in &self.findings {
            r.safety.push(format!("persist before send: {v}"));
        }
    }
}

/// What `payload`, sent by `host` while its storage holds `storage`, violates, if anything.
fn violation(storage: &Storage, payload: &[u8], host: usize) -> Option<String> {
    let (h, body) = Header::decode(payload).ok()?;
    if h.msg_type != MsgType::RaftRep || !(h.first && h.last) {
        return None;
    }
    let m = RaftMessage::decode(body).ok()?;
    let image = storage.image();
    match m.body {
        // Storage holding a later term also keeps the promise: a node that durably moved past
        // term T never votes in T again, whatever it wrote for T. (Harsh seed 3998: a vote of
        // term 2 held behind a slow write queue went out after the queue drained, and the
        // drain had already reached the node's move to term 3.)
        RaftBody::VoteReply { granted: true }
            if image.term < m.term || (image.term == m.term && image.voted_for.is_none()) =>
        {
            Some(format!(
                "node {host} granted a vote in term {} before storage held it (durable term {}, vote {:?})",
                m.term, image.term, image.voted_for
            ))
        }
        RaftBody::AppendEntriesRep {
            result: AppendResult::Success | AppendResult::PartialMissing,
            last_log_idx,
            ..
        } if storage.keeps_image() && image.last_index() < last_log_idx => Some(format!(
            "node {host} acknowledged index {last_log_idx} with storage holding up to {}",
            image.last_index()
        )),
        // An acknowledgement also promises the bodies of the writes it covers (the leader
        // compacts behind it): harsh seed 2434 lost a write whose body was only in memory.
        RaftBody::AppendEntriesRep {
            result: AppendResult::Success,
            last_log_idx,
            ..
        } if storage
            .first_bodiless_write()
            .is_some_and(|i| i <= last_log_idx) =>
        {
            Some(format!(
                "node {host} acknowledged index {last_log_idx} while the write at index {} is durable without its body",
                storage.first_bodiless_write().unwrap_or_default()
            ))
        }
        _ => None,
    }
}
