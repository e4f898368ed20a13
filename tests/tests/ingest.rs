//! The hub landing: records from two gateways reach PostgreSQL through two `hl7edge-hub ingest`
//! processes in one shared-subscription group, exactly once with their typed rows, across an
//! ingest killed with SIGKILL and a PostgreSQL restart; the ingest's custody receipts name
//! exactly the committed ids. Real mosquitto (mutual TLS, the ACL template) and a real
//! PostgreSQL, started here on free ports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::ingest::{IngestRig, Landed, metric, wait_records};
use hl7edge_e2e::mqtt::Subscriber;
use hl7edge_e2e::steady::Steady;
use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::topic::GatewayTopics;

/// Observations per generated lab result (its panel).
const OBX_PER_LAB_RESULT: i64 = 20;
/// How long everything may take to land after the senders stop.
const LANDING: Duration = Duration::from_secs(60);

/// Every ACKed control id of each gateway (index into the rig's agents).
type AckedByGateway = Vec<(usize, Vec<String>)>;

/// Checks that every ACKed message is in `records` exactly once (one record id per gateway,
/// source and control id), with its 20 observations and its patient identifier, and that
/// nothing landed twice.
fn assert_exactly_once(acked: &AckedByGateway, landed: &Landed) -> Result<()> {
    let mut missing = Vec::new();
    let mut expected = BTreeSet::new();
    for (n, ids) in acked {
        for id in ids {
            let key = (IngestRig::gateway(*n), "lab".to_owned(), id.clone());
            if !landed.records.contains_key(&key) {
                missing.push(key.clone());
            }
            expected.insert(key);
        }
    }
    ensure!(
        missing.is_empty(),
        "{} ACKed messages missing from PostgreSQL, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let split: Vec<_> = landed
        .records
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    ensure!(split.is_empty(), "messages under two record ids: {split:?}");
    for ids in landed.records.values() {
        let id = &ids[0];
        let obx = landed.observations.get(id).copied().unwrap_or(0);
        ensure!(
            obx == OBX_PER_LAB_RESULT,
            "record {id}: {obx} observation rows"
        );
        let pid = landed.identifiers.get(id).copied().unwrap_or(0);
        ensure!(pid == 1, "record {id}: {pid} identifier rows");
    }
    let unexpected: Vec<_> = landed
        .records
        .keys()
        .filter(|k| !expected.contains(*k))
        .collect();
    ensure!(
        unexpected.is_empty(),
        "records nobody was ACKed for: {unexpected:?}"
    );
    Ok(())
}

/// Sends `count` lab results to each agent (one sender per agent) and returns what was ACKed.
async fn send_to_both(rig: &IngestRig, count: u64) -> Result<AckedByGateway> {
    let mut a = rig.sender(0);
    let mut b = rig.sender(1);
    tokio::join!(
        a.send_all(hl7gen::messages(Kind::Lab, "lisa", 0..count)),
        b.send_all(hl7gen::messages(Kind::Lab, "lisb", 0..count)),
    );
    ensure!(
        a.acked().len() == count as usize,
        "{:?}",
        a.outcomes().last()
    );
    ensure!(
        b.acked().len() == count as usize,
        "{:?}",
        b.outcomes().last()
    );
    Ok(vec![(0, a.acked()), (1, b.acked())])
}

/// Steady load on both agents until `finish`.
fn steady(rig: &IngestRig) -> Vec<Steady> {
    (0..2)
        .map(|n| {
            Steady::start(
                "lab",
                [(if n == 0 { "lisa" } else { "lisb" }, rig.sender(n))],
            )
        })
        .collect()
}

async fn finish(load: Vec<Steady>) -> Result<AckedByGateway> {
    let mut acked = Vec::new();
    for (n, s) in load.into_iter().enumerate() {
        let ids = s
            .finish()
            .await?
            .into_iter()
            .flat_map(|a| a.control_ids)
            .collect();
        acked.push((n, ids));
    }
    Ok(acked)
}

async fn landed_after(rig: &IngestRig, acked: &AckedByGateway) -> Result<Landed> {
    let total: usize = acked.iter().map(|(_, ids)| ids.len()).sum();
    let db = rig.pg.client().await?;
    let count = wait_records(&db, total as i64, LANDING).await?;
    ensure!(
        count >= total as i64,
        "{count} of {total} records landed in {LANDING:?}"
    );
    // Whatever is still in flight (a duplicate) would show now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(Landed::read(&db).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acked_message_lands_once_with_its_typed_rows_through_two_ingests_in_one_share_group()
-> Result<()> {
    let rig = IngestRig::start(2, |c| c.set("telemetry.interval", "1s")).await?;
    let acked = send_to_both(&rig, 300).await?;
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    ensure!(landed.len() == 600, "{} rows", landed.len());

    // Both members of the group took a share of the records.
    for (n, ingest) in rig.ingests.iter().enumerate() {
        let text = ingest.metrics().await?;
        let new = metric(&text, "hl7edge_ingest_records_total", &[("outcome", "new")]);
        ensure!(
            new.is_some_and(|v| v > 0.0),
            "ingest {n} committed nothing:\n{text}"
        );
        ensure!(
            metric(&text, "hl7edge_ingest_batch_records_count", &[]).is_some_and(|v| v > 0.0),
            "{text}"
        );
    }
    // Typed columns hold what the records say.
    let db = rig.pg.client().await?;
    let row = db
        .query_one(
            "SELECT o.code_system, o.code, o.standard, o.unit, o.status, o.value_num IS NOT NULL,
                    o.observed_at IS NOT NULL, cardinality(o.flags), r.message_type,
                    o.value_text, o.value_type, r.record #>> '{body,Observations,orders,0,observations,0}',
                    r.record -> 'header' ->> 'control_id' = r.control_id, r.sequence
             FROM observations o JOIN records r ON r.id = o.record_id
             WHERE o.ordinal = 0 LIMIT 1",
            &[],
        )
        .await?;
    let code_system: Option<String> = row.get(0);
    ensure!(code_system.as_deref() == Some("LN"), "{code_system:?}");
    ensure!(row.get::<_, String>(2) == "original");
    ensure!(row.get::<_, Option<String>>(3).is_some());
    ensure!(row.get::<_, String>(4) == "F");
    ensure!(
        row.get::<_, bool>(5) && row.get::<_, bool>(6),
        "value_num and observed_at of OBX 1: {:?}",
        row.get::<_, Option<String>>(11)
    );
    ensure!(row.get::<_, i32>(7) == 1, "one OBX-8 flag");
    ensure!(row.get::<_, String>(8) == "ORU_R01");
    ensure!(row.get::<_, bool>(12), "the JSONB is the record");
    ensure!(
        row.get::<_, Option<i64>>(13).is_some_and(|n| n >= 1),
        "a schema 3 record has its per-source sequence"
    );
    // Each gateway's source numbers its records 1..=300, each once.
    let sequences = db
        .query(
            "SELECT gateway, source, count(*), count(DISTINCT sequence), min(sequence),
                    max(sequence)
             FROM records GROUP BY gateway, source ORDER BY gateway",
            &[],
        )
        .await?;
    ensure!(sequences.len() == 2, "{} gateway sources", sequences.len());
    for r in &sequences {
        let (rows, distinct) = (r.get::<_, i64>(2), r.get::<_, i64>(3));
        let (min, max) = (r.get::<_, Option<i64>>(4), r.get::<_, Option<i64>>(5));
        ensure!(
            rows == 300 && distinct == 300 && min == Some(1) && max == Some(300),
            "{}/{}: {rows} rows, {distinct} sequence numbers, {min:?}..{max:?}",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        );
    }
    // Heartbeats over time, for both gateways, through the Grafana view.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let gateways: i64 = db
            .query_one(
                "SELECT count(DISTINCT gateway) FROM heartbeat_series WHERE forwarded IS NOT NULL",
                &[],
            )
            .await?
            .get(0);
        if gateways == 2 {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "heartbeats of {gateways} gateways"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead: i64 = db
        .query_one("SELECT count(*) FROM dead_letters", &[])
        .await?
        .get(0);
    ensure!(dead == 0, "{dead} dead letters without bad input");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ingest_killed_mid_stream_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let mut rig = IngestRig::start(2, |c| c).await?;
    let db = rig.pg.client().await?;
    let load = steady(&rig);
    wait_records(&db, 200, Duration::from_secs(30)).await?;
    rig.ingests[0].kill().await?;
    let at_kill = wait_records(&db, 0, Duration::ZERO).await?;
    // The other member keeps ingesting while the killed one is down.
    let later = wait_records(&db, at_kill + 200, Duration::from_secs(30)).await?;
    ensure!(
        later >= at_kill + 200,
        "the surviving ingest stalled at {later}"
    );
    // Restarted (as systemd would), it gets its session and the messages it held back.
    rig.ingests[0].restart().await?;
    wait_records(&db, later + 200, Duration::from_secs(30)).await?;
    let acked = finish(load).await?;
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_mid_stream_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let mut rig = IngestRig::start(2, |c| c).await?;
    let db = rig.pg.client().await?;
    let load = steady(&rig);
    wait_records(&db, 200, Duration::from_secs(30)).await?;
    rig.pg.stop().await?;
    // Down long enough for the ingests to fail a commit and back off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    rig.pg.start_again().await?;
    let db = rig.pg.client().await?;
    let acked = finish(load).await?;
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    let mut retried = 0.0;
    for ingest in &rig.ingests {
        let text = ingest.metrics().await?;
        retried += metric(&text, "hl7edge_ingest_database_retries_total", &[]).unwrap_or(0.0);
        ensure!(
            metric(&text, "hl7edge_ingest_database_up", &[]) == Some(1.0),
            "{text}"
        );
    }
    ensure!(retried > 0.0, "no ingest noticed PostgreSQL going away");
    let dead: i64 = db
        .query_one("SELECT count(*) FROM dead_letters", &[])
        .await?
        .get(0);
    ensure!(dead == 0, "{dead} dead letters");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_name_exactly_the_committed_ids_on_each_gateways_own_topic() -> Result<()> {
    let rig = IngestRig::start(2, |c| c).await?;
    let mut watchers = Vec::new();
    for n in 0..2 {
        let name = IngestRig::gateway(n);
        let [org, site, id] = name.split('/').collect::<Vec<_>>()[..] else {
            unreachable!("three levels")
        };
        let topic = GatewayTopics::new("hl7edge/v1", org, site, id).receipts();
        let options = rig.gateway_client(n, &format!("receipt-watch-{n}"));
        watchers.push((
            name,
            Subscriber::connect(rig.broker.addr(), &options, &topic).await?,
        ));
    }
    let acked = send_to_both(&rig, 150).await?;
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    let db = rig.pg.client().await?;
    for (name, watcher) in &watchers {
        let committed: BTreeSet<String> = db
            .query("SELECT id::text FROM records WHERE gateway = $1", &[name])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        ensure!(
            committed.len() == 150,
            "{name}: {} committed",
            committed.len()
        );
        let received = |m: &[hl7edge_e2e::mqtt::Received]| -> Result<BTreeMap<String, usize>> {
            let mut ids = BTreeMap::new();
            for msg in m {
                let receipt = Receipt::decode(&msg.payload).context("a receipt that decodes")?;
                ensure!(
                    &receipt.gateway == name,
                    "receipt for {} on {name}'s topic",
                    receipt.gateway
                );
                for id in receipt.ids.as_slice() {
                    *ids.entry(id.to_string()).or_insert(0) += 1;
                }
            }
            Ok(ids)
        };
        let _ = watcher
            .wait_until(Duration::from_secs(20), |m| {
                received(m).is_ok_and(|ids| ids.len() >= committed.len())
            })
            .await;
        let ids = watcher.with_messages(received)?;
        let named: BTreeSet<String> = ids.keys().cloned().collect();
        ensure!(
            named == committed,
            "{name}: receipts name {} ids, {} committed; not committed but receipted: {:?}",
            named.len(),
            committed.len(),
            named.difference(&committed).take(5).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingests_killed_while_postgresql_is_down_lose_none_of_the_messages_they_held() -> Result<()>
{
    let mut rig = IngestRig::start(2, |c| c).await?;
    let db = rig.pg.client().await?;
    let load = steady(&rig);
    wait_records(&db, 100, Duration::from_secs(30)).await?;
    // The ingests now hold messages they cannot commit; an acknowledgement before the commit
    // would make the broker forget them.
    rig.pg.stop().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for ingest in &mut rig.ingests {
        ingest.kill().await?;
    }
    rig.pg.start_again().await?;
    for ingest in &mut rig.ingests {
        ingest.restart().await?;
    }
    let acked = finish(load).await?;
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retired_ingest_leaves_the_share_group_and_no_record_waits_for_it() -> Result<()> {
    let mut rig = IngestRig::start(2, |c| c).await?;
    let first = send_to_both(&rig, 50).await?;
    landed_after(&rig, &first).await?;
    let status = rig.ingests[1].retire().await?;
    ensure!(
        status.success(),
        "--retire exited with {status}:\n{}",
        rig.ingests[1].log()
    );
    ensure!(
        rig.ingests[1].log().contains("retired"),
        "{}",
        rig.ingests[1].log()
    );
    // Without the retirement, the stopped member's session would hold its share of these.
    let mut a = rig.sender(0);
    let mut b = rig.sender(1);
    tokio::join!(
        a.send_all(hl7gen::messages(Kind::Lab, "lisa", 50..150)),
        b.send_all(hl7gen::messages(Kind::Lab, "lisb", 50..150)),
    );
    let mut acked = first;
    acked[0].1.extend(a.acked());
    acked[1].1.extend(b.acked());
    let landed = landed_after(&rig, &acked).await?;
    assert_exactly_once(&acked, &landed)?;
    Ok(())
}
