//! Latency percentile spectra from a run's `latency.hlog`: every interval of
//! a tag added into one histogram (exact, not averaged percentiles), then
//! read at "1 in N" points as HdrHistogram's plots do.

use std::path::Path;

use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::ReportError;

/// One metric's spectrum: (1 in N, ms) from the median outwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    pub metric: String,
    pub count: u64,
    pub points: Vec<(f64, f64)>,
}

/// One interval of a histogram log.
#[derive(Debug, Clone)]
pub struct Interval {
    pub tag: String,
    /// Seconds since the log's BaseTime.
    pub start: f64,
    pub histogram: Histogram<u64>,
}

/// Every interval of the log at `path`, and its BaseTime (unix seconds).
pub fn read_log(path: &Path) -> Result<(f64, Vec<Interval>), ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |e: String| ReportError::Histogram(format!("{}: {e}", path.display()));
    let mut base = 0.0;
    let mut intervals = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let interval = match entry {
            Ok(LogEntry::BaseTime(t)) => {
                base = t.as_secs_f64();
                continue;
            }
            Ok(LogEntry::Interval(interval)) => interval,
            _ => continue,
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| bad(e.to_string()))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut raw.as_slice())
            .map_err(|e| bad(format!("{e:?}")))?;
        intervals.push(Interval {
            tag: interval.tag().map_or("untagged", |t| t.as_str()).to_owned(),
            start: interval.start_timestamp().as_secs_f64(),
            histogram,
        });
    }
    Ok((base, intervals))
}

/// Adds `histogram` into the total kept for `tag`.
pub fn add_to(
    totals: &mut Vec<(String, Histogram<u64>)>,
    tag: &str,
    histogram: &Histogram<u64>,
) -> Result<(), ReportError> {
    match totals.iter_mut().find(|(t, _)| t == tag) {
        Some((_, total)) => total
            .add(histogram)
            .map_err(|e| ReportError::Histogram(format!("{tag}: {e:?}"))),
        None => {
            totals.push((tag.to_owned(), histogram.clone()));
            Ok(())
        }
    }
}

/// The spectra of every tag in `dir/latency.hlog`, in tag order of first
/// appearance.
pub fn read(dir: &Path) -> Result<Vec<Spectrum>, ReportError> {
    let (_, intervals) = read_log(&dir.join("latency.hlog"))?;
    let mut merged: Vec<(String, Histogram<u64>)> = Vec::new();
    for interval in &intervals {
        add_to(&mut merged, &interval.tag, &interval.histogram)?;
    }
    Ok(merged
        .into_iter()
        .map(|(metric, h)| Spectrum {
            metric,
            count: h.len(),
            points: points(&h),
        })
        .collect())
}

/// Percentiles at 1 in 2, … up to 1 in `count` (values in µs → ms).
pub fn points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for step in 0..=60 {
        // Ten points per decade of "1 in N".
        let one_in = 2.0 * 10f64.powf(f64::from(step) / 10.0);
        if one_in > h.len() as f64 {
            break;
        }
        let quantile = 1.0 - 1.0 / one_in;
        out.push((one_in, h.value_at_quantile(quantile) as f64 / 1000.0));
    }
    if !h.is_empty() {
        out.push((h.len() as f64, h.max() as f64 / 1000.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_run_from_the_median_to_the_max() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let points = points(&h);
        assert!((points[0].0 - 2.0).abs() < 1e-9);
        assert!((points[0].1 - 50.0).abs() < 0.1, "{:?}", points[0]);
        let last = points.last().unwrap();
        assert_eq!(last.0, 10_000.0);
        assert!((last.1 - 100.0).abs() < 0.1);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
