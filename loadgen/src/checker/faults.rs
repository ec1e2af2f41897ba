//! What each fault cost: over its window (from its start to the next
//! fault's start, or the end of the run) — how many players dropped and how
//! long until they were all back, how long until fan-out p95 was back under
//! its limit for good, reconnects and errors by kind, and the acked events
//! lost whose ack came in the window. Pure code over the time series and the
//! checker's lost-by-ack-second.

use std::collections::BTreeMap;

pub use tierlab_record::FaultVerdict;
use tierlab_record::Second;

/// Judges the window `start..end` (seconds).
pub fn judge(
    start: f64,
    end: f64,
    series: &[Second],
    lost_by_ack_second: &BTreeMap<u64, u64>,
    fanout_limit_ms: f64,
) -> FaultVerdict {
    // Row t covers about the second (t-1, t], closed a little after t: the
    // row that may hold the fault's first moments is the one with t just
    // above start - 1. At the other end the window stops at the row mostly
    // inside it: when the next fault starts at 24.0007 s, row 25 is that
    // fault's first second, not this one's last.
    let last_row = (end + 0.5).floor();
    let in_window = |t: u64| t as f64 > start - 1.0 && t as f64 <= last_row;
    let inside: Vec<&Second> = series.iter().filter(|s| in_window(s.t)).collect();
    let players_before = series
        .iter()
        .rev()
        .find(|s| s.t as f64 <= start - 1.0)
        .or(series.first())
        .map_or(0, |s| s.players);
    let since = |s: &Second| (s.t as f64 - start).max(0.0);
    // Short of what is expected, beyond rounding of the load shape.
    let missing = |s: &Second| {
        let expected = players_before.min(s.target.round() as i64);
        let missing = expected - s.players;
        if missing > (expected / 100).max(1) {
            missing
        } else {
            0
        }
    };
    let players_dropped = inside.iter().map(|s| missing(s)).max().unwrap_or(0);
    let players_back_s = match inside.iter().rposition(|s| missing(s) > 0) {
        None => Some(0.0),
        Some(last) => inside.get(last + 1).map(|s| since(s)),
    };
    let fanout_recovered_s = fanout_settled(&inside, fanout_limit_ms, since);
    let mut errors = BTreeMap::new();
    for s in &inside {
        for (kind, n) in &s.errors_by_kind {
            *errors.entry(kind.clone()).or_default() += n;
        }
    }
    // The same rows: an ack clock second is a row of the time series.
    let lost = lost_by_ack_second
        .iter()
        .filter(|(t, _)| in_window(**t))
        .map(|(_, n)| n)
        .sum();
    FaultVerdict {
        window_s: (start, end),
        players_before,
        players_dropped,
        players_back_s,
        fanout_limit_ms,
        fanout_recovered_s,
        reconnects: inside.iter().map(|s| s.reconnects).sum(),
        errors,
        lost,
        pass: lost == 0 && players_back_s.is_some() && fanout_recovered_s.is_some(),
    }
}

/// Measured seconds in a row under the limit that count as recovered: one
/// slow second after them is a busy machine's noise, not the fault's tail.
const SETTLED_SECONDS: usize = 3;

/// Seconds from the fault's start to the last slow second before fan-out
/// settled: the first second over the limit that is followed by
/// `SETTLED_SECONDS` measured seconds under it, or by the rest of the
/// window. 0 when never slow; `None` when the window ends slow.
fn fanout_settled(
    inside: &[&Second],
    limit_ms: f64,
    since: impl Fn(&Second) -> f64,
) -> Option<f64> {
    let over = |s: &Second| s.fanout_ms.count > 0 && s.fanout_ms.p95 > limit_ms;
    let slow: Vec<usize> = (0..inside.len()).filter(|&i| over(inside[i])).collect();
    if slow.is_empty() {
        return Some(0.0);
    }
    let next_slow = slow.iter().skip(1).copied().chain([inside.len()]);
    slow.iter().zip(next_slow).find_map(|(&i, next)| {
        let measured = inside[i + 1..next]
            .iter()
            .filter(|s| s.fanout_ms.count > 0)
            .count();
        let settled = measured >= SETTLED_SECONDS || (next == inside.len() && i + 1 < next);
        settled.then(|| since(inside[i]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_record::Percentiles;

    fn second(t: u64, players: i64, p95: f64) -> Second {
        Second {
            t,
            players,
            target: 100.0,
            fanout_ms: Percentiles {
                count: 10,
                p95,
                ..Percentiles::default()
            },
            ..Second::default()
        }
    }

    #[test]
    fn a_crash_that_heals_is_timed() {
        // Fault at 10.2 s: 40 players drop, all back by second 14; fan-out
        // over 50 ms in seconds 13 and 14 (the replay), fine from 15.
        let mut series: Vec<Second> = (1..=20).map(|t| second(t, 100, 5.0)).collect();
        for (t, players, p95) in [
            (11, 60, 5.0),
            (12, 60, 5.0),
            (13, 90, 900.0),
            (14, 100, 300.0),
        ] {
            series[t - 1] = second(t as u64, players, p95);
        }
        series[11].reconnects = 30;
        series[12].reconnects = 10;
        series[10].errors_by_kind.insert("disconnected".into(), 40);
        let v = judge(10.2, 20.0, &series, &BTreeMap::new(), 50.0);
        assert_eq!((v.players_before, v.players_dropped), (100, 40));
        assert!((v.players_back_s.unwrap() - 3.8).abs() < 1e-9, "{v:?}");
        assert!((v.fanout_recovered_s.unwrap() - 3.8).abs() < 1e-9, "{v:?}");
        assert_eq!(v.reconnects, 40);
        assert_eq!(v.errors["disconnected"], 40);
        assert!(v.pass);
    }

    #[test]
    fn losses_in_the_window_fail_it_and_others_do_not_count() {
        let series: Vec<Second> = (1..=20).map(|t| second(t, 100, 5.0)).collect();
        let lost = BTreeMap::from([(5, 7), (12, 2)]);
        let v = judge(10.0, 15.0, &series, &lost, 50.0);
        assert_eq!(v.lost, 2);
        assert!(!v.pass);
        assert_eq!(v.players_back_s, Some(0.0));
    }

    #[test]
    fn a_ramp_down_after_the_fault_is_not_a_drop() {
        let mut series: Vec<Second> = (1..=20).map(|t| second(t, 100, 5.0)).collect();
        for (t, players) in [(11, 70), (12, 100), (18, 50), (19, 20), (20, 0)] {
            series[t - 1].players = players;
        }
        for (t, target) in [(18, 50.0), (19, 20.0), (20, 0.0)] {
            series[t - 1].target = target;
        }
        let v = judge(10.5, 20.0, &series, &BTreeMap::new(), 50.0);
        assert_eq!(v.players_dropped, 30);
        assert!((v.players_back_s.unwrap() - 1.5).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn the_next_faults_first_second_is_not_this_ones_last() {
        // Healed by second 20; the next fault starts at 24.0007 s and its
        // first second (row 25) is slow.
        let mut series: Vec<Second> = (1..=30).map(|t| second(t, 100, 5.0)).collect();
        series[24] = second(25, 100, 400.0);
        let v = judge(13.0007, 24.0007, &series, &BTreeMap::new(), 50.0);
        assert_eq!(v.fanout_recovered_s, Some(0.0), "{v:?}");
        assert!(v.pass);
        // Nor are the losses acked in it: they are the next fault's.
        let lost = BTreeMap::from([(25, 9)]);
        assert_eq!(judge(13.0007, 24.0007, &series, &lost, 50.0).lost, 0);
        assert_eq!(judge(24.0007, 30.0, &series, &lost, 50.0).lost, 9);
    }

    #[test]
    fn one_slow_second_after_fan_out_settled_is_noise() {
        // Slow in seconds 19 and 21, then fine for 3 s, then one slow
        // second at the window's end.
        let mut series: Vec<Second> = (1..=30).map(|t| second(t, 100, 5.0)).collect();
        for t in [19, 21, 25] {
            series[t - 1] = second(t as u64, 100, 400.0);
        }
        let v = judge(13.0, 25.0, &series, &BTreeMap::new(), 50.0);
        assert_eq!(v.fanout_recovered_s, Some(8.0), "{v:?}");
        // Unmeasured seconds do not count as settled.
        for row in &mut series[21..24] {
            row.fanout_ms.count = 0;
        }
        assert_eq!(
            judge(13.0, 25.0, &series, &BTreeMap::new(), 50.0).fanout_recovered_s,
            None
        );
    }

    #[test]
    fn a_fault_that_never_heals_says_so() {
        let mut series: Vec<Second> = (1..=10).map(|t| second(t, 100, 5.0)).collect();
        for row in &mut series[5..] {
            *row = second(row.t, 50, 400.0);
        }
        let v = judge(5.0, 10.0, &series, &BTreeMap::new(), 50.0);
        assert_eq!(v.players_back_s, None);
        assert_eq!(v.fanout_recovered_s, None);
        assert!(!v.pass);
    }
}
