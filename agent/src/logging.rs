//! Log setup: human-readable lines or JSON, to stderr (the journal under
//! systemd). `RUST_LOG` overrides the configured level for diagnostics.
//!
//! No PHI at info level or above: the code logs interface names, control
//! ids, counts and error codes, never field values.

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(log: &Log) {
    let level: tracing::Level = log.level.into();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttc=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
