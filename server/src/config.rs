//! Server configuration: raw command-line/environment arguments (`Args`) and
//! the validated, immutable `Config` every other module reads by reference.
//!
//! Validation happens once, here; nothing downstream re-checks a limit or
//! treats a magic value as "unset".

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Where rooms, sessions and the event log live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateMode {
    /// Shared state in Redis: any replica serves any room (tier 2).
    Redis,
    /// Process-local state: a single replica (tier 1 baseline).
    Memory,
}

impl StateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StateMode::Redis => "redis",
            StateMode::Memory => "memory",
        }
    }
}

/// How `POST /api/rooms` picks the replica that hosts a new room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Assign {
    /// The replica that answered the request.
    #[value(name = "self")]
    Self_,
    /// The live replica with the fewest connections.
    LeastLoaded,
}

/// Command-line flags; every one can also come from a `TIERLAB_*` variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tierlab-server",
    version,
    about = "Tierlab's reference game server"
)]
pub struct Args {
    /// Address to bind.
    #[arg(long, env = "TIERLAB_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port for HTTP and WebSocket (0 picks a free one).
    #[arg(long, env = "TIERLAB_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Name of this replica in the registry, in `welcome` and in metrics.
    #[arg(long, env = "TIERLAB_SERVER_ID")]
    pub server_id: Option<String>,
    /// WebSocket URL clients should use to reach this replica directly
    /// (default: ws://<bind>:<port>/ws).
    #[arg(long, env = "TIERLAB_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, env = "TIERLAB_STATE", value_enum, default_value_t = StateMode::Redis)]
    pub state: StateMode,
    #[arg(
        long,
        env = "TIERLAB_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Follow the primary that these Sentinels name (host:port,…) instead
    /// of --redis-url.
    #[arg(long, env = "TIERLAB_REDIS_SENTINEL", value_delimiter = ',')]
    pub redis_sentinel: Vec<String>,
    /// The master name the Sentinels monitor.
    #[arg(long, env = "TIERLAB_REDIS_MASTER", default_value = "tierlab")]
    pub redis_master: String,
    /// Use this Redis Cluster (host:port of any nodes,…) instead of
    /// --redis-url: rooms spread over its shards, fan-out by sharded pub/sub.
    #[arg(long, env = "TIERLAB_REDIS_CLUSTER", value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
    /// Acknowledge an act only once this many Redis replicas hold it (WAIT),
    /// so a failover cannot lose acknowledged events. 0: do not wait.
    #[arg(long, env = "TIERLAB_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,
    #[arg(long, env = "TIERLAB_ASSIGN", value_enum, default_value_t = Assign::Self_)]
    pub assign: Assign,
    /// How long a disconnected player's session survives (it can resume).
    #[arg(long, env = "TIERLAB_SESSION_TTL", default_value = "120s", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,
    /// How long a disconnected player's seat is kept from new players (at
    /// most the session TTL); past it, a resume gets the seat back only if
    /// the room has one free.
    #[arg(long, env = "TIERLAB_SEAT_HOLD", default_value = "30s", value_parser = humantime::parse_duration)]
    pub seat_hold: Duration,
    /// How long an idle room (no join, no event) is kept.
    #[arg(long, env = "TIERLAB_ROOM_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub room_ttl: Duration,
    /// Events kept per room log (approximate, Redis MAXLEN ~).
    #[arg(long, env = "TIERLAB_LOG_MAX_LEN", default_value_t = 10_000)]
    pub log_max_len: u64,
    /// Largest text frame accepted; larger ones get `too_large`.
    #[arg(long, env = "TIERLAB_MAX_FRAME", default_value_t = tierlab_protocol::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Largest `data` of an act, in bytes of JSON.
    #[arg(long, env = "TIERLAB_MAX_ACT_DATA", default_value_t = tierlab_protocol::DEFAULT_MAX_ACT_DATA)]
    pub max_act_data: usize,
    /// Largest `max_players` a room may ask for.
    #[arg(long, env = "TIERLAB_MAX_ROOM_SIZE", default_value_t = 1000)]
    pub max_room_size: u32,
    /// Sustained frames per second a connection may send.
    #[arg(long, env = "TIERLAB_RATE", default_value_t = 50.0)]
    pub rate: f64,
    /// Burst of frames a connection may send above `rate`.
    #[arg(long, env = "TIERLAB_BURST", default_value_t = 100.0)]
    pub burst: f64,
    /// Rejected frames (bad, oversized or rate-limited) within 10 s that close
    /// the connection with 1008.
    #[arg(long, env = "TIERLAB_ABUSE_LIMIT", default_value_t = 20)]
    pub abuse_limit: u32,
    /// Frames queued for one client before it counts as a slow consumer.
    #[arg(long, env = "TIERLAB_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,
    /// Concurrent WebSocket connections accepted by this replica (default:
    /// what the descriptor limit leaves after a reserve and --max-pending).
    #[arg(long, env = "TIERLAB_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,
    /// Connections still in HTTP (not yet WebSockets) held at once; one more
    /// closes the oldest (default: an eighth of the descriptor budget, at
    /// most 1024).
    #[arg(long, env = "TIERLAB_MAX_PENDING")]
    pub max_pending: Option<usize>,
    /// Rooms one WebSocket connection may create.
    #[arg(long, env = "TIERLAB_ROOMS_PER_CONNECTION", default_value_t = 16)]
    pub rooms_per_connection: u32,
    /// Rooms one peer address may create per second through REST (burst:
    /// ten times as many).
    #[arg(long, env = "TIERLAB_CREATE_RATE", default_value_t = 100.0)]
    pub create_rate: f64,
    /// Rooms all replicas together may create within one room TTL; past it,
    /// creation answers `unavailable` (503) until older rooms' TTL passes.
    #[arg(long, env = "TIERLAB_MAX_ROOMS", default_value_t = 100_000)]
    pub max_rooms: u64,
    /// Characters in a new room code (6-16; each adds ~5 bits against
    /// guessing). Codes of every length in that range are accepted.
    #[arg(long, env = "TIERLAB_ROOM_CODE_LENGTH", default_value_t = tierlab_protocol::room_code::ROOM_CODE_LEN)]
    pub room_code_length: usize,
    /// Bytes of replay one session may pull per second once its burst
    /// (eight seconds' worth) is spent: resumes cannot amplify a small
    /// request into a flood.
    #[arg(long, env = "TIERLAB_REPLAY_RATE", default_value_t = 1 << 20)]
    pub replay_rate: u64,
    /// Lookups of unknown rooms one peer address may make per second
    /// (burst: four times as many); past that, every lookup from it is
    /// answered 429 until it slows down: room codes cannot be swept.
    #[arg(long, env = "TIERLAB_LOOKUP_MISS_RATE", default_value_t = 5.0)]
    pub lookup_miss_rate: f64,
    /// Time a client has to send a request's headers.
    #[arg(long, env = "TIERLAB_HEADER_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// A WebSocket that sends nothing (not even a pong to the server's
    /// pings, sent every third of this) for this long is closed.
    #[arg(long, env = "TIERLAB_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// How long a draining replica keeps answering `/ready` with 503 after
    /// its clients have gone, so a load balancer's health check sees it.
    #[arg(long, env = "TIERLAB_DRAIN_LINGER", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain_linger: Duration,
    /// Time a Redis operation may take before the client gets `unavailable`.
    #[arg(long, env = "TIERLAB_REDIS_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub redis_timeout: Duration,
    /// Interval of the replica's registry heartbeat.
    #[arg(long, env = "TIERLAB_HEARTBEAT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// How long a room's feed (and its Pub/Sub subscription) outlives its last
    /// local member, in case someone comes back.
    #[arg(long, env = "TIERLAB_FEED_IDLE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub feed_idle: Duration,
    /// Longest a graceful shutdown waits for clients to go.
    #[arg(long, env = "TIERLAB_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Runtime worker threads (1 = a single-threaded runtime; default: one per core).
    #[arg(long, env = "TIERLAB_WORKERS")]
    pub workers: Option<usize>,
    /// WebSocket read buffer per connection, bytes.
    #[arg(long, env = "TIERLAB_WS_READ_BUFFER", default_value_t = 4096)]
    pub ws_read_buffer: usize,
    /// WebSocket write buffer per connection, bytes (frames are batched up to this).
    #[arg(long, env = "TIERLAB_WS_WRITE_BUFFER", default_value_t = 8192)]
    pub ws_write_buffer: usize,
    /// A known regression for proving the A/B gate: CPU time burnt for
    /// every event handed to a member. Never set in production.
    #[arg(long, env = "TIERLAB_SPEND_PER_DELIVERY", hide = true, value_parser = humantime::parse_duration)]
    pub spend_per_delivery: Option<Duration>,
}

/// Validated settings; built once by [`Config::from_args`].
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub server_id: String,
    public_url: Option<String>,
    pub state: StateMode,
    pub redis_url: String,
    /// Sentinel addresses (`host:port`); empty: use `redis_url`.
    pub redis_sentinel: Vec<String>,
    pub redis_master: String,
    /// Cluster node addresses (`host:port`); empty: not a cluster.
    pub redis_cluster: Vec<String>,
    pub redis_wait_replicas: u32,
    pub assign: Assign,
    pub session_ttl: Duration,
    /// At most `session_ttl`.
    pub seat_hold: Duration,
    pub room_ttl: Duration,
    pub log_max_len: u64,
    pub max_frame: usize,
    pub max_act_data: usize,
    pub max_room_size: u32,
    pub rate: f64,
    pub burst: f64,
    pub abuse_limit: u32,
    pub send_queue: usize,
    pub max_connections: u64,
    pub max_pending: usize,
    pub rooms_per_connection: u32,
    pub create_rate: f64,
    pub max_rooms: u64,
    pub room_code_length: usize,
    pub replay_rate: u64,
    pub lookup_miss_rate: f64,
    /// Descriptors this process may spend on client sockets.
    pub max_sockets: u64,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_linger: Duration,
    pub redis_timeout: Duration,
    pub heartbeat: Duration,
    pub feed_idle: Duration,
    pub drain_timeout: Duration,
    pub ws_read_buffer: usize,
    pub ws_write_buffer: usize,
    pub workers: usize,
    /// See [`Args::spend_per_delivery`]; zero unless asked.
    pub spend_per_delivery: Duration,
}

/// A flag combination that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

fn check(ok: bool, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError(message.to_owned()))
    }
}

/// The limits a replica enforces, and its timings, are sane.
fn check_limits(args: &Args) -> Result<(), ConfigError> {
    check(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be a positive number",
    )?;
    check(
        args.burst >= 1.0 && args.burst.is_finite(),
        "--burst must be at least 1",
    )?;
    check(
        args.max_frame >= 256,
        "--max-frame must be at least 256 bytes",
    )?;
    check(
        args.max_act_data > 0 && args.max_act_data < args.max_frame,
        "--max-act-data must be positive and smaller than --max-frame",
    )?;
    check(
        args.max_room_size >= 1,
        "--max-room-size must be at least 1",
    )?;
    check(args.send_queue >= 16, "--send-queue must be at least 16")?;
    check(args.abuse_limit >= 1, "--abuse-limit must be at least 1")?;
    check(
        args.log_max_len >= 100,
        "--log-max-len must be at least 100",
    )?;
    check(
        args.session_ttl >= Duration::from_secs(1),
        "--session-ttl must be at least 1s",
    )?;
    check(
        args.room_ttl >= args.session_ttl,
        "--room-ttl must be at least --session-ttl",
    )?;
    check(
        args.heartbeat >= Duration::from_millis(100),
        "--heartbeat must be at least 100ms",
    )?;
    check(
        args.redis_timeout >= Duration::from_millis(50),
        "--redis-timeout must be at least 50ms",
    )?;
    check(
        args.create_rate > 0.0 && args.create_rate.is_finite(),
        "--create-rate must be a positive number",
    )?;
    check(args.max_rooms >= 1, "--max-rooms must be at least 1")?;
    check(
        (tierlab_protocol::room_code::ROOM_CODE_LEN
            ..=tierlab_protocol::room_code::MAX_ROOM_CODE_LEN)
            .contains(&args.room_code_length),
        "--room-code-length must be between 6 and 16",
    )?;
    check(
        args.replay_rate >= 1024,
        "--replay-rate must be at least 1024 (bytes per second)",
    )?;
    check(
        args.seat_hold >= Duration::from_secs(1),
        "--seat-hold must be at least 1s",
    )?;
    check(
        args.lookup_miss_rate > 0.0 && args.lookup_miss_rate.is_finite(),
        "--lookup-miss-rate must be a positive number",
    )?;
    check(
        args.header_timeout >= Duration::from_millis(100),
        "--header-timeout must be at least 100ms",
    )?;
    check(
        args.idle_timeout >= Duration::from_secs(1),
        "--idle-timeout must be at least 1s",
    )?;
    check(
        args.ws_read_buffer >= 1024,
        "--ws-read-buffer must be at least 1024",
    )
}

/// Its name, its public URL and how it reaches Redis are well-formed.
fn check_identity_and_redis(args: &Args) -> Result<(), ConfigError> {
    if let Some(id) = &args.server_id {
        check(
            !id.is_empty() && id.len() <= 64 && !id.contains(char::is_whitespace),
            "--server-id must be 1-64 characters without spaces",
        )?;
    }
    if let Some(url) = &args.public_url {
        check(
            url.starts_with("ws://") || url.starts_with("wss://"),
            "--public-url must start with ws:// or wss://",
        )?;
    }
    let host_port = |a: &String| {
        a.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    };
    check(
        args.redis_sentinel.iter().all(host_port),
        "--redis-sentinel takes host:port,host:port,…",
    )?;
    check(
        args.redis_cluster.iter().all(host_port),
        "--redis-cluster takes host:port,host:port,…",
    )?;
    check(
        args.redis_cluster.is_empty() || args.redis_sentinel.is_empty(),
        "--redis-cluster and --redis-sentinel cannot be used together",
    )?;
    check(
        !args.redis_master.trim().is_empty(),
        "--redis-master must not be empty",
    )
}

/// Descriptors kept back from clients: Redis connections, the listener,
/// logs, and a few to spare.
pub const FD_RESERVE: u64 = 64;

/// How the process's descriptors are shared between client sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub sockets: u64,
    pub max_pending: usize,
    pub max_connections: u64,
}

impl Budget {
    /// Splits `fd_limit` (the soft RLIMIT_NOFILE) between pending and
    /// WebSocket connections; explicit flags win but must fit in it.
    pub fn new(
        fd_limit: u64,
        pending: Option<usize>,
        connections: Option<u64>,
    ) -> Result<Budget, ConfigError> {
        let sockets = fd_limit.saturating_sub(FD_RESERVE);
        check(
            sockets >= 32,
            &format!("the descriptor limit ({fd_limit}) leaves too few sockets; raise `ulimit -n`"),
        )?;
        // Unless told, pending gets an eighth (16…1024), and less when
        // --max-connections asks for nearly everything.
        let left = connections.map_or(sockets, |c| sockets.saturating_sub(c));
        let fair = (sockets / 8).clamp(16, 1024).min(left.max(1));
        let max_pending = pending.unwrap_or(fair as usize);
        check(max_pending >= 1, "--max-pending must be at least 1")?;
        let room = sockets.saturating_sub(max_pending as u64);
        let max_connections = connections.unwrap_or(room);
        check(
            max_connections >= 1 && max_connections <= room,
            &format!(
                "--max-connections ({max_connections}) and --max-pending ({max_pending}) need more descriptors than the limit ({fd_limit}) less {FD_RESERVE} leaves; raise `ulimit -n` or lower them"
            ),
        )?;
        Ok(Budget {
            sockets,
            max_pending,
            max_connections,
        })
    }
}

/// The soft descriptor limit, raised to the hard one where allowed.
fn descriptor_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        check_limits(&args)?;
        check_identity_and_redis(&args)?;
        let budget = Budget::new(descriptor_limit(), args.max_pending, args.max_connections)?;
        let listen = SocketAddr::new(args.bind, args.port);
        Ok(Config {
            server_id: args
                .server_id
                .unwrap_or_else(|| format!("srv-{}", crate::ids::short_suffix())),
            listen,
            public_url: args.public_url,
            state: args.state,
            redis_url: args.redis_url,
            redis_sentinel: args.redis_sentinel,
            redis_master: args.redis_master,
            redis_cluster: args.redis_cluster,
            redis_wait_replicas: args.redis_wait_replicas,
            assign: args.assign,
            session_ttl: args.session_ttl,
            seat_hold: args.seat_hold.min(args.session_ttl),
            room_ttl: args.room_ttl,
            log_max_len: args.log_max_len,
            max_frame: args.max_frame,
            max_act_data: args.max_act_data,
            max_room_size: args.max_room_size,
            rate: args.rate,
            burst: args.burst,
            abuse_limit: args.abuse_limit,
            send_queue: args.send_queue,
            max_connections: budget.max_connections,
            max_pending: budget.max_pending,
            rooms_per_connection: args.rooms_per_connection,
            create_rate: args.create_rate,
            max_rooms: args.max_rooms,
            room_code_length: args.room_code_length,
            replay_rate: args.replay_rate,
            lookup_miss_rate: args.lookup_miss_rate,
            max_sockets: budget.sockets,
            header_timeout: args.header_timeout,
            idle_timeout: args.idle_timeout,
            drain_linger: args.drain_linger,
            redis_timeout: args.redis_timeout,
            heartbeat: args.heartbeat,
            feed_idle: args.feed_idle,
            drain_timeout: args.drain_timeout,
            ws_read_buffer: args.ws_read_buffer,
            ws_write_buffer: args.ws_write_buffer,
            workers: args
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            spend_per_delivery: args.spend_per_delivery.unwrap_or_default(),
        })
    }

    /// Parses `argv`-style flags; for tests and embedding.
    pub fn parse_from<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(args).map_err(|e| ConfigError(e.to_string()))?;
        Config::from_args(args)
    }

    /// The WebSocket URL this replica advertises, given the address it
    /// actually bound (which differs from `listen` when the port was 0).
    pub fn ws_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!("ws://{bound}/ws"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_descriptor_budget_keeps_a_reserve_and_fits_explicit_flags() {
        use super::{Budget, FD_RESERVE};
        let small = Budget::new(1024, None, None).unwrap();
        assert_eq!(small.sockets, 1024 - FD_RESERVE);
        assert_eq!(small.max_pending, 120);
        assert_eq!(small.max_connections, 1024 - FD_RESERVE - 120);
        let large = Budget::new(1_048_576, None, None).unwrap();
        assert_eq!(large.max_pending, 1024);
        // Asked for nearly everything: pending shrinks to what is left.
        let tight = Budget::new(20_000, None, Some(19_000)).unwrap();
        assert_eq!((tight.max_connections, tight.max_pending), (19_000, 936));
        let err = Budget::new(1024, None, Some(50_000)).unwrap_err();
        assert!(err.to_string().contains("ulimit -n"), "{err}");
    }

    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::parse_from(["tierlab-server"]).expect("defaults");
        assert_eq!(config.state, StateMode::Redis);
        assert_eq!(config.session_ttl, Duration::from_secs(120));
        assert_eq!(config.max_frame, 64 * 1024);
        assert!(config.server_id.starts_with("srv-"));
    }

    #[test]
    fn flags_override_and_parse_durations() {
        let config = Config::parse_from([
            "tierlab-server",
            "--state",
            "memory",
            "--session-ttl",
            "3s",
            "--server-id",
            "srv-9",
            "--assign",
            "least-loaded",
        ])
        .expect("valid");
        assert_eq!(config.state, StateMode::Memory);
        assert_eq!(config.session_ttl, Duration::from_secs(3));
        assert_eq!(config.server_id, "srv-9");
        assert_eq!(config.assign, Assign::LeastLoaded);
    }

    #[test]
    fn impossible_limits_are_rejected_with_the_flag_named() {
        for (flag, value, needle) in [
            ("--rate", "0", "--rate"),
            ("--max-act-data", "70000", "--max-act-data"),
            ("--send-queue", "1", "--send-queue"),
            ("--public-url", "http://x", "--public-url"),
            ("--server-id", "a b", "--server-id"),
            ("--redis-cluster", "127.0.0.1", "--redis-cluster"),
            ("--room-code-length", "5", "--room-code-length"),
            ("--room-code-length", "17", "--room-code-length"),
            ("--max-rooms", "0", "--max-rooms"),
            ("--replay-rate", "10", "--replay-rate"),
        ] {
            let err = Config::parse_from(["tierlab-server", flag, value]).expect_err(flag);
            assert!(err.to_string().contains(needle), "{flag}: {err}");
        }
    }

    #[test]
    fn a_cluster_and_sentinels_do_not_mix() {
        let err = Config::parse_from([
            "tierlab-server",
            "--redis-cluster",
            "127.0.0.1:7000,127.0.0.1:7001",
            "--redis-sentinel",
            "127.0.0.1:26379",
        ])
        .expect_err("both");
        assert!(err.to_string().contains("cannot be used together"), "{err}");
    }

    #[test]
    fn advertised_url_uses_the_bound_port() {
        let config = Config::parse_from(["tierlab-server", "--port", "0"]).expect("valid");
        let bound: SocketAddr = "127.0.0.1:4567".parse().expect("addr");
        assert_eq!(config.ws_url(bound), "ws://127.0.0.1:4567/ws");
    }
}
