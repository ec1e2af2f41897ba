//! The in-process store (tier 1): the same contract as the Redis store for a
//! single replica, with state in maps behind one mutex. Appends go to the bus
//! while the lock is held, so the bus sees events in seq order exactly as
//! Redis Pub/Sub would deliver them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tierlab_protocol::{RoomInfo, ServerEntry};

use super::{
    Act, BusMsg, BusSender, Joining, LoggedEvent, RoomSpec, Seat, SeatRef, Store, StoreError,
    StoreHealth,
};
use crate::config::Config;
use crate::ids;

#[derive(Debug)]
struct Room {
    spec: RoomSpec,
    seq: u64,
    log: VecDeque<LoggedEvent>,
    /// player → when the seat lapses unless refreshed.
    seats: HashMap<String, Instant>,
    expires: Instant,
    /// `player key` → seq of keyed acts, oldest first (at most
    /// `ACT_KEY_WINDOW`).
    acts: VecDeque<(String, u64)>,
    /// join key → session token (at most `JOIN_KEY_WINDOW`, then it starts
    /// over, as in Redis).
    joins: HashMap<String, String>,
}

impl Room {
    fn live_seats(&mut self, now: Instant) -> u32 {
        self.seats.retain(|_, lapses| *lapses > now);
        self.seats.len() as u32
    }
}

#[derive(Debug, Clone)]
struct Session {
    room: String,
    player: String,
    expires: Instant,
    holder: String,
    floor: u64,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<String, Room>,
    sessions: HashMap<String, Session>,
    /// create key → room code.
    creates: HashMap<String, String>,
    /// When each room created within one room TTL was made, oldest first
    /// (the quota, at most `max_rooms`).
    created: VecDeque<Instant>,
    me: Option<ServerEntry>,
}

impl State {
    /// The room, unless it never existed or has lapsed.
    fn room(&mut self, code: &str, now: Instant) -> Option<&mut Room> {
        if self.rooms.get(code).is_some_and(|r| r.expires <= now) {
            self.rooms.remove(code);
        }
        self.rooms.get_mut(code)
    }
}

/// Create keys remembered before the record starts over.
const MAX_CREATE_KEYS: usize = 65_536;

#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    bus: BusSender,
    session_ttl: Duration,
    seat_hold: Duration,
    room_ttl: Duration,
    log_max_len: usize,
    max_rooms: usize,
    code_len: usize,
}

impl MemoryStore {
    pub fn new(config: &Config, bus: BusSender) -> MemoryStore {
        // Subscribers of the memory bus are in this process: tell the
        // dispatcher it is "connected" once, as the Redis bus would.
        let _ = bus.send(BusMsg::Reconnected);
        MemoryStore {
            state: Mutex::new(State::default()),
            bus,
            session_ttl: config.session_ttl,
            seat_hold: config.seat_hold,
            room_ttl: config.room_ttl,
            log_max_len: config.log_max_len as usize,
            max_rooms: usize::try_from(config.max_rooms).unwrap_or(usize::MAX),
            code_len: config.room_code_length,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seats `session` in `room`: a seat that lapsed comes back only if
    /// one is free.
    fn seat(
        &self,
        room: &mut Room,
        code: &str,
        session: (&str, &Session),
        now: Instant,
    ) -> Result<Seat, StoreError> {
        let (token, session) = session;
        let live = room.live_seats(now);
        if !room.seats.contains_key(&session.player) && live >= room.spec.max_players {
            return Err(StoreError::RoomFull);
        }
        room.seats
            .insert(session.player.clone(), now + self.session_ttl);
        room.expires = now + self.room_ttl;
        Ok(Seat {
            // `live_seats` above dropped the lapsed ones.
            members: room.seats.len() as u32,
            seq: room.seq,
            floor: session.floor,
            seat: SeatRef {
                room: code.to_owned(),
                player: session.player.clone(),
                session: token.to_owned(),
                holder: session.holder.clone(),
            },
        })
    }

    /// Keeps `seats` for `seat_for` from now, and their sessions for the
    /// session TTL.
    fn hold(&self, seats: &[SeatRef], seat_for: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        state.sessions.retain(|_, s| s.expires > now);
        for seat in seats {
            if let Some(session) = state.sessions.get_mut(&seat.session) {
                session.expires = now + self.session_ttl;
            }
            if let Some(held) = state
                .room(&seat.room, now)
                .and_then(|room| room.seats.get_mut(&seat.player))
            {
                *held = now + seat_for;
            }
        }
    }

    /// Counts a new room against the quota of rooms made within one room
    /// TTL.
    fn count_room(&self, state: &mut State, now: Instant) -> Result<(), StoreError> {
        while state
            .created
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.room_ttl)
        {
            state.created.pop_front();
        }
        if state.created.len() >= self.max_rooms {
            return Err(StoreError::Unavailable(super::ROOM_QUOTA.into()));
        }
        state.created.push_back(now);
        Ok(())
    }

    /// The seat of a live session, renewed in its room.
    fn seated(
        &self,
        state: &mut State,
        code: &str,
        token: &str,
        now: Instant,
    ) -> Result<Seat, StoreError> {
        let session = state
            .sessions
            .get(token)
            .cloned()
            .ok_or(StoreError::SessionExpired)?;
        let room = state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        self.seat(room, code, (token, &session), now)
    }

    fn new_room(&self, spec: &RoomSpec, now: Instant) -> Room {
        Room {
            spec: spec.clone(),
            seq: 0,
            log: VecDeque::new(),
            seats: HashMap::new(),
            expires: now + self.room_ttl,
            acts: VecDeque::new(),
            joins: HashMap::new(),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_room(
        &self,
        spec: &RoomSpec,
        _host: &str,
        key: Option<&str>,
    ) -> Result<String, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(code) = key.and_then(|key| state.creates.get(key)).cloned() {
            if state.room(&code, now).is_some() {
                return Ok(code);
            }
        }
        for _ in 0..super::CREATE_ATTEMPTS {
            let code = ids::room_code(self.code_len);
            if state.room(&code, now).is_none() {
                self.count_room(&mut state, now)?;
                let room = self.new_room(spec, now);
                state.rooms.insert(code.clone(), room);
                if let Some(key) = key {
                    if state.creates.len() >= MAX_CREATE_KEYS {
                        state.creates.clear();
                    }
                    state.creates.insert(key.to_owned(), code.clone());
                }
                return Ok(code);
            }
        }
        Err(StoreError::Unavailable(super::CODE_SPACE_CROWDED.into()))
    }

    async fn room_info(&self, code: &str) -> Result<Option<RoomInfo>, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        Ok(state.room(code, now).map(|room| RoomInfo {
            room: code.to_owned(),
            game: room.spec.game.clone(),
            max_players: room.spec.max_players,
            members: room.live_seats(now),
            seq: room.seq,
        }))
    }

    async fn join(&self, code: &str, entry: &Joining<'_>) -> Result<Seat, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let room = state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        let earlier = entry.key.and_then(|key| room.joins.get(key)).cloned();
        if let Some(token) = earlier {
            if let Some(session) = state.sessions.get_mut(&token) {
                if session.expires > now {
                    session.holder = entry.holder.to_owned();
                    return self.seated(&mut state, code, &token, now);
                }
            }
        }
        let room = state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        if room.live_seats(now) >= room.spec.max_players {
            return Err(StoreError::RoomFull);
        }
        let token = ids::session_token();
        if let Some(key) = entry.key {
            if room.joins.len() >= super::JOIN_KEY_WINDOW {
                room.joins.clear();
            }
            room.joins.insert(key.to_owned(), token.clone());
        }
        let floor = room.seq;
        state.sessions.insert(
            token.clone(),
            Session {
                room: code.to_owned(),
                player: ids::player_id(),
                expires: now + self.session_ttl,
                holder: entry.holder.to_owned(),
                floor,
            },
        );
        self.seated(&mut state, code, &token, now)
    }

    async fn resume(&self, code: &str, token: &str, holder: &str) -> Result<Seat, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        match state.sessions.get_mut(token) {
            Some(s) if s.expires > now && s.room == code => {
                s.expires = now + self.session_ttl;
                s.holder = holder.to_owned();
            }
            _ => return Err(StoreError::SessionExpired),
        }
        self.seated(&mut state, code, token, now)
    }

    async fn leave(&self, seat: &SeatRef) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.sessions.remove(&seat.session);
        if let Some(room) = state.room(&seat.room, now) {
            room.seats.remove(&seat.player);
        }
        Ok(())
    }

    async fn refresh(&self, seats: &[SeatRef]) -> Result<(), StoreError> {
        self.hold(seats, self.session_ttl);
        Ok(())
    }

    async fn release(&self, seat: &SeatRef) -> Result<(), StoreError> {
        self.hold(std::slice::from_ref(seat), self.seat_hold);
        Ok(())
    }

    async fn append(&self, seat: &SeatRef, act: &Act<'_>) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        state.room(&seat.room, now).ok_or(StoreError::UnknownRoom)?;
        match state.sessions.get(&seat.session) {
            Some(s) if s.expires > now && s.holder == seat.holder => {}
            Some(s) if s.expires > now => return Err(StoreError::Replaced),
            _ => return Err(StoreError::SessionExpired),
        }
        let room = state.room(&seat.room, now).ok_or(StoreError::UnknownRoom)?;
        let tag = act.key.map(|key| format!("{} {key}", seat.player));
        if let Some(tag) = &tag {
            if let Some((_, seq)) = room.acts.iter().find(|(t, _)| t == tag) {
                return Ok(*seq);
            }
        }
        room.seq += 1;
        room.expires = now + self.room_ttl;
        let event = LoggedEvent {
            seq: room.seq,
            from: seat.player.clone(),
            id: act.id,
            data: act.data.clone(),
            ts_us: super::now_us(),
        };
        room.log.push_back(event.clone());
        if room.log.len() > self.log_max_len {
            room.log.pop_front();
        }
        let seq = room.seq;
        if let Some(tag) = tag {
            room.acts.push_back((tag, seq));
            if room.acts.len() > super::ACT_KEY_WINDOW {
                room.acts.pop_front();
            }
        }
        // Sent under the lock: the bus must see seqs in order.
        let _ = self.bus.send(BusMsg::Event {
            room: seat.room.clone(),
            event,
        });
        Ok(seq)
    }

    async fn range(&self, code: &str, from: u64, to: u64) -> Result<Vec<LoggedEvent>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let now = Instant::now();
        let mut state = self.state();
        let room = state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        let events: Vec<LoggedEvent> = room
            .log
            .iter()
            .filter(|e| (from..=to).contains(&e.seq))
            .cloned()
            .collect();
        match events.first() {
            Some(first) if first.seq == from => Ok(events),
            _ => Err(StoreError::Trimmed(from.saturating_sub(1))),
        }
    }

    async fn latest_seq(&self, code: &str) -> Result<u64, StoreError> {
        let now = Instant::now();
        Ok(self.state().room(code, now).map_or(0, |r| r.seq))
    }

    async fn raise_seq(&self, code: &str, floor: u64) -> Result<u64, StoreError> {
        let now = Instant::now();
        let mut state = self.state();
        let room = state.room(code, now).ok_or(StoreError::UnknownRoom)?;
        let previous = room.seq;
        room.seq = room.seq.max(floor);
        Ok(previous)
    }

    async fn subscribe(&self, _room: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn unsubscribe(&self, _room: &str, _abandoned: &(dyn Fn() -> bool + Send + Sync)) {}

    async fn heartbeat(&self, me: &ServerEntry, _ttl: Duration) -> Result<(), StoreError> {
        self.state().me = Some(me.clone());
        Ok(())
    }

    async fn servers(&self) -> Result<Vec<ServerEntry>, StoreError> {
        Ok(self.state().me.iter().cloned().collect())
    }

    async fn deregister(&self, _server: &str) {
        self.state().me = None;
    }

    async fn health(&self) -> StoreHealth {
        StoreHealth {
            ping: None,
            subscribed: true,
        }
    }
}
