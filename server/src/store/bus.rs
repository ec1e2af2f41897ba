//! The bus on one Redis primary: one Pub/Sub connection per replica,
//! subscribed to the channels of rooms with local members. It reconnects
//! with backoff, resubscribes, pings to notice a frozen Redis, follows
//! Sentinel to a new primary, and reports `Reconnected` so the dispatcher
//! re-reads every room's log for what Pub/Sub (at-most-once) may have dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio_util::sync::CancellationToken;

use super::layout::{bus_event, RoomKeys};
use super::primary::Primary;
use super::{BusMsg, BusSender, StoreError};

/// The replica's Pub/Sub connection and the set of channels it should hold.
pub(super) struct Bus {
    pub(super) primary: Arc<Primary>,
    /// Notified when Sentinel names a new primary: the connection moves.
    pub(super) switch: tokio::sync::Notify,
    /// Rooms to be subscribed; what a reconnect restores.
    wanted: Mutex<HashSet<String>>,
    /// The live connection's sink; `None` while disconnected. The async lock
    /// also orders SUBSCRIBE/UNSUBSCRIBE of one room.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    pub(super) subscribed: AtomicBool,
}

const BUS_MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Bus {
    pub(super) fn new(primary: Arc<Primary>) -> Bus {
        Bus {
            primary,
            switch: tokio::sync::Notify::new(),
            wanted: Mutex::new(HashSet::new()),
            sink: tokio::sync::Mutex::new(None),
            subscribed: AtomicBool::new(false),
        }
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) async fn subscribe(&self, room: &str, timeout: Duration) -> Result<(), StoreError> {
        // `wanted` changes only under the sink lock, so a subscribe and an
        // unsubscribe of one room are ordered the same way in both places.
        let mut sink = self.sink.lock().await;
        self.wanted().insert(room.to_owned());
        let Some(live) = sink.as_mut() else {
            return Err(StoreError::Unavailable("pub/sub is reconnecting".into()));
        };
        match tokio::time::timeout(timeout, live.subscribe(RoomKeys::new(room).channel())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("subscribe: {e}"))),
            Err(_) => Err(StoreError::Unavailable("subscribe: timed out".into())),
        }
    }

    pub(super) async fn unsubscribe(
        &self,
        room: &str,
        abandoned: &(dyn Fn() -> bool + Send + Sync),
        timeout: Duration,
    ) {
        let mut sink = self.sink.lock().await;
        // Checked under the lock: a join that re-created the room's feed has
        // either already subscribed (and we must not undo it) or will
        // subscribe after us.
        if !abandoned() {
            return;
        }
        self.wanted().remove(room);
        if let Some(live) = sink.as_mut() {
            // A failure here only leaves a channel we ignore; the next
            // reconnect drops it.
            let _ = tokio::time::timeout(timeout, live.unsubscribe(RoomKeys::new(room).channel()))
                .await;
        }
    }

    pub(super) async fn run(
        self: Arc<Bus>,
        bus: BusSender,
        timeout: Duration,
        ping_every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            match self.connect(timeout).await {
                Ok(stream) => {
                    backoff = Duration::from_millis(50);
                    if bus.send(BusMsg::Reconnected).is_err() {
                        return;
                    }
                    self.pump(stream, &bus, timeout, ping_every, &shutdown)
                        .await;
                    self.subscribed.store(false, Ordering::Relaxed);
                    *self.sink.lock().await = None;
                    tracing::warn!("pub/sub connection lost; reconnecting");
                }
                Err(e) => tracing::debug!(error = %e, "pub/sub connect failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BUS_MAX_BACKOFF);
        }
    }

    /// Connects, restores every wanted subscription and installs the sink.
    async fn connect(&self, timeout: Duration) -> Result<redis::aio::PubSubStream, String> {
        let client = self.primary.client(timeout).await?;
        let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let (mut sink, stream) = pubsub.split();
        let mut installed = self.sink.lock().await;
        let channels: Vec<String> = self
            .wanted()
            .iter()
            .map(|r| RoomKeys::new(r).channel())
            .collect();
        for chunk in channels.chunks(512) {
            tokio::time::timeout(timeout * 4, sink.subscribe(chunk))
                .await
                .map_err(|_| "resubscribe timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        *installed = Some(sink);
        self.subscribed.store(true, Ordering::Relaxed);
        Ok(stream)
    }

    /// Forwards messages until the connection drops, stops answering pings,
    /// or the replica shuts down.
    async fn pump(
        &self,
        mut stream: redis::aio::PubSubStream,
        bus: &BusSender,
        timeout: Duration,
        ping_every: Duration,
        shutdown: &CancellationToken,
    ) {
        let mut ping = tokio::time::interval(ping_every);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.switch.notified() => {
                    tracing::warn!("the Redis primary moved; reconnecting pub/sub");
                    return;
                }
                message = stream.next() => {
                    let Some(message) = message else { return };
                    match bus_event(message.get_channel_name(), message.get_payload_bytes()) {
                        Some(event) => {
                            if bus.send(event).is_err() {
                                return;
                            }
                        }
                        None => tracing::warn!(channel = message.get_channel_name(), "unreadable bus message"),
                    }
                }
                _ = ping.tick() => {
                    if !self.ping(timeout).await {
                        tracing::warn!("pub/sub ping unanswered; dropping the connection");
                        return;
                    }
                }
            }
        }
    }

    async fn ping(&self, timeout: Duration) -> bool {
        let mut sink = self.sink.lock().await;
        let Some(live) = sink.as_mut() else {
            return false;
        };
        // A subscribed connection answers PING with ["pong", ""], not +PONG.
        matches!(
            tokio::time::timeout(timeout, live.ping::<redis::Value>()).await,
            Ok(Ok(_))
        )
    }
}
