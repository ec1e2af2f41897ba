//! What a player saw while it held its seat: the room's seqs (a
//! [`MemberRecord`]) where the server numbers events, or senders' counters
//! (a [`SenderWatch`]) where it does not.

use crate::checker::senders::SenderWatch;
use crate::checker::MemberRecord;
use crate::stats::Sample;
use crate::wire::Stamp;

/// What a player saw while it held its seat: by the room's seqs, or by
/// senders' counters where the server has no seqs.
pub enum Seen {
    Seqs(MemberRecord),
    Senders(Box<SenderWatch>),
}

impl Seen {
    /// Records one event; `own`: it is this player's own act.
    pub fn saw(&mut self, seq: Option<u64>, stamp: Option<Stamp>, own: bool) {
        match (self, seq, stamp) {
            (Seen::Seqs(record), Some(seq), stamp) => {
                record.saw(seq, stamp.and_then(|s| s.n).filter(|_| own));
            }
            (
                Seen::Senders(watch),
                None,
                Some(Stamp {
                    p: Some(sender),
                    n: Some(n),
                    ..
                }),
            ) => watch.saw(sender, n),
            _ => {}
        }
    }

    /// The last seq seen (what a resume asks after).
    pub fn last_seen(&self) -> u64 {
        match self {
            Seen::Seqs(record) => record.last_seen(),
            Seen::Senders(_) => 0,
        }
    }

    pub fn set_stayed(&mut self, stayed: bool) {
        match self {
            Seen::Seqs(record) => record.stayed = stayed,
            Seen::Senders(watch) => watch.stayed = stayed,
        }
    }

    pub fn into_sample(self) -> Sample {
        match self {
            Seen::Seqs(record) => Sample::Member(Box::new(record)),
            Seen::Senders(watch) => Sample::Watch(watch),
        }
    }
}
