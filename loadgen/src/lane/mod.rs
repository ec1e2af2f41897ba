//! The players' threads ("lanes"): one per core, each a single-threaded
//! tokio runtime that owns its players' sockets, their act schedule (a
//! [`Pacer`] on a precise timer) and their measurements (a [`Ledger`] the
//! players write into directly). A player is never woken from another
//! thread and reports nothing across one; the run talks to a lane only by
//! command — start this seat, stop that player, close the second, hand
//! over the ledger — and adds the lanes' seconds and ledgers with `+=`.
//!
//! Why: on a shared multi-threaded runtime every event cost a cross-thread
//! wake-up (a futex: ~20 % of the generator's CPU in `perf`), every sample
//! a channel send, and every act a millisecond-granular tokio timer whose
//! lateness went into the latencies measured from the act's intended time.

mod pacer;
pub mod timer;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tierlab_record::Window;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

pub use self::pacer::{Pacer, Until};
use crate::player::{self, Arena, Seat};
use crate::stats::{Ledger, Sample};

/// Scheduler ticks between looks at the sockets and the timer: tokio's
/// default (61) let a due act wait behind 61 frames on a busy lane.
const EVENT_INTERVAL: u32 = 8;

/// What a player shares with the other players of its lane.
#[derive(Debug)]
pub struct Lane {
    ledger: RefCell<Ledger>,
    pub pacer: Rc<Pacer>,
}

impl Lane {
    /// A lane's shared state; inside a runtime with I/O (its timer).
    pub fn new() -> std::io::Result<Lane> {
        Ok(Lane {
            ledger: RefCell::new(Ledger::default()),
            pacer: Rc::new(Pacer::new()?),
        })
    }

    pub fn report(&self, sample: Sample) {
        self.ledger.borrow_mut().apply(sample);
    }
}

/// Whether a player has been told to stop, and how to wake it when it is.
#[derive(Debug, Default)]
pub struct Control {
    stop: Cell<bool>,
    /// Stopped by the end of the run (after the drain), not sent away
    /// earlier by a ramp-down or a session's end: it stayed to the end.
    at_end: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Control {
    /// Stops the player because the run is over.
    pub fn finish(&self) {
        self.at_end.set(true);
        self.stop();
    }

    /// Whether the player was stopped by the end of the run.
    pub fn stayed_to_the_end(&self) -> bool {
        self.at_end.get()
    }

    pub fn stop(&self) {
        self.stop.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.get()
    }

    /// Ready once the player is told to stop.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped(self)
    }
}

#[derive(Debug)]
pub struct Stopped<'a>(&'a Control);

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.stop.get() {
            return Poll::Ready(());
        }
        let mut waker = self.0.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

enum Command {
    Start {
        id: u64,
        seat: Seat,
        /// Open model: the player leaves after this long.
        session: Option<Duration>,
    },
    Stop {
        id: u64,
    },
    /// Closes second `t`: the lane's window and its players online.
    Close {
        t: u64,
        reply: oneshot::Sender<(Window, i64)>,
    },
    LastAck {
        reply: oneshot::Sender<Option<Instant>>,
    },
    /// Stops every player, waits `within` for their last records, and
    /// hands the ledger over; the lane ends.
    Finish {
        within: Duration,
        reply: oneshot::Sender<Ledger>,
    },
}

/// A running player, by lane and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerId {
    lane: usize,
    id: u64,
}

/// The lanes of a run.
#[derive(Debug)]
pub struct Lanes {
    lanes: Vec<mpsc::UnboundedSender<Command>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: u64,
}

impl Lanes {
    /// Starts `count` lanes for players of `arena`.
    pub fn start(arena: &Arc<Arena>, count: usize) -> std::io::Result<Lanes> {
        let mut lanes = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let (commands, inbox) = mpsc::unbounded_channel();
            let arena = Arc::clone(arena);
            let thread = std::thread::Builder::new()
                .name(format!("tierlab-lane-{index}"))
                .spawn(move || run_lane(arena, inbox))?;
            lanes.push(commands);
            threads.push(thread);
        }
        Ok(Lanes {
            lanes,
            threads,
            next: 0,
        })
    }

    /// Starts a player on the next lane in turn.
    pub fn spawn(&mut self, seat: Seat, session: Option<Duration>) -> PlayerId {
        let id = self.next;
        self.next += 1;
        let lane = (id % self.lanes.len() as u64) as usize;
        let _ = self.lanes[lane].send(Command::Start { id, seat, session });
        PlayerId { lane, id }
    }

    pub fn stop(&self, player: PlayerId) {
        let _ = self.lanes[player.lane].send(Command::Stop { id: player.id });
    }

    /// Closes second `t` on every lane: their windows added, and the players
    /// online at its end.
    pub async fn close_second(&self, t: u64) -> (Window, i64) {
        let mut total = Window::new();
        let mut online = 0;
        for lane in &self.lanes {
            let (reply, answer) = oneshot::channel();
            let _ = lane.send(Command::Close { t, reply });
            if let Ok((window, players)) = answer.await {
                total += &window;
                online += players;
            }
        }
        (total, online)
    }

    /// When the last ack arrived on any lane.
    pub async fn last_ack(&self) -> Option<Instant> {
        let mut last = None;
        for lane in &self.lanes {
            let (reply, answer) = oneshot::channel();
            let _ = lane.send(Command::LastAck { reply });
            last = last.max(answer.await.ok().flatten());
        }
        last
    }

    /// Stops every player, waits (up to `within`) for their final records,
    /// and returns every lane's ledger added into one.
    pub async fn finish(self, within: Duration) -> Ledger {
        let mut all = Ledger::default();
        let answers: Vec<_> = self
            .lanes
            .iter()
            .map(|lane| {
                let (reply, answer) = oneshot::channel();
                let _ = lane.send(Command::Finish { within, reply });
                answer
            })
            .collect();
        for answer in answers {
            if let Ok(ledger) = answer.await {
                all += ledger;
            }
        }
        drop(self.lanes);
        for thread in self.threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        all
    }
}

/// A lane's thread: its runtime, its pacer and its players, until Finish.
fn run_lane(arena: Arc<Arena>, inbox: mpsc::UnboundedReceiver<Command>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a lane");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(arena, inbox));
}

async fn serve(arena: Arc<Arena>, mut inbox: mpsc::UnboundedReceiver<Command>) {
    let lane = match Lane::new() {
        Ok(lane) => Rc::new(lane),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a lane's timer");
            return;
        }
    };
    let runner = Rc::clone(&lane.pacer);
    let pacing = tokio::task::spawn_local(async move { runner.run().await });
    let mut players: HashMap<u64, Rc<Control>> = HashMap::new();
    let mut tasks = JoinSet::new();
    while let Some(command) = inbox.recv().await {
        match command {
            Command::Start { id, seat, session } => {
                let control = Rc::new(Control::default());
                players.insert(id, Rc::clone(&control));
                if let Some(session) = session {
                    let ends = Rc::clone(&control);
                    tasks.spawn_local(async move {
                        tokio::time::sleep(session).await;
                        ends.stop();
                    });
                }
                tasks.spawn_local(player::play(
                    Arc::clone(&arena),
                    Rc::clone(&lane),
                    seat,
                    control,
                ));
            }
            Command::Stop { id } => {
                if let Some(control) = players.remove(&id) {
                    control.stop();
                }
            }
            Command::Close { t, reply } => {
                while tasks.try_join_next().is_some() {}
                players.retain(|_, control| Rc::strong_count(control) > 1);
                let mut ledger = lane.ledger.borrow_mut();
                let window = ledger.close_second(t);
                let _ = reply.send((window, ledger.online));
            }
            Command::LastAck { reply } => {
                let _ = reply.send(lane.ledger.borrow().last_ack);
            }
            Command::Finish { within, reply } => {
                for control in players.values() {
                    control.finish();
                }
                let _ = tokio::time::timeout(within, async {
                    while tasks.join_next().await.is_some() {}
                })
                .await;
                tasks.abort_all();
                let _ = reply.send(std::mem::take(&mut *lane.ledger.borrow_mut()));
                break;
            }
        }
    }
    pacing.abort();
}

#[cfg(test)]
mod tests {
    use super::Control;

    #[test]
    fn only_the_end_of_the_run_makes_a_player_stay_to_the_end() {
        // A ramp-down's stop that the player only gets to after the run
        // went quiet still means it left: others acted after it stopped
        // reading, and it is not owed their events.
        let sent_away = Control::default();
        sent_away.stop();
        assert!(sent_away.is_stopped() && !sent_away.stayed_to_the_end());
        let at_end = Control::default();
        at_end.finish();
        assert!(at_end.is_stopped() && at_end.stayed_to_the_end());
    }
}
