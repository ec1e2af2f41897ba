//! Load generation in slices: `tierlab run … --shard I/N` runs slice I of N
//! of a scenario's population — every Nth room, starting at room I, whole
//! (a room's members are never split over workers, so each worker's checker
//! sees every member of its rooms) — against one shared system, and
//! `--start-at` lines the workers' clocks up. `tierlab merge` (merge.rs)
//! adds the slices back into one run.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, TopologyKind};

/// Slice `index` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a shard like 0/3 (index from 0, below the count)");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What a worker's (or a merged) `run.json` says about its slices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// The slices this record holds: one for a worker, several once merged.
    pub indices: Vec<u32>,
    pub count: u32,
    /// When the workers were told to start (unix seconds), if they were.
    pub start_at: Option<f64>,
    /// Per slice, how late its worker began after `start_at` (ms): clock
    /// skew between the machines plus start-up.
    pub start_skew_ms: BTreeMap<String, f64>,
}

impl Shard {
    /// The rooms of this slice: those whose number ≡ index (mod count).
    pub fn rooms(&self, total: u32) -> u32 {
        (total + self.count - 1 - self.index) / self.count
    }

    /// `scenario` cut down to this slice: its rooms, the load shape scaled
    /// by its share of them, and the lobby traffic (lookups, health polls)
    /// on slice 0 only, so it is not multiplied by the number of workers.
    pub fn slice(&self, scenario: &Scenario) -> Result<Scenario, String> {
        if self.count > 1 && scenario.topology.kind != TopologyKind::External {
            return Err(format!(
                "--shard {}/{}: the workers of a sharded run share one system; use topology.kind = \"external\"",
                self.index, self.count
            ));
        }
        let total = scenario.population.rooms;
        let rooms = self.rooms(total);
        if rooms == 0 {
            return Err(format!(
                "--shard {}/{}: the scenario has only {total} room(s), none for this slice",
                self.index, self.count
            ));
        }
        let share = f64::from(rooms) / f64::from(total);
        let mut slice = scenario.clone();
        slice.population.rooms = rooms;
        for stage in &mut slice.load.stages {
            stage.to = (stage.to * share).round();
        }
        if self.index > 0 {
            slice.http.lookup_users = 0;
            slice.http.health_every = None;
        }
        Ok(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_index_and_count() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_room_is_in_exactly_one_slice() {
        for total in [1, 7, 10, 180] {
            for count in 1..=4 {
                let sum: u32 = (0..count)
                    .map(|index| Shard { index, count }.rooms(total))
                    .sum();
                assert_eq!(sum, total, "{total} rooms in {count} slices");
            }
        }
    }
}
