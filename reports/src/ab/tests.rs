//! The gate's statistics on known distributions, and every refusal.

use super::*;
use tierlab_record::{Percentiles, ProcessSecond, ProcessUsage, SloVerdict};

const SCENARIO: &str = "name = \"gate\"\n[topology]\nreplicas = 1\nserver_bin = \"/a\"\n";

/// A deterministic spread of `n` values around `centre` (±20 %).
fn spread(centre: f64, n: usize, phase: usize) -> Vec<f64> {
    (0..n)
        .map(|i| centre * (0.8 + 0.4 * (((i * 7 + phase * 3) % 11) as f64 / 10.0)))
        .collect()
}

/// A completed run whose held seconds have fan-out p95 `values`, after a
/// one-second ramp and the settle.
fn run(values: &[f64]) -> RunRecord {
    let mut run = RunRecord {
        ended: Ended::Completed,
        ..RunRecord::default()
    };
    run.scenario.name = "gate".into();
    run.scenario.text = SCENARIO.into();
    let held = std::iter::repeat_n(1.0, SETTLE_S).chain(values.iter().copied());
    run.timeseries = std::iter::once((50.0, 1.0))
        .chain(held.map(|v| (100.0, v)))
        .enumerate()
        .map(|(t, (target, p95))| Second {
            t: t as u64 + 1,
            target,
            fanout_ms: Percentiles {
                count: 100,
                p95,
                p99: p95 * 2.0,
                ..Percentiles::default()
            },
            ack_ms: Percentiles {
                count: 10,
                p95,
                p99: p95,
                ..Percentiles::default()
            },
            ..Second::default()
        })
        .collect();
    run
}

fn arm(centre: f64, runs: usize) -> Vec<Vec<f64>> {
    (0..runs).map(|r| spread(centre, 12, r)).collect()
}

#[test]
fn the_same_distribution_shows_no_change_and_its_interval_holds_zero() {
    let c = compare(AbMetric::FanoutP95, &arm(2.0, 3), &arm(2.0, 3), 10.0).unwrap();
    assert_eq!(c.change, Change::NoChange, "{c:?}");
    assert!(c.ci_pct.0 < 0.0 && c.ci_pct.1 > 0.0, "{c:?}");
    assert!(c.effect_pct.abs() < 1e-9);
}

#[test]
fn a_thirty_percent_shift_is_a_regression_with_its_interval_around_it() {
    let c = compare(AbMetric::FanoutP95, &arm(2.0, 3), &arm(2.6, 3), 10.0).unwrap();
    assert_eq!(c.change, Change::Regression, "{c:?}");
    assert!((c.effect_pct - 30.0).abs() < 1e-6, "{c:?}");
    assert!(
        c.ci_pct.0 > 0.0 && c.ci_pct.0 < 30.0 && c.ci_pct.1 > 30.0,
        "{c:?}"
    );
    let better = compare(AbMetric::FanoutP95, &arm(2.6, 3), &arm(2.0, 3), 10.0).unwrap();
    assert_eq!(better.change, Change::Improvement, "{better:?}");
}

#[test]
fn a_sure_effect_below_the_minimum_passes() {
    let exact = |v: f64| vec![vec![v; 10], vec![v; 10]];
    let c = compare(AbMetric::AckP95, &exact(1.0), &exact(1.05), 10.0).unwrap();
    // Ties everywhere: every draw is the same ratio.
    assert!((c.ci_pct.0 - 5.0).abs() < 1e-9 && (c.ci_pct.1 - 5.0).abs() < 1e-9);
    assert_eq!(c.change, Change::NoChange);
    let c = compare(AbMetric::AckP95, &exact(1.0), &exact(1.2), 10.0).unwrap();
    assert_eq!(c.change, Change::Regression);
    assert_eq!(c.sentence(), "ack p95 +20 % (95 % CI +20 … +20 %)");
}

#[test]
fn one_noisy_run_widens_the_interval_instead_of_raising_an_alarm() {
    let baseline = arm(2.0, 2);
    let mut candidate = arm(2.0, 2);
    candidate[1] = spread(3.0, 12, 1);
    let c = compare(AbMetric::FanoutP95, &baseline, &candidate, 10.0).unwrap();
    assert_eq!(c.change, Change::NoChange, "{c:?}");
}

#[test]
fn nothing_measured_is_no_comparison() {
    assert!(compare(AbMetric::FanoutP95, &[], &arm(1.0, 2), 10.0).is_none());
    assert!(compare(AbMetric::FanoutP95, &[vec![0.0; 5]], &arm(1.0, 2), 10.0).is_none());
}

#[test]
fn usable_seconds_skip_the_ramp_the_settle_and_stolen_seconds() {
    let mut r = run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        AbMetric::FanoutP95.series(&r, DEFAULT_MAX_STEAL_PCT),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    r.timeseries[4].steal_pct = 20.0;
    assert_eq!(
        AbMetric::FanoutP95.series(&r, DEFAULT_MAX_STEAL_PCT),
        [1.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert_eq!(
        AbMetric::FanoutP99.series(&r, DEFAULT_MAX_STEAL_PCT)[0],
        2.0
    );
}

#[test]
fn server_cost_comes_from_every_replica_sampled_in_the_same_second() {
    let mut r = run(&[1.0; 6]);
    let replica = |cpu: f64, seconds: std::ops::Range<u64>| ProcessUsage {
        name: format!("srv-{cpu}"),
        by_second: seconds
            .map(|t| ProcessSecond {
                t,
                cpu_pct: Some(cpu),
                rss_mib: 10.0,
                connections: Some(50),
                events_per_s: Some(5_000.0),
            })
            .collect(),
        ..ProcessUsage::default()
    };
    r.processes = vec![replica(10.0, 0..20), replica(30.0, 5..20)];
    // Seconds 4..=9 are held; srv-30 is sampled from 5: 5 seconds at
    // 0.4 core / 10,000 events = 40 µs, 20 MiB / 100 = 204.8 KiB.
    assert_eq!(
        AbMetric::ServerCpuPerEvent.series(&r, DEFAULT_MAX_STEAL_PCT),
        [40.0; 5]
    );
    assert_eq!(
        AbMetric::ServerKibPerConnection.series(&r, DEFAULT_MAX_STEAL_PCT),
        [204.8; 5]
    );
}

fn judged(runs: Vec<(Arm, RunRecord)>) -> AbReport {
    let runs: Vec<(Arm, String, RunRecord)> = runs
        .into_iter()
        .enumerate()
        .map(|(i, (arm, run))| (arm, format!("run-{i}"), run))
        .collect();
    judge(
        &AbSetup {
            baseline: "bin:a".into(),
            candidate: "bin:b".into(),
            min_effect_pct: 10.0,
            max_steal_pct: DEFAULT_MAX_STEAL_PCT,
        },
        &runs,
    )
}

fn four(a: f64, b: f64) -> Vec<(Arm, RunRecord)> {
    vec![
        (Arm::Baseline, run(&spread(a, 10, 0))),
        (Arm::Candidate, run(&spread(b, 10, 0))),
        (Arm::Candidate, run(&spread(b, 10, 0))),
        (Arm::Baseline, run(&spread(a, 10, 0))),
    ]
}

#[test]
fn the_verdict_line_and_exit_code_follow_the_comparisons() {
    let pass = judged(four(2.0, 2.0));
    assert_eq!(pass.verdict, Verdict::Pass, "{}", pass.table());
    assert_eq!(
        (pass.exit_code(), pass.verdict_line().as_str()),
        (0, "gate: PASS")
    );
    let worse = judged(four(2.0, 3.0));
    assert_eq!(worse.exit_code(), 98, "{}", worse.table());
    assert!(
        worse
            .verdict_line()
            .starts_with("gate: REGRESSED fan-out p95 +50 % (95 % CI +"),
        "{}",
        worse.verdict_line()
    );
    assert!(worse
        .markdown()
        .contains("| fan-out p95 | 2.040 ms | 3.060 ms | +50.0 % |"));
    assert!(
        worse.junit(1.0).contains("failures=\"4\""),
        "{}",
        worse.junit(1.0)
    );
    let back: AbReport = serde_json::from_str(&serde_json::to_string(&worse).unwrap()).unwrap();
    assert_eq!(back, worse);
}

#[test]
fn a_failed_slo_without_a_regression_exits_99() {
    let mut runs = four(2.0, 2.0);
    runs[1].1.slo.push(SloVerdict {
        name: "lost = 0".into(),
        threshold: "= 0".into(),
        measured: 3.0,
        pass: false,
    });
    let report = judged(runs);
    assert_eq!(report.exit_code(), 99);
    assert_eq!(report.failed_slos, ["run-1: lost = 0"]);
}

#[test]
fn unfit_runs_do_not_count_and_too_few_refuse() {
    let mut runs = four(2.0, 2.0);
    runs[0].1.partial = true;
    runs[0].1.ended = Ended::Interrupted;
    let report = judged(runs);
    assert_eq!(report.exit_code(), 2);
    assert!(report.runs[0]
        .unfit
        .as_deref()
        .unwrap()
        .contains("Interrupted"));
    let Verdict::Refused(why) = &report.verdict else {
        panic!("{:?}", report.verdict)
    };
    assert!(
        why.starts_with("1 Baseline run(s) fit to compare, 2 needed"),
        "{why}"
    );

    let mut saturated = run(&[1.0; 6]);
    saturated.generator.saturated = true;
    assert!(unfit_at_default(&saturated).unwrap().contains("saturated"));
    let mut lagging = run(&[1.0; 6]);
    lagging.summary.fanout_ms.p95 = 1.0;
    lagging.summary.send_lag_ms = Percentiles {
        count: 10,
        p95: 0.4,
        ..Percentiles::default()
    };
    assert_eq!(unfit_at_default(&lagging), None);
    lagging.summary.send_lag_ms.p95 = 0.6;
    assert!(unfit_at_default(&lagging)
        .unwrap()
        .contains("send lag (p95 0.60 ms) is more than 50 %"));
    let mut stolen = run(&[1.0; 6]);
    for s in &mut stolen.timeseries {
        s.steal_pct = 9.0;
    }
    assert!(unfit_at_default(&stolen)
        .unwrap()
        .starts_with("only 0 usable held second(s)"));
    // A user who accepts that much steal counts those seconds.
    assert_eq!(unfit(&stolen, 10.0), None);
    assert!(unfit_at_default(&run(&[1.0; 4]))
        .unwrap()
        .starts_with("only 4 usable"));
    assert_eq!(unfit_at_default(&run(&[1.0; 5])), None);
}

#[test]
fn different_scenarios_are_refused_naming_the_key_but_the_build_may_differ() {
    let mut runs = four(2.0, 2.0);
    runs[1].1.scenario.text = SCENARIO.replace("/a", "/b");
    assert_ne!(judged(runs.clone()).exit_code(), 2);
    runs[2].1.scenario.text = format!("{SCENARIO}[load]\nstages = []\n");
    let report = judged(runs);
    assert_eq!(report.exit_code(), 2);
    assert_eq!(
        report.verdict,
        Verdict::Refused(
            "run-2 and run-0 ran different scenarios (`load` differs): not like with like".into()
        )
    );
}

fn unfit_at_default(run: &RunRecord) -> Option<String> {
    unfit(run, DEFAULT_MAX_STEAL_PCT)
}
