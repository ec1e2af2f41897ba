//! Runs written by the previous release (commit 3137114, before the run
//! record had a crate of its own) still load and render: a smoke run and a
//! replica-kill drill, as its `tierlab run` wrote them (recorded again on
//! 2026-12-02 with that commit built, since the first recording's
//! `latency.hlog` was never committed).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tierlab_record::setup::FaultKind;
use tierlab_record::{Ended, RunRecord};
use tierlab_reports::Report;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of the fixture the report may write into.
fn scratch(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["run.json", "latency.hlog"] {
        std::fs::copy(fixture(name).join(file), dir.path().join(file)).unwrap();
    }
    dir
}

#[test]
fn an_old_smoke_run_renders_with_its_own_numbers() {
    let dir = scratch("3137114-smoke");
    let record = RunRecord::load(dir.path()).unwrap();
    assert_eq!(record.ended, Ended::Completed);
    assert!(!record.partial);
    assert!(record.summary.fanout_ms.count > 0);
    let files = tierlab_reports::write_reports(dir.path(), None).unwrap();
    assert_eq!(files.len(), 3);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let p95 = format!("{:.1}", record.summary.fanout_ms.p95);
    assert!(md.contains(&p95), "fan-out p95 {p95} in\n{md}");
    assert!(md.starts_with("# smoke — PASSED"), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "charts drawn from the old hlog");
}

#[test]
fn an_old_drill_keeps_its_fault_and_verdict() {
    let dir = scratch("3137114-drill");
    let record = RunRecord::load(dir.path()).unwrap();
    let fault = &record.faults[0];
    assert_eq!(
        (fault.kind, fault.target.as_str()),
        (FaultKind::Crash, "srv-2")
    );
    let verdict = fault.verdict.as_ref().unwrap();
    assert!(verdict.pass && verdict.lost == 0, "{verdict:?}");
    let report = Report::build(dir.path(), None).unwrap();
    assert_eq!(report.verdict(), "passed");
    assert_eq!(report.fanout_slo_ms, Some(250.0));
    let html = tierlab_reports::html::render(&report).unwrap();
    assert!(html.contains("kill srv-2"), "the fault is in the report");
}
