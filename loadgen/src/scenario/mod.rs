//! Scenario files: the TOML a run is made of (topology, population, load
//! shape, behaviour, SLOs), parsed into a validated, immutable [`Scenario`].
//!
//! Errors name the file, the line and column, and the dotted field path
//! (`population.rooms`); semantic checks after parsing name the field too.
//! Nothing is silently defaulted except what `docs/scenarios.md` documents.

mod fault;
mod locate;
mod protocol;
mod typed;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use fault::{Direction, Fault, FaultSpec, Target};
pub use locate::{Located, Origin};
pub use protocol::Protocol;
pub use tierlab_record::setup::{
    Balance, FaultKind, Model, Persistence, ProtocolKind, ServerKind, StateMode, TopologyKind, Via,
};
pub use tierlab_record::slo::{Comparison, Metric, Slo, SloError, Stat};
pub use validate::Problem;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML at all (type errors are `Invalid`, with every other problem).
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", Located::list(file, problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Located>,
    },
    #[error("--set {assignment}: {message}")]
    Override { assignment: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default = "Topology::default_kind")]
    pub kind: TopologyKind,
    #[serde(default = "Topology::default_replicas")]
    pub replicas: u32,
    #[serde(default = "Topology::default_state")]
    pub state: StateMode,
    #[serde(default = "Topology::default_via")]
    pub via: Via,
    #[serde(default = "Topology::default_persistence")]
    pub persistence: Persistence,
    #[serde(default = "Topology::default_balance")]
    pub balance: Balance,
    /// Extra flags for every replica (`["--send-queue", "2048"]`).
    #[serde(default)]
    pub server_args: Vec<String>,
    /// `tierlab-server` to run; default: next to `tierlab`, then `PATH`.
    #[serde(default)]
    pub server_bin: Option<PathBuf>,
    /// External topology: WebSocket URLs of the replicas (or of one LB).
    #[serde(default)]
    pub urls: Vec<String>,
    /// External topology: base URL of the REST API (default: from `urls[0]`).
    #[serde(default)]
    pub http: Option<String>,
    /// Redis as a primary, one replica and three Sentinels; the replicas
    /// follow Sentinel to whichever node is primary.
    #[serde(default)]
    pub sentinel: bool,
    /// Masters of a Redis Cluster the replicas share (sharded pub/sub);
    /// 1: a single Redis.
    #[serde(default = "Topology::default_redis_shards")]
    pub redis_shards: u32,
    /// What the local topology runs as its replicas.
    #[serde(default)]
    pub server: ServerKind,
    /// The interpreter for a Python peer.
    #[serde(default = "Topology::default_python")]
    pub python: String,
}

impl Topology {
    fn default_kind() -> TopologyKind {
        TopologyKind::Local
    }
    fn default_replicas() -> u32 {
        1
    }
    fn default_state() -> StateMode {
        StateMode::Redis
    }
    fn default_via() -> Via {
        Via::Lb
    }
    fn default_persistence() -> Persistence {
        Persistence::None
    }
    fn default_balance() -> Balance {
        Balance::Source
    }
    fn default_redis_shards() -> u32 {
        1
    }
    fn default_python() -> String {
        "python3".into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateVia {
    Rest,
    Ws,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub rooms: u32,
    pub players_per_room: u32,
    /// Room capacity asked for (default: `players_per_room`).
    #[serde(default)]
    pub max_players: Option<u32>,
    #[serde(default = "Population::default_create_via")]
    pub create_via: CreateVia,
    #[serde(default = "Population::default_prefix")]
    pub name_prefix: String,
    #[serde(default = "Population::default_game")]
    pub game: String,
    /// In a sharded run, split every room's members over the workers
    /// (member m on worker m mod N) instead of giving each worker whole rooms.
    #[serde(default)]
    pub cross_worker: bool,
}

impl Population {
    fn default_create_via() -> CreateVia {
        CreateVia::Rest
    }
    fn default_prefix() -> String {
        "p".into()
    }
    fn default_game() -> String {
        "tierlab".into()
    }
    pub fn players(&self) -> u32 {
        self.rooms * self.players_per_room
    }
}

/// One stage: reach `to` (closed: players; open: arrivals/s) over `over`,
/// linearly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub to: f64,
    #[serde(with = "humantime_serde")]
    pub over: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default = "Load::default_model")]
    pub model: Model,
    pub stages: Vec<Stage>,
    /// Open model: how long each arriving player stays.
    #[serde(default, with = "humantime_serde")]
    pub session: Option<Duration>,
    /// Hard limit: the run ends here whatever the stages say.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// After the last stage, how long to wait for events in flight.
    #[serde(default = "Load::default_drain", with = "humantime_serde")]
    pub drain: Duration,
}

impl Load {
    fn default_model() -> Model {
        Model::Closed
    }
    fn default_drain() -> Duration {
        Duration::from_secs(2)
    }
    pub fn stages_total(&self) -> Duration {
        self.stages.iter().map(|s| s.over).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrivals {
    Poisson,
    Fixed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Acts per second per (non-idle) player.
    #[serde(default = "Behaviour::default_rate")]
    pub act_rate: f64,
    #[serde(default = "Behaviour::default_arrivals")]
    pub arrivals: Arrivals,
    /// Bytes of padding in each act's `data`.
    #[serde(default = "Behaviour::default_payload")]
    pub payload: u32,
    /// Pause after each ack before the player may act again.
    #[serde(default, with = "humantime_serde")]
    pub think: Duration,
    /// Share of players that never act (0..=1).
    #[serde(default)]
    pub idle: f64,
    /// Per player per minute: chance to leave and join again with a new seat.
    #[serde(default)]
    pub churn: f64,
    /// Per player per minute: chance to drop the connection and resume.
    #[serde(default)]
    pub reconnect: f64,
    /// How a player whose connection dropped tries again.
    #[serde(default)]
    pub backoff: Backoff,
    /// First wait (exponential: the range of the first, jittered, wait;
    /// immediate: every wait).
    #[serde(default = "Behaviour::default_backoff_min", with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(default = "Behaviour::default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Times a player resends an act the server answered `unavailable` or
    /// `unknown_outcome` (the same act: same id, same stamp), waiting
    /// `act_retry_after`, then twice as long each time (at most
    /// `backoff_max`).
    #[serde(default)]
    pub act_retries: u32,
    #[serde(default = "Behaviour::default_retry_after", with = "humantime_serde")]
    pub act_retry_after: Duration,
    /// Acts carry an idempotency key (where the protocol has them), so a
    /// resend of an act that was applied is answered with its first seq.
    #[serde(default = "Behaviour::default_keys")]
    pub idempotency_keys: bool,
}

/// Reconnect policy of the players.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// Jittered exponential backoff, as a well-behaved client does.
    #[default]
    Exponential,
    /// Retry at once and every `backoff_min`: the naive herd that makes a
    /// reconnect storm.
    Immediate,
}

impl Behaviour {
    fn default_rate() -> f64 {
        1.0
    }
    fn default_arrivals() -> Arrivals {
        Arrivals::Poisson
    }
    fn default_payload() -> u32 {
        32
    }
    fn default_backoff_min() -> Duration {
        Duration::from_millis(100)
    }
    fn default_backoff_max() -> Duration {
        Duration::from_secs(5)
    }
    fn default_keys() -> bool {
        true
    }
    fn default_retry_after() -> Duration {
        Duration::from_millis(250)
    }
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            act_rate: Behaviour::default_rate(),
            arrivals: Behaviour::default_arrivals(),
            payload: Behaviour::default_payload(),
            think: Duration::ZERO,
            idle: 0.0,
            churn: 0.0,
            reconnect: 0.0,
            backoff: Backoff::Exponential,
            backoff_min: Behaviour::default_backoff_min(),
            backoff_max: Behaviour::default_backoff_max(),
            act_retries: 0,
            act_retry_after: Behaviour::default_retry_after(),
            idempotency_keys: Behaviour::default_keys(),
        }
    }
}

/// HTTP traffic beside the players, driven by goose (`[http]`); absent,
/// the only HTTP is room creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTraffic {
    /// goose users creating the rooms through `POST /api/rooms` at set-up.
    #[serde(default = "HttpTraffic::default_create_users")]
    pub create_users: u32,
    /// goose users sending bursts of `GET /api/rooms/{code}`.
    #[serde(default)]
    pub lookup_users: u32,
    /// Lookups per burst.
    #[serde(default = "HttpTraffic::default_burst")]
    pub lookup_burst: u32,
    /// Pause between one user's bursts.
    #[serde(default = "HttpTraffic::default_every", with = "humantime_serde")]
    pub lookup_every: Duration,
    /// Share of lookups for codes no room has (a 404 is then the success).
    #[serde(default)]
    pub unknown_share: f64,
    /// One more user polls `/health` of every replica this often.
    #[serde(default, with = "humantime_serde")]
    pub health_every: Option<Duration>,
}

impl HttpTraffic {
    fn default_create_users() -> u32 {
        16
    }
    fn default_burst() -> u32 {
        10
    }
    fn default_every() -> Duration {
        Duration::from_secs(1)
    }
}

impl Default for HttpTraffic {
    fn default() -> Self {
        HttpTraffic {
            create_users: HttpTraffic::default_create_users(),
            lookup_users: 0,
            lookup_burst: HttpTraffic::default_burst(),
            lookup_every: HttpTraffic::default_every(),
            unknown_share: 0.0,
            health_every: None,
        }
    }
}

/// How `tierlab capacity` steps the load (`[capacity]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySweep {
    /// Players added per step (default: a tenth of the population).
    #[serde(default)]
    pub step: Option<u32>,
    /// Time to reach each step.
    #[serde(default = "CapacitySweep::default_ramp", with = "humantime_serde")]
    pub ramp: Duration,
    /// Time each step is held and measured.
    #[serde(default = "CapacitySweep::default_hold", with = "humantime_serde")]
    pub hold: Duration,
    /// Highest load tried (default: the population).
    #[serde(default)]
    pub max_players: Option<u32>,
    /// A step whose errors pass this share of operations ends the sweep.
    #[serde(default = "CapacitySweep::default_error_limit")]
    pub error_limit_pct: f64,
    /// Search instead of sweep: after the coarse steps, bisect between the
    /// last step that held and the first that broke until they are this
    /// many players apart (rounded to whole rooms).
    #[serde(default)]
    pub resolution: Option<u32>,
}

impl CapacitySweep {
    fn default_ramp() -> Duration {
        Duration::from_secs(5)
    }
    fn default_hold() -> Duration {
        Duration::from_secs(15)
    }
    fn default_error_limit() -> f64 {
        1.0
    }
}

impl Default for CapacitySweep {
    fn default() -> Self {
        CapacitySweep {
            step: None,
            ramp: CapacitySweep::default_ramp(),
            hold: CapacitySweep::default_hold(),
            max_players: None,
            error_limit_pct: CapacitySweep::default_error_limit(),
            resolution: None,
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    topology: Topology,
    population: Population,
    load: Load,
    #[serde(default)]
    behaviour: Behaviour,
    #[serde(default)]
    http: HttpTraffic,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    slo: Vec<String>,
    #[serde(default)]
    faults: Vec<FaultSpec>,
    #[serde(default)]
    capacity: CapacitySweep,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub topology: Topology,
    pub population: Population,
    pub load: Load,
    pub behaviour: Behaviour,
    pub http: HttpTraffic,
    pub protocol: Protocol,
    pub slo: Vec<Slo>,
    /// In the order they start.
    pub faults: Vec<Fault>,
    pub capacity: CapacitySweep,
    /// The file's text (after `--set`), kept for the run record.
    pub source: String,
    pub path: PathBuf,
}

impl Scenario {
    /// Reads, parses, applies `overrides` (`key.path=value`) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: path.to_owned(),
            source,
        })?;
        Scenario::parse(path, &text, overrides)
    }

    pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let source = if overrides.is_empty() {
            text.to_owned()
        } else {
            toml::to_string(&table).map_err(|e| ScenarioError::Override {
                assignment: overrides.join(" "),
                message: e.to_string(),
            })?
        };
        // Every type error, each placed where its value came from: the
        // file's line, or the --set that gave it.
        let file =
            typed::typed(table).map_err(|problems| invalid(path, problems, text, overrides))?;
        validate(path, file, (text, overrides, source))
    }
}

fn parse_error(path: &Path, text: &str, error: &toml::de::Error) -> ScenarioError {
    let offset = error.span().map_or(0, |s| s.start);
    let (line, column) = locate::line_column(text, offset);
    ScenarioError::Parse {
        file: path.to_owned(),
        line,
        column,
        message: error.message().trim().to_owned(),
    }
}

/// `problems`, each placed in the file's `text` or at the `--set` of
/// `overrides` that gave its value.
fn invalid(path: &Path, problems: Vec<Problem>, text: &str, overrides: &[String]) -> ScenarioError {
    ScenarioError::Invalid {
        file: path.to_owned(),
        problems: problems
            .into_iter()
            .map(|p| Located::of(p, text, overrides))
            .collect(),
    }
}

/// `a.b.c=value`: value is read as TOML (`3`, `"x"`, `true`, `[1,2]`), or as
/// a bare string when it is not valid TOML (`--set topology.via=direct`).
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ScenarioError> {
    let fail = |message: &str| ScenarioError::Override {
        assignment: assignment.to_owned(),
        message: message.to_owned(),
    };
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected key.path=value"))?;
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let mut parts: Vec<&str> = key.trim().split('.').collect();
    let last = parts
        .pop()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| fail("empty key"))?;
    let mut node = table;
    for part in parts {
        node = node
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| fail(&format!("`{part}` is not a table")))?;
    }
    node.insert(last.to_owned(), value);
    Ok(())
}

/// Runs every check of `validate`; on problems, places each in the file
/// (or at the `--set` that set it).
fn validate(
    path: &Path,
    file: ScenarioFile,
    (text, overrides, source): (&str, &[String], String),
) -> Result<Scenario, ScenarioError> {
    let (slo, faults) =
        validate::check(&file).map_err(|problems| invalid(path, problems, text, overrides))?;
    Ok(Scenario {
        name: file.name,
        description: file.description,
        topology: file.topology,
        population: file.population,
        load: file.load,
        behaviour: file.behaviour,
        http: file.http,
        protocol: file.protocol,
        slo,
        faults,
        capacity: file.capacity,
        source,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests;
