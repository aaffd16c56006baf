//! A node's configuration, checked as a whole before a node is built.

use super::limits::ClientLimits;
use crate::app::kv::KvCosts;
use crate::app::AppKind;
use crate::raft::{ClusterConfig, RaftConfig, RaftConfigError};
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
    /// Request and reply size limits and the reflection guard (`limits.rs`).
    pub client_limits: ClientLimits,
    /// Bytes the driver appends to every node-to-node datagram (the runtime's MAC trailer):
    /// Raft messages are cut into packets that still fit one
    /// [`MAX_UDP_PAYLOAD`](crate::wire::MAX_UDP_PAYLOAD) with them. At most
    /// [`MAX_CLUSTER_DATAGRAM_OVERHEAD_BYTES`].
    pub cluster_datagram_overhead_bytes: usize,
}

/// Largest [`NodeConfig::cluster_datagram_overhead_bytes`] (a quarter of a packet).
pub const MAX_CLUSTER_DATAGRAM_OVERHEAD_BYTES: usize = crate::wire::MAX_PACKET_PAYLOAD / 4;

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
    /// A protocol constant or the cluster's addresses are out of range (names the field).
    #[error(transparent)]
    Raft(#[from] RaftConfigError),
    /// The durable snapshot a restarting node was given cannot be loaded.
    #[error("cannot load the durable snapshot: {0}")]
    Snapshot(String),
    #[error("cluster_datagram_overhead_bytes {0} is above {max}", max = MAX_CLUSTER_DATAGRAM_OVERHEAD_BYTES)]
    DatagramOverhead(usize),
}

impl NodeConfig {
    /// Checks everything a node relies on; [`Node::new`](super::Node::new) calls it, so no
    /// driver can build a node on a configuration the protocol cannot run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster_datagram_overhead_bytes > MAX_CLUSTER_DATAGRAM_OVERHEAD_BYTES {
            return Err(ConfigError::DatagramOverhead(
                self.cluster_datagram_overhead_bytes,
            ));
        }
        if !self.mode.is_replicated() {
            return Ok(());
        }
        self.raft.validate()?;
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
        cluster.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV4;

    fn replicated(raft: RaftConfig) -> NodeConfig {
        NodeConfig {
            id: 0,
            mode: Mode::Hovercraft,
            app: AppKind::Synthetic,
            kv_costs: KvCosts::default(),
            reassembly: ReassemblyConfig::default(),
            seed: 1,
            cluster: Some(ClusterConfig {
                peers: (1..=3)
                    .map(|i| SocketAddrV4::new([10, 0, 0, i].into(), 8000))
                    .collect(),
                group: SocketAddrV4::new([239, 1, 1, 1].into(), 8000),
                campaign_at_start: false,
                switch: None,
            }),
            raft,
            defer_execution: true,
            exec_queue_capacity: 64,
            client_limits: ClientLimits::UNLIMITED,
            cluster_datagram_overhead_bytes: 0,
        }
    }

    #[test]
    fn a_node_refuses_a_raft_config_the_protocol_cannot_run() {
        assert_eq!(replicated(RaftConfig::default()).validate(), Ok(()));
        for (bad, field) in [
            (
                RaftConfig {
                    max_entries_per_append: 5000,
                    ..RaftConfig::default()
                },
                "raft.max_entries_per_append",
            ),
            (
                RaftConfig {
                    replier_bound: 0,
                    ..RaftConfig::default()
                },
                "raft.replier_bound",
            ),
            (
                RaftConfig {
                    election_timeout_min_us: u64::MAX,
                    election_timeout_max_us: u64::MAX,
                    ..RaftConfig::default()
                },
                "raft.election_timeout_min_us",
            ),
        ] {
            match replicated(bad).validate() {
                Err(ConfigError::Raft(e)) => assert_eq!(e.field, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut dup = replicated(RaftConfig::default());
        dup.cluster.as_mut().unwrap().peers[1] = dup.cluster.as_ref().unwrap().peers[0];
        assert!(matches!(dup.validate(), Err(ConfigError::Raft(_))));
    }
}
