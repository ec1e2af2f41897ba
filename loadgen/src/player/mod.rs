//! One virtual player: connects, joins its room, acts at its rate, reads
//! everything the server sends, and reports samples. One task per player,
//! kept small: the WebSocket buffers are set explicitly (4 KiB read, no write
//! buffer) and nothing per player grows with the length of the run. What is
//! said on the wire is the arena's [`Wire`] (the reference protocol or a
//! Socket.IO game); this loop is the same for both.
//!
//! Every act carries its *intended* send time (µs since the run started) in
//! `data.t`; ack and fan-out latencies are measured from it, so a generator
//! that falls behind shows up as latency instead of hiding it (coordinated
//! omission, as wrk2 corrects it).

mod arena;
mod connect;
mod resend;
mod seen;
mod share;

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_tungstenite::tungstenite::Message;

use tierlab_record::Latency;

use crate::checker::senders::SenderWatch;
use crate::checker::MemberRecord;
use crate::scenario::{Arrivals, Backoff};
use crate::stats::{Sample, Stream};
use crate::wire::{Entry, Guarantee, Incoming};

pub use self::arena::{Arena, Seat};
use self::connect::{await_joined, send};
pub use self::connect::{connect, source_for, ws_config, ConnectError, Socket};
use self::resend::{Policy, Resends};
use self::seen::Seen;
pub use self::share::{Control, Lane};

const RECONNECT_GIVE_UP: Duration = Duration::from_secs(60);

/// A seat as the player holds it.
struct Held {
    ws: Socket,
    session: String,
    seen: Seen,
}

struct Player {
    arena: Arc<Arena>,
    /// Its lane: where it reports, and the pacer of its acts.
    lane: Rc<Lane>,
    control: Rc<Control>,
    seat: Seat,
    rng: SmallRng,
    next_id: u64,
    /// Acts awaiting their ack: (id, intended send time µs).
    pending: VecDeque<(u64, u64)>,
    /// Acts that may still be resent (only with `act_retries`).
    resends: Resends,
}

/// Plays on `lane` until `control` says stop, then leaves.
pub async fn play(arena: Arc<Arena>, lane: Rc<Lane>, seat: Seat, control: Rc<Control>) {
    let mut player = Player {
        rng: SmallRng::seed_from_u64(u64::from(seat.index) ^ 0x5eed),
        arena,
        lane,
        control,
        seat,
        next_id: 0,
        pending: VecDeque::new(),
        resends: Resends::default(),
    };
    let Some(mut held) = Box::pin(player.enter(None, false)).await else {
        return;
    };
    loop {
        match player.session(&mut held).await {
            Ending::Stop => {
                // Stopped by the end of the run, after the drain: it stayed
                // to the end and is owed every acked event. Sent away earlier
                // (a ramp-down, its session's end) — even if it only got to
                // stop once the run went quiet — it left, and is owed only
                // what came before: others kept acting after it stopped
                // reading.
                held.seen.set_stayed(player.control.stayed_to_the_end());
                player.leave(&mut held).await;
                player.end_seat(held);
                return;
            }
            Ending::Churn => {
                player.leave(&mut held).await;
                player.end_seat(held);
                let Some(next) = Box::pin(player.enter(None, false)).await else {
                    return;
                };
                held = next;
            }
            Ending::Dropped { deliberate } => {
                player.lane.report(Sample::Online(-1));
                if !deliberate {
                    player.lane.report(Sample::Error("disconnected"));
                } else {
                    let _ = held.ws.close(None).await;
                }
                // Entering (connect + handshake) is a large future needed only
                // briefly: boxed, it does not weigh on every idle player's task.
                // Without resume the player joins again, and what it missed
                // meanwhile stays owed.
                let since = held.seen.last_seen();
                let resume = player
                    .arena
                    .wire
                    .resumes()
                    .then_some((held.session.as_str(), since));
                let again = resume.is_none();
                match Box::pin(player.enter(resume, again)).await {
                    Some(resumed) => {
                        held.ws = resumed.ws;
                    }
                    None => {
                        // Could not get the seat back: what it saw stands as
                        // a member who left; a fresh seat starts over.
                        player.end_seat_offline(held);
                        let Some(next) = Box::pin(player.enter(None, false)).await else {
                            return;
                        };
                        held = next;
                    }
                }
            }
        }
    }
}

enum Ending {
    Stop,
    Churn,
    Dropped { deliberate: bool },
}

/// What a server frame asks of the player loop.
enum Reaction {
    End(Ending),
    /// Send this at once (a heartbeat's answer).
    Answer(String),
}

impl Player {
    /// Connects and joins (fresh, or resuming `session` after `since`), with
    /// backoff while the target is unreachable. `again`: a fresh join that
    /// comes back after a drop (timed as a reconnect). `None` once it gives
    /// up or the run stops.
    async fn enter(&mut self, resume: Option<(&str, u64)>, again: bool) -> Option<Held> {
        let control = Rc::clone(&self.control);
        let back = resume.is_some() || again;
        let started = Instant::now();
        let behaviour = &self.arena.behaviour;
        let (min, max, policy) = (
            behaviour.backoff_min,
            behaviour.backoff_max,
            behaviour.backoff,
        );
        // A well-behaved client waits a random part of the first backoff
        // before it tries again, so a crowd dropped together spreads out.
        if back && policy == Backoff::Exponential {
            let first = min.mul_f64(self.rng.random::<f64>());
            tokio::select! {
                _ = control.stopped() => return None,
                _ = tokio::time::sleep(first) => {}
            }
        }
        let mut backoff = min;
        for attempt in 0usize.. {
            if control.is_stopped() || started.elapsed() > RECONNECT_GIVE_UP {
                return None;
            }
            match self.try_enter(resume, attempt).await {
                Ok(held) => {
                    if back {
                        self.lane.report(Sample::Latency {
                            latency: Latency::Reconnect,
                            us: started.elapsed().as_micros() as u64,
                        });
                    }
                    self.lane.report(Sample::Online(1));
                    return Some(held);
                }
                Err("session_expired") if resume.is_some() => {
                    self.lane.report(Sample::Error("session_expired"));
                    return None;
                }
                Err(kind) => self.lane.report(Sample::Error(kind)),
            }
            let wait = match policy {
                Backoff::Immediate => min,
                Backoff::Exponential => backoff.mul_f64(self.rng.random_range(0.5..1.5)),
            };
            tokio::select! {
                _ = control.stopped() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(max);
        }
        None
    }

    /// Its own replica first; after a failure, the next one in turn.
    fn url_for(&self, attempt: usize) -> &str {
        let fallbacks = &self.arena.fallbacks;
        if attempt == 0 || fallbacks.is_empty() {
            return &self.seat.url;
        }
        &fallbacks[(self.seat.index as usize + attempt) % fallbacks.len()]
    }

    async fn try_enter(
        &mut self,
        resume: Option<(&str, u64)>,
        attempt: usize,
    ) -> Result<Held, &'static str> {
        let t0 = Instant::now();
        let mut ws = connect(self.url_for(attempt), self.seat.index)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "connect failed");
                "connect"
            })?;
        self.lane.report(Sample::Latency {
            latency: Latency::Connect,
            us: t0.elapsed().as_micros() as u64,
        });
        let t1 = Instant::now();
        let name = format!("{}{}", self.arena.name_prefix, self.seat.index);
        let entry = Entry {
            room: &self.seat.room,
            name: &name,
            resume,
        };
        let (player, session, seq) = await_joined(&mut ws, &*self.arena.wire, entry).await?;
        if resume.is_none() {
            self.lane.report(Sample::Latency {
                latency: Latency::Join,
                us: t1.elapsed().as_micros() as u64,
            });
        }
        let player = player.unwrap_or(name);
        let seen = match self.arena.wire.guarantee() {
            Guarantee::ServerSeqs => Seen::Seqs(MemberRecord::new(&self.seat.room, &player, seq)),
            Guarantee::SenderCounters { .. } => Seen::Senders(Box::new(SenderWatch::new(
                self.seat.room_index,
                &player,
                self.arena.ms(),
            ))),
        };
        Ok(Held { ws, session, seen })
    }

    /// Says goodbye where the protocol has a way to, and closes.
    async fn leave(&self, held: &mut Held) {
        if let Some(bye) = self.arena.wire.leave() {
            let _ = send(&mut held.ws, bye).await;
        }
        let _ = held.ws.close(None).await;
    }

    fn end_seat(&self, held: Held) {
        self.lane.report(Sample::Online(-1));
        self.end_seat_offline(held);
    }

    fn end_seat_offline(&self, held: Held) {
        self.lane.report(held.seen.into_sample());
    }

    /// Time until the next act after one intended at `after` (µs).
    fn next_act(&mut self, after: u64) -> u64 {
        let b = &self.arena.behaviour;
        let mean = 1e6 / b.act_rate;
        let gap = match b.arrivals {
            Arrivals::Fixed => mean,
            Arrivals::Poisson => -mean * (1.0 - self.rng.random::<f64>()).ln(),
        };
        after + gap as u64 + b.think.as_micros() as u64
    }

    /// An exponential wait with `per_minute` events per minute (never, at 0).
    fn someday(&mut self, per_minute: f64) -> Duration {
        if per_minute <= 0.0 {
            return Duration::from_secs(86_400 * 365);
        }
        let mean = 60.0 / per_minute;
        Duration::from_secs_f64(-mean * (1.0 - self.rng.random::<f64>()).ln())
    }

    /// Plays one connection until it ends, for whatever reason. The next
    /// act takes its place in the lane's pacer once, when it is planned: a
    /// frame arriving meanwhile re-arms no timer.
    async fn session(&mut self, held: &mut Held) -> Ending {
        let acting = !self.seat.idle;
        let control = Rc::clone(&self.control);
        let churn = tokio::time::sleep(self.someday(self.arena.behaviour.churn));
        let reconnect = tokio::time::sleep(self.someday(self.arena.behaviour.reconnect));
        tokio::pin!(churn, reconnect);
        // The first act comes at a random phase, so players don't act in lockstep.
        let first = self.arena.now_us()
            + (self.rng.random::<f64>() * 1e6 / self.arena.behaviour.act_rate) as u64;
        let mut intended = first;
        let mut due = self.lane.pacer.until(self.arena.instant_at(intended));
        loop {
            // Winding down, players only read: an act now would land at the
            // very end of the drain, and a reconnect could leave its replay
            // unread when the run stops.
            let quiet = self.arena.is_quiescing();
            tokio::select! {
                biased;
                _ = control.stopped() => {
                    self.read_what_arrived(held);
                    return Ending::Stop;
                }
                message = held.ws.next() => {
                    // Received now: before parsing and bookkeeping.
                    let at = Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => match self.on_frame(held, text.as_str(), at) {
                            Some(Reaction::End(ending)) => return ending,
                            Some(Reaction::Answer(answer)) => {
                                let answered = send(&mut held.ws, answer).await;
                                if !answered {
                                    return Ending::Dropped { deliberate: false };
                                }
                            }
                            None => {}
                        },
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            return Ending::Dropped { deliberate: false }
                        }
                        Some(Ok(_)) => {}
                    }
                }
                () = &mut due, if acting && !quiet => {
                    // Planned before the run went quiet: an act now would
                    // land at the very end of the drain.
                    if self.arena.is_quiescing() {
                        continue;
                    }
                    if !self.act(held, intended).await {
                        return Ending::Dropped { deliberate: false };
                    }
                    intended = self.next_act(intended);
                    due = self.lane.pacer.until(self.arena.instant_at(intended));
                }
                () = self.resends.due(), if !quiet => {
                    let due = self.resends.take_due(tokio::time::Instant::now());
                    if let Some(frame) = due {
                        if !send(&mut held.ws, frame).await {
                            return Ending::Dropped { deliberate: false };
                        }
                    }
                }
                _ = &mut churn, if !quiet => return Ending::Churn,
                _ = &mut reconnect, if !quiet => {
                    return Ending::Dropped { deliberate: true };
                }
            }
        }
    }

    /// Reads every frame already received, without waiting for more, so a
    /// player that stays to the end records everything that reached it.
    fn read_what_arrived(&mut self, held: &mut Held) {
        use futures_util::FutureExt;
        for _ in 0..10_000 {
            match held.ws.next().now_or_never() {
                Some(Some(Ok(Message::Text(text)))) => {
                    let _ = self.on_frame(held, text.as_str(), Instant::now());
                }
                Some(Some(Ok(_))) => {}
                _ => return,
            }
        }
    }

    async fn act(&mut self, held: &mut Held, intended: u64) -> bool {
        self.next_id += 1;
        let id = self.next_id;
        let sent = self.arena.epoch_us + intended;
        let (p, pad) = (self.seat.index, &self.arena.pad);
        let fields = match self.arena.worker {
            Some(w) => format!(r#""t":{sent},"w":{w},"p":{p},"n":{id},"pad":"{pad}""#),
            None => format!(r#""t":{sent},"p":{p},"n":{id},"pad":"{pad}""#),
        };
        let behaviour = &self.arena.behaviour;
        let keyed = behaviour.idempotency_keys;
        let Some(frame) = self.arena.wire.act(&self.seat.room, id, &fields, keyed) else {
            return true;
        };
        if behaviour.act_retries > 0 {
            self.resends.keep(id, &frame);
        }
        let guarantee = self.arena.wire.guarantee();
        let by_sender = guarantee != Guarantee::ServerSeqs;
        self.lane.report(Sample::Act {
            sent: by_sender.then(|| (p, id, self.arena.ms())),
        });
        let acked_on_write = guarantee == (Guarantee::SenderCounters { acks: false });
        if !acked_on_write {
            self.pending.push_back((id, intended));
        }
        let written = send(&mut held.ws, frame).await;
        if !written {
            return false;
        }
        // The generator's own lateness: from when the act was meant to go
        // to when its frame was written to the socket.
        self.lane.report(Sample::Latency {
            latency: Latency::SendLag,
            us: self.arena.now_us().saturating_sub(intended),
        });
        if acked_on_write {
            self.lane.report(Sample::Ack {
                stream: self.stream(Some(p)),
                seq: id,
                us: None,
            });
        }
        true
    }

    fn stream(&self, sender: Option<u32>) -> Stream {
        Stream {
            room: self.seat.room_index,
            sender,
        }
    }

    /// Handles one server frame; `Some` when it ends the connection, or a
    /// frame to answer with at once.
    /// `at` is when it was read from the socket.
    fn on_frame(&mut self, held: &mut Held, text: &str, at: Instant) -> Option<Reaction> {
        let now = self.arena.us_at(at);
        match self.arena.wire.read(text) {
            Incoming::Event { seq, stamp } => {
                let own =
                    stamp.is_some_and(|s| s.p == Some(self.seat.index) && s.w == self.arena.worker);
                held.seen.saw(seq, stamp, own);
                if let Some(stamp) = stamp {
                    // Signed: on another worker's clock it may come out negative.
                    let one_way = (self.arena.epoch_us + now) as i64 - stamp.t as i64;
                    self.lane.report(Sample::Delivery {
                        us: one_way.max(0) as u64,
                        from: stamp.w.map(|w| (w, one_way)),
                    });
                }
            }
            Incoming::Ack { id, seq } => {
                self.resends.acked(id);
                if let Some(sent) = self.take_pending(id) {
                    // Without a server seq, the sender's counter is the seq
                    // of its own stream.
                    let (stream, seq) = match seq {
                        Some(seq) => (self.stream(None), seq),
                        None => (self.stream(Some(self.seat.index)), id),
                    };
                    self.lane.report(Sample::Ack {
                        stream,
                        seq,
                        us: Some(now.saturating_sub(sent)),
                    });
                }
            }
            Incoming::Refused { id, code } => {
                let behaviour = &self.arena.behaviour;
                let policy = Policy {
                    tries: behaviour.act_retries,
                    first_wait: behaviour.act_retry_after,
                    max_wait: behaviour.backoff_max,
                };
                let now = tokio::time::Instant::now();
                let retried = id.is_some_and(|id| self.resends.plan(id, code, policy, now));
                if let (Some(id), false) = (id, retried) {
                    self.take_pending(id);
                }
                self.lane.report(Sample::Error(code));
            }
            Incoming::Reply(answer) => return Some(Reaction::Answer(answer)),
            Incoming::Close => return Some(Reaction::End(Ending::Dropped { deliberate: false })),
            Incoming::RoomGone => {
                // Put out of a room the store lost, it did not leave: it is
                // owed every event acked there, and what it never got is lost.
                held.seen.set_stayed(true);
                return Some(Reaction::End(Ending::Dropped { deliberate: false }));
            }
            Incoming::Other => {}
            Incoming::Bad => self.lane.report(Sample::Error("bad_frame")),
        }
        None
    }

    fn take_pending(&mut self, id: u64) -> Option<u64> {
        let at = self
            .pending
            .iter()
            .position(|(pending, _)| *pending == id)?;
        self.pending.remove(at).map(|(_, sent)| sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_task_stays_small() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let arena = Arc::new(Arena::new(
            crate::scenario::Behaviour::default(),
            "p".into(),
        ));
        let lane = Rc::new(Lane::new().unwrap());
        let seat = Seat {
            index: 0,
            room_index: 0,
            room: "ROOM22".into(),
            url: "ws://127.0.0.1:1/ws".into(),
            idle: true,
        };
        let task = play(arena, lane, seat, Rc::new(Control::default()));
        let size = std::mem::size_of_val(&task);
        eprintln!("player task: {size} bytes");
        assert!(
            size <= 2048,
            "a player task of {size} bytes: box what is not needed while playing"
        );
    }
}
