//! Applications: the state machines that replicas run. The core hands an application a
//! request only once it may execute (in replicated modes: once committed).
//!
//! The CPU time an operation costs is *reported* (`Execution::cpu_ns`), never spent here: the
//! simulator charges it to the node's core, the real runtime spins or really works.

pub mod kv;
mod kv_table;
pub mod synthetic;

use thiserror::Error;

/// What executing one request cost and produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execution {
    /// CPU time this operation costs on the executing core, in nanoseconds.
    pub cpu_ns: u64,
}

/// A request the application cannot parse. The node answers with an empty reply and counts it;
/// it never panics on a malformed body.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AppError {
    #[error("request truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("unknown application opcode {0}")]
    UnknownOp(u8),
    #[error("request field {field} out of range: {value}")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("request is for application {found}, this node runs {expected}")]
    WrongApp { expected: &'static str, found: u8 },
    /// A snapshot this application cannot load (bytes from a peer or from disk).
    #[error("snapshot of {app} unreadable: {why}")]
    BadSnapshot {
        app: &'static str,
        why: &'static str,
    },
}

/// A deterministic state machine. Every replica applies every committed write in log order
/// and must end in the same state.
pub trait StateMachine {
    /// Short name used in summaries and errors ("synthetic", "kv").
    fn name(&self) -> &'static str;

    /// Executes one request, appending the reply body to `reply` (which arrives empty).
    fn execute(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<Execution, AppError>;

    /// Whether `request` has no side effects (may be executed by one replica only).
    /// Clients mark read-only requests with the R2P2 policy REPLICATED_ROUTE_NO_SE; this is the
    /// application's own view, used by checkers to catch a mislabelled request.
    fn is_read_only(&self, request: &[u8]) -> bool;

    /// A deterministic digest of the whole state (FNV-1a or similar over contents in a fixed
    /// order), so checkers can tell whether replicas that applied the same log converged.
    fn state_digest(&self) -> u64;

    /// Appends the whole state to `out` (Raft §7: the log behind it can then be dropped), and
    /// reports what producing it cost. Deterministic: replicas at the same applied index
    /// produce the same bytes.
    fn snapshot(&mut self, out: &mut Vec<u8>) -> Execution;

    /// Replaces the whole state by one [`StateMachine::snapshot`] produced (a follower too far
    /// behind for the log, or a node restarting). Bytes may come from a peer: anything
    /// malformed is an error and leaves the state as it was.
    fn restore(&mut self, snapshot: &[u8]) -> Result<Execution, AppError>;
}

/// Copy cost the apps report for snapshot bytes they write or load: ~10 GB/s, one core's
/// memcpy bandwidth (the kv app's `per_kib_ns` default).
pub const SNAPSHOT_NS_PER_KIB: u64 = 100;

/// Which application a node runs (scenario field `workload.app`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    Synthetic,
    Kv,
}

/// Builds the application a node runs.
pub fn build(kind: AppKind, kv_costs: kv::KvCosts) -> Box<dyn StateMachine + Send> {
    match kind {
        AppKind::Synthetic => Box::new(synthetic::SyntheticApp::default()),
        AppKind::Kv => Box::new(kv::KvApp::new(kv_costs)),
    }
}

/// Checks the first byte of a request names `expected_tag`. The tag is checked before the
/// length, so a misrouted request (even a short one) is reported as [`AppError::WrongApp`],
/// which points at the real bug; an empty one is `Truncated` against `header_bytes`.
pub(crate) fn check_tag(
    bytes: &[u8],
    expected_tag: u8,
    app: &'static str,
    header_bytes: usize,
) -> Result<(), AppError> {
    match bytes.first() {
        None => Err(AppError::Truncated {
            need: header_bytes,
            have: 0,
        }),
        Some(&found) if found != expected_tag => Err(AppError::WrongApp {
            expected: app,
            found,
        }),
        Some(_) => Ok(()),
    }
}

/// FNV-1a, for the state digests of the applications (deterministic, order-sensitive).
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a hash over `bytes`.
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// First byte of every application request: which application it is for.
pub mod tag {
    pub const SYNTHETIC: u8 = 0x53; // 'S'
    pub const KV: u8 = 0x4B; // 'K'
}
