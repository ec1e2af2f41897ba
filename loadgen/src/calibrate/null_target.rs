//! The null target: the smallest server that speaks enough of the
//! reference protocol for a run — `welcome`, `create`, `join` (fresh or
//! resuming), `act` answered with `ack` and broadcast as `event` to every
//! member, the sender included — in memory, with no Redis and no checks.
//! What a run measures against it is the generator's own floor: every
//! microsecond of it is the generator's, the loopback's and this loop's.
//! It runs on a thread of its own, so it does not queue behind the players.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tierlab_protocol::{ClientFrame, Data, Event, JoinMode, ServerFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// A room: its seq and its members' outboxes.
#[derive(Default)]
struct Room {
    seq: u64,
    members: HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>,
}

type Rooms = Arc<Mutex<HashMap<String, Room>>>;

/// A running null target; it stops when dropped.
#[derive(Debug)]
pub struct NullTarget {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NullTarget {
    /// Listens on a free loopback port.
    pub fn start() -> std::io::Result<NullTarget> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("tierlab-null-target".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        serve(listener, stopped).await;
                    }
                });
            })?;
        Ok(NullTarget {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The WebSocket URL players connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for NullTarget {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, stop: CancellationToken) {
    let rooms = Rooms::default();
    let mut next = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        if let Ok((stream, _)) = accepted {
            next += 1;
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream, Arc::clone(&rooms), next, stop.clone()));
        }
    }
}

/// One player's connection: frames in, answers and events out.
async fn connection(stream: TcpStream, rooms: Rooms, me: u64, stop: CancellationToken) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut frames) = ws.split();
    let (outbox, mut inbox) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(text) = inbox.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
    });
    let welcome = ServerFrame::Welcome {
        server: "null".into(),
    };
    let _ = outbox.send(welcome.encode().into());
    let mut room: Option<String> = None;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => break,
            frame = frames.next() => frame,
        };
        let Some(Ok(Message::Text(text))) = frame else {
            if matches!(frame, Some(Ok(_))) {
                continue;
            }
            break;
        };
        let Ok(frame) = ClientFrame::decode(&text) else {
            continue;
        };
        answer(frame, &rooms, me, &mut room, &outbox);
    }
    if let Some(code) = room {
        leave(&rooms, &code, me);
    }
    drop(outbox);
    let _ = writer.await;
}

fn answer(
    frame: ClientFrame,
    rooms: &Rooms,
    me: u64,
    room: &mut Option<String>,
    outbox: &mpsc::UnboundedSender<Utf8Bytes>,
) {
    let mut rooms = rooms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let reply = match frame {
        ClientFrame::Create { .. } => {
            let code = format!("N{:05}", rooms.len());
            rooms.insert(code.clone(), Room::default());
            ServerFrame::Created { room: code }
        }
        ClientFrame::Join { room: code, mode } => {
            let entry = rooms.entry(code.clone()).or_default();
            entry.members.insert(me, outbox.clone());
            *room = Some(code.clone());
            let session = match mode {
                JoinMode::Resume { session, .. } => session,
                JoinMode::Fresh { .. } => format!("s{me}"),
            };
            ServerFrame::Joined {
                room: code,
                player: format!("n{me}"),
                session,
                seq: entry.seq,
                members: entry.members.len() as u32,
            }
        }
        ClientFrame::Act { id, data, .. } => {
            let Some(entry) = room.as_ref().and_then(|code| rooms.get_mut(code)) else {
                return;
            };
            entry.seq += 1;
            let _ = outbox.send(ServerFrame::Ack { id, seq: entry.seq }.encode().into());
            broadcast(entry, room.as_deref().unwrap_or(""), me, id, data);
            return;
        }
        ClientFrame::Leave => {
            if let Some(code) = room.take() {
                if let Some(entry) = rooms.get_mut(&code) {
                    entry.members.remove(&me);
                }
            }
            return;
        }
        ClientFrame::Ping { id } => ServerFrame::Pong { id },
    };
    let _ = outbox.send(reply.encode().into());
}

/// One event, encoded once, to every member.
fn broadcast(room: &mut Room, code: &str, me: u64, id: u64, data: Data) {
    let event = ServerFrame::Event(Event {
        room: code.to_owned(),
        seq: room.seq,
        from: format!("n{me}"),
        id,
        data,
    });
    let text: Utf8Bytes = event.encode().into();
    room.members
        .retain(|_, member| member.send(text.clone()).is_ok());
}

fn leave(rooms: &Rooms, code: &str, me: u64) {
    let mut rooms = rooms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(entry) = rooms.get_mut(code) {
        entry.members.remove(&me);
    }
}
