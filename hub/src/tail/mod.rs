//! `hl7edge-hub tail`: prints every record the gateways forward as NDJSON,
//! once, even when a gateway delivers it twice.
//!
//! The session is persistent (clean session off, stable client id) and
//! acknowledgements are manual: a record is acknowledged to the broker
//! only after its line was written and flushed to standard output, so a
//! crash or a closed pipe never loses a record the broker considered
//! delivered; the broker redelivers, and the dedupe window drops the
//! repeat.
//!
//! An envelope that names another gateway than its topic's is not printed
//! ([`crate::claim`]): it is counted, logged (gateway names only) and
//! acknowledged, like an undecodable payload. `tail` tracks no gateways, so
//! it needs no cap on them; its memory is the dedupe window.

pub mod dedupe;
pub mod line;

use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rumqttc::Publish;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cli::{TailArgs, check_share_group};
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};
use crate::topics;
use dedupe::Dedupe;
use line::LineError;

/// Counts over one run, reported at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines written.
    pub records: u64,
    /// Records dropped as duplicates.
    pub duplicates: u64,
    /// Payloads that could not be decoded (skipped, acknowledged).
    pub undecodable: u64,
    /// Envelopes that name another gateway than their topic's (skipped, acknowledged).
    pub gateway_mismatch: u64,
    /// Payloads on a topic under the organization reserved for enrollment, where only a claim
    /// certificate can publish (skipped, acknowledged).
    pub reserved_org: u64,
}

/// The live counters of a run (read by the metrics endpoint).
#[derive(Debug, Default)]
pub struct Counters {
    records: AtomicU64,
    duplicates: AtomicU64,
    undecodable: AtomicU64,
    gateway_mismatch: AtomicU64,
    reserved_org: AtomicU64,
    connected: AtomicBool,
}

impl Counters {
    /// The counts so far.
    pub fn snapshot(&self) -> TailStats {
        TailStats {
            records: self.records.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            undecodable: self.undecodable.load(Ordering::Relaxed),
            gateway_mismatch: self.gateway_mismatch.load(Ordering::Relaxed),
            reserved_org: self.reserved_org.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus text exposition of the counts.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let connected = u64::from(self.connected.load(Ordering::Relaxed));
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "hl7edge_hub_broker_connected",
                "gauge",
                "1 while this hub is connected to the broker.",
                connected,
            ),
            (
                "hl7edge_hub_tail_records_total",
                "counter",
                "Records this tail printed.",
                s.records,
            ),
            (
                "hl7edge_hub_tail_duplicates_total",
                "counter",
                "Records this tail dropped as duplicates.",
                s.duplicates,
            ),
            (
                "hl7edge_hub_tail_undecodable_total",
                "counter",
                "Record payloads this tail could not decode (logged, acknowledged, skipped).",
                s.undecodable,
            ),
            (
                "hl7edge_hub_tail_gateway_mismatch_total",
                "counter",
                "Record payloads whose envelope names another gateway than their topic (logged, acknowledged, not printed).",
                s.gateway_mismatch,
            ),
            (
                "hl7edge_hub_tail_reserved_org_total",
                "counter",
                "Record payloads on a topic under the organization reserved for enrollment, where only a claim certificate can publish (logged, acknowledged, not printed).",
                s.reserved_org,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
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
    let stats = Arc::new(Counters::default());
    let metrics = match args.metrics {
        Some(addr) => Some(serve_metrics(addr, Arc::clone(&stats)).await?),
        None => None,
    };
    let mut sub = Subscription::start(&broker, spec)?;
    let mut dedupe = Dedupe::new(args.dedupe_capacity);
    let format = if args.fhir {
        line::Format::Fhir
    } else {
        line::Format::Record { raw: args.raw }
    };
    let mut out = io::BufWriter::new(io::stdout());
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            ev = sub.next() => ev.ok_or(CommandError::ConnectionEnded)?,
            _ = &mut shutdown => break,
        };
        match event {
            SessionEvent::Connected { session_present } => {
                stats.connected.store(true, Ordering::Relaxed);
                info!(session_present, "connected; receiving records");
                if args.count == Some(0) {
                    break;
                }
            }
            SessionEvent::Publish(p) => {
                let outcome = write(&p, &prefix, &mut dedupe, format, &mut out, &stats)?;
                match outcome {
                    Outcome::Done => {
                        if let Err(e) = sub.ack(&p).await {
                            warn!(cause = %e, "could not acknowledge; the broker will redeliver");
                        }
                        if args.count.is_some_and(|n| stats.snapshot().records >= n) {
                            break;
                        }
                    }
                    Outcome::OutputClosed => break,
                }
            }
            SessionEvent::Lost(why) => {
                stats.connected.store(false, Ordering::Relaxed);
                warn!("{why}; retrying");
            }
            SessionEvent::Fatal(why) => return Err(CommandError::Broker(why)),
        }
    }
    sub.close().await;
    if let Some(server) = metrics {
        server.abort();
    }
    let stats = stats.snapshot();
    info!(
        records = stats.records,
        duplicates = stats.duplicates,
        undecodable = stats.undecodable,
        gateway_mismatch = stats.gateway_mismatch,
        reserved_org = stats.reserved_org,
        "tail stopped"
    );
    Ok(stats)
}

fn write(
    p: &Publish,
    prefix: &str,
    dedupe: &mut Dedupe,
    format: line::Format,
    out: &mut impl Write,
    stats: &Counters,
) -> Result<Outcome, CommandError> {
    let written = line::write_lines(prefix, &p.topic, &p.payload, dedupe, format, out)
        .and_then(|w| out.flush().map(|()| w).map_err(LineError::Output));
    match written {
        Ok(w) => {
            stats.records.fetch_add(w.lines as u64, Ordering::Relaxed);
            stats
                .duplicates
                .fetch_add(w.duplicates as u64, Ordering::Relaxed);
            Ok(Outcome::Done)
        }
        Err(LineError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(Outcome::OutputClosed)
        }
        Err(LineError::Output(e)) => Err(CommandError::Stdout(e)),
        Err(e @ LineError::ReservedOrg { .. }) => {
            let n = stats.reserved_org.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                cause = %e,
                bytes = p.payload.len(),
                reserved_org = n,
                "payload not printed, acknowledged: a claim certificate published it, no gateway"
            );
            Ok(Outcome::Done)
        }
        Err(e @ (LineError::GatewayMismatch { .. } | LineError::NotARecordsTopic { .. })) => {
            stats.gateway_mismatch.fetch_add(1, Ordering::Relaxed);
            warn!(
                cause = %e,
                bytes = p.payload.len(),
                "payload not printed, acknowledged: its envelope does not name the gateway of its topic"
            );
            Ok(Outcome::Done)
        }
        Err(e) => {
            // Logged without content: the topic (gateway and message type)
            // and what the decoder found, never a value from the payload.
            let printed = match &e {
                LineError::Wire { written, .. } => *written,
                _ => 0,
            };
            stats.records.fetch_add(printed as u64, Ordering::Relaxed);
            stats.undecodable.fetch_add(1, Ordering::Relaxed);
            warn!(
                cause = %e,
                bytes = p.payload.len(),
                records_printed = printed,
                "payload skipped and acknowledged (not redelivered)"
            );
            out.flush().map_err(CommandError::Stdout)?;
            Ok(Outcome::Done)
        }
    }
}

/// Serves `stats` on `GET /metrics` at `addr` until aborted.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    stats: Arc<Counters>,
) -> Result<tokio::task::JoinHandle<()>, CommandError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| CommandError::Bind { addr, source })?;
    info!(metrics = %addr, "serving tail counters at /metrics");
    let render = Arc::new(move || stats.render());
    Ok(tokio::spawn(async move {
        if let Err(e) = crate::metrics::http::serve(listener, render, std::future::pending()).await
        {
            warn!(cause = %e, "metrics endpoint stopped");
        }
    }))
}
