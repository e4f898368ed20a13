//! A stand-in for the hub's custody receipts in the gateway benchmark: it reads every records
//! payload and answers at once with a receipt naming its record ids on the gateway's receipts
//! topic, as `hl7edge-hub ingest` does after its commit, without a database in between. So a
//! run of the gateway in receipt mode measures what receipt mode costs the gateway (the marks,
//! the subscription, applying receipts), not the hub's database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::wire::EnvelopeReader;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event};
use tokio::task::JoinHandle;

use super::{ClientOptions, MqttError};

/// The running stand-in; stops when dropped.
pub struct Receipter {
    receipts: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Receipter {
    /// Connects to the broker at `addr` and answers records under `prefix` (`hl7edge/v1`).
    pub async fn start(
        addr: SocketAddr,
        options: &ClientOptions,
        prefix: &str,
    ) -> Result<Receipter, MqttError> {
        let (client, mut events) = AsyncClient::new(options.to_mqtt(addr, true)?, 4096);
        super::wait_connack(&mut events).await?;
        client
            .subscribe(format!("{prefix}/+/+/+/records/#"), QoS::AtLeastOnce)
            .await?;
        let receipts = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&receipts);
        let prefix = prefix.to_owned();
        let task = tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                if let Event::Incoming(Packet::Publish(publish)) = event
                    && let Some((topic, payload)) = receipt_for(&prefix, &publish.payload)
                {
                    let client = client.clone();
                    counted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let _ = client
                            .publish(topic, QoS::AtLeastOnce, false, payload)
                            .await;
                    });
                }
            }
        });
        Ok(Receipter { receipts, task })
    }

    /// Receipts published so far.
    pub fn receipts(&self) -> u64 {
        self.receipts.load(Ordering::Relaxed)
    }
}

impl Drop for Receipter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The receipt topic and payload for a records payload (none for one that does not decode).
fn receipt_for(prefix: &str, payload: &[u8]) -> Option<(String, Vec<u8>)> {
    let reader = EnvelopeReader::new(payload).ok()?;
    let gateway = reader.gateway.clone();
    let ids: Vec<uuid::Uuid> = reader
        .filter_map(|entry| entry.ok().map(|e| e.id))
        .collect();
    let receipt = Receipt::new(gateway.clone(), ids).encode().ok()?;
    Some((format!("{prefix}/{gateway}/receipts"), receipt))
}
