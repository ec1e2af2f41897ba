//! Small questions asked of running processes: an inline command to a Redis
//! (or Sentinel) and the start of its reply, whether an HTTP endpoint
//! answers 2xx, and waiting until one does. The topology uses them to know
//! what is ready, the sampler to read Redis's INFO.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long one question waits for its answer.
const ASK_WITHIN: Duration = Duration::from_millis(500);

/// Sends one inline command to the Redis (or Sentinel) at `addr` and
/// returns the start of its reply.
pub async fn ask_redis(addr: SocketAddr, command: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(ASK_WITHIN, tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .ok()?;
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(ASK_WITHIN, stream.read(&mut reply))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&reply[..n]).into_owned())
}

/// Whether the Redis at `addr` answers PING.
pub async fn redis_answers(addr: SocketAddr) -> bool {
    ask_redis(addr, "PING")
        .await
        .is_some_and(|reply| reply.starts_with("+PONG"))
}

/// Whether the Redis replica at `addr` has its link to the primary up
/// (its first sync done).
pub async fn replica_in_sync(addr: SocketAddr) -> bool {
    ask_redis(addr, "INFO replication")
        .await
        .is_some_and(|info| info.contains("master_link_status:up"))
}

/// Whether `base` + `path` answers 2xx within a second.
pub async fn http_ready(base: &str, path: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Asks `ready` every `every` until it says yes (true) or `within` has
/// passed (false).
pub async fn wait_until<F, Fut>(within: Duration, every: Duration, mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if ready().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
