//! `hl7edge-hub tail`: prints every record the gateways forward as NDJSON,
//! once, even when a gateway delivers it twice.
//!
//! The session is persistent (clean session off, stable client id) and
//! acknowledgements are manual: a record is acknowledged to the broker
//! only after its line was written and flushed to standard output, so a
//! crash or a closed pipe never loses a record the broker considered
//! delivered; the broker redelivers, and the dedupe window drops the
//! repeat.

pub mod dedupe;
pub mod line;

use std::future::Future;
use std::io::{self, Write};

use rumqttc::Publish;
use tracing::{info, warn};

use crate::cli::{TailArgs, check_share_group};
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};
use crate::topics;
use dedupe::Dedupe;

/// Counts over one run, reported at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines written.
    pub records: u64,
    /// Records dropped as duplicates.
    pub duplicates: u64,
    /// Payloads that could not be decoded (skipped, acknowledged).
    pub undecodable: u64,
}

/// What became of one publish.
enum Outcome {
    /// Written (or skipped on purpose): acknowledge it.
    Done,
    /// Standard output is gone: stop without acknowledging.
    OutputClosed,
}

/// Runs until `shutdown`, a closed standard output, or a fatal broker error.
pub async fn run(
    args: TailArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<TailStats, CommandError> {
    if let Some(group) = &args.share {
        check_share_group(group)?;
    }
    let prefix = args.broker.prefix.clone();
    let filters = topics::record_filters(&prefix, args.share.as_deref(), &args.types)?;
    let broker = args.broker.broker(args.client_id.clone())?;
    info!(filters = ?filters, broker = %broker.url, "subscribing to records");
    let spec = SessionSpec {
        persistent: true,
        manual_acks: true,
        filters,
    };
    let mut sub = Subscription::start(&broker, spec)?;
    let mut dedupe = Dedupe::new(args.dedupe_capacity);
    let mut stats = TailStats::default();
    let mut out = io::BufWriter::new(io::stdout());
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            ev = sub.next() => ev.ok_or(CommandError::ConnectionEnded)?,
            _ = &mut shutdown => break,
        };
        match event {
            SessionEvent::Connected { session_present } => {
                info!(session_present, "connected; receiving records");
                if args.count == Some(0) {
                    break;
                }
            }
            SessionEvent::Publish(p) => {
                let outcome = write(&p, &prefix, &mut dedupe, args.raw, &mut out, &mut stats)?;
                match outcome {
                    Outcome::Done => {
                        if let Err(e) = sub.ack(&p).await {
                            warn!(cause = %e, "could not acknowledge; the broker will redeliver");
                        }
                        if args.count.is_some_and(|n| stats.records >= n) {
                            break;
                        }
                    }
                    Outcome::OutputClosed => break,
                }
            }
            SessionEvent::Lost(why) => warn!("{why}; retrying"),
            SessionEvent::Fatal(why) => return Err(CommandError::Broker(why)),
        }
    }
    sub.close().await;
    info!(
        records = stats.records,
        duplicates = stats.duplicates,
        undecodable = stats.undecodable,
        "tail stopped"
    );
    Ok(stats)
}

fn write(
    p: &Publish,
    prefix: &str,
    dedupe: &mut Dedupe,
    raw: bool,
    out: &mut impl Write,
    stats: &mut TailStats,
) -> Result<Outcome, CommandError> {
    let decoded = match line::lines(prefix, &p.topic, &p.payload, dedupe, raw) {
        Ok(decoded) => decoded,
        Err(e) => {
            warn!(cause = %e, "payload skipped");
            stats.undecodable += 1;
            return Ok(Outcome::Done);
        }
    };
    stats.duplicates += decoded.duplicates as u64;
    let written = decoded
        .lines
        .iter()
        .try_for_each(|l| writeln!(out, "{l}"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {
            stats.records += decoded.lines.len() as u64;
            Ok(Outcome::Done)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Outcome::OutputClosed),
        Err(e) => Err(CommandError::Stdout(e)),
    }
}
