//! The Redis layout of the reference server, for the store and the buses
//! alike: the keys of a room (one hash tag, so one Cluster slot), the
//! registry's keys, the room's `meta`, and the two encodings of an event —
//! the bus payload the append script publishes and the stream entry it
//! writes.

use serde::{Deserialize, Serialize};
use tierlab_protocol::Data;

use super::{BusMsg, LoggedEvent};

// One hash tag for the registry, so its pipelines stay single-slot.
pub(super) const SERVERS_KEY: &str = "{tierlab}:servers";

/// Where a keyed `create` records the room it made (its own slot: the
/// room's code is not known until it is drawn).
pub(super) fn create_key(key: &str) -> String {
    format!("{{create:{key}}}")
}

/// Rooms created within one room TTL, scored by when each stops counting:
/// the server-wide room quota (`--max-rooms`).
pub(super) const CREATED_KEY: &str = "{tierlab}:rooms:created";

pub(super) fn server_key(id: &str) -> String {
    format!("{{tierlab}}:server:{id}")
}

/// The keys of one room, all in one hash slot.
pub(super) struct RoomKeys(String);

impl RoomKeys {
    pub(super) fn new(room: &str) -> RoomKeys {
        RoomKeys(format!("{{room:{room}}}"))
    }
    pub(super) fn meta(&self) -> String {
        format!("{}:meta", self.0)
    }
    pub(super) fn seq(&self) -> String {
        format!("{}:seq", self.0)
    }
    pub(super) fn log(&self) -> String {
        format!("{}:log", self.0)
    }
    pub(super) fn members(&self) -> String {
        format!("{}:members", self.0)
    }
    pub(super) fn session(&self, token: &str) -> String {
        format!("{}:session:{token}", self.0)
    }
    /// The window of keyed acts: `player key` → the seq the act got.
    pub(super) fn acts(&self) -> String {
        format!("{}:acts", self.0)
    }
    /// Keyed joins: key → `player session`.
    pub(super) fn joins(&self) -> String {
        format!("{}:joins", self.0)
    }
    pub(super) fn channel(&self) -> String {
        format!("{}:events", self.0)
    }
}

/// What a bus message on `channel` says, if it is one of ours.
pub(super) fn bus_event(channel: &str, payload: &[u8]) -> Option<BusMsg> {
    let room = room_of_channel(channel)?;
    let event = parse_published(payload)?;
    Some(BusMsg::Event {
        room: room.to_owned(),
        event,
    })
}

/// The room a bus channel belongs to.
fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("{room:")?.strip_suffix("}:events")
}

/// Stored as the room's `meta` string (one `SET NX` creates the room).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RoomMeta {
    pub game: String,
    pub max_players: u32,
    pub server: String,
}

/// Parses a bus payload: `seq \n ts_us \n id \n from \n data`.
fn parse_published(payload: &[u8]) -> Option<LoggedEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(5, '\n');
    let seq = parts.next()?.parse().ok()?;
    let ts_us = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let from = parts.next()?.to_owned();
    let data = Data::from_json(parts.next()?.to_owned()).ok()?;
    Some(LoggedEvent {
        seq,
        from,
        id,
        data,
        ts_us,
    })
}

/// Parses one XRANGE entry written by the append script.
pub(super) fn parse_entry(id: &str, fields: &[String]) -> Option<LoggedEvent> {
    let seq = id.split('-').next()?.parse().ok()?;
    let mut event = LoggedEvent {
        seq,
        from: String::new(),
        id: 0,
        data: Data::from_json("null".to_owned()).ok()?,
        ts_us: 0,
    };
    for pair in fields.chunks_exact(2) {
        match pair[0].as_str() {
            "f" => event.from = pair[1].clone(),
            "i" => event.id = pair[1].parse().ok()?,
            "d" => event.data = Data::from_json(pair[1].clone()).ok()?,
            "t" => event.ts_us = pair[1].parse().ok()?,
            _ => {}
        }
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_payload_round_trips_data_with_newlines() {
        let event = parse_published(b"42\n1700000000000000\n7\nabc\n{\"s\":\"a\\nb\",\n\"k\":1}")
            .expect("parse");
        assert_eq!(event.seq, 42);
        assert_eq!(event.id, 7);
        assert_eq!(event.from, "abc");
        assert_eq!(event.data.get(), "{\"s\":\"a\\nb\",\n\"k\":1}");
        assert!(parse_published(b"x\n1\n2\nf\n{}").is_none());
        assert!(parse_published(b"1\n1\n2\nf\n{bad").is_none());
    }

    #[test]
    fn channels_map_back_to_rooms() {
        let keys = RoomKeys::new("K7Q2XM");
        assert_eq!(keys.channel(), "{room:K7Q2XM}:events");
        assert_eq!(room_of_channel(&keys.channel()), Some("K7Q2XM"));
        assert_eq!(room_of_channel("other"), None);
    }

    #[test]
    fn stream_entries_parse() {
        let fields: Vec<String> = ["f", "p1", "i", "3", "d", "[1,2]", "t", "99"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let event = parse_entry("12-1", &fields).expect("entry");
        assert_eq!((event.seq, event.id, event.ts_us), (12, 3, 99));
        assert_eq!(event.data.get(), "[1,2]");
    }
}
