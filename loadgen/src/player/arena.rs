//! What every player of a run shares (the [`Arena`]: behaviour, the run's
//! clock, the wire, whether the run is winding down) and who one player is
//! and where it plays (its [`Seat`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scenario::Behaviour;
use crate::wire::Wire;

/// What every player of a run shares.
#[derive(Debug)]
pub struct Arena {
    pub behaviour: Behaviour,
    pub started: Instant,
    pub name_prefix: String,
    /// Set when the run winds down: players stop acting but keep reading,
    /// so events in flight still reach everyone before they leave.
    quiescing: AtomicBool,
    /// The padding every act carries (`behaviour.payload` bytes), built once.
    pub(super) pad: String,
    /// Replicas a player tries in turn when its own is unreachable (empty
    /// when players go through the load balancer, which does that itself).
    pub fallbacks: Vec<Arc<str>>,
    /// The wall clock at `started`, µs since the Unix epoch: acts carry
    /// wall-clock stamps, so a member on another worker (another machine)
    /// can time them too.
    pub(super) epoch_us: u64,
    /// This worker's slice, stamped into acts so members can tell deliveries
    /// from each worker apart (clock skew between workers shows there).
    pub worker: Option<u32>,
    /// The protocol the players speak (default: the reference protocol).
    pub wire: Box<dyn Wire>,
}

impl Arena {
    pub fn new(behaviour: Behaviour, name_prefix: String) -> Arena {
        Arena {
            pad: "x".repeat(behaviour.payload as usize),
            behaviour,
            started: Instant::now(),
            name_prefix,
            quiescing: AtomicBool::new(false),
            fallbacks: Vec::new(),
            epoch_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            worker: None,
            wire: Box::new(crate::wire::reference::Reference),
        }
    }

    pub(super) fn ms(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX)
    }

    pub(super) fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// `at` in µs since the run started.
    pub(super) fn us_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_micros() as u64
    }

    /// The moment `us` µs after the run started.
    pub(super) fn instant_at(&self, us: u64) -> Instant {
        self.started + Duration::from_micros(us)
    }

    /// Players stop acting from now on.
    pub fn quiesce(&self) {
        self.quiescing.store(true, Ordering::Relaxed);
    }

    pub fn is_quiescing(&self) -> bool {
        self.quiescing.load(Ordering::Relaxed)
    }
}

/// Who a player is and where it plays.
#[derive(Debug, Clone)]
pub struct Seat {
    pub index: u32,
    pub room_index: u32,
    pub room: Arc<str>,
    pub url: Arc<str>,
    pub idle: bool,
}
