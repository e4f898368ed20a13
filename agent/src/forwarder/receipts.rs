//! Custody receipts arriving at the gateway (receipt mode): which count, and applying them to
//! the store without holding up the MQTT event loop.
//!
//! Invariants:
//! - A receipt counts only when it arrived on this gateway's own receipts topic *and* names
//!   this gateway (`org/site/id`) in its `gateway` field ([`accept`]); anything else is
//!   ignored with a log line and never touches the store.
//! - At most one request is with the store writer; ids that arrive meanwhile wait here and go
//!   together (up to [`MAX_REQUEST_IDS`], so a receipt of 4,096 ids is one transaction). The
//!   caller stops reading broker events while [`Applier::backlog`] is at
//!   [`MAX_BACKLOG_IDS`], so memory stays bounded whatever the hub sends.
//! - A failed request is not retried: its ids are dropped here and the rows stay queued, to be
//!   published again after their timeout (a receipt may be lost; the contract allows it).

use std::future::pending;

use hl7edge_protocol::receipt::{MAX_IDS_PER_RECEIPT, Receipt, ReceiptError};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::store::{StoreError, StoreHandle, now_ms};

/// Most ids applied in one store request (one receipt's worth).
pub const MAX_REQUEST_IDS: usize = MAX_IDS_PER_RECEIPT;

/// Most ids waiting here before the forwarder stops reading broker events.
pub const MAX_BACKLOG_IDS: usize = 4 * MAX_REQUEST_IDS;

/// Why a message on the receipts subscription was ignored.
#[derive(Debug, thiserror::Error)]
pub enum Ignored {
    /// Another topic than this gateway's receipts topic.
    #[error("a message on {topic}, not this gateway's receipts topic")]
    Topic {
        /// The topic it came on.
        topic: String,
    },
    /// The payload is no receipt this build reads.
    #[error("a payload that is no receipt: {0}")]
    Undecodable(#[from] ReceiptError),
    /// The receipt names another gateway.
    #[error("a receipt for gateway {named} on this gateway's topic")]
    OtherGateway {
        /// The gateway it names.
        named: String,
    },
}

/// The receipt in a message on `topic`, if it counts for the gateway `gateway` whose receipts
/// topic is `own_topic`.
pub fn accept(
    topic: &str,
    payload: &[u8],
    own_topic: &str,
    gateway: &str,
) -> Result<Receipt, Ignored> {
    if topic != own_topic {
        return Err(Ignored::Topic {
            topic: topic.to_owned(),
        });
    }
    let receipt = Receipt::decode(payload)?;
    if receipt.gateway != gateway {
        return Err(Ignored::OtherGateway {
            named: receipt.gateway,
        });
    }
    Ok(receipt)
}

/// A receipt request on its way to the store.
type Running = JoinHandle<Result<u64, StoreError>>;

/// The receipts of one forwarder connection, on their way into the store.
#[derive(Debug)]
pub struct Applier {
    store: StoreHandle,
    waiting: Vec<Uuid>,
    running: Option<Running>,
}

impl Applier {
    /// Nothing waiting.
    pub fn new(store: StoreHandle) -> Self {
        Applier {
            store,
            waiting: Vec::new(),
            running: None,
        }
    }

    /// Ids waiting for their request (not counting the one in flight).
    pub fn backlog(&self) -> usize {
        self.waiting.len()
    }

    /// Queues a receipt's ids; sends them at once when no request is in flight.
    pub fn push(&mut self, receipt: &Receipt) {
        self.waiting.extend_from_slice(receipt.ids.as_slice());
        self.start();
    }

    /// Waits for the request in flight, then sends what waited. Returns how many queued rows
    /// it found; never completes when nothing is in flight (for `select!`).
    pub async fn next_done(&mut self) -> Result<u64, StoreError> {
        let Some(handle) = self.running.as_mut() else {
            return pending().await;
        };
        let outcome = handle.await;
        self.running = None;
        self.start();
        outcome.unwrap_or(Err(StoreError::Closed))
    }

    /// Waits until every queued id was applied (at shutdown or when a connection ends).
    pub async fn flush(&mut self) -> u64 {
        let mut found = 0;
        while self.running.is_some() {
            found += self.next_done().await.unwrap_or(0);
        }
        found
    }

    fn start(&mut self) {
        if self.running.is_some() || self.waiting.is_empty() {
            return;
        }
        let take = self.waiting.len().min(MAX_REQUEST_IDS);
        let ids: Vec<Uuid> = self.waiting.drain(..take).collect();
        let store = self.store.clone();
        self.running = Some(tokio::spawn(
            async move { store.receipted(ids, now_ms()).await },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "hl7edge/v1/o/s/g/receipts";

    #[test]
    fn only_a_receipt_on_the_own_topic_naming_this_gateway_counts() {
        let id = Uuid::from_u128(7);
        let mine = Receipt::new("o/s/g", [id]).encode().unwrap();
        assert_eq!(
            accept(OWN, &mine, OWN, "o/s/g").unwrap().ids.as_slice(),
            [id]
        );
        let theirs = Receipt::new("o/s/other", [id]).encode().unwrap();
        assert!(matches!(
            accept(OWN, &theirs, OWN, "o/s/g"),
            Err(Ignored::OtherGateway { named }) if named == "o/s/other"
        ));
        let elsewhere = "hl7edge/v1/o/s/other/receipts";
        assert!(matches!(
            accept(elsewhere, &mine, OWN, "o/s/g"),
            Err(Ignored::Topic { .. })
        ));
        assert!(matches!(
            accept(OWN, b"\x09garbage", OWN, "o/s/g"),
            Err(Ignored::Undecodable(_))
        ));
    }
}
