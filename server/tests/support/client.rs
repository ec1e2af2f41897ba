//! A small WebSocket client that speaks the protocol: the frames a test
//! sends, and waits (bounded by `WAIT`) for the frames it expects.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tierlab_protocol::{ClientFrame, Data, ErrorCode, Event, JoinMode, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

/// A protocol client over a real WebSocket.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub server: String,
    pub player: Option<String>,
    pub session: Option<String>,
    pub room: Option<String>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let mut client = Client {
            ws,
            server: String::new(),
            player: None,
            session: None,
            room: None,
        };
        match client.recv().await {
            ServerFrame::Welcome { server } => client.server = server,
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&frame.encode()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next frame, or a panic after `WAIT`.
    pub async fn recv(&mut self) -> ServerFrame {
        match self.next_message().await {
            Some(Message::Text(text)) => {
                ServerFrame::decode(text.as_str()).expect("server frame decodes")
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next WebSocket message of any kind (None when the stream ended).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the server")?;
            match message {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(message) => return Some(message),
                Err(_) => return None,
            }
        }
    }

    /// Nothing arrives within `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("expected silence, got {message:?}");
        }
    }

    /// Sends a `create` without waiting for its answer.
    pub async fn send_create(&mut self, max_players: u32) {
        self.send(&ClientFrame::Create {
            game: "quiz".into(),
            max_players,
            key: None,
        })
        .await;
    }

    /// Sends a fresh `join` without waiting for its answer.
    pub async fn send_join(&mut self, room: &str, name: &str) {
        self.send(&ClientFrame::Join {
            room: room.into(),
            mode: JoinMode::Fresh {
                name: name.into(),
                key: None,
            },
        })
        .await;
    }

    pub async fn create(&mut self, max_players: u32) -> String {
        self.send_create(max_players).await;
        match self.recv().await {
            ServerFrame::Created { room } => room,
            other => panic!("expected created, got {other:?}"),
        }
    }

    pub async fn join(&mut self, room: &str, name: &str) -> u64 {
        self.send_join(room, name).await;
        self.expect_joined(room).await
    }

    pub async fn resume(&mut self, room: &str, session: &str, since: u64) -> ServerFrame {
        self.send(&ClientFrame::Join {
            room: room.into(),
            mode: JoinMode::Resume {
                session: session.into(),
                since: Some(since),
            },
        })
        .await;
        self.recv().await
    }

    pub async fn expect_joined(&mut self, room: &str) -> u64 {
        match self.recv().await {
            ServerFrame::Joined {
                room: joined,
                player,
                session,
                seq,
                ..
            } => {
                assert_eq!(joined, room);
                self.player = Some(player);
                self.session = Some(session);
                self.room = Some(joined);
                seq
            }
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Sends an act and returns the acked seq; events that arrive first are
    /// returned too, in order.
    pub async fn act(&mut self, id: u64, data: &str) -> (u64, Vec<Event>) {
        self.act_keyed(id, data, None).await
    }

    /// The same, with an idempotency key.
    pub async fn act_keyed(&mut self, id: u64, data: &str, key: Option<&str>) -> (u64, Vec<Event>) {
        self.send(&act_frame(id, data, key)).await;
        let mut early = Vec::new();
        loop {
            match self.recv().await {
                ServerFrame::Ack { id: acked, seq } if acked == id => return (seq, early),
                ServerFrame::Event(e) => early.push(e),
                other => panic!("expected ack {id}, got {other:?}"),
            }
        }
    }

    pub async fn event(&mut self) -> Event {
        match self.recv().await {
            ServerFrame::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The next `n` events, skipping acks.
    pub async fn events(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            match self.recv().await {
                ServerFrame::Event(e) => events.push(e),
                ServerFrame::Ack { .. } => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
        events
    }

    pub async fn expect_error(&mut self, code: ErrorCode) -> (String, Option<u64>) {
        match self.recv().await {
            ServerFrame::Error {
                code: got,
                message,
                id,
            } if got == code => (message, id),
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn act_frame(id: u64, data: &str, key: Option<&str>) -> ClientFrame {
    ClientFrame::Act {
        id,
        data: Data::from_json(data.to_owned()).unwrap(),
        key: key.map(str::to_owned),
    }
}

pub fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}
