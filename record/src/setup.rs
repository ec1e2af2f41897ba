//! The words a scenario and its record share for how a run was set up: the
//! kind of topology, where state lives, how players connect, what ran as the
//! replicas, what the players spoke, the load model, the kinds of fault.
//! Written in files and records in kebab-case (`aof-everysec`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Writes a unit enum as its kebab-case name.
macro_rules! kebab_display {
    ($($kind:ty),* $(,)?) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// `tierlab` starts Redis, the replicas and HAProxy itself.
    #[default]
    Local,
    /// The same stack as `local`, as containers of the local images
    /// (`just images`) on a private network, started through testcontainers.
    Docker,
    /// A system someone else started, reached through `urls`.
    External,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateMode {
    #[default]
    Redis,
    Memory,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Through the load balancer.
    #[default]
    Lb,
    /// Straight to the replicas, a room's members spread over all of them.
    Direct,
    /// To the replica `POST /api/rooms` assigned to the room.
    Assigned,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Persistence {
    #[default]
    None,
    AofEverysec,
    AofAlways,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    Source,
    Roundrobin,
    Leastconn,
}

/// What runs as the replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// `tierlab-server`, the reference.
    #[default]
    Tierlab,
    /// `scenarios/peers/chat_socketio.py`: python-socketio with its Redis
    /// manager (speaks `protocol.kind = "socketio"`).
    PythonSocketio,
}

/// What the players speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// `tierlab-server`'s frames (docs/protocol.md): server seqs, resume.
    #[default]
    Tierlab,
    /// Engine.IO v4 / Socket.IO v5 over the WebSocket transport.
    Socketio,
}

/// What a load stage counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Stages give concurrent players.
    #[default]
    Closed,
    /// Stages give arrivals per second; each player stays `session`.
    Open,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL; restarted after `for` when given.
    #[default]
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
    /// Whether it acts on a link (through a proxy) rather than a process.
    pub fn on_link(self) -> bool {
        matches!(
            self,
            FaultKind::Latency | FaultKind::Bandwidth | FaultKind::Reset | FaultKind::Blackhole
        )
    }
}

impl TopologyKind {
    pub fn name(self) -> &'static str {
        match self {
            TopologyKind::Local => "local",
            TopologyKind::Docker => "docker",
            TopologyKind::External => "external",
        }
    }
}

impl StateMode {
    pub fn name(self) -> &'static str {
        match self {
            StateMode::Redis => "redis",
            StateMode::Memory => "memory",
        }
    }
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Lb => "lb",
            Via::Direct => "direct",
            Via::Assigned => "assigned",
        }
    }
}

impl Persistence {
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::AofEverysec => "aof-everysec",
            Persistence::AofAlways => "aof-always",
        }
    }
}

impl Balance {
    pub fn name(self) -> &'static str {
        match self {
            Balance::Source => "source",
            Balance::Roundrobin => "roundrobin",
            Balance::Leastconn => "leastconn",
        }
    }
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Tierlab => "tierlab",
            ServerKind::PythonSocketio => "python-socketio",
        }
    }
}

impl ProtocolKind {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Tierlab => "tierlab",
            ProtocolKind::Socketio => "socketio",
        }
    }
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Closed => "closed",
            Model::Open => "open",
        }
    }
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
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
}

kebab_display!(
    TopologyKind,
    StateMode,
    Via,
    Persistence,
    Balance,
    ServerKind,
    ProtocolKind,
    Model,
    FaultKind
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The names Display writes are the names serde reads and writes.
    #[test]
    fn names_are_the_serialized_names() {
        fn same<T: Serialize + fmt::Display>(values: &[T]) {
            for v in values {
                let json = serde_json::to_value(v).unwrap_or_default();
                assert_eq!(json.as_str(), Some(v.to_string().as_str()));
            }
        }
        same(&[
            TopologyKind::Local,
            TopologyKind::Docker,
            TopologyKind::External,
        ]);
        same(&[StateMode::Redis, StateMode::Memory]);
        same(&[Via::Lb, Via::Direct, Via::Assigned]);
        same(&[
            Persistence::None,
            Persistence::AofEverysec,
            Persistence::AofAlways,
        ]);
        same(&[Balance::Source, Balance::Roundrobin, Balance::Leastconn]);
        same(&[ServerKind::Tierlab, ServerKind::PythonSocketio]);
        same(&[ProtocolKind::Tierlab, ProtocolKind::Socketio]);
        same(&[Model::Closed, Model::Open]);
        same(&[
            FaultKind::Crash,
            FaultKind::Pause,
            FaultKind::Restart,
            FaultKind::RollingRestart,
            FaultKind::Latency,
            FaultKind::Bandwidth,
            FaultKind::Reset,
            FaultKind::Blackhole,
            FaultKind::Failover,
        ]);
    }
}
