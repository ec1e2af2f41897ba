//! Load generation in slices: `tierlab run … --shard I/N` runs slice I of N
//! of a scenario's population against one shared system, and `--start-at`
//! lines the workers' clocks up. A slice is every Nth room, starting at room
//! I, whole — or, with `population.cross_worker`, every room with every Nth
//! member, so a room's senders and members sit on different workers; then
//! worker 0 creates the rooms and hands their codes to the others through
//! `--rooms FILE`. `tierlab merge` (merge.rs) adds the slices back into one
//! run.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
pub use tierlab_record::ShardInfo;

use crate::scenario::{Scenario, TopologyKind};

/// Why a slice of a run could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {}/{}: {message}", shard.index, shard.count)]
    Slice { shard: Shard, message: String },
    #[error("cannot write the rooms file {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no rooms from worker 0 in {path} within {} s (is worker 0 running with the same --start-at and --rooms?)", ROOMS_WITHIN.as_secs())]
    NoRooms { path: std::path::PathBuf },
}

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

/// The same `--start-at`: JSON parsing may move a float by its last bit.
fn same_start(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-3,
        (a, b) => a.is_none() && b.is_none(),
    }
}

impl Shard {
    /// The rooms of this slice: those whose number ≡ index (mod count).
    pub fn rooms(&self, total: u32) -> u32 {
        (total + self.count - 1 - self.index) / self.count
    }

    /// `scenario` cut down to this slice: its rooms, the load shape scaled
    /// by its share of them, and the lobby traffic (lookups, health polls)
    /// on slice 0 only, so it is not multiplied by the number of workers.
    pub fn slice(&self, scenario: &Scenario) -> Result<Scenario, ShardError> {
        if self.count > 1 && scenario.topology.kind != TopologyKind::External {
            return Err(self.refused(
                "the workers of a sharded run share one system; use topology.kind = \"external\""
                    .into(),
            ));
        }
        let mut slice = scenario.clone();
        let share = if scenario.population.cross_worker {
            self.members_of_every_room(&mut slice)?
        } else {
            self.whole_rooms(&mut slice)?
        };
        for stage in &mut slice.load.stages {
            stage.to = (stage.to * share).round();
        }
        if self.index > 0 {
            slice.http.lookup_users = 0;
            slice.http.health_every = None;
        }
        Ok(slice)
    }

    fn refused(&self, message: String) -> ShardError {
        ShardError::Slice {
            shard: *self,
            message,
        }
    }

    /// Every Nth room; returns this slice's share of the players.
    fn whole_rooms(&self, slice: &mut Scenario) -> Result<f64, ShardError> {
        let total = slice.population.rooms;
        let rooms = self.rooms(total);
        if rooms == 0 {
            return Err(self.refused(format!(
                "the scenario has only {total} room(s), none for this slice"
            )));
        }
        slice.population.rooms = rooms;
        Ok(f64::from(rooms) / f64::from(total))
    }

    /// Every room, with every Nth member; the rooms keep their full size.
    fn members_of_every_room(&self, slice: &mut Scenario) -> Result<f64, ShardError> {
        let population = &mut slice.population;
        let per_room = population.players_per_room;
        if !per_room.is_multiple_of(self.count) {
            return Err(self.refused(format!(
                "with population.cross_worker, players_per_room ({per_room}) must be a multiple of {}, so every worker holds the same share of each room",
                self.count
            )));
        }
        population.max_players = Some(population.max_players.unwrap_or(per_room));
        population.players_per_room = per_room / self.count;
        Ok(1.0 / f64::from(self.count))
    }
}

/// A room as worker 0 hands it to the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedRoom {
    pub code: String,
    pub ws_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RoomsFile {
    /// The run's `--start-at`, so a file left by an earlier run is not read.
    start_at: Option<f64>,
    rooms: Vec<SharedRoom>,
}

/// How long the other workers wait for worker 0's rooms.
const ROOMS_WITHIN: Duration = Duration::from_secs(120);

/// Worker 0: writes the rooms (whole, by rename) for the others.
pub fn hand_out_rooms(
    file: &Path,
    start_at: Option<f64>,
    rooms: Vec<SharedRoom>,
) -> Result<(), ShardError> {
    let failed = |source| ShardError::Write {
        path: file.to_owned(),
        source,
    };
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let partial = file.with_extension("partial");
    let text =
        serde_json::to_string(&RoomsFile { start_at, rooms }).map_err(|e| failed(e.into()))?;
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, file))
        .map_err(failed)
}

/// The other workers: waits (bounded) for the rooms of this run.
pub async fn take_rooms(
    file: &Path,
    start_at: Option<f64>,
    interrupt: &tokio_util::sync::CancellationToken,
) -> Result<Vec<SharedRoom>, ShardError> {
    let deadline = Instant::now() + ROOMS_WITHIN;
    loop {
        let current = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_json::from_str::<RoomsFile>(&text).ok())
            .filter(|found| same_start(found.start_at, start_at));
        if let Some(found) = current {
            return Ok(found.rooms);
        }
        if Instant::now() > deadline || interrupt.is_cancelled() {
            return Err(ShardError::NoRooms {
                path: file.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    fn cross_worker_slices_split_members_not_rooms() {
        let text = r#"
name = "x"
[topology]
kind = "external"
urls = ["ws://127.0.0.1:1/ws"]
[population]
rooms = 4
players_per_room = 6
cross_worker = true
[load]
stages = [{ to = 24, over = "1s" }]
max_duration = "10s"
[behaviour]
act_rate = 1.0
"#;
        let scenario = Scenario::parse(std::path::Path::new("x.toml"), text, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let slice = Shard { index: 1, count: 3 }.slice(&scenario).unwrap();
        assert_eq!(slice.population.rooms, 4);
        assert_eq!(slice.population.players_per_room, 2);
        assert_eq!(slice.population.max_players, Some(6));
        assert_eq!(slice.load.stages[0].to, 8.0);
        let err = Shard { index: 0, count: 4 }
            .slice(&scenario)
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of 4"), "{err}");
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
