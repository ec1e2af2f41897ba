//! What an answer means when the state store stalls or loses data, against
//! a real Redis: `unknown_outcome` where a write may have been applied,
//! keyed retries that are applied once, a session live on one connection at
//! a time, replay that never reaches before the player's own join, and a
//! member told when its room is gone.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use tierlab_protocol::{ClientFrame, CloseReason, ErrorCode, JoinMode, ServerFrame};

/// Flags that make a stalled Redis answer fast.
const STALL: [&str; 4] = ["--redis-timeout", "300ms", "--heartbeat", "200ms"];

/// The next frame that is not an event.
async fn answer(client: &mut Client) -> ServerFrame {
    loop {
        match client.recv().await {
            ServerFrame::Event(_) => continue,
            other => return other,
        }
    }
}

/// Sends `frame` while Redis is stopped: the request reaches Redis's socket
/// and waits there, so the server cannot know whether it will be applied
/// and must answer `unknown_outcome`, not "not applied".
async fn send_stalled(redis: &Redis, client: &mut Client, frame: &ClientFrame) {
    redis.pause();
    client.send(frame).await;
    let stalled = answer(client).await;
    redis.unpause();
    assert!(
        matches!(
            stalled,
            ServerFrame::Error {
                code: ErrorCode::UnknownOutcome,
                ..
            }
        ),
        "{stalled:?}"
    );
}

async fn room_seq(replica: &Replica, room: &str) -> u64 {
    get_json(&replica.http(&format!("/api/rooms/{room}"))).await["seq"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_act_answered_unknown_outcome_and_resent_with_its_key_is_applied_once() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &STALL).await;
    let mut p1 = Client::connect(&a.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    p1.act_keyed(1, "1", Some("k1")).await;

    send_stalled(&redis, &mut p1, &act_frame(2, "2", Some("k2"))).await;
    // It was applied when Redis came back; the resend learns its seq.
    let (seq, _) = p1.act_keyed(2, "2", Some("k2")).await;
    assert_eq!(
        seq, 2,
        "the resend is answered with the first attempt's seq"
    );
    let (again, _) = p1.act_keyed(2, "2", Some("k2")).await;
    assert_eq!(again, 2, "and so is every later one");
    assert_eq!(room_seq(&a, &room).await, 2, "one event, not two");

    // The same stall without a key: the resend is a second event — what
    // every client that retried got before keys existed.
    send_stalled(&redis, &mut p1, &act_frame(3, "3", None)).await;
    p1.act(3, "3").await;
    assert_eq!(
        room_seq(&a, &room).await,
        4,
        "unkeyed, the act was applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_per_player_and_the_window_is_bounded() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &["--rate", "1000", "--burst", "1000"]).await;
    let mut p1 = Client::connect(&a.ws()).await;
    let mut p2 = Client::connect(&a.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    p2.join(&room, "p2").await;
    let (first, _) = p1.act_keyed(1, "1", Some("same")).await;
    let (other, _) = p2.act_keyed(1, "1", Some("same")).await;
    assert_ne!(first, other, "another player's key is another act");
    let window = redis.cli(&["ZCARD", &format!("{{room:{room}}}:acts")]);
    assert_eq!(window, "2");
    for id in 2..=300 {
        p1.act_keyed(id, "0", Some(&format!("k{id}"))).await;
    }
    let window: usize = redis
        .cli(&["ZCARD", &format!("{{room:{room}}}:acts")])
        .parse()
        .unwrap();
    assert_eq!(window, 256, "the key window holds the last 256 keyed acts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_resent_with_its_key_gets_the_same_seat_not_a_ghost() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &STALL).await;
    let mut host = Client::connect(&a.ws()).await;
    let room = host.create(2).await;
    // Seated, the host keeps the room's feed here: the stall hits the join
    // itself, not the subscription before it.
    host.join(&room, "host").await;
    let join = ClientFrame::Join {
        room: room.clone(),
        mode: JoinMode::Fresh {
            name: "p1".into(),
            key: Some("join-1".into()),
        },
    };
    let mut p1 = Client::connect(&a.ws()).await;
    send_stalled(&redis, &mut p1, &join).await;
    // The last seat was taken by the stalled join; the retry gets it back
    // instead of `room_full`, and the room holds no ghost.
    let mut retry = Client::connect(&a.ws()).await;
    retry.send(&join).await;
    retry.expect_joined(&room).await;
    let info = get_json(&a.http(&format!("/api/rooms/{room}"))).await;
    assert_eq!(info["members"], 2);
    retry.act(1, "1").await;
    let mut third = Client::connect(&a.ws()).await;
    third
        .send(&ClientFrame::Join {
            room: room.clone(),
            mode: JoinMode::Fresh {
                name: "p3".into(),
                key: Some("join-3".into()),
            },
        })
        .await;
    third.expect_error(ErrorCode::RoomFull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_create_resent_with_its_key_makes_one_room() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &STALL).await;
    let http = reqwest::Client::new();
    let create = || {
        http.post(a.http("/api/rooms"))
            .header("Idempotency-Key", "3f0c-create")
            .json(&serde_json::json!({"game": "quiz", "max_players": 4}))
            .send()
    };
    redis.pause();
    let stalled = create().await.unwrap();
    redis.unpause();
    assert_eq!(stalled.status(), 503);
    let body: serde_json::Value = stalled.json().await.unwrap();
    assert_eq!(body["code"], "unknown_outcome");
    let first: serde_json::Value = create().await.unwrap().json().await.unwrap();
    let second: serde_json::Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(first["room"], second["room"]);
    let rooms = redis.cli(&["--scan", "--pattern", "{room:*}:meta"]);
    assert_eq!(rooms.lines().count(), 1, "one room: {rooms}");
    let bad = http
        .post(a.http("/api/rooms"))
        .header("Idempotency-Key", "has space")
        .json(&serde_json::json!({"game": "quiz", "max_players": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// X sits on `a`; Y resumes X's session on `b` while X is connected: X's
/// next act is refused and X closed, Y acts as the seat's holder.
async fn the_newer_connection_takes_the_session(a: &Replica, b: &Replica) {
    let mut x = Client::connect(&a.ws()).await;
    let room = x.create(2).await;
    x.join(&room, "x").await;
    let session = x.session.clone().unwrap();
    let mut y = Client::connect(&b.ws()).await;
    assert!(matches!(
        y.resume(&room, &session, 0).await,
        ServerFrame::Joined { .. }
    ));
    x.send(&act_frame(1, "1", None)).await;
    x.expect_error(ErrorCode::Replaced).await;
    assert_eq!(
        x.recv().await,
        ServerFrame::Close {
            reason: CloseReason::Replaced
        }
    );
    y.act(2, "2").await;
    assert_eq!(room_seq(a, &room).await, 1, "only the holder's act counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lives_on_one_connection_the_newer_takes_it() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &[]).await;
    let b = Replica::redis(&redis, "b", &[]).await;
    the_newer_connection_takes_the_session(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_never_replays_what_came_before_the_player_joined() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &[]).await;
    let mut host = Client::connect(&a.ws()).await;
    let room = host.create(4).await;
    host.join(&room, "host").await;
    for id in 1..=5 {
        host.act(id, "\"before\"").await;
    }
    let mut late = Client::connect(&a.ws()).await;
    assert_eq!(late.join(&room, "late").await, 5);
    host.act(6, "\"after\"").await;
    let session = late.session.clone().unwrap();
    late.close().await;
    let mut back = Client::connect(&a.ws()).await;
    assert!(matches!(
        back.resume(&room, &session, 0).await,
        ServerFrame::Joined { .. }
    ));
    assert_eq!(
        seqs(&back.events(1).await),
        vec![6],
        "history starts at its join"
    );
    back.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_a_room_redis_lost_is_told_and_closed() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &[]).await;
    let mut p1 = Client::connect(&a.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    p1.act(1, "1").await;
    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    p1.send(&act_frame(2, "2", None)).await;
    let answer = answer(&mut p1).await;
    assert!(
        matches!(
            answer,
            ServerFrame::Error {
                code: ErrorCode::UnknownRoom | ErrorCode::SessionExpired,
                ..
            }
        ),
        "{answer:?}"
    );
    assert_eq!(
        p1.recv().await,
        ServerFrame::Close {
            reason: CloseReason::RoomGone
        }
    );
    let health = get_json(&a.http("/health")).await;
    assert_eq!(health["rooms_lost"], 1, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_mode_keeps_the_same_promises() {
    let a = Replica::memory(&[]).await;
    let mut x = Client::connect(&a.ws()).await;
    let room = x.create(2).await;
    x.join(&room, "x").await;
    let (first, _) = x.act_keyed(1, "1", Some("k")).await;
    let (again, _) = x.act_keyed(1, "1", Some("k")).await;
    assert_eq!(first, again);
    the_newer_connection_takes_the_session(&a, &a).await;
}
