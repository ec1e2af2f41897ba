//! What the fault proxy adds to a round trip at idle (no toxics): 64-byte
//! ping-pongs to an echo server, straight and through the proxy.
//! `cargo run --release -p tierlab-loadgen --example proxy_latency`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tierlab_loadgen::proxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROUND_TRIPS: usize = 5_000;

async fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(addr)
}

/// Median and p99 of `ROUND_TRIPS` ping-pongs to `addr`.
async fn measure(addr: SocketAddr) -> std::io::Result<(Duration, Duration)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let ping = [42u8; 64];
    let mut pong = [0u8; 64];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let started = Instant::now();
        stream.write_all(&ping).await?;
        stream.read_exact(&mut pong).await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[ROUND_TRIPS / 2], times[ROUND_TRIPS * 99 / 100]))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let echo = echo_server().await?;
    let proxy = FaultProxy::start(0, echo).await?;
    // Alternate, so machine noise hits both alike.
    for round in 1..=3 {
        let (direct_p50, direct_p99) = measure(echo).await?;
        let (proxy_p50, proxy_p99) = measure(proxy.addr()).await?;
        println!(
            "round {round}: direct p50 {direct_p50:?} p99 {direct_p99:?} · via proxy p50 {proxy_p50:?} p99 {proxy_p99:?} · added p50 {:?}",
            proxy_p50.saturating_sub(direct_p50)
        );
    }
    Ok(())
}
