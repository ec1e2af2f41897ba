//! Where the long-running commands (run, capacity, compare) tell a person
//! how they are doing. The binary decides where that goes — the terminal,
//! nowhere with `--quiet`, a buffer in a test — and passes it down; library
//! code never prints. On a terminal the status line is rewritten in place.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer for progress, cheap to clone and share between tasks.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Arc<Mutex<Sink>>>,
}

struct Sink {
    out: Box<dyn Write + Send>,
    /// A terminal: the status line is rewritten with `\r`.
    live: bool,
    /// A status line is on screen and the next line must start below it.
    status_shown: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("quiet", &self.sink.is_none())
            .field("live", &self.is_live())
            .finish()
    }
}

impl Progress {
    /// Says nothing.
    pub fn quiet() -> Progress {
        Progress::default()
    }

    /// Writes to `out`; `live` when it is a terminal.
    pub fn to(out: impl Write + Send + 'static, live: bool) -> Progress {
        Progress {
            sink: Some(Arc::new(Mutex::new(Sink {
                out: Box::new(out),
                live,
                status_shown: false,
            }))),
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.sink.is_none()
    }

    /// Whether the status line is rewritten in place (a terminal).
    pub fn is_live(&self) -> bool {
        self.with(|sink| sink.live).unwrap_or(false)
    }

    /// A line that stays.
    pub fn line(&self, text: &str) {
        self.with(|sink| {
            if sink.status_shown {
                let _ = writeln!(sink.out);
                sink.status_shown = false;
            }
            let _ = writeln!(sink.out, "{text}");
            let _ = sink.out.flush();
        });
    }

    /// The status line: rewritten in place on a terminal, a line otherwise.
    pub fn status(&self, text: &str) {
        self.with(|sink| {
            if sink.live {
                let _ = write!(sink.out, "\r{text}");
                sink.status_shown = true;
            } else {
                let _ = writeln!(sink.out, "{text}");
            }
            let _ = sink.out.flush();
        });
    }

    /// Ends a status line left on screen.
    pub fn finish_status(&self) {
        self.with(|sink| {
            if sink.status_shown {
                let _ = writeln!(sink.out);
                sink.status_shown = false;
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut Sink) -> T) -> Option<T> {
        let sink = self.sink.as_ref()?;
        let mut sink = sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(f(&mut sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer a test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(shared: &Shared) -> String {
        String::from_utf8_lossy(&shared.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    #[test]
    fn a_live_status_is_rewritten_and_ended_before_the_next_line() {
        let out = Shared::default();
        let progress = Progress::to(out.clone(), true);
        progress.status("1s");
        progress.status("2s");
        progress.line("done");
        assert_eq!(text(&out), "\r1s\r2s\ndone\n");
    }

    #[test]
    fn a_log_gets_lines_and_quiet_gets_nothing() {
        let out = Shared::default();
        let progress = Progress::to(out.clone(), false);
        progress.status("1s");
        progress.finish_status();
        progress.line("done");
        assert_eq!(text(&out), "1s\ndone\n");
        Progress::quiet().line("nobody hears this");
        assert!(Progress::quiet().is_quiet());
    }
}
