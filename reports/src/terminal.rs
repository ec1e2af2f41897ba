//! The summary a run ends with on the terminal, k6-style: each SLO with
//! ✓/✗ and what was measured, the delivery checker's counts, errors by
//! kind, the verdict, and — for an SLO that broke — when it broke (the
//! fault window it broke in, or the seconds over its limit).

use std::fmt::Write as _;

use tierlab_record::slo::{Metric, Stat};
use tierlab_record::{Latency, Percentiles, RunRecord, Second, Slo, SloVerdict};

use crate::report::{thousands, FAULT_SETTLE_S};

fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The summary of `run`; ANSI colours when `colour`.
pub fn summary(run: &RunRecord, colour: bool) -> String {
    let mut out = String::from("\n");
    let width = run
        .slo
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    for verdict in &run.slo {
        let mark = if verdict.pass {
            paint(colour, "32", "✓")
        } else {
            paint(colour, "31", "✗")
        };
        let dots = ".".repeat(width.saturating_sub(verdict.name.chars().count()));
        let _ = write!(
            out,
            "  {mark} {} {dots} {}",
            verdict.name,
            measured(verdict)
        );
        if !verdict.pass {
            if let Some(when) = when_it_broke(run, verdict) {
                let _ = write!(out, "  ({when})");
            }
        }
        out.push('\n');
    }
    let s = &run.summary;
    let c = &run.checker;
    let _ = writeln!(
        out,
        "\n  {} peak {}, {} events delivered",
        label("players"),
        thousands(s.peak_players as f64),
        thousands(s.events_delivered as f64)
    );
    for (name, p) in [
        ("fan-out", &s.fanout_ms),
        ("ack", &s.ack_ms),
        ("send lag", &s.send_lag_ms),
    ] {
        let _ = writeln!(out, "  {} {}", label(name), percentiles(p));
    }
    let _ = writeln!(
        out,
        "  {} {} acked, {} lost, {} duplicated, {} reordered, {} acts applied twice",
        label("checker"),
        thousands(c.acked as f64),
        thousands(c.lost as f64),
        thousands(c.duplicated as f64),
        thousands(c.reordered as f64),
        thousands(c.duplicated_acts as f64)
    );
    let errors: Vec<String> = run
        .errors
        .iter()
        .map(|(kind, n)| format!("{kind} {}", thousands(*n as f64)))
        .collect();
    let _ = writeln!(
        out,
        "  {} {:.2} %{}",
        label("errors"),
        s.error_rate_pct,
        if errors.is_empty() {
            String::new()
        } else {
            format!(": {}", errors.join(", "))
        }
    );
    let _ = writeln!(out, "\n  {}", verdict_line(run, colour));
    out
}

/// PASS, FAIL or PARTIAL, with the plain-language paragraph of the report.
fn verdict_line(run: &RunRecord, colour: bool) -> String {
    let word = if run.partial {
        paint(colour, "33;1", "PARTIAL")
    } else if run.slos_held() && run.checker.lost == 0 {
        paint(colour, "32;1", "PASS")
    } else {
        paint(colour, "31;1", "FAIL")
    };
    format!("{word}  {}", crate::report::summary(run))
}

/// `name` and dots to one width, so the values line up.
fn label(name: &str) -> String {
    format!("{:.<14}", format!("{name} "))
}

fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p.p50, p.p95, p.p99, p.max
    )
}

/// The measured value with the SLO's unit.
fn measured(verdict: &SloVerdict) -> String {
    match Slo::parse(&verdict.name).map(|s| s.metric) {
        Ok(Metric::Latency(..)) => format!("{:.2} ms", verdict.measured),
        Ok(Metric::ErrorRate) => format!("{:.2} %", verdict.measured),
        _ => thousands(verdict.measured),
    }
}

/// For a latency SLO that broke: the fault window holding most of its
/// seconds over the limit, or how many seconds were over and the first.
fn when_it_broke(run: &RunRecord, verdict: &SloVerdict) -> Option<String> {
    let slo = Slo::parse(&verdict.name).ok()?;
    let Metric::Latency(stat, latency) = slo.metric else {
        return None;
    };
    let over: Vec<f64> = run
        .timeseries
        .iter()
        .filter(|s| per_second(s, stat, latency).is_some_and(|v| !slo.holds(v)))
        .map(|s| s.t as f64)
        .collect();
    let first = *over.first()?;
    let in_fault = run
        .faults
        .iter()
        .map(|f| {
            let end = f.end_s.unwrap_or(f64::MAX) + FAULT_SETTLE_S;
            let n = over
                .iter()
                .filter(|&&t| t >= f.start_s - 1.0 && t <= end)
                .count();
            (f, n)
        })
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n * 2 > over.len());
    Some(match in_fault {
        Some((f, n)) => format!(
            "{n} of {} seconds over the limit were during {} at {:.0}–{} s",
            over.len(),
            f.name,
            f.start_s,
            f.end_s
                .map_or_else(|| "end".to_owned(), |e| format!("{e:.0}"))
        ),
        None => format!(
            "{} of {} seconds over the limit, the first at {first:.0} s",
            over.len(),
            run.timeseries.len()
        ),
    })
}

/// A second's value of the statistic, from the percentiles it keeps (the
/// nearest one kept at or above the SLO's).
fn per_second(s: &Second, stat: Stat, latency: Latency) -> Option<f64> {
    let p = match latency {
        Latency::Fanout => &s.fanout_ms,
        Latency::Ack => &s.ack_ms,
        Latency::SendLag => &s.send_lag_ms,
        _ => return None,
    };
    if p.count == 0 {
        return None;
    }
    Some(match stat {
        Stat::Max => p.max,
        Stat::Percentile(q) if q <= 50.0 => p.p50,
        Stat::Percentile(q) if q <= 95.0 => p.p95,
        Stat::Percentile(q) if q <= 99.0 => p.p99,
        Stat::Percentile(_) => p.max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_record::FaultRecord;

    fn second(t: u64, p95: f64) -> Second {
        let mut s = Second {
            t,
            players: 10,
            ..Second::default()
        };
        s.fanout_ms = Percentiles {
            count: 100,
            p50: 1.0,
            p95,
            p99: p95 * 2.0,
            max: p95 * 3.0,
        };
        s
    }

    fn run() -> RunRecord {
        let mut run = RunRecord {
            timeseries: (0..30)
                .map(|t| second(t, if (10..16).contains(&t) { 80.0 } else { 4.0 }))
                .collect(),
            ..RunRecord::default()
        };
        run.slo = vec![
            SloVerdict {
                name: "p95(fanout) < 50ms".into(),
                threshold: "< 50ms".into(),
                measured: 61.5,
                pass: false,
            },
            SloVerdict {
                name: "lost = 0".into(),
                threshold: "= 0".into(),
                measured: 0.0,
                pass: true,
            },
        ];
        run.errors.insert("connect".into(), 3);
        run
    }

    #[test]
    fn each_slo_has_its_mark_value_and_unit_and_the_verdict_is_last() {
        let text = summary(&run(), false);
        assert!(text.contains("✗ p95(fanout) < 50ms .. 61.50 ms"), "{text}");
        assert!(text.contains("✓ lost = 0 ............ 0"), "{text}");
        assert!(text.contains("errors ....... 0.00 %: connect 3"), "{text}");
        assert!(
            text.trim_end()
                .lines()
                .last()
                .unwrap()
                .trim_start()
                .starts_with("FAIL"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "no colour asked for");
        assert!(summary(&run(), true).contains("\x1b[31m✗"));
    }

    #[test]
    fn a_broken_slo_names_the_fault_it_broke_in() {
        let mut r = run();
        r.faults = vec![FaultRecord {
            name: "kill srv-2".into(),
            start_s: 10.0,
            end_s: Some(12.0),
            ..FaultRecord::default()
        }];
        let text = summary(&r, false);
        assert!(
            text.contains("(6 of 6 seconds over the limit were during kill srv-2 at 10–12 s)"),
            "{text}"
        );
        r.faults.clear();
        assert!(
            summary(&r, false).contains("(6 of 30 seconds over the limit, the first at 10 s)"),
            "{}",
            summary(&r, false)
        );
    }
}
