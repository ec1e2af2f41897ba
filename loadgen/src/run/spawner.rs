//! Starts and stops players to follow the load shape: in the closed model
//! it keeps the shape's number of players seated (a ramp-down stops the
//! newest), in the open model it starts the shape's arrivals, each staying
//! for the scenario's session. Players run on the lanes; the spawner only
//! tells the lanes whom to start and stop.

use std::time::Duration;

use crate::lane::{Lanes, PlayerId};
use crate::player::Seat;
use crate::scenario::{Model, Scenario};
use crate::shape::Shape;

#[derive(Debug)]
pub struct Spawner {
    pub shape: Shape,
    model: Model,
    session: Option<Duration>,
    seats: Vec<Seat>,
    /// Running players, newest last (ramp-down stops the newest).
    running: Vec<PlayerId>,
    spawned: u64,
}

impl Spawner {
    pub fn new(scenario: &Scenario, seats: Vec<Seat>) -> Spawner {
        Spawner {
            shape: Shape::new(&scenario.load.stages),
            model: scenario.load.model,
            session: scenario.load.session,
            seats,
            running: Vec::new(),
            spawned: 0,
        }
    }

    /// Brings the players in line with the shape at `elapsed`.
    pub fn follow(&mut self, lanes: &mut Lanes, elapsed: Duration) {
        match self.model {
            Model::Closed => {
                let target = self.shape.value_at(elapsed).round() as usize;
                while self.running.len() < target.min(self.seats.len()) {
                    self.start(lanes, self.running.len());
                }
                while self.running.len() > target {
                    if let Some(player) = self.running.pop() {
                        lanes.stop(player);
                    }
                }
            }
            Model::Open => {
                let due = self.shape.arrivals(elapsed).floor() as u64;
                while self.spawned < due {
                    let seat = (self.spawned % self.seats.len().max(1) as u64) as usize;
                    self.start(lanes, seat);
                }
            }
        }
    }

    fn start(&mut self, lanes: &mut Lanes, seat: usize) {
        let Some(seat) = self.seats.get(seat).cloned() else {
            return;
        };
        let session = self.session.filter(|_| self.model == Model::Open);
        self.running.push(lanes.spawn(seat, session));
        self.spawned += 1;
    }
}
