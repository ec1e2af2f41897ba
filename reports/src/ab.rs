//! The A/B gate's verdict: runs of one scenario against a baseline build (A)
//! and a candidate (B), interleaved on one machine, compared second by
//! second. Each metric's per-second values over a run's held seconds (the
//! load at its peak, past a settle, CPU steal low) are summed up as the run's
//! median; an arm is the mean of its runs' medians; the effect is B over A
//! with a 95 % confidence interval from a two-stage bootstrap (runs, then
//! the seconds within each run, resampled with a fixed seed, so the same
//! records always give the same verdict). A metric regressed when the whole
//! interval lies above no change and the effect reaches the minimum the user
//! set. Runs that are not fit to compare (interrupted, a saturated
//! generator, a large send lag, too few quiet seconds) do not count, with
//! their reason; runs of different scenarios refuse the comparison.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tierlab_record::{Ended, RunRecord, Second};

use crate::effective::{effective_scenario, first_difference};

/// Held seconds skipped at the start of the hold: the load has just
/// reached its peak and queues are still filling.
pub const SETTLE_S: usize = 2;
/// A second whose CPU steal passed this share (% of the machine's CPU time)
/// measured the hypervisor's other tenants, not the build: the limit when
/// the user sets none (`--max-steal`).
pub const DEFAULT_MAX_STEAL_PCT: f64 = 5.0;
/// Fewest usable seconds that make a run count.
pub const MIN_SECONDS: usize = 5;
/// Fewest counted runs per arm.
pub const MIN_RUNS: usize = 2;
/// A run whose generator lagged (send lag p95) by more than this share of
/// the fan-out p95 it measured was measuring itself as much as the build.
pub const MAX_SEND_LAG_SHARE: f64 = 0.5;
/// The minimum effect when the user names none, %.
pub const DEFAULT_MIN_EFFECT_PCT: f64 = 10.0;
/// Bootstrap draws; the interval's ends move by well under a percent
/// between seeds at this count.
const DRAWS: usize = 2000;
const SEED: u64 = 0x7_1e71ab;

/// What the gate compares, every one lower-is-better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbMetric {
    FanoutP95,
    FanoutP99,
    AckP95,
    AckP99,
    /// Replica CPU time per event frame sent to a member, µs.
    ServerCpuPerEvent,
    /// Replica resident memory per connected player, KiB.
    ServerKibPerConnection,
}

impl AbMetric {
    pub const ALL: [AbMetric; 6] = [
        AbMetric::FanoutP95,
        AbMetric::FanoutP99,
        AbMetric::AckP95,
        AbMetric::AckP99,
        AbMetric::ServerCpuPerEvent,
        AbMetric::ServerKibPerConnection,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AbMetric::FanoutP95 => "fan-out p95",
            AbMetric::FanoutP99 => "fan-out p99",
            AbMetric::AckP95 => "ack p95",
            AbMetric::AckP99 => "ack p99",
            AbMetric::ServerCpuPerEvent => "server CPU per delivered event",
            AbMetric::ServerKibPerConnection => "server memory per connection",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            AbMetric::ServerCpuPerEvent => "µs",
            AbMetric::ServerKibPerConnection => "KiB",
            _ => "ms",
        }
    }

    /// The metric's value in each usable second of `run`.
    pub fn series(self, run: &RunRecord, max_steal_pct: f64) -> Vec<f64> {
        let replicas = ReplicaSeconds::of(run);
        usable_seconds(run, max_steal_pct)
            .into_iter()
            .filter_map(|second| self.of_second(second, &replicas))
            .collect()
    }

    fn of_second(self, second: &Second, replicas: &ReplicaSeconds) -> Option<f64> {
        let latency = |p: &tierlab_record::Percentiles, value: f64| (p.count > 0).then_some(value);
        match self {
            AbMetric::FanoutP95 => latency(&second.fanout_ms, second.fanout_ms.p95),
            AbMetric::FanoutP99 => latency(&second.fanout_ms, second.fanout_ms.p99),
            AbMetric::AckP95 => latency(&second.ack_ms, second.ack_ms.p95),
            AbMetric::AckP99 => latency(&second.ack_ms, second.ack_ms.p99),
            AbMetric::ServerCpuPerEvent => {
                let s = replicas.at(second.t)?;
                (s.events_per_s > 0.0).then(|| s.cpu_pct / 100.0 * 1e6 / s.events_per_s)
            }
            AbMetric::ServerKibPerConnection => {
                let s = replicas.at(second.t)?;
                (s.connections > 0).then(|| s.rss_mib * 1024.0 / s.connections as f64)
            }
        }
    }
}

/// All replicas together in one second, when every one of them was sampled.
#[derive(Debug, Clone, Copy, Default)]
struct ReplicaSecond {
    cpu_pct: f64,
    events_per_s: f64,
    rss_mib: f64,
    connections: u64,
    sampled: usize,
}

struct ReplicaSeconds {
    replicas: usize,
    by_t: BTreeMap<u64, ReplicaSecond>,
}

impl ReplicaSeconds {
    fn of(run: &RunRecord) -> ReplicaSeconds {
        let mut by_t = BTreeMap::<u64, ReplicaSecond>::new();
        let replicas: Vec<_> = run.processes.iter().filter(|p| p.is_replica()).collect();
        for process in &replicas {
            for s in &process.by_second {
                let (Some(cpu), Some(events), Some(connections)) =
                    (s.cpu_pct, s.events_per_s, s.connections)
                else {
                    continue;
                };
                let sum = by_t.entry(s.t).or_default();
                sum.cpu_pct += cpu;
                sum.events_per_s += events;
                sum.rss_mib += s.rss_mib;
                sum.connections += connections;
                sum.sampled += 1;
            }
        }
        ReplicaSeconds {
            replicas: replicas.len(),
            by_t,
        }
    }

    fn at(&self, t: u64) -> Option<&ReplicaSecond> {
        self.by_t
            .get(&t)
            .filter(|s| self.replicas > 0 && s.sampled == self.replicas)
    }
}

/// The seconds at the load's peak target, past [`SETTLE_S`], whose CPU
/// steal stayed under `max_steal_pct`.
pub fn usable_seconds(run: &RunRecord, max_steal_pct: f64) -> Vec<&Second> {
    let peak = run.timeseries.iter().map(|s| s.target).fold(0.0, f64::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    run.timeseries
        .iter()
        .filter(|s| s.target >= peak * 0.999)
        .skip(SETTLE_S)
        .filter(|s| s.steal_pct <= max_steal_pct)
        .collect()
}

/// Why `run` says little about any build, if it does: it did not run to the
/// end, or its generator measured itself. Both gates refuse such a run.
pub fn incomplete(run: &RunRecord) -> Option<String> {
    if run.partial || run.ended != Ended::Completed {
        return Some(format!(
            "it did not run to the end of its load shape (ended: {:?}{})",
            run.ended,
            if run.partial { ", partial" } else { "" }
        ));
    }
    if run.generator.saturated {
        return Some("the generator saturated: it measured itself".into());
    }
    None
}

/// Why `run` cannot stand for its build in an A/B gate, if it cannot.
pub fn unfit(run: &RunRecord, max_steal_pct: f64) -> Option<String> {
    if let Some(why) = incomplete(run) {
        return Some(why);
    }
    let (lag, fanout) = (&run.summary.send_lag_ms, &run.summary.fanout_ms);
    if lag.count > 0 && lag.p95 > MAX_SEND_LAG_SHARE * fanout.p95 {
        return Some(format!(
            "the generator's send lag (p95 {:.2} ms) is more than {:.0} % of the fan-out it measures (p95 {:.2} ms)",
            lag.p95,
            MAX_SEND_LAG_SHARE * 100.0,
            fanout.p95
        ));
    }
    let usable = usable_seconds(run, max_steal_pct).len();
    if usable < MIN_SECONDS {
        return Some(format!(
            "only {usable} usable held second(s), {MIN_SECONDS} needed (seconds with CPU steal above {max_steal_pct} % do not count; --max-steal sets that limit)"
        ));
    }
    None
}

/// Which build a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Baseline,
    Candidate,
}

/// One run of the gate and whether it counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbRun {
    pub arm: Arm,
    pub dir: String,
    /// Why it did not count; none when it did.
    pub unfit: Option<String>,
}

/// Which way a metric moved, beyond doubt and beyond the minimum effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Regression,
    Improvement,
    NoChange,
}

/// One metric, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: AbMetric,
    /// Mean of the arm's runs' medians, in the metric's unit.
    pub baseline: f64,
    pub candidate: f64,
    /// Candidate over baseline, % (+ is worse).
    pub effect_pct: f64,
    /// 95 % confidence interval of the effect, %.
    pub ci_pct: (f64, f64),
    pub change: Change,
}

impl Comparison {
    pub fn sentence(&self) -> String {
        format!(
            "{} {:+.0} % (95 % CI {:+.0} … {:+.0} %)",
            self.metric.label(),
            self.effect_pct,
            self.ci_pct.0,
            self.ci_pct.1
        )
    }
}

/// What the gate can say about its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    Pass,
    Regressed,
    /// No metric regressed, but a run failed its own SLOs.
    SloFailed,
    Refused(String),
}

/// The gate's whole answer, kept as `ab.json` beside its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    pub scenario: String,
    pub baseline: String,
    pub candidate: String,
    pub min_effect_pct: f64,
    /// Seconds with more CPU steal than this (%) did not count.
    #[serde(default = "default_max_steal")]
    pub max_steal_pct: f64,
    pub runs: Vec<AbRun>,
    pub comparisons: Vec<Comparison>,
    /// `dir: slo` for every SLO a counted run failed.
    pub failed_slos: Vec<String>,
    pub verdict: Verdict,
    /// When it was judged (the first run's start) and where.
    pub started_at: String,
    pub machine: String,
    /// How long the whole gate took, builds included (as `tierlab ab`
    /// measured it; kept when the runs are judged again).
    #[serde(default)]
    pub wall_s: Option<f64>,
}

/// The builds' names and what the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct AbSetup {
    pub baseline: String,
    pub candidate: String,
    pub min_effect_pct: f64,
    pub max_steal_pct: f64,
}

/// Gates judged before the limit could be set used the default.
fn default_max_steal() -> f64 {
    DEFAULT_MAX_STEAL_PCT
}

/// Judges `runs`: (arm, run directory, its record).
pub fn judge(setup: &AbSetup, runs: &[(Arm, String, RunRecord)]) -> AbReport {
    let mut report = unjudged(setup, runs);
    if let Err(reason) = comparable(runs) {
        report.verdict = Verdict::Refused(reason);
        return report;
    }
    let counted: Vec<(Arm, &str, &RunRecord)> = runs
        .iter()
        .zip(&report.runs)
        .filter(|(_, r)| r.unfit.is_none())
        .map(|((arm, dir, run), _)| (*arm, dir.as_str(), run))
        .collect();
    for arm in [Arm::Baseline, Arm::Candidate] {
        let n = counted.iter().filter(|(a, _, _)| *a == arm).count();
        if n < MIN_RUNS {
            report.verdict = Verdict::Refused(format!(
                "{n} {arm:?} run(s) fit to compare, {MIN_RUNS} needed; see why each did not count"
            ));
            return report;
        }
    }
    report.failed_slos = counted
        .iter()
        .flat_map(|(_, dir, run)| {
            run.slo
                .iter()
                .filter(|s| !s.pass)
                .map(move |s| format!("{dir}: {}", s.name))
        })
        .collect();
    report.comparisons = comparisons(setup, &counted);
    report.verdict = if report
        .comparisons
        .iter()
        .any(|c| c.change == Change::Regression)
    {
        Verdict::Regressed
    } else if !report.failed_slos.is_empty() {
        Verdict::SloFailed
    } else {
        Verdict::Pass
    };
    report
}

/// Every metric the counted runs of both arms measured, compared.
fn comparisons(setup: &AbSetup, counted: &[(Arm, &str, &RunRecord)]) -> Vec<Comparison> {
    AbMetric::ALL
        .into_iter()
        .filter_map(|metric| {
            let arm = |which: Arm| -> Vec<Vec<f64>> {
                counted
                    .iter()
                    .filter(|(a, _, _)| *a == which)
                    .map(|(_, _, run)| metric.series(run, setup.max_steal_pct))
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            compare(
                metric,
                &arm(Arm::Baseline),
                &arm(Arm::Candidate),
                setup.min_effect_pct,
            )
        })
        .collect()
}

/// The report before any verdict: the setup, and each run with why it
/// does not count (if it does not).
fn unjudged(setup: &AbSetup, runs: &[(Arm, String, RunRecord)]) -> AbReport {
    let first = runs.first().map(|r| &r.2);
    AbReport {
        scenario: first.map(|r| r.scenario.name.clone()).unwrap_or_default(),
        baseline: setup.baseline.clone(),
        candidate: setup.candidate.clone(),
        min_effect_pct: setup.min_effect_pct,
        max_steal_pct: setup.max_steal_pct,
        runs: runs
            .iter()
            .map(|(arm, dir, run)| AbRun {
                arm: *arm,
                dir: dir.clone(),
                unfit: unfit(run, setup.max_steal_pct),
            })
            .collect(),
        comparisons: Vec::new(),
        failed_slos: Vec::new(),
        verdict: Verdict::Pass,
        started_at: first.map(|r| r.started_at.clone()).unwrap_or_default(),
        machine: first.map_or_else(String::new, |r| {
            format!("{} ({} cores)", r.machine.hostname, r.machine.cores)
        }),
        wall_s: None,
    }
}

/// Every run ran the same scenario as the first.
fn comparable(runs: &[(Arm, String, RunRecord)]) -> Result<(), String> {
    let Some((_, first_dir, first)) = runs.first() else {
        return Err("no runs".into());
    };
    let reference =
        effective_scenario(&first.scenario.text).map_err(|e| format!("{first_dir}: {e}"))?;
    for (_, dir, run) in &runs[1..] {
        let scenario = effective_scenario(&run.scenario.text).map_err(|e| format!("{dir}: {e}"))?;
        if let Some(key) = first_difference(&reference, &scenario, "") {
            return Err(format!(
                "{dir} and {first_dir} ran different scenarios (`{key}` differs): not like with like"
            ));
        }
        if run.topology_label() != first.topology_label() {
            return Err(format!(
                "{dir} ran on {}, {first_dir} on {}: not like with like",
                run.topology_label(),
                first.topology_label()
            ));
        }
    }
    Ok(())
}

/// The interpolated median (the mean of the two middle values): a statistic
/// of the arm, unlike `tierlab_record::median`, which picks a measured value.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The arm's centre: the mean of its runs' medians.
fn centre(runs: &[Vec<f64>]) -> f64 {
    runs.iter().map(|r| median(&mut r.clone())).sum::<f64>() / runs.len() as f64
}

/// One bootstrap draw of an arm's centre: runs drawn with replacement,
/// then each drawn run's seconds with replacement.
fn draw(runs: &[Vec<f64>], rng: &mut SmallRng, scratch: &mut Vec<f64>) -> f64 {
    let mut sum = 0.0;
    for _ in 0..runs.len() {
        let run = &runs[rng.random_range(0..runs.len())];
        scratch.clear();
        scratch.extend((0..run.len()).map(|_| run[rng.random_range(0..run.len())]));
        sum += median(scratch);
    }
    sum / runs.len() as f64
}

/// `metric` in the candidate's runs against the baseline's: none when an
/// arm has no values (the metric was not measured, e.g. no replica
/// sampled).
pub fn compare(
    metric: AbMetric,
    baseline: &[Vec<f64>],
    candidate: &[Vec<f64>],
    min_effect_pct: f64,
) -> Option<Comparison> {
    if baseline.is_empty() || candidate.is_empty() {
        return None;
    }
    let (a, b) = (centre(baseline), centre(candidate));
    if a <= 0.0 {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut scratch = Vec::new();
    let mut ratios: Vec<f64> = (0..DRAWS)
        .map(|_| {
            let a = draw(baseline, &mut rng, &mut scratch);
            let b = draw(candidate, &mut rng, &mut scratch);
            if a > 0.0 {
                b / a
            } else {
                f64::INFINITY
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| (ratios[((DRAWS as f64 - 1.0) * q).round() as usize] - 1.0) * 100.0;
    let ci_pct = (at(0.025), at(0.975));
    let effect_pct = (b / a - 1.0) * 100.0;
    let change = if ci_pct.0 > 0.0 && effect_pct >= min_effect_pct {
        Change::Regression
    } else if ci_pct.1 < 0.0 && effect_pct <= -min_effect_pct {
        Change::Improvement
    } else {
        Change::NoChange
    };
    Some(Comparison {
        metric,
        baseline: a,
        candidate: b,
        effect_pct,
        ci_pct,
        change,
    })
}

impl AbReport {
    /// 0 pass, 98 regressed, 99 a run failed its SLOs, 2 refused.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Regressed => 98,
            Verdict::SloFailed => 99,
            Verdict::Refused(_) => 2,
        }
    }

    /// The line a CI log shows at a glance.
    pub fn verdict_line(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "gate: PASS".into(),
            Verdict::Regressed => {
                let worst: Vec<String> = self
                    .comparisons
                    .iter()
                    .filter(|c| c.change == Change::Regression)
                    .map(Comparison::sentence)
                    .collect();
                format!("gate: REGRESSED {}", worst.join("; "))
            }
            Verdict::SloFailed => format!("gate: SLO FAILED {}", self.failed_slos.join("; ")),
            Verdict::Refused(reason) => format!("gate: REFUSED {reason}"),
        }
    }

    /// Counted runs per arm.
    pub fn counted(&self, arm: Arm) -> usize {
        self.runs
            .iter()
            .filter(|r| r.arm == arm && r.unfit.is_none())
            .count()
    }
}

mod render;

#[cfg(test)]
mod tests;
