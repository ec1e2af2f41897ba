//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! nothing fetched) that reads the same on screen, from disk, and in print.

use std::fmt::Write as _;

use tierlab_record::slo::Metric;
use tierlab_record::{Latency, Phase, RunRecord, Second, Slo};

use crate::charts;
use crate::report::{thousands, Report};
use crate::ReportError;

pub const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#1a7f37;font-weight:bold}.fail{color:#b42318;font-weight:bold}\
.verdict{font-size:1.1em;padding:.6em 1em;border-radius:4px;background:#f3f4f6;border-left:6px solid #9ca3af}\
.verdict.passed{background:#e7f6ec;border-color:#1a7f37}.verdict.failed,.verdict.regressed{background:#fdecea;border-color:#b42318}.verdict.partial{background:#fff4e0;border-color:#b54708}.chart{margin:1em 0;page-break-inside:avoid}\
svg{max-width:100%;height:auto}pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}";

/// The start of a report page, up to its `<body>`: title and style.
pub fn open_page(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// Text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pass_fail(pass: bool) -> &'static str {
    if pass {
        "<span class=\"pass\">pass</span>"
    } else {
        "<span class=\"fail\">FAIL</span>"
    }
}

/// A table cell: text (escaped), a number (right-aligned), or a verdict.
pub(crate) enum Cell {
    Text(String),
    Num(String),
    Verdict(bool),
}

/// Writes a table with a header row and one row per item.
pub(crate) fn table(page: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<Cell>>) {
    page.push_str("<table><tr>");
    for h in head {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = match cell {
                Cell::Text(t) => write!(page, "<td>{}</td>", escape(&t)),
                Cell::Num(n) => write!(page, "<td class=\"n\">{}</td>", escape(&n)),
                Cell::Verdict(pass) => write!(page, "<td>{}</td>", pass_fail(pass)),
            };
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:.1} s"))
}

pub fn render(report: &Report) -> Result<String, ReportError> {
    let run = &report.run;
    let mut page = String::with_capacity(256 * 1024);
    let title = format!("Tierlab run: {}", run.scenario.name);
    page.push_str(&open_page(&title));
    verdict(&mut page, report);
    comparison(&mut page, report);
    latency_over_time(&mut page, run)?;
    load_and_throughput(&mut page, run)?;
    distribution(&mut page, report)?;
    lobby(&mut page, run);
    let _ = write!(page, "<h2>Capacity</h2>");
    capacity(&mut page, report)?;
    processes(&mut page, report);
    workers(&mut page, report);
    environment(&mut page, report);
    page.push_str("</body></html>\n");
    Ok(page)
}

/// Fan-out, ack and (when sampled) send lag, second by second.
fn latency_over_time(page: &mut String, run: &RunRecord) -> Result<(), ReportError> {
    let _ = write!(page, "<h2>Latency over time</h2>");
    chart(
        page,
        charts::latency_over_time(
            run,
            "Fan-out latency per second (send → every member)",
            |s: &Second| s.fanout_ms,
            &slo_levels(run, Latency::Fanout),
        )?,
    );
    chart(
        page,
        charts::latency_over_time(
            run,
            "Ack latency per second (send → sender's ack)",
            |s: &Second| s.ack_ms,
            &slo_levels(run, Latency::Ack),
        )?,
    );
    if run.summary.send_lag_ms.count > 0 {
        let _ = write!(
            page,
            "<p>Send lag is the generator's own lateness: from the moment an act was meant to go to the moment its frame was written. Fan-out and ack are counted from the intended moment, so each includes its sender's send lag; where the send lag is small next to them, the latencies are the system's.</p>"
        );
        chart(
            page,
            charts::latency_over_time(
                run,
                "Send lag per second (intended → written)",
                |s: &Second| s.send_lag_ms,
                &slo_levels(run, Latency::SendLag),
            )?,
        );
    }
    Ok(())
}

/// Acts, deliveries, errors and reconnects per second.
fn load_and_throughput(page: &mut String, run: &RunRecord) -> Result<(), ReportError> {
    let _ = write!(page, "<h2>Load and throughput</h2>");
    chart(
        page,
        charts::counts_over_time(
            run,
            "Acts and events delivered per second",
            "per second",
            &[
                ("acts/s", |s| s.acts as f64),
                ("events delivered/s", |s| s.events_delivered as f64),
            ],
        )?,
    );
    chart(
        page,
        charts::counts_over_time(
            run,
            "Errors and reconnects per second",
            "per second",
            &[
                ("errors/s", |s| s.errors as f64),
                ("reconnects/s", |s| s.reconnects as f64),
            ],
        )?,
    );
    Ok(())
}

/// The latency spectra of the run (and of the baseline, dashed).
fn distribution(page: &mut String, report: &Report) -> Result<(), ReportError> {
    let _ = write!(page, "<h2>Latency distribution</h2>");
    if let Some(baseline) = &report.baseline {
        let _ = write!(
            page,
            "<p>Dashed: the baseline, {}.</p>",
            escape(&baseline.label)
        );
    }
    if report.spectra.is_empty() {
        let _ = write!(page, "<p>No latency.hlog in the run directory.</p>");
    } else {
        chart(
            page,
            charts::spectrum(
                &report.spectra,
                report.baseline.as_ref().map(|b| b.spectra.as_slice()),
            )?,
        );
    }
    Ok(())
}

/// The SLOs on `latency` as lines a time chart draws: (label, ms).
fn slo_levels(run: &RunRecord, latency: Latency) -> Vec<(String, f64)> {
    run.slo
        .iter()
        .filter_map(|v| Slo::parse(&v.name).ok())
        .filter(|slo| matches!(slo.metric, Metric::Latency(_, l) if l == latency))
        .map(|slo| (format!("SLO {}", slo.text), slo.threshold))
        .collect()
}

/// The lobby's HTTP traffic as goose measured it, by request.
fn lobby(page: &mut String, run: &RunRecord) {
    if run.http.is_empty() {
        return;
    }
    let _ = write!(
        page,
        "<h2>Lobby (HTTP)</h2><p>Room creation before the players, and the lookups and health polls made beside them, as goose measured them.</p>"
    );
    table(
        page,
        &[
            "Request",
            "When",
            "Requests",
            "Failures",
            "Per second",
            "p50 / p95 / p99 / max ms",
        ],
        run.http.iter().map(|(name, e)| {
            vec![
                Cell::Text(name.clone()),
                Cell::Text(match e.phase {
                    Phase::Setup => "set-up".into(),
                    Phase::Run => "beside the players".into(),
                }),
                Cell::Num(thousands(e.requests as f64)),
                Cell::Num(thousands(e.failures as f64)),
                Cell::Num(format!("{:.1}", e.per_second)),
                Cell::Num(format!(
                    "{:.1} / {:.1} / {:.1} / {:.1}",
                    e.ms.p50, e.ms.p95, e.ms.p99, e.ms.max
                )),
            ]
        }),
    );
}

fn chart(page: &mut String, svg: String) {
    let _ = write!(page, "<div class=\"chart\">{svg}</div>");
}

fn verdict(page: &mut String, report: &Report) {
    headline(page, report);
    slos(page, &report.run);
    checker(page, &report.run);
    faults(page, &report.run);
}

/// The verdict and the run at a glance.
fn headline(page: &mut String, report: &Report) {
    let run = &report.run;
    let s = &run.summary;
    let t = &run.topology;
    let _ = write!(
        page,
        "<h1>{}</h1><p>{}</p><p class=\"verdict {}\"><b>{}</b> — {}</p>",
        escape(&run.scenario.name),
        escape(&run.scenario.description),
        report.verdict(),
        report.verdict().to_uppercase(),
        escape(&report.summary)
    );
    let _ = write!(
        page,
        "<table><tr><th>Topology</th><td>{} × {}, {} state, {} persistence{}, players {}</td></tr>\
         <tr><th>Started</th><td>{} ({}, {:.0} s)</td></tr>\
         <tr><th>Peak players</th><td class=\"n\">{}</td></tr>\
         <tr><th>Events delivered</th><td class=\"n\">{}</td></tr>\
         <tr><th>Fan-out p50 / p95 / p99 / max</th><td class=\"n\">{:.1} / {:.1} / {:.1} / {:.1} ms</td></tr>\
         <tr><th>Ack p50 / p95 / p99 / max</th><td class=\"n\">{:.1} / {:.1} / {:.1} / {:.1} ms</td></tr>\
         <tr><th>Send lag p50 / p95 / p99 / max</th><td class=\"n\">{:.2} / {:.2} / {:.2} / {:.2} ms</td></tr>\
         <tr><th>Errors</th><td class=\"n\">{} ({:.2} % of operations)</td></tr></table>",
        t.replicas,
        t.server,
        t.state,
        t.persistence,
        if t.sentinel { ", Sentinel" } else { "" },
        t.via,
        escape(&run.started_at),
        run.ended,
        s.duration_s,
        thousands(s.peak_players as f64),
        thousands(s.events_delivered as f64),
        s.fanout_ms.p50,
        s.fanout_ms.p95,
        s.fanout_ms.p99,
        s.fanout_ms.max,
        s.ack_ms.p50,
        s.ack_ms.p95,
        s.ack_ms.p99,
        s.ack_ms.max,
        s.send_lag_ms.p50,
        s.send_lag_ms.p95,
        s.send_lag_ms.p99,
        s.send_lag_ms.max,
        thousands(s.errors as f64),
        s.error_rate_pct,
    );
}

fn slos(page: &mut String, run: &RunRecord) {
    page.push_str("<h2>SLOs</h2>");
    table(
        page,
        &["SLO", "Threshold", "Measured", ""],
        run.slo.iter().map(|slo| {
            vec![
                Cell::Text(slo.name.clone()),
                Cell::Text(slo.threshold.clone()),
                Cell::Num(format!("{:.3}", slo.measured)),
                Cell::Verdict(slo.pass),
            ]
        }),
    );
}

fn checker(page: &mut String, run: &RunRecord) {
    let c = &run.checker;
    page.push_str("<h2>Delivery checker</h2>");
    if !c.guarantee.is_empty() {
        let _ = write!(page, "<p>Checked: {}.</p>", escape(&c.guarantee));
    }
    table(
        page,
        &[
            "Acked",
            "Delivered",
            "Lost",
            "Duplicated",
            "Reordered",
            "Acts applied twice",
            "Delivered, never acked",
        ],
        [[
            c.acked,
            c.delivered,
            c.lost,
            c.duplicated,
            c.reordered,
            c.duplicated_acts,
            c.unacked_delivered,
        ]
        .iter()
        .map(|n| Cell::Num(thousands(*n as f64)))
        .collect()],
    );
}

/// Each fault and what it cost.
fn faults(page: &mut String, run: &RunRecord) {
    if !run.faults.is_empty() {
        page.push_str("<h2>Faults</h2>");
        table(
            page,
            &[
                "Fault",
                "What",
                "From",
                "To",
                "Players dropped",
                "All back after",
                "Fan-out recovered after",
                "Lost",
                "",
            ],
            run.faults.iter().map(|f| {
                let v = f.verdict.clone().unwrap_or_default();
                vec![
                    Cell::Text(f.name.clone()),
                    Cell::Text(f.what.clone()),
                    Cell::Num(format!("{:.1} s", f.start_s)),
                    Cell::Num(opt_s(f.end_s)),
                    Cell::Num(thousands(v.players_dropped as f64)),
                    Cell::Num(opt_s(v.players_back_s)),
                    Cell::Num(opt_s(v.fanout_recovered_s)),
                    Cell::Num(thousands(v.lost as f64)),
                    Cell::Verdict(v.pass),
                ]
            }),
        );
    }
}

fn comparison(page: &mut String, report: &Report) {
    let Some(comparison) = &report.comparison else {
        return;
    };
    page.push_str("<h2>Against the baseline</h2>");
    match comparison {
        Err(why) => {
            let _ = write!(page, "<p>Not compared: {}.</p>", escape(why));
        }
        Ok(gate) => table(
            page,
            &[
                "Metric",
                "Baseline",
                "This run",
                "Change",
                "Worst allowed",
                "",
            ],
            gate.rows.iter().map(|row| {
                vec![
                    Cell::Text(row.metric.clone()),
                    Cell::Num(format!("{:.3}", row.baseline)),
                    Cell::Num(format!("{:.3}", row.measured)),
                    Cell::Num(format!("{:+.1} %", row.change_pct)),
                    Cell::Num(format!("{:.3}", row.limit)),
                    Cell::Verdict(row.pass),
                ]
            }),
        ),
    }
}

fn capacity(page: &mut String, report: &Report) -> Result<(), ReportError> {
    if report.curve.len() < 2 {
        page.push_str("<p>Too few distinct loads in this run to draw a capacity curve.</p>");
        return Ok(());
    }
    chart(
        page,
        charts::capacity(&report.curve, report.knee, report.fanout_slo_ms)?,
    );
    let knee = report.knee.map_or_else(
        || "Latency stayed flat over the loads this run visited: no knee.".to_owned(),
        |k| format!("Latency departs from flat at about {k:.0} players (the knee)."),
    );
    let generator = &report.run.generator;
    let _ = write!(
        page,
        "<p>{knee} The generator used {:.0} % of one core at the median and {:.0} % at most, of {:.0} % available{}.</p>",
        generator.cpu_pct_median,
        generator.cpu_pct_max,
        generator.cpu_pct_capacity,
        if generator.saturated {
            " — <b>it saturated: this curve is the generator's limit, not the system's</b>"
        } else {
            ""
        }
    );
    Ok(())
}

fn processes(page: &mut String, report: &Report) {
    let list = &report.run.processes;
    if list.is_empty() {
        return;
    }
    let or_dash = |v: Option<String>| Cell::Num(v.unwrap_or_else(|| "—".into()));
    page.push_str("<h2>Per process</h2>");
    table(
        page,
        &[
            "Process",
            "CPU median",
            "CPU max",
            "RSS max",
            "Connections max",
            "Events sent/s median",
            "Redis ops/s median",
        ],
        list.iter().map(|p| {
            vec![
                Cell::Text(p.name.clone()),
                Cell::Num(format!("{:.0} %", p.cpu_pct_median)),
                Cell::Num(format!("{:.0} %", p.cpu_pct_max)),
                Cell::Num(format!("{:.1} MiB", p.rss_mib_max)),
                or_dash(p.connections_max.map(|c| thousands(c as f64))),
                or_dash(p.events_per_s_median.map(thousands)),
                or_dash(p.ops_per_s_median.map(thousands)),
            ]
        }),
    );
}

/// Clock skew beyond which cross-worker fan-out latencies are marked.
const SKEW_MARK_MS: f64 = 5.0;

/// A sharded run's workers: how late each began, and how far their clocks
/// disagree as measured by deliveries between them.
fn workers(page: &mut String, report: &Report) {
    let Some(w) = &report.run.shard else { return };
    let _ = write!(
        page,
        "<h2>Workers</h2><p>Slices {:?} of {}.</p>",
        w.indices, w.count
    );
    table(
        page,
        &["Slice", "Began after --start-at"],
        w.start_skew_ms
            .iter()
            .map(|(slice, ms)| vec![Cell::Text(slice.clone()), Cell::Num(format!("{ms:.0} ms"))]),
    );
    if w.clock_skew_ms.is_empty() {
        return;
    }
    let worst = w
        .clock_skew_ms
        .values()
        .map(|v| v.abs())
        .fold(0.0, f64::max);
    if worst > SKEW_MARK_MS {
        let _ = write!(
            page,
            "<p class=\"fail\">The workers' clocks disagree by up to {worst:.1} ms: fan-out latencies of events sent on one worker and received on another carry that skew.</p>"
        );
    }
    table(
        page,
        &[
            "Workers",
            "Clock skew (second ahead of first)",
            "Delivery there",
            "Delivery back",
        ],
        w.clock_skew_ms.iter().map(|(pair, skew)| {
            let (a, b) = pair.split_once('-').unwrap_or((pair, pair));
            let leg = |from: &str, to: &str| {
                w.delivery_ms
                    .get(&format!("{from}->{to}"))
                    .map_or_else(|| "—".into(), |ms| format!("{ms:.1} ms"))
            };
            vec![
                Cell::Text(format!("{a} and {b}")),
                Cell::Num(format!("{skew:+.1} ms")),
                Cell::Num(leg(a, b)),
                Cell::Num(leg(b, a)),
            ]
        }),
    );
}

fn environment(page: &mut String, report: &Report) {
    let run = &report.run;
    let m = &run.machine;
    let _ = write!(
        page,
        "<h2>Environment</h2><table><tr><th>Machine</th><td>{} — {} cores, {} MiB, {}, kernel {}</td></tr>",
        escape(&m.hostname),
        m.cores,
        m.memory_mib,
        escape(&m.os),
        escape(&m.kernel)
    );
    for (name, version) in &run.versions {
        let _ = write!(
            page,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(version)
        );
    }
    let _ = write!(
        page,
        "</table><h3>Scenario</h3><pre>{}</pre>",
        escape(&run.scenario.text)
    );
}
