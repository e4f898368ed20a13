//! Enrollment by claim: a box shipped with a claim credential (`[enroll]`) and no device
//! certificate gets one from the hub's `hl7edge-hub enroll` over MQTT before the forwarder
//! starts (topics and messages: `hl7edge_protocol::enroll`).
//!
//! 1. The device key: the one at `hub.key` when it exists (an enrollment interrupted earlier),
//!    else a new P-256 key written there first, with the mode `provision` gives it. The request
//!    is made from it by the provisioning code ([`crate::provision::setup::csr_for`]) and also
//!    written next to it (`device.csr`), as `provision` does.
//! 2. With the claim certificate, the box subscribes to its answer topic (bound to its key's
//!    nonce), then publishes the request; it waits [`ANSWER_WAIT`] for the answer and otherwise
//!    tries again after a backoff (500 ms doubling to [`RETRY_MAX`]), for as long as it runs.
//! 3. A certificate is installed only when it chains to `hub.ca` and belongs to the device key
//!    ([`crate::device_cert`]); it is written atomically (fsync, rename) to `hub.cert`, and the
//!    forwarder then connects with it.
//!
//! Invariants: the private key never leaves the box (only the request, which holds the public
//! key, is published); the listeners and the store run while the box enrolls, so messages are
//! acknowledged after their commit and wait in the queue; a refusal is logged, written to the
//! audit trail (`enroll.refused`, once per reason in a row) and shown as the hub link's error in
//! `status`, and the box keeps asking (central IT may add it to the allowlist). Nothing here
//! logs PHI: there is none in an enrollment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hl7edge_protocol::enroll::{
    self, EnrollAnswer, EnrollRequest, EnrollTopics, MAX_ENROLL_PAYLOAD, Outcome, Refusal,
};
use jiff::Timestamp;
use rcgen::KeyPair;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, Transport};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{Config, Enroll, HubTls, HubTransport};
use crate::forwarder::backoff::Backoff;
use crate::forwarder::task::ForwarderMetrics;
use crate::provision::files::{self, PUBLIC};
use crate::provision::setup::{self, Identity};
use crate::store::{HubLinkRow, StoreHandle};

/// How long the box waits for the hub's answer after publishing its request.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// The longest wait between two attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// Why one attempt did not end in an installed certificate.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The claim or CA files cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The device key or request could not be made or written.
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    /// The claim certificate names no usable claim (its CN must be `enroll/{claim}`).
    #[error(
        "{}: the claim certificate's common name is {}, but a claim certificate's must be \
         enroll/CLAIM (e.g. enroll/claim-acme-2026a; CLAIM 1 to 64 characters without /, + or #); \
         ask central IT for one issued as the README's \"Enroll by claim\" shows \
         (openssl req ... -subj '/CN=enroll\\/CLAIM')",
        .path.display(),
        .common_name.as_deref().map_or("missing".to_owned(), |cn| format!("{:?}", shown(cn)))
    )]
    ClaimName {
        /// The claim certificate.
        path: PathBuf,
        /// Its common name, when it has one.
        common_name: Option<String>,
    },
    /// The broker connection failed or closed.
    #[error("the broker connection failed: {0}")]
    Connection(String),
    /// The broker refused the subscription to the answer topic (the ACL).
    #[error(
        "the broker refused the subscription to this box's answer topic (check the ACL's enroll lines)"
    )]
    SubscribeRefused,
    /// No answer within [`ANSWER_WAIT`].
    #[error("no answer from hl7edge-hub enroll within {}s", ANSWER_WAIT.as_secs())]
    NoAnswer,
    /// The hub refused the request.
    #[error("the hub refused the enrollment: {}", .0.word())]
    Refused(Refusal),
    /// The answer is not an enrollment answer.
    #[error("the answer cannot be read: {0}")]
    Undecodable(#[from] enroll::EnrollDecodeError),
    /// The certificate in the answer is not usable; nothing was installed.
    #[error("the certificate in the answer was refused: {0}; nothing was installed")]
    Certificate(String),
}

/// True when this configuration asks to enroll: `[enroll]` is set and `hub.cert` does not
/// exist yet.
pub fn needed(config: &Config) -> bool {
    match (&config.enroll, &config.hub.transport) {
        (Some(_), HubTransport::Tls(tls)) => !tls.cert.exists(),
        _ => false,
    }
}

/// What the enrollment needs from the running agent.
pub struct Enrollment {
    claim: Enroll,
    tls: HubTls,
    identity: Identity,
    host: String,
    port: u16,
    keep_alive: Duration,
    prefix: String,
    store: StoreHandle,
    metrics: Arc<ForwarderMetrics>,
    custody: String,
}

/// The device key's request, ready to send.
struct Prepared {
    key: KeyPair,
    csr_der: Vec<u8>,
    nonce: String,
}

impl Enrollment {
    /// The enrollment of `config` (None when [`needed`] is false).
    pub fn new(
        config: &Config,
        store: StoreHandle,
        metrics: Arc<ForwarderMetrics>,
    ) -> Option<Enrollment> {
        if !needed(config) {
            return None;
        }
        let (Some(claim), HubTransport::Tls(tls)) = (&config.enroll, &config.hub.transport) else {
            return None;
        };
        Some(Enrollment {
            claim: claim.clone(),
            tls: tls.clone(),
            identity: Identity {
                org: config.gateway.org.clone(),
                site: config.gateway.site.clone(),
                gateway: config.gateway.id.clone(),
            },
            host: config.hub.host.clone(),
            port: config.hub.port,
            keep_alive: config.hub.keep_alive,
            prefix: config.hub.topic_prefix.clone(),
            store,
            metrics,
            custody: config.hub.custody.as_str().to_owned(),
        })
    }

    /// Enrolls, retrying until a certificate is installed (true) or `shutdown` turns true
    /// (false).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(500), RETRY_MAX);
        let mut last_refusal: Option<Refusal> = None;
        let started = crate::store::now_ms();
        let mut failures = 0u64;
        info!(gateway = %setup::common_name(&self.identity), "no device certificate yet: enrolling with the claim credential");
        loop {
            if *shutdown.borrow() {
                return false;
            }
            let attempt = tokio::select! {
                result = self.attempt(failures == 0) => result,
                _ = shutdown.changed() => return false,
            };
            match attempt {
                Ok(detail) => {
                    info!(cert = %self.tls.cert.display(), "enrolled: the device certificate is installed");
                    self.audit("enroll.installed", detail).await;
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    if let EnrollError::Refused(reason) = &e {
                        error!(
                            reason = reason.word(),
                            "the hub refused this box's enrollment; it keeps asking (add the gateway to the hub's allowlist)"
                        );
                        if last_refusal != Some(*reason) {
                            self.audit(
                                "enroll.refused",
                                format!("the hub refused the enrollment: {}", reason.word()),
                            )
                            .await;
                        }
                        last_refusal = Some(*reason);
                    } else {
                        warn!(error = %e, "enrollment attempt failed; retrying");
                    }
                    self.show(started, failures, &e).await;
                }
            }
            let delay = backoff.next_delay(crate::forwarder::task::random_u64());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One attempt: the request, the broker round trip, the installation. The first attempt of
    /// a run is audited (`enroll.requested`); retries are not, so a box that keeps asking does
    /// not fill the audit trail.
    async fn attempt(&self, first: bool) -> Result<String, EnrollError> {
        let prepared = self.prepare()?;
        let claim = claim_name(&self.claim.claim_cert)?;
        let topics = EnrollTopics::new(&self.prefix, &claim, &prepared.nonce);
        let request = EnrollRequest::new(&setup::common_name(&self.identity), prepared.csr_der);
        if first {
            self.audit(
                "enroll.requested",
                format!("request for {} under claim {claim}", request.gateway),
            )
            .await;
        }
        let answer = self.exchange(&topics, &request, &prepared.nonce).await?;
        match answer.outcome {
            Outcome::Refused(reason) => Err(EnrollError::Refused(reason)),
            Outcome::Issued { chain_pem } => {
                let subject = install(&self.tls, &prepared.key, &chain_pem, Timestamp::now())?;
                Ok(format!(
                    "certificate for {subject} installed at {}",
                    self.tls.cert.display()
                ))
            }
        }
    }

    /// The device key (kept or made) and its request.
    fn prepare(&self) -> Result<Prepared, EnrollError> {
        let key = if self.tls.key.exists() {
            crate::provision::renew::key_pair(&self.tls.key)?
        } else {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(crate::provision::ProvisionError::Generate)?;
            let policy = crate::service_account::key_policy(
                rustix::process::geteuid().as_raw(),
                crate::service_account::lookup(),
            );
            files::write_key(&self.tls.key, key.serialize_pem().as_bytes(), policy, false)
                .map_err(crate::provision::ProvisionError::Write)?;
            key
        };
        let csr_pem = setup::csr_for(&self.identity, &key)
            .map_err(crate::provision::ProvisionError::Generate)?;
        files::write_atomic(
            &self.tls.key.with_extension("csr"),
            csr_pem.as_bytes(),
            PUBLIC,
            true,
        )
        .map_err(crate::provision::ProvisionError::Write)?;
        let csr_der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(|e| EnrollError::Certificate(format!("the request just made: {e}")))?;
        Ok(Prepared {
            nonce: enroll::key_nonce(key.public_key_raw()),
            key,
            csr_der: csr_der.as_ref().to_vec(),
        })
    }

    /// Connects with the claim, subscribes to the answer topic, publishes the request once the
    /// subscription holds, and waits for the answer.
    async fn exchange(
        &self,
        topics: &EnrollTopics,
        request: &EnrollRequest,
        nonce: &str,
    ) -> Result<EnrollAnswer, EnrollError> {
        let mut options = MqttOptions::new(
            format!("hl7edge-enroll-{nonce}"),
            self.host.clone(),
            self.port,
        );
        options.set_keep_alive(self.keep_alive);
        options.set_clean_session(true);
        options.set_max_packet_size(MAX_ENROLL_PAYLOAD + 1024, MAX_ENROLL_PAYLOAD + 1024);
        let tls =
            crate::tls::client_config(&self.tls.ca, &self.claim.claim_cert, &self.claim.claim_key)?;
        options.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
        let (client, mut events) = AsyncClient::new(options, 8);
        let answer_topic = topics.answer();
        client
            .subscribe(answer_topic.clone(), QoS::AtLeastOnce)
            .await
            .map_err(|e| EnrollError::Connection(e.to_string()))?;
        let wait = async {
            loop {
                let event = events
                    .poll()
                    .await
                    .map_err(|e| EnrollError::Connection(e.to_string()))?;
                match event {
                    Event::Incoming(Packet::SubAck(ack)) => {
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, SubscribeReasonCode::Failure))
                        {
                            return Err(EnrollError::SubscribeRefused);
                        }
                        client
                            .publish(topics.request(), QoS::AtLeastOnce, false, request.encode())
                            .await
                            .map_err(|e| EnrollError::Connection(e.to_string()))?;
                    }
                    Event::Incoming(Packet::Publish(p)) if p.topic == answer_topic => {
                        return Ok(EnrollAnswer::decode(&p.payload)?);
                    }
                    _ => {}
                }
            }
        };
        let result = tokio::time::timeout(ANSWER_WAIT, wait)
            .await
            .unwrap_or(Err(EnrollError::NoAnswer));
        let _ = client.disconnect().await;
        // Let the DISCONNECT go out (bounded).
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
        result
    }

    async fn audit(&self, kind: &str, detail: String) {
        if let Err(e) = self.store.audit(kind, detail, crate::store::now_ms()).await {
            warn!(error = %e, kind, "the audit line could not be written");
        }
    }

    /// Shows the enrollment's state where `status` and the heartbeat read the hub link.
    async fn show(&self, since_ms: i64, failures: u64, e: &EnrollError) {
        let now = crate::store::now_ms();
        let row = HubLinkRow {
            state: "connecting".to_owned(),
            since_ms,
            custody: self.custody.clone(),
            cause: Some(crate::forwarder::link::Cause::Other.kind().to_owned()),
            error: Some(format!("enrolling with the claim credential: {e}")),
            error_at_ms: Some(now),
            failures,
            connected_at_ms: None,
            publish_at_ms: None,
            puback_at_ms: None,
            receipt_at_ms: None,
            updated_at_ms: now,
        };
        if let Ok(mut link) = self.metrics.link.lock() {
            *link = Some(row.clone());
        }
        if let Err(e) = self.store.record_hub_link(row).await {
            warn!(error = %e, "the enrollment state could not be written");
        }
    }
}

/// The claim's name: the claim certificate's common name is `enroll/{claim}`, which the broker
/// takes as the user name and the ACL puts in the enroll topics (`hl7edge/v1/%u/+/request`);
/// a certificate named otherwise is refused with the name expected and how to get one.
pub fn claim_name(claim_cert: &Path) -> Result<String, EnrollError> {
    let chain = crate::tls::load_certs(claim_cert)?;
    let common_name = chain
        .first()
        .and_then(|leaf| hl7edge_protocol::x509::read(leaf.as_ref()).ok())
        .and_then(|fields| fields.common_name);
    match common_name
        .as_deref()
        .and_then(enroll::claim_from_common_name)
    {
        Some(claim) => Ok(claim.to_owned()),
        None => Err(EnrollError::ClaimName {
            path: claim_cert.to_path_buf(),
            common_name,
        }),
    }
}

/// A common name as shown in an error: at most 80 characters (it is whatever the certificate
/// says).
fn shown(common_name: &str) -> String {
    common_name.chars().take(80).collect()
}

/// Checks the certificate chain of an answer against the CA and the device key, then installs
/// it at `tls.cert` (atomically: written, fsynced, renamed). Returns the leaf's subject.
pub fn install(
    tls: &HubTls,
    key: &KeyPair,
    chain_pem: &str,
    now: Timestamp,
) -> Result<String, EnrollError> {
    let refused = |e: &dyn std::fmt::Display| EnrollError::Certificate(e.to_string());
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(&e))?;
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    crate::device_cert::verify_key_matches(chain.clone(), &key_der).map_err(|e| refused(&e))?;
    let roots = crate::tls::load_roots(&tls.ca)?;
    crate::device_cert::verify_chain(&chain, roots, now).map_err(|e| refused(&e))?;
    let subject = crate::device_cert::leaf_dates(&chain)
        .map_err(|e| refused(&e))?
        .subject;
    files::write_atomic(&tls.cert, chain_pem.as_bytes(), PUBLIC, true).map_err(|e| refused(&e))?;
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyUsagePurpose,
    };

    use super::*;

    fn ca(dir: &Path) -> (Issuer<'static, KeyPair>, HubTls) {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "device CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&ca_key).unwrap();
        let tls = HubTls {
            ca: dir.join("hub-ca.pem"),
            cert: dir.join("device.pem"),
            key: dir.join("device.key"),
        };
        std::fs::write(&tls.ca, cert.pem()).unwrap();
        (Issuer::new(params, ca_key), tls)
    }

    fn client_cert(key: &KeyPair, issuer: &Issuer<'_, KeyPair>, cn: &str) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.signed_by(key, issuer).unwrap().pem()
    }

    #[test]
    fn a_certificate_for_the_device_key_from_the_ca_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, tls) = ca(dir.path());
        let key = KeyPair::generate().unwrap();
        let pem = client_cert(&key, &issuer, "acme/s1/gw-1");
        let subject = install(&tls, &key, &pem, Timestamp::now()).unwrap();
        assert_eq!(subject, "CN=acme/s1/gw-1");
        assert_eq!(std::fs::read_to_string(&tls.cert).unwrap(), pem);
    }

    #[test]
    fn a_certificate_for_another_key_is_refused_and_nothing_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, tls) = ca(dir.path());
        let other = KeyPair::generate().unwrap();
        let pem = client_cert(&other, &issuer, "acme/s1/gw-1");
        let err = install(&tls, &KeyPair::generate().unwrap(), &pem, Timestamp::now()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(!tls.cert.exists());
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused_and_nothing_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, tls) = ca(dir.path());
        let (stranger, _) = ca(&tempfile::tempdir().unwrap().keep());
        let key = KeyPair::generate().unwrap();
        let pem = client_cert(&key, &stranger, "acme/s1/gw-1");
        let err = install(&tls, &key, &pem, Timestamp::now()).unwrap_err();
        assert!(
            err.to_string().contains("not issued by the hub CA"),
            "{err}"
        );
        assert!(!tls.cert.exists());
    }

    #[test]
    fn garbage_in_the_answer_is_refused_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (_, tls) = ca(dir.path());
        let key = KeyPair::generate().unwrap();
        for text in [
            "",
            "not pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                install(&tls, &key, text, Timestamp::now()).is_err(),
                "{text:?}"
            );
        }
        assert!(!tls.cert.exists());
    }

    #[test]
    fn the_claim_is_the_level_after_enroll_in_the_claim_certificates_common_name() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, _) = ca(dir.path());
        let key = KeyPair::generate().unwrap();
        let good = dir.path().join("claim.pem");
        std::fs::write(&good, client_cert(&key, &issuer, "enroll/claim-acme-2026a")).unwrap();
        assert_eq!(claim_name(&good).unwrap(), "claim-acme-2026a");
    }

    #[test]
    fn a_claim_certificate_not_named_enroll_slash_claim_is_refused_saying_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, _) = ca(dir.path());
        let key = KeyPair::generate().unwrap();
        for cn in ["claim-acme-2026a", "a/b", "enroll/a/b", "enroll/+"] {
            let bad = dir.path().join("bad.pem");
            std::fs::write(&bad, client_cert(&key, &issuer, cn)).unwrap();
            let err = claim_name(&bad).unwrap_err();
            assert!(matches!(err, EnrollError::ClaimName { .. }), "{cn}: {err}");
            let text = err.to_string();
            assert!(text.starts_with(&bad.display().to_string()), "{text}");
            assert!(text.contains(&format!("is {cn:?}")), "{text}");
            assert!(text.contains("must be enroll/CLAIM"), "{text}");
            assert!(text.contains("Enroll by claim"), "{text}");
        }
    }
}
