//! The one sentence a capacity search ends with: how many players a
//! configuration held on this machine with every SLO met, what broke at the
//! next step, and which resource was full there (see `bottleneck`).

use super::step::{Config, Limit, Step};
use crate::report::thousands;

/// "tier2 (3x-redis) holds 5,200 players on this machine (2 cores) with
/// p95(fanout) < 50ms, …; at 5,600 p95(fanout) was 212 ms; the 2 cores were
/// full: …".
pub fn sentence(scenario: &str, config: &Config) -> String {
    let who = format!("{scenario} ({})", config.label);
    let fail = config.first_failure();
    let pass = config.last_pass();
    let slos = |s: &Step| {
        s.slo
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (config.limit, pass, fail) {
        (Limit::Generator, _, _) => {
            let at = config.steps.iter().find(|s| s.generator_saturated);
            format!(
                "{who}: the generator saturated at {} players before the system broke, so no capacity is named: run the generator on a machine of its own (tierlab run --shard)",
                at.map_or_else(|| "?".to_owned(), |s| thousands(s.players))
            )
        }
        (Limit::MaxPlayers, Some(top), _) => format!(
            "{who} held every step up to {} players, the search's top (capacity.max_players), with {}: its capacity is higher; at the top {}",
            thousands(top.players),
            slos(top),
            top.bottleneck().sentence()
        ),
        (_, Some(pass), Some(fail)) => format!(
            "{who} holds {} players on this machine ({} cores) with {}; at {} {}; {}",
            thousands(pass.players),
            fail.cores,
            slos(pass),
            thousands(f64::from(fail.offered)),
            broken(fail),
            fail.bottleneck().sentence()
        ),
        (_, None, Some(fail)) => format!(
            "{who} held no step, down to {} players: {}; {}",
            thousands(f64::from(fail.offered)),
            broken(fail),
            fail.bottleneck().sentence()
        ),
        _ => format!("{who}: no step was measured"),
    }
}

/// "p95(fanout) was 212 ms (limit < 50ms), errors was 3.1 % (…)".
fn broken(step: &Step) -> String {
    let broke: Vec<String> = step
        .slo
        .iter()
        .filter(|v| !v.pass)
        .map(|v| {
            let unit = if v.threshold.ends_with("ms") {
                " ms"
            } else if v.threshold.ends_with('%') {
                " %"
            } else {
                ""
            };
            format!(
                "{} was {:.1}{unit} (limit {})",
                v.name
                    .split(['<', '>', '='])
                    .next()
                    .unwrap_or(&v.name)
                    .trim(),
                v.measured,
                v.threshold
            )
        })
        .collect();
    if broke.is_empty() {
        format!("errors were {:.2} %", step.error_rate_pct)
    } else {
        broke.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::step::sample_step;
    use super::*;
    use tierlab_record::SloVerdict;

    fn judged(players: f64, p95: f64) -> Step {
        let mut s = sample_step(players, p95, p95 < 50.0);
        s.slo = vec![SloVerdict {
            name: "p95(fanout) < 50ms".into(),
            threshold: "< 50ms".into(),
            measured: p95,
            pass: p95 < 50.0,
        }];
        s
    }

    fn config(steps: Vec<Step>, limit: Limit) -> Config {
        let mut c = Config {
            label: "3x-redis".into(),
            replicas: 3,
            state: "redis".into(),
            steps: Vec::new(),
            limit,
        };
        for s in steps {
            c.push(s);
        }
        c
    }

    #[test]
    fn the_sentence_names_what_held_what_broke_and_what_was_full() {
        let c = config(
            vec![
                judged(4000.0, 5.0),
                judged(5600.0, 212.0),
                judged(5200.0, 30.0),
            ],
            Limit::Slo,
        );
        let text = sentence("tier2", &c);
        assert!(
            text.starts_with("tier2 (3x-redis) holds 5,200 players on this machine (2 cores) with p95(fanout) < 50ms; at 5,600 p95(fanout) was 212.0 ms (limit < 50ms); "),
            "{text}"
        );
        assert!(text.contains("% of one core"), "{text}");
    }

    #[test]
    fn a_pass_above_the_lowest_failure_is_not_the_capacity() {
        let c = config(
            vec![
                judged(4000.0, 5.0),
                judged(4800.0, 80.0),
                judged(5200.0, 30.0),
            ],
            Limit::Slo,
        );
        assert_eq!(c.max_players_under_slo(), Some(4000.0));
        assert!(sentence("t", &c).contains("holds 4,000 players"));
    }

    #[test]
    fn an_unbroken_search_says_its_capacity_is_higher() {
        let c = config(vec![judged(4000.0, 5.0)], Limit::MaxPlayers);
        assert!(sentence("t", &c).contains("its capacity is higher"));
    }
}
