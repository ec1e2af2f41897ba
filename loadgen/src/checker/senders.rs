//! The checker for targets without server seqs (Socket.IO): every sender
//! numbers its acts 1, 2, 3… and each (room, sender) pair becomes a stream
//! the seq checker judges as if it were a room. What a member is owed of a
//! stream follows from time: the acts its sender sent after the member
//! joined. Senders log when each act went out (`SentLog`), members when they
//! joined, both on the run's clock, and the two meet at the end of the run.

use std::collections::{BTreeMap, HashMap};

use super::MemberRecord;

/// The stream of `sender`'s acts in `room`, as findings name it.
pub fn stream_name(room: &str, sender: u32) -> String {
    format!("{room}/p{sender}")
}

/// When each sender's acts went out: ms since the run started, act n at
/// index n−1 (a sender's counter has no holes: every act is logged before
/// it is written).
#[derive(Debug, Default)]
pub struct SentLog {
    by_sender: HashMap<u32, Vec<u32>>,
}

impl SentLog {
    pub fn record(&mut self, sender: u32, n: u64, ms: u32) {
        let sent = self.by_sender.entry(sender).or_default();
        let at = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
        if at >= sent.len() {
            // Acts are logged in order; a hole would only come from a lost
            // sample, and then "sent no later than the next act" holds.
            sent.resize(at + 1, ms);
        }
        sent[at] = ms;
    }

    /// Adds another lane's senders (a sender's acts are all on one lane).
    pub fn absorb(&mut self, other: SentLog) {
        for (sender, sent) in other.by_sender {
            let mine = self.by_sender.entry(sender).or_default();
            if mine.len() < sent.len() {
                *mine = sent;
            }
        }
    }

    /// How many of `sender`'s acts had gone out by `ms`.
    pub fn sent_by(&self, sender: u32, ms: u32) -> u64 {
        self.by_sender
            .get(&sender)
            .map_or(0, |sent| sent.partition_point(|&t| t <= ms) as u64)
    }
}

/// What one member saw of its room's senders while it held its seat
/// (across reconnects: a player that drops and joins again is owed what was
/// sent meanwhile, which is what its game shows it).
#[derive(Debug, Clone, Default)]
pub struct SenderWatch {
    pub room: u32,
    pub player: String,
    /// When its first join was acknowledged, ms since the run started.
    pub joined_ms: u32,
    pub stayed: bool,
    from: BTreeMap<u32, MemberRecord>,
}

impl SenderWatch {
    pub fn new(room: u32, player: &str, joined_ms: u32) -> SenderWatch {
        SenderWatch {
            room,
            player: player.to_owned(),
            joined_ms,
            ..SenderWatch::default()
        }
    }

    /// Records act `n` of `sender`.
    pub fn saw(&mut self, sender: u32, n: u64) {
        self.from
            .entry(sender)
            .or_insert_with(|| MemberRecord::new("", &self.player, 0))
            .saw(n, None);
    }

    /// One seq-checker record per sender of the room (`senders`), owed what
    /// that sender sent after this member joined.
    pub fn into_records(
        mut self,
        code: &str,
        senders: &[u32],
        sent: &SentLog,
    ) -> Vec<MemberRecord> {
        senders
            .iter()
            .map(|&sender| {
                let mut record = self
                    .from
                    .remove(&sender)
                    .unwrap_or_else(|| MemberRecord::new("", &self.player, 0));
                record.room = stream_name(code, sender);
                record.joined_at = sent.sent_by(sender, self.joined_ms);
                record.stayed = self.stayed;
                record
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check, RangeSet};

    #[test]
    fn members_are_owed_what_was_sent_after_they_joined() {
        let mut sent = SentLog::default();
        // Sender 7 acts at 100, 200, …, 1000 ms.
        for n in 1..=10 {
            sent.record(7, n, 100 * n as u32);
        }
        assert_eq!(sent.sent_by(7, 450), 4);
        assert_eq!(sent.sent_by(7, 400), 4, "sent at the join: not owed");
        assert_eq!(sent.sent_by(8, 400), 0);

        let mut acked = HashMap::new();
        acked.insert(
            stream_name("R", 7),
            (1..=10).fold(RangeSet::default(), |mut s, n| {
                s.insert(n);
                s
            }),
        );
        // Joined at 450 ms and stayed: owed 5..=10; saw 5..=8 and 10, 6 twice.
        let mut late = SenderWatch::new(0, "p1", 450);
        for n in [5, 6, 6, 7, 8, 10] {
            late.saw(7, n);
        }
        late.stayed = true;
        // Joined at 0 and left after seeing 3: owed 1..=3, saw them all.
        let mut early = SenderWatch::new(0, "p2", 0);
        for n in 1..=3 {
            early.saw(7, n);
        }
        // Saw nothing of sender 7 and stayed from the start: owed all ten.
        let mut deaf = SenderWatch::new(0, "p3", 0);
        deaf.stayed = true;
        let members: Vec<MemberRecord> = [late, early, deaf]
            .into_iter()
            .flat_map(|w| w.into_records("R", &[7], &sent))
            .collect();
        let verdict = check(&acked, &HashMap::new(), &members);
        assert_eq!(verdict.lost, 1 + 10, "{verdict:?}");
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.findings[0].room, "R/p7");
        assert_eq!(verdict.findings[0].seq, 9);
    }
}
