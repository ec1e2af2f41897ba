//! Scenario validation after parsing: a list of small named checks, each
//! looking at one part of the file and naming the field of every problem
//! it finds. Every check runs, so a file with three mistakes hears of all
//! three at once; each problem is placed at the line and column of its
//! field in the file (or named as the `--set` that gave it its value).

use std::time::Duration;

use super::fault::Bounds;
use super::{
    Backoff, Balance, Fault, Model, ProtocolKind, ScenarioFile, ServerKind, Slo, StateMode,
    TopologyKind, Via,
};

/// One thing wrong with a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted path of the field (`population.rooms`, `load.stages[1]`,
    /// `faults[0] "cut srv-2"`).
    pub field: String,
    pub message: String,
}

/// What the checks found so far.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    /// Notes `message` at `field` unless `ok`.
    fn require(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.add(field, message.to_owned());
        }
    }

    fn add(&mut self, field: &str, message: String) {
        self.0.push(Problem {
            field: field.to_owned(),
            message,
        });
    }

    pub(super) fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

type Check = fn(&ScenarioFile, &mut Problems);

/// Every check, in the order their problems are reported.
pub(super) const CHECKS: [(&str, Check); 13] = [
    ("name", name),
    ("replicas", replicas),
    ("urls", urls),
    ("redis", redis),
    ("docker", docker),
    ("population", population),
    ("stages", stages),
    ("duration", duration),
    ("behaviour", behaviour),
    ("backoff", backoff),
    ("capacity", capacity),
    ("http", http),
    ("protocol", protocol),
];

/// Runs every check; then parses the SLOs and faults, which need a sound
/// topology to be judged against.
pub(super) fn check(file: &ScenarioFile) -> Result<(Vec<Slo>, Vec<Fault>), Vec<Problem>> {
    let mut problems = Problems::default();
    for (_, check) in CHECKS {
        check(file, &mut problems);
    }
    let slos = slos(file, &mut problems);
    let faults = faults(file, &mut problems);
    match problems.into_vec() {
        found if found.is_empty() => Ok((slos, faults)),
        found => Err(found),
    }
}

fn name(file: &ScenarioFile, p: &mut Problems) {
    p.require(!file.name.trim().is_empty(), "name", "must not be empty");
    p.require(
        file.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "name",
        "use letters, digits, '-' and '_' (it names the run directory)",
    );
}

/// A topology `tierlab` starts itself (processes or containers).
fn started_here(file: &ScenarioFile) -> bool {
    file.topology.kind != TopologyKind::External
}

fn replicas(file: &ScenarioFile, p: &mut Problems) {
    let t = &file.topology;
    if !started_here(file) {
        return;
    }
    p.require(
        (1..=16).contains(&t.replicas),
        "topology.replicas",
        "must be 1 to 16",
    );
    p.require(
        t.state == StateMode::Redis || t.replicas == 1,
        "topology.replicas",
        "memory state serves one replica only",
    );
}

fn urls(file: &ScenarioFile, p: &mut Problems) {
    let t = &file.topology;
    if started_here(file) {
        p.require(
            t.urls.is_empty(),
            "topology.urls",
            "only for kind = \"external\"",
        );
        return;
    }
    p.require(
        !t.urls.is_empty(),
        "topology.urls",
        "an external topology needs at least one URL",
    );
    for url in &t.urls {
        p.require(
            url.starts_with("ws://") || url.starts_with("wss://"),
            "topology.urls",
            "each URL must start with ws:// or wss://",
        );
    }
}

fn redis(file: &ScenarioFile, p: &mut Problems) {
    let t = &file.topology;
    if !started_here(file) {
        return;
    }
    p.require(
        !t.sentinel || t.state == StateMode::Redis,
        "topology.sentinel",
        "Sentinel needs state = \"redis\"",
    );
    p.require(
        (1..=16).contains(&t.redis_shards),
        "topology.redis_shards",
        "must be 1 (a single Redis) to 16",
    );
    p.require(
        t.redis_shards == 1 || (t.state == StateMode::Redis && !t.sentinel),
        "topology.redis_shards",
        "a Redis Cluster needs state = \"redis\" and no Sentinel",
    );
    p.require(
        t.redis_shards == 1 || t.kind == TopologyKind::Local,
        "topology.redis_shards",
        "a Redis Cluster runs in the local topology only",
    );
}

fn docker(file: &ScenarioFile, p: &mut Problems) {
    let t = &file.topology;
    if t.kind != TopologyKind::Docker {
        return;
    }
    p.require(
        !t.sentinel,
        "topology.sentinel",
        "Sentinel runs in the local topology only",
    );
    p.require(
        t.via != Via::Assigned,
        "topology.via",
        "assigned players need each replica's address before it starts; use \"lb\" or \"direct\" with docker",
    );
    p.require(
        t.via != Via::Lb || t.balance != Balance::Source,
        "topology.balance",
        "\"source\" (the default) would send every player to one replica: in docker they all come from the host's one bridge address; use \"roundrobin\" or \"leastconn\"",
    );
}

fn population(file: &ScenarioFile, p: &mut Problems) {
    let pop = &file.population;
    p.require(pop.rooms >= 1, "population.rooms", "must be at least 1");
    p.require(
        pop.players_per_room >= 1,
        "population.players_per_room",
        "must be at least 1",
    );
    p.require(
        pop.max_players.is_none_or(|m| m >= pop.players_per_room),
        "population.max_players",
        "must hold players_per_room",
    );
}

fn stages(file: &ScenarioFile, p: &mut Problems) {
    let l = &file.load;
    p.require(
        !l.stages.is_empty(),
        "load.stages",
        "needs at least one stage",
    );
    let players = file.population.players();
    for (i, stage) in l.stages.iter().enumerate() {
        let field = format!("load.stages[{i}]");
        p.require(
            stage.to >= 0.0 && stage.to.is_finite(),
            &field,
            "`to` must be 0 or more",
        );
        p.require(
            l.model == Model::Open || stage.to <= f64::from(players),
            &field,
            &format!("`to` exceeds the population ({players} players)"),
        );
    }
}

fn duration(file: &ScenarioFile, p: &mut Problems) {
    let l = &file.load;
    p.require(
        l.max_duration > Duration::ZERO,
        "load.max_duration",
        "must be positive",
    );
    if l.stages_total() + l.drain > l.max_duration {
        p.add(
            "load.max_duration",
            format!(
                "is shorter than the stages plus drain ({})",
                humantime::format_duration(l.stages_total() + l.drain)
            ),
        );
    }
    p.require(
        l.model == Model::Closed || l.session.is_some_and(|s| s > Duration::ZERO),
        "load.session",
        "the open model needs a positive session length",
    );
}

fn behaviour(file: &ScenarioFile, p: &mut Problems) {
    let b = &file.behaviour;
    p.require(
        b.act_rate > 0.0 && b.act_rate <= 1000.0,
        "behaviour.act_rate",
        "must be in (0, 1000]",
    );
    p.require(
        (0.0..=1.0).contains(&b.idle),
        "behaviour.idle",
        "must be between 0 and 1",
    );
    p.require(
        (0.0..=60.0).contains(&b.churn),
        "behaviour.churn",
        "must be between 0 and 60 per minute",
    );
    p.require(
        (0.0..=60.0).contains(&b.reconnect),
        "behaviour.reconnect",
        "must be between 0 and 60 per minute",
    );
    p.require(
        b.payload <= 3800,
        "behaviour.payload",
        "must leave room under the 4 KiB act limit (≤ 3800)",
    );
}

fn backoff(file: &ScenarioFile, p: &mut Problems) {
    let b = &file.behaviour;
    p.require(
        b.backoff_min <= b.backoff_max,
        "behaviour.backoff_min",
        "must not exceed backoff_max",
    );
    p.require(
        b.backoff_min >= Duration::from_millis(1) || b.backoff == Backoff::Exponential,
        "behaviour.backoff_min",
        "immediate retries need a backoff_min of 1ms or more (a zero wait would spin)",
    );
}

fn capacity(file: &ScenarioFile, p: &mut Problems) {
    let c = &file.capacity;
    p.require(
        c.step.is_none_or(|s| s >= 1),
        "capacity.step",
        "must be at least 1",
    );
    p.require(
        c.resolution
            .is_none_or(|r| r >= file.population.players_per_room),
        "capacity.resolution",
        "must be at least one room of players (population.players_per_room): steps are whole rooms",
    );
    p.require(
        c.hold >= Duration::from_secs(3),
        "capacity.hold",
        "must be 3s or more (the first 2s after the ramp settle it and are not judged; the rest is)",
    );
    p.require(
        c.error_limit_pct > 0.0 && c.error_limit_pct <= 100.0,
        "capacity.error_limit_pct",
        "must be in (0, 100]",
    );
}

fn http(file: &ScenarioFile, p: &mut Problems) {
    let h = &file.http;
    p.require(
        (1..=256).contains(&h.create_users),
        "http.create_users",
        "must be 1 to 256",
    );
    p.require(
        h.lookup_users <= 256,
        "http.lookup_users",
        "must be 0 to 256",
    );
    p.require(
        (1..=1000).contains(&h.lookup_burst),
        "http.lookup_burst",
        "must be 1 to 1000",
    );
    p.require(
        h.lookup_every > Duration::ZERO,
        "http.lookup_every",
        "must be positive",
    );
    p.require(
        (0.0..=1.0).contains(&h.unknown_share),
        "http.unknown_share",
        "must be between 0 and 1",
    );
    p.require(
        h.health_every
            .is_none_or(|e| e >= Duration::from_millis(10)),
        "http.health_every",
        "must be 10ms or more",
    );
}

/// Whether the players' protocol, the servers the topology runs and the
/// rest of the scenario fit together.
fn protocol(file: &ScenarioFile, p: &mut Problems) {
    let (t, proto) = (&file.topology, &file.protocol);
    if let Some((field, message)) = proto.problem() {
        p.add(field, message);
    }
    let socketio = proto.kind == ProtocolKind::Socketio;
    if t.server == ServerKind::PythonSocketio {
        let fits = t.kind == TopologyKind::Local
            && t.state == StateMode::Redis
            && !t.sentinel
            && t.redis_shards == 1
            && t.via != Via::Assigned;
        p.require(fits, "topology.server", "the python-socketio peer runs in the local topology, on one Redis (state = \"redis\", no Sentinel or cluster), behind \"lb\" or \"direct\"");
        p.require(
            socketio,
            "protocol.kind",
            "the python-socketio peer speaks \"socketio\"",
        );
    }
    if !socketio {
        return;
    }
    p.require(
        t.kind == TopologyKind::External || t.server != ServerKind::Tierlab,
        "protocol.kind",
        "tierlab-server speaks \"tierlab\"; run a Socket.IO system with topology.server = \"python-socketio\" or kind = \"external\"",
    );
    p.require(
        t.via != Via::Assigned,
        "topology.via",
        "a Socket.IO target assigns no replicas to rooms; use \"lb\" or \"direct\"",
    );
    p.require(
        file.http.lookup_users == 0,
        "http.lookup_users",
        "a Socket.IO target has no room lookup API; set it to 0",
    );
    p.require(
        !file.population.cross_worker,
        "population.cross_worker",
        "a Socket.IO run is checked from senders' counters and send times, which stay on one worker",
    );
}

fn slos(file: &ScenarioFile, p: &mut Problems) -> Vec<Slo> {
    let mut slos = Vec::new();
    for (i, text) in file.slo.iter().enumerate() {
        match Slo::parse(text) {
            Ok(slo) => slos.push(slo),
            Err(e) => p.add(&format!("slo[{i}]"), e.to_string()),
        }
    }
    slos
}

/// The faults, in the order they start.
fn faults(file: &ScenarioFile, p: &mut Problems) -> Vec<Fault> {
    let (t, l) = (&file.topology, &file.load);
    let bounds = Bounds {
        replicas: t.replicas,
        redis: t.state == StateMode::Redis,
        lb: t.via == Via::Lb,
        sentinel: t.sentinel,
        redis_shards: t.redis_shards,
        topology: t.kind,
        max_duration: l.max_duration,
    };
    let mut faults = Vec::new();
    for (i, spec) in file.faults.iter().enumerate() {
        match spec.validate(&bounds) {
            Ok(fault) => faults.push(fault),
            Err(message) => {
                let label = spec
                    .name
                    .as_deref()
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default();
                p.add(&format!("faults[{i}]{label}"), message);
            }
        }
    }
    faults.sort_by_key(|f| f.at);
    faults
}
