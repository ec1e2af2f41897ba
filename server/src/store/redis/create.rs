//! Room creation in Redis: a fresh code taken with `SET NX`, and for a
//! keyed create, the key claimed for a code first so that a retry finds
//! the room the first attempt made (or makes that very room).

use redis::AsyncCommands;

use super::super::layout::{create_key, RoomKeys, RoomMeta, CREATED_KEY};
use super::super::{RoomSpec, StoreError, CODE_SPACE_CROWDED, CREATE_ATTEMPTS, ROOM_QUOTA};
use super::{now_ms, RedisStore};

use crate::ids;

impl RedisStore {
    /// A new room for `spec` hosted by `host`; with `key`, the same room
    /// for every retry.
    pub(super) async fn create(
        &self,
        spec: &RoomSpec,
        host: &str,
        key: Option<&str>,
    ) -> Result<String, StoreError> {
        let meta = RoomMeta {
            game: spec.game.clone(),
            max_players: spec.max_players,
            server: host.to_owned(),
        };
        let meta =
            serde_json::to_string(&meta).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // A keyed create claims its key for a code first: a retry finds the
        // code and (re)creates that room, whether or not the first got to it.
        let mut code = match key {
            Some(key) => self.claim_create_key(key).await?,
            None => self.fresh_code(),
        };
        self.count_room(&code).await?;
        for _ in 0..CREATE_ATTEMPTS {
            if self.set_meta(&code, &meta).await? {
                return Ok(code);
            }
            if let Some(key) = key {
                if self.made_by(&code, spec).await? {
                    return Ok(code);
                }
                code = self.fresh_code();
                self.move_create_key(key, &code).await?;
            } else {
                code = self.fresh_code();
            }
            self.count_room(&code).await?;
        }
        Err(StoreError::Unavailable(CODE_SPACE_CROWDED.into()))
    }

    fn fresh_code(&self) -> String {
        ids::room_code(self.settings.code_len)
    }

    /// Counts a new room against the server-wide quota of rooms created
    /// within one room TTL (one key for every replica). A code counts once,
    /// so a keyed retry is not counted again; a code drawn but taken
    /// counts until its TTL (rare: the space is large).
    async fn count_room(&self, code: &str) -> Result<(), StoreError> {
        let mut call = self.count_room.prepare_invoke();
        call.key(CREATED_KEY)
            .arg(now_ms())
            .arg(self.settings.room_ttl_ms)
            .arg(self.settings.max_rooms)
            .arg(code);
        let counted: i64 = self
            .timed_write("create_room", async {
                call.invoke_async(&mut self.conn()).await
            })
            .await?;
        if counted == 1 {
            Ok(())
        } else {
            Err(StoreError::Unavailable(ROOM_QUOTA.into()))
        }
    }

    /// `SET NX` of a room's meta: whether this call created the room.
    async fn set_meta(&self, code: &str, meta: &str) -> Result<bool, StoreError> {
        let set = redis::cmd("SET")
            .arg(RoomKeys::new(code).meta())
            .arg(meta)
            .arg("NX")
            .arg("PX")
            .arg(self.settings.room_ttl_ms)
            .clone();
        let created: Option<String> = self
            .timed_write("create_room", async {
                set.query_async(&mut self.conn()).await
            })
            .await?;
        Ok(created.is_some())
    }

    /// Whether the existing room `code` is the one `spec` asks for (a keyed
    /// create that already happened), not another room on that code. The
    /// host may differ: a retry can pick another replica.
    async fn made_by(&self, code: &str, spec: &RoomSpec) -> Result<bool, StoreError> {
        let key = RoomKeys::new(code).meta();
        let found: Option<String> = self
            .timed("create_room", async { self.conn().get(key).await })
            .await?;
        let found: Option<RoomMeta> = found.and_then(|meta| serde_json::from_str(&meta).ok());
        Ok(found.is_some_and(|m| m.game == spec.game && m.max_players == spec.max_players))
    }

    /// The code a create key names, claiming a fresh one if it names none.
    async fn claim_create_key(&self, key: &str) -> Result<String, StoreError> {
        let fresh = self.fresh_code();
        let claim = redis::cmd("SET")
            .arg(create_key(key))
            .arg(&fresh)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(self.settings.room_ttl_ms)
            .clone();
        let earlier: Option<String> = self
            .timed_write("create_room", async {
                claim.query_async(&mut self.conn()).await
            })
            .await?;
        Ok(earlier.unwrap_or(fresh))
    }

    async fn move_create_key(&self, key: &str, code: &str) -> Result<(), StoreError> {
        let set = redis::cmd("SET")
            .arg(create_key(key))
            .arg(code)
            .arg("PX")
            .arg(self.settings.room_ttl_ms)
            .clone();
        self.timed_write("create_room", async {
            set.query_async::<()>(&mut self.conn()).await
        })
        .await
    }
}
