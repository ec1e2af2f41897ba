//! The `tierlab` command line. Exit codes (documented in docs/scenarios.md):
//! 0 ran and every SLO held · 99 an SLO failed · 2 could not start (bad
//! scenario, topology failed) · 130 interrupted (Ctrl-C) · 143 terminated
//! (SIGTERM) · 1 the run failed;
//! `tierlab gate`: 98 a metric regressed beyond its tolerance; `tierlab ab`:
//! 98 a metric regressed, 99 a run failed its SLOs, 2 refused.
//!
//! The binary only turns arguments into the library's options and its
//! results into lines and exit codes; `cli/` holds one file per family of
//! commands and `cli/process.rs` what every command shares with the
//! process (signals, stdout, the runtime, logging).

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    cli::process::init_tracing();
    cli::Cli::parse().command.execute()
}
