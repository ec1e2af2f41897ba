//! One WebSocket connection: reads client frames, answers them, forwards the
//! room's events from the member's outbox, and enforces the per-connection
//! limits (frame size, rate, abuse, slow consumer, drain).
//!
//! The loop is generic over any `Stream + Sink` of WebSocket messages, so
//! tests can drive it through channels as well as real sockets. One task per
//! connection: reading and writing share it, which keeps a connection's cost
//! to one task and two small buffers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tierlab_protocol::{ClientFrame, CloseReason, Data, ErrorCode, JoinMode, ServerFrame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::{Advance, ConnId, Member};
use crate::ids;
use crate::limits::{Strikes, TokenBucket};
use crate::rooms::Entry;
use crate::store::{Act, Joining, RoomSpec, SeatRef, StoreError};
use crate::AppState;

/// Frames written per flush when the outbox has a backlog.
const BATCH: usize = 64;
const MAX_NAME: usize = 32;
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest a chunk of a replay (up to 256 events) may take to write.
const REPLAY_WRITE: std::time::Duration = std::time::Duration::from_secs(5);

/// What the loop should do after a client message.
enum Step {
    Continue,
    Close(CloseReason),
    /// The client broke the WebSocket protocol: close with this code.
    Violation(u16, &'static str),
    /// The socket failed or the client closed it.
    Gone,
}

/// The close code for a read error that is the client's doing (a frame too
/// large to read, text that is not UTF-8, a broken frame); `None` for a
/// socket that simply failed. tungstenite says which only in its message.
fn violation(error: &dyn std::error::Error) -> Option<(u16, &'static str)> {
    use axum::extract::ws::close_code;
    let text = error.to_string();
    if text.contains("Space limit exceeded") {
        Some((close_code::SIZE, "message too big"))
    } else if text.contains("UTF-8") {
        Some((close_code::INVALID, "text is not UTF-8"))
    } else if text.contains("Protocol error") {
        Some((close_code::PROTOCOL, "WebSocket protocol error"))
    } else {
        None
    }
}

/// The socket went away mid-write.
struct Gone;

fn text(frame: &ServerFrame) -> Message {
    Message::Text(frame.encode().into())
}

fn close_code(reason: CloseReason) -> u16 {
    use axum::extract::ws::close_code;
    match reason {
        CloseReason::Draining => close_code::RESTART,
        CloseReason::SlowConsumer | CloseReason::Abuse | CloseReason::Replaced => {
            close_code::POLICY
        }
        CloseReason::RoomGone => close_code::NORMAL,
    }
}

fn reason_text(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Draining => "draining: reconnect and resume",
        CloseReason::SlowConsumer => "slow consumer",
        CloseReason::Abuse => "too many rejected frames",
        CloseReason::Replaced => "session resumed on another connection",
        CloseReason::RoomGone => "the room or this seat no longer exists",
    }
}

struct Session<'a, S> {
    state: &'a AppState,
    socket: &'a mut S,
    conn: ConnId,
    /// Names this connection as a session's holder (random: a replica's
    /// connection ids repeat across restarts).
    holder: String,
    seat: Option<SeatRef>,
    /// Rooms this connection created (bounded by --rooms-per-connection).
    created: u32,
    bucket: TokenBucket,
    strikes: Strikes,
    outbox: mpsc::Sender<Utf8Bytes>,
    kick: CancellationToken,
}

/// Serves one connection until the client goes, misbehaves, falls behind, or
/// the replica drains.
pub async fn serve<S, E>(mut socket: S, state: Arc<AppState>, conn: ConnId)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: std::error::Error,
{
    let config = &state.config;
    let (outbox, mut inbox) = mpsc::channel(config.send_queue);
    let kick = CancellationToken::new();
    let welcome = ServerFrame::Welcome {
        server: config.server_id.clone(),
    };
    if socket.send(text(&welcome)).await.is_err() {
        return;
    }
    let mut session = Session {
        state: &state,
        socket: &mut socket,
        conn,
        holder: ids::player_id(),
        seat: None,
        created: 0,
        bucket: TokenBucket::new(config.rate, config.burst, Instant::now()),
        strikes: Strikes::new(config.abuse_limit),
        outbox,
        kick: kick.clone(),
    };
    let idle = config.idle_timeout;
    let mut heard = Instant::now();
    let mut pings = tokio::time::interval_at((Instant::now() + idle / 3).into(), idle / 3);
    let ending = loop {
        tokio::select! {
            biased;
            _ = kick.cancelled() => break Step::Close(CloseReason::SlowConsumer),
            _ = state.drain.cancelled() => break Step::Close(CloseReason::Draining),
            Some(first) = inbox.recv() => {
                // A client that stops reading blocks this write; its kick
                // (queue overflow) must still end the connection.
                tokio::select! {
                    written = session.forward(first, &mut inbox) => {
                        if written.is_err() {
                            break Step::Gone;
                        }
                    }
                    _ = kick.cancelled() => break Step::Close(CloseReason::SlowConsumer),
                }
            }
            _ = pings.tick() => {
                if heard.elapsed() >= idle {
                    state.metrics.error("closed_idle");
                    break Step::Violation(axum::extract::ws::close_code::AWAY, "idle: nothing heard");
                }
                if session.socket.send(Message::Ping(Default::default())).await.is_err() {
                    break Step::Gone;
                }
            }
            inbound = session.socket.next() => {
                heard = Instant::now();
                let step = match inbound {
                    Some(Ok(message)) => session.on_message(message).await,
                    Some(Err(e)) => match violation(&e) {
                        Some((code, why)) => Step::Violation(code, why),
                        None => Step::Gone,
                    },
                    None => Step::Gone,
                };
                if !matches!(step, Step::Continue) {
                    break step;
                }
            }
        }
    };
    match ending {
        Step::Close(reason) => session.close(reason).await,
        Step::Violation(code, why) => session.close_frame(code, why).await,
        Step::Continue | Step::Gone => {}
    }
    if let Some(seat) = session.seat.take() {
        state.rooms.disconnect(&seat, conn).await;
    }
}

impl<S, E> Session<'_, S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Gone> {
        self.socket.send(text(frame)).await.map_err(|_| Gone)
    }

    /// Writes a backlog of events with one flush.
    async fn forward(
        &mut self,
        first: Utf8Bytes,
        inbox: &mut mpsc::Receiver<Utf8Bytes>,
    ) -> Result<(), Gone> {
        self.socket
            .feed(Message::Text(first))
            .await
            .map_err(|_| Gone)?;
        for _ in 1..BATCH {
            let Ok(next) = inbox.try_recv() else { break };
            self.socket
                .feed(Message::Text(next))
                .await
                .map_err(|_| Gone)?;
        }
        self.socket.flush().await.map_err(|_| Gone)
    }

    /// Says why, then closes; bounded in time because a slow consumer may
    /// not read even this.
    async fn close(&mut self, reason: CloseReason) {
        let counted = match reason {
            CloseReason::Draining => None,
            CloseReason::SlowConsumer => Some("closed_slow_consumer"),
            CloseReason::Abuse => Some("closed_abuse"),
            CloseReason::Replaced => Some("closed_replaced"),
            CloseReason::RoomGone => Some("closed_room_gone"),
        };
        if let Some(kind) = counted {
            self.state.metrics.error(kind);
        }
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        let said =
            tokio::time::timeout_at(deadline, self.send(&ServerFrame::Close { reason })).await;
        if matches!(said, Ok(Ok(()))) {
            self.close_frame(close_code(reason), reason_text(reason))
                .await;
        }
    }

    /// The WebSocket close handshake: our close frame, then whatever the
    /// client still sends is read and dropped until its close frame (or
    /// `CLOSE_WAIT`). Dropping a socket with unread data makes the kernel
    /// answer with a reset, and the client would never see the close.
    async fn close_frame(&mut self, code: u16, why: &'static str) {
        let frame = CloseFrame {
            code,
            reason: why.into(),
        };
        let handshake = async {
            self.socket
                .send(Message::Close(Some(frame)))
                .await
                .map_err(|_| Gone)?;
            while let Some(Ok(message)) = self.socket.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
            Ok::<(), Gone>(())
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, handshake).await;
    }

    async fn on_message(&mut self, message: Message) -> Step {
        match message {
            Message::Text(body) => self.on_text(body.as_str()).await,
            Message::Binary(_) => {
                self.reject(
                    ErrorCode::BadRequest,
                    None,
                    "binary frames are not part of the protocol".into(),
                )
                .await
            }
            Message::Close(_) => Step::Gone,
            Message::Ping(_) | Message::Pong(_) => Step::Continue,
        }
    }

    async fn on_text(&mut self, body: &str) -> Step {
        let max = self.state.config.max_frame;
        if body.len() > max {
            let message = format!("frame of {} bytes exceeds the {max}-byte limit", body.len());
            return self.reject(ErrorCode::TooLarge, None, message).await;
        }
        if !self.bucket.try_take(Instant::now()) {
            return self
                .reject(
                    ErrorCode::RateLimited,
                    None,
                    "too many frames; slow down".into(),
                )
                .await;
        }
        match ClientFrame::decode(body) {
            Ok(frame) => self.on_frame(frame).await,
            Err(e) => {
                self.reject(ErrorCode::BadRequest, e.id(), e.to_string())
                    .await
            }
        }
    }

    /// Answers a frame the client should not have sent; enough of them close
    /// the connection.
    async fn reject(&mut self, code: ErrorCode, id: Option<u64>, message: String) -> Step {
        if self.answer_error(code, id, message).await.is_err() {
            return Step::Gone;
        }
        if self.strikes.strike(Instant::now()) {
            Step::Close(CloseReason::Abuse)
        } else {
            Step::Continue
        }
    }

    async fn answer_error(
        &mut self,
        code: ErrorCode,
        id: Option<u64>,
        message: String,
    ) -> Result<(), Gone> {
        self.state.metrics.error_code(code);
        self.send(&ServerFrame::Error { code, message, id }).await
    }

    /// A join of a room that does not exist. Guessing room codes earns
    /// strikes, so a sweep is closed as abuse.
    async fn unknown_room(&mut self) -> Step {
        let message = StoreError::UnknownRoom.to_string();
        self.reject(ErrorCode::UnknownRoom, None, message).await
    }

    /// Reports a store failure (not the client's fault: no strike).
    async fn store_error(&mut self, error: StoreError, id: Option<u64>) -> Step {
        match self.answer_error(error.code(), id, error.to_string()).await {
            Ok(()) => Step::Continue,
            Err(Gone) => Step::Gone,
        }
    }

    async fn reply(&mut self, frame: ServerFrame) -> Step {
        match self.send(&frame).await {
            Ok(()) => Step::Continue,
            Err(Gone) => Step::Gone,
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Step {
        match frame {
            ClientFrame::Create {
                game,
                max_players,
                key,
            } => self.create(game, max_players, key).await,
            ClientFrame::Join { room, mode } => self.join(room, mode).await,
            ClientFrame::Act { id, data, key } => self.act(id, data, key).await,
            ClientFrame::Leave => self.leave().await,
            ClientFrame::Ping { id } => self.reply(ServerFrame::Pong { id }).await,
        }
    }

    async fn create(&mut self, game: String, max_players: u32, key: Option<String>) -> Step {
        if let Err(message) = validate_room(&game, max_players, self.state.config.max_room_size) {
            return self.reject(ErrorCode::BadRequest, None, message).await;
        }
        let most = self.state.config.rooms_per_connection;
        if self.created >= most {
            let message = format!("a connection may create at most {most} rooms");
            return self.reject(ErrorCode::RateLimited, None, message).await;
        }
        self.created += 1;
        let spec = RoomSpec { game, max_players };
        match self
            .state
            .rooms
            .create(&spec, &self.state.config.server_id, key.as_deref())
            .await
        {
            Ok(room) => self.reply(ServerFrame::Created { room }).await,
            Err(e) => self.store_error(e, None).await,
        }
    }

    async fn join(&mut self, room: String, mode: JoinMode) -> Step {
        if let Some(seat) = &self.seat {
            let message = format!("already in room {}; leave first", seat.room);
            return self.reject(ErrorCode::BadRequest, None, message).await;
        }
        if !ids::is_room_code(&room) {
            return self.unknown_room().await;
        }
        let entry = match &mode {
            JoinMode::Fresh { name, .. } if name.is_empty() || name.chars().count() > MAX_NAME => {
                let message = format!("`name` must be 1-{MAX_NAME} characters");
                return self.reject(ErrorCode::BadRequest, None, message).await;
            }
            JoinMode::Fresh { name, key } => Entry::Fresh(Joining {
                name,
                key: key.as_deref(),
                holder: &self.holder,
            }),
            JoinMode::Resume { session, .. } if !ids::is_session_token(session) => {
                return self.store_error(StoreError::SessionExpired, None).await;
            }
            JoinMode::Resume { session, since } => Entry::Resume {
                session,
                since: *since,
                holder: &self.holder,
            },
        };
        let member = |seat| Member {
            conn: self.conn,
            seat,
            outbox: self.outbox.clone(),
            kick: self.kick.clone(),
        };
        let (seat, advance, replayed) = match self.state.rooms.enter(&room, entry, member).await {
            Ok(entered) => entered,
            Err(StoreError::UnknownRoom) => return self.unknown_room().await,
            Err(e) => return self.store_error(e, None).await,
        };
        let joined = ServerFrame::Joined {
            room: room.clone(),
            player: seat.seat.player.clone(),
            session: seat.seat.session.clone(),
            seq: seat.seq,
            members: seat.members,
        };
        self.seat = Some(seat.seat);
        if self.send(&joined).await.is_err() {
            return Step::Gone;
        }
        // What the ring handed over waits in the outbox: past the session's
        // replay budget, the connection waits before it is sent.
        pause(self.replay_wait(replayed)).await;
        self.catch_up(&room, advance).await
    }

    /// Replays what a resuming member missed, straight to the socket (so a
    /// long replay is paced by the client rather than overflowing its queue).
    async fn catch_up(&mut self, room: &str, mut advance: Advance) -> Step {
        while let Advance::Fetch { from, to } = advance {
            match self.state.rooms.catch_up(room, self.conn, from, to).await {
                Ok((events, next)) => {
                    let bytes = events.iter().map(|e| e.frame.len()).sum();
                    pause(self.replay_wait(bytes)).await;
                    // The slow-consumer rule holds for a replay too: a
                    // client that resumes and does not read is closed.
                    let write = async {
                        for event in events {
                            self.socket
                                .feed(Message::Text(event.frame.clone()))
                                .await
                                .map_err(|_| Gone)?;
                        }
                        self.socket.flush().await.map_err(|_| Gone)
                    };
                    match tokio::time::timeout(REPLAY_WRITE, write).await {
                        Ok(Ok(())) => {}
                        Ok(Err(Gone)) => return Step::Gone,
                        Err(_) => {
                            self.state.metrics.error("slow_consumer");
                            return Step::Close(CloseReason::SlowConsumer);
                        }
                    }
                    advance = next;
                }
                Err(e) => {
                    // Without the missed events the member cannot have a
                    // gapless stream: unseat it and let the client decide.
                    if let Some(seat) = self.seat.take() {
                        self.state.rooms.disconnect(&seat, self.conn).await;
                    }
                    return self.store_error(e, None).await;
                }
            }
        }
        Step::Continue
    }

    /// How long to wait before `bytes` of replay fit the session's budget
    /// (`--replay-rate`): however often a session resumes, its replays
    /// stream no faster than that once the burst is spent. (Not an `async
    /// fn` of `&self`: the session is not `Sync`, so it cannot be borrowed
    /// across the wait.)
    fn replay_wait(&self, bytes: usize) -> std::time::Duration {
        let Some(seat) = &self.seat else {
            return std::time::Duration::ZERO;
        };
        if bytes == 0 {
            return std::time::Duration::ZERO;
        }
        let wait = self
            .state
            .replays
            .pace(seat.session.clone(), bytes as f64, Instant::now());
        if !wait.is_zero() {
            self.state.metrics.error("replay_paced");
        }
        wait
    }

    async fn act(&mut self, id: u64, data: Data, key: Option<String>) -> Step {
        let Some(seat) = self.seat.clone() else {
            return self
                .reject(
                    ErrorCode::BadRequest,
                    Some(id),
                    "join a room before acting".into(),
                )
                .await;
        };
        let limit = self.state.config.max_act_data;
        if data.get().len() > limit {
            let message = format!(
                "`data` of {} bytes exceeds the {limit}-byte limit",
                data.get().len()
            );
            return self.reject(ErrorCode::TooLarge, Some(id), message).await;
        }
        let act = Act {
            id,
            data: &data,
            key: key.as_deref(),
        };
        match self.state.rooms.act(&seat, &act).await {
            Ok(seq) => self.reply(ServerFrame::Ack { id, seq }).await,
            Err(e) => {
                // The seat is no longer this connection's: say why and go.
                let ending = match e {
                    StoreError::Replaced => Some(CloseReason::Replaced),
                    StoreError::UnknownRoom | StoreError::SessionExpired => {
                        Some(CloseReason::RoomGone)
                    }
                    _ => None,
                };
                match (self.store_error(e, Some(id)).await, ending) {
                    (Step::Continue, Some(reason)) => {
                        self.seat = None;
                        self.state.rooms.hub.detach(&seat.room, self.conn);
                        Step::Close(reason)
                    }
                    (step, _) => step,
                }
            }
        }
    }

    async fn leave(&mut self) -> Step {
        let Some(seat) = self.seat.take() else {
            return self
                .reject(ErrorCode::BadRequest, None, "not in a room".into())
                .await;
        };
        match self.state.rooms.leave(&seat, self.conn).await {
            Ok(()) => Step::Continue,
            Err(e) => self.store_error(e, None).await,
        }
    }
}

/// Checks a room request; the message names the offending field.
pub fn validate_room(game: &str, max_players: u32, max_room_size: u32) -> Result<(), String> {
    if game.is_empty() || game.chars().count() > MAX_NAME {
        return Err(format!("`game` must be 1-{MAX_NAME} characters"));
    }
    if max_players == 0 || max_players > max_room_size {
        return Err(format!(
            "`max_players` must be between 1 and {max_room_size}"
        ));
    }
    Ok(())
}

/// Sleeps for `wait`, without a timer when it is zero (the usual case).
async fn pause(wait: std::time::Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}
