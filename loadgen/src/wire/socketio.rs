//! A Socket.IO game as the players speak it: Engine.IO `open`, a namespace
//! `connect`, the scenario's join event (acknowledged), acts as events with
//! or without acks, and the broadcast event members receive. `2` (ping) is
//! answered with `3` (pong) at any time. Socket.IO has no server seqs and no
//! resume: players embed their own counters, and a reconnecting player
//! joins again.

use serde::Deserialize;
use serde_json::Value;

use super::{Entry, Greeting, Guarantee, Incoming, Stamp, Wire};
use crate::scenario::Protocol;
use crate::socketio::{Frame, Packet};

/// The ack id of the join; acts use the player's counter, from 1.
const JOIN_ACK: u64 = 0;

#[derive(Debug, Clone)]
pub struct SocketIo {
    mapping: Protocol,
    /// `"/chat,"`, or empty for the main namespace: the prefix of every
    /// packet of ours.
    nsp_prefix: String,
}

impl SocketIo {
    pub fn new(mapping: &Protocol) -> SocketIo {
        let nsp_prefix = if mapping.namespace == "/" {
            String::new()
        } else {
            format!("{},", mapping.namespace)
        };
        SocketIo {
            mapping: mapping.clone(),
            nsp_prefix,
        }
    }

    fn ours(&self, nsp: &str) -> bool {
        nsp == self.mapping.namespace
    }
}

/// What an ack's first argument may say: `{"ok": false, "error": …}` refuses.
#[derive(Deserialize)]
struct Verdict {
    ok: Option<bool>,
}

fn refused(args: &[Value]) -> bool {
    args.first()
        .and_then(|v| Verdict::deserialize(v).ok())
        .is_some_and(|v| v.ok == Some(false))
}

impl Wire for SocketIo {
    fn greet(&self, text: &str, entry: Entry<'_>) -> Greeting {
        let m = &self.mapping;
        match Frame::decode(text) {
            Ok(Frame::Open(_)) => Greeting::Send(
                Frame::Message(Packet::Connect {
                    nsp: m.namespace.clone(),
                    data: m.auth_json(),
                })
                .encode(),
            ),
            Ok(Frame::Ping(data)) => Greeting::Send(Frame::Pong(data).encode()),
            Ok(Frame::Message(Packet::Connect { nsp, data })) if self.ours(&nsp) => {
                let session = data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if session.is_empty() {
                    return Greeting::Refused("bad_frame");
                }
                Greeting::Send(
                    Frame::Message(Packet::Event {
                        nsp: m.namespace.clone(),
                        id: Some(JOIN_ACK),
                        name: m.join_event.clone(),
                        args: m.join_args_for(entry.room),
                    })
                    .encode(),
                )
            }
            Ok(Frame::Message(Packet::Ack { nsp, id, args }))
                if self.ours(&nsp) && id == JOIN_ACK =>
            {
                if refused(&args) {
                    Greeting::Refused("join_refused")
                } else {
                    Greeting::Joined {
                        player: None,
                        session: String::new(),
                        seq: 0,
                    }
                }
            }
            Ok(Frame::Message(Packet::ConnectError { .. })) => Greeting::Refused("connect_error"),
            Ok(Frame::Close | Frame::Message(Packet::Disconnect { .. })) => {
                Greeting::Refused("disconnected")
            }
            Ok(_) => Greeting::Wait,
            Err(_) => Greeting::Refused("bad_frame"),
        }
    }

    fn act(&self, room: &str, id: u64, fields: &str, _keyed: bool) -> Option<String> {
        let m = &self.mapping;
        let ack = if m.acks {
            id.to_string()
        } else {
            String::new()
        };
        let event = serde_json::to_string(&m.act_event).ok()?;
        let room_field = if m.act_room_field.is_empty() {
            String::new()
        } else {
            format!(
                "{}:{},",
                serde_json::to_string(&m.act_room_field).ok()?,
                serde_json::to_string(room).ok()?
            )
        };
        // Written directly: the act is the hot path, and its JSON is ours.
        Some(format!(
            "42{}{ack}[{event},{{{room_field}{fields}}}]",
            self.nsp_prefix
        ))
    }

    fn read(&self, text: &str) -> Incoming {
        match Frame::decode(text) {
            Ok(Frame::Ping(data)) => Incoming::Reply(Frame::Pong(data).encode()),
            Ok(Frame::Close) => Incoming::Close,
            Ok(Frame::Message(packet)) => self.read_packet(packet),
            Ok(_) => Incoming::Other,
            Err(_) => Incoming::Bad,
        }
    }

    fn leave(&self) -> Option<String> {
        Some(
            Frame::Message(Packet::Disconnect {
                nsp: self.mapping.namespace.clone(),
            })
            .encode(),
        )
    }

    fn guarantee(&self) -> Guarantee {
        Guarantee::SenderCounters {
            acks: self.mapping.acks,
        }
    }
}

impl SocketIo {
    fn read_packet(&self, packet: Packet) -> Incoming {
        match packet {
            Packet::Event {
                nsp, name, args, ..
            } if self.ours(&nsp) && name == self.mapping.broadcast_event => Incoming::Event {
                seq: None,
                stamp: args.first().and_then(|v| Stamp::deserialize(v).ok()),
            },
            Packet::Ack { nsp, id, args } if self.ours(&nsp) => {
                if refused(&args) {
                    Incoming::Refused {
                        id: Some(id),
                        code: "act_refused",
                    }
                } else {
                    Incoming::Ack { id, seq: None }
                }
            }
            Packet::Disconnect { nsp } if self.ours(&nsp) => Incoming::Close,
            Packet::ConnectError { .. } => Incoming::Refused {
                id: None,
                code: "connect_error",
            },
            _ => Incoming::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> SocketIo {
        SocketIo::new(&Protocol {
            kind: crate::scenario::ProtocolKind::Socketio,
            ..Protocol::default()
        })
    }

    const ENTRY: Entry<'static> = Entry {
        room: "r-1",
        name: "p1",
        resume: None,
    };

    #[test]
    fn a_seat_is_open_connect_join_and_its_ack() {
        let wire = chat();
        let open = r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
        assert_eq!(wire.greet(open, ENTRY), Greeting::Send("40".into()));
        assert_eq!(wire.greet("2", ENTRY), Greeting::Send("3".into()));
        assert_eq!(
            wire.greet(r#"40{"sid":"s1"}"#, ENTRY),
            Greeting::Send(r#"420["join","r-1"]"#.into())
        );
        assert!(matches!(
            wire.greet(r#"430[{"ok":true}]"#, ENTRY),
            Greeting::Joined { seq: 0, .. }
        ));
        assert_eq!(
            wire.greet(r#"430[{"ok":false,"error":"full"}]"#, ENTRY),
            Greeting::Refused("join_refused")
        );
        assert_eq!(
            wire.greet(r#"44{"message":"Not authorized"}"#, ENTRY),
            Greeting::Refused("connect_error")
        );
        assert_eq!(wire.greet("garbage", ENTRY), Greeting::Refused("bad_frame"));
    }

    #[test]
    fn acts_name_their_room_and_ask_for_an_ack() {
        let wire = chat();
        let frame = wire.act("r-1", 7, r#""t":5,"p":3,"n":7"#, true).unwrap();
        assert_eq!(frame, r#"427["act",{"room":"r-1","t":5,"p":3,"n":7}]"#);
        // It is a frame the codec reads back as that event.
        let Ok(Frame::Message(Packet::Event { id, name, args, .. })) = Frame::decode(&frame) else {
            panic!("{frame}");
        };
        assert_eq!((id, name.as_str()), (Some(7), "act"));
        assert_eq!(args[0]["room"], "r-1");

        let authed = SocketIo::new(&Protocol {
            kind: crate::scenario::ProtocolKind::Socketio,
            namespace: "/game".into(),
            auth: toml::from_str("token = \"t-1\"").ok(),
            ..Protocol::default()
        });
        let open = r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
        assert_eq!(
            authed.greet(open, ENTRY),
            Greeting::Send(r#"40/game,{"token":"t-1"}"#.into())
        );

        let quiet = SocketIo::new(&Protocol {
            kind: crate::scenario::ProtocolKind::Socketio,
            namespace: "/game".into(),
            acks: false,
            act_room_field: String::new(),
            ..Protocol::default()
        });
        assert_eq!(
            quiet.act("r-1", 7, r#""t":5"#, true).unwrap(),
            r#"42/game,["act",{"t":5}]"#
        );
    }

    #[test]
    fn broadcasts_acks_pings_and_garbage_are_told_apart() {
        let wire = chat();
        assert_eq!(
            wire.read(r#"42["event",{"room":"r-1","t":9,"p":2,"n":4,"pad":"x"}]"#),
            Incoming::Event {
                seq: None,
                stamp: Some(Stamp {
                    t: 9,
                    w: None,
                    p: Some(2),
                    n: Some(4)
                })
            }
        );
        assert_eq!(
            wire.read(r#"437[{"ok":true}]"#),
            Incoming::Ack { id: 7, seq: None }
        );
        assert_eq!(
            wire.read(r#"437[{"ok":false}]"#),
            Incoming::Refused {
                id: Some(7),
                code: "act_refused"
            }
        );
        assert_eq!(wire.read("2"), Incoming::Reply("3".into()));
        assert_eq!(wire.read("41"), Incoming::Close);
        assert_eq!(wire.read(r#"42["other",1]"#), Incoming::Other);
        for garbage in ["", "x", "42[", "4{", "45-bin"] {
            assert_eq!(wire.read(garbage), Incoming::Bad, "{garbage:?}");
        }
    }
}
