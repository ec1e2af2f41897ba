//! The `tierlab` command line. Exit codes (documented in docs/scenarios.md):
//! 0 ran and every SLO held · 99 an SLO failed · 2 could not start (bad
//! scenario, topology failed) · 130 interrupted (Ctrl-C) · 143 terminated
//! (SIGTERM) · 1 the run failed;
//! `tierlab gate`: 98 a metric regressed beyond its tolerance; `tierlab ab`:
//! 98 a metric regressed, 99 a run failed its SLOs, 2 refused.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tierlab_loadgen::progress::Progress;
use tierlab_loadgen::run::{self, Outcome, RunError, RunOptions};
use tierlab_loadgen::scenario::Scenario;
use tierlab_record::RunRecord;
use tokio_util::sync::CancellationToken;

const EXIT_SLO: u8 = 99;
const EXIT_REGRESSION: u8 = 98;
const EXIT_START: u8 = 2;
const EXIT_FAILED: u8 = 1;
const EXIT_INTERRUPTED: u8 = 130;
/// Ended by SIGTERM (what a CI cancel or `kill` sends), as gracefully as by Ctrl-C.
const EXIT_TERMINATED: u8 = 143;

/// Set when SIGTERM, not Ctrl-C, asked the run to stop.
static TERMINATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// 143 after SIGTERM, 130 after Ctrl-C.
fn interrupted_code() -> u8 {
    if TERMINATED.load(std::sync::atomic::Ordering::Relaxed) {
        EXIT_TERMINATED
    } else {
        EXIT_INTERRUPTED
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tierlab",
    version,
    about = "Capacity lab for real-time multiplayer backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A scenario file and the fields a command line overrides in it.
#[derive(Debug, Args)]
struct ScenarioArgs {
    /// The scenario file (TOML; see docs/scenarios.md).
    scenario: PathBuf,
    /// Override a scenario field: --set population.rooms=50
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Where a long-running command writes, and whether it shows progress.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output directory (default: a new one under runs/, named for the time and scenario).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

impl OutputArgs {
    /// Progress on stderr (rewritten in place on a terminal), or none.
    fn progress(&self) -> Progress {
        if self.quiet {
            return Progress::quiet();
        }
        let stderr = std::io::stderr();
        let live = stderr.is_terminal();
        Progress::to(stderr, live)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario; prints the run directory as the last line.
    Run {
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
    },
    /// Add the run directories of a sharded run's workers into one run.
    Merge {
        /// The workers' run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the merged run goes.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a scenario file without running it.
    Validate {
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Sweep a scenario's load step by step on several configurations until
    /// the SLOs break; writes capacity.json and capacity.html.
    Capacity {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Replica counts to sweep (default: the scenario's).
        #[arg(long, value_delimiter = ',')]
        replicas: Vec<u32>,
        /// States to sweep: redis, memory (memory runs on one replica only;
        /// default: the scenario's).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
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
    Calibrate {
        /// `null` (an in-process broadcast server: the generator's floor) or
        /// `server` (tierlab-server in memory mode).
        #[arg(long, default_value = "null", value_parser = ["null", "server"])]
        target: String,
        /// One-way delays to inject, the first 0.
        #[arg(long, value_delimiter = ',', default_value = "0ms,5ms,20ms", value_parser = humantime::parse_duration)]
        delays: Vec<std::time::Duration>,
        /// Rooms of 5 players each.
        #[arg(long, default_value_t = 20)]
        rooms: u32,
        /// Acts per second per player.
        #[arg(long, default_value_t = 2.0)]
        act_rate: f64,
        /// How long each delay is held.
        #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
        hold: std::time::Duration,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Write a block of figures for the docs from run, calibration or
    /// capacity records, between `<!-- figures:SECTION -->` markers in FILE.
    Figures {
        /// The block's name in the file.
        #[arg(long)]
        section: String,
        /// The Markdown file to write it into.
        #[arg(long)]
        into: PathBuf,
        /// The command that measured the records (named in the block).
        #[arg(long)]
        command: String,
        /// Run directories, or directories holding calibrate.json or capacity.json.
        #[arg(required = true)]
        records: Vec<PathBuf>,
    },
    /// Project a capacity sweep to a player count: replicas, Redis, p95, cost.
    Plan {
        /// capacity.json from `tierlab capacity`.
        #[arg(long)]
        capacity: PathBuf,
        #[arg(long)]
        players: f64,
        /// Prices (see reports/cost.render.toml, reports/cost.aws.toml).
        #[arg(long)]
        cost: Option<PathBuf>,
        /// Share of measured capacity a deployment may use.
        #[arg(long, default_value = "70%", value_parser = percent)]
        headroom: f64,
    },
    /// Write report.html, report.md and junit.xml into a run directory.
    Report {
        run: PathBuf,
        /// A run directory to compare latency distributions with.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Write a baseline summary of one or more runs of a scenario (default:
    /// reports/baselines/<scenario>.json). With 3 runs or more, each metric's
    /// tolerance is 3× the worst run's excess over the median.
    Baseline {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tolerance for every metric, in percent (the least, with 3+ runs).
        #[arg(long, default_value = "10%", value_parser = percent)]
        max_regression: f64,
    },
    /// A/B gate: run a scenario against a baseline build and a candidate,
    /// interleaved on this machine, and compare them second by second
    /// (fan-out and ack p95/p99, server CPU per delivered event, memory per
    /// connection). Exit 0 pass, 98 a regression, 99 a run failed its SLOs,
    /// 2 the runs could not be compared. The last stdout line is the verdict.
    Ab {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// The build to compare against (A): bin:PATH, rev:REV or url:WS_URL.
        #[arg(long)]
        baseline: tierlab_loadgen::ab::Build,
        /// The build under test (B): bin:PATH, rev:REV or url:WS_URL.
        #[arg(long)]
        candidate: tierlab_loadgen::ab::Build,
        /// Rounds of two runs (A B, then B A, …).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=50))]
        rounds: u32,
        /// The smallest change that counts as a regression.
        #[arg(long, default_value = "10%", value_parser = percent)]
        min_effect: f64,
        /// Seconds whose CPU steal (the hypervisor's other tenants) passed
        /// this share of the machine do not count.
        #[arg(long, default_value = "5%", value_parser = percent)]
        max_steal: f64,
        /// Output directory (default: a new one under runs/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Judge an A/B gate's runs again (its directory), e.g. with another minimum effect.
    AbAgain {
        dir: PathBuf,
        #[arg(long, value_parser = percent)]
        min_effect: Option<f64>,
        #[arg(long, value_parser = percent)]
        max_steal: Option<f64>,
    },
    /// Compare a run with a baseline: 0 within tolerance, 98 a regression, 99 an SLO failed.
    Gate {
        run: PathBuf,
        #[arg(long)]
        baseline: PathBuf,
        /// Override every metric's tolerance, in percent.
        #[arg(long, value_parser = percent)]
        max_regression: Option<f64>,
    },
}

/// `10%` or `10` → 10.0.
fn percent(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a percentage like 10%"))
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Report { run, baseline } => report(&run, baseline.as_deref()),
        Command::Plan {
            capacity,
            players,
            cost,
            headroom,
        } => plan(&capacity, players, cost.as_deref(), headroom),
        Command::Capacity {
            scenario,
            replicas,
            state,
            output,
        } => capacity(&scenario, replicas, &state, output),
        Command::Compare { scenario, output } => compare(scenario, output),
        Command::Baseline {
            runs,
            out,
            max_regression,
        } => baseline(&runs, out, max_regression),
        Command::Gate {
            run,
            baseline,
            max_regression,
        } => gate(&run, &baseline, max_regression),
        Command::Ab {
            scenario,
            baseline,
            candidate,
            rounds,
            min_effect,
            max_steal,
            out,
        } => {
            let name = scenario
                .scenario
                .file_stem()
                .map_or_else(|| "ab".into(), |s| s.to_string_lossy().into_owned());
            ab(&tierlab_loadgen::ab::AbPlan {
                out: out.unwrap_or_else(|| default_out("ab", &name)),
                scenario: scenario.scenario,
                sets: scenario.set,
                baseline,
                candidate,
                rounds,
                min_effect_pct: min_effect,
                max_steal_pct: max_steal,
            })
        }
        Command::AbAgain {
            dir,
            min_effect,
            max_steal,
        } => ab_again(&dir, min_effect, max_steal),
        Command::Calibrate {
            target,
            delays,
            rooms,
            act_rate,
            hold,
            output,
        } => {
            use tierlab_loadgen::calibrate::{CalibrateOptions, Target};
            let options = CalibrateOptions {
                target: if target == "server" {
                    Target::Server
                } else {
                    Target::Null
                },
                delays,
                rooms: rooms.max(1),
                players_per_room: 5,
                act_rate,
                hold,
                progress: output.progress(),
                out: output
                    .out
                    .unwrap_or_else(|| default_out("calibrate", &target)),
                interrupt: CancellationToken::new(),
            };
            calibrate(options)
        }
        Command::Figures {
            section,
            into,
            command,
            records,
        } => figures(&section, &into, &command, &records),
        Command::Validate { scenario } => validate(&scenario),
        Command::Merge { runs, out } => merge(&runs, &out),
        Command::Run {
            scenario,
            output,
            shard,
            start_at,
            rooms,
            lanes,
            workers,
            no_report,
        } => {
            let start_at = start_at
                .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s.max(0.0)));
            let ending = Ending {
                summary: !output.quiet && shard.is_none(),
                reports: !no_report && shard.is_none(),
            };
            let options = RunOptions {
                progress: output.progress(),
                out: output.out,
                interrupt: CancellationToken::new(),
                shard,
                start_at,
                rooms_file: rooms,
                lanes: lanes.map(usize::from),
                workers: workers.map(usize::from),
            };
            run(&scenario, options, ending)
        }
    }
}

fn calibrate(mut options: tierlab_loadgen::calibrate::CalibrateOptions) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    if let Err(e) = std::fs::create_dir_all(&options.out) {
        eprintln!("error: {}: {e}", options.out.display());
        return ExitCode::from(EXIT_START);
    }
    options.interrupt = interrupt_on_ctrl_c();
    let mut stdout = reserve_stdout();
    match runtime.block_on(tierlab_loadgen::calibrate::calibrate(&options)) {
        Ok(calibration) => {
            eprintln!("{}{}", calibration.markdown(), calibration.verdict_line());
            let _ = writeln!(stdout, "{}", options.out.join("calibrate.json").display());
            ExitCode::from(if calibration.pass { 0 } else { EXIT_SLO })
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn figures(section: &str, into: &std::path::Path, command: &str, records: &[PathBuf]) -> ExitCode {
    use tierlab_reports::figures::{block, write_into, Context, Source};
    let sources: Result<Vec<Source>, _> = records.iter().map(|p| Source::load(p)).collect();
    let written = sources.and_then(|sources| {
        let text = block(section, command, &sources, &Context::of(records));
        write_into(into, section, &text).map(|()| text)
    });
    match written {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn validate(args: &ScenarioArgs) -> ExitCode {
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
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn merge(runs: &[PathBuf], out: &std::path::Path) -> ExitCode {
    match tierlab_loadgen::merge::merge_dirs(runs, out) {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
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
    fn finish(self, dir: &std::path::Path) {
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
        Err(e) if e.before_start() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn capacity(
    args: &ScenarioArgs,
    replicas: Vec<u32>,
    states: &[String],
    output: OutputArgs,
) -> ExitCode {
    use tierlab_loadgen::capacity::{sweep, SweepError, SweepOptions};
    use tierlab_loadgen::scenario::StateMode;
    let (scenario, runtime) = match scenario_and_runtime(args) {
        Ok(both) => both,
        Err(code) => return code,
    };
    // Unnamed on the command line: what the scenario itself says.
    let replicas = if replicas.is_empty() {
        vec![scenario.topology.replicas]
    } else {
        replicas
    };
    let mut parsed = Vec::new();
    if states.is_empty() {
        parsed.push(scenario.topology.state);
    }
    for state in states {
        match state.trim() {
            "redis" => parsed.push(StateMode::Redis),
            "memory" => parsed.push(StateMode::Memory),
            other => {
                eprintln!("error: --state {other}: expected redis or memory");
                return ExitCode::from(EXIT_START);
            }
        }
    }
    if replicas.is_empty() || replicas.iter().any(|r| !(1..=16).contains(r)) {
        eprintln!("error: --replicas takes counts from 1 to 16");
        return ExitCode::from(EXIT_START);
    }
    let options = SweepOptions {
        replicas,
        states: parsed,
        progress: output.progress(),
        out: output
            .out
            .unwrap_or_else(|| default_out("capacity", &scenario.name)),
        interrupt: interrupt_on_ctrl_c(),
    };
    let mut stdout = reserve_stdout();
    match runtime.block_on(sweep(&scenario, &options)) {
        Ok(json) => {
            print_capacity_verdicts(&json);
            let _ = writeln!(stdout, "{}", json.display());
            ExitCode::SUCCESS
        }
        Err(e @ SweepError::Interrupted(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(interrupted_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Each configuration's verdict sentence and where the page is, on the
/// terminal (stdout keeps the path of `capacity.json` for scripts).
fn print_capacity_verdicts(json: &std::path::Path) {
    let sweep: Option<tierlab_reports::capacity::Sweep> = std::fs::read(json)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    for verdict in sweep.iter().flat_map(|s| &s.verdicts) {
        eprintln!("{}", verdict.sentence);
    }
    eprintln!(
        "capacity report: {}",
        json.with_file_name("capacity.html").display()
    );
}

fn compare(args: ScenarioArgs, output: OutputArgs) -> ExitCode {
    use tierlab_loadgen::compare::{compare, CompareError, CompareOptions};
    // The name for the default directory; every system's scenario is
    // checked again, with its own overrides, before anything runs.
    let (name, runtime) = match scenario_and_runtime(&args) {
        Ok((scenario, runtime)) => (scenario.name, runtime),
        Err(code) => return code,
    };
    let options = CompareOptions {
        progress: output.progress(),
        out: output.out.unwrap_or_else(|| default_out("compare", &name)),
        interrupt: interrupt_on_ctrl_c(),
        overrides: args.set,
    };
    let mut stdout = reserve_stdout();
    match runtime.block_on(compare(&args.scenario, &options)) {
        Ok(json) => {
            let _ = writeln!(stdout, "{}", json.display());
            ExitCode::SUCCESS
        }
        Err(e @ CompareError::Interrupted(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(interrupted_code())
        }
        Err(e @ CompareError::Scenario { .. }) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The scenario (or exit 2 naming its problem) and the runtime to run it.
fn scenario_and_runtime(
    args: &ScenarioArgs,
) -> Result<(Scenario, tokio::runtime::Runtime), ExitCode> {
    let scenario = Scenario::load(&args.scenario, &args.set).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_START)
    })?;
    Ok((scenario, runtime()?))
}

/// The runtime of the long-running commands, with the descriptor limit
/// raised for thousands of players.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    raise_fd_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(EXIT_FAILED)
        })
}

/// `runs/<timestamp>-<kind>-<name>`.
fn default_out(kind: &str, name: &str) -> PathBuf {
    let stamp = tierlab_loadgen::wallclock::dir_stamp(std::time::SystemTime::now());
    PathBuf::from(format!("runs/{stamp}-{kind}-{name}"))
}

fn plan(
    capacity: &std::path::Path,
    players: f64,
    cost: Option<&std::path::Path>,
    headroom: f64,
) -> ExitCode {
    use tierlab_reports::{capacity::Sweep, plan, ReportError};
    let planned = std::fs::read_to_string(capacity)
        .map_err(|source| ReportError::Read {
            path: capacity.to_owned(),
            source,
        })
        .and_then(|text| {
            serde_json::from_str::<Sweep>(&text).map_err(|source| ReportError::Parse {
                path: capacity.to_owned(),
                source,
            })
        })
        .and_then(|sweep| {
            let prices = cost.map(plan::CostModel::load).transpose()?;
            let plan = plan::plan(&sweep, players, headroom / 100.0, prices.as_ref())?;
            Ok((sweep, plan))
        });
    match planned {
        Ok((sweep, plan)) => {
            print!("{}", plan.table());
            // The capacity report gains the plan as its last section.
            let html = capacity.with_file_name("capacity.html");
            match tierlab_reports::capacity_page::render(&sweep, Some(&plan))
                .map(|page| std::fs::write(&html, page))
            {
                Ok(Ok(())) => println!("{}", html.display()),
                Ok(Err(e)) => eprintln!("warning: cannot write {}: {e}", html.display()),
                Err(e) => eprintln!("warning: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn report(run: &std::path::Path, baseline: Option<&std::path::Path>) -> ExitCode {
    match tierlab_reports::write_reports(run, baseline) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn baseline(runs: &[PathBuf], out: Option<PathBuf>, max_regression: f64) -> ExitCode {
    let records: Result<Vec<_>, _> = runs
        .iter()
        .map(|dir| RunRecord::load(dir).map_err(tierlab_reports::ReportError::from))
        .collect();
    let written = records.and_then(|records| {
        let scenarios: std::collections::BTreeSet<&str> =
            records.iter().map(|r| r.scenario.name.as_str()).collect();
        if scenarios.len() > 1 {
            return Err(tierlab_reports::ReportError::Mismatch {
                run: "a set of runs of several scenarios".into(),
                baseline: format!(
                    "of one ({})",
                    scenarios.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let baseline = tierlab_reports::gate::Baseline::of_runs(&records, max_regression);
        for warning in baseline.noisy() {
            eprintln!("warning: {warning}");
        }
        let path = out.unwrap_or_else(|| {
            PathBuf::from("reports/baselines").join(format!("{}.json", baseline.scenario))
        });
        let text = serde_json::to_string_pretty(&baseline).unwrap_or_default() + "\n";
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(&path, text)
            .map(|()| path.clone())
            .map_err(|source| tierlab_reports::ReportError::Write { path, source })
    });
    match written {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn gate(
    run: &std::path::Path,
    baseline: &std::path::Path,
    max_regression: Option<f64>,
) -> ExitCode {
    use tierlab_reports::gate;
    let verdict = RunRecord::load(run)
        .map_err(tierlab_reports::ReportError::from)
        .and_then(|record| {
            let base = gate::Baseline::load(baseline)?;
            gate::gate(&record, &base, max_regression)
        });
    match verdict {
        Ok(result) => {
            print!("{}", result.table());
            println!("{}", result.verdict_line());
            // As the verdict line says: a regression first, then SLOs.
            if result.regressed() {
                ExitCode::from(EXIT_REGRESSION)
            } else if !result.failed_slos.is_empty() {
                ExitCode::from(EXIT_SLO)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            println!("gate: REFUSED {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

/// stdout carries one line, the run directory, for scripts to capture;
/// whatever a library prints (goose announces its users) goes to stderr.
fn reserve_stdout() -> Box<dyn Write> {
    match tierlab_loadgen::run_log::capture_stdout() {
        Ok(saved) => Box::new(saved),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Warnings on the terminal, but goose's (its launch lines, its WARNs)
/// only in the run's log, with whatever else a run's libraries say at info.
/// RUST_LOG replaces the terminal's filter.
fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,goose=off")),
        );
    let run_log = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(tierlab_loadgen::run_log::RunLog)
        .with_filter(
            Targets::new()
                .with_target("goose", LevelFilter::INFO)
                .with_default(LevelFilter::WARN),
        );
    tracing_subscriber::registry()
        .with(terminal)
        .with(run_log)
        .init();
}

/// The first Ctrl-C or SIGTERM ends the run early (it still writes its
/// results, marked partial, and stops what it started); a second one exits
/// at once. Installed before goose runs, so goose's own handler — which
/// would take SIGINT from the run — is refused. SIGTERM is caught by a
/// signal handler (not a blocked mask), so the processes a run starts get
/// the default disposition back when they exec.
fn interrupt_on_ctrl_c() -> CancellationToken {
    let interrupt = CancellationToken::new();
    let token = interrupt.clone();
    let mut presses = 0u32;
    let installed = ctrlc::set_handler(move || {
        presses += 1;
        if presses > 1 {
            eprintln!("interrupted again: exiting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "interrupted: stopping the run and writing what it measured (Ctrl-C again to exit now)"
        );
        token.cancel();
        goose::trigger_killswitch("interrupted");
    });
    if let Err(e) = installed {
        tracing::warn!(error = %e, "cannot handle Ctrl-C");
    }
    watch_sigterm(interrupt.clone());
    interrupt
}

/// A thread of its own waits for SIGTERM and cancels `interrupt` as Ctrl-C does.
fn watch_sigterm(interrupt: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::warn!("cannot handle SIGTERM");
        return;
    };
    // Registered before this returns: a SIGTERM right after is caught too.
    let Ok(mut term) = runtime.block_on(async { signal(SignalKind::terminate()) }) else {
        tracing::warn!("cannot handle SIGTERM");
        return;
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            term.recv().await;
            TERMINATED.store(true, std::sync::atomic::Ordering::Relaxed);
            eprintln!("terminated: stopping the run and writing what it measured");
            interrupt.cancel();
            goose::trigger_killswitch("terminated");
            term.recv().await;
            eprintln!("terminated again: exiting now");
            std::process::exit(i32::from(EXIT_TERMINATED));
        });
    });
}

fn ab(plan: &tierlab_loadgen::ab::AbPlan) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&plan.out) {
        eprintln!("error: cannot create {}: {e}", plan.out.display());
        return ExitCode::from(EXIT_START);
    }
    // Ctrl-C reaches the run in progress (same process group), which stops
    // and writes what it has; no further run starts, and what ran is judged.
    let interrupt = interrupt_on_ctrl_c();
    let said = tierlab_loadgen::ab::run(plan, &|line| eprintln!("{line}"), &|| {
        interrupt.is_cancelled()
    });
    ab_verdict(said, &plan.out)
}

fn ab_again(dir: &std::path::Path, min_effect: Option<f64>, max_steal: Option<f64>) -> ExitCode {
    use tierlab_loadgen::ab;
    let said = ab::earlier_setup(dir).and_then(|(mut setup, wall_s)| {
        if let Some(pct) = min_effect {
            setup.min_effect_pct = pct;
        }
        if let Some(pct) = max_steal {
            setup.max_steal_pct = pct;
        }
        ab::judge_dir(dir, &setup, wall_s)
    });
    ab_verdict(said, dir)
}

/// The table on stderr, where the files are, the verdict as stdout's last line.
fn ab_verdict(
    said: Result<tierlab_reports::ab::AbReport, tierlab_loadgen::ab::AbError>,
    dir: &std::path::Path,
) -> ExitCode {
    match said {
        Ok(report) => {
            eprint!("{}", report.table());
            eprintln!("ab: {}/ab.json, ab.md, junit.xml", dir.display());
            println!("{}", report.verdict_line());
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            println!("gate: REFUSED {e}");
            ExitCode::from(EXIT_START)
        }
    }
}

/// Every player holds a socket: use all the descriptors the hard limit allows.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
