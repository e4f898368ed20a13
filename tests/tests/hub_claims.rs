//! What a gateway says about itself is believed by the hub tools only when its topic agrees,
//! and they track a bounded number of gateways and interfaces. Over a real mosquitto with the
//! ACL template: a gateway publishing, under its own topic (the ACL lets it), an envelope and a
//! heartbeat that name another gateway is ignored by `tail`, `fleet` and `serve` (counted in
//! their metrics, logged with gateway names only); its attempt to publish into the other
//! gateway's topic is refused by the broker. `serve` and `fleet` with `--max-gateways 2
//! --max-sources 1` track two gateways of three and one interface of three, counting the rest.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::broker::{Broker, BrokerOptions};
use hl7edge_e2e::hub::{self, HubTools, Tail};
use hl7edge_e2e::ingest::ACL_TEMPLATE;
use hl7edge_e2e::mqtt::{ClientOptions, Publisher};
use hl7edge_e2e::payloads;
use hl7edge_e2e::pki::{CertPaths, Pki};
use hl7edge_e2e::process;
use hl7edge_protocol::telemetry::GatewayId;

const ORG: &str = "acme-health";
const SITE: &str = "clinic-12";
const PREFIX: &str = "hl7edge/v1";
const WAIT: Duration = Duration::from_secs(30);
/// The queue depth a spoofed heartbeat claims: seen anywhere, the spoof was believed.
const SPOOFED_DEPTH: u64 = 999;

/// A broker with the ACL template, and the hub tools with the monitor's certificate.
struct AclRig {
    pki: Pki,
    broker: Broker,
    tools: HubTools,
}

impl AclRig {
    async fn start() -> Result<AclRig> {
        let pki = Pki::generate()?;
        let acl = pki.dir().join("mosquitto-acl");
        std::fs::write(&acl, ACL_TEMPLATE)?;
        let options = BrokerOptions {
            extra_config: vec![format!("acl_file {}", acl.display())],
            ..Default::default()
        };
        let broker = Broker::start_with(&pki, options).await?;
        let monitor = pki.client("hl7edge-monitor")?;
        let tools = HubTools::with_identity(&pki, &broker.url(), &monitor)?;
        Ok(AclRig { pki, broker, tools })
    }

    /// A publisher with the certificate of gateway `id` (CN `acme-health/clinic-12/{id}`).
    async fn gateway(&self, id: &str) -> Result<Publisher> {
        let certs: CertPaths = self.pki.gateway(ORG, SITE, id)?;
        let options = ClientOptions::new(&format!("{ORG}-{SITE}-{id}"), &self.pki.ca, Some(&certs));
        Ok(Publisher::connect(self.broker.addr(), &options).await?)
    }
}

fn topic(id: &str, kind: &str) -> String {
    format!("{PREFIX}/{ORG}/{SITE}/{id}/{kind}")
}

fn envelope(named: &str, id: u128) -> Result<Vec<u8>> {
    Ok(payloads::records(named, id)?)
}

fn heartbeat(named: &str, depth: u64, sources: &[&str]) -> Result<Vec<u8>> {
    let gateway = GatewayId {
        org: ORG.into(),
        site: SITE.into(),
        id: named.into(),
    };
    Ok(payloads::heartbeat(gateway, depth, sources)?)
}

fn status() -> Result<Vec<u8>> {
    Ok(payloads::status()?)
}

/// Waits until `name{labels}` is `want` at `addr`.
async fn wait_sample(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Result<()> {
    Ok(hub::wait_sample(addr, name, labels, want, WAIT).await?)
}

async fn wait_printed(tail: &mut Tail, id: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !tail.record_ids().iter().any(|r| r == id) {
        ensure!(tail.is_running(), "tail exited:\n{}", tail.log_tail());
        ensure!(
            tokio::time::Instant::now() < deadline,
            "record {id} never printed:\n{}",
            tail.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_claiming_to_be_another_is_ignored_by_tail_fleet_and_serve() -> Result<()> {
    let rig = AclRig::start().await?;
    let tail_metrics = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
    let metrics_arg = tail_metrics.to_string();
    let mut tail = rig
        .tools
        .tail_limited("tail-claims", &["--metrics", &metrics_arg], 3 << 30)?;
    tail.wait_subscribed(WAIT).await?;
    let serve = rig.tools.serve().await?;

    let mut liar = rig.gateway("gw-0001").await?;
    let spoofed = 0x0190_0000_0000_7000_8000_0000_0000_0bad_u128;
    // Into the other gateway's own subtree: the broker's ACL drops it.
    liar.publish(
        &topic("gw-0002", "records/ZZZ_Z01"),
        &envelope(&format!("{ORG}/{SITE}/gw-0002"), spoofed)?,
        false,
    )
    .await?;
    liar.publish(
        &topic("gw-0002", "telemetry"),
        &heartbeat("gw-0002", SPOOFED_DEPTH, &["lab"])?,
        false,
    )
    .await?;
    // Under its own topic (the ACL allows it), naming the other gateway.
    liar.publish(
        &topic("gw-0001", "records/ZZZ_Z01"),
        &envelope(&format!("{ORG}/{SITE}/gw-0002"), spoofed)?,
        false,
    )
    .await?;
    // Retained, so that the `fleet --json` started later reads it too.
    liar.publish(
        &topic("gw-0001", "telemetry"),
        &heartbeat("gw-0002", SPOOFED_DEPTH, &["lab"])?,
        true,
    )
    .await?;
    liar.disconnect().await?;
    // The real gw-0002 afterwards.
    let genuine = 0x0190_0000_0000_7000_8000_0000_0000_0001_u128;
    let mut honest = rig.gateway("gw-0002").await?;
    honest
        .publish(&topic("gw-0002", "status"), &status()?, true)
        .await?;
    honest
        .publish(
            &topic("gw-0002", "telemetry"),
            &heartbeat("gw-0002", 3, &["lab"])?,
            true,
        )
        .await?;
    honest
        .publish(
            &topic("gw-0002", "records/ZZZ_Z01"),
            &envelope(&format!("{ORG}/{SITE}/gw-0002"), genuine)?,
            false,
        )
        .await?;
    honest.disconnect().await?;

    // tail: the genuine record only; the spoofed one counted and logged without content.
    wait_printed(&mut tail, &uuid::Uuid::from_u128(genuine).to_string()).await?;
    ensure!(
        tail.record_ids() == [uuid::Uuid::from_u128(genuine).to_string()],
        "only the genuine record is printed: {:?}",
        tail.record_ids()
    );
    wait_sample(
        tail_metrics,
        "hl7edge_hub_tail_gateway_mismatch_total",
        &[],
        1.0,
    )
    .await?;
    let log = tail.log_tail();
    ensure!(
        log.contains("does not name the gateway of its topic")
            && log.contains("acme-health/clinic-12/gw-0002")
            && !log.contains("ZZZ|1"),
        "the log names the gateways, not the content:\n{log}"
    );

    // serve: the spoofed heartbeat counted, nothing of it applied.
    wait_sample(
        serve.addr(),
        "hl7edge_queue_depth",
        &[("gateway", "gw-0002")],
        3.0,
    )
    .await?;
    wait_sample(serve.addr(), "hl7edge_hub_gateway_mismatch_total", &[], 1.0).await?;
    let text = serve.metrics().await?;
    ensure!(
        hub::sample(&text, "hl7edge_queue_depth", &[("gateway", "gw-0001")]).is_none(),
        "the spoofed heartbeat was applied to gw-0001:\n{text}"
    );
    ensure!(!text.contains(&format!(" {SPOOFED_DEPTH}\n")), "{text}");
    ensure!(
        hub::sample(
            &text,
            "hl7edge_alerts",
            &[("gateway", "gw-0001"), ("kind", "identity_mismatch")]
        )
        .is_some_and(|n| n >= 1.0),
        "gw-0001's row carries the alert:\n{text}"
    );
    ensure!(
        hub::sample(&text, "hl7edge_hub_invalid_messages_total", &[]) == Some(0.0),
        "a refused claim is not an unreadable message:\n{text}"
    );
    ensure!(
        serve
            .log_tail()
            .contains("heartbeat dropped: it names another gateway than its topic"),
        "{}",
        serve.log_tail()
    );

    // fleet: gw-0002 as it says itself; nothing anywhere with the spoofed depth.
    let fleet = rig.tools.fleet_json(Duration::from_secs(2)).await?;
    let rows = fleet["gateways"].as_array().context("gateways")?;
    let gw2 = rows
        .iter()
        .find(|r| r["gateway"] == "gw-0002")
        .context("gw-0002")?;
    ensure!(gw2["queue_depth"] == 3, "{fleet:#}");
    ensure!(
        rows.iter().all(|r| r["queue_depth"] != SPOOFED_DEPTH),
        "{fleet:#}"
    );
    tail.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_and_interfaces_beyond_the_caps_are_counted_not_tracked() -> Result<()> {
    let rig = AclRig::start().await?;
    let caps = ["--max-gateways", "2", "--max-sources", "1"];
    let serve = rig.tools.serve_with(&caps).await?;
    for (n, id) in ["gw-0001", "gw-0002", "gw-0003"].into_iter().enumerate() {
        let mut gw = rig.gateway(id).await?;
        gw.publish(&topic(id, "status"), &status()?, true).await?;
        gw.publish(
            &topic(id, "telemetry"),
            &heartbeat(id, n as u64, &["lab", "ward", "icu"])?,
            false,
        )
        .await?;
        gw.disconnect().await?;
        // In this order: the first two are tracked.
        wait_sample(
            serve.addr(),
            "hl7edge_hub_tracked_gateways",
            &[],
            (n.min(1) + 1) as f64,
        )
        .await?;
    }
    wait_sample(
        serve.addr(),
        "hl7edge_hub_untracked_gateways_total",
        &[],
        2.0,
    )
    .await?;
    let text = serve.metrics().await?;
    ensure!(
        hub::sample(&text, "hl7edge_gateway_online", &[("gateway", "gw-0003")]).is_none(),
        "gw-0003 is beyond the cap:\n{text}"
    );
    ensure!(
        hub::sample(&text, "hl7edge_hub_untracked_listeners_total", &[]) == Some(4.0),
        "two interfaces of each tracked gateway's heartbeat:\n{text}"
    );
    for id in ["gw-0001", "gw-0002"] {
        ensure!(
            hub::sample(
                &text,
                "hl7edge_listener_messages_received_total",
                &[("gateway", id), ("listener", "lab")]
            )
            .is_some()
                && hub::sample(
                    &text,
                    "hl7edge_listener_messages_received_total",
                    &[("gateway", id), ("listener", "ward")]
                )
                .is_none(),
            "{id}: one interface tracked:\n{text}"
        );
    }
    let log = serve.log_tail();
    ensure!(
        log.contains("beyond --max-gateways") && log.contains("beyond --max-sources"),
        "{log}"
    );
    let fleet = rig
        .tools
        .fleet_json_with(Duration::from_secs(2), &caps)
        .await?;
    let rows = fleet["gateways"].as_array().context("gateways")?;
    ensure!(
        rows.len() == 2,
        "two of three retained statuses tracked: {fleet:#}"
    );
    Ok(())
}
