//! `tierlab plan`: from a capacity sweep, what a target player count needs
//! — replicas at a headroom, Redis ops/s and shards, the p95 to expect per
//! replica, and a monthly cost from a price file the user writes. Every
//! number comes with the assumption that drives it, and numbers beyond twice
//! the measured range say they are extrapolations.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::capacity::{Limit, Sweep};
use crate::html::escape;
use crate::ReportError;

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Priced {
    pub name: String,
    pub monthly: f64,
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
}

/// Redis configurations that reached a real limit, best per-replica first.
struct Measured {
    per_replica: f64,
    replicas: u32,
    lower_bound: bool,
    ops_per_player: Option<f64>,
    largest_load: f64,
    p95_at: Vec<(f64, f64)>,
}

fn measured(sweep: &Sweep) -> Result<Measured, ReportError> {
    let redis: Vec<_> = sweep
        .configs
        .iter()
        .zip(&sweep.verdicts)
        .filter(|(c, _)| c.state == "redis")
        .collect();
    let reached: Vec<_> = redis
        .iter()
        .filter(|(_, v)| {
            matches!(v.limit, Limit::Slo | Limit::Errors) && v.max_players_under_slo.is_some()
        })
        .collect();
    // The most replicas measured to a real limit carries the scaling loss
    // a larger deployment will have; without one, a lower bound.
    let (pick, lower_bound) = match reached.iter().max_by_key(|(c, _)| c.replicas) {
        Some(best) => (*best, false),
        None => (
            redis
                .iter()
                .filter(|(_, v)| v.max_players_under_slo.is_some())
                .max_by_key(|(c, _)| c.replicas)
                .ok_or_else(|| {
                    ReportError::Plan(
                        "the sweep has no redis configuration with a step under the SLO".into(),
                    )
                })?,
            true,
        ),
    };
    let (config, verdict) = pick;
    let max = verdict.max_players_under_slo.unwrap_or(0.0);
    let mut ratios: Vec<f64> = redis
        .iter()
        .flat_map(|(c, _)| c.steps.iter())
        .filter_map(|s| {
            s.redis_ops_per_s
                .filter(|_| s.players > 0.0)
                .map(|o| o / s.players)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let largest_load = sweep
        .configs
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| s.players))
        .fold(0.0, f64::max);
    let one_replica: Vec<(f64, f64)> = redis
        .iter()
        .find(|(c, _)| c.replicas == 1)
        .map(|(c, _)| {
            c.steps
                .iter()
                .map(|s| (s.players, s.fanout_p95_ms))
                .collect()
        })
        .unwrap_or_default();
    Ok(Measured {
        per_replica: max / f64::from(config.replicas),
        replicas: config.replicas,
        lower_bound,
        ops_per_player: ratios.get(ratios.len() / 2).copied(),
        largest_load,
        p95_at: one_replica,
    })
}

/// p95 at `players` on one replica, interpolated between measured steps.
fn p95_at(curve: &[(f64, f64)], players: f64) -> Option<f64> {
    let below = curve
        .iter()
        .filter(|p| p.0 <= players)
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    let above = curve
        .iter()
        .filter(|p| p.0 >= players)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    Some(match above {
        Some(a) if a.0 > below.0 => {
            below.1 + (a.1 - below.1) * (players - below.0) / (a.0 - below.0)
        }
        _ => below.1,
    })
}

/// The plan for `players` at `headroom` (0..1: the share of measured
/// capacity a deployment may use). Long because it is the plan read top to
/// bottom, one `Line` per figure with the assumption it rests on.
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
    let m = measured(sweep)?;
    let mut lines = Vec::new();
    let replicas = replica_lines(&mut lines, &m, players, headroom);
    let shards = m.ops_per_player.map_or(1.0, |ops| {
        redis_lines(&mut lines, ops * players, ops, players, headroom, cost)
    });
    let monthly = cost.map(|c| {
        replicas * c.server.monthly
            + shards * c.redis.monthly
            + c.lb.as_ref().map_or(0.0, |l| l.monthly)
    });
    if let (Some(c), Some(total)) = (cost, monthly) {
        cost_lines(&mut lines, c, total, players, (replicas, shards));
    }
    Ok(Plan {
        players,
        lines,
        extrapolated: players > 2.0 * m.largest_load,
        monthly,
    })
}

/// The measured players per replica and the replicas `players` need (returned).
fn replica_lines(lines: &mut Vec<Line>, m: &Measured, players: f64, headroom: f64) -> f64 {
    let usable = m.per_replica * headroom;
    let replicas = (players / usable).ceil().max(1.0);
    lines.push(Line {
        what: "players per replica (measured)".into(),
        value: format!(
            "{}{:.0}",
            if m.lower_bound { "≥ " } else { "" },
            m.per_replica
        ),
        assumption: format!(
            "max players under the SLO with {} replica(s) ÷ {}; {}",
            m.replicas,
            m.replicas,
            if m.lower_bound {
                "no step broke the SLO, so this is a lower bound"
            } else {
                "includes the scaling loss measured at that size"
            }
        ),
    });
    lines.push(Line {
        what: "replicas".into(),
        value: format!("{replicas:.0}"),
        assumption: format!("{players:.0} players ÷ ({:.0} per replica × {:.0} % headroom); assumes replicas keep scaling as measured", m.per_replica, headroom * 100.0),
    });
    let per_replica_load = players / replicas;
    if let Some(p95) = p95_at(&m.p95_at, per_replica_load) {
        lines.push(Line {
            what: "p95 fan-out per replica".into(),
            value: format!("≈ {p95:.1} ms"),
            assumption: format!("measured on one replica at {per_replica_load:.0} players (interpolated); Redis and network not saturated"),
        });
    }
    replicas
}

/// Redis's load at `total` ops/s and, with prices, the shards it needs (returned).
fn redis_lines(
    lines: &mut Vec<Line>,
    total: f64,
    ops: f64,
    players: f64,
    headroom: f64,
    cost: Option<&CostModel>,
) -> f64 {
    lines.push(Line {
        what: "Redis ops/s".into(),
        value: format!("{total:.0}"),
        assumption: format!(
            "{ops:.2} ops/s per player (median of the sweep's steps) × {players:.0}"
        ),
    });
    let Some(cost) = cost else { return 1.0 };
    let shards = (total / (cost.redis.ops_per_shard * headroom))
        .ceil()
        .max(1.0);
    lines.push(Line {
        what: "Redis".into(),
        value: if shards <= 1.0 { "one instance".into() } else { format!("cluster of {shards:.0} shards") },
        assumption: format!("{:.0} ops/s per shard (cost file) at {:.0} % headroom; rooms spread evenly over shards", cost.redis.ops_per_shard, headroom * 100.0),
    });
    shards
}

/// The month's bill for `(replicas, shards)` and what 100 players cost.
fn cost_lines(
    lines: &mut Vec<Line>,
    c: &CostModel,
    total: f64,
    players: f64,
    machines: (f64, f64),
) {
    let (replicas, shards) = machines;
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
                .map_or_else(String::new, |l| format!(" + {} ({:.0})", l.name, l.monthly))
        ),
    });
    lines.push(Line {
        what: "cost per 100 players".into(),
        value: format!("{:.2} {}", total * 100.0 / players, c.currency),
        assumption: "monthly cost ÷ players × 100".into(),
    });
}

impl Plan {
    pub fn table(&self) -> String {
        let mut out = format!(
            "Plan for {:.0} players{}\n",
            self.players,
            if self.extrapolated {
                " — EXTRAPOLATION: beyond twice the largest load measured"
            } else {
                ""
            }
        );
        for line in &self.lines {
            let _ = writeln!(
                out,
                "  {:<26} {:>18}   {}",
                line.what, line.value, line.assumption
            );
        }
        out
    }

    /// The plan as a section of a page.
    pub fn section(&self) -> String {
        let mut html = format!("<h2>Plan for {:.0} players</h2>", self.players);
        if self.extrapolated {
            html.push_str("<p class=\"verdict\"><b>Extrapolation</b>: the target is beyond twice the largest load measured.</p>");
        }
        html.push_str("<table><tr><th>Figure</th><th>Value</th><th>Rests on</th></tr>");
        for l in &self.lines {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&l.what),
                escape(&l.value),
                escape(&l.assumption)
            );
        }
        html.push_str("</table>");
        html
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::{Config, Step};

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
            },
            redis: RedisPrice {
                name: "Redis".into(),
                monthly: 100.0,
                ops_per_shard: 50_000.0,
            },
            lb: Some(Priced {
                name: "LB".into(),
                monthly: 20.0,
            }),
        }
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
        // 10,000 players → 16 replicas and one Redis shard (as above).
        for (file, monthly) in [
            ("cost.render.toml", 16.0 * 85.0 + 32.0),
            ("cost.aws.toml", 16.0 * 49.64 + 108.77 + 16.43),
        ] {
            let prices = CostModel::load(&dir.join(file)).unwrap();
            let plan = plan(&sweep(), 10_000.0, 0.7, Some(&prices)).unwrap();
            let got = plan.monthly.unwrap();
            assert!((got - monthly).abs() < 0.01, "{file}: {got} ≠ {monthly}");
        }
    }
}
