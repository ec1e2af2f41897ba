//! Redis as the local topology runs it: a primary, a replica of it and
//! three Sentinels, or the nodes of a cluster (`cluster.rs`), each a
//! redis-server with its data in `<run>/<name>/`.

use std::path::PathBuf;

use super::process::{Launch, Readiness};
use super::Local;
use crate::probe;
use crate::scenario::Persistence;
use crate::topology::redis::{
    node_flags, persistence_flags, sentinel_config, sentinel_reply_port, SENTINEL_MASTER,
};
use crate::topology::{free_port, loopback, TopologyError};

/// What a redis-server the topology starts is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    ReplicaOf(u16),
    ClusterNode,
}

impl Local {
    /// Starts a redis-server named `name` (its data in `<dir>/<name>/`) in
    /// `role`; returns its port.
    pub(super) async fn start_redis(
        &mut self,
        persistence: Persistence,
        name: &str,
        role: Role,
    ) -> Result<u16, TopologyError> {
        let port = free_port()?;
        let data = self.dir.join(name);
        std::fs::create_dir_all(&data)?;
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &data.to_string_lossy(),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(
            persistence_flags(persistence)
                .iter()
                .map(|a| (*a).to_owned()),
        );
        let ready = match role {
            Role::Primary => Readiness::RedisPing(port),
            Role::ClusterNode => {
                args.extend(node_flags(free_port()?));
                Readiness::RedisPing(port)
            }
            Role::ReplicaOf(primary) => {
                args.extend([
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    primary.to_string(),
                ]);
                Readiness::RedisInSync(port)
            }
        };
        let launch = Launch {
            program: PathBuf::from("redis-server"),
            args,
            env: Vec::new(),
            what: "redis-server".into(),
            hint: "apt-get install -y redis-server",
            ready,
        };
        self.launch(name, launch).await?;
        if role == Role::Primary {
            self.endpoints.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        }
        Ok(port)
    }

    /// A replica of the primary and three Sentinels watching it.
    pub(super) async fn start_sentinels(
        &mut self,
        persistence: Persistence,
    ) -> Result<(), TopologyError> {
        let primary = self.redis_port().ok_or_else(|| {
            TopologyError::Refused("Sentinel needs the primary started first".into())
        })?;
        self.start_redis(persistence, "redis-replica", Role::ReplicaOf(primary))
            .await?;
        for i in 1..=3 {
            let port = free_port()?;
            let name = format!("sentinel-{i}");
            let config = self.dir.join(format!("{name}.conf"));
            std::fs::write(&config, sentinel_config(port, primary))?;
            let launch = Launch {
                program: PathBuf::from("redis-sentinel"),
                args: vec![config.to_string_lossy().into_owned()],
                env: Vec::new(),
                what: "redis-sentinel".into(),
                hint: "apt-get install -y redis-sentinel",
                ready: Readiness::RedisPing(port),
            };
            self.launch(&name, launch).await?;
            self.sentinels.push(port);
        }
        Ok(())
    }

    pub(super) fn redis_port(&self) -> Option<u16> {
        self.endpoints
            .redis_url
            .as_deref()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }

    /// The process that is the Redis primary now: `redis`, or with Sentinel
    /// whichever node the Sentinels name.
    pub async fn primary_name(&self) -> String {
        for &sentinel in &self.sentinels {
            let asked = format!("SENTINEL get-master-addr-by-name {SENTINEL_MASTER}");
            let Some(port) = probe::ask_redis(loopback(sentinel), &asked)
                .await
                .as_deref()
                .and_then(sentinel_reply_port)
            else {
                continue;
            };
            let named = self.processes.iter().find(|p| {
                p.launch.what == "redis-server" && p.launch.ready.redis_port() == Some(port)
            });
            if let Some(process) = named {
                return process.name.clone();
            }
        }
        "redis".into()
    }

    pub(super) fn has_sentinel(&self) -> bool {
        !self.sentinels.is_empty()
    }
}
