//! The commands that run many steps and write one document: `tierlab
//! capacity` (a sweep per configuration), `compare` (the reference server
//! beside a peer), `calibrate` (the instrument against known delays) and
//! `plan` (a sweep projected onto a player count and prices).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tierlab_loadgen::scenario::StateMode;

use super::process::{
    fail, interrupt_on_ctrl_c, interrupted_code, reserve_stdout, runtime, scenario_and_runtime,
    EXIT_FAILED, EXIT_SLO, EXIT_START,
};
use super::{default_out, percent, OutputArgs, ScenarioArgs};

#[derive(Debug, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Replica counts to sweep (default: the scenario's).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=16))]
    replicas: Vec<u32>,
    /// States to sweep: redis, memory (memory runs on one replica only;
    /// default: the scenario's).
    #[arg(long, value_delimiter = ',', value_parser = state_mode)]
    state: Vec<StateMode>,
    #[command(flatten)]
    output: OutputArgs,
}

fn state_mode(text: &str) -> Result<StateMode, String> {
    [StateMode::Redis, StateMode::Memory]
        .into_iter()
        .find(|mode| mode.name() == text.trim())
        .ok_or_else(|| format!("`{text}`: expected redis or memory"))
}

impl CapacityArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_loadgen::capacity::{sweep, SweepError, SweepOptions};
        let (scenario, runtime) = match scenario_and_runtime(&self.scenario) {
            Ok(both) => both,
            Err(code) => return code,
        };
        let options = SweepOptions {
            replicas: or_scenarios(self.replicas, scenario.topology.replicas),
            states: or_scenarios(self.state, scenario.topology.state),
            progress: self.output.progress(),
            out: self
                .output
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
            Err(e @ SweepError::Interrupted(_)) => fail(e, interrupted_code()),
            Err(e) => fail(e, EXIT_FAILED),
        }
    }
}

/// Each configuration's verdict sentence and where the page is, on the
/// terminal (stdout keeps the path of `capacity.json` for scripts).
fn print_capacity_verdicts(json: &Path) {
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

pub fn compare(args: ScenarioArgs, output: OutputArgs) -> ExitCode {
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
        Err(e @ CompareError::Interrupted(_)) => fail(e, interrupted_code()),
        Err(e @ CompareError::Scenario { .. }) => fail(e, EXIT_START),
        Err(e) => fail(e, EXIT_FAILED),
    }
}

/// What the command line named, or else what the scenario itself says.
fn or_scenarios<T>(given: Vec<T>, scenarios: T) -> Vec<T> {
    if given.is_empty() {
        vec![scenarios]
    } else {
        given
    }
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
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
}

impl CalibrateArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_loadgen::calibrate::{calibrate, CalibrateOptions, Target};
        let runtime = match runtime() {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        let options = CalibrateOptions {
            target: if self.target == "server" {
                Target::Server
            } else {
                Target::Null
            },
            delays: self.delays,
            rooms: self.rooms.max(1),
            players_per_room: 5,
            act_rate: self.act_rate,
            hold: self.hold,
            progress: self.output.progress(),
            out: self
                .output
                .out
                .unwrap_or_else(|| default_out("calibrate", &self.target)),
            interrupt: interrupt_on_ctrl_c(),
        };
        if let Err(e) = std::fs::create_dir_all(&options.out) {
            return fail(format!("{}: {e}", options.out.display()), EXIT_START);
        }
        let mut stdout = reserve_stdout();
        match runtime.block_on(calibrate(&options)) {
            Ok(calibration) => {
                eprintln!("{}{}", calibration.markdown(), calibration.verdict_line());
                let _ = writeln!(stdout, "{}", options.out.join("calibrate.json").display());
                ExitCode::from(if calibration.pass { 0 } else { EXIT_SLO })
            }
            Err(e) => fail(e, EXIT_FAILED),
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
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
    /// Also write the plan as a figures block into this Markdown file
    /// (docs/capacity.md), in place of the section's old block.
    #[arg(long, requires = "command")]
    into: Option<PathBuf>,
    /// The block's section name.
    #[arg(long, default_value = "plan")]
    section: String,
    /// The command that measured the sweep and made the plan, as the block
    /// names it.
    #[arg(long)]
    command: Option<String>,
}

impl PlanArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_reports::{capacity::Sweep, plan, read_json};
        let planned = read_json::<Sweep>(&self.capacity).and_then(|sweep| {
            let prices = self
                .cost
                .as_deref()
                .map(plan::CostModel::load)
                .transpose()?;
            let plan = plan::plan(&sweep, self.players, self.headroom / 100.0, prices.as_ref())?;
            Ok((sweep, plan))
        });
        let (sweep, plan) = match planned {
            Ok(both) => both,
            Err(e) => return fail(e, EXIT_START),
        };
        print!("{}", plan.table());
        if let (Some(file), Some(command)) = (&self.into, &self.command) {
            use tierlab_reports::figures::{wrap, write_into, Context};
            let context = Context::of(std::slice::from_ref(&self.capacity));
            let block = wrap(&self.section, command, &context, &plan.markdown());
            if let Err(e) = write_into(file, &self.section, &block) {
                return fail(e, EXIT_START);
            }
            println!("{}", file.display());
        }
        // The capacity report gains the plan as its last section.
        let html = self.capacity.with_file_name("capacity.html");
        match tierlab_reports::capacity_page::render(&sweep, Some(&plan))
            .map(|page| std::fs::write(&html, page))
        {
            Ok(Ok(())) => println!("{}", html.display()),
            Ok(Err(e)) => eprintln!("warning: cannot write {}: {e}", html.display()),
            Err(e) => eprintln!("warning: {e}"),
        }
        ExitCode::SUCCESS
    }
}
