//! The event trace: one line per event (`<ns> <what>`), and how datagrams and node events
//! are written in it.

use std::io::Write;

use hovercraft_core::node::NodeEvent;
use hovercraft_core::wire::Header;

/// Where trace lines go. The first write error stops tracing and is reported when the run
/// ends.
#[derive(Default)]
pub struct Tracer {
    pub(crate) out: Option<Box<dyn Write>>,
    pub(crate) error: Option<std::io::Error>,
}

impl Tracer {
    pub fn set(&mut self, out: Box<dyn Write>) {
        self.out = Some(out);
    }

    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// Flushes the trace; returns the first error seen during the run, if any.
    pub fn finish(&mut self) -> Result<(), std::io::Error> {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.error.get_or_insert(e);
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Writes a trace line if tracing is on (the arguments are not evaluated otherwise).
macro_rules! trace {
    ($tr:expr, $t:expr, $($arg:tt)*) => {
        if let Some(out) = $tr.out.as_mut() {
            if let Err(e) = writeln!(out, "{} {}", $t, format_args!($($arg)*)) {
                $tr.error.get_or_insert(e);
                $tr.out = None;
            }
        }
    };
}
pub(crate) use trace;

/// A short description of a datagram for the trace.
pub fn describe(payload: &[u8]) -> String {
    match Header::decode(payload) {
        Ok((h, _)) => format!(
            "{:?}/{:?}#{} {}{}{}",
            h.msg_type,
            h.policy,
            h.req_id,
            if h.first { "F" } else { "" },
            if h.last { "L" } else { "" },
            h.packet_order
        ),
        Err(e) => format!("malformed({e})"),
    }
}

/// The trace line of an event of the node on host `host`.
pub fn node_event(host: usize, ev: &NodeEvent) -> String {
    match ev {
        NodeEvent::Executed {
            client,
            req_id,
            read_only,
            cpu_ns,
            index,
            ..
        } => format!("exec h{host} {client}#{req_id} idx={index} ro={read_only} cpu_ns={cpu_ns}"),
        NodeEvent::Dropped { client, req_id, .. } => {
            format!("drop-request h{host} {client}#{req_id}")
        }
        NodeEvent::Committed {
            index,
            entry_term,
            term,
        } => {
            format!("commit h{host} idx={index} entry_term={entry_term} term={term}")
        }
        NodeEvent::SwitchPath { via_switch, term } => {
            let what = if *via_switch { "return" } else { "fallback" };
            format!("switch-path h{host} {what} term={term}")
        }
        NodeEvent::RoleChanged { role, term, leader } => {
            format!("role h{host} {role:?} term={term} leader={leader:?}")
        }
        NodeEvent::FollowerBehindCompaction {
            follower,
            needs,
            first_kept,
            term,
        } => format!(
            "behind-compaction h{host} follower={follower} needs={needs} first_kept={first_kept} term={term}"
        ),
        NodeEvent::SnapshotInstalled { index, term, bytes } => {
            format!("snapshot-installed h{host} idx={index} term={term} bytes={bytes}")
        }
        NodeEvent::Replied { client, req_id, .. } => {
            format!("reply h{host} {client}#{req_id}")
        }
        NodeEvent::AppRejected {
            client,
            req_id,
            error,
        } => {
            format!("app-reject h{host} {client}#{req_id}: {error}")
        }
    }
}
