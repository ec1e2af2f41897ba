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
        }
    }

    pub fn latency(&self, latency: Latency) -> &Percentiles {
        match latency {
            Latency::Fanout => &self.fanout_ms,
            Latency::Ack => &self.ack_ms,
            Latency::Connect => &self.connect_ms,
            Latency::Join => &self.join_ms,
            Latency::Reconnect => &self.reconnect_ms,
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
        Second {
            t,
            players,
            target,
            acts: window.acts,
            events_delivered: window.deliveries,
            fanout_ms: window.percentiles(Latency::Fanout),
            ack_ms: window.percentiles(Latency::Ack),
            errors: window.errors_total(),
            errors_by_kind: window.errors.clone(),
            reconnects: window.latency(Latency::Reconnect).len(),
            generator_cpu_pct: machine.generator_cpu_pct,
            generator_rss_mib: machine.generator_rss_mib,
            steal_pct: machine.steal_pct,
        }
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
    #[serde(default)]
    pub warning: Option<String>,
}

impl Generator {
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
        }
    }
}

/// Two workers' generators: their use adds up, and one saturated worker
/// makes the whole run's latencies suspect.
impl std::ops::AddAssign<&Generator> for Generator {
    fn add_assign(&mut self, other: &Generator) {
        self.cpu_pct_median += other.cpu_pct_median;
        self.cpu_pct_max += other.cpu_pct_max;
        self.cpu_pct_capacity += other.cpu_pct_capacity;
        self.saturated |= other.saturated;
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
        let calm = [second(190.0), second(50.0), second(190.0)];
        assert!(!Generator::of(&calm, 12.0, 2).saturated);
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
