//! HTTP routes: the REST API, health/readiness/metrics, and the WebSocket
//! upgrade. `app(state)` builds the router; handlers stay thin and call into
//! `Rooms` and the store.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tierlab_protocol::{
    is_idempotency_key, CreateRoom, ErrorCode, Health, RedisHealth, RoomCreated,
};

use crate::config::{Assign, StateMode};
use crate::store::{RoomSpec, StoreError};
use crate::{ids, session, AppState};

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{code}", get(room_info))
        .route("/api/servers", get(servers))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The JSON error body of the REST API (same codes as WebSocket errors).
#[derive(Debug, Serialize)]
struct ApiError {
    code: ErrorCode,
    message: String,
}

fn api_error(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    let body = ApiError {
        code,
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

fn store_failure(error: StoreError) -> Response {
    let status = match error {
        StoreError::UnknownRoom => StatusCode::NOT_FOUND,
        StoreError::Unavailable(_) | StoreError::UnknownOutcome(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    api_error(status, error.code(), error.to_string())
}

async fn upgrade(State(state): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    if state.drain.is_cancelled() {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "draining",
        );
    }
    let config = &state.config;
    if state.connections.load(Ordering::Relaxed) >= config.max_connections {
        state.metrics.error("connection_limit");
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "connection limit reached",
        );
    }
    let tracker = state.connection_tasks.clone();
    ws.read_buffer_size(config.ws_read_buffer)
        .write_buffer_size(config.ws_write_buffer)
        // Frames between `max_frame` and this hard cap get a `too_large`
        // answer; beyond it the socket is closed (1009) without reading it.
        .max_message_size(config.max_frame.saturating_mul(4))
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                let conn = state.open_connection();
                session::serve(socket, Arc::clone(&state), conn).await;
                state.close_connection();
            })
        })
}

/// The `Idempotency-Key` a client may send with `POST /api/rooms`.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn rate_limited(message: &str) -> Response {
    api_error(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        message,
    )
}

async fn create_room(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<CreateRoom>, JsonRejection>,
) -> Response {
    if !state.creates.try_take(peer.ip(), Instant::now()) {
        state.metrics.error("create_rate_limited");
        return rate_limited("too many rooms created from this address; slow down");
    }
    let key = match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if is_idempotency_key(key) => Some(key.to_owned()),
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "`Idempotency-Key` must be 1-64 visible ASCII characters",
            )
        }
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                rejection.body_text(),
            )
        }
    };
    if let Err(message) = session::validate_room(
        &request.game,
        request.max_players,
        state.config.max_room_size,
    ) {
        return api_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message);
    }
    let (server, ws_url) = match state.config.assign {
        Assign::Self_ => (state.config.server_id.clone(), state.ws_url.clone()),
        Assign::LeastLoaded => match state.rooms.store.servers().await {
            Ok(servers) => match servers.into_iter().min_by_key(|s| (s.connections, s.rooms)) {
                Some(best) => (best.server, best.ws_url),
                None => (state.config.server_id.clone(), state.ws_url.clone()),
            },
            Err(e) => return store_failure(e),
        },
    };
    let spec = RoomSpec {
        game: request.game,
        max_players: request.max_players,
    };
    match state.rooms.create(&spec, &server, key.as_deref()).await {
        Ok(room) => (
            StatusCode::CREATED,
            Json(RoomCreated {
                room,
                server,
                ws_url,
            }),
        )
            .into_response(),
        Err(e) => store_failure(e),
    }
}

async fn room_info(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
) -> Response {
    let now = Instant::now();
    // An address that guessed wrong too often is not asked what it guessed.
    if !state.lookup_misses.has_token(&peer.ip(), now) {
        state.metrics.error("lookup_rate_limited");
        return rate_limited("too many lookups of unknown rooms; slow down");
    }
    let found = if ids::is_room_code(&code) {
        state.rooms.store.room_info(&code).await
    } else {
        Ok(None)
    };
    match found {
        Ok(Some(info)) => Json(info).into_response(),
        Ok(None) => {
            state.lookup_misses.try_take(peer.ip(), now);
            store_failure(StoreError::UnknownRoom)
        }
        Err(e) => store_failure(e),
    }
}

async fn servers(State(state): State<Arc<AppState>>) -> Response {
    match state.rooms.store.servers().await {
        Ok(list) => Json(list).into_response(),
        Err(e) => store_failure(e),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let store = state.rooms.store.health().await;
    let redis = (state.config.state == StateMode::Redis).then(|| RedisHealth {
        status: if store.ping.is_some() { "up" } else { "down" }.to_owned(),
        ping_ms: store.ping.map(|d| d.as_secs_f64() * 1000.0),
        subscribed: store.subscribed,
    });
    let (rooms_lost, lost_lately) = state.rooms.rooms_lost();
    let degraded = lost_lately
        || redis
            .as_ref()
            .is_some_and(|r| r.status != "up" || !r.subscribed);
    let status = if state.drain.is_cancelled() {
        "draining"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    let body = Health {
        server_id: state.config.server_id.clone(),
        status: status.to_owned(),
        state: state.config.state.as_str().to_owned(),
        uptime_s: state.started.elapsed().as_secs(),
        connections: state.connections.load(Ordering::Relaxed),
        rooms: state.rooms.hub.occupied_rooms(),
        rooms_lost,
        redis,
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Ready while accepting connections. A Redis outage does not make a replica
/// unready: every replica shares the same Redis, so turning them all away
/// would only add a load-balancer outage to the Redis one.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.drain.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
