//! WebSocket frames: one JSON object per text frame, discriminated by `type`.
//!
//! Each direction has one enum that both encodes and decodes. Decoding goes
//! through a flat, borrowing "wire" struct instead of serde's internally tagged
//! enums, for two reasons: serde cannot carry a `RawValue` (the untouched `data`
//! of an act) through an internally tagged enum, and a flat struct lets the
//! error name the exact field that is missing or wrong.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Why a frame could not be decoded. Servers answer every one of these with an
/// `error` frame of code `bad_request`, echoing `id` when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("frame has no `type` field")]
    MissingType,
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("`{kind}` frame is missing field `{field}`")]
    MissingField {
        kind: &'static str,
        field: &'static str,
        id: Option<u64>,
    },
    #[error("`{kind}` frame: {message}")]
    Invalid {
        kind: &'static str,
        message: &'static str,
        id: Option<u64>,
    },
}

impl FrameError {
    /// The frame's `id`, when it carried one that could be read.
    pub fn id(&self) -> Option<u64> {
        match self {
            FrameError::MissingField { id, .. } | FrameError::Invalid { id, .. } => *id,
            _ => None,
        }
    }
}

/// Error codes carried by `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownRoom,
    RoomFull,
    RateLimited,
    TooLarge,
    SessionExpired,
    Unavailable,
    UnknownOutcome,
    Replaced,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownRoom,
        ErrorCode::RoomFull,
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::SessionExpired,
        ErrorCode::Unavailable,
        ErrorCode::UnknownOutcome,
        ErrorCode::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::UnknownOutcome => "unknown_outcome",
            ErrorCode::Replaced => "replaced",
        }
    }
}

/// Why the server is about to close a connection (sent as a `close` frame just
/// before the WebSocket close handshake, so clients that cannot read close
/// reasons still learn it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The replica is shutting down; reconnect (anywhere) and resume.
    Draining,
    /// The client read too slowly and its send queue filled.
    SlowConsumer,
    /// Too many rejected frames.
    Abuse,
    /// The session was resumed on another connection, which now holds it.
    Replaced,
    /// The room no longer exists (the state store lost it).
    RoomGone,
}

/// The opaque payload of an act or event: raw JSON text the server forwards
/// byte for byte and never parses.
#[derive(Debug, Clone)]
pub struct Data(Box<RawValue>);

impl Data {
    /// Checks that `json` is one JSON value and wraps it.
    pub fn from_json(json: String) -> Result<Data, FrameError> {
        RawValue::from_string(json).map(Data).map_err(malformed)
    }

    /// The JSON text, exactly as the sender wrote it.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.get() == other.get()
    }
}

impl From<&RawValue> for Data {
    fn from(raw: &RawValue) -> Data {
        Data(raw.to_owned())
    }
}

/// How a `join` enters its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinMode {
    /// A new seat under a display name. A retry with the same `key` gets
    /// the seat the first attempt took, not a second one.
    Fresh { name: String, key: Option<String> },
    /// Take back a seat held by `session`, replaying every event after `since`
    /// (none when `since` is absent).
    Resume { session: String, since: Option<u64> },
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `key`: a retry with the same key gets the room the first one made.
    Create {
        game: String,
        max_players: u32,
        key: Option<String>,
    },
    Join {
        room: String,
        mode: JoinMode,
    },
    /// `key`: a retry with the same key (within the room's window) is
    /// answered with the first attempt's seq instead of appended again.
    Act {
        id: u64,
        data: Data,
        key: Option<String>,
    },
    Leave,
    Ping {
        id: u64,
    },
}

/// One event of a room's log as members receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub room: String,
    pub seq: u64,
    pub from: String,
    pub id: u64,
    pub data: Data,
}

/// Frames a server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Welcome {
        server: String,
    },
    Created {
        room: String,
    },
    Joined {
        room: String,
        player: String,
        session: String,
        seq: u64,
        members: u32,
    },
    Ack {
        id: u64,
        seq: u64,
    },
    Event(Event),
    Pong {
        id: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        id: Option<u64>,
    },
    Close {
        reason: CloseReason,
    },
}

/// Every field any client frame has; `type` picks which ones matter.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        borrow,
        deserialize_with = "present"
    )]
    data: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    session: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    game: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_players: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    key: Option<Cow<'a, str>>,
}

/// Longest idempotency key a client may send.
pub const MAX_KEY: usize = 64;

/// Whether `key` can be an idempotency key: 1–64 visible ASCII characters.
pub fn is_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The frame's `key`, checked.
fn key_of(w: &ClientWire<'_>, kind: &'static str) -> Result<Option<String>, FrameError> {
    match w.key.as_deref() {
        None => Ok(None),
        Some(key) if is_idempotency_key(key) => Ok(Some(key.to_owned())),
        Some(_) => Err(FrameError::Invalid {
            kind,
            message: "`key` must be 1-64 visible ASCII characters",
            id: w.id,
        }),
    }
}

/// Every field any server frame has.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ServerWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    server: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    player: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    session: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    members: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        borrow,
        deserialize_with = "present"
    )]
    data: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<CloseReason>,
}

/// Reads a field that is present as `Some`, even when its value is `null`:
/// `"data": null` is a payload, not a missing one.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn malformed(e: serde_json::Error) -> FrameError {
    FrameError::Malformed(e.to_string())
}

/// Reads field `$field` of wire struct `$w`, or fails naming frame `$kind`.
macro_rules! need {
    ($w:ident, $kind:literal, $field:ident) => {
        $w.$field.ok_or(FrameError::MissingField {
            kind: $kind,
            field: stringify!($field),
            id: $w.id,
        })?
    };
}

impl ClientFrame {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ClientFrame, FrameError> {
        let w: ClientWire<'_> = serde_json::from_str(text).map_err(malformed)?;
        let kind = w.kind.as_deref().ok_or(FrameError::MissingType)?;
        Ok(match kind {
            "create" => ClientFrame::Create {
                key: key_of(&w, "create")?,
                game: need!(w, "create", game).into_owned(),
                max_players: need!(w, "create", max_players),
            },
            "join" => {
                let key = key_of(&w, "join")?;
                let room = need!(w, "join", room).into_owned();
                let mode = match (w.name, w.session) {
                    (Some(name), None) => JoinMode::Fresh {
                        name: name.into_owned(),
                        key,
                    },
                    (None, Some(session)) => JoinMode::Resume {
                        session: session.into_owned(),
                        since: w.since,
                    },
                    (Some(_), Some(_)) => {
                        return Err(FrameError::Invalid {
                            kind: "join",
                            message:
                                "give either `name` (new seat) or `session` (resume), not both",
                            id: w.id,
                        })
                    }
                    (None, None) => {
                        return Err(FrameError::Invalid {
                            kind: "join",
                            message: "needs `name` (new seat) or `session` (resume)",
                            id: w.id,
                        })
                    }
                };
                ClientFrame::Join { room, mode }
            }
            "act" => ClientFrame::Act {
                key: key_of(&w, "act")?,
                id: need!(w, "act", id),
                data: need!(w, "act", data).into(),
            },
            "leave" => ClientFrame::Leave,
            "ping" => ClientFrame::Ping {
                id: need!(w, "ping", id),
            },
            other => return Err(FrameError::UnknownType(other.to_owned())),
        })
    }

    /// Encodes the frame as one JSON object.
    pub fn encode(&self) -> String {
        let mut w = ClientWire::default();
        let kind = match self {
            ClientFrame::Create {
                game,
                max_players,
                key,
            } => {
                w.game = Some(game.into());
                w.max_players = Some(*max_players);
                w.key = key.as_deref().map(Cow::Borrowed);
                "create"
            }
            ClientFrame::Join { room, mode } => {
                w.room = Some(room.into());
                match mode {
                    JoinMode::Fresh { name, key } => {
                        w.name = Some(name.into());
                        w.key = key.as_deref().map(Cow::Borrowed);
                    }
                    JoinMode::Resume { session, since } => {
                        w.session = Some(session.into());
                        w.since = *since;
                    }
                }
                "join"
            }
            ClientFrame::Act { id, data, key } => {
                w.id = Some(*id);
                w.data = Some(&data.0);
                w.key = key.as_deref().map(Cow::Borrowed);
                "act"
            }
            ClientFrame::Leave => "leave",
            ClientFrame::Ping { id } => {
                w.id = Some(*id);
                "ping"
            }
        };
        w.kind = Some(kind.into());
        to_json(&w)
    }
}

/// An `event` frame as a client reading thousands of them a second needs
/// it: its seq and its data, borrowed from the frame's text.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub seq: u64,
    pub data: &'a RawValue,
}

impl ServerFrame {
    /// An `event` frame's seq and data without copying them; `None` for any
    /// other frame (or a malformed event), which `decode` then explains.
    pub fn event_view(text: &str) -> Option<EventView<'_>> {
        let w: ServerWire<'_> = serde_json::from_str(text).ok()?;
        if w.kind.as_deref() != Some("event") || w.room.is_none() || w.from.is_none() {
            return None;
        }
        Some(EventView {
            seq: w.seq?,
            data: w.data?,
        })
    }

    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ServerFrame, FrameError> {
        let w: ServerWire<'_> = serde_json::from_str(text).map_err(malformed)?;
        let kind = w.kind.as_deref().ok_or(FrameError::MissingType)?;
        Ok(match kind {
            "welcome" => ServerFrame::Welcome {
                server: need!(w, "welcome", server).into_owned(),
            },
            "created" => ServerFrame::Created {
                room: need!(w, "created", room).into_owned(),
            },
            "joined" => ServerFrame::Joined {
                room: need!(w, "joined", room).into_owned(),
                player: need!(w, "joined", player).into_owned(),
                session: need!(w, "joined", session).into_owned(),
                seq: need!(w, "joined", seq),
                members: need!(w, "joined", members),
            },
            "ack" => ServerFrame::Ack {
                id: need!(w, "ack", id),
                seq: need!(w, "ack", seq),
            },
            "event" => ServerFrame::Event(Event {
                room: need!(w, "event", room).into_owned(),
                seq: need!(w, "event", seq),
                from: need!(w, "event", from).into_owned(),
                id: need!(w, "event", id),
                data: need!(w, "event", data).into(),
            }),
            "pong" => ServerFrame::Pong {
                id: need!(w, "pong", id),
            },
            "error" => ServerFrame::Error {
                code: need!(w, "error", code),
                message: w.message.map(Cow::into_owned).unwrap_or_default(),
                id: w.id,
            },
            "close" => ServerFrame::Close {
                reason: need!(w, "close", reason),
            },
            other => return Err(FrameError::UnknownType(other.to_owned())),
        })
    }

    /// Encodes the frame as one JSON object.
    pub fn encode(&self) -> String {
        let mut w = ServerWire::default();
        let kind = match self {
            ServerFrame::Welcome { server } => {
                w.server = Some(server.into());
                "welcome"
            }
            ServerFrame::Created { room } => {
                w.room = Some(room.into());
                "created"
            }
            ServerFrame::Joined {
                room,
                player,
                session,
                seq,
                members,
            } => {
                w.room = Some(room.into());
                w.player = Some(player.into());
                w.session = Some(session.into());
                w.seq = Some(*seq);
                w.members = Some(*members);
                "joined"
            }
            ServerFrame::Ack { id, seq } => {
                w.id = Some(*id);
                w.seq = Some(*seq);
                "ack"
            }
            ServerFrame::Event(e) => {
                w.room = Some((&e.room).into());
                w.seq = Some(e.seq);
                w.from = Some((&e.from).into());
                w.id = Some(e.id);
                w.data = Some(&e.data.0);
                "event"
            }
            ServerFrame::Pong { id } => {
                w.id = Some(*id);
                "pong"
            }
            ServerFrame::Error { code, message, id } => {
                w.code = Some(*code);
                w.message = Some(message.into());
                w.id = *id;
                "error"
            }
            ServerFrame::Close { reason } => {
                w.reason = Some(*reason);
                "close"
            }
        };
        w.kind = Some(kind.into());
        to_json(&w)
    }
}

fn to_json<T: Serialize>(wire: &T) -> String {
    // Serialising these structs cannot fail: every field is a string, an
    // integer, a unit enum or already-valid raw JSON.
    serde_json::to_string(wire).unwrap_or_else(|e| unreachable!("frame encoding failed: {e}"))
}

#[cfg(test)]
mod tests;
