//! Seats in Redis: taking one (the join script), taking one back for a
//! session (the resume script), giving one up, and holding seats and their
//! sessions alive for a while (a refresh while connected, the seat hold
//! after a disconnect). The scripts re-seat a returning player only while
//! the room has a free seat: a held seat counts as taken.

use super::super::layout::RoomKeys;
use super::super::{Joining, Seat, SeatRef, StoreError};
use super::{now_ms, RedisStore};

use crate::ids;

impl RedisStore {
    /// A new seat (or, for a retry of the same key, the one the first took).
    pub(super) async fn take_seat(
        &self,
        room: &str,
        entry: &Joining<'_>,
    ) -> Result<Seat, StoreError> {
        let keys = RoomKeys::new(room);
        let session = ids::session_token();
        let mut call = self.join.prepare_invoke();
        call.key(keys.meta())
            .key(keys.members())
            .key(keys.seq())
            .key(keys.session(&session))
            .key(keys.joins())
            .arg(ids::player_id())
            .arg(entry.name)
            .arg(now_ms())
            .arg(self.settings.session_ttl_ms)
            .arg(self.settings.room_ttl_ms)
            .arg(entry.key.unwrap_or(""))
            .arg(entry.holder)
            .arg(super::super::JOIN_KEY_WINDOW)
            .arg(&session);
        let (status, seq, members, player, session): (i64, u64, u32, String, String) = self
            .timed_write("join", async { call.invoke_async(&mut self.conn()).await })
            .await?;
        let seat = |player, session| Seat {
            seat: SeatRef {
                room: room.to_owned(),
                player,
                session,
                holder: entry.holder.to_owned(),
            },
            seq,
            members,
            floor: seq,
        };
        match status {
            1 | 2 => Ok(seat(player, session)),
            -2 => Err(StoreError::RoomFull),
            _ => Err(StoreError::UnknownRoom),
        }
    }

    /// The seat of `session`, for its new connection.
    pub(super) async fn take_back(
        &self,
        room: &str,
        session: &str,
        holder: &str,
    ) -> Result<Seat, StoreError> {
        let keys = RoomKeys::new(room);
        let mut call = self.resume.prepare_invoke();
        call.key(keys.meta())
            .key(keys.members())
            .key(keys.seq())
            .key(keys.session(session))
            .arg(now_ms())
            .arg(self.settings.session_ttl_ms)
            .arg(self.settings.room_ttl_ms)
            .arg(holder);
        let (status, seq, members, player, floor): (i64, u64, u32, String, u64) = self
            .timed_write("resume", async {
                call.invoke_async(&mut self.conn()).await
            })
            .await?;
        match status {
            1 => Ok(Seat {
                seat: SeatRef {
                    room: room.to_owned(),
                    player,
                    session: session.to_owned(),
                    holder: holder.to_owned(),
                },
                seq,
                members,
                floor,
            }),
            -1 => Err(StoreError::UnknownRoom),
            -2 => Err(StoreError::RoomFull),
            _ => Err(StoreError::SessionExpired),
        }
    }

    /// The seat given up for good: its member entry and session go.
    pub(super) async fn give_up(&self, seat: &SeatRef) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&seat.room);
        let mut pipe = redis::pipe();
        pipe.zrem(keys.members(), &seat.player)
            .ignore()
            .del(keys.session(&seat.session))
            .ignore();
        self.timed("leave", async {
            pipe.query_async::<()>(&mut self.conn()).await
        })
        .await
    }

    /// Keeps `seats` for `seat_ms` from now, and their sessions for the
    /// session TTL.
    pub(super) async fn hold(&self, seats: &[SeatRef], seat_ms: u64) -> Result<(), StoreError> {
        if seats.is_empty() {
            return Ok(());
        }
        let expires = now_ms() + seat_ms;
        // One pipeline per room: on a cluster, a pipeline must stay in one slot.
        let mut rooms: std::collections::HashMap<&str, redis::Pipeline> = Default::default();
        for seat in seats {
            let keys = RoomKeys::new(&seat.room);
            let pipe = rooms.entry(seat.room.as_str()).or_insert_with(redis::pipe);
            // XX: a seat given up (leave) or already expired is not brought back.
            pipe.cmd("ZADD")
                .arg(keys.members())
                .arg("XX")
                .arg(expires)
                .arg(&seat.player)
                .ignore()
                .pexpire(
                    keys.session(&seat.session),
                    self.settings.session_ttl_ms as i64,
                )
                .ignore();
        }
        let sent = rooms.values().map(|pipe| {
            self.timed("refresh", async move {
                pipe.query_async::<()>(&mut self.conn()).await
            })
        });
        futures_util::future::join_all(sent)
            .await
            .into_iter()
            .collect()
    }
}
