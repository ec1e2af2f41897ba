//! What an attacker reaches first, against real sockets: stalled HTTP
//! connections that used to exhaust the descriptors, frames that break the
//! WebSocket protocol, silent clients, and the close handshake on a drain.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tierlab_protocol::{CloseReason, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A socket that sends half a request and then nothing.
async fn stall(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tcp
}

async fn health_answers(addr: std::net::SocketAddr) -> bool {
    let get = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .timeout(Duration::from_secs(2))
        .send();
    matches!(get.await, Ok(r) if r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_sockets_beyond_the_descriptor_limit_do_not_lock_out_health() {
    let redis = Redis::start(Persistence::None);
    // 256 descriptors: before the budget, 300 stalled sockets made accept
    // fail with EMFILE and /health time out for as long as they stayed.
    let flags = ["--header-timeout", "30s"];
    let replica = ReplicaProcess::start_with(&redis, "a", &flags, Some(256)).await;
    let mut stalled = Vec::new();
    for _ in 0..300 {
        stalled.push(stall(replica.addr).await);
    }
    for attempt in 0..5 {
        assert!(
            health_answers(replica.addr).await,
            "health timed out with 300 stalled sockets (attempt {attempt})"
        );
    }
    let mut player = Client::connect(&replica.ws()).await;
    let room = player.create(2).await;
    player.join(&room, "p1").await;
    player.act(1, "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_headers_never_finish_is_closed() {
    let replica = Replica::memory(&["--header-timeout", "300ms"]).await;
    let mut tcp = stall(replica.addr).await;
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    // Closed (EOF, or a 408 then EOF), not held open.
    assert!(read.is_ok(), "still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The close frame the server ends with, skipping anything before it.
async fn close_code(client: &mut Client) -> Option<CloseCode> {
    loop {
        match client.next_message().await? {
            Message::Close(frame) => return frame.map(|f| f.code),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_get_their_close_codes() {
    let replica = Replica::memory(&[]).await;
    let mut big = Client::connect(&replica.ws()).await;
    // Over 4 × --max-frame (64 KiB): not read at all.
    big.send_raw(Message::Text("x".repeat(300 * 1024).into()))
        .await;
    assert_eq!(close_code(&mut big).await, Some(CloseCode::Size));

    let mut bad = Client::connect(&replica.ws()).await;
    let not_utf8 = Frame::message(vec![0xff, 0xfe, 0x41], OpCode::Data(Data::Text), true);
    bad.send_raw(Message::Frame(not_utf8)).await;
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Invalid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abuse_close_reaches_a_client_that_keeps_sending() {
    let replica = Replica::memory(&["--abuse-limit", "5"]).await;
    let mut c = Client::connect(&replica.ws()).await;
    // Pipelined: the client is still sending when the server decides.
    for _ in 0..40 {
        c.send_text("{\"type\":\"nope\"}").await;
    }
    let mut said = None;
    let code = loop {
        match c.next_message().await {
            Some(Message::Text(text)) => {
                if let Ok(ServerFrame::Close { reason }) = ServerFrame::decode(&text) {
                    said = Some(reason);
                }
            }
            Some(Message::Close(frame)) => break frame.map(|f| f.code),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(said, Some(CloseReason::Abuse));
    assert_eq!(code, Some(CloseCode::Policy), "a close frame, not a reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_nothing_is_closed_after_the_idle_timeout() {
    let replica = Replica::memory(&["--idle-timeout", "1s"]).await;
    let mut silent = Client::connect(&replica.ws()).await;
    // Not reading: the pings go unanswered.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(close_code(&mut silent).await, Some(CloseCode::Away));

    // A client that reads answers the pings and stays.
    let mut alive = Client::connect(&replica.ws()).await;
    let quiet = tokio::time::timeout(Duration::from_millis(1600), alive.next_message()).await;
    assert!(quiet.is_err(), "nothing but pings: {quiet:?}");
    alive
        .send(&tierlab_protocol::ClientFrame::Ping { id: 1 })
        .await;
    assert_eq!(alive.recv().await, ServerFrame::Pong { id: 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_answers_ready_with_503_while_its_clients_go() {
    let mut replica = Replica::memory(&["--drain-linger", "1s"]).await;
    let mut player = Client::connect(&replica.ws()).await;
    let room = player.create(2).await;
    player.join(&room, "p1").await;
    let ready = replica.http("/ready");
    replica.begin_stop();
    assert_eq!(
        player.recv().await,
        ServerFrame::Close {
            reason: CloseReason::Draining
        }
    );
    let status = reqwest::get(&ready).await.unwrap().status();
    assert_eq!(status, 503, "a load balancer must see the drain");
    assert_eq!(close_code(&mut player).await, Some(CloseCode::Restart));
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_room_codes_is_throttled_and_closed() {
    let redis = Redis::start(Persistence::None);
    let replica = Replica::redis(&redis, "a", &["--abuse-limit", "5"]).await;
    let mut host = Client::connect(&replica.ws()).await;
    let room = host.create(4).await;
    // WebSocket: unknown rooms are strikes; a sweep ends as abuse.
    let mut sweeper = Client::connect(&replica.ws()).await;
    for guess in ["AAAAAA", "BBBBBB", "CCCCCC", "DDDDDD", "EEEEEE"] {
        sweeper
            .send(&tierlab_protocol::ClientFrame::Join {
                room: guess.into(),
                mode: tierlab_protocol::JoinMode::Fresh {
                    name: "s".into(),
                    key: None,
                },
            })
            .await;
    }
    for _ in 0..5 {
        sweeper
            .expect_error(tierlab_protocol::ErrorCode::UnknownRoom)
            .await;
    }
    assert_eq!(
        sweeper.recv().await,
        ServerFrame::Close {
            reason: CloseReason::Abuse
        }
    );
    // REST: past the burst of misses, the address gets 429 even for a room
    // that exists, so a sweep learns nothing more.
    let lookup = |code: &str| reqwest::get(replica.http(&format!("/api/rooms/{code}")));
    let mut statuses = Vec::new();
    let sweep = std::time::Instant::now();
    for _ in 0..30 {
        statuses.push(lookup("ZZZZZZ").await.unwrap().status().as_u16());
    }
    // The burst is 20 (4 × --lookup-miss-rate, 5/s); the bucket refills
    // 5 a second while the sweep runs, which on a loaded machine is long
    // enough for a few more misses to be answered.
    let refilled = (sweep.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    let misses = statuses.iter().filter(|s| **s == 404).count();
    assert!((20..=20 + refilled).contains(&misses), "{statuses:?}");
    assert!(statuses[20..].contains(&429), "{statuses:?}");
    // Right after a refused miss the bucket is empty, so the room that
    // exists is refused too; a refill (one token per 200 ms) can land
    // between the two requests on a loaded machine, so a few pairs are
    // tried, and one must show it.
    let mut pairs = Vec::new();
    for _ in 0..10 {
        let miss = lookup("ZZZZZZ").await.unwrap().status().as_u16();
        let hit = lookup(&room).await.unwrap().status().as_u16();
        pairs.push((miss, hit));
        if (miss, hit) == (429, 429) {
            break;
        }
    }
    assert_eq!(pairs.last(), Some(&(429, 429)), "{pairs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_create_rooms_without_bound() {
    let flags = ["--rooms-per-connection", "3", "--create-rate", "1"];
    let replica = Replica::memory(&flags).await;
    let mut c = Client::connect(&replica.ws()).await;
    for _ in 0..3 {
        c.create(2).await;
    }
    c.send(&tierlab_protocol::ClientFrame::Create {
        game: "quiz".into(),
        max_players: 2,
        key: None,
    })
    .await;
    c.expect_error(tierlab_protocol::ErrorCode::RateLimited)
        .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let created = http
            .post(replica.http("/api/rooms"))
            .json(&serde_json::json!({"game": "quiz", "max_players": 2}))
            .send()
            .await
            .unwrap();
        statuses.push(created.status().as_u16());
    }
    // The burst is 10 (10 × --create-rate); a slow test run refills one.
    let made = statuses.iter().filter(|s| **s == 201).count();
    assert!((10..=11).contains(&made), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}
