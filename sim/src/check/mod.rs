//! Checkers that run on every simulated run of `check` (cheap enough to leave on). They are
//! online, as TigerBeetle's: the world hands them events as they happen ([`checker`]), each
//! keeps bounded memory, and the report is assembled at the end of the run.
//!
//! - Raft safety ([`raft_safety`]): at most one leader per term; a leader commits by counting only entries of
//!   its own term (§5.4.2); state machine safety (no two nodes execute
//!   different entries at one index, which with per-node log order also covers log matching
//!   for everything executed).
//! - Persist before send ([`persist_before_send`]): no granted vote or AppendEntries acknowledgement leaves a node
//!   before its storage holds what it promises.
//! - Exactly-once replies ([`replies`]): at most one reply per log index, only from the entry's designated
//!   replier, and only for an entry that ended up committed.
//! - Linearizability of the kv history clients observed ([`kv_history`] records it,
//!   [`linearizability`] decides it), per key; "undecided" when the search budget or the
//!   history's cap runs out, never a guess.
//! - Liveness ([`liveness`]; phase 2, as in TigerBeetle's VOPR): once every fault has healed and the cluster
//!   had time to settle, every request is answered, and at the end all live replicas applied
//!   the same log and hold the same state.
//!
//! - Switch return ([`switch_return`]): HovercRaft++ is back on the switch path within 10 ms
//!   of the aggregator's return and the heal (the direct fall-back answers every request
//!   too, so only this check sees a leader that never returns).
//!
//! `swarm` derives a whole world (cluster, mode, workload, fault schedule) from one seed.

pub mod checker;
pub mod kv_history;
pub mod linearizability;
pub mod liveness;
pub mod persist_before_send;
pub mod raft_safety;
pub mod replies;
pub mod swarm;
pub mod switch_return;

use crate::world::World;
pub use checker::{Checker, Checkers};

/// What a checked run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub safety: Vec<String>,
    pub liveness: Vec<String>,
    /// Checks that ran out of budget: neither passed nor failed (never counted as either).
    pub undecided: Vec<String>,
    /// Checks that had nothing to check (e.g. no request after the faults healed): neither
    /// passed nor failed.
    pub not_checked: Vec<String>,
    /// The simulator's own invariants that failed (a bug of the simulator, not of the
    /// protocol; `check` counts it with crashes).
    pub model: Vec<String>,
    /// Every checker's verdict, in report order.
    pub checks: Vec<(String, CheckVerdict)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.safety.is_empty() && self.liveness.is_empty() && self.model.is_empty()
    }
}

/// One checker's verdict on a run (what `run` prints and `summary.json` records).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum CheckVerdict {
    Ok,
    /// The first violation it found.
    Violated {
        message: String,
    },
    /// It ran out of budget or memory: neither passed nor failed.
    Undecided {
        message: String,
    },
    /// It had nothing to check, and why.
    NotChecked {
        message: String,
    },
}

impl CheckVerdict {
    /// The verdict of one checker from what it added to an empty report.
    pub fn of(r: &Report) -> CheckVerdict {
        let first = |v: &[String]| v.first().cloned();
        if let Some(message) = first(&r.safety)
            .or_else(|| first(&r.liveness))
            .or_else(|| first(&r.model))
        {
            CheckVerdict::Violated { message }
        } else if let Some(message) = first(&r.undecided) {
            CheckVerdict::Undecided { message }
        } else if let Some(message) = first(&r.not_checked) {
            CheckVerdict::NotChecked { message }
        } else {
            CheckVerdict::Ok
        }
    }

    /// One line: `ok`, `violated: …`, `undecided: …`, `not checked: …`.
    pub fn line(&self) -> String {
        match self {
            CheckVerdict::Ok => "ok".into(),
            CheckVerdict::Violated { message } => format!("violated: {message}"),
            CheckVerdict::Undecided { message } => format!("undecided: {message}"),
            CheckVerdict::NotChecked { message } => format!("not checked: {message}"),
        }
    }
}

/// When the last fault healed (or, for a fault that does not heal, struck), in ms. A fault
/// that lasts to the end of the run does not count: the servers it cuts off are left out of
/// the healed core instead (`World::core_servers`).
pub fn healed_ms(scenario: &crate::Scenario) -> u64 {
    scenario
        .faults
        .iter()
        .filter(|f| f.heal_ms().is_none_or(|h| h < scenario.duration_ms))
        .map(|f| f.heal_ms().unwrap_or(f.at_ms()))
        .max()
        .unwrap_or(0)
}

/// When the liveness phase starts: 60 ms (a few election timeouts) after the last fault
/// healed.
pub fn liveness_from_ms(scenario: &crate::Scenario) -> u64 {
    healed_ms(scenario) + 60
}

/// The outcome of one seed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub report: Report,
    /// The run panicked (a crash of the simulator or the core): the message.
    pub panic: Option<String>,
    pub simulated_ns: u64,
    /// Times a leader found a follower behind its compaction point (summed over nodes): it
    /// needed a snapshot. Not a verdict by itself (liveness sees the replicas that did not
    /// converge); `check` reports how many seeds took the snapshot path.
    pub followers_behind_compaction: u64,
}

/// Runs the world of `seed` with every checker on.
pub fn run_seed(seed: u64, canary: Option<&str>) -> SeedOutcome {
    run_seed_with(
        seed,
        &swarm::SwarmOptions {
            canary,
            ..Default::default()
        },
    )
}

/// Runs the world of `seed` drawn with `opts` with every checker on.
pub fn run_seed_with(seed: u64, opts: &swarm::SwarmOptions<'_>) -> SeedOutcome {
    run_checked(seed, swarm::scenario_for_seed_with(seed, opts))
}

/// Runs `scenario` with every checker on; liveness is required from
/// `swarm::LIVENESS_FROM_MS` (or 60 ms after the last fault, whichever is later).
pub fn run_checked(seed: u64, scenario: crate::Scenario) -> SeedOutcome {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut w = checked_world(scenario);
        w.run_to_end();
        (check_world(&w), w.now_ns(), followers_behind_compaction(&w))
    }));
    match result {
        Ok((report, simulated_ns, followers_behind_compaction)) => SeedOutcome {
            seed,
            report,
            panic: None,
            simulated_ns,
            followers_behind_compaction,
        },
        Err(e) => SeedOutcome {
            seed,
            report: Report::default(),
            panic: Some(
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
            simulated_ns: 0,
            followers_behind_compaction: 0,
        },
    }
}

/// How many times a leader found a follower behind its compaction point, over all nodes.
pub fn followers_behind_compaction(w: &World) -> u64 {
    (0..w.servers())
        .filter_map(|h| w.node(h)?.replica())
        .map(|r| r.counters.followers_behind_compaction)
        .sum()
}

/// The world of `scenario` with every checker on, as `check` runs it: liveness is required
/// from `swarm::LIVENESS_FROM_MS` (or 60 ms after the last fault, whichever is later).
pub fn checked_world(scenario: crate::Scenario) -> World {
    let liveness_from_ms =
        liveness_from_ms(&scenario).max(swarm::LIVENESS_FROM_MS.min(scenario.duration_ms));
    let mut w = World::new(scenario);
    w.set_checkers(Checkers::new(liveness_from_ms * 1_000_000));
    w
}

/// The client history the kv checker recorded, Porcupine-style, for cross-checking the
/// linearizability verdict with an independent checker: one object per operation, key by
/// key in call order within a key: `client`, `op` (get/put/delete), `key`, `value` (what a
/// put writes, else null), `output` (what a get returned, "ok" for an answered put or
/// delete; null when unanswered or not found), `call_ns`, `return_ns` (null when
/// unanswered: it may have taken effect, or not). Empty when the app is not the kv store.
pub fn history_json(w: &World) -> serde_json::Value {
    use linearizability::OpKind;
    use serde_json::{json, Value};
    let text = |b: &[u8]| Value::String(String::from_utf8_lossy(b).into_owned());
    let ops: Vec<Value> = w
        .checkers()
        .into_iter()
        .flat_map(|c| c.kv.operations())
        .map(|op| {
            let answered = op.return_ns.is_some();
            let (name, value, output) = match &op.kind {
                OpKind::Read { observed } => (
                    "get",
                    Value::Null,
                    observed
                        .as_deref()
                        .filter(|_| answered)
                        .map_or(Value::Null, text),
                ),
                OpKind::Write { value } => ("put", text(value), ok_if(answered)),
                OpKind::Delete => ("delete", Value::Null, ok_if(answered)),
            };
            json!({ "client": op.client, "op": name, "key": text(&op.key), "value": value,
                    "output": output, "call_ns": op.call_ns, "return_ns": op.return_ns })
        })
        .collect();
    Value::Array(ops)
}

fn ok_if(answered: bool) -> serde_json::Value {
    if answered {
        "ok".into()
    } else {
        serde_json::Value::Null
    }
}

/// Looks for a smaller fault schedule for `seed` that still fails: removes one fault at a
/// time (a crash takes its restart with it) while the run keeps failing. Returns the
/// shrunk scenario as JSON, or `None` if the seed does not fail.
pub fn shrink(seed: u64, opts: &swarm::SwarmOptions<'_>) -> Option<serde_json::Value> {
    let fails = |json: &serde_json::Value| -> bool {
        let Ok(s) = crate::Scenario::from_json("<shrink>", &json.to_string()) else {
            return false;
        };
        let o = run_checked(seed, s);
        o.panic.is_some() || !o.report.ok()
    };
    let mut json = swarm::scenario_json_with(seed, opts);
    if !fails(&json) {
        return None;
    }
    let mut i = 0;
    loop {
        let faults = json["faults"].as_array().cloned().unwrap_or_default();
        if i >= faults.len() {
            break;
        }
        let mut candidate = json.clone();
        let mut rest = faults.clone();
        let removed = rest.remove(i);
        if removed["action"] == "crash_node" {
            rest.retain(|f| !(f["action"] == "restart_node" && f["node"] == removed["node"]));
        }
        candidate["faults"] = serde_json::Value::Array(rest);
        if fails(&candidate) {
            json = candidate;
        } else {
            i += 1;
        }
    }
    Some(json)
}

/// The report of a world that ran to its end with checkers on (empty without them).
pub fn check_world(w: &World) -> Report {
    w.checkers().map(|c| c.finish(w)).unwrap_or_default()
}
