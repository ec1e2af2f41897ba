//! The replicas of a local topology: `tierlab-server` with the flags the
//! scenario's state asks for (one Redis, Sentinel, a cluster, or memory),
//! or the python-socketio peer on the topology's Redis — each reached
//! through a fault proxy when a fault will cut its link.

use std::path::{Path, PathBuf};

use super::process::{Launch, Readiness};
use super::Local;
use crate::proxy::FaultProxy;
use crate::scenario::{self, ServerKind, Target, Via};
use crate::topology::redis::SENTINEL_MASTER;
use crate::topology::{free_port, Endpoint, TopologyError, SOCKETIO_WS, TIERLAB_WS};

/// The python-socketio peer, shipped inside `tierlab` so a run needs no
/// checkout; it is written into the run directory and started from there.
pub const PEER_SCRIPT: &str = include_str!("../../../../scenarios/peers/chat_socketio.py");

/// The `tierlab-server` binary: the scenario's, else next to `tierlab`, else `PATH`.
pub fn server_binary(spec: &scenario::Topology) -> PathBuf {
    if let Some(bin) = &spec.server_bin {
        return bin.clone();
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tierlab-server")));
    match sibling {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("tierlab-server"),
    }
}

impl Local {
    /// Starts replica `i` (`srv-i`) running `server`.
    pub(super) async fn start_replica(
        &mut self,
        spec: &scenario::Topology,
        server: &Path,
        i: u32,
        links: &[Target],
    ) -> Result<(), TopologyError> {
        let port = free_port()?;
        let name = format!("srv-{i}");
        // Players reach it through a proxy when a fault will cut that link.
        let reached_at = if links.contains(&Target::PlayersToReplica(i)) {
            let proxy = FaultProxy::start(0, ([127, 0, 0, 1], port).into()).await?;
            let at = proxy.addr().port();
            self.links.push((Target::PlayersToReplica(i), proxy));
            at
        } else {
            port
        };
        let endpoint = Endpoint::local_at(&name, reached_at, self.ws_path);
        let launch = match spec.server {
            ServerKind::Tierlab => {
                let args = self
                    .tierlab_args(spec, (i, &name, port), &endpoint, links)
                    .await?;
                Launch {
                    program: server.to_owned(),
                    args,
                    env: vec![("RUST_LOG".into(), "warn".into())],
                    what: server.display().to_string(),
                    hint: "cargo build --release -p tierlab-server",
                    // Readiness of all replicas is awaited together, after the LB.
                    ready: Readiness::Http(Endpoint::local_at(&name, port, TIERLAB_WS)),
                }
            }
            ServerKind::PythonSocketio => {
                self.peer_launch(spec, server, (i, &name, port), links)
                    .await?
            }
        };
        self.adopt(&name, launch)?;
        self.endpoints.replicas.push(endpoint);
        Ok(())
    }

    /// The python-socketio peer as replica `i`, on the topology's Redis.
    async fn peer_launch(
        &mut self,
        spec: &scenario::Topology,
        script: &Path,
        (i, name, port): (u32, &str, u16),
        links: &[Target],
    ) -> Result<Launch, TopologyError> {
        let redis = self
            .redis_url_for(i, links)
            .await?
            .ok_or_else(|| TopologyError::Refused("the python-socketio peer needs Redis".into()))?;
        Ok(Launch {
            program: PathBuf::from(&spec.python),
            args: vec![
                script.to_string_lossy().into_owned(),
                "--port".into(),
                port.to_string(),
                "--redis".into(),
                redis,
            ],
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
            what: format!("{} {}", spec.python, script.display()),
            hint: "python3 -m pip install -r scenarios/peers/requirements.txt",
            ready: Readiness::Http(Endpoint::local_at(name, port, SOCKETIO_WS)),
        })
    }

    /// `tierlab-server`'s flags as replica `i`.
    async fn tierlab_args(
        &mut self,
        spec: &scenario::Topology,
        (i, name, port): (u32, &str, u16),
        endpoint: &Endpoint,
        links: &[Target],
    ) -> Result<Vec<String>, TopologyError> {
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--server-id".into(),
            name.to_owned(),
            "--public-url".into(),
            endpoint.ws_url.clone(),
        ];
        args.extend(self.state_args(i, links).await?);
        if spec.via == Via::Assigned {
            args.extend(["--assign".into(), "least-loaded".into()]);
        }
        // Several replicas sharing this machine's cores run one thread each:
        // measured, it cut p95 fan-out at 3,000 players from 151 ms to 16 ms
        // (docs/performance.md). A scenario's own --workers wins.
        if spec.replicas > 1 && !spec.server_args.iter().any(|a| a == "--workers") {
            args.extend(["--workers".into(), "1".into()]);
        }
        args.extend(spec.server_args.iter().cloned());
        Ok(args)
    }

    /// Where replica `i` keeps its state: Sentinel, the cluster, one Redis
    /// (through a proxy when a fault cuts that link), or memory.
    async fn state_args(&mut self, i: u32, links: &[Target]) -> Result<Vec<String>, TopologyError> {
        let redis = |rest: [String; 2]| {
            let mut args = vec!["--state".to_owned(), "redis".to_owned()];
            args.extend(rest);
            args
        };
        if self.has_sentinel() {
            let sentinels: Vec<String> = self
                .sentinels
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            let mut args = redis(["--redis-sentinel".into(), sentinels.join(",")]);
            args.extend(["--redis-master".into(), SENTINEL_MASTER.into()]);
            return Ok(args);
        }
        if !self.redis_cluster.is_empty() {
            let nodes = super::cluster::addresses(&self.redis_cluster);
            return Ok(redis(["--redis-cluster".into(), nodes]));
        }
        Ok(match self.redis_url_for(i, links).await? {
            Some(url) => redis(["--redis-url".into(), url]),
            None => vec!["--state".into(), "memory".into()],
        })
    }

    /// Redis as replica `i` reaches it: through a proxy when a fault will
    /// cut that link.
    async fn redis_url_for(
        &mut self,
        i: u32,
        links: &[Target],
    ) -> Result<Option<String>, TopologyError> {
        let Some(url) = self.endpoints.redis_url.clone() else {
            return Ok(None);
        };
        if !links.contains(&Target::ReplicaToRedis(i)) {
            return Ok(Some(url));
        }
        let port = self
            .redis_port()
            .ok_or_else(|| TopologyError::Refused(format!("bad Redis URL {url}")))?;
        let proxy = FaultProxy::start(0, ([127, 0, 0, 1], port).into()).await?;
        let proxied = format!("redis://{}", proxy.addr());
        self.links.push((Target::ReplicaToRedis(i), proxy));
        Ok(Some(proxied))
    }
}
