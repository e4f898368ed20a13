//! Log setup: human-readable lines or JSON, to stderr (the journal under
//! systemd). `RUST_LOG` overrides the configured level for diagnostics: a
//! level and `target=level` directives separated by commas
//! (`RUST_LOG=info,hl7edge::store=debug`). Spans and fields are not filters
//! here (the appliance binary carries no regular-expression engine for them);
//! a `RUST_LOG` that does not parse is ignored for the configured level.
//!
//! No PHI at info level or above: the code logs interface names, control
//! ids, counts and error codes, never field values.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{Log, LogFormat};

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(log: &Log) {
    let level: tracing::Level = log.level.into();
    let filter = env_filter().unwrap_or_else(|| {
        Targets::new()
            .with_default(level)
            .with_target("rumqttc", tracing::Level::WARN)
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match log.format {
        LogFormat::Text => builder.finish().with(filter).try_init(),
        LogFormat::Json => builder.json().finish().with(filter).try_init(),
    };
}

/// The filter `RUST_LOG` asks for, when it is set and parses.
pub fn env_filter() -> Option<Targets> {
    std::env::var("RUST_LOG").ok()?.parse().ok()
}
