//! Run reports: `run.json` read through the record crate's types, one neutral
//! report model, and one renderer per format — a self-contained HTML page
//! with plotters charts, Markdown for CI summaries, JUnit XML — plus
//! baselines and the regression gate CI runs.

pub mod ab;
pub mod bottleneck;
pub mod capacity;
pub mod capacity_page;
pub mod charts;
pub mod compare;
pub mod effective;
pub mod figures;
pub mod gate;
pub mod html;
pub mod junit;
pub mod knee;
pub mod markdown;
pub mod plan;
pub mod report;
pub mod spectrum;
pub mod terminal;
pub mod usl;

use std::path::{Path, PathBuf};

pub use report::Report;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a run record this version reads: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Record(#[from] tierlab_record::RecordError),
    #[error("latency histograms: {0}")]
    Histogram(String),
    #[error("drawing a chart: {0}")]
    Chart(String),
    #[error("not like with like: the run is {run}, the baseline {baseline}")]
    Mismatch { run: String, baseline: String },
    #[error("not fit to gate: {0}")]
    Unfit(String),
    #[error("plan: {0}")]
    Plan(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a JSON file this crate models (a baseline, a sweep, a calibration).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReportError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Writes `report.html`, `report.md` and `junit.xml` into `dir`; returns
/// their paths.
pub fn write_reports(dir: &Path, baseline: Option<&Path>) -> Result<Vec<PathBuf>, ReportError> {
    let report = Report::build(dir, baseline)?;
    let files = [
        ("report.html", html::render(&report)?),
        ("report.md", markdown::render(&report)),
        ("junit.xml", junit::render(&report)),
    ];
    files
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| ReportError::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}
