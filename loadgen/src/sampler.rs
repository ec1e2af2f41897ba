//! What each process of a local topology used during the run, sampled once
//! a second: CPU and memory from /proc (pids from the run's
//! `processes.txt`, so a restarted process is followed), connections and
//! events sent from each replica's `/metrics`, and Redis's ops/s and
//! clients from `INFO`.
//! Summarised per process into `run.json`'s `processes`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use tierlab_record::ProcessUsage;
use tierlab_record::{median, ProcessSecond};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::usage::{clock_ticks_per_second, cpu_ticks, rss_kib};

/// Where to ask what the processes are doing.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub ledger: PathBuf,
    /// (process name, base URL) of each replica.
    pub replicas: Vec<(String, String)>,
    /// (process name, address) of each redis-server.
    pub redis: Vec<(String, std::net::SocketAddr)>,
}

#[derive(Debug, Default)]
struct Series {
    cpu: Vec<f64>,
    rss_mib: Vec<f64>,
    connections: Vec<u64>,
    ops: Vec<f64>,
    events: Vec<f64>,
    /// The last (events-sent counter, when), for the rate.
    events_seen: Option<(f64, Instant)>,
    by_second: BTreeMap<u64, ProcessSecond>,
}

impl Series {
    /// The sample of second `t`.
    fn at(&mut self, t: u64) -> &mut ProcessSecond {
        self.by_second.entry(t).or_insert(ProcessSecond {
            t,
            ..ProcessSecond::default()
        })
    }
}

#[derive(Debug)]
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Vec<ProcessUsage>>,
}

impl Sampler {
    /// Samples every second; each sample is stamped with the seconds since
    /// `origin` (the run's start, the clock of its timeseries).
    pub fn start(targets: Targets, origin: Instant) -> Sampler {
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample(targets, origin, stop.clone()));
        Sampler { stop, task }
    }

    pub async fn finish(self) -> Vec<ProcessUsage> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// `name pid` lines; the last line of a name is its current process.
fn current_pids(ledger: &PathBuf) -> BTreeMap<String, String> {
    std::fs::read_to_string(ledger)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, pid)| (name.to_owned(), pid.trim().to_owned()))
        .collect()
}

async fn sample(targets: Targets, origin: Instant, stop: CancellationToken) -> Vec<ProcessUsage> {
    let http = reqwest::Client::new();
    let per_second = clock_ticks_per_second();
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let mut last: BTreeMap<String, (String, u64, Instant)> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let t = origin.elapsed().as_secs_f64().round() as u64;
        for (name, pid) in current_pids(&targets.ledger) {
            let (Some(ticks), Some(rss)) = (cpu_ticks(&pid), rss_kib(&pid)) else {
                continue;
            };
            let now = Instant::now();
            let entry = series.entry(name.clone()).or_default();
            if let Some((was_pid, was_ticks, at)) = last.get(&name) {
                let seconds = now.duration_since(*at).as_secs_f64();
                if *was_pid == pid && seconds > 0.0 {
                    let cpu =
                        ticks.saturating_sub(*was_ticks) as f64 / per_second / seconds * 100.0;
                    entry.cpu.push(cpu);
                    entry.at(t).cpu_pct = Some(cpu);
                }
            }
            entry.rss_mib.push(rss as f64 / 1024.0);
            entry.at(t).rss_mib = rss as f64 / 1024.0;
            last.insert(name, (pid, ticks, now));
        }
        for (name, url) in &targets.replicas {
            if let Some((connections, sent)) = replica_load(&http, url).await {
                let entry = series.entry(name.clone()).or_default();
                entry.connections.push(connections);
                entry.at(t).connections = Some(connections);
                let now = Instant::now();
                if let Some((before, at)) = entry.events_seen {
                    let seconds = now.duration_since(at).as_secs_f64();
                    // A restarted replica's counter starts over.
                    if seconds > 0.0 && sent >= before {
                        let rate = (sent - before) / seconds;
                        entry.events.push(rate);
                        entry.at(t).events_per_s = Some(rate);
                    }
                }
                entry.events_seen = Some((sent, now));
            }
        }
        for (name, addr) in &targets.redis {
            if let Some((ops, clients)) = redis_load(*addr).await {
                let entry = series.entry(name.clone()).or_default();
                entry.ops.push(ops);
                entry.connections.push(clients);
                entry.at(t).connections = Some(clients);
            }
        }
    }
    series
        .into_iter()
        .map(|(name, s)| summarise(name, s))
        .collect()
}

fn summarise(name: String, mut s: Series) -> ProcessUsage {
    ProcessUsage {
        name,
        cpu_pct_median: median(&mut s.cpu).unwrap_or(0.0),
        cpu_pct_max: s.cpu.iter().copied().fold(0.0, f64::max),
        rss_mib_max: s.rss_mib.iter().copied().fold(0.0, f64::max),
        connections_max: s.connections.iter().copied().max(),
        ops_per_s_median: median(&mut s.ops),
        events_per_s_median: median(&mut s.events),
        by_second: s.by_second.into_values().collect(),
    }
}

/// (open connections, event frames sent so far) from a replica's /metrics.
async fn replica_load(http: &reqwest::Client, base: &str) -> Option<(u64, f64)> {
    let text = http
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |metric: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((
        value("tierlab_connections")? as u64,
        value("tierlab_events_out_total")?,
    ))
}

/// (ops/s, connected clients) from INFO.
async fn redis_load(addr: std::net::SocketAddr) -> Option<(f64, u64)> {
    let info = crate::probe::ask_redis(addr, "INFO").await?;
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((
        field("instantaneous_ops_per_sec:")?,
        field("connected_clients:")? as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_pid_of_a_name_is_current() {
        let dir = std::env::temp_dir().join(format!("tierlab-sampler-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ledger = dir.join("processes.txt");
        std::fs::write(&ledger, "redis 10\nsrv-1 11\nsrv-1 42\n").unwrap();
        let pids = current_pids(&ledger);
        assert_eq!(pids["srv-1"], "42");
        assert_eq!(pids["redis"], "10");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_summary_takes_medians_and_peaks() {
        let usage = summarise(
            "srv-1".into(),
            Series {
                cpu: vec![10.0, 30.0, 20.0],
                rss_mib: vec![5.0, 7.0],
                connections: vec![3, 9],
                ops: Vec::new(),
                events: vec![100.0, 300.0, 200.0],
                ..Series::default()
            },
        );
        assert_eq!(
            (usage.cpu_pct_median, usage.cpu_pct_max, usage.rss_mib_max),
            (20.0, 30.0, 7.0)
        );
        assert_eq!(usage.connections_max, Some(9));
        assert_eq!(usage.ops_per_s_median, None);
        assert_eq!(usage.events_per_s_median, Some(200.0));
    }
}
