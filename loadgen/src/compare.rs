//! `tierlab compare`: one scenario, the same population, behaviour and
//! faults, against the reference server and the python-socketio peer. For
//! each system a capacity sweep (its max players under the SLO, and its CPU
//! and memory where it was last under it) and a drill (the scenario as
//! written, faults included); then `compare.json` and `compare.html`, with
//! every system's runs in its own directory beside them.

use std::path::{Path, PathBuf};

use tierlab_record::{RunRecord, Slo};
use tierlab_reports::capacity::Sweep;
use tierlab_reports::compare::{best_step, Comparison, System};

use crate::capacity::{self, SweepError, SweepOptions};
use crate::progress::Progress;
use crate::run::{self, Outcome, RunError, RunOptions};
use crate::scenario::{Scenario, ScenarioError};

/// A system to compare, as scenario overrides.
#[derive(Debug, Clone, Copy)]
pub struct Contender {
    pub label: &'static str,
    pub overrides: &'static [&'static str],
}

/// The reference server, then the python-socketio peer.
pub const CONTENDERS: [Contender; 2] = [
    Contender {
        label: "tierlab",
        overrides: &["topology.server=\"tierlab\"", "protocol.kind=\"tierlab\""],
    },
    Contender {
        label: "python-socketio",
        overrides: &[
            "topology.server=\"python-socketio\"",
            "protocol.kind=\"socketio\"",
        ],
    },
];

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub out: PathBuf,
    pub progress: Progress,
    pub interrupt: tokio_util::sync::CancellationToken,
    /// `--set` overrides, applied to every system before its own.
    pub overrides: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{system}: {source}")]
    Scenario {
        system: &'static str,
        source: ScenarioError,
    },
    #[error("{system}: capacity sweep: {source}")]
    Sweep {
        system: &'static str,
        source: SweepError,
    },
    #[error("{system}: drill: {source}")]
    Drill {
        system: &'static str,
        source: RunError,
    },
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("interrupted; what ran is in {0}")]
    Interrupted(PathBuf),
}

/// Runs every contender; returns the path of `compare.json`.
pub async fn compare(path: &Path, options: &CompareOptions) -> Result<PathBuf, CompareError> {
    // Every scenario is checked before anything runs.
    let scenarios = CONTENDERS
        .iter()
        .map(|c| {
            let mut overrides = options.overrides.clone();
            overrides.extend(c.overrides.iter().map(|o| (*o).to_owned()));
            Scenario::load(path, &overrides).map_err(|source| CompareError::Scenario {
                system: c.label,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut comparison = Comparison {
        scenario: scenarios[0].name.clone(),
        fanout_slo_ms: Slo::fanout_p95_ms(&scenarios[0].slo),
        systems: Vec::new(),
    };
    for (contender, scenario) in CONTENDERS.iter().zip(&scenarios) {
        let system = measure(contender, scenario, options).await?;
        comparison.systems.push(system);
        write(&options.out, &comparison)?;
    }
    write(&options.out, &comparison)
}

async fn measure(
    contender: &Contender,
    scenario: &Scenario,
    options: &CompareOptions,
) -> Result<System, CompareError> {
    let label = contender.label;
    let dir = options.out.join(label);
    let sweep_options = SweepOptions {
        replicas: vec![scenario.topology.replicas],
        states: vec![scenario.topology.state],
        out: dir.join("capacity"),
        progress: options.progress.clone(),
        interrupt: options.interrupt.clone(),
    };
    let json = capacity::sweep(scenario, &sweep_options)
        .await
        .map_err(|source| match source {
            SweepError::Interrupted(_) => CompareError::Interrupted(options.out.clone()),
            source => CompareError::Sweep {
                system: label,
                source,
            },
        })?;
    let sweep: Sweep = read_json(&json)?;
    let mut config = sweep
        .configs
        .into_iter()
        .next()
        .ok_or_else(|| CompareError::Read {
            path: json.clone(),
            message: "the sweep measured no configuration".into(),
        })?;
    let best_run = match best_step(&config) {
        Some(step) => {
            let step_dir = capacity::step_dir(&sweep_options.out, &config.label, step.offered);
            Some(RunRecord::load(&step_dir).map_err(|e| CompareError::Read {
                path: step_dir,
                message: e.to_string(),
            })?)
        }
        None => None,
    };
    config.label = label.to_owned();
    options.progress.line(&format!("compare {label}: drill"));
    let drill_dir = dir.join("drill");
    let run_options = RunOptions {
        out: Some(drill_dir.clone()),
        progress: options.progress.clone(),
        interrupt: options.interrupt.clone(),
        ..RunOptions::default()
    };
    let (_, outcome) =
        run::run(scenario, &run_options)
            .await
            .map_err(|source| CompareError::Drill {
                system: label,
                source,
            })?;
    if outcome == Outcome::Interrupted {
        return Err(CompareError::Interrupted(options.out.clone()));
    }
    let drill = RunRecord::load(&drill_dir).map_err(|e| CompareError::Read {
        path: drill_dir,
        message: e.to_string(),
    })?;
    Ok(System::new(label, config, best_run.as_ref(), &drill))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CompareError> {
    let fail = |message: String| CompareError::Read {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

fn write(out: &Path, comparison: &Comparison) -> Result<PathBuf, CompareError> {
    let fail = |path: &Path, message: String| CompareError::Write {
        path: path.to_owned(),
        message,
    };
    std::fs::create_dir_all(out).map_err(|e| fail(out, e.to_string()))?;
    let json = out.join("compare.json");
    let text = serde_json::to_string_pretty(comparison).map_err(|e| fail(&json, e.to_string()))?;
    std::fs::write(&json, text).map_err(|e| fail(&json, e.to_string()))?;
    let html = out.join("compare.html");
    let page =
        tierlab_reports::compare::render(comparison).map_err(|e| fail(&html, e.to_string()))?;
    std::fs::write(&html, page).map_err(|e| fail(&html, e.to_string()))?;
    Ok(json)
}
