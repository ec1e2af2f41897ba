//! The generator's own CPU and memory, read from `/proc/self` — so a run can
//! tell when the generator, not the system, was the bottleneck — and what
//! machine it ran on.

use std::time::Instant;

use tierlab_record::Machine;

/// This machine: host name, cores this process may use, memory, OS, kernel.
pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    Machine {
        hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
        cores: cores(),
        memory_mib: memory_kib / 1024,
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU time of this process between calls, as % of one core, and the
/// machine's steal time (a hypervisor giving our cores to someone else).
#[derive(Debug)]
pub struct CpuClock {
    last_ticks: u64,
    last_at: Instant,
    ticks_per_second: f64,
    last_machine: (u64, u64),
}

/// (all ticks, steal ticks) of the machine, from the `cpu` line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (fields.iter().sum(), fields.get(7).copied().unwrap_or(0))
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of `stat`).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields restart after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock {
            last_ticks: cpu_ticks("self").unwrap_or(0),
            last_at: Instant::now(),
            ticks_per_second: clock_ticks_per_second(),
            last_machine: machine_ticks(),
        }
    }

    /// Share of the machine's CPU time stolen by the hypervisor since the
    /// last call, in percent: high values mean latencies are not ours.
    pub fn steal_since_last(&mut self) -> f64 {
        let (total, steal) = machine_ticks();
        let (last_total, last_steal) = std::mem::replace(&mut self.last_machine, (total, steal));
        let elapsed = total.saturating_sub(last_total);
        if elapsed == 0 {
            0.0
        } else {
            100.0 * steal.saturating_sub(last_steal) as f64 / elapsed as f64
        }
    }

    pub fn percent_since_last(&mut self) -> f64 {
        let ticks = cpu_ticks("self").unwrap_or(self.last_ticks);
        let seconds = self.last_at.elapsed().as_secs_f64();
        let used = ticks.saturating_sub(self.last_ticks) as f64 / self.ticks_per_second;
        self.last_ticks = ticks;
        self.last_at = Instant::now();
        if seconds > 0.0 {
            100.0 * used / seconds
        } else {
            0.0
        }
    }

    pub fn rss_mib(&self) -> f64 {
        rss_kib("self").unwrap_or(0) as f64 / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        assert!(cpu_ticks("self").is_some());
        assert!(rss_kib("self").is_some_and(|kib| kib > 0));
        let mut clock = CpuClock::start();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 50 {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(clock.percent_since_last() >= 0.0);
        assert!((0.0..=100.0).contains(&clock.steal_since_last()));
    }
}
