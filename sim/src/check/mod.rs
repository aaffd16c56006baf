//! Checkers that run on every simulated run of `check` (cheap enough to leave on):
//!
//! - Raft safety: at most one leader per term; a leader commits by counting only entries of
//!   its own term (§5.4.2); state machine safety (no two nodes execute
//!   different entries at one index, which with per-node log order also covers log matching
//!   for everything executed).
//! - Persist before send: no granted vote or AppendEntries acknowledgement leaves a node
//!   before its storage holds what it promises.
//! - Exactly-once replies: at most one reply per log index, only from the entry's designated
//!   replier, and only for an entry that ended up committed.
//! - Linearizability of the kv history clients observed ([`linearizability`]), per key;
//!   "undecided" when the search budget runs out, never a guess.
//! - Liveness (phase 2, as in TigerBeetle's VOPR): once every fault has healed and the cluster
//!   had time to settle, every request is answered, and at the end all live replicas applied
//!   the same log and hold the same state.
//!
//! `swarm` derives a whole world (cluster, mode, workload, fault schedule) from one seed.

pub mod linearizability;
pub mod swarm;

use std::collections::BTreeMap;

use hovercraft_core::node::NodeEvent;
use hovercraft_core::raft::Role;

use crate::world::{Observed, World};

/// What a checked run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub safety: Vec<String>,
    pub liveness: Vec<String>,
    /// Checks that ran out of budget: neither passed nor failed (never counted as either).
    pub undecided: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.safety.is_empty() && self.liveness.is_empty()
    }
}

/// When the liveness phase starts: 60 ms (a few election timeouts) after the last fault
/// healed.
pub fn liveness_from_ms(scenario: &crate::Scenario) -> u64 {
    let last_fault_ms = scenario
        .faults
        .iter()
        .map(|f| f.heal_ms().unwrap_or(f.at_ms()))
        .max()
        .unwrap_or(0);
    last_fault_ms + 60
}

/// The outcome of one seed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub report: Report,
    /// The run panicked (a crash of the simulator or the core): the message.
    pub panic: Option<String>,
    pub simulated_ns: u64,
}

/// Runs the world of `seed` with every checker on.
pub fn run_seed(seed: u64, canary: Option<&str>) -> SeedOutcome {
    let scenario = swarm::scenario_for_seed(seed, canary);
    run_checked(seed, scenario)
}

/// Runs `scenario` with every checker on; liveness is required from
/// `swarm::LIVENESS_FROM_MS` (or 60 ms after the last fault, whichever is later).
pub fn run_checked(seed: u64, scenario: crate::Scenario) -> SeedOutcome {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let liveness_from_ms =
            liveness_from_ms(&scenario).max(swarm::LIVENESS_FROM_MS.min(scenario.duration_ms));
        let mut w = World::new(scenario);
        w.set_observe(true);
        w.set_liveness_from(liveness_from_ms * 1_000_000);
        w.run_to_end();
        (check_world(&w), w.now_ns())
    }));
    match result {
        Ok((report, simulated_ns)) => SeedOutcome {
            seed,
            report,
            panic: None,
            simulated_ns,
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
        },
    }
}

/// Looks for a smaller fault schedule for `seed` that still fails: removes one fault at a
/// time (a crash takes its restart with it) while the run keeps failing. Returns the
/// shrunk scenario as JSON, or `None` if the seed does not fail.
pub fn shrink(seed: u64, canary: Option<&str>) -> Option<serde_json::Value> {
    let fails = |json: &serde_json::Value| -> bool {
        let Ok(s) = crate::Scenario::from_json("<shrink>", &json.to_string()) else {
            return false;
        };
        let o = run_checked(seed, s);
        o.panic.is_some() || !o.report.ok()
    };
    let mut json = swarm::scenario_json(seed, canary);
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

/// Checks a world that ran to its end with observation on.
pub fn check_world(w: &World) -> Report {
    let mut r = Report::default();
    let mut leader_of_term: BTreeMap<u64, usize> = BTreeMap::new();
    let mut executed: BTreeMap<u64, (u64, std::net::SocketAddrV4, u16, usize)> = BTreeMap::new();
    let mut replies: BTreeMap<u64, Vec<(usize, std::net::SocketAddrV4, u16, u64)>> =
        BTreeMap::new();
    for o in w.observations() {
        let Observed::Node(ev) = &o.what else {
            continue;
        };
        match *ev {
            NodeEvent::RoleChanged {
                role: Role::Leader,
                term,
                ..
            } => {
                if let Some(&other) = leader_of_term.get(&term) {
                    if other != o.host && r.safety.len() < 20 {
                        r.safety.push(format!(
                            "two leaders in term {term}: node {other} and node {} (at {} ns)",
                            o.host, o.t_ns
                        ));
                    }
                } else {
                    leader_of_term.insert(term, o.host);
                }
            }
            NodeEvent::Executed {
                index,
                term,
                client,
                req_id,
                ..
            } if index > 0 => match executed.get(&index) {
                Some(&(t, c, id, host)) if (t, c, id) != (term, client, req_id) => {
                    if r.safety.len() < 20 {
                        r.safety.push(format!(
                            "state machine safety: index {index} executed as {c}#{id} (term {t}) on node {host} but as {client}#{req_id} (term {term}) on node {} at {} ns",
                            o.host, o.t_ns
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    executed.insert(index, (term, client, req_id, o.host));
                }
            },
            NodeEvent::Committed {
                index,
                entry_term,
                term,
            } if entry_term != term && r.safety.len() < 20 => {
                r.safety.push(format!(
                    "node {} committed index {index} of term {entry_term} by counting replicas in term {term} (Raft §5.4.2, Figure 8)",
                    o.host
                ));
            }
            NodeEvent::Replied {
                client,
                req_id,
                index,
            } if index > 0 => {
                replies
                    .entry(index)
                    .or_default()
                    .push((o.host, client, req_id, o.t_ns));
            }
            _ => {}
        }
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
    for (index, rs) in &replies {
        if rs.len() > 1 && r.safety.len() < 20 {
            r.safety
                .push(format!("index {index} answered {} times: {rs:?}", rs.len()));
        }
        let Some((commit, h)) = reference else {
            continue;
        };
        let log = w.node(h).and_then(|n| n.replica()).map(|r| r.log());
        let Some(log) = log else { continue };
        let (host, client, req_id, t) = rs[0];
        if *index > commit {
            if r.safety.len() < 20 {
                r.safety.push(format!("node {host} answered {client}#{req_id} (index {index}) at {t} ns, but index {index} was never committed"));
            }
            continue;
        }
        if let Some(e) = log.get(*index) {
            if (e.client, e.req_id) != (client, req_id) && r.safety.len() < 20 {
                r.safety.push(format!(
                    "node {host} answered {client}#{req_id} for index {index}, which holds {}#{}",
                    e.client, e.req_id
                ));
            } else if e.replier as usize != host && r.safety.len() < 20 {
                r.safety.push(format!(
                    "node {host} answered index {index}, whose designated replier is node {}",
                    e.replier
                ));
            }
        }
    }
    // Linearizability of what kv clients observed (per key, Wing–Gong/Porcupine search).
    if !w.kv_history().is_empty() {
        use linearizability::{check_history, CheckerConfig, OpKind, Operation, Verdict};
        let ops: Vec<Operation> = w
            .kv_history()
            .iter()
            .map(|o| Operation {
                client: o.client,
                key: o.key.clone(),
                kind: match &o.write {
                    Some(v) => OpKind::Write { value: v.clone() },
                    None => OpKind::Read {
                        observed: o.observed.clone().flatten(),
                    },
                },
                call_ns: o.call_ns,
                // A DROP does not prove the request was not executed: with multicast, a deposed
                // leader may refuse a request the current leader orders (seed 1060 of
                // `check`). So a refused operation has an unknown outcome, like a timeout. A GET
                // whose reply did not parse says nothing either.
                return_ns: if o.refused || (o.write.is_none() && o.observed.is_none()) {
                    None
                } else {
                    o.return_ns
                },
            })
            .collect();
        match check_history(&ops, &CheckerConfig::default()) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable { key, explanation } => {
                r.safety.push(format!(
                    "not linearizable on key {}: {explanation}",
                    String::from_utf8_lossy(&key)
                ));
            }
            Verdict::Undecided {
                key,
                states_explored,
            } => r.undecided.push(format!(
                "linearizability undecided on key {} after {states_explored} states",
                String::from_utf8_lossy(&key)
            )),
        }
    }
    for v in w.contract_violations().iter().take(5) {
        r.safety.push(format!("persist before send: {v}"));
    }
    // Liveness.
    if w.liveness_timeouts() > 0 {
        r.liveness.push(format!(
            "{} requests sent after the faults healed were never answered",
            w.liveness_timeouts()
        ));
    }
    let live = w.live_servers();
    let state: Vec<(usize, u64, u64)> = live
        .iter()
        .filter_map(|&h| {
            let n = w.node(h)?;
            Some((
                h,
                n.replica().map_or(0, |r| r.applied_index()),
                n.app_digest(),
            ))
        })
        .collect();
    if let Some(&(_, applied, digest)) = state.first() {
        if state.iter().any(|&(_, a, _)| a != applied) {
            r.liveness.push(format!(
                "replicas did not converge: applied indexes {state:?}"
            ));
        } else if state.iter().any(|&(_, _, d)| d != digest) {
            r.safety.push(format!(
                "replicas applied the same log but hold different state: {state:?}"
            ));
        }
    }
    r
}
