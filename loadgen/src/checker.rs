//! The delivery checker: from what senders had acknowledged and what every
//! member saw, count lost, duplicated and reordered events — pure code over
//! recorded facts, so it can be fed hand-made histories.
//!
//! Seqs are kept as sets of inclusive ranges: a member that saw 1..=40,000
//! without a hole costs one range, not 40,000 entries.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
pub use tierlab_record::{Finding, Verdict};
use tierlab_record::{RecordError, MAX_FINDINGS};

/// A set of u64 as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// Adds `v`; false if it was already there.
    pub fn insert(&mut self, v: u64) -> bool {
        // The common case, a member seeing the next seq: extend the last range.
        if let Some(last) = self.ranges.last_mut() {
            if last.1.checked_add(1) == Some(v) {
                last.1 = v;
                return true;
            }
        }
        // Index of the first range that starts after v.
        let i = self.ranges.partition_point(|r| r.0 <= v);
        if i > 0 && self.ranges[i - 1].1 >= v {
            return false;
        }
        let joins_left = i > 0 && self.ranges[i - 1].1 + 1 == v;
        let joins_right = i < self.ranges.len() && self.ranges[i].0 == v + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = v,
            (false, true) => self.ranges[i].0 = v,
            (false, false) => self.ranges.insert(i, (v, v)),
        }
        true
    }

    pub fn contains(&self, v: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= v);
        i > 0 && self.ranges[i - 1].1 >= v
    }

    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0 + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn max(&self) -> Option<u64> {
        self.ranges.last().map(|r| r.1)
    }

    /// The values of `self` within `lo..=hi` that are not in `other`.
    pub fn difference(&self, other: &RangeSet, lo: u64, hi: u64) -> RangeSet {
        let mut out = RangeSet::default();
        let mut j = 0;
        for &(a, b) in &self.ranges {
            let (mut a, b) = (a.max(lo), b.min(hi));
            if a > b {
                continue;
            }
            while j < other.ranges.len() && other.ranges[j].1 < a {
                j += 1;
            }
            let mut k = j;
            while a <= b {
                match other.ranges.get(k) {
                    Some(&(c, d)) if c <= b => {
                        if c > a {
                            out.ranges.push((a, c - 1));
                        }
                        a = d.saturating_add(1).max(a);
                        if d == u64::MAX {
                            break;
                        }
                        k += 1;
                    }
                    _ => {
                        out.ranges.push((a, b));
                        break;
                    }
                }
            }
        }
        out
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: &RangeSet) {
        let mut merged: Vec<(u64, u64)> =
            Vec::with_capacity(self.ranges.len() + other.ranges.len());
        let mut all: Vec<(u64, u64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        for (a, b) in all {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.ranges = merged;
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

/// What one member saw of its room while it held its seat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemberRecord {
    pub room: String,
    pub player: String,
    /// The seq in its `joined`: it is owed every event after it.
    pub joined_at: u64,
    pub seen: RangeSet,
    pub duplicated: u64,
    pub reordered: u64,
    /// The member's own acts it saw come back as events (by its counter),
    /// and how many came back a second time under another seq.
    #[serde(default)]
    pub own_acts: RangeSet,
    #[serde(default)]
    pub duplicated_acts: u64,
    /// Stayed to the end of the run (owed everything acked), or left early
    /// (owed only what came before the last event it saw).
    pub stayed: bool,
    last: u64,
}

impl MemberRecord {
    pub fn new(room: &str, player: &str, joined_at: u64) -> MemberRecord {
        MemberRecord {
            room: room.to_owned(),
            player: player.to_owned(),
            joined_at,
            last: joined_at,
            ..MemberRecord::default()
        }
    }

    /// Records one delivery; `own`: the counter of the member's own act
    /// it carries.
    pub fn saw(&mut self, seq: u64, own: Option<u64>) {
        if !self.seen.insert(seq) {
            self.duplicated += 1;
        } else {
            if seq < self.last {
                self.reordered += 1;
            }
            if own.is_some_and(|n| !self.own_acts.insert(n)) {
                self.duplicated_acts += 1;
            }
        }
        self.last = self.last.max(seq);
    }

    pub fn last_seen(&self) -> u64 {
        self.last
    }
}

/// When acks happened, per room: (highest seq acked so far, second), in
/// order. Seqs above the last mark count in its second.
pub type AckClock = HashMap<String, Vec<(u64, u64)>>;

/// Adds each value of `lost` to the second its ack came in.
fn spread(lost: &RangeSet, marks: &[(u64, u64)], into: &mut BTreeMap<u64, u64>) {
    for &(a, b) in lost.ranges() {
        let mut from = a;
        for &(high, t) in marks {
            if from > b {
                break;
            }
            if high < from {
                continue;
            }
            let to = high.min(b);
            *into.entry(t).or_default() += to - from + 1;
            from = to + 1;
        }
        if from <= b {
            let t = marks.last().map_or(0, |m| m.1);
            *into.entry(t).or_default() += b - from + 1;
        }
    }
}

/// A sharded worker's checker facts, next to its run.json.
pub const FACTS_FILE: &str = "checker.json";

/// Writes `facts` into the run directory `dir`.
pub fn write_facts(dir: &Path, facts: &Facts) -> Result<(), RecordError> {
    let path = dir.join(FACTS_FILE);
    let failed = |source| RecordError::Write {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::create(&path).map_err(failed)?;
    serde_json::to_writer(std::io::BufWriter::new(file), facts).map_err(|e| failed(e.into()))
}

/// The facts a worker wrote into `dir`, if it wrote them.
pub fn read_facts(dir: &Path) -> Result<Option<Facts>, RecordError> {
    let path = dir.join(FACTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RecordError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RecordError::Read { path, source }),
    }
}

/// Everything the checker judges. A worker of a sharded run writes its own
/// (`checker.json`) so that `tierlab merge` can judge every worker's acks
/// against every worker's members — the only exact verdict when a room's
/// senders and members are on different workers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    pub acked: HashMap<String, RangeSet>,
    pub clock: AckClock,
    pub members: Vec<MemberRecord>,
}

impl Facts {
    pub fn check(&self) -> Verdict {
        check(&self.acked, &self.clock, &self.members)
    }

    /// Adds another worker's facts, its ack clock moved `shift` seconds
    /// later (its start relative to the merged run's).
    pub fn absorb(&mut self, other: Facts, shift: u64) {
        for (room, acks) in other.acked {
            self.acked.entry(room).or_default().extend(&acks);
        }
        for (room, marks) in other.clock {
            let shifted = marks.into_iter().map(|(high, t)| (high, t + shift));
            merge_marks(self.clock.entry(room).or_default(), shifted);
        }
        self.members.extend(other.members);
    }
}

/// Adds `other` marks of one ack clock into `into`, which stays in time
/// order with every mark the highest seq acked so far.
pub fn merge_marks(into: &mut Vec<(u64, u64)>, other: impl IntoIterator<Item = (u64, u64)>) {
    into.extend(other);
    into.sort_by_key(|&(high, t)| (t, high));
    let mut high_so_far = 0;
    for mark in into.iter_mut() {
        high_so_far = high_so_far.max(mark.0);
        mark.0 = high_so_far;
    }
}

/// Checks every member against the acks of its room.
pub fn check(
    acked: &HashMap<String, RangeSet>,
    clock: &AckClock,
    members: &[MemberRecord],
) -> Verdict {
    let empty = RangeSet::default();
    let mut verdict = Verdict {
        acked: acked.values().map(RangeSet::len).sum(),
        members_checked: members.len() as u64,
        ..Verdict::default()
    };
    let mut unacked = HashMap::<&str, RangeSet>::new();
    for member in members {
        let room_acks = acked.get(&member.room).unwrap_or(&empty);
        verdict.delivered += member.seen.len() + member.duplicated;
        verdict.duplicated += member.duplicated;
        verdict.reordered += member.reordered;
        verdict.duplicated_acts += member.duplicated_acts;
        let owed_until = if member.stayed {
            room_acks.max().unwrap_or(0)
        } else {
            member.last_seen()
        };
        let lost = room_acks.difference(&member.seen, member.joined_at + 1, owed_until);
        verdict.lost += lost.len();
        let marks = clock.get(&member.room).map_or(&[][..], Vec::as_slice);
        spread(&lost, marks, &mut verdict.lost_by_ack_second);
        for seq in lost
            .iter()
            .take(MAX_FINDINGS.saturating_sub(verdict.findings.len()))
        {
            verdict.findings.push(Finding {
                kind: "lost".into(),
                room: member.room.clone(),
                seq,
                player: member.player.clone(),
                joined_at: member.joined_at,
                last_seen: member.last_seen(),
                stayed: member.stayed,
            });
        }
        let never_acked = member.seen.difference(room_acks, 0, u64::MAX);
        unacked
            .entry(member.room.as_str())
            .or_default()
            .extend(&never_acked);
    }
    verdict.unacked_delivered = unacked.values().map(RangeSet::len).sum();
    verdict
}

pub mod faults;
pub mod senders;

#[cfg(test)]
mod tests;
