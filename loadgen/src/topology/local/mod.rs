//! The `local` topology: `tierlab` starts `redis-server` (alone, with a
//! replica and three Sentinels, or as a Redis Cluster), N replicas
//! (`tierlab-server` or the python-socketio peer) and HAProxy on free
//! loopback ports, waits until all are ready, and stops every one of them
//! when the run ends — on success, error, Ctrl-C or panic. For fault
//! drills it can signal, kill and start again any process it owns (same
//! port, same flags), and puts a fault proxy on each link a scenario names
//! (`srv-N->redis`, `players->srv-N`).

mod cluster;
mod process;
mod redis;
mod replica;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::process::Child;

use self::process::{spawn, version_of, wait_http, wait_ready, Launch, Process, Readiness};
use super::haproxy::{self, REPLICAS_UP};
use super::{free_port, loopback, Action, Endpoint, Endpoints, TopologyError, TIERLAB_WS};
use crate::proxy::{FaultProxy, LinkState};
use crate::sampler::Targets;
use crate::scenario::{self, Balance, ServerKind, StateMode, Target, Via};

const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a replica may take to drain on SIGTERM before it is killed.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How long Sentinel may take to promote a replica.
const FAILOVER_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Local {
    pub endpoints: Endpoints,
    /// `processes.txt` in the run directory: `name pid` of every child, so a
    /// person (or a test) can tell what a run started.
    ledger: PathBuf,
    processes: Vec<Process>,
    /// Fault proxies on the links the scenario's faults name.
    links: Vec<(Target, FaultProxy)>,
    /// Ports of the Sentinels, when the topology has them.
    sentinels: Vec<u16>,
    /// Ports of the Redis Cluster's masters, when the topology has one.
    redis_cluster: Vec<u16>,
    dir: PathBuf,
    /// The path of the WebSocket the local replicas (and HAProxy) serve.
    ws_path: &'static str,
}

impl Local {
    /// Starts everything `spec` asks for, a fault proxy on each of `links`;
    /// on a failure, stops (and reaps) what did start before reporting.
    pub async fn start(
        spec: &scenario::Topology,
        dir: &Path,
        links: &[Target],
    ) -> Result<Local, TopologyError> {
        let mut local = Local {
            endpoints: Endpoints::default(),
            ledger: dir.join("processes.txt"),
            processes: Vec::new(),
            links: Vec::new(),
            sentinels: Vec::new(),
            redis_cluster: Vec::new(),
            dir: dir.to_owned(),
            ws_path: TIERLAB_WS,
        };
        local.note_version("tierlab", env!("CARGO_PKG_VERSION").into());
        match local.start_all(spec, links).await {
            Ok(()) => Ok(local),
            Err(e) => {
                local.stop().await;
                Err(e)
            }
        }
    }

    async fn start_all(
        &mut self,
        spec: &scenario::Topology,
        links: &[Target],
    ) -> Result<(), TopologyError> {
        if spec.state == StateMode::Redis {
            self.start_state(spec).await?;
            let version = version_of("redis-server", &["--version"]).await;
            self.note_version("redis", version);
        }
        let server = self.server_program(spec).await?;
        for i in 1..=spec.replicas {
            self.start_replica(spec, &server, i, links).await?;
        }
        if spec.via == Via::Lb {
            self.start_haproxy(spec.balance).await?;
            let version = version_of("haproxy", &["-v"]).await;
            self.note_version("haproxy", version);
        }
        for endpoint in &self.endpoints.replicas {
            wait_http(endpoint, super::READY, &self.dir).await?;
        }
        if let Some(lb) = &self.endpoints.lb {
            wait_http(lb, REPLICAS_UP, &self.dir).await?;
        }
        Ok(())
    }

    /// Redis as the scenario has it: a cluster, or one primary (with a
    /// replica and Sentinels when asked).
    async fn start_state(&mut self, spec: &scenario::Topology) -> Result<(), TopologyError> {
        if spec.redis_shards > 1 {
            return self
                .start_redis_cluster(spec.redis_shards, spec.persistence)
                .await;
        }
        self.start_redis(spec.persistence, "redis", redis::Role::Primary)
            .await?;
        if spec.sentinel {
            self.start_sentinels(spec.persistence).await?;
        }
        Ok(())
    }

    fn note_version(&mut self, what: &str, version: String) {
        self.endpoints.versions.push((what.to_owned(), version));
    }

    async fn start_haproxy(&mut self, balance: Balance) -> Result<(), TopologyError> {
        let port = free_port()?;
        let replicas: Vec<(String, String)> = self
            .endpoints
            .replicas
            .iter()
            .map(|r| {
                let addr = r.http_url.trim_start_matches("http://").to_owned();
                (r.name.clone(), addr)
            })
            .collect();
        let config = haproxy::haproxy_config(
            &format!("127.0.0.1:{port}"),
            balance,
            haproxy::maxconn(),
            &replicas,
            None,
        );
        let path = self.dir.join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let lb = Endpoint::local_at("haproxy", port, self.ws_path);
        let launch = Launch {
            program: PathBuf::from("haproxy"),
            args: vec![
                "-db".into(),
                "-f".into(),
                path.to_string_lossy().into_owned(),
            ],
            env: Vec::new(),
            what: "haproxy".into(),
            hint: "apt-get install -y haproxy",
            ready: Readiness::Http(lb.clone()),
        };
        self.adopt("haproxy", launch)?;
        self.endpoints.lb = Some(lb);
        Ok(())
    }

    /// Starts a process and waits until it is ready.
    async fn launch(&mut self, name: &str, launch: Launch) -> Result<(), TopologyError> {
        let ready = launch.ready.clone();
        self.adopt(name, launch)?;
        wait_ready(&ready, name, &self.dir).await
    }

    /// Starts a process and keeps it (and its pid in `processes.txt`).
    fn adopt(&mut self, name: &str, launch: Launch) -> Result<(), TopologyError> {
        let child = spawn(&launch, &self.dir, name)?;
        self.note_pid(name, &child)?;
        self.processes.push(Process {
            name: name.to_owned(),
            launch,
            child: Some(child),
        });
        Ok(())
    }

    fn note_pid(&self, name: &str, child: &Child) -> Result<(), TopologyError> {
        if let Some(pid) = child.id() {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.ledger)?;
            std::io::Write::write_all(&mut file, format!("{name} {pid}\n").as_bytes())?;
        }
        Ok(())
    }

    fn process(&mut self, name: &str) -> Result<&mut Process, TopologyError> {
        self.processes
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| TopologyError::NoSuchProcess(name.to_owned()))
    }

    /// What the sampler watches: the process ledger, each replica's
    /// /metrics, each redis-server's INFO.
    pub fn sampler_targets(&self) -> Targets {
        let replicas = self
            .processes
            .iter()
            .filter_map(|p| match &p.launch.ready {
                Readiness::Http(endpoint) if p.name.starts_with("srv-") => {
                    Some((p.name.clone(), endpoint.http_url.clone()))
                }
                _ => None,
            })
            .collect();
        let redis = self
            .processes
            .iter()
            .filter(|p| p.launch.what == "redis-server")
            .filter_map(|p| Some((p.name.clone(), loopback(p.launch.ready.redis_port()?))))
            .collect();
        Targets {
            ledger: self.ledger.clone(),
            replicas,
            redis,
        }
    }

    /// Carries out one step of a drill on the processes and link proxies.
    pub async fn carry_out(&mut self, action: &Action) -> Result<(), TopologyError> {
        match action {
            Action::Kill(name) => self.kill(name).await,
            Action::Pause(name) => self.signal(name, Signal::SIGSTOP),
            Action::Resume(name) => self.signal(name, Signal::SIGCONT),
            Action::Terminate(name) => self.terminate(name, DRAIN_GRACE).await,
            Action::Relaunch(name) => self.relaunch(name).await,
            Action::Link(link, state) => self.set_link(*link, *state),
            Action::Failover => self.fail_over().await.map(|promoted| {
                tracing::info!(%promoted, "Sentinel promoted a new primary");
            }),
        }
    }

    fn signal(&mut self, name: &str, signal: Signal) -> Result<(), TopologyError> {
        let process = self.process(name)?;
        if let Some(pid) = process.child.as_ref().and_then(Child::id) {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
                .map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// SIGKILL, and reap.
    async fn kill(&mut self, name: &str) -> Result<(), TopologyError> {
        let process = self.process(name)?;
        if let Some(mut child) = process.child.take() {
            let _ = child.kill().await;
        }
        Ok(())
    }

    /// SIGTERM (a replica drains), then SIGKILL if it outlives `grace`.
    async fn terminate(&mut self, name: &str, grace: Duration) -> Result<(), TopologyError> {
        self.signal(name, Signal::SIGTERM)?;
        let process = self.process(name)?;
        if let Some(mut child) = process.child.take() {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                tracing::warn!(name, "did not stop in time; killing");
                let _ = child.kill().await;
            }
        }
        Ok(())
    }

    /// Starts a stopped process again as it was first started, and waits
    /// until it is ready.
    async fn relaunch(&mut self, name: &str) -> Result<(), TopologyError> {
        let dir = self.dir.clone();
        let process = self.process(name)?;
        if process.child.is_some() {
            return Ok(());
        }
        let launch = process.launch.clone();
        let child = spawn(&launch, &dir, name)?;
        self.note_pid(name, &child)?;
        self.process(name)?.child = Some(child);
        wait_ready(&launch.ready, name, &dir).await
    }

    /// Sets what a link does, through its fault proxy.
    fn set_link(&self, link: Target, state: LinkState) -> Result<(), TopologyError> {
        match self.links.iter().find(|(target, _)| *target == link) {
            Some((_, proxy)) => {
                proxy.set(state);
                Ok(())
            }
            None => Err(TopologyError::Refused(format!("no proxy on {link}"))),
        }
    }

    /// SIGKILLs the primary and waits until the Sentinels name another.
    async fn fail_over(&mut self) -> Result<String, TopologyError> {
        let old = self.primary_name().await;
        self.kill(&old).await?;
        let deadline = Instant::now() + FAILOVER_WITHIN;
        while Instant::now() < deadline {
            let now = self.primary_name().await;
            if now != old {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(TopologyError::NotReady {
            what: format!("a new primary after killing {old}"),
            log: self.dir.join("logs/sentinel-1.log").display().to_string(),
        })
    }

    /// SIGTERM everything (replicas drain), then kill whatever is left; a
    /// paused process is continued first so it can hear the SIGTERM.
    pub async fn stop(mut self) {
        for process in &self.processes {
            if let Some(pid) = process.child.as_ref().and_then(Child::id) {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
                let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for process in &mut self.processes {
            let Some(child) = process.child.as_mut() else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, child.wait()).await.is_err() {
                tracing::warn!(name = process.name, "did not stop in time; killing");
                let _ = child.kill().await;
            }
        }
        self.processes.clear();
        self.links.clear();
    }

    /// What runs as the replicas: `tierlab-server`, or the python-socketio
    /// peer's script written into the run directory.
    async fn server_program(
        &mut self,
        spec: &scenario::Topology,
    ) -> Result<PathBuf, TopologyError> {
        match spec.server {
            ServerKind::Tierlab => {
                let bin = replica::server_binary(spec);
                let version = version_of(&bin.to_string_lossy(), &["--version"]).await;
                self.note_version("tierlab-server", version);
                Ok(bin)
            }
            ServerKind::PythonSocketio => {
                self.ws_path = super::SOCKETIO_WS;
                let script = self.dir.join("chat_socketio.py");
                std::fs::write(&script, replica::PEER_SCRIPT)?;
                let version = "import importlib.metadata as m; print('python-socketio', m.version('python-socketio'))";
                let version = version_of(&spec.python, &["-c", version]).await;
                self.note_version("python-socketio", version);
                Ok(script)
            }
        }
    }
}
