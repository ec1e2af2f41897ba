//! `tierlab plan`: from a capacity sweep, what a target player count needs
//! — replicas at a headroom, Redis ops/s and shards, load balancers, and a
//! monthly cost from a price file the user writes. When the price file
//! names the server's cores, the plan rests on what each player costs
//! (`machines`); otherwise on the players per replica the shared-core
//! sweep measured. Every number comes with the assumption that drives it,
//! and numbers beyond twice the measured range say they are
//! extrapolations.

mod machines;
mod render;
mod shared_core;

use std::path::Path;

use serde::Deserialize;

use crate::capacity::Sweep;
use crate::ReportError;
use shared_core::{measured, shared_core_plan};

/// Prices a user writes (`cost.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    #[serde(default = "CostModel::default_currency")]
    pub currency: String,
    pub server: Priced,
    pub redis: RedisPrice,
    #[serde(default)]
    pub lb: Option<Priced>,
    /// What a team's own scaling documents say, checked against the model.
    #[serde(default)]
    pub claims: Vec<Claim>,
}

/// A machine type and its price.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Priced {
    pub name: String,
    pub monthly: f64,
    /// Cores of one machine: with them, the plan rests on per-player costs.
    #[serde(default)]
    pub cores: Option<f64>,
    #[serde(default)]
    pub memory_gib: Option<f64>,
    /// Connections one process may hold (file descriptors, a proxy's cap).
    #[serde(default)]
    pub connections: Option<f64>,
}

/// "`servers` servers hold `players`", as a team wrote it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub text: String,
    pub servers: f64,
    pub players: f64,
    /// The claim's own machine, where it differs from `[server]`.
    #[serde(default)]
    pub cores: Option<f64>,
    #[serde(default)]
    pub memory_gib: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisPrice {
    pub name: String,
    /// Per shard (one Redis instance).
    pub monthly: f64,
    /// What one shard sustains, ops/s (measure with redis-benchmark).
    pub ops_per_shard: f64,
}

impl CostModel {
    fn default_currency() -> String {
        "USD".into()
    }

    pub fn load(path: &Path) -> Result<CostModel, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ReportError::Plan(format!("{}: {e}", path.display())))
    }
}

/// One figure of the plan and what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub what: String,
    pub value: String,
    pub assumption: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub players: f64,
    pub lines: Vec<Line>,
    /// The target is beyond twice the largest load measured.
    pub extrapolated: bool,
    pub monthly: Option<f64>,
    pub claims: Vec<ClaimCheck>,
}

pub use machines::{Binds, ClaimCheck};

/// The plan for `players` at `headroom` (0..1: the share of measured
/// capacity a deployment may use), one `Line` per figure with the
/// assumption it rests on: on the price file's machines when it names the
/// server's cores, else on the shared-core sweep.
pub fn plan(
    sweep: &Sweep,
    players: f64,
    headroom: f64,
    cost: Option<&CostModel>,
) -> Result<Plan, ReportError> {
    if !(players >= 1.0 && (0.05..=1.0).contains(&headroom)) {
        return Err(ReportError::Plan(
            "players must be ≥ 1 and headroom in 5–100 %".into(),
        ));
    }
    let extrapolated = players > 2.0 * largest_load(sweep);
    match cost.filter(|c| c.server.cores.is_some()) {
        Some(cost) => machine_plan(sweep, players, headroom, cost, extrapolated),
        None => shared_core_plan(sweep, players, headroom, cost, extrapolated),
    }
}

/// The most players any step of the sweep had.
fn largest_load(sweep: &Sweep) -> f64 {
    sweep
        .configs
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| s.players))
        .fold(0.0, f64::max)
}

/// The plan on machines with cores of their own, from per-player costs.
fn machine_plan(
    sweep: &Sweep,
    players: f64,
    headroom: f64,
    cost: &CostModel,
    extrapolated: bool,
) -> Result<Plan, ReportError> {
    let model = machines::basis(sweep)?;
    let mut lines = Vec::new();
    let replicas = machines::replica_lines(&mut lines, model, &cost.server, players, headroom)?;
    if let Ok(m) = measured(sweep) {
        lines.push(Line {
            what: "players per replica (shared-core sweep)".into(),
            value: format!("{}{:.0}", if m.lower_bound { "≥ " } else { "" }, m.per_replica),
            assumption: format!(
                "evidence, not the basis: max players under the SLO with {} replica(s) ÷ {}, every process sharing this machine's cores",
                m.replicas, m.replicas
            ),
        });
    }
    let shards = machines::redis_lines(&mut lines, model, players, headroom, cost);
    let lbs = cost.lb.as_ref().map_or(0.0, |lb| {
        machines::lb_lines(&mut lines, model, players, headroom, lb)
    });
    let total = cost_lines(&mut lines, cost, players, (replicas, shards, lbs));
    Ok(Plan {
        players,
        lines,
        extrapolated,
        monthly: Some(total),
        claims: machines::claims(model, cost),
    })
}

/// The month's bill for `(replicas, shards, load balancers)` and what 100
/// players cost; returns the bill.
fn cost_lines(
    lines: &mut Vec<Line>,
    c: &CostModel,
    players: f64,
    machines: (f64, f64, f64),
) -> f64 {
    let (replicas, shards, lbs) = machines;
    let total = replicas * c.server.monthly
        + shards * c.redis.monthly
        + lbs * c.lb.as_ref().map_or(0.0, |l| l.monthly);
    lines.push(Line {
        what: "monthly cost".into(),
        value: format!("{total:.0} {}", c.currency),
        assumption: format!(
            "{replicas:.0} × {} ({:.0}) + {shards:.0} × {} ({:.0}){}",
            c.server.name,
            c.server.monthly,
            c.redis.name,
            c.redis.monthly,
            c.lb.as_ref()
                .filter(|_| lbs > 0.0)
                .map_or_else(String::new, |l| format!(
                    " + {lbs:.0} × {} ({:.0})",
                    l.name, l.monthly
                ))
        ),
    });
    lines.push(Line {
        what: "cost per 100 players".into(),
        value: format!("{:.2} {}", total * 100.0 / players, c.currency),
        assumption: "monthly cost ÷ players × 100".into(),
    });
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{Config, Limit, Step};

    fn step(players: f64, p95: f64, pass: bool) -> Step {
        crate::capacity::sample_step(players, p95, pass)
    }

    fn sweep() -> Sweep {
        let one = Config {
            label: "1x-redis".into(),
            replicas: 1,
            state: "redis".into(),
            steps: vec![
                step(500.0, 5.0, true),
                step(1000.0, 10.0, true),
                step(1500.0, 80.0, false),
            ],
            limit: Limit::Slo,
        };
        let two = Config {
            label: "2x-redis".into(),
            replicas: 2,
            state: "redis".into(),
            steps: vec![
                step(1000.0, 5.0, true),
                step(1800.0, 20.0, true),
                step(2600.0, 90.0, false),
            ],
            limit: Limit::Slo,
        };
        Sweep::new("t".into(), vec![one, two], Some(50.0))
    }

    fn cost() -> CostModel {
        CostModel {
            currency: "USD".into(),
            server: Priced {
                name: "2 vCPU".into(),
                monthly: 25.0,
                ..Priced::default()
            },
            redis: RedisPrice {
                name: "Redis".into(),
                monthly: 100.0,
                ops_per_shard: 50_000.0,
            },
            lb: Some(Priced {
                name: "LB".into(),
                monthly: 20.0,
                ..Priced::default()
            }),
            claims: Vec::new(),
        }
    }

    /// Three replicas costing 15 µs of CPU per player-second and 60 KiB
    /// per connection together (10 MiB idle each), Redis 4 µs and 3 ops/s
    /// per player, HAProxy 8 µs, the generator 10 µs; held at 1,000–3,000
    /// players, broken at 4,000.
    fn costed_sweep() -> Sweep {
        let costed = |players: f64, held: bool| {
            let mut s = step(players, if held { 5.0 } else { 80.0 }, held);
            let us = [
                ("srv-1", 5.0),
                ("srv-2", 5.0),
                ("srv-3", 5.0),
                ("redis", 4.0),
                ("haproxy", 8.0),
                ("generator", 10.0),
            ];
            s.cpu_pct = us
                .iter()
                .map(|(n, us)| ((*n).to_owned(), us * players / 1e4))
                .collect();
            s.rss_mib = (1..=3)
                .map(|i| (format!("srv-{i}"), 10.0 + players * 20.0 / 1024.0))
                .collect();
            s
        };
        let three = Config {
            label: "3x-redis".into(),
            replicas: 3,
            state: "redis".into(),
            steps: vec![
                costed(1000.0, true),
                costed(2000.0, true),
                costed(3000.0, true),
                costed(4000.0, false),
            ],
            limit: Limit::Slo,
        };
        Sweep::new("t".into(), vec![three], Some(50.0))
    }

    fn machines(mut cost: CostModel) -> CostModel {
        cost.server.cores = Some(2.0);
        cost.server.memory_gib = Some(4.0);
        if let Some(lb) = cost.lb.as_mut() {
            lb.cores = Some(2.0);
        }
        cost.claims = vec![Claim {
            text: "3 servers → 22,500".into(),
            servers: 3.0,
            players: 22_500.0,
            cores: None,
            memory_gib: None,
        }];
        cost
    }

    #[test]
    fn hand_checked_plan_from_the_resource_model() {
        // Per replica at 70 %: CPU 1.4 cores ÷ 15 µs = 93,333; memory
        // (4 GiB × 0.7 − 10,240 KiB) ÷ 60 KiB = 48,762 → memory binds,
        // 100,000 players → 3 replicas. Redis: 300,000 ops/s ÷ 35,000 →
        // 9 shards; CPU 0.4 cores ÷ 0.7 → 1: ops bind. HAProxy 0.8 cores
        // ÷ 1.4 → 1. Monthly 3 × 25 + 9 × 100 + 20 = 995. The claim at
        // 85 %: memory (3,565,158.4 − 10,240) ÷ 60 = 59,248 per server,
        // × 3 = 177,744; 22,500 ÷ 177,744 = 0.13×.
        let plan = plan(&costed_sweep(), 100_000.0, 0.7, Some(&machines(cost()))).unwrap();
        let line = |what: &str| plan.lines.iter().find(|l| l.what == what).unwrap().clone();
        let per = line("players per replica (model)");
        assert_eq!(per.value, "48762");
        assert!(per.assumption.starts_with("binds: memory"), "{per:?}");
        assert!(per.assumption.contains("CPU 93333 players"), "{per:?}");
        assert_eq!(line("replicas").value, "3");
        assert_eq!(
            line("players per replica (shared-core sweep)").value,
            "1000"
        );
        let redis = line("Redis");
        assert_eq!(redis.value, "cluster of 9 shards");
        assert!(
            redis.assumption.starts_with("binds: Redis ops/s"),
            "{redis:?}"
        );
        assert_eq!(line("load balancers").value, "1");
        assert_eq!(plan.monthly, Some(995.0));
        assert!(plan.extrapolated);
        let claim = &plan.claims[0];
        assert_eq!(claim.model, 177_744.0);
        assert_eq!(claim.cells()[3], "0.13×");
        assert!(plan
            .markdown()
            .contains("| 3 servers → 22,500 | 22,500 | 177,744 | 0.13× |"));
        assert!(plan.section().contains("against the model"));
    }

    #[test]
    fn cpu_binds_when_memory_is_plenty_and_redis_cpu_can_bind_shards() {
        // 64 GiB: memory allows ~780,000; CPU 93,333 binds. Redis at 1 M
        // ops/s per shard: ops need 1 shard, CPU 4 µs × 400,000 = 1.6
        // cores ÷ 0.7 → 3 shards.
        let mut cost = machines(cost());
        cost.server.memory_gib = Some(64.0);
        cost.redis.ops_per_shard = 1e6;
        let plan = plan(&costed_sweep(), 400_000.0, 0.7, Some(&cost)).unwrap();
        let line = |what: &str| plan.lines.iter().find(|l| l.what == what).unwrap().clone();
        assert_eq!(line("players per replica (model)").value, "93333");
        assert!(line("players per replica (model)")
            .assumption
            .starts_with("binds: CPU"));
        assert_eq!(line("replicas").value, "5");
        assert_eq!(line("Redis").value, "cluster of 3 shards");
        assert!(line("Redis").assumption.starts_with("binds: CPU"));
    }

    #[test]
    fn hand_checked_plan() {
        // 2 replicas held 1,800 → 900 per replica; at 70 %: 630; 10,000
        // players → ceil(15.87) = 16 replicas, 625 each → p95 between
        // 500 (5 ms) and 1,000 (10 ms): 6.25 ms. Redis 3 ops/s/player →
        // 30,000 ops/s ÷ (50,000 × 0.7) → one shard. Cost 16×25 + 100 + 20.
        let plan = plan(&sweep(), 10_000.0, 0.7, Some(&cost())).unwrap();
        let value = |what: &str| {
            plan.lines
                .iter()
                .find(|l| l.what == what)
                .map(|l| l.value.clone())
                .unwrap()
        };
        assert_eq!(value("players per replica (measured)"), "900");
        assert_eq!(value("replicas"), "16");
        assert_eq!(value("p95 fan-out per replica"), "≈ 6.2 ms");
        assert_eq!(value("Redis ops/s"), "30000");
        assert_eq!(value("Redis"), "one instance");
        assert_eq!(plan.monthly, Some(520.0));
        assert_eq!(value("cost per 100 players"), "5.20 USD");
        assert!(plan.extrapolated, "10,000 is beyond twice 2,600");
    }

    #[test]
    fn shards_follow_redis_load_and_near_targets_are_not_extrapolations() {
        let plan = plan(&sweep(), 5_000.0, 0.7, Some(&cost())).unwrap();
        assert!(!plan.extrapolated);
        let big = super::plan(&sweep(), 100_000.0, 0.7, Some(&cost())).unwrap();
        let redis = big.lines.iter().find(|l| l.what == "Redis").unwrap();
        // 300,000 ops/s ÷ 35,000 → 9 shards.
        assert_eq!(redis.value, "cluster of 9 shards");
        assert!(big.table().contains("EXTRAPOLATION"));
    }

    #[test]
    fn without_a_real_limit_the_capacity_is_a_lower_bound() {
        let mut s = sweep();
        for c in &mut s.configs {
            c.limit = Limit::MaxPlayers;
        }
        let s = Sweep::new("t".into(), s.configs, Some(50.0));
        let plan = plan(&s, 1000.0, 0.7, None).unwrap();
        assert!(plan.lines[0].value.starts_with("≥ "), "{:?}", plan.lines[0]);
        assert_eq!(plan.monthly, None);
    }

    #[test]
    fn shipped_price_lists_load_and_price_a_hand_checked_plan() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        // 100,000 players on 2-core, 4 GiB servers → 3 replicas (memory,
        // as above); Redis 300,000 ops/s ÷ (80,000 × 0.7) → 6 shards; the
        // ALB is managed (one), Render's balancing is included (none).
        for (file, monthly) in [
            ("cost.render.toml", 3.0 * 85.0 + 6.0 * 32.0),
            ("cost.aws.toml", 3.0 * 49.64 + 6.0 * 108.77 + 16.43),
        ] {
            let prices = CostModel::load(&dir.join(file)).unwrap();
            let plan = plan(&costed_sweep(), 100_000.0, 0.7, Some(&prices)).unwrap();
            let got = plan.monthly.unwrap();
            assert!((got - monthly).abs() < 0.01, "{file}: {got} ≠ {monthly}");
        }
    }
}
