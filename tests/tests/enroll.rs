//! Enrollment by claim end to end, with a real mosquitto over mutual TLS and the broker ACL an
//! operator installs (`hub/broker/mosquitto-acl`): a box that holds only a claim certificate
//! makes its own key, has `hl7edge-hub enroll` (started with the README's commands, word for
//! word) sign its request, installs the certificate and delivers every message it acknowledged,
//! including those it took in while it was enrolling, each once; its private key is in no
//! published payload. A claim whose gateway is not on the allowlist is refused: the box sends
//! no record, keeps what it acknowledged queued, says so in `status` and the audit trail, and
//! delivers it all once central IT adds it to the allowlist.
//!
//! The claim certificate is issued with the README's openssl commands (CN `enroll/CLAIM`). What
//! a stolen claim certificate publishes through the gateway patterns, on every topic where a
//! hub tool looks, reaches the hub (the broker lets it) and counts for no gateway: the ingest
//! keeps it as a dead letter (`reserved_org`), `tail` prints nothing and counts it, `serve` and
//! `fleet` track nothing. A claim certificate named the old way (one level) gets an error on
//! the box naming the common name expected.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::{Broker, BrokerOptions};
use hl7edge_e2e::checker::{self, Acked};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::hub::{self, HubTools};
use hl7edge_e2e::ingest::{ACL_TEMPLATE, INGEST_USER, Ingest, IngestSpec};
use hl7edge_e2e::mllp::Sender;
use hl7edge_e2e::mqtt::{ClientOptions, Publisher, Subscriber};
use hl7edge_e2e::payloads;
use hl7edge_e2e::pki::{CertPaths, Pki};
use hl7edge_e2e::postgres::Postgres;
use hl7edge_e2e::process::{self, Process};
use hl7edge_e2e::rig;
use hl7edge_protocol::enroll::EnrollRequest;
use hl7edge_protocol::telemetry::{GatewayId, Heartbeat};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

const CLAIM: &str = "claim-acme-2026a";
const RECORDS: &str = "hl7edge/v1/+/+/+/records/#";
const REQUESTS: &str = "hl7edge/v1/enroll/+/+/request";

const WAIT: Duration = Duration::from_secs(30);

/// A broker with the ACL template, and the certificates of the parts: the claim (CN
/// `enroll/`[`CLAIM`], issued by the README's commands), the enroll command, the read-only
/// monitor.
struct Site {
    claim: CertPaths,
    enroller: CertPaths,
    monitor: CertPaths,
    broker: Broker,
    pki: Pki,
    central: tempfile::TempDir,
}

impl Site {
    async fn start() -> Result<Site> {
        let pki = Pki::generate()?;
        let enroller = pki.client("hl7edge-enroll")?;
        let monitor = pki.client("hl7edge-monitor")?;
        let acl = pki.dir().join("mosquitto-acl");
        std::fs::write(&acl, ACL_TEMPLATE)?;
        let broker = Broker::start_with(
            &pki,
            BrokerOptions {
                extra_config: vec![format!("acl_file {}", acl.display())],
                ..Default::default()
            },
        )
        .await?;
        let central = tempfile::Builder::new()
            .prefix("hl7edge-central-")
            .tempdir()?;
        // The files as the README names them in central IT's directory.
        for (from, to) in [
            (&pki.ca, "hub-ca.pem"),
            (&pki.ca, "device-ca.pem"),
            (&pki.ca_key, "device-ca.key"),
            (&enroller.cert, "enroll.pem"),
            (&enroller.key, "enroll.key"),
        ] {
            std::fs::copy(from, central.path().join(to))?;
        }
        // The claim certificate, issued as the README shows.
        bash_in(
            central.path(),
            &hl7edge_e2e::readme::block("<!-- ci: claim certificate")?,
        )?;
        let claim = CertPaths {
            cert: central.path().join("claim.pem"),
            key: central.path().join("claim.key"),
        };
        Ok(Site {
            claim,
            enroller,
            monitor,
            broker,
            pki,
            central,
        })
    }

    /// The far side: every record any gateway publishes.
    async fn hub(&self) -> Result<Subscriber> {
        let options = ClientOptions::new("monitor", &self.pki.ca, Some(&self.monitor));
        Ok(Subscriber::connect(self.broker.addr(), &options, RECORDS).await?)
    }

    /// Every heartbeat any gateway publishes.
    async fn heartbeats(&self) -> Result<Subscriber> {
        let options = ClientOptions::new("monitor-telemetry", &self.pki.ca, Some(&self.monitor));
        Ok(Subscriber::connect(self.broker.addr(), &options, "hl7edge/v1/+/+/+/telemetry").await?)
    }

    /// Every enrollment request published (read as the enroll user may).
    async fn spy(&self) -> Result<Subscriber> {
        let options = ClientOptions::new("enroll-spy", &self.pki.ca, Some(&self.enroller));
        Ok(Subscriber::connect(self.broker.addr(), &options, REQUESTS).await?)
    }

    /// Runs the README's "Enroll by claim" block in central IT's directory: the allowlist is
    /// written by its first commands, then `hl7edge-hub enroll` runs until stopped. The
    /// allowlist's gateway is replaced by `gateway` when given.
    async fn enroll_command(&self, gateway: Option<&str>) -> Result<Process> {
        let block = hl7edge_e2e::readme::block("<!-- ci: enroll by claim")?;
        let (setup, command) = block
            .split_once("hl7edge-hub enroll")
            .context("the README block runs hl7edge-hub enroll")?;
        let mut setup = setup.to_owned();
        if let Some(gateway) = gateway {
            setup = setup.replace("acme-health/clinic-12/gw-0001", gateway);
        }
        let hub_bin = hl7edge_e2e::hub::binary()?;
        let bin_dir = hub_bin.parent().context("hub binary dir")?;
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let dir = self.central.path();
        bash_in(dir, &setup)?;
        let script = format!(
            "export PATH='{path}' BROKER='{broker}'; cd '{dir}'; exec hl7edge-hub enroll{command}",
            broker = self.broker.url(),
            dir = dir.display(),
        );
        let log = dir.join("enroll.log");
        let mut process = Process::spawn(
            "hl7edge-hub enroll",
            Path::new("/bin/bash"),
            ["-euo", "pipefail", "-c", script.as_str()],
            &log,
        )?;
        process
            .wait_logged("waiting for enrollment requests", Duration::from_secs(20))
            .await?;
        Ok(process)
    }

    /// A box with the claim credential only: `hub.cert` and `hub.key` name files that do not
    /// exist yet.
    fn box_config(&self, device_dir: &Path) -> AgentConfig {
        let mut config = AgentConfig::new(&self.pki, &self.broker.url());
        config.hub_identity = CertPaths {
            cert: device_dir.join("device.pem"),
            key: device_dir.join("device.key"),
        };
        config
            .set("enroll.claim_cert", self.claim.cert.display().to_string())
            .set("enroll.claim_key", self.claim.key.display().to_string())
    }
}

/// Runs `script` with bash (`-euo pipefail`) in `dir`.
fn bash_in(dir: &Path, script: &str) -> Result<()> {
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The private key's bytes as they could leak: the PEM's base64 body and the DER.
fn key_forms(key: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let pem = std::fs::read_to_string(key)?;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes())? {
        PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
        other => other.secret_der().to_vec(),
    };
    Ok((body.into_bytes(), der))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn device_dir() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("hl7edge-device-")
        .tempdir()?;
    let device = dir.path().join("etc");
    Ok((dir, device))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_with_only_a_claim_enrolls_and_delivers_every_acked_message_once() -> Result<()> {
    let site = Site::start().await?;
    let hub = site.hub().await?;
    let heartbeats = site.heartbeats().await?;
    let spy = site.spy().await?;
    // The enroll command runs once so the broker keeps its session, then stops: the box's
    // request waits for it, and the box takes in messages meanwhile.
    let mut enroller = site.enroll_command(None).await?;
    enroller.signal(nix::sys::signal::Signal::SIGTERM)?;
    enroller.wait_exit(Duration::from_secs(10)).await?;

    let (_keep, device) = device_dir()?;
    let mut agent = Agent::start(&site.box_config(&device)).await?;
    let mut sender = Sender::new(rig::quick(agent.mllp_addr("lab").context("lab")?));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..5))
        .await;
    ensure!(
        sender.acked().len() == 5,
        "acknowledged while enrolling: {:?}",
        sender.stats()
    );
    spy.wait_for(1, Duration::from_secs(20)).await?;
    ensure!(hub.count() == 0, "no record before the certificate");
    ensure!(!device.join("device.pem").exists());

    let mut enroller = site.enroll_command(None).await?;
    let installed = tokio::time::timeout(Duration::from_secs(60), async {
        while !device.join("device.pem").exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if installed.is_err() {
        eprintln!(
            "{}",
            hl7edge_e2e::process::log_tail(enroller.log_path(), 40)
        );
    }
    installed.context("the certificate was not installed within 60 s")?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 5..10))
        .await;
    let acked = [Acked::new("lab", sender.acked())];
    ensure!(acked[0].control_ids.len() == 10, "{:?}", sender.stats());
    delivered_once(&hub, &acked, Duration::from_secs(30)).await;

    // The key stayed on the box, readable by its owner only: in no request payload, in no form.
    let mode = std::fs::metadata(device.join("device.key"))?
        .permissions()
        .mode()
        & 0o777;
    ensure!(mode == 0o600, "device key mode {mode:o}");
    let (pem_body, der) = key_forms(&device.join("device.key"))?;
    let requests = spy.messages();
    ensure!(!requests.is_empty());
    for request in &requests {
        ensure!(
            !contains(&request.payload, &pem_body),
            "the key's PEM was published"
        );
        ensure!(
            !contains(&request.payload, &der),
            "the key's DER was published"
        );
        let decoded = EnrollRequest::decode(&request.payload)?;
        ensure!(decoded.gateway == "acme-health/clinic-12/gw-0001");
    }
    let pem = std::fs::read_to_string(device.join("device.pem"))?;
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())?;
    let cert = parsed.parse_x509()?;
    ensure!(
        cert.subject().to_string()
            == "O=acme-health, OU=clinic-12, CN=acme-health/clinic-12/gw-0001",
        "{}",
        cert.subject()
    );
    agent
        .wait_status(Duration::from_secs(20), |s| {
            s["hub"]["state"] == "connected"
        })
        .await?;
    let audit = audit_kinds(&agent)?;
    ensure!(audit.iter().any(|k| k == "enroll.requested"), "{audit:?}");
    ensure!(audit.iter().any(|k| k == "enroll.installed"), "{audit:?}");
    // The heartbeat starts with the certificate: its expiry is reported without a restart.
    let beats = heartbeats.wait_for(1, Duration::from_secs(20)).await?;
    let beat = Heartbeat::decode(&beats[0].payload)?;
    ensure!(
        beat.cert_days_left.is_some_and(|d| d > 300),
        "{:?}",
        beat.cert_days_left
    );
    // A restart uses the installed certificate: no second enrollment.
    agent.restart().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        spy.count() == requests.len(),
        "a restarted box asked again: {} requests",
        spy.count()
    );
    enroller.signal(nix::sys::signal::Signal::SIGTERM)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_not_on_the_allowlist_is_refused_and_its_messages_stay_queued() -> Result<()> {
    let site = Site::start().await?;
    let hub = site.hub().await?;
    let mut enroller = site
        .enroll_command(Some("acme-health/clinic-12/gw-0999"))
        .await?;
    let (_keep, device) = device_dir()?;
    let agent = Agent::start(&site.box_config(&device)).await?;
    let mut sender = Sender::new(rig::quick(agent.mllp_addr("lab").context("lab")?));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..4))
        .await;
    let acked = [Acked::new("lab", sender.acked())];
    ensure!(acked[0].control_ids.len() == 4, "{:?}", sender.stats());

    let refused = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if agent.status_text().is_ok_and(|s| s.contains("not_allowed")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    ensure!(
        refused.is_ok(),
        "status never said not_allowed:\n{}",
        agent.log()
    );
    let enroll_log = std::fs::read_to_string(enroller.log_path())?;
    ensure!(
        enroll_log.contains("enrollment refused") && enroll_log.contains("not_allowed"),
        "{enroll_log}"
    );
    let audit = audit_kinds(&agent)?;
    ensure!(audit.iter().any(|k| k == "enroll.refused"), "{audit:?}");
    ensure!(!device.join("device.pem").exists(), "nothing installed");
    // doctor checks the claim where the device certificate will be, and logs in with it.
    let doctor = std::process::Command::new(hl7edge_e2e::agent::binary()?)
        .args(["doctor", "--config"])
        .arg(agent.config_path())
        .output()?;
    let said = String::from_utf8_lossy(&doctor.stdout);
    ensure!(
        said.contains("OK    enrollment") && said.contains(CLAIM),
        "{said}"
    );
    ensure!(said.contains("OK    hub MQTT login"), "{said}");
    ensure!(
        !said.lines().any(|l| l.starts_with("FAIL")),
        "a box waiting to enroll passes doctor: {said}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(hub.count() == 0, "a refused box sent records");
    let queued = agent.status_json()?;
    ensure!(
        queued["queue"]["depth"] == 4,
        "the four messages wait in the queue: {queued}"
    );

    // Central IT adds the box; the allowlist is read again for the next request.
    enroller.signal(nix::sys::signal::Signal::SIGTERM)?;
    enroller.wait_exit(Duration::from_secs(10)).await?;
    let mut enroller = site.enroll_command(None).await?;
    delivered_once(&hub, &acked, Duration::from_secs(90)).await;
    enroller.signal(nix::sys::signal::Signal::SIGTERM)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_claim_passes_nothing_off_as_a_gateways_records_heartbeat_or_status() -> Result<()>
{
    let site = Site::start().await?;
    let pg = Postgres::start().await?;
    let ingest = Ingest::start(IngestSpec {
        broker_url: site.broker.url(),
        ca: site.pki.ca.clone(),
        identity: site.pki.client(INGEST_USER)?,
        database: pg.url(),
        client_id: "hl7edge-ingest-0".into(),
        share: None,
        extra: Vec::new(),
    })
    .await?;
    let tools = HubTools::with_identity(&site.pki, &site.broker.url(), &site.monitor)?;
    let tail_metrics = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
    let metrics_arg = tail_metrics.to_string();
    let mut tail = tools.tail_with("tail-claim", &["--metrics", &metrics_arg])?;
    tail.wait_subscribed(WAIT).await?;
    let serve = tools.serve().await?;
    // What the monitor's filters see: the broker delivers what the claim publishes below.
    let records = site.hub().await?;
    let heartbeats = site.heartbeats().await?;

    // Everything the gateway patterns let the claim certificate (%u = enroll/CLAIM) publish: its
    // own status and heartbeat topics, and under its records/# the forms the hub's filters
    // {prefix}/+/+/+/records/#, .../telemetry and .../status match, as the made-up gateway
    // enroll/CLAIM/records; each payload names the gateway of its topic.
    let own = format!("hl7edge/v1/enroll/{CLAIM}");
    let made_up = GatewayId {
        org: "enroll".into(),
        site: CLAIM.into(),
        id: "records".into(),
    };
    let forged = 0x0190_0000_0000_7000_8000_0000_0000_0bad_u128;
    let mut thief = Publisher::connect(
        site.broker.addr(),
        &ClientOptions::new("thief", &site.pki.ca, Some(&site.claim)),
    )
    .await?;
    let envelope = payloads::records(&made_up.to_string(), forged)?;
    for (topic, payload, retain) in [
        (
            format!("{own}/records/records/ZZZ_Z01"),
            envelope.clone(),
            false,
        ),
        (
            format!("{own}/records/telemetry"),
            payloads::heartbeat(made_up.clone(), 0, &[])?,
            true,
        ),
        (format!("{own}/records/status"), payloads::status()?, true),
        (format!("{own}/records/ZZZ_Z01"), envelope, false),
        (
            format!("{own}/telemetry"),
            payloads::heartbeat(made_up.clone(), 0, &[])?,
            false,
        ),
        (format!("{own}/status"), payloads::status()?, false),
    ] {
        thief.publish(&topic, &payload, retain).await?;
    }
    thief.disconnect().await?;
    records.wait_for(1, WAIT).await?;
    heartbeats.wait_for(1, WAIT).await?;

    // The ingest: two dead letters of the reserved organization, no record, no heartbeat.
    let deadline = tokio::time::Instant::now() + WAIT;
    let dead = loop {
        let text = ingest.metrics().await?;
        let dead = hub::sample(
            &text,
            "hl7edge_ingest_dead_letters_total",
            &[("reason", "reserved_org")],
        );
        if dead == Some(2.0) || tokio::time::Instant::now() > deadline {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        dead == Some(2.0),
        "dead letters: {dead:?}\n{}",
        ingest.log()
    );
    let db = pg.client().await?;
    let rows = |sql: &'static str| {
        let db = &db;
        async move { Ok::<i64, anyhow::Error>(db.query_one(sql, &[]).await?.get(0)) }
    };
    ensure!(
        rows("SELECT count(*) FROM records").await? == 0,
        "a record landed"
    );
    ensure!(
        rows("SELECT count(*) FROM heartbeats").await? == 0,
        "a heartbeat landed"
    );
    let reasons: Vec<String> = db
        .query("SELECT reason FROM dead_letters ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(reasons == ["reserved_org", "reserved_org"], "{reasons:?}");

    // tail: nothing printed, the payload counted and logged.
    hub::wait_sample(
        tail_metrics,
        "hl7edge_hub_tail_reserved_org_total",
        &[],
        1.0,
        WAIT,
    )
    .await?;
    ensure!(tail.record_ids().is_empty(), "{:?}", tail.record_ids());
    let log = tail.log_tail();
    ensure!(
        log.contains("a claim certificate published it") && log.contains("reserved for enrollment"),
        "{log}"
    );

    // serve: the status and heartbeat skipped and counted, no gateway tracked.
    hub::wait_sample(
        serve.addr(),
        "hl7edge_hub_invalid_messages_total",
        &[],
        2.0,
        WAIT,
    )
    .await?;
    let text = serve.metrics().await?;
    ensure!(
        hub::sample(&text, "hl7edge_hub_tracked_gateways", &[]) == Some(0.0),
        "{text}"
    );
    ensure!(
        serve.log_tail().contains("is not an hl7edge gateway topic"),
        "{}",
        serve.log_tail()
    );
    // fleet: the retained status and heartbeat make no row.
    let fleet = tools.fleet_json(Duration::from_secs(2)).await?;
    ensure!(fleet["gateways"] == serde_json::json!([]), "{fleet:#}");
    tail.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_certificate_not_named_enroll_slash_claim_is_refused_on_the_box_in_words()
-> Result<()> {
    let site = Site::start().await?;
    let spy = site.spy().await?;
    // A claim certificate as issued before claims had their own organization: CN = the claim.
    let one_level = site.pki.client(CLAIM)?;
    let (_keep, device) = device_dir()?;
    let config = site
        .box_config(&device)
        .set("enroll.claim_cert", one_level.cert.display().to_string())
        .set("enroll.claim_key", one_level.key.display().to_string());
    let agent = Agent::start(&config).await?;
    let expected = "must be enroll/CLAIM";
    let said = tokio::time::timeout(WAIT, async {
        loop {
            if agent.status_text().is_ok_and(|s| s.contains(expected)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    ensure!(
        said.is_ok(),
        "status never said {expected:?}:\n{}",
        agent.log()
    );
    let status = agent.status_text()?;
    ensure!(
        status.contains(&format!("{CLAIM:?}")) && status.contains("Enroll by claim"),
        "the error names the CN found and where to read how to issue one: {status}"
    );
    let doctor = std::process::Command::new(hl7edge_e2e::agent::binary()?)
        .args(["doctor", "--config"])
        .arg(agent.config_path())
        .output()?;
    let report = String::from_utf8_lossy(&doctor.stdout);
    ensure!(
        report
            .lines()
            .any(|l| l.starts_with("FAIL  enrollment") && l.contains(expected)),
        "{report}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(spy.count() == 0, "a request was published");
    ensure!(!device.join("device.pem").exists());
    Ok(())
}

/// Waits until every acknowledged message has arrived, then a second more for a late
/// duplicate, and checks that each arrived once and in order.
async fn delivered_once(hub: &Subscriber, acked: &[Acked], timeout: Duration) {
    rig::wait_delivered(hub, acked, timeout).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    checker::check(acked, &hub.with_messages(|m| decode::decode(m).delivered))
        .assert_ok_and_ordered();
}

/// The audit trail's `enroll.*` kinds, oldest first (`hl7edge audit export --syslog`: the
/// kind is each line's MSGID).
fn audit_kinds(agent: &Agent) -> Result<Vec<String>> {
    let out = std::process::Command::new(hl7edge_e2e::agent::binary()?)
        .args(["audit", "--config"])
        .arg(agent.config_path())
        .args(["export", "--syslog"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("enroll.")))
        .map(str::to_owned)
        .collect())
}
