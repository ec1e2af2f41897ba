//! The `[protocol]` section: which wire the players speak, and for a
//! Socket.IO game, how its events map onto join, act and broadcast. The
//! reference protocol needs no mapping; a Socket.IO game names its own.

use serde::{Deserialize, Serialize};
use tierlab_record::setup::ProtocolKind;

/// How a player names its room in the join event's arguments: every string
/// `"{room}"` in `join_args` is replaced by the room's name.
pub const ROOM_PLACEHOLDER: &str = "{room}";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    #[serde(default)]
    pub kind: ProtocolKind,
    /// Socket.IO: the namespace players connect to.
    #[serde(default = "Protocol::default_namespace")]
    pub namespace: String,
    /// Socket.IO: the payload of the namespace connect (`40{…}`), for
    /// servers that authenticate there (`{ token = "…" }`).
    #[serde(default)]
    pub auth: Option<toml::Table>,
    /// Socket.IO: the event that puts a player in a room, acknowledged by
    /// the server.
    #[serde(default = "Protocol::default_join_event")]
    pub join_event: String,
    /// Socket.IO: the join event's arguments, `"{room}"` standing for the
    /// room (`["{room}"]`, or `[{ room = "{room}" }]` for an object).
    #[serde(default = "Protocol::default_join_args")]
    pub join_args: Vec<toml::Value>,
    /// Socket.IO: the event a player acts with; its one argument is an
    /// object carrying the player's stamp (`t`, `p`, `n`, `pad`).
    #[serde(default = "Protocol::default_act_event")]
    pub act_event: String,
    /// Socket.IO: the field of the act's object that names the room (empty:
    /// the server knows the player's room without being told).
    #[serde(default = "Protocol::default_act_room_field")]
    pub act_room_field: String,
    /// Socket.IO: the event members receive, its first argument the act's
    /// object as the sender sent it.
    #[serde(default = "Protocol::default_broadcast_event")]
    pub broadcast_event: String,
    /// Socket.IO: whether acts ask for an ack. Without, an act counts as
    /// acknowledged once written to the socket, and no ack latency exists.
    #[serde(default = "Protocol::default_acks")]
    pub acks: bool,
}

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol {
            kind: ProtocolKind::Tierlab,
            namespace: Protocol::default_namespace(),
            auth: None,
            join_event: Protocol::default_join_event(),
            join_args: Protocol::default_join_args(),
            act_event: Protocol::default_act_event(),
            act_room_field: Protocol::default_act_room_field(),
            broadcast_event: Protocol::default_broadcast_event(),
            acks: Protocol::default_acks(),
        }
    }
}

impl Protocol {
    fn default_namespace() -> String {
        "/".into()
    }
    fn default_join_event() -> String {
        "join".into()
    }
    fn default_join_args() -> Vec<toml::Value> {
        vec![toml::Value::String(ROOM_PLACEHOLDER.into())]
    }
    fn default_act_event() -> String {
        "act".into()
    }
    fn default_act_room_field() -> String {
        "room".into()
    }
    fn default_broadcast_event() -> String {
        "event".into()
    }
    fn default_acks() -> bool {
        true
    }

    /// What is wrong with the mapping, naming the field.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.kind == ProtocolKind::Tierlab {
            return None;
        }
        if !self.namespace.starts_with('/') || self.namespace.contains(',') {
            return Some((
                "protocol.namespace",
                "must start with '/' and hold no ','".into(),
            ));
        }
        for (field, name) in [
            ("protocol.join_event", &self.join_event),
            ("protocol.act_event", &self.act_event),
            ("protocol.broadcast_event", &self.broadcast_event),
        ] {
            if name.is_empty() {
                return Some((field, "must name an event".into()));
            }
        }
        if !self.join_args.iter().any(names_room) {
            return Some((
                "protocol.join_args",
                format!("must name the room: put \"{ROOM_PLACEHOLDER}\" where the room goes"),
            ));
        }
        None
    }

    /// The namespace connect's payload as JSON.
    pub fn auth_json(&self) -> Option<serde_json::Value> {
        self.auth
            .as_ref()
            .map(|table| fill(&toml::Value::Table(table.clone()), ""))
    }

    /// The join event's arguments as JSON, with the room filled in.
    pub fn join_args_for(&self, room: &str) -> Vec<serde_json::Value> {
        self.join_args.iter().map(|v| fill(v, room)).collect()
    }
}

fn names_room(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => s.contains(ROOM_PLACEHOLDER),
        toml::Value::Array(items) => items.iter().any(names_room),
        toml::Value::Table(table) => table.values().any(names_room),
        _ => false,
    }
}

fn fill(value: &toml::Value, room: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.replace(ROOM_PLACEHOLDER, room)),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::from(*f),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(|v| fill(v, room)).collect()),
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), fill(v, room)))
                .collect(),
        ),
    }
}
