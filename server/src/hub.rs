//! Local fan-out: for every room with members on this replica, a *feed* that
//! turns the bus's at-most-once, possibly gappy stream of events into an
//! exactly-once, in-order stream per member.
//!
//! A feed keeps `head` (the highest seq it has delivered without a gap), a
//! short ring of the latest events, and events that arrived above a gap
//! (`pending`). Each member has a cursor: the last seq it was given. A member
//! is *live* when its cursor is at the head; live members get each new event
//! as the head advances. A member behind the head (a resume) is brought up
//! from the ring, or asks its session to fetch from the room log (`Advance::
//! Fetch`) — the hub never awaits anything, so all of this is plain, testable
//! code under a short lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tierlab_protocol::{Event, ServerFrame};
use tokio::sync::{mpsc, OnceCell};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{now_us, LoggedEvent, SeatRef};

pub type ConnId = u64;

/// An event ready to send: its frame is encoded once per replica and shared
/// by every member.
#[derive(Debug)]
pub struct Delivery {
    pub seq: u64,
    pub ts_us: u64,
    pub frame: Utf8Bytes,
}

impl Delivery {
    pub fn new(room: &str, event: LoggedEvent) -> Arc<Delivery> {
        let (seq, ts_us) = (event.seq, event.ts_us);
        let frame = ServerFrame::Event(Event {
            room: room.to_owned(),
            seq,
            from: event.from,
            id: event.id,
            data: event.data,
        })
        .encode();
        Arc::new(Delivery {
            seq,
            ts_us,
            frame: frame.into(),
        })
    }
}

/// A connection's way to receive events and to be told to go.
#[derive(Debug, Clone)]
pub struct Member {
    pub conn: ConnId,
    pub seat: SeatRef,
    pub outbox: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the member's queue overflowed (slow consumer).
    pub kick: CancellationToken,
}

/// What a member still needs after an attach or a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// At the head: new events will arrive through the outbox.
    Live,
    /// Events `from..=to` are older than the ring: fetch them from the log
    /// and hand them to [`Hub::replay`].
    Fetch { from: u64, to: u64 },
    /// The member is gone (detached or kicked).
    Gone,
}

/// What became of an event from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Applied,
    /// Not for us: no feed, or a duplicate.
    Ignored,
    /// Held above a gap: the room log must be re-read.
    Gap,
}

#[derive(Debug)]
struct Seated {
    member: Member,
    cursor: u64,
    live: bool,
}

#[derive(Debug)]
struct Feed {
    init: Arc<OnceCell<()>>,
    head: Option<u64>,
    recent: VecDeque<Arc<Delivery>>,
    pending: BTreeMap<u64, Arc<Delivery>>,
    members: HashMap<ConnId, Seated>,
    resyncing: bool,
    touched: Instant,
    /// When the next quiet-room check is due, and the wait before the one
    /// after it (see [`Hub::quiet_rooms`]); an advancing head resets both.
    next_check: Instant,
    check_gap: Duration,
}

/// Events held above a gap per room before the oldest are dropped (the
/// resync re-reads them from the log anyway).
const MAX_PENDING: usize = 4096;
const SHARDS: usize = 16;
/// A room whose head has not moved for this long gets its first log check;
/// each further check waits twice as long, up to `QUIET_CHECK_MAX`.
pub const QUIET_CHECK_FIRST: Duration = Duration::from_secs(1);
const QUIET_CHECK_MAX: Duration = Duration::from_secs(16);

impl Feed {
    fn new() -> Feed {
        Feed {
            init: Arc::new(OnceCell::new()),
            head: None,
            recent: VecDeque::new(),
            pending: BTreeMap::new(),
            members: HashMap::new(),
            resyncing: false,
            touched: Instant::now(),
            next_check: Instant::now() + QUIET_CHECK_FIRST,
            check_gap: QUIET_CHECK_FIRST,
        }
    }

    fn ring_get(&self, seq: u64) -> Option<&Arc<Delivery>> {
        let first = self.recent.front()?.seq;
        self.recent
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    fn hold(&mut self, delivery: Arc<Delivery>) {
        self.pending.insert(delivery.seq, delivery);
        if self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
    }
}

/// Sends to a member; false if it must be dropped (queue full or closed).
fn offer(member: &Member, delivery: &Delivery, metrics: &Metrics) -> bool {
    match member.outbox.try_send(delivery.frame.clone()) {
        Ok(()) => {
            metrics.events_out.inc();
            spend();
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics.error("slow_consumer");
            member.kick.cancel();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Nanoseconds of CPU burnt per delivery (`--spend-per-delivery`, a known
/// regression that proves the A/B gate). Process-wide, since a process has
/// one hub and the knob must reach the innermost loop without a parameter
/// in every call on the way; zero — one relaxed load — unless asked.
static SPEND_NS: AtomicU64 = AtomicU64::new(0);

/// Sets the CPU time every later delivery burns.
pub fn spend_per_delivery(time: Duration) {
    SPEND_NS.store(
        u64::try_from(time.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn spend() {
    let ns = SPEND_NS.load(Ordering::Relaxed);
    if ns == 0 {
        return;
    }
    let until = Instant::now() + Duration::from_nanos(ns);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[derive(Debug)]
pub struct Hub {
    shards: Vec<Mutex<HashMap<String, Feed>>>,
    hasher: RandomState,
    ring: usize,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>, ring: usize) -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            ring: ring.max(1),
            metrics,
        }
    }

    fn shard(&self, room: &str) -> MutexGuard<'_, HashMap<String, Feed>> {
        let index = (self.hasher.hash_one(room) as usize) % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_feed<T>(&self, room: &str, f: impl FnOnce(&mut Feed) -> T) -> Option<T> {
        self.shard(room).get_mut(room).map(f)
    }

    /// The feed's one-time initialisation (subscribe, read the head), creating
    /// the feed if needed. Everyone joining the room awaits the same cell.
    pub fn feed_init(&self, room: &str) -> Arc<OnceCell<()>> {
        let mut shard = self.shard(room);
        let created = !shard.contains_key(room);
        let feed = shard.entry(room.to_owned()).or_insert_with(Feed::new);
        feed.touched = Instant::now();
        let init = Arc::clone(&feed.init);
        drop(shard);
        if created {
            self.metrics.rooms.inc();
        }
        init
    }

    /// Whether the room has a feed here (the dispatcher skips encoding frames
    /// for rooms nobody here reads).
    pub fn has_feed(&self, room: &str) -> bool {
        self.shard(room).contains_key(room)
    }

    /// Sets the head of a feed whose subscription is now live. Returns `Gap`
    /// when events that arrived meanwhile leave a hole.
    pub fn init_head(&self, room: &str, seq: u64) -> Arrival {
        let metrics = Arc::clone(&self.metrics);
        let ring = self.ring;
        self.with_feed(room, |feed| {
            if feed.head.is_none() {
                feed.head = Some(seq);
                feed.pending.retain(|s, _| *s > seq);
            }
            drain_pending(feed, ring, &metrics)
        })
        .unwrap_or(Arrival::Ignored)
    }

    /// Takes one event from the bus.
    pub fn arrive(&self, room: &str, delivery: Arc<Delivery>) -> Arrival {
        let metrics = Arc::clone(&self.metrics);
        let ring = self.ring;
        self.with_feed(room, |feed| match feed.head {
            None => {
                feed.hold(delivery);
                Arrival::Ignored
            }
            Some(head) if delivery.seq <= head => Arrival::Ignored,
            Some(head) if delivery.seq == head + 1 => {
                apply(feed, delivery, ring, &metrics);
                drain_pending(feed, ring, &metrics)
            }
            Some(_) => {
                feed.hold(delivery);
                Arrival::Gap
            }
        })
        .unwrap_or(Arrival::Ignored)
    }

    /// Claims the room's resync, returning the head to re-read from; `None`
    /// if one is already running or the feed is gone or not yet initialised.
    pub fn begin_resync(&self, room: &str) -> Option<u64> {
        self.with_feed(room, |feed| {
            if feed.resyncing {
                return None;
            }
            let head = feed.head?;
            feed.resyncing = true;
            Some(head)
        })
        .flatten()
    }

    /// Ends a resync with the events re-read from the log (in order, from the
    /// head on). Returns `Gap` if a hole remains.
    pub fn finish_resync(&self, room: &str, events: Vec<Arc<Delivery>>) -> Arrival {
        let metrics = Arc::clone(&self.metrics);
        let ring = self.ring;
        self.with_feed(room, |feed| {
            feed.resyncing = false;
            for delivery in events {
                if feed.head.is_some_and(|h| delivery.seq == h + 1) {
                    apply(feed, delivery, ring, &metrics);
                }
            }
            drain_pending(feed, ring, &metrics)
        })
        .unwrap_or(Arrival::Ignored)
    }

    /// Gives up on events that are no longer in the log: moves the head to
    /// `seq` and every member with it. What was skipped is lost, and counted.
    pub fn skip_to(&self, room: &str, seq: u64) {
        let metrics = Arc::clone(&self.metrics);
        let ring = self.ring;
        self.with_feed(room, |feed| {
            feed.resyncing = false;
            let head = feed.head.unwrap_or(0);
            if seq > head {
                metrics.error("events_skipped");
                feed.head = Some(seq);
                feed.recent.clear();
                for seated in feed.members.values_mut() {
                    seated.cursor = seated.cursor.max(seq);
                }
                feed.pending.retain(|s, _| *s > seq);
                drain_pending(feed, ring, &metrics);
            }
        });
    }

    /// Cancels a claimed resync so a later request can retry it.
    pub fn abandon_resync(&self, room: &str) {
        self.with_feed(room, |feed| feed.resyncing = false);
    }

    /// Seats a member whose last seen seq is `cursor`; also says how many
    /// bytes of frames it was handed from the ring to catch up.
    pub fn attach(&self, room: &str, member: Member, cursor: u64) -> (Advance, usize) {
        let metrics = Arc::clone(&self.metrics);
        self.with_feed(room, |feed| {
            let conn = member.conn;
            feed.touched = Instant::now();
            feed.members.insert(
                conn,
                Seated {
                    member,
                    cursor,
                    live: false,
                },
            );
            let mut offered = 0;
            (advance(feed, conn, &metrics, &mut offered), offered)
        })
        .unwrap_or((Advance::Gone, 0))
    }

    /// Takes events fetched for a member that is catching up. Returns the
    /// ones to send now, in order, and what the member needs next.
    pub fn replay(
        &self,
        room: &str,
        conn: ConnId,
        events: Vec<Arc<Delivery>>,
    ) -> (Vec<Arc<Delivery>>, Advance) {
        let metrics = Arc::clone(&self.metrics);
        self.with_feed(room, |feed| {
            let Some(seated) = feed.members.get_mut(&conn) else {
                return (Vec::new(), Advance::Gone);
            };
            let mut send = Vec::new();
            for delivery in events {
                if delivery.seq == seated.cursor + 1 {
                    seated.cursor = delivery.seq;
                    send.push(delivery);
                }
            }
            metrics.events_out.inc_by(send.len() as u64);
            (send, advance(feed, conn, &metrics, &mut 0))
        })
        .unwrap_or((Vec::new(), Advance::Gone))
    }

    pub fn detach(&self, room: &str, conn: ConnId) {
        self.with_feed(room, |feed| {
            feed.members.remove(&conn);
            feed.touched = Instant::now();
        });
    }

    /// Every seat held by a connection on this replica.
    pub fn seats(&self) -> Vec<SeatRef> {
        self.each_feed(|_, feed| {
            feed.members
                .values()
                .map(|s| s.member.seat.clone())
                .collect()
        })
    }

    /// Rooms with an initialised feed (the ones a reconnect must re-read).
    pub fn rooms(&self) -> Vec<String> {
        self.each_feed(|room, feed| feed.head.map(|_| room.to_owned()).into_iter().collect())
    }

    /// Occupied rooms whose head has been still long enough to be due a look
    /// at the log, with their heads. Pub/Sub is at-most-once and a gap is
    /// noticed only when a later event arrives, so a room's *last* event,
    /// if dropped, would never be: these checks are what finds it. Checks
    /// back off while a room stays quiet, so idle rooms cost little.
    pub fn quiet_rooms(&self, now: Instant) -> Vec<(String, u64)> {
        let mut due = Vec::new();
        for shard in &self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (room, feed) in shard.iter_mut() {
                let Some(head) = feed.head else { continue };
                if feed.members.is_empty() || feed.resyncing || now < feed.next_check {
                    continue;
                }
                feed.check_gap = (feed.check_gap * 2).min(QUIET_CHECK_MAX);
                feed.next_check = now + feed.check_gap;
                due.push((room.clone(), head));
            }
        }
        due
    }

    /// Rooms with at least one member here.
    pub fn occupied_rooms(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                shard
                    .values()
                    .filter(|feed| !feed.members.is_empty())
                    .count() as u64
            })
            .sum()
    }

    /// Drops feeds without members untouched for `idle`; returns their rooms
    /// so the caller can unsubscribe them.
    pub fn sweep(&self, idle: Duration) -> Vec<String> {
        let mut removed = Vec::new();
        for shard in &self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            shard.retain(|room, feed| {
                let keep = !feed.members.is_empty() || feed.touched.elapsed() < idle;
                if !keep {
                    removed.push(room.clone());
                }
                keep
            });
        }
        self.metrics.rooms.dec_by(removed.len() as i64);
        removed
    }

    fn each_feed<T>(&self, mut f: impl FnMut(&str, &Feed) -> Vec<T>) -> Vec<T> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (room, feed) in shard.iter() {
                out.extend(f(room, feed));
            }
        }
        out
    }
}

/// Advances the head by one event and hands it to every live member.
fn apply(feed: &mut Feed, delivery: Arc<Delivery>, ring: usize, metrics: &Metrics) {
    feed.head = Some(delivery.seq);
    feed.check_gap = QUIET_CHECK_FIRST;
    feed.next_check = Instant::now() + QUIET_CHECK_FIRST;
    let mut dropped = Vec::new();
    for (conn, seated) in feed.members.iter_mut() {
        if seated.live && seated.cursor + 1 == delivery.seq {
            if offer(&seated.member, &delivery, metrics) {
                seated.cursor = delivery.seq;
            } else {
                dropped.push(*conn);
            }
        }
    }
    for conn in dropped {
        feed.members.remove(&conn);
    }
    if !feed.members.is_empty() {
        let lag_us = now_us().saturating_sub(delivery.ts_us);
        metrics.fanout_latency.observe(lag_us as f64 / 1e6);
    }
    feed.recent.push_back(delivery);
    while feed.recent.len() > ring {
        feed.recent.pop_front();
    }
}

/// Applies held events that now follow the head; `Gap` if a hole remains.
fn drain_pending(feed: &mut Feed, ring: usize, metrics: &Metrics) -> Arrival {
    let Some(mut head) = feed.head else {
        return Arrival::Ignored;
    };
    feed.pending.retain(|seq, _| *seq > head);
    while let Some(next) = feed.pending.remove(&(head + 1)) {
        apply(feed, next, ring, metrics);
        head += 1;
    }
    if feed.pending.is_empty() {
        Arrival::Applied
    } else {
        Arrival::Gap
    }
}

/// Brings a member as close to the head as the ring allows, adding the
/// bytes it offered to `offered`.
fn advance(feed: &mut Feed, conn: ConnId, metrics: &Metrics, offered: &mut usize) -> Advance {
    let head = feed.head;
    loop {
        let Some(seated) = feed.members.get(&conn) else {
            return Advance::Gone;
        };
        let cursor = seated.cursor;
        let Some(head) = head.filter(|h| cursor < *h) else {
            if let Some(seated) = feed.members.get_mut(&conn) {
                seated.live = true;
            }
            return Advance::Live;
        };
        let Some(next) = feed.ring_get(cursor + 1).cloned() else {
            return Advance::Fetch {
                from: cursor + 1,
                to: head,
            };
        };
        if offer(&seated.member, &next, metrics) {
            *offered += next.frame.len();
            if let Some(seated) = feed.members.get_mut(&conn) {
                seated.cursor = next.seq;
            }
        } else {
            feed.members.remove(&conn);
            return Advance::Gone;
        }
    }
}

#[cfg(test)]
mod tests;
