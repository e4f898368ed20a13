//! `hl7edge-hub push`: signs a change (a mapping table, a listener's settings, a listener's
//! switch, a replay of quarantined messages) with the organization's key and retains it on the
//! push topic of every gateway it is for (see `hl7edge_protocol::push` for the contract):
//! `push/{kind}/{listener}`, and a replay on `push/replay`.
//!
//! A push for one gateway goes to its topic; for a site or the organization, to the topics of
//! the gateways whose retained status the broker holds under it (a gateway never seen there
//! gets nothing: push again once it is). The command reads each push back from the broker
//! before it says it is done, so "pushed" means the broker retains it.

use std::collections::BTreeSet;
use std::time::Duration;

use hl7edge_protocol::push::{Bundle, Change, PushSigner, ReplayFilter};
use hl7edge_protocol::topic::{ENROLL_ORG, GatewayTopics, reserved_org};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

use crate::cli::{
    BrokerArgs, PushCommon, PushListenerArgs, PushMappingArgs, PushReplayArgs, fresh_client_id,
};
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
    retain(&signer, Target::of(&args.common), change).await
}

/// Signs and retains a listener push (settings, or the switch); prints one line per gateway.
pub async fn listener(args: PushListenerArgs) -> Result<(), CommandError> {
    let signer = signer(&args.common.signing_key)?;
    let change = match &args.file {
        Some(file) => {
            let settings = std::fs::read_to_string(file)
                .map_err(|e| CommandError::Usage(format!("cannot read {}: {e}", file.display())))?;
            check_settings(&settings, &args.listener)
                .map_err(|e| CommandError::Usage(format!("{}: {e}", file.display())))?;
            Change::Listener {
                listener: args.listener.clone(),
                settings,
            }
        }
        None => Change::Switch {
            listener: args.listener.clone(),
            enabled: args.enable,
        },
    };
    retain(&signer, Target::of(&args.common), change).await
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
    let change = Change::Replay {
        filter: ReplayFilter {
            listener: args.listener.clone(),
            error_code: args.error_code,
            since_ms: args.since.map(|t| t.as_millisecond()),
            until_ms: args.until.map(|t| t.as_millisecond()),
        },
        after_mapping: args.after_mapping,
    };
    retain(&signer, Target::of(&args.common), change).await
}

/// The keys of an agent's `[[listener]]` table (the gateway checks the values, as its
/// configuration file's, and which of them a push may change).
const LISTENER_KEYS: [&str; 13] = [
    "name",
    "bind",
    "allow",
    "max_frame",
    "idle_timeout",
    "max_connections",
    "mapping",
    "time_zone",
    "ack_mode",
    "include_raw",
    "drift_learning_messages",
    "silence",
    "tls",
];

/// What the hub can check of listener settings before signing them: TOML, the keys of a
/// `[[listener]]` table, the listener's own name if it names one.
fn check_settings(text: &str, listener: &str) -> Result<(), String> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    if let Some(key) = table.keys().find(|k| !LISTENER_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key {key:?}; a listener's settings have the keys of a [[listener]] table: {}",
            LISTENER_KEYS.join(", ")
        ));
    }
    match table.get("name") {
        Some(name) if name.as_str() != Some(listener) => Err(format!(
            "name = {name} but --listener {listener}; leave name out"
        )),
        _ => Ok(()),
    }
}

/// The organization's signing key.
fn signer(path: &std::path::Path) -> Result<PushSigner, CommandError> {
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

/// Where a push goes and how it is sequenced.
struct Target<'a> {
    broker: &'a BrokerArgs,
    to: &'a str,
    sequence: Option<u64>,
    wait: Duration,
}

impl Target<'_> {
    fn of(common: &PushCommon) -> Target<'_> {
        Target {
            broker: &common.broker,
            to: &common.to,
            sequence: common.sequence,
            wait: common.wait,
        }
    }
}

/// The topic of `change` below a gateway's root (or, with `+` levels, below a filter's):
/// `push/{kind}/{listener}`, and `push/replay` for a replay (one per gateway).
fn push_suffix(change: &Change) -> String {
    match change {
        Change::Replay { .. } => "push/replay".to_owned(),
        _ => format!("push/{}/{}", change.kind(), change.listener()),
    }
}

/// Signs `change` and retains it on the push topic of every gateway `target` covers; reads each
/// back from the broker before it says it is done.
async fn retain(
    signer: &PushSigner,
    target: Target<'_>,
    change: Change,
) -> Result<(), CommandError> {
    let Target {
        broker: broker_args,
        to,
        sequence,
        wait,
    } = target;
    if to.split('/').next().is_some_and(reserved_org) {
        return Err(CommandError::Usage(format!(
            "--to {to}: the organization {ENROLL_ORG} is reserved for enrollment topics; no gateway is under it"
        )));
    }
    let suffix = push_suffix(&change);
    let topic_of = {
        let (kind, listener) = (change.kind(), change.listener().to_owned());
        let replay = matches!(change, Change::Replay { .. });
        move |t: GatewayTopics| {
            if replay {
                t.push_replay()
            } else {
                t.push(kind, &listener)
            }
        }
    };
    let sequence = sequence
        .unwrap_or_else(|| u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0));
    let bundle = Bundle {
        scope: to.to_owned(),
        sequence,
        issued_at_ms: jiff::Timestamp::now().as_millisecond(),
        change,
    };
    let sealed = signer
        .seal(&bundle)
        .map_err(|e| CommandError::Usage(format!("cannot sign the push: {e}")))?;
    let prefix = broker_args.prefix.trim_end_matches('/').to_owned();
    let levels: Vec<&str> = to.split('/').collect();
    let wild = |i: usize| levels.get(i).copied().unwrap_or("+");
    let status_filter = format!("{prefix}/{}/{}/{}/status", wild(0), wild(1), wild(2));
    let push_filter = format!("{prefix}/{}/{}/{}/{suffix}", wild(0), wild(1), wild(2),);
    let broker = broker_args.broker(fresh_client_id("push"))?;
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
        gateways.insert(to.to_owned());
    }
    let connect = tokio::time::Instant::now() + wait.max(Duration::from_secs(10));
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
                    wait.max(Duration::from_secs(10))
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
            "no gateway of {} has a retained status on the broker; push to org/site/gateway by name",
            to
        )));
    }
    let mut waiting = BTreeSet::new();
    for gateway in &gateways {
        let mut parts = gateway.split('/');
        let (Some(org), Some(site), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let topic = topic_of(GatewayTopics::new(&prefix, org, site, id));
        session
            .publish_retained(&topic, sealed.to_vec())
            .await
            .map_err(|e| CommandError::Broker(format!("cannot publish to {topic}: {e}")))?;
        waiting.insert(topic);
    }
    let until = tokio::time::Instant::now() + wait.max(Duration::from_secs(10));
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
    let org = gateway.split('/').next()?;
    (gateway.split('/').count() == 3 && !reserved_org(org)).then(|| gateway.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_under_the_organization_reserved_for_enrollment_names_no_gateway_to_push_to() {
        let prefix = "hl7edge/v1";
        assert_eq!(
            gateway_of_status("hl7edge/v1/acme/s1/gw-1/status", prefix).as_deref(),
            Some("acme/s1/gw-1")
        );
        assert_eq!(
            gateway_of_status("hl7edge/v1/enroll/claim-a/records/status", prefix),
            None
        );
    }

    #[test]
    fn listener_settings_are_checked_for_toml_keys_and_name_before_signing() {
        assert!(check_settings("bind = \"0.0.0.0:2576\"\n[tls]\ncert = \"a\"\n", "lab").is_ok());
        assert!(check_settings("name = \"lab\"\n", "lab").is_ok());
        let err = check_settings("bnid = \"0.0.0.0:2576\"\n", "lab").unwrap_err();
        assert!(err.contains("\"bnid\"") && err.contains("bind"), "{err}");
        let err = check_settings("bind = \"0.0.0.0:2576\n", "lab").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = check_settings("name = \"adt\"\n", "lab").unwrap_err();
        assert!(err.contains("--listener lab"), "{err}");
    }

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
