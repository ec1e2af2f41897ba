//! One configuration's steps: what ended its sweep (`Limit`), each step
//! judged over its hold window (`Hold`, `Step`), and the configuration's
//! steps in order of players with its capacity below the lowest failure
//! (`Config`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tierlab_record::hlog::{self, Interval};
use tierlab_record::{
    median, Latency, ProcessSecond, ProcessUsage, RecordError, RunRecord, Slo, SloVerdict, Window,
};

use crate::bottleneck::Bottleneck;

/// What ended a configuration's sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// An SLO broke: the system's limit.
    Slo,
    /// Errors passed the limit: the system's limit.
    Errors,
    /// The generator saturated first: not a capacity.
    Generator,
    /// The sweep reached its highest step without breaking.
    MaxPlayers,
}

impl Limit {
    /// What ended the sweep, in words.
    pub fn text(self) -> &'static str {
        match self {
            Limit::Slo => "an SLO broke",
            Limit::Errors => "errors passed the limit",
            Limit::Generator => "the generator saturated — not a capacity",
            Limit::MaxPlayers => "the highest step held",
        }
    }
}

/// One step of a sweep, judged over its hold only: the ramp and the first
/// [`SETTLE_S`] seconds of the hold are the transient of reaching the load,
/// not the steady state the step asks about, and are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Players asked for.
    pub offered: u32,
    /// Median players connected during the hold.
    pub players: f64,
    /// Median events delivered per second during the hold.
    pub throughput: f64,
    /// Fan-out percentiles over the judged window (its seconds' histograms
    /// added together).
    pub fanout_p50_ms: f64,
    pub fanout_p95_ms: f64,
    pub fanout_p99_ms: f64,
    pub error_rate_pct: f64,
    pub slo_pass: bool,
    /// Every SLO met, errors under the limit, the generator not saturated:
    /// the system held this step.
    #[serde(default)]
    pub held: bool,
    pub generator_cpu_pct: f64,
    pub generator_saturated: bool,
    /// CPU of every tierlab-server together (% of one core).
    pub servers_cpu_pct: f64,
    /// CPU of Redis, or of a cluster's busiest shard (% of one core).
    pub redis_cpu_pct: Option<f64>,
    /// Commands per second of Redis, or of every shard together.
    pub redis_ops_per_s: Option<f64>,
    /// The seconds of the run judged: `[judged_from_s, judged_to_s)`.
    #[serde(default)]
    pub judged_from_s: f64,
    #[serde(default)]
    pub judged_to_s: f64,
    /// The scenario's SLOs over the judged window (latencies; errors and
    /// the checker's counts are the whole run's).
    #[serde(default)]
    pub slo: Vec<SloVerdict>,
    /// Median CPU of each process over the judged window, % of one core
    /// (the generator as `generator`).
    #[serde(default)]
    pub cpu_pct: BTreeMap<String, f64>,
    /// Median resident memory of each process over the judged window, MiB.
    #[serde(default)]
    pub rss_mib: BTreeMap<String, f64>,
    /// Cores of the machine the step ran on.
    #[serde(default)]
    pub cores: usize,
}

/// Seconds of a step's hold left out of its verdict, after the ramp.
pub const SETTLE_S: f64 = 2.0;

/// The window of a step a verdict is taken on.
#[derive(Debug, Clone)]
pub struct Hold {
    pub from_s: f64,
    pub to_s: f64,
    /// The latencies of the seconds in the window, added.
    pub latencies: Window,
}

impl Hold {
    /// The window after a ramp of `ramp_s` and [`SETTLE_S`], to the end of
    /// a hold of `hold_s`, read from the run's interval log in `dir`.
    pub fn read(dir: &Path, ramp_s: f64, hold_s: f64) -> Result<Hold, RecordError> {
        let (from_s, to_s) = (ramp_s + SETTLE_S, ramp_s + hold_s);
        let path = dir.join(hlog::FILE);
        let (_, intervals) = hlog::read(&path)?;
        let mut hold = Hold {
            from_s,
            to_s,
            latencies: Window::new(),
        };
        let held: Vec<Interval> = intervals
            .into_iter()
            .filter(|i| hold.covers(i.start))
            .collect();
        hold.latencies =
            hlog::totals(&held).map_err(|message| RecordError::Histogram { path, message })?;
        Ok(hold)
    }

    /// Whether an interval of the log that begins at `start_s` lies in the
    /// window (half a second of slack: intervals are stamped by a timer).
    fn covers(&self, start_s: f64) -> bool {
        start_s >= self.from_s - 0.5 && start_s < self.to_s - 0.5
    }

    /// Whether second `t` of the record lies in the window.
    fn holds(&self, t: u64) -> bool {
        (t as f64) >= self.from_s && (t as f64) < self.to_s
    }
}

impl Step {
    /// The step measured in `run` over `hold`, judged against `slos`.
    pub fn of(
        run: &RunRecord,
        hold: &Hold,
        offered: u32,
        slos: &[Slo],
        error_limit_pct: f64,
    ) -> Step {
        let held: Vec<_> = run.timeseries.iter().filter(|s| hold.holds(s.t)).collect();
        let pick = |f: fn(&tierlab_record::Second) -> f64| {
            median(&mut held.iter().map(|s| f(s)).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        let mut cpu_pct: BTreeMap<String, f64> = run
            .processes
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    held_median(p, hold, |s| s.cpu_pct, p.cpu_pct_median),
                )
            })
            .collect();
        let rss_mib = run
            .processes
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    held_median(p, hold, |s| Some(s.rss_mib), p.rss_mib_max),
                )
            })
            .collect();
        cpu_pct.insert("generator".into(), pick(|s| s.generator_cpu_pct));
        let servers = run.processes.iter().filter(|p| p.is_replica());
        // A shard's one thread is the limit, so the busiest shard's CPU
        // counts, and the ops of all of them.
        let redis: Vec<_> = run
            .processes
            .iter()
            .filter(|p| p.is_redis_primary())
            .collect();
        let busiest = redis.iter().map(|p| cpu_pct[&p.name]).reduce(f64::max);
        let ops: Vec<f64> = redis.iter().filter_map(|p| p.ops_per_s_median).collect();
        let slo: Vec<SloVerdict> = slos.iter().map(|s| s.judge(run, &hold.latencies)).collect();
        let fanout = hold.latencies.percentiles(Latency::Fanout);
        let mut step = Step {
            offered,
            players: pick(|s| s.players as f64),
            throughput: pick(|s| s.events_delivered as f64),
            fanout_p50_ms: fanout.p50,
            fanout_p95_ms: fanout.p95,
            fanout_p99_ms: fanout.p99,
            error_rate_pct: run.summary.error_rate_pct,
            slo_pass: slo.iter().all(|s| s.pass),
            generator_cpu_pct: cpu_pct["generator"],
            generator_saturated: run.generator.saturated,
            servers_cpu_pct: servers.map(|p| cpu_pct[&p.name]).sum(),
            redis_cpu_pct: busiest,
            redis_ops_per_s: (!ops.is_empty()).then(|| ops.iter().sum()),
            judged_from_s: hold.from_s,
            judged_to_s: hold.to_s,
            slo,
            cpu_pct,
            rss_mib,
            cores: run.machine.cores,
            held: false,
        };
        step.held = step.limit(error_limit_pct).is_none();
        step
    }

    /// What was full while the step was held.
    pub fn bottleneck(&self) -> Bottleneck {
        Bottleneck::of(&self.cpu_pct, self.cores)
    }

    /// What this step ends the sweep with, if anything. A saturated
    /// generator wins over everything: its latencies are its own.
    pub fn limit(&self, error_limit_pct: f64) -> Option<Limit> {
        if self.generator_saturated {
            Some(Limit::Generator)
        } else if !self.slo_pass {
            Some(Limit::Slo)
        } else if self.error_rate_pct > error_limit_pct {
            Some(Limit::Errors)
        } else {
            None
        }
    }
}

/// The median of one of a process's per-second figures over the seconds
/// of `hold` (`otherwise`, the run's own figure, when the record has no
/// per-second samples).
fn held_median(
    p: &ProcessUsage,
    hold: &Hold,
    of: fn(&ProcessSecond) -> Option<f64>,
    otherwise: f64,
) -> f64 {
    let mut held: Vec<f64> = p
        .by_second
        .iter()
        .filter(|s| hold.holds(s.t))
        .filter_map(of)
        .collect();
    median(&mut held).unwrap_or(otherwise)
}

/// One configuration's sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub label: String,
    pub replicas: u32,
    pub state: String,
    pub steps: Vec<Step>,
    pub limit: Limit,
}

impl Config {
    /// The most players a step held with every SLO met — `None` when the
    /// generator ended the sweep (that is not the system's capacity) or no
    /// step passed.
    pub fn max_players_under_slo(&self) -> Option<f64> {
        if self.limit == Limit::Generator {
            return None;
        }
        let below = self.first_failure().map_or(u32::MAX, |f| f.offered);
        self.steps
            .iter()
            .filter(|s| s.held && s.offered < below)
            .map(|s| s.players)
            .fold(None, |best, p| Some(best.map_or(p, |b: f64| b.max(p))))
    }

    /// The lowest step that did not hold. A bisection can find a pass
    /// above it (a lucky second on noisy cores); the capacity is what held
    /// below every failure.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| !s.held)
            .min_by_key(|s| s.offered)
    }

    /// The highest step that held below [`Config::first_failure`].
    pub fn last_pass(&self) -> Option<&Step> {
        let below = self.first_failure().map_or(u32::MAX, |f| f.offered);
        self.steps
            .iter()
            .filter(|s| s.held && s.offered < below)
            .max_by_key(|s| s.offered)
    }

    /// Adds a step, keeping the steps in order of players offered.
    pub fn push(&mut self, step: Step) {
        let at = self.steps.partition_point(|s| s.offered < step.offered);
        self.steps.insert(at, step);
    }
}

/// A step for tests of the sweep and of plans: `players` held at `p95`,
/// 10 events/s and 3 Redis ops/s per player.
#[cfg(test)]
pub(crate) fn sample_step(players: f64, p95: f64, pass: bool) -> Step {
    Step {
        offered: players as u32,
        players,
        throughput: players * 10.0,
        fanout_p50_ms: 1.0,
        fanout_p95_ms: p95,
        fanout_p99_ms: p95 * 2.0,
        error_rate_pct: 0.0,
        slo_pass: pass,
        held: pass,
        generator_cpu_pct: 20.0,
        generator_saturated: false,
        servers_cpu_pct: 50.0,
        redis_cpu_pct: Some(10.0),
        redis_ops_per_s: Some(players * 3.0),
        judged_from_s: 7.0,
        judged_to_s: 25.0,
        slo: Vec::new(),
        cpu_pct: [("srv-1", 50.0), ("redis", 10.0), ("generator", 20.0)]
            .into_iter()
            .map(|(n, p)| (n.to_owned(), p))
            .collect(),
        rss_mib: BTreeMap::new(),
        cores: 2,
    }
}
