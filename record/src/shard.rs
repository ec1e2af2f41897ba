//! What a sharded run's record says of its workers: which slices it holds,
//! how late each began, and, with cross-worker rooms, the one-way delivery
//! times between workers and the clock skew they imply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a worker's (or a merged) `run.json` says about its slices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// The slices this record holds: one for a worker, several once merged.
    pub indices: Vec<u32>,
    pub count: u32,
    /// When the workers were told to start (unix seconds), if they were.
    #[serde(default)]
    pub start_at: Option<f64>,
    /// Per slice, how late its worker began after `start_at` (ms): clock
    /// skew between the machines plus start-up.
    #[serde(default)]
    pub start_skew_ms: BTreeMap<String, f64>,
    /// Cross-worker rooms: the median one-way delivery (ms) of events sent
    /// on worker I and received on worker J, keyed `I->J`, each end timed
    /// on its own clock.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delivery_ms: BTreeMap<String, f64>,
    /// Worker J's clock against worker I's, keyed `I-J` (ms, J ahead when
    /// positive), where deliveries went both ways: the network's share of
    /// the two directions cancels if it is symmetric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clock_skew_ms: BTreeMap<String, f64>,
}

impl ShardInfo {
    /// Records what worker `me` measured of deliveries from each worker
    /// (signed one-way µs), and estimates the skew again.
    pub fn add_deliveries(&mut self, me: u32, from_worker: &BTreeMap<u32, Vec<i64>>) {
        for (from, samples) in from_worker {
            if let Some(median) = median_us(samples) {
                self.delivery_ms
                    .insert(format!("{from}->{me}"), median / 1000.0);
            }
        }
        self.estimate_skew();
    }

    /// Adds another record's slices; refuses slices of another split or a
    /// slice held twice.
    pub fn absorb(&mut self, other: &ShardInfo) -> Result<(), String> {
        if self.count != 0 && other.count != self.count {
            return Err(format!(
                "slices of {} and of {} workers",
                self.count, other.count
            ));
        }
        self.count = other.count;
        self.start_at = self.start_at.or(other.start_at);
        for index in &other.indices {
            if self.indices.contains(index) {
                return Err(format!("slice {index} twice"));
            }
            self.indices.push(*index);
        }
        self.indices.sort_unstable();
        self.start_skew_ms.extend(other.start_skew_ms.clone());
        self.delivery_ms.extend(other.delivery_ms.clone());
        self.estimate_skew();
        Ok(())
    }

    /// Whether every slice of the split is here.
    pub fn complete(&self) -> bool {
        self.indices.len() == self.count as usize
    }

    /// `clock_skew_ms` from `delivery_ms`: (d(I→J) − d(J→I)) / 2.
    pub fn estimate_skew(&mut self) {
        self.clock_skew_ms.clear();
        for (pair, there) in &self.delivery_ms {
            let Some((i, j)) = pair.split_once("->") else {
                continue;
            };
            let (Ok(a), Ok(b)) = (i.parse::<u32>(), j.parse::<u32>()) else {
                continue;
            };
            if a >= b {
                continue;
            }
            if let Some(back) = self.delivery_ms.get(&format!("{b}->{a}")) {
                self.clock_skew_ms
                    .insert(format!("{a}-{b}"), (there - back) / 2.0);
            }
        }
    }
}

fn median_us(samples: &[i64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).map(|&m| m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_absorb_once_each() {
        let worker = |i: u32| ShardInfo {
            indices: vec![i],
            count: 3,
            ..ShardInfo::default()
        };
        let mut merged = ShardInfo::default();
        for i in [2, 0, 1] {
            merged.absorb(&worker(i)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(merged.indices, [0, 1, 2]);
        assert!(merged.complete());
        assert_eq!(merged.absorb(&worker(1)), Err("slice 1 twice".into()));
        let other = ShardInfo {
            indices: vec![0],
            count: 2,
            ..ShardInfo::default()
        };
        assert!(merged.absorb(&other).is_err());
    }

    #[test]
    fn skew_comes_from_deliveries_both_ways() {
        // Worker 1's clock is 100 ms ahead; the network takes 5 ms each way.
        let mut info = ShardInfo::default();
        let from = |pairs: &[(u32, i64)]| {
            pairs
                .iter()
                .map(|&(w, us)| (w, vec![us; 3]))
                .collect::<BTreeMap<_, _>>()
        };
        info.add_deliveries(0, &from(&[(0, 5_000), (1, -95_000)]));
        assert!(info.clock_skew_ms.is_empty(), "one direction only");
        info.add_deliveries(1, &from(&[(0, 105_000), (1, 5_000)]));
        assert_eq!(info.delivery_ms["1->0"], -95.0);
        assert_eq!(info.clock_skew_ms.len(), 1);
        assert!((info.clock_skew_ms["0-1"] - 100.0).abs() < 1e-9);
    }
}
