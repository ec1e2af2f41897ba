//! HAProxy's config, the same for processes and containers: players on
//! one port, balanced over the replicas, each checked on `/ready`, and a
//! monitor page that answers only when every replica is in rotation.

use std::fmt::Write as _;

use crate::scenario::Balance;

/// HAProxy's own page, 2xx once every replica passes its check: before
/// that, HAProxy sends every player to the replicas it saw first, and a
/// replica that started slower than HAProxy's first check gets none of
/// the ramp.
pub const REPLICAS_UP: &str = "/replicas-up";

/// Connections HAProxy can hold: two descriptors per tunnelled player, under
/// the descriptor limit it inherits (it cannot raise the hard limit itself).
pub fn maxconn() -> u64 {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(4096, |(_, hard)| hard);
    (hard.saturating_sub(64) / 2).clamp(256, 100_000)
}

/// HAProxy's config: players on `bind`, balanced over `replicas` (name,
/// `host:port`), each checked on `/ready`; a client that keeps cookies (a
/// browser) sticks to its replica. With `resolver` (a container
/// network's DNS) the names are looked up again while it runs, so a
/// replica that comes back at a new address is found.
pub fn haproxy_config(
    bind: &str,
    balance: Balance,
    maxconn: u64,
    replicas: &[(String, String)],
    resolver: Option<&str>,
) -> String {
    let (resolvers, lookup) = match resolver {
        Some(dns) => (
            format!("resolvers network\n    nameserver dns {dns}\n    hold valid 1s\n"),
            " resolvers network init-addr last,libc,none",
        ),
        None => (String::new(), ""),
    };
    let all = replicas.len();
    let mut servers = String::new();
    for (name, addr) in replicas {
        let _ = writeln!(
            servers,
            "    server {name} {addr} cookie {name} check inter 1s fall 2 rise 1{lookup}"
        );
    }
    format!(
        "global\n    maxconn {maxconn}\n\
         {resolvers}\
         defaults\n    mode http\n    maxconn {maxconn}\n    retries 2\n    option redispatch 1\n    timeout connect 2s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n\
         frontend players\n    bind {bind}\n    monitor-uri {REPLICAS_UP}\n    monitor fail if {{ nbsrv(replicas) lt {all} }}\n    default_backend replicas\n\
         backend replicas\n    balance {balance}\n    cookie tierlab-replica insert indirect nocache\n    option httpchk GET /ready\n{servers}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_config_names_every_replica_and_checks_ready() {
        let replicas = [
            ("srv-1".to_owned(), "127.0.0.1:9001".to_owned()),
            ("srv-2".to_owned(), "127.0.0.1:9002".to_owned()),
        ];
        let config = haproxy_config("127.0.0.1:8000", Balance::Source, 4000, &replicas, None);
        assert!(config.contains("bind 127.0.0.1:8000"));
        assert!(config.contains("server srv-1 127.0.0.1:9001 cookie srv-1 check"));
        assert!(config.contains("server srv-2 127.0.0.1:9002 cookie srv-2 check"));
        assert!(config.contains("option httpchk GET /ready"));
        assert!(config.contains("monitor-uri /replicas-up"));
        assert!(config.contains("monitor fail if { nbsrv(replicas) lt 2 }"));
        assert!(config.contains("balance source"));
        assert!(
            config.contains("timeout tunnel"),
            "WebSocket tunnels outlive client timeouts"
        );
    }
}
