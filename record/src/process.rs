//! The `processes` section of run.json: what each process of the topology
//! used over the run.

use serde::{Deserialize, Serialize};

/// One process over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    pub cpu_pct_median: f64,
    pub cpu_pct_max: f64,
    pub rss_mib_max: f64,
    /// Replicas: players connected (from /health); Redis: clients.
    #[serde(default)]
    pub connections_max: Option<u64>,
    /// Redis: commands per second (INFO's instantaneous_ops_per_sec).
    #[serde(default)]
    pub ops_per_s_median: Option<f64>,
    /// Replicas: event frames sent to members per second.
    #[serde(default)]
    pub events_per_s_median: Option<f64>,
    /// Every sample, by second of the run: what an A/B gate compares
    /// second by second (server CPU per delivered event, memory per
    /// connection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_second: Vec<ProcessSecond>,
}

/// One process during one second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSecond {
    /// Seconds since the run started (the record's `timeseries` clock).
    pub t: u64,
    /// CPU used over the second, % of one core (none for its first sample).
    #[serde(default)]
    pub cpu_pct: Option<f64>,
    pub rss_mib: f64,
    /// Replicas: players connected; Redis: clients.
    #[serde(default)]
    pub connections: Option<u64>,
    /// Replicas: event frames sent to members per second.
    #[serde(default)]
    pub events_per_s: Option<f64>,
}

impl ProcessUsage {
    /// A replica of the reference server (`srv-N`).
    pub fn is_replica(&self) -> bool {
        self.name.starts_with("srv-")
    }

    /// Redis, or one shard of a cluster (`redis-N`), not a Sentinel's
    /// `redis-replica`.
    pub fn is_redis_primary(&self) -> bool {
        self.name == "redis"
            || self
                .name
                .strip_prefix("redis-")
                .is_some_and(|n| n.parse::<u32>().is_ok())
    }
}
