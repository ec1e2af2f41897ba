//! The plan from the players per replica the shared-core sweep measured:
//! what `tierlab plan` rests on when the price file does not name the
//! server's cores — players per replica from the largest Redis
//! configuration that reached a real limit, the p95 one replica showed at
//! that load, and Redis shards from the sweep's ops per player.

use crate::capacity::{Limit, Sweep};
use crate::ReportError;

use super::{cost_lines, CostModel, Line, Plan};

/// Redis configurations that reached a real limit, best per-replica first.
pub(super) struct Measured {
    pub per_replica: f64,
    pub replicas: u32,
    pub lower_bound: bool,
    ops_per_player: Option<f64>,
    p95_at: Vec<(f64, f64)>,
}

pub(super) fn measured(sweep: &Sweep) -> Result<Measured, ReportError> {
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

/// The plan from the players per replica the shared-core sweep measured.
pub(super) fn shared_core_plan(
    sweep: &Sweep,
    players: f64,
    headroom: f64,
    cost: Option<&CostModel>,
    extrapolated: bool,
) -> Result<Plan, ReportError> {
    let m = measured(sweep)?;
    let mut lines = Vec::new();
    let replicas = replica_lines(&mut lines, &m, players, headroom);
    let shards = m.ops_per_player.map_or(1.0, |ops| {
        redis_lines(&mut lines, ops * players, ops, players, headroom, cost)
    });
    // One load balancer when the price file has one: the shared-core
    // sweep measures nothing that would need more.
    let monthly = cost.map(|c| {
        let lbs = f64::from(u8::from(c.lb.is_some()));
        cost_lines(&mut lines, c, players, (replicas, shards, lbs))
    });
    Ok(Plan {
        players,
        lines,
        extrapolated,
        monthly,
        claims: Vec::new(),
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
