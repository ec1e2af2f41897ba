//! A capacity sweep's model: per configuration (replicas × state) the steps
//! measured, what ended the sweep, the max players under the SLO, the knee
//! and a Universal Scalability Law fit of throughput; across
//! configurations, scaling efficiency and what shared state costs.
//! `capacity.json` is this model serialized; `capacity_page` draws it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tierlab_record::{Latency, ProcessUsage, RecordError, RunRecord, Slo, SloVerdict, Window};

use crate::bottleneck::Bottleneck;
use crate::knee;
use crate::usl::{self, Usl};

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
    /// Cores of the machine the step ran on.
    #[serde(default)]
    pub cores: usize,
}

/// Seconds of a step's hold left out of its verdict, after the ramp.
pub const SETTLE_S: f64 = 2.0;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

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
        let path = dir.join(tierlab_record::hlog::FILE);
        let (_, intervals) = tierlab_record::hlog::read(&path)?;
        let mut latencies = Window::new();
        for interval in &intervals {
            let Some(latency) = interval.latency() else {
                continue;
            };
            if interval.start >= from_s - 0.5 && interval.start < to_s - 0.5 {
                latencies
                    .add(latency, &interval.histogram)
                    .map_err(|message| RecordError::Histogram {
                        path: path.clone(),
                        message,
                    })?;
            }
        }
        Ok(Hold {
            from_s,
            to_s,
            latencies,
        })
    }

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
        let pick =
            |f: fn(&tierlab_record::Second) -> f64| median(held.iter().map(|s| f(s)).collect());
        let mut cpu_pct: BTreeMap<String, f64> = run
            .processes
            .iter()
            .map(|p| (p.name.clone(), held_cpu(p, hold)))
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

/// A process's median CPU over the seconds of `hold` (its run median when
/// the record has no per-second samples).
fn held_cpu(p: &ProcessUsage, hold: &Hold) -> f64 {
    let held: Vec<f64> = p
        .by_second
        .iter()
        .filter(|s| hold.holds(s.t))
        .filter_map(|s| s.cpu_pct)
        .collect();
    if held.is_empty() {
        p.cpu_pct_median
    } else {
        median(held)
    }
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

/// What the page and `capacity.json` hold per configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub label: String,
    pub max_players_under_slo: Option<f64>,
    pub limit: Limit,
    pub knee: Option<f64>,
    pub usl: Usl,
    /// Max players under SLO / (replicas × the 1-replica figure of the
    /// same state).
    pub scaling_efficiency: Option<f64>,
    /// What it held, what broke next and what was full, in one sentence.
    #[serde(default)]
    pub sentence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub scenario: String,
    pub fanout_slo_ms: Option<f64>,
    pub configs: Vec<Config>,
    pub verdicts: Vec<Verdict>,
}

impl Sweep {
    pub fn new(scenario: String, configs: Vec<Config>, fanout_slo_ms: Option<f64>) -> Sweep {
        // Only limits the system reached are capacities to compare.
        let reached = |c: &Config| matches!(c.limit, Limit::Slo | Limit::Errors);
        let one_replica = |state: &str| {
            configs
                .iter()
                .find(|c| c.replicas == 1 && c.state == state && reached(c))
                .and_then(Config::max_players_under_slo)
        };
        let verdicts = configs
            .iter()
            .map(|c| {
                let max = c.max_players_under_slo();
                let p95: Vec<(f64, f64)> = c
                    .steps
                    .iter()
                    .map(|s| (s.players, s.fanout_p95_ms))
                    .collect();
                let throughput: Vec<(f64, f64)> =
                    c.steps.iter().map(|s| (s.players, s.throughput)).collect();
                Verdict {
                    label: c.label.clone(),
                    max_players_under_slo: max,
                    limit: c.limit,
                    knee: knee::knee(&p95),
                    usl: usl::fit(&throughput),
                    scaling_efficiency: max
                        .filter(|_| reached(c))
                        .zip(one_replica(&c.state))
                        .filter(|(_, one)| *one > 0.0)
                        .map(|(m, one)| m / (f64::from(c.replicas) * one)),
                    sentence: crate::capacity_verdict::sentence(&scenario, c),
                }
            })
            .collect();
        Sweep {
            scenario,
            fanout_slo_ms,
            configs,
            verdicts,
        }
    }
}

/// "Shared state costs X %", from one replica in memory and with Redis.
pub fn shared_state_cost(sweep: &Sweep) -> Option<String> {
    let one = |state: &str| {
        sweep
            .configs
            .iter()
            .zip(&sweep.verdicts)
            .find(|(c, v)| {
                c.replicas == 1 && c.state == state && matches!(v.limit, Limit::Slo | Limit::Errors)
            })
            .and_then(|(_, v)| v.max_players_under_slo)
    };
    let (memory, redis) = (one("memory")?, one("redis")?);
    Some(format!(
        "One replica holds {memory:.0} players with its state in memory and {redis:.0} with Redis: shared state costs {:.0} % of a replica's capacity.",
        (1.0 - redis / memory) * 100.0
    ))
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
        cores: 2,
    }
}

/// A configuration for tests: five steps up to 1.25 × `top`, passing up
/// to `top`.
#[cfg(test)]
pub(crate) fn sample_config(replicas: u32, top: f64, limit: Limit) -> Config {
    let steps = (1..=5)
        .map(|i| f64::from(i) * top / 4.0)
        .map(|p| sample_step(p, if p <= top { 5.0 } else { 80.0 }, p <= top))
        .collect();
    Config {
        label: format!("{replicas}x-redis"),
        replicas,
        state: "redis".into(),
        steps,
        limit,
    }
}

/// One and two replicas, both ended by the SLO at 1,000 and 1,600 players.
#[cfg(test)]
pub(crate) fn sample_scaling_sweep() -> Sweep {
    Sweep::new(
        "t".into(),
        vec![
            sample_config(1, 1000.0, Limit::Slo),
            sample_config(2, 1600.0, Limit::Slo),
        ],
        Some(50.0),
    )
}

/// One replica that never broke, beside two that did.
#[cfg(test)]
pub(crate) fn sample_unbroken_sweep() -> Sweep {
    Sweep::new(
        "t".into(),
        vec![
            sample_config(1, 1000.0, Limit::MaxPlayers),
            sample_config(2, 1600.0, Limit::Slo),
        ],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replicas: u32, top: f64, limit: Limit) -> Config {
        sample_config(replicas, top, limit)
    }

    fn step(players: f64, p95: f64, pass: bool) -> Step {
        sample_step(players, p95, pass)
    }

    #[test]
    fn max_players_and_scaling_efficiency() {
        let sweep = sample_scaling_sweep();
        assert_eq!(sweep.verdicts[0].max_players_under_slo, Some(1000.0));
        assert_eq!(sweep.verdicts[0].scaling_efficiency, Some(1.0));
        assert_eq!(sweep.verdicts[1].scaling_efficiency, Some(0.8));
    }

    #[test]
    fn a_sweep_that_never_broke_compares_nothing() {
        let sweep = sample_unbroken_sweep();
        assert_eq!(sweep.verdicts[0].scaling_efficiency, None);
        assert_eq!(sweep.verdicts[1].scaling_efficiency, None);
    }

    #[test]
    fn a_generator_limit_is_never_a_capacity() {
        let mut c = config(1, 1000.0, Limit::Generator);
        c.steps.last_mut().unwrap().generator_saturated = true;
        assert_eq!(c.max_players_under_slo(), None);
        assert_eq!(c.steps.last().unwrap().limit(1.0), Some(Limit::Generator));
        let sweep = Sweep::new("t".into(), vec![c], None);
        assert_eq!(sweep.verdicts[0].max_players_under_slo, None);
    }

    #[test]
    fn shared_state_cost_compares_one_replica_in_memory_and_with_redis() {
        let mut memory = config(1, 1000.0, Limit::Slo);
        memory.state = "memory".into();
        memory.label = "1x-memory".into();
        let sweep = Sweep::new("t".into(), vec![memory, config(1, 750.0, Limit::Slo)], None);
        let text = shared_state_cost(&sweep).unwrap();
        assert!(
            text.contains("1000 players")
                && text.contains("750 with Redis")
                && text.contains("costs 25 %"),
            "{text}"
        );
    }

    #[test]
    fn a_step_ends_the_sweep_on_slo_or_errors() {
        let mut s = step(100.0, 5.0, true);
        assert_eq!(s.limit(1.0), None);
        s.error_rate_pct = 2.0;
        assert_eq!(s.limit(1.0), Some(Limit::Errors));
        s.slo_pass = false;
        assert_eq!(s.limit(1.0), Some(Limit::Slo));
    }
}
