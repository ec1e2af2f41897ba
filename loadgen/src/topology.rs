//! The system under test. `local`: `tierlab` starts `redis-server`, N
//! `tierlab-server` replicas and HAProxy on free loopback ports, waits until
//! all are ready, and stops every one of them when the run ends — on success,
//! error, Ctrl-C or panic (children die with their parent through
//! `PR_SET_PDEATHSIG`, and `Drop` kills them during unwinding). `external`: URLs
//! of a system someone else runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::scenario::{self, Balance, Persistence, StateMode, TopologyKind, Via};

const READY_WITHIN: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(5);

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
}

/// Where one replica (or the load balancer) answers.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub ws_url: String,
    pub http_url: String,
}

impl Endpoint {
    fn local(name: &str, port: u16) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            ws_url: format!("ws://127.0.0.1:{port}/ws"),
            http_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// A child process with the log file it writes to.
#[derive(Debug)]
struct Process {
    name: String,
    child: Child,
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
}

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A command whose child dies with us and logs to `dir/logs/<name>.log`.
fn command(program: &Path, dir: &Path, name: &str) -> Result<Command, TopologyError> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    Ok(cmd)
}

/// Starts `cmd`; a failure names the program and how to install it.
fn spawn(cmd: &mut Command, what: &str, hint: &'static str) -> Result<Child, TopologyError> {
    cmd.spawn().map_err(|source| TopologyError::Spawn {
        what: what.to_owned(),
        hint,
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

async fn version_of(program: &str, flag: &str) -> String {
    match Command::new(program).arg(flag).output().await {
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
    pub async fn start(spec: &scenario::Topology, dir: &Path) -> Result<Topology, TopologyError> {
        match spec.kind {
            TopologyKind::External => Topology::external(spec),
            TopologyKind::Local => Topology::local(spec, dir).await,
        }
    }

    fn external(spec: &scenario::Topology) -> Result<Topology, TopologyError> {
        let replicas = spec
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
        Ok(Topology {
            ledger: None,
            replicas,
            lb: None,
            redis_url: None,
            versions: Vec::new(),
            processes: Vec::new(),
        })
    }

    async fn local(spec: &scenario::Topology, dir: &Path) -> Result<Topology, TopologyError> {
        let mut topology = Topology {
            ledger: Some(dir.join("processes.txt")),
            replicas: Vec::new(),
            lb: None,
            redis_url: None,
            versions: vec![("tierlab".into(), env!("CARGO_PKG_VERSION").into())],
            processes: Vec::new(),
        };
        match topology.start_all(spec, dir).await {
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
        dir: &Path,
    ) -> Result<(), TopologyError> {
        if spec.state == StateMode::Redis {
            self.start_redis(spec.persistence, dir).await?;
            self.versions.push((
                "redis".into(),
                version_of("redis-server", "--version").await,
            ));
        }
        let server = server_binary(spec);
        self.versions.push((
            "tierlab-server".into(),
            version_of(&server.to_string_lossy(), "--version").await,
        ));
        for i in 1..=spec.replicas {
            self.start_replica(spec, &server, i, dir).await?;
        }
        if spec.via == Via::Lb {
            self.start_haproxy(spec.balance, dir).await?;
            self.versions
                .push(("haproxy".into(), version_of("haproxy", "-v").await));
        }
        let mut endpoints: Vec<&Endpoint> = self.replicas.iter().collect();
        endpoints.extend(self.lb.as_ref());
        for endpoint in endpoints {
            wait_http_ready(endpoint, dir).await?;
        }
        Ok(())
    }

    async fn start_redis(
        &mut self,
        persistence: Persistence,
        dir: &Path,
    ) -> Result<(), TopologyError> {
        let port = free_port()?;
        let data = dir.join("redis");
        std::fs::create_dir_all(&data)?;
        let mut cmd = command(Path::new("redis-server"), dir, "redis")?;
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&data)
        .args(["--daemonize", "no", "--logfile", ""]);
        match persistence {
            Persistence::None => cmd.args(["--appendonly", "no"]),
            Persistence::AofEverysec => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"])
            }
            Persistence::AofAlways => cmd.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        let child = spawn(&mut cmd, "redis-server", "apt-get install -y redis-server")?;
        self.adopt("redis".into(), child)?;
        let deadline = Instant::now() + READY_WITHIN;
        while !redis_answers(port).await {
            if Instant::now() > deadline {
                return Err(TopologyError::NotReady {
                    what: "redis-server".into(),
                    log: dir.join("logs/redis.log").display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        Ok(())
    }

    async fn start_replica(
        &mut self,
        spec: &scenario::Topology,
        server: &Path,
        i: u32,
        dir: &Path,
    ) -> Result<(), TopologyError> {
        let port = free_port()?;
        let name = format!("srv-{i}");
        let mut cmd = command(server, dir, &name)?;
        cmd.args(["--port", &port.to_string(), "--server-id", &name])
            .env("RUST_LOG", "warn");
        match &self.redis_url {
            Some(url) => cmd.args(["--state", "redis", "--redis-url", url]),
            None => cmd.args(["--state", "memory"]),
        };
        if spec.via == Via::Assigned {
            cmd.args(["--assign", "least-loaded"]);
        }
        // Several replicas sharing this machine's cores run one thread each:
        // measured, it cut p95 fan-out at 3,000 players from 151 ms to 16 ms
        // (docs/performance.md). A scenario's own --workers wins.
        if spec.replicas > 1 && !spec.server_args.iter().any(|a| a == "--workers") {
            cmd.args(["--workers", "1"]);
        }
        cmd.args(&spec.server_args);
        let child = spawn(
            &mut cmd,
            &server.display().to_string(),
            "cargo build --release -p tierlab-server",
        )?;
        self.adopt(name.clone(), child)?;
        self.replicas.push(Endpoint::local(&name, port));
        Ok(())
    }

    async fn start_haproxy(&mut self, balance: Balance, dir: &Path) -> Result<(), TopologyError> {
        let port = free_port()?;
        let config = haproxy_config(port, balance, &self.replicas);
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let mut cmd = command(Path::new("haproxy"), dir, "haproxy")?;
        cmd.arg("-db").arg("-f").arg(&path);
        let child = spawn(&mut cmd, "haproxy", "apt-get install -y haproxy")?;
        self.adopt("haproxy".into(), child)?;
        self.lb = Some(Endpoint::local("haproxy", port));
        Ok(())
    }

    fn adopt(&mut self, name: String, child: Child) -> Result<(), TopologyError> {
        if let (Some(ledger), Some(pid)) = (&self.ledger, child.id()) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(ledger)?;
            std::io::Write::write_all(&mut file, format!("{name} {pid}\n").as_bytes())?;
        }
        self.processes.push(Process { name, child });
        Ok(())
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

    /// Process ids of the replicas and Redis (for CPU/memory sampling).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes
            .iter()
            .filter_map(|p| p.child.id().map(|id| (p.name.clone(), id)))
            .collect()
    }

    /// SIGTERM the replicas (they drain), then kill whatever is left.
    pub async fn stop(mut self) {
        for process in &self.processes {
            if let Some(pid) = process.child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for process in &mut self.processes {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, process.child.wait())
                .await
                .is_err()
            {
                tracing::warn!(name = process.name, "did not stop in time; killing");
                let _ = process.child.kill().await;
            }
        }
        self.processes.clear();
    }
}

/// Connections HAProxy can hold: two descriptors per tunnelled player, under
/// the descriptor limit it inherits (it cannot raise the hard limit itself).
fn haproxy_maxconn() -> u64 {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(4096, |(_, hard)| hard);
    (hard.saturating_sub(64) / 2).clamp(256, 100_000)
}

pub fn haproxy_config(port: u16, balance: Balance, replicas: &[Endpoint]) -> String {
    let balance = match balance {
        Balance::Source => "source",
        Balance::Roundrobin => "roundrobin",
        Balance::Leastconn => "leastconn",
    };
    let maxconn = haproxy_maxconn();
    let mut servers = String::new();
    for replica in replicas {
        let addr = replica.http_url.trim_start_matches("http://");
        let _ = writeln!(
            servers,
            "    server {} {addr} check inter 1s fall 2 rise 1",
            replica.name
        );
    }
    format!(
        "global\n    maxconn {maxconn}\n\
         defaults\n    mode http\n    maxconn {maxconn}\n    timeout connect 2s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n\
         frontend players\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance {balance}\n    option httpchk GET /ready\n{servers}"
    )
}

async fn redis_answers(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && matches!(
            tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut reply)).await,
            Ok(Ok(_))
        )
        && &reply == b"+PONG\r\n"
}

async fn wait_http_ready(endpoint: &Endpoint, dir: &Path) -> Result<(), TopologyError> {
    let client = reqwest::Client::new();
    let url = format!("{}/ready", endpoint.http_url);
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(response) = client
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
        {
            if response.status().is_success() {
                return Ok(());
            }
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
            Endpoint::local("srv-1", 9001),
            Endpoint::local("srv-2", 9002),
        ];
        let config = haproxy_config(8000, Balance::Source, &replicas);
        assert!(config.contains("bind 127.0.0.1:8000"));
        assert!(config.contains("server srv-1 127.0.0.1:9001 check"));
        assert!(config.contains("server srv-2 127.0.0.1:9002 check"));
        assert!(config.contains("option httpchk GET /ready"));
        assert!(config.contains("balance source"));
        assert!(
            config.contains("timeout tunnel"),
            "WebSocket tunnels outlive client timeouts"
        );
    }

    #[test]
    fn direct_players_spread_a_room_over_replicas() {
        let topology = Topology {
            ledger: None,
            replicas: vec![
                Endpoint::local("a", 1),
                Endpoint::local("b", 2),
                Endpoint::local("c", 3),
            ],
            lb: None,
            redis_url: None,
            versions: vec![],
            processes: vec![],
        };
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
