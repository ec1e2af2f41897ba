//! The docker topology end to end: Redis, three replicas and HAProxy as
//! containers of the images `just images` builds, on a network the run
//! creates; container-level faults under load — a replica's container
//! killed, Redis's container paused for 5 s, one replica cut off from Redis
//! by iptables in its container — and the checker must find nothing acked
//! lost. Skipped, with one line saying so, where no Docker engine answers.

#![allow(clippy::unwrap_used)]

mod support;

use support::{fault, read_run, schema_errors};

const SCENARIO: &str = r#"
name = "docker-drill-test"
slo = ["lost = 0", "duplicated = 0"]

[topology]
kind = "docker"
replicas = 3
state = "redis"
via = "lb"
persistence = "aof-always"
balance = "roundrobin"

[population]
rooms = 20
players_per_room = 10

[load]
stages = [{ to = 200, over = "2s" }, { to = 200, over = "34s" }, { to = 0, over = "1s" }]
max_duration = "90s"
drain = "3s"

[behaviour]
act_rate = 1.0

[http]
create_users = 2
health_every = "500ms"

[[faults]]
name = "kill srv-2"
kind = "crash"
target = "srv-2"
at = "5s"
for = "3s"

[[faults]]
name = "pause redis"
kind = "pause"
target = "redis"
at = "13s"
for = "5s"

[[faults]]
name = "partition srv-1"
kind = "blackhole"
target = "srv-1->redis"
at = "24s"
for = "5s"
"#;

fn haproxy_containers() -> String {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "ancestor=tierlab/haproxy:latest"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn container_faults_under_load_lose_nothing_acked() {
    if !support::docker::docker_engine_answers() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("docker-drill.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let dir = out.path().join("run");
    let result = support::run(&file, &dir, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        matches!(result.status.code(), Some(0 | 99)),
        "exit {:?}\n{stderr}",
        result.status.code()
    );
    let record = read_run(&dir);
    assert_eq!(schema_errors(&record), Vec::<String>::new());
    assert_eq!(
        record["topology"]["kind"], "docker",
        "{}",
        record["topology"]
    );

    let checker = &record["checker"];
    assert_eq!(checker["lost"], 0, "{checker}");
    assert_eq!(checker["duplicated"], 0, "{checker}");
    assert!(checker["acked"].as_u64().unwrap() > 3_000, "{checker}");
    for name in ["kill srv-2", "pause redis", "partition srv-1"] {
        let f = fault(&record, name);
        assert_eq!(f["errors"], serde_json::json!([]), "{name}: {f}");
        assert_eq!(f["verdict"]["lost"], 0, "{name}: {f}");
    }
    // Fan-out came back under 50 ms after Redis was unpaused.
    let pause = &fault(&record, "pause redis")["verdict"];
    assert!(pause["fanout_recovered_s"].as_f64().is_some(), "{pause}");
    let kill = &fault(&record, "kill srv-2")["verdict"];
    assert!(kill["reconnects"].as_u64().unwrap() > 0, "{kill}");
    assert!(kill["players_back_s"].as_f64().is_some(), "{kill}");

    // The containers' output was kept and the containers removed.
    for name in ["redis", "srv-1", "srv-2", "srv-3", "haproxy"] {
        assert!(dir.join(format!("logs/{name}.log")).exists(), "{name}");
    }
    let server_log = std::fs::read_to_string(dir.join("logs/srv-1.log")).unwrap();
    assert!(!server_log.contains("panicked"), "{server_log}");
    assert_eq!(haproxy_containers(), "", "the run left containers behind");
}
