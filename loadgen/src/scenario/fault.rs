//! Faults a scenario schedules (`[[faults]]`): what happens, to which part of
//! the topology, when, and for how long. Parsing only; `drill.rs` carries
//! them out. Every mistake is refused before anything starts, naming the
//! fault (`faults[1] "cut srv-2": ...`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL; restarted after `for` when given.
    Crash,
    /// SIGSTOP, SIGCONT after `for`: holds its sockets, answers nothing.
    Pause,
    /// SIGTERM (the server drains), started again once it has exited.
    Restart,
    /// `restart` of every replica, one at a time, `for` apart.
    RollingRestart,
    /// Delay (± jitter) on a link.
    Latency,
    /// Bytes per second cap on a link.
    Bandwidth,
    /// Every connection on a link reset, and new ones refused, for `for`.
    Reset,
    /// Nothing passes a link for `for`; connections stay open (a partition).
    Blackhole,
    /// SIGKILL the Redis primary and wait for Sentinel to promote its replica.
    Failover,
}

impl FaultKind {
    fn on_link(self) -> bool {
        matches!(
            self,
            FaultKind::Latency | FaultKind::Bandwidth | FaultKind::Reset | FaultKind::Blackhole
        )
    }
}

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
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {target}", kind_name(self.kind)));
        let fail = |message: String| Err(message);
        if bounds.topology == super::TopologyKind::External {
            return fail(
                "faults need a local or docker topology (tierlab must own the processes)".into(),
            );
        }
        if bounds.topology == super::TopologyKind::Docker
            && matches!(target, Target::PlayersToReplica(_))
        {
            return fail(
                "with topology docker, players reach the replicas from the host: cut `srv-N->redis` or crash/pause a container instead".into(),
            );
        }
        if let Some(n) = target.replica().filter(|n| *n > bounds.replicas) {
            return fail(format!(
                "srv-{n} does not exist: the topology has {} replica(s)",
                bounds.replicas
            ));
        }
        if matches!(target, Target::Redis | Target::ReplicaToRedis(_)) && !bounds.redis {
            return fail("the topology has no Redis (state = \"memory\")".into());
        }
        if matches!(target, Target::Redis | Target::ReplicaToRedis(_)) && bounds.redis_shards > 1 {
            return fail(
                "faults on Redis need a single Redis: the nodes of a Redis Cluster (redis_shards > 1) are not fault targets yet"
                    .into(),
            );
        }
        if target == Target::Lb && !bounds.lb {
            return fail("the topology has no load balancer (via is not \"lb\")".into());
        }
        let fits = match self.kind {
            FaultKind::Crash | FaultKind::Pause => {
                matches!(target, Target::Replica(_) | Target::Redis | Target::Lb)
            }
            FaultKind::Restart => matches!(target, Target::Replica(_)),
            FaultKind::RollingRestart => target == Target::Replicas,
            FaultKind::Failover => target == Target::Redis,
            _ => target.is_link(),
        };
        if !fits {
            return fail(format!(
                "a {} fault cannot hit `{target}` ({})",
                kind_name(self.kind),
                expected_target(self.kind)
            ));
        }
        if self.kind == FaultKind::Failover && !bounds.sentinel {
            return fail("a failover needs `topology.sentinel = true`".into());
        }
        if self.kind == FaultKind::Failover && self.lasts.is_some() {
            return fail(
                "a failover takes no `for`: it ends when Sentinel has promoted the replica".into(),
            );
        }
        if bounds.sentinel && matches!(target, Target::ReplicaToRedis(_)) {
            return fail("with Sentinel, replicas reach whichever node is primary: srv-N->redis cannot be proxied".into());
        }
        let needs_for = self.kind == FaultKind::Pause || self.kind.on_link();
        if needs_for && self.lasts.is_none() {
            return fail(format!("a {} fault needs `for`", kind_name(self.kind)));
        }
        let latency = self.latency.unwrap_or_default();
        if self.kind == FaultKind::Latency && latency.is_zero() {
            return fail("a latency fault needs `latency` (e.g. \"100ms\")".into());
        }
        let rate_kib = self.rate_kib.unwrap_or(0);
        if self.kind == FaultKind::Bandwidth && rate_kib == 0 {
            return fail("a bandwidth fault needs `rate_kib` ≥ 1".into());
        }
        let ends = self.at + self.lasts.unwrap_or_default();
        if ends >= bounds.max_duration {
            return fail(format!(
                "ends at {} but the run lasts at most {} (load.max_duration)",
                humantime::format_duration(ends),
                humantime::format_duration(bounds.max_duration)
            ));
        }
        Ok(Fault {
            name,
            kind: self.kind,
            target,
            at: self.at,
            lasts: self.lasts,
            latency,
            jitter: self.jitter.unwrap_or_default(),
            rate_kib,
            direction: self.direction,
        })
    }
}

pub fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Crash => "crash",
        FaultKind::Pause => "pause",
        FaultKind::Restart => "restart",
        FaultKind::RollingRestart => "rolling-restart",
        FaultKind::Latency => "latency",
        FaultKind::Bandwidth => "bandwidth",
        FaultKind::Reset => "reset",
        FaultKind::Blackhole => "blackhole",
        FaultKind::Failover => "failover",
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
