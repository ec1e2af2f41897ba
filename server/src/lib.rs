//! Tierlab's reference game server: rooms, sessions and an event log in Redis
//! (or in memory for the single-replica baseline), fan-out to members on every
//! replica, resume after reconnect, health and metrics, graceful drain.
//!
//! The entry point is [`run`]: give it a bound listener, a [`Config`] and a
//! shutdown future; tests bind `127.0.0.1:0` and run it in-process.

pub mod config;
pub mod http;
pub mod hub;
pub mod ids;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod registry;
pub mod rooms;
pub mod session;
pub mod store;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, StateMode};

use crate::hub::ConnId;
use crate::limits::{PerKey, PerPeer};
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::store::{MemoryStore, RedisStore, Store, StoreError};

/// Everything a request or a connection needs, shared by reference.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub rooms: Arc<Rooms>,
    pub metrics: Arc<Metrics>,
    /// The URL clients use to reach this replica directly.
    pub ws_url: String,
    pub started: Instant,
    /// Open WebSocket connections (shared with the accept loop's budget).
    pub connections: Arc<AtomicU64>,
    next_conn: AtomicU64,
    /// Cancelled when the replica starts draining: every connection closes
    /// with `close{reason:"draining"}` and code 1012.
    pub drain: CancellationToken,
    pub connection_tasks: TaskTracker,
    /// REST room creations, and lookups of unknown rooms, per peer address.
    pub creates: PerPeer,
    pub lookup_misses: PerPeer,
    /// Replay bytes per session (`--replay-rate`, a burst of eight seconds).
    pub replays: PerKey<String>,
}

impl AppState {
    fn open_connection(&self) -> ConnId {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.metrics.connections.inc();
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn close_connection(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        self.metrics.connections.dec();
    }
}

/// Resolves when a drain that `shutdown` starts is over. Meanwhile the
/// replica still accepts HTTP: `/ready` answers 503 (a load balancer takes
/// it out), new WebSockets are refused, and every client is told to go.
async fn drained(state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    shutdown.await;
    tracing::info!(server = %state.config.server_id, "draining");
    state.drain.cancel();
    state.rooms.store.deregister(&state.config.server_id).await;
    state.connection_tasks.close();
    if tokio::time::timeout(state.config.drain_timeout, state.connection_tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = state.connections.load(Ordering::Relaxed),
            "drain timed out; closing the rest"
        );
    }
    tokio::time::sleep(state.config.drain_linger).await;
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves until `shutdown` resolves, then drains: stops accepting, leaves the
/// registry, tells every client to reconnect elsewhere, and waits (at most
/// `drain_timeout`) for connections to finish.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let bound = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    hub::spend_per_delivery(config.spend_per_delivery);
    let background = CancellationToken::new();
    let (bus_tx, bus_rx) = mpsc::unbounded_channel();
    let store: Arc<dyn Store> = match config.state {
        StateMode::Redis => {
            let store = Arc::new(
                RedisStore::open(&config, Arc::clone(&metrics), bus_tx, background.clone()).await?,
            );
            store.follow_sentinel(&config, background.clone());
            store
        }
        StateMode::Memory => Arc::new(MemoryStore::new(&config, bus_tx)),
    };
    let rooms = Rooms::start(store, Arc::clone(&metrics), bus_rx, background.clone());
    let state = Arc::new(AppState {
        ws_url: config.ws_url(bound),
        rooms,
        metrics,
        started: Instant::now(),
        connections: Arc::new(AtomicU64::new(0)),
        next_conn: AtomicU64::new(1),
        drain: CancellationToken::new(),
        connection_tasks: TaskTracker::new(),
        creates: PerPeer::new(config.create_rate, config.create_rate * 10.0),
        lookup_misses: PerPeer::new(config.lookup_miss_rate, config.lookup_miss_rate * 4.0),
        replays: PerKey::new(config.replay_rate as f64, config.replay_rate as f64 * 8.0),
        config,
    });
    tracing::info!(
        server = %state.config.server_id,
        addr = %bound,
        state = state.config.state.as_str(),
        "serving"
    );
    tokio::spawn(registry::run(Arc::clone(&state), background.clone()));

    let gate = listen::Gate {
        header_timeout: state.config.header_timeout,
        max_pending: state.config.max_pending,
        max_sockets: state.config.max_sockets,
    };
    let stop = drained(Arc::clone(&state), shutdown);
    listen::serve(
        listener,
        http::app(Arc::clone(&state)),
        gate,
        Arc::clone(&state.connections),
        Arc::clone(&state.metrics),
        stop,
    )
    .await;
    background.cancel();
    Ok(())
}
