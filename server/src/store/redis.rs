//! The Redis store (tier 2 and 3). Every key of a room shares the hash tag
//! `{room:CODE}` so the append script stays single-slot on a Redis Cluster.
//! Appends are one Lua script: INCR the room's seq, XADD the event to the
//! room's stream under ID `<seq>-1`, PUBLISH it (SPUBLISH on a cluster) — so
//! the stream, the seq and the publish order can never disagree.
//!
//! Commands go to one primary (a URL, or whichever Sentinel names) or to a
//! cluster; the bus that hears appends is `bus::Bus` or `cluster::ShardBus`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;

use super::bus::Bus;
use super::cluster::{self, ShardBus};
use super::primary::Primary;
use redis::{AsyncCommands, Client, Script};
use serde::{Deserialize, Serialize};
use tierlab_protocol::{Data, RoomInfo, ServerEntry};
use tokio_util::sync::CancellationToken;

use super::{
    BusMsg, BusSender, LoggedEvent, RoomSpec, Seat, SeatRef, Store, StoreError, StoreHealth,
};
use crate::config::Config;
use crate::ids;
use crate::metrics::Metrics;

// One hash tag for the registry, so its pipelines stay single-slot.
const SERVERS_KEY: &str = "{tierlab}:servers";

fn server_key(id: &str) -> String {
    format!("{{tierlab}}:server:{id}")
}

/// The keys of one room, all in one hash slot.
pub(super) struct RoomKeys(String);

impl RoomKeys {
    pub(super) fn new(room: &str) -> RoomKeys {
        RoomKeys(format!("{{room:{room}}}"))
    }
    fn meta(&self) -> String {
        format!("{}:meta", self.0)
    }
    fn seq(&self) -> String {
        format!("{}:seq", self.0)
    }
    fn log(&self) -> String {
        format!("{}:log", self.0)
    }
    fn members(&self) -> String {
        format!("{}:members", self.0)
    }
    fn session(&self, token: &str) -> String {
        format!("{}:session:{token}", self.0)
    }
    pub(super) fn channel(&self) -> String {
        format!("{}:events", self.0)
    }
}

/// What a bus message on `channel` says, if it is one of ours.
pub(super) fn bus_event(channel: &str, payload: &[u8]) -> Option<BusMsg> {
    let room = room_of_channel(channel)?;
    let event = parse_published(payload)?;
    Some(BusMsg::Event {
        room: room.to_owned(),
        event,
    })
}

/// The room a bus channel belongs to.
fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("{room:")?.strip_suffix("}:events")
}

/// Stored as the room's `meta` string (one `SET NX` creates the room).
#[derive(Debug, Serialize, Deserialize)]
struct RoomMeta {
    game: String,
    max_players: u32,
    server: String,
}

const JOIN: &str = r#"
-- KEYS: meta members seq session   ARGV: player name now_ms ttl_ms room_ttl_ms
local meta = redis.call('GET', KEYS[1])
if not meta then return {-1, 0, 0} end
local max = cjson.decode(meta).max_players
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= max then return {-2, 0, 0} end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[4], 'player', ARGV[1], 'name', ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
return {1, seq, redis.call('ZCARD', KEYS[2])}
"#;

const RESUME: &str = r#"
-- KEYS: meta members seq session   ARGV: now_ms ttl_ms room_ttl_ms
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, ''} end
local player = redis.call('HGET', KEYS[4], 'player')
if not player then return {-3, 0, 0, ''} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), player)
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
return {1, seq, redis.call('ZCARD', KEYS[2]), player}
"#;

const APPEND: &str = r#"
-- KEYS: meta seq log   ARGV: channel from id data ts_us maxlen room_ttl_ms publish
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local s = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], s .. '-1',
  'f', ARGV[2], 'i', ARGV[3], 'd', ARGV[4], 't', ARGV[5])
redis.call(ARGV[8], ARGV[1], s .. '\n' .. ARGV[5] .. '\n' .. ARGV[3] .. '\n' .. ARGV[2] .. '\n' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return s
"#;

const RAISE_SEQ: &str = r#"
-- KEYS: seq   ARGV: floor room_ttl_ms
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return cur
"#;

/// Parses a bus payload: `seq \n ts_us \n id \n from \n data`.
fn parse_published(payload: &[u8]) -> Option<LoggedEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(5, '\n');
    let seq = parts.next()?.parse().ok()?;
    let ts_us = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let from = parts.next()?.to_owned();
    let data = Data::from_json(parts.next()?.to_owned()).ok()?;
    Some(LoggedEvent {
        seq,
        from,
        id,
        data,
        ts_us,
    })
}

/// Parses one XRANGE entry written by the append script.
fn parse_entry(id: &str, fields: &[String]) -> Option<LoggedEvent> {
    let seq = id.split('-').next()?.parse().ok()?;
    let mut event = LoggedEvent {
        seq,
        from: String::new(),
        id: 0,
        data: Data::from_json("null".to_owned()).ok()?,
        ts_us: 0,
    };
    for pair in fields.chunks_exact(2) {
        match pair[0].as_str() {
            "f" => event.from = pair[1].clone(),
            "i" => event.id = pair[1].parse().ok()?,
            "d" => event.data = Data::from_json(pair[1].clone()).ok()?,
            "t" => event.ts_us = pair[1].parse().ok()?,
            _ => {}
        }
    }
    Some(event)
}

fn now_ms() -> u64 {
    super::now_us() / 1000
}

#[derive(Debug)]
struct Settings {
    session_ttl_ms: u64,
    room_ttl_ms: u64,
    log_max_len: u64,
    timeout: Duration,
    heartbeat: Duration,
}

/// Where commands go.
enum Commands {
    /// One primary; replaced when Sentinel names a new one.
    Primary(std::sync::RwLock<ConnectionManager>),
    Cluster(ClusterConnection),
}

/// A handle for one operation; both kinds are cheap clones of a multiplexed
/// connection.
#[derive(Clone)]
enum Conn {
    Primary(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Primary(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Primary(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Primary(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The bus that hears appends: channels on one primary, or shard channels.
enum BusLink {
    Primary(Arc<Bus>),
    Cluster(Arc<ShardBus>),
}

impl BusLink {
    async fn subscribe(&self, room: &str, timeout: Duration) -> Result<(), StoreError> {
        match self {
            BusLink::Primary(bus) => bus.subscribe(room, timeout).await,
            BusLink::Cluster(bus) => bus.subscribe(room, timeout).await,
        }
    }

    async fn unsubscribe(
        &self,
        room: &str,
        abandoned: &(dyn Fn() -> bool + Send + Sync),
        timeout: Duration,
    ) {
        match self {
            BusLink::Primary(bus) => bus.unsubscribe(room, abandoned, timeout).await,
            BusLink::Cluster(bus) => bus.unsubscribe(room, abandoned, timeout).await,
        }
    }

    fn subscribed(&self) -> bool {
        match self {
            BusLink::Primary(bus) => bus.subscribed.load(Ordering::Relaxed),
            BusLink::Cluster(bus) => bus.subscribed.load(Ordering::Relaxed),
        }
    }
}

pub struct RedisStore {
    commands: Commands,
    settings: Settings,
    metrics: Arc<Metrics>,
    bus: BusLink,
    /// `PUBLISH`, or `SPUBLISH` on a cluster.
    publish: &'static str,
    wait_replicas: u32,
    join: Script,
    resume: Script,
    append: Script,
    raise_seq: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("settings", &self.settings)
            .finish()
    }
}

impl RedisStore {
    /// Opens the store and starts its bus. Redis need not be up yet: commands
    /// fail with `Unavailable` until it is, and the bus keeps retrying.
    pub async fn open(
        config: &Config,
        metrics: Arc<Metrics>,
        bus_tx: BusSender,
        shutdown: CancellationToken,
    ) -> Result<RedisStore, StoreError> {
        let settings = Settings {
            session_ttl_ms: config.session_ttl.as_millis() as u64,
            room_ttl_ms: config.room_ttl.as_millis() as u64,
            log_max_len: config.log_max_len,
            timeout: config.redis_timeout,
            heartbeat: config.heartbeat,
        };
        let (timeout, heartbeat) = (settings.timeout, settings.heartbeat);
        let (commands, bus, publish) = if config.redis_cluster.is_empty() {
            let primary = Arc::new(if config.redis_sentinel.is_empty() {
                Primary::fixed(&config.redis_url)?
            } else {
                Primary::sentinel(&config.redis_sentinel, &config.redis_master)?
            });
            let client = first_primary(&primary, timeout).await?;
            let conn = ConnectionManager::new_lazy_with_config(client, manager_config(timeout))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let bus = Arc::new(Bus::new(primary));
            tokio::spawn(Arc::clone(&bus).run(bus_tx, timeout, heartbeat, shutdown));
            let commands = Commands::Primary(std::sync::RwLock::new(conn));
            (commands, BusLink::Primary(bus), "PUBLISH")
        } else {
            let (conn, pushes) = cluster::connect(&config.redis_cluster, timeout).await?;
            let bus = Arc::new(ShardBus::new(conn.clone()));
            tokio::spawn(Arc::clone(&bus).run(pushes, bus_tx, timeout, heartbeat, shutdown));
            (Commands::Cluster(conn), BusLink::Cluster(bus), "SPUBLISH")
        };
        let store = RedisStore {
            commands,
            settings,
            metrics,
            bus,
            publish,
            wait_replicas: config.redis_wait_replicas,
            join: Script::new(JOIN),
            resume: Script::new(RESUME),
            append: Script::new(APPEND),
            raise_seq: Script::new(RAISE_SEQ),
        };
        Ok(store)
    }

    /// Follows Sentinel: asks it for the primary every `every`, and moves
    /// commands to a new one as soon as it is named. Only for Sentinel mode.
    pub fn follow_sentinel(self: &Arc<Self>, config: &Config, shutdown: CancellationToken) {
        let BusLink::Primary(bus) = &self.bus else {
            return;
        };
        let Some(mut changes) = bus.primary.changes() else {
            return;
        };
        let bus = Arc::clone(bus);
        let store = Arc::downgrade(self);
        let manager_config = manager_config(config.redis_timeout);
        let every = SENTINEL_POLL;
        let timeout = config.redis_timeout;
        tokio::spawn(async move {
            changes.mark_unchanged();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Some(store) = store.upgrade() else { return };
                if let Err(e) = bus.primary.client(timeout).await {
                    tracing::debug!(error = %e, "Sentinel poll failed");
                }
                if changes.has_changed().unwrap_or(false) {
                    changes.mark_unchanged();
                    if let Some(client) = bus.primary.last() {
                        match ConnectionManager::new_lazy_with_config(
                            client,
                            manager_config.clone(),
                        ) {
                            Ok(conn) => {
                                if let Commands::Primary(current) = &store.commands {
                                    *current
                                        .write()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner) = conn;
                                }
                                bus.switch.notify_one();
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot reach the new primary"),
                        }
                    }
                }
            }
        });
    }

    /// Runs one Redis operation under the store's timeout, recording its latency.
    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.settings.timeout, fut).await;
        self.metrics.redis_op(op, started.elapsed());
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.metrics.error("redis");
                Err(StoreError::Unavailable(format!("{op}: {e}")))
            }
            Err(_) => {
                self.metrics.error("redis_timeout");
                Err(StoreError::Unavailable(format!("{op}: timed out")))
            }
        }
    }

    fn conn(&self) -> Conn {
        match &self.commands {
            Commands::Primary(current) => Conn::Primary(
                current
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            ),
            Commands::Cluster(conn) => Conn::Cluster(conn.clone()),
        }
    }

    /// Waits until `wait_replicas` Redis replicas hold what this replica
    /// wrote to `key`'s primary, so a failover cannot take it back.
    async fn replicated(&self, key: &str) -> Result<(), StoreError> {
        let want = self.wait_replicas;
        let timeout = self.settings.timeout / 2;
        let got: i64 = self
            .timed("wait", async {
                match self.conn() {
                    Conn::Primary(mut conn) => {
                        redis::cmd("WAIT")
                            .arg(want)
                            .arg(timeout.as_millis() as u64)
                            .query_async(&mut conn)
                            .await
                    }
                    Conn::Cluster(mut conn) => {
                        let (wait, route) = cluster::wait_on_owner(key, want, timeout);
                        let reply = conn.route_command(wait, route).await?;
                        redis::from_redis_value(reply).map_err(redis::RedisError::from)
                    }
                }
            })
            .await?;
        if got < i64::from(want) {
            return Err(StoreError::Unavailable(format!(
                "only {got} of {want} Redis replicas confirmed the write"
            )));
        }
        Ok(())
    }
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

#[async_trait]
impl Store for RedisStore {
    async fn create_room(&self, spec: &RoomSpec, host: &str) -> Result<String, StoreError> {
        let meta = RoomMeta {
            game: spec.game.clone(),
            max_players: spec.max_players,
            server: host.to_owned(),
        };
        let meta =
            serde_json::to_string(&meta).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        for _ in 0..super::CREATE_ATTEMPTS {
            let code = ids::room_code();
            let set = redis::cmd("SET")
                .arg(RoomKeys::new(&code).meta())
                .arg(&meta)
                .arg("NX")
                .arg("PX")
                .arg(self.settings.room_ttl_ms)
                .clone();
            let created: Option<String> = self
                .timed("create_room", async {
                    set.query_async(&mut self.conn()).await
                })
                .await?;
            if created.is_some() {
                return Ok(code);
            }
        }
        Err(StoreError::Unavailable(super::CODE_SPACE_CROWDED.into()))
    }

    async fn room_info(&self, room: &str) -> Result<Option<RoomInfo>, StoreError> {
        let keys = RoomKeys::new(room);
        let mut pipe = redis::pipe();
        pipe.get(keys.meta())
            .get(keys.seq())
            .zcount(keys.members(), now_ms(), "+inf");
        let (meta, seq, members): (Option<String>, Option<u64>, u32) = self
            .timed("room_info", async {
                pipe.query_async(&mut self.conn()).await
            })
            .await?;
        let Some(meta) = meta else { return Ok(None) };
        let meta: RoomMeta = serde_json::from_str(&meta)
            .map_err(|e| StoreError::Unavailable(format!("corrupt room meta: {e}")))?;
        Ok(Some(RoomInfo {
            room: room.to_owned(),
            game: meta.game,
            max_players: meta.max_players,
            members,
            seq: seq.unwrap_or(0),
        }))
    }

    async fn join(&self, room: &str, name: &str) -> Result<Seat, StoreError> {
        let keys = RoomKeys::new(room);
        let player = ids::player_id();
        let session = ids::session_token();
        let mut call = self.join.prepare_invoke();
        call.key(keys.meta())
            .key(keys.members())
            .key(keys.seq())
            .key(keys.session(&session))
            .arg(&player)
            .arg(name)
            .arg(now_ms())
            .arg(self.settings.session_ttl_ms)
            .arg(self.settings.room_ttl_ms);
        let (status, seq, members): (i64, u64, u32) = self
            .timed("join", async { call.invoke_async(&mut self.conn()).await })
            .await?;
        match status {
            1 => Ok(Seat {
                seat: SeatRef {
                    room: room.to_owned(),
                    player,
                    session,
                },
                seq,
                members,
            }),
            -2 => Err(StoreError::RoomFull),
            _ => Err(StoreError::UnknownRoom),
        }
    }

    async fn resume(&self, room: &str, session: &str) -> Result<Seat, StoreError> {
        let keys = RoomKeys::new(room);
        let mut call = self.resume.prepare_invoke();
        call.key(keys.meta())
            .key(keys.members())
            .key(keys.seq())
            .key(keys.session(session))
            .arg(now_ms())
            .arg(self.settings.session_ttl_ms)
            .arg(self.settings.room_ttl_ms);
        let (status, seq, members, player): (i64, u64, u32, String) = self
            .timed("resume", async {
                call.invoke_async(&mut self.conn()).await
            })
            .await?;
        match status {
            1 => Ok(Seat {
                seat: SeatRef {
                    room: room.to_owned(),
                    player,
                    session: session.to_owned(),
                },
                seq,
                members,
            }),
            -1 => Err(StoreError::UnknownRoom),
            _ => Err(StoreError::SessionExpired),
        }
    }

    async fn leave(&self, seat: &SeatRef) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&seat.room);
        let mut pipe = redis::pipe();
        pipe.zrem(keys.members(), &seat.player)
            .ignore()
            .del(keys.session(&seat.session))
            .ignore();
        self.timed("leave", async {
            pipe.query_async::<()>(&mut self.conn()).await
        })
        .await
    }

    async fn refresh(&self, seats: &[SeatRef]) -> Result<(), StoreError> {
        if seats.is_empty() {
            return Ok(());
        }
        let expires = now_ms() + self.settings.session_ttl_ms;
        // One pipeline per room: on a cluster, a pipeline must stay in one slot.
        let mut rooms: std::collections::HashMap<&str, redis::Pipeline> = Default::default();
        for seat in seats {
            let keys = RoomKeys::new(&seat.room);
            let pipe = rooms.entry(seat.room.as_str()).or_insert_with(redis::pipe);
            // XX: a seat given up (leave) or already expired is not brought back.
            pipe.cmd("ZADD")
                .arg(keys.members())
                .arg("XX")
                .arg(expires)
                .arg(&seat.player)
                .ignore()
                .pexpire(
                    keys.session(&seat.session),
                    self.settings.session_ttl_ms as i64,
                )
                .ignore();
        }
        let sent = rooms.values().map(|pipe| {
            self.timed("refresh", async move {
                pipe.query_async::<()>(&mut self.conn()).await
            })
        });
        futures_util::future::join_all(sent)
            .await
            .into_iter()
            .collect()
    }

    async fn append(
        &self,
        room: &str,
        from: &str,
        id: u64,
        data: &Data,
    ) -> Result<u64, StoreError> {
        let keys = RoomKeys::new(room);
        let mut call = self.append.prepare_invoke();
        call.key(keys.meta())
            .key(keys.seq())
            .key(keys.log())
            .arg(keys.channel())
            .arg(from)
            .arg(id)
            .arg(data.get())
            .arg(super::now_us())
            .arg(self.settings.log_max_len)
            .arg(self.settings.room_ttl_ms)
            .arg(self.publish);
        let seq: i64 = self
            .timed("append", async {
                call.invoke_async(&mut self.conn()).await
            })
            .await?;
        let seq = u64::try_from(seq).map_err(|_| StoreError::UnknownRoom)?;
        if self.wait_replicas > 0 {
            self.replicated(&keys.seq()).await?;
        }
        Ok(seq)
    }

    async fn range(&self, room: &str, from: u64, to: u64) -> Result<Vec<LoggedEvent>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let log = RoomKeys::new(room).log();
        let entries: Vec<(String, Vec<String>)> = self
            .timed("range", async {
                self.conn()
                    .xrange(log, format!("{from}-1"), format!("{to}-1"))
                    .await
            })
            .await?;
        let events: Vec<LoggedEvent> = entries
            .iter()
            .filter_map(|(id, fields)| parse_entry(id, fields))
            .collect();
        match events.first() {
            Some(first) if first.seq == from => Ok(events),
            _ => Err(StoreError::Trimmed(from.saturating_sub(1))),
        }
    }

    async fn latest_seq(&self, room: &str) -> Result<u64, StoreError> {
        let key = RoomKeys::new(room).seq();
        let seq: Option<u64> = self
            .timed("latest_seq", async { self.conn().get(key).await })
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn raise_seq(&self, room: &str, floor: u64) -> Result<u64, StoreError> {
        let mut call = self.raise_seq.prepare_invoke();
        call.key(RoomKeys::new(room).seq())
            .arg(floor)
            .arg(self.settings.room_ttl_ms);
        self.timed("raise_seq", async {
            call.invoke_async(&mut self.conn()).await
        })
        .await
    }

    async fn subscribe(&self, room: &str) -> Result<(), StoreError> {
        self.bus.subscribe(room, self.settings.timeout).await
    }

    async fn unsubscribe(&self, room: &str, abandoned: &(dyn Fn() -> bool + Send + Sync)) {
        self.bus
            .unsubscribe(room, abandoned, self.settings.timeout)
            .await;
    }

    async fn heartbeat(&self, me: &ServerEntry, ttl: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let key = server_key(&me.server);
        let mut pipe = redis::pipe();
        pipe.hset_multiple(
            &key,
            &[
                ("ws_url", me.ws_url.clone()),
                ("connections", me.connections.to_string()),
                ("rooms", me.rooms.to_string()),
            ],
        )
        .ignore()
        .pexpire(&key, ttl.as_millis() as i64)
        .ignore()
        .zadd(SERVERS_KEY, &me.server, now + ttl.as_millis() as u64)
        .ignore()
        .zrembyscore(SERVERS_KEY, "-inf", now)
        .ignore();
        self.timed("heartbeat", async {
            pipe.query_async::<()>(&mut self.conn()).await
        })
        .await
    }

    async fn servers(&self) -> Result<Vec<ServerEntry>, StoreError> {
        let ids: Vec<String> = self
            .timed("servers", async {
                self.conn()
                    .zrangebyscore(SERVERS_KEY, now_ms(), "+inf")
                    .await
            })
            .await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(server_key(id));
        }
        let details: Vec<std::collections::HashMap<String, String>> = self
            .timed("servers", async {
                pipe.query_async(&mut self.conn()).await
            })
            .await?;
        Ok(ids
            .into_iter()
            .zip(details)
            .filter_map(|(server, fields)| {
                Some(ServerEntry {
                    server,
                    ws_url: fields.get("ws_url")?.clone(),
                    connections: fields.get("connections")?.parse().ok()?,
                    rooms: fields.get("rooms")?.parse().ok()?,
                })
            })
            .collect())
    }

    async fn deregister(&self, server: &str) {
        let mut pipe = redis::pipe();
        pipe.zrem(SERVERS_KEY, server)
            .ignore()
            .del(server_key(server))
            .ignore();
        if let Err(e) = self
            .timed("deregister", async {
                pipe.query_async::<()>(&mut self.conn()).await
            })
            .await
        {
            tracing::warn!(error = %e, "could not deregister; the entry will expire");
        }
    }

    async fn health(&self) -> StoreHealth {
        let started = Instant::now();
        let ping: Result<String, _> = self
            .timed("ping", async {
                redis::cmd("PING").query_async(&mut self.conn()).await
            })
            .await;
        StoreHealth {
            ping: ping.ok().map(|_| started.elapsed()),
            subscribed: self.bus.subscribed(),
        }
    }
}

/// How often a replica asks Sentinel where the primary is.
const SENTINEL_POLL: Duration = Duration::from_millis(500);
/// How long a replica in Sentinel mode waits at start-up for a first answer.
const SENTINEL_START: Duration = Duration::from_secs(10);

/// The primary at start-up: a fixed URL at once; from Sentinel, retried
/// for a while, as Sentinels may be starting too.
async fn first_primary(primary: &Primary, timeout: Duration) -> Result<Client, StoreError> {
    let deadline = Instant::now() + SENTINEL_START;
    loop {
        match primary.client(timeout).await {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() > deadline => {
                return Err(StoreError::Unavailable(format!(
                    "no Redis primary from Sentinel within {}s: {e}",
                    SENTINEL_START.as_secs()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_payload_round_trips_data_with_newlines() {
        let event = parse_published(b"42\n1700000000000000\n7\nabc\n{\"s\":\"a\\nb\",\n\"k\":1}")
            .expect("parse");
        assert_eq!(event.seq, 42);
        assert_eq!(event.id, 7);
        assert_eq!(event.from, "abc");
        assert_eq!(event.data.get(), "{\"s\":\"a\\nb\",\n\"k\":1}");
        assert!(parse_published(b"x\n1\n2\nf\n{}").is_none());
        assert!(parse_published(b"1\n1\n2\nf\n{bad").is_none());
    }

    #[test]
    fn channels_map_back_to_rooms() {
        let keys = RoomKeys::new("K7Q2XM");
        assert_eq!(keys.channel(), "{room:K7Q2XM}:events");
        assert_eq!(room_of_channel(&keys.channel()), Some("K7Q2XM"));
        assert_eq!(room_of_channel("other"), None);
    }

    #[test]
    fn stream_entries_parse() {
        let fields: Vec<String> = ["f", "p1", "i", "3", "d", "[1,2]", "t", "99"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let event = parse_entry("12-1", &fields).expect("entry");
        assert_eq!((event.seq, event.id, event.ts_us), (12, 3, 99));
        assert_eq!(event.data.get(), "[1,2]");
    }
}
