//! How the topology runs Redis, for processes and containers alike:
//! redis-server's flags per persistence mode, and the config of a Sentinel
//! watching the primary.

use crate::scenario::Persistence;

/// The master name the Sentinels monitor.
pub const SENTINEL_MASTER: &str = "tierlab";

/// redis-server's flags for a persistence mode, with the memory bound
/// every topology's Redis runs under.
pub fn persistence_flags(persistence: Persistence) -> Vec<&'static str> {
    let durability: &[&str] = match persistence {
        Persistence::None => &["--appendonly", "no"],
        Persistence::AofEverysec => &["--appendonly", "yes", "--appendfsync", "everysec"],
        Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
    };
    [durability, MEMORY_FLAGS].concat()
}

/// Redis's memory is bounded, and full it refuses writes (`noeviction`):
/// the server answers `unavailable` — truthfully, nothing was applied —
/// where an evicting policy would silently drop a room's seq or log and
/// break the gapless-seq promise. 2 GiB: well above what a run's Redis
/// holds (each run records its INFO memory), well below a 24 GiB machine.
pub const MEMORY_FLAGS: &[&str] = &["--maxmemory", "2gb", "--maxmemory-policy", "noeviction"];

/// Flags that make a redis-server a cluster node with its bus on `bus_port`.
pub fn node_flags(bus_port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        "--cluster-port",
        &bus_port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A Sentinel on `port` watching the primary on `primary` (quorum 2, down
/// after 1 s: the compiled default of 30 s would outlast a drill).
pub fn sentinel_config(port: u16, primary: u16) -> String {
    format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n\
         sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
         sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
         sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
         sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
    )
}

/// The primary's port as a Sentinel's reply to
/// `SENTINEL get-master-addr-by-name` gives it.
pub fn sentinel_reply_port(reply: &str) -> Option<u16> {
    // *2\r\n$9\r\n127.0.0.1\r\n$5\r\n41234\r\n
    reply.split("\r\n").nth(4)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_reply_names_the_primary_port() {
        let reply = "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n41234\r\n";
        assert_eq!(sentinel_reply_port(reply), Some(41234));
        assert_eq!(sentinel_reply_port("-ERR no such master\r\n"), None);
    }
}
