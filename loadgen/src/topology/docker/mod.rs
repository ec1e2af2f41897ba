//! The `docker` topology: the local topology's stack — Redis, N replicas,
//! HAProxy — as containers of the images `just images` builds, on a private
//! network the run creates, started through testcontainers. Each container
//! has its own address on that network and the generator on the host
//! reaches it there (no published ports). Faults act on containers: a crash
//! is SIGKILL to the container, a pause is `docker pause`, a restart is
//! `docker stop` and start, and a cut, reset or slowed `srv-N->redis` link
//! is iptables or tc netem inside the containers (NET_ADMIN). Every
//! container is removed when the run ends, its output kept in
//! `logs/<name>.log`; on an error or a panic testcontainers removes what is
//! left when the handles drop.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, RemoveContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::ExecCommand;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

mod link;

use super::haproxy::{haproxy_config, REPLICAS_UP};
use super::redis::persistence_flags;
use super::{Action, Endpoint, Endpoints, TopologyError, READY};
use crate::probe;
use crate::proxy::LinkState;
use crate::sampler::Targets;
use crate::scenario::{self, StateMode, Via};

pub const SERVER_IMAGE: &str = "tierlab/server";
pub const REDIS_IMAGE: &str = "tierlab/redis";
pub const HAPROXY_IMAGE: &str = "tierlab/haproxy";
const TAG: &str = "latest";
const SERVER_PORT: u16 = 8080;
const REDIS_PORT: u16 = 6379;
const LB_PORT: u16 = 8000;
/// Docker's DNS on a user-defined network, as seen from a container.
const NETWORK_DNS: &str = "127.0.0.11:53";
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a replica may take to drain on `docker stop` before it is killed.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// HAProxy's connection ceiling in its container: two descriptors per
/// tunnelled player, under the 20,000 descriptors the engine here gives a
/// container (and will not raise: "error setting rlimit … operation not
/// permitted"). The docker topology holds at most this many players via HAProxy.
const LB_MAXCONN: u64 = 9_900;

/// One container of the stack.
struct Node {
    name: String,
    container: ContainerAsync<GenericImage>,
    /// Where it answers, on its own address: Redis PING or HTTP `/ready`.
    port: u16,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("id", &self.container.id())
            .finish()
    }
}

/// Tries at a freeze the engine reports as failed.
const PAUSE_ATTEMPTS: u32 = 5;

#[derive(Debug)]
pub struct Stack {
    pub endpoints: Endpoints,
    docker: Docker,
    /// Names every container and the network: `tierlab-<pid>-<ms>`.
    prefix: String,
    nodes: Vec<Node>,
    dir: PathBuf,
    ledger: PathBuf,
}

fn docker_error(what: &str, e: impl std::fmt::Display) -> TopologyError {
    TopologyError::Docker {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

impl Stack {
    /// Starts Redis, the replicas and HAProxy as `spec` describes; `shaped`
    /// says a fault will need tc netem, which is checked before the run.
    pub async fn start(
        spec: &scenario::Topology,
        dir: &Path,
        shaped: bool,
    ) -> Result<Stack, TopologyError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| docker_error("no engine answers", e))?;
        docker
            .ping()
            .await
            .map_err(|e| docker_error("no engine answers", e))?;
        for image in [SERVER_IMAGE, REDIS_IMAGE, HAPROXY_IMAGE] {
            docker
                .inspect_image(&format!("{image}:{TAG}"))
                .await
                .map_err(|_| {
                    TopologyError::Refused(format!(
                        "image {image}:{TAG} is not built on this machine (no registry to pull from): run `just images`"
                    ))
                })?;
        }
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000);
        let mut stack = Stack {
            endpoints: Endpoints::default(),
            docker,
            prefix: format!("tierlab-{}-{millis}", std::process::id()),
            nodes: Vec::new(),
            dir: dir.to_owned(),
            ledger: dir.join("processes.txt"),
        };
        // On an error, whatever did start is removed before it is reported.
        match stack.start_all(spec, shaped).await {
            Ok(()) => Ok(stack),
            Err(e) => {
                stack.stop().await;
                Err(e)
            }
        }
    }

    async fn start_all(
        &mut self,
        spec: &scenario::Topology,
        shaped: bool,
    ) -> Result<(), TopologyError> {
        self.endpoints.versions = vec![
            ("tierlab".into(), env!("CARGO_PKG_VERSION").into()),
            ("docker-images".into(), format!("{SERVER_IMAGE}:{TAG}")),
        ];
        if spec.state == StateMode::Redis {
            let redis = GenericImage::new(REDIS_IMAGE, TAG)
                .with_cmd(persistence_flags(spec.persistence).iter().copied());
            self.add("redis", redis, REDIS_PORT).await?;
            let addr = SocketAddr::new(self.ip("redis").await?, REDIS_PORT);
            self.endpoints.redis_url = Some(format!("redis://{addr}"));
        }
        for i in 1..=spec.replicas {
            let name = format!("srv-{i}");
            let replica = GenericImage::new(SERVER_IMAGE, TAG)
                .with_cmd(self.server_args(spec, &name))
                .with_cap_add("NET_ADMIN");
            self.add(&name, replica, SERVER_PORT).await?;
            let ip = self.ip(&name).await?;
            self.endpoints
                .replicas
                .push(endpoint(&name, ip, SERVER_PORT));
        }
        if spec.via == Via::Lb {
            self.start_lb(spec).await?;
        }
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        for name in &names {
            self.wait_ready(name, READY).await?;
        }
        if self.endpoints.lb.is_some() {
            self.wait_ready("haproxy", REPLICAS_UP).await?;
        }
        if shaped {
            self.check_netem().await?;
        }
        Ok(())
    }

    /// HAProxy in front of the replicas, finding them by name on the
    /// network's DNS (a restarted container may get another address).
    async fn start_lb(&mut self, spec: &scenario::Topology) -> Result<(), TopologyError> {
        let replicas: Vec<(String, String)> = (1..=spec.replicas)
            .map(|i| {
                let name = format!("srv-{i}");
                let addr = format!("{}:{SERVER_PORT}", self.container_name(&name));
                (name, addr)
            })
            .collect();
        let config = haproxy_config(
            &format!("0.0.0.0:{LB_PORT}"),
            spec.balance,
            LB_MAXCONN,
            &replicas,
            Some(NETWORK_DNS),
        );
        let lb = GenericImage::new(HAPROXY_IMAGE, TAG)
            .with_copy_to("/etc/haproxy/haproxy.cfg", config.into_bytes());
        self.add("haproxy", lb, LB_PORT).await?;
        self.endpoints.lb = Some(endpoint("haproxy", self.ip("haproxy").await?, LB_PORT));
        Ok(())
    }

    fn container_name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn server_args(&self, spec: &scenario::Topology, name: &str) -> Vec<String> {
        let mut args = vec!["--server-id".to_owned(), name.to_owned()];
        match spec.state {
            StateMode::Redis => args.extend([
                "--state".into(),
                "redis".into(),
                "--redis-url".into(),
                format!("redis://{}:{REDIS_PORT}", self.container_name("redis")),
            ]),
            StateMode::Memory => args.extend(["--state".into(), "memory".into()]),
        }
        // As in the local topology: replicas sharing cores run one thread.
        if spec.replicas > 1 && !spec.server_args.iter().any(|a| a == "--workers") {
            args.extend(["--workers".into(), "1".into()]);
        }
        args.extend(spec.server_args.iter().cloned());
        args
    }

    /// Starts one container on the stack's network and notes its pid.
    async fn add(
        &mut self,
        name: &str,
        image: impl Into<testcontainers::ContainerRequest<GenericImage>>,
        port: u16,
    ) -> Result<(), TopologyError> {
        let request: testcontainers::ContainerRequest<GenericImage> = image.into();
        let container_name = self.container_name(name);
        let started = request
            .with_network(self.prefix.clone())
            .with_container_name(&container_name)
            // Reached at its own address: nothing is published on the
            // host's interfaces (testcontainers would publish every port).
            .with_host_config_modifier(|host| host.publish_all_ports = Some(false))
            .start()
            .await;
        let container = match started {
            Ok(container) => container,
            Err(e) => {
                // A container created but not started has no handle to
                // remove it on drop.
                let force = RemoveContainerOptions {
                    force: true,
                    ..RemoveContainerOptions::default()
                };
                let _ = self
                    .docker
                    .remove_container(&container_name, Some(force))
                    .await;
                return Err(docker_error(&format!("starting {name}"), e));
            }
        };
        self.nodes.push(Node {
            name: name.to_owned(),
            container,
            port,
        });
        self.note_pid(name).await
    }

    fn node(&self, name: &str) -> Result<&Node, TopologyError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| TopologyError::NoSuchProcess(name.to_owned()))
    }

    /// The container's address on the stack's network now (a restarted
    /// container may get another).
    pub async fn ip(&self, name: &str) -> Result<IpAddr, TopologyError> {
        self.node(name)?
            .container
            .get_bridge_ip_address()
            .await
            .map_err(|e| docker_error(&format!("address of {name}"), e))
    }

    /// Appends `name pid` (the container's main process, as the host sees
    /// it) to the ledger the sampler reads; a restart appends the new pid.
    async fn note_pid(&self, name: &str) -> Result<(), TopologyError> {
        let id = self.node(name)?.container.id().to_owned();
        let inspect = self
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_error(&format!("inspecting {name}"), e))?;
        if let Some(pid) = inspect.state.and_then(|s| s.pid).filter(|p| *p > 0) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.ledger)?;
            std::io::Write::write_all(&mut file, format!("{name} {pid}\n").as_bytes())?;
        }
        Ok(())
    }

    /// Waits until `name` answers: PING for Redis, 2xx on `path` otherwise.
    async fn wait_ready(&self, name: &str, path: &str) -> Result<(), TopologyError> {
        let port = self.node(name)?.port;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ip = self.ip(name).await?;
            let ready = if port == REDIS_PORT {
                probe::redis_answers(SocketAddr::new(ip, port)).await
            } else {
                probe::http_ready(&endpoint(name, ip, port).http_url, path).await
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TopologyError::NotReady {
                    what: format!("container {}", self.container_name(name)),
                    log: format!("docker logs {}", self.container_name(name)),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The kernel must have tc netem for latency and bandwidth faults.
    async fn check_netem(&self) -> Result<(), TopologyError> {
        let probe = "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root";
        if let Err(e) = self.exec("srv-1", probe).await {
            return Err(TopologyError::Refused(format!(
                "latency and bandwidth faults in containers need tc netem, which this kernel lacks ({e}); run the scenario with topology \"local\", where the fault proxy shapes the link"
            )));
        }
        Ok(())
    }

    /// Runs a shell script in a container; its stderr is the error.
    async fn exec(&self, name: &str, script: &str) -> Result<(), TopologyError> {
        let node = self.node(name)?;
        let mut run = node
            .container
            .exec(ExecCommand::new(["sh", "-c", script]))
            .await
            .map_err(|e| docker_error(&format!("exec in {name}"), e))?;
        let stderr = run.stderr_to_vec().await.unwrap_or_default();
        match run.exit_code().await {
            Ok(Some(0)) => Ok(()),
            _ => Err(TopologyError::Docker {
                what: format!("in {name}: `{script}`"),
                message: String::from_utf8_lossy(&stderr).trim().to_owned(),
            }),
        }
    }

    /// Carries out one step of a drill on the containers.
    pub async fn carry_out(&self, action: &Action) -> Result<(), TopologyError> {
        match action {
            Action::Kill(name) => self.kill(name).await,
            Action::Pause(name) => self.pause(name, true).await,
            Action::Resume(name) => self.pause(name, false).await,
            Action::Terminate(name) => self.terminate(name, DRAIN_GRACE).await,
            Action::Relaunch(name) => {
                let ip = self.relaunch(name).await?;
                let moved = self
                    .endpoints
                    .replicas
                    .iter()
                    .any(|r| r.name == *name && !r.http_url.contains(&format!("//{ip}:")));
                if moved {
                    // Players given the old address keep trying it, then
                    // move on to the next replica.
                    tracing::warn!(name, %ip, "the container came back at a new address");
                }
                Ok(())
            }
            Action::Link(crate::scenario::Target::ReplicaToRedis(replica), state) => {
                self.set_link(*replica, state).await
            }
            Action::Link(link, _) => Err(TopologyError::Refused(format!(
                "{link} in containers: only srv-N->redis links are cut or shaped there"
            ))),
            Action::Failover => Err(TopologyError::Refused(
                "Sentinel failover runs in the local topology only".into(),
            )),
        }
    }

    /// What the sampler watches: the containers' main processes (as the
    /// host sees them), each replica's /metrics, Redis's INFO.
    pub fn sampler_targets(&self) -> Targets {
        let redis = self.endpoints.redis_url.as_deref().and_then(|url| {
            let addr = url.trim_start_matches("redis://").parse().ok()?;
            Some(("redis".to_owned(), addr))
        });
        Targets {
            ledger: self.ledger.clone(),
            replicas: self
                .endpoints
                .replicas
                .iter()
                .map(|r| (r.name.clone(), r.http_url.clone()))
                .collect(),
            redis: redis.into_iter().collect(),
        }
    }

    /// A crash: SIGKILL to the container's main process.
    async fn kill(&self, name: &str) -> Result<(), TopologyError> {
        let id = self.node(name)?.container.id().to_owned();
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(&id, Some(options))
            .await
            .map_err(|e| docker_error(&format!("killing {name}"), e))
    }

    async fn pause(&self, name: &str, paused: bool) -> Result<(), TopologyError> {
        let container = &self.node(name)?.container;
        // The cgroup freezer gives up ("unable to freeze") when a process
        // sits in an uninterruptible wait, e.g. Redis in an fsync on a busy
        // disk; a moment later it succeeds.
        let mut attempt = 1;
        loop {
            let done = if paused {
                container.pause().await
            } else {
                container.unpause().await
            };
            match done {
                Ok(()) => return Ok(()),
                Err(e)
                    if attempt < PAUSE_ATTEMPTS && e.to_string().contains("unable to freeze") =>
                {
                    tracing::debug!(name, attempt, error = %e, "the freezer gave up; trying again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(docker_error(&format!("pausing {name}"), e)),
            }
        }
    }

    /// `docker stop`: SIGTERM (a replica drains), SIGKILL after `grace`.
    async fn terminate(&self, name: &str, grace: Duration) -> Result<(), TopologyError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        self.node(name)?
            .container
            .stop_with_timeout(Some(seconds))
            .await
            .map_err(|e| docker_error(&format!("stopping {name}"), e))
    }

    /// Starts a stopped container again and waits until it is ready;
    /// returns its address, which may differ from before.
    async fn relaunch(&self, name: &str) -> Result<IpAddr, TopologyError> {
        self.node(name)?
            .container
            .start()
            .await
            .map_err(|e| docker_error(&format!("starting {name} again"), e))?;
        self.note_pid(name).await?;
        self.wait_ready(name, READY).await?;
        self.ip(name).await
    }

    /// Sets the link between replica `replica` and Redis to `state`: drops
    /// and resets by iptables in the replica's container, delay and rate by
    /// tc netem on each side's egress towards the other.
    async fn set_link(&self, replica: u32, state: &LinkState) -> Result<(), TopologyError> {
        let name = format!("srv-{replica}");
        let redis_ip = self.ip("redis").await?;
        let replica_ip = self.ip(&name).await?;
        self.exec(&name, &link::replica_script(state, redis_ip))
            .await?;
        self.exec(
            "redis",
            &link::shaping_script(&state.downstream, replica_ip),
        )
        .await
    }

    /// Removes every container, keeping its output in `logs/<name>.log`.
    pub async fn stop(&mut self) {
        let logs = self.dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        for node in self.nodes.drain(..) {
            let mut output = node.container.stdout_to_vec().await.unwrap_or_default();
            output.extend(node.container.stderr_to_vec().await.unwrap_or_default());
            let _ = std::fs::write(logs.join(format!("{}.log", node.name)), output);
            if let Err(e) = node.container.rm().await {
                tracing::warn!(name = node.name, %e, "could not remove container");
            }
        }
    }
}

fn endpoint(name: &str, ip: IpAddr, port: u16) -> Endpoint {
    Endpoint {
        name: name.to_owned(),
        ws_url: format!("ws://{ip}:{port}/ws"),
        http_url: format!("http://{ip}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker/haproxy/haproxy.cfg`, the config baked into tierlab/haproxy for
    /// the compose stack: replicas srv-1..srv-3 found by name, round robin
    /// (clients through a published port all come from one address).
    fn compose_haproxy_config() -> String {
        let replicas: Vec<(String, String)> = (1..=3)
            .map(|i| (format!("srv-{i}"), format!("srv-{i}:{SERVER_PORT}")))
            .collect();
        haproxy_config(
            &format!("0.0.0.0:{LB_PORT}"),
            scenario::Balance::Roundrobin,
            LB_MAXCONN,
            &replicas,
            Some(NETWORK_DNS),
        )
    }

    /// The compose stack's HAProxy config is this generator's output, so the
    /// two topologies cannot drift apart. `TIERLAB_BLESS=1` rewrites it.
    #[test]
    fn the_compose_haproxy_config_is_generated() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/haproxy/haproxy.cfg");
        let expected = format!(
            "# Generated by `tierlab` (loadgen/src/topology/docker.rs); do not edit:\n\
             # TIERLAB_BLESS=1 cargo test -p tierlab-loadgen compose_haproxy rewrites it.\n{}",
            compose_haproxy_config()
        );
        if std::env::var_os("TIERLAB_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap();
        assert_eq!(shipped, expected, "docker/haproxy/haproxy.cfg is stale");
    }
}
