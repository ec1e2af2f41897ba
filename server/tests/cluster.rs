//! Tier-2 behaviour that needs several replicas and a real Redis: a replica
//! killed under a live room, Redis restarted under a live room, Pub/Sub
//! messages lost and backfilled from the stream, the registry with
//! least-loaded placement, and SIGTERM on the real binary.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::{
    get_json, seqs, wait_health, Client, Persistence, Redis, Replica, ReplicaProcess, WAIT,
};
use tierlab_protocol::{ClientFrame, Data, ErrorCode, ServerFrame};

async fn metric(replica: &Replica, name: &str) -> f64 {
    let text = replica.metrics_text().await;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Two replicas on `redis` and a room with a member on each: p1 on A (it
/// created the room), p2 on B.
async fn a_room_across_two_replicas(
    redis: &Redis,
    flags: &[&str],
) -> (Replica, Replica, Client, Client, String) {
    let a = Replica::redis(redis, "srv-a", flags).await;
    let b = Replica::redis(redis, "srv-b", flags).await;
    let mut p1 = Client::connect(&a.ws()).await;
    let mut p2 = Client::connect(&b.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    p2.join(&room, "p2").await;
    (a, b, p1, p2, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_another_replica_after_the_first_is_killed() {
    let redis = Redis::start(Persistence::None);
    let mut doomed = ReplicaProcess::start(&redis, "srv-doomed", &[]).await;
    let survivor = Replica::redis(&redis, "srv-b", &[]).await;
    let mut p1 = Client::connect(&doomed.ws()).await;
    let mut p2 = Client::connect(&doomed.ws()).await;
    let mut p3 = Client::connect(&survivor.ws()).await;
    let room = p1.create(10).await;
    for (client, name) in [(&mut p1, "p1"), (&mut p2, "p2"), (&mut p3, "p3")] {
        client.join(&room, name).await;
    }
    for id in 1..=3 {
        p3.act(id, "\"before\"").await;
    }
    assert_eq!(seqs(&p2.events(3).await), vec![1, 2, 3]);
    let session = p2.session.clone().unwrap();

    doomed.kill();
    assert!(
        p2.next_message().await.is_none_or(|m| m.is_close()),
        "connection died with its replica"
    );
    for id in 4..=8 {
        p3.act(id, "\"while away\"").await;
    }
    let mut back = Client::connect(&survivor.ws()).await;
    assert!(matches!(
        back.resume(&room, &session, 3).await,
        ServerFrame::Joined { seq: 8, .. }
    ));
    let replayed = back.events(5).await;
    assert_eq!(seqs(&replayed), vec![4, 5, 6, 7, 8]);
    assert!(replayed.iter().all(|e| e.data.get() == "\"while away\""));
    p3.act(9, "\"live\"").await;
    assert_eq!(seqs(&back.events(1).await), vec![9]);
    back.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_a_live_room_loses_nothing_with_aof_always() {
    let mut redis = Redis::start(Persistence::AofAlways);
    let flags = ["--redis-timeout", "300ms", "--heartbeat", "200ms"];
    let (a, b, mut p1, mut p2, _room) = a_room_across_two_replicas(&redis, &flags).await;
    for id in 1..=3 {
        p1.act(id, &id.to_string()).await;
    }

    redis.kill();
    let health = wait_health(a.addr, "degraded").await;
    assert_eq!(health["redis"]["status"], "down");
    p1.send(&ClientFrame::Act {
        id: 99,
        data: Data::from_json("0".into()).unwrap(),
        key: None,
    })
    .await;
    // Events 1..=3 may still be ahead of the error in p1's stream.
    let error = loop {
        match p1.recv().await {
            ServerFrame::Event(_) => continue,
            other => break other,
        }
    };
    // Whether a write to a Redis that just died was applied cannot be
    // known from here: either answer is honest, a silent drop is not.
    assert!(
        matches!(
            error,
            ServerFrame::Error {
                code: ErrorCode::Unavailable | ErrorCode::UnknownOutcome,
                id: Some(99),
                ..
            }
        ),
        "{error:?}"
    );
    p1.send(&ClientFrame::Ping { id: 5 }).await;
    assert_eq!(
        p1.recv().await,
        ServerFrame::Pong { id: 5 },
        "still serving what it can"
    );

    redis.restart();
    wait_health(a.addr, "ok").await;
    wait_health(b.addr, "ok").await;
    for id in 4..=6 {
        let (seq, _) = p1.act(id, &id.to_string()).await;
        assert_eq!(seq, id, "the seq survived the restart");
    }
    let seen = p2.events(6).await;
    assert_eq!(seqs(&seen), vec![1, 2, 3, 4, 5, 6], "no gap, no duplicate");
    p2.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_pubsub_messages_are_backfilled_from_the_stream() {
    let redis = Redis::start(Persistence::None);
    let (_a, b, mut p1, mut p2, _room) = a_room_across_two_replicas(&redis, &[]).await;
    p1.act(1, "0").await;
    assert_eq!(seqs(&p2.events(1).await), vec![1]);

    // Cut every replica's Pub/Sub connection while events keep coming: those
    // published before the resubscribe are lost to Pub/Sub for good.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(killed >= 2, "killed {killed} pub/sub connections");
    for id in 2..=30 {
        p1.act(id, "0").await;
    }
    assert_eq!(seqs(&p2.events(29).await), (2..=30).collect::<Vec<_>>());
    p2.expect_silence(Duration::from_millis(300)).await;
    assert!(metric(&b, "tierlab_resyncs_total").await >= 1.0);
}

/// Pub/Sub may drop a message without dropping the connection (a replica
/// that was cut off and reconnected, a publish during a failover). A gap is
/// noticed when the next event arrives; the room's *last* event has no next
/// one, so each replica checks quiet rooms against the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_last_event_was_never_published_still_gets_it() {
    let redis = Redis::start(Persistence::None);
    let (_a, b, mut p1, mut p2, room) = a_room_across_two_replicas(&redis, &[]).await;
    p1.act(1, "0").await;
    assert_eq!(seqs(&p2.events(1).await), vec![1]);
    assert_eq!(seqs(&p1.events(1).await), vec![1]);

    // Append the way the server's script does, minus the PUBLISH.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let seq: u64 = redis::cmd("INCR")
        .arg(format!("{{room:{room}}}:seq"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(seq, 2);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        .to_string();
    let _: String = redis::cmd("XADD")
        .arg(format!("{{room:{room}}}:log"))
        .arg("2-1")
        .arg(&["f", "p9", "i", "1", "d", "\"tail\"", "t", &now_us][..])
        .query_async(&mut conn)
        .await
        .unwrap();

    for player in [&mut p1, &mut p2] {
        let seen = player.events(1).await;
        assert_eq!(seqs(&seen), vec![2]);
        player.expect_silence(Duration::from_millis(300)).await;
    }
    assert!(metric(&b, "tierlab_resyncs_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_stays_subscribed_across_heartbeats() {
    let redis = Redis::start(Persistence::None);
    let a = Replica::redis(&redis, "srv-a", &["--heartbeat", "100ms"]).await;
    let mut p1 = Client::connect(&a.ws()).await;
    let room = p1.create(4).await;
    p1.join(&room, "p1").await;
    let before = metric(&a, "tierlab_resyncs_total").await;
    // Ten keep-alive pings later, the subscription must still be the first one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        metric(&a, "tierlab_resyncs_total").await,
        before,
        "no reconnects"
    );
    let health = wait_health(a.addr, "ok").await;
    assert_eq!(health["redis"]["subscribed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_places_rooms_on_the_least_loaded_live_replica() {
    let redis = Redis::start(Persistence::None);
    let flags = ["--assign", "least-loaded", "--heartbeat", "200ms"];
    let busy = Replica::redis(&redis, "srv-busy", &flags).await;
    let mut idle = ReplicaProcess::start(&redis, "srv-idle", &flags).await;
    let mut load = Vec::new();
    for _ in 0..3 {
        load.push(Client::connect(&busy.ws()).await);
    }
    let http = reqwest::Client::new();
    let servers_url = busy.http("/api/servers");
    let deadline = Instant::now() + WAIT;
    loop {
        let servers: Value = get_json(&servers_url).await;
        let busy_load = servers
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == "srv-busy")
            .map(|s| s["connections"].as_u64().unwrap());
        if servers.as_array().unwrap().len() == 2 && busy_load == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registry never showed both: {servers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created: Value = http
        .post(busy.http("/api/rooms"))
        .json(&serde_json::json!({"game": "quiz", "max_players": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["server"], "srv-idle");
    assert_eq!(created["ws_url"], idle.ws());
    let mut player = Client::connect(created["ws_url"].as_str().unwrap()).await;
    player.join(created["room"].as_str().unwrap(), "p1").await;
    assert_eq!(player.server, "srv-idle");

    idle.kill();
    let deadline = Instant::now() + WAIT;
    loop {
        let servers: Value = get_json(&servers_url).await;
        if servers.as_array().unwrap().len() == 1 {
            assert_eq!(servers[0]["server"], "srv-busy");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a dead replica stayed listed: {servers}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_real_binary() {
    let redis = Redis::start(Persistence::None);
    let mut replica = ReplicaProcess::start(&redis, "srv-term", &[]).await;
    let mut c = Client::connect(&replica.ws()).await;
    let room = c.create(4).await;
    c.join(&room, "p1").await;
    kill(Pid::from_raw(replica.pid()), Signal::SIGTERM).unwrap();
    assert_eq!(
        c.recv().await,
        ServerFrame::Close {
            reason: tierlab_protocol::CloseReason::Draining
        }
    );
    let status = replica.wait_exit(WAIT).expect("exited after draining");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swept_room_is_subscribed_again_when_someone_comes_back() {
    let redis = Redis::start(Persistence::None);
    let flags = ["--feed-idle", "100ms", "--heartbeat", "100ms"];
    let a = Replica::redis(&redis, "srv-a", &flags).await;
    let b = Replica::redis(&redis, "srv-b", &flags).await;
    let mut sender = Client::connect(&a.ws()).await;
    let room = sender.create(4).await;
    sender.join(&room, "sender").await;
    let mut first = Client::connect(&b.ws()).await;
    first.join(&room, "first").await;
    sender.act(1, "1").await;
    assert_eq!(seqs(&first.events(1).await), vec![1]);
    first.send(&ClientFrame::Leave).await;
    first.close().await;
    // B's feed for the room idles out and B unsubscribes.
    let before = metric(&b, "tierlab_rooms").await;
    let deadline = Instant::now() + WAIT;
    while metric(&b, "tierlab_rooms").await >= before {
        assert!(Instant::now() < deadline, "the idle feed was never swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sender.act(2, "2").await;
    // Someone comes back to the room on B: events flow to B again.
    let mut second = Client::connect(&b.ws()).await;
    assert_eq!(second.join(&room, "second").await, 2);
    for id in 3..=5 {
        sender.act(id, "\"x\"").await;
    }
    assert_eq!(seqs(&second.events(3).await), vec![3, 4, 5]);
    second.expect_silence(Duration::from_millis(200)).await;
}
