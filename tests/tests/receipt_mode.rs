//! Custody receipts end to end (RELIABILITY.md scenario 21): a broker that loses what it
//! acknowledged. The broker runs without persistence, the hub's ingest is stopped, the gateway
//! sends and the broker PUBACKs; then the broker restarts (forgetting everything it held for the
//! ingest) and the ingest comes back. In receipt mode every ACKed message still lands in
//! PostgreSQL exactly once, because the gateway kept each record until the hub's receipt and
//! published it again; in puback mode the same run loses every one of them, which is the loss
//! receipt mode prevents. Forged receipts: another gateway's identity cannot publish on a
//! gateway's receipts topic (ACL), and a receipt on the right topic naming another gateway is
//! ignored. Real mosquitto (mutual TLS, the ACL template), real PostgreSQL, real
//! `hl7edge-hub ingest`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::AgentConfig;
use hl7edge_e2e::broker::Persistence;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::ingest::{IngestRig, Landed, wait_records};
use hl7edge_e2e::mqtt::{ClientOptions, Publisher};
use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::topic::GatewayTopics;
use serde_json::Value;
use uuid::Uuid;

/// Messages each test sends.
const COUNT: u64 = 60;

fn receipt_mode(config: AgentConfig) -> AgentConfig {
    config
        .set("hub.custody", "receipt")
        .set("hub.receipt_timeout", "3s")
}

fn puback_mode(config: AgentConfig) -> AgentConfig {
    config.set("hub.custody", "puback")
}

fn depth(status: &Value) -> u64 {
    status["queue"]["depth"].as_u64().unwrap_or(u64::MAX)
}

fn awaiting(status: &Value) -> u64 {
    status["hub"]["awaiting_receipt"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Sends `COUNT` lab results to gateway `n` and returns the ACKed control ids.
async fn send(rig: &IngestRig, n: usize, prefix: &str) -> Result<Vec<String>> {
    let mut sender = rig.sender(n);
    sender
        .send_all(hl7gen::messages(Kind::Lab, prefix, 0..COUNT))
        .await;
    ensure!(
        sender.acked().len() == COUNT as usize,
        "{:?}",
        sender.outcomes().last()
    );
    Ok(sender.acked())
}

/// The ACKed control ids of gateway `n` that are in PostgreSQL, each once; fails on a
/// duplicate.
fn landed_once(landed: &Landed, n: usize, acked: &[String]) -> Result<BTreeSet<String>> {
    let gateway = IngestRig::gateway(n);
    let mut found = BTreeSet::new();
    for id in acked {
        let key = (gateway.clone(), "lab".to_owned(), id.clone());
        if let Some(ids) = landed.records.get(&key) {
            ensure!(ids.len() == 1, "{id} landed under {} record ids", ids.len());
            found.insert(id.clone());
        }
    }
    Ok(found)
}

/// Stops the ingest (its persistent session stays, the broker queues for it), sends, waits
/// until the broker acknowledged everything, then restarts the broker without persistence and
/// starts the ingest again. Returns the ACKed control ids.
async fn lose_at_the_broker(
    rig: &mut IngestRig,
    what_is_held: fn(&Value) -> bool,
) -> Result<Vec<String>> {
    let status = rig.ingests[0].terminate().await?;
    ensure!(status.success(), "the ingest stopped with {status}");
    let acked = send(rig, 0, "lisa").await?;
    let held = rig.agents[0]
        .wait_status(Duration::from_secs(30), |s| {
            depth(s) == 0 && what_is_held(s)
        })
        .await?;
    ensure!(
        depth(&held) == 0 && what_is_held(&held),
        "the broker did not acknowledge everything: {}",
        held["queue"]
    );
    let db = rig.pg.client().await?;
    ensure!(
        wait_records(&db, 0, Duration::ZERO).await? == 0,
        "the ingest read records while it was stopped"
    );
    // The broker forgets the ingest's queue: what it acknowledged is gone from the hub's path.
    rig.broker.kill().await?;
    rig.broker.restart().await?;
    rig.ingests[0].restart().await?;
    Ok(acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipt_mode_delivers_every_record_exactly_once_though_the_broker_lost_them_after_its_puback()
-> Result<()> {
    let mut rig = IngestRig::start_with(1, Persistence::Off, receipt_mode).await?;
    let acked = lose_at_the_broker(&mut rig, |s| awaiting(s) == COUNT).await?;
    let db = rig.pg.client().await?;
    let count = wait_records(&db, COUNT as i64, Duration::from_secs(60)).await?;
    // Anything still on its way (a duplicate) would show now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let landed = Landed::read(&db).await?;
    let found = landed_once(&landed, 0, &acked)?;
    ensure!(
        found.len() == acked.len() && landed.len() == acked.len(),
        "{count} rows; {} of {} ACKed messages landed",
        found.len(),
        acked.len()
    );
    // The receipts reached the gateway: nothing is held any more (the link's times are
    // recorded within a few seconds).
    let done = rig.agents[0]
        .wait_status(Duration::from_secs(30), |s| {
            depth(s) == 0 && awaiting(s) == 0 && s["hub"]["last_receipt_at"].is_string()
        })
        .await?;
    ensure!(
        awaiting(&done) == 0,
        "still awaiting receipts: {}",
        done["hub"]
    );
    ensure!(
        done["hub"]["last_receipt_at"].is_string(),
        "{}",
        done["hub"]
    );
    ensure!(
        rig.agents[0]
            .log()
            .contains("publishing again records whose custody receipt did not come"),
        "the gateway never said it published again"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn puback_mode_loses_every_record_the_broker_lost_after_its_puback() -> Result<()> {
    let mut rig = IngestRig::start_with(1, Persistence::Off, puback_mode).await?;
    let acked = lose_at_the_broker(&mut rig, |s| awaiting(s) == 0).await?;
    // Time for anything the gateway still had to arrive (it has nothing: it deleted them).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let db = rig.pg.client().await?;
    let landed = Landed::read(&db).await?;
    let found = landed_once(&landed, 0, &acked)?;
    ensure!(
        found.is_empty(),
        "{} of {} records arrived; puback mode was expected to lose them all",
        found.len(),
        acked.len()
    );
    let status = rig.agents[0].status_json()?;
    ensure!(
        depth(&status) == 0 && awaiting(&status) == 0,
        "the gateway kept something: {}",
        status["queue"]
    );
    // The path works: what is sent now lands.
    let later = send(&rig, 0, "lisz").await?;
    let count = wait_records(&db, later.len() as i64, Duration::from_secs(60)).await?;
    ensure!(
        count == later.len() as i64,
        "{count} rows after the broker came back"
    );
    Ok(())
}

/// The victim's record ids, read from its database.
fn record_ids(database: &std::path::Path) -> Result<Vec<Uuid>> {
    let conn = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare("SELECT id FROM records ORDER BY seq")?;
    let ids = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .map(|id| Ok(Uuid::from_slice(&id?)?))
        .collect::<Result<Vec<Uuid>>>()?;
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_receipt_is_refused_by_the_acl_or_ignored_and_only_the_hubs_receipt_for_this_gateway_counts()
-> Result<()> {
    let mut rig = IngestRig::start(1, receipt_mode).await?;
    // No real receipts while the forgeries arrive.
    rig.ingests[0].terminate().await?;
    let victim = IngestRig::gateway(1);
    let acked = send(&rig, 1, "lisb").await?;
    let held = rig.agents[1]
        .wait_status(Duration::from_secs(30), |s| awaiting(s) == COUNT)
        .await?;
    ensure!(awaiting(&held) == COUNT, "{}", held["hub"]);
    let ids = record_ids(&rig.agents[1].database_path())?;
    ensure!(ids.len() == COUNT as usize, "{} rows", ids.len());
    let [org, site, id] = victim.split('/').collect::<Vec<_>>()[..] else {
        unreachable!("org/site/id")
    };
    let receipts_topic = GatewayTopics::new("hl7edge/v1", org, site, id).receipts();

    // gw-0001 forges a receipt for gw-0002, on gw-0002's topic: the ACL refuses the publish.
    let mut intruder =
        Publisher::connect(rig.broker.addr(), &rig.gateway_client(0, "forger")).await?;
    let forged = Receipt::new(victim.clone(), ids.iter().copied()).encode()?;
    intruder.publish(&receipts_topic, &forged, false).await?;
    // The hub's own identity, on the right topic, but naming another gateway: ignored.
    let ingest = ClientOptions::new("hub-forger", &rig.pki.ca, Some(&rig.ingest_identity));
    let mut hub = Publisher::connect(rig.broker.addr(), &ingest).await?;
    let misnamed = Receipt::new(IngestRig::gateway(0), ids.iter().copied()).encode()?;
    hub.publish(&receipts_topic, &misnamed, false).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = rig.agents[1].status_json()?;
    ensure!(
        awaiting(&status) == COUNT,
        "a forged receipt removed records: {}",
        status["hub"]
    );
    let log = rig.agents[1].log();
    ensure!(
        log.contains("a receipt for gateway acme-health/clinic-12/gw-0001 on this gateway's topic"),
        "the misnamed receipt was not reported as ignored"
    );
    // The control: the same identity naming the right gateway counts, for exactly the ids named.
    let half = Receipt::new(victim.clone(), ids[..10].iter().copied()).encode()?;
    hub.publish(&receipts_topic, &half, false).await?;
    let status = rig.agents[1]
        .wait_status(Duration::from_secs(20), |s| awaiting(s) == COUNT - 10)
        .await?;
    ensure!(awaiting(&status) == COUNT - 10, "{}", status["hub"]);

    // The hub's real receipts: every ACKed message lands once and leaves the gateway.
    rig.ingests[0].restart().await?;
    let db = rig.pg.client().await?;
    wait_records(&db, COUNT as i64, Duration::from_secs(60)).await?;
    let done = rig.agents[1]
        .wait_status(Duration::from_secs(60), |s| {
            awaiting(s) == 0 && depth(s) == 0
        })
        .await?;
    ensure!(awaiting(&done) == 0, "{}", done["hub"]);
    let landed = Landed::read(&db).await.context("landed")?;
    let found = landed_once(&landed, 1, &acked)?;
    ensure!(
        found.len() == acked.len(),
        "{} of {} landed",
        found.len(),
        acked.len()
    );
    Ok(())
}
