//! How the Redis store reaches Redis: commands to one primary (replaced
//! when Sentinel names another) or to a cluster, through one cheap handle,
//! and the bus that hears appends — channels on the primary or shard
//! channels on the cluster.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;

use super::bus::Bus;
use super::cluster::ShardBus;
use super::StoreError;

/// Where commands go.
pub(super) enum Commands {
    /// One primary; replaced when Sentinel names a new one.
    Primary(std::sync::RwLock<ConnectionManager>),
    Cluster(ClusterConnection),
}

/// A handle for one operation; both kinds are cheap clones of a multiplexed
/// connection.
#[derive(Clone)]
pub(super) enum Conn {
    Primary(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Primary(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Primary(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Primary(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The bus that hears appends: channels on one primary, or shard channels.
pub(super) enum BusLink {
    Primary(Arc<Bus>),
    Cluster(Arc<ShardBus>),
}

impl BusLink {
    pub(super) async fn subscribe(&self, room: &str, timeout: Duration) -> Result<(), StoreError> {
        match self {
            BusLink::Primary(bus) => bus.subscribe(room, timeout).await,
            BusLink::Cluster(bus) => bus.subscribe(room, timeout).await,
        }
    }

    pub(super) async fn unsubscribe(
        &self,
        room: &str,
        abandoned: &(dyn Fn() -> bool + Send + Sync),
        timeout: Duration,
    ) {
        match self {
            BusLink::Primary(bus) => bus.unsubscribe(room, abandoned, timeout).await,
            BusLink::Cluster(bus) => bus.unsubscribe(room, abandoned, timeout).await,
        }
    }

    pub(super) fn subscribed(&self) -> bool {
        match self {
            BusLink::Primary(bus) => bus.subscribed.load(Ordering::Relaxed),
            BusLink::Cluster(bus) => bus.subscribed.load(Ordering::Relaxed),
        }
    }
}
