//! `tierlab calibrate`: the instrument's self-test. A light load runs
//! through the fault proxy once per known one-way delay on the players'
//! links (upstream: the act is held, its event and ack come back clean);
//! the measured fan-out and ack p50 must move by the injected delay, within
//! 10 % or 0.2 ms, whichever is larger. Against the null target (an
//! in-process broadcast server, no Redis) the undelayed p50 is the
//! generator's own floor; against `tierlab-server` in memory mode it is the
//! floor of the smallest real system. Writes `calibrate.json`.

mod null_target;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use tierlab_record::calibration::{Calibration, Point, Target};
use tierlab_record::RunRecord;

pub use self::null_target::NullTarget;
use crate::progress::Progress;
use crate::proxy::{FaultProxy, LinkState, Toxics};
use crate::run::{self, Outcome, RunError, RunOptions};
use crate::scenario::{Scenario, ScenarioError};

/// The shift must be within this share of the delay…
const TOLERANCE_SHARE: f64 = 0.10;
/// …or this many ms, whichever is larger.
const TOLERANCE_FLOOR_MS: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub target: Target,
    pub delays: Vec<Duration>,
    pub rooms: u32,
    pub players_per_room: u32,
    pub act_rate: f64,
    pub hold: Duration,
    pub out: PathBuf,
    pub progress: Progress,
    pub interrupt: tokio_util::sync::CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("calibration scenario: {0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Record(#[from] tierlab_record::RecordError),
    #[error("the null target or its proxy: {0}")]
    Io(#[from] std::io::Error),
    #[error("interrupted; what ran is in {0}")]
    Interrupted(PathBuf),
    #[error("the first delay must be 0 (the baseline the others are measured against)")]
    NoBaseline,
}

/// Runs every delay in turn; returns the calibration (also in `calibrate.json`).
pub async fn calibrate(options: &CalibrateOptions) -> Result<Calibration, CalibrateError> {
    if options.delays.first() != Some(&Duration::ZERO) {
        return Err(CalibrateError::NoBaseline);
    }
    let mut measured = Vec::new();
    for &delay in &options.delays {
        options
            .progress
            .line(&format!("calibrate: {} ms one way", ms(delay)));
        let record = match options.target {
            Target::Null => against_null(options, delay).await?,
            Target::Server => against_server(options, delay).await?,
        };
        measured.push((delay, record));
    }
    let calibration = judge(options, &measured);
    let json = options.out.join("calibrate.json");
    let text = serde_json::to_string_pretty(&calibration).unwrap_or_default();
    std::fs::write(&json, text + "\n").map_err(|source| tierlab_record::RecordError::Write {
        path: json.clone(),
        source,
    })?;
    Ok(calibration)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn judge(options: &CalibrateOptions, measured: &[(Duration, RunRecord)]) -> Calibration {
    let base = &measured[0].1.summary;
    let points: Vec<Point> = measured
        .iter()
        .map(|(delay, record)| {
            let s = &record.summary;
            let delay_ms = ms(*delay);
            let tolerance_ms = (delay_ms * TOLERANCE_SHARE).max(TOLERANCE_FLOOR_MS);
            let fanout_shift_ms = s.fanout_ms.p50 - base.fanout_ms.p50;
            let ack_shift_ms = s.ack_ms.p50 - base.ack_ms.p50;
            let within = |shift: f64| (shift - delay_ms).abs() <= tolerance_ms;
            Point {
                delay_ms,
                fanout_p50_ms: s.fanout_ms.p50,
                ack_p50_ms: s.ack_ms.p50,
                send_lag_p50_ms: s.send_lag_ms.p50,
                send_lag_p99_ms: s.send_lag_ms.p99,
                fanout_shift_ms,
                ack_shift_ms,
                tolerance_ms,
                pass: record.checker.lost == 0 && within(fanout_shift_ms) && within(ack_shift_ms),
            }
        })
        .collect();
    Calibration {
        target: options.target,
        players: options.rooms * options.players_per_room,
        act_rate: options.act_rate,
        hold_s: options.hold.as_secs_f64(),
        floor_fanout_p50_ms: base.fanout_ms.p50,
        pass: points.iter().all(|p| p.pass),
        points,
    }
}

/// The light load, as a scenario: ramp in a second, hold, ramp down.
fn scenario_text(options: &CalibrateOptions, topology: &str, faults: &str) -> String {
    let players = options.rooms * options.players_per_room;
    let hold = options.hold.as_millis();
    format!(
        "name = \"calibrate\"\n\
         description = \"A known delay on the players' links; the measured latencies must move by it\"\n\
         {topology}\n\
         [population]\nrooms = {}\nplayers_per_room = {}\ncreate_via = \"ws\"\n\
         [load]\nstages = [{{ to = {players}, over = \"1s\" }}, {{ to = {players}, over = \"{hold}ms\" }}, {{ to = 0, over = \"1s\" }}]\n\
         max_duration = \"{}ms\"\ndrain = \"1s\"\n\
         [behaviour]\nact_rate = {}\npayload = 64\n{faults}",
        options.rooms,
        options.players_per_room,
        hold + 60_000,
        options.act_rate,
    )
}

async fn run_one(
    options: &CalibrateOptions,
    text: &str,
    delay: Duration,
) -> Result<RunRecord, CalibrateError> {
    let scenario = Scenario::parse(Path::new("calibrate.toml"), text, &[])?;
    let dir = options
        .out
        .join(format!("delay-{:04}us", delay.as_micros()));
    let run_options = RunOptions {
        out: Some(dir.clone()),
        progress: Progress::quiet(),
        interrupt: options.interrupt.clone(),
        ..RunOptions::default()
    };
    let (_, outcome) = run::run(&scenario, &run_options).await?;
    if outcome == Outcome::Interrupted {
        return Err(CalibrateError::Interrupted(options.out.clone()));
    }
    Ok(RunRecord::load(&dir)?)
}

/// The null target behind a proxy that holds every act `delay`.
async fn against_null(
    options: &CalibrateOptions,
    delay: Duration,
) -> Result<RunRecord, CalibrateError> {
    let target = NullTarget::start()?;
    let proxy = FaultProxy::start(0, target.addr()).await?;
    proxy.set(LinkState {
        upstream: Toxics {
            latency: delay,
            ..Toxics::default()
        },
        ..LinkState::default()
    });
    let topology = format!(
        "[topology]\nkind = \"external\"\nurls = [\"ws://{}/ws\"]\n",
        proxy.addr()
    );
    run_one(options, &scenario_text(options, &topology, ""), delay).await
}

/// `tierlab-server` in memory mode, its players' link through the proxy
/// for the whole run (a 1 µs delay stands for none, so every point has the
/// proxy's hop).
async fn against_server(
    options: &CalibrateOptions,
    delay: Duration,
) -> Result<RunRecord, CalibrateError> {
    let topology =
        "[topology]\nkind = \"local\"\nreplicas = 1\nstate = \"memory\"\nvia = \"direct\"\n";
    let lasts = options.hold.as_millis() + 5_000;
    let faults = format!(
        "[[faults]]\nname = \"calibration delay\"\nkind = \"latency\"\ntarget = \"players->srv-1\"\n\
         direction = \"upstream\"\nat = \"0s\"\nfor = \"{lasts}ms\"\nlatency = \"{}us\"\n",
        delay.as_micros().max(1)
    );
    run_one(options, &scenario_text(options, topology, &faults), delay).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fanout: f64, ack: f64) -> RunRecord {
        let mut r = RunRecord::default();
        r.summary.fanout_ms.p50 = fanout;
        r.summary.ack_ms.p50 = ack;
        r
    }

    fn options() -> CalibrateOptions {
        CalibrateOptions {
            target: Target::Null,
            delays: vec![Duration::ZERO, Duration::from_millis(5)],
            rooms: 1,
            players_per_room: 2,
            act_rate: 1.0,
            hold: Duration::from_secs(1),
            out: PathBuf::from("."),
            progress: Progress::quiet(),
            interrupt: Default::default(),
        }
    }

    #[test]
    fn a_shift_within_a_tenth_passes_and_one_beyond_fails() {
        let measured = [
            (Duration::ZERO, record(1.0, 0.8)),
            (Duration::from_millis(5), record(6.4, 5.7)),
            (Duration::from_millis(20), record(23.5, 20.8)),
        ];
        let c = judge(&options(), &measured);
        assert_eq!(c.floor_fanout_p50_ms, 1.0);
        assert!(c.points[1].pass, "{:?}", c.points[1]);
        assert!((c.points[1].fanout_shift_ms - 5.4).abs() < 1e-9);
        assert!(!c.points[2].pass, "22.5 ms against 20 ± 2 is off");
        assert!(!c.pass);
        assert!(c.markdown().contains("**off**"));
        assert!(c.verdict_line().contains("OFF"));
    }

    #[test]
    fn small_delays_get_the_floor_tolerance() {
        let measured = [
            (Duration::ZERO, record(1.0, 1.0)),
            (Duration::from_millis(1), record(2.15, 2.19)),
        ];
        let c = judge(&options(), &measured);
        assert_eq!(c.points[1].tolerance_ms, 0.2);
        assert!(c.pass);
    }
}
