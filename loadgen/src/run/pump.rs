//! The aggregator loop of a run: spawn players along the shape, fold the
//! players' samples into the ledger, record faults as they begin and end,
//! close a second every second — until the shape ends, `max_duration`, or
//! Ctrl-C (the record's `Ended` says which). Then the drain: players stop
//! acting, events in flight arrive, players leave, and their last records
//! are read.

use std::time::Duration;

use tierlab_record::Ended;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::recorder::Recorder;
use super::spawner::Spawner;
use crate::drill::FaultEvent;
use crate::player::Arena;
use crate::scenario::Scenario;
use crate::stats::{Ledger, Sample};

/// How often the spawner compares players to the load shape.
const SPAWN_TICK: Duration = Duration::from_millis(50);
/// How long the drain waits after the last ack for that act's fan-out.
const ACK_SETTLE: Duration = Duration::from_secs(1);

/// What the pump reads: the players' samples and the drill's fault events.
pub struct Inboxes {
    pub samples: mpsc::UnboundedReceiver<Sample>,
    pub faults: mpsc::UnboundedReceiver<FaultEvent>,
}

/// Runs the load, then drains it; returns why it ended and what it measured.
pub async fn pump(
    scenario: &Scenario,
    mut spawner: Spawner,
    recorder: &mut Recorder,
    mut inboxes: Inboxes,
    arena: &Arena,
    interrupt: &CancellationToken,
) -> (Ended, Ledger) {
    let mut ledger = Ledger::default();
    let ending = load(
        scenario,
        &mut spawner,
        recorder,
        &mut inboxes,
        &mut ledger,
        arena,
        interrupt,
    )
    .await;
    drain(
        scenario.load.drain,
        spawner,
        &mut inboxes.samples,
        &mut ledger,
        arena,
    )
    .await;
    recorder.tick(&mut ledger, 0.0, arena.started.elapsed());
    (ending, ledger)
}

async fn load(
    scenario: &Scenario,
    spawner: &mut Spawner,
    recorder: &mut Recorder,
    inboxes: &mut Inboxes,
    ledger: &mut Ledger,
    arena: &Arena,
    interrupt: &CancellationToken,
) -> Ended {
    let shape_end = spawner.shape.duration();
    let hard_end = scenario
        .load
        .max_duration
        .saturating_sub(scenario.load.drain);
    let mut spawn_tick = tokio::time::interval(SPAWN_TICK);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    loop {
        let elapsed = arena.started.elapsed();
        if interrupt.is_cancelled() {
            return Ended::Interrupted;
        }
        if elapsed >= shape_end {
            return Ended::Completed;
        }
        if elapsed >= hard_end {
            return Ended::MaxDuration;
        }
        tokio::select! {
            _ = interrupt.cancelled() => return Ended::Interrupted,
            Some(sample) = inboxes.samples.recv() => ledger.apply(sample),
            Some(event) = inboxes.faults.recv() => recorder.on_fault(event, &scenario.faults),
            _ = spawn_tick.tick() => spawner.follow(elapsed),
            _ = second.tick() => recorder.tick(ledger, spawner.shape.value_at(elapsed), elapsed),
        }
    }
}

/// Stop acting, let events in flight arrive, then stop the players; their
/// last records arrive while we keep reading. An ack that comes late in the
/// drain (a slow fsync) has its fan-out still on the way: the drain goes on
/// until `ACK_SETTLE` after the last ack, by `ACK_SETTLE` at most.
async fn drain(
    drain: Duration,
    spawner: Spawner,
    inbox: &mut mpsc::UnboundedReceiver<Sample>,
    ledger: &mut Ledger,
    arena: &Arena,
) {
    arena.quiesce.cancel();
    let drained = Instant::now() + drain;
    let mut quiet_at = drained;
    loop {
        let until = quiet_at.min(drained + ACK_SETTLE);
        tokio::select! {
            Some(sample) = inbox.recv() => {
                if matches!(sample, Sample::Ack { .. }) {
                    quiet_at = quiet_at.max(Instant::now() + ACK_SETTLE);
                }
                ledger.apply(sample);
            }
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    let stopping = tokio::spawn(spawner.stop(drain));
    let deadline = tokio::time::sleep(drain + Duration::from_secs(1));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(sample) = inbox.recv() => ledger.apply(sample),
            _ = &mut deadline => break,
        }
        if stopping.is_finished() && inbox.is_empty() {
            break;
        }
    }
    while let Ok(sample) = inbox.try_recv() {
        ledger.apply(sample);
    }
}
