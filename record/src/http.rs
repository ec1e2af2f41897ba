//! The `http` section of run.json: goose's figures per HTTP request name
//! (room creation at set-up, lookups and health polls beside the players).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Percentiles;

/// When a request was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Creating the rooms, before the players.
    #[default]
    Setup,
    /// Beside the players.
    Run,
}

/// One request name's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpEndpoint {
    pub phase: Phase,
    pub requests: u64,
    pub failures: u64,
    pub per_second: f64,
    /// Response times, as goose measured them.
    pub ms: Percentiles,
}

/// Keyed by request (`GET /health`).
pub type HttpRecord = BTreeMap<String, HttpEndpoint>;
