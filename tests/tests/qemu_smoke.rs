//! The gateway build, end to end under emulation: the static aarch64 `hl7edge` runs under
//! `qemu-aarch64` (`HL7EDGE_RUNNER`, `HL7EDGE_BIN`; `cross/test.sh` sets both), while mosquitto
//! (mutual TLS, `require_certificate`), the stand-in hub and the MLLP senders run natively. Two
//! lab systems send ORU^R01 results; every acknowledged message must reach the hub, in order per
//! sender, and SIGTERM must stop the agent cleanly with the `offline` status published.
//!
//! Without both variables the test prints why it did not run and passes at once, so the normal
//! test run stays fast. Emulation is 5 to 20 times slower than native code: the timeouts here are
//! generous on purpose.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hl7edge_e2e::checker::Acked;
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::mllp::{AckCode, Sender, SenderConfig};
use hl7edge_e2e::rig::{self, Rig};

/// Messages per sender (two senders).
const PER_SENDER: u64 = 25;

/// How long an ACK may take under emulation before the sender resends.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long all records may take to reach the hub.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(180);

/// How long the graceful stop may take under emulation.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the static aarch64 build and qemu: run by cross/test.sh with --ignored"]
async fn aarch64_agent_under_qemu_acks_delivers_everything_and_stops_cleanly() -> Result<()> {
    let (Some(runner), Some(binary)) = (
        hl7edge_e2e::agent::runner(),
        std::env::var_os("HL7EDGE_BIN"),
    ) else {
        bail!(
            "set HL7EDGE_RUNNER (e.g. qemu-aarch64) and HL7EDGE_BIN (the static aarch64 hl7edge); \
             cross/test.sh does"
        );
    };
    ensure_aarch64_elf(Path::new(&binary))?;

    let mut rig = Rig::start(|c| c.set("log.level", "info")).await?;
    eprintln!(
        "agent: {} {}",
        runner.display(),
        Path::new(&binary).display()
    );

    let started = Instant::now();
    let lab = rig
        .agent
        .mllp_addr("lab")
        .context("the agent has a lab listener")?;
    let sender = |name: &'static str| {
        let mut sender = Sender::new(SenderConfig {
            ack_timeout: ACK_TIMEOUT,
            give_up_after: DELIVERY_TIMEOUT,
            ..rig::quick(lab)
        });
        async move {
            sender
                .send_all(hl7gen::messages(Kind::Lab, name, 0..PER_SENDER))
                .await;
            sender
        }
    };
    let (a, b) = tokio::join!(sender("lisa"), sender("lisb"));
    for s in [&a, &b] {
        let unacked: Vec<_> = s.outcomes().iter().filter(|o| !o.is_acked()).collect();
        ensure!(unacked.is_empty(), "not acknowledged: {unacked:?}");
        let not_aa: Vec<_> = s
            .outcomes()
            .iter()
            .filter(|o| o.ack.as_ref().map(|a| a.code) != Some(AckCode::AA))
            .collect();
        ensure!(
            not_aa.is_empty(),
            "expected AA for every result: {not_aa:?}"
        );
        ensure!(s.acked().len() == PER_SENDER as usize, "{:?}", s.stats());
    }
    eprintln!(
        "{} messages acknowledged in {:?}",
        2 * PER_SENDER,
        started.elapsed()
    );

    let acked = [Acked::new("lab", a.acked()), Acked::new("lab", b.acked())];
    let report = rig.wait_delivered(&acked, DELIVERY_TIMEOUT).await;
    report.assert_ok_and_ordered();
    ensure!(report.acked == 2 * PER_SENDER as usize, "{report}");
    ensure!(report.unacked_arrivals.is_empty(), "{report}");
    let decoded = rig.decoded();
    ensure!(decoded.undecodable.is_empty(), "{:?}", decoded.undecodable);
    eprintln!("all records delivered after {:?}", started.elapsed());

    rig.agent.sigterm()?;
    let status = rig.agent.wait_exit(STOP_TIMEOUT).await?;
    ensure!(
        status.success(),
        "SIGTERM must end the agent with 0: {status:?}"
    );
    rig.hub
        .wait_until(Duration::from_secs(30), |received| {
            hl7edge_e2e::decode::decode(received)
                .statuses
                .iter()
                .any(|(s, _)| !s.online)
        })
        .await?;
    let offline = rig.decoded().statuses.into_iter().find(|(s, _)| !s.online);
    ensure!(
        offline.is_some_and(|(s, _)| s.reason.as_deref() == Some("shutdown")),
        "a clean stop publishes offline with the reason shutdown"
    );
    Ok(())
}

/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

/// Fails unless `binary` is a little-endian 64-bit AArch64 ELF file, so a host build that slipped
/// in through `HL7EDGE_BIN` cannot pass for the gateway build.
fn ensure_aarch64_elf(binary: &Path) -> Result<()> {
    let mut header = [0u8; 20];
    std::fs::File::open(binary)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .with_context(|| format!("reading the ELF header of {}", binary.display()))?;
    let [0x7f, b'E', b'L', b'F', class, data, ..] = header else {
        bail!("{} is not an ELF file", binary.display());
    };
    let machine = u16::from_le_bytes([header[18], header[19]]);
    ensure!(
        class == 2 && data == 1 && machine == EM_AARCH64,
        "{} is not a 64-bit little-endian AArch64 ELF (class {class}, data {data}, machine {machine})",
        binary.display()
    );
    Ok(())
}
