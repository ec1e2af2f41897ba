//! State that strangers could grow or hold, bounded, against real Redis and
//! real sockets (and the memory store, which keeps the same rules): seats
//! of players who went away, the server-wide quota of new rooms, longer
//! room codes, and replays paced per session.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tierlab_protocol::{ErrorCode, ServerFrame};

/// Two players take the two seats and drop their connections without
/// leaving: their seats are kept from a newcomer only for the seat hold;
/// then one comes back while a seat is free and gets it, the other finds
/// the room full.
async fn a_seat_of_a_player_who_went_away_is_held_only_for_a_while(replica: &Replica) {
    let mut host = Client::connect(&replica.ws()).await;
    let room = host.create(2).await;
    let mut sessions = Vec::new();
    for name in ["sq1", "sq2"] {
        let mut squatter = Client::connect(&replica.ws()).await;
        squatter.join(&room, name).await;
        sessions.push(squatter.session.clone().unwrap());
        squatter.close().await;
    }
    let mut newcomer = Client::connect(&replica.ws()).await;
    newcomer.send_join(&room, "new").await;
    newcomer.expect_error(ErrorCode::RoomFull).await;
    // Past the hold (1 s), the seats are free: the newcomer sits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    newcomer.join(&room, "new").await;
    let mut back = Client::connect(&replica.ws()).await;
    assert!(matches!(
        back.resume(&room, &sessions[0], 0).await,
        ServerFrame::Joined { .. }
    ));
    let mut late = Client::connect(&replica.ws()).await;
    let refused = late.resume(&room, &sessions[1], 0).await;
    assert!(
        matches!(
            refused,
            ServerFrame::Error {
                code: ErrorCode::RoomFull,
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_held_for_the_seat_hold_in_redis() {
    let redis = Redis::start(Persistence::None);
    let replica = Replica::redis(&redis, "a", &["--seat-hold", "1s"]).await;
    a_seat_of_a_player_who_went_away_is_held_only_for_a_while(&replica).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_held_for_the_seat_hold_in_memory() {
    let replica = Replica::memory(&["--seat-hold", "1s"]).await;
    a_seat_of_a_player_who_went_away_is_held_only_for_a_while(&replica).await;
}

/// One more room is refused as `unavailable`, naming the quota.
async fn a_create_is_refused_for_the_quota(client: &mut Client) {
    client.send_create(2).await;
    let (message, _) = client.expect_error(ErrorCode::Unavailable).await;
    assert!(message.contains("--max-rooms"), "{message}");
}

/// `--max-rooms 3`: three rooms, then `unavailable` over WebSocket and 503
/// over REST, from any connection.
async fn the_room_quota_holds(replica: &Replica) {
    let mut host = Client::connect(&replica.ws()).await;
    for _ in 0..3 {
        host.create(2).await;
    }
    a_create_is_refused_for_the_quota(&mut host).await;
    let rest = reqwest::Client::new()
        .post(replica.http("/api/rooms"))
        .json(&serde_json::json!({"game": "quiz", "max_players": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status().as_u16(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_quota_is_server_wide_in_redis() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "a", &["--max-rooms", "3"]).await;
    let b = Replica::redis(&redis, "b", &["--max-rooms", "3"]).await;
    let mut first = Client::connect(&a.ws()).await;
    first.create(2).await;
    // One room made on `a`: `b` has two left.
    let mut host = Client::connect(&b.ws()).await;
    host.create(2).await;
    host.create(2).await;
    a_create_is_refused_for_the_quota(&mut host).await;
    drop(host);
    let fresh = Redis::start(Persistence::None);
    let replica = Replica::redis(&fresh, "c", &["--max-rooms", "3"]).await;
    the_room_quota_holds(&replica).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_quota_holds_in_memory() {
    let replica = Replica::memory(&["--max-rooms", "3"]).await;
    the_room_quota_holds(&replica).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longer_room_codes_are_drawn_and_joined() {
    let redis = Redis::start(Persistence::None);
    let replica = Replica::redis(&redis, "a", &["--room-code-length", "12"]).await;
    let mut host = Client::connect(&replica.ws()).await;
    let room = host.create(2).await;
    assert_eq!(room.len(), 12, "{room}");
    host.join(&room, "p1").await;
    let info = get_json(&replica.http(&format!("/api/rooms/{room}"))).await;
    assert_eq!(info["members"], 1, "{info}");
}

/// Resumes `session` from `since` on a new connection and reads the 50
/// missed events: how long that took.
async fn replay(replica: &Replica, room: &str, session: &str, since: u64) -> Duration {
    let started = Instant::now();
    let mut again = Client::connect(&replica.ws()).await;
    assert!(matches!(
        again.resume(room, session, since).await,
        ServerFrame::Joined { .. }
    ));
    let events = again.events(50).await;
    assert_eq!(seqs(&events), (since + 1..=since + 50).collect::<Vec<_>>());
    started.elapsed()
}

/// A member sees 50 events of ~1 KB; it resumes twice from its join. The
/// first replay fits the burst (8 × 8 KiB); the second, right after, waits
/// for the budget to refill (~6 s at 8 KiB/s): resumes cannot pull a log
/// again and again at wire speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_resumes_again_and_again_is_paced() {
    let redis = Redis::start(Persistence::None);
    let flags = ["--replay-rate", "8192", "--rate", "1000", "--burst", "1000"];
    let replica = Replica::redis(&redis, "a", &flags).await;
    let mut actor = Client::connect(&replica.ws()).await;
    let room = actor.create(4).await;
    let mut member = Client::connect(&replica.ws()).await;
    let since = member.join(&room, "m").await;
    let session = member.session.clone().unwrap();
    actor.join(&room, "a").await;
    let payload = format!("\"{}\"", "x".repeat(1000));
    for id in 1..=50 {
        actor.act(id, &payload).await;
    }
    member.events(50).await;
    member.close().await;
    let first = replay(&replica, &room, &session, since).await;
    let second = replay(&replica, &room, &session, since).await;
    assert!(
        second >= Duration::from_secs(3),
        "the second replay took {second:?} (the first {first:?}): not paced"
    );
    let metrics = replica.metrics_text().await;
    assert!(
        metrics.contains("kind=\"replay_paced\""),
        "no replay_paced count in /metrics"
    );
}
