//! Frame codec tests: the documented examples, each kind of bad frame, and
//! property tests that decoding never panics and encoding round-trips.

use super::*;
use proptest::prelude::*;

fn raw(json: &str) -> Data {
    Data::from_json(json.to_owned()).expect("valid JSON")
}

#[test]
fn documented_client_examples_decode() {
    assert_eq!(
        ClientFrame::decode(r#"{"type":"create","game":"quiz","max_players":10}"#),
        Ok(ClientFrame::Create {
            game: "quiz".into(),
            max_players: 10,
            key: None
        })
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"join","room":"K7Q2XM","name":"p1"}"#),
        Ok(ClientFrame::Join {
            room: "K7Q2XM".into(),
            mode: JoinMode::Fresh {
                name: "p1".into(),
                key: None
            }
        })
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"join","room":"K7Q2XM","name":"p1","key":"j-1"}"#),
        Ok(ClientFrame::Join {
            room: "K7Q2XM".into(),
            mode: JoinMode::Fresh {
                name: "p1".into(),
                key: Some("j-1".into())
            }
        })
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"join","room":"K7Q2XM","session":"abc","since":41}"#),
        Ok(ClientFrame::Join {
            room: "K7Q2XM".into(),
            mode: JoinMode::Resume {
                session: "abc".into(),
                since: Some(41)
            }
        })
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"leave"}"#),
        Ok(ClientFrame::Leave)
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"ping","id":3}"#),
        Ok(ClientFrame::Ping { id: 3 })
    );
}

#[test]
fn act_data_passes_through_byte_for_byte() {
    let text = r#"{"type":"act","id":7,"data":{"t": 1.50, "k":[1,2 ,3]}}"#;
    let Ok(ClientFrame::Act { id, data, key }) = ClientFrame::decode(text) else {
        panic!("act did not decode");
    };
    assert_eq!((id, key), (7, None));
    assert_eq!(data.get(), r#"{"t": 1.50, "k":[1,2 ,3]}"#);
}

#[test]
fn idempotency_keys_are_read_and_checked() {
    let keyed = r#"{"type":"act","id":7,"data":1,"key":"7"}"#;
    assert!(matches!(
        ClientFrame::decode(keyed),
        Ok(ClientFrame::Act { key: Some(k), .. }) if k == "7"
    ));
    for bad in ["", "has space", &"k".repeat(MAX_KEY + 1)] {
        let text = format!(r#"{{"type":"act","id":7,"data":1,"key":"{bad}"}}"#);
        assert!(
            matches!(
                ClientFrame::decode(&text),
                Err(FrameError::Invalid { id: Some(7), .. })
            ),
            "{bad:?} passed"
        );
    }
}

#[test]
fn event_encodes_as_documented() {
    let frame = ServerFrame::Event(Event {
        room: "K7Q2XM".into(),
        seq: 42,
        from: "p9".into(),
        id: 7,
        data: raw(r#"{"x":1}"#),
    });
    assert_eq!(
        frame.encode(),
        r#"{"type":"event","room":"K7Q2XM","seq":42,"id":7,"from":"p9","data":{"x":1}}"#
    );
    assert_eq!(ServerFrame::decode(&frame.encode()), Ok(frame));
}

#[test]
fn error_frame_echoes_id_only_when_known() {
    let with = ServerFrame::Error {
        code: ErrorCode::RoomFull,
        message: "full".into(),
        id: Some(4),
    };
    assert_eq!(
        with.encode(),
        r#"{"type":"error","id":4,"code":"room_full","message":"full"}"#
    );
    let without = ServerFrame::Error {
        code: ErrorCode::BadRequest,
        message: "x".into(),
        id: None,
    };
    assert!(!without.encode().contains("\"id\""));
}

#[test]
fn bad_frames_name_their_problem() {
    assert!(matches!(
        ClientFrame::decode("{not json"),
        Err(FrameError::Malformed(_))
    ));
    assert_eq!(
        ClientFrame::decode(r#"{"room":"A"}"#),
        Err(FrameError::MissingType)
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"dance"}"#),
        Err(FrameError::UnknownType("dance".into()))
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"act","id":9}"#),
        Err(FrameError::MissingField {
            kind: "act",
            field: "data",
            id: Some(9)
        })
    );
    let both = ClientFrame::decode(r#"{"type":"join","room":"A","name":"n","session":"s"}"#);
    assert!(matches!(
        both,
        Err(FrameError::Invalid { kind: "join", .. })
    ));
    // A wrongly typed field is malformed JSON for our schema, not a panic.
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"ping","id":"three"}"#),
        Err(FrameError::Malformed(_))
    ));
    assert!(matches!(
        ClientFrame::decode(r#"[1,2]"#),
        Err(FrameError::Malformed(_))
    ));
}

#[test]
fn escaped_strings_decode() {
    let f = ClientFrame::decode(r#"{"type":"join","room":"K7Q2XM","name":"a\"b\u00e9"}"#);
    assert_eq!(
        f,
        Ok(ClientFrame::Join {
            room: "K7Q2XM".into(),
            mode: JoinMode::Fresh {
                name: "a\"b\u{e9}".into(),
                key: None
            }
        })
    );
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9 ]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn key() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[!-~]{1,64}")
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let text = "\\PC{0,16}";
    prop_oneof![
        (text, any::<u32>(), key()).prop_map(|(game, max_players, key)| ClientFrame::Create {
            game,
            max_players,
            key
        }),
        (text, text, key()).prop_map(|(room, name, key)| ClientFrame::Join {
            room,
            mode: JoinMode::Fresh { name, key }
        }),
        (text, text, any::<Option<u64>>()).prop_map(|(room, session, since)| ClientFrame::Join {
            room,
            mode: JoinMode::Resume { session, since }
        }),
        (any::<u64>(), json_value(), key()).prop_map(|(id, d, key)| ClientFrame::Act {
            id,
            data: raw(&d),
            key
        }),
        Just(ClientFrame::Leave),
        any::<u64>().prop_map(|id| ClientFrame::Ping { id }),
    ]
}

proptest! {
    #[test]
    fn decoding_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = ClientFrame::decode(&text);
        let _ = ServerFrame::decode(&text);
    }

    #[test]
    fn decoding_json_shaped_noise_never_panics(
        kind in prop_oneof![Just("act"), Just("join"), Just("create"), Just("ping"), Just("event"), Just("x")],
        body in json_value(),
    ) {
        let text = format!(r#"{{"type":"{kind}","id":1,"data":{body},"room":{body},"since":{body}}}"#);
        let _ = ClientFrame::decode(&text);
        let _ = ServerFrame::decode(&text);
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        prop_assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame));
    }

    #[test]
    fn event_frames_round_trip(seq in any::<u64>(), id in any::<u64>(), from in "\\PC{0,10}", d in json_value()) {
        let frame = ServerFrame::Event(Event { room: "K7Q2XM".into(), seq, from, id, data: raw(&d) });
        prop_assert_eq!(ServerFrame::decode(&frame.encode()), Ok(frame));
    }
}

#[test]
fn an_event_is_viewed_without_a_copy_and_nothing_else_is() {
    let event = ServerFrame::Event(Event {
        room: "K7Q2XM".into(),
        seq: 9,
        from: "pl-1".into(),
        id: 3,
        data: Data::from_json(r#"{"t":1,"pad":"x"}"#.to_owned()).unwrap(),
    })
    .encode();
    let view = ServerFrame::event_view(&event).unwrap();
    assert_eq!((view.seq, view.data.get()), (9, r#"{"t":1,"pad":"x"}"#));
    let ack = ServerFrame::Ack { id: 3, seq: 9 }.encode();
    assert!(ServerFrame::event_view(&ack).is_none());
    assert!(ServerFrame::event_view(r#"{"type":"event","seq":1}"#).is_none());
}
