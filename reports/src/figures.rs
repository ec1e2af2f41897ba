//! The figures in docs/: each a block of Markdown made from records by
//! `tierlab figures`, between `<!-- figures:NAME -->` markers a command
//! rewrites, and naming the date, the machine and the command that
//! measured it. No figure in the docs is typed by hand; `just
//! docs-figures` measures and writes them all again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tierlab_record::calibration::{self, Calibration};
use tierlab_record::{Machine, RunRecord};

use crate::ab::AbReport;
use crate::capacity::Sweep;
use crate::report::thousands;
use crate::{read_json, ReportError};

mod cost;
mod drills;
mod model;
mod trials;

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
    let mut md = String::new();
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
        drills::drills_table(&mut md, &runs);
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
        trials::trials_table(&mut md, &gates);
        trials::trials_tally(&mut md, &gates);
    }
    wrap(section, command, context, &md)
}

/// `body` as the block for `section`: between its markers, after the line
/// naming when, where and by what command it was measured.
pub fn wrap(section: &str, command: &str, context: &Context, body: &str) -> String {
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
    md.push_str(body);
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
    model::model_tables(md, sweep);
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
}
