//! Room behaviour every mode must have — broadcast, resume, room_full,
//! session expiry, leave, the REST API — run once on two Redis-backed
//! replicas (members on different replicas) and once on a single
//! memory-mode replica.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{get_json, seqs, Client, Persistence, Redis, Replica};
use tierlab_protocol::{ClientFrame, ErrorCode, ServerFrame};

/// Two replicas on one Redis (or one memory replica twice) plus the Redis
/// that must outlive them.
struct Setup {
    a: Replica,
    b: Option<Replica>,
    _redis: Option<Redis>,
}

impl Setup {
    async fn redis(extra: &[&str]) -> Setup {
        let redis = Redis::start(Persistence::None);
        let a = Replica::redis(&redis, "srv-a", extra).await;
        let b = Replica::redis(&redis, "srv-b", extra).await;
        Setup {
            a,
            b: Some(b),
            _redis: Some(redis),
        }
    }

    async fn memory(extra: &[&str]) -> Setup {
        Setup {
            a: Replica::memory(extra).await,
            b: None,
            _redis: None,
        }
    }

    fn second(&self) -> &Replica {
        self.b.as_ref().unwrap_or(&self.a)
    }
}

async fn broadcast_reaches_every_member_once_in_order(setup: Setup) {
    let mut p1 = Client::connect(&setup.a.ws()).await;
    let mut p2 = Client::connect(&setup.second().ws()).await;
    let room = p1.create(10).await;
    assert_eq!(p1.join(&room, "p1").await, 0);
    p2.join(&room, "p2").await;
    let mut acked = Vec::new();
    let mut p1_events = Vec::new();
    for id in 1..=5 {
        let (seq, early) = p1.act(id, &format!(r#"{{"move":{id},"pad":"x y"}}"#)).await;
        acked.push(seq);
        p1_events.extend(early);
    }
    assert_eq!(acked, vec![1, 2, 3, 4, 5], "seq starts at 1 without gaps");
    let rest = 5 - p1_events.len();
    p1_events.extend(p1.events(rest).await);
    let p2_events = p2.events(5).await;
    for events in [&p1_events, &p2_events] {
        assert_eq!(seqs(events), vec![1, 2, 3, 4, 5]);
        assert!(events
            .iter()
            .all(|e| e.room == room && Some(&e.from) == p1.player.as_ref()));
        assert_eq!(events[2].id, 3);
        assert_eq!(
            events[2].data.get(),
            r#"{"move":3,"pad":"x y"}"#,
            "data unchanged"
        );
    }
    p2.expect_silence(Duration::from_millis(200)).await;
}

async fn resume_replays_exactly_what_was_missed(setup: Setup) {
    let mut p1 = Client::connect(&setup.a.ws()).await;
    let mut p2 = Client::connect(&setup.a.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    p2.join(&room, "p2").await;
    for id in 1..=3 {
        p1.act(id, "1").await;
    }
    assert_eq!(seqs(&p2.events(3).await), vec![1, 2, 3]);
    let session = p2.session.clone().unwrap();
    p2.close().await;
    for id in 4..=7 {
        p1.act(id, "2").await;
    }
    // Back, on the other replica where there is one.
    let mut back = Client::connect(&setup.second().ws()).await;
    match back.resume(&room, &session, 3).await {
        ServerFrame::Joined {
            seq, session: s, ..
        } => {
            assert_eq!(seq, 7);
            assert_eq!(s, session, "same session");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert_eq!(seqs(&back.events(4).await), vec![4, 5, 6, 7]);
    p1.act(8, "3").await;
    assert_eq!(seqs(&back.events(1).await), vec![8], "then live events");
    back.expect_silence(Duration::from_millis(200)).await;
}

async fn full_rooms_and_expired_sessions_are_refused(setup: Setup) {
    let mut p1 = Client::connect(&setup.a.ws()).await;
    let room = p1.create(2).await;
    p1.join(&room, "p1").await;
    let mut p2 = Client::connect(&setup.second().ws()).await;
    p2.join(&room, "p2").await;
    let mut p3 = Client::connect(&setup.a.ws()).await;
    p3.send_join(&room, "p3").await;
    p3.expect_error(ErrorCode::RoomFull).await;

    // The session TTL of this setup is 1 s: a seat left unattended lapses.
    let session = p2.session.clone().unwrap();
    p2.close().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut back = Client::connect(&setup.second().ws()).await;
    match back.resume(&room, &session, 0).await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::SessionExpired),
        other => panic!("expected session_expired, got {other:?}"),
    }
    // Its seat is free again.
    p3.join(&room, "p3").await;
    let mut unknown = Client::connect(&setup.a.ws()).await;
    unknown
        .send(&ClientFrame::Join {
            room: "ZZZZZZ".into(),
            mode: tierlab_protocol::JoinMode::Fresh {
                name: "x".into(),
                key: None,
            },
        })
        .await;
    unknown.expect_error(ErrorCode::UnknownRoom).await;
}

async fn leave_ping_and_the_rest_api(setup: Setup) {
    let http = reqwest::Client::new();
    let created = http
        .post(setup.a.http("/api/rooms"))
        .json(&json!({"game": "quiz", "max_players": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let room = created["room"].as_str().unwrap().to_owned();
    assert_eq!(
        created["server"],
        if setup.b.is_some() { "srv-a" } else { "mem-1" }
    );
    assert_eq!(created["ws_url"], setup.a.ws());

    let mut p1 = Client::connect(&setup.a.ws()).await;
    let mut p2 = Client::connect(&setup.second().ws()).await;
    p1.join(&room, "p1").await;
    p2.join(&room, "p2").await;
    p1.act(1, "{}").await;
    p2.events(1).await;
    let info: Value = get_json(&setup.second().http(&format!("/api/rooms/{room}"))).await;
    assert_eq!(
        info,
        json!({"room": room, "game": "quiz", "max_players": 10, "members": 2, "seq": 1})
    );

    p2.send(&ClientFrame::Ping { id: 3 }).await;
    assert_eq!(p2.recv().await, ServerFrame::Pong { id: 3 });
    p2.send(&ClientFrame::Leave).await;
    // Frames of one connection are handled in order: the pong proves the leave is done.
    p2.send(&ClientFrame::Ping { id: 4 }).await;
    assert_eq!(p2.recv().await, ServerFrame::Pong { id: 4 });
    p1.act(2, "{}").await;
    p2.expect_silence(Duration::from_millis(300)).await;
    let info: Value = get_json(&setup.a.http(&format!("/api/rooms/{room}"))).await;
    assert_eq!(info["members"], 1, "a left seat is free at once");

    let missing = http
        .get(setup.a.http("/api/rooms/ZZZZZZ"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let bad = http
        .post(setup.a.http("/api/rooms"))
        .header("content-type", "application/json")
        .body(r#"{"game":"quiz"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("max_players"),
        "{body}"
    );
    let too_big = http
        .post(setup.a.http("/api/rooms"))
        .json(&json!({"game": "quiz", "max_players": 100000}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 400);
}

const TTL: &[&str] = &["--session-ttl", "1s"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_broadcast_crosses_replicas() {
    broadcast_reaches_every_member_once_in_order(Setup::redis(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_broadcast() {
    broadcast_reaches_every_member_once_in_order(Setup::memory(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_resume_on_another_replica() {
    resume_replays_exactly_what_was_missed(Setup::redis(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_resume() {
    resume_replays_exactly_what_was_missed(Setup::memory(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_room_full_and_session_expiry() {
    full_rooms_and_expired_sessions_are_refused(Setup::redis(TTL).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_room_full_and_session_expiry() {
    full_rooms_and_expired_sessions_are_refused(Setup::memory(TTL).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leave_ping_rest() {
    leave_ping_and_the_rest_api(Setup::redis(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_leave_ping_rest() {
    leave_ping_and_the_rest_api(Setup::memory(&[]).await).await;
}
