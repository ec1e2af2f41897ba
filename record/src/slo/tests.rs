use super::*;

#[test]
fn the_documented_forms_parse() {
    let p95 = Slo::parse("p95(fanout) < 50ms").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p95.metric,
        Metric::Latency(Stat::Percentile(95.0), Latency::Fanout)
    );
    assert_eq!((p95.comparison, p95.threshold), (Comparison::Lt, 50.0));
    assert!(p95.holds(49.9) && !p95.holds(50.0));
    let ack = Slo::parse("p99.9(ack) <= 1.5s").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ack.threshold, 1500.0);
    assert_eq!(ack.comparison, Comparison::Le);
    let errors = Slo::parse("errors < 1%").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((errors.metric, errors.threshold), (Metric::ErrorRate, 1.0));
    let lost = Slo::parse("lost = 0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lost.metric, Metric::Count(Count::Lost));
    assert!(lost.holds(0.0) && !lost.holds(1.0));
    assert_eq!(
        Slo::parse("max(join) < 800us").map(|s| s.threshold),
        Ok(0.8)
    );
    assert_eq!(
        Slo::parse("lost == 0").map(|s| s.comparison),
        Ok(Comparison::Eq)
    );
    assert_eq!(
        Slo::parse("p99(reconnect) < 5s").map(|s| s.metric),
        Ok(Metric::Latency(Stat::Percentile(99.0), Latency::Reconnect))
    );
}

#[test]
fn mistakes_are_named() {
    for (text, needle) in [
        ("p95(fanout) 50ms", "expected"),
        ("p95(latency) < 50ms", "unknown latency"),
        ("q95(ack) < 50ms", "unknown statistic"),
        ("p95(ack) < 50", "unit"),
        ("errors < 1", "percentages"),
        ("lost = none", "number"),
        ("speed < 3", "unknown metric"),
    ] {
        let err = Slo::parse(text).expect_err(text).to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

/// A percentile is read at that percentile of the run's histogram: p99.9
/// is not p99, p90 is not p50.
#[test]
fn latencies_are_judged_at_their_own_percentile() {
    let mut totals = Window::new();
    // 0.1 ms to 1 s in steps of 0.1 ms.
    for tenth in 1..=10_000u64 {
        totals.record(Latency::Ack, tenth * 100);
    }
    let record = RunRecord::default();
    let measured = |text: &str| {
        Slo::parse(text)
            .map(|s| s.measure(&record, &totals))
            .unwrap_or(f64::NAN)
    };
    let near = |text: &str, ms: f64| {
        let got = measured(text);
        assert!((got - ms).abs() < 1.0, "{text}: {got} ms, not {ms}");
    };
    near("p90(ack) < 1s", 900.0);
    near("p99(ack) < 1s", 990.0);
    near("p99.9(ack) < 1s", 999.0);
    near("max(ack) < 1s", 1000.0);
    assert_eq!(measured("p95(fanout) < 1s"), 0.0, "no samples");
    let verdict = Slo::parse("p99.9(ack) < 995ms")
        .map(|s| s.judge(&record, &totals))
        .unwrap_or_default();
    assert!(!verdict.pass, "{verdict:?}");
    assert_eq!(verdict.threshold, "< 995ms");
}

#[test]
fn counts_and_error_rates_come_from_the_record() {
    let mut record = RunRecord::default();
    record.checker.duplicated = 3;
    record.summary.error_rate_pct = 0.5;
    let totals = Window::new();
    let judge = |text: &str| {
        Slo::parse(text)
            .map(|s| s.judge(&record, &totals))
            .unwrap_or_default()
    };
    assert_eq!(judge("duplicated = 0").measured, 3.0);
    assert!(!judge("duplicated = 0").pass);
    assert!(judge("errors < 1%").pass);
}

#[test]
fn the_fanout_p95_threshold_is_found() {
    let slos: Vec<Slo> = ["lost = 0", "p99(fanout) < 90ms", "p95(fanout) < 40ms"]
        .iter()
        .filter_map(|t| Slo::parse(t).ok())
        .collect();
    assert_eq!(Slo::fanout_p95_ms(&slos), Some(40.0));
    assert_eq!(Slo::fanout_p95_ms(&slos[..2]), None);
}

#[test]
fn objectives_no_run_could_pass_or_fail_are_refused() {
    for (text, why) in [
        ("lost < 0", "can never be < 0"),
        ("p95(fanout) < -1ms", "never negative"),
        ("errors < 150%", "at most 100 %"),
        ("errors > 100%", "can never be > 100"),
        ("errors <= 100%", "always <= 100"),
        ("p99(ack) >= 0ms", "always >= 0"),
        ("duplicated < 0.5", "whole numbers"),
    ] {
        let err = Slo::parse(text).unwrap_err().to_string();
        assert!(err.contains(why), "{text}: {err}");
    }
    for fine in [
        "lost = 0",
        "errors < 100%",
        "p95(fanout) < 0.5ms",
        "duplicated <= 0",
    ] {
        assert!(Slo::parse(fine).is_ok(), "{fine}");
    }
}
