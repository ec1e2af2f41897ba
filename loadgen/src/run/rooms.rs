//! A run's rooms and seats: the rooms created at set-up (through goose
//! posting `/api/rooms`, over WebSocket, or named by the run for a
//! Socket.IO game), or taken from worker 0 in a cross-worker sharded run;
//! then every seat of the population in the order players fill them.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::{SinkExt, StreamExt};
use tierlab_protocol::{ClientFrame, CreateRoom, ErrorCode, ServerFrame};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::RunOptions;
use crate::http::{self, HttpError, HttpRecord};
use crate::player::{self, ConnectError, Seat};
use crate::scenario::{CreateVia, ProtocolKind, Scenario, Via};
use crate::shard::{self, ShardError, SharedRoom};
use crate::topology::Topology;
use crate::wallclock::unix_seconds;

/// Rooms created concurrently over WebSocket during set-up.
const CREATE_CONCURRENCY: usize = 32;

/// A room as players find it.
#[derive(Debug, Clone)]
pub struct RoomSlot {
    pub code: Arc<str>,
    /// Where its players connect, when the server assigned it a replica.
    pub ws_url: Option<Arc<str>>,
}

/// Why the rooms could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RoomsError {
    #[error("creating rooms: {0}")]
    Http(#[from] HttpError),
    #[error("creating rooms: {0}")]
    Connect(#[from] ConnectError),
    #[error("creating rooms over {url}: {source}")]
    Socket {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("creating rooms: {}: {message}", code.as_str())]
    Refused { code: ErrorCode, message: String },
    #[error("creating rooms: {0} closed before `created`")]
    Closed(String),
    #[error("creating rooms: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Shared(#[from] ShardError),
    #[error("cross-worker rooms (population.cross_worker) need --rooms FILE, a path every worker shares")]
    NoRoomsFile,
}

/// The run's rooms: created here, except on the workers of a cross-worker
/// sharded run other than 0, which take the ones worker 0 created.
pub async fn rooms_for(
    scenario: &Scenario,
    topology: &Topology,
    options: &RunOptions,
) -> Result<(Vec<RoomSlot>, HttpRecord), RoomsError> {
    let Some(shard) = options
        .shard
        .filter(|s| s.count > 1 && scenario.population.cross_worker)
    else {
        return create_rooms(scenario, topology).await;
    };
    let file = options
        .rooms_file
        .as_deref()
        .ok_or(RoomsError::NoRoomsFile)?;
    let start_at = options.start_at.map(unix_seconds);
    if shard.index > 0 {
        let shared = shard::take_rooms(file, start_at, &options.interrupt).await?;
        let rooms = shared
            .into_iter()
            .map(|r| RoomSlot {
                code: r.code.into(),
                ws_url: r.ws_url.map(Into::into),
            })
            .collect();
        return Ok((rooms, HttpRecord::new()));
    }
    let (rooms, figures) = create_rooms(scenario, topology).await?;
    let shared = rooms
        .iter()
        .map(|r| SharedRoom {
            code: r.code.to_string(),
            ws_url: r.ws_url.as_deref().map(str::to_owned),
        })
        .collect();
    shard::hand_out_rooms(file, start_at, shared)?;
    Ok((rooms, figures))
}

/// Creates every room: through goose posting to `/api/rooms`, or over
/// WebSocket when the scenario says so.
async fn create_rooms(
    scenario: &Scenario,
    topology: &Topology,
) -> Result<(Vec<RoomSlot>, HttpRecord), RoomsError> {
    let population = &scenario.population;
    if scenario.protocol.kind == ProtocolKind::Socketio {
        return Ok((named_rooms(scenario), HttpRecord::new()));
    }
    let request = CreateRoom {
        game: population.game.clone(),
        max_players: population
            .max_players
            .unwrap_or(population.players_per_room),
    };
    let rest = population.create_via == CreateVia::Rest || scenario.topology.via == Via::Assigned;
    if rest {
        let (created, figures) = http::create_rooms(
            topology.http_base(),
            &request,
            population.rooms,
            scenario.http.create_users,
        )
        .await?;
        let rooms = created
            .into_iter()
            .map(|c| RoomSlot {
                code: c.room.into(),
                ws_url: Some(c.ws_url.into()),
            })
            .collect();
        return Ok((rooms, figures));
    }
    let ws_url: Arc<str> = topology.player_url(Via::Lb, 0, 0).into();
    Ok((
        create_by_ws(&ws_url, population.rooms, &request).await?,
        HttpRecord::new(),
    ))
}

/// A Socket.IO room exists once someone joins it: the run names its rooms,
/// distinct from any earlier run's.
fn named_rooms(scenario: &Scenario) -> Vec<RoomSlot> {
    let stamp = unix_seconds(SystemTime::now()) as u64 % 1_000_000;
    (0..scenario.population.rooms)
        .map(|i| RoomSlot {
            code: format!("{}-{stamp}-{i}", scenario.name).into(),
            ws_url: None,
        })
        .collect()
}

/// `count` rooms created over WebSocket, [`CREATE_CONCURRENCY`] at a time.
async fn create_by_ws(
    url: &Arc<str>,
    count: u32,
    request: &CreateRoom,
) -> Result<Vec<RoomSlot>, RoomsError> {
    let mut tasks = JoinSet::new();
    let mut rooms = Vec::with_capacity(count as usize);
    for i in 0..count {
        if tasks.len() >= CREATE_CONCURRENCY {
            if let Some(done) = tasks.join_next().await {
                rooms.push(done??);
            }
        }
        let (url, request) = (Arc::clone(url), request.clone());
        tasks.spawn(async move { create_one(&url, i, &request).await });
    }
    while let Some(done) = tasks.join_next().await {
        rooms.push(done??);
    }
    Ok(rooms)
}

async fn create_one(url: &str, index: u32, request: &CreateRoom) -> Result<RoomSlot, RoomsError> {
    let socket = |source| RoomsError::Socket {
        url: url.to_owned(),
        source,
    };
    let mut ws = player::connect(url, index).await?;
    let create = ClientFrame::Create {
        game: request.game.clone(),
        max_players: request.max_players,
        key: None,
    };
    ws.send(Message::Text(create.encode().into()))
        .await
        .map_err(socket)?;
    while let Some(Ok(message)) = ws.next().await {
        let Ok(text) = message.to_text() else {
            continue;
        };
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Created { room }) => {
                let _ = ws.close(None).await;
                return Ok(RoomSlot {
                    code: room.into(),
                    ws_url: None,
                });
            }
            Ok(ServerFrame::Error { code, message, .. }) => {
                return Err(RoomsError::Refused { code, message })
            }
            _ => {}
        }
    }
    Err(RoomsError::Closed(url.to_owned()))
}

/// Every seat of the population, in the order players fill them: room by
/// room, so rooms fill up completely during a ramp.
pub fn seats(scenario: &Scenario, topology: &Topology, rooms: &[RoomSlot]) -> Vec<Seat> {
    let population = &scenario.population;
    let via = scenario.topology.via;
    let idle_every = if scenario.behaviour.idle > 0.0 {
        (1.0 / scenario.behaviour.idle).round().max(1.0) as u32
    } else {
        0
    };
    let mut seats = Vec::with_capacity(population.players() as usize);
    for (r, room) in rooms.iter().enumerate() {
        for m in 0..population.players_per_room {
            let index = r as u32 * population.players_per_room + m;
            let url: Arc<str> = match (via, &room.ws_url) {
                (Via::Assigned, Some(url)) => Arc::clone(url),
                _ => topology.player_url(via, r as u32, m).into(),
            };
            seats.push(Seat {
                index,
                room_index: r as u32,
                room: Arc::clone(&room.code),
                url,
                idle: idle_every > 0 && index.is_multiple_of(idle_every),
            });
        }
    }
    seats
}
