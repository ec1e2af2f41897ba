//! The run record: `run.json`'s types, defined once for the swarm that
//! writes them and the reports that read them; the SLOs judged on a record;
//! the statistics of an interval ([`Window`]) and the HDR interval log
//! (`latency.hlog`) beside it. Every field added after the first release has
//! a serde default, so records written before still load.
//!
//! The keys are a contract with reports, CI and other tools;
//! `docs/run.schema.json` describes them and the swarm's tests check its
//! output against it.

pub mod calibration;
mod checker;
mod context;
mod fault;
pub mod hlog;
mod http;
mod median;
mod metric;
mod process;
pub mod setup;
mod shard;
pub mod slo;
mod summary;
mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use checker::{Finding, Verdict, MAX_FINDINGS};
pub use context::{Machine, ScenarioInfo, TopologyInfo};
pub use fault::{FaultRecord, FaultVerdict};
pub use http::{HttpEndpoint, HttpRecord, Phase};
pub use median::median;
pub use metric::{Count, Latency};
pub use process::{ProcessSecond, ProcessUsage};
pub use setup::{FaultKind, Model};
pub use shard::ShardInfo;
pub use slo::Slo;
pub use summary::{us_per_event, Generator, MachineSecond, Second, SloVerdict, Summary};
pub use window::{histogram, Percentiles, Window};

/// The record's file name in a run directory.
pub const FILE: &str = "run.json";
/// The format this version writes.
pub const FORMAT: u32 = 1;
/// The fan-out p95 a fault must get back under when the scenario sets none.
pub const DEFAULT_FANOUT_LIMIT_MS: f64 = 50.0;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a run record this version reads: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: latency histograms: {message}")]
    Histogram { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// It ran to the end of its load shape.
    Completed,
    /// `load.max_duration` came first.
    MaxDuration,
    /// Ctrl-C (or a signal) ended it early.
    Interrupted,
    /// Still running (or the generator died before it could say).
    #[default]
    Running,
    /// A value this version does not know (older merged records joined
    /// their workers' endings with commas).
    #[serde(other)]
    Other,
}

impl Ended {
    pub fn name(self) -> &'static str {
        match self {
            Ended::Completed => "completed",
            Ended::MaxDuration => "max_duration",
            Ended::Interrupted => "interrupted",
            Ended::Running => "running",
            Ended::Other => "other",
        }
    }

    /// Of several workers: the one that says least for the run (running
    /// over interrupted over max_duration over completed).
    pub fn worst(all: impl IntoIterator<Item = Ended>) -> Ended {
        all.into_iter().max().unwrap_or_default()
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default = "format_one")]
    pub format: u32,
    pub partial: bool,
    pub ended: Ended,
    pub started_at: String,
    /// The slices of the population this record holds (`--shard`, merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    pub scenario: ScenarioInfo,
    pub topology: TopologyInfo,
    pub machine: Machine,
    pub versions: BTreeMap<String, String>,
    #[serde(default)]
    pub model: Model,
    /// Latencies are measured from each act's intended send time.
    #[serde(default)]
    pub latency_origin: String,
    pub summary: Summary,
    /// Errors of the whole run by kind.
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    pub checker: Verdict,
    pub slo: Vec<SloVerdict>,
    pub generator: Generator,
    pub timeseries: Vec<Second>,
    pub faults: Vec<FaultRecord>,
    /// goose's figures per HTTP request name (room creation, lookups, health).
    #[serde(default)]
    pub http: HttpRecord,
    /// What each process of a local topology used (empty for external).
    #[serde(default)]
    pub processes: Vec<ProcessUsage>,
}

fn format_one() -> u32 {
    FORMAT
}

impl RunRecord {
    /// Reads `dir/run.json`.
    pub fn load(dir: &Path) -> Result<RunRecord, RecordError> {
        let path = dir.join(FILE);
        let text = std::fs::read(&path).map_err(|source| RecordError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| RecordError::Parse { path, source })
    }

    /// Writes `dir/run.json` so that a reader never sees half a file.
    pub fn write(&self, dir: &Path) -> Result<(), RecordError> {
        let path = dir.join(FILE);
        let write = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        let tmp = dir.join("run.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| write(e.into()))?;
        std::fs::write(&tmp, text).map_err(write)?;
        std::fs::rename(tmp, &path).map_err(write)
    }

    /// Judges `slos` on this record, whose latencies are `totals`.
    pub fn judge(&mut self, slos: &[Slo], totals: &Window) {
        self.slo = slos.iter().map(|slo| slo.judge(self, totals)).collect();
    }

    /// Whether every SLO held.
    pub fn slos_held(&self) -> bool {
        self.slo.iter().all(|s| s.pass)
    }

    /// What a baseline must match (see [`TopologyInfo::label`]).
    pub fn topology_label(&self) -> String {
        self.topology.label()
    }

    /// The generator's memory per connected player, KiB: its RSS growth
    /// from the first second with players to the peak, over the players
    /// added meanwhile (the process's base excluded).
    pub fn generator_kib_per_player(&self) -> Option<f64> {
        let first = self.timeseries.iter().find(|s| s.players > 0)?;
        let peak = self.timeseries.iter().max_by_key(|s| s.players)?;
        let added = peak.players - first.players;
        (added > 0)
            .then(|| (peak.generator_rss_mib - first.generator_rss_mib) * 1024.0 / added as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut record = RunRecord {
            ended: Ended::Completed,
            started_at: "2026-12-01T20:00:00.000Z".into(),
            ..RunRecord::default()
        };
        record.summary.acts = 7;
        record.write(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let back = RunRecord::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, record);
    }

    #[test]
    fn endings_old_and_new_load_and_the_worst_wins() {
        let read = |text: &str| serde_json::from_str::<Ended>(text).ok();
        assert_eq!(read("\"max_duration\""), Some(Ended::MaxDuration));
        assert_eq!(read("\"completed, interrupted\""), Some(Ended::Other));
        assert_eq!(
            Ended::worst([Ended::Completed, Ended::Interrupted, Ended::MaxDuration]),
            Ended::Interrupted
        );
        assert_eq!(Ended::worst([Ended::Completed]), Ended::Completed);
    }
}
