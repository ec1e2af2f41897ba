//! The statistics of one interval (a second, or a whole run): one HDR
//! histogram per [`Latency`], acts, deliveries and errors by kind. Windows
//! add exactly with `+=`, which is how seconds fold into a run and workers'
//! runs into one; [`Percentiles`] is what run.json keeps of a histogram.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::Latency;

/// Latencies are recorded in microseconds, 1 µs to 10 min, 3 significant digits.
const MAX_US: u64 = 600_000_000;

/// An empty latency histogram with the bounds every window uses.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|e| unreachable!("{e}"))
}

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Counters and histograms of one interval (or of the whole run).
#[derive(Debug, Clone)]
pub struct Window {
    latencies: [Histogram<u64>; Latency::ALL.len()],
    pub acts: u64,
    pub deliveries: u64,
    /// By kind (`connect`, `session_expired`, a server's error code, …).
    pub errors: BTreeMap<String, u64>,
}

impl Window {
    pub fn new() -> Window {
        Window {
            latencies: Latency::ALL.map(|_| histogram()),
            acts: 0,
            deliveries: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Records one latency of `us` microseconds (at least 1).
    pub fn record(&mut self, latency: Latency, us: u64) {
        self.latencies[latency.index()].saturating_record(us.max(1));
    }

    /// Counts one error of `kind`; allocates only for a kind not seen yet.
    pub fn error(&mut self, kind: &str) {
        match self.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(kind.to_owned(), 1);
            }
        }
    }

    pub fn latency(&self, latency: Latency) -> &Histogram<u64> {
        &self.latencies[latency.index()]
    }

    /// Adds a histogram of `latency` read from elsewhere (an interval log).
    pub fn add(&mut self, latency: Latency, h: &Histogram<u64>) -> Result<(), String> {
        self.latencies[latency.index()]
            .add(h)
            .map_err(|e| format!("{latency}: {e:?}"))
    }

    /// Each latency with its histogram, in [`Latency::ALL`]'s order.
    pub fn latencies(&self) -> impl Iterator<Item = (Latency, &Histogram<u64>)> {
        Latency::ALL.into_iter().zip(&self.latencies)
    }

    pub fn percentiles(&self, latency: Latency) -> Percentiles {
        Percentiles::of(self.latency(latency))
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Connects, joins and acts: what the error rate is a share of.
    pub fn operations(&self) -> u64 {
        self.acts + self.latency(Latency::Connect).len() + self.latency(Latency::Join).len()
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl std::ops::AddAssign<&Window> for Window {
    fn add_assign(&mut self, other: &Window) {
        for (mine, theirs) in self.latencies.iter_mut().zip(&other.latencies) {
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.add(theirs);
        }
        self.acts += other.acts;
        self.deliveries += other.deliveries;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_merge_exactly() {
        let (mut a, mut b) = (Window::new(), Window::new());
        for us in [100, 200, 300] {
            a.record(Latency::Fanout, us);
        }
        for us in [400, 500] {
            b.record(Latency::Fanout, us);
        }
        a.acts = 3;
        b.acts = 2;
        b.error("room_full");
        let mut total = Window::new();
        total += &a;
        total += &b;
        assert_eq!(total.latency(Latency::Fanout).len(), 5);
        assert_eq!(total.acts, 5);
        assert_eq!(total.errors_total(), 1);
        let p = total.percentiles(Latency::Fanout);
        assert!((p.max - 0.5).abs() < 0.001, "{p:?}");
        assert!((p.p50 - 0.3).abs() < 0.001, "{p:?}");
    }

    #[test]
    fn operations_are_acts_connects_and_joins() {
        let mut w = Window::new();
        w.acts = 4;
        w.record(Latency::Connect, 10);
        w.record(Latency::Join, 10);
        w.record(Latency::Fanout, 10);
        assert_eq!(w.operations(), 6);
    }
}
