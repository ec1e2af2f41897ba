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
use tierlab_reports::capacity::{Config, Hold, Limit, Step, Sweep};

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

/// Runs the sweep; returns the path of `capacity.json`, which is written
/// again after every step, so an interrupted sweep leaves what it measured.
pub async fn sweep(scenario: &Scenario, options: &SweepOptions) -> Result<PathBuf, SweepError> {
    let mut configs = Vec::new();
    for &state in &options.states {
        for &replicas in &options.replicas {
            // Memory state serves one replica only.
            if state == StateMode::Memory && replicas != 1 {
                continue;
            }
            let mut searching = Searching {
                scenario,
                options,
                done: &configs,
                state,
                config: new_config(scenario, replicas, state),
            };
            searching.coarse().await?;
            searching.bisect().await?;
            let config = searching.config;
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

fn new_config(scenario: &Scenario, replicas: u32, state: StateMode) -> Config {
    let shards = scenario.topology.redis_shards;
    let label = match state {
        StateMode::Redis if shards > 1 => format!("{replicas}x-redis-{shards}-shards"),
        _ => format!("{replicas}x-{}", state.name()),
    };
    Config {
        label,
        replicas,
        state: state.name().to_owned(),
        steps: Vec::new(),
        limit: Limit::MaxPlayers,
    }
}

/// One configuration being measured: its steps so far, and the
/// configurations measured before it (written with it after each step).
struct Searching<'a> {
    scenario: &'a Scenario,
    options: &'a SweepOptions,
    done: &'a [Config],
    state: StateMode,
    config: Config,
}

impl Searching<'_> {
    /// Steps of `capacity.step` players up to the top, until one breaks.
    async fn coarse(&mut self) -> Result<(), SweepError> {
        let sweep = &self.scenario.capacity;
        let top = sweep
            .max_players
            .unwrap_or(self.scenario.population.players())
            .min(self.scenario.population.players());
        let step = sweep.step.unwrap_or((top / 10).max(1));
        let mut players = step;
        while players <= top {
            if self.measure(players).await?.is_some() {
                break;
            }
            players += step;
        }
        Ok(())
    }

    /// With `capacity.resolution`, halves the gap between the last step
    /// that held and the first that broke until it is no wider than that.
    /// A generator limit ends it: steps above say nothing of the system.
    async fn bisect(&mut self) -> Result<(), SweepError> {
        let Some(resolution) = self.scenario.capacity.resolution else {
            return Ok(());
        };
        let room = self.scenario.population.players_per_room.max(1);
        while matches!(self.config.limit, Limit::Slo | Limit::Errors) {
            let Some(high) = self.config.first_failure().map(|s| s.offered) else {
                break;
            };
            let low = self.config.last_pass().map_or(0, |s| s.offered);
            let middle = (low + (high - low) / 2) / room * room;
            if high - low <= resolution || middle <= low {
                break;
            }
            if self.measure(middle).await? == Some(Limit::Generator) {
                break;
            }
        }
        Ok(())
    }

    /// Runs one step of `players` and adds it; what it ended the search
    /// with, if anything.
    async fn measure(&mut self, players: u32) -> Result<Option<Limit>, SweepError> {
        let (scenario, options) = (self.scenario, self.options);
        let label = &self.config.label;
        let dir = step_dir(&options.out, label, players);
        let step_scenario = step_scenario(scenario, self.config.replicas, self.state, players)?;
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
        let step_error = |message: String| SweepError::Step {
            dir: dir.clone(),
            message,
        };
        let record = RunRecord::load(&dir).map_err(|e| step_error(e.to_string()))?;
        let sweep = &scenario.capacity;
        let hold = Hold::read(&dir, sweep.ramp.as_secs_f64(), sweep.hold.as_secs_f64())
            .map_err(|e| step_error(e.to_string()))?;
        let measured = Step::of(
            &record,
            &hold,
            players,
            &scenario.slo,
            sweep.error_limit_pct,
        );
        let limit = measured.limit(sweep.error_limit_pct);
        options.progress.line(&format!(
            "capacity {label}: {players} players {} (p95 fan-out {:.1} ms over {:.0}–{:.0} s)",
            if limit.is_none() { "held" } else { "broke" },
            measured.fanout_p95_ms,
            hold.from_s,
            hold.to_s
        ));
        self.config.push(measured);
        self.config.limit = ended_by(&self.config, sweep.error_limit_pct);
        let mut so_far = self.done.to_vec();
        so_far.push(self.config.clone());
        write(scenario, options, &so_far)?;
        Ok(limit)
    }
}

/// What ends a configuration's search so far: a saturated generator at
/// any step (every step above says nothing of the system), else the lowest
/// step that broke.
fn ended_by(config: &Config, error_limit_pct: f64) -> Limit {
    if config.steps.iter().any(|s| s.generator_saturated) {
        return Limit::Generator;
    }
    config
        .first_failure()
        .and_then(|s| s.limit(error_limit_pct))
        .unwrap_or(Limit::MaxPlayers)
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
        // Only the rooms the step fills: creating a search's top population
        // of rooms for every step would cost seconds and Redis memory.
        format!(
            "population.rooms={}",
            players.div_ceil(scenario.population.players_per_room.max(1))
        ),
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
