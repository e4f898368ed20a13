//! The ingest's own metrics, in the Prometheus text format: base units
//! (seconds, records), `_total` counters, histograms with `_bucket`,
//! `_sum` and `_count`. Records per second is `rate(hl7edge_ingest_records_total[1m])`.
//!
//! No label carries patient data: labels are dead-letter reasons from a
//! fixed vocabulary and `outcome` (`new`, `duplicate`).

use std::fmt::Write;

use crate::ingest::classify::DeadReason;

/// Batch size buckets (records per commit).
const BATCH_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
/// Commit latency buckets (seconds).
const COMMIT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Delay buckets: gateway receive time to hub commit (seconds).
const DELAY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Everything the ingest counts.
#[derive(Debug, Clone)]
pub struct IngestStats {
    /// 1 while connected to the broker.
    pub broker_connected: bool,
    /// 1 while the last database operation succeeded.
    pub database_up: bool,
    /// Records inserted.
    pub records_new: u64,
    /// Records already present (redelivered, republished).
    pub records_duplicate: u64,
    /// Heartbeats kept.
    pub heartbeats: u64,
    /// MQTT messages acknowledged to the broker after their commit.
    pub messages_acked: u64,
    /// Dead letters by reason, in [`DeadReason::ALL`] order.
    pub dead_letters: [u64; DeadReason::ALL.len()],
    /// Payloads that did not decode (also counted as dead letters).
    pub decode_failures: u64,
    /// Receipt messages published.
    pub receipts: u64,
    /// Record ids named in receipts.
    pub receipt_ids: u64,
    /// Receipts that could not be queued (connection gone).
    pub receipt_failures: u64,
    /// FHIR bundles written (`--fhir-out`).
    pub fhir_bundles: u64,
    /// Batches whose FHIR bundles could not be written.
    pub fhir_failures: u64,
    /// Failed database attempts (connects and commits) that were retried.
    pub database_retries: u64,
    /// Records per commit.
    pub batch_records: Histogram,
    /// Seconds per commit (from the first attempt to success).
    pub commit_seconds: Histogram,
    /// Seconds from the gateway's receive time to the hub's commit.
    pub record_delay_seconds: Histogram,
    /// The largest of those delays in the last commit.
    pub lag_seconds: Option<f64>,
    /// When the last commit finished (Unix seconds).
    pub last_commit_seconds: Option<f64>,
}

impl Default for IngestStats {
    fn default() -> Self {
        IngestStats {
            broker_connected: false,
            database_up: false,
            records_new: 0,
            records_duplicate: 0,
            heartbeats: 0,
            messages_acked: 0,
            dead_letters: [0; DeadReason::ALL.len()],
            decode_failures: 0,
            receipts: 0,
            receipt_ids: 0,
            receipt_failures: 0,
            fhir_bundles: 0,
            fhir_failures: 0,
            database_retries: 0,
            batch_records: Histogram::new(BATCH_BUCKETS),
            commit_seconds: Histogram::new(COMMIT_BUCKETS),
            record_delay_seconds: Histogram::new(DELAY_BUCKETS),
            lag_seconds: None,
            last_commit_seconds: None,
        }
    }
}

impl IngestStats {
    /// Counts one dead letter.
    pub fn dead_letter(&mut self, reason: DeadReason) {
        if let Some(n) = DeadReason::ALL.iter().position(|r| *r == reason)
            && let Some(slot) = self.dead_letters.get_mut(n)
        {
            *slot += 1;
        }
        if matches!(reason, DeadReason::Undecodable | DeadReason::UnknownSchema) {
            self.decode_failures += 1;
        }
    }

    /// The Prometheus exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        gauge(
            &mut out,
            "hl7edge_ingest_broker_connected",
            "1 while connected to the broker.",
            flag(self.broker_connected),
        );
        gauge(
            &mut out,
            "hl7edge_ingest_database_up",
            "1 while PostgreSQL answers.",
            flag(self.database_up),
        );
        header(
            &mut out,
            "hl7edge_ingest_records_total",
            "Records committed, by outcome (new row, or duplicate of a row already present).",
            "counter",
        );
        sample(
            &mut out,
            "hl7edge_ingest_records_total{outcome=\"new\"}",
            self.records_new as f64,
        );
        sample(
            &mut out,
            "hl7edge_ingest_records_total{outcome=\"duplicate\"}",
            self.records_duplicate as f64,
        );
        counter(
            &mut out,
            "hl7edge_ingest_heartbeats_total",
            "Heartbeats stored.",
            self.heartbeats,
        );
        counter(
            &mut out,
            "hl7edge_ingest_messages_acked_total",
            "MQTT messages acknowledged to the broker after their commit.",
            self.messages_acked,
        );
        counter(
            &mut out,
            "hl7edge_ingest_decode_failures_total",
            "Payloads that could not be decoded (kept as dead letters).",
            self.decode_failures,
        );
        header(
            &mut out,
            "hl7edge_ingest_dead_letters_total",
            "Messages kept in dead_letters, by reason.",
            "counter",
        );
        for (reason, n) in DeadReason::ALL.iter().zip(self.dead_letters) {
            sample(
                &mut out,
                &format!(
                    "hl7edge_ingest_dead_letters_total{{reason=\"{}\"}}",
                    reason.as_str()
                ),
                n as f64,
            );
        }
        counter(
            &mut out,
            "hl7edge_ingest_receipts_total",
            "Custody receipt messages published to gateways.",
            self.receipts,
        );
        counter(
            &mut out,
            "hl7edge_ingest_receipt_ids_total",
            "Record ids named in custody receipts.",
            self.receipt_ids,
        );
        counter(
            &mut out,
            "hl7edge_ingest_receipt_failures_total",
            "Custody receipts that could not be queued (the gateway republishes and gets another).",
            self.receipt_failures,
        );
        counter(
            &mut out,
            "hl7edge_ingest_fhir_bundles_total",
            "FHIR R4 bundles written for committed records (--fhir-out).",
            self.fhir_bundles,
        );
        counter(
            &mut out,
            "hl7edge_ingest_fhir_failures_total",
            "Committed batches whose FHIR bundles could not be written (--fhir-out; the records are in the database).",
            self.fhir_failures,
        );
        counter(
            &mut out,
            "hl7edge_ingest_database_retries_total",
            "Database connects and commits that failed and were retried.",
            self.database_retries,
        );
        histogram(
            &mut out,
            "hl7edge_ingest_batch_records",
            "Records per database commit.",
            &self.batch_records,
        );
        histogram(
            &mut out,
            "hl7edge_ingest_commit_duration_seconds",
            "Time to commit a batch, retries included.",
            &self.commit_seconds,
        );
        histogram(
            &mut out,
            "hl7edge_ingest_record_delay_seconds",
            "Gateway receive time to hub commit, per record (the two clocks may differ).",
            &self.record_delay_seconds,
        );
        if let Some(lag) = self.lag_seconds {
            gauge(
                &mut out,
                "hl7edge_ingest_lag_seconds",
                "Largest gateway-receive-to-commit delay in the last commit.",
                lag,
            );
        }
        if let Some(at) = self.last_commit_seconds {
            gauge(
                &mut out,
                "hl7edge_ingest_last_commit_timestamp_seconds",
                "When the last batch committed (Unix seconds).",
                at,
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, series: &str, value: f64) {
    let _ = writeln!(out, "{series} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, help, "gauge");
    sample(out, name, value);
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    sample(out, name, value as f64);
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    header(out, name, help, "histogram");
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        sample(
            out,
            &format!("{name}_bucket{{le=\"{bound}\"}}"),
            *count as f64,
        );
    }
    sample(
        out,
        &format!("{name}_bucket{{le=\"+Inf\"}}"),
        h.count as f64,
    );
    sample(out, &format!("{name}_sum"), h.sum);
    sample(out, &format!("{name}_count"), h.count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let mut s = IngestStats::default();
        s.batch_records.observe(5.0);
        s.batch_records.observe(700.0);
        let text = s.render();
        assert!(
            text.contains("# TYPE hl7edge_ingest_batch_records histogram"),
            "{text}"
        );
        assert!(
            text.contains("hl7edge_ingest_batch_records_bucket{le=\"10\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hl7edge_ingest_batch_records_bucket{le=\"1000\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hl7edge_ingest_batch_records_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hl7edge_ingest_batch_records_sum 705\n"),
            "{text}"
        );
        assert!(
            text.contains("hl7edge_ingest_batch_records_count 2\n"),
            "{text}"
        );
    }

    #[test]
    fn counters_end_in_total_and_every_dead_letter_reason_is_shown() {
        let mut s = IngestStats::default();
        s.dead_letter(DeadReason::Undecodable);
        s.dead_letter(DeadReason::GatewayMismatch);
        let text = s.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            if line.ends_with(" counter") {
                assert!(line.contains("_total "), "{line}");
            }
        }
        assert!(text.contains("hl7edge_ingest_dead_letters_total{reason=\"undecodable\"} 1\n"));
        assert!(
            text.contains("hl7edge_ingest_dead_letters_total{reason=\"gateway_mismatch\"} 1\n")
        );
        assert!(
            text.contains("hl7edge_ingest_dead_letters_total{reason=\"database_refused\"} 0\n")
        );
        assert!(text.contains("hl7edge_ingest_decode_failures_total 1\n"));
    }
}
