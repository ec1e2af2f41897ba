//! `tierlab capacity`: for each configuration (replicas × state), a stepped
//! sweep — one short run per step, each ramping to the step's players and
//! holding them — until the scenario's SLOs break, errors pass the limit,
//! or the generator saturates (which is the generator's limit, not the
//! system's, and is never called a capacity). Each step's record is kept in
//! its own run directory; the sweep writes `capacity.json` and, through the
//! reports crate, `capacity.html`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tierlab_record::{RunRecord, Slo};
use tierlab_reports::capacity::{Config, Limit, Step, Sweep};

use crate::progress::Progress;
use crate::run::{self, Outcome, RunError, RunOptions};
use crate::scenario::{Scenario, StateMode};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub replicas: Vec<u32>,
    pub states: Vec<StateMode>,
    pub out: PathBuf,
    pub progress: Progress,
    pub interrupt: tokio_util::sync::CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("step {dir}: {message}")]
    Step { dir: PathBuf, message: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("interrupted; steps so far are in {0}")]
    Interrupted(PathBuf),
}

/// Runs the sweep; returns the path of `capacity.json`.
pub async fn sweep(scenario: &Scenario, options: &SweepOptions) -> Result<PathBuf, SweepError> {
    let mut configs = Vec::new();
    for &state in &options.states {
        for &replicas in &options.replicas {
            // Memory state serves one replica only.
            if state == StateMode::Memory && replicas != 1 {
                continue;
            }
            let config = sweep_one(scenario, options, replicas, state).await?;
            configs.push(config);
            write(scenario, options, &configs)?;
        }
    }
    write(scenario, options, &configs)
}

/// Where a sweep under `out` keeps the run of one configuration's step.
pub fn step_dir(out: &Path, config: &str, players: u32) -> PathBuf {
    out.join(config).join(format!("step-{players:06}"))
}

async fn sweep_one(
    scenario: &Scenario,
    options: &SweepOptions,
    replicas: u32,
    state: StateMode,
) -> Result<Config, SweepError> {
    let sweep = &scenario.capacity;
    let top = sweep
        .max_players
        .unwrap_or(scenario.population.players())
        .min(scenario.population.players());
    let step = sweep.step.unwrap_or((top / 10).max(1));
    let shards = scenario.topology.redis_shards;
    let label = match state {
        StateMode::Redis if shards > 1 => format!("{replicas}x-redis-{shards}-shards"),
        _ => format!("{replicas}x-{}", state.name()),
    };
    let mut config = Config {
        label: label.clone(),
        replicas,
        state: state.name().to_owned(),
        steps: Vec::new(),
        limit: Limit::MaxPlayers,
    };
    let mut players = step;
    while players <= top {
        let dir = step_dir(&options.out, &label, players);
        let step_scenario = step_scenario(scenario, replicas, state, players)?;
        let run_options = RunOptions {
            out: Some(dir.clone()),
            progress: options.progress.clone(),
            interrupt: options.interrupt.clone(),
            ..RunOptions::default()
        };
        options
            .progress
            .line(&format!("capacity {label}: {players} players"));
        let (_, outcome) = run::run(&step_scenario, &run_options).await?;
        if outcome == Outcome::Interrupted {
            return Err(SweepError::Interrupted(options.out.clone()));
        }
        let record = RunRecord::load(&dir).map_err(|e| SweepError::Step {
            dir: dir.clone(),
            message: e.to_string(),
        })?;
        let measured = Step::of(&record, players, sweep.ramp.as_secs_f64());
        let limit = measured.limit(sweep.error_limit_pct);
        config.steps.push(measured);
        if let Some(limit) = limit {
            config.limit = limit;
            break;
        }
        players += step;
    }
    Ok(config)
}

/// The scenario of one step: `players` ramped over `ramp`, held `hold`, no
/// faults, on the configuration swept.
fn step_scenario(
    scenario: &Scenario,
    replicas: u32,
    state: StateMode,
    players: u32,
) -> Result<Scenario, SweepError> {
    let sweep = &scenario.capacity;
    let secs = |d: Duration| format!("\"{}ms\"", d.as_millis());
    let hard = sweep.ramp + sweep.hold + scenario.load.drain + Duration::from_secs(30);
    let overrides = [
        format!("topology.replicas={replicas}"),
        format!("topology.state={}", state.name()),
        format!(
            "load.stages=[{{to={players},over={}}},{{to={players},over={}}}]",
            secs(sweep.ramp),
            secs(sweep.hold)
        ),
        "load.model=\"closed\"".to_owned(),
        format!("load.max_duration={}", secs(hard)),
        "faults=[]".to_owned(),
    ];
    Scenario::parse(&scenario.path, &scenario.source, &overrides).map_err(|e| SweepError::Step {
        dir: PathBuf::from(format!("{replicas}x-{}", state.name())),
        message: e.to_string(),
    })
}

fn write(
    scenario: &Scenario,
    options: &SweepOptions,
    configs: &[Config],
) -> Result<PathBuf, SweepError> {
    let sweep = Sweep::new(
        scenario.name.clone(),
        configs.to_vec(),
        Slo::fanout_p95_ms(&scenario.slo),
    );
    let fail = |path: &Path, message: String| SweepError::Write {
        path: path.to_owned(),
        message,
    };
    std::fs::create_dir_all(&options.out).map_err(|e| fail(&options.out, e.to_string()))?;
    let json = options.out.join("capacity.json");
    let text = serde_json::to_string_pretty(&sweep).map_err(|e| fail(&json, e.to_string()))?;
    std::fs::write(&json, text).map_err(|e| fail(&json, e.to_string()))?;
    let html = options.out.join("capacity.html");
    let page = tierlab_reports::capacity_page::render(&sweep, None)
        .map_err(|e| fail(&html, e.to_string()))?;
    std::fs::write(&html, page).map_err(|e| fail(&html, e.to_string()))?;
    Ok(json)
}
