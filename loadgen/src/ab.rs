//! `tierlab ab`: one scenario against two builds on this machine, in one
//! job. A build is a `tierlab-server` binary, a git revision (built here
//! in a throwaway worktree, cached by commit), a checkout as it is on disk,
//! or an external target; the
//! runs alternate A B, B A, … so drift and noise fall on both, each in its
//! own `tierlab run` process with its own topology. The verdict is
//! `tierlab_reports::ab`'s; this module only builds, runs and keeps the
//! records together (`DIR/runs/NN-a`, `NN-b`, `DIR/ab.json`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use tierlab_record::RunRecord;
use tierlab_reports::ab::{self, AbReport, AbSetup, Arm};

/// What runs as the replicas of one arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    /// `bin:PATH`: a `tierlab-server` binary (or a script that execs one).
    Binary(PathBuf),
    /// `rev:REV`: a git revision of this repository, built here.
    Revision(String),
    /// `tree:DIR`: a checkout as it is on disk (uncommitted changes too),
    /// built exactly as a revision is, so the two compare like with like.
    Tree(PathBuf),
    /// `url:WS_URL`: a system already running elsewhere (an external topology).
    Url(String),
}

impl FromStr for Build {
    type Err = String;

    fn from_str(text: &str) -> Result<Build, String> {
        match text.split_once(':') {
            Some(("bin", path)) if !path.is_empty() => Ok(Build::Binary(path.into())),
            Some(("rev", rev)) if !rev.is_empty() => Ok(Build::Revision(rev.into())),
            Some(("tree", dir)) if !dir.is_empty() => Ok(Build::Tree(dir.into())),
            Some(("url", url)) if url.starts_with("ws://") || url.starts_with("wss://") => {
                Ok(Build::Url(url.into()))
            }
            _ => Err(format!(
                "`{text}` is not a build: bin:PATH (a tierlab-server binary), rev:REV (a git revision), tree:DIR (a checkout as it is) or url:ws://HOST:PORT/ws"
            )),
        }
    }
}

impl std::fmt::Display for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Build::Binary(path) => write!(f, "bin:{}", path.display()),
            Build::Revision(rev) => write!(f, "rev:{rev}"),
            Build::Tree(dir) => write!(f, "tree:{}", dir.display()),
            Build::Url(url) => write!(f, "url:{url}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AbError {
    #[error("{build}: {source}")]
    Build {
        build: String,
        #[source]
        source: BuildError,
    },
    #[error("cannot run {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Record {
        path: PathBuf,
        source: tierlab_record::RecordError,
    },
    #[error(
        "{dir} could not start (exit {code}): the gate stops, since the next runs would fail alike"
    )]
    RunFailed { dir: PathBuf, code: i32 },
    #[error("{path} is not an A/B gate's directory: {message}")]
    NotAGate { path: PathBuf, message: String },
}

/// Why a build could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("git {args}: {stderr}")]
    Git { args: String, stderr: String },
    #[error("no such file")]
    NoSuchFile,
    #[error("cargo build failed ({0})")]
    Cargo(std::process::ExitStatus),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A validated `tierlab ab` invocation.
#[derive(Debug, Clone)]
pub struct AbPlan {
    pub scenario: PathBuf,
    /// `--set` overrides for every run.
    pub sets: Vec<String>,
    pub baseline: Build,
    pub candidate: Build,
    /// Rounds of two runs each (A B, then B A, …).
    pub rounds: u32,
    pub min_effect_pct: f64,
    /// Seconds with more CPU steal than this (%) do not count.
    pub max_steal_pct: f64,
    pub out: PathBuf,
}

/// The `--set`s that point a run at a prepared build.
#[derive(Debug, Clone)]
struct Prepared {
    sets: Vec<String>,
}

/// Where revision builds and their worktrees live (one cargo target
/// directory for all of them: the second build of a revision is a copy).
fn builds_dir() -> PathBuf {
    PathBuf::from("target/ab-builds")
}

fn git(args: &[&str]) -> Result<String, BuildError> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|source| BuildError::Spawn {
            tool: "git",
            source,
        })?;
    if !out.status.success() {
        return Err(BuildError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Builds `tierlab-server` at `rev` (or finds it built); returns the binary.
fn build_revision(rev: &str, say: &dyn Fn(&str)) -> Result<PathBuf, BuildError> {
    let sha = git(&["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?;
    let short = &sha[..12.min(sha.len())];
    let root = builds_root()?;
    let binary = root.join(short).join("tierlab-server");
    if binary.exists() {
        return Ok(binary);
    }
    say(&format!("ab: building tierlab-server at {rev} ({short})"));
    let tree = root.join(format!("tree-{short}"));
    let _ = git(&["worktree", "remove", "--force", &tree.to_string_lossy()]);
    git(&["worktree", "add", "--detach", &tree.to_string_lossy(), &sha])?;
    let built = cargo_build(&tree, &root.join(format!("target-{short}")), &binary);
    let _ = git(&["worktree", "remove", "--force", &tree.to_string_lossy()]);
    built.map(|()| binary)
}

/// Builds `tierlab-server` from the checkout `dir` as it is on disk.
fn build_tree(dir: &Path, say: &dyn Fn(&str)) -> Result<PathBuf, BuildError> {
    let dir = std::fs::canonicalize(dir).map_err(|source| BuildError::File {
        path: dir.to_owned(),
        source,
    })?;
    let root = builds_root()?;
    let binary = root.join("tree").join("tierlab-server");
    say(&format!(
        "ab: building tierlab-server from {}",
        dir.display()
    ));
    cargo_build(&dir, &root.join("target-tree"), &binary).map(|()| binary)
}

fn builds_root() -> Result<PathBuf, BuildError> {
    std::env::current_dir()
        .map(|dir| dir.join(builds_dir()))
        .map_err(|source| BuildError::File {
            path: ".".into(),
            source,
        })
}

/// `cargo build --release --locked -p tierlab-server` in `dir` — the same
/// command, so the same features of every crate, for every build (a server
/// built beside the generator gets other features of the crates both use,
/// and measurably more memory per connection) — into `target`, then
/// copied to `binary`. Each source gets a target directory of its own:
/// cargo judges freshness by file times against paths relative to the
/// workspace, so two checkouts sharing one would pass one's build off as
/// the other's.
fn cargo_build(dir: &Path, target: &Path, binary: &Path) -> Result<(), BuildError> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked", "-p", "tierlab-server"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .map_err(|source| BuildError::Spawn {
            tool: "cargo",
            source,
        })?;
    if !status.success() {
        return Err(BuildError::Cargo(status));
    }
    let file = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::File { path, source }
    };
    if let Some(parent) = binary.parent() {
        std::fs::create_dir_all(parent).map_err(file(parent))?;
    }
    std::fs::copy(target.join("release/tierlab-server"), binary)
        .map(|_| ())
        .map_err(file(binary))
}

fn prepare(build: &Build, say: &dyn Fn(&str)) -> Result<Prepared, AbError> {
    let failed = |source: BuildError| AbError::Build {
        build: build.to_string(),
        source,
    };
    let binary = match build {
        Build::Url(url) => {
            return Ok(Prepared {
                sets: vec![
                    "topology.kind=external".into(),
                    format!("topology.urls=[\"{url}\"]"),
                ],
            })
        }
        Build::Binary(path) => {
            if !path.is_file() {
                return Err(failed(BuildError::NoSuchFile));
            }
            std::fs::canonicalize(path).map_err(|source| {
                failed(BuildError::File {
                    path: path.clone(),
                    source,
                })
            })?
        }
        Build::Revision(rev) => build_revision(rev, say).map_err(failed)?,
        Build::Tree(dir) => build_tree(dir, say).map_err(failed)?,
    };
    Ok(Prepared {
        sets: vec![format!(
            "topology.server_bin=\"{}\"",
            binary.display().to_string().replace('\\', "\\\\")
        )],
    })
}

/// The order of the runs: A B, B A, A B, …
pub fn order(rounds: u32) -> Vec<Arm> {
    (0..rounds)
        .flat_map(|r| {
            if r % 2 == 0 {
                [Arm::Baseline, Arm::Candidate]
            } else {
                [Arm::Candidate, Arm::Baseline]
            }
        })
        .collect()
}

fn run_name(index: usize, arm: Arm) -> String {
    let letter = match arm {
        Arm::Baseline => 'a',
        Arm::Candidate => 'b',
    };
    format!("{:02}-{letter}", index + 1)
}

/// Prepares both builds, runs the scenario against each in turn, judges.
/// `interrupted` is asked between runs (a run itself stops on Ctrl-C).
pub fn run(
    plan: &AbPlan,
    say: &dyn Fn(&str),
    interrupted: &dyn Fn() -> bool,
) -> Result<AbReport, AbError> {
    let began = std::time::Instant::now();
    let a = prepare(&plan.baseline, say)?;
    let b = prepare(&plan.candidate, say)?;
    let exe = std::env::current_exe().map_err(|source| AbError::Spawn {
        what: "tierlab".into(),
        source,
    })?;
    let runs_dir = plan.out.join("runs");
    let arms = order(plan.rounds);
    for (i, arm) in arms.iter().enumerate() {
        if interrupted() {
            break;
        }
        let (prepared, build) = match arm {
            Arm::Baseline => (&a, &plan.baseline),
            Arm::Candidate => (&b, &plan.candidate),
        };
        let dir = runs_dir.join(run_name(i, *arm));
        say(&format!(
            "ab: run {}/{} ({build}) → {}",
            i + 1,
            arms.len(),
            dir.display()
        ));
        let mut command = Command::new(&exe);
        command
            .arg("run")
            .arg(&plan.scenario)
            .arg("--quiet")
            .arg("--no-report")
            .arg("--out")
            .arg(&dir);
        for set in plan.sets.iter().chain(&prepared.sets) {
            command.arg("--set").arg(set);
        }
        // The run's stdout (its goose chatter, its directory) is not the
        // gate's: stdout ends with the verdict line alone.
        if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
            command.stdout(fd);
        }
        let status = wait_passing_on_interrupt(&mut command, interrupted).map_err(|source| {
            AbError::Spawn {
                what: format!("{}", exe.display()),
                source,
            }
        })?;
        // 0 and 99 (an SLO failed) are runs; anything else is judged from
        // what the run left, which then does not count.
        match status.code() {
            Some(130 | 143) => break,
            Some(code @ 2) => return Err(AbError::RunFailed { dir, code }),
            _ => {}
        }
    }
    judge_dir(&plan.out, &setup(plan), Some(began.elapsed().as_secs_f64()))
}

/// Runs `command` to its end; when the gate is interrupted meanwhile (a
/// SIGTERM the child did not get), the child is asked to stop the same way,
/// so it ends gracefully and leaves its partial record.
fn wait_passing_on_interrupt(
    command: &mut Command,
    interrupted: &dyn Fn() -> bool,
) -> std::io::Result<std::process::ExitStatus> {
    let mut child = command.spawn()?;
    let mut passed_on = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupted() && !passed_on {
            passed_on = true;
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn setup(plan: &AbPlan) -> AbSetup {
    AbSetup {
        baseline: plan.baseline.to_string(),
        candidate: plan.candidate.to_string(),
        min_effect_pct: plan.min_effect_pct,
        max_steal_pct: plan.max_steal_pct,
    }
}

/// Judges the runs in `dir/runs` again (after a change of method, or of
/// the minimum effect) with `setup`, and writes the verdict files.
/// `wall_s`: how long the gate took, when it just ran.
pub fn judge_dir(dir: &Path, setup: &AbSetup, wall_s: Option<f64>) -> Result<AbReport, AbError> {
    let runs_dir = dir.join("runs");
    let not_gate = |message: String| AbError::NotAGate {
        path: dir.to_owned(),
        message,
    };
    let mut names: Vec<String> = std::fs::read_dir(&runs_dir)
        .map_err(|e| not_gate(format!("{}: {e}", runs_dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut runs = Vec::new();
    for name in names {
        let arm = match name.rsplit_once('-') {
            Some((_, "a")) => Arm::Baseline,
            Some((_, "b")) => Arm::Candidate,
            _ => continue,
        };
        let path = runs_dir.join(&name);
        // A run that left no record (it could not start) counts as unfit.
        let record = match RunRecord::load(&path) {
            Ok(record) => record,
            Err(tierlab_record::RecordError::Read { .. }) => RunRecord::default(),
            Err(source) => return Err(AbError::Record { path, source }),
        };
        runs.push((arm, format!("runs/{name}"), record));
    }
    if runs.is_empty() {
        return Err(not_gate("no runs".into()));
    }
    let mut report = ab::judge(setup, &runs);
    report.wall_s = wall_s;
    write_verdict(dir, &report)?;
    Ok(report)
}

/// Reads the setup an earlier gate in `dir` was judged with, and how long
/// it took.
pub fn earlier_setup(dir: &Path) -> Result<(AbSetup, Option<f64>), AbError> {
    let path = dir.join("ab.json");
    let report: AbReport = tierlab_reports::read_json(&path).map_err(|e| AbError::NotAGate {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    Ok((
        AbSetup {
            baseline: report.baseline,
            candidate: report.candidate,
            min_effect_pct: report.min_effect_pct,
            max_steal_pct: report.max_steal_pct,
        },
        report.wall_s,
    ))
}

fn write_verdict(dir: &Path, report: &AbReport) -> Result<(), AbError> {
    // JUnit's time: the whole gate, when it was timed.
    let seconds = report.wall_s.unwrap_or(0.0);
    let files = [
        (
            "ab.json",
            serde_json::to_string_pretty(report).unwrap_or_default(),
        ),
        ("ab.md", report.markdown()),
        ("junit.xml", report.junit(seconds)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| AbError::Write { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_parse_and_name_themselves() {
        assert_eq!(
            "bin:target/release/tierlab-server".parse::<Build>(),
            Ok(Build::Binary("target/release/tierlab-server".into()))
        );
        assert_eq!(
            "rev:HEAD~1".parse::<Build>(),
            Ok(Build::Revision("HEAD~1".into()))
        );
        assert_eq!(
            "url:ws://127.0.0.1:8000/ws"
                .parse::<Build>()
                .unwrap()
                .to_string(),
            "url:ws://127.0.0.1:8000/ws"
        );
        let err = "target/release/tierlab-server"
            .parse::<Build>()
            .unwrap_err();
        assert!(err.contains("bin:PATH"), "{err}");
        assert!("url:http://x".parse::<Build>().is_err());
    }

    #[test]
    fn runs_alternate_so_each_arm_goes_first_as_often() {
        use Arm::{Baseline as A, Candidate as B};
        assert_eq!(order(3), [A, B, B, A, A, B]);
        assert_eq!(run_name(0, A), "01-a");
        assert_eq!(run_name(11, B), "12-b");
    }

    #[test]
    fn a_missing_binary_is_named() {
        let err = prepare(&Build::Binary("/no/such/server".into()), &|_| {}).unwrap_err();
        assert_eq!(err.to_string(), "bin:/no/such/server: no such file");
    }
}
