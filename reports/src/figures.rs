//! The figures in docs/: each a block of Markdown made from records by
//! `tierlab figures`, between `<!-- figures:NAME -->` markers a command
//! rewrites, and naming the date, the machine and the command that
//! measured it. No figure in the docs is typed by hand; `just
//! docs-figures` measures and writes them all again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tierlab_record::calibration::{self, Calibration};
use tierlab_record::{Machine, RunRecord};

use crate::ab::{AbMetric, AbReport, Change, Verdict};
use crate::capacity::Sweep;
use crate::report::thousands;
use crate::{read_json, ReportError};

mod cost;

/// One record a figure is made from.
#[derive(Debug, Clone)]
pub enum Source {
    Run(Box<RunRecord>),
    Calibration(Calibration),
    Sweep(Box<Sweep>),
    /// An A/B gate's verdict (`ab.json`): one trial.
    Ab(Box<AbReport>),
}

impl Source {
    /// A run directory (`run.json`), a calibration's (`calibrate.json`)
    /// or a sweep's (`capacity.json`), or one of those files.
    pub fn load(path: &Path) -> Result<Source, ReportError> {
        let (dir, file) = if path.is_dir() {
            (path.to_owned(), None)
        } else {
            (
                path.parent().map(Path::to_owned).unwrap_or_default(),
                path.file_name().map(|f| f.to_string_lossy().into_owned()),
            )
        };
        let has = |name: &str| {
            file.as_deref()
                .map_or_else(|| dir.join(name).exists(), |f| f == name)
        };
        if has(calibration::FILE) {
            return Ok(Source::Calibration(read_json(
                &dir.join(calibration::FILE),
            )?));
        }
        if has("ab.json") {
            return Ok(Source::Ab(Box::new(read_json(&dir.join("ab.json"))?)));
        }
        if has("capacity.json") {
            return Ok(Source::Sweep(Box::new(read_json(
                &dir.join("capacity.json"),
            )?)));
        }
        Ok(Source::Run(Box::new(RunRecord::load(&dir)?)))
    }
}

/// The block for `section` from `sources`, measured by `command`; the
/// machine and date are those of the first run among them (a calibration
/// or a sweep takes `machine`/`date` from its own runs' records, passed in
/// as `context`).
pub fn block(section: &str, command: &str, sources: &[Source], context: &Context) -> String {
    let mut md = format!(
        "<!-- figures:{section} (written by `tierlab figures` from the records of the command named below, which measures and writes it again) -->\n"
    );
    let _ = writeln!(
        md,
        "Measured {} on `{}` ({} cores, {:.0} GiB, {}, kernel {}) by `{command}`.\n",
        context.date,
        context.machine.hostname,
        context.machine.cores,
        context.machine.memory_mib as f64 / 1024.0,
        context.machine.os,
        context.machine.kernel,
    );
    let runs: Vec<&RunRecord> = sources
        .iter()
        .filter_map(|s| match s {
            Source::Run(run) => Some(run.as_ref()),
            _ => None,
        })
        .collect();
    if !runs.is_empty() {
        runs_table(&mut md, &runs);
        cost::server_cost_table(&mut md, &runs);
    }
    if runs.iter().any(|r| !r.faults.is_empty()) {
        drills_table(&mut md, &runs);
    }
    for source in sources {
        match source {
            Source::Calibration(c) => calibration_table(&mut md, c),
            Source::Sweep(sweep) => sweep_table(&mut md, sweep),
            Source::Run(_) | Source::Ab(_) => {}
        }
    }
    let gates: Vec<&AbReport> = sources
        .iter()
        .filter_map(|s| match s {
            Source::Ab(report) => Some(report.as_ref()),
            _ => None,
        })
        .collect();
    if !gates.is_empty() {
        trials_table(&mut md, &gates);
        trials_tally(&mut md, &gates);
    }
    let _ = writeln!(md, "<!-- /figures:{section} -->");
    md
}

/// When and where the figures were measured.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub date: String,
    pub machine: Machine,
}

impl Context {
    /// From the first run record in `paths` (a calibration's or a sweep's
    /// runs are found in their directories).
    pub fn of(paths: &[PathBuf]) -> Context {
        paths
            .iter()
            .find_map(|p| first_record(p))
            .map(|r| Context {
                date: r.started_at.chars().take(10).collect(),
                machine: r.machine,
            })
            .unwrap_or_default()
    }
}

/// The first run record at or below `dir` (two levels deep at most).
fn first_record(dir: &Path) -> Option<RunRecord> {
    let dir = if dir.is_dir() {
        dir.to_owned()
    } else {
        dir.parent()?.to_owned()
    };
    if let Ok(record) = RunRecord::load(&dir) {
        return Some(record);
    }
    let mut below: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    below.sort();
    below.iter().find_map(|d| {
        RunRecord::load(d).ok().or_else(|| {
            let mut deeper: Vec<PathBuf> = std::fs::read_dir(d)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            deeper.sort();
            deeper.iter().find_map(|x| RunRecord::load(x).ok())
        })
    })
}

fn runs_table(md: &mut String, runs: &[&RunRecord]) {
    let _ = writeln!(
        md,
        "| run | build | topology | peak players | events/s | fan-out p50 / p95 / p99 ms | ack p95 ms | send lag p50 / p99 ms | generator µs per event | generator CPU (median) | generator KiB per player | lost | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for run in runs {
        let s = &run.summary;
        let g = &run.generator;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {:.2} | {:.3} / {:.3} | {} | {:.0} % | {} | {} | {} |",
            run.scenario.name,
            run.versions.get("build").map_or("not recorded", String::as_str),
            run.topology.label(),
            thousands(s.peak_players as f64),
            thousands(run.throughput()),
            s.fanout_ms.p50,
            s.fanout_ms.p95,
            s.fanout_ms.p99,
            s.ack_ms.p95,
            s.send_lag_ms.p50,
            s.send_lag_ms.p99,
            g.us_per_event
                .or_else(|| tierlab_record::us_per_event(&run.timeseries))
                .map_or_else(|| "—".into(), |u| format!("{u:.1}")),
            g.cpu_pct_median,
            run.generator_kib_per_player()
                .map_or_else(|| "—".into(), |k| format!("{k:.1}")),
            thousands(run.checker.lost as f64),
            if run.partial {
                "partial"
            } else if run.slos_held() {
                "SLOs held"
            } else {
                "an SLO failed"
            }
        );
    }
    md.push('\n');
}

/// What each fault of a drill cost, and what the players' resends did.
fn drills_table(md: &mut String, runs: &[&RunRecord]) {
    let _ = writeln!(
        md,
        "| run | resends | fault | answered `unknown_outcome` / `unavailable` | acked | lost | acts applied twice | fan-out back after |\n|---|---|---|---|---|---|---|---|"
    );
    for run in runs {
        let resends = resends(&run.scenario.text);
        let count = |kind: &str| thousands(*run.errors.get(kind).unwrap_or(&0) as f64);
        for fault in &run.faults {
            let recovered = fault
                .verdict
                .as_ref()
                .and_then(|v| v.fanout_recovered_s)
                .map_or_else(|| "not within its window".into(), |s| format!("{s:.1} s"));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} / {} | {} | {} | {} | {} |",
                run.scenario.name,
                resends,
                fault.name,
                count("unknown_outcome"),
                count("unavailable"),
                thousands(run.checker.acked as f64),
                thousands(run.checker.lost as f64),
                thousands(run.checker.duplicated_acts as f64),
                recovered,
            );
        }
    }
    md.push('\n');
}

/// How the run's players resent refused acts, from its scenario text.
fn resends(scenario: &str) -> String {
    let behaviour = scenario
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("behaviour").and_then(toml::Value::as_table).cloned())
        .unwrap_or_default();
    let retries = behaviour
        .get("act_retries")
        .and_then(toml::Value::as_integer)
        .unwrap_or(0);
    let keyed = behaviour
        .get("idempotency_keys")
        .and_then(toml::Value::as_bool)
        .unwrap_or(true);
    match (retries, keyed) {
        (0, _) => "none".into(),
        (n, true) => format!("up to {n}, keyed"),
        (n, false) => format!("up to {n}, no keys"),
    }
}

fn effect(gate: &AbReport, metric: AbMetric) -> String {
    gate.comparisons
        .iter()
        .find(|c| c.metric == metric)
        .map_or_else(
            || "—".into(),
            |c| {
                format!(
                    "{:+.0} % ({:+.0} … {:+.0}){}",
                    c.effect_pct,
                    c.ci_pct.0,
                    c.ci_pct.1,
                    if c.change == Change::Regression {
                        " **R**"
                    } else {
                        ""
                    }
                )
            },
        )
}

fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Regressed => "REGRESSED",
        Verdict::SloFailed => "SLO FAILED",
        Verdict::Refused(_) => "REFUSED",
    }
}

/// One row per A/B gate (a trial).
fn trials_table(md: &mut String, gates: &[&AbReport]) {
    let _ = writeln!(
        md,
        "| trial | baseline → candidate | runs counted | fan-out p95 (95 % CI) | fan-out p99 | ack p95 | server CPU per event | server KiB per connection | wall time | verdict |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, g) in gates.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | `{}` → `{}` | {} + {} of {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            g.baseline,
            g.candidate,
            g.counted(crate::ab::Arm::Baseline),
            g.counted(crate::ab::Arm::Candidate),
            g.runs.len(),
            effect(g, AbMetric::FanoutP95),
            effect(g, AbMetric::FanoutP99),
            effect(g, AbMetric::AckP95),
            effect(g, AbMetric::ServerCpuPerEvent),
            effect(g, AbMetric::ServerKibPerConnection),
            g.wall_s
                .map_or_else(|| "—".into(), |s| format!("{:.0} s", s)),
            verdict_word(&g.verdict)
        );
    }
    md.push_str(
        "\n**R**: that metric regressed (interval above no change, effect ≥ the minimum).\n\n",
    );
}

/// The effects `gates` measured on `metric`, in order.
fn effects(gates: &[&&AbReport], metric: AbMetric) -> Vec<f64> {
    let mut effects: Vec<f64> = gates
        .iter()
        .flat_map(|g| g.comparisons.iter().filter(|c| c.metric == metric))
        .map(|c| c.effect_pct)
        .collect();
    effects.sort_by(f64::total_cmp);
    effects
}

/// Per pair of builds: how many gates passed, regressed (on any metric,
/// on fan-out p95 itself), or refused; the range of the p95 effect.
fn trials_tally(md: &mut String, gates: &[&AbReport]) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for g in gates {
        let pair = (g.baseline.clone(), g.candidate.clone());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let _ = writeln!(
        md,
        "| baseline → candidate | gates | PASS | REGRESSED (any metric) | fan-out p95 regressed | refused | fan-out p95 effect, median (min … max) | server CPU per event effect, median | median wall time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (a, b) in pairs {
        let of: Vec<&&AbReport> = gates
            .iter()
            .filter(|g| g.baseline == a && g.candidate == b)
            .collect();
        let count = |f: &dyn Fn(&AbReport) -> bool| of.iter().filter(|g| f(g)).count();
        let regressed_on = |g: &AbReport, m: AbMetric| {
            g.comparisons
                .iter()
                .any(|c| c.metric == m && c.change == Change::Regression)
        };
        let p95 = effects(&of, AbMetric::FanoutP95);
        let cpu = effects(&of, AbMetric::ServerCpuPerEvent);
        let mut wall: Vec<f64> = of.iter().filter_map(|g| g.wall_s).collect();
        wall.sort_by(f64::total_cmp);
        let mid = |v: &[f64]| v.get(v.len() / 2).copied();
        let _ = writeln!(
            md,
            "| `{a}` → `{b}` | {} | {} | {} | {} | {} | {} | {} | {} |",
            of.len(),
            count(&|g| g.verdict == Verdict::Pass),
            count(&|g| g.verdict == Verdict::Regressed),
            count(&|g| regressed_on(g, AbMetric::FanoutP95)),
            count(&|g| matches!(g.verdict, Verdict::Refused(_))),
            match (mid(&p95), p95.first(), p95.last()) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:+.0} % ({lo:+.0} … {hi:+.0} %)"),
                _ => "—".into(),
            },
            mid(&cpu).map_or_else(|| "—".into(), |m| format!("{m:+.0} %")),
            mid(&wall).map_or_else(|| "—".into(), |s| format!("{s:.0} s")),
        );
    }
    md.push('\n');
}

fn calibration_table(md: &mut String, c: &Calibration) {
    md.push_str(&c.markdown());
    md.push('\n');
}

fn sweep_table(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(
        md,
        "Capacity of `{}`{}:\n\n| configuration | max players under the SLO | ended by | knee |\n|---|---|---|---|",
        sweep.scenario,
        sweep
            .fanout_slo_ms
            .map_or_else(String::new, |slo| format!(" (p95 fan-out < {slo} ms)"))
    );
    for v in &sweep.verdicts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            v.label,
            v.max_players_under_slo
                .map_or_else(|| "—".into(), thousands),
            v.limit.text(),
            v.knee.map_or_else(|| "—".into(), thousands)
        );
    }
    md.push('\n');
    for v in &sweep.verdicts {
        let _ = writeln!(md, "> {}\n", v.sentence);
    }
    steps_table(md, sweep);
}

/// Every step of every configuration, in the order of players: what it
/// was judged on, what it measured, and each role's CPU.
fn steps_table(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(
        md,
        "| configuration | players | judged (s of the run) | fan-out p50 / p95 / p99 ms | errors | held | CPU, % of one core |\n|---|---|---|---|---|---|---|"
    );
    for config in &sweep.configs {
        for step in &config.steps {
            let cpu = step
                .bottleneck()
                .by_role
                .iter()
                .map(|(role, pct)| format!("{} {pct:.0}", role.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                md,
                "| {} | {} | {:.0}–{:.0} | {:.1} / {:.1} / {:.1} | {:.2} % | {} | {cpu} |",
                config.label,
                thousands(f64::from(step.offered)),
                step.judged_from_s,
                step.judged_to_s,
                step.fanout_p50_ms,
                step.fanout_p95_ms,
                step.fanout_p99_ms,
                step.error_rate_pct,
                if step.held { "yes" } else { "no" }
            );
        }
    }
    md.push('\n');
}

/// Puts `block` for `section` into `file`: in place of its old block, or
/// at the end when the file has none yet.
pub fn write_into(file: &Path, section: &str, block: &str) -> Result<(), ReportError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let open = format!("<!-- figures:{section} ");
    let close = format!("<!-- /figures:{section} -->\n");
    let new = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &text[..a], &text[b + close.len()..]),
        _ => format!(
            "{text}{}{block}",
            if text.ends_with("\n\n") || text.is_empty() {
                ""
            } else {
                "\n"
            }
        ),
    };
    std::fs::write(file, new).map_err(|source| ReportError::Write {
        path: file.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_replaces_its_old_self_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("doc.md");
        std::fs::write(&file, "# Doc\n\nText before.\n").unwrap();
        write_into(
            &file,
            "a",
            "<!-- figures:a x -->\none\n<!-- /figures:a -->\n",
        )
        .unwrap();
        std::fs::write(
            &file,
            std::fs::read_to_string(&file).unwrap() + "\nText after.\n",
        )
        .unwrap();
        write_into(
            &file,
            "a",
            "<!-- figures:a y -->\ntwo\n<!-- /figures:a -->\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("Text before.") && text.contains("Text after."));
        assert!(text.contains("two") && !text.contains("one"), "{text}");
    }

    #[test]
    fn a_drill_shows_what_its_fault_and_the_resends_cost() {
        let mut run = RunRecord::default();
        run.scenario.name = "redis-stall".into();
        run.scenario.text = "[behaviour]\nact_retries = 5\nidempotency_keys = false\n".into();
        run.errors.insert("unknown_outcome".into(), 349);
        run.checker.acked = 3479;
        run.checker.duplicated_acts = 349;
        run.faults.push(tierlab_record::FaultRecord {
            name: "redis stalled".into(),
            ..Default::default()
        });
        let md = block(
            "drills",
            "just drill redis-stall",
            &[Source::Run(Box::new(run))],
            &Context::default(),
        );
        assert!(
            md.contains("| redis-stall | up to 5, no keys | redis stalled | 349 / 0 | 3,479 | 0 | 349 | not within its window |"),
            "{md}"
        );
        assert_eq!(resends(""), "none");
        assert_eq!(resends("[behaviour]\nact_retries = 2\n"), "up to 2, keyed");
    }

    #[test]
    fn a_run_becomes_a_row_with_its_own_numbers() {
        let mut run = RunRecord::default();
        run.scenario.name = "generator".into();
        run.summary.fanout_ms.p95 = 6.49;
        run.summary.peak_players = 5000;
        run.generator.us_per_event = Some(10.84);
        let context = Context {
            date: "2026-12-01".into(),
            machine: Machine {
                hostname: "vm".into(),
                cores: 2,
                memory_mib: 24 * 1024,
                ..Machine::default()
            },
        };
        let md = block(
            "g",
            "just bench-generator",
            &[Source::Run(Box::new(run))],
            &context,
        );
        assert!(md.starts_with("<!-- figures:g "));
        assert!(md.contains("Measured 2026-12-01 on `vm` (2 cores, 24 GiB"));
        assert!(md.contains("by `just bench-generator`"));
        assert!(md.contains("| generator |") && md.contains("/ 6.49 /") && md.contains("| 10.8 |"));
        assert!(md.trim_end().ends_with("<!-- /figures:g -->"));
    }

    #[test]
    fn gates_become_trial_rows_and_a_tally_per_pair_of_builds() {
        use crate::ab::{Comparison, Verdict};
        let gate = |candidate: &str, p95: f64, verdict: Verdict| {
            let change = if verdict == Verdict::Regressed {
                Change::Regression
            } else {
                Change::NoChange
            };
            AbReport {
                scenario: "gate".into(),
                baseline: "bin:a".into(),
                candidate: candidate.into(),
                min_effect_pct: 10.0,
                max_steal_pct: crate::ab::DEFAULT_MAX_STEAL_PCT,
                runs: Vec::new(),
                comparisons: vec![Comparison {
                    metric: AbMetric::FanoutP95,
                    baseline: 1.0,
                    candidate: 1.0 + p95 / 100.0,
                    effect_pct: p95,
                    ci_pct: (p95 - 10.0, p95 + 10.0),
                    change,
                }],
                failed_slos: Vec::new(),
                verdict,
                started_at: String::new(),
                machine: String::new(),
                wall_s: Some(110.0),
            }
        };
        let sources = [
            gate("bin:a2", 1.0, Verdict::Pass),
            gate("bin:slow", 30.0, Verdict::Regressed),
            gate("bin:a2", -2.0, Verdict::Pass),
            gate("bin:slow", 20.0, Verdict::Regressed),
        ]
        .map(|g| Source::Ab(Box::new(g)));
        let md = block(
            "gate-proof",
            "just gate-proof",
            &sources,
            &Context::default(),
        );
        assert!(
            md.contains("| 2 | `bin:a` → `bin:slow` | 0 + 0 of 0 | +30 % (+20 … +40) **R** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `bin:a` → `bin:a2` | 2 | 2 | 0 | 0 | 0 | +1 % (-2 … +1 %) | — | 110 s |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `bin:a` → `bin:slow` | 2 | 0 | 2 | 2 | 0 | +30 % (+20 … +30 %) |"),
            "{md}"
        );
    }
}
