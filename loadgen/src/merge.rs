//! `tierlab merge DIR... --out DIR`: adds the run directories of a sharded
//! run's workers (shard.rs) into one run. Latencies are added as HDR
//! histograms from each worker's `latency.hlog` — whole-run and per second,
//! aligned on the wall clock — never averaged percentiles; counts are sums.
//! The checker judges again, over every worker's acks and members together
//! (each worker's `checker.json`), which is what makes cross-worker rooms
//! exact; runs without those facts (rooms whole on one worker) add their
//! checker totals instead. The SLOs are judged again on the sums. A merged
//! run can be merged again, so merging is associative.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tierlab_reports::run::Percentiles;
use tierlab_reports::spectrum::{add_to, read_log};

use crate::checker::Facts;
use crate::record::{self, HistogramLog, RunRecord};
use crate::run::CHECKER_FACTS;
use crate::scenario::Scenario;
use crate::shard::ShardInfo;
use crate::stats::{Second, Window, LATENCIES};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("cannot merge: {0}")]
    Mismatch(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One worker's run: its record, when it began, and its latency intervals
/// keyed by the second of its own run they began in.
struct Part {
    record: RunRecord,
    started: f64,
    intervals: Vec<(u64, String, Histogram<u64>)>,
    /// What its checker judged (`checker.json`), when it wrote it.
    facts: Option<Facts>,
}

fn read_part(dir: &Path) -> Result<Part, MergeError> {
    let input = |path: &Path, message: String| MergeError::Input {
        path: path.to_owned(),
        message,
    };
    let json = dir.join("run.json");
    let text = std::fs::read(&json).map_err(|e| input(&json, e.to_string()))?;
    let record: RunRecord =
        serde_json::from_slice(&text).map_err(|e| input(&json, e.to_string()))?;
    let started = humantime::parse_rfc3339_weak(&record.started_at)
        .map_err(|e| input(&json, format!("started_at: {e}")))?;
    let hlog = dir.join("latency.hlog");
    let (_, log) = read_log(&hlog).map_err(|e| input(&hlog, e.to_string()))?;
    let intervals = log
        .into_iter()
        .map(|i| (i.start.round().max(0.0) as u64, i.tag, i.histogram))
        .collect();
    let facts_file = dir.join(CHECKER_FACTS);
    let facts = match std::fs::read(&facts_file) {
        Ok(bytes) => {
            Some(serde_json::from_slice(&bytes).map_err(|e| input(&facts_file, e.to_string()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(input(&facts_file, e.to_string())),
    };
    Ok(Part {
        record,
        started: crate::run::unix_seconds(started),
        intervals,
        facts,
    })
}

/// The slices of all parts, checked to belong together.
fn slices(parts: &[Part]) -> Result<ShardInfo, MergeError> {
    let first = &parts[0].record;
    let mut merged = ShardInfo::default();
    for part in parts {
        let r = &part.record;
        if r.scenario.name != first.scenario.name {
            return Err(MergeError::Mismatch(format!(
                "runs of different scenarios ({} and {})",
                first.scenario.name, r.scenario.name
            )));
        }
        let shard = r.shard.as_ref().ok_or_else(|| {
            MergeError::Mismatch(format!(
                "a run of {} started at {} is not a sharded run (no --shard)",
                r.scenario.name, r.started_at
            ))
        })?;
        if merged.count != 0 && shard.count != merged.count {
            return Err(MergeError::Mismatch(format!(
                "slices of {} and of {} workers",
                merged.count, shard.count
            )));
        }
        merged.count = shard.count;
        merged.start_at = merged.start_at.or(shard.start_at);
        for index in &shard.indices {
            if merged.indices.contains(index) {
                return Err(MergeError::Mismatch(format!("slice {index} twice")));
            }
            merged.indices.push(*index);
        }
        merged.start_skew_ms.extend(shard.start_skew_ms.clone());
        merged.delivery_ms.extend(shard.delivery_ms.clone());
    }
    merged.indices.sort_unstable();
    merged.estimate_skew();
    Ok(merged)
}

/// Merges the runs in `dirs` into `out` (run.json and latency.hlog).
pub fn merge_dirs(dirs: &[PathBuf], out: &Path) -> Result<(), MergeError> {
    let parts = dirs
        .iter()
        .map(|d| read_part(d))
        .collect::<Result<Vec<_>, _>>()?;
    if parts.is_empty() {
        return Err(MergeError::Mismatch("no runs given".into()));
    }
    let shard = slices(&parts)?;
    let base = parts
        .iter()
        .map(|p| p.started)
        .fold(f64::INFINITY, f64::min);
    let (mut record, seconds) = merge(&parts, shard, base)?;
    let facts = all_facts(&parts, base);
    if let Some(facts) = &facts {
        record.checker = facts.check();
    }
    // Every worker ran the same scenario, so checked the same guarantee.
    record.checker.guarantee = parts[0].record.checker.guarantee.clone();
    // Once, on the final checker verdict and sums.
    rejudge(&mut record);
    let write = |source| MergeError::Write {
        path: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out).map_err(write)?;
    let base_time = UNIX_EPOCH + Duration::from_secs_f64(base);
    let mut hlog = HistogramLog::create(out, base_time).map_err(write)?;
    for (t, window) in &seconds {
        let start = Duration::from_secs(*t);
        hlog.append(window, start, Duration::from_secs(1))
            .map_err(write)?;
    }
    if let Some(facts) = &facts {
        let file = std::fs::File::create(out.join(CHECKER_FACTS)).map_err(write)?;
        serde_json::to_writer(std::io::BufWriter::new(file), facts).map_err(|e| write(e.into()))?;
    }
    record::write_json(out, &record).map_err(write)
}

/// Every worker's checker facts together, if every worker wrote them.
fn all_facts(parts: &[Part], base: f64) -> Option<Facts> {
    let mut merged = Facts::default();
    for part in parts {
        merged.absorb(part.facts.clone()?, offset(part, base));
    }
    Some(merged)
}

fn rejudge(record: &mut RunRecord) {
    if let Ok(scenario) =
        Scenario::parse(Path::new(&record.scenario.path), &record.scenario.text, &[])
    {
        record.slo = scenario
            .slo
            .iter()
            .map(|slo| crate::run::judge(slo, record))
            .collect();
    }
}

/// Per second since `base`, every metric's histogram.
type Seconds = BTreeMap<u64, Window>;

fn merge(parts: &[Part], shard: ShardInfo, base: f64) -> Result<(RunRecord, Seconds), MergeError> {
    let mut seconds: Seconds = BTreeMap::new();
    let mut totals: Vec<(String, Histogram<u64>)> = Vec::new();
    for part in parts {
        // Workers' seconds are aligned by their start, rounded to a whole
        // second, the same way for histograms and for the time series.
        let shift = offset(part, base);
        for (second, tag, histogram) in &part.intervals {
            let hist_error = |e| MergeError::Mismatch(format!("{tag}: {e}"));
            add_to(&mut totals, tag, histogram).map_err(|e| hist_error(e.to_string()))?;
            let window = seconds.entry(second + shift).or_default();
            if let Some(i) = LATENCIES.iter().position(|l| l == tag) {
                window.latencies[i]
                    .add(histogram)
                    .map_err(|e| hist_error(format!("{e:?}")))?;
            }
        }
    }
    let mut record = parts[0].record.clone();
    let complete = shard.indices.len() == shard.count as usize;
    record.partial = !complete || parts.iter().any(|p| p.record.partial);
    record.started_at =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs_f64(base)).to_string();
    record.shard = Some(shard);
    record.ended = ended(parts);
    record.timeseries = timeseries(parts, base, &seconds);
    record.checker = checker(parts, base);
    record.errors = BTreeMap::new();
    for part in parts {
        for (kind, n) in &part.record.errors {
            *record.errors.entry(kind.clone()).or_default() += n;
        }
    }
    record.faults = parts.iter().flat_map(|p| p.record.faults.clone()).collect();
    record.processes = parts
        .iter()
        .flat_map(|p| p.record.processes.clone())
        .collect();
    record.summary = summary(parts, base, &record.timeseries, &totals);
    record.generator.cpu_pct_median = parts
        .iter()
        .map(|p| p.record.generator.cpu_pct_median)
        .sum();
    record.generator.rss_mib = parts.iter().map(|p| p.record.generator.rss_mib).sum();
    record.generator.saturated = parts.iter().any(|p| p.record.generator.saturated);
    Ok((record, seconds))
}

/// `completed` when every worker completed; else each way a worker ended.
fn ended(parts: &[Part]) -> String {
    let mut ways: Vec<&str> = parts.iter().map(|p| p.record.ended.as_str()).collect();
    ways.sort_unstable();
    ways.dedup();
    ways.join(", ")
}

/// Whole seconds from `base` to when `part` began.
fn offset(part: &Part, base: f64) -> u64 {
    (part.started - base).round().max(0.0) as u64
}

fn timeseries(parts: &[Part], base: f64, seconds: &Seconds) -> Vec<Second> {
    let mut merged: BTreeMap<u64, Second> = BTreeMap::new();
    for part in parts {
        let shift = offset(part, base);
        for s in &part.record.timeseries {
            let m = merged.entry(s.t + shift).or_insert_with(|| Second {
                t: s.t + shift,
                ..Second::default()
            });
            m.players += s.players;
            m.target += s.target;
            m.acts += s.acts;
            m.events_delivered += s.events_delivered;
            m.errors += s.errors;
            m.reconnects += s.reconnects;
            for (kind, n) in &s.errors_by_kind {
                *m.errors_by_kind.entry(kind.clone()).or_default() += n;
            }
            m.generator_cpu_pct += s.generator_cpu_pct;
            m.generator_rss_mib += s.generator_rss_mib;
            m.steal_pct = m.steal_pct.max(s.steal_pct);
        }
    }
    for m in merged.values_mut() {
        // Second `t` closes the interval that began at t − 1.
        if let Some(window) = m.t.checked_sub(1).and_then(|t| seconds.get(&t)) {
            m.fanout_ms = Percentiles::of(window.latency("fanout"));
            m.ack_ms = Percentiles::of(window.latency("ack"));
        }
    }
    merged.into_values().collect()
}

fn checker(parts: &[Part], base: f64) -> crate::checker::Verdict {
    let mut total = crate::checker::Verdict::default();
    for part in parts {
        let v = &part.record.checker;
        total.acked += v.acked;
        total.delivered += v.delivered;
        total.lost += v.lost;
        total.duplicated += v.duplicated;
        total.reordered += v.reordered;
        total.unacked_delivered += v.unacked_delivered;
        total.members_checked += v.members_checked;
        let shift = offset(part, base);
        for (second, lost) in &v.lost_by_ack_second {
            *total.lost_by_ack_second.entry(second + shift).or_default() += lost;
        }
        total.findings.extend(v.findings.iter().cloned());
    }
    total
}

fn summary(
    parts: &[Part],
    base: f64,
    timeseries: &[Second],
    totals: &[(String, Histogram<u64>)],
) -> record::Summary {
    let latency = |tag: &str| {
        totals
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, h)| Percentiles::of(h))
            .unwrap_or_default()
    };
    let count = |tag: &str| {
        totals
            .iter()
            .find(|(t, _)| t == tag)
            .map_or(0, |(_, h)| h.len())
    };
    let sum =
        |f: fn(&record::Summary) -> u64| parts.iter().map(|p| f(&p.record.summary)).sum::<u64>();
    let (acts, errors) = (sum(|s| s.acts), sum(|s| s.errors));
    let operations = acts + count("connect") + count("join");
    record::Summary {
        duration_s: parts
            .iter()
            .map(|p| offset(p, base) as f64 + p.record.summary.duration_s)
            .fold(0.0, f64::max),
        peak_players: timeseries.iter().map(|s| s.players).max().unwrap_or(0),
        acts,
        events_delivered: sum(|s| s.events_delivered),
        errors,
        error_rate_pct: if operations == 0 {
            0.0
        } else {
            errors as f64 * 100.0 / operations as f64
        },
        fanout_ms: latency("fanout"),
        ack_ms: latency("ack"),
        connect_ms: latency("connect"),
        join_ms: latency("join"),
        reconnect_ms: latency("reconnect"),
    }
}
