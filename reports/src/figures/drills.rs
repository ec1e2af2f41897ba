//! The drills block: what each fault of a drill cost (the errors players
//! were answered, what was acked and lost, acts applied twice, when fan-out
//! came back) beside how the run's players resent refused acts.

use std::fmt::Write as _;

use tierlab_record::RunRecord;

use crate::report::thousands;

/// What each fault of a drill cost, and what the players' resends did.
pub(super) fn drills_table(md: &mut String, runs: &[&RunRecord]) {
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

/// How a run's players resent refused acts, read from its scenario text
/// (the scenario's defaults where it is silent: no resends, keyed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Resends {
    pub retries: i64,
    pub keyed: bool,
}

impl Resends {
    pub(super) fn of(scenario: &str) -> Self {
        let behaviour = scenario
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("behaviour").and_then(toml::Value::as_table).cloned())
            .unwrap_or_default();
        Self {
            retries: behaviour
                .get("act_retries")
                .and_then(toml::Value::as_integer)
                .unwrap_or(0),
            keyed: behaviour
                .get("idempotency_keys")
                .and_then(toml::Value::as_bool)
                .unwrap_or(true),
        }
    }
}

/// How the run's players resent refused acts, in words.
fn resends(scenario: &str) -> String {
    let Resends { retries, keyed } = Resends::of(scenario);
    match (retries, keyed) {
        (0, _) => "none".into(),
        (n, true) => format!("up to {n}, keyed"),
        (n, false) => format!("up to {n}, no keys"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{block, Context, Source};

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
}
