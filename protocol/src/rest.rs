//! JSON bodies of the REST API (`/api/rooms`, `/api/servers`, `/health`).

use serde::{Deserialize, Serialize};

/// `POST /api/rooms` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    pub game: String,
    pub max_players: u32,
}

/// `POST /api/rooms` response: the room and the replica that should host it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreated {
    pub room: String,
    pub server: String,
    pub ws_url: String,
}

/// `GET /api/rooms/{code}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    pub game: String,
    pub max_players: u32,
    /// Seats held: connected players plus disconnected ones whose session can still resume.
    pub members: u32,
    /// Latest event sequence number (0 before the first event).
    pub seq: u64,
}

/// One live replica in `GET /api/servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub server: String,
    pub ws_url: String,
    pub connections: u64,
    pub rooms: u64,
}

/// `GET /health` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub server_id: String,
    /// `ok`, `degraded` (the state store is unreachable) or `draining`.
    pub status: String,
    pub state: String,
    pub uptime_s: u64,
    pub connections: u64,
    pub rooms: u64,
    /// Rooms this replica had members in that the state store no longer
    /// knows (lost data); `status` is `degraded` for a minute after each.
    #[serde(default)]
    pub rooms_lost: u64,
    /// Absent in memory mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisHealth>,
}

/// The Redis part of `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisHealth {
    /// `up` or `down`.
    pub status: String,
    /// Round trip of a `PING`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_ms: Option<f64>,
    /// Whether the replica's Pub/Sub subscription is live.
    pub subscribed: bool,
}
