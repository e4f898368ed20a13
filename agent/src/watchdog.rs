//! systemd integration of the running agent: READY=1 once the listeners are
//! bound and the store is open, and WATCHDOG=1 pings only while the store
//! writer and the forwarder keep making progress.
//!
//! Both components publish a wall-clock heartbeat (Unix ms) that moves at
//! least every second while their loop runs, busy or idle; this task turns
//! each advance into a beat of the sans-IO [`WatchdogGate`], which decides.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::forwarder::task::ForwarderMetrics;
use crate::notify::{Notifier, WatchdogGate};
use crate::store::StoreHandle;

/// How long a component may go without a heartbeat before pings stop.
const ALLOWED_STALL: Duration = Duration::from_secs(10);

/// Sends READY=1 and, under a systemd watchdog, pings while healthy.
/// Runs until the returned task is aborted.
pub fn start(
    notifier: Arc<Notifier>,
    store: StoreHandle,
    forwarder: Arc<ForwarderMetrics>,
) -> tokio::task::JoinHandle<()> {
    if let Err(e) = notifier.ready("accepting messages") {
        warn!(cause = %e, "could not tell systemd we are ready");
    }
    tokio::spawn(async move {
        let Some(interval) = notifier.watchdog_ping_interval() else {
            return std::future::pending().await;
        };
        let now = Instant::now();
        let mut gate = WatchdogGate::new(now);
        let writer_beat = gate.watch("store writer", ALLOWED_STALL, now);
        let forwarder_beat = gate.watch("forwarder", ALLOWED_STALL, now);
        let (mut last_writer, mut last_forwarder) = (0u64, 0u64);
        let mut tick = tokio::time::interval(interval.min(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let w = store.metrics().heartbeat_ms;
            if w > last_writer {
                last_writer = w;
                writer_beat.beat(now);
            }
            let f = forwarder.heartbeat_ms.load(Ordering::Relaxed);
            if f > last_forwarder {
                last_forwarder = f;
                forwarder_beat.beat(now);
            }
            match notifier.ping_if_healthy(&gate, now) {
                Ok(verdict) if !verdict.is_healthy() => {
                    warn!(?verdict, "not pinging the systemd watchdog")
                }
                Ok(_) => {}
                Err(e) => debug!(cause = %e, "watchdog ping failed"),
            }
        }
    })
}
