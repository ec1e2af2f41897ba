//! What the system under test spent in a run, from the sampler's seconds:
//! replica CPU per delivered event and memory per connection, Redis CPU per
//! act. Each figure is the median over the run's held seconds (the load's
//! peak, past the settle, CPU steal low), the seconds an A/B gate counts.

use std::fmt::Write as _;

use tierlab_record::{median, RunRecord};

use crate::ab::{usable_seconds, AbMetric, DEFAULT_MAX_STEAL_PCT};

/// One row per run that sampled replicas.
pub(super) fn server_cost_table(md: &mut String, runs: &[&RunRecord]) {
    let sampled: Vec<&&RunRecord> = runs
        .iter()
        .filter(|r| r.processes.iter().any(|p| p.is_replica()))
        .collect();
    if sampled.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "| run | topology | acts carry keys | held seconds | replica CPU µs per delivered event | replica KiB per connection | Redis CPU (median) | Redis µs per act | Redis ops per act |\n|---|---|---|---|---|---|---|---|---|"
    );
    for run in sampled {
        let held = usable_seconds(run, DEFAULT_MAX_STEAL_PCT).len();
        let median_of = |metric: AbMetric| median(&mut metric.series(run, DEFAULT_MAX_STEAL_PCT));
        let redis = redis_per_act(run);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {held} | {} | {} | {} | {} | {} |",
            run.scenario.name,
            run.topology.label(),
            if super::drills::Resends::of(&run.scenario.text).keyed {
                "yes"
            } else {
                "no"
            },
            figure(median_of(AbMetric::ServerCpuPerEvent), 1),
            figure(median_of(AbMetric::ServerKibPerConnection), 1),
            redis
                .cpu_pct
                .map_or_else(|| "—".into(), |c| format!("{c:.0} %")),
            figure(redis.us_per_act, 1),
            figure(redis.ops_per_act, 2),
        );
    }
    md.push('\n');
}

fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.decimals$}"))
}

#[derive(Debug, Default, PartialEq)]
struct RedisCost {
    cpu_pct: Option<f64>,
    us_per_act: Option<f64>,
    ops_per_act: Option<f64>,
}

/// Redis primaries' CPU and commands over the acts the players sent, second
/// by second over the held seconds.
fn redis_per_act(run: &RunRecord) -> RedisCost {
    let primaries: Vec<_> = run
        .processes
        .iter()
        .filter(|p| p.is_redis_primary())
        .collect();
    if primaries.is_empty() {
        return RedisCost::default();
    }
    // The sampler keeps Redis's command rate per run, not per second.
    let ops_per_s: Option<f64> = primaries.iter().map(|p| p.ops_per_s_median).sum();
    let (mut cpu, mut us, mut ops) = (Vec::new(), Vec::new(), Vec::new());
    for second in usable_seconds(run, DEFAULT_MAX_STEAL_PCT) {
        let at: Vec<_> = primaries
            .iter()
            .filter_map(|p| p.by_second.iter().find(|s| s.t == second.t))
            .collect();
        if at.len() != primaries.len() {
            continue;
        }
        let Some(pct) = at.iter().map(|s| s.cpu_pct).sum::<Option<f64>>() else {
            continue;
        };
        cpu.push(pct);
        if second.acts == 0 {
            continue;
        }
        us.push(pct / 100.0 * 1e6 / second.acts as f64);
        if let Some(per_s) = ops_per_s {
            ops.push(per_s / second.acts as f64);
        }
    }
    RedisCost {
        cpu_pct: median(&mut cpu),
        us_per_act: median(&mut us),
        ops_per_act: median(&mut ops),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierlab_record::{ProcessSecond, ProcessUsage, Second};

    fn run(acts: u64) -> RunRecord {
        let process = |name: &str, cpu: f64| ProcessUsage {
            name: name.into(),
            ops_per_s_median: Some(3000.0),
            by_second: (0..8)
                .map(|t| ProcessSecond {
                    t,
                    cpu_pct: Some(cpu),
                    rss_mib: 1.0,
                    connections: Some(10),
                    events_per_s: Some(10_000.0),
                })
                .collect(),
            ..ProcessUsage::default()
        };
        RunRecord {
            timeseries: (0..8)
                .map(|t| Second {
                    t,
                    target: 10.0,
                    players: 10,
                    acts,
                    ..Second::default()
                })
                .collect(),
            processes: vec![process("srv-1", 12.0), process("redis", 20.0)],
            ..RunRecord::default()
        }
    }

    #[test]
    fn redis_cost_is_its_cpu_over_the_acts_of_each_held_second() {
        // 20 % of a core over 1,000 acts/s: 200 µs per act; 3 ops per act.
        let cost = redis_per_act(&run(1000));
        assert_eq!(cost.cpu_pct, Some(20.0));
        assert_eq!(cost.us_per_act, Some(200.0));
        assert_eq!(cost.ops_per_act, Some(3.0));
    }

    #[test]
    fn a_row_names_the_replicas_cost_per_delivery_and_the_keys() {
        let mut md = String::new();
        let mut keyless = run(1000);
        keyless.scenario.text = "[behaviour]\nidempotency_keys = false\n".into();
        server_cost_table(&mut md, &[&run(1000), &keyless]);
        // 12 % of a core over 10,000 deliveries/s: 12 µs each.
        assert!(
            md.contains("| yes | 6 | 12.0 | 102.4 | 20 % | 200.0 | 3.00 |"),
            "{md}"
        );
        assert!(md.contains("| no | 6 |"), "{md}");
    }
}
