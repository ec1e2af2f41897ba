//! The commands and the arguments they share: a scenario file with its
//! overrides, and where a long-running command writes. Each subcommand's
//! own arguments are a struct in the file of its family, which also runs it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tierlab_loadgen::progress::Progress;

mod gate;
pub mod process;
mod run;
mod sweep;

#[derive(Debug, Parser)]
#[command(
    name = "tierlab",
    version,
    about = "Capacity lab for real-time multiplayer backends"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario; prints the run directory as the last line.
    Run(run::RunArgs),
    /// Add the run directories of a sharded run's workers into one run.
    Merge(run::MergeArgs),
    /// Check a scenario file without running it.
    Validate {
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Sweep a scenario's load step by step on several configurations until
    /// the SLOs break; writes capacity.json and capacity.html.
    Capacity(sweep::CapacityArgs),
    /// The same scenario against the reference server and the
    /// python-socketio peer: a capacity sweep and the drill (its faults) for
    /// each; writes compare.json and compare.html.
    Compare {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The instrument's self-test: a light load through the fault proxy at
    /// known one-way delays; the measured fan-out and ack must move by them.
    /// Writes calibrate.json; exit 99 when a point is off.
    Calibrate(sweep::CalibrateArgs),
    /// Write a block of figures for the docs from run, calibration or
    /// capacity records, between `<!-- figures:SECTION -->` markers in FILE.
    Figures(gate::FiguresArgs),
    /// Project a capacity sweep to a player count: replicas, Redis, p95, cost.
    Plan(sweep::PlanArgs),
    /// Write report.html, report.md and junit.xml into a run directory.
    Report(gate::ReportArgs),
    /// Write a baseline summary of one or more runs of a scenario (default:
    /// reports/baselines/<scenario>.json). With 3 runs or more, each metric's
    /// tolerance is 3× the worst run's excess over the median.
    Baseline(gate::BaselineArgs),
    /// A/B gate: run a scenario against a baseline build and a candidate,
    /// interleaved on this machine, and compare them second by second
    /// (fan-out and ack p95/p99, server CPU per delivered event, memory per
    /// connection). Exit 0 pass, 98 a regression, 99 a run failed its SLOs,
    /// 2 the runs could not be compared. The last stdout line is the verdict.
    Ab(gate::AbArgs),
    /// Judge an A/B gate's runs again (its directory), e.g. with another minimum effect.
    AbAgain(gate::AbAgainArgs),
    /// Compare a run with a baseline: 0 within tolerance, 98 a regression, 99 an SLO failed.
    Gate(gate::GateArgs),
}

impl Command {
    pub fn execute(self) -> ExitCode {
        match self {
            Command::Run(args) => args.execute(),
            Command::Merge(args) => args.execute(),
            Command::Validate { scenario } => run::validate(&scenario),
            Command::Capacity(args) => args.execute(),
            Command::Compare { scenario, output } => sweep::compare(scenario, output),
            Command::Calibrate(args) => args.execute(),
            Command::Figures(args) => args.execute(),
            Command::Plan(args) => args.execute(),
            Command::Report(args) => args.execute(),
            Command::Baseline(args) => args.execute(),
            Command::Ab(args) => args.execute(),
            Command::AbAgain(args) => args.execute(),
            Command::Gate(args) => args.execute(),
        }
    }
}

// A scenario file and the fields a command line overrides in it.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML; see docs/scenarios.md).
    pub scenario: PathBuf,
    /// Override a scenario field: --set population.rooms=50
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

// Where a long-running command writes, and whether it shows progress.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output directory (default: a new one under runs/, named for the time and scenario).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// Progress on stderr (rewritten in place on a terminal), or none.
    pub fn progress(&self) -> Progress {
        if self.quiet {
            return Progress::quiet();
        }
        let stderr = std::io::stderr();
        let live = stderr.is_terminal();
        Progress::to(stderr, live)
    }
}

/// `10%` or `10` → 10.0.
pub fn percent(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a percentage like 10%"))
}

/// `runs/<timestamp>-<kind>-<name>`.
pub fn default_out(kind: &str, name: &str) -> PathBuf {
    let stamp = tierlab_loadgen::wallclock::dir_stamp(std::time::SystemTime::now());
    PathBuf::from(format!("runs/{stamp}-{kind}-{name}"))
}
