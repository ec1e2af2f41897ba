//! Measurements: players report [`Sample`]s to the [`Ledger`] of their lane
//! (their thread: no lock, no channel), which keeps one HDR histogram per
//! latency per 1-second interval and the facts the delivery checker needs.
//! Each second the run closes every lane's interval and adds the windows
//! into its [`Tally`]; at the end the lanes' ledgers add up into one.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tierlab_record::{Latency, Window};

use crate::checker::senders::{SenderWatch, SentLog};
use crate::checker::{merge_marks, MemberRecord, RangeSet};

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

/// What one lane (or, added up, the run) knows.
#[derive(Debug, Default)]
pub struct Ledger {
    pub current: Window,
    /// Players in their rooms now.
    pub online: i64,
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
    /// When the last ack arrived (the drain waits for its fan-out).
    pub last_ack: Option<Instant>,
}

/// The run's totals, from the closed seconds of every lane.
#[derive(Debug, Default)]
pub struct Tally {
    pub total: Window,
    pub online: i64,
    pub peak_online: i64,
}

impl Tally {
    /// Adds one closed second, with `online` players at its end.
    pub fn add(&mut self, window: &Window, online: i64) {
        self.total += window;
        self.online = online;
        self.peak_online = self.peak_online.max(online);
    }
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
                self.last_ack = Some(Instant::now());
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
            Sample::Online(delta) => self.online += i64::from(delta),
            Sample::Error(kind) => w.error(kind),
            Sample::Member(record) => self.members.push(*record),
            Sample::Watch(watch) => self.watches.push(*watch),
        }
    }

    /// Closes the current interval, second `t` of the run: notes the acks'
    /// clock and returns the interval's window.
    pub fn close_second(&mut self, t: u64) -> Window {
        for (stream, high) in self.acked_now.drain() {
            let marks = self.ack_clock.entry(stream).or_default();
            let before = marks.last().map_or(0, |m| m.0);
            if high > before {
                marks.push((high, t));
            }
        }
        std::mem::take(&mut self.current)
    }
}

/// Another lane's ledger: its players, its acks and what its members saw.
impl std::ops::AddAssign<Ledger> for Ledger {
    fn add_assign(&mut self, other: Ledger) {
        self.current += &other.current;
        self.online += other.online;
        for (stream, acks) in other.acked {
            self.acked.entry(stream).or_default().extend(&acks);
        }
        for (stream, marks) in other.ack_clock {
            merge_marks(self.ack_clock.entry(stream).or_default(), marks);
        }
        for (stream, high) in other.acked_now {
            let mine = self.acked_now.entry(stream).or_default();
            *mine = (*mine).max(high);
        }
        self.members.extend(other.members);
        self.watches.extend(other.watches);
        self.sent.absorb(other.sent);
        for (worker, samples) in other.from_worker {
            let kept = self.from_worker.entry(worker).or_default();
            let room = FROM_WORKER_SAMPLES.saturating_sub(kept.len());
            kept.extend(samples.into_iter().take(room));
        }
        self.last_ack = self.last_ack.max(other.last_ack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_record::{MachineSecond, Second};

    #[test]
    fn seconds_fold_into_totals_and_rows() {
        let mut ledger = Ledger::default();
        let mut tally = Tally::default();
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
        let window = ledger.close_second(1);
        tally.add(&window, ledger.online);
        let first = Second::of(1, ledger.online, 2.0, &window, MachineSecond::default());
        assert_eq!(window.deliveries, 2);
        ledger.apply(Sample::Online(-1));
        ledger.apply(Sample::Error("unavailable"));
        let window = ledger.close_second(2);
        tally.add(&window, ledger.online);
        let second = Second::of(2, ledger.online, 1.0, &window, MachineSecond::default());
        assert_eq!((first.t, second.t), (1, 2));
        assert_eq!(first.events_delivered, 2);
        assert_eq!(second.players, 1);
        assert_eq!(second.errors, 1);
        assert_eq!(tally.total.deliveries, 2);
        assert_eq!(tally.total.errors_total(), 1);
        assert_eq!(tally.peak_online, 2);
        assert!(ledger.acked[&room].contains(1));
        assert_eq!(ledger.ack_clock[&room], [(1, 1)]);
        assert_eq!(second.errors_by_kind["unavailable"], 1);
        assert!(ledger.last_ack.is_some());
    }

    /// Two lanes' ledgers add into what one lane seeing it all would hold.
    #[test]
    fn lanes_add_up() {
        let room = Stream {
            room: 3,
            sender: None,
        };
        let ack = |seq| Sample::Ack {
            stream: room,
            seq,
            us: Some(100),
        };
        let (mut a, mut b) = (Ledger::default(), Ledger::default());
        a.apply(Sample::Online(1));
        a.apply(ack(1));
        let _ = a.close_second(1);
        b.apply(Sample::Online(1));
        b.apply(ack(2));
        let _ = b.close_second(2);
        b.apply(ack(3));
        a += b;
        assert_eq!(a.online, 2);
        assert_eq!(a.acked[&room].len(), 3);
        assert_eq!(a.ack_clock[&room], [(1, 1), (2, 2)]);
        assert_eq!(a.close_second(3).latency(Latency::Ack).len(), 1);
        assert_eq!(a.ack_clock[&room], [(1, 1), (2, 2), (3, 3)]);
    }
}
