//! `hl7edge provision` end to end, as a technician does it: create key, CSR and configuration,
//! have the CSR signed (here by the test CA, standing in for central IT), install the
//! certificate, start the agent with the written configuration, and see its records and its
//! online status arrive at the hub through a real mosquitto over mutual TLS; `doctor` then
//! passes on the provisioned box.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{Result, ensure};
use hl7edge_e2e::agent;
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::checker::{self, Acked};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::Sender;
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::process::{self, Process};
use hl7edge_e2e::rig;

const STATUS: &str = "hl7edge/v1/acme-health/clinic-12/gw-0001/status";

fn hl7edge(args: &[&str], paths: &[&Path]) -> Result<Output> {
    let mut command = std::process::Command::new(agent::binary()?);
    command.args(args).args(paths);
    Ok(command.output()?)
}

fn mode(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_gateway_with_its_signed_certificate_delivers_to_the_hub() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let hub = rig::hub(&pki, &broker).await?;
    let root = tempfile::Builder::new()
        .prefix("hl7edge-provision-")
        .tempdir()?;
    let etc = root.path().join("etc/hl7edge");
    let config = etc.join("hl7edge.toml");
    let port = process::free_port()?;
    let listener = format!("lab=127.0.0.1:{port}");
    let url = broker.url();
    let provision_args = [
        "provision",
        "--org",
        "acme-health",
        "--site",
        "clinic-12",
        "--gateway",
        "gw-0001",
        "--hub",
        url.as_str(),
        "--listener",
        listener.as_str(),
        "--allow",
        "127.0.0.1",
    ];
    let storage = root.path().join("var/lib/hl7edge/queue.db");
    let flags = [
        Path::new("--ca"),
        &pki.ca,
        Path::new("--config"),
        &config,
        Path::new("--storage"),
        &storage,
    ];

    let first = hl7edge(&provision_args, &flags)?;
    ensure!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    let csr_path = etc.join("device.csr");
    ensure!(
        out.contains(&format!("Send {} to central IT", csr_path.display())),
        "{out}"
    );
    ensure!(out.contains("--install-cert"), "{out}");
    ensure!(mode(&etc.join("device.key"))? == 0o600, "key mode");
    ensure!(mode(&etc)? == 0o700, "a created directory is private");
    let key_before = std::fs::read(etc.join("device.key"))?;

    let again = hl7edge(&provision_args, &flags)?;
    ensure!(
        !again.status.success(),
        "a second provision must not overwrite"
    );
    ensure!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    ensure!(
        std::fs::read(etc.join("device.key"))? == key_before,
        "key kept"
    );

    let csr = std::fs::read_to_string(&csr_path)?;
    let install = |cert: &Path| {
        hl7edge(
            &["provision", "--install-cert"],
            &[cert, Path::new("--config"), &config],
        )
    };
    // A certificate for another key, and one for this key from another CA, are refused.
    let refused = install(&pki.agent.cert)?;
    ensure!(!refused.status.success());
    ensure!(
        text(&refused.stderr).contains("signed for another key"),
        "{}",
        text(&refused.stderr)
    );
    let other_ca = Pki::generate()?;
    let foreign = root.path().join("foreign.pem");
    std::fs::write(&foreign, other_ca.sign_csr(&csr)?)?;
    let refused = install(&foreign)?;
    ensure!(!refused.status.success());
    ensure!(
        text(&refused.stderr).contains("not issued by the hub CA"),
        "{}",
        text(&refused.stderr)
    );
    ensure!(
        !etc.join("device.pem").exists(),
        "nothing installed after a refusal"
    );

    let signed = root.path().join("signed.pem");
    std::fs::write(&signed, pki.sign_csr(&csr)?)?;
    let installed = install(&signed)?;
    ensure!(installed.status.success(), "{}", text(&installed.stderr));
    ensure!(
        text(&installed.stdout).contains("CN=acme-health/clinic-12/gw-0001"),
        "{}",
        text(&installed.stdout)
    );
    ensure!(mode(&etc.join("device.pem"))? == 0o644, "certificate mode");

    let log = root.path().join("agent.log");
    let run = [Path::new("run"), Path::new("--config"), &config];
    let mut running = Process::spawn("hl7edge", &agent::binary()?, run, &log)?;
    let addr = ([127, 0, 0, 1], port).into();
    running
        .wait_listening(addr, Duration::from_secs(20))
        .await?;
    let mut sender = Sender::new(rig::quick(addr));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..5))
        .await;
    let acked = [Acked::new("lab", sender.acked())];
    ensure!(
        acked[0].control_ids.len() == 5,
        "all acknowledged: {:?}",
        sender.stats()
    );
    let arrived = hub
        .wait_until(Duration::from_secs(20), |m| {
            checker::check(&acked, &decode::decode(m).delivered)
                .missing
                .is_empty()
                && m.iter().any(|r| r.topic == STATUS)
        })
        .await;
    if arrived.is_err() {
        process::print_log("hl7edge", &log, 50);
    }
    arrived?;
    let decoded = hub.with_messages(decode::decode);
    checker::check(&acked, &decoded.delivered).assert_ok_and_ordered();
    ensure!(
        decoded.statuses.last().is_some_and(|(s, _)| s.online),
        "{:?}",
        decoded.statuses
    );
    let doctor = hl7edge(&["doctor", "--config"], &[&config])?;
    ensure!(doctor.status.success(), "{}", text(&doctor.stdout));
    Ok(())
}
