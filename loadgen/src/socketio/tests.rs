//! The frames of the Engine.IO v4 and Socket.IO v5 protocol documents'
//! own examples, both ways, and garbage from a server as an error.

use super::*;
use serde_json::json;

fn message(text: &str) -> Packet {
    match Frame::decode(text) {
        Ok(Frame::Message(packet)) => packet,
        other => panic!("{text}: {other:?}"),
    }
}

/// Decodes `text`, checks it is `want`, and that encoding gives `text` back.
fn both_ways(text: &str, want: &Frame) {
    assert_eq!(&Frame::decode(text).unwrap(), want, "{text}");
    assert_eq!(want.encode(), text);
}

#[test]
fn the_open_packet_gives_the_session_and_its_heartbeat() {
    let text = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let Frame::Open(open) = Frame::decode(text).unwrap() else {
        panic!("not an open packet")
    };
    assert_eq!(open.sid, "lv_VI97HAXpY6yYWAAAC");
    assert_eq!(open.ping_interval, Duration::from_secs(25));
    assert_eq!(open.ping_timeout, Duration::from_secs(20));
    assert_eq!(open.max_payload, Some(1_000_000));
    assert_eq!(
        Frame::decode(&Frame::Open(open.clone()).encode()).unwrap(),
        Frame::Open(open)
    );
}

#[test]
fn engine_packets_round_trip() {
    both_ways("2", &Frame::Ping(String::new()));
    both_ways("3", &Frame::Pong(String::new()));
    both_ways("2probe", &Frame::Ping("probe".into()));
    both_ways("3probe", &Frame::Pong("probe".into()));
    both_ways("1", &Frame::Close);
    both_ways("6", &Frame::Noop);
}

#[test]
fn connect_with_and_without_auth_and_namespace() {
    both_ways(
        "40",
        &Frame::Message(Packet::Connect {
            nsp: "/".into(),
            data: None,
        }),
    );
    both_ways(
        "40/admin,",
        &Frame::Message(Packet::Connect {
            nsp: "/admin".into(),
            data: None,
        }),
    );
    both_ways(
        r#"40{"token":"123"}"#,
        &Frame::Message(Packet::Connect {
            nsp: "/".into(),
            data: Some(json!({"token": "123"})),
        }),
    );
    // The server's answer carries the socket's id.
    assert_eq!(
        message(r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#),
        Packet::Connect {
            nsp: "/".into(),
            data: Some(json!({"sid": "wZX3oN0bSVIhsaknAAAI"}))
        }
    );
    both_ways(
        "41/admin,",
        &Frame::Message(Packet::Disconnect {
            nsp: "/admin".into(),
        }),
    );
}

#[test]
fn events_and_acks() {
    both_ways(
        r#"42["hello",1]"#,
        &Frame::Message(Packet::Event {
            nsp: "/".into(),
            id: None,
            name: "hello".into(),
            args: vec![json!(1)],
        }),
    );
    both_ways(
        r#"42/admin,456["project:delete",123]"#,
        &Frame::Message(Packet::Event {
            nsp: "/admin".into(),
            id: Some(456),
            name: "project:delete".into(),
            args: vec![json!(123)],
        }),
    );
    both_ways(
        "43/admin,456[]",
        &Frame::Message(Packet::Ack {
            nsp: "/admin".into(),
            id: 456,
            args: Vec::new(),
        }),
    );
    both_ways(
        r#"4313["bar"]"#,
        &Frame::Message(Packet::Ack {
            nsp: "/".into(),
            id: 13,
            args: vec![json!("bar")],
        }),
    );
}

#[test]
fn a_refused_connection_says_why() {
    both_ways(
        r#"44{"message":"Not authorized"}"#,
        &Frame::Message(Packet::ConnectError {
            nsp: "/".into(),
            data: json!({"message": "Not authorized"}),
        }),
    );
}

#[test]
fn garbage_from_a_server_is_an_error_not_a_panic() {
    for (text, want) in [
        ("", FrameError::Empty),
        ("9", FrameError::EngineType('9')),
        ("4", FrameError::Empty),
        ("47", FrameError::SocketType('7')),
        (
            "451-[\"x\",{\"_placeholder\":true,\"num\":0}]",
            FrameError::Binary,
        ),
        ("42/admin[\"x\"]", FrameError::Namespace),
        (
            "42{\"not\":\"an array\"}",
            FrameError::Shape("an event must be an array"),
        ),
        (
            "42[]",
            FrameError::Shape("an event must start with its name"),
        ),
        (
            "42[1]",
            FrameError::Shape("an event must start with its name"),
        ),
        ("43[]", FrameError::Shape("an ack needs an id")),
        (
            "4299999999999999999999[\"x\"]",
            FrameError::Shape("ack id out of range"),
        ),
    ] {
        assert_eq!(Frame::decode(text), Err(want), "{text}");
    }
    for text in ["0{}", "0not json", "42[\"x\",", "\u{1F600}"] {
        assert!(Frame::decode(text).is_err(), "{text}");
    }
}
