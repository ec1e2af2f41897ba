//! What stopped a capacity step: from the CPU each process used while the
//! step was held (the sampler's per-second figures), whether the machine's
//! cores were full, one single-threaded process was (Redis, HAProxy), or
//! nothing was — and whether the generator's share of cores it shares with
//! the system makes the capacity found a lower bound.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Busy cores at or above this share of the machine count as full: a
/// sampler second is coarse and the kernel's own work is not in any
/// process, so "full" never reads 100 %.
pub const CORES_FULL: f64 = 0.85;
/// A single-threaded process at or above this % of one core is full.
pub const THREAD_FULL_PCT: f64 = 90.0;
/// The generator's share of the CPU used above which, when cores were the
/// limit, the capacity found is a lower bound: a generator on a machine of
/// its own would leave the system that much more.
pub const GENERATOR_SHARE: f64 = 0.15;

/// The kinds of process a topology has, as a capacity verdict names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Haproxy,
    Replicas,
    Generator,
    Redis,
    /// Sentinels, fault proxies, peers of other kinds.
    Other,
}

impl Role {
    pub fn of(process: &str) -> Role {
        match process {
            "haproxy" => Role::Haproxy,
            "generator" => Role::Generator,
            p if p.starts_with("srv-") => Role::Replicas,
            p if p.starts_with("redis") && !p.contains("sentinel") => Role::Redis,
            _ => Role::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Haproxy => "HAProxy",
            Role::Replicas => "replicas",
            Role::Generator => "generator",
            Role::Redis => "Redis",
            Role::Other => "other",
        }
    }

    /// Runs one thread, so one core is its ceiling (HAProxy as the local
    /// topology configures it runs one too).
    fn single_threaded(self) -> bool {
        matches!(self, Role::Redis | Role::Haproxy)
    }
}

/// What was full while a step was held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Saturated {
    /// Every core was busy.
    Cores,
    /// One single-threaded process used its one core.
    Thread { process: String },
    /// Nothing was full: the limit is inside the system (queues, locks,
    /// round trips), not a resource this sampler sees.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    pub saturated: Saturated,
    /// % of one core by role, busiest first.
    pub by_role: Vec<(Role, f64)>,
    /// Cores busy / cores, 0..1.
    pub busy: f64,
    pub cores: usize,
    /// The generator took enough of the shared cores that the system
    /// alone would hold more.
    pub lower_bound: bool,
}

impl Bottleneck {
    /// From the median CPU of each process (% of one core) during a step's
    /// hold, on a machine of `cores`.
    pub fn of(cpu_pct: &BTreeMap<String, f64>, cores: usize) -> Bottleneck {
        let mut roles: BTreeMap<Role, f64> = BTreeMap::new();
        for (process, pct) in cpu_pct {
            *roles.entry(Role::of(process)).or_default() += pct;
        }
        let used: f64 = roles.values().sum();
        let busy = used / (cores.max(1) as f64 * 100.0);
        let thread = cpu_pct
            .iter()
            .filter(|(p, pct)| Role::of(p).single_threaded() && **pct >= THREAD_FULL_PCT)
            .max_by(|a, b| a.1.total_cmp(b.1));
        let saturated = if busy >= CORES_FULL {
            Saturated::Cores
        } else if let Some((process, _)) = thread {
            Saturated::Thread {
                process: process.clone(),
            }
        } else {
            Saturated::Nothing
        };
        let generator = roles.get(&Role::Generator).copied().unwrap_or(0.0);
        let lower_bound =
            saturated == Saturated::Cores && used > 0.0 && generator / used >= GENERATOR_SHARE;
        let mut by_role: Vec<(Role, f64)> = roles.into_iter().collect();
        by_role.sort_by(|a, b| b.1.total_cmp(&a.1));
        Bottleneck {
            saturated,
            by_role,
            busy,
            cores,
            lower_bound,
        }
    }

    /// "the cores were full: HAProxy 66 %, replicas 79 %, … (of one core
    /// each)", and the lower-bound clause when it applies.
    pub fn sentence(&self) -> String {
        let shares = self
            .by_role
            .iter()
            .filter(|(_, pct)| *pct >= 0.5)
            .map(|(role, pct)| format!("{} {pct:.0} %", role.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let what = match &self.saturated {
            Saturated::Cores => format!("the {} cores were full", self.cores),
            Saturated::Thread { process } => {
                format!("{process}'s one thread was full")
            }
            Saturated::Nothing => format!(
                "no core was full ({:.0} % of {} busy): the limit is inside the system, not its CPU",
                self.busy * 100.0,
                self.cores
            ),
        };
        let bound = if self.lower_bound {
            "; the generator shares these cores, so the capacity is a lower bound"
        } else {
            ""
        };
        format!("{what}: {shares} (% of one core){bound}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
    }

    #[test]
    fn full_cores_name_every_role_and_a_heavy_generator_makes_a_lower_bound() {
        let b = Bottleneck::of(
            &cpu(&[
                ("haproxy", 66.0),
                ("srv-1", 27.0),
                ("srv-2", 26.0),
                ("srv-3", 26.0),
                ("generator", 34.0),
                ("redis", 14.0),
            ]),
            2,
        );
        assert_eq!(b.saturated, Saturated::Cores);
        assert!(b.lower_bound);
        assert_eq!(
            b.sentence(),
            "the 2 cores were full: replicas 79 %, HAProxy 66 %, generator 34 %, Redis 14 % (% of one core); the generator shares these cores, so the capacity is a lower bound"
        );
    }

    #[test]
    fn a_full_redis_thread_is_named_when_cores_are_not_full() {
        let b = Bottleneck::of(
            &cpu(&[("redis", 97.0), ("srv-1", 30.0), ("generator", 10.0)]),
            4,
        );
        assert_eq!(
            b.saturated,
            Saturated::Thread {
                process: "redis".into()
            }
        );
        assert!(!b.lower_bound, "cores were not the limit");
    }

    #[test]
    fn idle_cores_say_the_limit_is_elsewhere() {
        let b = Bottleneck::of(&cpu(&[("srv-1", 40.0), ("generator", 20.0)]), 2);
        assert_eq!(b.saturated, Saturated::Nothing);
        assert!(
            b.sentence()
                .starts_with("no core was full (30 % of 2 busy)"),
            "{}",
            b.sentence()
        );
    }

    #[test]
    fn sentinels_are_not_redis() {
        assert_eq!(Role::of("redis-sentinel-1"), Role::Other);
        assert_eq!(Role::of("redis-2"), Role::Redis);
    }
}
