//! The accept loop: every TCP connection before it becomes a WebSocket (or
//! while it speaks plain HTTP) is *pending*, and pending connections are
//! what an attacker holds cheaply — a socket that sends half a request
//! line costs a descriptor and nothing else. So:
//!
//! - a request's headers must arrive within `header_timeout`;
//! - at most `max_pending` connections are pending; one more evicts the
//!   oldest, so a stream of stalled sockets can never keep a quick
//!   `/health` or a real client out;
//! - pending plus WebSocket connections stay below the descriptor budget
//!   (`max_sockets`), so `accept` never fails with "too many open files"
//!   and the process keeps descriptors for Redis and its own files.
//!
//! On `stop`, connections are asked to finish (HTTP keep-alive ends after
//! the current request) and the loop returns once they have, or after a
//! second.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    pub header_timeout: Duration,
    pub max_pending: usize,
    /// Pending plus WebSocket connections this process may hold.
    pub max_sockets: u64,
}

/// Pending connections, oldest first, each with the token that evicts it.
#[derive(Debug, Default)]
struct Pending {
    next: u64,
    open: BTreeMap<u64, CancellationToken>,
}

/// Leaves the pending set when its connection ends or is upgraded.
struct PendingGuard {
    id: u64,
    pending: Arc<Mutex<Pending>>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        lock(&self.pending).open.remove(&self.id);
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Joins the pending set, evicting the oldest member if it is full.
fn enter(
    pending: &Arc<Mutex<Pending>>,
    max: usize,
    metrics: &Metrics,
) -> (PendingGuard, CancellationToken) {
    let token = CancellationToken::new();
    let mut set = lock(pending);
    while set.open.len() >= max.max(1) {
        let Some((_, oldest)) = set.open.pop_first() else {
            break;
        };
        oldest.cancel();
        metrics.error("pending_evicted");
    }
    let id = set.next;
    set.next += 1;
    set.open.insert(id, token.clone());
    drop(set);
    let guard = PendingGuard {
        id,
        pending: Arc::clone(pending),
    };
    (guard, token)
}

/// Serves `app` on `listener` until `stop` resolves. `websockets` counts
/// the upgraded connections (they live on in their own tasks).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    gate: Gate,
    websockets: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    let pending = Arc::new(Mutex::new(Pending::default()));
    let finish = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(gate.header_timeout);
    let builder = Arc::new(builder);
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or memory: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    metrics.error("accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let held = lock(&pending).open.len() as u64 + websockets.load(Ordering::Relaxed);
        if held >= gate.max_sockets {
            metrics.error("socket_limit");
            drop(tcp);
            continue;
        }
        let (guard, evict) = enter(&pending, gate.max_pending, &metrics);
        let connection = Connection {
            builder: Arc::clone(&builder),
            app: app.clone(),
            finish: finish.clone(),
            evict,
            guard,
        };
        tasks.spawn(connection.run(tcp, peer));
    }
    finish.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(1), tasks.wait())
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open at shutdown; dropped");
    }
}

struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    app: Router,
    finish: CancellationToken,
    evict: CancellationToken,
    guard: PendingGuard,
}

impl Connection {
    async fn run(self, tcp: TcpStream, peer: SocketAddr) {
        // Events are small and latency is the product: never let Nagle hold a
        // frame back waiting for the client's delayed ACK (~40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = self.app;
        let service =
            TowerToHyperService::new(tower::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            }));
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service);
        tokio::pin!(conn);
        let mut finishing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended");
                    }
                    break;
                }
                () = self.evict.cancelled() => break,
                () = self.finish.cancelled(), if !finishing => {
                    finishing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        drop(self.guard);
    }
}
