//! The run's own log, `logs/tierlab.log` in its directory: what the
//! libraries a run drives say while it runs (goose's "16 users launched."
//! and its warnings), kept off the terminal, where only the progress line,
//! fault marks and the summary belong. The binary points its tracing
//! output for those targets, and its stdout (goose prints there), at
//! [`RunLog`]; a run opens the file with [`Open::new`] for as long as it
//! runs. Outside a run, what arrives is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

static FILE: Mutex<Option<File>> = Mutex::new(None);

/// The log of the run in progress, open while this lives.
#[derive(Debug)]
pub struct Open(());

impl Open {
    /// Opens `dir/logs/tierlab.log` (appending: the steps of one directory
    /// share it). A log that cannot be opened costs the chatter, not the run.
    pub fn new(dir: &Path) -> Open {
        let logs = dir.join("logs");
        let file = std::fs::create_dir_all(&logs).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join("tierlab.log"))
        });
        if let Ok(mut slot) = FILE.lock() {
            *slot = file.ok();
        }
        Open(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Ok(mut slot) = FILE.lock() {
            *slot = None;
        }
    }
}

/// Writes into the open run log, or nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLog;

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut slot) = FILE.lock() {
            if let Some(file) = slot.as_mut() {
                file.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RunLog {
    type Writer = RunLog;
    fn make_writer(&'a self) -> RunLog {
        RunLog
    }
}

/// Points this process's stdout at the run log and returns the real
/// stdout, for what the command itself prints there (a run directory, a
/// path). A thread drains the pipe for the life of the process, so a
/// writer never blocks on it.
pub fn capture_stdout() -> std::io::Result<File> {
    let saved = nix::unistd::dup(std::io::stdout())?;
    let (reader, writer) = std::io::pipe()?;
    nix::unistd::dup2_stdout(&writer)?;
    drop(writer);
    std::thread::Builder::new()
        .name("stdout-to-run-log".into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(RunLog, "{line}");
            }
        })?;
    Ok(File::from(saved))
}
