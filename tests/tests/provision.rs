//! `hl7edge provision` end to end, as a technician does it: create key, CSR and configuration,
//! have the CSR signed (here by the test CA, standing in for central IT), install the
//! certificate, start the agent with the written configuration, and see its records and its
//! online status arrive at the hub through a real mosquitto over mutual TLS; `doctor` then
//! passes on the provisioned box. Central IT's signing as the README shows it (openssl with a
//! v3 extension file, easy-rsa), word for word; what `install-cert` says of a version 1 or a
//! server certificate; a renewal that keeps key and configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
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

/// Runs `script` with bash (`-euo pipefail`) in `dir`, with `env` set; fails with its output.
fn bash(script: &str, dir: &Path, env: &[(&str, &str)]) -> Result<()> {
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()?;
    ensure!(
        out.status.success(),
        "{script}\nfailed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok(())
}

/// An easy-rsa 3 directory whose CA is the test CA (central IT's easy-rsa, set up once as
/// `./easyrsa init-pki && ./easyrsa build-ca` would, with the test's CA in its place). Fails
/// loudly when easy-rsa is not installed (tests/run.sh installs it).
fn easy_rsa(dir: &Path, pki: &Pki) -> Result<()> {
    let installed = Path::new("/usr/share/easy-rsa/easyrsa");
    ensure!(
        installed.exists(),
        "easy-rsa is missing: apt-get install -y easy-rsa (tests/run.sh installs it)"
    );
    bash(
        "cp -r /usr/share/easy-rsa/. . && ./easyrsa init-pki >/dev/null \
         && mkdir -p pki/issued pki/certs_by_serial pki/revoked \
         && touch pki/index.txt && echo 'unique_subject = no' > pki/index.txt.attr \
         && echo 01 > pki/serial",
        dir,
        &[("EASYRSA_BATCH", "1")],
    )?;
    std::fs::copy(&pki.ca, dir.join("pki/ca.crt"))?;
    std::fs::copy(&pki.ca_key, dir.join("pki/private/ca.key"))?;
    Ok(())
}

/// Signs `csr` with openssl as `openssl x509 -req` does without an extension file (X.509
/// version 1), or with the one extension line `ext`.
fn openssl_sign(pki: &Pki, csr: &Path, out: &Path, ext: Option<&str>) -> Result<()> {
    let dir = out.parent().context("out dir")?;
    let mut script = format!(
        "openssl x509 -req -in '{}' -CA '{}' -CAkey '{}' -CAcreateserial -days 30 -out '{}'",
        csr.display(),
        pki.ca.display(),
        pki.ca_key.display(),
        out.display()
    );
    if let Some(ext) = ext {
        std::fs::write(dir.join("one.ext"), format!("{ext}\n"))?;
        script.push_str(" -extfile one.ext");
    }
    bash(&script, dir, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_it_signing_as_the_readme_shows_and_a_renewal_keep_the_box_working() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let hub = rig::hub(&pki, &broker).await?;
    let root = tempfile::Builder::new()
        .prefix("hl7edge-signing-")
        .tempdir()?;
    let etc = root.path().join("etc");
    let config = etc.join("hl7edge.toml");
    let (port, icu_port) = (process::free_port()?, process::free_port()?);
    let listener = format!("lab=127.0.0.1:{port}");
    let url = broker.url();
    let storage = root.path().join("var/queue.db");
    let provisioned = hl7edge(
        &[
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
        ],
        &[
            Path::new("--ca"),
            &pki.ca,
            Path::new("--config"),
            &config,
            Path::new("--storage"),
            &storage,
        ],
    )?;
    ensure!(
        provisioned.status.success(),
        "{}",
        text(&provisioned.stderr)
    );
    let csr = etc.join("device.csr");
    let install = |cert: &Path| {
        hl7edge(
            &["provision", "--install-cert"],
            &[cert, Path::new("--config"), &config],
        )
    };

    // What `openssl x509 -req` makes by default, and a server certificate: refused, in words.
    let central = root.path().join("central-it");
    std::fs::create_dir_all(&central)?;
    let v1 = central.join("v1.pem");
    openssl_sign(&pki, &csr, &v1, None)?;
    let refused = install(&v1)?;
    let said = text(&refused.stderr);
    ensure!(!refused.status.success(), "a v1 certificate was installed");
    ensure!(said.contains("X.509 version 1"), "{said}");
    ensure!(
        said.contains("-extfile client.ext") && said.contains("extendedKeyUsage = clientAuth"),
        "the fix shows central IT's command: {said}"
    );
    let server = central.join("server.pem");
    openssl_sign(&pki, &csr, &server, Some("extendedKeyUsage = serverAuth"))?;
    let said = text(&install(&server)?.stderr);
    ensure!(
        said.contains("only for server authentication (serverAuth)"),
        "{said}"
    );
    ensure!(!etc.join("device.pem").exists(), "nothing installed");

    // The README's openssl commands, word for word.
    std::fs::copy(&csr, central.join("device.csr"))?;
    std::fs::copy(&pki.ca, central.join("hub-ca.pem"))?;
    std::fs::copy(&pki.ca_key, central.join("hub-ca.key"))?;
    bash(
        &hl7edge_e2e::readme::block("<!-- ci: signing with openssl")?,
        &central,
        &[],
    )?;
    let installed = install(&central.join("device.pem"))?;
    ensure!(installed.status.success(), "{}", text(&installed.stderr));

    // The technician adds a second listener and a telemetry interval by hand.
    let mut edited = std::fs::read_to_string(&config)?;
    edited.push_str(&format!(
        "\n[[listener]]\nname = \"icu\"\nbind = \"127.0.0.1:{icu_port}\"\nallow = [\"127.0.0.1\"]\n\n[telemetry]\ninterval = \"10s\"\n"
    ));
    std::fs::write(&config, &edited)?;
    let log = root.path().join("agent.log");
    let run = [Path::new("run"), Path::new("--config"), &config];
    let mut running = Process::spawn("hl7edge", &agent::binary()?, run, &log)?;
    let addr = ([127, 0, 0, 1], port).into();
    running
        .wait_listening(addr, Duration::from_secs(20))
        .await?;
    let mut sender = Sender::new(rig::quick(addr));
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 0..3))
        .await;

    // Renewal: a new request from the same key; key and configuration untouched.
    let key = std::fs::read(etc.join("device.key"))?;
    let old_csr = std::fs::read(&csr)?;
    let renewed = hl7edge(&["provision", "--renew", "--config"], &[&config])?;
    ensure!(renewed.status.success(), "{}", text(&renewed.stderr));
    ensure!(
        text(&renewed.stdout).contains("--install-cert"),
        "{}",
        text(&renewed.stdout)
    );
    ensure!(
        std::fs::read(etc.join("device.key"))? == key,
        "the key is kept"
    );
    ensure!(
        std::fs::read_to_string(&config)? == edited,
        "the configuration is kept, second listener and [telemetry] included"
    );
    ensure!(std::fs::read(&csr)? != old_csr, "a new request");

    // Central IT signs the renewal with easy-rsa, the README's commands word for word.
    let easy = root.path().join("easy-rsa");
    std::fs::create_dir_all(&easy)?;
    easy_rsa(&easy, &pki)?;
    std::fs::copy(&csr, easy.join("device.csr"))?;
    bash(
        &hl7edge_e2e::readme::block("<!-- ci: signing with easy-rsa")?,
        &easy,
        &[("EASYRSA_BATCH", "1")],
    )?;
    let issued = easy.join("pki/issued/acme-health-clinic-12-gw-0001.crt");
    let installed = install(&issued)?;
    ensure!(installed.status.success(), "{}", text(&installed.stderr));
    ensure!(
        std::fs::read(etc.join("device.key"))? == key,
        "still the same key"
    );

    // The box restarts with the renewed certificate and delivers; doctor passes.
    running.signal(nix::sys::signal::Signal::SIGTERM)?;
    running.wait_exit(Duration::from_secs(30)).await?;
    let mut running = Process::spawn("hl7edge", &agent::binary()?, run, &log)?;
    running
        .wait_listening(addr, Duration::from_secs(20))
        .await?;
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lis", 3..6))
        .await;
    let acked = [Acked::new("lab", sender.acked())];
    ensure!(acked[0].control_ids.len() == 6, "{:?}", sender.stats());
    let arrived = hub
        .wait_until(Duration::from_secs(30), |m| {
            checker::check(&acked, &decode::decode(m).delivered)
                .missing
                .is_empty()
        })
        .await;
    if arrived.is_err() {
        process::print_log("hl7edge", &log, 50);
    }
    arrived?;
    ensure!(
        running
            .wait_listening(([127, 0, 0, 1], icu_port).into(), Duration::from_secs(5))
            .await
            .is_ok(),
        "the second listener still listens"
    );
    let doctor = hl7edge(&["doctor", "--config"], &[&config])?;
    ensure!(doctor.status.success(), "{}", text(&doctor.stdout));
    Ok(())
}
