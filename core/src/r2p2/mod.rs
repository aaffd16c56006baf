//! R2P2 endpoints, sans-IO.
//!
//! - [`client`]: issues requests (req_id per client address), matches responses, counts
//!   DROPs, times requests out.
//! - [`server`]: the receive side every server node uses (reassembly of any message type)
//!   and the send side (responses, DROPs, any message split into packets).

pub mod client;
pub mod server;
