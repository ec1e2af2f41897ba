//! The system under test. `local`: `tierlab` starts `redis-server`, N
//! `tierlab-server` replicas and HAProxy on free loopback ports, waits until
//! all are ready, and stops every one of them when the run ends — on success,
//! error, Ctrl-C or panic (children die with their parent through
//! `PR_SET_PDEATHSIG`, and `Drop` kills them during unwinding). `external`: URLs
//! of a system someone else runs. `docker`: the same stack as containers
//! (`topology/docker.rs`).
//!
//! For fault drills a local topology can signal, kill and start again any
//! process it owns (same port, same flags), and puts a fault proxy on each
//! link a scenario names (`srv-N->redis`, `players->srv-N`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use nix::sys::signal::Signal;

mod cluster;
mod docker;

use crate::proxy::{FaultProxy, LinkState};
use crate::scenario::{
    self, Balance, Fault, FaultKind, Persistence, ServerKind, StateMode, Target, TopologyKind, Via,
};

const READY_WITHIN: Duration = Duration::from_secs(20);
/// What a replica (or anything behind HAProxy) answers 2xx on when ready.
const READY: &str = "/ready";
/// HAProxy's own page, 2xx once every replica passes its check: before
/// that, HAProxy sends every player to the replicas it saw first, and a
/// replica that started slower than HAProxy's first check gets none of
/// the ramp.
const LB_REPLICAS_UP: &str = "/replicas-up";
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long Sentinel may take to promote a replica.
const FAILOVER_WITHIN: Duration = Duration::from_secs(30);
/// The master name the Sentinels monitor.
const SENTINEL_MASTER: &str = "tierlab";

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot start {what}: {source} (is it installed? {hint})")]
    Spawn {
        what: String,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {READY_WITHIN:?}; see {log}")]
    NotReady { what: String, log: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("external topology: {0}")]
    External(String),
    #[error("no process named {0} in this topology")]
    NoSuchProcess(String),
}

/// Where one replica (or the load balancer) answers.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub ws_url: String,
    pub http_url: String,
}

/// Where the replicas' WebSocket listens: the reference server's, or a
/// Socket.IO server's WebSocket transport.
const TIERLAB_WS: &str = "/ws";
const SOCKETIO_WS: &str = "/socket.io/?EIO=4&transport=websocket";

/// The python-socketio peer, shipped inside `tierlab` so a run needs no
/// checkout; it is written into the run directory and started from there.
const PEER_SCRIPT: &str = include_str!("../../scenarios/peers/chat_socketio.py");

impl Endpoint {
    fn local(name: &str, port: u16) -> Endpoint {
        Endpoint::local_at(name, port, TIERLAB_WS)
    }

    fn local_at(name: &str, port: u16, ws_path: &str) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            ws_url: format!("ws://127.0.0.1:{port}{ws_path}"),
            http_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// How to start a process, kept so a drill can start it again as it was.
#[derive(Debug, Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    what: String,
    hint: &'static str,
    /// Where to see that it is ready again.
    ready: Readiness,
}

#[derive(Debug, Clone)]
enum Readiness {
    RedisPing(u16),
    /// A Redis replica whose link to its primary is up (first sync done).
    RedisInSync(u16),
    Http(Endpoint),
}

/// A child process (absent while a drill keeps it down).
#[derive(Debug)]
struct Process {
    name: String,
    launch: Launch,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct Topology {
    /// `processes.txt` in the run directory: `name pid` of every child, so a
    /// person (or a test) can tell what a run started.
    ledger: Option<PathBuf>,
    pub replicas: Vec<Endpoint>,
    pub lb: Option<Endpoint>,
    pub redis_url: Option<String>,
    /// Versions of what runs (for the run record).
    pub versions: Vec<(String, String)>,
    processes: Vec<Process>,
    /// Fault proxies on the links the scenario's faults name.
    links: Vec<(Target, FaultProxy)>,
    /// Ports of the Sentinels, when the topology has them.
    sentinels: Vec<u16>,
    /// Ports of the Redis Cluster's masters, when the topology has one.
    redis_cluster: Vec<u16>,
    /// The containers, for a docker topology.
    stack: Option<docker::Stack>,
    dir: PathBuf,
    /// The path of the WebSocket the local replicas (and HAProxy) serve.
    ws_path: &'static str,
}

/// What a redis-server the topology starts is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RedisRole {
    Primary,
    ReplicaOf(u16),
    ClusterNode,
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `launch` as a child that dies with us and appends to
/// `dir/logs/<name>.log` (a restart continues the same log); a failure
/// names the program and how to install it.
fn spawn(launch: &Launch, dir: &Path, name: &str) -> Result<Child, TopologyError> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))?;
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    cmd.spawn().map_err(|source| TopologyError::Spawn {
        what: launch.what.clone(),
        hint: launch.hint,
        source,
    })
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only makes the
    // prctl(2) syscall, which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// The `tierlab-server` binary: the scenario's, else next to `tierlab`, else `PATH`.
fn server_binary(spec: &scenario::Topology) -> PathBuf {
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

async fn version_of(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output().await {
        Ok(out) => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        }
        Err(_) => "not found".to_owned(),
    }
}

impl Topology {
    /// Starts the topology ready for `faults`: in a local topology each
    /// link a fault hits gets a fault proxy.
    pub async fn start(
        spec: &scenario::Topology,
        dir: &Path,
        faults: &[Fault],
    ) -> Result<Topology, TopologyError> {
        let links: Vec<Target> = faults
            .iter()
            .map(|f| f.target)
            .filter(|t| t.is_link())
            .collect();
        match spec.kind {
            TopologyKind::External => Topology::external(spec, dir),
            TopologyKind::Local => Topology::local(spec, dir, &links).await,
            TopologyKind::Docker => {
                let shaped = faults
                    .iter()
                    .any(|f| matches!(f.kind, FaultKind::Latency | FaultKind::Bandwidth));
                Topology::docker(spec, dir, shaped).await
            }
        }
    }

    async fn docker(
        spec: &scenario::Topology,
        dir: &Path,
        shaped: bool,
    ) -> Result<Topology, TopologyError> {
        let ledger = dir.join("processes.txt");
        let (stack, started) = docker::Stack::start(spec, dir, &ledger, shaped).await?;
        let mut topology = Topology::empty(dir, Some(ledger));
        topology.replicas = started.replicas;
        topology.lb = started.lb;
        topology.redis_url = started.redis.map(|addr| format!("redis://{addr}"));
        topology
            .versions
            .push(("tierlab".into(), env!("CARGO_PKG_VERSION").into()));
        topology.versions.extend(started.versions);
        topology.stack = Some(stack);
        Ok(topology)
    }

    fn empty(dir: &Path, ledger: Option<PathBuf>) -> Topology {
        Topology {
            ledger,
            replicas: Vec::new(),
            lb: None,
            redis_url: None,
            versions: Vec::new(),
            processes: Vec::new(),
            links: Vec::new(),
            sentinels: Vec::new(),
            redis_cluster: Vec::new(),
            stack: None,
            dir: dir.to_owned(),
            ws_path: TIERLAB_WS,
        }
    }

    fn external(spec: &scenario::Topology, dir: &Path) -> Result<Topology, TopologyError> {
        let mut topology = Topology::empty(dir, None);
        topology.replicas = spec
            .urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let base = url.replacen("ws", "http", 1);
                let http_url = spec
                    .http
                    .clone()
                    .unwrap_or_else(|| base.trim_end_matches("/ws").to_owned());
                Endpoint {
                    name: format!("external-{}", i + 1),
                    ws_url: url.clone(),
                    http_url,
                }
            })
            .collect();
        Ok(topology)
    }

    async fn local(
        spec: &scenario::Topology,
        dir: &Path,
        links: &[Target],
    ) -> Result<Topology, TopologyError> {
        let mut topology = Topology::empty(dir, Some(dir.join("processes.txt")));
        topology
            .versions
            .push(("tierlab".into(), env!("CARGO_PKG_VERSION").into()));
        match topology.start_all(spec, links).await {
            Ok(()) => Ok(topology),
            Err(e) => {
                // Stop what did start, and wait for it, before reporting.
                topology.stop().await;
                Err(e)
            }
        }
    }

    async fn start_all(
        &mut self,
        spec: &scenario::Topology,
        links: &[Target],
    ) -> Result<(), TopologyError> {
        if spec.state == StateMode::Redis && spec.redis_shards > 1 {
            self.start_redis_cluster(spec.redis_shards, spec.persistence)
                .await?;
            self.versions.push((
                "redis".into(),
                version_of("redis-server", &["--version"]).await,
            ));
        } else if spec.state == StateMode::Redis {
            self.start_redis(spec.persistence, "redis", RedisRole::Primary)
                .await?;
            if spec.sentinel {
                self.start_sentinels(spec.persistence).await?;
            }
            self.versions.push((
                "redis".into(),
                version_of("redis-server", &["--version"]).await,
            ));
        }
        let server = match spec.server {
            ServerKind::Tierlab => {
                let bin = server_binary(spec);
                self.versions.push((
                    "tierlab-server".into(),
                    version_of(&bin.to_string_lossy(), &["--version"]).await,
                ));
                bin
            }
            ServerKind::PythonSocketio => {
                self.ws_path = SOCKETIO_WS;
                let script = self.dir.join("chat_socketio.py");
                std::fs::write(&script, PEER_SCRIPT)?;
                let version = "import importlib.metadata as m; print('python-socketio', m.version('python-socketio'))";
                self.versions.push((
                    "python-socketio".into(),
                    version_of(&spec.python, &["-c", version]).await,
                ));
                script
            }
        };
        for i in 1..=spec.replicas {
            self.start_replica(spec, &server, i, links).await?;
        }
        if spec.via == Via::Lb {
            self.start_haproxy(spec.balance).await?;
            self.versions
                .push(("haproxy".into(), version_of("haproxy", &["-v"]).await));
        }
        for endpoint in &self.replicas {
            wait_http(endpoint, READY, &self.dir).await?;
        }
        if let Some(lb) = &self.lb {
            wait_http(lb, LB_REPLICAS_UP, &self.dir).await?;
        }
        Ok(())
    }

    /// Starts a redis-server named `name` (its data in `<dir>/<name>/`)
    /// in `role`.
    async fn start_redis(
        &mut self,
        persistence: Persistence,
        name: &str,
        role: RedisRole,
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
        let primary = match role {
            RedisRole::Primary => None,
            RedisRole::ReplicaOf(primary) => Some(primary),
            RedisRole::ClusterNode => {
                args.extend(cluster::node_flags(free_port()?));
                None
            }
        };
        if let Some(primary) = primary {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.to_string(),
            ]);
        }
        let launch = Launch {
            program: PathBuf::from("redis-server"),
            args,
            env: Vec::new(),
            what: "redis-server".into(),
            hint: "apt-get install -y redis-server",
            ready: if primary.is_some() {
                Readiness::RedisInSync(port)
            } else {
                Readiness::RedisPing(port)
            },
        };
        self.launch(name, launch).await?;
        if role == RedisRole::Primary {
            self.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        }
        Ok(port)
    }

    /// A replica of the primary and three Sentinels watching it (quorum 2,
    /// down after 1 s: the compiled default of 30 s would outlast a drill).
    async fn start_sentinels(&mut self, persistence: Persistence) -> Result<(), TopologyError> {
        let primary = self.redis_port().ok_or_else(|| {
            TopologyError::External("Sentinel needs the primary started first".into())
        })?;
        self.start_redis(persistence, "redis-replica", RedisRole::ReplicaOf(primary))
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

    fn redis_port(&self) -> Option<u16> {
        self.redis_url.as_deref()?.rsplit(':').next()?.parse().ok()
    }

    /// The process that is the Redis primary now: `redis`, or with Sentinel
    /// whichever node the Sentinels name.
    pub async fn primary_name(&self) -> String {
        for &sentinel in &self.sentinels {
            if let Some(port) = sentinel_primary(sentinel).await {
                let named = self.processes.iter().find(|p| {
                    matches!(p.launch.ready, Readiness::RedisPing(q) | Readiness::RedisInSync(q) if q == port)
                        && p.launch.what == "redis-server"
                });
                if let Some(process) = named {
                    return process.name.clone();
                }
            }
        }
        "redis".into()
    }

    /// What the sampler watches: the process ledger, each replica's
    /// /health, each redis-server's INFO.
    pub fn sampler_targets(&self) -> Option<crate::sampler::Targets> {
        let ledger = self.ledger.clone()?;
        if self.stack.is_some() {
            let redis = self.redis_url.as_deref().and_then(|url| {
                let addr = url.trim_start_matches("redis://").parse().ok()?;
                Some(("redis".to_owned(), addr))
            });
            return Some(crate::sampler::Targets {
                ledger,
                replicas: self
                    .replicas
                    .iter()
                    .map(|r| (r.name.clone(), r.http_url.clone()))
                    .collect(),
                redis: redis.into_iter().collect(),
            });
        }
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
            .filter_map(|p| match p.launch.ready {
                Readiness::RedisPing(port) | Readiness::RedisInSync(port) => {
                    Some((p.name.clone(), loopback(port)))
                }
                Readiness::Http(_) => None,
            })
            .collect();
        Some(crate::sampler::Targets {
            ledger,
            replicas,
            redis,
        })
    }

    pub fn has_sentinel(&self) -> bool {
        !self.sentinels.is_empty()
    }

    /// SIGKILLs the primary and waits until the Sentinels name another.
    pub async fn fail_over(&mut self) -> Result<String, TopologyError> {
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

    async fn start_replica(
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
                self.tierlab_launch(spec, server, (i, &name, port), &endpoint, links)
                    .await?
            }
            ServerKind::PythonSocketio => {
                self.peer_launch(spec, server, (i, &name, port), links)
                    .await?
            }
        };
        self.adopt(&name, launch)?;
        self.replicas.push(endpoint);
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
        let redis = self.redis_url_for(i, links).await?.ok_or_else(|| {
            TopologyError::External("the python-socketio peer needs Redis".into())
        })?;
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

    /// `tierlab-server` as replica `i`.
    async fn tierlab_launch(
        &mut self,
        spec: &scenario::Topology,
        server: &Path,
        (i, name, port): (u32, &str, u16),
        endpoint: &Endpoint,
        links: &[Target],
    ) -> Result<Launch, TopologyError> {
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--server-id".into(),
            name.to_owned(),
            "--public-url".into(),
            endpoint.ws_url.clone(),
        ];
        if self.has_sentinel() {
            let sentinels: Vec<String> = self
                .sentinels
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            args.extend([
                "--state".into(),
                "redis".into(),
                "--redis-sentinel".into(),
                sentinels.join(","),
                "--redis-master".into(),
                SENTINEL_MASTER.into(),
            ]);
        } else if !self.redis_cluster.is_empty() {
            args.extend([
                "--state".into(),
                "redis".into(),
                "--redis-cluster".into(),
                cluster::addresses(&self.redis_cluster),
            ]);
        } else {
            match self.redis_url_for(i, links).await? {
                Some(url) => {
                    args.extend(["--state".into(), "redis".into(), "--redis-url".into(), url])
                }
                None => args.extend(["--state".into(), "memory".into()]),
            }
        }
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
        Ok(Launch {
            program: server.to_owned(),
            args,
            env: vec![("RUST_LOG".into(), "warn".into())],
            what: server.display().to_string(),
            hint: "cargo build --release -p tierlab-server",
            // Readiness of all replicas is awaited together, after the LB.
            ready: Readiness::Http(Endpoint::local(name, port)),
        })
    }

    /// Redis as replica `i` reaches it: through a proxy when a fault will
    /// cut that link.
    async fn redis_url_for(
        &mut self,
        i: u32,
        links: &[Target],
    ) -> Result<Option<String>, TopologyError> {
        let Some(url) = self.redis_url.clone() else {
            return Ok(None);
        };
        if !links.contains(&Target::ReplicaToRedis(i)) {
            return Ok(Some(url));
        }
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| TopologyError::External(format!("bad Redis URL {url}")))?;
        let proxy = FaultProxy::start(0, ([127, 0, 0, 1], port).into()).await?;
        let proxied = format!("redis://{}", proxy.addr());
        self.links.push((Target::ReplicaToRedis(i), proxy));
        Ok(Some(proxied))
    }

    async fn start_haproxy(&mut self, balance: Balance) -> Result<(), TopologyError> {
        let port = free_port()?;
        let replicas: Vec<(String, String)> = self
            .replicas
            .iter()
            .map(|r| {
                let addr = r.http_url.trim_start_matches("http://").to_owned();
                (r.name.clone(), addr)
            })
            .collect();
        let config = haproxy_config(
            &format!("127.0.0.1:{port}"),
            balance,
            haproxy_maxconn(),
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
        self.lb = Some(lb);
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
        if let (Some(ledger), Some(pid)) = (&self.ledger, child.id()) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(ledger)?;
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

    /// Sends `signal` to a process (SIGSTOP/SIGCONT for a pause; a
    /// container is paused and unpaused).
    pub async fn signal(&mut self, name: &str, signal: Signal) -> Result<(), TopologyError> {
        if let Some(stack) = &self.stack {
            return match signal {
                Signal::SIGSTOP => stack.pause(name, true).await,
                Signal::SIGCONT => stack.pause(name, false).await,
                other => Err(TopologyError::External(format!(
                    "{other} to a container: only pauses are supported"
                ))),
            };
        }
        let process = self.process(name)?;
        if let Some(pid) = process.child.as_ref().and_then(Child::id) {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
                .map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// SIGKILL, and reap.
    pub async fn kill(&mut self, name: &str) -> Result<(), TopologyError> {
        if let Some(stack) = &self.stack {
            return stack.kill(name).await;
        }
        let process = self.process(name)?;
        if let Some(mut child) = process.child.take() {
            let _ = child.kill().await;
        }
        Ok(())
    }

    /// SIGTERM (a replica drains), then SIGKILL if it outlives `grace`.
    pub async fn terminate(&mut self, name: &str, grace: Duration) -> Result<(), TopologyError> {
        if let Some(stack) = &self.stack {
            return stack.terminate(name, grace).await;
        }
        self.signal(name, Signal::SIGTERM).await?;
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
    pub async fn relaunch(&mut self, name: &str) -> Result<(), TopologyError> {
        if let Some(stack) = &self.stack {
            let ip = stack.relaunch(name).await?;
            if let Some(replica) = self.replicas.iter().find(|r| r.name == name) {
                if !replica.http_url.contains(&format!("//{ip}:")) {
                    // Players given the old address keep trying it, then
                    // move on to the next replica.
                    tracing::warn!(name, %ip, "the container came back at a new address");
                }
            }
            return Ok(());
        }
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

    /// Sets what a link does: through its fault proxy, or in a docker
    /// topology inside the containers on either end.
    pub async fn set_link(&self, link: Target, state: LinkState) -> Result<(), TopologyError> {
        if let (Some(stack), Target::ReplicaToRedis(replica)) = (&self.stack, link) {
            return stack.set_link(replica, &state).await;
        }
        match self.links.iter().find(|(target, _)| *target == link) {
            Some((_, proxy)) => {
                proxy.set(state);
                Ok(())
            }
            None => Err(TopologyError::External(format!("no proxy on {link}"))),
        }
    }

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

    /// Process ids of the running processes (for CPU/memory sampling).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .filter_map(|p| p.child.as_ref()?.id().map(|id| (p.name.clone(), id)))
            .collect()
    }

    /// SIGTERM everything (replicas drain), then kill whatever is left; a
    /// paused process is continued first so it can hear the SIGTERM.
    pub async fn stop(mut self) {
        if let Some(mut stack) = self.stack.take() {
            stack.stop().await;
        }
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
}

async fn wait_ready(ready: &Readiness, name: &str, dir: &Path) -> Result<(), TopologyError> {
    match ready {
        Readiness::Http(endpoint) => wait_http(endpoint, READY, dir).await,
        Readiness::RedisPing(port) | Readiness::RedisInSync(port) => {
            let in_sync = matches!(ready, Readiness::RedisInSync(_));
            let deadline = Instant::now() + READY_WITHIN;
            while !redis_answers(*port).await || in_sync && !replica_in_sync(*port).await {
                if Instant::now() > deadline {
                    return Err(TopologyError::NotReady {
                        what: name.to_owned(),
                        log: dir.join(format!("logs/{name}.log")).display().to_string(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        }
    }
}

/// redis-server's flags for a persistence mode.
fn persistence_flags(persistence: Persistence) -> &'static [&'static str] {
    match persistence {
        Persistence::None => &["--appendonly", "no"],
        Persistence::AofEverysec => &["--appendonly", "yes", "--appendfsync", "everysec"],
        Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
    }
}

/// Connections HAProxy can hold: two descriptors per tunnelled player, under
/// the descriptor limit it inherits (it cannot raise the hard limit itself).
fn haproxy_maxconn() -> u64 {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(4096, |(_, hard)| hard);
    (hard.saturating_sub(64) / 2).clamp(256, 100_000)
}

/// HAProxy's config: players on `bind`, balanced over `replicas` (name,
/// `host:port`), each checked on `/ready`; a client that keeps cookies (a
/// browser) sticks to its replica. With `resolver` (a container
/// network's DNS) the names are looked up again while it runs, so a
/// replica that comes back at a new address is found.
pub fn haproxy_config(
    bind: &str,
    balance: Balance,
    maxconn: u64,
    replicas: &[(String, String)],
    resolver: Option<&str>,
) -> String {
    let balance = match balance {
        Balance::Source => "source",
        Balance::Roundrobin => "roundrobin",
        Balance::Leastconn => "leastconn",
    };
    let (resolvers, lookup) = match resolver {
        Some(dns) => (
            format!("resolvers network\n    nameserver dns {dns}\n    hold valid 1s\n"),
            " resolvers network init-addr last,libc,none",
        ),
        None => (String::new(), ""),
    };
    let all = replicas.len();
    let mut servers = String::new();
    for (name, addr) in replicas {
        let _ = writeln!(
            servers,
            "    server {name} {addr} cookie {name} check inter 1s fall 2 rise 1{lookup}"
        );
    }
    format!(
        "global\n    maxconn {maxconn}\n\
         {resolvers}\
         defaults\n    mode http\n    maxconn {maxconn}\n    retries 2\n    option redispatch 1\n    timeout connect 2s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n\
         frontend players\n    bind {bind}\n    monitor-uri {LB_REPLICAS_UP}\n    monitor fail if {{ nbsrv(replicas) lt {all} }}\n    default_backend replicas\n\
         backend replicas\n    balance {balance}\n    cookie tierlab-replica insert indirect nocache\n    option httpchk GET /ready\n{servers}"
    )
}

fn sentinel_config(port: u16, primary: u16) -> String {
    format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n\
         sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
         sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
         sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
    )
}

/// Sends one inline command to the Redis (or Sentinel) at `addr` and
/// returns the start of its reply.
pub async fn ask_redis(addr: SocketAddr, command: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .ok()?
    .ok()?;
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .ok()?;
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut reply))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&reply[..n]).into_owned())
}

async fn replica_in_sync(port: u16) -> bool {
    ask_redis(loopback(port), "INFO replication")
        .await
        .is_some_and(|info| info.contains("master_link_status:up"))
}

/// The primary's port as the Sentinel on `port` names it.
async fn sentinel_primary(port: u16) -> Option<u16> {
    let reply = ask_redis(
        loopback(port),
        &format!("SENTINEL get-master-addr-by-name {SENTINEL_MASTER}"),
    )
    .await?;
    // *2\r\n$9\r\n127.0.0.1\r\n$5\r\n41234\r\n
    reply.split("\r\n").nth(4)?.parse().ok()
}

async fn redis_answers(port: u16) -> bool {
    ask_redis(loopback(port), "PING")
        .await
        .is_some_and(|reply| reply.starts_with("+PONG"))
}

/// Whether `base` + `path` answers 2xx within a second.
async fn http_ready(base: &str, path: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Waits until `endpoint` answers 2xx on `path`.
async fn wait_http(endpoint: &Endpoint, path: &str, dir: &Path) -> Result<(), TopologyError> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if http_ready(&endpoint.http_url, path).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(TopologyError::NotReady {
                what: endpoint.name.clone(),
                log: dir
                    .join("logs")
                    .join(format!("{}.log", endpoint.name))
                    .display()
                    .to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_config_names_every_replica_and_checks_ready() {
        let replicas = [
            ("srv-1".to_owned(), "127.0.0.1:9001".to_owned()),
            ("srv-2".to_owned(), "127.0.0.1:9002".to_owned()),
        ];
        let config = haproxy_config("127.0.0.1:8000", Balance::Source, 4000, &replicas, None);
        assert!(config.contains("bind 127.0.0.1:8000"));
        assert!(config.contains("server srv-1 127.0.0.1:9001 cookie srv-1 check"));
        assert!(config.contains("server srv-2 127.0.0.1:9002 cookie srv-2 check"));
        assert!(config.contains("option httpchk GET /ready"));
        assert!(config.contains("monitor-uri /replicas-up"));
        assert!(config.contains("monitor fail if { nbsrv(replicas) lt 2 }"));
        assert!(config.contains("balance source"));
        assert!(
            config.contains("timeout tunnel"),
            "WebSocket tunnels outlive client timeouts"
        );
    }

    #[test]
    fn direct_players_spread_a_room_over_replicas() {
        let mut topology = Topology::empty(Path::new("."), None);
        topology.replicas = vec![
            Endpoint::local("a", 1),
            Endpoint::local("b", 2),
            Endpoint::local("c", 3),
        ];
        let urls: Vec<&str> = (0..3)
            .map(|m| topology.player_url(Via::Direct, 0, m))
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
