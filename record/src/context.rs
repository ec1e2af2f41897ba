//! What a run was of and where it ran: the scenario (its text as run), the
//! topology it measured, and the machine.

use serde::{Deserialize, Serialize};

use crate::setup::{Balance, Persistence, ProtocolKind, ServerKind, StateMode, TopologyKind, Via};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub description: String,
    /// The scenario text the run used (after `--set`).
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyInfo {
    pub kind: TopologyKind,
    pub replicas: u32,
    pub state: StateMode,
    pub via: Via,
    pub persistence: Persistence,
    #[serde(default)]
    pub balance: Balance,
    /// Redis as primary + replica + 3 Sentinels.
    #[serde(default)]
    pub sentinel: bool,
    /// Masters of the Redis Cluster; 1: a single Redis.
    #[serde(default = "one")]
    pub redis_shards: u32,
    /// What ran as the replicas (runs older than the field ran `tierlab`).
    #[serde(default)]
    pub server: ServerKind,
    /// What the players spoke.
    #[serde(default)]
    pub protocol: ProtocolKind,
    #[serde(default)]
    pub endpoints: Vec<String>,
}

impl TopologyInfo {
    /// `" python-socketio"` for a peer, nothing for the reference server.
    pub fn peer(&self) -> String {
        match self.server {
            ServerKind::Tierlab => String::new(),
            other => format!(" {other}"),
        }
    }

    /// What a baseline must match: replicas, state, how players connect,
    /// persistence, Sentinel.
    pub fn label(&self) -> String {
        format!(
            "{} ×{} {} via {}, persistence {}{}",
            self.replicas,
            self.peer(),
            self.state,
            self.via,
            self.persistence,
            if self.sentinel { ", Sentinel" } else { "" }
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    #[serde(default)]
    pub hostname: String,
    pub cores: usize,
    pub memory_mib: u64,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub kernel: String,
}

/// Serde default for counts that were 1 before they were recorded.
fn one() -> u32 {
    1
}
