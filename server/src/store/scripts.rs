//! The Lua scripts of the Redis store, each one atomic step: a join takes a
//! seat only if one is free, a resume renews a session's seat, an append
//! numbers, logs and publishes an event in one go, and a raise lifts a
//! room's seq after Redis lost what it had acknowledged.

/// Seats a player if the room exists and has a free seat.
pub const JOIN: &str = r#"
-- KEYS: meta members seq session   ARGV: player name now_ms ttl_ms room_ttl_ms
local meta = redis.call('GET', KEYS[1])
if not meta then return {-1, 0, 0} end
local max = cjson.decode(meta).max_players
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= max then return {-2, 0, 0} end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[4], 'player', ARGV[1], 'name', ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
return {1, seq, redis.call('ZCARD', KEYS[2])}
"#;

/// Renews the seat of a session that is still alive.
pub const RESUME: &str = r#"
-- KEYS: meta members seq session   ARGV: now_ms ttl_ms room_ttl_ms
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, ''} end
local player = redis.call('HGET', KEYS[4], 'player')
if not player then return {-3, 0, 0, ''} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), player)
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
return {1, seq, redis.call('ZCARD', KEYS[2]), player}
"#;

/// INCR the seq, XADD under `<seq>-1`, (S)PUBLISH, refresh the TTLs.
pub const APPEND: &str = r#"
-- KEYS: meta seq log   ARGV: channel from id data ts_us maxlen room_ttl_ms publish
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local s = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], s .. '-1',
  'f', ARGV[2], 'i', ARGV[3], 'd', ARGV[4], 't', ARGV[5])
redis.call(ARGV[8], ARGV[1], s .. '\n' .. ARGV[5] .. '\n' .. ARGV[3] .. '\n' .. ARGV[2] .. '\n' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return s
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
