//! Baselines and the CI gate: `tierlab baseline` keeps a small summary of a
//! run (`reports/baselines/<scenario>.json`) with the tolerance of each
//! metric; `tierlab gate` compares a run with it. Tolerances live in the
//! baseline file, where a team can tune them, not in code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ReportError;
use tierlab_record::RunRecord;

/// How far a metric may move the wrong way: `pct` percent of the baseline
/// plus `abs` in the metric's unit (small latencies are noisy in absolute
/// terms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub pct: f64,
    #[serde(default)]
    pub abs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// A baseline metric: its value, which way is better, and its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: f64,
    pub better: Better,
    pub tolerance: Tolerance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub scenario: String,
    /// The topology it was measured on (`RunRecord::topology_label`).
    #[serde(default)]
    pub topology: String,
    pub recorded_at: String,
    pub machine: String,
    pub metrics: BTreeMap<String, Metric>,
    /// The scenario text its runs ran (after `--set`): a run is gated only
    /// against the same effective scenario, not merely the same name.
    #[serde(default)]
    pub scenario_text: String,
}

/// The values a run is gated on, by name.
pub fn measures(run: &RunRecord) -> BTreeMap<String, f64> {
    let s = &run.summary;
    BTreeMap::from([
        ("fanout_p95_ms".to_owned(), s.fanout_ms.p95),
        ("fanout_p99_ms".to_owned(), s.fanout_ms.p99),
        ("ack_p95_ms".to_owned(), s.ack_ms.p95),
        ("ack_p99_ms".to_owned(), s.ack_ms.p99),
        ("events_per_s".to_owned(), run.throughput()),
        ("lost".to_owned(), run.checker.lost as f64),
    ])
}

/// With this many runs or more, a baseline takes its tolerances from their
/// spread instead of a fixed percentage.
pub const RUNS_FOR_SPREAD: usize = 3;
/// Tolerance = this many times the worst run's excess over the median.
const SPREAD_FACTOR: f64 = 3.0;
/// Absolute slack on latencies, ms: below this, a change is timer noise.
/// (It was 2 ms, which let a doubling of a 1 ms p95 through.)
pub const LATENCY_SLACK_MS: f64 = 0.1;
/// A tolerance above this, %, lets through regressions worth catching:
/// `tierlab baseline` says so.
pub const NOISY_PCT: f64 = 50.0;

impl Baseline {
    /// A baseline of one run, with `max_regression` percent on every metric.
    pub fn of(run: &RunRecord, max_regression: f64) -> Baseline {
        Baseline::of_runs(std::slice::from_ref(run), max_regression)
    }

    /// A baseline of several runs of one scenario: each metric's median.
    /// With [`RUNS_FOR_SPREAD`] runs or more, its tolerance is three times
    /// the worst run's excess over that median (the machine's own noise),
    /// never less than `max_regression` percent; latencies also get 2 ms of
    /// slack, losses none.
    pub fn of_runs(runs: &[RunRecord], max_regression: f64) -> Baseline {
        let all: Vec<BTreeMap<String, f64>> = runs.iter().map(measures).collect();
        let names: Vec<String> = all
            .first()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let metrics = names
            .into_iter()
            .map(|name| {
                let mut values: Vec<f64> =
                    all.iter().filter_map(|m| m.get(&name).copied()).collect();
                values.sort_by(f64::total_cmp);
                let value = values.get(values.len() / 2).copied().unwrap_or(0.0);
                let better = if name == "events_per_s" {
                    Better::Higher
                } else {
                    Better::Lower
                };
                let worst_pct = spread_pct(&values, value, better);
                let pct = if runs.len() >= RUNS_FOR_SPREAD {
                    (SPREAD_FACTOR * worst_pct).max(max_regression).ceil()
                } else {
                    max_regression
                };
                let tolerance = match name.as_str() {
                    "lost" => Tolerance { pct: 0.0, abs: 0.0 },
                    "events_per_s" => Tolerance { pct, abs: 0.0 },
                    _ => Tolerance {
                        pct,
                        abs: LATENCY_SLACK_MS,
                    },
                };
                (
                    name,
                    Metric {
                        value,
                        better,
                        tolerance,
                    },
                )
            })
            .collect();
        let run = runs.first().cloned().unwrap_or_default();
        Baseline {
            scenario: run.scenario.name.clone(),
            topology: run.topology_label(),
            recorded_at: run.started_at.clone(),
            machine: format!(
                "{} ({} cores), {} run(s)",
                run.machine.hostname,
                run.machine.cores,
                runs.len()
            ),
            metrics,
            scenario_text: run.scenario.text.clone(),
        }
    }

    /// A warning for each metric whose tolerance is too wide to catch a
    /// regression worth catching: the runs it was learnt from were noisy.
    pub fn noisy(&self) -> Vec<String> {
        self.metrics
            .iter()
            .filter(|(_, m)| m.tolerance.pct > NOISY_PCT)
            .map(|(name, m)| {
                format!(
                    "{name}: the runs disagree so much that its tolerance is {:.0} %; a regression smaller than that passes. Record more runs on a quieter machine, or gate A/B with `tierlab ab`",
                    m.tolerance.pct
                )
            })
            .collect()
    }

    pub fn load(path: &Path) -> Result<Baseline, ReportError> {
        crate::read_json(path)
    }
}

/// How far the worst of `values` strays the wrong way from `median`, in percent.
fn spread_pct(values: &[f64], median: f64, better: Better) -> f64 {
    if median == 0.0 {
        return 0.0;
    }
    values
        .iter()
        .map(|v| match better {
            Better::Lower => (v - median) / median,
            Better::Higher => (median - v) / median,
        })
        .fold(0.0, f64::max)
        * 100.0
}

/// One line of the gate's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub baseline: f64,
    pub measured: f64,
    /// Worst value the tolerance allows.
    pub limit: f64,
    pub change_pct: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub rows: Vec<Row>,
    pub failed_slos: Vec<String>,
}

impl Gate {
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| !r.pass)
    }

    /// The gate's last line: `gate: PASS`, or what regressed.
    pub fn verdict_line(&self) -> String {
        let worse: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.pass)
            .map(|r| {
                format!(
                    "{} {:+.0} % ({:.3} → {:.3}, limit {:.3})",
                    r.metric, r.change_pct, r.baseline, r.measured, r.limit
                )
            })
            .collect();
        if !worse.is_empty() {
            format!("gate: REGRESSED {}", worse.join("; "))
        } else if !self.failed_slos.is_empty() {
            format!("gate: SLO FAILED {}", self.failed_slos.join("; "))
        } else {
            "gate: PASS".into()
        }
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<16} {:>12} {:>12} {:>12} {:>9}  verdict\n",
            "metric", "baseline", "measured", "limit", "change"
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{:<16} {:>12.3} {:>12.3} {:>12.3} {:>8.1}%  {}\n",
                r.metric,
                r.baseline,
                r.measured,
                r.limit,
                r.change_pct,
                if r.pass { "ok" } else { "REGRESSED" }
            ));
        }
        for slo in &self.failed_slos {
            out.push_str(&format!("SLO failed: {slo}\n"));
        }
        out
    }
}

/// Compares `run` with `baseline`; `override_pct` replaces every metric's
/// percentage when given (`--max-regression`).
pub fn gate(
    run: &RunRecord,
    baseline: &Baseline,
    override_pct: Option<f64>,
) -> Result<Gate, ReportError> {
    if run.scenario.name != baseline.scenario {
        return Err(ReportError::Mismatch {
            run: format!("scenario `{}`", run.scenario.name),
            baseline: format!("scenario `{}`", baseline.scenario),
        });
    }
    if !baseline.topology.is_empty() && run.topology_label() != baseline.topology {
        return Err(ReportError::Mismatch {
            run: run.topology_label(),
            baseline: baseline.topology.clone(),
        });
    }
    if let Some(why) = crate::ab::incomplete(run) {
        return Err(ReportError::Unfit(format!("the run: {why}")));
    }
    if !baseline.scenario_text.is_empty() {
        use crate::effective::{effective_scenario, first_difference};
        let key = effective_scenario(&run.scenario.text)
            .and_then(|a| {
                Ok(first_difference(
                    &a,
                    &effective_scenario(&baseline.scenario_text)?,
                    "",
                ))
            })
            .map_err(ReportError::Unfit)?;
        if let Some(key) = key {
            return Err(ReportError::Mismatch {
                run: format!("a run of `{}` whose `{key}` differs", run.scenario.name),
                baseline: "its scenario as the baseline's runs ran it".into(),
            });
        }
    }
    let measured = measures(run);
    let rows = baseline
        .metrics
        .iter()
        .filter_map(|(name, metric)| {
            let value = *measured.get(name)?;
            let pct = override_pct.unwrap_or(metric.tolerance.pct);
            let room = metric.value * pct / 100.0 + metric.tolerance.abs;
            let (limit, pass) = match metric.better {
                Better::Lower => (metric.value + room, value <= metric.value + room),
                Better::Higher => (metric.value - room, value >= metric.value - room),
            };
            let change_pct = if metric.value == 0.0 {
                0.0
            } else {
                (value - metric.value) * 100.0 / metric.value
            };
            Some(Row {
                metric: name.clone(),
                baseline: metric.value,
                measured: value,
                limit,
                change_pct,
                pass,
            })
        })
        .collect();
    Ok(Gate {
        rows,
        failed_slos: run
            .slo
            .iter()
            .filter(|s| !s.pass)
            .map(|s| s.name.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_record::{Percentiles, Second, SloVerdict};

    fn run(p95: f64, events: u64, lost: u64) -> RunRecord {
        let mut run = RunRecord {
            ended: tierlab_record::Ended::Completed,
            ..RunRecord::default()
        };
        run.scenario.name = "smoke".into();
        run.scenario.text =
            "name = \"smoke\"\n[load]\nstages = [{ to = 50, over = \"4s\" }]\n".into();
        run.summary.peak_players = 50;
        run.summary.fanout_ms = Percentiles {
            count: 100,
            p50: 1.0,
            p95,
            p99: p95 * 2.0,
            max: p95 * 3.0,
        };
        run.summary.ack_ms = run.summary.fanout_ms;
        run.checker.lost = lost;
        run.timeseries = (1..=5)
            .map(|t| Second {
                t,
                players: 50,
                events_delivered: events,
                ..Second::default()
            })
            .collect();
        run
    }

    #[test]
    fn the_same_run_passes_its_own_baseline() {
        let base = Baseline::of(&run(10.0, 500, 0), 10.0);
        let g = gate(&run(10.0, 500, 0), &base, None).unwrap();
        assert!(!g.regressed(), "{}", g.table());
        assert_eq!(g.rows.len(), 6);
    }

    #[test]
    fn slower_beyond_tolerance_regresses() {
        let base = Baseline::of(&run(10.0, 500, 0), 10.0);
        // 10 ms + 10 % + 0.1 ms slack = 11.1 ms allowed.
        let g = gate(&run(11.0, 500, 0), &base, None).unwrap();
        let row = g.rows.iter().find(|r| r.metric == "fanout_p95_ms").unwrap();
        assert!(row.pass);
        assert!((row.limit - 11.1).abs() < 1e-9);
        assert_eq!(g.verdict_line(), "gate: PASS");
        let g = gate(&run(11.5, 500, 0), &base, None).unwrap();
        assert!(g.regressed());
        assert!(
            g.verdict_line().starts_with("gate: REGRESSED ")
                && g.verdict_line()
                    .contains("fanout_p95_ms +15 % (10.000 → 11.500, limit 11.100)"),
            "{}",
            g.verdict_line()
        );
        // A doubling of a small p95 no longer hides in the slack.
        let small = Baseline::of(&run(1.149, 500, 0), 10.0);
        assert!(gate(&run(2.297, 500, 0), &small, None).unwrap().regressed());
        let g = gate(&run(10.0, 400, 1), &base, None).unwrap();
        let failed: Vec<&str> = g
            .rows
            .iter()
            .filter(|r| !r.pass)
            .map(|r| r.metric.as_str())
            .collect();
        assert_eq!(failed, ["events_per_s", "lost"]);
    }

    #[test]
    fn improvements_pass_and_the_override_applies() {
        let base = Baseline::of(&run(10.0, 500, 0), 10.0);
        let g = gate(&run(5.0, 900, 0), &base, None).unwrap();
        assert!(!g.regressed());
        let g = gate(&run(15.0, 500, 0), &base, Some(50.0)).unwrap();
        assert!(!g.regressed(), "{}", g.table());
    }

    #[test]
    fn several_runs_give_medians_and_tolerances_from_their_spread() {
        let runs = [
            run(10.0, 500, 0),
            run(11.0, 490, 0),
            run(10.5, 510, 0),
            run(10.2, 500, 0),
        ];
        let base = Baseline::of_runs(&runs, 10.0);
        let p95 = &base.metrics["fanout_p95_ms"];
        // Median of 10.0, 10.2, 10.5, 11.0 (the upper middle) is 10.5; the
        // worst excess is 11.0 (+4.8 %), times 3 → 15 % (ceiled).
        assert_eq!(p95.value, 10.5);
        assert_eq!(
            p95.tolerance,
            Tolerance {
                pct: 15.0,
                abs: LATENCY_SLACK_MS
            }
        );
        // Throughput: median 500, worst 490 (−2 %) → 6 %, floored at 10 %.
        assert_eq!(base.metrics["events_per_s"].tolerance.pct, 10.0);
        assert_eq!(
            base.metrics["lost"].tolerance,
            Tolerance { pct: 0.0, abs: 0.0 }
        );
        assert!(base.machine.ends_with("4 run(s)"));
        assert!(base.noisy().is_empty());
        let noisy = Baseline::of_runs(
            &[run(10.0, 500, 0), run(40.0, 500, 0), run(10.0, 500, 0)],
            10.0,
        );
        let warnings = noisy.noisy();
        assert!(
            warnings.iter().any(|w| w.starts_with(
                "fanout_p95_ms: the runs disagree so much that its tolerance is 900 %"
            )),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_interrupted_run_or_another_effective_scenario_is_refused() {
        let base = Baseline::of(&run(10.0, 500, 0), 10.0);
        let mut cut = run(10.0, 500, 0);
        cut.partial = true;
        cut.ended = tierlab_record::Ended::Interrupted;
        let err = gate(&cut, &base, None).unwrap_err().to_string();
        assert!(err.contains("ended: Interrupted, partial"), "{err}");
        let mut longer = run(10.0, 500, 0);
        longer.scenario.text = longer.scenario.text.replace("4s", "40s");
        let err = gate(&longer, &base, None).unwrap_err().to_string();
        assert!(err.contains("whose `load.stages` differs"), "{err}");
        let mut saturated = run(10.0, 500, 0);
        saturated.generator.saturated = true;
        assert!(matches!(
            gate(&saturated, &base, None),
            Err(ReportError::Unfit(_))
        ));
    }

    #[test]
    fn a_failed_slo_is_reported_and_a_mismatched_scenario_refused() {
        let base = Baseline::of(&run(10.0, 500, 0), 10.0);
        let mut failing = run(10.0, 500, 0);
        failing.slo.push(SloVerdict {
            name: "lost = 0".into(),
            threshold: "= 0".into(),
            measured: 1.0,
            pass: false,
        });
        assert_eq!(
            gate(&failing, &base, None).unwrap().failed_slos,
            ["lost = 0"]
        );
        let mut other = run(10.0, 500, 0);
        other.scenario.name = "tier2".into();
        assert!(matches!(
            gate(&other, &base, None),
            Err(ReportError::Mismatch { .. })
        ));
    }
}
