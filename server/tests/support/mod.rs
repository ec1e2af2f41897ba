//! Test support: real `redis-server` processes on free ports, replicas of the
//! server (in-process, or as the real binary so a test can SIGKILL it), and a
//! small WebSocket client that speaks the protocol.

#![allow(dead_code, clippy::unwrap_used)]

mod client;
pub mod docker;
pub mod redis_cluster;

// Each test binary uses its own part of the client.
#[allow(unused_imports)]
pub use client::{act_frame, seqs, Client};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tierlab_server::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a test Redis keeps across a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    None,
    /// AOF with `appendfsync always`: nothing acknowledged is lost.
    AofAlways,
}

/// A `redis-server` child on a free port; killed when dropped.
pub struct Redis {
    pub port: u16,
    dir: TempDir,
    persistence: Persistence,
    child: Option<Child>,
}

impl Redis {
    pub fn start(persistence: Persistence) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            persistence,
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(self.dir.path())
        .args(["--daemonize", "no", "--logfile", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if self.persistence == Persistence::AofAlways {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server must be on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !redis_answers(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown save, exactly like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: Redis keeps its sockets but answers nothing (a stall, a
    /// GC-like pause, a partition that drops nothing).
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// SIGCONT: what it was sent meanwhile is executed now.
    pub fn unpause(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("redis is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Runs one command with redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli must be on PATH");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A replica running in this test process.
pub struct Replica {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Replica {
    /// Starts a replica with `args` (flags as on the command line).
    pub async fn start(args: &[&str]) -> Replica {
        let mut argv = vec!["tierlab-server", "--port", "0"];
        argv.extend_from_slice(args);
        let config = Config::parse_from(argv).expect("valid test config");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tierlab_server::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("server ran");
        });
        let replica = Replica {
            addr,
            stop: Some(stop),
            task: Some(task),
        };
        wait_ready(addr).await;
        replica
    }

    pub async fn redis(redis: &Redis, id: &str, extra: &[&str]) -> Replica {
        let url = redis.url();
        let mut args = vec!["--redis-url", url.as_str(), "--server-id", id];
        args.extend_from_slice(extra);
        Replica::start(&args).await
    }

    pub async fn memory(extra: &[&str]) -> Replica {
        let mut args = vec!["--state", "memory", "--server-id", "mem-1"];
        args.extend_from_slice(extra);
        Replica::start(&args).await
    }

    /// The replica's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts a graceful shutdown (as on SIGTERM) and returns at once.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Graceful shutdown (as on SIGTERM); waits until the server returned.
    pub async fn stop(&mut self) {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("drained in time")
                .unwrap();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The real `tierlab-server` binary in a child process.
pub struct ReplicaProcess {
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl ReplicaProcess {
    pub async fn start(redis: &Redis, id: &str, extra: &[&str]) -> ReplicaProcess {
        ReplicaProcess::start_with(redis, id, extra, None).await
    }

    /// The same, with the descriptor limit (`ulimit -n`) set to `nofile`.
    pub async fn start_with(
        redis: &Redis,
        id: &str,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> ReplicaProcess {
        let port = free_port();
        let binary = env!("CARGO_BIN_EXE_tierlab-server");
        let mut command = match nofile {
            Some(n) => {
                let mut limited = Command::new("prlimit");
                limited.arg(format!("--nofile={n}:{n}")).arg(binary);
                limited
            }
            None => Command::new(binary),
        };
        let child = command
            .args([
                "--port",
                &port.to_string(),
                "--redis-url",
                &redis.url(),
                "--server-id",
                id,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let process = ReplicaProcess {
            addr,
            child: Some(child),
        };
        wait_ready(addr).await;
        process
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit on its own; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `url` and parse its JSON body.
pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Polls `GET /api/servers` of `replica` until the live replica ids satisfy
/// `want`; returns them. (Right after start-up a replica may not have
/// reached Redis or sent its first heartbeat yet.)
pub async fn wait_registry(replica: &Replica, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let url = replica.http("/api/servers");
    let deadline = Instant::now() + WAIT;
    loop {
        let ids: Option<Vec<String>> = get_json(&url).await.as_array().map(|list| {
            list.iter()
                .filter_map(|s| s["server"].as_str().map(str::to_owned))
                .collect()
        });
        if let Some(ids) = ids.filter(|ids| want(ids)) {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "the registry never looked as expected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_ready(addr: SocketAddr) {
    let url = format!("http://{addr}/ready");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "replica at {addr} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `/health` until its status is `want`.
pub async fn wait_health(addr: SocketAddr, want: &str) -> serde_json::Value {
    let url = format!("http://{addr}/health");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(&url).await {
            let body: serde_json::Value = r.json().await.unwrap();
            if body["status"] == want {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "health of {addr} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
