//! The A/B trials block: one row per gate (its builds, the runs it counted,
//! each metric's effect with its interval) and a tally per pair of builds,
//! so a doc can show how often the gate caught a known cost and passed a
//! rebuild of the same code.

use std::fmt::Write as _;

use crate::ab::{AbMetric, AbReport, Change, Verdict};

fn effect(gate: &AbReport, metric: AbMetric) -> String {
    gate.comparisons
        .iter()
        .find(|c| c.metric == metric)
        .map_or_else(
            || "—".into(),
            |c| {
                format!(
                    "{:+.0} % ({:+.0} … {:+.0}){}",
                    c.effect_pct,
                    c.ci_pct.0,
                    c.ci_pct.1,
                    if c.change == Change::Regression {
                        " **R**"
                    } else {
                        ""
                    }
                )
            },
        )
}

fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Regressed => "REGRESSED",
        Verdict::SloFailed => "SLO FAILED",
        Verdict::Refused(_) => "REFUSED",
    }
}

/// One row per A/B gate (a trial).
pub(super) fn trials_table(md: &mut String, gates: &[&AbReport]) {
    let _ = writeln!(
        md,
        "| trial | baseline → candidate | runs counted | fan-out p95 (95 % CI) | fan-out p99 | ack p95 | server CPU per event | server KiB per connection | wall time | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, g) in gates.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | `{}` → `{}` | {} + {} of {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            g.baseline,
            g.candidate,
            g.counted(crate::ab::Arm::Baseline),
            g.counted(crate::ab::Arm::Candidate),
            g.runs.len(),
            effect(g, AbMetric::FanoutP95),
            effect(g, AbMetric::FanoutP99),
            effect(g, AbMetric::AckP95),
            effect(g, AbMetric::ServerCpuPerEvent),
            effect(g, AbMetric::ServerKibPerConnection),
            g.wall_s
                .map_or_else(|| "—".into(), |s| format!("{:.0} s", s)),
            verdict_word(&g.verdict)
        );
    }
    md.push_str(
        "\n**R**: that metric regressed (interval above no change, effect ≥ the minimum).\n\n",
    );
}

/// The effects `gates` measured on `metric`, in order.
fn effects(gates: &[&&AbReport], metric: AbMetric) -> Vec<f64> {
    let mut effects: Vec<f64> = gates
        .iter()
        .flat_map(|g| g.comparisons.iter().filter(|c| c.metric == metric))
        .map(|c| c.effect_pct)
        .collect();
    effects.sort_by(f64::total_cmp);
    effects
}

/// Per pair of builds: how many gates passed, regressed (on any metric,
/// on fan-out p95 itself), or refused; the range of the p95 effect.
pub(super) fn trials_tally(md: &mut String, gates: &[&AbReport]) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for g in gates {
        let pair = (g.baseline.clone(), g.candidate.clone());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let _ = writeln!(
        md,
        "| baseline → candidate | gates | PASS | REGRESSED (any metric) | fan-out p95 regressed | refused | fan-out p95 effect, median (min … max) | server CPU per event effect, median | median wall time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (a, b) in pairs {
        let of: Vec<&&AbReport> = gates
            .iter()
            .filter(|g| g.baseline == a && g.candidate == b)
            .collect();
        let count = |f: &dyn Fn(&AbReport) -> bool| of.iter().filter(|g| f(g)).count();
        let regressed_on = |g: &AbReport, m: AbMetric| {
            g.comparisons
                .iter()
                .any(|c| c.metric == m && c.change == Change::Regression)
        };
        let p95 = effects(&of, AbMetric::FanoutP95);
        let cpu = effects(&of, AbMetric::ServerCpuPerEvent);
        let mut wall: Vec<f64> = of.iter().filter_map(|g| g.wall_s).collect();
        wall.sort_by(f64::total_cmp);
        let mid = |v: &[f64]| v.get(v.len() / 2).copied();
        let _ = writeln!(
            md,
            "| `{a}` → `{b}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            of.len(),
            count(&|g| g.verdict == Verdict::Pass),
            count(&|g| g.verdict == Verdict::Regressed),
            count(&|g| regressed_on(g, AbMetric::FanoutP95)),
            count(&|g| matches!(g.verdict, Verdict::Refused(_))),
            match (mid(&p95), p95.first(), p95.last()) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:+.0} % ({lo:+.0} … {hi:+.0} %)"),
                _ => "—".into(),
            },
            mid(&cpu).map_or_else(|| "—".into(), |m| format!("{m:+.0} %")),
            mid(&wall).map_or_else(|| "—".into(), |s| format!("{s:.0} s")),
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{block, Context, Source};

    #[test]
    fn gates_become_trial_rows_and_a_tally_per_pair_of_builds() {
        use crate::ab::{Comparison, Verdict};
        let gate = |candidate: &str, p95: f64, verdict: Verdict| {
            let change = if verdict == Verdict::Regressed {
                Change::Regression
            } else {
                Change::NoChange
            };
            AbReport {
                scenario: "gate".into(),
                baseline: "bin:a".into(),
                candidate: candidate.into(),
                min_effect_pct: 10.0,
                max_steal_pct: crate::ab::DEFAULT_MAX_STEAL_PCT,
                runs: Vec::new(),
                comparisons: vec![Comparison {
                    metric: AbMetric::FanoutP95,
                    baseline: 1.0,
                    candidate: 1.0 + p95 / 100.0,
                    effect_pct: p95,
                    ci_pct: (p95 - 10.0, p95 + 10.0),
                    change,
                }],
                failed_slos: Vec::new(),
                verdict,
                started_at: String::new(),
                machine: String::new(),
                wall_s: Some(110.0),
            }
        };
        let sources = [
            gate("bin:a2", 1.0, Verdict::Pass),
            gate("bin:slow", 30.0, Verdict::Regressed),
            gate("bin:a2", -2.0, Verdict::Pass),
            gate("bin:slow", 20.0, Verdict::Regressed),
        ]
        .map(|g| Source::Ab(Box::new(g)));
        let md = block(
            "gate-proof",
            "just gate-proof",
            &sources,
            &Context::default(),
        );
        assert!(
            md.contains("| 2 | `bin:a` → `bin:slow` | 0 + 0 of 0 | +30 % (+20 … +40) **R** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `bin:a` → `bin:a2` | 2 | 2 | 0 | 0 | 0 | +1 % (-2 … +1 %) | — | 110 s |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `bin:a` → `bin:slow` | 2 | 0 | 2 | 2 | 0 | +30 % (+20 … +30 %) |"),
            "{md}"
        );
    }
}
