//! Signed listener pushes end to end: real mosquitto with mutual TLS and the ACL template, the
//! real `hl7edge-hub push listener` (certificate `hl7edge-admin`) and `fleet --json`
//! (`hl7edge-monitor`), the agent as a process pinning the organization's public key.
//!
//! One story, in order: a push moves the listener to another port while a sender streams
//! messages (every one ACKed, the old port refuses afterwards); a push whose port another
//! socket holds is rolled back and the box keeps serving where it was, the hub sees why; a push
//! signed with another key and one with an older sequence are refused; a switch turns the
//! listener off (connections refused) and on again; the box restarted while the broker is down
//! comes up on its last pushed port, and restarted while that port is taken rolls back to the
//! configured one by itself. Every ACKed message reaches the broker exactly once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::broker::{Broker, BrokerOptions};
use hl7edge_e2e::checker::{self, Acked};
use hl7edge_e2e::decode;
use hl7edge_e2e::hl7gen::{self, Kind, Message};
use hl7edge_e2e::hub::HubTools;
use hl7edge_e2e::ingest::ACL_TEMPLATE;
use hl7edge_e2e::mllp::{Sender, SenderConfig};
use hl7edge_e2e::mqtt::{ClientOptions, Subscriber};
use hl7edge_e2e::pki::{self, Pki};
use hl7edge_e2e::process::free_port;
use serde_json::Value;

const RECORDS: &str = "hl7edge/v1/+/+/+/records/#";
const WAIT: Duration = Duration::from_secs(30);

async fn wait_push(fleet: &HubTools, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    Ok(fleet
        .wait_push_report(|p| p["listener"] == "lab", WAIT, ok)
        .await?)
}

/// Listener `lab` in `hl7edge status --json`.
fn lab_status(status: &Value) -> Option<Value> {
    status["interfaces"]
        .as_array()?
        .iter()
        .find(|i| i["name"] == "lab")
        .cloned()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends every message to `addr`, all of which must be ACKed.
async fn send(addr: SocketAddr, messages: Vec<Message>, acked: &mut Vec<String>) -> Result<()> {
    let n = messages.len();
    let mut sender = Sender::new(SenderConfig::new(addr));
    sender.send_all(messages).await;
    ensure!(
        sender.acked().len() == n,
        "{} of {n} ACKed at {addr}: {:?}",
        sender.acked().len(),
        sender.outcomes().last()
    );
    acked.extend(sender.acked());
    Ok(())
}

/// Whether a TCP connection to `addr` is refused (nothing listens there).
async fn refused(addr: SocketAddr) -> bool {
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// A lab system that follows its interface to a new port: it streams to `old` on one
/// connection, and once `old` stops answering it sends the rest (from the message it was on)
/// to `new`. Returns the control ids ACKed on each.
async fn stream_following(
    old: SocketAddr,
    new: SocketAddr,
    messages: Vec<Message>,
) -> (Vec<String>, Vec<String>, usize) {
    let mut first = Sender::new(SenderConfig {
        give_up_after: Duration::from_secs(2),
        ..SenderConfig::new(old)
    });
    let mut second = Sender::new(SenderConfig::new(new));
    let mut moved = false;
    for message in &messages {
        if !moved && first.send(message).await.is_acked() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        moved = true;
        second.send(message).await;
    }
    (first.acked(), second.acked(), messages.len())
}

/// The real broker with the ACL template, the hub's tools as `hl7edge-admin` (push) and
/// `hl7edge-monitor` (fleet), a subscriber standing in for the hub, and the organization's key.
struct Rig {
    pki: Pki,
    broker: Broker,
    admin: HubTools,
    fleet: HubTools,
    hub: Subscriber,
    org_private: std::path::PathBuf,
    org_public: std::path::PathBuf,
}

impl Rig {
    async fn start(hub_client: &str) -> Result<Rig> {
        let pki = Pki::generate()?;
        let acl = pki.dir().join("mosquitto-acl");
        std::fs::write(&acl, ACL_TEMPLATE)?;
        let broker = Broker::start_with(
            &pki,
            BrokerOptions {
                extra_config: vec![format!("acl_file {}", acl.display())],
                ..BrokerOptions::default()
            },
        )
        .await?;
        let monitor = pki.client("hl7edge-monitor")?;
        let admin = HubTools::with_identity(&pki, &broker.url(), &pki.client("hl7edge-admin")?)?;
        let fleet = HubTools::with_identity(&pki, &broker.url(), &monitor)?;
        let hub = Subscriber::connect(
            broker.addr(),
            &ClientOptions::new(hub_client, &pki.ca, Some(&monitor)),
            RECORDS,
        )
        .await?;
        let (org_private, org_public) = pki::org_push_key(pki.dir(), "org-push")
            .context("openssl (Debian's openssl package)")?;
        Ok(Rig {
            pki,
            broker,
            admin,
            fleet,
            hub,
            org_private,
            org_public,
        })
    }

    /// An agent pinning the organization's key, with a heartbeat every second.
    fn agent_config(&self) -> AgentConfig {
        AgentConfig::new(&self.pki, &self.broker.url())
            .set("hub.push_key", self.org_public.display().to_string())
            .set("telemetry.interval", "1s")
    }
}

fn settings(dir: &Path, name: &str, text: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_push_moves_the_port_without_losing_a_message_rolls_back_when_it_cannot_bind_and_switches_the_listener_off_and_on()
-> Result<()> {
    let rig = Rig::start("listener-push-test-hub").await?;
    let config = rig.agent_config();
    let Rig {
        pki,
        mut broker,
        admin,
        fleet,
        hub,
        org_private,
        ..
    } = rig;
    let dir = pki.dir();
    let (rogue_private, _) = pki::org_push_key(dir, "rogue")?;
    let mut agent = Agent::start(&config).await?;
    let configured = agent.mllp_addr("lab").context("listener lab")?;
    let mut acked = Vec::new();
    let mut next = 0u64;
    let mut batch = |n: u64| {
        let messages: Vec<Message> = hl7gen::messages(Kind::Lab, "lis", next..next + n).collect();
        next += n;
        messages
    };
    send(configured, batch(3), &mut acked).await?;

    let push = |key: &Path, sequence: &str, what: &str| {
        let key = key.display().to_string();
        let (sequence, what) = (sequence.to_owned(), what.to_owned());
        let admin = &admin;
        async move {
            let mut args = vec![
                "--signing-key",
                &key,
                "--to",
                "acme-health/clinic-12/gw-0001",
                "--listener",
                "lab",
                "--sequence",
                &sequence,
            ];
            args.push(&what);
            admin.push_listener(&args).await
        }
    };

    // A push moves the listener to another port while a sender streams: the new socket is
    // bound before the old one closes, every message is ACKed, the old port refuses.
    let moved_port = free_port()?;
    let moved = local(moved_port);
    let streaming = tokio::spawn(stream_following(configured, moved, batch(150)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let file = settings(
        dir,
        "lab-moved.toml",
        &format!("bind = \"127.0.0.1:{moved_port}\"\nidle_timeout = \"60s\"\n"),
    )?;
    let out = push(&org_private, "10", &file).await?;
    ensure!(out.contains("pushed sequence 10"), "{out}");
    let applied = wait_push(&fleet, |p| p["outcome"] == "applied" && p["sequence"] == 10).await?;
    ensure!(applied["change"] == "listener", "{applied}");
    let moved_hash = applied["config_hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(moved_hash.len() == 16, "{applied}");
    let (before, after, total) = streaming.await?;
    ensure!(
        before.len() + after.len() == total,
        "{} + {} of {total} ACKed across the move",
        before.len(),
        after.len()
    );
    ensure!(
        !before.is_empty() && !after.is_empty(),
        "the move happened mid-stream: {} before, {} after",
        before.len(),
        after.len()
    );
    acked.extend(before);
    acked.extend(after);
    ensure!(refused(configured).await, "the old port still accepts");
    agent.set_port("lab", moved_port);

    // A port another socket holds: rolled back, the box keeps serving where it was.
    let held = std::net::TcpListener::bind("127.0.0.1:0")?;
    let held_port = held.local_addr()?.port();
    let file = settings(
        dir,
        "lab-held.toml",
        &format!("bind = \"127.0.0.1:{held_port}\"\n"),
    )?;
    push(&org_private, "20", &file).await?;
    let rolled = wait_push(&fleet, |p| p["outcome"] == "rolled_back").await?;
    ensure!(
        rolled["reason"] == "port_in_use" && rolled["sequence"] == 20,
        "{rolled}"
    );
    ensure!(rolled["config_hash"] == moved_hash.as_str(), "{rolled}");
    send(moved, batch(3), &mut acked).await?;
    drop(held);

    // Another key, then an older sequence: refused, nothing changes.
    push(&rogue_private, "30", &file).await?;
    let refused_push = wait_push(&fleet, |p| p["reason"] == "bad_signature").await?;
    ensure!(refused_push["outcome"] == "rejected", "{refused_push}");
    push(&org_private, "5", &file).await?;
    let refused_push = wait_push(&fleet, |p| p["reason"] == "downgrade").await?;
    ensure!(
        refused_push["config_hash"] == moved_hash.as_str(),
        "{refused_push}"
    );
    send(moved, batch(2), &mut acked).await?;
    // The same settings again under a newer sequence: applied, nothing moves (and the push the
    // broker retains is the one the box runs).
    let file = settings(
        dir,
        "lab-moved-again.toml",
        &format!("bind = \"127.0.0.1:{moved_port}\"\nidle_timeout = \"60s\"\n"),
    )?;
    push(&org_private, "50", &file).await?;
    let again = wait_push(&fleet, |p| p["outcome"] == "applied" && p["sequence"] == 50).await?;
    ensure!(again["config_hash"] == moved_hash.as_str(), "{again}");

    // Switched off: connections are refused, and that is no failure at the hub. On again: the
    // listener serves on its pushed port.
    push(&org_private, "60", "--disable").await?;
    let off = wait_push(&fleet, |p| p["change"] == "switch" && p["disabled"] == true).await?;
    ensure!(off["outcome"] == "applied", "{off}");
    ensure!(refused(moved).await, "a disabled listener still accepts");
    let status = agent.status_json()?;
    let lab = lab_status(&status).context("lab in status --json")?;
    ensure!(
        lab["disabled"] == true && lab["bind"] == moved.to_string().as_str(),
        "{lab}"
    );
    let text = agent.status_text()?;
    ensure!(text.contains("lab (disabled by a push)"), "{text}");
    push(&org_private, "61", "--enable").await?;
    wait_push(&fleet, |p| p["sequence"] == 61 && p["disabled"] == false).await?;
    send(moved, batch(3), &mut acked).await?;
    let status = agent.status_json()?;
    ensure!(
        lab_status(&status).is_some_and(|l| l["disabled"] == false),
        "{status}"
    );

    // Broker down, box restarted: it serves on its last pushed port.
    broker.stop().await?;
    agent.restart().await?;
    ensure!(
        refused(configured).await,
        "the configured port is used again"
    );
    send(moved, batch(2), &mut acked).await?;
    broker.restart().await?;
    let restored = wait_push(&fleet, |p| p["outcome"] == "restored").await?;
    ensure!(restored["config_hash"] == moved_hash.as_str(), "{restored}");

    // Restarted while the pushed port is taken: it rolls back to the configured one by itself.
    agent.stop().await?;
    let squatter = std::net::TcpListener::bind(moved)?;
    agent.set_port("lab", configured.port());
    agent.restart().await?;
    let rolled = wait_push(&fleet, |p| p["outcome"] == "rolled_back").await?;
    ensure!(rolled["reason"] == "port_in_use", "{rolled}");
    send(configured, batch(2), &mut acked).await?;
    drop(squatter);
    let log = agent.log();
    ensure!(
        log.contains("applied a pushed listener change")
            && log.contains("rolled back a listener push")
            && log.contains("rolled back to the configured ones"),
        "the log names the outcomes"
    );

    // Nothing lost, nothing twice.
    let total = acked.len();
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    while decode::decode(&hub.messages()).delivered.len() < total
        && tokio::time::Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = decode::decode(&hub.messages()).delivered;
    checker::check(&[Acked::new("lab", acked)], &delivered).assert_ok();
    agent.stop().await?;
    Ok(())
}

const README: &str = include_str!("../../README.md");

/// The README's `push listener` example: the settings file it writes and each command's
/// arguments after `hl7edge-hub push listener`, without the broker options (the test's own).
fn readme_example() -> Result<(String, Vec<Vec<String>>)> {
    let section = README
        .split_once("### Changing a listener remotely")
        .map(|(_, rest)| rest.split("\n### ").next().unwrap_or(""))
        .context("the README's listener push section")?;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(body, _)| body)
        .context("its sh block")?;
    let settings = block
        .split_once("<<'EOF'\n")
        .and_then(|(_, rest)| rest.split_once("\nEOF\n"))
        .map(|(body, _)| format!("{body}\n"))
        .context("the settings heredoc")?;
    let joined = block.replace("\\\n", " ");
    let mut commands = Vec::new();
    for line in joined.lines().filter(|l| l.starts_with("hl7edge-hub ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            words.get(..3) == Some(&["hl7edge-hub", "push", "listener"][..]),
            "{line}"
        );
        let mut args = Vec::new();
        let mut rest = words[3..].iter();
        while let Some(word) = rest.next() {
            if ["--url", "--ca", "--cert", "--key"].contains(word) {
                rest.next();
            } else {
                args.push((*word).to_owned());
            }
        }
        commands.push(args);
    }
    ensure!(commands.len() == 3, "move, disable, enable: {commands:?}");
    Ok((settings, commands))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readmes_listener_commands_move_the_listener_and_switch_it_off_and_on() -> Result<()> {
    let (settings_text, commands) = readme_example()?;
    let rig = Rig::start("listener-readme-hub").await?;
    let config = rig.agent_config();
    let Rig {
        pki,
        admin,
        fleet,
        hub,
        org_private,
        ..
    } = rig;
    let dir = pki.dir();
    let mut agent = Agent::start(&config).await?;
    let configured = agent.mllp_addr("lab").context("listener lab")?;
    let port = free_port()?;
    ensure!(settings_text.contains(":2576\""), "{settings_text}");
    let file = settings(
        dir,
        "lab-2576.toml",
        &settings_text.replace(":2576\"", &format!(":{port}\"")),
    )?;
    let key = org_private.display().to_string();
    let run = |args: &[String]| {
        let args: Vec<String> = args
            .iter()
            .map(|a| match a.as_str() {
                "org-push.key" => key.clone(),
                "lab-2576.toml" => file.clone(),
                _ => a.clone(),
            })
            .collect();
        let admin = &admin;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            admin.push_listener(&args).await
        }
    };
    let mut acked = Vec::new();
    let mut next = 0u64;
    let mut batch = |n: u64| {
        let messages: Vec<Message> = hl7gen::messages(Kind::Lab, "lis", next..next + n).collect();
        next += n;
        messages
    };
    let moved = local(port);

    run(&commands[0]).await?;
    wait_push(&fleet, |p| {
        p["change"] == "listener" && p["outcome"] == "applied"
    })
    .await?;
    send(moved, batch(2), &mut acked).await?;
    ensure!(refused(configured).await, "the old port still accepts");
    agent.set_port("lab", port);

    run(&commands[1]).await?;
    wait_push(&fleet, |p| p["change"] == "switch" && p["disabled"] == true).await?;
    ensure!(refused(moved).await, "a disabled listener still accepts");

    run(&commands[2]).await?;
    wait_push(&fleet, |p| {
        p["change"] == "switch" && p["disabled"] == false
    })
    .await?;
    send(moved, batch(2), &mut acked).await?;

    let until = tokio::time::Instant::now() + WAIT;
    while decode::decode(&hub.messages()).delivered.len() < acked.len()
        && tokio::time::Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = decode::decode(&hub.messages()).delivered;
    checker::check(&[Acked::new("lab", acked)], &delivered).assert_ok();
    agent.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frame_arriving_while_the_listener_is_switched_off_is_stored_answered_and_then_its_connection_closes()
-> Result<()> {
    let rig = Rig::start("listener-close-hub").await?;
    let config = rig.agent_config();
    let Rig {
        admin,
        hub,
        org_private,
        ..
    } = rig;
    let mut agent = Agent::start(&config).await?;
    let lab = agent.mllp_addr("lab").context("listener lab")?;
    let message = hl7gen::messages(Kind::Lab, "lis", 0..1)
        .next()
        .context("a message")?;
    let framed = hl7edge_e2e::mllp::frame(&message.bytes);
    let (head, tail) = framed.split_at(framed.len() / 2);
    let mut connection =
        hl7edge_e2e::mllp::Connection::connect(lab, None, Duration::from_secs(5)).await?;
    connection.write_raw(head).await?;

    let key = org_private.display().to_string();
    admin
        .push_listener(&[
            "--signing-key",
            &key,
            "--to",
            "acme-health",
            "--listener",
            "lab",
            "--wait",
            "2s",
            "--disable",
        ])
        .await?;
    let until = tokio::time::Instant::now() + WAIT;
    while !refused(lab).await {
        ensure!(tokio::time::Instant::now() < until, "never switched off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The frame in hand is finished, stored and answered; then the connection closes.
    connection.write_raw(tail).await?;
    let ack = connection.read_frame(Duration::from_secs(5)).await?;
    let ack = hl7edge_e2e::mllp::parse_ack(&ack).context("an ACK")?;
    ensure!(ack.code.is_positive(), "{ack:?}");
    ensure!(
        connection.closed_by_peer(Duration::from_secs(5)).await,
        "the connection stays open after its message"
    );
    hub.wait_until(WAIT, |m| decode::decode(m).delivered.len() == 1)
        .await
        .context("the ACKed message at the hub")?;
    let delivered = decode::decode(&hub.messages()).delivered;
    checker::check(&[Acked::new("lab", vec![message.control_id])], &delivered).assert_ok();
    agent.stop().await?;
    Ok(())
}
