//! `report.md`: the verdict and tables of the HTML report, for a CI step
//! summary.

use std::fmt::Write as _;

use crate::report::Report;

/// A Markdown table: `head`, then one line per row, then a blank line.
pub(crate) fn table<const N: usize>(
    md: &mut String,
    head: &[&str; N],
    rows: impl Iterator<Item = [String; N]>,
) {
    let _ = writeln!(md, "| {} |\n|{}", head.join(" | "), "---|".repeat(N));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md.push('\n');
}

fn mark(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "**FAIL**"
    }
}

pub fn render(report: &Report) -> String {
    let run = &report.run;
    let s = &run.summary;
    let c = &run.checker;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} — {}\n",
        run.scenario.name,
        report.verdict().to_uppercase()
    );
    let _ = writeln!(md, "{}\n", report.summary);
    let _ = writeln!(md, "| | p50 | p95 | p99 | max |\n|---|---|---|---|---|");
    for (name, p) in [
        ("fan-out ms", s.fanout_ms),
        ("ack ms", s.ack_ms),
        ("send lag ms", s.send_lag_ms),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p.p50, p.p95, p.p99, p.max
        );
    }
    let _ = writeln!(
        md,
        "\nPeak players {} · events delivered {} · errors {} ({:.2} %)\n",
        s.peak_players, s.events_delivered, s.errors, s.error_rate_pct
    );
    if !run.slo.is_empty() {
        let _ = writeln!(md, "| SLO | threshold | measured | |\n|---|---|---|---|");
        for slo in &run.slo {
            let _ = writeln!(
                md,
                "| `{}` | {} | {:.3} | {} |",
                slo.name,
                slo.threshold,
                slo.measured,
                mark(slo.pass)
            );
        }
    }
    let _ = writeln!(
        md,
        "\n| acked | delivered | lost | duplicated | reordered | acts applied twice |\n|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} |",
        c.acked, c.delivered, c.lost, c.duplicated, c.reordered, c.duplicated_acts
    );
    if !c.guarantee.is_empty() {
        let _ = writeln!(md, "\nChecked: {}.", c.guarantee);
    }
    if let Some(Ok(gate)) = &report.comparison {
        let _ = writeln!(md, "\n```text\n{}```", gate.table());
    }
    if !run.faults.is_empty() {
        let _ = writeln!(md, "\n| fault | from s | players dropped | back after s | lost | |\n|---|---|---|---|---|---|");
        for f in &run.faults {
            let v = f.verdict.clone().unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {} | {} | {} |",
                f.name,
                f.start_s,
                v.players_dropped,
                v.players_back_s
                    .map_or_else(|| "—".into(), |b| format!("{b:.1}")),
                v.lost,
                mark(v.pass)
            );
        }
    }
    md
}
