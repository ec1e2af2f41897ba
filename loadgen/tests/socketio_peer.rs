//! The Socket.IO framing against the real peer: two python-socketio
//! replicas (`scenarios/peers/chat_socketio.py`) sharing one redis-server
//! through AsyncRedisManager. Players on different replicas join one room
//! over `/socket.io/?EIO=4&transport=websocket`; an act acknowledged on one
//! replica reaches the member on the other; players that answer the
//! heartbeat's `2` with `3` keep their session, and one that stops
//! answering is dropped.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::Children;
use tierlab_loadgen::socketio::{Frame, Packet};
use tokio_tungstenite::tungstenite::Message;

/// Redis and two replicas of the peer; their ports.
fn peers() -> (Children, Vec<u16>) {
    let mut peers = Children(Vec::new());
    let redis_port = support::redis(&mut peers);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/peers/chat_socketio.py");
    let ports = (0..2)
        .map(|_| {
            support::spawn_listening(
                &mut peers,
                "the python-socketio peer (pip install -r scenarios/peers/requirements.txt)",
                |port| {
                    let mut peer = Command::new("python3");
                    peer.arg(&script)
                        .args(["--port", &port.to_string()])
                        .args(["--redis", &format!("redis://127.0.0.1:{redis_port}")])
                        // A short heartbeat, so the test sees pings and must answer them.
                        .args(["--ping-interval", "1", "--ping-timeout", "1"]);
                    peer
                },
            )
        })
        .collect();
    (peers, ports)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Player {
    ws: Ws,
    ping_interval: Duration,
}

impl Player {
    async fn connect(port: u16) -> Player {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut player = Player {
            ws,
            ping_interval: Duration::ZERO,
        };
        let Frame::Open(open) = player.frame().await else {
            panic!("no open packet")
        };
        player.ping_interval = open.ping_interval;
        player
            .send(Frame::Message(Packet::Connect {
                nsp: "/".into(),
                data: None,
            }))
            .await;
        match player.frame().await {
            Frame::Message(Packet::Connect { data: Some(d), .. }) => assert!(d["sid"].is_string()),
            other => panic!("expected the connect answer, got {other:?}"),
        }
        player
    }

    async fn send(&mut self, frame: Frame) {
        self.ws
            .send(Message::Text(frame.encode().into()))
            .await
            .unwrap();
    }

    /// The next frame other than a ping; pings are answered on the way,
    /// as a client must.
    async fn frame(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("the peer went quiet");
            match next {
                Some(Ok(Message::Text(text))) => match Frame::decode(text.as_str()).unwrap() {
                    Frame::Ping(data) => self.send(Frame::Pong(data)).await,
                    frame => return frame,
                },
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Emits `name` with an ack id; returns the ack's arguments, and the
    /// events that came before it.
    async fn emit(&mut self, id: u64, name: &str, arg: Value) -> (Vec<Value>, Vec<Value>) {
        self.send(Frame::Message(Packet::Event {
            nsp: "/".into(),
            id: Some(id),
            name: name.into(),
            args: vec![arg],
        }))
        .await;
        let mut events = Vec::new();
        loop {
            match self.frame().await {
                Frame::Message(Packet::Ack { id: got, args, .. }) if got == id => {
                    return (args, events)
                }
                Frame::Message(Packet::Event { name, args, .. }) if name == "event" => {
                    events.extend(args)
                }
                other => panic!("expected ack {id}, got {other:?}"),
            }
        }
    }

    async fn event(&mut self) -> Value {
        match self.frame().await {
            Frame::Message(Packet::Event { name, mut args, .. }) if name == "event" => {
                args.remove(0)
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Whether the server closed the session (reading past its pings).
    async fn dropped(&mut self) -> bool {
        for _ in 0..10 {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with('2') => {}
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "1" => return true,
                _ => return false,
            }
        }
        false
    }

    /// Reads for `how_long`, answering every ping; returns how many came.
    async fn keep_alive(&mut self, how_long: Duration) -> u32 {
        let until = tokio::time::Instant::now() + how_long;
        let mut pings = 0;
        while let Ok(next) = tokio::time::timeout_at(until, self.ws.next()).await {
            match next {
                Some(Ok(Message::Text(text))) => match Frame::decode(text.as_str()).unwrap() {
                    Frame::Ping(data) => {
                        pings += 1;
                        self.send(Frame::Pong(data)).await;
                    }
                    other => panic!("expected only pings, got {other:?}"),
                },
                other => panic!("the session ended: {other:?}"),
            }
        }
        pings
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_act_on_one_replica_reaches_a_member_on_the_other() {
    let (_peers, ports) = peers();
    let mut sender = Player::connect(ports[0]).await;
    let mut member = Player::connect(ports[1]).await;
    assert_eq!(sender.ping_interval, Duration::from_secs(1));
    for player in [&mut sender, &mut member] {
        let (ack, _) = player.emit(1, "join", json!("room-1")).await;
        assert_eq!(ack, vec![json!({"ok": true})]);
    }
    for n in 1..=3 {
        let act = json!({"room": "room-1", "from": "sender", "n": n});
        let (ack, _) = sender.emit(1 + n, "act", act.clone()).await;
        assert_eq!(ack, vec![json!({"ok": true})]);
        assert_eq!(member.event().await, act, "act {n} on the other replica");
    }
    // An act for a room the player is not in is refused in the ack.
    let (ack, _) = member.emit(9, "act", json!({"room": "elsewhere"})).await;
    assert_eq!(ack[0]["ok"], false);
    // The heartbeat: pings answered with pongs for three ping timeouts keep
    // the session; the room still delivers afterwards.
    // A player that stops answering is dropped after the ping timeout.
    let mut silent = Player::connect(ports[0]).await;
    let window = Duration::from_secs(3);
    let (pings, _) = tokio::join!(member.keep_alive(window), sender.keep_alive(window));
    assert!(pings >= 2, "{pings} pings in 3 s at a 1 s interval");
    assert!(silent.dropped().await, "the silent player was not dropped");
    let act = json!({"room": "room-1", "from": "member", "n": 4});
    member.emit(10, "act", act.clone()).await;
    loop {
        match sender.frame().await {
            Frame::Message(Packet::Event { args, .. }) if args[0] == act => break,
            Frame::Message(Packet::Event { .. }) => {}
            other => panic!("expected the member's act, got {other:?}"),
        }
    }
    member
        .send(Frame::Message(Packet::Disconnect { nsp: "/".into() }))
        .await;
}
