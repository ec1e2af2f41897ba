//! Service-level objectives as written in scenarios —
//! `p95(fanout) < 50ms`, `p99(ack) < 100ms`, `errors < 1%`, `lost = 0` —
//! parsed once into a [`Metric`], and judged on a run's record: latencies at
//! the exact percentile of the run's histograms, never a neighbouring one.

use std::fmt;

use crate::{Count, Latency, RunRecord, SloVerdict, Window};

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Percentile(f64),
    Max,
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency, in ms.
    Latency(Stat, Latency),
    /// Errors as a share of operations (connects, joins, acts), in percent.
    ErrorRate,
    /// A count from the delivery checker.
    Count(Count),
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

/// An objective that no run can fail, or none can meet, judges nothing:
/// `lost < 0`, `p95(fanout) < -1ms`, `errors < 150%` are refused, saying why.
fn within_reach(metric: Metric, comparison: Comparison, threshold: f64) -> Result<(), String> {
    if !threshold.is_finite() {
        return Err("the threshold is not a finite number".into());
    }
    let (what, top) = match metric {
        Metric::Latency(..) => ("a latency", f64::INFINITY),
        Metric::ErrorRate => ("an error share", 100.0),
        Metric::Count(_) => ("a count", f64::INFINITY),
    };
    if threshold < 0.0 {
        return Err(format!(
            "{what} is never negative: this objective judges nothing"
        ));
    }
    if threshold > top {
        return Err(format!(
            "{what} is at most {top} %: this objective judges nothing"
        ));
    }
    if matches!(metric, Metric::Count(_)) && threshold.fract() != 0.0 {
        return Err("counts are whole numbers: lost = 0, duplicated < 10".into());
    }
    let never = match comparison {
        Comparison::Lt => threshold == 0.0,
        Comparison::Gt => threshold == top,
        _ => false,
    };
    let always = match comparison {
        Comparison::Ge => threshold == 0.0,
        Comparison::Le => threshold == top,
        _ => false,
    };
    if never {
        return Err(format!(
            "{what} can never be {} {threshold}: no run could pass",
            comparison.symbol()
        ));
    }
    if always {
        return Err(format!(
            "{what} is always {} {threshold}: no run could fail",
            comparison.symbol()
        ));
    }
    Ok(())
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
        within_reach(metric, comparison, threshold).map_err(|m| fail(&m))?;
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

    /// What the objective measures in `record`, whose latencies are `totals`.
    pub fn measure(&self, record: &RunRecord, totals: &Window) -> f64 {
        match self.metric {
            Metric::Latency(stat, latency) => {
                let h = totals.latency(latency);
                let us = match stat {
                    Stat::Max => h.max(),
                    Stat::Percentile(q) => h.value_at_quantile(q / 100.0),
                };
                if h.is_empty() {
                    0.0
                } else {
                    us as f64 / 1000.0
                }
            }
            Metric::ErrorRate => record.summary.error_rate_pct,
            Metric::Count(count) => record.checker.count(count) as f64,
        }
    }

    pub fn judge(&self, record: &RunRecord, totals: &Window) -> SloVerdict {
        let measured = self.measure(record, totals);
        SloVerdict {
            name: self.text.clone(),
            threshold: self.threshold_text(),
            measured,
            pass: self.holds(measured),
        }
    }

    /// The `p95(fanout)` threshold in ms among `slos`, if there is one.
    pub fn fanout_p95_ms(slos: &[Slo]) -> Option<f64> {
        slos.iter().find_map(|slo| match slo.metric {
            Metric::Latency(Stat::Percentile(q), Latency::Fanout) if (q - 95.0).abs() < 1e-9 => {
                Some(slo.threshold)
            }
            _ => None,
        })
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
    if let Ok(count) = lhs.parse::<Count>() {
        return Ok(Metric::Count(count));
    }
    let (stat, rest) = lhs.split_once('(').ok_or_else(|| {
        format!("unknown metric `{lhs}`; use p95(fanout), max(ack), errors, lost, duplicated, reordered")
    })?;
    let name = rest
        .strip_suffix(')')
        .ok_or_else(|| "missing `)`".to_owned())?
        .trim();
    let latency: Latency = name.parse()?;
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
    Ok(Metric::Latency(stat, latency))
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
mod tests;
