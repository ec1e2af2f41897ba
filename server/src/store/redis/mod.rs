//! The Redis store (tier 2 and 3). Every key of a room shares the hash tag
//! `{room:CODE}` so the append script stays single-slot on a Redis Cluster.
//! Appends are one Lua script: INCR the room's seq, XADD the event to the
//! room's stream under ID `<seq>-1`, PUBLISH it (SPUBLISH on a cluster) — so
//! the stream, the seq and the publish order can never disagree.
//!
//! Commands go to one primary (a URL, or whichever Sentinel names) or to a
//! cluster; the bus that hears appends is `bus::Bus` or `cluster::ShardBus`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

mod create;
mod seats;

use super::bus::Bus;
use super::cluster::{self, ShardBus};
use super::layout::{parse_entry, server_key, RoomKeys, RoomMeta, SERVERS_KEY};
use super::link::{BusLink, Commands, Conn};
use super::primary::Primary;
use super::scripts;
use redis::{AsyncCommands, Client, Script};
use tierlab_protocol::{RoomInfo, ServerEntry};
use tokio_util::sync::CancellationToken;

use super::{
    Act, BusSender, Joining, LoggedEvent, RoomSpec, Seat, SeatRef, Store, StoreError, StoreHealth,
};
use crate::config::Config;
use crate::metrics::Metrics;

fn now_ms() -> u64 {
    super::now_us() / 1000
}

#[derive(Debug)]
struct Settings {
    session_ttl_ms: u64,
    seat_hold_ms: u64,
    room_ttl_ms: u64,
    max_rooms: u64,
    code_len: usize,
    log_max_len: u64,
    timeout: Duration,
    heartbeat: Duration,
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
    count_room: Script,
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
            seat_hold_ms: config.seat_hold.as_millis() as u64,
            room_ttl_ms: config.room_ttl.as_millis() as u64,
            max_rooms: config.max_rooms,
            code_len: config.room_code_length,
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
            join: Script::new(scripts::JOIN),
            resume: Script::new(scripts::RESUME),
            append: Script::new(scripts::APPEND),
            raise_seq: Script::new(scripts::RAISE_SEQ),
            count_room: Script::new(scripts::COUNT_ROOM),
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
        self.run(op, Effect::Reads, fut).await
    }

    /// Like `timed`, for an operation that changes state: when it may have
    /// reached Redis and no answer came, the outcome is unknown, not "no".
    async fn timed_write<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.run(op, Effect::Writes, fut).await
    }

    async fn run<T>(
        &self,
        op: &'static str,
        effect: Effect,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.settings.timeout, fut).await;
        self.metrics.redis_op(op, started.elapsed());
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.metrics.error("redis");
                Err(effect.failed(op, &e))
            }
            Err(_) => {
                self.metrics.error("redis_timeout");
                Err(match effect {
                    Effect::Reads => StoreError::Unavailable(format!("{op}: timed out")),
                    Effect::Writes => StoreError::UnknownOutcome(format!("{op}: timed out")),
                })
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

/// Whether an operation changes state, which decides what a failure means.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Reads,
    Writes,
}

impl Effect {
    /// A refused connection or Redis's own error reply means nothing was
    /// applied; a write whose connection broke mid-way may have been.
    fn failed(self, op: &str, e: &redis::RedisError) -> StoreError {
        let sent_maybe = e.is_io_error() && !e.is_connection_refusal();
        match self {
            Effect::Writes if sent_maybe || e.is_timeout() => {
                StoreError::UnknownOutcome(format!("{op}: {e}"))
            }
            _ => StoreError::Unavailable(format!("{op}: {e}")),
        }
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
    async fn create_room(
        &self,
        spec: &RoomSpec,
        host: &str,
        key: Option<&str>,
    ) -> Result<String, StoreError> {
        self.create(spec, host, key).await
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

    async fn join(&self, room: &str, entry: &Joining<'_>) -> Result<Seat, StoreError> {
        self.take_seat(room, entry).await
    }

    async fn resume(&self, room: &str, session: &str, holder: &str) -> Result<Seat, StoreError> {
        self.take_back(room, session, holder).await
    }

    async fn leave(&self, seat: &SeatRef) -> Result<(), StoreError> {
        self.give_up(seat).await
    }

    async fn refresh(&self, seats: &[SeatRef]) -> Result<(), StoreError> {
        self.hold(seats, self.settings.session_ttl_ms).await
    }

    async fn release(&self, seat: &SeatRef) -> Result<(), StoreError> {
        self.hold(std::slice::from_ref(seat), self.settings.seat_hold_ms)
            .await
    }

    async fn append(&self, seat: &SeatRef, act: &Act<'_>) -> Result<u64, StoreError> {
        let keys = RoomKeys::new(&seat.room);
        let mut call = self.append.prepare_invoke();
        call.key(keys.meta())
            .key(keys.seq())
            .key(keys.log())
            .key(keys.acts())
            .key(keys.session(&seat.session))
            .arg(keys.channel())
            .arg(&seat.player)
            .arg(act.id)
            .arg(act.data.get())
            .arg(super::now_us())
            .arg(self.settings.log_max_len)
            .arg(self.settings.room_ttl_ms)
            .arg(self.publish)
            .arg(act.key.unwrap_or(""))
            .arg(super::ACT_KEY_WINDOW)
            .arg(&seat.holder);
        let (status, seq): (i64, u64) = self
            .timed_write("append", async {
                call.invoke_async(&mut self.conn()).await
            })
            .await?;
        match status {
            1 | 0 => {}
            -3 => return Err(StoreError::Replaced),
            -4 => return Err(StoreError::SessionExpired),
            _ => return Err(StoreError::UnknownRoom),
        }
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
