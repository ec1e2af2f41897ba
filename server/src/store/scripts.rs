//! The Lua scripts of the Redis store, each one atomic step: a join takes a
//! seat only if one is free (or finds the seat a keyed retry took), a resume
//! renews a session's seat and moves it to the new connection, an append
//! checks the session's holder and the key window and numbers, logs and
//! publishes an event in one go, and a raise lifts a room's seq after Redis
//! lost what it had acknowledged. A seat that lapsed while its player was
//! away is taken back only if the room has one free; a create counts
//! against the room quota.

/// The one seating rule of the join and resume scripts: lapsed seats go
/// first, then `player` is seated until `until_ms` if they already hold a
/// seat or one is free. False when the room is full.
macro_rules! seat_lua {
    () => {
        r#"
local function seat(members, max, now, until_ms, player)
  redis.call('ZREMRANGEBYSCORE', members, '-inf', now)
  if not redis.call('ZSCORE', members, player)
    and redis.call('ZCARD', members) >= max then
    return false
  end
  redis.call('ZADD', members, until_ms, player)
  return true
end
"#
    };
}

/// Seats a player if the room exists and has a free seat. With a key, a
/// retry gets the seat the first attempt took (while its session lives).
pub const JOIN: &str = concat!(
    seat_lua!(),
    r#"
-- KEYS: meta members seq session joins
-- ARGV: player name now_ms ttl_ms room_ttl_ms key holder keep session_token
local meta = redis.call('GET', KEYS[1])
if not meta then return {-1, 0, 0, '', ''} end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
if ARGV[6] ~= '' then
  local prev = redis.call('HGET', KEYS[5], ARGV[6])
  if prev then
    local player, token = string.match(prev, '^(%S+) (%S+)$')
    local skey = string.sub(KEYS[1], 1, -6) .. ':session:' .. token
    if redis.call('EXISTS', skey) == 1 then
      if not seat(KEYS[2], cjson.decode(meta).max_players, ARGV[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), player) then
        return {-2, 0, 0, '', ''}
      end
      redis.call('HSET', skey, 'holder', ARGV[7])
      return {2, seq, redis.call('ZCARD', KEYS[2]), player, token}
    end
  end
end
if not seat(KEYS[2], cjson.decode(meta).max_players, ARGV[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1]) then
  return {-2, 0, 0, '', ''}
end
redis.call('HSET', KEYS[4], 'player', ARGV[1], 'name', ARGV[2], 'holder', ARGV[7], 'floor', seq)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if ARGV[6] ~= '' then
  -- The window of keyed joins is bounded: past `keep`, it starts over.
  if redis.call('HLEN', KEYS[5]) >= tonumber(ARGV[8]) then redis.call('DEL', KEYS[5]) end
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[1] .. ' ' .. ARGV[9])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
return {1, seq, redis.call('ZCARD', KEYS[2]), ARGV[1], ARGV[9]}
"#
);

/// Renews the seat of a session that is still alive and makes this
/// connection its holder (an older one is refused on its next act). A seat
/// that lapsed (held past `--seat-hold`) comes back only if one is free.
pub const RESUME: &str = concat!(
    seat_lua!(),
    r#"
-- KEYS: meta members seq session   ARGV: now_ms ttl_ms room_ttl_ms holder
local meta = redis.call('GET', KEYS[1])
if not meta then return {-1, 0, 0, '', 0} end
local player = redis.call('HGET', KEYS[4], 'player')
if not player then return {-3, 0, 0, '', 0} end
if not seat(KEYS[2], cjson.decode(meta).max_players, ARGV[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), player) then
  return {-2, 0, 0, '', 0}
end
redis.call('HSET', KEYS[4], 'holder', ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local floor = tonumber(redis.call('HGET', KEYS[4], 'floor') or '0')
return {1, seq, redis.call('ZCARD', KEYS[2]), player, floor}
"#
);

/// Checks the session's holder, answers a keyed retry with its first seq,
/// else INCR the seq, XADD under `<seq>-1`, (S)PUBLISH, record the key,
/// refresh the TTLs. Returns {status, seq}: 1 appended, 0 a retry, -1 no
/// room, -3 another connection holds the session, -4 no session.
pub const APPEND: &str = r#"
-- KEYS: meta seq log acts session
-- ARGV: channel from id data ts_us maxlen room_ttl_ms publish key window holder
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local holder = redis.call('HGET', KEYS[5], 'holder')
if not holder then return {-4, 0} end
if holder ~= ARGV[11] then return {-3, 0} end
local tag = nil
if ARGV[9] ~= '' then
  tag = ARGV[2] .. ' ' .. ARGV[9]
  local first = redis.call('ZSCORE', KEYS[4], tag)
  if first then return {0, tonumber(first)} end
end
local s = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], s .. '-1',
  'f', ARGV[2], 'i', ARGV[3], 'd', ARGV[4], 't', ARGV[5])
redis.call(ARGV[8], ARGV[1], s .. '\n' .. ARGV[5] .. '\n' .. ARGV[3] .. '\n' .. ARGV[2] .. '\n' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
if tag then
  redis.call('ZADD', KEYS[4], s, tag)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[10]) + 1))
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
return {1, s}
"#;

/// Counts a room against the quota of rooms created within one room TTL:
/// 1 counted, 0 the quota is spent.
pub const COUNT_ROOM: &str = r#"
-- KEYS: created   ARGV: now_ms room_ttl_ms max code
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// Lifts the seq to at least a floor (Redis came back with less).
pub const RAISE_SEQ: &str = r#"
-- KEYS: seq   ARGV: floor room_ttl_ms
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return cur
"#;
