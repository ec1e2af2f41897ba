//! Faults a scenario schedules (`[[faults]]`): what happens, to which part of
//! the topology, when, and for how long. Parsing only; `drill.rs` carries
//! them out. Every mistake is refused before anything starts, naming the
//! fault (`faults[1] "cut srv-2": ...`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tierlab_record::setup::FaultKind;

/// Which way data flows through a link's proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the side that connects (players, a replica) to the side it reaches.
    Upstream,
    /// Back.
    Downstream,
    #[default]
    Both,
}

/// A part of the topology a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// 1-based, as replicas are named `srv-1`…
    Replica(u32),
    Replicas,
    Redis,
    Lb,
    /// Between replica N and Redis.
    ReplicaToRedis(u32),
    /// Between the players (or HAProxy) and replica N.
    PlayersToReplica(u32),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let replica = |t: &str| -> Result<u32, String> {
            let t = t.trim();
            let n = t.strip_prefix("srv-").unwrap_or(t);
            n.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`{t}` is not a replica (srv-1, srv-2, … or 1, 2, …)"))
        };
        match text.trim() {
            "redis" => Ok(Target::Redis),
            "lb" => Ok(Target::Lb),
            "replicas" => Ok(Target::Replicas),
            t => match t.split_once("->").map(|(a, b)| (a.trim(), b.trim())) {
                Some((from, to)) => {
                    let link = match (from, to) {
                        (from, "redis") => replica(from).map(Target::ReplicaToRedis),
                        ("players", to) => replica(to).map(Target::PlayersToReplica),
                        _ => Err(String::new()),
                    };
                    link.map_err(|_| {
                        format!("unknown link `{t}`: links are `srv-N->redis` and `players->srv-N`")
                    })
                }
                None => replica(t).map(Target::Replica),
            },
        }
    }

    /// The replica it names, if any.
    pub fn replica(self) -> Option<u32> {
        match self {
            Target::Replica(n) | Target::ReplicaToRedis(n) | Target::PlayersToReplica(n) => Some(n),
            _ => None,
        }
    }

    pub fn is_link(self) -> bool {
        matches!(
            self,
            Target::ReplicaToRedis(_) | Target::PlayersToReplica(_)
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Replica(n) => write!(f, "srv-{n}"),
            Target::Replicas => f.write_str("replicas"),
            Target::Redis => f.write_str("redis"),
            Target::Lb => f.write_str("lb"),
            Target::ReplicaToRedis(n) => write!(f, "srv-{n}->redis"),
            Target::PlayersToReplica(n) => write!(f, "players->srv-{n}"),
        }
    }
}

/// `[[faults]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub kind: FaultKind,
    pub target: String,
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub lasts: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// Bandwidth cap, KiB per second.
    #[serde(default)]
    pub rate_kib: Option<u64>,
    #[serde(default)]
    pub direction: Direction,
}

/// A validated fault.
#[derive(Debug, Clone)]
pub struct Fault {
    pub name: String,
    pub kind: FaultKind,
    pub target: Target,
    pub at: Duration,
    pub lasts: Option<Duration>,
    pub latency: Duration,
    pub jitter: Duration,
    pub rate_kib: u64,
    pub direction: Direction,
}

/// What the faults are checked against.
#[derive(Debug)]
pub struct Bounds {
    pub replicas: u32,
    pub redis: bool,
    pub lb: bool,
    pub sentinel: bool,
    /// Masters of the Redis Cluster; 1 is a single Redis.
    pub redis_shards: u32,
    pub topology: super::TopologyKind,
    pub max_duration: Duration,
}

impl FaultSpec {
    pub fn validate(&self, bounds: &Bounds) -> Result<Fault, String> {
        let target = Target::parse(&self.target)?;
        self.fits_topology(target, bounds)?;
        self.fits_kind(target, bounds)?;
        let ends = self.at + self.lasts.unwrap_or_default();
        if ends >= bounds.max_duration {
            return Err(format!(
                "ends at {} but the run lasts at most {} (load.max_duration)",
                humantime::format_duration(ends),
                humantime::format_duration(bounds.max_duration)
            ));
        }
        Ok(Fault {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {target}", self.kind)),
            kind: self.kind,
            target,
            at: self.at,
            lasts: self.lasts,
            latency: self.latency.unwrap_or_default(),
            jitter: self.jitter.unwrap_or_default(),
            rate_kib: self.rate_kib.unwrap_or(0),
            direction: self.direction,
        })
    }

    /// Whether the topology has the target and lets it be faulted.
    fn fits_topology(&self, target: Target, bounds: &Bounds) -> Result<(), String> {
        let on_redis = matches!(target, Target::Redis | Target::ReplicaToRedis(_));
        let refusal = if bounds.topology == super::TopologyKind::External {
            Some("faults need a local or docker topology (tierlab must own the processes)".into())
        } else if bounds.topology == super::TopologyKind::Docker
            && matches!(target, Target::PlayersToReplica(_))
        {
            Some("with topology docker, players reach the replicas from the host: cut `srv-N->redis` or crash/pause a container instead".into())
        } else if let Some(n) = target.replica().filter(|n| *n > bounds.replicas) {
            Some(format!(
                "srv-{n} does not exist: the topology has {} replica(s)",
                bounds.replicas
            ))
        } else if on_redis && !bounds.redis {
            Some("the topology has no Redis (state = \"memory\")".into())
        } else if on_redis && bounds.redis_shards > 1 {
            Some("faults on Redis need a single Redis: the nodes of a Redis Cluster (redis_shards > 1) are not fault targets yet".into())
        } else if target == Target::Lb && !bounds.lb {
            Some("the topology has no load balancer (via is not \"lb\")".into())
        } else if bounds.sentinel && matches!(target, Target::ReplicaToRedis(_)) {
            Some("with Sentinel, replicas reach whichever node is primary: srv-N->redis cannot be proxied".into())
        } else {
            None
        };
        refusal.map_or(Ok(()), Err)
    }

    /// Whether the kind of fault can hit the target, and has what it needs.
    fn fits_kind(&self, target: Target, bounds: &Bounds) -> Result<(), String> {
        let fits = match self.kind {
            FaultKind::Crash | FaultKind::Pause => {
                matches!(target, Target::Replica(_) | Target::Redis | Target::Lb)
            }
            FaultKind::Restart => matches!(target, Target::Replica(_)),
            FaultKind::RollingRestart => target == Target::Replicas,
            FaultKind::Failover => target == Target::Redis,
            _ => target.is_link(),
        };
        let needs_for = self.kind == FaultKind::Pause || self.kind.on_link();
        let refusal = if !fits {
            Some(format!(
                "a {} fault cannot hit `{target}` ({})",
                self.kind,
                expected_target(self.kind)
            ))
        } else if self.kind == FaultKind::Failover && !bounds.sentinel {
            Some("a failover needs `topology.sentinel = true`".into())
        } else if self.kind == FaultKind::Failover && self.lasts.is_some() {
            Some("a failover takes no `for`: it ends when Sentinel has promoted the replica".into())
        } else if needs_for && self.lasts.is_none() {
            Some(format!("a {} fault needs `for`", self.kind))
        } else if self.kind == FaultKind::Latency && self.latency.unwrap_or_default().is_zero() {
            Some("a latency fault needs `latency` (e.g. \"100ms\")".into())
        } else if self.kind == FaultKind::Bandwidth && self.rate_kib.unwrap_or(0) == 0 {
            Some("a bandwidth fault needs `rate_kib` ≥ 1".into())
        } else {
            None
        };
        refusal.map_or(Ok(()), Err)
    }
}

fn expected_target(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Crash | FaultKind::Pause => "it hits srv-N, redis or lb",
        FaultKind::Restart => "it hits srv-N",
        FaultKind::RollingRestart => "it hits `replicas`",
        FaultKind::Failover => "it hits `redis`",
        _ => "it hits a link: srv-N->redis or players->srv-N",
    }
}
