//! `hl7edge-hub push mapping | replay`: signs a change with the organization's key and
//! retains it on the push topic of every gateway it is for (see `hl7edge_protocol::push` for
//! the contract): a mapping table on `push/mapping/{listener}`, a replay of quarantined
//! messages on `push/replay`.
//!
//! A push for one gateway goes to its topic; for a site or the organization, to the topics of
//! the gateways whose retained status the broker holds under it (a gateway never seen there
//! gets nothing: push again once it is). The command reads each push back from the broker
//! before it says it is done, so "pushed" means the broker retains it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use hl7edge_protocol::push::{Bundle, Change, PushSigner, ReplayFilter};
use hl7edge_protocol::topic::GatewayTopics;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

use crate::cli::{PushCommon, PushMappingArgs, PushReplayArgs, fresh_client_id};
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};

/// Signs and retains a mapping push; prints one line per gateway.
pub async fn mapping(args: PushMappingArgs) -> Result<(), CommandError> {
    let signer = signer(&args.common.signing_key)?;
    let table = std::fs::read_to_string(&args.file)
        .map_err(|e| CommandError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    hl7edge_protocol::normalize::mapping::MappingTable::parse(&table).map_err(|e| {
        CommandError::Usage(format!(
            "{}: {e} (the gateways would refuse it; `hl7edge doctor` checks a table too)",
            args.file.display()
        ))
    })?;
    let change = Change::Mapping {
        listener: args.listener.clone(),
        table,
    };
    let bundle = bundle(&args.common.to, args.common.sequence, change);
    let sealed = signer
        .seal(&bundle)
        .map_err(|e| CommandError::Usage(format!("cannot sign the push: {e}")))?;
    let listener = args.listener.clone();
    let target = Target {
        common: &args.common,
        topic_suffix: format!("push/mapping/{listener}"),
    };
    retain(&target, bundle.sequence, &sealed, |t| {
        t.push_mapping(&listener)
    })
    .await
}

/// Signs and retains a replay push; prints one line per gateway.
pub async fn replay(args: PushReplayArgs) -> Result<(), CommandError> {
    let signer = signer(&args.common.signing_key)?;
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since >= until
    {
        return Err(CommandError::Usage(format!(
            "--since {since} is not before --until {until}: the replay would take nothing"
        )));
    }
    let filter = ReplayFilter {
        listener: args.listener.clone(),
        error_code: args.error_code,
        since_ms: args.since.map(|t| t.as_millisecond()),
        until_ms: args.until.map(|t| t.as_millisecond()),
    };
    let bundle = bundle(
        &args.common.to,
        args.common.sequence,
        Change::Replay {
            filter,
            after_mapping: args.after_mapping,
        },
    );
    let sealed = signer
        .seal(&bundle)
        .map_err(|e| CommandError::Usage(format!("cannot sign the push: {e}")))?;
    let target = Target {
        common: &args.common,
        topic_suffix: "push/replay".to_owned(),
    };
    retain(
        &target,
        bundle.sequence,
        &sealed,
        GatewayTopics::push_replay,
    )
    .await
}

/// The organization's signing key from a PKCS#8 PEM file.
fn signer(path: &Path) -> Result<PushSigner, CommandError> {
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
        CommandError::Usage(format!(
            "--signing-key {}: not a PEM private key: {e}",
            path.display()
        ))
    })?;
    match &key {
        PrivateKeyDer::Pkcs8(der) => PushSigner::from_pkcs8_der(der.secret_pkcs8_der()),
        _ => Err(hl7edge_protocol::push::KeyError::default()),
    }
    .map_err(|e| {
        CommandError::Usage(format!(
            "--signing-key {}: {e}; make one with: openssl genpkey -algorithm ed25519 -out org-push.key",
            path.display()
        ))
    })
}

/// A bundle for `to` with `sequence` (default: now in Unix ms).
fn bundle(to: &str, sequence: Option<u64>, change: Change) -> Bundle {
    let now = jiff::Timestamp::now().as_millisecond();
    Bundle {
        scope: to.to_owned(),
        sequence: sequence.unwrap_or_else(|| u64::try_from(now).unwrap_or(0)),
        issued_at_ms: now,
        change,
    }
}

/// Where a push goes: the gateways of `common.to`, on their topic ending in `topic_suffix`.
struct Target<'a> {
    common: &'a PushCommon,
    topic_suffix: String,
}

/// Retains `sealed` on the topic `topic_of` gives for each gateway of the target, and waits
/// until the broker delivers each back.
async fn retain(
    target: &Target<'_>,
    sequence: u64,
    sealed: &[u8],
    topic_of: impl Fn(&GatewayTopics) -> String,
) -> Result<(), CommandError> {
    let PushCommon {
        broker, to, wait, ..
    } = target.common;
    let wait = *wait;
    let prefix = broker.prefix.trim_end_matches('/').to_owned();
    let levels: Vec<&str> = to.split('/').collect();
    let wild = |i: usize| levels.get(i).copied().unwrap_or("+");
    let status_filter = format!("{prefix}/{}/{}/{}/status", wild(0), wild(1), wild(2));
    let push_filter = format!(
        "{prefix}/{}/{}/{}/{}",
        wild(0),
        wild(1),
        wild(2),
        target.topic_suffix
    );
    let broker = broker.broker(fresh_client_id("push"))?;
    let mut session = Subscription::start(
        &broker,
        SessionSpec {
            persistent: false,
            manual_acks: false,
            filters: vec![status_filter, push_filter],
        },
    )?;
    let mut gateways = BTreeSet::new();
    if levels.len() == 3 {
        gateways.insert(to.clone());
    }
    let patience = wait.max(Duration::from_secs(10));
    let connect = tokio::time::Instant::now() + patience;
    // Connected first, then the retained statuses for --wait.
    loop {
        match tokio::time::timeout_at(connect, session.next()).await {
            Ok(Some(SessionEvent::Connected { .. })) => break,
            Ok(Some(SessionEvent::Fatal(e))) => return Err(CommandError::Broker(e)),
            Ok(Some(_)) => {}
            Ok(None) => return Err(CommandError::ConnectionEnded),
            Err(_) => {
                return Err(CommandError::Broker(format!(
                    "no connection to {} within {patience:?}",
                    broker.url
                )));
            }
        }
    }
    if levels.len() < 3 {
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, session.next()).await {
            if let SessionEvent::Publish(p) = event
                && let Some(gateway) = gateway_of_status(&p.topic, &prefix)
            {
                gateways.insert(gateway);
            }
        }
    }
    if gateways.is_empty() {
        return Err(CommandError::Usage(format!(
            "no gateway of {to} has a retained status on the broker; push to org/site/gateway by name"
        )));
    }
    let mut waiting = BTreeSet::new();
    for gateway in &gateways {
        let mut parts = gateway.split('/');
        let (Some(org), Some(site), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let topic = topic_of(&GatewayTopics::new(&prefix, org, site, id));
        session
            .publish_retained(&topic, sealed.to_vec())
            .await
            .map_err(|e| CommandError::Broker(format!("cannot publish to {topic}: {e}")))?;
        waiting.insert(topic);
    }
    let until = tokio::time::Instant::now() + patience;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(until, session.next()).await {
            Ok(Some(SessionEvent::Publish(p))) if p.payload.as_ref() == sealed => {
                if waiting.remove(p.topic.as_str()) {
                    println!("pushed sequence {sequence} to {}", p.topic);
                }
            }
            Ok(Some(SessionEvent::Fatal(e))) => return Err(CommandError::Broker(e)),
            Ok(Some(_)) => {}
            Ok(None) => return Err(CommandError::ConnectionEnded),
            Err(_) => {
                return Err(CommandError::Broker(format!(
                    "the broker did not confirm the push on {} (is this certificate allowed to write and read push topics? see hub/broker/mosquitto-acl)",
                    waiting.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    session.close().await;
    Ok(())
}

/// `org/site/gateway` of a `{prefix}/{org}/{site}/{gateway}/status` topic.
fn gateway_of_status(topic: &str, prefix: &str) -> Option<String> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let gateway = rest.strip_suffix("/status")?;
    (gateway.split('/').count() == 3).then(|| gateway.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_topic_names_its_gateway_and_nothing_else_does() {
        assert_eq!(
            gateway_of_status("hl7edge/v1/acme/c-1/gw-1/status", "hl7edge/v1").as_deref(),
            Some("acme/c-1/gw-1")
        );
        assert_eq!(
            gateway_of_status("hl7edge/v1/acme/c-1/gw-1/telemetry", "hl7edge/v1"),
            None
        );
        assert_eq!(
            gateway_of_status("other/acme/c-1/gw-1/status", "hl7edge/v1"),
            None
        );
    }
}
