//! Fault drills: carries out a scenario's faults on the local topology at
//! their times — signals, kills and restarts of processes, toxics on link
//! proxies — and reports when each fault began and ended, for `run.json`
//! and for the per-fault verdicts.
//!
//! Every fault becomes one or more timed steps (a crash with `for` is a kill
//! and, later, a restart); the steps of all faults run in time order, so
//! faults may overlap.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::proxy::{LinkState, Toxics};
use crate::scenario::{Direction, Fault, FaultKind, Target};
use crate::topology::{Action, Topology};

/// What a drill tells the run as it goes.
#[derive(Debug, Clone)]
pub enum FaultEvent {
    Began { fault: usize, at: Duration },
    Ended { fault: usize, at: Duration },
    Failed { fault: usize, error: String },
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    at: Duration,
    fault: usize,
    action: Action,
    /// The fault begins (first step) or ends (last step) with this one.
    begins: bool,
    ends: bool,
}

/// The steps of every fault, in time order.
fn plan(faults: &[Fault], replicas: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let actions = actions(fault, replicas);
        let last = actions.len().saturating_sub(1);
        for (k, (offset, action)) in actions.into_iter().enumerate() {
            steps.push(Step {
                at: fault.at + offset,
                fault: i,
                action,
                begins: k == 0,
                ends: k == last && !open_ended(fault),
            });
        }
    }
    // Stable: steps at the same time keep the order faults were written in.
    steps.sort_by_key(|s| s.at);
    steps
}

/// A crash without `for` is never undone within the run. (A failover ends
/// when the replica is promoted: its one step is its whole life.)
fn open_ended(fault: &Fault) -> bool {
    fault.kind == FaultKind::Crash && fault.lasts.is_none()
}

fn process_name(target: Target) -> String {
    match target {
        Target::Redis => "redis".into(),
        Target::Lb => "haproxy".into(),
        other => other.to_string(),
    }
}

/// What one fault does, as (offset from its start, action).
fn actions(fault: &Fault, replicas: u32) -> Vec<(Duration, Action)> {
    let lasts = fault.lasts.unwrap_or_default();
    let name = process_name(fault.target);
    match fault.kind {
        FaultKind::Crash => {
            let mut steps = vec![(Duration::ZERO, Action::Kill(name.clone()))];
            if fault.lasts.is_some() {
                steps.push((lasts, Action::Relaunch(name)));
            }
            steps
        }
        FaultKind::Pause => vec![
            (Duration::ZERO, Action::Pause(name.clone())),
            (lasts, Action::Resume(name)),
        ],
        FaultKind::Restart => vec![
            (Duration::ZERO, Action::Terminate(name.clone())),
            (lasts, Action::Relaunch(name)),
        ],
        FaultKind::RollingRestart => (1..=replicas)
            .flat_map(|n| {
                let name = format!("srv-{n}");
                let at = lasts * (n - 1);
                [
                    (at, Action::Terminate(name.clone())),
                    (at, Action::Relaunch(name)),
                ]
            })
            .collect(),
        FaultKind::Failover => vec![(Duration::ZERO, Action::Failover)],
        FaultKind::Latency | FaultKind::Bandwidth | FaultKind::Reset | FaultKind::Blackhole => {
            vec![
                (
                    Duration::ZERO,
                    Action::Link(fault.target, link_state(fault)),
                ),
                (lasts, Action::Link(fault.target, LinkState::default())),
            ]
        }
    }
}

/// The proxy state a link fault asks for.
pub fn link_state(fault: &Fault) -> LinkState {
    let toxics = Toxics {
        latency: fault.latency,
        jitter: fault.jitter,
        rate: (fault.kind == FaultKind::Bandwidth).then_some(fault.rate_kib * 1024),
        blackhole: fault.kind == FaultKind::Blackhole,
        limit_data: None,
    };
    let (up, down) = match fault.direction {
        Direction::Upstream => (toxics, Toxics::default()),
        Direction::Downstream => (Toxics::default(), toxics),
        Direction::Both => (toxics, toxics),
    };
    LinkState {
        upstream: up,
        downstream: down,
        reset: fault.kind == FaultKind::Reset,
    }
}

/// A line for the run record: what the fault did and to what.
pub fn describe(fault: &Fault) -> String {
    let what = fault.kind.name();
    match fault.kind {
        FaultKind::Latency => format!(
            "{what} {} ± {} ({:?}) on {}",
            humantime::format_duration(fault.latency),
            humantime::format_duration(fault.jitter),
            fault.direction,
            fault.target
        ),
        FaultKind::Bandwidth => format!(
            "{what} {} KiB/s ({:?}) on {}",
            fault.rate_kib, fault.direction, fault.target
        ),
        _ => format!("{what} {}", fault.target),
    }
}

/// Runs the faults' steps at their times (measured from `started`) until
/// they are done or `stop` is cancelled.
pub async fn run(
    faults: &[Fault],
    topology: &mut Topology,
    replicas: u32,
    started: Instant,
    events: UnboundedSender<FaultEvent>,
    stop: CancellationToken,
) {
    // With Sentinel, "redis" is whichever node is primary when the fault
    // begins; its later steps (the restart) go to that same node.
    let mut redis_of_fault = std::collections::HashMap::new();
    for mut step in plan(faults, replicas) {
        let due = tokio::time::Instant::from_std(started + step.at);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        if step.begins {
            let _ = events.send(FaultEvent::Began {
                fault: step.fault,
                at: started.elapsed(),
            });
        }
        if let Some(name) = step.action.process_mut().filter(|n| *n == "redis") {
            if step.begins {
                redis_of_fault.insert(step.fault, topology.redis_now().await);
            }
            if let Some(node) = redis_of_fault.get(&step.fault) {
                node.clone_into(name);
            }
        }
        let done = tokio::select! {
            _ = stop.cancelled() => return,
            done = topology.carry_out(&step.action) => done.map_err(|e| e.to_string()),
        };
        if let Err(error) = done {
            tracing::warn!(fault = step.fault, %error, "fault step failed");
            let _ = events.send(FaultEvent::Failed {
                fault: step.fault,
                error,
            });
        }
        if step.ends {
            let _ = events.send(FaultEvent::Ended {
                fault: step.fault,
                at: started.elapsed(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, target: Target, at: u64, lasts: Option<u64>) -> Fault {
        Fault {
            name: "f".into(),
            kind,
            target,
            at: Duration::from_secs(at),
            lasts: lasts.map(Duration::from_secs),
            latency: Duration::from_millis(100),
            jitter: Duration::ZERO,
            rate_kib: 0,
            direction: Direction::Both,
        }
    }

    #[test]
    fn a_crash_with_for_is_a_kill_then_a_restart() {
        let steps = plan(
            &[fault(FaultKind::Crash, Target::Replica(2), 10, Some(5))],
            3,
        );
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].action, Action::Kill("srv-2".into()));
        assert!(steps[0].begins && !steps[0].ends);
        assert_eq!(steps[1].at, Duration::from_secs(15));
        assert_eq!(steps[1].action, Action::Relaunch("srv-2".into()));
        assert!(steps[1].ends);
    }

    #[test]
    fn a_crash_without_for_never_ends() {
        let steps = plan(&[fault(FaultKind::Crash, Target::Redis, 3, None)], 1);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].action, Action::Kill("redis".into()));
        assert!(steps[0].begins && !steps[0].ends);
    }

    #[test]
    fn overlapping_faults_interleave_in_time() {
        let steps = plan(
            &[
                fault(FaultKind::Pause, Target::Redis, 10, Some(10)),
                fault(FaultKind::Latency, Target::ReplicaToRedis(1), 12, Some(2)),
            ],
            2,
        );
        let order: Vec<(u64, usize)> = steps.iter().map(|s| (s.at.as_secs(), s.fault)).collect();
        assert_eq!(order, [(10, 0), (12, 1), (14, 1), (20, 0)]);
    }

    #[test]
    fn a_rolling_restart_takes_replicas_one_at_a_time() {
        let steps = plan(
            &[fault(
                FaultKind::RollingRestart,
                Target::Replicas,
                5,
                Some(4),
            )],
            3,
        );
        let names: Vec<(u64, Action)> = steps
            .iter()
            .map(|s| (s.at.as_secs(), s.action.clone()))
            .collect();
        assert_eq!(names[0], (5, Action::Terminate("srv-1".into())));
        assert_eq!(names[1], (5, Action::Relaunch("srv-1".into())));
        assert_eq!(names[4], (13, Action::Terminate("srv-3".into())));
        assert!(steps[0].begins && steps[5].ends);
    }

    #[test]
    fn link_faults_set_and_clear_the_proxy() {
        let mut f = fault(FaultKind::Latency, Target::PlayersToReplica(1), 1, Some(1));
        f.direction = Direction::Downstream;
        let state = link_state(&f);
        assert_eq!(state.upstream, Toxics::default());
        assert_eq!(state.downstream.latency, Duration::from_millis(100));
        let steps = plan(&[f], 1);
        assert_eq!(
            steps[1].action,
            Action::Link(Target::PlayersToReplica(1), LinkState::default())
        );
        let reset = link_state(&fault(
            FaultKind::Reset,
            Target::ReplicaToRedis(1),
            1,
            Some(1),
        ));
        assert!(reset.reset);
    }
}
