//! What a player shares with its lane (the lane's ledger it reports into and
//! the pacer of its acts: [`Lane`]) and the switch its lane stops it with
//! ([`Control`]). Defined beside the player, which needs them, so that the
//! lane depends on the player and not the other way round.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::lane::Pacer;
use crate::stats::{Ledger, Sample};

/// What a player shares with the other players of its lane.
#[derive(Debug)]
pub struct Lane {
    /// The lane closes its seconds and hands it over; players only add.
    pub(crate) ledger: RefCell<Ledger>,
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
