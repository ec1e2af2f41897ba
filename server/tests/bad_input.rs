//! Every kind of bad input gets its typed error and the server stays up;
//! abuse, slow consumers and a drain close connections the documented way.
//! Each check runs against a Redis-backed replica and a memory replica.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{wait_registry, Client, Persistence, Redis, Replica};
use tierlab_protocol::{ClientFrame, CloseReason, ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Runs `check` against a memory replica and a Redis replica started with `extra`.
async fn in_both_modes<F, Fut>(extra: &[&str], check: F)
where
    F: Fn(Replica) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    check(Replica::memory(extra).await).await;
    let redis = Redis::start(Persistence::None);
    check(Replica::redis(&redis, "srv-a", extra).await).await;
}

/// Reads until the server's close; returns the `close` frame's reason and the
/// WebSocket close code.
async fn expect_closed(client: &mut Client) -> (Option<CloseReason>, Option<CloseCode>) {
    let mut reason = None;
    for _ in 0..10_000 {
        match client.next_message().await {
            Some(Message::Text(text)) => {
                if let Ok(ServerFrame::Close { reason: r }) = ServerFrame::decode(text.as_str()) {
                    reason = Some(r);
                }
            }
            Some(Message::Close(frame)) => return (reason, frame.map(|f| f.code)),
            Some(_) => {}
            None => return (reason, None),
        }
    }
    panic!("connection never closed");
}

async fn still_serves(replica: &Replica) {
    let mut fresh = Client::connect(&replica.ws()).await;
    fresh.send(&ClientFrame::Ping { id: 1 }).await;
    assert_eq!(fresh.recv().await, ServerFrame::Pong { id: 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_frame_gets_its_error() {
    in_both_modes(&[], |replica| async move {
        let mut c = Client::connect(&replica.ws()).await;
        c.send_text("{not json").await;
        let (message, _) = c.expect_error(ErrorCode::BadRequest).await;
        assert!(message.contains("malformed"), "{message}");
        c.send_text(r#"{"type":"dance","id":4}"#).await;
        let (message, _) = c.expect_error(ErrorCode::BadRequest).await;
        assert!(message.contains("dance"), "{message}");
        c.send_text(r#"{"type":"act","id":9,"data":{}}"#).await;
        let (_, id) = c.expect_error(ErrorCode::BadRequest).await;
        assert_eq!(id, Some(9), "the id is echoed");
        c.send_text(r#"{"type":"create","game":"","max_players":3}"#)
            .await;
        c.expect_error(ErrorCode::BadRequest).await;
        c.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
        c.expect_error(ErrorCode::BadRequest).await;

        let oversized = format!(
            r#"{{"type":"ping","id":1,"pad":"{}"}}"#,
            "x".repeat(70 * 1024)
        );
        c.send_text(&oversized).await;
        c.expect_error(ErrorCode::TooLarge).await;

        let room = c.create(4).await;
        c.join(&room, "p1").await;
        let big = format!(r#""{}""#, "y".repeat(5000));
        c.send_text(&format!(r#"{{"type":"act","id":11,"data":{big}}}"#))
            .await;
        let (_, id) = c.expect_error(ErrorCode::TooLarge).await;
        assert_eq!(id, Some(11));
        c.send_join(&room, "again").await;
        c.expect_error(ErrorCode::BadRequest).await;
        // The same connection still works after all of that.
        let (seq, _) = c.act(12, r#"{"ok":true}"#).await;
        assert_eq!(seq, 1);
        still_serves(&replica).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_rate_limited_and_abuse_closes_with_1008() {
    in_both_modes(
        &["--rate", "5", "--burst", "5", "--abuse-limit", "8"],
        |replica| async move {
            let mut c = Client::connect(&replica.ws()).await;
            for id in 0..7 {
                c.send(&ClientFrame::Ping { id }).await;
            }
            let mut pongs = 0;
            let mut limited = 0;
            for _ in 0..7 {
                match c.recv().await {
                    ServerFrame::Pong { .. } => pongs += 1,
                    ServerFrame::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    } => limited += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!((pongs, limited), (5, 2), "burst of 5, then rate_limited");

            let mut abuser = Client::connect(&replica.ws()).await;
            for _ in 0..8 {
                abuser.send_text("garbage").await;
            }
            let (reason, code) = expect_closed(&mut abuser).await;
            assert_eq!(reason, Some(CloseReason::Abuse));
            assert_eq!(code, Some(CloseCode::Policy));
            still_serves(&replica).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected() {
    let flags = [
        "--send-queue",
        "16",
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--max-act-data",
        "60000",
    ];
    in_both_modes(&flags, |replica| async move {
        let mut sender = Client::connect(&replica.ws()).await;
        let room = sender.create(4).await;
        sender.join(&room, "sender").await;
        let mut sleeper = Client::connect(&replica.ws()).await;
        sleeper.join(&room, "sleeper").await;
        // Large events until the sleeper's socket buffers and queue fill.
        let payload = format!(r#""{}""#, "z".repeat(59_000));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sent = 0u64;
        loop {
            sender.act(sent, &payload).await;
            sent += 1;
            if sent.is_multiple_of(20) {
                let metrics = replica.metrics_text().await;
                if metrics.contains(r#"kind="slow_consumer""#) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline && sent < 20_000,
                "never counted as slow"
            );
        }
        // The sleeper wakes up: it gets what was buffered, then the close.
        let (_, code) = expect_closed(&mut sleeper).await;
        assert!(matches!(code, None | Some(CloseCode::Policy)), "{code:?}");
        still_serves(&replica).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_tells_clients_to_reconnect_and_stops() {
    let redis = Redis::start(Persistence::None);
    let mut replica = Replica::redis(&redis, "srv-a", &[]).await;
    let mut c = Client::connect(&replica.ws()).await;
    let room = c.create(4).await;
    c.join(&room, "p1").await;
    wait_registry(&replica, |ids| ids == ["srv-a"]).await;
    let stopping = tokio::spawn(async move {
        replica.stop().await;
        replica
    });
    let (reason, code) = expect_closed(&mut c).await;
    assert_eq!(reason, Some(CloseReason::Draining));
    assert_eq!(code, Some(CloseCode::Restart));
    let replica = stopping.await.unwrap();
    assert!(
        reqwest::get(replica.http("/ready")).await.is_err(),
        "stopped listening"
    );
    // It left the registry on the way out (its entry would otherwise stay
    // listed for three heartbeats, 6 s).
    let other = Replica::redis(&redis, "srv-b", &[]).await;
    let ids = wait_registry(&other, |ids| ids.contains(&"srv-b".to_owned())).await;
    assert!(!ids.contains(&"srv-a".to_owned()), "{ids:?}");
}
