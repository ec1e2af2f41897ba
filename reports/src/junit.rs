//! `junit.xml`: one test case per SLO, per checker verdict and per fault,
//! so CI systems show a run like a test suite.

use std::fmt::Write as _;

use crate::html::escape;
use crate::report::Report;

/// One test case: its name and, when it failed, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub failure: Option<String>,
}

fn cases(report: &Report) -> Vec<Case> {
    let run = &report.run;
    let mut cases: Vec<Case> = run
        .slo
        .iter()
        .map(|slo| Case {
            name: format!("slo: {}", slo.name),
            failure: (!slo.pass)
                .then(|| format!("measured {} (threshold {})", slo.measured, slo.threshold)),
        })
        .collect();
    let c = &run.checker;
    for (name, count) in [
        ("lost", c.lost),
        ("duplicated", c.duplicated),
        ("reordered", c.reordered),
        ("duplicated_acts", c.duplicated_acts),
    ] {
        cases.push(Case {
            name: format!("checker: {name} = 0"),
            failure: (count > 0).then(|| format!("{count} events {name}")),
        });
    }
    if run.summary.send_lag_ms.count > 0 {
        cases.push(Case {
            name: "generator: send lag small against fan-out".into(),
            failure: run.generator.send_lag_large.then(|| {
                format!(
                    "send lag p99 {:.2} ms against fan-out p95 {:.2} ms",
                    run.summary.send_lag_ms.p99, run.summary.fanout_ms.p95
                )
            }),
        });
    }
    for fault in &run.faults {
        let pass = fault.verdict.as_ref().is_some_and(|v| v.pass);
        cases.push(Case {
            name: format!("fault: {}", fault.name),
            failure: (!pass)
                .then(|| "lost events, or did not recover within its window".to_owned()),
        });
    }
    cases
}

pub fn render(report: &Report) -> String {
    suite(
        &format!("tierlab.{}", report.run.scenario.name),
        report.run.summary.duration_s,
        &cases(report),
    )
}

/// A JUnit document of one suite named `name` that took `seconds`.
pub fn suite(name: &str, seconds: f64, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let suite = escape(name);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites><testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">",
        cases.len(),
    );
    for case in cases {
        let name = escape(&case.name);
        match &case.failure {
            None => {
                let _ = writeln!(xml, "  <testcase classname=\"{suite}\" name=\"{name}\"/>");
            }
            Some(message) => {
                let _ = writeln!(
                    xml,
                    "  <testcase classname=\"{suite}\" name=\"{name}\"><failure message=\"{}\"/></testcase>",
                    escape(message)
                );
            }
        }
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}
