//! `latency.hlog`, the HDR interval log beside run.json: one tagged,
//! compressed histogram per latency per second. [`HistogramLog`] appends to
//! it while a run goes on; [`read`] gives its intervals back, for reports
//! and for merging workers' runs exactly.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::{Latency, RecordError, Window};

/// The file's name in a run directory.
pub const FILE: &str = "latency.hlog";

/// The HDR interval log of a run, appended once per second.
#[derive(Debug)]
pub struct HistogramLog {
    file: File,
    path: PathBuf,
}

impl HistogramLog {
    pub fn create(dir: &Path, started: SystemTime) -> std::io::Result<HistogramLog> {
        let path = dir.join(FILE);
        let mut file = File::create(&path)?;
        let epoch = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // The version and legend lines Java's HistogramLogReader expects;
        // hdrhistogram's writer leaves them out.
        writeln!(file, "#[Histogram log format version 1.3]")?;
        writeln!(
            file,
            "#[Written by tierlab; values in microseconds; tags: {}]",
            Latency::names()
        )?;
        writeln!(file, "#[StartTime: {epoch:.3} (seconds since epoch)]")?;
        writeln!(file, "#[BaseTime: {epoch:.3} (seconds since epoch)]")?;
        writeln!(
            file,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HistogramLog { file, path })
    }

    /// Appends the interval that started at `start` (since BaseTime).
    pub fn append(
        &mut self,
        window: &Window,
        start: Duration,
        length: Duration,
    ) -> std::io::Result<()> {
        let mut serializer = V2DeflateSerializer::new();
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut serializer)?;
        for (latency, histogram) in window.latencies() {
            if histogram.is_empty() {
                continue;
            }
            writer
                .write_histogram(histogram, start, length, Tag::new(latency.name()))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One interval of a histogram log.
#[derive(Debug, Clone)]
pub struct Interval {
    pub tag: String,
    /// Seconds since the log's BaseTime.
    pub start: f64,
    pub histogram: Histogram<u64>,
}

impl Interval {
    /// The latency its tag names; `None` for a tag this version does not know.
    pub fn latency(&self) -> Option<Latency> {
        self.tag.parse().ok()
    }
}

/// Every interval of the log at `path`, and its BaseTime (unix seconds).
pub fn read(path: &Path) -> Result<(f64, Vec<Interval>), RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |message: String| RecordError::Histogram {
        path: path.to_owned(),
        message,
    };
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

/// The whole log added into one window (latencies only).
pub fn totals(intervals: &[Interval]) -> Result<Window, String> {
    let mut total = Window::new();
    for interval in intervals {
        if let Some(latency) = interval.latency() {
            total.add(latency, &interval.histogram)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_reads_back_what_was_appended() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = HistogramLog::create(dir.path(), started).unwrap_or_else(|e| panic!("{e}"));
        let mut window = Window::new();
        window.record(Latency::Fanout, 1500);
        window.record(Latency::Ack, 900);
        log.append(&window, Duration::from_secs(0), Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{e}"));
        log.append(&window, Duration::from_secs(1), Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{e}"));
        let (base, intervals) = read(log.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(base, 1_700_000_000.0);
        assert_eq!(
            intervals.len(),
            4,
            "two latencies a second, empty ones left out"
        );
        assert_eq!(intervals[2].latency(), Some(Latency::Fanout));
        assert_eq!(intervals[2].start, 1.0);
        let total = totals(&intervals).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(total.latency(Latency::Fanout).len(), 2);
        assert_eq!(total.latency(Latency::Connect).len(), 0);
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(text.starts_with("#[Histogram log format version 1.3]"));
    }
}
