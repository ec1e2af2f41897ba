//! Measurements: players send [`Sample`]s over a channel to one aggregator
//! (no locks on the players' side), which keeps one HDR histogram per latency
//! metric per 1-second interval, running totals, the per-second time series,
//! and the facts the delivery checker needs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tierlab_record::{Latency, MachineSecond, Second, Window};

use crate::checker::senders::{SenderWatch, SentLog};
use crate::checker::{MemberRecord, RangeSet};

#[derive(Debug)]
pub enum Sample {
    Latency {
        latency: Latency,
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
            Sample::Latency { latency, us } => w.record(latency, us),
            Sample::Act { sent } => {
                w.acts += 1;
                if let Some((sender, n, ms)) = sent {
                    self.sent.record(sender, n, ms);
                }
            }
            Sample::Ack { stream, seq, us } => {
                if let Some(us) = us {
                    w.record(Latency::Ack, us);
                }
                self.acked.entry(stream).or_default().insert(seq);
                let high = self.acked_now.entry(stream).or_default();
                *high = (*high).max(seq);
            }
            Sample::Delivery { us, from } => {
                w.record(Latency::Fanout, us);
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
            Sample::Error(kind) => w.error(kind),
            Sample::Member(record) => self.members.push(*record),
            Sample::Watch(watch) => self.watches.push(*watch),
        }
    }

    /// Closes the current interval: folds it into the totals and returns it
    /// (for the `.hlog`) with its row of the time series.
    pub fn close_second(
        &mut self,
        t: Duration,
        target: f64,
        machine: MachineSecond,
    ) -> (Window, Second) {
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
        let row = Second::of(t, self.online, target, &window, machine);
        (window, row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (window, first) =
            ledger.close_second(Duration::from_secs(1), 2.0, MachineSecond::default());
        assert_eq!(window.deliveries, 2);
        ledger.apply(Sample::Online(-1));
        ledger.apply(Sample::Error("unavailable"));
        let (_, second) =
            ledger.close_second(Duration::from_secs(2), 1.0, MachineSecond::default());
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
