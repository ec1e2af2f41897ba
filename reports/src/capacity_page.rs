//! `capacity.html`: a capacity sweep's page — the verdict per
//! configuration, the curves of p95 fan-out and throughput against players
//! with the knee and the USL fit, what shared state costs, and the plan
//! when one was made from the sweep. Same look as the run report.

use std::fmt::Write as _;

use crate::capacity::{shared_state_cost, Limit, Step, Sweep};
use crate::charts::{self, Curves};
use crate::html::{escape, table, Cell};
use crate::plan::Plan;
use crate::usl::Usl;
use crate::ReportError;

fn usl_text(usl: &Usl) -> String {
    match usl {
        Usl::Fitted(f) => format!(
            "σ {:.2e}, κ {:.2e}, R² {:.3}; peak {}",
            f.sigma,
            f.kappa,
            f.r2,
            f.peak_n
                .map_or_else(|| "none".to_owned(), |n| format!("≈ {n:.0} players"))
        ),
        Usl::NoContention { .. } => {
            "linear over the range measured: no contention signal, no peak to predict".into()
        }
        Usl::Refused { reason } => format!("no fit: {reason}"),
    }
}

/// `capacity.html`: the sweep's curves and verdicts, same look as run
/// reports, and the plan when one was made from it.
pub fn render(sweep: &Sweep, plan: Option<&Plan>) -> Result<String, ReportError> {
    let mut page = String::new();
    page.push_str(&crate::html::open_page(&format!(
        "Capacity: {}",
        sweep.scenario
    )));
    let _ = write!(page, "<h1>Capacity: {}</h1>", escape(&sweep.scenario));
    for verdict in &sweep.verdicts {
        let _ = write!(
            page,
            "<p class=\"verdict\">{}</p>",
            escape(&verdict.sentence)
        );
    }
    if let Some(step) = sweep.configs.iter().flat_map(|c| &c.steps).next() {
        let _ = write!(
            page,
            "<p>Each step is judged on its steady state: the seconds from {:.0} s to {:.0} s of its run, after its ramp and {:.0} s to settle (the ramp's transient is left out of the verdict). Errors and the checker's counts are the whole step's.</p>",
            step.judged_from_s,
            step.judged_to_s,
            crate::capacity::SETTLE_S
        );
    }
    verdicts(&mut page, sweep);
    if let Some(cost) = shared_state_cost(sweep) {
        let _ = write!(page, "<p>{}</p>", escape(&cost));
    }
    for curves in [p95_curves(sweep), throughput_curves(sweep)] {
        let _ = write!(
            page,
            "<div class=\"chart\">{}</div>",
            charts::curves(&curves)?
        );
    }
    let redis = redis_curves(sweep);
    if redis.series.iter().any(|(_, points)| !points.is_empty()) {
        let _ = write!(
            page,
            "<div class=\"chart\">{}</div>",
            charts::curves(&redis)?
        );
    }
    page.push_str("<h2>Steps</h2>");
    steps(&mut page, sweep);
    model(&mut page, sweep);
    if let Some(plan) = plan {
        page.push_str(&plan.section());
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

fn dash() -> String {
    "—".to_owned()
}

/// One row per configuration: what it held and what ended it.
fn verdicts(page: &mut String, sweep: &Sweep) {
    table(
        page,
        &[
            "Configuration",
            "Max players under SLO",
            "Ended by",
            "Knee",
            "Scaling efficiency",
            "Throughput (USL)",
        ],
        sweep.verdicts.iter().map(|v| {
            vec![
                Cell::Text(v.label.clone()),
                Cell::Num(match (v.max_players_under_slo, v.limit) {
                    (Some(m), Limit::MaxPlayers) => format!("≥ {m:.0} (not reached)"),
                    (Some(m), _) => format!("{m:.0}"),
                    (None, _) => dash(),
                }),
                Cell::Text(v.limit.text().to_owned()),
                Cell::Num(v.knee.map_or_else(dash, |k| format!("{k:.0}"))),
                Cell::Num(
                    v.scaling_efficiency
                        .map_or_else(dash, |e| format!("{:.0} %", e * 100.0)),
                ),
                Cell::Text(usl_text(&v.usl)),
            ]
        }),
    );
}

/// Each configuration's steps as (players, `y`) points.
fn per_config(sweep: &Sweep, y: fn(&Step) -> Option<f64>) -> Vec<(String, Vec<(f64, f64)>)> {
    sweep
        .configs
        .iter()
        .map(|c| {
            let points = c.steps.iter().filter_map(|s| Some((s.players, y(s)?)));
            (c.label.clone(), points.collect())
        })
        .collect()
}

fn p95_curves(sweep: &Sweep) -> Curves<'static> {
    Curves {
        title: "p95 fan-out against players",
        x_desc: "players connected",
        y_desc: "p95 fan-out, ms",
        series: per_config(sweep, |s| Some(s.fanout_p95_ms)),
        dashed: Vec::new(),
        y_cap: None,
        level: sweep
            .fanout_slo_ms
            .map(|slo| (format!("SLO {slo} ms"), slo)),
        marks: sweep
            .verdicts
            .iter()
            .filter_map(|v| {
                v.max_players_under_slo
                    .map(|m| (format!("{}: max under SLO", v.label), m))
            })
            .collect(),
    }
}

fn throughput_curves(sweep: &Sweep) -> Curves<'static> {
    let fits = sweep.verdicts.iter().zip(&sweep.configs);
    Curves {
        title: "Throughput against players, with the USL fit (dashed)",
        x_desc: "players connected",
        y_desc: "events delivered per second",
        series: per_config(sweep, |s| Some(s.throughput)),
        dashed: fits
            .filter_map(|(v, c)| match &v.usl {
                Usl::Fitted(fit) => {
                    let top = c.steps.iter().map(|s| s.players).fold(1.0, f64::max);
                    Some((
                        format!("{} USL", v.label),
                        (1..=40)
                            .map(|i| top * f64::from(i) / 40.0)
                            .map(|n| (n, fit.throughput(n)))
                            .collect(),
                    ))
                }
                _ => None,
            })
            .collect(),
        y_cap: None,
        level: None,
        marks: Vec::new(),
    }
}

fn redis_curves(sweep: &Sweep) -> Curves<'static> {
    let mut series = per_config(sweep, |s| s.redis_cpu_pct);
    series.retain(|(label, _)| {
        sweep
            .configs
            .iter()
            .any(|c| c.label == *label && c.state == "redis")
    });
    Curves {
        title: "Redis CPU against players: where shared state becomes the limit",
        x_desc: "players connected",
        y_desc: "Redis CPU, % of one core",
        series,
        dashed: Vec::new(),
        y_cap: None,
        level: Some(("one core".to_owned(), 100.0)),
        marks: Vec::new(),
    }
}

/// What a player costs per component, and the 1-replica model's
/// predictions against the other sweeps.
fn model(page: &mut String, sweep: &Sweep) {
    if sweep.models.is_empty() {
        return;
    }
    page.push_str("<h2>What a player costs</h2><p>Least-squares lines over the steps each configuration held: the slope, ± half its 95 % interval; a cost whose upper steps cost more than 1.25× the lower ones per player says it grows faster than linearly. These costs, not players ÷ replicas on shared cores, are what <code>tierlab plan</code> projects onto machines.</p>");
    table(
        page,
        &crate::capacity::COST_COLUMNS,
        sweep.models.iter().flat_map(|m| m.rows()).map(cells),
    );
    if sweep.predictions.is_empty() {
        return;
    }
    page.push_str("<h2>The model against the sweep</h2><p>One replica's costs predict what each configuration of the same state holds on the same cores: the cores the 1-replica sweep had busy when it last held are the budget, and players are added until every process's CPU together fills it.</p>");
    table(
        page,
        &crate::capacity::PREDICTION_COLUMNS,
        sweep.predictions.iter().map(|p| cells(p.row())),
    );
}

/// A row whose first two cells name it and whose others are figures.
fn cells<const N: usize>(row: [String; N]) -> Vec<Cell> {
    row.into_iter()
        .enumerate()
        .map(|(i, c)| if i < 2 { Cell::Text(c) } else { Cell::Num(c) })
        .collect()
}

/// Every step of every configuration.
fn steps(page: &mut String, sweep: &Sweep) {
    let rows = sweep.configs.iter().flat_map(|c| {
        c.steps.iter().map(move |s| {
            vec![
                Cell::Text(c.label.clone()),
                Cell::Num(format!("{:.0}", s.players)),
                Cell::Num(format!("{:.0}", s.throughput)),
                Cell::Num(format!(
                    "{:.1} / {:.1} / {:.1}",
                    s.fanout_p50_ms, s.fanout_p95_ms, s.fanout_p99_ms
                )),
                Cell::Num(format!("{:.2} %", s.error_rate_pct)),
                Cell::Num(format!("{:.0} %", s.servers_cpu_pct)),
                Cell::Num(s.redis_cpu_pct.map_or_else(dash, |c| format!("{c:.0} %"))),
                Cell::Num(s.redis_ops_per_s.map_or_else(dash, |o| format!("{o:.0}"))),
                Cell::Num(format!(
                    "{:.0} %{}",
                    s.generator_cpu_pct,
                    if s.generator_saturated {
                        " (saturated)"
                    } else {
                        ""
                    }
                )),
                Cell::Verdict(s.held),
            ]
        })
    });
    table(
        page,
        &[
            "Configuration",
            "Players",
            "Events/s",
            "p50 / p95 / p99 ms",
            "Errors",
            "Servers CPU",
            "Redis CPU",
            "Redis ops/s",
            "Generator CPU",
            "SLOs",
        ],
        rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::sample_config as config;

    #[test]
    fn the_page_shows_scaling_efficiency_and_three_charts() {
        let sweep = crate::capacity::sample_scaling_sweep();
        let page = render(&sweep, None).unwrap();
        assert!(page.contains("80 %") && page.matches("<svg").count() == 3);
    }

    #[test]
    fn a_sweep_that_never_broke_says_so() {
        let sweep = crate::capacity::sample_unbroken_sweep();
        assert!(render(&sweep, None)
            .unwrap()
            .contains("≥ 1000 (not reached)"));
    }

    #[test]
    fn the_page_shows_what_a_player_costs_and_the_predictions() {
        // sample_config: replicas at a flat 50 % — no per-player cost —
        // but 3 Redis ops/s per player at every step.
        let sweep = crate::capacity::sample_scaling_sweep();
        let page = render(&sweep, None).unwrap();
        assert!(page.contains("What a player costs"), "{page}");
        assert!(page.contains("3.00 ± 0 %"), "{page}");
        // No CPU grows with players: nothing to predict players from.
        assert!(sweep.predictions.is_empty() && !page.contains("The model against the sweep"));
    }

    #[test]
    fn a_generator_limit_is_called_no_capacity() {
        let mut c = config(1, 1000.0, Limit::Generator);
        c.steps.last_mut().unwrap().generator_saturated = true;
        let sweep = Sweep::new("t".into(), vec![c], None);
        assert!(render(&sweep, None).unwrap().contains("not a capacity"));
    }
}
