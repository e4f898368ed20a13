//! `hl7edge-hub push`: signs a change with the organization's key and retains it on the push
//! topic of every gateway it is for (see `hl7edge_protocol::push` for the contract).
//!
//! A push for one gateway goes to its topic; for a site or the organization, to the topics of
//! the gateways whose retained status the broker holds under it (a gateway never seen there
//! gets nothing: push again once it is). The command reads each push back from the broker
//! before it says it is done, so "pushed" means the broker retains it.

use std::collections::BTreeSet;
use std::time::Duration;

use hl7edge_protocol::push::{Bundle, Change, PushSigner};
use hl7edge_protocol::topic::GatewayTopics;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

use crate::cli::{PushMappingArgs, fresh_client_id};
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};

/// Signs and retains a mapping push; prints one line per gateway.
pub async fn mapping(args: PushMappingArgs) -> Result<(), CommandError> {
    let key = PrivateKeyDer::from_pem_file(&args.signing_key).map_err(|e| {
        CommandError::Usage(format!(
            "--signing-key {}: not a PEM private key: {e}",
            args.signing_key.display()
        ))
    })?;
    let signer = match &key {
        PrivateKeyDer::Pkcs8(der) => PushSigner::from_pkcs8_der(der.secret_pkcs8_der()),
        _ => Err(hl7edge_protocol::push::KeyError::default()),
    }
    .map_err(|e| {
        CommandError::Usage(format!(
            "--signing-key {}: {e}; make one with: openssl genpkey -algorithm ed25519 -out org-push.key",
            args.signing_key.display()
        ))
    })?;
    let table = std::fs::read_to_string(&args.file)
        .map_err(|e| CommandError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    hl7edge_protocol::normalize::mapping::MappingTable::parse(&table).map_err(|e| {
        CommandError::Usage(format!(
            "{}: {e} (the gateways would refuse it; `hl7edge doctor` checks a table too)",
            args.file.display()
        ))
    })?;
    let sequence = args
        .sequence
        .unwrap_or_else(|| u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0));
    let bundle = Bundle {
        scope: args.to.clone(),
        sequence,
        issued_at_ms: jiff::Timestamp::now().as_millisecond(),
        change: Change::Mapping {
            listener: args.listener.clone(),
            table,
        },
    };
    let sealed = signer
        .seal(&bundle)
        .map_err(|e| CommandError::Usage(format!("cannot sign the push: {e}")))?;
    let prefix = args.broker.prefix.trim_end_matches('/').to_owned();
    let levels: Vec<&str> = args.to.split('/').collect();
    let wild = |i: usize| levels.get(i).copied().unwrap_or("+");
    let status_filter = format!("{prefix}/{}/{}/{}/status", wild(0), wild(1), wild(2));
    let push_filter = format!(
        "{prefix}/{}/{}/{}/push/mapping/{}",
        wild(0),
        wild(1),
        wild(2),
        args.listener
    );
    let broker = args.broker.broker(fresh_client_id("push"))?;
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
        gateways.insert(args.to.clone());
    }
    let connect = tokio::time::Instant::now() + args.wait.max(Duration::from_secs(10));
    // Connected first, then the retained statuses for --wait.
    loop {
        match tokio::time::timeout_at(connect, session.next()).await {
            Ok(Some(SessionEvent::Connected { .. })) => break,
            Ok(Some(SessionEvent::Fatal(e))) => return Err(CommandError::Broker(e)),
            Ok(Some(_)) => {}
            Ok(None) => return Err(CommandError::ConnectionEnded),
            Err(_) => {
                return Err(CommandError::Broker(format!(
                    "no connection to {} within {:?}",
                    broker.url,
                    args.wait.max(Duration::from_secs(10))
                )));
            }
        }
    }
    if levels.len() < 3 {
        let until = tokio::time::Instant::now() + args.wait;
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
            "no gateway of {} has a retained status on the broker; push to org/site/gateway by name",
            args.to
        )));
    }
    let mut waiting = BTreeSet::new();
    for gateway in &gateways {
        let mut parts = gateway.split('/');
        let (Some(org), Some(site), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let topic = GatewayTopics::new(&prefix, org, site, id).push_mapping(&args.listener);
        session
            .publish_retained(&topic, sealed.clone())
            .await
            .map_err(|e| CommandError::Broker(format!("cannot publish to {topic}: {e}")))?;
        waiting.insert(topic);
    }
    let until = tokio::time::Instant::now() + args.wait.max(Duration::from_secs(10));
    while !waiting.is_empty() {
        match tokio::time::timeout_at(until, session.next()).await {
            Ok(Some(SessionEvent::Publish(p))) if p.payload.as_ref() == sealed.as_slice() => {
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
