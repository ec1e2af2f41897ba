//! A calibration's record (`calibrate.json`, written by `tierlab
//! calibrate`): per known one-way delay injected on the players' links,
//! what the instrument measured and whether it moved by the delay.

use serde::{Deserialize, Serialize};

/// The file's name in a calibration's directory.
pub const FILE: &str = "calibrate.json";

/// What the players talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The null target, in this process.
    Null,
    /// `tierlab-server --state memory`, one replica, started by the run.
    Server,
}

/// One delay's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub delay_ms: f64,
    pub fanout_p50_ms: f64,
    pub ack_p50_ms: f64,
    pub send_lag_p50_ms: f64,
    pub send_lag_p99_ms: f64,
    /// Against the undelayed run.
    pub fanout_shift_ms: f64,
    pub ack_shift_ms: f64,
    pub tolerance_ms: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub target: Target,
    pub players: u32,
    pub act_rate: f64,
    pub hold_s: f64,
    /// Fan-out p50 with no delay: the floor of what this target measures.
    pub floor_fanout_p50_ms: f64,
    pub points: Vec<Point>,
    pub pass: bool,
}

impl Calibration {
    /// What was measured, as a sentence and a Markdown table (which reads
    /// as well in a terminal as on a page).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Calibration against the {} target: {} players at {} act/s, each delay held {:.0} s; the floor (fan-out p50 with no delay) is **{:.3} ms**.\n\n\
             | one-way delay | fan-out p50 | shift | ack p50 | shift | send lag p50 / p99 | allowed error | |\n\
             |---|---|---|---|---|---|---|---|\n",
            match self.target {
                Target::Null => "null",
                Target::Server => "tierlab-server (memory)",
            },
            self.players,
            self.act_rate,
            self.hold_s,
            self.floor_fanout_p50_ms
        );
        for p in &self.points {
            out.push_str(&format!(
                "| {:.1} ms | {:.3} ms | {:+.3} ms | {:.3} ms | {:+.3} ms | {:.3} / {:.3} ms | ±{:.2} ms | {} |\n",
                p.delay_ms,
                p.fanout_p50_ms,
                p.fanout_shift_ms,
                p.ack_p50_ms,
                p.ack_shift_ms,
                p.send_lag_p50_ms,
                p.send_lag_p99_ms,
                p.tolerance_ms,
                if p.pass { "ok" } else { "**off**" }
            ));
        }
        out
    }

    /// The verdict's last line, for a CI log.
    pub fn verdict_line(&self) -> &'static str {
        if self.pass {
            "calibrate: PASS"
        } else {
            "calibrate: OFF — the instrument does not move by what was injected"
        }
    }
}
