//! What a player costs, per component: from the steps a configuration
//! held, a least-squares line of each role's CPU (cores), memory (KiB) and
//! Redis commands (ops/s) against players, with the slope's 95 % interval
//! and whether the cost grows faster than linearly; and what one replica's
//! costs predict other configurations on the same cores hold, beside what
//! they were measured to hold. The plan (`crate::plan`) projects these
//! costs onto machines a team buys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Config, Limit, Step};
use crate::bottleneck::Role;

/// A slope of the upper half of the steps this many times the lower half's
/// reads as growing faster than linearly: a 2-core box's noise moves a
/// half's slope by about a tenth, so a quarter is a real bend.
pub const SUPERLINEAR: f64 = 1.25;

/// A straight line `base + per_player × players` through measured points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// The slope: what one more player costs.
    pub per_player: f64,
    /// The intercept: what the process costs with no players (idle).
    pub base: f64,
    /// Half the slope's 95 % confidence interval, % of the slope; `None`
    /// with two points (a line through two points has no spread).
    pub spread_pct: Option<f64>,
    /// The upper half's slope ÷ the lower half's (four points or more).
    pub growth: Option<f64>,
    pub points: usize,
}

impl Fit {
    /// The line through `points` (players, cost); `None` with fewer than
    /// two distinct player counts.
    pub fn of(points: &[(f64, f64)]) -> Option<Fit> {
        let (per_player, base, sxx, n) = line(points)?;
        let spread_pct = (n > 2 && per_player != 0.0).then(|| {
            let residual: f64 = points
                .iter()
                .map(|(x, y)| (y - base - per_player * x).powi(2))
                .sum();
            let se = (residual / (n - 2) as f64 / sxx).sqrt();
            t95(n - 2) * se / per_player.abs() * 100.0
        });
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let half = sorted.len() / 2;
        let growth = (sorted.len() >= 4)
            .then(|| {
                let lower = line(&sorted[..half])?.0;
                let upper = line(&sorted[sorted.len() - half..])?.0;
                (lower > 0.0).then(|| upper / lower)
            })
            .flatten();
        Some(Fit {
            per_player,
            base,
            spread_pct,
            growth,
            points: n,
        })
    }

    /// The cost at `players`.
    pub fn at(&self, players: f64) -> f64 {
        self.base + self.per_player * players
    }

    /// Whether the upper steps cost more per player than the lower ones by
    /// more than [`SUPERLINEAR`].
    pub fn superlinear(&self) -> bool {
        self.growth.is_some_and(|g| g > SUPERLINEAR)
    }

    /// "slope ± spread %" with a word when the cost bends upward.
    pub fn text(&self, scale: f64, digits: usize) -> String {
        let spread = self
            .spread_pct
            .map_or_else(|| " (2 points)".into(), |s| format!(" ± {s:.0} %"));
        // A cost per player that falls as players grow (work batched per
        // wake-up) is worth a word too: the line then overstates the
        // marginal cost at the top of the range and beyond it.
        let bend = match self.growth {
            Some(g) if g > SUPERLINEAR => format!(", grows faster than linearly (×{g:.2})"),
            Some(g) if g < 1.0 / SUPERLINEAR => {
                format!(", falls per player as players grow (×{g:.2})")
            }
            _ => String::new(),
        };
        format!("{:.digits$}{spread}{bend}", self.per_player * scale)
    }
}

/// Slope, intercept, Σ(x − x̄)² and the number of points.
fn line(points: &[(f64, f64)]) -> Option<(f64, f64, f64, usize)> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let mean = |f: fn(&(f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / n as f64;
    let (mx, my) = (mean(|p| p.0), mean(|p| p.1));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    Some((slope, my - slope * mx, sxx, n))
}

/// Student's t for a two-sided 95 % interval with `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const T: [f64; 20] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    ];
    match df {
        0 => f64::INFINITY,
        d if d <= T.len() => T[d - 1],
        d if d <= 30 => 2.06,
        _ => 1.96,
    }
}

/// What one role of the topology costs per player, over its processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub role: Role,
    /// Processes of the role (replicas, shards).
    pub processes: u32,
    /// Cores (all the role's processes together) against players: the
    /// slope is core-seconds per player-second.
    pub cpu_cores: Fit,
    /// Median over the steps of the role's CPU per delivered event, µs.
    pub cpu_us_per_delivery: Option<f64>,
    /// Resident memory of the role's processes together, KiB, against
    /// players: the slope is KiB per connection.
    pub memory_kib: Option<Fit>,
    /// Redis: commands per second against players.
    pub ops_per_s: Option<Fit>,
}

/// Each role's costs, fitted over the steps one configuration held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceModel {
    pub label: String,
    pub replicas: u32,
    pub state: String,
    pub costs: Vec<Cost>,
}

/// The roles a model has, in the order tables show them.
const ROLES: [Role; 4] = [Role::Replicas, Role::Redis, Role::Haproxy, Role::Generator];

impl ResourceModel {
    /// The model of `config` from its held steps; `None` with fewer than
    /// two (a line needs two points).
    pub fn of(config: &Config) -> Option<ResourceModel> {
        let held: Vec<&Step> = config
            .steps
            .iter()
            .filter(|s| s.held && s.players > 0.0)
            .collect();
        if held.len() < 2 {
            return None;
        }
        let costs = ROLES.iter().filter_map(|&r| cost(r, &held)).collect();
        Some(ResourceModel {
            label: config.label.clone(),
            replicas: config.replicas,
            state: config.state.clone(),
            costs,
        })
    }

    pub fn cost(&self, role: Role) -> Option<&Cost> {
        self.costs.iter().find(|c| c.role == role)
    }

    /// Every role's CPU together, cores, at `players` when the replicas'
    /// idle cost is that of `replicas` of them.
    fn cores_at(&self, players: f64, replicas: u32) -> f64 {
        self.costs
            .iter()
            .map(|c| {
                let base = if c.role == Role::Replicas {
                    c.cpu_cores.base / f64::from(c.processes.max(1)) * f64::from(replicas)
                } else {
                    c.cpu_cores.base
                };
                base + c.cpu_cores.per_player * players
            })
            .sum()
    }

    /// Players at which every role's CPU together reaches `cores` with
    /// `replicas` replicas: the shared-core capacity the model predicts.
    pub fn shared_core_players(&self, cores: f64, replicas: u32) -> Option<f64> {
        let per_player: f64 = self.costs.iter().map(|c| c.cpu_cores.per_player).sum();
        let idle = self.cores_at(0.0, replicas);
        (per_player > 0.0).then(|| ((cores - idle) / per_player).max(0.0))
    }
}

/// The cost of `role` over `held` steps; `None` when no step ran it.
fn cost(role: Role, held: &[&Step]) -> Option<Cost> {
    let of_role = |values: &BTreeMap<String, f64>| -> Option<f64> {
        let mine: Vec<f64> = values
            .iter()
            .filter(|(name, _)| Role::of(name) == role)
            .map(|(_, v)| *v)
            .collect();
        (!mine.is_empty()).then(|| mine.iter().sum())
    };
    let cpu: Vec<(f64, f64)> = held
        .iter()
        .filter_map(|s| of_role(&s.cpu_pct).map(|pct| (s.players, pct / 100.0)))
        .collect();
    let cpu_cores = Fit::of(&cpu)?;
    let processes = held
        .iter()
        .map(|s| s.cpu_pct.keys().filter(|n| Role::of(n) == role).count())
        .max()
        .unwrap_or(0) as u32;
    let mut per_delivery: Vec<f64> = held
        .iter()
        .filter(|s| s.throughput > 0.0)
        .filter_map(|s| of_role(&s.cpu_pct).map(|pct| pct / 100.0 * 1e6 / s.throughput))
        .collect();
    let memory: Vec<(f64, f64)> = held
        .iter()
        .filter_map(|s| of_role(&s.rss_mib).map(|mib| (s.players, mib * 1024.0)))
        .collect();
    let ops: Vec<(f64, f64)> = held
        .iter()
        .filter_map(|s| s.redis_ops_per_s.map(|o| (s.players, o)))
        .collect();
    Some(Cost {
        role,
        processes,
        cpu_cores,
        cpu_us_per_delivery: tierlab_record::median(&mut per_delivery),
        memory_kib: Fit::of(&memory),
        ops_per_s: (role == Role::Redis).then(|| Fit::of(&ops)).flatten(),
    })
}

/// The columns of [`ResourceModel::rows`].
pub const COST_COLUMNS: [&str; 7] = [
    "configuration",
    "component",
    "processes",
    "CPU, µs per player-second",
    "CPU, µs per delivered event",
    "memory, KiB per connection",
    "Redis ops/s per player",
];

impl ResourceModel {
    /// One row per role, in [`COST_COLUMNS`] order.
    pub fn rows(&self) -> Vec<[String; 7]> {
        let dash = || "—".to_owned();
        self.costs
            .iter()
            .map(|c| {
                [
                    self.label.clone(),
                    c.role.name().to_owned(),
                    c.processes.to_string(),
                    c.cpu_cores.text(1e6, 1),
                    c.cpu_us_per_delivery
                        .map_or_else(dash, |u| format!("{u:.1}")),
                    c.memory_kib
                        .filter(|_| c.role != Role::Generator)
                        .map_or_else(dash, |m| m.text(1.0, 1)),
                    c.ops_per_s.map_or_else(dash, |o| o.text(1.0, 2)),
                ]
            })
            .collect()
    }
}

/// What one replica's model predicts a configuration on the same cores
/// holds, beside what it was measured to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub label: String,
    /// The configuration whose model predicted it.
    pub from: String,
    pub predicted: f64,
    pub measured: f64,
    /// (predicted − measured) ÷ measured, %.
    pub error_pct: f64,
}

/// The columns of [`Prediction::row`].
pub const PREDICTION_COLUMNS: [&str; 5] = [
    "configuration",
    "predicted from",
    "predicted players",
    "measured players",
    "error",
];

impl Prediction {
    pub fn row(&self) -> [String; 5] {
        [
            self.label.clone(),
            self.from.clone(),
            format!("{:.0}", self.predicted),
            format!("{:.0}", self.measured),
            format!("{:+.0} %", self.error_pct),
        ]
    }
}

/// For each state, the 1-replica configuration's model predicts every
/// configuration of that state that reached a real limit: the cores the
/// 1-replica sweep had busy when it last held are the budget, the other
/// configurations' replicas add their idle cost, and the players are
/// where every role's CPU together fills that budget. The 1-replica row
/// is the model against its own sweep (the line's own error).
pub fn predictions(configs: &[Config], models: &[ResourceModel]) -> Vec<Prediction> {
    let reached = |c: &Config| matches!(c.limit, Limit::Slo | Limit::Errors);
    let mut out = Vec::new();
    for one in configs.iter().filter(|c| c.replicas == 1 && reached(c)) {
        let Some(model) = models.iter().find(|m| m.label == one.label) else {
            continue;
        };
        let Some(budget) = one.last_pass().map(busy_cores) else {
            continue;
        };
        for c in configs
            .iter()
            .filter(|c| c.state == one.state && reached(c))
        {
            let (Some(measured), Some(predicted)) = (
                c.max_players_under_slo(),
                model.shared_core_players(budget, c.replicas),
            ) else {
                continue;
            };
            out.push(Prediction {
                label: c.label.clone(),
                from: one.label.clone(),
                predicted,
                measured,
                error_pct: (predicted - measured) / measured * 100.0,
            });
        }
    }
    out
}

/// Cores every modelled role used together in `step`.
fn busy_cores(step: &Step) -> f64 {
    step.cpu_pct
        .iter()
        .filter(|(name, _)| ROLES.contains(&Role::of(name)))
        .map(|(_, pct)| pct / 100.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::sample_step;

    #[test]
    fn a_line_through_exact_points_has_no_spread_and_no_bend() {
        // y = 10 + 2x at x = 1..=5.
        let points: Vec<_> = (1..=5)
            .map(|x| (f64::from(x), 10.0 + 2.0 * f64::from(x)))
            .collect();
        let fit = Fit::of(&points).unwrap();
        assert!((fit.per_player - 2.0).abs() < 1e-12 && (fit.base - 10.0).abs() < 1e-9);
        assert_eq!(fit.spread_pct, Some(0.0));
        assert!((fit.growth.unwrap() - 1.0).abs() < 1e-12 && !fit.superlinear());
        assert_eq!(fit.at(10.0), 30.0);
    }

    #[test]
    fn the_spread_is_the_slopes_95_percent_interval_by_hand() {
        // x 1,2,3,4; y 1,3,2,4: x̄ 2.5, ȳ 2.5, Sxx 5, Sxy 4 → slope 0.8,
        // base 0.5; residuals −0.3, 0.9, −0.9, 0.3 → SSE 1.8, s² 0.9,
        // se √(0.9/5) = 0.42426; t(2) 4.303 → ±1.8256 = 228.2 % of 0.8.
        let fit = Fit::of(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)]).unwrap();
        assert!((fit.per_player - 0.8).abs() < 1e-12);
        assert!((fit.base - 0.5).abs() < 1e-12);
        assert!((fit.spread_pct.unwrap() - 228.2).abs() < 0.1, "{fit:?}");
        // Halves: (1,1)-(2,3) slope 2, (3,2)-(4,4) slope 2 → growth 1.
        assert_eq!(fit.growth, Some(1.0));
    }

    #[test]
    fn a_cost_that_bends_upward_says_so() {
        // y = x² at 1..=4: lower half slope 3, upper half 7 → ×2.33.
        let fit = Fit::of(&[(1.0, 1.0), (2.0, 4.0), (3.0, 9.0), (4.0, 16.0)]).unwrap();
        assert!((fit.growth.unwrap() - 7.0 / 3.0).abs() < 1e-12);
        assert!(fit.superlinear());
        assert!(
            fit.text(1.0, 1).contains("faster than linearly (×2.33)"),
            "{}",
            fit.text(1.0, 1)
        );
        // y = √x-like: slopes 3 then 1 → ×0.33, said the other way.
        let falls = Fit::of(&[(1.0, 0.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0)]).unwrap();
        assert!(!falls.superlinear());
        assert!(falls
            .text(1.0, 1)
            .contains("falls per player as players grow (×0.33)"));
        assert!(Fit::of(&[(1.0, 1.0)]).is_none());
        assert!(Fit::of(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
    }

    /// Steps where srv-1 uses 20 µs of CPU per player-second, Redis 5 µs,
    /// HAProxy 10 µs, the generator 15 µs, each from zero, and srv-1
    /// holds 10 MiB plus 10 KiB per player.
    fn costed(players: f64, held: bool) -> Step {
        let mut s = sample_step(players, 5.0, held);
        s.cpu_pct = [
            ("srv-1", 20.0),
            ("redis", 5.0),
            ("haproxy", 10.0),
            ("generator", 15.0),
        ]
        .into_iter()
        .map(|(n, us)| (n.to_owned(), us * players / 1e4))
        .collect();
        s.rss_mib = [("srv-1".to_owned(), 10.0 + 10.0 * players / 1024.0)].into();
        s
    }

    fn config(replicas: u32, held: &[f64], failed: f64) -> Config {
        let mut steps: Vec<Step> = held.iter().map(|&p| costed(p, true)).collect();
        steps.push(costed(failed, false));
        Config {
            label: format!("{replicas}x-redis"),
            replicas,
            state: "redis".into(),
            steps,
            limit: Limit::Slo,
        }
    }

    #[test]
    fn a_model_is_each_roles_cost_per_player_by_hand() {
        let model = ResourceModel::of(&config(1, &[1000.0, 2000.0, 3000.0], 4000.0)).unwrap();
        let replicas = model.cost(Role::Replicas).unwrap();
        assert!((replicas.cpu_cores.per_player * 1e6 - 20.0).abs() < 1e-9);
        // 20 µs per player-second ÷ 10 deliveries per player-second.
        assert!((replicas.cpu_us_per_delivery.unwrap() - 2.0).abs() < 1e-9);
        let memory = replicas.memory_kib.unwrap();
        assert!((memory.per_player - 10.0).abs() < 1e-9 && (memory.base - 10240.0).abs() < 1e-6);
        // sample_step: 3 Redis ops/s per player.
        let ops = model.cost(Role::Redis).unwrap().ops_per_s.unwrap();
        assert!((ops.per_player - 3.0).abs() < 1e-9);
        assert_eq!(model.costs.len(), 4);
        let row = &model.rows()[0];
        assert_eq!(row[3], "20.0 ± 0 %");
        assert_eq!(row[5], "10.0 ± 0 %");
        // The last step failed: a model rests on held steps only.
        assert_eq!(replicas.cpu_cores.points, 3);
    }

    #[test]
    fn one_replica_predicts_more_replicas_on_the_same_cores_by_hand() {
        // 50 µs per player-second in all; the 1-replica sweep last held at
        // 3,000 players: 0.15 cores busy → predicts 3,000 for any replica
        // count (no idle cost). The 2-replica sweep held 2,000: +50 %.
        let one = config(1, &[1000.0, 2000.0, 3000.0], 4000.0);
        let two = config(2, &[1000.0, 2000.0], 2500.0);
        let models: Vec<_> = [&one, &two]
            .iter()
            .filter_map(|c| ResourceModel::of(c))
            .collect();
        let p = predictions(&[one, two], &models);
        assert_eq!(p.len(), 2);
        assert!((p[0].predicted - 3000.0).abs() < 1e-6 && p[0].error_pct.abs() < 1e-6);
        assert_eq!(
            (p[1].label.as_str(), p[1].from.as_str()),
            ("2x-redis", "1x-redis")
        );
        assert!((p[1].predicted - 3000.0).abs() < 1e-6);
        assert_eq!(p[1].row()[4], "+50 %");
    }

    #[test]
    fn idle_replicas_take_cores_from_the_players() {
        // Replicas 0.1 cores idle each, plus 100 µs per player-second:
        // 1 core budget, 2 replicas → (1 − 0.2) ÷ 0.0001 = 8,000 players.
        let fit = |base, per| Fit {
            per_player: per,
            base,
            spread_pct: None,
            growth: None,
            points: 2,
        };
        let model = ResourceModel {
            label: "1x".into(),
            replicas: 1,
            state: "redis".into(),
            costs: vec![Cost {
                role: Role::Replicas,
                processes: 1,
                cpu_cores: fit(0.1, 1e-4),
                cpu_us_per_delivery: None,
                memory_kib: None,
                ops_per_s: None,
            }],
        };
        assert!((model.shared_core_players(1.0, 2).unwrap() - 8000.0).abs() < 1e-6);
    }
}
