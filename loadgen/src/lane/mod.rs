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

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tierlab_record::Window;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

pub use self::pacer::{Pacer, Until};
use crate::player::{self, Arena, Control, Lane, Seat};
use crate::stats::Ledger;

/// Scheduler ticks between looks at the sockets and the timer: tokio's
/// default (61) let a due act wait behind 61 frames on a busy lane.
const EVENT_INTERVAL: u32 = 8;

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
