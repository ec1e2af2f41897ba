//! Two (or more) systems on one workload, side by side: each system's
//! capacity sweep (max players under the SLO, and the fan-out, CPU and
//! memory of its highest step under it) and its drill (what each fault
//! cost). `compare.json` is this model serialized; `compare.html` its page.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::capacity::{Config, Limit};
use crate::charts::{self, Curves};
use crate::html::{escape, table, Cell};
use crate::ReportError;
use tierlab_record::RunRecord;

/// What one fault of the drill cost a system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultCost {
    pub name: String,
    pub what: String,
    pub lost: u64,
    pub reconnects: u64,
    pub players_back_s: Option<f64>,
}

/// The highest step of a sweep with every SLO met: where a system's CPU and
/// memory are read.
pub fn best_step(config: &Config) -> Option<&crate::capacity::Step> {
    config.last_pass()
}

/// One system's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct System {
    /// `tierlab`, `python-socketio`, …
    pub label: String,
    /// The sweep of this system's replicas.
    pub capacity: Config,
    /// At the highest step under the SLO: the replicas' CPU (core-µs) per
    /// event delivered, and their RSS (MiB) per connected player.
    pub cpu_us_per_event: Option<f64>,
    pub rss_mib_per_player: Option<f64>,
    /// The drill at the scenario's own load.
    pub drill_players: i64,
    pub drill_fanout_p95_ms: f64,
    pub drill_fanout_p99_ms: f64,
    pub drill_lost: u64,
    pub faults: Vec<FaultCost>,
    /// What the checker held this system to.
    pub guarantee: String,
}

impl System {
    /// Figures from a sweep and the run directories it points at.
    pub fn new(
        label: &str,
        capacity: Config,
        best_run: Option<&RunRecord>,
        drill: &RunRecord,
    ) -> System {
        let replicas = |run: &RunRecord| {
            run.processes
                .iter()
                .filter(|p| p.name.starts_with("srv-"))
                .fold((0.0, 0.0), |(cpu, rss), p| {
                    (cpu + p.cpu_pct_median, rss + p.rss_mib_max)
                })
        };
        let best = best_step(&capacity);
        let (cpu_us_per_event, rss_mib_per_player) = match (best, best_run) {
            (Some(step), Some(run)) if step.throughput > 0.0 && step.players > 0.0 => {
                let (cpu_pct, rss) = replicas(run);
                (
                    Some(cpu_pct / 100.0 * 1e6 / step.throughput),
                    Some(rss / step.players),
                )
            }
            _ => (None, None),
        };
        System {
            label: label.to_owned(),
            capacity,
            cpu_us_per_event,
            rss_mib_per_player,
            drill_players: drill.summary.peak_players,
            drill_fanout_p95_ms: drill.summary.fanout_ms.p95,
            drill_fanout_p99_ms: drill.summary.fanout_ms.p99,
            drill_lost: drill.checker.lost,
            faults: drill
                .faults
                .iter()
                .map(|f| FaultCost {
                    name: f.name.clone(),
                    what: f.what.clone(),
                    lost: f.verdict.as_ref().map_or(0, |v| v.lost),
                    reconnects: f.verdict.as_ref().map_or(0, |v| v.reconnects),
                    players_back_s: f.verdict.as_ref().and_then(|v| v.players_back_s),
                })
                .collect(),
            guarantee: drill.checker.guarantee.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub scenario: String,
    pub fanout_slo_ms: Option<f64>,
    pub systems: Vec<System>,
}

impl Comparison {
    /// "tierlab holds 3.1× the players of python-socketio", from the first
    /// system against each other one.
    pub fn headline(&self) -> Vec<String> {
        let Some((first, others)) = self.systems.split_first() else {
            return Vec::new();
        };
        others
            .iter()
            .filter_map(|other| {
                let a = first.capacity.max_players_under_slo()?;
                let b = other.capacity.max_players_under_slo()?;
                (b > 0.0).then(|| {
                    format!(
                        "{} holds {:.1}× the players of {} under the SLO ({a:.0} against {b:.0}){}.",
                        first.label,
                        a / b,
                        other.label,
                        if first.capacity.limit == Limit::MaxPlayers {
                            format!("; {} never broke, so this is a floor", first.label)
                        } else {
                            String::new()
                        }
                    )
                })
            })
            .collect()
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

fn capacity_cell(config: &Config) -> String {
    match (config.max_players_under_slo(), config.limit) {
        (Some(m), Limit::MaxPlayers) => format!("≥ {m:.0} (not reached)"),
        (Some(m), _) => format!("{m:.0}"),
        (None, Limit::Generator) => "— (generator saturated)".to_owned(),
        (None, _) => "— (no step passed)".to_owned(),
    }
}

/// One row per measure, one column per system.
fn rows(c: &Comparison) -> Vec<Vec<Cell>> {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "Max players under the SLO".into(),
            c.systems
                .iter()
                .map(|s| capacity_cell(&s.capacity))
                .collect(),
        ),
        (
            "Replica CPU per delivered event, core-µs".into(),
            c.systems
                .iter()
                .map(|s| num(s.cpu_us_per_event, 1))
                .collect(),
        ),
        (
            "Replica RSS per connected player, KiB".into(),
            c.systems
                .iter()
                .map(|s| num(s.rss_mib_per_player.map(|m| m * 1024.0), 1))
                .collect(),
        ),
        (
            "Drill: players".into(),
            c.systems
                .iter()
                .map(|s| s.drill_players.to_string())
                .collect(),
        ),
        (
            "Drill: p95 / p99 fan-out, ms".into(),
            c.systems
                .iter()
                .map(|s| {
                    format!(
                        "{:.1} / {:.1}",
                        s.drill_fanout_p95_ms, s.drill_fanout_p99_ms
                    )
                })
                .collect(),
        ),
        (
            "Drill: events lost in all".into(),
            c.systems.iter().map(|s| s.drill_lost.to_string()).collect(),
        ),
    ];
    let names: Vec<String> = c
        .systems
        .first()
        .map(|s| s.faults.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default();
    for name in names {
        let cell = |s: &System| {
            s.faults.iter().find(|f| f.name == name).map_or_else(
                || "—".to_owned(),
                |f| format!("{} lost · {} reconnects", f.lost, f.reconnects),
            )
        };
        rows.push((
            format!("Fault “{name}”"),
            c.systems.iter().map(cell).collect(),
        ));
    }
    rows.into_iter()
        .map(|(measure, values)| {
            std::iter::once(Cell::Text(measure))
                .chain(values.into_iter().map(Cell::Num))
                .collect()
        })
        .collect()
}

pub fn render(c: &Comparison) -> Result<String, ReportError> {
    let title = format!("Side by side: {}", c.scenario);
    let mut page = crate::html::open_page(&title);
    let _ = write!(page, "<h1>{}</h1>", escape(&title));
    for line in c.headline() {
        let _ = write!(page, "<p class=\"verdict\">{}</p>", escape(&line));
    }
    let mut head = vec!["Measure"];
    head.extend(c.systems.iter().map(|s| s.label.as_str()));
    table(&mut page, &head, rows(c));
    page.push_str("<h2>What was checked</h2><ul>");
    for s in &c.systems {
        let _ = write!(
            page,
            "<li><b>{}</b>: {}.</li>",
            escape(&s.label),
            escape(&s.guarantee)
        );
    }
    page.push_str("</ul>");
    // A system far past the SLO would flatten the others into the axis.
    let y_cap = c.fanout_slo_ms.map(|slo| slo * 4.0);
    let p95 = Curves {
        title: if y_cap.is_some() {
            "p95 fan-out against players (capacity sweeps; cut off at 4× the SLO)"
        } else {
            "p95 fan-out against players (capacity sweeps)"
        },
        x_desc: "players connected",
        y_desc: "p95 fan-out, ms",
        series: c
            .systems
            .iter()
            .map(|s| {
                (
                    s.label.clone(),
                    s.capacity
                        .steps
                        .iter()
                        .map(|st| (st.players, st.fanout_p95_ms))
                        .collect(),
                )
            })
            .collect(),
        dashed: Vec::new(),
        y_cap,
        level: c.fanout_slo_ms.map(|slo| (format!("SLO {slo} ms"), slo)),
        marks: c
            .systems
            .iter()
            .filter_map(|s| {
                s.capacity
                    .max_players_under_slo()
                    .map(|m| (format!("{}: max under SLO", s.label), m))
            })
            .collect(),
    };
    let _ = write!(page, "<div class=\"chart\">{}</div>", charts::curves(&p95)?);
    page.push_str(
        "<p>CPU and memory are the replicas' own (the sum over <code>srv-*</code>), \
         measured at each system's highest step under the SLO; Redis and HAProxy are \
         the same programs for both. Each system's sweep and drill runs are in its \
         directory next to this page.</p></body></html>",
    );
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Step;

    fn config(label: &str, passing: &[f64], limit: Limit) -> Config {
        Config {
            label: label.into(),
            replicas: 3,
            state: "redis".into(),
            steps: passing
                .iter()
                .map(|&players| Step {
                    fanout_p50_ms: 2.0,
                    redis_cpu_pct: Some(5.0),
                    redis_ops_per_s: Some(1000.0),
                    ..crate::capacity::sample_step(players, 5.0, true)
                })
                .collect(),
            limit,
        }
    }

    fn system(label: &str, capacity: Config, lost: u64) -> System {
        let drill = RunRecord::default();
        let mut s = System::new(label, capacity, None, &drill);
        s.drill_lost = lost;
        s.faults = vec![FaultCost {
            name: "kill srv-2".into(),
            what: "SIGKILL".into(),
            lost,
            reconnects: 30,
            players_back_s: Some(1.0),
        }];
        s
    }

    #[test]
    fn the_page_puts_the_systems_side_by_side_with_the_ratio() {
        let c = Comparison {
            scenario: "compare".into(),
            fanout_slo_ms: Some(50.0),
            systems: vec![
                system(
                    "tierlab",
                    config("a", &[400.0, 800.0, 1200.0], Limit::Slo),
                    0,
                ),
                system("python-socketio", config("b", &[400.0], Limit::Slo), 42),
            ],
        };
        assert_eq!(
            c.headline(),
            vec!["tierlab holds 3.0× the players of python-socketio under the SLO (1200 against 400)."]
        );
        let page = render(&c).unwrap();
        assert!(page.contains("<th>python-socketio</th>"), "{page}");
        assert!(page.contains("42 lost · 30 reconnects"), "{page}");
        assert!(page.contains("<svg"), "the capacity chart is drawn");
        // The model round-trips through compare.json.
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Comparison>(&json).unwrap(), c);
    }
}
