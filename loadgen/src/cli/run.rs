//! `tierlab run`, `merge` and `validate`: one scenario run (or a shard of
//! one) and what it leaves on the terminal, the workers' shards added back
//! together, a scenario checked without running it.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tierlab_loadgen::run::{self, Outcome, RunError, RunOptions};
use tierlab_loadgen::scenario::Scenario;
use tierlab_record::RunRecord;
use tokio_util::sync::CancellationToken;

use super::process::{
    fail, interrupt_on_ctrl_c, interrupted_code, reserve_stdout, scenario_and_runtime, EXIT_FAILED,
    EXIT_SLO, EXIT_START,
};
use super::{OutputArgs, ScenarioArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Run slice I (from 0) of N of the population, against a shared
    /// external system; `tierlab merge` adds the slices back together.
    #[arg(long, value_name = "I/N")]
    shard: Option<tierlab_loadgen::shard::Shard>,
    /// Begin at this moment (unix seconds), so workers start together.
    #[arg(long, value_name = "UNIX_SECONDS")]
    start_at: Option<f64>,
    /// Cross-worker rooms (population.cross_worker): the file through
    /// which worker 0 hands its room codes to the others (a shared path).
    #[arg(long, value_name = "FILE")]
    rooms: Option<PathBuf>,
    /// The players' threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    lanes: Option<u16>,
    /// Worker processes against the one topology (default: as many as
    /// the players need at one descriptor each).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
    /// Do not write report.html, report.md and junit.xml at the end.
    #[arg(long)]
    no_report: bool,
}

impl RunArgs {
    pub fn execute(self) -> ExitCode {
        let start_at = self
            .start_at
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s.max(0.0)));
        let ending = Ending {
            summary: !self.output.quiet && self.shard.is_none(),
            reports: !self.no_report && self.shard.is_none(),
        };
        let options = RunOptions {
            progress: self.output.progress(),
            out: self.output.out,
            interrupt: CancellationToken::new(),
            shard: self.shard,
            start_at,
            rooms_file: self.rooms,
            lanes: self.lanes.map(usize::from),
            workers: self.workers.map(usize::from),
        };
        run(&self.scenario, options, ending)
    }
}

fn run(args: &ScenarioArgs, mut options: RunOptions, ending: Ending) -> ExitCode {
    let (scenario, runtime) = match scenario_and_runtime(args) {
        Ok(both) => both,
        Err(code) => return code,
    };
    options.interrupt = interrupt_on_ctrl_c();
    let mut stdout = reserve_stdout();
    match runtime.block_on(run::run(&scenario, &options)) {
        Ok((dir, outcome)) => {
            ending.finish(&dir);
            let _ = writeln!(stdout, "{}", dir.display());
            ExitCode::from(match outcome {
                Outcome::Passed => 0,
                Outcome::SloFailed => EXIT_SLO,
                Outcome::Interrupted => interrupted_code(),
            })
        }
        Err(RunError::Interrupted) => {
            eprintln!("interrupted during set-up; nothing was run");
            ExitCode::from(interrupted_code())
        }
        Err(e) if e.before_start() => fail(e, EXIT_START),
        Err(e) => fail(e, EXIT_FAILED),
    }
}

/// What a run does once its record is written.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// The k6-style summary on the terminal (not with --quiet, not for a
    /// shard: its merge has the whole run).
    summary: bool,
    /// report.html, report.md and junit.xml (not with --no-report, not for
    /// a shard).
    reports: bool,
}

impl Ending {
    fn finish(self, dir: &Path) {
        if self.summary {
            if let Ok(record) = RunRecord::load(dir) {
                let colour = std::io::stderr().is_terminal();
                eprint!("{}", tierlab_reports::terminal::summary(&record, colour));
            }
        }
        if self.reports {
            match tierlab_reports::write_reports(dir, None) {
                Ok(files) => {
                    if let Some(html) = files
                        .iter()
                        .find(|f| f.extension().is_some_and(|e| e == "html"))
                    {
                        eprintln!("  report: {}", html.display());
                    }
                }
                Err(e) => eprintln!("warning: the run's reports could not be written: {e}"),
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The workers' run directories.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the merged run goes.
    #[arg(long)]
    out: PathBuf,
}

impl MergeArgs {
    pub fn execute(self) -> ExitCode {
        match tierlab_loadgen::merge::merge_dirs(&self.runs, &self.out) {
            Ok(()) => {
                println!("{}", self.out.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e, EXIT_START),
        }
    }
}

pub fn validate(args: &ScenarioArgs) -> ExitCode {
    match Scenario::load(&args.scenario, &args.set) {
        Ok(s) => {
            println!(
                "{}: ok ({} players in {} rooms)",
                args.scenario.display(),
                s.population.players(),
                s.population.rooms
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, EXIT_START),
    }
}
