//! The processes a local topology starts: how each was launched (kept, so
//! a drill can start it again as it was), how to see it is ready, and the
//! child itself — which dies with `tierlab` (`PR_SET_PDEATHSIG`) and is
//! killed on drop, so nothing outlives a run, even one that panics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::super::{loopback, Endpoint, TopologyError, READY, READY_WITHIN};
use crate::probe;

/// How to start a process, kept so a drill can start it again as it was.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub what: String,
    pub hint: &'static str,
    /// Where to see that it is ready again.
    pub ready: Readiness,
}

#[derive(Debug, Clone)]
pub enum Readiness {
    RedisPing(u16),
    /// A Redis replica whose link to its primary is up (first sync done).
    RedisInSync(u16),
    Http(Endpoint),
}

impl Readiness {
    /// The Redis port it watches, for a Redis.
    pub fn redis_port(&self) -> Option<u16> {
        match self {
            Readiness::RedisPing(port) | Readiness::RedisInSync(port) => Some(*port),
            Readiness::Http(_) => None,
        }
    }
}

/// A child process (absent while a drill keeps it down).
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub launch: Launch,
    pub child: Option<Child>,
}

/// Starts `launch` as a child that dies with us and appends to
/// `dir/logs/<name>.log` (a restart continues the same log); a failure
/// names the program and how to install it.
pub fn spawn(launch: &Launch, dir: &Path, name: &str) -> Result<Child, TopologyError> {
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

/// Waits until the process `name` is ready as `ready` says.
pub async fn wait_ready(ready: &Readiness, name: &str, dir: &Path) -> Result<(), TopologyError> {
    let ok = match ready {
        Readiness::Http(endpoint) => return wait_http(endpoint, READY, dir).await,
        Readiness::RedisPing(port) => {
            let addr = loopback(*port);
            probe::wait_until(READY_WITHIN, Duration::from_millis(20), || {
                probe::redis_answers(addr)
            })
            .await
        }
        Readiness::RedisInSync(port) => {
            let addr = loopback(*port);
            probe::wait_until(READY_WITHIN, Duration::from_millis(20), || async move {
                probe::redis_answers(addr).await && probe::replica_in_sync(addr).await
            })
            .await
        }
    };
    ok.then_some(()).ok_or_else(|| not_ready(name, dir))
}

/// Waits until `endpoint` answers 2xx on `path`.
pub async fn wait_http(endpoint: &Endpoint, path: &str, dir: &Path) -> Result<(), TopologyError> {
    let ok = probe::wait_until(READY_WITHIN, Duration::from_millis(50), || {
        probe::http_ready(&endpoint.http_url, path)
    })
    .await;
    ok.then_some(())
        .ok_or_else(|| not_ready(&endpoint.name, dir))
}

fn not_ready(name: &str, dir: &Path) -> TopologyError {
    TopologyError::NotReady {
        what: name.to_owned(),
        log: dir
            .join("logs")
            .join(format!("{name}.log"))
            .display()
            .to_string(),
    }
}

/// The first line a program prints of its version, or "not found".
pub async fn version_of(program: &str, args: &[&str]) -> String {
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
