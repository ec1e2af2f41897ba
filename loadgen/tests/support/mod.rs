//! Helpers shared by the end-to-end tests: the `tierlab` binary, its run
//! record checked against the published schema, and what a run left alive.

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../../server/tests/support/docker.rs"]
pub mod docker;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tierlab` with the `tierlab-server` built beside it.
pub fn tierlab() -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tierlab"));
    let server = bin.with_file_name("tierlab-server");
    assert!(
        server.exists(),
        "{} is missing: build it first (cargo build -p tierlab-server; `just test` does)",
        server.display()
    );
    let mut cmd = Command::new(bin);
    cmd.current_dir(workspace());
    cmd
}

/// `tierlab run SCENARIO --quiet --out DIR` with `overrides` (`key=value`,
/// each passed as `--set`).
pub fn run(
    scenario: impl AsRef<std::ffi::OsStr>,
    dir: &Path,
    overrides: &[&str],
) -> std::process::Output {
    let mut cmd = tierlab();
    cmd.arg("run")
        .arg(scenario)
        .args(["--quiet", "--out"])
        .arg(dir);
    for set in overrides {
        cmd.args(["--set", set]);
    }
    cmd.output().unwrap()
}

pub fn read_run(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

pub fn schema_errors(record: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/run.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut errors: Vec<String> = validator
        .iter_errors(record)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    // What the schema cannot say: a second is one row (a merge adds rows
    // that share a second, so a repeated one would count twice).
    let seconds: Vec<u64> = record["timeseries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["t"].as_u64())
        .collect();
    if let Some(w) = seconds.windows(2).find(|w| w[1] <= w[0]) {
        errors.push(format!("timeseries: second {} follows {}", w[1], w[0]));
    }
    errors
}

/// Processes the run started (its `processes.txt`) that are still alive.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let ledger = std::fs::read_to_string(dir.join("processes.txt")).unwrap_or_default();
    ledger
        .lines()
        .filter(|line| {
            let pid = line.split_whitespace().nth(1).unwrap_or("0");
            // Alive and not a zombie waiting for a parent that is gone.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
            })
        })
        .map(str::to_owned)
        .collect()
}

/// The fault named `name` in a run record.
pub fn fault<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no fault {name} in {}", record["faults"]))
}

/// Processes a test started (someone else's system, a peer): killed and
/// reaped when the test ends, however it ends.
pub struct Children(pub Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    tierlab_loadgen::topology::free_port().unwrap()
}

/// Starts `what` on a free port (`command(port)`) and waits until it
/// accepts connections; picks another port if the child exits first — a
/// port free a moment ago may since be another socket's, e.g. the local
/// end of some player's connection.
pub fn spawn_listening(
    children: &mut Children,
    what: &str,
    command: impl Fn(u16) -> Command,
) -> u16 {
    for _ in 0..5 {
        let port = free_port();
        let mut child = command(port)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                children.0.push(child);
                return port;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} does not answer on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    panic!("{what} exited at start on five ports in a row");
}

/// A redis-server on a free port, without persistence.
pub fn redis(children: &mut Children) -> u16 {
    spawn_listening(children, "redis-server", |port| {
        let mut redis = Command::new("redis-server");
        redis
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null());
        redis
    })
}
