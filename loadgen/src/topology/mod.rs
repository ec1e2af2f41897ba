//! The system under test, one kind per file behind one enum: `local`
//! (`tierlab` starts Redis, the replicas and HAProxy as its own processes),
//! `docker` (the same stack as containers), `external` (URLs of a system
//! someone else runs). What every kind has — where the replicas and the load
//! balancer answer, what versions run — is [`Endpoints`]; what a drill does
//! to a topology is an [`Action`], carried out by the kind it is. The shared
//! pieces are modules of their own: the HAProxy config (`haproxy`), Redis's
//! flags and Sentinel's config (`redis`); readiness probes are `crate::probe`.

mod docker;
mod external;
mod haproxy;
mod local;
mod redis;

use std::net::SocketAddr;
use std::path::Path;

use crate::proxy::LinkState;
use crate::sampler::Targets;
use crate::scenario::{self, Fault, FaultKind, Target, TopologyKind, Via};

pub use haproxy::haproxy_config;

/// How long a process may take to be ready.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);
/// What a replica (or anything behind HAProxy) answers 2xx on when ready.
const READY: &str = "/ready";
/// Where the replicas' WebSocket listens: the reference server's, or a
/// Socket.IO server's WebSocket transport.
const TIERLAB_WS: &str = "/ws";
const SOCKETIO_WS: &str = "/socket.io/?EIO=4&transport=websocket";

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot start {what}: {source} (is it installed? {hint})")]
    Spawn {
        what: String,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error("{what} did not become ready in time; see {log}")]
    NotReady { what: String, log: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
    #[error("docker: {what}: {message}")]
    Docker { what: String, message: String },
    #[error("no process named {0} in this topology")]
    NoSuchProcess(String),
}

/// Where one replica (or the load balancer) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub ws_url: String,
    pub http_url: String,
}

impl Endpoint {
    /// `name` on a loopback `port`, its WebSocket at `ws_path`.
    fn local_at(name: &str, port: u16, ws_path: &str) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            ws_url: format!("ws://127.0.0.1:{port}{ws_path}"),
            http_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// What every kind of topology has once it is up.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub replicas: Vec<Endpoint>,
    pub lb: Option<Endpoint>,
    pub redis_url: Option<String>,
    /// Versions of what runs (for the run record).
    pub versions: Vec<(String, String)>,
}

impl Endpoints {
    /// The REST base URL: the load balancer, else the first replica.
    pub fn http_base(&self) -> &str {
        self.lb
            .as_ref()
            .or(self.replicas.first())
            .map_or("", |e| e.http_url.as_str())
    }

    /// Where player `member` of room `room` connects.
    pub fn player_url(&self, via: Via, room: u32, member: u32) -> &str {
        match (via, &self.lb) {
            (Via::Lb, Some(lb)) => &lb.ws_url,
            _ => {
                // Spread a room's members over the replicas, starting at a
                // different replica per room, so fan-out crosses replicas.
                let n = self.replicas.len().max(1) as u32;
                let i = ((room + member) % n) as usize;
                self.replicas.get(i).map_or("", |e| e.ws_url.as_str())
            }
        }
    }
}

/// One thing a drill does to the topology.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// SIGKILL (a container: killed).
    Kill(String),
    /// SIGSTOP (a container: the cgroup freezer).
    Pause(String),
    /// SIGCONT (a container: unfrozen).
    Resume(String),
    /// SIGTERM: a replica drains; SIGKILL if it outlives the drain grace.
    Terminate(String),
    /// Start a stopped process again, as it was first started.
    Relaunch(String),
    /// What a link does from now on.
    Link(Target, LinkState),
    /// SIGKILL the Redis primary and wait until Sentinel names another.
    Failover,
}

impl Action {
    /// The process it acts on, if it acts on one.
    pub fn process_mut(&mut self) -> Option<&mut String> {
        match self {
            Action::Kill(name)
            | Action::Pause(name)
            | Action::Resume(name)
            | Action::Terminate(name)
            | Action::Relaunch(name) => Some(name),
            Action::Link(..) | Action::Failover => None,
        }
    }
}

/// A topology of one of the three kinds.
#[derive(Debug)]
pub enum Topology {
    Local(local::Local),
    Docker(docker::Stack),
    External(external::External),
}

impl Topology {
    /// Starts the topology ready for `faults`: in a local topology each
    /// link a fault hits gets a fault proxy; in containers a fault that
    /// shapes traffic needs tc netem, which is checked first.
    pub async fn start(
        spec: &scenario::Topology,
        dir: &Path,
        faults: &[Fault],
    ) -> Result<Topology, TopologyError> {
        Ok(match spec.kind {
            TopologyKind::External => Topology::External(external::External::new(spec)),
            TopologyKind::Local => {
                let links: Vec<Target> = faults
                    .iter()
                    .map(|f| f.target)
                    .filter(|t| t.is_link())
                    .collect();
                Topology::Local(local::Local::start(spec, dir, &links).await?)
            }
            TopologyKind::Docker => {
                let shaped = faults
                    .iter()
                    .any(|f| matches!(f.kind, FaultKind::Latency | FaultKind::Bandwidth));
                Topology::Docker(docker::Stack::start(spec, dir, shaped).await?)
            }
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        match self {
            Topology::Local(local) => &local.endpoints,
            Topology::Docker(stack) => &stack.endpoints,
            Topology::External(external) => &external.endpoints,
        }
    }

    pub fn replicas(&self) -> &[Endpoint] {
        &self.endpoints().replicas
    }

    pub fn lb(&self) -> Option<&Endpoint> {
        self.endpoints().lb.as_ref()
    }

    pub fn versions(&self) -> &[(String, String)] {
        &self.endpoints().versions
    }

    pub fn http_base(&self) -> &str {
        self.endpoints().http_base()
    }

    pub fn player_url(&self, via: Via, room: u32, member: u32) -> &str {
        self.endpoints().player_url(via, room, member)
    }

    /// What the sampler watches, for the kinds whose processes we can see.
    pub fn sampler_targets(&self) -> Option<Targets> {
        match self {
            Topology::Local(local) => Some(local.sampler_targets()),
            Topology::Docker(stack) => Some(stack.sampler_targets()),
            Topology::External(_) => None,
        }
    }

    /// The process name `redis` means now: with Sentinel, whichever node
    /// the Sentinels name primary.
    pub async fn redis_now(&self) -> String {
        match self {
            Topology::Local(local) => local.primary_name().await,
            _ => "redis".into(),
        }
    }

    /// Carries out one step of a drill.
    pub async fn carry_out(&mut self, action: &Action) -> Result<(), TopologyError> {
        match self {
            Topology::Local(local) => local.carry_out(action).await,
            Topology::Docker(stack) => stack.carry_out(action).await,
            Topology::External(_) => Err(TopologyError::Refused(
                "an external topology is not ours to fault".into(),
            )),
        }
    }

    /// Stops everything it started (nothing, for an external system).
    pub async fn stop(self) {
        match self {
            Topology::Local(local) => local.stop().await,
            Topology::Docker(mut stack) => stack.stop().await,
            Topology::External(_) => {}
        }
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_players_spread_a_room_over_replicas() {
        let endpoints = Endpoints {
            replicas: vec![
                Endpoint::local_at("a", 1, TIERLAB_WS),
                Endpoint::local_at("b", 2, TIERLAB_WS),
                Endpoint::local_at("c", 3, TIERLAB_WS),
            ],
            ..Endpoints::default()
        };
        let urls: Vec<&str> = (0..3)
            .map(|m| endpoints.player_url(Via::Direct, 0, m))
            .collect();
        assert_eq!(
            urls,
            [
                "ws://127.0.0.1:1/ws",
                "ws://127.0.0.1:2/ws",
                "ws://127.0.0.1:3/ws"
            ]
        );
    }
}
