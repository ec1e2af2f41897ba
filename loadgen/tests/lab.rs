//! `./lab`, the first command on a bare machine: what it installs when a
//! machine lacks everything (a PATH stripped of every tool it installs and
//! a HOME without cargo's bin), how it stops without root, and that on a
//! machine that has everything it installs nothing.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab")
}

/// A directory of the few tools the script itself uses, and nothing it
/// would install (no redis-server, haproxy, chromium, just, python3, cargo,
/// docker, sudo).
fn bare_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["bash", "env", "dirname", "id", "sed", "cat", "apt-get"] {
        let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} is not installed here"));
        if !bin.join(tool).exists() {
            symlink(found, bin.join(tool)).unwrap();
        }
    }
    bin
}

/// Runs `command` with nothing in its environment but the bare PATH, a
/// HOME of its own and, when `plan`, LAB_PLAN (so nothing is installed).
fn on_bare_machine(dir: &Path, command: &mut Command, plan: bool) -> Output {
    command
        .env_clear()
        .env("PATH", bare_path(dir))
        .env("HOME", dir);
    if plan {
        command.env("LAB_PLAN", "1");
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn on_a_bare_machine_the_plan_names_everything_the_tests_need() {
    let dir = tempfile::tempdir().unwrap();
    let out = on_bare_machine(dir.path(), Command::new(lab()).arg("test"), true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "apt-get install -y redis-server haproxy redis-sentinel chromium\n\
         python3 -m pip install -r scenarios/peers/requirements.txt kubernetes-validate\n\
         cargo install just --locked\n"
    );
    // The main job needs less: no browser, no Python.
    let out = on_bare_machine(dir.path(), Command::new(lab()).arg("bench-tier2"), true);
    assert_eq!(
        text(&out.stdout),
        "apt-get install -y redis-server haproxy redis-sentinel\ncargo install just --locked\n"
    );
}

#[test]
fn without_root_it_stops_with_the_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    // As root, drop to nobody; as anyone else, the test already is not root.
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if is_root {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(lab());
        c
    } else {
        Command::new(lab())
    };
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = on_bare_machine(dir.path(), command.arg("bench-tier2"), false);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("installing redis-server haproxy redis-sentinel needs root")
            && stderr.contains("    sudo apt-get install -y redis-server haproxy redis-sentinel"),
        "{stderr}"
    );
}

#[test]
fn on_a_machine_that_has_everything_it_installs_nothing() {
    let out = Command::new(lab())
        .args(["setup", "test"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr, "lab: everything 'test' needs is installed\n",
        "`just test` runs after ./lab installed what it needs, so nothing is missing"
    );
}

#[test]
fn without_a_recipe_it_says_how_it_is_used() {
    let out = Command::new(lab()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("./lab RECIPE [ARGS…]"));
}

#[test]
fn a_flag_is_not_a_recipe_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Not a plan: were `--help` taken for a recipe, this would try apt-get.
    let help = on_bare_machine(dir.path(), Command::new(lab()).arg("--help"), false);
    assert_eq!(help.status.code(), Some(0), "{}", text(&help.stderr));
    assert!(text(&help.stdout).contains("./lab setup [RECIPE]"));
    assert!(
        !text(&help.stderr).contains("installing"),
        "{}",
        text(&help.stderr)
    );
    let unknown = on_bare_machine(dir.path(), Command::new(lab()).arg("--frobnicate"), false);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unknown option --frobnicate"));
}
