//! A local Redis Cluster for `redis_shards > 1`: one redis-server per
//! shard in cluster mode (masters only — the scenario measures what sharding
//! buys, not failover), joined by `redis-cli --cluster create`. The replicas
//! get `--redis-cluster` and spread rooms over the shards by hash tag.

use std::time::{Duration, Instant};

use super::redis::Role;
use super::Local;
use crate::probe::ask_redis;
use crate::scenario::Persistence;
use crate::topology::{loopback, TopologyError};

/// How long the nodes may take to agree on the slot map.
const AGREE_WITHIN: Duration = Duration::from_secs(20);

/// `127.0.0.1:port,…`, as `--redis-cluster` takes it.
pub(super) fn addresses(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Local {
    pub(super) async fn start_redis_cluster(
        &mut self,
        shards: u32,
        persistence: Persistence,
    ) -> Result<(), TopologyError> {
        let mut ports = Vec::new();
        for i in 1..=shards {
            let name = format!("redis-{i}");
            ports.push(
                self.start_redis(persistence, &name, Role::ClusterNode)
                    .await?,
            );
        }
        let out = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(addresses(&ports).split(','))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .await
            .map_err(|e| {
                TopologyError::Refused(format!(
                    "cannot run redis-cli: {e} (apt-get install -y redis-tools)"
                ))
            })?;
        if !out.status.success() {
            return Err(TopologyError::Refused(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
        self.redis_cluster = ports;
        self.wait_cluster_ok().await
    }

    async fn wait_cluster_ok(&self) -> Result<(), TopologyError> {
        let deadline = Instant::now() + AGREE_WITHIN;
        loop {
            let mut ok = true;
            for &port in &self.redis_cluster {
                let info = ask_redis(loopback(port), "CLUSTER INFO").await;
                ok &= info.is_some_and(|i| i.contains("cluster_state:ok"));
            }
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TopologyError::NotReady {
                    what: "the Redis Cluster (cluster_state:ok on every node)".into(),
                    log: self.dir.join("logs/redis-1.log").display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
