//! `hl7edge doctor` against a real mosquitto: all OK (exit 0) on a healthy, running gateway, and
//! for each common field problem a FAIL on the right check with the right fix (exit 1): an
//! expired certificate, a certificate from the wrong CA, a key that does not match, an
//! unreachable hub, a key file readable by others and a listener port taken by another program;
//! a hub CA that expires in 20 days is a WARN (the gateway still passes).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use hl7edge_e2e::agent::{self, AgentConfig, write_config};
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::decode;
use hl7edge_e2e::pki::{CertPaths, Pki, PkiOptions};
use hl7edge_e2e::process;
use hl7edge_e2e::rig::Rig;
use serde_json::Value;
use tempfile::TempDir;

/// One `doctor --json` run.
struct Doctor {
    code: Option<i32>,
    report: Value,
}

impl Doctor {
    /// Runs the agent binary's `doctor` on `config`.
    async fn run(config: &Path) -> Result<Doctor> {
        let binary = agent::binary()?;
        let config = config.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary)
                .args(["doctor", "--json", "--config"])
                .arg(config)
                .output()
        })
        .await??;
        let report = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "doctor printed no JSON:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        Ok(Doctor {
            code: output.status.code(),
            report,
        })
    }

    fn check(&self, name: &str) -> Result<&Value> {
        self.checks()
            .iter()
            .find(|c| c["name"] == name)
            .ok_or_else(|| anyhow!("no check {name:?} in {:#}", self.report))
    }

    fn checks(&self) -> &[Value] {
        self.report["checks"].as_array().map_or(&[], Vec::as_slice)
    }

    /// Asserts that `name` failed with a fix containing `fix` and that the exit code is 1.
    fn assert_fail(&self, name: &str, fix: &str) -> Result<&Value> {
        let check = self.check(name)?;
        ensure!(check["outcome"] == "fail", "{name} should fail: {check:#}");
        let given = check["fix"].as_str().unwrap_or_default();
        ensure!(given.contains(fix), "{name}: fix {given:?} lacks {fix:?}");
        ensure!(
            self.code == Some(1),
            "exit code {:?} with a FAIL",
            self.code
        );
        ensure!(self.report["passed"] == false, "{:#}", self.report);
        Ok(check)
    }
}

/// A broker and a configuration file for a gateway that is not running.
struct Setup {
    pki: Pki,
    _broker: Broker,
    dir: TempDir,
    ports: BTreeMap<String, u16>,
}

impl Setup {
    async fn new(configure: impl FnOnce(AgentConfig, &Pki, &Path) -> AgentConfig) -> Result<Setup> {
        Setup::with_pki(Pki::generate()?, configure).await
    }

    async fn with_pki(
        pki: Pki,
        configure: impl FnOnce(AgentConfig, &Pki, &Path) -> AgentConfig,
    ) -> Result<Setup> {
        let broker = Broker::start(&pki).await?;
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-doctor-")
            .tempdir()?;
        let config = configure(AgentConfig::new(&pki, &broker.url()), &pki, dir.path());
        let ports: BTreeMap<String, u16> = config
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .zip(process::free_ports(config.listeners.len())?)
            .collect();
        write_config(
            &dir.path().join("hl7edge.toml"),
            &config,
            &dir.path().join("queue.db"),
            &ports,
        )?;
        Ok(Setup {
            pki,
            _broker: broker,
            dir,
            ports,
        })
    }

    /// A setup whose gateway presents the certificate and key `identity` picks.
    async fn with_identity(identity: impl FnOnce(&Pki) -> CertPaths) -> Result<Setup> {
        Setup::new(|c, pki, _| AgentConfig {
            hub_identity: identity(pki),
            ..c
        })
        .await
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("hl7edge.toml")
    }

    async fn doctor(&self) -> Result<Doctor> {
        Doctor::run(&self.config()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_running_gateway_passes_every_check_without_disturbing_the_agent() -> Result<()> {
    let rig = Rig::start(|c| c).await?;
    rig.hub
        .wait_until(Duration::from_secs(10), |m| {
            m.iter().any(|m| m.topic.ends_with("/status"))
        })
        .await?;
    let doctor = Doctor::run(&rig.agent.config_path()).await?;
    let failed: Vec<&Value> = doctor
        .checks()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .collect();
    ensure!(failed.is_empty(), "failed checks: {failed:#?}");
    ensure!(doctor.code == Some(0), "exit code {:?}", doctor.code);
    for name in [
        "configuration",
        "device key",
        "certificate chain",
        "key matches certificate",
        "certificate expiry",
        "hub CA expiry",
        "clock",
        "hub reachable",
        "hub TLS handshake",
        "hub MQTT login",
        "storage directory",
        "database",
    ] {
        ensure!(
            doctor.check(name)?["outcome"] == "ok",
            "{:#}",
            doctor.check(name)?
        );
    }
    let lab = doctor.check("listener lab")?;
    ensure!(
        lab["detail"]
            .as_str()
            .is_some_and(|d| d.contains("held by the running hl7edge agent")),
        "{lab:#}"
    );
    // The probe used its own client id: the agent's session was not taken over, so its last
    // will (offline) was not published.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let statuses = rig.hub.with_messages(decode::decode).statuses;
    ensure!(statuses.iter().all(|(s, _)| s.online), "{statuses:?}");
    // The report a technician sees (shown with --nocapture; copied into the README).
    let text = std::process::Command::new(agent::binary()?)
        .args(["doctor", "--config"])
        .arg(rig.agent.config_path())
        .output()?;
    eprintln!("{}", String::from_utf8_lossy(&text.stdout));
    ensure!(text.status.success());
    Ok(())
}

#[tokio::test]
async fn an_expired_certificate_fails_with_renewal_steps() -> Result<()> {
    let setup = Setup::with_identity(|pki| pki.expired_client.clone()).await?;
    let doctor = setup.doctor().await?;
    let expiry = doctor.assert_fail("certificate expiry", "provision")?;
    ensure!(
        expiry["detail"] == "expired on 2001-01-01T00:00:00Z",
        "{expiry:#}"
    );
    doctor.assert_fail("certificate chain", "--install-cert")?;
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_the_wrong_ca_fails_and_the_hub_refuses_it() -> Result<()> {
    let setup = Setup::with_identity(|pki| pki.wrong_ca_client.clone()).await?;
    let doctor = setup.doctor().await?;
    let chain = doctor.assert_fail("certificate chain", "--install-cert")?;
    ensure!(
        chain["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not issued by the hub CA")),
        "{chain:#}"
    );
    doctor.assert_fail("hub TLS handshake", "--install-cert")?;
    Ok(())
}

#[tokio::test]
async fn a_key_that_does_not_belong_to_the_certificate_fails() -> Result<()> {
    let setup = Setup::with_identity(|pki| CertPaths {
        cert: pki.agent.cert.clone(),
        key: pki.subscriber.key.clone(),
    })
    .await?;
    let doctor = setup.doctor().await?;
    doctor.assert_fail("key matches certificate", "--install-cert")?;
    ensure!(doctor.check("device key")?["outcome"] == "ok");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_hub_fails_with_the_address_to_open() -> Result<()> {
    let closed = process::free_port()?;
    let setup = Setup::new(|c, _, _| AgentConfig {
        hub_url: format!("mqtts://127.0.0.1:{closed}"),
        ..c
    })
    .await?;
    let doctor = setup.doctor().await?;
    // Connection refused: the host answered, nothing listens there. Not the firewall.
    let hub = doctor.assert_fail("hub reachable", "the broker is not running there")?;
    ensure!(
        hub["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("nothing listens on 127.0.0.1:{closed}"))),
        "{hub:#}"
    );
    ensure!(
        !hub["fix"].as_str().unwrap_or_default().contains("firewall"),
        "{hub:#}"
    );
    for later in ["hub TLS handshake", "hub MQTT login"] {
        let check = doctor.check(later)?;
        ensure!(
            check["outcome"] == "skipped"
                && check["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("not reachable")),
            "later stages are listed as not run: {check:#}"
        );
    }
    ensure!(doctor.check("certificate chain")?["outcome"] == "ok");
    Ok(())
}

#[tokio::test]
async fn a_hub_ca_expiring_in_twenty_days_is_a_warning_and_the_gateway_still_passes() -> Result<()>
{
    let pki = Pki::generate_with(PkiOptions {
        ca_expires_in_days: Some(20),
    })?;
    let setup = Setup::with_pki(pki, |c, _, _| c).await?;
    let doctor = setup.doctor().await?;
    let ca = doctor.check("hub CA expiry")?;
    ensure!(ca["outcome"] == "warn", "{ca:#}");
    let detail = ca["detail"].as_str().unwrap_or_default();
    ensure!(
        detail.starts_with("expires in 19 days") || detail.starts_with("expires in 20 days"),
        "{detail}"
    );
    ensure!(
        ca["fix"].as_str().is_some_and(|f| f.contains("hub.ca")),
        "{ca:#}"
    );
    ensure!(
        doctor.check("certificate expiry")?["outcome"] == "ok",
        "the device certificate itself is fine"
    );
    ensure!(doctor.check("hub MQTT login")?["outcome"] == "ok");
    ensure!(
        doctor.code == Some(0) && doctor.report["passed"] == true,
        "a warning passes: {:#}",
        doctor.report
    );
    Ok(())
}

#[tokio::test]
async fn a_key_readable_by_others_fails_with_chmod_600() -> Result<()> {
    let setup = Setup::new(|c, pki, dir| {
        let loose = dir.join("device.key");
        std::fs::copy(&pki.agent.key, &loose).expect("copy key");
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        AgentConfig {
            hub_identity: CertPaths {
                cert: pki.agent.cert.clone(),
                key: loose,
            },
            ..c
        }
    })
    .await?;
    let doctor = setup.doctor().await?;
    let key = setup.dir.path().join("device.key");
    let check = doctor.assert_fail("device key", &format!("chmod 600 {}", key.display()))?;
    ensure!(
        check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("mode 0644")),
        "{check:#}"
    );
    ensure!(
        doctor.check("hub MQTT login")?["outcome"] == "ok",
        "only the mode is wrong"
    );
    drop(setup.pki);
    Ok(())
}

#[tokio::test]
async fn a_listener_port_taken_by_another_program_fails() -> Result<()> {
    let setup = Setup::new(|c, _, _| c).await?;
    let port = setup.ports.get("lab").copied().context("lab port")?;
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let doctor = setup.doctor().await?;
    let lab = doctor.assert_fail("listener lab", "choose another port in listener[0].bind")?;
    let detail = lab["detail"].as_str().unwrap_or_default();
    ensure!(detail.contains("taken by another program"), "{detail}");
    ensure!(
        detail.contains(&format!("pid {}", std::process::id())),
        "names the holder: {detail}"
    );
    Ok(())
}
