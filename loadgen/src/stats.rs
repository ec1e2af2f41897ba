//! Measurements: players send [`Sample`]s over a channel to one aggregator
//! (no locks on the players' side), which keeps one HDR histogram per latency
//! metric per 1-second interval, running totals, the per-second time series,
//! and the facts the delivery checker needs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::checker::senders::{SenderWatch, SentLog};
use crate::checker::{MemberRecord, RangeSet};

/// Latencies are recorded in microseconds, 1 µs to 10 min, 3 significant digits.
const MAX_US: u64 = 600_000_000;

/// The latency metrics, in the order of the `.hlog` tags.
pub const LATENCIES: [&str; 5] = ["fanout", "ack", "connect", "join", "reconnect"];

#[derive(Debug)]
pub enum Sample {
    /// A latency of metric `LATENCIES[metric]`.
    Latency {
        metric: usize,
        us: u64,
    },
    /// An act went out; `sent` is (sender, its counter, ms since the run
    /// started) where the checker works from senders' counters.
    Act {
        sent: Option<(u32, u64, u32)>,
    },
    /// An act acknowledged: `seq` of `stream` (the room's seq, or the
    /// sender's counter), `us` after it was meant to go (none when the
    /// protocol has no acks and the act counts once written).
    Ack {
        stream: Stream,
        seq: u64,
        us: Option<u64>,
    },
    Delivery {
        us: u64,
        /// The sending worker and the signed one-way time (µs), in a
        /// sharded run: the raw material of the clock-skew estimate.
        from: Option<(u32, i64)>,
    },
    /// `delta` players in their room (+1 joined, −1 gone).
    Online(i32),
    Error(&'static str),
    /// A seat's record, sent when the seat ends (left, lost, or run over).
    Member(Box<MemberRecord>),
    /// The same, for a target without server seqs.
    Watch(Box<SenderWatch>),
}

/// What acks number: a room's events (server seqs), or one sender's acts in
/// a room (sender counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stream {
    pub room: u32,
    pub sender: Option<u32>,
}

pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|e| unreachable!("{e}"))
}

/// Percentiles of one histogram, in milliseconds — the type `run.json`'s
/// readers use.
pub use tierlab_reports::run::Percentiles;

/// One second of the run (a row of `timeseries` in `run.json`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Second {
    /// Seconds since the run started (end of the interval).
    pub t: u64,
    /// Players in their room at the end of the second.
    pub players: i64,
    /// The load shape's target for this second.
    pub target: f64,
    pub acts: u64,
    pub events_delivered: u64,
    pub fanout_ms: Percentiles,
    pub ack_ms: Percentiles,
    pub errors: u64,
    /// Errors of this second by kind (`connect`, `session_expired`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Players that got their seat back after a dropped connection.
    pub reconnects: u64,
    /// CPU used by the generator process, % of one core.
    pub generator_cpu_pct: f64,
    /// Resident memory of the generator process.
    pub generator_rss_mib: f64,
    /// CPU time the hypervisor stole from this machine, % of all its CPU time.
    pub steal_pct: f64,
}

/// What the machine and the generator did during one second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    pub generator_cpu_pct: f64,
    pub generator_rss_mib: f64,
    pub steal_pct: f64,
}

/// Counters and histograms of one interval (or of the whole run).
#[derive(Debug)]
pub struct Window {
    pub latencies: Vec<Histogram<u64>>,
    pub acts: u64,
    pub deliveries: u64,
    pub errors: BTreeMap<&'static str, u64>,
}

impl Window {
    pub fn new() -> Window {
        Window {
            latencies: LATENCIES.iter().map(|_| histogram()).collect(),
            acts: 0,
            deliveries: 0,
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, metric: usize, us: u64) {
        if let Some(h) = self.latencies.get_mut(metric) {
            h.saturating_record(us.max(1));
        }
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        self.errors
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }

    pub fn latency(&self, name: &str) -> &Histogram<u64> {
        let i = LATENCIES.iter().position(|l| *l == name).unwrap_or(0);
        &self.latencies[i]
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl std::ops::AddAssign<&Window> for Window {
    fn add_assign(&mut self, other: &Window) {
        for (mine, theirs) in self.latencies.iter_mut().zip(&other.latencies) {
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.add(theirs);
        }
        self.acts += other.acts;
        self.deliveries += other.deliveries;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

/// What the aggregator knows; the run reads it at each tick and at the end.
#[derive(Debug, Default)]
pub struct Ledger {
    pub current: Window,
    pub total: Window,
    pub online: i64,
    pub peak_online: i64,
    pub acked: HashMap<Stream, RangeSet>,
    /// When acks happened, per stream: (highest seq acked so far, second).
    pub ack_clock: HashMap<Stream, Vec<(u64, u64)>>,
    /// Highest seq acked per stream in the current second.
    acked_now: HashMap<Stream, u64>,
    pub members: Vec<MemberRecord>,
    pub watches: Vec<SenderWatch>,
    pub sent: SentLog,
    /// Signed one-way delivery times by sending worker (first
    /// `FROM_WORKER_SAMPLES` of each).
    pub from_worker: BTreeMap<u32, Vec<i64>>,
}

/// Delivery times kept per sending worker for the skew estimate.
const FROM_WORKER_SAMPLES: usize = 50_000;

impl Ledger {
    pub fn apply(&mut self, sample: Sample) {
        let w = &mut self.current;
        match sample {
            Sample::Latency { metric, us } => w.record(metric, us),
            Sample::Act { sent } => {
                w.acts += 1;
                if let Some((sender, n, ms)) = sent {
                    self.sent.record(sender, n, ms);
                }
            }
            Sample::Ack { stream, seq, us } => {
                if let Some(us) = us {
                    w.record(1, us);
                }
                self.acked.entry(stream).or_default().insert(seq);
                let high = self.acked_now.entry(stream).or_default();
                *high = (*high).max(seq);
            }
            Sample::Delivery { us, from } => {
                w.record(0, us);
                w.deliveries += 1;
                if let Some((worker, one_way)) = from {
                    let kept = self.from_worker.entry(worker).or_default();
                    if kept.len() < FROM_WORKER_SAMPLES {
                        kept.push(one_way);
                    }
                }
            }
            Sample::Online(delta) => {
                self.online += i64::from(delta);
                self.peak_online = self.peak_online.max(self.online);
            }
            Sample::Error(kind) => *w.errors.entry(kind).or_default() += 1,
            Sample::Member(record) => self.members.push(*record),
            Sample::Watch(watch) => self.watches.push(*watch),
        }
    }

    /// Closes the current interval: folds it into the totals and returns it
    /// (for the `.hlog`) with its row of the time series.
    pub fn close_second(&mut self, t: Duration, target: f64, machine: Machine) -> (Window, Second) {
        let window = std::mem::take(&mut self.current);
        self.total += &window;
        let t = t.as_secs_f64().round() as u64;
        for (stream, high) in self.acked_now.drain() {
            let marks = self.ack_clock.entry(stream).or_default();
            let before = marks.last().map_or(0, |m| m.0);
            if high > before {
                marks.push((high, t));
            }
        }
        let row = Second {
            t,
            players: self.online,
            target,
            acts: window.acts,
            events_delivered: window.deliveries,
            fanout_ms: Percentiles::of(&window.latencies[0]),
            ack_ms: Percentiles::of(&window.latencies[1]),
            errors: window.errors_total(),
            errors_by_kind: window.errors_by_kind(),
            reconnects: window.latency("reconnect").len(),
            generator_cpu_pct: machine.generator_cpu_pct,
            generator_rss_mib: machine.generator_rss_mib,
            steal_pct: machine.steal_pct,
        };
        (window, row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_merge_exactly() {
        let (mut a, mut b) = (Window::new(), Window::new());
        for us in [100, 200, 300] {
            a.record(0, us);
        }
        for us in [400, 500] {
            b.record(0, us);
        }
        a.acts = 3;
        b.acts = 2;
        b.errors.insert("room_full", 1);
        let mut total = Window::new();
        total += &a;
        total += &b;
        assert_eq!(total.latencies[0].len(), 5);
        assert_eq!(total.acts, 5);
        assert_eq!(total.errors_total(), 1);
        let p = Percentiles::of(&total.latencies[0]);
        assert!((p.max - 0.5).abs() < 0.001, "{p:?}");
        assert!((p.p50 - 0.3).abs() < 0.001, "{p:?}");
    }

    #[test]
    fn seconds_fold_into_totals_and_rows() {
        let mut ledger = Ledger::default();
        ledger.apply(Sample::Online(2));
        ledger.apply(Sample::Act { sent: None });
        ledger.apply(Sample::Delivery {
            us: 1500,
            from: None,
        });
        ledger.apply(Sample::Delivery {
            us: 2500,
            from: None,
        });
        let room = Stream {
            room: 0,
            sender: None,
        };
        ledger.apply(Sample::Ack {
            stream: room,
            seq: 1,
            us: Some(800),
        });
        let (window, first) = ledger.close_second(Duration::from_secs(1), 2.0, Machine::default());
        assert_eq!(window.deliveries, 2);
        ledger.apply(Sample::Online(-1));
        ledger.apply(Sample::Error("unavailable"));
        let (_, second) = ledger.close_second(Duration::from_secs(2), 1.0, Machine::default());
        assert_eq!((first.t, second.t), (1, 2));
        assert_eq!(first.events_delivered, 2);
        assert_eq!(second.players, 1);
        assert_eq!(second.errors, 1);
        assert_eq!(ledger.total.deliveries, 2);
        assert_eq!(ledger.total.errors_total(), 1);
        assert_eq!(ledger.peak_online, 2);
        assert!(ledger.acked[&room].contains(1));
        assert_eq!(ledger.ack_clock[&room], [(1, 1)]);
        assert_eq!(second.errors_by_kind["unavailable"], 1);
    }
}
