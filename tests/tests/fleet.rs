//! What central IT sees of a fleet: the retained status and its last will, the heartbeat's
//! counters (with drift alerts, resends and reused control ids), the real `hl7edge-hub fleet
//! --json` and `serve` outputs for two gateways (one with a backlog), and `hl7edge-hub tail`
//! sharing the records between two processes.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen;
use hl7edge_e2e::hub::{self, HubTools};
use hl7edge_e2e::mllp::{AckCode, Connection, parse_ack};
use hl7edge_e2e::mqtt::{ClientOptions, Received, Subscriber};
use hl7edge_e2e::puback_gate::PubackGate;
use hl7edge_e2e::rig::{FILTER, Rig};
use hl7edge_protocol::telemetry::{Counters, Heartbeat, Status};

const WAIT: Duration = Duration::from_secs(5);
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn statuses(rig: &Rig) -> Vec<(Status, bool)> {
    rig.decoded().statuses
}

#[tokio::test]
async fn the_retained_status_is_online_and_the_last_will_marks_a_killed_agent_offline() -> Result<()>
{
    let mut rig = Rig::start(|c| c).await?;
    let online = |m: &[hl7edge_e2e::mqtt::Received]| {
        decode::decode(m)
            .statuses
            .iter()
            .any(|(s, retained)| s.online && *retained && s.version == VERSION)
    };
    rig.hub
        .wait_until(Duration::from_secs(20), online)
        .await
        .with_context(|| format!("no retained online status: {:?}", statuses(&rig)))?;
    // The interval is 60 s, but a heartbeat follows the connection at once.
    rig.hub
        .wait_until(Duration::from_secs(15), |m| {
            !decode::decode(m).heartbeats.is_empty()
        })
        .await
        .context("no heartbeat soon after connecting")?;
    let first = rig.decoded().heartbeats.remove(0);
    ensure!(first.interval_s == 60 && first.uptime_s < 15, "{first:?}");
    rig.agent.sigkill().await?;
    let offline = |m: &[hl7edge_e2e::mqtt::Received]| {
        decode::decode(m).statuses.iter().any(|(s, _)| {
            !s.online && s.reason.as_deref() == Some("connection lost") && s.version == VERSION
        })
    };
    rig.hub
        .wait_until(Duration::from_secs(30), offline)
        .await
        .with_context(|| format!("no last will: {:?}", statuses(&rig)))?;
    // A hub connecting later is told at once, by the retained message.
    let late = ClientOptions::new("late-hub", &rig.pki.ca, Some(&rig.pki.subscriber));
    let late = Subscriber::connect(rig.broker.addr(), &late, FILTER).await?;
    late.wait_until(WAIT, |m| {
        let decoded = decode::decode(m);
        decoded.statuses.len() == 1 && decoded.statuses.iter().all(|(s, r)| !s.online && *r)
    })
    .await
    .with_context(|| format!("retained offline status: {:?}", late.messages().len()))?;
    Ok(())
}

/// Malformed messages the agent must answer with AE and quarantine.
fn malformed() -> Vec<Vec<u8>> {
    vec![
        b"PID|1||123\rOBX|1|NM|x||1\r".to_vec(),
        b"hello, this is not HL7".to_vec(),
        b"MSH\rPID|1\r".to_vec(),
    ]
}

#[tokio::test]
async fn heartbeat_counters_equal_what_was_sent() -> Result<()> {
    let rig = Rig::start(|c| c.set("telemetry.interval", "1s")).await?;
    let addr = rig.agent.mllp_addr("lab").context("lab")?;
    let mut connection = Connection::connect(addr, None, WAIT).await?;
    let good = 7u64;
    for n in 0..good {
        let ack = parse_ack(
            &connection
                .send(&hl7gen::lab_result("lis", n).bytes, WAIT)
                .await?,
        )?;
        ensure!(ack.code == AckCode::AA, "message {n}: {ack:?}");
    }
    // Bytes outside any frame (the next frame's start ends the run):
    // skipped, and counted for central IT.
    let garbage = b"noise before a frame";
    connection.write_raw(garbage).await?;
    let bad = malformed();
    for bytes in &bad {
        let ack = parse_ack(&connection.send(bytes, WAIT).await?)?;
        ensure!(ack.code == AckCode::AE, "{ack:?}");
    }
    let bad = bad.len() as u64;
    let expected = Counters {
        received: good + bad,
        acknowledged: good,
        rejected: 0,
        quarantined: bad,
        duplicates: 0,
        forwarded: good,
    };
    let matching = |hb: &Heartbeat| hb.counters == expected && hb.queue.depth == 0;
    let found = rig
        .hub
        .wait_until(Duration::from_secs(30), |m| {
            decode::decode(m).heartbeats.iter().any(matching)
        })
        .await;
    let heartbeats = rig.decoded().heartbeats;
    ensure!(
        found.is_ok(),
        "no heartbeat with {expected:?}; last: {:?}",
        heartbeats.last()
    );
    let hb = heartbeats
        .iter()
        .find(|hb| matching(hb))
        .context("matching heartbeat")?;
    ensure!(hb.interval_s == 1 && hb.version == VERSION, "{hb:?}");
    ensure!(
        hb.gateway.id == "gw-0001" && hb.broker_reconnects == 0,
        "{hb:?}"
    );
    ensure!(hb.queue.oldest_unsent_age_ms.is_none(), "{hb:?}");
    ensure!(
        hb.storage.db_bytes > 0 && hb.storage.disk_free_bytes > 0,
        "{hb:?}"
    );
    ensure!(
        hb.cert_days_left.is_some_and(|d| d > 0),
        "the test certificate is valid: {hb:?}"
    );
    let lab = hb.sources.first().context("source lab")?;
    ensure!(lab.name == "lab" && lab.received == good + bad, "{lab:?}");
    ensure!(
        lab.acknowledged == good && lab.quarantined == bad,
        "{lab:?}"
    );
    ensure!(lab.last_message_ms.is_some(), "{lab:?}");
    ensure!(
        lab.garbage_bytes == garbage.len() as u64
            && lab.oversize_frames == 0
            && lab.refused_connections == 0
            && lab.tls_failures == 0,
        "{lab:?}"
    );
    Ok(())
}

#[tokio::test]
async fn heartbeats_report_drift_resends_and_reused_control_ids() -> Result<()> {
    let rig = Rig::start(|mut c| {
        if let Some(lab) = c.listeners.iter_mut().find(|l| l.name == "lab") {
            lab.extra
                .insert("drift_learning_messages".into(), toml::Value::Integer(2));
        }
        c.set("telemetry.interval", "1s")
    })
    .await?;
    let addr = rig.agent.mllp_addr("lab").context("lab")?;
    let mut connection = Connection::connect(addr, None, WAIT).await?;
    let first = hl7gen::lab_result("lis", 0).bytes;
    let mut drifted = hl7gen::lab_result("lis", 2).bytes;
    drifted.extend_from_slice(b"ZDS|1|upgrade\r");
    // Same control id as the first, other content: stored as new, counted as reuse.
    let mut reused = first.clone();
    reused.extend_from_slice(b"NTE|2|L|amended\r");
    let sends = [
        first.clone(),
        hl7gen::lab_result("lis", 1).bytes,
        first,
        drifted,
        reused,
    ];
    for (n, bytes) in sends.iter().enumerate() {
        let ack = parse_ack(&connection.send(bytes, WAIT).await?)?;
        ensure!(ack.code == AckCode::AA, "message {n}: {ack:?}");
    }
    let reported = |hb: &Heartbeat| {
        hb.sources.first().is_some_and(|lab| {
            lab.resends == 1
                && lab.control_id_reused == 1
                && lab.drift.iter().any(|d| d == "new segment ZDS")
        })
    };
    let found = rig
        .hub
        .wait_until(Duration::from_secs(30), |m| {
            decode::decode(m).heartbeats.iter().any(reported)
        })
        .await;
    ensure!(
        found.is_ok(),
        "no heartbeat with the drift and counts; last: {:?}",
        rig.decoded().heartbeats.last()
    );
    Ok(())
}

#[tokio::test]
async fn heartbeats_interleaved_with_record_publishes_leave_the_puback_matching_intact()
-> Result<()> {
    // One record per publish and a window of two: heartbeats land between record publishes.
    let rig = Rig::start(|c| {
        c.set("telemetry.interval", "1s")
            .set("hub.inflight", 2)
            .set("hub.batch_max_records", 1)
    })
    .await?;
    let mut sender = rig.sender("lab")?;
    let count = 300u64;
    sender
        .send_all(hl7gen::messages(hl7gen::Kind::Lab, "lis", 0..count))
        .await;
    let acked = sender.acked();
    ensure!(acked.len() == count as usize, "all acked: {}", acked.len());
    let report = rig
        .wait_delivered(
            &[hl7edge_e2e::checker::Acked::new("lab", acked)],
            Duration::from_secs(60),
        )
        .await;
    report.assert_ok_and_ordered();
    let done = |hb: &Heartbeat| hb.counters.forwarded == count && hb.queue.depth == 0;
    rig.hub
        .wait_until(Duration::from_secs(15), |m| {
            decode::decode(m).heartbeats.iter().any(done)
        })
        .await
        .with_context(|| format!("last heartbeat: {:?}", rig.decoded().heartbeats.last()))?;
    let heartbeats = rig.decoded().heartbeats;
    let during = heartbeats
        .iter()
        .filter(|hb| hb.counters.acknowledged > 0 && hb.counters.forwarded < count)
        .count();
    let last = heartbeats.iter().find(|hb| done(hb)).context("final")?;
    // A heartbeat PUBACK taken for a record's (or the reverse) would rebuild the connection
    // and publish records again.
    ensure!(
        last.broker_reconnects == 0 && report.redelivered == 0,
        "reconnects {}, redelivered {}",
        last.broker_reconnects,
        report.redelivered
    );
    ensure!(
        last.counters.forwarded == count,
        "every record counted once: {last:?}"
    );
    ensure!(
        during > 0,
        "no heartbeat was published while records were being forwarded"
    );
    Ok(())
}

#[tokio::test]
async fn two_tail_processes_sharing_a_subscription_print_every_record_once() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    let mut first = tools.tail("tail-one", Some("hubs"))?;
    let mut second = tools.tail("tail-two", Some("hubs"))?;
    first.wait_subscribed(Duration::from_secs(20)).await?;
    second.wait_subscribed(Duration::from_secs(20)).await?;
    let mut sender = rig.sender("lab")?;
    let count = 60u64;
    for n in 0..count {
        sender.send(&hl7gen::lab_result("lis", n)).await;
    }
    let acked = sender.acked();
    ensure!(acked.len() == count as usize, "all acked: {}", acked.len());
    let report = rig
        .wait_delivered(
            &[hl7edge_e2e::checker::Acked::new("lab", acked)],
            Duration::from_secs(30),
        )
        .await;
    report.assert_ok();
    let all: BTreeSet<String> = rig
        .decoded()
        .delivered
        .into_iter()
        .map(|d| d.record_id)
        .collect();
    ensure!(all.len() == count as usize, "records: {}", all.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let printed = first.record_ids().len() + second.record_ids().len();
        if printed >= all.len() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.stop().await?;
    second.stop().await?;
    let (a, b) = (first.record_ids(), second.record_ids());
    let (set_a, set_b): (BTreeSet<String>, BTreeSet<String>) =
        (a.iter().cloned().collect(), b.iter().cloned().collect());
    ensure!(
        set_a.len() == a.len() && set_b.len() == b.len(),
        "a process printed an id twice"
    );
    ensure!(
        set_a.is_disjoint(&set_b),
        "ids in both: {:?}",
        set_a.intersection(&set_b).collect::<Vec<_>>()
    );
    let union: BTreeSet<String> = set_a.union(&set_b).cloned().collect();
    ensure!(
        union == all,
        "missing: {:?}, unexpected: {:?}",
        all.difference(&union).collect::<Vec<_>>(),
        union.difference(&all).collect::<Vec<_>>()
    );
    ensure!(
        !a.is_empty() && !b.is_empty(),
        "the shared subscription split the records ({} / {})",
        a.len(),
        b.len()
    );
    Ok(())
}

fn gateway(id: &str, config: AgentConfig) -> AgentConfig {
    AgentConfig {
        gateway: ("acme-health".into(), "clinic-12".into(), id.into()),
        ..config
    }
    .set("telemetry.interval", "1s")
    // Room in the client's window for the heartbeats the gate never acknowledges.
    .set("hub.inflight", 64)
}

/// Sends `count` lab results to `agent`'s `lab` listener; all must be acknowledged.
async fn send(agent: &Agent, sender: &str, count: u64) -> Result<()> {
    let addr = agent.mllp_addr("lab").context("lab")?;
    let mut sender_ = hl7edge_e2e::mllp::Sender::new(hl7edge_e2e::rig::quick(addr));
    for n in 0..count {
        sender_.send(&hl7gen::lab_result(sender, n)).await;
    }
    ensure!(sender_.acked().len() == count as usize, "all acknowledged");
    Ok(())
}

fn heartbeat_of<'a>(heartbeats: &'a [Heartbeat], id: &str) -> Option<&'a Heartbeat> {
    heartbeats.iter().rev().find(|hb| hb.gateway.id == id)
}

fn row<'a>(fleet: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    fleet["gateways"]
        .as_array()?
        .iter()
        .find(|row| row["gateway"] == id)
}

// Multi-thread: the relay's tasks must keep running while the test thread blocks (building the
// hub binary on first use, polling ports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_and_metrics_show_both_gateways_with_their_backlog() -> Result<()> {
    let rig = Rig::start(|c| gateway("gw-a", c)).await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    // gw-b reaches the broker through a relay that withholds PUBACKs: online, publishing, and
    // never able to clear its queue.
    let gate = PubackGate::start(&rig.pki, rig.broker.addr()).await?;
    let agent_b = Agent::start(&gateway("gw-b", AgentConfig::new(&rig.pki, &gate.url()))).await?;
    let serve = tools.serve().await?;
    let (sent_a, backlog_b) = (3u64, 5u64);
    send(&rig.agent, "lis-a", sent_a).await?;
    send(&agent_b, "lis-b", backlog_b).await?;
    let settled = |m: &[Received]| {
        let hbs = decode::decode(m).heartbeats;
        let a = heartbeat_of(&hbs, "gw-a");
        let b = heartbeat_of(&hbs, "gw-b");
        a.is_some_and(|a| a.counters.forwarded == sent_a && a.queue.depth == 0)
            && b.is_some_and(|b| b.counters.acknowledged == backlog_b && b.queue.depth == backlog_b)
    };
    let found = rig.hub.wait_until(Duration::from_secs(30), settled).await;
    let hbs = rig.decoded().heartbeats;
    ensure!(
        found.is_ok(),
        "heartbeats never showed the backlog: a={:?} b={:?}",
        heartbeat_of(&hbs, "gw-a"),
        heartbeat_of(&hbs, "gw-b")
    );
    let b = heartbeat_of(&hbs, "gw-b").context("gw-b")?;
    ensure!(b.counters.forwarded == 0, "nothing acknowledged: {b:?}");

    let fleet = tools.fleet_json(Duration::from_secs(3)).await?;
    let a = row(&fleet, "gw-a").with_context(|| format!("gw-a in {fleet:#}"))?;
    let b = row(&fleet, "gw-b").with_context(|| format!("gw-b in {fleet:#}"))?;
    ensure!(
        a["state"] == "online" && b["state"] == "online",
        "{fleet:#}"
    );
    ensure!(
        a["queue_depth"] == 0 && a["oldest_unsent_ms"].is_null(),
        "{a:#}"
    );
    ensure!(b["queue_depth"] == backlog_b, "{b:#}");
    ensure!(
        b["oldest_unsent_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{b:#}"
    );
    ensure!(b["counters"]["acknowledged"] == backlog_b, "{b:#}");

    let depth = |text: &str, id: &str| hub::sample(text, "hl7edge_queue_depth", &[("gateway", id)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = serve.metrics().await?;
        let done =
            depth(&text, "gw-a") == Some(0.0) && depth(&text, "gw-b") == Some(backlog_b as f64);
        if done || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(depth(&text, "gw-a") == Some(0.0), "gw-a depth:\n{text}");
    ensure!(
        depth(&text, "gw-b") == Some(backlog_b as f64),
        "gw-b depth:\n{text}"
    );
    let oldest = |id: &str| hub::sample(&text, "hl7edge_oldest_unsent_seconds", &[("gateway", id)]);
    ensure!(
        oldest("gw-b").is_some_and(|s| s > 0.0),
        "gw-b oldest:\n{text}"
    );
    ensure!(oldest("gw-a") == Some(0.0), "an empty queue:\n{text}");
    for id in ["gw-a", "gw-b"] {
        let online = hub::sample(&text, "hl7edge_gateway_online", &[("gateway", id)]);
        ensure!(online == Some(1.0), "{id} online:\n{text}");
    }
    Ok(())
}

/// True when `messages` hold the last will (offline, connection lost) of gateway `id`.
fn last_will_of(messages: &[Received], id: &str) -> bool {
    messages.iter().any(|r| {
        r.topic.ends_with(&format!("/{id}/status"))
            && Status::decode(&r.payload).is_ok_and(|s| s.is_last_will())
    })
}

// Multi-thread: the relay's tasks must keep running while the test thread blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_after_its_gateways_sees_their_backlog_within_a_second() -> Result<()> {
    let rig = Rig::start(|c| gateway("gw-a", c)).await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    let gate = PubackGate::start(&rig.pki, rig.broker.addr()).await?;
    let mut agent_b =
        Agent::start(&gateway("gw-b", AgentConfig::new(&rig.pki, &gate.url()))).await?;
    let (sent_a, backlog_b) = (3u64, 5u64);
    send(&rig.agent, "lis-a", sent_a).await?;
    send(&agent_b, "lis-b", backlog_b).await?;
    let settled = |m: &[Received]| {
        let hbs = decode::decode(m).heartbeats;
        heartbeat_of(&hbs, "gw-a").is_some_and(|a| a.counters.forwarded == sent_a)
            && heartbeat_of(&hbs, "gw-b").is_some_and(|b| b.queue.depth == backlog_b)
    };
    rig.hub
        .wait_until(Duration::from_secs(30), settled)
        .await
        .context("heartbeats never showed the backlog")?;
    let last_b = heartbeat_of(&rig.decoded().heartbeats, "gw-b")
        .map(|hb| hb.sent_at_ms)
        .context("gw-b heartbeat")?;
    // gw-b dies with its backlog: no heartbeat will ever come again; the broker publishes its
    // last will.
    agent_b.sigkill().await?;
    let killed_ms = jiff::Timestamp::now().as_millisecond();
    rig.hub
        .wait_until(Duration::from_secs(60), |m| last_will_of(m, "gw-b"))
        .await
        .context("no last will for gw-b")?;

    // A hub started now knows both at once: from the retained heartbeats.
    let serve = tools.serve().await?;
    let opened = tokio::time::Instant::now();
    let depth = |text: &str, id: &str| hub::sample(text, "hl7edge_queue_depth", &[("gateway", id)]);
    let text = loop {
        let text = serve.metrics().await?;
        let known = depth(&text, "gw-a") == Some(0.0) && depth(&text, "gw-b") == Some(5.0);
        if known || opened.elapsed() > Duration::from_secs(1) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = opened.elapsed();
    ensure!(
        depth(&text, "gw-b") == Some(backlog_b as f64) && depth(&text, "gw-a") == Some(0.0),
        "backlogs unknown {took:?} after serve opened its port:\n{text}"
    );
    ensure!(
        hub::sample(&text, "hl7edge_gateway_online", &[("gateway", "gw-b")]) == Some(0.0),
        "{text}"
    );

    let fleet = tools.fleet_json(Duration::from_millis(500)).await?;
    let b = row(&fleet, "gw-b").with_context(|| format!("gw-b in {fleet:#}"))?;
    ensure!(
        b["state"] == "offline" && b["queue_depth"] == backlog_b,
        "{b:#}"
    );
    let seen = b["last_seen_ms"].as_i64().context("last seen")?;
    ensure!(
        (last_b..=killed_ms).contains(&seen),
        "last seen is its last heartbeat ({last_b}..={killed_ms}), not its last will: {seen}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_sending_only_loinc_codes_shows_no_unmapped_codes() -> Result<()> {
    let rig = Rig::start(|c| c.set("telemetry.interval", "1s")).await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    send(&rig.agent, "lis", 4).await?;
    let counted = |hb: &Heartbeat| hb.counters.acknowledged == 4;
    rig.hub
        .wait_until(Duration::from_secs(30), |m| {
            decode::decode(m).heartbeats.iter().any(counted)
        })
        .await
        .context("no heartbeat counting the results")?;
    let heartbeats = rig.decoded().heartbeats;
    let hb = heartbeats
        .iter()
        .find(|hb| counted(hb))
        .context("heartbeat")?;
    let lab = hb.sources.first().context("lab")?;
    ensure!(
        lab.codes_mapped > 4 * 20 && lab.codes_unmapped == 0,
        "every LOINC code and UCUM unit counts as mapped: {lab:?}"
    );
    let fleet = tools.fleet_json(Duration::from_secs(2)).await?;
    let gw = row(&fleet, "gw-0001").with_context(|| format!("{fleet:#}"))?;
    ensure!(gw["unmapped_ratio"] == 0.0, "{gw:#}");
    let serve = tools.serve().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = serve.metrics().await?;
        let ratio = hub::sample(
            &text,
            "hl7edge_listener_unmapped_ratio",
            &[("gateway", "gw-0001"), ("listener", "lab")],
        );
        if ratio == Some(0.0) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "unmapped ratio {ratio:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_clean_agent_is_not_failing_and_a_later_hub_does_not_blame_old_errors()
-> Result<()> {
    let mut rig = Rig::start(|c| c.set("telemetry.interval", "1s")).await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    let serve = tools.serve().await?;
    send(&rig.agent, "lis", 3).await?;
    rig.agent.restart().await?;
    send(&rig.agent, "lis-2", 3).await?;
    let alerts = |text: &str, kind: &str| {
        hub::sample(
            text,
            "hl7edge_alerts",
            &[("gateway", "gw-0001"), ("kind", kind)],
        )
    };
    // The restarted agent's counters reached the hub: received 3 since its start.
    let received = |text: &str| {
        hub::sample(
            text,
            "hl7edge_listener_messages_received_total",
            &[("gateway", "gw-0001"), ("listener", "lab")],
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = serve.metrics().await?;
        let uptime = hub::sample(&text, "hl7edge_uptime_seconds", &[("gateway", "gw-0001")]);
        if received(&text) == Some(3.0) && uptime.is_some_and(|u| u < 20.0) {
            break text;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat of the restarted agent:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        alerts(&text, "listener_failing") == Some(0.0),
        "a clean restart is not a failure:\n{text}"
    );

    // A message quarantined now makes the listener fail (1 h window)...
    let addr = rig.agent.mllp_addr("lab").context("lab")?;
    let mut connection = Connection::connect(addr, None, WAIT).await?;
    let ack = parse_ack(&connection.send(b"MSH\rPID|1\r", WAIT).await?)?;
    ensure!(ack.code == AckCode::AE, "{ack:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while alerts(&serve.metrics().await?, "listener_failing") != Some(1.0) {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the quarantined message never made the listener fail"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...but a hub started later, with a window shorter than the agent's uptime, sees those
    // counts as the past: not failing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fleet = tools
        .fleet_json_with(Duration::from_secs(2), &["--error-window", "2s"])
        .await?;
    let gw = row(&fleet, "gw-0001").with_context(|| format!("{fleet:#}"))?;
    ensure!(
        gw["failing_listeners"] == serde_json::json!([]),
        "old errors blamed on a new hub's first sight: {gw:#}"
    );
    ensure!(gw["listeners"][0]["quarantined"] == 1, "{gw:#}");
    Ok(())
}
