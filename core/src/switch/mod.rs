//! HovercRaft++: the switch as an aggregating peer (DESIGN.md §3). [`aggregator`] is the
//! sans-IO state machine a simulated ToR switch runs in its data path, and the reference the
//! P4 program in `p4/hovercraft_agg.p4` is tested against (shared test vectors).

pub mod aggregator;

pub use aggregator::{
    Aggregator, AggregatorConfig, AggregatorError, AggregatorStats, SWITCH_NODE_ID,
};
