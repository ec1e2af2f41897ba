//! Room operations as a connection sees them — create, join, resume, act,
//! leave — and the background loops that keep feeds whole: the dispatcher
//! (bus → hub), the resync worker (room log → hub after a gap or a
//! reconnect) and the quiet-room watch (finds a dropped last event). This is
//! where the store (async, remote) meets the hub (sync, local).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::{Advance, Arrival, ConnId, Delivery, Hub, Member};
use crate::metrics::Metrics;
use crate::store::{Act, BusMsg, Joining, RoomSpec, Seat, SeatRef, Store, StoreError};

/// Most events fetched from the log in one read while catching up.
pub const FETCH_CHUNK: u64 = 256;
const RESYNC_RETRY: Duration = Duration::from_millis(200);
const QUIET_WATCH_TICK: Duration = Duration::from_millis(250);
/// Quiet rooms whose seq is read at once.
const QUIET_WATCH_READS: usize = 32;

#[derive(Debug)]
pub struct Rooms {
    pub hub: Hub,
    pub store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    resync: mpsc::UnboundedSender<String>,
    lost: std::sync::Mutex<LostRooms>,
}

/// Rooms found gone from the store while members sat in them: counted once
/// each (the codes are remembered, boundedly), and when the last was found.
#[derive(Debug, Default)]
struct LostRooms {
    total: u64,
    recent: std::collections::VecDeque<String>,
    last: Option<std::time::Instant>,
}

/// Lost room codes remembered so that many members of one room count it once.
const LOST_REMEMBERED: usize = 1024;
/// How long `/health` says `degraded` after a room was lost.
pub const LOST_DEGRADES: Duration = Duration::from_secs(60);

/// How a member enters: a new seat, or a resume from `since`.
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    Fresh(Joining<'a>),
    Resume {
        session: &'a str,
        since: Option<u64>,
        holder: &'a str,
    },
}

impl Rooms {
    /// Builds the service and starts its dispatcher and resync worker, which
    /// run until `shutdown`.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        bus: mpsc::UnboundedReceiver<BusMsg>,
        shutdown: CancellationToken,
    ) -> Arc<Rooms> {
        let (resync, resync_rx) = mpsc::unbounded_channel();
        let rooms = Arc::new(Rooms {
            hub: Hub::new(Arc::clone(&metrics), 64),
            store,
            metrics,
            resync,
            lost: std::sync::Mutex::default(),
        });
        tokio::spawn(Arc::clone(&rooms).dispatch(bus, shutdown.clone()));
        tokio::spawn(Arc::clone(&rooms).resync_worker(resync_rx, shutdown.clone()));
        tokio::spawn(Arc::clone(&rooms).quiet_watch(shutdown));
        rooms
    }

    pub async fn create(
        &self,
        spec: &RoomSpec,
        host: &str,
        key: Option<&str>,
    ) -> Result<String, StoreError> {
        self.store.create_room(spec, host, key).await
    }

    /// Seats `member` in `room` and attaches it to the room's feed. The
    /// returned `Advance` says whether the member must catch up first; the
    /// count, how many bytes of replay the ring handed it already.
    pub async fn enter(
        &self,
        room: &str,
        entry: Entry<'_>,
        make_member: impl FnOnce(SeatRef) -> Member,
    ) -> Result<(Seat, Advance, usize), StoreError> {
        self.ensure_feed(room).await?;
        let (seat, cursor) = match entry {
            Entry::Fresh(joining) => {
                let seat = self.store.join(room, &joining).await?;
                let cursor = seat.seq;
                (seat, cursor)
            }
            Entry::Resume {
                session,
                since,
                holder,
            } => {
                let seat = self.store.resume(room, session, holder).await?;
                let cursor = since.unwrap_or(seat.seq);
                if cursor > seat.seq {
                    return Err(StoreError::Invalid(
                        "`since` is ahead of the room's latest seq",
                    ));
                }
                // What came before the player first joined is not its to read.
                let cursor = cursor.max(seat.floor);
                (seat, cursor)
            }
        };
        let (advance, replayed) = self
            .hub
            .attach(room, make_member(seat.seat.clone()), cursor);
        Ok((seat, advance, replayed))
    }

    /// One step of a member's catch-up: reads up to `FETCH_CHUNK` events from
    /// the log, returns those to send now and what comes next.
    pub async fn catch_up(
        &self,
        room: &str,
        conn: ConnId,
        from: u64,
        to: u64,
    ) -> Result<(Vec<Arc<Delivery>>, Advance), StoreError> {
        let to = to.min(from + FETCH_CHUNK - 1);
        let events = self.store.range(room, from, to).await?;
        let deliveries = events.into_iter().map(|e| Delivery::new(room, e)).collect();
        Ok(self.hub.replay(room, conn, deliveries))
    }

    pub async fn act(&self, seat: &SeatRef, act: &Act<'_>) -> Result<u64, StoreError> {
        let seq = self.store.append(seat, act).await.inspect_err(|e| {
            if *e == StoreError::UnknownRoom {
                self.room_lost(&seat.room);
            }
        })?;
        self.metrics.events_in.inc();
        Ok(seq)
    }

    /// A room a member sat in is gone from the store.
    fn room_lost(&self, room: &str) {
        let mut lost = self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost.last = Some(std::time::Instant::now());
        if lost.recent.iter().any(|r| r == room) {
            return;
        }
        lost.total += 1;
        lost.recent.push_back(room.to_owned());
        if lost.recent.len() > LOST_REMEMBERED {
            lost.recent.pop_front();
        }
        self.metrics.error("room_lost");
    }

    /// Rooms lost so far, and whether one was lost within `LOST_DEGRADES`.
    pub fn rooms_lost(&self) -> (u64, bool) {
        let lost = self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = lost.last.is_some_and(|t| t.elapsed() < LOST_DEGRADES);
        (lost.total, recent)
    }

    /// Gives the seat up for good.
    pub async fn leave(&self, seat: &SeatRef, conn: ConnId) -> Result<(), StoreError> {
        self.hub.detach(&seat.room, conn);
        self.store.leave(seat).await
    }

    /// The connection went away without leaving: the session stays
    /// resumable for one session TTL from now, the seat is kept from new
    /// players for the seat hold.
    pub async fn disconnect(&self, seat: &SeatRef, conn: ConnId) {
        self.hub.detach(&seat.room, conn);
        if let Err(e) = self.store.release(seat).await {
            tracing::debug!(error = %e, "could not restart the session clock; the last refresh stands");
        }
    }

    /// Subscribes the room and learns its head, once per feed.
    async fn ensure_feed(&self, room: &str) -> Result<(), StoreError> {
        let init = self.hub.feed_init(room);
        init.get_or_try_init(|| async {
            self.store.subscribe(room).await?;
            let head = self.store.latest_seq(room).await?;
            if self.hub.init_head(room, head) == Arrival::Gap {
                self.request_resync(room);
            }
            Ok::<(), StoreError>(())
        })
        .await?;
        Ok(())
    }

    fn request_resync(&self, room: &str) {
        let _ = self.resync.send(room.to_owned());
    }

    /// Drops feeds idle for `idle` and unsubscribes them (unless a join
    /// brought the room back meanwhile: the store decides that under the
    /// same lock that orders subscriptions).
    pub async fn sweep(&self, idle: Duration) {
        for room in self.hub.sweep(idle) {
            let abandoned = || !self.hub.has_feed(&room);
            self.store.unsubscribe(&room, &abandoned).await;
        }
    }

    async fn dispatch(
        self: Arc<Rooms>,
        mut bus: mpsc::UnboundedReceiver<BusMsg>,
        shutdown: CancellationToken,
    ) {
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = bus.recv() => msg,
            };
            match msg {
                None => return,
                Some(BusMsg::Event { room, event }) => {
                    if !self.hub.has_feed(&room) {
                        continue;
                    }
                    if self.hub.arrive(&room, Delivery::new(&room, event)) == Arrival::Gap {
                        self.request_resync(&room);
                    }
                }
                Some(BusMsg::Reconnected) => {
                    for room in self.hub.rooms() {
                        self.request_resync(&room);
                    }
                }
            }
        }
    }

    /// Compares quiet rooms' heads with their logs and resyncs the ones
    /// behind (see [`Hub::quiet_rooms`]).
    async fn quiet_watch(self: Arc<Rooms>, shutdown: CancellationToken) {
        use futures_util::StreamExt;
        let mut tick = tokio::time::interval(QUIET_WATCH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let checks = self
                .hub
                .quiet_rooms(std::time::Instant::now())
                .into_iter()
                .map(|(room, head)| {
                    let me = &self;
                    async move {
                        match me.store.latest_seq(&room).await {
                            Ok(latest) if latest > head => me.request_resync(&room),
                            Ok(_) => {}
                            // The room's next check, a little later, tries again.
                            Err(e) => tracing::debug!(room, error = %e, "quiet-room check failed"),
                        }
                    }
                });
            futures_util::stream::iter(checks)
                .buffer_unordered(QUIET_WATCH_READS)
                .collect::<()>()
                .await;
        }
    }

    async fn resync_worker(
        self: Arc<Rooms>,
        mut requests: mpsc::UnboundedReceiver<String>,
        shutdown: CancellationToken,
    ) {
        loop {
            let room = tokio::select! {
                _ = shutdown.cancelled() => return,
                room = requests.recv() => match room { Some(room) => room, None => return },
            };
            let Some(head) = self.hub.begin_resync(&room) else {
                continue;
            };
            self.metrics.resyncs.inc();
            match self.resync(&room, head).await {
                Ok(Arrival::Gap) => self.request_resync(&room),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(room, error = %e, "resync failed; retrying");
                    self.hub.abandon_resync(&room);
                    let me = Arc::clone(&self);
                    tokio::spawn(async move {
                        tokio::time::sleep(RESYNC_RETRY).await;
                        me.request_resync(&room);
                    });
                }
            }
        }
    }

    /// Re-reads the room log after `head` and hands it to the feed.
    async fn resync(&self, room: &str, head: u64) -> Result<Arrival, StoreError> {
        let latest = self.store.latest_seq(room).await?;
        if latest < head {
            // The store lost writes it had acknowledged (restart without
            // persistence, or with `everysec`). Never reuse a seq members saw.
            self.metrics.error("seq_rollback");
            tracing::warn!(room, head, latest, "room seq went backwards; raising it");
            self.store.raise_seq(room, head).await?;
            return Ok(self.hub.finish_resync(room, Vec::new()));
        }
        let mut deliveries = Vec::new();
        let mut from = head + 1;
        while from <= latest {
            let to = latest.min(from + FETCH_CHUNK * 4 - 1);
            match self.store.range(room, from, to).await {
                Ok(events) => deliveries.extend(events.into_iter().map(|e| Delivery::new(room, e))),
                Err(StoreError::Trimmed(_)) => {
                    tracing::error!(room, from, "events missed are no longer in the log");
                    self.hub.skip_to(room, latest);
                    return Ok(Arrival::Applied);
                }
                Err(e) => return Err(e),
            }
            from = to + 1;
        }
        Ok(self.hub.finish_resync(room, deliveries))
    }
}
