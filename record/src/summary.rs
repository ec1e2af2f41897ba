//! What run.json says of the whole run and of each second: the summary,
//! the per-second rows of the time series, the generator's own use of the
//! machine, and the SLO verdicts. Rows and generator figures of several
//! workers add with `+=`; latency percentiles never add, they come from the
//! summed histograms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Latency, Percentiles, Window};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub duration_s: f64,
    pub peak_players: i64,
    pub acts: u64,
    pub events_delivered: u64,
    pub errors: u64,
    /// Errors per operation (connects, joins, acts), in percent.
    pub error_rate_pct: f64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
    #[serde(default)]
    pub connect_ms: Percentiles,
    #[serde(default)]
    pub join_ms: Percentiles,
    #[serde(default)]
    pub reconnect_ms: Percentiles,
    /// The generator's own lateness (absent in records older than it).
    #[serde(default)]
    pub send_lag_ms: Percentiles,
}

impl Summary {
    /// Of a run's totals.
    pub fn of(total: &Window, peak_players: i64, duration_s: f64) -> Summary {
        let errors = total.errors_total();
        let operations = total.operations();
        Summary {
            duration_s,
            peak_players,
            acts: total.acts,
            events_delivered: total.deliveries,
            errors,
            error_rate_pct: if operations == 0 {
                0.0
            } else {
                errors as f64 * 100.0 / operations as f64
            },
            fanout_ms: total.percentiles(Latency::Fanout),
            ack_ms: total.percentiles(Latency::Ack),
            connect_ms: total.percentiles(Latency::Connect),
            join_ms: total.percentiles(Latency::Join),
            reconnect_ms: total.percentiles(Latency::Reconnect),
            send_lag_ms: total.percentiles(Latency::SendLag),
        }
    }

    pub fn latency(&self, latency: Latency) -> &Percentiles {
        match latency {
            Latency::Fanout => &self.fanout_ms,
            Latency::Ack => &self.ack_ms,
            Latency::Connect => &self.connect_ms,
            Latency::Join => &self.join_ms,
            Latency::Reconnect => &self.reconnect_ms,
            Latency::SendLag => &self.send_lag_ms,
        }
    }
}

/// One second of the run (a row of `timeseries`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started (end of the interval).
    pub t: u64,
    /// Players in their room at the end of the second.
    pub players: i64,
    /// The load shape's target for this second.
    pub target: f64,
    pub acts: u64,
    pub events_delivered: u64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
    /// The generator's send lag this second.
    #[serde(default)]
    pub send_lag_ms: Percentiles,
    pub errors: u64,
    /// Errors of this second by kind (`connect`, `session_expired`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Players that got their seat back after a dropped connection.
    #[serde(default)]
    pub reconnects: u64,
    /// CPU used by the generator process, % of one core.
    #[serde(default)]
    pub generator_cpu_pct: f64,
    /// Resident memory of the generator process.
    #[serde(default)]
    pub generator_rss_mib: f64,
    /// CPU time the hypervisor stole from this machine, % of all its CPU time.
    #[serde(default)]
    pub steal_pct: f64,
}

/// What the machine and the generator did during one second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSecond {
    pub generator_cpu_pct: f64,
    pub generator_rss_mib: f64,
    pub steal_pct: f64,
}

impl Second {
    /// The row of second `t` whose interval is `window`.
    pub fn of(
        t: u64,
        players: i64,
        target: f64,
        window: &Window,
        machine: MachineSecond,
    ) -> Second {
        let mut second = Second {
            t,
            players,
            target,
            acts: window.acts,
            events_delivered: window.deliveries,
            errors: window.errors_total(),
            errors_by_kind: window.errors.clone(),
            reconnects: window.latency(Latency::Reconnect).len(),
            generator_cpu_pct: machine.generator_cpu_pct,
            generator_rss_mib: machine.generator_rss_mib,
            steal_pct: machine.steal_pct,
            ..Second::default()
        };
        second.latencies_from(window);
        second
    }

    /// The second's latency percentiles, from its window.
    pub fn latencies_from(&mut self, window: &Window) {
        self.fanout_ms = window.percentiles(Latency::Fanout);
        self.ack_ms = window.percentiles(Latency::Ack);
        self.send_lag_ms = window.percentiles(Latency::SendLag);
    }
}

/// The same second on two workers: counts, players and the generators'
/// use add up; steal is the machine's, so the worse of the two. Percentiles
/// are left as they are: the caller sets them from the summed histograms.
impl std::ops::AddAssign<&Second> for Second {
    fn add_assign(&mut self, other: &Second) {
        self.players += other.players;
        self.target += other.target;
        self.acts += other.acts;
        self.events_delivered += other.events_delivered;
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        for (kind, n) in &other.errors_by_kind {
            *self.errors_by_kind.entry(kind.clone()).or_default() += n;
        }
        self.generator_cpu_pct += other.generator_cpu_pct;
        self.generator_rss_mib += other.generator_rss_mib;
        self.steal_pct = self.steal_pct.max(other.steal_pct);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SloVerdict {
    pub name: String,
    pub threshold: String,
    pub measured: f64,
    pub pass: bool,
}

/// Seconds in a row at ≥ 90 % of the generator's CPU that make it saturated.
const SATURATED_SECONDS: usize = 3;
/// A second with fewer events says more about the generator's idle cost
/// than about its cost per event.
const BUSY_SECOND: u64 = 1000;
/// The generator's send lag is large when its p99 passes this share of the
/// fan-out p95 it is part of…
const SEND_LAG_SHARE: f64 = 0.10;
/// …and this many ms (below it, no latency worth reporting moves).
const SEND_LAG_FLOOR_MS: f64 = 0.2;

impl Summary {
    /// Whether the generator's own lateness is a large part of the
    /// latencies it reports.
    pub fn send_lag_is_large(&self) -> bool {
        let lag = self.send_lag_ms;
        lag.count > 0 && lag.p99 > SEND_LAG_FLOOR_MS.max(SEND_LAG_SHARE * self.fanout_ms.p95)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub cpu_pct_median: f64,
    pub cpu_pct_max: f64,
    /// What 100 % of the generator's worker threads would be.
    pub cpu_pct_capacity: f64,
    pub saturated: bool,
    pub rss_mib: f64,
    /// The worst second's CPU steal on this machine (see `timeseries[].steal_pct`).
    #[serde(default)]
    pub steal_pct_max: f64,
    /// Its send lag's p99 passed a tenth of the fan-out p95 (and 0.2 ms).
    #[serde(default)]
    pub send_lag_large: bool,
    /// CPU per event received, µs: the median over the seconds that
    /// delivered at least `BUSY_SECOND` events.
    #[serde(default)]
    pub us_per_event: Option<f64>,
    #[serde(default)]
    pub warning: Option<String>,
}

impl Generator {
    /// Adds the verdict on the generator's send lag in `summary`.
    pub fn judge_send_lag(&mut self, summary: &Summary) {
        self.send_lag_large = summary.send_lag_is_large();
        if !self.send_lag_large {
            return;
        }
        let lag = format!(
            "the generator wrote acts late (send lag p99 {:.2} ms against fan-out p95 {:.2} ms): part of every latency is the generator's own",
            summary.send_lag_ms.p99, summary.fanout_ms.p95
        );
        self.warning = Some(match self.warning.take() {
            Some(first) => format!("{first}; {lag}"),
            None => lag,
        });
    }

    /// The generator's verdict over `seconds`: saturated when it used 90 %
    /// of `cores` for [`SATURATED_SECONDS`] seconds in a row.
    pub fn of(seconds: &[Second], rss_mib: f64, cores: usize) -> Generator {
        let mut cpu: Vec<f64> = seconds.iter().map(|s| s.generator_cpu_pct).collect();
        cpu.sort_by(f64::total_cmp);
        let capacity = 100.0 * cores as f64;
        let saturated = seconds
            .windows(SATURATED_SECONDS)
            .any(|w| w.iter().all(|s| s.generator_cpu_pct >= 0.9 * capacity));
        Generator {
            cpu_pct_median: cpu.get(cpu.len() / 2).copied().unwrap_or(0.0),
            cpu_pct_max: cpu.last().copied().unwrap_or(0.0),
            cpu_pct_capacity: capacity,
            saturated,
            rss_mib,
            steal_pct_max: seconds.iter().map(|s| s.steal_pct).fold(0.0, f64::max),
            warning: saturated.then(|| {
                "the generator used ≥ 90 % of its CPU for 3 s or more: latencies may be the generator's, not the system's".to_owned()
            }),
            send_lag_large: false,
            us_per_event: us_per_event(seconds),
        }
    }
}

/// Median CPU µs per event received over the busy seconds.
pub fn us_per_event(seconds: &[Second]) -> Option<f64> {
    let mut per: Vec<f64> = seconds
        .iter()
        .filter(|s| s.events_delivered >= BUSY_SECOND)
        .map(|s| s.generator_cpu_pct / 100.0 / s.events_delivered as f64 * 1e6)
        .collect();
    per.sort_by(f64::total_cmp);
    per.get(per.len() / 2).copied()
}

/// Two workers' generators: their use adds up, and one saturated worker
/// makes the whole run's latencies suspect.
impl std::ops::AddAssign<&Generator> for Generator {
    fn add_assign(&mut self, other: &Generator) {
        self.cpu_pct_median += other.cpu_pct_median;
        self.cpu_pct_max += other.cpu_pct_max;
        self.cpu_pct_capacity += other.cpu_pct_capacity;
        self.saturated |= other.saturated;
        self.send_lag_large |= other.send_lag_large;
        // Each worker's own cost per event it received; the heavier counts.
        self.us_per_event = match (self.us_per_event, other.us_per_event) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.rss_mib += other.rss_mib;
        self.steal_pct_max = self.steal_pct_max.max(other.steal_pct_max);
        if self.warning.is_none() {
            self.warning.clone_from(&other.warning);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_of_two_workers_add_up() {
        let mut a = Second {
            t: 5,
            players: 10,
            acts: 3,
            steal_pct: 1.0,
            generator_cpu_pct: 20.0,
            ..Second::default()
        };
        a.errors_by_kind.insert("connect".into(), 1);
        let mut b = a.clone();
        b.steal_pct = 4.0;
        b.errors_by_kind.insert("bad_frame".into(), 2);
        a += &b;
        assert_eq!((a.t, a.players, a.acts), (5, 20, 6));
        assert_eq!(a.steal_pct, 4.0);
        assert_eq!(a.generator_cpu_pct, 40.0);
        assert_eq!(a.errors_by_kind["connect"], 2);
        assert_eq!(a.errors_by_kind["bad_frame"], 2);
    }

    #[test]
    fn a_generator_is_saturated_after_three_full_seconds() {
        let second = |cpu| Second {
            generator_cpu_pct: cpu,
            ..Second::default()
        };
        let busy = [second(50.0), second(190.0), second(195.0), second(185.0)];
        let g = Generator::of(&busy, 12.0, 2);
        assert!(g.saturated && g.warning.is_some());
        assert_eq!((g.cpu_pct_capacity, g.cpu_pct_max), (200.0, 195.0));
        assert_eq!(g.us_per_event, None, "no busy second");
        let busy = Second {
            generator_cpu_pct: 50.0,
            events_delivered: 50_000,
            ..Second::default()
        };
        let per = Generator::of(&[busy], 1.0, 2)
            .us_per_event
            .unwrap_or_default();
        assert!((per - 10.0).abs() < 1e-9, "{per}");
        let calm = [second(190.0), second(50.0), second(190.0)];
        assert!(!Generator::of(&calm, 12.0, 2).saturated);
    }

    #[test]
    fn a_send_lag_large_against_fanout_is_a_warning() {
        let mut summary = Summary::default();
        summary.fanout_ms.p95 = 10.0;
        summary.send_lag_ms = Percentiles {
            count: 100,
            p99: 0.9,
            ..Percentiles::default()
        };
        let mut g = Generator::default();
        g.judge_send_lag(&summary);
        assert!(!g.send_lag_large && g.warning.is_none(), "0.9 ms of 10 ms");
        summary.send_lag_ms.p99 = 1.5;
        g.judge_send_lag(&summary);
        assert!(g.send_lag_large);
        assert!(g
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("send lag p99 1.50 ms")));
        summary.fanout_ms.p95 = 1.0;
        summary.send_lag_ms.p99 = 0.15;
        assert!(!summary.send_lag_is_large(), "below the 0.2 ms floor");
    }

    #[test]
    fn a_summary_counts_errors_per_operation() {
        let mut total = Window::new();
        total.acts = 99;
        total.record(Latency::Connect, 100);
        total.error("connect");
        let s = Summary::of(&total, 1, 2.0);
        assert_eq!(s.errors, 1);
        assert!((s.error_rate_pct - 1.0).abs() < 1e-9);
        assert_eq!(s.latency(Latency::Connect).count, 1);
    }
}
