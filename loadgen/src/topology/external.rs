//! The `external` topology: a system someone else started, reached through
//! the scenario's `urls`. Nothing is started or stopped, and no fault is
//! injected into it.

use super::{Endpoint, Endpoints};
use crate::scenario;

#[derive(Debug)]
pub struct External {
    pub endpoints: Endpoints,
}

impl External {
    pub fn new(spec: &scenario::Topology) -> External {
        let replicas = spec
            .urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let base = url.replacen("ws", "http", 1);
                let http_url = spec
                    .http
                    .clone()
                    .unwrap_or_else(|| base.trim_end_matches("/ws").to_owned());
                Endpoint {
                    name: format!("external-{}", i + 1),
                    ws_url: url.clone(),
                    http_url,
                }
            })
            .collect();
        External {
            endpoints: Endpoints {
                replicas,
                ..Endpoints::default()
            },
        }
    }
}
