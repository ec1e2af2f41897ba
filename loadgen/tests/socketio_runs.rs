//! `tierlab run` against Socket.IO targets end to end: the local topology
//! starting three python-socketio replicas behind HAProxy on one Redis (the
//! checker working from senders' counters, a replica killed costing what
//! Socket.IO really loses), and a Socket.IO server that sends garbage,
//! which must count as errors against the target and never stop the run.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{fault, leftovers, read_run, schema_errors};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn a_python_socketio_cluster_delivers_and_the_checker_counts_by_sender() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let result = support::run(
        "scenarios/socketio/chat-python.toml",
        &dir,
        &[
            "population.rooms=12",
            "load.stages=[{to=120,over=\"2s\"},{to=120,over=\"6s\"},{to=0,over=\"1s\"}]",
            "slo=[\"lost = 0\",\"duplicated = 0\"]",
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stderr}");
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(record["ended"], "completed");
    assert_eq!(record["partial"], false);
    assert_eq!(record["topology"]["server"], "python-socketio");
    assert_eq!(record["topology"]["protocol"], "socketio");
    assert!(record["versions"]["python-socketio"]
        .as_str()
        .unwrap()
        .starts_with("python-socketio 5."));

    let checker = &record["checker"];
    assert!(
        checker["guarantee"]
            .as_str()
            .unwrap()
            .starts_with("sender counters"),
        "{checker}"
    );
    let acked = checker["acked"].as_u64().unwrap();
    assert!(acked > 500, "{checker}");
    // Every act reaches (nearly) all ten members of its room.
    assert!(
        checker["delivered"].as_u64().unwrap() > acked * 8,
        "{checker}"
    );
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    // One stream per (member, sender) pair: 120 members × 10 senders.
    assert_eq!(checker["members_checked"], 1200, "{checker}");
    let summary = &record["summary"];
    assert!(summary["fanout_ms"]["count"].as_u64().unwrap() > acked * 8);
    assert!(summary["ack_ms"]["count"].as_u64().unwrap() >= acked);
    assert_eq!(summary["errors"], 0, "{}", record["errors"]);
    // CPU and memory of the Python replicas were sampled like any process.
    let processes = record["processes"].as_array().unwrap();
    let srv = processes.iter().find(|p| p["name"] == "srv-1").unwrap();
    assert!(srv["rss_mib_max"].as_f64().unwrap() > 10.0, "{srv}");
    assert_eq!(leftovers(&dir), Vec::<String>::new());
}

#[test]
fn killing_a_socketio_replica_loses_what_its_players_missed() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("kill.toml");
    std::fs::write(
        &file,
        r#"
name = "socketio-kill"
slo = ["lost = 0"]
[topology]
server = "python-socketio"
replicas = 3
balance = "roundrobin"
[protocol]
kind = "socketio"
[population]
rooms = 6
players_per_room = 6
[load]
stages = [{ to = 36, over = "1s" }, { to = 36, over = "9s" }, { to = 0, over = "1s" }]
max_duration = "40s"
drain = "2s"
[behaviour]
act_rate = 4.0
backoff_min = "300ms"
[http]
lookup_users = 0
[[faults]]
name = "kill srv-2"
kind = "crash"
target = "srv-2"
at = "3s"
for = "2s"
"#,
    )
    .unwrap();
    let dir = out.path().join("run");
    let result = support::run(&file, &dir, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    // Socket.IO has no resume: events sent while a player reconnects are
    // gone for it, and the `lost = 0` SLO says so with exit 99.
    assert_eq!(result.status.code(), Some(99), "{stderr}");
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    let kill = fault(&record, "kill srv-2");
    let verdict = &kill["verdict"];
    assert!(verdict["reconnects"].as_u64().unwrap() > 0, "{kill}");
    assert!(verdict["lost"].as_u64().unwrap() > 0, "{kill}");
    assert_eq!(
        verdict["lost"], record["checker"]["lost"],
        "every loss was acked during the kill: {}",
        record["checker"]
    );
    assert_eq!(record["checker"]["duplicated"], 0);
    assert_eq!(leftovers(&dir), Vec::<String>::new());
}

/// A Socket.IO server that seats players properly and then answers every
/// act with a frame of garbage, and broadcasts garbage too.
async fn garbage_server(listener: tokio::net::TcpListener, frames: usize) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let open = r#"0{"sid":"g1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
            let _ = ws.send(Message::text(open)).await;
            let mut sent = 0;
            while let Some(Ok(Message::Text(text))) = ws.next().await {
                let reply = match text.as_str() {
                    "40" => r#"40{"sid":"s1"}"#.to_owned(),
                    t if t.starts_with("420[") => r#"430[{"ok":true}]"#.to_owned(),
                    _ if sent < frames => {
                        sent += 1;
                        ["42[", "4x", "", "43", "9", "42[\"event\",{\"t\":\"no\"}]"][sent % 6]
                            .to_owned()
                    }
                    _ => continue,
                };
                if ws.send(Message::text(reply)).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[test]
fn garbage_from_a_socketio_server_is_an_error_against_it_not_a_crash() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(garbage_server(listener, 200));
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("garbage.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "socketio-garbage"
[topology]
kind = "external"
urls = ["ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"]
[protocol]
kind = "socketio"
[population]
rooms = 2
players_per_room = 3
[load]
stages = [{{ to = 6, over = "1s" }}, {{ to = 6, over = "3s" }}]
max_duration = "20s"
drain = "1s"
[behaviour]
act_rate = 5.0
[http]
lookup_users = 0
"#
        ),
    )
    .unwrap();
    let dir = out.path().join("run");
    let result = support::run(&file, &dir, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        matches!(result.status.code(), Some(0 | 99)),
        "exit {:?}: {stderr}",
        result.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(record["ended"], "completed");
    let bad = record["errors"]["bad_frame"].as_u64().unwrap_or(0);
    assert!(bad > 20, "{}", record["errors"]);
    // Acts were never acknowledged, and the players stayed connected.
    assert_eq!(record["checker"]["acked"], 0);
    assert_eq!(record["summary"]["peak_players"], 6);
    runtime.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn compare_puts_both_systems_side_by_side() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("compare.toml");
    std::fs::write(
        &file,
        r#"
name = "compare-test"
slo = ["p95(fanout) < 250ms", "errors < 1%"]
[topology]
replicas = 2
persistence = "aof-always"
balance = "roundrobin"
[protocol]
act_room_field = "room"
[population]
rooms = 4
players_per_room = 10
[load]
stages = [{ to = 40, over = "1s" }, { to = 40, over = "6s" }, { to = 0, over = "1s" }]
max_duration = "40s"
drain = "2s"
[behaviour]
act_rate = 2.0
backoff_min = "200ms"
[http]
create_users = 2
[capacity]
step = 20
ramp = "1s"
hold = "4s"
max_players = 40
[[faults]]
name = "kill srv-2"
kind = "crash"
target = "srv-2"
at = "2s"
for = "2s"
"#,
    )
    .unwrap();
    let dir = out.path().join("compare");
    let result = support::tierlab()
        .arg("compare")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    let systems = json["systems"].as_array().unwrap();
    let labels: Vec<&str> = systems
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["tierlab", "python-socketio"]);
    for system in systems {
        let label = &system["label"];
        // Both steps held under this lax SLO: the sweep never broke.
        assert_eq!(system["capacity"]["limit"], "max_players", "{label}");
        assert_eq!(system["capacity"]["steps"].as_array().unwrap().len(), 2);
        assert!(
            system["cpu_us_per_event"].as_f64().unwrap() > 0.0,
            "{label}"
        );
        assert!(
            system["rss_mib_per_player"].as_f64().unwrap() > 0.0,
            "{label}"
        );
        assert_eq!(system["faults"][0]["name"], "kill srv-2", "{label}");
        assert!(system["drill_players"].as_i64().unwrap() >= 39, "{label}");
    }
    // The reference server resumes its players and loses nothing; the
    // checkers said what they checked.
    assert_eq!(systems[0]["drill_lost"], 0, "{}", systems[0]);
    assert!(systems[0]["guarantee"]
        .as_str()
        .unwrap()
        .starts_with("server seqs"));
    assert!(systems[1]["guarantee"]
        .as_str()
        .unwrap()
        .starts_with("sender counters"));
    let page = std::fs::read_to_string(dir.join("compare.html")).unwrap();
    assert!(page.contains("<th>python-socketio</th>") && page.contains("<svg"));
    for system in ["tierlab", "python-socketio"] {
        let drill = read_run(&dir.join(system).join("drill"));
        assert_eq!(schema_errors(&drill), Vec::<String>::new(), "{system}");
        assert_eq!(
            leftovers(&dir.join(system).join("drill")),
            Vec::<String>::new()
        );
    }
}
