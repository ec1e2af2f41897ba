//! The commands that read records and judge or render them: `tierlab ab`
//! and `ab-again` (an A/B gate between two builds), `gate` and `baseline`
//! (a run against a stored baseline), `report` (a run's pages) and
//! `figures` (a block of the docs from records).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tierlab_loadgen::ab::{AbError, AbPlan, Build};
use tierlab_record::RunRecord;
use tierlab_reports::ab::{AbReport, DEFAULT_MAX_STEAL_PCT, DEFAULT_MIN_EFFECT_PCT};
use tierlab_reports::ReportError;

use super::process::{fail, interrupt_on_ctrl_c, EXIT_REGRESSION, EXIT_SLO, EXIT_START};
use super::{default_out, percent, ScenarioArgs};

#[derive(Debug, Args)]
pub struct AbArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// The build to compare against (A): bin:PATH, rev:REV or url:WS_URL.
    #[arg(long)]
    baseline: Build,
    /// The build under test (B): bin:PATH, rev:REV or url:WS_URL.
    #[arg(long)]
    candidate: Build,
    /// Rounds of two runs (A B, then B A, …).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=50))]
    rounds: u32,
    /// The smallest change that counts as a regression, in percent.
    #[arg(long, default_value_t = DEFAULT_MIN_EFFECT_PCT, value_parser = percent)]
    min_effect: f64,
    /// Seconds whose CPU steal (the hypervisor's other tenants) passed
    /// this share of the machine, in percent, do not count.
    #[arg(long, default_value_t = DEFAULT_MAX_STEAL_PCT, value_parser = percent)]
    max_steal: f64,
    /// Output directory (default: a new one under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl AbArgs {
    pub fn execute(self) -> ExitCode {
        let name = self
            .scenario
            .scenario
            .file_stem()
            .map_or_else(|| "ab".into(), |s| s.to_string_lossy().into_owned());
        let plan = AbPlan {
            out: self.out.unwrap_or_else(|| default_out("ab", &name)),
            scenario: self.scenario.scenario,
            sets: self.scenario.set,
            baseline: self.baseline,
            candidate: self.candidate,
            rounds: self.rounds,
            min_effect_pct: self.min_effect,
            max_steal_pct: self.max_steal,
        };
        if let Err(e) = std::fs::create_dir_all(&plan.out) {
            return fail(
                format!("cannot create {}: {e}", plan.out.display()),
                EXIT_START,
            );
        }
        // Ctrl-C reaches the run in progress (same process group), which stops
        // and writes what it has; no further run starts, and what ran is judged.
        let interrupt = interrupt_on_ctrl_c();
        let said = tierlab_loadgen::ab::run(&plan, &|line| eprintln!("{line}"), &|| {
            interrupt.is_cancelled()
        });
        ab_verdict(said, &plan.out)
    }
}

#[derive(Debug, Args)]
pub struct AbAgainArgs {
    dir: PathBuf,
    #[arg(long, value_parser = percent)]
    min_effect: Option<f64>,
    #[arg(long, value_parser = percent)]
    max_steal: Option<f64>,
}

impl AbAgainArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_loadgen::ab;
        let said = ab::earlier_setup(&self.dir).and_then(|(mut setup, wall_s)| {
            if let Some(pct) = self.min_effect {
                setup.min_effect_pct = pct;
            }
            if let Some(pct) = self.max_steal {
                setup.max_steal_pct = pct;
            }
            ab::judge_dir(&self.dir, &setup, wall_s)
        });
        ab_verdict(said, &self.dir)
    }
}

/// The table on stderr, where the files are, the verdict as stdout's last line.
fn ab_verdict(said: Result<AbReport, AbError>, dir: &Path) -> ExitCode {
    match said {
        Ok(report) => {
            eprint!("{}", report.table());
            eprintln!("ab: {}/ab.json, ab.md, junit.xml", dir.display());
            println!("{}", report.verdict_line());
            ExitCode::from(report.exit_code())
        }
        Err(e) => refused(e),
    }
}

/// A gate that cannot judge says so on stdout's last line, as a verdict would.
fn refused(e: impl std::fmt::Display) -> ExitCode {
    println!("gate: REFUSED {e}");
    fail(e, EXIT_START)
}

#[derive(Debug, Args)]
pub struct GateArgs {
    run: PathBuf,
    #[arg(long)]
    baseline: PathBuf,
    /// Override every metric's tolerance, in percent.
    #[arg(long, value_parser = percent)]
    max_regression: Option<f64>,
}

impl GateArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_reports::gate;
        let verdict = RunRecord::load(&self.run)
            .map_err(ReportError::from)
            .and_then(|record| {
                let base = gate::Baseline::load(&self.baseline)?;
                gate::gate(&record, &base, self.max_regression)
            });
        let result = match verdict {
            Ok(result) => result,
            Err(e) => return refused(e),
        };
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
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tolerance for every metric, in percent (the least, with 3+ runs).
    #[arg(long, default_value = "10%", value_parser = percent)]
    max_regression: f64,
}

impl BaselineArgs {
    pub fn execute(self) -> ExitCode {
        match self.write() {
            Ok(path) => {
                println!("{}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e, EXIT_START),
        }
    }

    fn write(self) -> Result<PathBuf, ReportError> {
        let records = self
            .runs
            .iter()
            .map(|dir| RunRecord::load(dir).map_err(ReportError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let scenarios: std::collections::BTreeSet<&str> =
            records.iter().map(|r| r.scenario.name.as_str()).collect();
        if scenarios.len() > 1 {
            return Err(ReportError::Mismatch {
                run: "a set of runs of several scenarios".into(),
                baseline: format!(
                    "of one ({})",
                    scenarios.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let baseline = tierlab_reports::gate::Baseline::of_runs(&records, self.max_regression);
        for warning in baseline.noisy() {
            eprintln!("warning: {warning}");
        }
        let path = self.out.unwrap_or_else(|| {
            PathBuf::from("reports/baselines").join(format!("{}.json", baseline.scenario))
        });
        let text = serde_json::to_string_pretty(&baseline).unwrap_or_default() + "\n";
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(&path, text)
            .map(|()| path.clone())
            .map_err(|source| ReportError::Write { path, source })
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    run: PathBuf,
    /// A run directory to compare latency distributions with.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

impl ReportArgs {
    pub fn execute(self) -> ExitCode {
        match tierlab_reports::write_reports(&self.run, self.baseline.as_deref()) {
            Ok(files) => {
                for file in files {
                    println!("{}", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e, EXIT_START),
        }
    }
}

#[derive(Debug, Args)]
pub struct FiguresArgs {
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
    #[arg(required_unless_present = "block")]
    records: Vec<PathBuf>,
    /// A block a script made from other records (scripts/profile_block.py:
    /// perf's), written into the file as it is, in place of its old block.
    #[arg(long, conflicts_with = "records")]
    block: Option<PathBuf>,
}

impl FiguresArgs {
    pub fn execute(self) -> ExitCode {
        use tierlab_reports::figures::{block, write_into, Context, Source};
        if let Some(path) = &self.block {
            let written = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| {
                    write_into(&self.into, &self.section, &text).map_err(|e| e.to_string())
                });
            return written.map_or_else(|e| fail(e, EXIT_START), |()| ExitCode::SUCCESS);
        }
        let written = self
            .records
            .iter()
            .map(|p| Source::load(p))
            .collect::<Result<Vec<Source>, _>>()
            .and_then(|sources| {
                let text = block(
                    &self.section,
                    &self.command,
                    &sources,
                    &Context::of(&self.records),
                );
                write_into(&self.into, &self.section, &text).map(|()| text)
            });
        match written {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e, EXIT_START),
        }
    }
}
