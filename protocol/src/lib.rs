//! Wire types shared by the reference server and the swarm: the WebSocket frames
//! each side sends (`frame`) and the JSON bodies of the REST API (`rest`).
//!
//! Nothing here knows about sockets, Redis or timing; both halves of Tierlab
//! depend on this crate so that a frame the server writes is, by construction,
//! one the players can read. `docs/protocol.md` describes the same types for
//! people.

pub mod frame;
pub mod rest;
pub mod room_code;

pub use frame::{
    is_idempotency_key, ClientFrame, CloseReason, Data, ErrorCode, Event, EventView, FrameError,
    JoinMode, ServerFrame, MAX_KEY,
};
pub use rest::{CreateRoom, Health, RedisHealth, RoomCreated, RoomInfo, ServerEntry};

/// Largest `data` payload an `act` may carry, in bytes of JSON text, unless a
/// server is configured otherwise.
pub const DEFAULT_MAX_ACT_DATA: usize = 4 * 1024;

/// Largest text frame a server accepts by default; larger ones get `too_large`.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;
