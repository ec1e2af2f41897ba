//! The A/B gate's verdict as people and CI read it: a terminal table, a
//! Markdown summary, a JUnit suite (one case per metric).

use super::{AbReport, Arm, Change, Verdict};
use crate::junit::{self, Case};

impl AbReport {
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut md = format!(
            "## A/B gate: {}\n\nBaseline (A) `{}` against candidate (B) `{}`; {} and {} runs counted; minimum effect {} %.\n\n",
            self.scenario,
            self.baseline,
            self.candidate,
            self.counted(Arm::Baseline),
            self.counted(Arm::Candidate),
            self.min_effect_pct
        );
        md.push_str(
            "| metric | A | B | effect | 95 % CI | verdict |\n|---|---:|---:|---:|---:|---|\n",
        );
        for c in &self.comparisons {
            let _ = writeln!(
                md,
                "| {} | {:.3} {u} | {:.3} {u} | {:+.1} % | {:+.1} … {:+.1} % | {} |",
                c.metric.label(),
                c.baseline,
                c.candidate,
                c.effect_pct,
                c.ci_pct.0,
                c.ci_pct.1,
                change_word(c.change),
                u = c.metric.unit()
            );
        }
        for run in self.runs.iter().filter(|r| r.unfit.is_some()) {
            let _ = writeln!(
                md,
                "\n- `{}` did not count: {}",
                run.dir,
                run.unfit.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(md, "\n**{}**", self.verdict_line());
        md
    }

    pub fn junit(&self, seconds: f64) -> String {
        let mut cases: Vec<Case> = self
            .comparisons
            .iter()
            .map(|c| Case {
                name: format!("ab: {}", c.metric.label()),
                failure: (c.change == Change::Regression).then(|| c.sentence()),
            })
            .collect();
        cases.extend(self.failed_slos.iter().map(|slo| Case {
            name: format!("slo: {slo}"),
            failure: Some("failed".into()),
        }));
        if let Verdict::Refused(reason) = &self.verdict {
            cases.push(Case {
                name: "ab: runs comparable".into(),
                failure: Some(reason.clone()),
            });
        }
        junit::suite(&format!("tierlab.ab.{}", self.scenario), seconds, &cases)
    }

    /// The comparison table for a terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<38} {:>10} {:>10} {:>8}  {:>17}  verdict\n",
            "metric", "A", "B", "effect", "95 % CI"
        );
        for c in &self.comparisons {
            out.push_str(&format!(
                "{:<38} {:>10.3} {:>10.3} {:>+7.1}%  {:>+7.1} … {:>+6.1}%  {}\n",
                format!("{} ({})", c.metric.label(), c.metric.unit()),
                c.baseline,
                c.candidate,
                c.effect_pct,
                c.ci_pct.0,
                c.ci_pct.1,
                change_word(c.change)
            ));
        }
        for run in self.runs.iter().filter(|r| r.unfit.is_some()) {
            out.push_str(&format!(
                "{} did not count: {}\n",
                run.dir,
                run.unfit.as_deref().unwrap_or_default()
            ));
        }
        out
    }
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Regression => "REGRESSED",
        Change::Improvement => "improved",
        Change::NoChange => "ok",
    }
}
