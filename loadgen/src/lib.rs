//! `tierlab`, the scenario-driven swarm: scenario files, the topology it
//! starts, virtual players, measurements and the delivery checker; the run
//! record itself is the `tierlab-record` crate. The binary (`src/main.rs`)
//! is a thin CLI over [`run::run`] and the other commands.

pub mod ab;
pub mod calibrate;
pub mod capacity;
pub mod checker;
pub mod compare;
pub mod drill;
pub mod http;
pub mod lane;
pub mod merge;
pub mod player;
pub mod probe;
pub mod progress;
pub mod proxy;
pub mod run;
pub mod run_log;
pub mod sampler;
pub mod scenario;
pub mod shape;
pub mod shard;
pub mod socketio;
pub mod stats;
pub mod topology;
pub mod usage;
pub mod wallclock;
pub mod wire;
