//! Fault drills end to end, against real processes: a replica or Redis is
//! killed under load and started again, and the checker must find what the
//! persistence promised — nothing lost with AOF always, and an honest loss
//! when Redis comes back empty.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{fault, leftovers, read_run, schema_errors};

/// A small drill: 2 replicas, players straight to them (a room's members
/// on both), 60 players acting twice a second for ~14 s, `faults` appended.
fn drill(persistence: &str, faults: &str) -> String {
    format!(
        r#"
name = "drill-test"
slo = ["lost = 0", "duplicated = 0"]

[topology]
replicas = 2
state = "redis"
via = "direct"
persistence = "{persistence}"

[population]
rooms = 6
players_per_room = 10

[load]
stages = [{{ to = 60, over = "1s" }}, {{ to = 60, over = "12s" }}, {{ to = 0, over = "1s" }}]
max_duration = "40s"
drain = "2s"

[behaviour]
act_rate = 2.0

[http]
create_users = 2
health_every = "250ms"
{faults}
"#
    )
}

/// Runs `scenario` (text) and returns its record, checked against the schema.
fn run_drill(scenario: &str) -> Value {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("drill.toml");
    std::fs::write(&file, scenario).unwrap();
    let dir = out.path().join("run");
    let result = support::run(&file, &dir, &[]);
    let record = read_run(&dir);
    assert!(
        matches!(result.status.code(), Some(0 | 99)),
        "exit {:?}\n{}",
        result.status.code(),
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    for entry in std::fs::read_dir(dir.join("logs")).unwrap() {
        let log = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!log.contains("panicked"), "a process panicked:\n{log}");
    }
    record
}

#[test]
fn killing_a_replica_loses_nothing_and_its_players_come_back() {
    let record = run_drill(&drill(
        "aof-always",
        "[[faults]]\nname = \"kill srv-2\"\nkind = \"crash\"\ntarget = \"srv-2\"\nat = \"4s\"\nfor = \"2s\"\n",
    ));
    let checker = &record["checker"];
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    assert!(checker["acked"].as_u64().unwrap() > 500, "{checker}");
    let kill = fault(&record, "kill srv-2");
    assert!(kill["end_s"].as_f64().unwrap() > kill["start_s"].as_f64().unwrap() + 1.9);
    let verdict = &kill["verdict"];
    assert!(verdict["reconnects"].as_u64().unwrap() > 0, "{verdict}");
    // Back within the session TTL (120 s), here within the run.
    assert!(verdict["players_back_s"].as_f64().is_some(), "{verdict}");
    assert_eq!(verdict["pass"], true, "{verdict}");
}

#[test]
fn redis_killed_with_aof_always_loses_nothing_and_health_says_so() {
    let record = run_drill(&drill(
        "aof-always",
        "[[faults]]\nname = \"redis down\"\nkind = \"crash\"\ntarget = \"redis\"\nat = \"4s\"\nfor = \"2s\"\n",
    ));
    let checker = &record["checker"];
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    // While Redis was down the replicas said so on /health (503 degraded).
    let health = &record["http"]["GET /health"];
    assert!(health["failures"].as_u64().unwrap() > 0, "{health}");
    assert!(health["failures"].as_u64().unwrap() < health["requests"].as_u64().unwrap());
    assert_eq!(fault(&record, "redis down")["verdict"]["lost"], 0);
}

/// srv-2 stalls (SIGSTOP) while Redis dies and comes back: what srv-2's
/// members missed must come from the stream when srv-2 wakes. With AOF
/// always it is there; with no persistence it is gone, and the checker
/// must say so.
fn stall_and_crash(persistence: &str) -> Value {
    run_drill(&drill(
        persistence,
        "[[faults]]\nname = \"stall srv-2\"\nkind = \"pause\"\ntarget = \"srv-2\"\nat = \"3s\"\nfor = \"4s\"\n\
         [[faults]]\nname = \"redis down\"\nkind = \"crash\"\ntarget = \"redis\"\nat = \"4s\"\nfor = \"1s\"\n",
    ))
}

#[test]
fn a_stalled_replica_backfills_after_redis_restarts_from_its_aof() {
    let record = stall_and_crash("aof-always");
    assert_eq!(record["checker"]["lost"], 0, "{}", record["checker"]);
    assert_eq!(record["checker"]["duplicated"], 0, "{}", record["checker"]);
}

#[test]
fn redis_without_persistence_is_reported_as_loss() {
    let record = stall_and_crash("none");
    let checker = &record["checker"];
    assert!(
        checker["lost"].as_u64().unwrap() > 0,
        "the checker must catch it: {checker}"
    );
    assert_eq!(record["slo"][0]["name"], "lost = 0");
    assert_eq!(record["slo"][0]["pass"], false);
    // The loss is tied to the window of a fault.
    let in_windows: u64 = record["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["verdict"]["lost"].as_u64().unwrap())
        .sum();
    assert!(in_windows > 0, "{}", record["faults"]);
}

#[test]
fn sentinel_promotes_the_replica_and_the_replicas_follow() {
    let scenario = drill("aof-everysec", "[[faults]]\nname = \"primary dies\"\nkind = \"failover\"\ntarget = \"redis\"\nat = \"4s\"\n")
        .replace("persistence = \"aof-everysec\"", "persistence = \"aof-everysec\"\nsentinel = true")
        .replace("slo = [\"lost = 0\", \"duplicated = 0\"]", "slo = [\"duplicated = 0\"]");
    let record = run_drill(&scenario);
    assert_eq!(record["topology"]["sentinel"], true);
    let failover = fault(&record, "primary dies");
    assert_eq!(failover["errors"], serde_json::json!([]), "{failover}");
    let took = failover["end_s"].as_f64().unwrap() - failover["start_s"].as_f64().unwrap();
    assert!(took > 0.5 && took < 30.0, "promotion took {took} s");
    assert!(
        failover["verdict"]["fanout_recovered_s"].as_f64().is_some(),
        "{failover}"
    );
    // After the promotion acts are acked again: the replicas moved to the
    // new primary, for commands and for Pub/Sub.
    let end = failover["end_s"].as_f64().unwrap();
    let after: Vec<&Value> = record["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["t"].as_f64().unwrap() > end + 2.0 && s["target"].as_f64().unwrap() >= 60.0)
        .collect();
    assert!(!after.is_empty());
    for second in after {
        assert!(second["ack_ms"]["count"].as_u64().unwrap() > 0, "{second}");
        assert!(second["events_delivered"].as_u64().unwrap() > 0, "{second}");
    }
    assert_eq!(record["checker"]["duplicated"], 0);
}

#[test]
fn a_rolling_restart_drains_each_replica_and_loses_nothing() {
    let record = run_drill(&drill(
        "aof-everysec",
        "[[faults]]\nname = \"roll\"\nkind = \"rolling-restart\"\ntarget = \"replicas\"\nat = \"3s\"\nfor = \"3s\"\n",
    ));
    let checker = &record["checker"];
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    let roll = fault(&record, "roll");
    assert_eq!(roll["errors"], serde_json::json!([]), "{roll}");
    // srv-2 goes down 3 s after srv-1; the fault ends when it is back.
    assert!(roll["end_s"].as_f64().unwrap() > roll["start_s"].as_f64().unwrap() + 3.0);
    assert!(
        roll["verdict"]["reconnects"].as_u64().unwrap() > 0,
        "{roll}"
    );
}

#[test]
fn latency_on_a_players_link_shows_in_fan_out() {
    let record = run_drill(&drill(
        "none",
        "[[faults]]\nname = \"slow srv-1\"\nkind = \"latency\"\ntarget = \"players->srv-1\"\nat = \"4s\"\nfor = \"4s\"\nlatency = \"150ms\"\ndirection = \"downstream\"\n",
    ));
    let slow = fault(&record, "slow srv-1");
    let (start, end) = (
        slow["start_s"].as_f64().unwrap(),
        slow["end_s"].as_f64().unwrap(),
    );
    let p95 = |s: &Value| s["fanout_ms"]["p95"].as_f64().unwrap();
    let rows = record["timeseries"].as_array().unwrap();
    // Half the members sit behind the slowed link: while it lasts, p95
    // fan-out is at least the added delay; before it, well under.
    let during: Vec<f64> = rows
        .iter()
        .filter(|s| s["t"].as_f64().unwrap() > start + 1.0 && s["t"].as_f64().unwrap() < end)
        .map(p95)
        .collect();
    assert!(!during.is_empty());
    assert!(during.iter().all(|p| *p >= 150.0), "{during:?}");
    let before: Vec<f64> = rows
        .iter()
        .filter(|s| (2.0..start - 1.0).contains(&s["t"].as_f64().unwrap()))
        .map(p95)
        .collect();
    assert!(before.iter().all(|p| *p < 150.0), "{before:?}");
    assert_eq!(record["checker"]["lost"], 0);
}
