//! End to end: `tierlab run` against a real local tier 2 (redis-server, two
//! tierlab-server replicas, HAProxy) — the smoke scenario must connect,
//! deliver, lose nothing and write a run.json that matches its schema; an
//! interrupted run must leave a partial run.json and no processes behind.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{leftovers, read_run, schema_errors, tierlab};

/// `tierlab run scenarios/smoke.toml --quiet --out DIR` with `overrides`
/// (`key=value`, each passed as `--set`).
fn run_smoke(dir: &Path, overrides: &[&str]) -> std::process::Output {
    support::run("scenarios/smoke.toml", dir, overrides)
}

#[test]
fn smoke_run_delivers_everything_and_writes_a_valid_record() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("smoke");
    let result = run_smoke(&dir, &[]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "exit {:?}\n{}\n{}",
        result.status.code(),
        stdout,
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        stdout.lines().last(),
        Some(dir.to_str().unwrap()),
        "last line is the run directory"
    );
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(record["partial"], false);
    assert_eq!(record["summary"]["peak_players"], 50);
    assert!(record["summary"]["events_delivered"].as_u64().unwrap() > 500);
    assert_eq!(record["checker"]["lost"], 0);
    assert_eq!(record["checker"]["duplicated"], 0);
    assert!(record["checker"]["acked"].as_u64().unwrap() > 100);
    assert!(record["slo"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["pass"] == true));
    assert!(record["timeseries"].as_array().unwrap().len() >= 4);
    // The HTTP side, through goose: every room created, lookups and health
    // polls answered as expected (unknown codes with 404).
    let http = &record["http"];
    assert_eq!(http["POST /api/rooms"]["requests"], 10, "{http}");
    for name in [
        "POST /api/rooms",
        "GET /api/rooms/{code}",
        "GET /api/rooms/{unknown}",
        "GET /health",
    ] {
        assert!(
            http[name]["requests"].as_u64().unwrap_or(0) > 0,
            "{name}: {http}"
        );
        assert_eq!(http[name]["failures"], 0, "{name}: {http}");
    }
    let hlog = std::fs::read_to_string(dir.join("latency.hlog")).unwrap();
    assert!(hlog.starts_with("#[Histogram log format version 1.3]"));
    assert!(hlog.lines().any(|l| l.starts_with("Tag=fanout,")));
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_broken_scenario_is_refused_before_anything_starts() {
    let out = tempfile::tempdir().unwrap();
    let bad = out.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[topology]\nreplicas = \"three\"\n").unwrap();
    let result = tierlab().arg("run").arg(&bad).output().unwrap();
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("bad.toml:3:") && stderr.contains("topology.replicas"),
        "{stderr}"
    );
}

#[test]
fn a_failed_slo_exits_99() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("strict");
    let result = run_smoke(&dir, &["slo=[\"p50(fanout) < 1us\"]"]);
    assert_eq!(
        result.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let record = read_run(&dir);
    assert_eq!(record["slo"][0]["pass"], false);
}

#[test]
fn an_interrupted_run_leaves_a_partial_record_and_no_processes() {
    stopped_by(nix::sys::signal::Signal::SIGINT, 130);
}

/// SIGTERM (a CI cancel, `kill`) ends a run as gracefully as Ctrl-C.
#[test]
fn a_terminated_run_leaves_a_partial_record_and_no_processes() {
    stopped_by(nix::sys::signal::Signal::SIGTERM, 143);
}

fn stopped_by(signal: nix::sys::signal::Signal, code: i32) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("interrupted");
    let mut child = tierlab()
        .args([
            "run",
            "scenarios/smoke.toml",
            "--quiet",
            "--set",
            "load.stages=[{to=50,over=\"1s\"},{to=50,over=\"60s\"}]",
            "--set",
            "load.max_duration=\"2m\"",
            "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let players = std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|r| r["summary"]["peak_players"].as_i64());
        if players == Some(50) {
            break;
        }
        assert!(Instant::now() < deadline, "run never reached its players");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The detector sees Redis, both replicas and HAProxy while they run.
    assert_eq!(leftovers(&dir).len(), 4, "{:?}", leftovers(&dir));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code));
    let record = read_run(&dir);
    assert_eq!(record["partial"], true);
    assert_eq!(record["ended"], "interrupted");
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    std::thread::sleep(Duration::from_millis(300));
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn assigned_rooms_and_resuming_players_lose_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("assigned");
    // Every player drops and resumes about every 2 s; rooms are placed by
    // the registry and players connect straight to the assigned replica.
    let result = run_smoke(&dir, &["topology.via=assigned", "behaviour.reconnect=30"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let record = read_run(&dir);
    assert_eq!(record["topology"]["via"], "assigned");
    assert!(
        record["summary"]["reconnect_ms"]["count"].as_u64().unwrap() >= 20,
        "players resumed"
    );
    assert_eq!(record["checker"]["lost"], 0);
    assert_eq!(record["checker"]["duplicated"], 0);
    assert_eq!(record["checker"]["reordered"], 0);
    assert!(record["checker"]["members_checked"].as_u64().unwrap() >= 50);
}

#[test]
fn a_redis_cluster_topology_spreads_rooms_and_loses_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cluster");
    let result = run_smoke(&dir, &["topology.redis_shards=3"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(record["topology"]["redis_shards"], 3);
    assert_eq!(record["checker"]["lost"], 0);
    assert_eq!(record["checker"]["duplicated"], 0);
    assert!(record["checker"]["acked"].as_u64().unwrap() > 100);
    // Every shard carried commands: the rooms spread over all three.
    let processes = record["processes"].as_array().unwrap();
    for shard in ["redis-1", "redis-2", "redis-3"] {
        let p = processes.iter().find(|p| p["name"] == shard);
        let ops = p.and_then(|p| p["ops_per_s_median"].as_f64());
        assert!(ops.is_some_and(|o| o > 0.0), "{shard}: {p:?}");
    }
}

#[test]
fn a_topology_that_fails_halfway_stops_what_it_started() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("halfway");
    // Redis starts; the replicas cannot.
    let result = run_smoke(
        &dir,
        &["topology.server_bin=\"/nonexistent/tierlab-server\""],
    );
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("/nonexistent/tierlab-server"), "{stderr}");
    let started = std::fs::read_to_string(dir.join("processes.txt")).unwrap();
    assert!(started.starts_with("redis "), "{started}");
    // Stopped and reaped before tierlab exited, not merely signalled.
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

/// A real smoke run's report, rendered by headless Chromium: the page
/// loads from disk with no network, every chart is in the rendered DOM, and
/// the screenshot is not blank.
#[test]
fn a_real_runs_report_renders_in_a_browser() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("smoke");
    let result = run_smoke(&dir, &[]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let report = tierlab().arg("report").arg(&dir).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    for file in ["report.html", "report.md", "junit.xml"] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let record = read_run(&dir);
    assert!(
        md.contains(&format!(
            "Peak players {}",
            record["summary"]["peak_players"]
        )),
        "{md}"
    );

    let page = format!("file://{}", dir.join("report.html").display());
    let chromium = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(args)
            .arg(&page)
            .output()
            .expect("chromium is not installed: apt-get install -y chromium")
    };
    let dom = chromium(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Three latency charts (fan-out, ack, send lag), two count charts, the
    // spectrum, the capacity curve.
    assert_eq!(
        dom.matches("<svg").count(),
        7,
        "charts in the rendered page"
    );
    for heading in [
        "SLOs",
        "Delivery checker",
        "Latency over time",
        "Capacity",
        "Per process",
        "Environment",
    ] {
        assert!(
            dom.contains(heading),
            "{heading} missing from the rendered page"
        );
    }
    let shot = dir.join("report.png");
    let screenshot = chromium(&[
        "--window-size=1100,3000",
        &format!("--screenshot={}", shot.display()),
    ]);
    assert!(
        shot.exists(),
        "{}",
        String::from_utf8_lossy(&screenshot.stderr)
    );
    // A blank page of that size compresses to a few KiB; charts and tables
    // to far more.
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 60_000, "screenshot of {size} bytes looks blank");
}

/// `tierlab capacity` on the smoke scenario into `dir`, steps ramped over
/// 1 s and held 3 s, with `args` and these `sets`.
fn short_capacity(dir: &Path, args: &[&str], sets: &[&str]) -> std::process::Output {
    let mut command = tierlab();
    command
        .args(["capacity", "scenarios/smoke.toml", "--quiet"])
        .args(args)
        .args([
            "--set",
            "capacity.hold=\"3s\"",
            "--set",
            "capacity.ramp=\"1s\"",
        ]);
    for set in sets {
        command.args(["--set", set]);
    }
    command.arg("--out").arg(dir).output().unwrap()
}

/// A two-step capacity sweep of the smoke scenario on one replica: each
/// step is a real run, and the sweep writes its model and its page.
#[test]
fn a_capacity_sweep_steps_the_load_and_writes_its_report() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("capacity");
    let result = short_capacity(
        &dir,
        &["--replicas", "1", "--state", "memory"],
        &["capacity.step=25"],
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json = dir.join("capacity.json");
    assert_eq!(
        String::from_utf8_lossy(&result.stdout).trim(),
        json.display().to_string()
    );
    let sweep: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let config = &sweep["configs"][0];
    assert_eq!(config["label"], "1x-memory");
    let steps = config["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{config}");
    assert_eq!(steps[1]["offered"], 50);
    assert!(
        steps[1]["throughput"].as_f64().unwrap() > steps[0]["throughput"].as_f64().unwrap(),
        "{config}"
    );
    assert_eq!(sweep["verdicts"][0]["limit"], "max_players");
    // Both steps held: what a player costs is fitted over them, from the
    // sampler's CPU and memory of each process.
    assert!(
        steps[1]["rss_mib"]["srv-1"].as_f64().unwrap() > 1.0,
        "{config}"
    );
    let model = &sweep["models"][0];
    assert_eq!(model["label"], "1x-memory");
    let replicas = model["costs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "replicas")
        .unwrap_or_else(|| panic!("no replica cost: {model}"));
    assert_eq!(replicas["cpu_cores"]["points"], 2, "{model}");
    assert!(replicas["memory_kib"].is_object(), "{model}");
    // Each step is a run directory of its own.
    assert!(dir.join("1x-memory/step-000025/run.json").exists());
    let page = std::fs::read_to_string(dir.join("capacity.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(
        page.contains("≥ 50 (not reached)"),
        "the sweep did not break, so no capacity is claimed"
    );
    // A plan needs shared-state (redis) measurements; this sweep has none.
    let plan = tierlab()
        .args(["plan", "--players", "1000", "--capacity"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plan.stderr).contains("no redis configuration"));
    // A block in the docs names the command that made it.
    let unnamed = tierlab()
        .args(["plan", "--players", "1000", "--into", "x.md", "--capacity"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(unnamed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("--command"));
}

/// A capacity search bisects below a step that broke: with an SLO no step
/// can meet, the first step (10 players) breaks, the search tries 5 (whole
/// rooms, halfway down), which breaks too and is within the resolution, and
/// the sentence says so, names the SLO and its value, and what was full.
#[test]
fn a_capacity_search_bisects_below_the_first_failure_and_says_why() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("search");
    let result = short_capacity(
        &dir,
        &[],
        &[
            "slo=[\"p50(fanout) < 1us\"]",
            "capacity.step=10",
            "capacity.max_players=10",
            "capacity.resolution=5",
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("capacity.json")).unwrap()).unwrap();
    let steps = sweep["configs"][0]["steps"].as_array().unwrap();
    let offered: Vec<u64> = steps
        .iter()
        .map(|s| s["offered"].as_u64().unwrap())
        .collect();
    assert_eq!(offered, vec![5, 10], "in order of players: {sweep}");
    assert!(steps
        .iter()
        .all(|s| s["held"] == false && s["judged_from_s"] == 3.0));
    let sentence = sweep["verdicts"][0]["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with("smoke (2x-redis) held no step, down to 5 players: p50(fanout) was "),
        "{sentence}"
    );
    assert!(sentence.contains("% of one core"), "{sentence}");
    assert!(
        stderr.contains(sentence),
        "the sentence is on the terminal: {stderr}"
    );
    assert!(stderr.contains("capacity report: "), "{stderr}");
}

/// A run split over worker processes (as one needing more players than a
/// process may hold is) is one record: the topology as started, every
/// worker's slice, every member checked against every ack, nothing lost.
#[test]
fn a_run_over_worker_processes_is_one_whole_record() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("workers");
    let result = tierlab()
        .args([
            "run",
            "scenarios/smoke.toml",
            "--quiet",
            "--workers",
            "2",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(record["topology"]["kind"], "local");
    assert_eq!(record["shard"]["indices"], serde_json::json!([0, 1]));
    assert_eq!(record["summary"]["peak_players"], 50);
    assert_eq!(record["checker"]["members_checked"], 50);
    assert_eq!(record["checker"]["lost"], 0);
    assert!(record["summary"]["send_lag_ms"]["count"].as_u64().unwrap() > 100);
    let names: Vec<&str> = record["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"srv-1") && names.contains(&"redis"),
        "{names:?}"
    );
    for worker in ["worker-0", "worker-1"] {
        assert!(dir.join(worker).join("run.json").exists(), "{worker}");
    }
    assert!(
        leftovers(&dir).is_empty(),
        "processes left: {:?}",
        leftovers(&dir)
    );
}

#[test]
fn a_prepared_block_replaces_its_old_block_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        "# Doc\n\n<!-- figures:p x -->\nold\n<!-- /figures:p -->\n\ntail\n",
    )
    .unwrap();
    let block = dir.path().join("block.md");
    std::fs::write(&block, "<!-- figures:p y -->\nnew\n<!-- /figures:p -->\n").unwrap();
    let out = tierlab()
        .args(["figures", "--section", "p", "--command", "c", "--into"])
        .arg(&doc)
        .arg("--block")
        .arg(&block)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&doc).unwrap(),
        "# Doc\n\n<!-- figures:p y -->\nnew\n<!-- /figures:p -->\n\ntail\n"
    );
    let missing = tierlab()
        .args(["figures", "--section", "p", "--command", "c", "--into"])
        .arg(&doc)
        .args(["--block", "/no/such/block.md"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/block.md"));
}
