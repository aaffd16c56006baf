//! The online checkers' interface: the world hands every event a checker cares about to
//! [`Checkers::on_event`] as it happens, and the report is assembled at the end of the run by
//! [`Checkers::finish`] (which may also look at the world's final state). Every checker keeps
//! bounded memory: it has a cap, and says what it could not decide once the cap is reached.

use std::net::SocketAddrV4;

use hovercraft_core::node::NodeEvent;

use super::kv_history::KvHistory;
use super::liveness::Liveness;
use super::persist_before_send::PersistBeforeSend;
use super::raft_safety::RaftSafety;
use super::replies::Replies;
use super::switch_return::SwitchReturn;
use super::Report;
use crate::storage::Storage;
use crate::world::World;

/// Names one client request: client machine (host), port on it, R2P2 request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub host: usize,
    pub port: usize,
    pub req_id: u16,
}

/// What the world tells the checkers, as it happens.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    /// The node on server `host` reported `event` (from its network or application core).
    Node {
        t_ns: u64,
        host: usize,
        event: &'a NodeEvent,
    },
    /// Server `host` sends `payload`; `storage` is what its storage holds at that moment.
    Transmit {
        t_ns: u64,
        host: usize,
        storage: &'a Storage,
        payload: &'a [u8],
    },
    /// A client sent a request from `addr`; for the kv app, its key and the value it writes
    /// (None for a GET).
    RequestSent {
        t_ns: u64,
        id: RequestId,
        addr: SocketAddrV4,
        kv: Option<(&'a [u8], Option<&'a [u8]>)>,
    },
    /// A reply arrived from `from`.
    Response {
        t_ns: u64,
        id: RequestId,
        from: SocketAddrV4,
        body: &'a [u8],
    },
    /// The request was answered with DROP (its outcome stays unknown).
    Refused { t_ns: u64, id: RequestId },
    /// The client gave up on the request; `tag` is when it was sent.
    TimedOut { t_ns: u64, id: RequestId, tag: u64 },
    /// Server `host` restarted from its storage (a fresh node: volatile state is gone).
    Restarted { t_ns: u64, host: usize },
}

/// A checker that runs as events happen.
pub trait Checker {
    /// Looks at one event.
    fn on_event(&mut self, ev: &Event<'_>);
    /// Adds what it found to `report`, given the world at the end of the run.
    fn finish(&self, w: &World, report: &mut Report);
}

/// The checkers' memory caps. The defaults are far above what any existing run needs (the
/// largest checked scenario executes about 25 000 log indexes; a swarm seed's kv history
/// holds at most a few thousand operations), so reaching one means a new kind of run, and
/// the checker then reports what it could not decide instead of guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Terms whose leader is remembered (one leader per term).
    pub terms: usize,
    /// Log indexes whose executed entry is remembered (state machine safety), log indexes
    /// whose replies are remembered, and requests whose executions and replies are
    /// remembered (exactly-once).
    pub indexes: usize,
    /// Replies remembered per log index (all are counted).
    pub replies_per_index: usize,
    /// Operations one key's kv history may hold.
    pub kv_ops_per_key: usize,
    /// Operations all kv histories together may hold.
    pub kv_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            terms: 1 << 16,
            indexes: 1 << 20,
            replies_per_index: 16,
            kv_ops_per_key: 1 << 16,
            kv_ops: 1 << 20,
        }
    }
}

/// Every checker of a checked run, in the order their findings are reported.
pub struct Checkers {
    pub raft_safety: RaftSafety,
    pub replies: Replies,
    pub kv: KvHistory,
    pub persist_before_send: PersistBeforeSend,
    pub liveness: Liveness,
    pub switch_return: SwitchReturn,
}

impl Checkers {
    /// All checkers with the default limits; requests sent from `liveness_from_ns` on must
    /// be answered.
    pub fn new(liveness_from_ns: u64) -> Checkers {
        Checkers::with_limits(liveness_from_ns, Limits::default())
    }

    pub fn with_limits(liveness_from_ns: u64, limits: Limits) -> Checkers {
        Checkers {
            raft_safety: RaftSafety::new(limits.terms, limits.indexes),
            replies: Replies::new(limits.indexes, limits.replies_per_index),
            kv: KvHistory::new(limits.kv_ops_per_key, limits.kv_ops),
            persist_before_send: PersistBeforeSend::default(),
            liveness: Liveness::new(liveness_from_ns),
            switch_return: SwitchReturn::default(),
        }
    }

    /// Every checker with its name (as `run` prints it and `summary.json` records it).
    fn all(&self) -> [(&'static str, &dyn Checker); 6] {
        [
            ("raft_safety", &self.raft_safety),
            ("exactly_once_replies", &self.replies),
            ("linearizability", &self.kv),
            ("persist_before_send", &self.persist_before_send),
            ("liveness", &self.liveness),
            ("switch_return", &self.switch_return),
        ]
    }

    pub fn on_event(&mut self, ev: &Event<'_>) {
        match ev {
            Event::Node { .. } => {
                self.raft_safety.on_event(ev);
                self.replies.on_event(ev);
                self.kv.on_event(ev);
                self.switch_return.on_event(ev);
            }
            Event::Transmit { .. } => self.persist_before_send.on_event(ev),
            Event::TimedOut { .. } => {
                self.kv.on_event(ev);
                self.liveness.on_event(ev);
            }
            Event::RequestSent { .. } => {
                self.replies.on_event(ev);
                self.kv.on_event(ev);
                self.liveness.on_event(ev);
            }
            Event::Response { .. } | Event::Refused { .. } => {
                self.kv.on_event(ev);
                self.liveness.on_event(ev);
            }
            Event::Restarted { .. } => self.switch_return.on_event(ev),
        }
    }

    /// The report of the run, from what the checkers saw and the world's final state.
    pub fn finish(&self, w: &World) -> Report {
        let mut r = Report::default();
        for (name, c) in self.all() {
            let mut one = Report::default();
            c.finish(w, &mut one);
            if name == "linearizability" && self.kv.operations().next().is_none() {
                one.not_checked
                    .push("no kv operations (the app is not the kv store)".into());
            }
            r.checks.push((name.into(), super::CheckVerdict::of(&one)));
            r.safety.extend(one.safety);
            r.liveness.extend(one.liveness);
            r.undecided.extend(one.undecided);
            r.not_checked.extend(one.not_checked);
        }
        // The fault model's own invariant: one rule verdict per frame and link traversal.
        let mut model = Report::default();
        if w.rejudged_frames() > 0 {
            model.model.push(format!(
                "fault model: {} frames were judged by the fault rules twice on one link traversal",
                w.rejudged_frames()
            ));
        }
        r.checks
            .push(("fault_model".into(), super::CheckVerdict::of(&model)));
        r.model.extend(model.model);
        r
    }
}
