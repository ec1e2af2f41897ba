//! The plan built on what a player costs (`capacity::ResourceModel`): for
//! the machine types of the price file (cores, memory, connections), how
//! many players one replica holds and which resource binds it, how many
//! Redis shards the players' commands and CPU need, how many load
//! balancers, and the team's own claims beside the model's answer. Used
//! when the price file names the server's cores; the shared-core sweep's
//! players per replica stays beside it as evidence.

use crate::bottleneck::{Role, CORES_FULL};
use crate::capacity::{Cost, Fit, ResourceModel, Sweep};
use crate::ReportError;

use super::{CostModel, Line, Priced};

/// The resource that limits a machine first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binds {
    Cpu,
    Memory,
    Connections,
    OpsPerS,
}

impl Binds {
    pub fn name(self) -> &'static str {
        match self {
            Binds::Cpu => "CPU",
            Binds::Memory => "memory",
            Binds::Connections => "connections per process",
            Binds::OpsPerS => "Redis ops/s",
        }
    }
}

/// A team's claim checked against the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCheck {
    pub text: String,
    pub claimed: f64,
    /// What the model says the claim's servers hold.
    pub model: f64,
    /// claimed ÷ model.
    pub ratio: f64,
}

impl ClaimCheck {
    /// Claim, claimed players, the model's answer, the ratio.
    pub fn cells(&self) -> [String; 4] {
        [
            self.text.clone(),
            crate::report::thousands(self.claimed),
            crate::report::thousands(self.model),
            format!("{:.2}×", self.ratio),
        ]
    }

    pub fn sentence(&self) -> String {
        format!(
            "\"{}\": the model says {} ({:.2}× claimed ÷ model, cores {:.0} % busy)",
            self.text,
            crate::report::thousands(self.model),
            self.ratio,
            CORES_FULL * 100.0
        )
    }
}

/// The model the plan rests on: the Redis configuration with the most
/// replicas (its replica cost carries the cross-replica fan-out a larger
/// deployment has).
pub fn basis(sweep: &Sweep) -> Result<&ResourceModel, ReportError> {
    sweep
        .models
        .iter()
        .filter(|m| m.state == "redis" && m.cost(Role::Replicas).is_some())
        .max_by_key(|m| m.replicas)
        .ok_or_else(|| {
            ReportError::Plan(
                "the sweep has no redis configuration that held two steps: no per-player cost to plan on (measure again with `tierlab capacity`)"
                    .into(),
            )
        })
}

/// What one replica on `server` holds using `share` of each resource, and
/// what binds first, with each resource's bound.
pub fn replica_bounds(model: &ResourceModel, server: &Priced, share: f64) -> Bounds {
    let replicas = model.cost(Role::Replicas);
    let per_process = |fit: &Fit, c: &Cost| fit.base / f64::from(c.processes.max(1));
    let mut bounds = Vec::new();
    if let (Some(c), Some(cores)) = (replicas, server.cores) {
        let cpu = &c.cpu_cores;
        if cpu.per_player > 0.0 {
            bounds.push((
                Binds::Cpu,
                (cores * share - per_process(cpu, c)) / cpu.per_player,
            ));
        }
    }
    if let (Some(c), Some(gib)) = (replicas, server.memory_gib) {
        if let Some(m) = c.memory_kib.filter(|m| m.per_player > 0.0) {
            let kib = gib * 1024.0 * 1024.0 * share;
            bounds.push((Binds::Memory, (kib - per_process(&m, c)) / m.per_player));
        }
    }
    if let Some(n) = server.connections {
        bounds.push((Binds::Connections, n * share));
    }
    Bounds(
        bounds
            .into_iter()
            .map(|(b, p)| (b, p.max(0.0).floor()))
            .collect(),
    )
}

/// Players per resource; the smallest binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds(pub Vec<(Binds, f64)>);

impl Bounds {
    pub fn binding(&self) -> Option<(Binds, f64)> {
        self.0.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn get(&self, what: Binds) -> Option<f64> {
        self.0.iter().find(|b| b.0 == what).map(|b| b.1)
    }
}

/// The replica lines; returns the replicas `players` need.
pub fn replica_lines(
    lines: &mut Vec<Line>,
    model: &ResourceModel,
    server: &Priced,
    players: f64,
    headroom: f64,
) -> Result<f64, ReportError> {
    let bounds = replica_bounds(model, server, headroom);
    let (binds, per_replica) = bounds
        .binding()
        .filter(|b| b.1 >= 1.0)
        .ok_or_else(|| ReportError::Plan(format!(
            "one replica on {} holds no player at {:.0} % headroom: the machine is smaller than a replica's idle cost",
            server.name, headroom * 100.0
        )))?;
    let replicas = (players / per_replica).ceil().max(1.0);
    let cost = model.cost(Role::Replicas);
    let mut rests = vec![format!(
        "binds: {} — at {:.0} % of {}",
        binds.name(),
        headroom * 100.0,
        server.name
    )];
    if let (Some(c), Some(cpu)) = (cost, bounds.get(Binds::Cpu)) {
        rests.push(format!(
            "CPU {cpu:.0} players ({} µs of replica CPU per player-second over {} held steps of {})",
            c.cpu_cores.text(1e6, 1),
            c.cpu_cores.points,
            model.label
        ));
    }
    if let (Some(m), Some(mem)) = (cost.and_then(|c| c.memory_kib), bounds.get(Binds::Memory)) {
        rests.push(format!(
            "memory {mem:.0} players ({} KiB per connection)",
            m.text(1.0, 1)
        ));
    }
    if let Some(conn) = bounds.get(Binds::Connections) {
        rests.push(format!("connections {conn:.0}"));
    }
    lines.push(Line {
        what: "players per replica (model)".into(),
        value: format!("{per_replica:.0}"),
        assumption: rests.join("; "),
    });
    lines.push(Line {
        what: "replicas".into(),
        value: format!("{replicas:.0}"),
        assumption: format!(
            "{players:.0} players ÷ {per_replica:.0} per replica; a replica runs a worker per core and each costs what it cost in the sweep"
        ),
    });
    Ok(replicas)
}

/// The Redis lines; returns the shards `players` need.
pub fn redis_lines(
    lines: &mut Vec<Line>,
    model: &ResourceModel,
    players: f64,
    headroom: f64,
    cost: &CostModel,
) -> f64 {
    let Some(redis) = model.cost(Role::Redis) else {
        return 1.0;
    };
    let ops = redis.ops_per_s.map(|o| o.per_player * players);
    let cpu = redis.cpu_cores.per_player * players;
    if let (Some(total), Some(fit)) = (ops, redis.ops_per_s) {
        lines.push(Line {
            what: "Redis ops/s".into(),
            value: format!("{total:.0}"),
            assumption: format!("{} ops/s per player × {players:.0}", fit.text(1.0, 2)),
        });
    }
    // A shard runs commands on one thread: one core is its CPU.
    let by_ops = ops.map_or(0.0, |o| (o / (cost.redis.ops_per_shard * headroom)).ceil());
    let by_cpu = (cpu / headroom).ceil();
    let (shards, binds) = if by_ops >= by_cpu {
        (by_ops, Binds::OpsPerS)
    } else {
        (by_cpu, Binds::Cpu)
    };
    let shards = shards.max(1.0);
    lines.push(Line {
        what: "Redis".into(),
        value: if shards <= 1.0 { "one instance".into() } else { format!("cluster of {shards:.0} shards") },
        assumption: format!(
            "binds: {} — ops/s need {by_ops:.0} at {:.0} ops/s per shard (cost file), CPU needs {by_cpu:.0} at {} µs per player-second on one thread per shard, both at {:.0} % headroom; rooms spread evenly over shards",
            binds.name(),
            cost.redis.ops_per_shard,
            redis.cpu_cores.text(1e6, 2),
            headroom * 100.0
        ),
    });
    shards
}

/// The load balancer lines; returns how many `players` need.
pub fn lb_lines(
    lines: &mut Vec<Line>,
    model: &ResourceModel,
    players: f64,
    headroom: f64,
    lb: &Priced,
) -> f64 {
    let (Some(cores), Some(haproxy)) = (lb.cores, model.cost(Role::Haproxy)) else {
        lines.push(Line {
            what: "load balancers".into(),
            value: "1".into(),
            assumption: format!(
                "{} is managed: its own capacity, not measured here",
                lb.name
            ),
        });
        return 1.0;
    };
    let need = haproxy.cpu_cores.per_player * players;
    let lbs = (need / (cores * headroom)).ceil().max(1.0);
    lines.push(Line {
        what: "load balancers".into(),
        value: format!("{lbs:.0}"),
        assumption: format!(
            "binds: CPU — {} µs of HAProxy CPU per player-second × {players:.0} = {need:.2} cores, on {cores:.0} cores each at {:.0} % headroom (a thread per core)",
            haproxy.cpu_cores.text(1e6, 1),
            headroom * 100.0
        ),
    });
    lbs
}

/// Each claim of the price file against what the model says its servers
/// hold with their cores as full as the sweep counts full
/// ([`CORES_FULL`]).
pub fn claims(model: &ResourceModel, cost: &CostModel) -> Vec<ClaimCheck> {
    cost.claims
        .iter()
        .map(|c| {
            let server = Priced {
                cores: c.cores.or(cost.server.cores),
                memory_gib: c.memory_gib.or(cost.server.memory_gib),
                ..cost.server.clone()
            };
            let per_replica = replica_bounds(model, &server, CORES_FULL)
                .binding()
                .map_or(0.0, |b| b.1);
            let model = c.servers * per_replica;
            ClaimCheck {
                text: c.text.clone(),
                claimed: c.players,
                model,
                ratio: if model > 0.0 {
                    c.players / model
                } else {
                    f64::INFINITY
                },
            }
        })
        .collect()
}
