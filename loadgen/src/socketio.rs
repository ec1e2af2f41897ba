//! Engine.IO v4 / Socket.IO v5 framing over the WebSocket transport
//! (`/socket.io/?EIO=4&transport=websocket`): one Engine.IO packet per
//! WebSocket text frame, Socket.IO packets inside Engine.IO `message`
//! packets. `Frame` both encodes and decodes, as the reference protocol's
//! frame types do. Binary attachments (Socket.IO types 5 and 6) are refused:
//! the players send and expect JSON only.
//!
//! Written here rather than taken from a crate: the client crates bring
//! their own transport and reconnection, which the swarm must own to
//! measure them, and the format is small.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Why a frame from a Socket.IO server could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    EngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    SocketType(char),
    #[error("binary Socket.IO packets are not supported")]
    Binary,
    #[error("namespace without its closing ','")]
    Namespace,
    #[error("bad JSON in a {what}: {detail}")]
    Json { what: &'static str, detail: String },
    #[error("{0}")]
    Shape(&'static str),
}

/// The server's `open` packet: the session and its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub sid: String,
    /// How often the server sends `ping`.
    pub ping_interval: Duration,
    /// How long it waits for `pong` before closing.
    pub ping_timeout: Duration,
    pub max_payload: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenJson {
    sid: String,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: Option<u64>,
}

/// One Socket.IO packet. Namespaces are `/` unless given.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// `0`: the client asks to join a namespace (optional auth payload);
    /// the server answers with `{"sid":…}`.
    Connect { nsp: String, data: Option<Value> },
    /// `1`
    Disconnect { nsp: String },
    /// `2`: `["name", args…]`, with an id when the sender wants an ack.
    Event {
        nsp: String,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3`: the answer to the event with the same id.
    Ack {
        nsp: String,
        id: u64,
        args: Vec<Value>,
    },
    /// `4`: the server refused the namespace.
    ConnectError { nsp: String, data: Value },
}

/// One Engine.IO packet, i.e. one WebSocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Open(Handshake),
    Close,
    Ping(String),
    Pong(String),
    Message(Packet),
    Upgrade,
    Noop,
}

impl Frame {
    pub fn decode(text: &str) -> Result<Frame, FrameError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(FrameError::Empty)?;
        let rest = chars.as_str();
        match kind {
            '0' => open(rest).map(Frame::Open),
            '1' => Ok(Frame::Close),
            '2' => Ok(Frame::Ping(rest.to_owned())),
            '3' => Ok(Frame::Pong(rest.to_owned())),
            '4' => Packet::decode(rest).map(Frame::Message),
            '5' => Ok(Frame::Upgrade),
            '6' => Ok(Frame::Noop),
            other => Err(FrameError::EngineType(other)),
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Frame::Open(h) => {
                let mut open = serde_json::json!({
                    "sid": h.sid,
                    "upgrades": [],
                    "pingInterval": h.ping_interval.as_millis() as u64,
                    "pingTimeout": h.ping_timeout.as_millis() as u64,
                });
                if let Some(max) = h.max_payload {
                    open["maxPayload"] = max.into();
                }
                format!("0{open}")
            }
            Frame::Close => "1".into(),
            Frame::Ping(data) => format!("2{data}"),
            Frame::Pong(data) => format!("3{data}"),
            Frame::Message(packet) => format!("4{}", packet.encode()),
            Frame::Upgrade => "5".into(),
            Frame::Noop => "6".into(),
        }
    }
}

fn open(json: &str) -> Result<Handshake, FrameError> {
    let open: OpenJson = serde_json::from_str(json).map_err(|e| FrameError::Json {
        what: "open packet",
        detail: e.to_string(),
    })?;
    Ok(Handshake {
        sid: open.sid,
        ping_interval: Duration::from_millis(open.ping_interval),
        ping_timeout: Duration::from_millis(open.ping_timeout),
        max_payload: open.max_payload,
    })
}

impl Packet {
    /// Decodes `<type>[<nsp>,][<id>][<json>]`.
    pub fn decode(text: &str) -> Result<Packet, FrameError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(FrameError::Empty)?;
        if matches!(kind, '5' | '6') {
            return Err(FrameError::Binary);
        }
        let (nsp, rest) = namespace(chars.as_str())?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (id, json) = rest.split_at(digits);
        let id = if id.is_empty() {
            None
        } else {
            Some(
                id.parse()
                    .map_err(|_| FrameError::Shape("ack id out of range"))?,
            )
        };
        let payload = |what| -> Result<Option<Value>, FrameError> {
            if json.is_empty() {
                return Ok(None);
            }
            serde_json::from_str(json)
                .map(Some)
                .map_err(|e| FrameError::Json {
                    what,
                    detail: e.to_string(),
                })
        };
        match kind {
            '0' => Ok(Packet::Connect {
                nsp,
                data: payload("connect packet")?,
            }),
            '1' => Ok(Packet::Disconnect { nsp }),
            '2' => {
                let args = array(payload("event")?, "an event must be an array")?;
                let mut args = args.into_iter();
                let Some(Value::String(name)) = args.next() else {
                    return Err(FrameError::Shape("an event must start with its name"));
                };
                Ok(Packet::Event {
                    nsp,
                    id,
                    name,
                    args: args.collect(),
                })
            }
            '3' => Ok(Packet::Ack {
                nsp,
                id: id.ok_or(FrameError::Shape("an ack needs an id"))?,
                args: array(payload("ack")?, "an ack must be an array")?,
            }),
            '4' => Ok(Packet::ConnectError {
                nsp,
                data: payload("connect error")?.unwrap_or(Value::Null),
            }),
            other => Err(FrameError::SocketType(other)),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let (kind, nsp) = match self {
            Packet::Connect { nsp, .. } => ('0', nsp),
            Packet::Disconnect { nsp } => ('1', nsp),
            Packet::Event { nsp, .. } => ('2', nsp),
            Packet::Ack { nsp, .. } => ('3', nsp),
            Packet::ConnectError { nsp, .. } => ('4', nsp),
        };
        out.push(kind);
        if nsp != "/" {
            let _ = write!(out, "{nsp},");
        }
        match self {
            Packet::Connect { data, .. } => {
                if let Some(data) = data {
                    let _ = write!(out, "{data}");
                }
            }
            Packet::Disconnect { .. } => {}
            Packet::Event { id, name, args, .. } => {
                if let Some(id) = id {
                    let _ = write!(out, "{id}");
                }
                let mut all = Vec::with_capacity(args.len() + 1);
                all.push(Value::String(name.clone()));
                all.extend(args.iter().cloned());
                let _ = write!(out, "{}", Value::Array(all));
            }
            Packet::Ack { id, args, .. } => {
                let _ = write!(out, "{id}{}", Value::Array(args.clone()));
            }
            Packet::ConnectError { data, .. } => {
                let _ = write!(out, "{data}");
            }
        }
        out
    }
}

/// `/admin,rest` → ("/admin", "rest"); anything else is the main namespace.
fn namespace(text: &str) -> Result<(String, &str), FrameError> {
    if !text.starts_with('/') {
        return Ok(("/".into(), text));
    }
    let (nsp, rest) = text.split_once(',').ok_or(FrameError::Namespace)?;
    Ok((nsp.to_owned(), rest))
}

fn array(value: Option<Value>, shape: &'static str) -> Result<Vec<Value>, FrameError> {
    match value {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(FrameError::Shape(shape)),
    }
}

#[cfg(test)]
mod tests;
