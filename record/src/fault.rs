//! Faults as run.json keeps them: what was injected, when it began and
//! ended, what could not be carried out, and what it cost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FaultKind;

/// A fault injected during the run, from the moment it began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub name: String,
    #[serde(default)]
    pub kind: FaultKind,
    /// `srv-N`, `replicas`, `redis`, `lb`, `srv-N->redis`, `players->srv-N`.
    #[serde(default)]
    pub target: String,
    /// What it did, in words (`latency 100ms ± 20ms (Both) on srv-1->redis`).
    #[serde(default)]
    pub what: String,
    pub start_s: f64,
    /// When it was undone (the process ready again, the link clean); null
    /// for a crash without restart, or a run that ended first.
    pub end_s: Option<f64>,
    /// Steps that could not be carried out.
    #[serde(default)]
    pub errors: Vec<String>,
    /// What it cost (filled in when the run ends).
    #[serde(default)]
    pub verdict: Option<FaultVerdict>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultVerdict {
    /// The window judged, in seconds since the run started.
    #[serde(default)]
    pub window_s: (f64, f64),
    /// Players in their rooms in the second before the fault.
    #[serde(default)]
    pub players_before: i64,
    /// The most players missing at once: short of as many as before, or of
    /// the load shape's target when it asked for fewer (a ramp-down is not
    /// a drop).
    #[serde(default)]
    pub players_dropped: i64,
    /// From the fault's start until every player who dropped was back; null
    /// when they were still missing at the end of the window.
    pub players_back_s: Option<f64>,
    #[serde(default)]
    pub fanout_limit_ms: f64,
    /// From the fault's start until fan-out p95 was back under the limit
    /// for the rest of the window (0: it never went over); null when it
    /// was still over at the end of the window.
    pub fanout_recovered_s: Option<f64>,
    #[serde(default)]
    pub reconnects: u64,
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// Acked events some member never got, whose ack came in the window.
    pub lost: u64,
    /// Nothing lost, players back and fan-out recovered within the window.
    pub pass: bool,
}
