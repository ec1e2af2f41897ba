//! Where the Redis primary is: the one `--redis-url` names, or whichever
//! the Sentinels (`--redis-sentinel`) currently name for `--redis-master`.
//! The store asks here for a client whenever it (re)connects, and a watcher
//! tells it when Sentinel has promoted another node, so commands and the
//! Pub/Sub bus move to the new primary without waiting for a timeout.

use std::sync::Mutex;
use std::time::Duration;

use redis::sentinel::Sentinel;
use redis::Client;
use tokio::sync::watch;

use super::StoreError;

pub enum Primary {
    Fixed(Client),
    Sentinel {
        sentinel: tokio::sync::Mutex<Sentinel>,
        master: String,
        /// The primary's address as last resolved; watchers see changes.
        current: watch::Sender<Option<String>>,
        last: Mutex<Option<Client>>,
    },
}

impl std::fmt::Debug for Primary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Primary::Fixed(_) => f.write_str("Primary::Fixed"),
            Primary::Sentinel { master, .. } => write!(f, "Primary::Sentinel({master})"),
        }
    }
}

impl Primary {
    pub fn fixed(url: &str) -> Result<Primary, StoreError> {
        Client::open(url)
            .map(Primary::Fixed)
            .map_err(|e| StoreError::Unavailable(format!("bad --redis-url: {e}")))
    }

    pub fn sentinel(addresses: &[String], master: &str) -> Result<Primary, StoreError> {
        let urls: Vec<String> = addresses.iter().map(|a| format!("redis://{a}")).collect();
        let sentinel = Sentinel::build(urls)
            .map_err(|e| StoreError::Unavailable(format!("bad --redis-sentinel: {e}")))?;
        Ok(Primary::Sentinel {
            sentinel: tokio::sync::Mutex::new(sentinel),
            master: master.to_owned(),
            current: watch::Sender::new(None),
            last: Mutex::new(None),
        })
    }

    /// A client for the primary as of now.
    pub async fn client(&self, timeout: Duration) -> Result<Client, String> {
        match self {
            Primary::Fixed(client) => Ok(client.clone()),
            Primary::Sentinel {
                sentinel,
                master,
                current,
                last,
            } => {
                let mut sentinel = sentinel.lock().await;
                let asked = tokio::time::timeout(timeout, sentinel.async_master_for(master, None));
                match asked.await {
                    Ok(Ok(client)) => {
                        let address = client.get_connection_info().addr().to_string();
                        current.send_if_modified(|known| {
                            let changed = known.as_deref() != Some(address.as_str());
                            if changed && known.is_some() {
                                tracing::warn!(primary = %address, "Sentinel names a new Redis primary");
                            }
                            if changed {
                                *known = Some(address.clone());
                            }
                            changed
                        });
                        *last
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(client.clone());
                        Ok(client)
                    }
                    Ok(Err(e)) => Err(format!("Sentinel: {e}")),
                    Err(_) => Err("Sentinel did not answer in time".into()),
                }
            }
        }
    }

    /// The client last resolved, without asking Sentinel (at start-up,
    /// before any answer, the first Sentinel's view is fetched lazily).
    pub fn last(&self) -> Option<Client> {
        match self {
            Primary::Fixed(client) => Some(client.clone()),
            Primary::Sentinel { last, .. } => last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Changes of the primary's address (never changes for a fixed URL).
    pub fn changes(&self) -> Option<watch::Receiver<Option<String>>> {
        match self {
            Primary::Fixed(_) => None,
            Primary::Sentinel { current, .. } => Some(current.subscribe()),
        }
    }
}
