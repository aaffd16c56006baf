//! A node's configuration, checked as a whole before a node is built.

use crate::app::kv::KvCosts;
use crate::app::AppKind;
use crate::raft::{ClusterConfig, RaftConfig};
use crate::types::{Mode, NodeId};
use crate::wire::framing::ReassemblyConfig;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub mode: Mode,
    pub app: AppKind,
    pub kv_costs: KvCosts,
    pub reassembly: ReassemblyConfig,
    /// Seed of this node's own random stream (election timeouts, replier choice).
    pub seed: u64,
    /// Replicated modes: where the peers are. Ignored by `unreplicated`.
    pub cluster: Option<ClusterConfig>,
    pub raft: RaftConfig,
    /// `false`: requests execute inside the handler that made them ready (one core does
    /// everything). `true`: they wait until the driver calls
    /// [`Node::execute_next`](super::Node::execute_next) (a separate application core, as in
    /// the authors' servers).
    pub defer_execution: bool,
    /// Requests waiting for the application core (unreplicated mode with deferred
    /// execution); beyond it new requests are answered DROP.
    pub exec_queue_capacity: usize,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("mode {0} is not implemented by this build of the core")]
    ModeNotImplemented(&'static str),
    #[error("mode {0} needs a cluster configuration (peers and multicast group)")]
    MissingCluster(&'static str),
    #[error("node id {id} is not in the cluster of {n} peers")]
    BadId { id: NodeId, n: usize },
    #[error("clusters have 1 to 64 nodes (got {0})")]
    ClusterSize(usize),
}

impl NodeConfig {
    /// Checks everything a node relies on; [`Node::new`](super::Node::new) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.mode.is_replicated() {
            return Ok(());
        }
        let cluster = self
            .cluster
            .as_ref()
            .ok_or(ConfigError::MissingCluster(self.mode.as_str()))?;
        let n = cluster.peers.len();
        if n == 0 || n > 64 {
            return Err(ConfigError::ClusterSize(n));
        }
        if self.id as usize >= n {
            return Err(ConfigError::BadId { id: self.id, n });
        }
        if self.mode == Mode::HovercraftPlusPlus && cluster.switch.is_none() {
            return Err(ConfigError::MissingCluster(self.mode.as_str()));
        }
        Ok(())
    }
}
