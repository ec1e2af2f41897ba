//! Sharded load generation: one scenario run by one worker and by three
//! (`--shard I/3 --start-at`) against the same Redis + replica, the three
//! merged with `tierlab merge`. The merged run must hold what the single
//! one does (players, members, nothing lost), its histograms must be the
//! exact sums of the workers', and merging must be associative. With
//! cross-worker rooms every room has members on all three workers: the
//! merge judges every worker's acks against every member, and estimates the
//! workers' clock skew from their deliveries to each other.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{read_run, schema_errors, tierlab, Children};

/// Redis and one replica, as someone else's system the workers share.
fn system() -> (Children, u16) {
    let mut system = Children(Vec::new());
    let redis_port = support::redis(&mut system);
    let server = PathBuf::from(env!("CARGO_BIN_EXE_tierlab")).with_file_name("tierlab-server");
    let port = support::spawn_listening(&mut system, "tierlab-server", |port| {
        let mut replica = Command::new(&server);
        replica
            .args(["--port", &port.to_string(), "--server-id", "srv-1"])
            .args(["--redis-url", &format!("redis://127.0.0.1:{redis_port}")])
            .env("RUST_LOG", "warn");
        replica
    });
    (system, port)
}

fn scenario(port: u16) -> String {
    format!(
        r#"
name = "shard-test"
slo = ["lost = 0", "duplicated = 0", "p95(fanout) < 250ms"]

[topology]
kind = "external"
urls = ["ws://127.0.0.1:{port}/ws"]

[population]
rooms = 9
players_per_room = 5

[load]
stages = [{{ to = 45, over = "1s" }}, {{ to = 45, over = "5s" }}, {{ to = 0, over = "1s" }}]
max_duration = "40s"
drain = "1s"

[behaviour]
act_rate = 2.0
"#
    )
}

fn run(file: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = tierlab();
    cmd.arg("run")
        .arg(file)
        .args(["--quiet", "--out"])
        .arg(dir)
        .args(extra);
    cmd
}

fn merge(dirs: &[&Path], out: &Path) -> Value {
    let status = tierlab()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "merge {dirs:?}");
    read_run(out)
}

/// Equal, but for the last bits of floating-point sums (added in another
/// order, 0.1 + 0.2 + 0.3 differs from 0.1 + (0.2 + 0.3)).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn three_workers_merged_hold_what_one_does_and_merging_is_associative() {
    let (_system, port) = system();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shard-test.toml");
    std::fs::write(&file, scenario(port)).unwrap();

    let single = tmp.path().join("single");
    assert!(run(&file, &single, &[]).status().unwrap().success());
    let single = read_run(&single);

    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 2.0;
    let workers: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("w{i}"))).collect();
    let children: Vec<_> = workers
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            run(
                &file,
                dir,
                &[
                    "--shard",
                    &format!("{i}/3"),
                    "--start-at",
                    &start_at.to_string(),
                ],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let parts: Vec<Value> = workers.iter().map(|d| read_run(d)).collect();
    for part in &parts {
        assert_eq!(schema_errors(part), Vec::<String>::new());
    }
    let whole = merge(
        &[&workers[0], &workers[1], &workers[2]],
        &tmp.path().join("m"),
    );
    assert_eq!(schema_errors(&whole), Vec::<String>::new());

    // The slices add up to the single run's population, and nothing is lost.
    assert_eq!(whole["shard"]["indices"], serde_json::json!([0, 1, 2]));
    assert_eq!(whole["partial"], false);
    assert_eq!(
        whole["summary"]["peak_players"],
        single["summary"]["peak_players"]
    );
    assert_eq!(
        whole["checker"]["members_checked"],
        single["checker"]["members_checked"]
    );
    assert_eq!(whole["checker"]["lost"], 0);
    assert!(
        whole["slo"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pass"] == true),
        "{}",
        whole["slo"]
    );
    // Counts and histogram totals are exact sums of the workers'.
    for field in [
        ["checker", "acked"],
        ["summary", "acts"],
        ["summary", "fanout_ms"],
    ] {
        let of = |r: &Value| {
            let v = &r[field[0]][field[1]];
            if v.is_object() {
                u(&v["count"])
            } else {
                u(v)
            }
        };
        assert_eq!(of(&whole), parts.iter().map(of).sum::<u64>(), "{field:?}");
    }
    // Compatible with one worker: the same order of acts and latencies.
    let ratio = u(&whole["summary"]["acts"]) as f64 / u(&single["summary"]["acts"]) as f64;
    assert!((0.7..1.4).contains(&ratio), "acts ratio {ratio}");
    let skew = whole["shard"]["start_skew_ms"].as_object().unwrap();
    assert_eq!(skew.len(), 3, "{skew:?}");

    // (a + b) + c = a + (b + c) = a + b + c.
    let ab = tmp.path().join("ab");
    merge(&[&workers[0], &workers[1]], &ab);
    let left = merge(&[&ab, &workers[2]], &tmp.path().join("ab_c"));
    let bc = tmp.path().join("bc");
    merge(&[&workers[1], &workers[2]], &bc);
    let right = merge(&[&workers[0], &bc], &tmp.path().join("a_bc"));
    for merged in [&left, &right] {
        for key in ["summary", "checker", "timeseries", "shard", "errors"] {
            assert!(
                same(&merged[key], &whole[key]),
                "{key}: {} ≠ {}",
                merged[key],
                whole[key]
            );
        }
    }
}

/// Runs slices 0..3 of `file` at once, sharing rooms through `rooms`.
fn three_workers(file: &Path, dirs: &[PathBuf], rooms: &Path) {
    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 2.0;
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let shard = format!("{i}/3");
            let at = start_at.to_string();
            let mut cmd = run(
                file,
                dir,
                &["--shard", &shard, "--start-at", &at, "--rooms"],
            );
            cmd.arg(rooms).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn room_codes(dir: &Path) -> Vec<String> {
    let facts: Value =
        serde_json::from_slice(&std::fs::read(dir.join("checker.json")).unwrap()).unwrap();
    let mut codes: Vec<String> = facts["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["room"].as_str().unwrap().to_owned())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

#[test]
fn rooms_split_across_workers_are_judged_whole_when_merged() {
    let (_system, port) = system();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cross.toml");
    let text = scenario(port)
        .replace(
            "rooms = 9\nplayers_per_room = 5",
            "rooms = 6\nplayers_per_room = 6\ncross_worker = true",
        )
        .replace("to = 45", "to = 36");
    std::fs::write(&file, text).unwrap();

    // Without a shared rooms file the workers could not meet: refused.
    let lone = run(&file, &tmp.path().join("lone"), &["--shard", "1/3"])
        .output()
        .unwrap();
    assert_eq!(lone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&lone.stderr).contains("--rooms"));

    let workers: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("x{i}"))).collect();
    three_workers(&file, &workers, &tmp.path().join("rooms.json"));
    let parts: Vec<Value> = workers.iter().map(|d| read_run(d)).collect();

    // Every worker played in the same six rooms, and its members saw events
    // that other workers' senders had acked (unknown to its own checker).
    let codes = room_codes(&workers[0]);
    assert_eq!(codes.len(), 6, "{codes:?}");
    for (dir, part) in workers.iter().zip(&parts) {
        assert_eq!(room_codes(dir), codes);
        assert!(
            u(&part["checker"]["unacked_delivered"]) > 0,
            "{}",
            part["checker"]
        );
    }

    // Merged, the checker sees every ack against every member.
    let whole = merge(
        &[&workers[0], &workers[1], &workers[2]],
        &tmp.path().join("m"),
    );
    assert_eq!(schema_errors(&whole), Vec::<String>::new());
    let checker = &whole["checker"];
    let sum = |field: &str| parts.iter().map(|p| u(&p["checker"][field])).sum::<u64>();
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    assert_eq!(u(&checker["members_checked"]), sum("members_checked"));
    assert_eq!(
        u(&checker["acked"]),
        sum("acked"),
        "each sender is on one worker"
    );
    assert!(
        u(&checker["unacked_delivered"]) * 10 <= sum("unacked_delivered"),
        "merged {checker} against the workers' {}",
        sum("unacked_delivered")
    );
    assert_eq!(u(&whole["summary"]["peak_players"]), 36);

    // Deliveries went every way between the workers, so their clocks can be
    // compared: on one machine they agree, up to the noise of the timings.
    let delivery = whole["shard"]["delivery_ms"].as_object().unwrap();
    assert_eq!(delivery.len(), 9, "{delivery:?}");
    let skew = whole["shard"]["clock_skew_ms"].as_object().unwrap();
    assert_eq!(
        skew.keys().collect::<Vec<_>>(),
        ["0-1", "0-2", "1-2"],
        "{skew:?}"
    );
    for (pair, ms) in skew {
        assert!(ms.as_f64().unwrap().abs() < 50.0, "{pair}: {ms}");
    }
    let merged = tmp.path().join("m");
    assert!(tierlab()
        .arg("report")
        .arg(&merged)
        .status()
        .unwrap()
        .success());
    let page = std::fs::read_to_string(merged.join("report.html")).unwrap();
    assert!(
        page.contains("<h2>Workers</h2>"),
        "the report shows the workers"
    );
}
