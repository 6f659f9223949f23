//! The cluster: membership, join credentials, status, virtual IPs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::debug_without;

/// This node's membership: after `cluster init` or a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub cluster_id: String,
    pub node_id: u64,
    /// Where other members reach its cluster port.
    pub addr: String,
}

/// Credentials for one join (the file `export-credentials` writes). Secret: the token
/// admits a node.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub cluster_id: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert: String,
    /// Members' cluster ports by node id.
    pub members: BTreeMap<u64, String>,
    /// The one-time join token.
    pub token: String,
    /// Seconds since the epoch.
    pub expires: u64,
}
debug_without!(Credentials, cluster_id, members, expires);

/// A member taken out of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub removed: u64,
}

/// Members, leader, term, applied index; on the leader each member's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_id: String,
    pub node_id: u64,
    /// 0: none known.
    pub leader: u64,
    pub term: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Cluster ports by node id.
    pub members: BTreeMap<u64, String>,
    /// Log entries each member is behind (known on the leader only), by node id.
    pub lag: BTreeMap<String, u64>,
}

/// A virtual IP: its configuration, holder and lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vip {
    pub address: String,
    pub interface: String,
    pub preferred: Vec<u64>,
    pub move_to: Option<u64>,
    pub holder: Option<u64>,
    pub lease_ms_left: Option<u64>,
}
