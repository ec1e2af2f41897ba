//! The replica's periodic housekeeping: announce itself and its load in the
//! registry, keep its players' seats and sessions alive, and drop idle feeds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tierlab_protocol::ServerEntry;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// A replica missing this many heartbeats drops out of the registry.
const MISSED_HEARTBEATS: u32 = 3;

fn entry(state: &AppState) -> ServerEntry {
    ServerEntry {
        server: state.config.server_id.clone(),
        ws_url: state.ws_url.clone(),
        connections: state.connections.load(Ordering::Relaxed),
        rooms: state.rooms.hub.occupied_rooms(),
    }
}

/// Runs until `stop`.
pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let config = &state.config;
    let ttl = config.heartbeat * MISSED_HEARTBEATS;
    // Seats are refreshed four times per session TTL, so a connected player's
    // seat never lapses while a disconnected one lapses within one TTL.
    let refresh_every = config.session_ttl / 4;
    let mut last_refresh = Instant::now();
    let mut tick = tokio::time::interval(config.heartbeat);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = state.rooms.store.heartbeat(&entry(&state), ttl).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        if last_refresh.elapsed() >= refresh_every {
            last_refresh = Instant::now();
            if let Err(e) = state.rooms.store.refresh(&state.rooms.hub.seats()).await {
                tracing::warn!(error = %e, "could not refresh seats");
            }
        }
        state.rooms.sweep(config.feed_idle).await;
    }
}
