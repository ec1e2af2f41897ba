//! `tierlab merge DIR... --out DIR`: adds the run directories of a sharded
//! run's workers (shard.rs) into one run. Latencies are added as HDR
//! histograms from each worker's `latency.hlog` — whole-run and per second,
//! aligned on the wall clock — never averaged percentiles; counts are sums.
//! The checker judges again, over every worker's acks and members together
//! (each worker's `checker.json`), which is what makes cross-worker rooms
//! exact; runs without those facts (rooms whole on one worker) add their
//! checker verdicts instead. The SLOs are judged again on the sums. A merged
//! run can be merged again, so merging is associative. Every statistic is
//! added by its own `+=`; this file only lines the workers' clocks up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use tierlab_record::hlog::{self, HistogramLog};
use tierlab_record::{Ended, Latency, RecordError, RunRecord, Second, ShardInfo, Summary, Window};

use crate::checker::{self, Facts};
use crate::scenario::Scenario;
use crate::wallclock::unix_seconds;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Record(#[from] RecordError),
    #[error("{path}: started_at: {source}")]
    StartedAt {
        path: PathBuf,
        source: humantime::TimestampError,
    },
    #[error("cannot merge: {0}")]
    Mismatch(String),
}

/// One worker's run: its record, when it began, and its latency intervals
/// keyed by the second of its own run they began in.
struct Part {
    record: RunRecord,
    started: f64,
    intervals: Vec<(u64, Latency, hdrhistogram::Histogram<u64>)>,
    /// What its checker judged (`checker.json`), when it wrote it.
    facts: Option<Facts>,
}

fn read_part(dir: &Path) -> Result<Part, MergeError> {
    let record = RunRecord::load(dir)?;
    let started = humantime::parse_rfc3339_weak(&record.started_at).map_err(|source| {
        MergeError::StartedAt {
            path: dir.join(tierlab_record::FILE),
            source,
        }
    })?;
    let (_, log) = hlog::read(&dir.join(hlog::FILE))?;
    let intervals = log
        .into_iter()
        .filter_map(|i| {
            let latency = i.latency()?;
            Some((i.start.round().max(0.0) as u64, latency, i.histogram))
        })
        .collect();
    Ok(Part {
        record,
        started: unix_seconds(started),
        intervals,
        facts: checker::read_facts(dir)?,
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
        merged.absorb(shard).map_err(MergeError::Mismatch)?;
    }
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
    let (seconds, totals) = windows(&parts, base)?;
    let mut record = merge(&parts, shard, base, &seconds, &totals);
    let facts = all_facts(&parts, base);
    if let Some(facts) = &facts {
        record.checker = facts.check();
        // Every worker ran the same scenario, so checked the same guarantee.
        record.checker.guarantee = parts[0].record.checker.guarantee.clone();
    }
    // Once, on the final checker verdict and sums.
    rejudge(&mut record, &totals);
    write(out, &record, base, &seconds, facts.as_ref())
}

fn write(
    out: &Path,
    record: &RunRecord,
    base: f64,
    seconds: &Seconds,
    facts: Option<&Facts>,
) -> Result<(), MergeError> {
    let failed = |source| RecordError::Write {
        path: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out).map_err(failed)?;
    let base_time = UNIX_EPOCH + Duration::from_secs_f64(base);
    let mut hlog = HistogramLog::create(out, base_time).map_err(failed)?;
    for (t, window) in seconds {
        hlog.append(window, Duration::from_secs(*t), Duration::from_secs(1))
            .map_err(failed)?;
    }
    if let Some(facts) = facts {
        checker::write_facts(out, facts)?;
    }
    Ok(record.write(out)?)
}

/// Every worker's checker facts together, if every worker wrote them.
fn all_facts(parts: &[Part], base: f64) -> Option<Facts> {
    let mut merged = Facts::default();
    for part in parts {
        merged.absorb(part.facts.clone()?, offset(part, base));
    }
    Some(merged)
}

fn rejudge(record: &mut RunRecord, totals: &Window) {
    if let Ok(scenario) =
        Scenario::parse(Path::new(&record.scenario.path), &record.scenario.text, &[])
    {
        record.judge(&scenario.slo, totals);
    }
}

/// Per second since `base`, every latency's histogram.
type Seconds = BTreeMap<u64, Window>;

/// The workers' latency intervals, per merged second and in total.
/// Workers' seconds are aligned by their start, rounded to a whole second,
/// the same way for histograms and for the time series.
fn windows(parts: &[Part], base: f64) -> Result<(Seconds, Window), MergeError> {
    let mut seconds: Seconds = BTreeMap::new();
    let mut totals = Window::new();
    for part in parts {
        let shift = offset(part, base);
        for (second, latency, histogram) in &part.intervals {
            totals
                .add(*latency, histogram)
                .map_err(MergeError::Mismatch)?;
            seconds
                .entry(second + shift)
                .or_default()
                .add(*latency, histogram)
                .map_err(MergeError::Mismatch)?;
        }
    }
    Ok((seconds, totals))
}

fn merge(
    parts: &[Part],
    shard: ShardInfo,
    base: f64,
    seconds: &Seconds,
    latencies: &Window,
) -> RunRecord {
    let mut record = parts[0].record.clone();
    record.partial = !shard.complete() || parts.iter().any(|p| p.record.partial);
    record.started_at =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs_f64(base)).to_string();
    record.shard = Some(shard);
    record.ended = Ended::worst(parts.iter().map(|p| p.record.ended));
    record.timeseries = timeseries(parts, base, seconds);
    record.checker = tierlab_record::Verdict::default();
    record.errors = BTreeMap::new();
    record.generator = tierlab_record::Generator::default();
    let mut totals = latencies.clone();
    for part in parts {
        let r = &part.record;
        record.checker += &r.checker.clone().shifted(offset(part, base));
        record.generator += &r.generator;
        totals.acts += r.summary.acts;
        totals.deliveries += r.summary.events_delivered;
        for (kind, n) in &r.errors {
            *totals.errors.entry(kind.clone()).or_default() += n;
        }
    }
    record.errors = totals.errors.clone();
    record.faults = parts.iter().flat_map(|p| p.record.faults.clone()).collect();
    record.processes = parts
        .iter()
        .flat_map(|p| p.record.processes.clone())
        .collect();
    let duration = parts
        .iter()
        .map(|p| offset(p, base) as f64 + p.record.summary.duration_s)
        .fold(0.0, f64::max);
    let peak = record
        .timeseries
        .iter()
        .map(|s| s.players)
        .max()
        .unwrap_or(0);
    record.summary = Summary::of(&totals, peak, duration);
    record
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
            let t = s.t + shift;
            *merged.entry(t).or_insert_with(|| Second {
                t,
                ..Second::default()
            }) += s;
        }
    }
    for m in merged.values_mut() {
        // Second `t` closes the interval that began at t − 1.
        if let Some(window) = m.t.checked_sub(1).and_then(|t| seconds.get(&t)) {
            m.latencies_from(window);
        }
    }
    merged.into_values().collect()
}
