//! Where the demo writes: readable lines for people and, with `--json`,
//! one JSON object per record for tools.
//!
//! With `--json` the records go to stdout and everything else to stderr,
//! so `hl7edge demo --json | jq` sees only records. Tasks print
//! concurrently through clones of one [`Console`]; each line is written
//! whole. Write errors (a closed pipe) are ignored: the demo goes on and
//! its exit code still reports the result.

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The demo's output.
#[derive(Clone)]
pub struct Console {
    sinks: Arc<Mutex<Sinks>>,
}

struct Sinks {
    human: Box<dyn Write + Send>,
    json: Option<Box<dyn Write + Send>>,
}

impl Console {
    /// Human lines to stdout; with `json`, records to stdout and human
    /// lines to stderr.
    pub fn terminal(json: bool) -> Console {
        if json {
            Console::new(
                Box::new(std::io::stderr()),
                Some(Box::new(std::io::stdout())),
            )
        } else {
            Console::new(Box::new(std::io::stdout()), None)
        }
    }

    /// Human lines to `human`; records as JSON lines to `json` when given
    /// (records are then not printed as readable lines).
    pub fn new(human: Box<dyn Write + Send>, json: Option<Box<dyn Write + Send>>) -> Console {
        Console {
            sinks: Arc::new(Mutex::new(Sinks { human, json })),
        }
    }

    /// True when records are printed as JSON lines.
    pub(super) fn is_json(&self) -> bool {
        self.sinks.lock().is_ok_and(|s| s.json.is_some())
    }

    /// Writes one readable line.
    pub(super) fn line(&self, text: impl Display) {
        if let Ok(mut sinks) = self.sinks.lock() {
            let _ = writeln!(sinks.human, "{text}");
            let _ = sinks.human.flush();
        }
    }

    /// Writes several readable lines at once (not interleaved with others).
    pub(super) fn block(&self, lines: &[String]) {
        if let Ok(mut sinks) = self.sinks.lock() {
            for line in lines {
                let _ = writeln!(sinks.human, "{line}");
            }
            let _ = sinks.human.flush();
        }
    }

    /// Writes one JSON line to the record sink, if there is one.
    pub(super) fn json_line(&self, value: &serde_json::Value) {
        if let Ok(mut sinks) = self.sinks.lock()
            && let Some(out) = sinks.json.as_mut()
        {
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("json", &self.is_json())
            .finish()
    }
}
