//! What every command shares with the process: the exit codes, Ctrl-C and
//! SIGTERM, stdout kept for the one line scripts read, the runtime with
//! the descriptor limit raised, and where logging goes.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use tierlab_loadgen::scenario::Scenario;
use tokio_util::sync::CancellationToken;

use super::ScenarioArgs;

pub const EXIT_SLO: u8 = 99;
pub const EXIT_REGRESSION: u8 = 98;
pub const EXIT_START: u8 = 2;
pub const EXIT_FAILED: u8 = 1;
const EXIT_INTERRUPTED: u8 = 130;
/// Ended by SIGTERM (what a CI cancel or `kill` sends), as gracefully as by Ctrl-C.
const EXIT_TERMINATED: u8 = 143;

/// Set when SIGTERM, not Ctrl-C, asked the run to stop.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// 143 after SIGTERM, 130 after Ctrl-C.
pub fn interrupted_code() -> u8 {
    if TERMINATED.load(Ordering::Relaxed) {
        EXIT_TERMINATED
    } else {
        EXIT_INTERRUPTED
    }
}

/// `error: …` on stderr, and the exit code that goes with it.
pub fn fail(e: impl Display, code: u8) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(code)
}

/// The scenario (or exit 2 naming its problem) and the runtime to run it.
pub fn scenario_and_runtime(
    args: &ScenarioArgs,
) -> Result<(Scenario, tokio::runtime::Runtime), ExitCode> {
    let scenario = Scenario::load(&args.scenario, &args.set).map_err(|e| fail(e, EXIT_START))?;
    Ok((scenario, runtime()?))
}

/// The runtime of the long-running commands, with the descriptor limit
/// raised for thousands of players.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    raise_fd_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}"), EXIT_FAILED))
}

/// Every player holds a socket: use all the descriptors the hard limit allows.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// stdout carries one line, the run directory, for scripts to capture;
/// whatever a library prints (goose announces its users) goes to stderr.
pub fn reserve_stdout() -> Box<dyn Write> {
    match tierlab_loadgen::run_log::capture_stdout() {
        Ok(saved) => Box::new(saved),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Warnings on the terminal, but goose's (its launch lines, its WARNs)
/// only in the run's log, with whatever else a run's libraries say at info.
/// RUST_LOG replaces the terminal's filter.
pub fn init_tracing() {
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
pub fn interrupt_on_ctrl_c() -> CancellationToken {
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
            TERMINATED.store(true, Ordering::Relaxed);
            eprintln!("terminated: stopping the run and writing what it measured");
            interrupt.cancel();
            goose::trigger_killswitch("terminated");
            term.recv().await;
            eprintln!("terminated again: exiting now");
            std::process::exit(i32::from(EXIT_TERMINATED));
        });
    });
}
