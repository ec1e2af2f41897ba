//! A run that needs more players than one process may hold: this process
//! starts the topology and as many `tierlab run --shard I/N` worker
//! processes as the players need, all against that one system and lined up
//! by `--start-at`, then adds their run directories into one run exactly,
//! as `tierlab merge` does. Each worker holds at most what its descriptor
//! limit allows (one descriptor per player, less a reserve); the record of
//! the whole run names the topology as it was started here, with the
//! sampler's per-process figures.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tierlab_record::RunRecord;
use tokio::process::{Child, Command};

use super::recorder::{scenario_info, topology_info, versions};
use super::{run_dir, Outcome, RunError, RunOptions};
use crate::sampler::Sampler;
use crate::scenario::{Model, Scenario, ServerKind, TopologyKind, Via};
use crate::topology::Topology;
use crate::wallclock::unix_seconds;

/// Descriptors a worker keeps for what is not a player (its runtime, the
/// HTTP side, logs, the run's files).
const DESCRIPTOR_RESERVE: u64 = 512;
/// Time the workers get to start before the load begins.
const START_GRACE: Duration = Duration::from_secs(4);

/// How many processes `scenario` needs: `forced` if given, else as many as
/// its peak players need at one descriptor each (1: this one is enough).
pub fn needed(scenario: &Scenario, forced: Option<usize>) -> usize {
    if let Some(n) = forced {
        return n.max(1);
    }
    if scenario.load.model != Model::Closed {
        return 1;
    }
    let peak = scenario
        .load
        .stages
        .iter()
        .map(|s| s.to)
        .fold(0.0, f64::max) as u64;
    let per_process = descriptor_limit().saturating_sub(DESCRIPTOR_RESERVE).max(1);
    peak.div_ceil(per_process).max(1) as usize
}

/// The descriptors this process may open (its hard limit: `tierlab` raises
/// the soft one to it).
fn descriptor_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(_, hard)| hard)
}

/// Runs `scenario` in `count` worker processes.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    count: usize,
) -> Result<(PathBuf, Outcome), RunError> {
    if !scenario.faults.is_empty() {
        return Err(RunError::Workers(format!(
            "this population needs {count} processes, and fault drills run in one; lower the players or drop the faults"
        )));
    }
    let started_at = SystemTime::now();
    let dir = run_dir(scenario, options, started_at)?;
    let topology = Topology::start(&scenario.topology, &dir, &[]).await?;
    let outcome = drive(scenario, options, count, &topology, &dir).await;
    topology.stop().await;
    outcome.map(|o| (dir, o))
}

async fn drive(
    scenario: &Scenario,
    options: &RunOptions,
    count: usize,
    topology: &Topology,
    dir: &Path,
) -> Result<Outcome, RunError> {
    let text = dir.join("scenario.toml");
    std::fs::write(&text, &scenario.source).map_err(|source| RunError::Dir {
        path: text.clone(),
        source,
    })?;
    // The workers' clock starts when they all start together.
    let origin = std::time::Instant::now() + START_GRACE;
    let sampler = topology
        .sampler_targets()
        .map(|targets| Sampler::start(targets, origin));
    let start_at = unix_seconds(SystemTime::now() + START_GRACE);
    let overrides = overrides(scenario, topology);
    let mut children = Vec::new();
    let mut parts = Vec::new();
    for index in 0..count {
        let out = dir.join(format!("worker-{index}"));
        children.push(spawn(
            &text,
            &overrides,
            (index, count),
            start_at,
            &out,
            dir,
        )?);
        parts.push(out);
    }
    options.progress.line(&format!(
        "workers: {count} processes of up to {} players each; their logs in {}",
        descriptor_limit().saturating_sub(DESCRIPTOR_RESERVE),
        dir.join("logs").display()
    ));
    wait(&mut children, options).await;
    let processes = match sampler {
        Some(sampler) => sampler.finish().await,
        None => Vec::new(),
    };
    crate::merge::merge_dirs(&parts, dir).map_err(|e| RunError::Workers(e.to_string()))?;
    let mut record = RunRecord::load(dir)?;
    record.scenario = scenario_info(scenario);
    record.topology = topology_info(scenario, topology);
    record.versions = versions(topology);
    record.processes = processes;
    record.write(dir)?;
    Ok(if record.partial {
        Outcome::Interrupted
    } else if record.slos_held() {
        Outcome::Passed
    } else {
        Outcome::SloFailed
    })
}

/// The scenario as the workers see it: the system this process started,
/// reached as an external one.
fn overrides(scenario: &Scenario, topology: &Topology) -> Vec<String> {
    let urls: Vec<String> = match (scenario.topology.via, topology.lb()) {
        (Via::Lb, Some(lb)) => vec![lb.ws_url.clone()],
        _ => topology
            .replicas()
            .iter()
            .map(|r| r.ws_url.clone())
            .collect(),
    };
    let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let mut overrides = vec![
        format!("topology.kind=\"{}\"", TopologyKind::External),
        format!("topology.urls=[{}]", quoted.join(",")),
        format!("topology.http=\"{}\"", topology.http_base()),
        format!("topology.server=\"{}\"", ServerKind::Tierlab),
    ];
    if scenario.topology.via == Via::Lb {
        // One URL, the load balancer's: "direct" to it is the same.
        overrides.push(format!("topology.via=\"{}\"", Via::Direct));
    }
    overrides
}

fn spawn(
    scenario: &Path,
    overrides: &[String],
    (index, count): (usize, usize),
    start_at: f64,
    out: &Path,
    dir: &Path,
) -> Result<Child, RunError> {
    let failed = |source| RunError::Dir {
        path: dir.join("logs"),
        source,
    };
    std::fs::create_dir_all(dir.join("logs")).map_err(failed)?;
    let log = std::fs::File::create(dir.join("logs").join(format!("worker-{index}.log")))
        .map_err(failed)?;
    let exe = std::env::current_exe().map_err(failed)?;
    let mut command = Command::new(exe);
    command.arg("run").arg(scenario);
    for o in overrides {
        command.arg("--set").arg(o);
    }
    command
        .arg("--shard")
        .arg(format!("{index}/{count}"))
        .arg("--start-at")
        .arg(format!("{start_at:.3}"))
        .arg("--out")
        .arg(out)
        .arg("--rooms")
        .arg(dir.join("rooms.json"))
        .arg("--quiet")
        .arg("--no-report")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    command.spawn().map_err(failed)
}

/// Waits for every worker; on Ctrl-C tells each to stop (SIGINT: it
/// writes its partial record) and waits on.
async fn wait(children: &mut [Child], options: &RunOptions) {
    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    let all = async {
        for child in children.iter_mut() {
            let _ = child.wait().await;
        }
    };
    tokio::pin!(all);
    tokio::select! {
        () = &mut all => return,
        () = options.interrupt.cancelled() => {}
    }
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
    all.await;
}
