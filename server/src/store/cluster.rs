//! Redis Cluster (`--redis-cluster`): the cluster connection and the sharded
//! bus. Every key and the channel of a room carry the room's hash tag, so the
//! append script's SPUBLISH and this bus's SSUBSCRIBE touch only the shard
//! that owns the room — a classic PUBLISH would be copied to every node.
//!
//! redis-rs keeps the list of shard subscriptions and re-issues them when a
//! node reconnects or the slot map changes (a failover). What it cannot give
//! back is what was published while a shard was away, so the bus notes every
//! dropped node connection and, once the cluster answers again, reports
//! `Reconnected`: the dispatcher then re-reads every room from its stream, as
//! in single-Redis mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::layout::{bus_event, RoomKeys};
use super::{BusSender, StoreError};

/// Healthy pings after a dropped node connection before the bus stops
/// re-announcing `Reconnected` (the slot map may settle in steps).
const SETTLE_TICKS: u32 = 3;

/// Connects to the cluster. One connection carries commands and, through
/// RESP3 pushes, the shard subscriptions.
pub(super) async fn connect(
    nodes: &[String],
    timeout: Duration,
) -> Result<(ClusterConnection, UnboundedReceiver<PushInfo>), StoreError> {
    let (push, pushes) = tokio::sync::mpsc::unbounded_channel();
    let urls: Vec<String> = nodes.iter().map(|n| format!("redis://{n}")).collect();
    let client = ClusterClientBuilder::new(urls)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(push)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(3)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("bad --redis-cluster: {e}")))?;
    let conn = tokio::time::timeout(timeout * 5, client.get_async_connection())
        .await
        .map_err(|_| StoreError::Unavailable("Redis Cluster: connect timed out".into()))?
        .map_err(|e| StoreError::Unavailable(format!("Redis Cluster: {e}")))?;
    Ok((conn, pushes))
}

/// WAIT sent to the master that owns `key`'s slot: the connection to it is
/// the one the write went through, so WAIT covers it.
pub(super) fn wait_on_owner(
    key: &str,
    replicas: u32,
    timeout: Duration,
) -> (redis::Cmd, RoutingInfo) {
    let mut wait = redis::cmd("WAIT");
    wait.arg(replicas).arg(timeout.as_millis() as u64);
    let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
    (
        wait,
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
    )
}

/// The replica's shard subscriptions.
pub(super) struct ShardBus {
    conn: ClusterConnection,
    /// Orders SSUBSCRIBE/SUNSUBSCRIBE of one room (see `unsubscribe`).
    order: tokio::sync::Mutex<()>,
    pub(super) subscribed: AtomicBool,
}

impl ShardBus {
    pub(super) fn new(conn: ClusterConnection) -> ShardBus {
        ShardBus {
            conn,
            order: tokio::sync::Mutex::new(()),
            subscribed: AtomicBool::new(true),
        }
    }

    pub(super) async fn subscribe(&self, room: &str, timeout: Duration) -> Result<(), StoreError> {
        let _order = self.order.lock().await;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(timeout, conn.ssubscribe(RoomKeys::new(room).channel())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("ssubscribe: {e}"))),
            Err(_) => Err(StoreError::Unavailable("ssubscribe: timed out".into())),
        }
    }

    pub(super) async fn unsubscribe(
        &self,
        room: &str,
        abandoned: &(dyn Fn() -> bool + Send + Sync),
        timeout: Duration,
    ) {
        let _order = self.order.lock().await;
        // Checked under the lock: a join that brought the room back has
        // either subscribed already (not to be undone) or will after us.
        if !abandoned() {
            return;
        }
        let mut conn = self.conn.clone();
        // A failure leaves a channel whose messages the dispatcher ignores.
        let _ =
            tokio::time::timeout(timeout, conn.sunsubscribe(RoomKeys::new(room).channel())).await;
    }

    /// Forwards shard messages and turns dropped node connections into
    /// `Reconnected` once the cluster answers again.
    pub(super) async fn run(
        self: Arc<ShardBus>,
        mut pushes: UnboundedReceiver<PushInfo>,
        bus: BusSender,
        timeout: Duration,
        ping_every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ping = tokio::time::interval(ping_every);
        let mut unsettled: Option<u32> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                push = pushes.recv() => {
                    let Some(push) = push else { return };
                    let forward = self.on_push(push, &mut unsettled);
                    if forward.is_some_and(|msg| bus.send(msg).is_err()) {
                        return;
                    }
                }
                _ = ping.tick() => {
                    let healthy = self.ping(timeout).await;
                    self.subscribed.store(healthy, Ordering::Relaxed);
                    if let (true, Some(ticks)) = (healthy, unsettled) {
                        if bus.send(super::BusMsg::Reconnected).is_err() {
                            return;
                        }
                        unsettled = (ticks + 1 < SETTLE_TICKS).then_some(ticks + 1);
                    }
                }
            }
        }
    }

    /// What a push from the cluster means for the dispatcher, if anything.
    fn on_push(&self, push: PushInfo, unsettled: &mut Option<u32>) -> Option<super::BusMsg> {
        match push.kind {
            PushKind::SMessage => {
                let event = shard_message(&push.data);
                if event.is_none() {
                    tracing::warn!("unreadable shard bus message");
                }
                event
            }
            PushKind::Disconnection => {
                tracing::warn!("a Redis Cluster node connection dropped; will backfill");
                self.subscribed.store(false, Ordering::Relaxed);
                *unsettled = Some(0);
                None
            }
            // redis-rs re-subscribed after a reconnect or a slot move.
            PushKind::SSubscribe if unsettled.is_some() => Some(super::BusMsg::Reconnected),
            _ => None,
        }
    }

    /// PING goes to every node: healthy only when every shard answers.
    async fn ping(&self, timeout: Duration) -> bool {
        let mut conn = self.conn.clone();
        matches!(
            tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(&mut conn)).await,
            Ok(Ok(_))
        )
    }
}

/// `smessage` pushes carry `[channel, payload]`.
fn shard_message(data: &[Value]) -> Option<super::BusMsg> {
    match data {
        [Value::BulkString(channel), Value::BulkString(payload), ..] => {
            bus_event(std::str::from_utf8(channel).ok()?, payload)
        }
        _ => None,
    }
}
