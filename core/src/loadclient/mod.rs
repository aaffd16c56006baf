//! The load client's logic, shared by the simulator's client machines and the runtime's
//! `hovercraft-loadgen`: both decide where a request goes and what its outcome counts for
//! with the same code, so a simulated and a real run of one workload are comparable.
//!
//! - [`target`]: which replica or multicast group a request goes to, and the leader hint
//!   (`raft` mode) learned from replies, redirecting DROPs and timeouts.
//! - [`outcome`]: what a send, a reply, a DROP or a timeout counts for in the measurement
//!   window, the latency histogram and the timeline.
//!
//! Nothing here draws randomness: the request itself comes from
//! [`crate::workload::Generator`], whose draws stay where and in the order they were.

pub mod outcome;
pub mod target;

pub use outcome::Outcomes;
pub use target::Targets;
