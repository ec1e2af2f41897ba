//! The neutral report model: everything a renderer shows, computed once
//! from a run (and its baseline). Renderers only lay it out.

use std::path::Path;

use crate::gate;
use crate::knee;
use crate::spectrum::{self, Spectrum};
use crate::ReportError;
use tierlab_record::setup::Via;
use tierlab_record::{RunRecord, Slo};

/// Tolerance when a baseline run directory (not a file) is compared.
const DEFAULT_TOLERANCE_PCT: f64 = 10.0;
/// Seconds after a fault ends that still count as its own.
pub(crate) const FAULT_SETTLE_S: f64 = 5.0;
/// Bins of players the capacity curve is drawn with.
const CURVE_BINS: usize = 24;

#[derive(Debug, Clone)]
pub struct Report {
    pub run: RunRecord,
    pub spectra: Vec<Spectrum>,
    pub baseline: Option<Baseline>,
    /// (players, median p95 fan-out) over the run.
    pub curve: Vec<(f64, f64)>,
    pub knee: Option<f64>,
    /// The scenario's `p95(fanout)` SLO, in ms.
    pub fanout_slo_ms: Option<f64>,
    pub summary: String,
    /// This run against the baseline's numbers, or why they cannot be compared.
    pub comparison: Option<Result<gate::Gate, String>>,
}

/// The run a report is compared with.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub label: String,
    pub spectra: Vec<Spectrum>,
}

impl Report {
    /// Reads `dir` (run.json, latency.hlog) and, when given, a baseline:
    /// another run directory (its latency curves and its numbers) or a
    /// baseline file (its numbers).
    pub fn build(dir: &Path, baseline: Option<&Path>) -> Result<Report, ReportError> {
        let run = RunRecord::load(dir)?;
        let spectra = spectrum::read(dir).unwrap_or_default();
        let (baseline, numbers) = match baseline {
            None => (None, None),
            Some(file) if file.is_file() => (None, Some(gate::Baseline::load(file)?)),
            Some(other) => {
                let other_run = RunRecord::load(other)?;
                let numbers = gate::Baseline::of(&other_run, DEFAULT_TOLERANCE_PCT);
                let curves = Baseline {
                    label: format!("{} ({})", other_run.scenario.name, other_run.started_at),
                    spectra: spectrum::read(other)?,
                };
                (Some(curves), Some(numbers))
            }
        };
        let mut report = Report::from_parts(run, spectra, baseline);
        report.comparison =
            numbers.map(|b| gate::gate(&report.run, &b, None).map_err(|e| e.to_string()));
        Ok(report)
    }

    pub fn from_parts(
        run: RunRecord,
        spectra: Vec<Spectrum>,
        baseline: Option<Baseline>,
    ) -> Report {
        // A fault's seconds say what the fault cost, not what the load
        // costs: they stay off the capacity curve.
        let disturbed = |t: f64| {
            run.faults
                .iter()
                .any(|f| t >= f.start_s - 1.0 && t <= f.end_s.unwrap_or(f64::MAX) + FAULT_SETTLE_S)
        };
        let seconds: Vec<(f64, f64)> = run
            .timeseries
            .iter()
            .filter(|s| s.players > 0 && s.fanout_ms.count > 0 && !disturbed(s.t as f64))
            .map(|s| (s.players as f64, s.fanout_ms.p95))
            .collect();
        let curve = knee::curve(&seconds, CURVE_BINS);
        let knee = knee::knee(&curve);
        let fanout_slo_ms = fanout_slo_ms(&run);
        let summary = summary(&run);
        Report {
            run,
            spectra,
            baseline,
            curve,
            knee,
            fanout_slo_ms,
            summary,
            comparison: None,
        }
    }

    /// `partial`, `failed` (an SLO or the checker), `regressed` (against
    /// the baseline), or `passed`.
    pub fn verdict(&self) -> &'static str {
        let regressed = matches!(&self.comparison, Some(Ok(gate)) if gate.regressed());
        if self.run.partial {
            "partial"
        } else if !self.run.slo.iter().all(|s| s.pass) || self.run.checker.lost > 0 {
            "failed"
        } else if regressed {
            "regressed"
        } else {
            "passed"
        }
    }
}

/// The run's `p95(fanout)` SLO in ms, read back from its verdicts.
fn fanout_slo_ms(run: &RunRecord) -> Option<f64> {
    let slos: Vec<Slo> = run
        .slo
        .iter()
        .filter_map(|verdict| Slo::parse(&verdict.name).ok())
        .collect();
    Slo::fanout_p95_ms(&slos)
}

pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The plain-language paragraph at the top of every report.
pub fn summary(run: &RunRecord) -> String {
    let t = &run.topology;
    let s = &run.summary;
    let mut text = format!(
        "{}{} replica{} ({} state{}, players {}) held {} players at p95 fan-out {:.1} ms \
         (p99 ack {:.1} ms); {} events delivered, {} lost, {} duplicated.",
        t.replicas,
        t.peer(),
        if t.replicas == 1 { "" } else { "s" },
        t.state,
        if t.sentinel {
            ", Redis with Sentinel"
        } else {
            ""
        },
        match t.via {
            Via::Lb => "through HAProxy",
            Via::Direct => "straight to the replicas",
            Via::Assigned => "to the replica that hosts each room",
        },
        thousands(s.peak_players as f64),
        s.fanout_ms.p95,
        s.ack_ms.p99,
        thousands(s.events_delivered as f64),
        thousands(run.checker.lost as f64),
        thousands(run.checker.duplicated as f64),
    );
    for fault in &run.faults {
        let Some(v) = &fault.verdict else { continue };
        let recovery = v
            .players_back_s
            .zip(v.fanout_recovered_s)
            .map(|(a, b)| format!("{:.1} s to recover", a.max(b)))
            .unwrap_or_else(|| "did not recover within its window".into());
        text.push_str(&format!(
            " {} cost {} events and {recovery}.",
            capitalised(&fault.name),
            thousands(v.lost as f64)
        ));
    }
    let failed: Vec<&str> = run
        .slo
        .iter()
        .filter(|s| !s.pass)
        .map(|s| s.name.as_str())
        .collect();
    if failed.is_empty() && !run.slo.is_empty() {
        text.push_str(&format!(" All {} SLOs held.", run.slo.len()));
    } else if !failed.is_empty() {
        text.push_str(&format!(
            " {} of {} SLOs failed: {}.",
            failed.len(),
            run.slo.len(),
            failed.join(", ")
        ));
    }
    if run.generator.saturated {
        text.push_str(
            " The generator saturated its CPU: latencies may be the generator's, not the system's.",
        );
    }
    if run.generator.send_lag_large {
        text.push_str(&format!(
            " The generator wrote its acts late (send lag p99 {:.2} ms against fan-out p95 {:.2} ms): part of every latency here is the generator's own.",
            run.summary.send_lag_ms.p99, run.summary.fanout_ms.p95
        ));
    }
    if run.partial {
        text.push_str(&format!(
            " The run did not finish ({}): these are partial results.",
            run.ended
        ));
    }
    text
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
