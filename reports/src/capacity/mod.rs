//! A capacity sweep's model: per configuration (replicas × state) the steps
//! measured, what ended the sweep, the max players under the SLO, the knee
//! and a Universal Scalability Law fit of throughput; across
//! configurations, scaling efficiency and what shared state costs.
//! `capacity.json` is this model serialized; `capacity_page` draws it.

mod model;
mod step;
mod verdict;

use serde::{Deserialize, Serialize};

use crate::knee;
use crate::usl::{self, Usl};

pub use model::{
    predictions, Cost, Fit, Prediction, ResourceModel, COST_COLUMNS, PREDICTION_COLUMNS,
    SUPERLINEAR,
};
#[cfg(test)]
pub(crate) use step::sample_step;
pub use step::{Config, Hold, Limit, Step, SETTLE_S};

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
    /// What a player costs per component, per configuration that held two
    /// steps or more.
    #[serde(default)]
    pub models: Vec<ResourceModel>,
    /// The 1-replica models against the other configurations' sweeps.
    #[serde(default)]
    pub predictions: Vec<Prediction>,
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
                    sentence: verdict::sentence(&scenario, c),
                }
            })
            .collect();
        let models: Vec<ResourceModel> = configs.iter().filter_map(ResourceModel::of).collect();
        Sweep {
            scenario,
            fanout_slo_ms,
            predictions: predictions(&configs, &models),
            configs,
            verdicts,
            models,
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
