//! The load loop of a run: spawn players along the shape, record faults as
//! they begin and end, close a second on every lane every second — until
//! the shape ends, `max_duration`, or Ctrl-C (the record's `Ended` says
//! which). Then the drain: players stop acting, events in flight arrive,
//! players leave, and the lanes hand over their ledgers.

use std::time::Duration;

use tierlab_record::Ended;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::Recorder;
use super::spawner::Spawner;
use crate::drill::FaultEvent;
use crate::lane::Lanes;
use crate::player::Arena;
use crate::scenario::Scenario;
use crate::stats::{Ledger, Tally};

/// How often the spawner compares players to the load shape.
const SPAWN_TICK: Duration = Duration::from_millis(50);
/// How long the drain waits after the last ack for that act's fan-out.
const ACK_SETTLE: Duration = Duration::from_secs(1);
/// How long past the drain a late ack (a stalled fsync) is still waited for.
const LATE_ACK: Duration = Duration::from_secs(3);
/// How often the drain asks the lanes when their last ack came.
const DRAIN_TICK: Duration = Duration::from_millis(100);

/// What the load loop drives and reads.
pub struct Load<'a> {
    pub spawner: Spawner,
    pub lanes: Lanes,
    pub faults: mpsc::UnboundedReceiver<FaultEvent>,
    pub arena: &'a Arena,
    pub interrupt: &'a CancellationToken,
}

/// Runs the load, then drains it; returns why it ended, the totals and
/// the lanes' ledger added into one.
pub async fn pump(
    scenario: &Scenario,
    mut load: Load<'_>,
    recorder: &mut Recorder,
) -> (Ended, Tally, Ledger) {
    let mut tally = Tally::default();
    let ended = run_load(scenario, &mut load, recorder, &mut tally).await;
    let Load { lanes, arena, .. } = load;
    let drain = scenario.load.drain;
    settle(drain, &lanes, arena).await;
    let mut ledger = lanes.finish(drain).await;
    // What came after the last second closed: the drain's tail.
    let elapsed = arena.started.elapsed();
    let t = recorder.next_second(elapsed);
    let window = ledger.close_second(t);
    tally.add(&window, ledger.online);
    recorder.tick(t, &window, &tally, 0.0, elapsed);
    (ended, tally, ledger)
}

async fn run_load(
    scenario: &Scenario,
    load: &mut Load<'_>,
    recorder: &mut Recorder,
    tally: &mut Tally,
) -> Ended {
    let shape_end = load.spawner.shape.duration();
    let hard_end = scenario
        .load
        .max_duration
        .saturating_sub(scenario.load.drain);
    let mut spawn_tick = tokio::time::interval(SPAWN_TICK);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    loop {
        let elapsed = load.arena.started.elapsed();
        if load.interrupt.is_cancelled() {
            return Ended::Interrupted;
        }
        if elapsed >= shape_end {
            return Ended::Completed;
        }
        if elapsed >= hard_end {
            return Ended::MaxDuration;
        }
        tokio::select! {
            _ = load.interrupt.cancelled() => return Ended::Interrupted,
            Some(event) = load.faults.recv() => recorder.on_fault(event, &scenario.faults),
            _ = spawn_tick.tick() => load.spawner.follow(&mut load.lanes, elapsed),
            due = second.tick() => {
                // Named by when the second was due, not when the pump got
                // to it: a tick that comes late (a busy box) and the burst
                // that catches up must not both round to the same second.
                let due = due.into_std().saturating_duration_since(load.arena.started);
                let t = recorder.next_second(due);
                let (window, online) = load.lanes.close_second(t).await;
                tally.add(&window, online);
                let elapsed = load.arena.started.elapsed();
                let target = load.spawner.shape.value_at(elapsed);
                recorder.tick(t, &window, tally, target, elapsed);
            }
        }
    }
}

/// Players stop acting; events in flight arrive. An ack that comes late
/// in the drain (a slow fsync) has its fan-out still on the way: the drain
/// goes on until `ACK_SETTLE` after the last ack. Acks are waited for until
/// `LATE_ACK` past the drain; the last of them still gets its full settle,
/// so no member stops reading while an acked event is on its way to it.
async fn settle(drain: Duration, lanes: &Lanes, arena: &Arena) {
    arena.quiesce();
    let drained = Instant::now() + drain;
    let acks_until = drained + LATE_ACK;
    loop {
        let now = Instant::now();
        let last_ack = lanes.last_ack().await.map(Instant::from_std);
        let quiet_at = last_ack.map_or(drained, |at| (at + ACK_SETTLE).max(drained));
        let until = quiet_at.min(acks_until + ACK_SETTLE);
        if now >= until {
            return;
        }
        tokio::time::sleep(DRAIN_TICK.min(until - now)).await;
    }
}
