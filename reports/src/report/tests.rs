//! The report model and its renderers on a hand-made run: the numbers the
//! tables show are the numbers in run.json, the SVG is well-formed, and the
//! page needs nothing from the network.

use super::*;
use tierlab_record::setup::{StateMode, Via};
use tierlab_record::{FaultRecord, FaultVerdict, Percentiles, Second, SloVerdict, Verdict};

fn run() -> RunRecord {
    let mut run = RunRecord {
        ended: tierlab_record::Ended::Completed,
        ..RunRecord::default()
    };
    run.scenario.name = "unit".into();
    run.scenario.text = "name = \"unit\" # <not html>".into();
    run.topology.replicas = 3;
    run.topology.state = StateMode::Redis;
    run.topology.via = Via::Lb;
    run.summary.peak_players = 4200;
    run.summary.events_delivered = 1_234_567;
    run.summary.fanout_ms = Percentiles {
        count: 10,
        p50: 3.0,
        p95: 31.25,
        p99: 40.0,
        max: 90.0,
    };
    run.summary.ack_ms = Percentiles {
        count: 10,
        p50: 2.0,
        p95: 9.0,
        p99: 12.5,
        max: 30.0,
    };
    run.checker = Verdict {
        acked: 1000,
        delivered: 9000,
        lost: 0,
        duplicated: 0,
        reordered: 0,
        unacked_delivered: 0,
        guarantee: "server seqs".into(),
        ..Verdict::default()
    };
    run.slo = vec![
        SloVerdict {
            name: "p95(fanout) < 50ms".into(),
            threshold: "< 50ms".into(),
            measured: 31.25,
            pass: true,
        },
        SloVerdict {
            name: "lost = 0".into(),
            threshold: "= 0".into(),
            measured: 0.0,
            pass: true,
        },
    ];
    run.timeseries = (1..=60)
        .map(|t| {
            let players = (t as i64 * 100).min(4200);
            let p95 = if players < 3000 {
                5.0
            } else {
                5.0 + (players - 3000) as f64 / 20.0
            };
            Second {
                t,
                players,
                target: players as f64,
                acts: players as u64,
                events_delivered: players as u64 * 10,
                fanout_ms: Percentiles {
                    count: 100,
                    p50: 2.0,
                    p95,
                    p99: p95 * 1.5,
                    max: p95 * 2.0,
                },
                ack_ms: Percentiles {
                    count: 10,
                    p50: 1.0,
                    p95: 2.0,
                    p99: 3.0,
                    max: 4.0,
                },
                ..Second::default()
            }
        })
        .collect();
    run.faults = vec![FaultRecord {
        name: "kill srv-2".into(),
        what: "crash srv-2".into(),
        start_s: 45.0,
        end_s: Some(50.0),
        verdict: Some(FaultVerdict {
            players_dropped: 1400,
            players_back_s: Some(6.1),
            fanout_recovered_s: Some(3.0),
            reconnects: 1400,
            lost: 0,
            pass: true,
            ..FaultVerdict::default()
        }),
        ..FaultRecord::default()
    }];
    run
}

#[test]
fn the_summary_says_what_held_and_what_a_fault_cost() {
    let text = summary(&run());
    assert!(text.starts_with("3 replicas (redis state, players through HAProxy) held 4,200 players at p95 fan-out 31.2 ms"), "{text}");
    assert!(
        text.contains("Kill srv-2 cost 0 events and 6.1 s to recover."),
        "{text}"
    );
    assert!(text.contains("All 2 SLOs held."), "{text}");
}

#[test]
fn the_capacity_curve_finds_the_knee_and_the_slo() {
    let report = Report::from_parts(run(), Vec::new(), None);
    assert_eq!(report.fanout_slo_ms, Some(50.0));
    let knee = report.knee.expect("a knee");
    assert!((3000.0..=3500.0).contains(&knee), "{knee}");
}

#[test]
fn the_html_shows_run_json_numbers_and_fetches_nothing() {
    let report = Report::from_parts(run(), Vec::new(), None);
    let page = crate::html::render(&report).unwrap();
    for expected in [
        "4,200",
        "1,234,567",
        "31.2",
        "12.5",
        "kill srv-2",
        "6.1 s",
        "PASSED",
    ] {
        assert!(page.contains(expected), "missing {expected}");
    }
    assert!(
        page.contains("class=\"verdict passed\""),
        "the verdict box is coloured by outcome"
    );
    assert!(
        page.contains("SLO p95(fanout) &lt; 50ms") || page.contains("SLO p95(fanout) < 50ms"),
        "the fan-out chart draws its SLO"
    );
    assert!(
        page.contains("&lt;not html&gt;"),
        "scenario text is escaped"
    );
    assert!(!page.contains("<script"), "no script");
    assert!(
        !page.contains("http://") && !page.contains("https://")
            || page.contains("www.w3.org/2000/svg")
    );
    for needle in ["src=\"http", "href=\"http", "@import"] {
        assert!(!page.contains(needle), "fetches {needle}");
    }
    // Charts: latency ×2, counts ×2, capacity (no hlog here, so no spectrum).
    assert_eq!(page.matches("<svg").count(), 5);
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
}

#[test]
fn every_chart_is_well_formed_svg() {
    let run = run();
    let svgs = [
        crate::charts::latency_over_time(
            &run,
            "t",
            |s| s.fanout_ms,
            &[("SLO p95 < 50ms".into(), 50.0)],
        )
        .unwrap(),
        crate::charts::counts_over_time(&run, "t", "per s", &[("acts", |s| s.acts as f64)])
            .unwrap(),
        crate::charts::capacity(&[(1.0, 1.0), (2.0, 3.0)], Some(1.5), Some(2.0)).unwrap(),
        crate::charts::spectrum(
            &[crate::spectrum::Spectrum {
                metric: "fanout".into(),
                count: 100,
                points: vec![(2.0, 1.0), (100.0, 9.0)],
            }],
            None,
        )
        .unwrap(),
    ];
    for svg in svgs {
        assert!(
            svg.trim_start().starts_with("<svg"),
            "{}",
            &svg[..80.min(svg.len())]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        // Tags balance: every opened element is closed or self-closed.
        let opened =
            svg.matches('<').count() - svg.matches("</").count() * 2 - svg.matches("<?").count();
        let self_closed = svg.matches("/>").count();
        assert_eq!(opened, self_closed, "unbalanced tags");
    }
}

#[test]
fn markdown_and_junit_carry_the_same_verdicts() {
    let mut failing = run();
    failing.slo[0].pass = false;
    failing.checker.lost = 3;
    let report = Report::from_parts(failing, Vec::new(), None);
    assert_eq!(report.verdict(), "failed");
    let md = crate::markdown::render(&report);
    assert!(
        md.contains("| `p95(fanout) < 50ms` | < 50ms | 31.250 | **FAIL** |"),
        "{md}"
    );
    assert!(md.contains("| 1000 | 9000 | 3 | 0 | 0 | 0 |"), "{md}");
    let xml = crate::junit::render(&report);
    assert!(xml.contains("tests=\"7\" failures=\"2\""), "{xml}");
    assert!(
        xml.contains("name=\"checker: lost = 0\"><failure message=\"3 events lost\"/>"),
        "{xml}"
    );
}

#[test]
fn a_regression_against_the_baseline_shows_in_the_verdict() {
    let base = crate::gate::Baseline::of(&run(), 10.0);
    let mut slower = run();
    slower.summary.fanout_ms.p95 *= 3.0;
    let mut report = Report::from_parts(slower, Vec::new(), None);
    assert_eq!(report.verdict(), "passed");
    report.comparison =
        Some(crate::gate::gate(&report.run, &base, None).map_err(|e| e.to_string()));
    assert_eq!(report.verdict(), "regressed");
    let page = crate::html::render(&report).unwrap();
    assert!(page.contains("REGRESSED") && page.contains("Against the baseline"));
}

#[test]
fn a_sharded_runs_page_marks_the_workers_clock_skew() {
    let mut sharded = run();
    sharded.shard = Some(tierlab_record::ShardInfo {
        indices: vec![0, 1],
        count: 2,
        start_skew_ms: [("0".into(), 3.0), ("1".into(), 41.0)].into(),
        delivery_ms: [("0->1".into(), 14.5), ("1->0".into(), -9.5)].into(),
        clock_skew_ms: [("0-1".into(), 12.0)].into(),
        ..tierlab_record::ShardInfo::default()
    });
    let page = crate::html::render(&Report::from_parts(sharded, Vec::new(), None)).unwrap();
    for expected in [
        "<h2>Workers</h2>",
        "disagree by up to 12.0 ms",
        "+12.0 ms",
        "14.5 ms",
        "-9.5 ms",
        "41 ms",
    ] {
        assert!(page.contains(expected), "missing {expected}");
    }
    let unsharded = crate::html::render(&Report::from_parts(run(), Vec::new(), None)).unwrap();
    assert!(!unsharded.contains("<h2>Workers</h2>"));
}

#[test]
fn the_lobby_shows_goose_figures_by_request() {
    let mut run = run();
    run.http.insert(
        "GET /api/rooms/:code".into(),
        tierlab_record::HttpEndpoint {
            phase: tierlab_record::Phase::Run,
            requests: 12_345,
            failures: 7,
            per_second: 20.5,
            ..Default::default()
        },
    );
    let page = crate::html::render(&Report::from_parts(run, Vec::new(), None)).unwrap();
    assert!(page.contains("Lobby (HTTP)"), "no lobby section");
    assert!(
        page.contains("GET /api/rooms/:code")
            && page.contains("12,345")
            && page.contains("beside the players")
    );
}
