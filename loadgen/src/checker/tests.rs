//! Hand-made histories: a clean run, a gap, a duplicate, a reorder, a member
//! that left early, an event delivered but never acked; and the range
//! arithmetic against a plain `BTreeSet` model.

use std::collections::BTreeSet;

use super::*;

fn acks(room: &str, seqs: impl IntoIterator<Item = u64>) -> HashMap<String, RangeSet> {
    let mut set = RangeSet::default();
    for s in seqs {
        set.insert(s);
    }
    HashMap::from([(room.to_owned(), set)])
}

/// The checker without an ack clock.
fn plain(acked: &HashMap<String, RangeSet>, members: &[MemberRecord]) -> Verdict {
    check(acked, &AckClock::new(), members)
}

fn member(player: &str, joined_at: u64, seen: &[u64], stayed: bool) -> MemberRecord {
    let mut m = MemberRecord::new("R", player, joined_at);
    for &s in seen {
        m.saw(s, None);
    }
    m.stayed = stayed;
    m
}

#[test]
fn a_clean_history_has_nothing_to_report() {
    let v = plain(
        &acks("R", 1..=5),
        &[
            member("a", 0, &[1, 2, 3, 4, 5], true),
            member("b", 2, &[3, 4, 5], true),
        ],
    );
    assert_eq!(
        (v.acked, v.delivered, v.lost, v.duplicated, v.reordered),
        (5, 8, 0, 0, 0)
    );
    assert!(v.findings.is_empty());
}

#[test]
fn a_gap_is_lost_and_named() {
    let v = plain(&acks("R", 1..=5), &[member("a", 0, &[1, 2, 4, 5], true)]);
    assert_eq!(v.lost, 1);
    assert_eq!(
        v.findings,
        vec![Finding {
            kind: "lost".into(),
            room: "R".into(),
            seq: 3,
            player: "a".into(),
            joined_at: 0,
            last_seen: 5,
            stayed: true,
        }]
    );
}

#[test]
fn the_tail_is_owed_to_members_who_stayed_only() {
    let stayed = member("a", 0, &[1, 2, 3], true);
    let left = member("b", 0, &[1, 2, 3], false);
    let v = plain(&acks("R", 1..=5), &[stayed, left]);
    assert_eq!(v.lost, 2, "a misses 4 and 5; b left after 3");
}

#[test]
fn duplicates_and_reorders_are_counted() {
    // A resume that replays 3 again, and 5 arriving before 4.
    let v = plain(
        &acks("R", 1..=5),
        &[member("a", 0, &[1, 2, 3, 3, 5, 4], true)],
    );
    assert_eq!(
        (v.lost, v.duplicated, v.reordered, v.delivered),
        (0, 1, 1, 6)
    );
}

#[test]
fn an_act_applied_twice_is_a_duplicated_act_not_a_duplicated_seq() {
    // The sender's act 7 came back as seq 2 and, resent without a key, as
    // seq 3; a replay of seq 3 is a duplicated seq, not a third copy.
    let mut m = MemberRecord::new("R", "a", 0);
    for (seq, own) in [
        (1, Some(6)),
        (2, Some(7)),
        (3, Some(7)),
        (3, Some(7)),
        (4, None),
    ] {
        m.saw(seq, own);
    }
    m.stayed = true;
    let v = plain(&acks("R", 1..=4), &[m]);
    assert_eq!((v.duplicated_acts, v.duplicated, v.lost), (1, 1, 0));
}

#[test]
fn a_gap_filled_by_backfill_is_not_lost() {
    // Members see 1,2 live, then 5 after a resync has delivered 3,4 first.
    let v = plain(&acks("R", 1..=5), &[member("a", 0, &[1, 2, 3, 4, 5], true)]);
    assert_eq!(v.lost, 0);
}

#[test]
fn delivered_but_never_acked_is_counted_apart() {
    // Seq 4's ack was lost with its sender's connection.
    let v = plain(
        &acks("R", [1, 2, 3, 5]),
        &[
            member("a", 0, &[1, 2, 3, 4, 5], true),
            member("b", 0, &[1, 2, 3, 4, 5], true),
        ],
    );
    assert_eq!((v.lost, v.unacked_delivered), (0, 1));
}

#[test]
fn events_before_a_join_are_not_owed() {
    let v = plain(&acks("R", 1..=10), &[member("late", 7, &[8, 9, 10], true)]);
    assert_eq!(v.lost, 0);
}

fn model(set: &RangeSet) -> BTreeSet<u64> {
    set.iter().collect()
}

#[test]
fn range_arithmetic_matches_a_plain_set() {
    // A fixed pseudo-random walk over small values: deterministic, dense in edge cases.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 64
    };
    for _ in 0..200 {
        let (mut a, mut b) = (RangeSet::default(), RangeSet::default());
        let (mut ma, mut mb) = (BTreeSet::new(), BTreeSet::new());
        for _ in 0..40 {
            let v = next();
            assert_eq!(a.insert(v), ma.insert(v));
            let w = next();
            b.insert(w);
            mb.insert(w);
        }
        assert_eq!(model(&a), ma);
        assert_eq!(a.len(), ma.len() as u64);
        let (lo, hi) = (next() / 2, 32 + next() / 2);
        let diff: BTreeSet<u64> = ma
            .iter()
            .copied()
            .filter(|v| (lo..=hi).contains(v) && !mb.contains(v))
            .collect();
        assert_eq!(model(&a.difference(&b, lo, hi)), diff);
        let mut union = a.clone();
        union.extend(&b);
        assert_eq!(model(&union), ma.union(&mb).copied().collect());
        for w in a.ranges().windows(2) {
            assert!(w[0].1 + 1 < w[1].0, "ranges stay disjoint and non-adjacent");
        }
    }
}

#[test]
fn a_loss_is_counted_in_the_second_its_ack_came() {
    // Seqs 1-4 acked by second 10, 5-8 by second 11, 9-10 by second 12.
    let clock = AckClock::from([("R".to_owned(), vec![(4, 10), (8, 11), (10, 12)])]);
    let v = check(
        &acks("R", 1..=10),
        &clock,
        &[member("a", 0, &[1, 2, 3, 6, 9, 10], true)],
    );
    assert_eq!(v.lost, 4);
    assert_eq!(
        v.lost_by_ack_second,
        BTreeMap::from([(10, 1), (11, 3)]),
        "4 in second 10; 5, 7 and 8 in second 11"
    );
}

#[test]
fn a_loss_past_the_last_mark_counts_in_the_last_second() {
    let clock = AckClock::from([("R".to_owned(), vec![(2, 5)])]);
    let v = check(&acks("R", 1..=4), &clock, &[member("a", 0, &[1], true)]);
    assert_eq!(v.lost_by_ack_second, BTreeMap::from([(5, 3)]));
}

#[test]
fn a_room_split_over_workers_is_judged_whole_once_absorbed() {
    // Worker 0's sender acked 1..=5, worker 1's 6..=10; worker 1's member
    // saw all ten but 7; its clock ran 2 s behind worker 0's start.
    let mut w0 = Facts {
        acked: acks("R", 1..=5),
        clock: AckClock::from([("R".to_owned(), vec![(5, 3)])]),
        members: vec![member("a", 0, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], true)],
    };
    let w1 = Facts {
        acked: acks("R", 6..=10),
        clock: AckClock::from([("R".to_owned(), vec![(10, 2)])]),
        members: vec![member("b", 0, &[1, 2, 3, 4, 5, 6, 8, 9, 10], true)],
    };
    assert_eq!(
        w1.check().lost,
        1,
        "alone, worker 1 knows its own acks only"
    );
    assert_eq!(w1.check().unacked_delivered, 5);
    w0.absorb(w1, 2);
    let whole = w0.check();
    assert_eq!(
        (whole.acked, whole.lost, whole.unacked_delivered),
        (10, 1, 0)
    );
    assert_eq!(whole.members_checked, 2);
    // Seq 7 was acked in worker 1's second 2, second 4 of the merged run.
    assert_eq!(whole.lost_by_ack_second, BTreeMap::from([(4, 1)]));
    assert_eq!(w0.clock["R"], vec![(5, 3), (10, 4)]);
}
