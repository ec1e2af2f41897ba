//! `tierlab-server`'s protocol (docs/protocol.md): `welcome`, then `join`
//! (fresh or resuming after a seq), acts acknowledged with the room's seq,
//! events numbered by the room.

use tierlab_protocol::{ClientFrame, CloseReason, Data, JoinMode, ServerFrame};

use super::{Entry, Greeting, Guarantee, Incoming, Stamp, Wire};

#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Wire for Reference {
    fn greet(&self, text: &str, entry: Entry<'_>) -> Greeting {
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Welcome { .. }) => {
                let mode = match entry.resume {
                    None => JoinMode::Fresh {
                        name: entry.name.to_owned(),
                        key: None,
                    },
                    Some((session, since)) => JoinMode::Resume {
                        session: session.to_owned(),
                        since: Some(since),
                    },
                };
                let join = ClientFrame::Join {
                    room: entry.room.to_owned(),
                    mode,
                };
                Greeting::Send(join.encode())
            }
            Ok(ServerFrame::Joined {
                player,
                session,
                seq,
                ..
            }) => Greeting::Joined {
                player: Some(player),
                session,
                seq,
            },
            Ok(ServerFrame::Error { code, .. }) => Greeting::Refused(code.as_str()),
            Ok(_) => Greeting::Wait,
            Err(_) => Greeting::Refused("bad_frame"),
        }
    }

    fn act(&self, _room: &str, id: u64, fields: &str, keyed: bool) -> Option<String> {
        let data = Data::from_json(format!("{{{fields}}}")).ok()?;
        // The player's counter is unique per seat: it is the key of a retry.
        let key = keyed.then(|| id.to_string());
        Some(ClientFrame::Act { id, data, key }.encode())
    }

    fn read(&self, text: &str) -> Incoming {
        // Events are nearly every frame: read without copying any of it.
        if let Some(event) = ServerFrame::event_view(text) {
            return Incoming::Event {
                seq: Some(event.seq),
                stamp: serde_json::from_str::<Stamp>(event.data.get()).ok(),
            };
        }
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Event(event)) => Incoming::Event {
                seq: Some(event.seq),
                stamp: serde_json::from_str::<Stamp>(event.data.get()).ok(),
            },
            Ok(ServerFrame::Ack { id, seq }) => Incoming::Ack { id, seq: Some(seq) },
            Ok(ServerFrame::Error { code, id, .. }) => Incoming::Refused {
                id,
                code: code.as_str(),
            },
            Ok(ServerFrame::Close {
                reason: CloseReason::RoomGone,
            }) => Incoming::RoomGone,
            Ok(ServerFrame::Close { .. }) => Incoming::Close,
            Ok(_) => Incoming::Other,
            Err(_) => Incoming::Bad,
        }
    }

    fn leave(&self) -> Option<String> {
        Some(ClientFrame::Leave.encode())
    }

    fn guarantee(&self) -> Guarantee {
        Guarantee::ServerSeqs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_protocol::{ErrorCode, Event};

    const FRESH: Entry<'static> = Entry {
        room: "K7Q2XM",
        name: "p1",
        resume: None,
    };

    #[test]
    fn welcome_then_join_then_joined() {
        let wire = Reference;
        let welcome = ServerFrame::Welcome {
            server: "srv-1".into(),
        }
        .encode();
        let Greeting::Send(join) = wire.greet(&welcome, FRESH) else {
            panic!("welcome must be answered with a join");
        };
        assert!(matches!(
            ClientFrame::decode(&join),
            Ok(ClientFrame::Join { room, mode: JoinMode::Fresh { name, .. } }) if room == "K7Q2XM" && name == "p1"
        ));
        let resume = Entry {
            resume: Some(("s-9", 41)),
            ..FRESH
        };
        let Greeting::Send(join) = wire.greet(&welcome, resume) else {
            panic!("no join");
        };
        assert!(matches!(
            ClientFrame::decode(&join),
            Ok(ClientFrame::Join {
                mode: JoinMode::Resume {
                    since: Some(41),
                    ..
                },
                ..
            })
        ));
        let joined = ServerFrame::Joined {
            room: "K7Q2XM".into(),
            player: "pl-3".into(),
            session: "s-9".into(),
            seq: 41,
            members: 2,
        }
        .encode();
        assert_eq!(
            wire.greet(&joined, FRESH),
            Greeting::Joined {
                player: Some("pl-3".into()),
                session: "s-9".into(),
                seq: 41
            }
        );
        assert_eq!(wire.greet("{", FRESH), Greeting::Refused("bad_frame"));
    }

    #[test]
    fn events_carry_seq_and_stamp_and_garbage_is_bad() {
        let wire = Reference;
        let act = wire
            .act("K7Q2XM", 3, r#""t":7,"p":2,"n":3,"pad":"x""#, true)
            .unwrap();
        let Ok(ClientFrame::Act { id, data, key }) = ClientFrame::decode(&act) else {
            panic!("{act}");
        };
        assert_eq!(
            (id, key.as_deref()),
            (3, Some("3")),
            "the counter keys the act"
        );
        let event = ServerFrame::Event(Event {
            room: "K7Q2XM".into(),
            seq: 12,
            from: "pl-2".into(),
            id,
            data,
        })
        .encode();
        assert_eq!(
            wire.read(&event),
            Incoming::Event {
                seq: Some(12),
                stamp: Some(Stamp {
                    t: 7,
                    w: None,
                    p: Some(2),
                    n: Some(3)
                })
            }
        );
        let refused = ServerFrame::Error {
            code: ErrorCode::RoomFull,
            message: "full".into(),
            id: Some(3),
        }
        .encode();
        assert_eq!(
            wire.read(&refused),
            Incoming::Refused {
                id: Some(3),
                code: "room_full"
            }
        );
        assert_eq!(wire.read("not json"), Incoming::Bad);
    }
}
