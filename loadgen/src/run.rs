//! One run of a scenario: start the topology, create the rooms, ramp players
//! along the load shape, aggregate what they report once a second (progress
//! line, `run.json`, `latency.hlog`), then stop the players, check deliveries,
//! judge the SLOs and stop the topology.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tierlab_protocol::{ClientFrame, CreateRoom, ServerFrame};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checker::senders::{stream_name, SenderWatch, SentLog};
use crate::checker::{self, RangeSet, Verdict};
use crate::drill::{self, FaultEvent};
use crate::http::{self, HttpRecord, Traffic};
use crate::player::{self, Arena, Seat};
use crate::record::{
    self, FaultRecord, Generator, HistogramLog, Machine, RunRecord, ScenarioInfo, SloVerdict,
    Summary, TopologyInfo,
};
use crate::sampler::Sampler;
use crate::scenario::{
    kind_name, CreateVia, Fault, Metric, Model, ProtocolKind, Scenario, Stat, Via,
};
use crate::shape::Shape;
use crate::shard::{Shard, ShardInfo};
use crate::stats::{self, Ledger, Sample, Stream, Window};
use crate::topology::{Topology, TopologyError};
use crate::usage::CpuClock;
use crate::wire::Guarantee;

/// How often the spawner compares players to the load shape.
const SPAWN_TICK: Duration = Duration::from_millis(50);
/// How long the drain waits after the last ack for that act's fan-out.
const ACK_SETTLE: Duration = Duration::from_secs(1);
/// Rooms created concurrently over WebSocket during set-up.
const CREATE_CONCURRENCY: usize = 32;
/// A sharded worker's checker facts, next to its run.json.
pub(crate) const CHECKER_FACTS: &str = "checker.json";

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// Cancelled on Ctrl-C: the run ends early and says so.
    pub interrupt: CancellationToken,
    /// This worker's slice of the population (`--shard I/N`).
    pub shard: Option<Shard>,
    /// Start the load at this moment (`--start-at`), to line workers up.
    pub start_at: Option<SystemTime>,
    /// Where the rooms of a cross-worker sharded run are shared (`--rooms`):
    /// worker 0 creates them and writes this file; the others read it.
    pub rooms_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end and every SLO held.
    Passed,
    SloFailed,
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start: {0}")]
    Start(String),
    #[error("run failed: {0}")]
    Failed(String),
    #[error("interrupted during set-up")]
    Interrupted,
}

impl From<TopologyError> for RunError {
    fn from(e: TopologyError) -> Self {
        RunError::Start(e.to_string())
    }
}

/// A room as players find it.
#[derive(Debug, Clone)]
struct RoomSlot {
    code: Arc<str>,
    /// Where its players connect, when the server assigned it a replica.
    ws_url: Option<Arc<str>>,
}

/// Runs `scenario`; returns the run directory and how it ended.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<(PathBuf, Outcome), RunError> {
    let sliced;
    let scenario = match options.shard {
        Some(shard) => {
            sliced = shard.slice(scenario).map_err(RunError::Start)?;
            &sliced
        }
        None => scenario,
    };
    if let Some(at) = options.start_at {
        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = options.interrupt.cancelled() => return Err(RunError::Interrupted),
        }
    }
    let started_at = SystemTime::now();
    let shard = options
        .shard
        .map(|shard| shard_info(shard, options.start_at, started_at));
    let dir = run_dir(scenario, options, started_at)
        .map_err(|e| RunError::Start(format!("run directory: {e}")))?;
    let mut topology = Topology::start(&scenario.topology, &dir, &scenario.faults).await?;
    let outcome = drive(scenario, options, &mut topology, &dir, (started_at, shard)).await;
    topology.stop().await;
    outcome.map(|o| (dir, o))
}

/// What the record says of this worker's slice; the skew is how late it
/// began after `start_at`.
fn shard_info(shard: Shard, start_at: Option<SystemTime>, started: SystemTime) -> ShardInfo {
    let start_skew_ms = start_at
        .map(|at| {
            let late = unix_seconds(started) - unix_seconds(at);
            (shard.index.to_string(), late * 1000.0)
        })
        .into_iter()
        .collect();
    ShardInfo {
        indices: vec![shard.index],
        count: shard.count,
        start_at: start_at.map(unix_seconds),
        start_skew_ms,
        ..ShardInfo::default()
    }
}

fn run_dir(scenario: &Scenario, options: &RunOptions, at: SystemTime) -> std::io::Result<PathBuf> {
    let dir = match &options.out {
        Some(dir) => dir.clone(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(at)
                .to_string()
                .replace([':', 'T'], "-")
                .replace('Z', "");
            PathBuf::from("runs").join(format!("{stamp}-{}", scenario.name))
        }
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn drive(
    scenario: &Scenario,
    options: &RunOptions,
    topology: &mut Topology,
    dir: &Path,
    (started_at, shard): (SystemTime, Option<ShardInfo>),
) -> Result<Outcome, RunError> {
    let (rooms, setup_http) = rooms_for(scenario, topology, options).await.map_err(|e| {
        if options.interrupt.is_cancelled() {
            RunError::Interrupted
        } else {
            e
        }
    })?;
    let (samples, inbox) = mpsc::unbounded_channel();
    let mut arena = Arena::new(
        scenario.behaviour.clone(),
        samples,
        scenario.population.name_prefix.clone(),
    );
    arena.worker = options.shard.map(|s| s.index);
    arena.wire = crate::wire::for_protocol(&scenario.protocol);
    if scenario.topology.via != Via::Lb {
        arena.fallbacks = topology
            .replicas
            .iter()
            .map(|r| r.ws_url.as_str().into())
            .collect();
    }
    let arena = Arc::new(arena);
    let mut report = Report::new(
        scenario,
        topology,
        &rooms,
        dir,
        (started_at, shard),
        options.quiet,
    )
    .map_err(|e| RunError::Start(format!("cannot write to {}: {e}", dir.display())))?;
    report.record.http = setup_http;
    let seats = seats(scenario, topology, &rooms);
    let stop_all = CancellationToken::new();
    let spawner = Spawner::new(scenario, seats, Arc::clone(&arena), stop_all.clone());
    let traffic = Traffic::start(
        &scenario.http,
        topology.http_base(),
        topology
            .replicas
            .iter()
            .map(|r| r.http_url.clone())
            .collect(),
        report.rooms.clone(),
        scenario.load.max_duration,
    );
    let sampler = topology.sampler_targets().map(Sampler::start);
    let (fault_events, fault_inbox) = mpsc::unbounded_channel();
    let drill_stop = CancellationToken::new();
    let inboxes = Inboxes {
        samples: inbox,
        faults: fault_inbox,
    };
    let load = async {
        let ending = pump(
            scenario,
            spawner,
            &mut report,
            inboxes,
            &arena,
            &options.interrupt,
        )
        .await;
        drill_stop.cancel();
        ending
    };
    let faults = drill::run(
        &scenario.faults,
        topology,
        scenario.topology.replicas,
        arena.started,
        fault_events,
        drill_stop.clone(),
    );
    let (ending, ()) = tokio::join!(load, faults);
    if let Some(sampler) = sampler {
        report.record.processes = sampler.finish().await;
    }
    if let Some(traffic) = traffic {
        match traffic.stop().await {
            Ok(figures) => report.record.http.extend(figures),
            Err(e) => tracing::warn!(error = %e, "HTTP traffic left no figures"),
        }
    }
    report
        .finish(ending)
        .map_err(|e| RunError::Failed(format!("writing {}: {e}", dir.display())))
}

/// The run's rooms: created here, except on the workers of a cross-worker
/// sharded run other than 0, which take the ones worker 0 created.
async fn rooms_for(
    scenario: &Scenario,
    topology: &Topology,
    options: &RunOptions,
) -> Result<(Vec<RoomSlot>, HttpRecord), RunError> {
    let Some(shard) = options
        .shard
        .filter(|s| s.count > 1 && scenario.population.cross_worker)
    else {
        return create_rooms(scenario, topology).await;
    };
    let file = options.rooms_file.as_deref().ok_or_else(|| {
        RunError::Start(
            "cross-worker rooms (population.cross_worker) need --rooms FILE, a path every worker shares".into(),
        )
    })?;
    let start_at = options.start_at.map(unix_seconds);
    if shard.index > 0 {
        let shared = crate::shard::take_rooms(file, start_at, &options.interrupt)
            .await
            .map_err(RunError::Start)?;
        let rooms = shared
            .into_iter()
            .map(|r| RoomSlot {
                code: r.code.into(),
                ws_url: r.ws_url.map(Into::into),
            })
            .collect();
        return Ok((rooms, HttpRecord::new()));
    }
    let (rooms, figures) = create_rooms(scenario, topology).await?;
    let shared = rooms
        .iter()
        .map(|r| crate::shard::SharedRoom {
            code: r.code.to_string(),
            ws_url: r.ws_url.as_deref().map(str::to_owned),
        })
        .collect();
    crate::shard::hand_out_rooms(file, start_at, shared).map_err(RunError::Start)?;
    Ok((rooms, figures))
}

pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Creates every room: through goose posting to `/api/rooms`, or over
/// WebSocket when the scenario says so.
async fn create_rooms(
    scenario: &Scenario,
    topology: &Topology,
) -> Result<(Vec<RoomSlot>, HttpRecord), RunError> {
    let population = &scenario.population;
    if scenario.protocol.kind == ProtocolKind::Socketio {
        // A Socket.IO room exists once someone joins it: the run names them,
        // distinct from any earlier run's.
        let stamp = unix_seconds(SystemTime::now()) as u64 % 1_000_000;
        let rooms = (0..population.rooms)
            .map(|i| RoomSlot {
                code: format!("{}-{stamp}-{i}", scenario.name).into(),
                ws_url: None,
            })
            .collect();
        return Ok((rooms, HttpRecord::new()));
    }
    let request = CreateRoom {
        game: population.game.clone(),
        max_players: population
            .max_players
            .unwrap_or(population.players_per_room),
    };
    let rest = population.create_via == CreateVia::Rest || scenario.topology.via == Via::Assigned;
    if rest {
        let (created, figures) = http::create_rooms(
            topology.http_base(),
            &request,
            population.rooms,
            scenario.http.create_users,
        )
        .await
        .map_err(|e| RunError::Start(format!("creating rooms: {e}")))?;
        let rooms = created
            .into_iter()
            .map(|c| RoomSlot {
                code: c.room.into(),
                ws_url: Some(c.ws_url.into()),
            })
            .collect();
        return Ok((rooms, figures));
    }
    let mut tasks = JoinSet::new();
    let mut rooms = Vec::with_capacity(population.rooms as usize);
    let ws_url: Arc<str> = topology.player_url(Via::Lb, 0, 0).into();
    for i in 0..population.rooms {
        if tasks.len() >= CREATE_CONCURRENCY {
            rooms.push(joined(tasks.join_next().await)?);
        }
        let (ws_url, request) = (Arc::clone(&ws_url), request.clone());
        tasks.spawn(async move { create_by_ws(&ws_url, i, &request).await });
    }
    while let Some(done) = tasks.join_next().await {
        rooms.push(joined(Some(done))?);
    }
    Ok((rooms, HttpRecord::new()))
}

fn joined(
    done: Option<Result<Result<RoomSlot, String>, tokio::task::JoinError>>,
) -> Result<RoomSlot, RunError> {
    match done {
        Some(Ok(Ok(slot))) => Ok(slot),
        Some(Ok(Err(e))) => Err(RunError::Start(format!("creating rooms: {e}"))),
        Some(Err(e)) => Err(RunError::Start(format!("creating rooms: {e}"))),
        None => Err(RunError::Start("creating rooms: no task".into())),
    }
}

async fn create_by_ws(url: &str, index: u32, request: &CreateRoom) -> Result<RoomSlot, String> {
    use futures_util::{SinkExt, StreamExt};
    let mut ws = player::connect(url, index)
        .await
        .map_err(|e| e.to_string())?;
    let create = ClientFrame::Create {
        game: request.game.clone(),
        max_players: request.max_players,
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        create.encode().into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    while let Some(Ok(message)) = ws.next().await {
        if let Ok(text) = message.to_text() {
            match ServerFrame::decode(text) {
                Ok(ServerFrame::Created { room }) => {
                    let _ = ws.close(None).await;
                    return Ok(RoomSlot {
                        code: room.into(),
                        ws_url: None,
                    });
                }
                Ok(ServerFrame::Error { code, message, .. }) => {
                    return Err(format!("{}: {message}", code.as_str()))
                }
                _ => {}
            }
        }
    }
    Err(format!("{url} closed before `created`"))
}

/// Every seat of the population, in the order players fill them: room by
/// room, so rooms fill up completely during a ramp.
fn seats(scenario: &Scenario, topology: &Topology, rooms: &[RoomSlot]) -> Vec<Seat> {
    let population = &scenario.population;
    let via = scenario.topology.via;
    let idle_every = if scenario.behaviour.idle > 0.0 {
        (1.0 / scenario.behaviour.idle).round().max(1.0) as u32
    } else {
        0
    };
    let mut seats = Vec::with_capacity(population.players() as usize);
    for (r, room) in rooms.iter().enumerate() {
        for m in 0..population.players_per_room {
            let index = r as u32 * population.players_per_room + m;
            let url: Arc<str> = match (via, &room.ws_url) {
                (Via::Assigned, Some(url)) => Arc::clone(url),
                _ => topology.player_url(via, r as u32, m).into(),
            };
            seats.push(Seat {
                index,
                room_index: r as u32,
                room: Arc::clone(&room.code),
                url,
                idle: idle_every > 0 && index.is_multiple_of(idle_every),
            });
        }
    }
    seats
}

/// Starts and stops players to follow the load shape.
struct Spawner {
    shape: Shape,
    model: Model,
    session: Option<Duration>,
    seats: Vec<Seat>,
    arena: Arc<Arena>,
    stop_all: CancellationToken,
    /// Tokens of running players, newest last (ramp-down stops the newest).
    running: Vec<CancellationToken>,
    spawned: u64,
    tasks: JoinSet<()>,
}

impl Spawner {
    fn new(
        scenario: &Scenario,
        seats: Vec<Seat>,
        arena: Arc<Arena>,
        stop_all: CancellationToken,
    ) -> Spawner {
        Spawner {
            shape: Shape::new(&scenario.load.stages),
            model: scenario.load.model,
            session: scenario.load.session,
            seats,
            arena,
            stop_all,
            running: Vec::new(),
            spawned: 0,
            tasks: JoinSet::new(),
        }
    }

    fn follow(&mut self, elapsed: Duration) {
        while self.tasks.try_join_next().is_some() {}
        match self.model {
            Model::Closed => {
                let target = self.shape.value_at(elapsed).round() as usize;
                self.running.retain(|t| !t.is_cancelled());
                while self.running.len() < target.min(self.seats.len()) {
                    self.start(self.running.len());
                }
                while self.running.len() > target {
                    if let Some(token) = self.running.pop() {
                        token.cancel();
                    }
                }
            }
            Model::Open => {
                let due = self.shape.arrivals(elapsed).floor() as u64;
                while self.spawned < due {
                    let seat = (self.spawned % self.seats.len().max(1) as u64) as usize;
                    self.start(seat);
                }
            }
        }
    }

    fn start(&mut self, seat: usize) {
        let Some(seat) = self.seats.get(seat).cloned() else {
            return;
        };
        let token = self.stop_all.child_token();
        let arena = Arc::clone(&self.arena);
        let player_stop = token.clone();
        if let Some(session) = self.session.filter(|_| self.model == Model::Open) {
            let ends = token.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(session).await;
                ends.cancel();
            });
        }
        self.tasks.spawn(player::play(arena, seat, player_stop));
        self.running.push(token);
        self.spawned += 1;
    }

    /// Stops every player and waits (bounded) for their final records.
    async fn stop(mut self, within: Duration) {
        self.stop_all.cancel();
        let _ = tokio::time::timeout(within, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

/// Why the pump stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Completed,
    MaxDuration,
    Interrupted,
}

/// What the pump reads: the players' samples and the drill's fault events.
struct Inboxes {
    samples: mpsc::UnboundedReceiver<Sample>,
    faults: mpsc::UnboundedReceiver<FaultEvent>,
}

/// Runs the load: spawns along the shape, aggregates samples, ticks the
/// report every second, until the shape ends, `max_duration`, or Ctrl-C.
async fn pump(
    scenario: &Scenario,
    mut spawner: Spawner,
    report: &mut Report,
    inboxes: Inboxes,
    arena: &Arena,
    interrupt: &CancellationToken,
) -> (Ending, Ledger) {
    let Inboxes {
        samples: mut inbox,
        faults: mut fault_inbox,
    } = inboxes;
    let mut ledger = Ledger::default();
    let shape_end = spawner.shape.duration();
    let hard_end = scenario
        .load
        .max_duration
        .saturating_sub(scenario.load.drain);
    let mut spawn_tick = tokio::time::interval(SPAWN_TICK);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let ending = loop {
        let elapsed = arena.started.elapsed();
        if interrupt.is_cancelled() {
            break Ending::Interrupted;
        }
        if elapsed >= shape_end {
            break Ending::Completed;
        }
        if elapsed >= hard_end {
            break Ending::MaxDuration;
        }
        tokio::select! {
            _ = interrupt.cancelled() => break Ending::Interrupted,
            Some(sample) = inbox.recv() => ledger.apply(sample),
            Some(event) = fault_inbox.recv() => report.on_fault(event, &scenario.faults),
            _ = spawn_tick.tick() => spawner.follow(elapsed),
            _ = second.tick() => report.tick(&mut ledger, spawner.shape.value_at(elapsed), elapsed),
        }
    };
    // Stop acting, let events in flight arrive, then stop the players; their
    // last records arrive while we keep reading. An ack that comes late in
    // the drain (a slow fsync) has its fan-out still on the way: the drain
    // goes on until `ACK_SETTLE` after the last ack, by `ACK_SETTLE` at most.
    let drain = scenario.load.drain;
    arena.quiesce.cancel();
    let drained = tokio::time::Instant::now() + drain;
    let mut quiet_at = drained;
    loop {
        let until = quiet_at.min(drained + ACK_SETTLE);
        tokio::select! {
            Some(sample) = inbox.recv() => {
                if matches!(sample, Sample::Ack { .. }) {
                    quiet_at = quiet_at.max(tokio::time::Instant::now() + ACK_SETTLE);
                }
                ledger.apply(sample);
            }
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    let stopping = tokio::spawn(spawner.stop(drain));
    let deadline = tokio::time::sleep(drain + Duration::from_secs(1));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(sample) = inbox.recv() => ledger.apply(sample),
            _ = &mut deadline => break,
        }
        if stopping.is_finished() && inbox.is_empty() {
            break;
        }
    }
    while let Ok(sample) = inbox.try_recv() {
        ledger.apply(sample);
    }
    report.tick(&mut ledger, 0.0, arena.started.elapsed());
    (ending, ledger)
}

/// Everything written while the run goes on.
struct Report {
    record: RunRecord,
    hlog: HistogramLog,
    dir: PathBuf,
    quiet: bool,
    tty: bool,
    cpu: CpuClock,
    slo: Vec<crate::scenario::Slo>,
    planned: Duration,
    last_tick: Duration,
    rooms: Vec<Arc<str>>,
    /// Which row of `record.faults` each begun fault is.
    fault_rows: HashMap<usize, usize>,
    guarantee: Guarantee,
}

impl Report {
    fn new(
        scenario: &Scenario,
        topology: &Topology,
        rooms: &[RoomSlot],
        dir: &Path,
        (started_at, shard): (SystemTime, Option<ShardInfo>),
        quiet: bool,
    ) -> std::io::Result<Report> {
        let t = &scenario.topology;
        let mut endpoints: Vec<String> =
            topology.replicas.iter().map(|e| e.ws_url.clone()).collect();
        endpoints.extend(topology.lb.iter().map(|e| format!("lb {}", e.ws_url)));
        let record = RunRecord {
            format: 1,
            partial: true,
            ended: "running".into(),
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            shard,
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                path: scenario.path.display().to_string(),
                description: scenario.description.clone(),
                text: scenario.source.clone(),
            },
            topology: TopologyInfo {
                kind: kebab(&t.kind),
                replicas: t.replicas,
                state: kebab(&t.state),
                via: kebab(&t.via),
                persistence: kebab(&t.persistence),
                balance: kebab(&t.balance),
                sentinel: t.sentinel,
                redis_shards: t.redis_shards,
                server: kebab(&t.server),
                protocol: kebab(&scenario.protocol.kind),
                endpoints,
            },
            machine: Machine::this(),
            versions: topology
                .versions
                .iter()
                .cloned()
                .chain(git_commit().map(|c| ("git".to_owned(), c)))
                .collect(),
            model: kebab(&scenario.load.model),
            latency_origin: "intended send time of each act (coordinated-omission corrected)"
                .into(),
            summary: Summary::default(),
            errors: BTreeMap::new(),
            checker: Verdict::default(),
            slo: Vec::new(),
            generator: Generator::default(),
            timeseries: Vec::new(),
            faults: Vec::new(),
            http: HttpRecord::new(),
            processes: Vec::new(),
        };
        let hlog = HistogramLog::create(dir, started_at)?;
        record::write_json(dir, &record)?;
        Ok(Report {
            record,
            hlog,
            dir: dir.to_owned(),
            quiet,
            tty: std::io::stderr().is_terminal(),
            cpu: CpuClock::start(),
            slo: scenario.slo.clone(),
            planned: scenario.load.stages_total(),
            last_tick: Duration::ZERO,
            rooms: rooms.iter().map(|r| Arc::clone(&r.code)).collect(),
            fault_rows: HashMap::new(),
            guarantee: crate::wire::for_protocol(&scenario.protocol).guarantee(),
        })
    }

    fn on_fault(&mut self, event: FaultEvent, faults: &[Fault]) {
        let faults_seen = &mut self.record.faults;
        match event {
            FaultEvent::Began { fault, at } => {
                let Some(spec) = faults.get(fault) else {
                    return;
                };
                self.fault_rows.insert(fault, faults_seen.len());
                faults_seen.push(FaultRecord {
                    name: spec.name.clone(),
                    kind: kind_name(spec.kind).to_owned(),
                    target: spec.target.to_string(),
                    what: drill::describe(spec),
                    start_s: at.as_secs_f64(),
                    ..FaultRecord::default()
                });
            }
            FaultEvent::Ended { fault, at } => {
                if let Some(row) = self
                    .fault_rows
                    .get(&fault)
                    .and_then(|&i| faults_seen.get_mut(i))
                {
                    row.end_s = Some(at.as_secs_f64());
                }
            }
            FaultEvent::Failed { fault, error } => {
                if let Some(row) = self
                    .fault_rows
                    .get(&fault)
                    .and_then(|&i| faults_seen.get_mut(i))
                {
                    row.errors.push(error);
                }
            }
        }
    }

    /// Each fault's verdict over its window: until the next fault, or the end.
    fn judge_faults(&mut self) {
        let run_end = self.record.timeseries.last().map_or(0.0, |s| s.t as f64);
        let limit = fanout_limit_ms(&self.slo);
        let starts: Vec<f64> = self.record.faults.iter().map(|f| f.start_s).collect();
        for (i, fault) in self.record.faults.iter_mut().enumerate() {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(run_end)
                .max(fault.start_s);
            fault.verdict = Some(checker::faults::judge(
                fault.start_s,
                end,
                &self.record.timeseries,
                &self.record.checker.lost_by_ack_second,
                limit,
            ));
        }
    }

    /// Closes a second: time series, hlog, partial run.json, progress line.
    fn tick(&mut self, ledger: &mut Ledger, target: f64, elapsed: Duration) {
        let machine = stats::Machine {
            generator_cpu_pct: self.cpu.percent_since_last(),
            generator_rss_mib: self.cpu.rss_mib(),
            steal_pct: self.cpu.steal_since_last(),
        };
        let (window, row) = ledger.close_second(elapsed, target, machine);
        let length = elapsed.saturating_sub(self.last_tick);
        if let Err(e) = self.hlog.append(&window, self.last_tick, length) {
            tracing::warn!(error = %e, path = %self.hlog.path().display(), "cannot append to the histogram log");
        }
        self.last_tick = elapsed;
        self.record.timeseries.push(row);
        self.record.summary = Summary::of(&ledger.total, ledger.peak_online, elapsed);
        self.record.errors = ledger.total.errors_by_kind();
        if let Err(e) = record::write_json(&self.dir, &self.record) {
            tracing::warn!(error = %e, "cannot write run.json");
        }
        self.progress(&window, ledger.online, elapsed);
    }

    fn progress(&self, window: &Window, online: i64, elapsed: Duration) {
        if self.quiet || (!self.tty && !elapsed.as_secs().is_multiple_of(10)) {
            return;
        }
        let last = self.record.timeseries.last();
        let line = format!(
            "[{:>4}s/{}s] players {:>6}  acts/s {:>6}  events/s {:>7}  p95 fan-out {:>7.1} ms  errors {}",
            elapsed.as_secs(),
            self.planned.as_secs(),
            online,
            window.acts,
            window.deliveries,
            last.map_or(0.0, |s| s.fanout_ms.p95),
            self.record.summary.errors,
        );
        if self.tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    }

    /// Final verdicts and the last, complete `run.json`.
    fn finish(mut self, (ending, ledger): (Ending, Ledger)) -> std::io::Result<Outcome> {
        if self.tty && !self.quiet {
            eprintln!();
        }
        let facts = facts(
            &self.rooms,
            ledger.acked,
            ledger.ack_clock,
            ledger.members,
            ledger.watches,
            &ledger.sent,
        );
        self.record.checker = facts.check();
        self.record.checker.guarantee = self.guarantee.describe().to_owned();
        if let Some(shard) = &mut self.record.shard {
            let me = shard.indices.first().copied().unwrap_or(0);
            shard.add_deliveries(me, &ledger.from_worker);
        }
        if self.record.shard.is_some() {
            // For `tierlab merge`: every worker's acks against every member.
            let file = std::fs::File::create(self.dir.join(CHECKER_FACTS))?;
            serde_json::to_writer(std::io::BufWriter::new(file), &facts)?;
        }
        self.judge_faults();
        self.record.slo = self
            .slo
            .iter()
            .map(|slo| judge(slo, &self.record))
            .collect();
        self.record.generator = generator(&self.record, self.cpu.rss_mib());
        self.record.ended = match ending {
            Ending::Completed => "completed",
            Ending::MaxDuration => "max_duration",
            Ending::Interrupted => "interrupted",
        }
        .into();
        self.record.partial = ending == Ending::Interrupted;
        record::write_json(&self.dir, &self.record)?;
        Ok(match ending {
            Ending::Interrupted => Outcome::Interrupted,
            _ if self.record.slo.iter().all(|s| s.pass) => Outcome::Passed,
            _ => Outcome::SloFailed,
        })
    }
}

/// The fan-out p95 a fault must get back under: the scenario's SLO on
/// it, else 50 ms.
fn fanout_limit_ms(slos: &[crate::scenario::Slo]) -> f64 {
    fanout_slo_ms(slos).unwrap_or(50.0)
}

/// The scenario's `p95(fanout)` threshold in ms, if it has one.
pub fn fanout_slo_ms(slos: &[crate::scenario::Slo]) -> Option<f64> {
    slos.iter().find_map(|slo| match slo.metric {
        Metric::Latency(Stat::Percentile(q), "fanout") if (q - 95.0).abs() < 1e-9 => {
            Some(slo.threshold)
        }
        _ => None,
    })
}

/// The checker's facts. Players number rooms and senders; the checker
/// speaks in room codes, and in `ROOM/pN` for a sender's stream.
fn facts(
    rooms: &[Arc<str>],
    acked: HashMap<Stream, RangeSet>,
    clock: HashMap<Stream, Vec<(u64, u64)>>,
    mut members: Vec<checker::MemberRecord>,
    watches: Vec<SenderWatch>,
    sent: &SentLog,
) -> checker::Facts {
    let mut senders: HashMap<u32, Vec<u32>> = HashMap::new();
    for stream in acked.keys() {
        if let Some(sender) = stream.sender {
            senders.entry(stream.room).or_default().push(sender);
        }
    }
    for watch in watches {
        let code = rooms
            .get(watch.room as usize)
            .map_or("", |c| &**c)
            .to_owned();
        let of_room = senders.get(&watch.room).map_or(&[][..], Vec::as_slice);
        members.extend(watch.into_records(&code, of_room, sent));
    }
    checker::Facts {
        acked: by_code(rooms, acked),
        clock: by_code(rooms, clock),
        members,
    }
}

/// A map keyed by stream (room number, maybe sender), keyed by the stream's
/// name (room code, or `ROOM/pN`) instead.
fn by_code<T>(rooms: &[Arc<str>], by_stream: HashMap<Stream, T>) -> HashMap<String, T> {
    by_stream
        .into_iter()
        .filter_map(|(stream, v)| {
            let code = rooms.get(stream.room as usize)?;
            let name = match stream.sender {
                None => code.to_string(),
                Some(sender) => stream_name(code, sender),
            };
            Some((name, v))
        })
        .collect()
}

pub(crate) fn judge(slo: &crate::scenario::Slo, record: &RunRecord) -> SloVerdict {
    let s = &record.summary;
    let measured = match slo.metric {
        Metric::Latency(stat, name) => {
            let p = match name {
                "fanout" => s.fanout_ms,
                "ack" => s.ack_ms,
                "connect" => s.connect_ms,
                _ => s.join_ms,
            };
            match stat {
                Stat::Max => p.max,
                Stat::Percentile(q) if q >= 99.0 => p.p99,
                Stat::Percentile(q) if q >= 95.0 => p.p95,
                Stat::Percentile(_) => p.p50,
            }
        }
        Metric::ErrorRate => s.error_rate_pct,
        Metric::Count(name) => match name {
            "lost" => record.checker.lost as f64,
            "duplicated" => record.checker.duplicated as f64,
            _ => record.checker.reordered as f64,
        },
    };
    SloVerdict {
        name: slo.text.clone(),
        threshold: slo.threshold_text(),
        measured,
        pass: slo.holds(measured),
    }
}

fn generator(record: &RunRecord, rss_mib: f64) -> Generator {
    let mut cpu: Vec<f64> = record
        .timeseries
        .iter()
        .map(|s| s.generator_cpu_pct)
        .collect();
    cpu.sort_by(f64::total_cmp);
    let capacity = 100.0 * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let median = cpu.get(cpu.len() / 2).copied().unwrap_or(0.0);
    let max = cpu.last().copied().unwrap_or(0.0);
    let steal = record
        .timeseries
        .iter()
        .map(|s| s.steal_pct)
        .fold(0.0, f64::max);
    let saturated = record
        .timeseries
        .windows(3)
        .any(|w| w.iter().all(|s| s.generator_cpu_pct >= 0.9 * capacity));
    Generator {
        cpu_pct_median: median,
        cpu_pct_max: max,
        cpu_pct_capacity: capacity,
        saturated,
        rss_mib,
        steal_pct_max: steal,
        warning: saturated.then(|| {
            "the generator used ≥ 90 % of its CPU for 3 s or more: latencies may be the generator's, not the system's".to_owned()
        }),
    }
}

/// The commit the run was made from, when run inside a git checkout.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// A scenario enum as written in scenarios (`aof-always`, `lb`, …).
fn kebab<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
