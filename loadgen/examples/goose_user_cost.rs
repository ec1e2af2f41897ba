//! Measures what one idle goose user costs in memory, to compare with a
//! tierlab player (docs/architecture.md, "Players are not goose users").
//! `cargo run --release -p tierlab-loadgen --example goose_user_cost -- 5000`

use std::sync::Arc;
use std::time::Duration;

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::goose::{Scenario, Transaction};
use goose::prelude::GooseAttack;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    // Each user sleeps in its only transaction: alive, idle, no request.
    let idle = Transaction::new(Arc::new(|_user| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok(())
        })
    }));
    let before = rss_kib();
    let sampler = tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        rss_kib()
    });
    GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(Scenario::new("idle").register_transaction(idle))
        .set_default(GooseDefault::Host, "http://127.0.0.1:9")?
        .set_default(GooseDefault::Users, users)?
        .set_default(GooseDefault::IncreaseRate, "100000")?
        .set_default(GooseDefault::RunTime, 8)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoTelnet, true)?
        .execute()
        .await?;
    let during = sampler.await?;
    eprintln!(
        "{users} idle goose users: RSS {before} KiB before, {during} KiB with them: {:.1} KiB per user",
        (during.saturating_sub(before)) as f64 / users as f64
    );
    Ok(())
}
