//! What a run measures, named once: the latency metrics (the `.hlog` tags,
//! the histograms of a [`Window`](crate::Window), the SLOs' names) and the
//! delivery checker's counts. A name that is not here is an error where it is
//! read, never a fallback to another metric.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A latency the players measure, in µs, recorded per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// From an act's intended send time to a member receiving its event.
    Fanout,
    /// From an act's intended send time to its sender's ack.
    Ack,
    /// TCP connect plus WebSocket handshake.
    Connect,
    /// From the handshake to the seat.
    Join,
    /// From a dropped connection to the seat back.
    Reconnect,
    /// The generator's own lateness: from an act's intended send time to
    /// when its frame was written to the socket. Every fan-out and ack
    /// latency includes its sender's send lag.
    SendLag,
}

impl Latency {
    /// Every latency, in the order of a window's histograms.
    pub const ALL: [Latency; 6] = [
        Latency::Fanout,
        Latency::Ack,
        Latency::Connect,
        Latency::Join,
        Latency::Reconnect,
        Latency::SendLag,
    ];

    /// Its name in scenarios, run.json and the `.hlog` tags.
    pub fn name(self) -> &'static str {
        match self {
            Latency::Fanout => "fanout",
            Latency::Ack => "ack",
            Latency::Connect => "connect",
            Latency::Join => "join",
            Latency::Reconnect => "reconnect",
            Latency::SendLag => "send_lag",
        }
    }

    /// Its place in [`Latency::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Every name, for error messages: `fanout, ack, …`.
    pub fn names() -> String {
        Latency::ALL.map(Latency::name).join(", ")
    }
}

impl FromStr for Latency {
    type Err = String;

    fn from_str(name: &str) -> Result<Latency, String> {
        Latency::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| format!("unknown latency `{name}`; use one of {}", Latency::names()))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A count the delivery checker makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    Lost,
    Duplicated,
    Reordered,
    /// One act applied as two events (a retry without a key, or a server
    /// that ignored it).
    DuplicatedActs,
}

impl Count {
    pub const ALL: [Count; 4] = [
        Count::Lost,
        Count::Duplicated,
        Count::Reordered,
        Count::DuplicatedActs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Count::Lost => "lost",
            Count::Duplicated => "duplicated",
            Count::Reordered => "reordered",
            Count::DuplicatedActs => "duplicated_acts",
        }
    }
}

impl FromStr for Count {
    type Err = String;

    fn from_str(name: &str) -> Result<Count, String> {
        Count::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| format!("unknown count `{name}`"))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_the_index() {
        for (i, l) in Latency::ALL.into_iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(l.name().parse::<Latency>(), Ok(l));
            let json = serde_json::to_value(l).unwrap_or_default();
            assert_eq!(json.as_str(), Some(l.name()));
        }
        for c in Count::ALL {
            assert_eq!(c.name().parse::<Count>(), Ok(c));
        }
        let unknown = "fanot".parse::<Latency>().expect_err("a typo");
        assert!(unknown.contains("fanout, ack"), "{unknown}");
    }
}
