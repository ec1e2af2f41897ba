//! Starts and stops players to follow the load shape: in the closed model
//! it keeps the shape's number of players seated (a ramp-down stops the
//! newest), in the open model it starts the shape's arrivals, each staying
//! for the scenario's session.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::player::{self, Arena, Seat};
use crate::scenario::{Model, Scenario};
use crate::shape::Shape;

pub struct Spawner {
    pub shape: Shape,
    model: Model,
    session: Option<Duration>,
    seats: Vec<Seat>,
    arena: Arc<Arena>,
    stop_all: CancellationToken,
    /// Tokens of running players, newest last (ramp-down stops the newest).
    running: Vec<CancellationToken>,
    spawned: u64,
    tasks: JoinSet<()>,
}

impl Spawner {
    pub fn new(scenario: &Scenario, seats: Vec<Seat>, arena: Arc<Arena>) -> Spawner {
        Spawner {
            shape: Shape::new(&scenario.load.stages),
            model: scenario.load.model,
            session: scenario.load.session,
            seats,
            arena,
            stop_all: CancellationToken::new(),
            running: Vec::new(),
            spawned: 0,
            tasks: JoinSet::new(),
        }
    }

    /// Brings the players in line with the shape at `elapsed`.
    pub fn follow(&mut self, elapsed: Duration) {
        while self.tasks.try_join_next().is_some() {}
        match self.model {
            Model::Closed => {
                let target = self.shape.value_at(elapsed).round() as usize;
                self.running.retain(|t| !t.is_cancelled());
                while self.running.len() < target.min(self.seats.len()) {
                    self.start(self.running.len());
                }
                while self.running.len() > target {
                    if let Some(token) = self.running.pop() {
                        token.cancel();
                    }
                }
            }
            Model::Open => {
                let due = self.shape.arrivals(elapsed).floor() as u64;
                while self.spawned < due {
                    let seat = (self.spawned % self.seats.len().max(1) as u64) as usize;
                    self.start(seat);
                }
            }
        }
    }

    fn start(&mut self, seat: usize) {
        let Some(seat) = self.seats.get(seat).cloned() else {
            return;
        };
        let token = self.stop_all.child_token();
        let arena = Arc::clone(&self.arena);
        let player_stop = token.clone();
        if let Some(session) = self.session.filter(|_| self.model == Model::Open) {
            let ends = token.clone();
            self.tasks.spawn(async move {
                tokio::time::sleep(session).await;
                ends.cancel();
            });
        }
        self.tasks.spawn(player::play(arena, seat, player_stop));
        self.running.push(token);
        self.spawned += 1;
    }

    /// Stops every player and waits (bounded) for their final records.
    pub async fn stop(mut self, within: Duration) {
        self.stop_all.cancel();
        let _ = tokio::time::timeout(within, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}
