//! The instrument's self-test at a light load: through the fault proxy, a
//! known one-way delay on the players' link to the null target must move
//! the measured fan-out and ack p50 by that delay (within 10 % or 0.2 ms),
//! and the run record must carry the generator's send lag.

#![allow(clippy::unwrap_used)]

mod support;

use support::tierlab;

#[test]
fn a_known_delay_moves_the_measured_latencies_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = tierlab()
        .args([
            "calibrate",
            "--delays",
            "0ms,5ms",
            "--hold",
            "3s",
            "--rooms",
            "8",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("calibrate: PASS"), "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("calibrate.json")).unwrap();
    let calibration: serde_json::Value = serde_json::from_str(&text).unwrap();
    let points = calibration["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let shift = points[1]["fanout_shift_ms"].as_f64().unwrap();
    assert!(
        (shift - 5.0).abs() <= 0.5,
        "fan-out moved {shift} ms for 5 ms"
    );
    let ack = points[1]["ack_shift_ms"].as_f64().unwrap();
    assert!((ack - 5.0).abs() <= 0.5, "ack moved {ack} ms for 5 ms");
    let run = std::fs::read_to_string(dir.path().join("delay-0000us/run.json")).unwrap();
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert!(run["summary"]["send_lag_ms"]["count"].as_u64().unwrap() > 0);
    assert_eq!(run["checker"]["lost"], 0);
}
