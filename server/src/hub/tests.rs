//! Feed and cursor logic without sockets or Redis: hand-made event streams
//! with gaps, duplicates and resumes.

use super::*;
use tierlab_protocol::Data;

fn event(seq: u64) -> Arc<Delivery> {
    Delivery::new(
        "ROOM22",
        LoggedEvent {
            seq,
            from: "p".into(),
            id: seq,
            data: Data::from_json(format!("{{\"n\":{seq}}}")).expect("json"),
            ts_us: now_us(),
        },
    )
}

struct Client {
    member: Member,
    rx: mpsc::Receiver<Utf8Bytes>,
}

fn client(conn: ConnId, capacity: usize) -> Client {
    let (outbox, rx) = mpsc::channel(capacity);
    Client {
        member: Member {
            conn,
            seat: SeatRef {
                room: "ROOM22".into(),
                player: format!("p{conn}"),
                session: format!("s{conn}"),
                holder: format!("h{conn}"),
            },
            outbox,
            kick: CancellationToken::new(),
        },
        rx,
    }
}

fn seqs(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(frame) = rx.try_recv() {
        match ServerFrame::decode(frame.as_str()) {
            Ok(ServerFrame::Event(e)) => out.push(e.seq),
            other => panic!("not an event: {other:?}"),
        }
    }
    out
}

fn hub_at(head: u64) -> Hub {
    let hub = Hub::new(Arc::new(Metrics::new()), 4);
    let _ = hub.feed_init("ROOM22");
    assert_eq!(hub.init_head("ROOM22", head), Arrival::Applied);
    hub
}

#[test]
fn live_members_get_each_event_once_in_order() {
    let hub = hub_at(0);
    let mut a = client(1, 64);
    let mut b = client(2, 64);
    assert_eq!(hub.attach("ROOM22", a.member.clone(), 0).0, Advance::Live);
    assert_eq!(hub.attach("ROOM22", b.member.clone(), 0).0, Advance::Live);
    for seq in 1..=3 {
        assert_eq!(hub.arrive("ROOM22", event(seq)), Arrival::Applied);
    }
    assert_eq!(
        hub.arrive("ROOM22", event(2)),
        Arrival::Ignored,
        "duplicate"
    );
    assert_eq!(seqs(&mut a.rx), vec![1, 2, 3]);
    assert_eq!(seqs(&mut b.rx), vec![1, 2, 3]);
}

#[test]
fn a_gap_holds_later_events_until_the_resync_fills_it() {
    let hub = hub_at(0);
    let mut a = client(1, 64);
    hub.attach("ROOM22", a.member.clone(), 0);
    hub.arrive("ROOM22", event(1));
    assert_eq!(hub.arrive("ROOM22", event(4)), Arrival::Gap);
    assert_eq!(hub.arrive("ROOM22", event(5)), Arrival::Gap);
    assert_eq!(seqs(&mut a.rx), vec![1], "nothing past the gap yet");
    assert_eq!(hub.begin_resync("ROOM22"), Some(1));
    assert_eq!(hub.begin_resync("ROOM22"), None, "one resync at a time");
    let outcome = hub.finish_resync("ROOM22", vec![event(2), event(3), event(4)]);
    assert_eq!(outcome, Arrival::Applied);
    assert_eq!(seqs(&mut a.rx), vec![2, 3, 4, 5]);
}

#[test]
fn a_member_joining_at_a_later_seq_skips_what_it_already_has() {
    let hub = hub_at(3);
    let mut a = client(1, 64);
    // Its join saw seq 5; events 4 and 5 are still on their way here.
    assert_eq!(hub.attach("ROOM22", a.member.clone(), 5).0, Advance::Live);
    for seq in 4..=7 {
        hub.arrive("ROOM22", event(seq));
    }
    assert_eq!(seqs(&mut a.rx), vec![6, 7]);
}

#[test]
fn a_resume_inside_the_ring_is_served_from_memory() {
    let hub = hub_at(0);
    for seq in 1..=6 {
        hub.arrive("ROOM22", event(seq));
    }
    let mut a = client(1, 64);
    // The ring holds the last 4 (3..=6); since = 3 needs 4..=6.
    assert_eq!(hub.attach("ROOM22", a.member.clone(), 3).0, Advance::Live);
    hub.arrive("ROOM22", event(7));
    assert_eq!(seqs(&mut a.rx), vec![4, 5, 6, 7]);
}

#[test]
fn a_resume_behind_the_ring_fetches_then_goes_live() {
    let hub = hub_at(0);
    for seq in 1..=10 {
        hub.arrive("ROOM22", event(seq));
    }
    let mut a = client(1, 64);
    assert_eq!(
        hub.attach("ROOM22", a.member.clone(), 2).0,
        Advance::Fetch { from: 3, to: 10 }
    );
    // While the session fetches, the room moves on; the member is not live.
    hub.arrive("ROOM22", event(11));
    assert!(seqs(&mut a.rx).is_empty());
    let (send, next) = hub.replay("ROOM22", 1, (3..=6).map(event).collect());
    assert_eq!(
        send.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    // The ring (last 4) holds 8..=11: seq 7 must still come from the log.
    assert_eq!(next, Advance::Fetch { from: 7, to: 11 });
    let (send, next) = hub.replay("ROOM22", 1, vec![event(7), event(8)]);
    assert_eq!(send.iter().map(|d| d.seq).collect::<Vec<_>>(), vec![7, 8]);
    // 9..=11 come from the ring, through the outbox; the member is live.
    assert_eq!(next, Advance::Live);
    hub.arrive("ROOM22", event(12));
    assert_eq!(seqs(&mut a.rx), vec![9, 10, 11, 12]);
}

#[test]
fn events_before_the_head_is_known_are_held() {
    let hub = Hub::new(Arc::new(Metrics::new()), 4);
    let _ = hub.feed_init("ROOM22");
    let mut a = client(1, 64);
    hub.attach("ROOM22", a.member.clone(), 2);
    assert_eq!(hub.arrive("ROOM22", event(3)), Arrival::Ignored);
    assert_eq!(hub.arrive("ROOM22", event(2)), Arrival::Ignored);
    assert_eq!(hub.init_head("ROOM22", 2), Arrival::Applied);
    assert_eq!(seqs(&mut a.rx), vec![3]);
}

#[test]
fn a_slow_consumer_is_kicked_and_dropped_without_hurting_others() {
    let hub = hub_at(0);
    let slow = client(1, 2);
    let mut fast = client(2, 64);
    hub.attach("ROOM22", slow.member.clone(), 0);
    hub.attach("ROOM22", fast.member.clone(), 0);
    for seq in 1..=5 {
        hub.arrive("ROOM22", event(seq));
    }
    assert!(slow.member.kick.is_cancelled());
    assert_eq!(seqs(&mut fast.rx), vec![1, 2, 3, 4, 5]);
    assert_eq!(hub.seats().len(), 1);
}

#[test]
fn skip_to_moves_everyone_past_events_the_log_no_longer_has() {
    let hub = hub_at(0);
    let mut a = client(1, 64);
    hub.attach("ROOM22", a.member.clone(), 0);
    hub.arrive("ROOM22", event(9));
    hub.skip_to("ROOM22", 8);
    assert_eq!(seqs(&mut a.rx), vec![9]);
}

#[test]
fn idle_feeds_are_swept() {
    let hub = hub_at(0);
    let a = client(1, 4);
    hub.attach("ROOM22", a.member.clone(), 0);
    assert!(hub.sweep(Duration::ZERO).is_empty(), "occupied feeds stay");
    hub.detach("ROOM22", 1);
    assert_eq!(hub.sweep(Duration::ZERO), vec!["ROOM22".to_owned()]);
    assert!(!hub.has_feed("ROOM22"));
}

#[test]
fn quiet_rooms_are_checked_with_backoff_until_the_head_moves() {
    let hub = hub_at(5);
    let mut member = client(1, 8);
    assert_eq!(
        hub.attach("ROOM22", member.member.clone(), 5).0,
        Advance::Live
    );
    let start = Instant::now();
    assert_eq!(hub.quiet_rooms(start), vec![], "not quiet yet");
    let at = |s: u64| start + Duration::from_secs(s);
    // Due after 1 s of quiet, then 2, 4, 8, 16 s apart, and never closer.
    let mut due_at = Vec::new();
    for s in 1..=60 {
        if !hub.quiet_rooms(at(s)).is_empty() {
            due_at.push(s);
        }
    }
    assert_eq!(due_at, vec![1, 3, 7, 15, 31, 47]);
    // A moving head resets the backoff; the check names the head.
    assert_eq!(hub.arrive("ROOM22", event(6)), Arrival::Applied);
    assert_eq!(seqs(&mut member.rx), vec![6]);
    assert_eq!(hub.quiet_rooms(Instant::now()), vec![]);
    assert_eq!(
        hub.quiet_rooms(Instant::now() + Duration::from_secs(1)),
        vec![("ROOM22".to_owned(), 6)]
    );
    // Rooms nobody here is in are not checked.
    hub.detach("ROOM22", 1);
    assert_eq!(hub.quiet_rooms(at(600)), vec![]);
}
