//! One lane's deadline queue for its players' acts: a heap of (deadline,
//! waker) behind one precise timer armed for the earliest. A player waits
//! for its next act with [`Pacer::until`]; the lane's pacer task wakes every
//! player whose deadline has passed, on the lane's own thread, so the wake
//! costs no cross-thread hop and no timer of its own. A frame that arrives
//! meanwhile does not re-arm anything: the act's place in the queue stays.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::timer::PreciseTimer;

/// A player waiting for `at`.
struct Due {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// The earliest deadline on top of the (max-)heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

pub struct Pacer {
    timer: PreciseTimer,
    queue: RefCell<BinaryHeap<Due>>,
    /// The deadline the timer is armed for.
    armed: Cell<Option<Instant>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("waiting", &self.queue.borrow().len())
            .finish()
    }
}

impl Pacer {
    pub fn new() -> std::io::Result<Pacer> {
        Ok(Pacer {
            timer: PreciseTimer::new()?,
            queue: RefCell::new(BinaryHeap::new()),
            armed: Cell::new(None),
        })
    }

    /// A future ready once `at` has passed.
    pub fn until(self: &Rc<Self>, at: Instant) -> Until {
        Until {
            pacer: Rc::clone(self),
            at,
            queued: false,
        }
    }

    fn enqueue(&self, at: Instant, waker: Waker) {
        self.queue.borrow_mut().push(Due { at, waker });
        if self.armed.get().is_none_or(|armed| at < armed) {
            self.arm(at);
        }
    }

    fn arm(&self, at: Instant) {
        match self.timer.arm(at) {
            Ok(()) => self.armed.set(Some(at)),
            Err(e) => tracing::warn!(error = %e, "cannot arm the lane's timer"),
        }
    }

    /// The lane's pacer task: wakes the players whose deadline passed.
    pub async fn run(&self) {
        loop {
            if let Err(e) = self.timer.fired().await {
                tracing::warn!(error = %e, "the lane's timer failed");
                return;
            }
            self.armed.set(None);
            let now = Instant::now();
            let mut queue = self.queue.borrow_mut();
            while queue.peek().is_some_and(|due| due.at <= now) {
                if let Some(due) = queue.pop() {
                    due.waker.wake();
                }
            }
            let next = queue.peek().map(|due| due.at);
            drop(queue);
            if let Some(at) = next {
                self.arm(at);
            }
        }
    }
}

/// Ready once its deadline has passed; queued on the pacer at its first
/// pending poll, and only then.
#[derive(Debug)]
pub struct Until {
    pacer: Rc<Pacer>,
    at: Instant,
    queued: bool,
}

impl Until {
    pub fn at(&self) -> Instant {
        self.at
    }
}

impl Future for Until {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if !self.queued {
            self.queued = true;
            self.pacer.enqueue(self.at, cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Players wake in deadline order, each after its own deadline, however
    /// they queued.
    #[test]
    fn players_wake_in_deadline_order_and_never_early() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let woke = local.block_on(&runtime, async {
            let pacer = Rc::new(Pacer::new().unwrap());
            let runner = Rc::clone(&pacer);
            tokio::task::spawn_local(async move { runner.run().await });
            let start = Instant::now();
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut players = Vec::new();
            for (i, ms) in [5u64, 1, 3, 2, 4].into_iter().enumerate() {
                let (pacer, order) = (Rc::clone(&pacer), Rc::clone(&order));
                let at = start + Duration::from_millis(ms);
                players.push(tokio::task::spawn_local(async move {
                    pacer.until(at).await;
                    assert!(Instant::now() >= at, "player {i} woke early");
                    order.borrow_mut().push(ms);
                }));
            }
            for player in players {
                player.await.unwrap();
            }
            let woke = order.borrow().clone();
            woke
        });
        assert_eq!(woke, [1, 2, 3, 4, 5]);
    }
}
