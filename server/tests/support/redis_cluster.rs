//! A real Redis Cluster for tests: six `redis-server` processes in cluster
//! mode (AOF always), joined by `redis-cli --cluster create` into three
//! masters with one replica each, plus what tests ask of it — which master
//! owns a key, killing a node, waiting for a failover.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;

const NODES: usize = 6;
const SETTLE: Duration = Duration::from_secs(30);

pub struct RedisCluster {
    pub ports: Vec<u16>,
    /// Each node's cluster bus port, kept for a restart.
    bus_ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let (mut ports, mut bus_ports, mut children) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..NODES {
            let (port, bus, child) = start_node(&dir);
            ports.push(port);
            bus_ports.push(bus);
            children.push(Some(child));
        }
        let cluster = RedisCluster {
            ports,
            bus_ports,
            children,
            dir,
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be on PATH (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_for("every node to see the cluster ok", || {
            cluster.ports.iter().all(|&p| {
                cli(p, &["CLUSTER", "INFO"]).is_some_and(|r| r.contains("cluster_state:ok"))
            })
        });
        cluster.wait_for("every master to have its replica in sync", || {
            cluster.masters().iter().all(|&p| {
                cli(p, &["INFO", "replication"]).is_some_and(|r| r.contains("state=online"))
            })
        });
        cluster
    }

    /// `host:port,…` of every node, for `--redis-cluster`.
    pub fn nodes(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn live_port(&self) -> u16 {
        self.ports
            .iter()
            .zip(&self.children)
            .find(|(_, child)| child.is_some())
            .map(|(&p, _)| p)
            .unwrap()
    }

    /// Ports of the nodes that are masters now, as a live node sees it.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes_table()
            .iter()
            .filter(|n| n.master && n.connected)
            .map(|n| n.port)
            .collect()
    }

    /// The port of the master that owns `key`'s slot now.
    pub fn owner(&self, key: &str) -> Option<u16> {
        let slot: u16 = cli(self.live_port(), &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .ok()?;
        self.nodes_table()
            .into_iter()
            .find(|n| {
                n.master && n.connected && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
            })
            .map(|n| n.port)
    }

    /// SIGKILL the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).unwrap();
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node on `port` again with its data and cluster config: it
    /// rejoins, as a replica of whoever took its slots over.
    pub fn restart(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).unwrap();
        self.kill(port);
        self.children[i] = Some(spawn_node(port, self.bus_ports[i], &self.dir));
        self.wait_for("the restarted node to replicate", || {
            cli(port, &["INFO", "replication"]).is_some_and(|r| r.contains("master_link_status:up"))
        });
    }

    /// Waits until `key`'s slot has a live master other than `old`.
    pub fn wait_failover(&self, key: &str, old: u16) -> u16 {
        let mut new = None;
        self.wait_for("a replica to take over", || {
            new = self.owner(key).filter(|&p| p != old);
            new.is_some()
        });
        new.unwrap()
    }

    /// `redis-cli` on `port`, for assertions about what a node holds.
    pub fn ask(&self, port: u16, args: &[&str]) -> String {
        cli(port, args).unwrap_or_default()
    }

    fn nodes_table(&self) -> Vec<NodeLine> {
        cli(self.live_port(), &["CLUSTER", "NODES"])
            .map(|text| text.lines().filter_map(NodeLine::parse).collect())
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + SETTLE;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node on free ports, answering PING. A port free a moment ago may since
/// be another socket's (a parallel test's connection): when the node exits
/// at start, it is started again on other ports.
fn start_node(dir: &TempDir) -> (u16, u16, Child) {
    for _ in 0..5 {
        let (port, bus) = (free_port(), free_port());
        let mut child = spawn_node(port, bus, dir);
        let deadline = Instant::now() + SETTLE;
        loop {
            if cli(port, &["PING"]).is_some_and(|r| r.trim() == "PONG") {
                return (port, bus, child);
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "node {port} does not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("redis-server exited at start on five pairs of ports in a row");
}

fn spawn_node(port: u16, bus: u16, dir: &TempDir) -> Child {
    let node_dir = dir.path().join(port.to_string());
    std::fs::create_dir_all(&node_dir).unwrap();
    Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--cluster-port", &bus.to_string()])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ])
        .arg("--dir")
        .arg(&node_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be on PATH (apt-get install redis-server)")
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One line of CLUSTER NODES: `id ip:port@bus flags master ping pong epoch
/// link-state slot…`.
struct NodeLine {
    port: u16,
    master: bool,
    connected: bool,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields
            .get(1)?
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let flags = fields.get(2)?;
        let slots = fields
            .iter()
            .skip(8)
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|x| (x, x)),
            })
            .collect();
        Some(NodeLine {
            port,
            master: flags.contains("master") && !flags.contains("fail"),
            connected: fields.get(7) == Some(&"connected"),
            slots,
        })
    }
}
