//! The fault proxy against a real echo server on loopback: each toxic does
//! what it says, and clearing it restores the link. Time bounds here are
//! lower bounds (a delay must be at least what was asked), never speed goals.

use super::*;

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn proxied() -> (FaultProxy, TcpStream) {
    let proxy = FaultProxy::start(0, echo_server().await).await.unwrap();
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    (proxy, stream)
}

/// Sends `bytes` and reads as many back; the round trip's duration.
async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<Duration> {
    let started = Instant::now();
    stream.write_all(bytes).await?;
    let mut back = vec![0u8; bytes.len()];
    stream.read_exact(&mut back).await?;
    assert_eq!(back, bytes);
    Ok(started.elapsed())
}

fn both(toxics: Toxics) -> LinkState {
    LinkState {
        upstream: toxics,
        downstream: toxics,
        reset: false,
    }
}

#[tokio::test]
async fn a_clean_link_forwards_both_ways() {
    let (_proxy, mut stream) = proxied().await;
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    round_trip(&mut stream, b"hello").await.unwrap();
    round_trip(&mut stream, &big).await.unwrap();
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let (proxy, mut stream) = proxied().await;
    proxy.set(both(Toxics {
        latency: Duration::from_millis(60),
        ..Toxics::default()
    }));
    let rtt = round_trip(&mut stream, b"ping").await.unwrap();
    assert!(rtt >= Duration::from_millis(120), "{rtt:?}");
    proxy.set(LinkState {
        upstream: Toxics {
            latency: Duration::from_millis(60),
            ..Toxics::default()
        },
        ..LinkState::default()
    });
    let rtt = round_trip(&mut stream, b"ping").await.unwrap();
    assert!(rtt >= Duration::from_millis(60), "{rtt:?}");
}

#[tokio::test]
async fn jitter_never_reorders_bytes() {
    let (proxy, mut stream) = proxied().await;
    proxy.set(both(Toxics {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        ..Toxics::default()
    }));
    for i in 0..50u8 {
        round_trip(&mut stream, &[i; 100]).await.unwrap();
    }
}

#[tokio::test]
async fn a_black_hole_holds_data_until_it_heals() {
    let (proxy, mut stream) = proxied().await;
    round_trip(&mut stream, b"before").await.unwrap();
    proxy.set(both(Toxics {
        blackhole: true,
        ..Toxics::default()
    }));
    stream.write_all(b"during").await.unwrap();
    let mut back = [0u8; 6];
    let waited =
        tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut back)).await;
    assert!(waited.is_err(), "nothing may pass a black hole");
    proxy.clear();
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .expect("held data passes once the link heals")
        .unwrap();
    assert_eq!(&back, b"during");
}

#[tokio::test]
async fn reset_drops_open_connections_and_refuses_new_ones() {
    let (proxy, mut stream) = proxied().await;
    round_trip(&mut stream, b"before").await.unwrap();
    proxy.set(LinkState {
        reset: true,
        ..LinkState::default()
    });
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an open connection is closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), fresh.read(&mut buf))
        .await
        .expect("a new connection is refused at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    proxy.clear();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut after, b"after").await.unwrap();
}

#[tokio::test]
async fn bandwidth_caps_the_rate() {
    let (proxy, mut stream) = proxied().await;
    proxy.set(LinkState {
        upstream: Toxics {
            rate: Some(256 * 1024),
            ..Toxics::default()
        },
        ..LinkState::default()
    });
    // 128 KiB at 256 KiB/s: at least half a second (less the first chunk).
    let rtt = round_trip(&mut stream, &vec![7u8; 128 * 1024])
        .await
        .unwrap();
    assert!(rtt >= Duration::from_millis(400), "{rtt:?}");
}

#[tokio::test]
async fn limit_data_closes_after_that_many_bytes() {
    let (proxy, mut stream) = proxied().await;
    proxy.set(LinkState {
        downstream: Toxics {
            limit_data: Some(10),
            ..Toxics::default()
        },
        ..LinkState::default()
    });
    stream.write_all(&[1u8; 100]).await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut back)).await;
    assert_eq!(back.len(), 10);
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(0, closed).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the client learns at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
