//! Open-loop clients: the request generator lives in the core
//! (`hovercraft_core::workload`), shared with the real runtime's load generator.

pub use hovercraft_core::workload::{Generator, RequestSpec};
