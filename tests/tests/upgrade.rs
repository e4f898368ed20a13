//! An upgrade with a backlog: the queue the previous release left (wire schema 2, store schema
//! 1: `agent/tests/fixtures/schema2-queue`, seven acknowledged messages on two interfaces that
//! never reached a hub) is opened by this build, which migrates the store, numbers the queued
//! records per source, normalizes each again from its raw HL7 and sends it in the current
//! schema; none is stranded, none is sent as the old bytes, and new messages continue each
//! source's numbering.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::ListenerSpec;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::rig::Rig;
use hl7edge_protocol::record::{Body, Record};
use hl7edge_protocol::wire::{Envelope, SCHEMA_VERSION};

/// The fixture: a queue database made by the previous release.
fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/schema2-queue/queue.db")
}

/// One record as the hub received it.
struct Arrived {
    source: String,
    sequence: Option<u64>,
    record: Record,
}

/// Every record received so far, in arrival order, checking that each payload is of the current
/// schema.
fn received(rig: &Rig) -> Result<Vec<Arrived>> {
    let payloads: Vec<Vec<u8>> = rig.hub.with_messages(|all| {
        all.iter()
            .filter(|m| m.topic.contains("/records/"))
            .map(|m| m.payload.clone())
            .collect()
    });
    let mut out = Vec::new();
    for payload in payloads {
        // The schema version leads the payload as a postcard varint: one byte below 128.
        ensure!(
            payload.first() == Some(&(SCHEMA_VERSION as u8)),
            "a payload of schema {:?} left the gateway",
            payload.first()
        );
        let envelope = Envelope::decode(&payload)?;
        for e in envelope.entries {
            out.push(Arrived {
                source: envelope.source.clone(),
                sequence: e.sequence,
                record: e.record,
            });
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_left_by_the_previous_release_is_sent_renormalized_numbered_and_complete()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let database = dir.path().join("queue.db");
    std::fs::copy(fixture(), &database).context("copying the fixture")?;
    let rig = Rig::start(|c| {
        let mut c = c.set("storage.path", database.display().to_string());
        // The interfaces the previous release had, configured as then.
        c.listeners = ["lab", "adt"]
            .into_iter()
            .map(|name| {
                let mut l = ListenerSpec::new(name);
                l.extra
                    .insert("time_zone".into(), "America/New_York".into());
                l
            })
            .collect();
        c
    })
    .await?;
    let arrived = rig
        .hub
        .wait_until(Duration::from_secs(30), |all| {
            hl7edge_e2e::decode::count_records(all) >= 7
        })
        .await;
    let records = received(&rig)?;
    ensure!(
        arrived.is_ok(),
        "only {} of 7 queued records arrived",
        records.len()
    );
    ensure!(records.len() == 7, "{} records, not 7", records.len());

    // Numbered per source, in the order the previous release acknowledged them.
    let mut numbers: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in &records {
        numbers
            .entry(r.source.as_str())
            .or_default()
            .push(r.sequence.context("a record without its sequence number")?);
    }
    ensure!(
        numbers["lab"] == [1, 2, 3, 4, 5],
        "lab: {:?}",
        numbers["lab"]
    );
    ensure!(numbers["adt"] == [1, 2], "adt: {:?}", numbers["adt"]);

    // Normalized again: what schema 2 had no place for is there.
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.record.header.control_id == id)
            .map(|r| &r.record)
            .with_context(|| format!("no record with control id {id}"))
    };
    let lab = by_id("182")?;
    let Body::Observations(report) = &lab.body else {
        anyhow::bail!("LAB-ORU-1 is no observation report: {:?}", lab.body);
    };
    ensure!(
        report.orders.iter().all(|g| !g.detail.specimens.is_empty()),
        "the SPM specimens of LAB-ORU-1 are missing"
    );
    let oul = by_id("1932")?;
    ensure!(
        matches!(oul.body, Body::Observations(_)),
        "the OUL^R22 went out generic: {:?}",
        oul.body
    );
    let comments = records
        .iter()
        .find(|r| r.record.header.control_id.starts_with("2.16.840.1.114222"))
        .map(|r| &r.record)
        .context("ORU-R01-01 missing")?;
    let Body::Observations(report) = &comments.body else {
        anyhow::bail!("ORU-R01-01 is no observation report");
    };
    ensure!(
        report.orders.iter().any(|g| !g.detail.notes.is_empty()),
        "the NTE comments of ORU-R01-01 are missing"
    );
    ensure!(
        records
            .iter()
            .all(|r| r.record.encounter.is_some() || r.record.header.message_code != "ADT"),
        "an ADT record lost its visit"
    );

    // New messages continue each source's numbering.
    let mut sender = rig.sender("lab")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "new", 0..2))
        .await;
    ensure!(sender.acked().len() == 2, "{:?}", sender.stats());
    rig.hub
        .wait_until(Duration::from_secs(30), |all| {
            hl7edge_e2e::decode::count_records(all) >= 9
        })
        .await
        .ok();
    let records = received(&rig)?;
    let lab: Vec<_> = records
        .iter()
        .filter(|r| r.source == "lab")
        .filter_map(|r| r.sequence)
        .collect();
    ensure!(
        lab == [1, 2, 3, 4, 5, 6, 7],
        "lab after new messages: {lab:?}"
    );
    ensure!(
        rig.agent
            .log()
            .contains("records queued by an older build made current before sending"),
        "the upgrade is not in the log"
    );
    Ok(())
}
