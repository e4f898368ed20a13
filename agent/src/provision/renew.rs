//! `provision --renew`: a new certificate signing request from the device key the box already
//! has, for a certificate that expires (or was signed wrongly).
//!
//! Invariants: the device key and the configuration are only read, never written; the request
//! names the identity of the configuration (O = org, OU = site, CN = `org/site/gateway`, as
//! [`super::setup::csr_for`] writes every request), so the certificate signed from it passes
//! `--install-cert` against the same key and the broker's ACL takes the same user name. The
//! request is written next to the key (`device.key` → `device.csr`), replacing an older request
//! for the same key.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rcgen::KeyPair;
use rustls_pki_types::PrivateKeyDer;

use crate::config::{Config, HubTransport};
use crate::device_cert::CertDates;

use super::ProvisionError;
use super::files::{self, PUBLIC};
use super::setup::{self, Identity};

/// What `--renew` did.
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The new request.
    pub csr: PathBuf,
    /// The device key it was made from (unchanged).
    pub key: PathBuf,
    /// The gateway's identity, as the request names it.
    pub identity: Identity,
    /// The certificate in use now, when it could be read.
    pub current: Option<CertDates>,
    /// When the renewal was made.
    pub now: Timestamp,
}

/// Writes a new CSR for the device key of the configuration at `config`.
pub fn renew(config: &Path, now: Timestamp) -> Result<Renewed, ProvisionError> {
    let loaded = Config::load(config).map_err(ProvisionError::Configured)?;
    let HubTransport::Tls(tls) = &loaded.hub.transport else {
        return Err(ProvisionError::Plaintext);
    };
    let key = key_pair(&tls.key)?;
    let identity = Identity {
        org: loaded.gateway.org.clone(),
        site: loaded.gateway.site.clone(),
        gateway: loaded.gateway.id.clone(),
    };
    let csr = setup::csr_for(&identity, &key)?;
    let csr_path = tls.key.with_extension("csr");
    files::write_atomic(&csr_path, csr.as_bytes(), PUBLIC, true)?;
    Ok(Renewed {
        csr: csr_path,
        key: tls.key.clone(),
        identity,
        current: crate::device_cert::file_dates(&tls.cert).ok(),
        now,
    })
}

/// The device key at `path` as a key pair that can sign a request (PKCS#8 only, as `provision`
/// and enrollment write it).
pub fn key_pair(path: &Path) -> Result<KeyPair, ProvisionError> {
    match crate::tls::load_key(path)? {
        PrivateKeyDer::Pkcs8(der) => {
            KeyPair::try_from(der.secret_pkcs8_der()).map_err(|e| ProvisionError::KeyUnusable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
        _ => Err(ProvisionError::KeyUnusable {
            path: path.to_path_buf(),
            reason: "it is not a PKCS#8 key (-----BEGIN PRIVATE KEY-----); convert it with \
                     openssl pkcs8 -topk8 -nocrypt, keeping its owner and mode"
                .to_owned(),
        }),
    }
}

impl Renewed {
    /// What to tell the technician: what was written, what stays, and the next steps.
    pub fn next_steps(&self, config: &Path) -> String {
        let id = &self.identity;
        let current = match &self.current {
            Some(d) if d.not_after > self.now => format!(
                "The certificate in use stays valid until {} ({} days); the box keeps working with it meanwhile.\n",
                d.not_after,
                d.days_left(self.now)
            ),
            Some(d) => format!(
                "The certificate in use expired on {}: the hub refuses this box until the renewed one is installed.\n",
                d.not_after
            ),
            None => String::new(),
        };
        format!(
            "Wrote a new signing request {csr} for gateway {org}/{site}/{gw},\n\
             from the existing device key {key} (unchanged; the configuration is unchanged too).\n\
             {current}\n\
             Next steps:\n\
             \x20 1. Send {csr} to central IT and ask them to sign it as a client certificate\n\
             \x20    (O={org}, OU={site}, CN={org}/{site}/{gw}; X.509 v3, extendedKeyUsage = clientAuth).\n\
             \x20 2. When the signed certificate comes back, install it:\n\
             \x20      hl7edge provision --config {config} --install-cert SIGNED.pem\n\
             \x20 3. Restart the service (systemctl restart hl7edge) and check: hl7edge doctor --config {config}\n",
            csr = self.csr.display(),
            key = self.key.display(),
            org = id.org,
            site = id.site,
            gw = id.gateway,
            config = config.display(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::setup::{Layout, ListenerFlag, Settings};

    /// A provisioned box in `dir`: key, CSR and configuration as `provision` writes them, with
    /// an extra listener and a [telemetry] table a technician added by hand.
    fn provisioned(dir: &Path) -> Layout {
        let layout = Layout::new(&dir.join("hl7edge.toml"), dir);
        let identity = Identity {
            org: "acme".into(),
            site: "s1".into(),
            gateway: "gw-1".into(),
        };
        let (key, csr) = setup::key_and_csr(&identity).unwrap();
        std::fs::write(&layout.key, key).unwrap();
        std::fs::write(&layout.csr, csr).unwrap();
        let mut text = setup::config_text(&Settings {
            identity: &identity,
            layout: &layout,
            hub_url: "mqtts://hub.example.org:8883",
            listeners: &[ListenerFlag::parse("lab=0.0.0.0:2575").unwrap()],
            allow: &["10.0.0.0/24".to_owned()],
            storage: &dir.join("queue.db"),
            push_key: false,
        })
        .unwrap();
        text.push_str(
            "\n[[listener]]\nname = \"icu\"\nbind = \"0.0.0.0:2576\"\nallow = [\"10.0.1.0/24\"]\n\n[telemetry]\ninterval = \"10s\"\n",
        );
        std::fs::write(&layout.config, text).unwrap();
        layout
    }

    #[test]
    fn renewal_writes_a_request_for_the_same_key_and_leaves_key_and_configuration_alone() {
        let dir = tempfile::tempdir().unwrap();
        let layout = provisioned(dir.path());
        let (key, config) = (
            std::fs::read(&layout.key).unwrap(),
            std::fs::read(&layout.config).unwrap(),
        );
        let old_csr = std::fs::read_to_string(&layout.csr).unwrap();
        let renewed = renew(&layout.config, Timestamp::now()).unwrap();
        assert_eq!(renewed.csr, layout.csr);
        assert_eq!(std::fs::read(&layout.key).unwrap(), key, "key untouched");
        assert_eq!(
            std::fs::read(&layout.config).unwrap(),
            config,
            "configuration untouched"
        );
        let new_csr = std::fs::read_to_string(&layout.csr).unwrap();
        assert_ne!(new_csr, old_csr, "a fresh request was written");
        let (_, pem) = x509_parser::pem::parse_x509_pem(new_csr.as_bytes()).unwrap();
        let (_, request) =
            <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&pem.contents)
                .unwrap();
        let device = KeyPair::from_pem(std::str::from_utf8(&key).unwrap()).unwrap();
        assert_eq!(
            request
                .certification_request_info
                .subject_pki
                .subject_public_key
                .data
                .as_ref(),
            device.public_key_raw(),
            "the request is for the existing key"
        );
        assert_eq!(
            request.certification_request_info.subject.to_string(),
            "O=acme, OU=s1, CN=acme/s1/gw-1"
        );
        let text = renewed.next_steps(&layout.config);
        assert!(text.contains("--install-cert"), "{text}");
        assert!(text.contains("CN=acme/s1/gw-1"), "{text}");
    }

    #[test]
    fn a_box_without_a_configuration_is_told_where_it_looked_and_why() {
        let err = renew(Path::new("/nonexistent/hl7edge.toml"), Timestamp::now()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/hl7edge.toml"), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
        assert!(text.contains("--config"), "{text}");
    }
}
