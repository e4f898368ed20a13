//! The broker ACL template (`hub/broker/mosquitto-acl`) and the ingest's own check of the
//! gateway: a gateway's certificate lets it publish only under its own topic subtree and read
//! only its own receipts, so it can neither inject records for another gateway nor forge or
//! read another gateway's custody receipts; and what a gateway sends under its own topic while
//! naming another gateway, or what does not decode, is kept as a dead letter, without stopping
//! the ingest. Real mosquitto (mutual TLS) and PostgreSQL.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::ingest::{IngestRig, metric, wait_records};
use hl7edge_e2e::mqtt::{Publisher, Subscriber};
use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context as NormalizeContext, normalize};
use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::topic::GatewayTopics;
use hl7edge_protocol::wire::{Envelope, StoredRecord};
use uuid::Uuid;

fn topics(gateway: &str) -> GatewayTopics {
    let [org, site, id] = gateway.split('/').collect::<Vec<_>>()[..] else {
        unreachable!("org/site/id")
    };
    GatewayTopics::new("hl7edge/v1", org, site, id)
}

/// A well-formed envelope of one lab result under `id`, naming `gateway`.
fn envelope(gateway: &str, id: Uuid, control_id_seed: u64) -> Vec<u8> {
    let hl7 = hl7gen::message(Kind::Lab, "forger", control_id_seed);
    let msg = Message::parse(&hl7.bytes).expect("generated HL7 parses");
    let mapping = MappingTable::empty();
    let tz = jiff::tz::TimeZone::UTC;
    let ctx = NormalizeContext {
        time_zone: &tz,
        mapping: &mapping,
    };
    let entry = StoredRecord {
        mapping_version: mapping.version().clone(),
        record: normalize(&msg, Vec::new(), &ctx).record,
    }
    .into_entry(id, control_id_seed, 1_795_345_301_234, None);
    Envelope::new(gateway, "lab", vec![entry])
        .encode()
        .expect("encodes")
}

async fn count(db: &tokio_postgres::Client, sql: &str, id: &str) -> Result<i64> {
    Ok(db.query_one(sql, &[&id]).await?.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_cannot_publish_into_another_gateways_topics_nor_forge_or_read_its_receipts()
-> Result<()> {
    let rig = IngestRig::start(1, |c| c).await?;
    let (me, victim) = (IngestRig::gateway(0), IngestRig::gateway(1));
    let victim_receipts = topics(&victim).receipts();
    // The victim's own receipt watcher, and gw-0001 trying to read the victim's receipts.
    let own = Subscriber::connect(
        rig.broker.addr(),
        &rig.gateway_client(1, "victim-watch"),
        &victim_receipts,
    )
    .await?;
    let spy = Subscriber::connect(
        rig.broker.addr(),
        &rig.gateway_client(0, "spy"),
        &victim_receipts,
    )
    .await?;
    let wide = Subscriber::connect(
        rig.broker.addr(),
        &rig.gateway_client(0, "spy-wide"),
        "hl7edge/v1/#",
    )
    .await?;

    // gw-0001 publishes a record into gw-0002's records topic, and a receipt on its receipts.
    let injected = Uuid::now_v7();
    let forged = Uuid::now_v7();
    let mut intruder =
        Publisher::connect(rig.broker.addr(), &rig.gateway_client(0, "intruder")).await?;
    intruder
        .publish(
            &topics(&victim).records("ORU", "R01"),
            &envelope(&victim, injected, 1),
            false,
        )
        .await?;
    let receipt = Receipt::new(victim.clone(), [forged]).encode()?;
    intruder.publish(&victim_receipts, &receipt, false).await?;

    // The victim's real traffic: its receipts reach it, and only it.
    let mut sender = rig.sender(1);
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lisb", 0..20))
        .await;
    ensure!(sender.acked().len() == 20, "{:?}", sender.outcomes().last());
    let db = rig.pg.client().await?;
    ensure!(wait_records(&db, 20, Duration::from_secs(30)).await? >= 20);
    own.wait_until(Duration::from_secs(20), |m| {
        m.iter()
            .filter_map(|r| Receipt::decode(&r.payload).ok())
            .map(|r| r.ids.len())
            .sum::<usize>()
            >= 20
    })
    .await
    .context("the victim's receipts")?;
    // Give anything the ACL let through time to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let id = injected.to_string();
    ensure!(
        count(&db, "SELECT count(*) FROM records WHERE id::text = $1", &id).await? == 0,
        "a record injected into another gateway's topic landed"
    );
    let dead: i64 = db
        .query_one("SELECT count(*) FROM dead_letters", &[])
        .await?
        .get(0);
    ensure!(
        dead == 0,
        "the injected record even reached the ingest ({dead} dead letters)"
    );
    for r in own.messages() {
        let receipt = Receipt::decode(&r.payload)?;
        ensure!(
            !receipt.ids.contains(&forged),
            "a forged receipt reached the gateway"
        );
        ensure!(receipt.gateway == victim, "{}", receipt.gateway);
    }
    ensure!(
        spy.count() == 0,
        "gw-0001 read gw-0002's receipts: {}",
        spy.count()
    );
    let leaked: Vec<String> = wide.messages().into_iter().map(|m| m.topic).collect();
    ensure!(leaked.is_empty(), "gw-0001 read other topics: {leaked:?}");
    ensure!(!me.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ingest_dead_letters_envelopes_naming_another_gateway_and_undecodable_payloads_and_keeps_going()
-> Result<()> {
    let rig = IngestRig::start(1, |c| c).await?;
    let (me, other) = (IngestRig::gateway(0), IngestRig::gateway(1));
    let claimed = Uuid::now_v7();
    let mut gateway = Publisher::connect(rig.broker.addr(), &rig.gateway_client(0, "liar")).await?;
    let own_records = topics(&me).records("ORU", "R01");
    // Under its own topic (the ACL allows it) but naming another gateway in the envelope.
    gateway
        .publish(&own_records, &envelope(&other, claimed, 2), false)
        .await?;
    // Bytes that are no envelope (read as schema version 110), and a length claiming gigabytes.
    gateway
        .publish(&own_records, b"not an envelope", false)
        .await?;
    gateway
        .publish(&own_records, &[2, 0xff, 0xff, 0xff, 0xff, 0x0f], false)
        .await?;
    // Real traffic afterwards still lands.
    let mut sender = rig.sender(0);
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lisa", 0..10))
        .await;
    let db = rig.pg.client().await?;
    ensure!(wait_records(&db, 10, Duration::from_secs(30)).await? == 10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = db
            .query(
                "SELECT reason, topic, length(payload) FROM dead_letters ORDER BY id",
                &[],
            )
            .await?;
        if rows.len() >= 3 || tokio::time::Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reasons: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    ensure!(
        reasons == ["gateway_mismatch", "unknown_schema", "undecodable"],
        "{reasons:?}"
    );
    ensure!(rows.iter().all(|r| r.get::<_, String>(1) == own_records));
    ensure!(rows.iter().all(|r| r.get::<_, i32>(2) > 0), "payloads kept");
    let id = claimed.to_string();
    ensure!(
        count(&db, "SELECT count(*) FROM records WHERE id::text = $1", &id).await? == 0,
        "a record claiming another gateway landed"
    );
    let text = rig.ingests[0].metrics().await?;
    let dead = |reason| {
        metric(
            &text,
            "hl7edge_ingest_dead_letters_total",
            &[("reason", reason)],
        )
    };
    ensure!(dead("gateway_mismatch") == Some(1.0), "{text}");
    ensure!(dead("undecodable") == Some(1.0), "{text}");
    ensure!(dead("unknown_schema") == Some(1.0), "{text}");
    ensure!(metric(&text, "hl7edge_ingest_decode_failures_total", &[]) == Some(2.0));
    Ok(())
}

/// An envelope of one lab result whose control id carries a NUL character (PostgreSQL text
/// cannot hold one), naming `gateway`.
fn envelope_with_nul(gateway: &str, id: Uuid) -> Vec<u8> {
    let mut envelope = Envelope::decode(&envelope(gateway, id, 3)).expect("decodes");
    envelope.entries[0].record.header.control_id = "bad\u{0}id".into();
    envelope.encode().expect("encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_record_is_one_row_and_is_receipted_again_and_a_refused_one_does_not_stop_its_batch()
-> Result<()> {
    let rig = IngestRig::start(1, |c| c).await?;
    let me = IngestRig::gateway(0);
    let receipts = Subscriber::connect(
        rig.broker.addr(),
        &rig.gateway_client(0, "own-receipts"),
        &topics(&me).receipts(),
    )
    .await?;
    let mut gateway =
        Publisher::connect(rig.broker.addr(), &rig.gateway_client(0, "republisher")).await?;
    let records = topics(&me).records("ORU", "R01");
    let id = Uuid::now_v7();
    let refused = Uuid::now_v7();
    let payload = envelope(&me, id, 4);
    gateway.publish(&records, &payload, false).await?;
    gateway
        .publish(&records, &envelope_with_nul(&me, refused), false)
        .await?;
    // The same record again, as a gateway in receipt mode republishes it.
    gateway.publish(&records, &payload, false).await?;
    let db = rig.pg.client().await?;
    receipts
        .wait_until(Duration::from_secs(20), |m| {
            m.iter()
                .filter_map(|r| Receipt::decode(&r.payload).ok())
                .filter(|r| r.ids.contains(&id))
                .count()
                >= 2
        })
        .await
        .context("two receipts naming the republished record")?;
    let key = id.to_string();
    ensure!(
        count(
            &db,
            "SELECT count(*) FROM records WHERE id::text = $1",
            &key
        )
        .await?
            == 1
    );
    let observations = count(
        &db,
        "SELECT count(*) FROM observations WHERE record_id::text = $1",
        &key,
    )
    .await?;
    ensure!(
        observations == 20,
        "{observations} observation rows for one record"
    );
    let bad = refused.to_string();
    ensure!(
        count(
            &db,
            "SELECT count(*) FROM records WHERE id::text = $1",
            &bad
        )
        .await?
            == 0
    );
    let reasons: Vec<String> = db
        .query("SELECT reason, detail FROM dead_letters", &[])
        .await?
        .iter()
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    ensure!(
        reasons.len() == 1
            && reasons[0].starts_with("database_refused")
            && reasons[0].contains("22021"),
        "{reasons:?}"
    );
    for r in receipts.messages() {
        let receipt = Receipt::decode(&r.payload)?;
        ensure!(
            !receipt.ids.contains(&refused),
            "a refused record was receipted"
        );
    }
    Ok(())
}
