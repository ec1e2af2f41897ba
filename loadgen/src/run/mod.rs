//! One run of a scenario, end to end: start the topology, create the rooms,
//! ramp players along the load shape while the drill injects its faults,
//! then stop the players, check deliveries, judge the SLOs and stop the
//! topology. Each step has its own file: `rooms` (creating rooms, laying
//! out seats), `spawner` (players following the load shape), `pump` (the
//! aggregator loop and the drain), `recorder` (run.json, latency.hlog and
//! progress while it goes on, the verdicts at the end).

mod pump;
mod recorder;
mod rooms;
mod spawner;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::drill;
use crate::http::Traffic;
use crate::lane::Lanes;
use crate::player::Arena;
use crate::progress::Progress;
use crate::sampler::Sampler;
use crate::scenario::{Scenario, Via};
use crate::shard::{Shard, ShardError, ShardInfo};
use crate::topology::{Topology, TopologyError};
use crate::usage;
use crate::wallclock::{dir_stamp, unix_seconds};

use self::pump::{pump, Load};
use self::recorder::Recorder;
use self::rooms::{rooms_for, seats, RoomsError};
use self::spawner::Spawner;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    /// Where the progress line goes (quiet: nowhere).
    pub progress: Progress,
    /// Cancelled on Ctrl-C: the run ends early and says so.
    pub interrupt: CancellationToken,
    /// This worker's slice of the population (`--shard I/N`).
    pub shard: Option<Shard>,
    /// Start the load at this moment (`--start-at`), to line workers up.
    pub start_at: Option<SystemTime>,
    /// Where the rooms of a cross-worker sharded run are shared (`--rooms`):
    /// worker 0 creates them and writes this file; the others read it.
    pub rooms_file: Option<PathBuf>,
    /// The players' threads (default: one per core).
    pub lanes: Option<usize>,
    /// Worker processes (default: as many as the players need).
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end and every SLO held.
    Passed,
    SloFailed,
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start: {0}")]
    Shard(#[from] ShardError),
    #[error("could not start: run directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not start: {0}")]
    Topology(#[from] TopologyError),
    #[error("could not start: {0}")]
    Rooms(#[from] RoomsError),
    #[error("worker processes: {0}")]
    Workers(String),
    #[error("could not start the players' threads: {source}")]
    Lanes { source: std::io::Error },
    #[error("run failed: {0}")]
    Record(#[from] tierlab_record::RecordError),
    #[error("interrupted during set-up")]
    Interrupted,
}

impl RunError {
    /// The run never began: the scenario, the topology or the rooms failed.
    pub fn before_start(&self) -> bool {
        !matches!(self, RunError::Record(_) | RunError::Interrupted)
    }
}

/// Runs `scenario`; returns the run directory and how it ended.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<(PathBuf, Outcome), RunError> {
    if options.shard.is_none() {
        let count = workers::needed(scenario, options.workers);
        if count > 1 {
            return workers::run(scenario, options, count).await;
        }
    }
    let sliced;
    let scenario = match options.shard {
        Some(shard) => {
            sliced = shard.slice(scenario)?;
            &sliced
        }
        None => scenario,
    };
    if let Some(at) = options.start_at {
        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = options.interrupt.cancelled() => return Err(RunError::Interrupted),
        }
    }
    let started_at = SystemTime::now();
    let shard = options
        .shard
        .map(|shard| shard_info(shard, options.start_at, started_at));
    let dir = run_dir(scenario, options, started_at)?;
    let _log = crate::run_log::Open::new(&dir);
    let mut topology = Topology::start(&scenario.topology, &dir, &scenario.faults).await?;
    let outcome = drive(scenario, options, &mut topology, &dir, (started_at, shard)).await;
    topology.stop().await;
    outcome.map(|o| (dir, o))
}

/// What the record says of this worker's slice; the skew is how late it
/// began after `start_at`.
fn shard_info(shard: Shard, start_at: Option<SystemTime>, started: SystemTime) -> ShardInfo {
    let start_skew_ms = start_at
        .map(|at| {
            let late = unix_seconds(started) - unix_seconds(at);
            (shard.index.to_string(), late * 1000.0)
        })
        .into_iter()
        .collect();
    ShardInfo {
        indices: vec![shard.index],
        count: shard.count,
        start_at: start_at.map(unix_seconds),
        start_skew_ms,
        ..ShardInfo::default()
    }
}

fn run_dir(scenario: &Scenario, options: &RunOptions, at: SystemTime) -> Result<PathBuf, RunError> {
    let dir = match &options.out {
        Some(dir) => dir.clone(),
        None => PathBuf::from("runs").join(format!("{}-{}", dir_stamp(at), scenario.name)),
    };
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Dir {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// The players' shared state: behaviour, protocol, where to fall back to.
fn arena(scenario: &Scenario, topology: &Topology, options: &RunOptions) -> Arc<Arena> {
    let mut arena = Arena::new(
        scenario.behaviour.clone(),
        scenario.population.name_prefix.clone(),
    );
    arena.worker = options.shard.map(|s| s.index);
    arena.wire = crate::wire::for_protocol(&scenario.protocol);
    if scenario.topology.via != Via::Lb {
        arena.fallbacks = topology
            .replicas()
            .iter()
            .map(|r| r.ws_url.as_str().into())
            .collect();
    }
    Arc::new(arena)
}

/// The HTTP traffic beside the players (lookups, health polls), if any.
fn lobby(scenario: &Scenario, topology: &Topology, rooms: Vec<Arc<str>>) -> Option<Traffic> {
    let replicas = topology
        .replicas()
        .iter()
        .map(|r| r.http_url.clone())
        .collect();
    Traffic::start(
        &scenario.http,
        topology.http_base(),
        replicas,
        rooms,
        scenario.load.max_duration,
    )
}

/// From the rooms to the final record: the load, the drill, the sampler and
/// the HTTP traffic side by side.
async fn drive(
    scenario: &Scenario,
    options: &RunOptions,
    topology: &mut Topology,
    dir: &Path,
    (started_at, shard): (SystemTime, Option<ShardInfo>),
) -> Result<Outcome, RunError> {
    let (rooms, setup_http) = rooms_for(scenario, topology, options).await.map_err(|e| {
        match options.interrupt.is_cancelled() {
            true => RunError::Interrupted,
            false => e.into(),
        }
    })?;
    let arena = arena(scenario, topology, options);
    let lanes = Lanes::start(&arena, options.lanes.unwrap_or_else(usage::cores))
        .map_err(|source| RunError::Lanes { source })?;
    let mut recorder = Recorder::new(
        scenario,
        topology,
        &rooms,
        dir,
        (started_at, shard),
        options,
    )?;
    recorder.record.http = setup_http;
    let spawner = Spawner::new(scenario, seats(scenario, topology, &rooms));
    let traffic = lobby(scenario, topology, recorder.rooms());
    let sampler = topology
        .sampler_targets()
        .map(|targets| Sampler::start(targets, arena.started));
    let (fault_events, faults) = mpsc::unbounded_channel();
    let drill_stop = CancellationToken::new();
    let load = async {
        let load = Load {
            spawner,
            lanes,
            faults,
            arena: &arena,
            interrupt: &options.interrupt,
        };
        let ending = pump(scenario, load, &mut recorder).await;
        drill_stop.cancel();
        ending
    };
    let drill = drill::run(
        &scenario.faults,
        topology,
        scenario.topology.replicas,
        arena.started,
        fault_events,
        drill_stop.clone(),
    );
    let (ending, ()) = tokio::join!(load, drill);
    if let Some(sampler) = sampler {
        recorder.record.processes = sampler.finish().await;
    }
    if let Some(traffic) = traffic {
        match traffic.stop().await {
            Ok(figures) => recorder.record.http.extend(figures),
            Err(e) => tracing::warn!(error = %e, "HTTP traffic left no figures"),
        }
    }
    Ok(recorder.finish(ending)?)
}
