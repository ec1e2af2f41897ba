//! The delivery checker's verdict as run.json keeps it: totals, the losses
//! by the second their acks came in (so a loss can be tied to a fault), and
//! the first findings to follow up. Verdicts of workers that checked
//! disjoint rooms add with `+=`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Count;

/// Findings kept per verdict, so a run that loses everything stays readable.
pub const MAX_FINDINGS: usize = 100;

/// One concrete problem, so a person can follow it up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub room: String,
    pub seq: u64,
    pub player: String,
    /// The member's window: the seq of its join, the last seq it saw, and
    /// whether it stayed to the end.
    #[serde(default)]
    pub joined_at: u64,
    #[serde(default)]
    pub last_seen: u64,
    #[serde(default)]
    pub stayed: bool,
}

/// The checker's totals (the `checker` object of `run.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub acked: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Acts that became more than one event, as their senders saw their
    /// own events come back (a resend after `unknown_outcome` must not).
    #[serde(default)]
    pub duplicated_acts: u64,
    /// Seen by members but never acknowledged to a sender (allowed: the ack
    /// may have been lost with a connection).
    #[serde(default)]
    pub unacked_delivered: u64,
    #[serde(default)]
    pub members_checked: u64,
    /// What was checked: server seqs, or senders' counters.
    #[serde(default)]
    pub guarantee: String,
    /// Lost events by the second their sender's ack came (from the ack
    /// clock), so a loss can be tied to the fault that caused it.
    #[serde(default)]
    pub lost_by_ack_second: BTreeMap<u64, u64>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn count(&self, count: Count) -> u64 {
        match count {
            Count::Lost => self.lost,
            Count::Duplicated => self.duplicated,
            Count::Reordered => self.reordered,
            Count::DuplicatedActs => self.duplicated_acts,
        }
    }

    /// The same verdict on a clock `by` seconds later (a worker that
    /// started after the merged run's first).
    pub fn shifted(mut self, by: u64) -> Verdict {
        self.lost_by_ack_second = self
            .lost_by_ack_second
            .into_iter()
            .map(|(second, lost)| (second + by, lost))
            .collect();
        self
    }
}

/// Another worker's verdict over other rooms (already on this clock).
impl std::ops::AddAssign<&Verdict> for Verdict {
    fn add_assign(&mut self, other: &Verdict) {
        self.acked += other.acked;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.duplicated_acts += other.duplicated_acts;
        self.unacked_delivered += other.unacked_delivered;
        self.members_checked += other.members_checked;
        for (second, lost) in &other.lost_by_ack_second {
            *self.lost_by_ack_second.entry(*second).or_default() += lost;
        }
        let room = MAX_FINDINGS.saturating_sub(self.findings.len());
        self.findings
            .extend(other.findings.iter().take(room).cloned());
        if self.guarantee.is_empty() {
            self.guarantee.clone_from(&other.guarantee);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_add_on_one_clock() {
        let mut a = Verdict {
            acked: 10,
            lost: 1,
            lost_by_ack_second: BTreeMap::from([(3, 1)]),
            ..Verdict::default()
        };
        let b = Verdict {
            acked: 5,
            lost: 2,
            duplicated: 1,
            lost_by_ack_second: BTreeMap::from([(1, 2)]),
            guarantee: "server seqs".into(),
            ..Verdict::default()
        }
        .shifted(2);
        a += &b;
        assert_eq!((a.acked, a.lost, a.duplicated), (15, 3, 1));
        assert_eq!(a.lost_by_ack_second, BTreeMap::from([(3, 3)]));
        assert_eq!(a.guarantee, "server seqs");
        assert_eq!(a.count(Count::Lost), 3);
    }
}
