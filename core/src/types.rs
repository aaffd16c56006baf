//! Identities shared by every layer: which replica ([`NodeId`]) and which system ([`Mode`]).

/// Identifies a replica within its cluster (0-based). One byte on the wire (`from`,
/// `replier` fields of Raft messages).
pub type NodeId = u8;

/// Which system a cluster runs (DESIGN.md §3, "four modes").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Mode {
    /// One server, R2P2 only: the baseline every speedup is measured against.
    #[serde(rename = "unreplicated")]
    Unreplicated,
    /// Vanilla Raft in R2P2: the leader receives requests, replicates full entries, replies.
    #[serde(rename = "raft")]
    Raft,
    /// Multicast requests, metadata-only log, reply and read-only load balancing.
    #[serde(rename = "hovercraft")]
    Hovercraft,
    /// HovercRaft with fan-out/fan-in aggregated by the switch.
    #[serde(rename = "hovercraft++")]
    HovercraftPlusPlus,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Unreplicated => "unreplicated",
            Mode::Raft => "raft",
            Mode::Hovercraft => "hovercraft",
            Mode::HovercraftPlusPlus => "hovercraft++",
        }
    }
    pub fn is_replicated(self) -> bool {
        self != Mode::Unreplicated
    }
}
