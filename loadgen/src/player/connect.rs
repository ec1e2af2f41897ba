//! How a player reaches a replica: a TCP connection from a loopback source
//! address of its own (so a load balancer that hashes sources sees distinct
//! clients), a WebSocket with small explicit buffers, and the greeting
//! until the server seats it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::wire::{Entry, Greeting, Wire};

pub type Socket = WebSocketStream<TcpStream>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad URL {0}")]
    Url(String),
    #[error("cannot reach {0}: {1}")]
    Io(String, std::io::Error),
    #[error("WebSocket handshake with {0} failed: {1}")]
    Handshake(String, tokio_tungstenite::tungstenite::Error),
}

/// Buffer sizes that keep an idle player at a few KiB (the tungstenite
/// defaults cost ~135 KiB per connection).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// A loopback source address for player `index`, spreading players over
/// 127.0.0.2–127.0.0.251: each source has its own ephemeral port range, and
/// a load balancer that hashes the source sees distinct clients.
pub fn source_for(index: u32, target: &SocketAddr) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Some(IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            2 + (index % 250) as u8,
        ))),
        _ => None,
    }
}

/// Opens a WebSocket to `url` (ws:// only); the server's greeting is the
/// first frame to read.
pub async fn connect(url: &str, index: u32) -> Result<Socket, ConnectError> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| ConnectError::Url(url.to_owned()))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| ConnectError::Io(url.to_owned(), e))?
        .next()
        .ok_or_else(|| ConnectError::Url(url.to_owned()))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ConnectError::Io(url.to_owned(), e))?;
    if let Some(source) = source_for(index, &addr) {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| ConnectError::Io(url.to_owned(), e))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| ConnectError::Io(url.to_owned(), e))?;
    let _ = stream.set_nodelay(true);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
        .await
        .map_err(|e| ConnectError::Handshake(url.to_owned(), e))?;
    Ok(ws)
}

/// Sends one text frame; false if the socket is gone.
pub async fn send(ws: &mut Socket, text: String) -> bool {
    ws.send(Message::Text(text.into())).await.is_ok()
}

/// Greets the server until it seats the player (or refuses).
pub async fn await_joined(
    ws: &mut Socket,
    wire: &dyn Wire,
    entry: Entry<'_>,
) -> Result<(Option<String>, String, u64), &'static str> {
    while let Some(message) = ws.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        match wire.greet(text.as_str(), entry) {
            Greeting::Send(reply) => {
                if !send(ws, reply).await {
                    return Err("disconnected");
                }
            }
            Greeting::Wait => {}
            Greeting::Joined {
                player,
                session,
                seq,
            } => return Ok((player, session, seq)),
            Greeting::Refused(kind) => return Err(kind),
        }
    }
    Err("disconnected")
}
