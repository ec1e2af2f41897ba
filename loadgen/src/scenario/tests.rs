//! Scenario parsing: a good file with defaults, and each kind of bad one.

use super::*;

const GOOD: &str = r#"
name = "smoke"
slo = ["p95(fanout) < 50ms", "lost = 0"]

[topology]
replicas = 2

[population]
rooms = 4
players_per_room = 5

[load]
stages = [{ to = 20, over = "2s" }, { to = 20, over = "3s" }, { to = 0, over = "1s" }]
max_duration = "30s"

[behaviour]
act_rate = 2.0
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("scenarios/x.toml"), text, &[])
}

fn error(text: &str) -> String {
    parse(text).expect_err("should fail").to_string()
}

#[test]
fn a_good_file_gets_its_defaults() {
    let s = parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "smoke");
    assert_eq!(s.topology.kind, TopologyKind::Local);
    assert_eq!(s.topology.via, Via::Lb);
    assert_eq!(s.topology.state, StateMode::Redis);
    assert_eq!(s.population.players(), 20);
    assert_eq!(s.population.create_via, CreateVia::Rest);
    assert_eq!(s.load.model, Model::Closed);
    assert_eq!(s.load.stages_total(), Duration::from_secs(6));
    assert_eq!(s.load.drain, Duration::from_secs(2));
    assert_eq!(s.behaviour.act_rate, 2.0);
    assert_eq!(s.behaviour.payload, 32);
    assert_eq!(s.slo.len(), 2);
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let err = error("name = \"x\"\n[topology\nreplicas = 2\n");
    assert!(err.starts_with("scenarios/x.toml:2:"), "{err}");
}

#[test]
fn a_wrong_type_names_the_field_and_its_line() {
    let err = error(&GOOD.replace("rooms = 4", "rooms = \"four\""));
    assert!(err.starts_with("scenarios/x.toml:9:1:"), "{err}");
    assert!(err.contains("population.rooms"), "{err}");
}

#[test]
fn unknown_fields_are_refused_not_ignored() {
    let err = error(&GOOD.replace("act_rate = 2.0", "act_rate = 2.0\nact_rat = 3"));
    assert!(err.contains("act_rat"), "{err}");
    assert!(err.contains("behaviour"), "{err}");
}

#[test]
fn missing_sections_are_named() {
    let err = error("name = \"x\"\n[topology]\n");
    assert!(err.contains("population"), "{err}");
}

#[test]
fn semantic_mistakes_name_the_field() {
    for (from, to, field) in [
        (
            "{ to = 20, over = \"2s\" }",
            "{ to = 50, over = \"2s\" }",
            "load.stages[0]",
        ),
        (
            "max_duration = \"30s\"",
            "max_duration = \"5s\"",
            "load.max_duration",
        ),
        ("act_rate = 2.0", "act_rate = -1.0", "behaviour.act_rate"),
        (
            "replicas = 2",
            "replicas = 2\nstate = \"memory\"",
            "topology.replicas",
        ),
        ("name = \"smoke\"", "name = \"a b\"", "name"),
        (
            "players_per_room = 5",
            "players_per_room = 5\nmax_players = 3",
            "population.max_players",
        ),
        (
            "act_rate = 2.0",
            "act_rate = 2.0\n[http]\nunknown_share = 1.5",
            "http.unknown_share",
        ),
        (
            "act_rate = 2.0",
            "act_rate = 2.0\n[http]\ncreate_users = 0",
            "http.create_users",
        ),
        (
            "act_rate = 2.0",
            "act_rate = 2.0\n[http]\nhealth_every = \"1ms\"",
            "http.health_every",
        ),
    ] {
        let err = error(&GOOD.replace(from, to));
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn bad_durations_and_slos_are_named() {
    let err = error(&GOOD.replace("over = \"2s\"", "over = \"two seconds\""));
    assert!(err.contains("load.stages"), "{err}");
    let err = error(&GOOD.replace("< 50ms", "< fast"));
    assert!(err.contains("slo[0]"), "{err}");
}

#[test]
fn overrides_apply_and_bad_ones_are_named() {
    let text = GOOD;
    let sets = vec![
        "topology.via=direct".to_owned(),
        "population.rooms=8".to_owned(),
    ];
    let s = Scenario::parse(Path::new("x.toml"), text, &sets).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.topology.via, Via::Direct);
    assert_eq!(s.population.rooms, 8);
    assert!(s.source.contains("direct"));
    let bad = Scenario::parse(
        Path::new("x.toml"),
        text,
        &["population.rooms=lots".to_owned()],
    )
    .expect_err("bad override")
    .to_string();
    assert!(
        bad.contains("population.rooms: invalid type: string \"lots\", expected u32 (from --set population.rooms=lots)"),
        "{bad}"
    );
    let no_eq = Scenario::parse(Path::new("x.toml"), text, &["population.rooms".to_owned()])
        .expect_err("no =")
        .to_string();
    assert!(no_eq.contains("key.path=value"), "{no_eq}");
}

#[test]
fn shipped_scenarios_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for dir in [root.clone(), root.join("drills"), root.join("socketio")] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 7,
        "expected smoke, tier1, tier2 and the drills at least"
    );
}

const FAULTY: &str = "\n[[faults]]\nkind = \"crash\"\ntarget = \"srv-2\"\nat = \"5s\"\n";

#[test]
fn faults_parse_into_targets_and_times() {
    let text = format!(
        "{GOOD}{FAULTY}\n[[faults]]\nname = \"slow link\"\nkind = \"latency\"\ntarget = \"srv-1 -> redis\"\nat = \"2s\"\nfor = \"3s\"\nlatency = \"50ms\"\n"
    );
    let s = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.faults.len(), 2);
    // In the order they start.
    assert_eq!(s.faults[0].name, "slow link");
    assert_eq!(s.faults[0].target, Target::ReplicaToRedis(1));
    assert_eq!(s.faults[0].latency, Duration::from_millis(50));
    assert_eq!(s.faults[1].name, "crash srv-2");
    assert_eq!(s.faults[1].target, Target::Replica(2));
    assert_eq!(s.faults[1].lasts, None);
}

#[test]
fn bad_faults_are_named_before_anything_starts() {
    for (fault, expect) in [
        (
            "kind = \"crash\"\ntarget = \"srv-7\"\nat = \"1s\"",
            "srv-7 does not exist",
        ),
        (
            "kind = \"crash\"\ntarget = \"mongo\"\nat = \"1s\"",
            "not a replica",
        ),
        (
            "kind = \"pause\"\ntarget = \"redis\"\nat = \"1s\"",
            "needs `for`",
        ),
        (
            "kind = \"crash\"\ntarget = \"srv-1\"\nat = \"20s\"\nfor = \"15s\"",
            "the run lasts at most",
        ),
        (
            "kind = \"blackhole\"\ntarget = \"srv-1\"\nat = \"1s\"\nfor = \"1s\"",
            "cannot hit `srv-1`",
        ),
        (
            "kind = \"crash\"\ntarget = \"lb->redis\"\nat = \"1s\"",
            "links are",
        ),
        (
            "kind = \"latency\"\ntarget = \"srv-1->redis\"\nat = \"1s\"\nfor = \"1s\"",
            "needs `latency`",
        ),
        (
            "kind = \"crash\"\ntarget = \"lb\"\nat = \"1s\"\nwhen = 3",
            "unknown field `when`",
        ),
    ] {
        let text = format!("{GOOD}\n[[faults]]\nname = \"bad one\"\n{fault}\n");
        let err = error(&text);
        assert!(err.contains(expect), "{fault}: {err}");
        if !expect.starts_with("unknown") {
            assert!(err.contains("faults[0] \"bad one\""), "{err}");
        }
    }
    let memory = GOOD.replace("replicas = 2", "replicas = 1\nstate = \"memory\"");
    let err = error(&format!(
        "{memory}\n[[faults]]\nkind = \"crash\"\ntarget = \"redis\"\nat = \"1s\"\n"
    ));
    assert!(err.contains("no Redis"), "{err}");
}

#[test]
fn docker_topologies_refuse_what_containers_cannot_do() {
    let docker = |topology: &str, faults: &str| {
        let text = GOOD.replace(
            "[topology]\nreplicas = 2\n",
            &format!("[topology]\nreplicas = 2\nkind = \"docker\"\n{topology}"),
        );
        format!("{text}{faults}")
    };
    let ok = parse(&docker("balance = \"roundrobin\"\n", FAULTY)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.topology.kind, TopologyKind::Docker);
    let players_link = "\n[[faults]]\nkind = \"blackhole\"\ntarget = \"players->srv-1\"\nat = \"1s\"\nfor = \"1s\"\n";
    for (topology, faults, field, expect) in [
        ("", "", "topology.balance", "every player to one replica"),
        (
            "balance = \"roundrobin\"\nsentinel = true\n",
            "",
            "topology.sentinel",
            "local topology only",
        ),
        (
            "via = \"assigned\"\n",
            "",
            "topology.via",
            "assigned players",
        ),
        (
            "balance = \"roundrobin\"\n",
            players_link,
            "faults[0]",
            "players reach the replicas from the host",
        ),
    ] {
        let message = error(&docker(topology, faults));
        assert!(
            message.contains(field) && message.contains(expect),
            "{message}"
        );
    }
}

#[test]
fn a_redis_cluster_topology_refuses_what_it_cannot_do() {
    let shards = |extra: &str| {
        GOOD.replace(
            "replicas = 2\n",
            &format!("replicas = 2\nredis_shards = 3\n{extra}"),
        )
    };
    let ok = parse(&shards("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.topology.redis_shards, 3);
    assert_eq!(parse(GOOD).unwrap().topology.redis_shards, 1);
    for (extra, expect) in [
        ("sentinel = true\n", "no Sentinel"),
        (
            "kind = \"docker\"\nbalance = \"roundrobin\"\n",
            "local topology only",
        ),
        ("state = \"memory\"\n", "topology."),
    ] {
        let err = error(&shards(extra));
        assert!(err.contains(expect), "{extra}: {err}");
    }
    let err = error(&shards("").replace("redis_shards = 3", "redis_shards = 0"));
    assert!(err.contains("topology.redis_shards"), "{err}");
    let crash = "\n[[faults]]\nkind = \"crash\"\ntarget = \"redis\"\nat = \"1s\"\n";
    let err = error(&format!("{}{crash}", shards("")));
    assert!(err.contains("not fault targets yet"), "{err}");
}

#[test]
fn a_socketio_game_maps_its_events_and_refuses_what_cannot_work() {
    let peer = GOOD.replace(
        "[topology]\nreplicas = 2",
        "[topology]\nreplicas = 2\nserver = \"python-socketio\"\n\n[protocol]\nkind = \"socketio\"\njoin_args = [{ room = \"{room}\", as = \"player\" }]",
    );
    let s = parse(&peer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.protocol.kind, ProtocolKind::Socketio);
    assert_eq!(s.protocol.act_event, "act");
    assert_eq!(
        s.protocol.join_args_for("R1"),
        vec![serde_json::json!({ "room": "R1", "as": "player" })]
    );
    for (change, field) in [
        // The reference server does not speak Socket.IO, nor the peer ours.
        (("server = \"python-socketio\"\n", ""), "protocol.kind"),
        (
            ("kind = \"socketio\"", "kind = \"tierlab\""),
            "protocol.kind",
        ),
        (
            ("replicas = 2\n", "replicas = 2\nsentinel = true\n"),
            "topology.server",
        ),
        (
            ("replicas = 2\n", "replicas = 2\nvia = \"assigned\"\n"),
            "topology.server",
        ),
        (
            ("{ room = \"{room}\", as = \"player\" }", "\"lobby\""),
            "protocol.join_args",
        ),
        (
            (
                "kind = \"socketio\"",
                "kind = \"socketio\"\nnamespace = \"chat\"",
            ),
            "protocol.namespace",
        ),
        (
            (
                "kind = \"socketio\"",
                "kind = \"socketio\"\nact_event = \"\"",
            ),
            "protocol.act_event",
        ),
        (
            ("[behaviour]", "[http]\nlookup_users = 2\n\n[behaviour]"),
            "http.lookup_users",
        ),
    ] {
        let err = error(&peer.replacen(change.0, change.1, 1));
        assert!(err.contains(field), "{change:?}: {err}");
    }
}

#[test]
fn a_capacity_hold_too_short_to_measure_is_refused() {
    let err = error(&format!("{GOOD}\n[capacity]\nhold = \"2s\"\n"));
    assert!(err.contains("capacity.hold"), "{err}");
    assert!(parse(&format!("{GOOD}\n[capacity]\nhold = \"3s\"\n")).is_ok());
}

#[test]
fn every_problem_is_reported_at_its_line_and_column() {
    let text = GOOD
        .replace("rooms = 4", "rooms = 0")
        .replace("act_rate = 2.0", "act_rate = 0.0");
    let err = error(&text);
    let lines: Vec<&str> = err.lines().collect();
    let rooms_line = text.lines().position(|l| l == "rooms = 0").unwrap() + 1;
    let rate_line = text.lines().position(|l| l == "act_rate = 0.0").unwrap() + 1;
    assert!(
        lines.contains(
            &format!("scenarios/x.toml:{rooms_line}:1: population.rooms: must be at least 1")
                .as_str()
        ),
        "{err}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "scenarios/x.toml:{rate_line}:1: behaviour.act_rate:"
        ))),
        "{err}"
    );
}

#[test]
fn a_problem_set_on_the_command_line_names_its_set() {
    let err = Scenario::parse(
        Path::new("scenarios/x.toml"),
        GOOD,
        &["behaviour.act_rate=0".into()],
    )
    .expect_err("act_rate 0")
    .to_string();
    assert!(
        err.contains("behaviour.act_rate: must be in (0, 1000] (from --set behaviour.act_rate=0)"),
        "{err}"
    );
}

#[test]
fn every_check_passes_a_good_file() {
    let file: ScenarioFile = typed::typed(toml::from_str(GOOD).unwrap()).unwrap();
    for (name, check) in validate::CHECKS {
        let mut problems = validate::Problems::default();
        check(&file, &mut problems);
        assert_eq!(problems.into_vec(), Vec::new(), "check {name}");
    }
}

#[test]
fn every_type_error_is_reported_each_at_its_line() {
    let text = GOOD
        .replace("rooms = 4", "rooms = \"five\"")
        .replace("act_rate = 2.0", "act_rate = \"fast\"\nact_rat = 1");
    let err = error(&text);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines.iter().any(|l| l
            .starts_with("scenarios/x.toml:9:1: population.rooms: invalid type: string \"five\"")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("behaviour.act_rate: invalid type")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("behaviour.act_rat: unknown field")),
        "{err}"
    );
    assert!(
        !err.contains("missing field"),
        "a field taken out is not missing: {err}"
    );
}

#[test]
fn a_bad_set_is_named_not_a_line_of_the_file() {
    let err = Scenario::parse(
        Path::new("x.toml"),
        GOOD,
        &[
            "load.stages=[{to=30,over=\"5x\"}]".to_owned(),
            "behaviour.act_rate=\"x\"".to_owned(),
        ],
    )
    .expect_err("bad --set")
    .to_string();
    assert!(
        err.contains("x.toml: load.stages[0].over: invalid value: string \"5x\", expected a duration (from --set load.stages=[{to=30,over=\"5x\"}])"),
        "{err}"
    );
    assert!(
        err.contains("(from --set behaviour.act_rate=\"x\")"),
        "{err}"
    );
    assert!(
        err.lines().all(|l| l.starts_with("x.toml: ")),
        "no line of the file is blamed: {err}"
    );
}
