//! Everything a run writes while it goes on, and its verdicts at the end:
//! the record (`run.json`, rewritten every second and marked partial until
//! the run has finished), the HDR interval log, the progress line, and at
//! the end the checker's verdict, each fault's verdict, the SLOs and the
//! generator's own verdict.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tierlab_record::hlog::HistogramLog;
use tierlab_record::{
    Ended, FaultRecord, Generator, MachineSecond, RecordError, RunRecord, ScenarioInfo, Second,
    ShardInfo, Slo, TopologyInfo, Window, DEFAULT_FANOUT_LIMIT_MS, FORMAT,
};

use super::rooms::RoomSlot;
use super::{Outcome, RunError, RunOptions};
use crate::checker;
use crate::checker::senders::stream_name;
use crate::drill::{self, FaultEvent};
use crate::progress::Progress;
use crate::scenario::{Fault, Scenario};
use crate::stats::{Ledger, Stream, Tally};
use crate::topology::Topology;
use crate::usage::{self, CpuClock};
use crate::wire::Guarantee;

/// Where latencies are counted from, as the record says it.
const LATENCY_ORIGIN: &str = "intended send time of each act (coordinated-omission corrected)";

pub struct Recorder {
    pub record: RunRecord,
    hlog: HistogramLog,
    dir: PathBuf,
    progress: Progress,
    cpu: CpuClock,
    slo: Vec<Slo>,
    planned: Duration,
    last_tick: Duration,
    rooms: Vec<Arc<str>>,
    /// Which row of `record.faults` each begun fault is.
    fault_rows: HashMap<usize, usize>,
    guarantee: Guarantee,
}

impl Recorder {
    pub fn new(
        scenario: &Scenario,
        topology: &Topology,
        rooms: &[RoomSlot],
        dir: &Path,
        (started_at, shard): (SystemTime, Option<ShardInfo>),
        options: &RunOptions,
    ) -> Result<Recorder, RunError> {
        let record = first_record(scenario, topology, started_at, shard);
        let hlog = HistogramLog::create(dir, started_at).map_err(|source| RecordError::Write {
            path: dir.join(tierlab_record::hlog::FILE),
            source,
        })?;
        record.write(dir)?;
        Ok(Recorder {
            record,
            hlog,
            dir: dir.to_owned(),
            progress: options.progress.clone(),
            cpu: CpuClock::start(),
            slo: scenario.slo.clone(),
            planned: scenario.load.stages_total(),
            last_tick: Duration::ZERO,
            rooms: rooms.iter().map(|r| Arc::clone(&r.code)).collect(),
            fault_rows: HashMap::new(),
            guarantee: crate::wire::for_protocol(&scenario.protocol).guarantee(),
        })
    }

    /// The room codes, in the order players number rooms.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.rooms.clone()
    }

    pub fn on_fault(&mut self, event: FaultEvent, faults: &[Fault]) {
        let faults_seen = &mut self.record.faults;
        match event {
            FaultEvent::Began { fault, at } => {
                let Some(spec) = faults.get(fault) else {
                    return;
                };
                self.fault_rows.insert(fault, faults_seen.len());
                self.progress.line(&format!(
                    "fault `{}` began at {:.1}s: {}",
                    spec.name,
                    at.as_secs_f64(),
                    drill::describe(spec)
                ));
                faults_seen.push(FaultRecord {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    target: spec.target.to_string(),
                    what: drill::describe(spec),
                    start_s: at.as_secs_f64(),
                    ..FaultRecord::default()
                });
            }
            FaultEvent::Ended { fault, at } => {
                if let Some(row) = self.fault_row(fault) {
                    row.end_s = Some(at.as_secs_f64());
                    let line = format!("fault `{}` ended at {:.1}s", row.name, at.as_secs_f64());
                    self.progress.line(&line);
                }
            }
            FaultEvent::Failed { fault, error } => {
                if let Some(row) = self.fault_row(fault) {
                    row.errors.push(error);
                }
            }
        }
    }

    fn fault_row(&mut self, fault: usize) -> Option<&mut FaultRecord> {
        let row = *self.fault_rows.get(&fault)?;
        self.record.faults.get_mut(row)
    }

    /// The label of the second that closes at `at`: the nearest whole
    /// second, but always after the last row's, so no two rows share one
    /// (a merge adds rows with the same label).
    pub fn next_second(&self, at: Duration) -> u64 {
        let t = at.as_secs_f64().round() as u64;
        self.record
            .timeseries
            .last()
            .map_or(t, |last| t.max(last.t + 1))
    }

    /// Records second `t`, closed at `elapsed` (`window`, the run's `tally`
    /// with it): time series, hlog, partial run.json, progress line.
    pub fn tick(&mut self, t: u64, window: &Window, tally: &Tally, target: f64, elapsed: Duration) {
        let machine = MachineSecond {
            generator_cpu_pct: self.cpu.percent_since_last(),
            generator_rss_mib: self.cpu.rss_mib(),
            steal_pct: self.cpu.steal_since_last(),
        };
        let row = Second::of(t, tally.online, target, window, machine);
        let length = elapsed.saturating_sub(self.last_tick);
        if let Err(e) = self.hlog.append(window, self.last_tick, length) {
            tracing::warn!(error = %e, path = %self.hlog.path().display(), "cannot append to the histogram log");
        }
        self.last_tick = elapsed;
        self.record.timeseries.push(row);
        self.record.summary =
            tierlab_record::Summary::of(&tally.total, tally.peak_online, elapsed.as_secs_f64());
        self.record.errors = tally.total.errors.clone();
        if let Err(e) = self.record.write(&self.dir) {
            tracing::warn!(error = %e, "cannot write run.json");
        }
        self.progress(window, tally.online, elapsed);
    }

    fn progress(&self, window: &Window, online: i64, elapsed: Duration) {
        if self.progress.is_quiet()
            || (!self.progress.is_live() && !elapsed.as_secs().is_multiple_of(10))
        {
            return;
        }
        let last = self.record.timeseries.last();
        // Past the plan the run is draining: the clock never passes its total.
        let clock = if elapsed > self.planned {
            format!(
                "{}s/{}s draining",
                self.planned.as_secs(),
                self.planned.as_secs()
            )
        } else {
            format!("{:>4}s/{}s", elapsed.as_secs(), self.planned.as_secs())
        };
        self.progress.status(&format!(
            "[{clock}] players {:>6}  acts/s {:>6}  events/s {:>7}  p95 fan-out {:>7.1} ms  errors {}",
            online,
            window.acts,
            window.deliveries,
            last.map_or(0.0, |s| s.fanout_ms.p95),
            self.record.summary.errors,
        ));
    }

    /// Final verdicts and the last, complete `run.json`.
    pub fn finish(
        mut self,
        (ended, tally, ledger): (Ended, Tally, Ledger),
    ) -> Result<Outcome, RecordError> {
        self.progress.finish_status();
        let total = tally.total;
        let (facts, from_worker) = facts(&self.rooms, ledger);
        self.record.checker = facts.check();
        self.record.checker.guarantee = self.guarantee.describe().to_owned();
        if let Some(shard) = &mut self.record.shard {
            let me = shard.indices.first().copied().unwrap_or(0);
            shard.add_deliveries(me, &from_worker);
            // For `tierlab merge`: every worker's acks against every member.
            checker::write_facts(&self.dir, &facts)?;
        }
        self.judge_faults();
        self.record.judge(&self.slo, &total);
        let cores = usage::cores();
        self.record.generator = Generator::of(&self.record.timeseries, self.cpu.rss_mib(), cores);
        self.record.generator.judge_send_lag(&self.record.summary);
        self.record.ended = ended;
        self.record.partial = ended == Ended::Interrupted;
        self.record.write(&self.dir)?;
        Ok(match ended {
            Ended::Interrupted => Outcome::Interrupted,
            _ if self.record.slos_held() => Outcome::Passed,
            _ => Outcome::SloFailed,
        })
    }

    /// Each fault's verdict over its window: until the next fault, or the end.
    fn judge_faults(&mut self) {
        let run_end = self.record.timeseries.last().map_or(0.0, |s| s.t as f64);
        let limit = Slo::fanout_p95_ms(&self.slo).unwrap_or(DEFAULT_FANOUT_LIMIT_MS);
        let starts: Vec<f64> = self.record.faults.iter().map(|f| f.start_s).collect();
        for (i, fault) in self.record.faults.iter_mut().enumerate() {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(run_end)
                .max(fault.start_s);
            fault.verdict = Some(checker::faults::judge(
                fault.start_s,
                end,
                &self.record.timeseries,
                &self.record.checker.lost_by_ack_second,
                limit,
            ));
        }
    }
}

/// The record as it stands before the first second.
fn first_record(
    scenario: &Scenario,
    topology: &Topology,
    started_at: SystemTime,
    shard: Option<ShardInfo>,
) -> RunRecord {
    RunRecord {
        format: FORMAT,
        partial: true,
        ended: Ended::Running,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        shard,
        scenario: scenario_info(scenario),
        topology: topology_info(scenario, topology),
        machine: usage::machine(),
        versions: versions(topology),
        model: scenario.load.model,
        latency_origin: LATENCY_ORIGIN.into(),
        errors: BTreeMap::new(),
        ..RunRecord::default()
    }
}

pub(super) fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        name: scenario.name.clone(),
        path: scenario.path.display().to_string(),
        description: scenario.description.clone(),
        text: scenario.source.clone(),
    }
}

/// What the record says of the topology `scenario` ran on.
pub(super) fn topology_info(scenario: &Scenario, topology: &Topology) -> TopologyInfo {
    let t = &scenario.topology;
    let mut endpoints: Vec<String> = topology
        .replicas()
        .iter()
        .map(|e| e.ws_url.clone())
        .collect();
    endpoints.extend(topology.lb().iter().map(|e| format!("lb {}", e.ws_url)));
    TopologyInfo {
        kind: t.kind,
        replicas: t.replicas,
        state: t.state,
        via: t.via,
        persistence: t.persistence,
        balance: t.balance,
        sentinel: t.sentinel,
        redis_shards: t.redis_shards,
        server: t.server,
        protocol: scenario.protocol.kind,
        endpoints,
    }
}

/// What ran: the topology's programs, the commit this binary was built
/// from (`build`), and the checkout the run was started in (`git`).
pub(super) fn versions(topology: &Topology) -> BTreeMap<String, String> {
    topology
        .versions()
        .iter()
        .cloned()
        .chain([("build".to_owned(), env!("TIERLAB_BUILD").to_owned())])
        .chain(git_commit().map(|c| ("git".to_owned(), c)))
        .collect()
}

/// The checker's facts, from what the ledger gathered. Players number
/// rooms and senders; the checker speaks in room codes, and in `ROOM/pN`
/// for a sender's stream.
fn facts(rooms: &[Arc<str>], ledger: Ledger) -> (checker::Facts, FromWorker) {
    let Ledger {
        acked,
        ack_clock,
        mut members,
        watches,
        sent,
        from_worker,
        ..
    } = ledger;
    let mut senders: HashMap<u32, Vec<u32>> = HashMap::new();
    for stream in acked.keys() {
        if let Some(sender) = stream.sender {
            senders.entry(stream.room).or_default().push(sender);
        }
    }
    for watch in watches {
        let code = rooms
            .get(watch.room as usize)
            .map_or("", |c| &**c)
            .to_owned();
        let of_room = senders.get(&watch.room).map_or(&[][..], Vec::as_slice);
        members.extend(watch.into_records(&code, of_room, &sent));
    }
    let facts = checker::Facts {
        acked: by_code(rooms, acked),
        clock: by_code(rooms, ack_clock),
        members,
    };
    (facts, from_worker)
}

/// Signed one-way delivery times by sending worker.
type FromWorker = BTreeMap<u32, Vec<i64>>;

/// A map keyed by stream (room number, maybe sender), keyed by the stream's
/// name (room code, or `ROOM/pN`) instead.
fn by_code<T>(rooms: &[Arc<str>], by_stream: HashMap<Stream, T>) -> HashMap<String, T> {
    by_stream
        .into_iter()
        .filter_map(|(stream, v)| {
            let code = rooms.get(stream.room as usize)?;
            let name = match stream.sender {
                None => code.to_string(),
                Some(sender) => stream_name(code, sender),
            };
            Some((name, v))
        })
        .collect()
}

/// The commit the run was made from, when run inside a git checkout.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
