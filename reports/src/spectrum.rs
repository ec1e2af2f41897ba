//! Latency percentile spectra from a run's `latency.hlog`: every interval of
//! a tag added into one histogram (exact, not averaged percentiles), then
//! read at "1 in N" points as HdrHistogram's plots do.

use std::path::Path;

use hdrhistogram::Histogram;
use tierlab_record::hlog;

use crate::ReportError;

/// One metric's spectrum: (1 in N, ms) from the median outwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    pub metric: String,
    pub count: u64,
    pub points: Vec<(f64, f64)>,
}

/// The spectra of every tag in `dir/latency.hlog`, in tag order of first
/// appearance.
pub fn read(dir: &Path) -> Result<Vec<Spectrum>, ReportError> {
    let (_, intervals) = hlog::read(&dir.join(hlog::FILE))?;
    let mut merged: Vec<(String, Histogram<u64>)> = Vec::new();
    for interval in &intervals {
        match merged.iter_mut().find(|(tag, _)| *tag == interval.tag) {
            Some((tag, total)) => total
                .add(&interval.histogram)
                .map_err(|e| ReportError::Histogram(format!("{tag}: {e:?}")))?,
            None => merged.push((interval.tag.clone(), interval.histogram.clone())),
        }
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
