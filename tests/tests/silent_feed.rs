//! A feed that stops is reported silent at the hub, and clears when messages resume: the agent
//! learns the listener's hourly rhythm (with `silence.hour` shortened so a learned day passes in
//! six seconds), the real `hl7edge-hub serve` and `fleet --json` raise `feed_silent` for an
//! online gateway within the configured threshold, a restarted agent keeps the learned norm (the
//! alert returns without a new day of learning), a listener with `silence = false` that stops
//! with it is not reported, and every acknowledged message reaches the broker.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::ListenerSpec;
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen;
use hl7edge_e2e::hub::{self, HubTools, Serve};
use hl7edge_e2e::rig::Rig;
use tokio::time::Instant;

/// `silence.floor`: never silent before this quiet time.
const FLOOR: Duration = Duration::from_secs(2);
/// How long the alert may take past the floor: a heartbeat a second, the hub's processing, and
/// a loaded build machine.
const SLACK: Duration = Duration::from_secs(10);

fn feed_silent(text: &str) -> Option<f64> {
    hub::sample(
        text,
        "hl7edge_alerts",
        &[("gateway", "gw-0001"), ("kind", "feed_silent")],
    )
}

fn silent_seconds(text: &str) -> Option<f64> {
    hub::sample(
        text,
        "hl7edge_listener_silent_seconds",
        &[("gateway", "gw-0001"), ("listener", "lab")],
    )
}

/// Polls `/metrics` until `done` holds, for at most `limit`; returns the exposition that did.
async fn metrics_until(
    serve: &Serve,
    limit: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        let text = serve.metrics().await?;
        if done(&text) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "{what} within {limit:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_stops_is_silent_at_the_hub_within_the_threshold_and_clears_when_it_resumes()
-> Result<()> {
    let mut rig = Rig::start(|mut c| {
        // A second feed, left out of the watch, that stops with the first.
        let mut ward = ListenerSpec::new("ward");
        ward.extra.insert("silence".into(), false.into());
        c.listeners.push(ward);
        c.set("telemetry.interval", "1s")
            .set("silence.hour", "250ms")
            .set("silence.learn_days", 1)
            .set("silence.window_days", 1)
            .set("silence.factor", 6)
            .set("silence.floor", "2s")
    })
    .await?;
    let tools = HubTools::new(&rig.pki, &rig.broker.url())?;
    let serve = tools.serve().await?;

    // Learning: a message every 100 ms for 7 s, more than one 6 s "day".
    let mut sender = rig.sender("lab")?;
    let mut ward = rig.sender("ward")?;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(7) {
        sender.send(&hl7gen::lab_result("lis", n)).await;
        ward.send(&hl7gen::lab_result("adt", n)).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = Instant::now();
    let mut acked = sender.acked();
    ensure!(
        acked.len() as u64 == n,
        "{} of {n} acknowledged",
        acked.len()
    );
    let ward_acked = ward.acked();
    ensure!(
        ward_acked.len() as u64 == n,
        "ward: {} of {n}",
        ward_acked.len()
    );
    let text = serve.metrics().await?;
    ensure!(
        feed_silent(&text) == Some(0.0),
        "a busy feed is not silent:\n{text}"
    );

    // Stopped: silent once the floor has passed (six usual gaps of 100 ms come sooner).
    let text = metrics_until(&serve, FLOOR + SLACK, "feed_silent", |t| {
        feed_silent(t) == Some(1.0)
    })
    .await?;
    let took = stopped.elapsed();
    ensure!(took >= FLOOR, "silent after {took:?}, before the floor");
    let quiet = silent_seconds(&text).context("hl7edge_listener_silent_seconds")?;
    ensure!(
        quiet >= FLOOR.as_secs_f64(),
        "silent for {quiet} s:\n{text}"
    );
    let ward_silent = hub::sample(
        &text,
        "hl7edge_listener_silent_seconds",
        &[("gateway", "gw-0001"), ("listener", "ward")],
    );
    ensure!(
        ward_silent.is_none(),
        "silence = false leaves ward unwatched:\n{text}"
    );
    let up = hub::sample(&text, "hl7edge_gateway_online", &[("gateway", "gw-0001")]);
    ensure!(up == Some(1.0), "the gateway itself is online:\n{text}");

    // fleet --json names the listener, its quiet time and its usual gap.
    let fleet = tools.fleet_json(Duration::from_secs(2)).await?;
    let gw = fleet["gateways"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["gateway"] == "gw-0001"))
        .with_context(|| format!("{fleet:#}"))?;
    let alert = gw["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "feed_silent"))
        .with_context(|| format!("no feed_silent alert: {gw:#}"))?;
    ensure!(alert["listener"] == "lab", "{alert:#}");
    ensure!(alert["silent_s"].as_u64() >= Some(2), "{alert:#}");
    ensure!(alert["usual_gap_s"].as_u64() >= Some(1), "{alert:#}");
    ensure!(gw["state"] == "online", "{gw:#}");

    // A restarted agent keeps the learned norm and the time of the last message: silent again
    // at once, with no new day of learning.
    rig.agent.restart().await?;
    let restarted = Instant::now();
    metrics_until(&serve, SLACK, "feed_silent from the restarted agent", |t| {
        let uptime = hub::sample(t, "hl7edge_uptime_seconds", &[("gateway", "gw-0001")]);
        uptime.is_some_and(|u| u < restarted.elapsed().as_secs_f64() + 1.0)
            && feed_silent(t) == Some(1.0)
    })
    .await?;

    // Messages resume: the alert clears with the next heartbeat.
    let mut sender = rig.sender("lab")?;
    sender.send(&hl7gen::lab_result("lis", n)).await;
    ensure!(
        sender.acked().len() == 1,
        "the resumed message is acknowledged"
    );
    acked.extend(sender.acked());
    let text = metrics_until(&serve, SLACK, "feed_silent cleared", |t| {
        feed_silent(t) == Some(0.0)
    })
    .await?;
    ensure!(silent_seconds(&text) == Some(0.0), "{text}");

    let report = rig
        .wait_delivered(
            &[Acked::new("lab", acked), Acked::new("ward", ward_acked)],
            Duration::from_secs(30),
        )
        .await;
    report.assert_ok_and_ordered();
    Ok(())
}
