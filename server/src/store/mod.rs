//! The state store: rooms, seats, sessions, each room's event log, the replica
//! registry, and the bus that carries appended events to every replica.
//!
//! `Store` is implemented twice: `RedisStore` (tier 2: shared by every
//! replica) and `MemoryStore` (tier 1: one process). Both push what they
//! append, or hear appended elsewhere, into one [`BusMsg`] channel, so the
//! fan-out path above them is the same code in both modes.

mod bus;
mod cluster;
mod layout;
mod link;
mod memory;
mod primary;
mod redis;
mod scripts;

use std::time::Duration;

use async_trait::async_trait;
use tierlab_protocol::{Data, ErrorCode, RoomInfo, ServerEntry};
use tokio::sync::mpsc::UnboundedSender;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// What a new room asks for.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub game: String,
    pub max_players: u32,
}

/// Who holds a seat: enough to refresh, release or give it up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatRef {
    pub room: String,
    pub player: String,
    pub session: String,
    /// Names the connection that took or took back the seat; a session is
    /// live on one connection at a time, and an act from any other holder
    /// is refused with `Replaced`.
    pub holder: String,
}

/// A seat taken by `join` or taken back by a resume.
#[derive(Debug, Clone)]
pub struct Seat {
    pub seat: SeatRef,
    /// Latest seq of the room at the moment the seat was taken.
    pub seq: u64,
    pub members: u32,
    /// The seq of the session's first join: a resume never replays what
    /// came before the player was there.
    pub floor: u64,
}

/// A fresh join as the store needs it.
#[derive(Debug, Clone, Copy)]
pub struct Joining<'a> {
    pub name: &'a str,
    pub key: Option<&'a str>,
    pub holder: &'a str,
}

/// An act as the store appends it.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    pub id: u64,
    pub data: &'a Data,
    pub key: Option<&'a str>,
}

/// Keyed acts per room whose seqs a retry can still learn, and keyed joins
/// (at least) whose seats a retry can still get.
pub const ACT_KEY_WINDOW: usize = 256;
pub const JOIN_KEY_WINDOW: usize = 256;

/// One entry of a room's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub seq: u64,
    pub from: String,
    pub id: u64,
    pub data: Data,
    /// Wall-clock time of the append, µs since the Unix epoch (for the
    /// fan-out latency metric only; never used for ordering).
    pub ts_us: u64,
}

/// What the bus delivers to the replica's dispatcher.
#[derive(Debug)]
pub enum BusMsg {
    /// An event appended to `room` by some replica.
    Event { room: String, event: LoggedEvent },
    /// The subscription was (re-)established: anything may have been missed.
    Reconnected,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no such room")]
    UnknownRoom,
    #[error("room is full")]
    RoomFull,
    #[error("session expired or unknown")]
    SessionExpired,
    #[error("events after seq {0} are no longer in the room log")]
    Trimmed(u64),
    /// The store refused or could not be reached: nothing was written.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The request reached the store, or may have, but no answer came: it
    /// may or may not have been applied. A retry with the same key tells.
    #[error("state store did not answer: {0}; the request may have been applied, retry with the same key")]
    UnknownOutcome(String),
    /// Another connection resumed the session and holds it now.
    #[error("the session was resumed on another connection")]
    Replaced,
    #[error("{0}")]
    Invalid(&'static str),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::UnknownRoom => ErrorCode::UnknownRoom,
            StoreError::RoomFull => ErrorCode::RoomFull,
            StoreError::SessionExpired | StoreError::Trimmed(_) => ErrorCode::SessionExpired,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::UnknownOutcome(_) => ErrorCode::UnknownOutcome,
            StoreError::Replaced => ErrorCode::Replaced,
            StoreError::Invalid(_) => ErrorCode::BadRequest,
        }
    }
}

/// Health of the store as `/health` reports it.
#[derive(Debug, Clone, Copy)]
pub struct StoreHealth {
    pub ping: Option<Duration>,
    pub subscribed: bool,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Creates a room hosted by replica `host`, with a fresh unique code; a
    /// retry with the same `key` gets the room the first attempt made.
    async fn create_room(
        &self,
        spec: &RoomSpec,
        host: &str,
        key: Option<&str>,
    ) -> Result<String, StoreError>;
    async fn room_info(&self, room: &str) -> Result<Option<RoomInfo>, StoreError>;
    /// Takes a new seat for `holder` (fails with `RoomFull` when every seat
    /// is held); a retry with the same `key` gets the seat the first took.
    async fn join(&self, room: &str, entry: &Joining<'_>) -> Result<Seat, StoreError>;
    /// Takes back the seat of `session` for `holder` (fails with
    /// `SessionExpired`).
    async fn resume(&self, room: &str, session: &str, holder: &str) -> Result<Seat, StoreError>;
    /// Gives the seat up for good.
    async fn leave(&self, seat: &SeatRef) -> Result<(), StoreError>;
    /// Keeps seats alive while their players are connected (each refresh
    /// starts the session-TTL clock again; `release` ends a connection's).
    async fn refresh(&self, seats: &[SeatRef]) -> Result<(), StoreError>;
    /// The seat's connection went away without leaving: the seat is kept
    /// from new players for the seat hold, the session for its TTL.
    async fn release(&self, seat: &SeatRef) -> Result<(), StoreError>;
    /// Appends an act of `seat` to the room log and publishes it; returns
    /// its seq (the first one's, for a keyed retry within the window).
    async fn append(&self, seat: &SeatRef, act: &Act<'_>) -> Result<u64, StoreError>;
    /// Events `from..=to` of the room log, in order; `Trimmed` when `from` is gone.
    async fn range(&self, room: &str, from: u64, to: u64) -> Result<Vec<LoggedEvent>, StoreError>;
    async fn latest_seq(&self, room: &str) -> Result<u64, StoreError>;
    /// Raises the room's seq counter to at least `floor` (after a store lost
    /// recent writes, so new events never reuse a seq members already saw).
    /// Returns the counter's previous value.
    async fn raise_seq(&self, room: &str, floor: u64) -> Result<u64, StoreError>;
    /// Starts delivering the room's events to the bus.
    async fn subscribe(&self, room: &str) -> Result<(), StoreError>;
    /// Stops delivering the room's events — if `abandoned()` still holds
    /// once no subscribe of the same room can run concurrently (a join may
    /// have brought the room back since the caller decided to drop it).
    async fn unsubscribe(&self, room: &str, abandoned: &(dyn Fn() -> bool + Send + Sync));
    /// Announces this replica in the registry for `ttl`.
    async fn heartbeat(&self, me: &ServerEntry, ttl: Duration) -> Result<(), StoreError>;
    async fn servers(&self) -> Result<Vec<ServerEntry>, StoreError>;
    async fn deregister(&self, server: &str);
    async fn health(&self) -> StoreHealth;
}

/// Random codes tried before `create_room` gives up (31^6 ≈ 8.9e8 codes:
/// eight collisions in a row mean the space is nearly full).
const CREATE_ATTEMPTS: usize = 8;
/// Why a create was refused once `--max-rooms` rooms were made within one
/// room TTL.
const ROOM_QUOTA: &str =
    "the server's quota of new rooms (--max-rooms per room TTL) is spent; try again later";
const CODE_SPACE_CROWDED: &str = "could not find a free room code; the code space is crowded";

/// Where a store sends what its bus carries.
pub type BusSender = UnboundedSender<BusMsg>;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
