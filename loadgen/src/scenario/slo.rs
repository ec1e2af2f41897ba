//! Service-level objectives as written in scenarios —
//! `p95(fanout) < 50ms`, `p99(ack) < 100ms`, `errors < 1%`, `lost = 0` —
//! parsed once, evaluated against a run's measurements.

use std::fmt;

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Percentile(f64),
    Max,
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency (ms): `fanout`, `ack`, `connect`, `join`.
    Latency(Stat, &'static str),
    /// Errors as a share of operations (connects, joins, acts), in percent.
    ErrorRate,
    /// A count from the delivery checker: `lost`, `duplicated`, `reordered`.
    Count(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Comparison {
    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Comparison::Lt => measured < threshold,
            Comparison::Le => measured <= threshold,
            Comparison::Eq => measured == threshold,
            Comparison::Ge => measured >= threshold,
            Comparison::Gt => measured > threshold,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "=",
            Comparison::Ge => ">=",
            Comparison::Gt => ">",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub text: String,
    pub metric: Metric,
    pub comparison: Comparison,
    /// In the metric's unit: ms, percent, or a count.
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {message}")]
pub struct SloError {
    text: String,
    message: String,
}

const LATENCIES: [&str; 4] = ["fanout", "ack", "connect", "join"];
const COUNTS: [&str; 3] = ["lost", "duplicated", "reordered"];

impl Slo {
    pub fn parse(text: &str) -> Result<Slo, SloError> {
        let fail = |message: &str| SloError {
            text: text.to_owned(),
            message: message.to_owned(),
        };
        let (lhs, comparison, rhs) = split_comparison(text)
            .ok_or_else(|| fail("expected `<metric> <op> <value>` with op one of < <= = >= >"))?;
        let metric = parse_metric(lhs.trim()).map_err(|m| fail(&m))?;
        let rhs = rhs.trim();
        let threshold = match metric {
            Metric::Latency(..) => parse_ms(rhs)
                .ok_or_else(|| fail("latency thresholds need a unit: 50ms, 1.5s, 800us"))?,
            Metric::ErrorRate => rhs
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .ok_or_else(|| fail("error thresholds are percentages: errors < 1%"))?,
            Metric::Count(_) => rhs
                .parse::<f64>()
                .map_err(|_| fail("counts compare to a number: lost = 0"))?,
        };
        Ok(Slo {
            text: text.trim().to_owned(),
            metric,
            comparison,
            threshold,
        })
    }

    pub fn holds(&self, measured: f64) -> bool {
        self.comparison.holds(measured, self.threshold)
    }

    /// The threshold as people write it (`< 50ms`).
    pub fn threshold_text(&self) -> String {
        let unit = match self.metric {
            Metric::Latency(..) => "ms",
            Metric::ErrorRate => "%",
            Metric::Count(_) => "",
        };
        format!("{} {}{unit}", self.comparison.symbol(), self.threshold)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_comparison(text: &str) -> Option<(&str, Comparison, &str)> {
    for (symbol, comparison) in [
        ("<=", Comparison::Le),
        (">=", Comparison::Ge),
        ("<", Comparison::Lt),
        (">", Comparison::Gt),
        ("=", Comparison::Eq),
    ] {
        if let Some((lhs, rhs)) = text.split_once(symbol) {
            let rhs = rhs
                .strip_prefix('=')
                .filter(|_| symbol == "=")
                .unwrap_or(rhs);
            return Some((lhs, comparison, rhs));
        }
    }
    None
}

fn parse_metric(lhs: &str) -> Result<Metric, String> {
    if lhs == "errors" {
        return Ok(Metric::ErrorRate);
    }
    if let Some(count) = COUNTS.iter().find(|c| **c == lhs) {
        return Ok(Metric::Count(count));
    }
    let (stat, rest) = lhs
        .split_once('(')
        .ok_or_else(|| format!("unknown metric `{lhs}`; use p95(fanout), max(ack), errors, lost, duplicated, reordered"))?;
    let name = rest
        .strip_suffix(')')
        .ok_or_else(|| "missing `)`".to_owned())?
        .trim();
    let name = LATENCIES.iter().find(|l| **l == name).ok_or_else(|| {
        format!(
            "unknown latency `{name}`; use one of {}",
            LATENCIES.join(", ")
        )
    })?;
    let stat = match stat.trim() {
        "max" => Stat::Max,
        p => {
            let value: f64 = p
                .strip_prefix('p')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    format!("unknown statistic `{p}`; use p50, p95, p99, p99.9 or max")
                })?;
            if !(0.0..=100.0).contains(&value) {
                return Err("percentiles are between p0 and p100".into());
            }
            Stat::Percentile(value)
        }
    };
    Ok(Metric::Latency(stat, name))
}

/// `50ms`, `1.5s`, `800us` → milliseconds.
fn parse_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let factor = match unit.trim() {
        "us" | "µs" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        let p95 = Slo::parse("p95(fanout) < 50ms").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p95.metric,
            Metric::Latency(Stat::Percentile(95.0), "fanout")
        );
        assert_eq!((p95.comparison, p95.threshold), (Comparison::Lt, 50.0));
        assert!(p95.holds(49.9) && !p95.holds(50.0));
        let ack = Slo::parse("p99.9(ack) <= 1.5s").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ack.threshold, 1500.0);
        assert_eq!(ack.comparison, Comparison::Le);
        let errors = Slo::parse("errors < 1%").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((errors.metric, errors.threshold), (Metric::ErrorRate, 1.0));
        let lost = Slo::parse("lost = 0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lost.metric, Metric::Count("lost"));
        assert!(lost.holds(0.0) && !lost.holds(1.0));
        assert_eq!(
            Slo::parse("max(join) < 800us").map(|s| s.threshold),
            Ok(0.8)
        );
        assert_eq!(
            Slo::parse("lost == 0").map(|s| s.comparison),
            Ok(Comparison::Eq)
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("p95(fanout) 50ms", "expected"),
            ("p95(latency) < 50ms", "unknown latency"),
            ("q95(ack) < 50ms", "unknown statistic"),
            ("p95(ack) < 50", "unit"),
            ("errors < 1", "percentages"),
            ("lost = none", "number"),
            ("speed < 3", "unknown metric"),
        ] {
            let err = Slo::parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
