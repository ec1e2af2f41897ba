//! `run.json` as the reports read it: the keys docs/run.schema.json
//! publishes, deserialized into plain types. Reports depend on that
//! contract, not on the generator's internals.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ReportError;

/// Percentiles of one latency histogram, in milliseconds: the generator
/// writes them, reports read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Of a histogram of microseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TopologyInfo {
    pub kind: String,
    pub replicas: u32,
    pub state: String,
    pub via: String,
    pub persistence: String,
    #[serde(default)]
    pub sentinel: bool,
    /// What ran as the replicas (`tierlab`, `python-socketio`); empty in
    /// runs older than the field, which were all `tierlab`.
    #[serde(default)]
    pub server: String,
}

impl TopologyInfo {
    /// `" python-socketio"` for a peer, nothing for the reference server.
    pub fn peer(&self) -> String {
        match self.server.as_str() {
            "" | "tierlab" => String::new(),
            other => format!(" {other}"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub os: String,
    pub kernel: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Summary {
    pub duration_s: f64,
    pub peak_players: i64,
    pub acts: u64,
    pub events_delivered: u64,
    pub errors: u64,
    pub error_rate_pct: f64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Checker {
    pub acked: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    #[serde(default)]
    pub unacked_delivered: u64,
    /// What was checked (server seqs, or senders' counters for targets
    /// without them); empty in runs older than the field.
    #[serde(default)]
    pub guarantee: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SloVerdict {
    pub name: String,
    pub threshold: String,
    pub measured: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Generator {
    pub cpu_pct_median: f64,
    pub cpu_pct_max: f64,
    pub cpu_pct_capacity: f64,
    pub saturated: bool,
    pub rss_mib: f64,
    #[serde(default)]
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Second {
    pub t: u64,
    pub players: i64,
    pub target: f64,
    pub acts: u64,
    pub events_delivered: u64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
    pub errors: u64,
    #[serde(default)]
    pub reconnects: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FaultVerdict {
    #[serde(default)]
    pub players_dropped: i64,
    pub players_back_s: Option<f64>,
    pub fanout_recovered_s: Option<f64>,
    #[serde(default)]
    pub reconnects: u64,
    pub lost: u64,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fault {
    pub name: String,
    #[serde(default)]
    pub what: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
    #[serde(default)]
    pub verdict: Option<FaultVerdict>,
}

/// One process of the topology over the run (`processes` in run.json).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    pub cpu_pct_median: f64,
    pub cpu_pct_max: f64,
    pub rss_mib_max: f64,
    #[serde(default)]
    pub connections_max: Option<u64>,
    #[serde(default)]
    pub events_per_s_median: Option<f64>,
    #[serde(default)]
    pub ops_per_s_median: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Run {
    pub partial: bool,
    pub ended: String,
    pub started_at: String,
    pub scenario: ScenarioInfo,
    pub topology: TopologyInfo,
    pub machine: Machine,
    pub versions: BTreeMap<String, String>,
    pub summary: Summary,
    pub checker: Checker,
    pub slo: Vec<SloVerdict>,
    pub generator: Generator,
    pub timeseries: Vec<Second>,
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub processes: Vec<ProcessUsage>,
    /// The workers of a sharded run, when it was one.
    #[serde(default)]
    pub shard: Option<Workers>,
}

/// What a sharded run says of its workers and their clocks.
#[derive(Debug, Clone, Deserialize)]
pub struct Workers {
    pub indices: Vec<u32>,
    pub count: u32,
    #[serde(default)]
    pub start_skew_ms: BTreeMap<String, f64>,
    #[serde(default)]
    pub delivery_ms: BTreeMap<String, f64>,
    #[serde(default)]
    pub clock_skew_ms: BTreeMap<String, f64>,
}

impl Run {
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReportError::Parse { path, source })
    }

    /// What a baseline must match: replicas, state, how players connect,
    /// persistence, Sentinel.
    pub fn topology_label(&self) -> String {
        let t = &self.topology;
        format!(
            "{} ×{} {} via {}, persistence {}{}",
            t.replicas,
            t.peer(),
            t.state,
            t.via,
            t.persistence,
            if t.sentinel { ", Sentinel" } else { "" }
        )
    }

    /// Events delivered per second at the busiest held second (median of
    /// the seconds at peak players, so one burst does not count).
    pub fn throughput(&self) -> f64 {
        let peak = self.summary.peak_players;
        let mut at_peak: Vec<u64> = self
            .timeseries
            .iter()
            .filter(|s| s.players == peak && s.events_delivered > 0)
            .map(|s| s.events_delivered)
            .collect();
        at_peak.sort_unstable();
        at_peak.get(at_peak.len() / 2).copied().unwrap_or(0) as f64
    }
}
