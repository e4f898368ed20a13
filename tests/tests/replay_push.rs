//! Remote replay end to end: real mosquitto with mutual TLS and the ACL template, the real
//! `hl7edge-hub push mapping | replay` (certificate `hl7edge-admin`) and `fleet --json`
//! (`hl7edge-monitor`), the agent as a process pinning the organization's public key, with a
//! listener that quarantines codes its mapping table does not map (`unmapped = "quarantine"`).
//!
//! One story, in order: messages with an unmapped local code are answered AE and kept in
//! quarantine; a replay push that follows a mapping push waits for it, and once the mapping
//! push maps the code, turns each of them into exactly one record carrying the new mapping
//! version (counted at the broker); the replay push,
//! redelivered after the agent restarts, does not run again (a message quarantined since
//! stays there although the table now maps it); a replay push with a bad signature is refused
//! and the hub sees why; a newer replay push replays the rest. Every AA-acknowledged message
//! and every replayed one reaches the broker exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen::{self, Kind, Message};
use hl7edge_e2e::hub::HubTools;
use hl7edge_e2e::mllp::{Sender, SenderConfig};
use hl7edge_e2e::mqtt::{Received, Subscriber};
use hl7edge_e2e::push::PushRig;
use hl7edge_protocol::wire::Envelope;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const GATEWAY: &str = "acme-health/clinic-12";

fn table(label: &str, rows: &str) -> String {
    format!(
        "# version: {label}\nkind,local_system,local_code,target_system,target_code\nunit,,mg/dl,UCUM,mg/dL\n{rows}"
    )
}

/// A result coded in the lab's local system: `code` of `99LAB`, which no standard system
/// knows, so only a mapping table row makes it a standard code.
fn local_result(n: u64, code: &str) -> Message {
    let control_id = format!("local-{n}");
    let hl7 = format!(
        "MSH|^~\\&|LIS|LAB|HL7EDGE|CLINIC|20261201120{n}||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r\
         PID|1||MRN{n}^^^CLINIC^MR\rOBR|1|ORD{n}|ACC{n}\r\
         OBX|1|NM|{code}^Local test^99LAB||5.{n}|mmol/L|||||F\r"
    );
    Message {
        control_id,
        bytes: hl7.into_bytes(),
    }
}

/// (control id, mapping version) of every record received so far, in arrival order.
fn records_seen(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .filter_map(|m| Envelope::decode(&m.payload).ok())
        .flat_map(|e| {
            e.entries.into_iter().map(|x| {
                (
                    x.record.header.control_id.to_string(),
                    x.mapping_version.to_string(),
                )
            })
        })
        .collect()
}

async fn records(hub: &Subscriber, n: usize) -> Result<()> {
    hub.wait_until(WAIT, |m| records_seen(m).len() >= n)
        .await
        .with_context(|| format!("{} of {n} records", records_seen(&hub.messages()).len()))?;
    Ok(())
}

async fn wait_replay(fleet: &HubTools, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    Ok(fleet
        .wait_push_report(|p| p["change"] == "replay", WAIT, ok)
        .await?)
}

/// Sends `messages` to `lab`; returns (AA-acknowledged, AE-answered) control ids.
async fn send(agent: &Agent, messages: Vec<Message>) -> Result<(Vec<String>, Vec<String>)> {
    let addr = agent.mllp_addr("lab").context("listener lab")?;
    let mut sender = Sender::new(SenderConfig::new(addr));
    sender.send_all(messages).await;
    let mut errors = Vec::new();
    for o in sender.outcomes() {
        let ack = o.ack.as_ref().context("every message is answered")?;
        if !o.is_acked() {
            ensure!(
                ack.error.as_deref().is_some_and(|e| e.contains("103")),
                "an unmapped code is answered with ERR 103: {ack:?}"
            );
            errors.push(o.control_id.clone());
        }
    }
    Ok((sender.acked(), errors))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_push_turns_quarantined_messages_into_records_once_and_a_redelivery_or_a_forged_replay_runs_nothing()
-> Result<()> {
    let rig = PushRig::start("replay-test-hub")
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let PushRig {
        pki,
        broker,
        admin,
        fleet,
        hub,
        org: (org_private, org_public),
        rogue: rogue_private,
    } = rig;
    let dir = pki.dir();
    let v1 = dir.join("lab-v1.csv");
    let v2 = dir.join("lab-v2.csv");
    let v3 = dir.join("lab-v3.csv");
    std::fs::write(&v1, table("lab-v1", ""))?;
    std::fs::write(&v2, table("lab-v2", "code,99LAB,GLU,LN,2345-7\n"))?;
    std::fs::write(
        &v3,
        table(
            "lab-v3",
            "code,99LAB,GLU,LN,2345-7\ncode,99LAB,K,LN,2823-3\n",
        ),
    )?;
    let mut config = AgentConfig::new(&pki, &broker.url())
        .set("hub.push_key", org_public.display().to_string())
        .set("telemetry.interval", "1s");
    config.listeners[0]
        .extra
        .insert("mapping".into(), v1.display().to_string().into());
    config.listeners[0]
        .extra
        .insert("unmapped".into(), "quarantine".into());
    let mut agent = Agent::start(&config).await?;
    let push = |kind: &'static str, args: Vec<String>| {
        let admin = &admin;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            admin.push(kind, &args).await
        }
    };
    let key = |k: &Path| k.display().to_string();
    let replay = |k: &Path, sequence: &str| {
        vec![
            "--signing-key".to_owned(),
            key(k),
            "--to".to_owned(),
            GATEWAY.to_owned(),
            "--listener".to_owned(),
            "lab".to_owned(),
            "--error-code".to_owned(),
            "103".to_owned(),
            "--sequence".to_owned(),
            sequence.to_owned(),
        ]
    };
    let mapping = |sequence: &str, file: &Path| {
        vec![
            "--signing-key".to_owned(),
            key(&org_private),
            "--to".to_owned(),
            GATEWAY.to_owned(),
            "--listener".to_owned(),
            "lab".to_owned(),
            "--sequence".to_owned(),
            sequence.to_owned(),
            file.display().to_string(),
        ]
    };

    // Standard codes are stored; local codes the table does not map are quarantined (AE 103).
    let mut acked = Vec::new();
    let (ok, _) = send(&agent, hl7gen::messages(Kind::Lab, "lis", 0..2).collect()).await?;
    acked.extend(ok);
    let (ok, quarantined) = send(&agent, (1..=3).map(|n| local_result(n, "GLU")).collect()).await?;
    ensure!(
        ok.is_empty() && quarantined.len() == 3,
        "{ok:?} {quarantined:?}"
    );
    records(&hub, 2).await?;

    // Retained pushes reach a box in no set order: a replay that follows a mapping push
    // waits for it. Once the table maps the code, the replay makes each quarantined message
    // one record.
    let mut first = replay(&org_private, "100");
    first.extend(["--after-mapping".to_owned(), "10".to_owned()]);
    let out = push("replay", first).await?;
    ensure!(out.contains("pushed sequence 100"), "{out}");
    let waiting = wait_replay(&fleet, |p| p["outcome"] == "waiting").await?;
    ensure!(waiting["reason"] == "mapping_not_applied", "{waiting}");
    ensure!(
        records_seen(&hub.messages()).len() == 2,
        "nothing replayed yet"
    );
    push("mapping", mapping("10", &v2)).await?;
    let ran = wait_replay(&fleet, |p| {
        p["sequence"] == 100 && p["outcome"] != "waiting"
    })
    .await?;
    ensure!(
        ran["outcome"] == "applied"
            && ran["replay"]["replayed"] == 3
            && ran["replay"]["still_quarantined"] == 0,
        "{ran}"
    );
    records(&hub, 5).await?;
    let seen = records_seen(&hub.messages());
    for id in &quarantined {
        let versions: Vec<&String> = seen
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, v)| v)
            .collect();
        ensure!(
            versions.len() == 1 && versions[0].starts_with("lab-v2+"),
            "{id}: {versions:?}"
        );
    }

    // Quarantined since: code K is not in v2. v3 maps it, but the replay that ran does not
    // run again when it is delivered again after a restart.
    let (_, later) = send(&agent, vec![local_result(4, "K")]).await?;
    ensure!(later.len() == 1, "{later:?}");
    push("mapping", mapping("11", &v3)).await?;
    agent.restart().await?;
    let redelivered = "a replay push that already ran, delivered again; not run again";
    let until = tokio::time::Instant::now() + WAIT;
    while !agent.log().contains(redelivered) {
        ensure!(tokio::time::Instant::now() < until, "no redelivery logged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        agent.log().matches("replayed quarantined messages").count() == 1,
        "the replay ran once"
    );
    let status = agent.status_text()?;
    ensure!(
        status.contains("last replay push: applied, sequence 100,")
            && status.contains(": 3 replayed, 0 still quarantined")
            && status.contains("(pushed, sequence 11); last push: applied, sequence 11"),
        "status shows the pushes: {status}"
    );

    // Forged: refused, nothing replayed, the hub sees why.
    push("replay", replay(&rogue_private, "200")).await?;
    let refused = wait_replay(&fleet, |p| p["reason"] == "bad_signature").await?;
    ensure!(refused["outcome"] == "rejected", "{refused}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        records_seen(&hub.messages()).len() == 5,
        "{:?}",
        records_seen(&hub.messages())
    );

    // A newer replay takes the rest.
    push("replay", replay(&org_private, "201")).await?;
    let ran = wait_replay(&fleet, |p| p["sequence"] == 201).await?;
    ensure!(ran["replay"]["replayed"] == 1, "{ran}");
    records(&hub, 6).await?;

    // Every record exactly once: the AA-acknowledged and the replayed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = decode::decode(&hub.messages()).delivered;
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &delivered {
        *count.entry(d.control_id.as_str()).or_default() += 1;
    }
    let expected: Vec<&String> = acked.iter().chain(&quarantined).chain(&later).collect();
    ensure!(count.len() == expected.len(), "{count:?} vs {expected:?}");
    for id in expected {
        ensure!(count.get(id.as_str()) == Some(&1), "{id}: {count:?}");
    }
    agent.stop().await?;
    Ok(())
}
