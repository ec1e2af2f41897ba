//! What a run leaves behind: `run.json` (rewritten every second, marked
//! `partial` until the run has finished cleanly) and `latency.hlog` (HDR
//! interval log, one tagged histogram per metric per second).
//!
//! The keys of `run.json` are a contract with reports, CI and other tools;
//! `docs/run.schema.json` describes them and a test checks the output
//! against it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use serde::Serialize;

use crate::checker::Verdict;
use crate::stats::{Percentiles, Second, Window, LATENCIES};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    pub description: String,
    /// The scenario text the run used (after `--set`).
    pub text: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TopologyInfo {
    pub kind: String,
    pub replicas: u32,
    pub state: String,
    pub via: String,
    pub persistence: String,
    pub balance: String,
    /// Redis as primary + replica + 3 Sentinels.
    pub sentinel: bool,
    /// Masters of the Redis Cluster; 1: a single Redis.
    #[serde(default = "one")]
    pub redis_shards: u32,
    /// What ran as the replicas: `tierlab` or a peer (`python-socketio`).
    #[serde(default)]
    pub server: String,
    /// What the players spoke: `tierlab` or `socketio`.
    #[serde(default)]
    pub protocol: String,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub os: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let memory_kib: u64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib: memory_kib / 1024,
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub duration_s: f64,
    pub peak_players: i64,
    pub acts: u64,
    pub events_delivered: u64,
    pub errors: u64,
    /// Errors per operation (connects, joins, acts), in percent.
    pub error_rate_pct: f64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
    pub connect_ms: Percentiles,
    pub join_ms: Percentiles,
    pub reconnect_ms: Percentiles,
}

impl Summary {
    pub fn of(total: &Window, peak_players: i64, duration: Duration) -> Summary {
        let errors = total.errors_total();
        let operations = total.acts + total.latency("connect").len() + total.latency("join").len();
        Summary {
            duration_s: duration.as_secs_f64(),
            peak_players,
            acts: total.acts,
            events_delivered: total.deliveries,
            errors,
            error_rate_pct: if operations == 0 {
                0.0
            } else {
                errors as f64 * 100.0 / operations as f64
            },
            fanout_ms: Percentiles::of(total.latency("fanout")),
            ack_ms: Percentiles::of(total.latency("ack")),
            connect_ms: Percentiles::of(total.latency("connect")),
            join_ms: Percentiles::of(total.latency("join")),
            reconnect_ms: Percentiles::of(total.latency("reconnect")),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SloVerdict {
    pub name: String,
    pub threshold: String,
    pub measured: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Generator {
    pub cpu_pct_median: f64,
    pub cpu_pct_max: f64,
    /// What 100 % of the generator's worker threads would be.
    pub cpu_pct_capacity: f64,
    pub saturated: bool,
    pub rss_mib: f64,
    /// The worst second's CPU steal on this machine (see `timeseries[].steal_pct`).
    pub steal_pct_max: f64,
    pub warning: Option<String>,
}

/// A fault injected during the run, from the moment it began.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FaultRecord {
    pub name: String,
    /// `crash`, `pause`, `restart`, `rolling-restart`, `latency`, …
    pub kind: String,
    pub target: String,
    /// What it did, in words (`latency 100ms ± 20ms (Both) on srv-1->redis`).
    pub what: String,
    pub start_s: f64,
    /// When it was undone (the process ready again, the link clean); null
    /// for a crash without restart, or a run that ended first.
    pub end_s: Option<f64>,
    /// Steps that could not be carried out.
    pub errors: Vec<String>,
    /// What it cost (filled in when the run ends).
    pub verdict: Option<crate::checker::faults::FaultVerdict>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub partial: bool,
    /// Why the run ended: `completed`, `max_duration`, `interrupted`, `error: …`.
    pub ended: String,
    pub started_at: String,
    /// The slices of the population this record holds (`--shard`, merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    pub scenario: ScenarioInfo,
    pub topology: TopologyInfo,
    pub machine: Machine,
    pub versions: BTreeMap<String, String>,
    /// `closed` (stages are concurrent players) or `open` (arrivals/s).
    pub model: String,
    /// Latencies are measured from each act's intended send time.
    pub latency_origin: String,
    pub summary: Summary,
    pub errors: BTreeMap<String, u64>,
    pub checker: Verdict,
    pub slo: Vec<SloVerdict>,
    pub generator: Generator,
    pub timeseries: Vec<Second>,
    pub faults: Vec<FaultRecord>,
    /// goose's figures per HTTP request name (room creation, lookups, health).
    pub http: crate::http::HttpRecord,
    /// What each process of a local topology used (empty for external).
    pub processes: Vec<crate::sampler::ProcessUsage>,
}

/// Writes `run.json` so that a reader never sees half a file.
pub fn write_json(dir: &Path, record: &RunRecord) -> std::io::Result<()> {
    let tmp = dir.join("run.json.tmp");
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("run.json"))
}

/// The HDR interval log of a run, appended once per second.
#[derive(Debug)]
pub struct HistogramLog {
    file: File,
    path: PathBuf,
}

impl HistogramLog {
    pub fn create(dir: &Path, started: SystemTime) -> std::io::Result<HistogramLog> {
        let path = dir.join("latency.hlog");
        let mut file = File::create(&path)?;
        let epoch = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // The version and legend lines Java's HistogramLogReader expects;
        // hdrhistogram's writer leaves them out.
        writeln!(file, "#[Histogram log format version 1.3]")?;
        writeln!(
            file,
            "#[Written by tierlab; values in microseconds; tags: {}]",
            LATENCIES.join(", ")
        )?;
        writeln!(file, "#[StartTime: {epoch:.3} (seconds since epoch)]")?;
        writeln!(file, "#[BaseTime: {epoch:.3} (seconds since epoch)]")?;
        writeln!(
            file,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HistogramLog { file, path })
    }

    /// Appends the interval that started at `start` (since BaseTime).
    pub fn append(
        &mut self,
        window: &Window,
        start: Duration,
        length: Duration,
    ) -> std::io::Result<()> {
        let mut serializer = V2DeflateSerializer::new();
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut serializer)?;
        for (name, histogram) in LATENCIES.iter().zip(&window.latencies) {
            if histogram.is_empty() {
                continue;
            }
            writer
                .write_histogram(histogram, start, length, Tag::new(name))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serde default for counts that were 1 before they were recorded.
fn one() -> u32 {
    1
}
