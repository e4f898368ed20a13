//! `hl7edge-hub serve`: keeps the fleet model up to date from MQTT and
//! serves it as Prometheus metrics.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cli::{ServeArgs, fresh_client_id};
use crate::error::CommandError;
use crate::fleet::Fleet;
use crate::fleet::command::{apply_logged, now_ms};
use crate::metrics::{self, HubStats};
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};
use crate::topics;

/// The fleet and the hub's own facts, shared by the MQTT side and the
/// HTTP side. The lock is never held across an `.await`.
#[derive(Debug)]
struct Shared {
    fleet: Fleet,
    hub: HubStats,
}

/// Runs until `shutdown`, or until the broker connection fails for good.
pub async fn run(args: ServeArgs, shutdown: impl Future<Output = ()>) -> Result<(), CommandError> {
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| fresh_client_id("serve"));
    let broker = args.broker.broker(client_id)?;
    let prefix = &args.broker.prefix;
    let spec = SessionSpec {
        persistent: false,
        manual_acks: false,
        filters: vec![
            topics::status_filter(prefix),
            topics::telemetry_filter(prefix),
        ],
    };
    let listener = TcpListener::bind(args.metrics)
        .await
        .map_err(|source| CommandError::Bind {
            addr: args.metrics,
            source,
        })?;
    let sub = Subscription::start(&broker, spec)?;
    info!(metrics = %args.metrics, broker = %broker.url, "serving fleet metrics at /metrics");
    let shared = Arc::new(Mutex::new(Shared {
        fleet: Fleet::new(args.thresholds.config(prefix)),
        hub: HubStats::default(),
    }));
    let render = {
        let shared = shared.clone();
        Arc::new(move || {
            let s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let hub = HubStats {
                refusals: s.fleet.refusals(),
                tracked_gateways: s.fleet.len(),
                ..s.hub
            };
            metrics::render(&s.fleet.rows(now_ms()), hub)
        })
    };
    tokio::select! {
        result = consume(sub, shared) => result,
        result = metrics::http::serve(listener, render, shutdown) => {
            result.map_err(|source| CommandError::Bind { addr: args.metrics, source })
        }
    }
}

/// Applies every status and heartbeat to the shared fleet.
async fn consume(mut sub: Subscription, shared: Arc<Mutex<Shared>>) -> Result<(), CommandError> {
    loop {
        let event = sub.next().await.ok_or(CommandError::ConnectionEnded)?;
        let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            SessionEvent::Connected { .. } => {
                info!("connected to the broker");
                s.hub.connected = true;
            }
            SessionEvent::Publish(p) => {
                let applied = apply_logged(&mut s.fleet, &p.topic, &p.payload, p.retain, now_ms());
                if let Some(e) = applied {
                    warn!(cause = %e, "message skipped");
                    s.hub.invalid_messages += 1;
                }
            }
            SessionEvent::Lost(why) => {
                warn!("{why}; retrying");
                s.hub.connected = false;
            }
            SessionEvent::Fatal(why) => return Err(CommandError::Broker(why)),
        }
    }
}
