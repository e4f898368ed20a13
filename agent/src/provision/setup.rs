//! What `provision` makes from its flags: the configuration text and the device identity (a
//! P-256 key and a certificate signing request naming org, site and gateway).
//!
//! Invariant: [`config_text`] only returns text that [`Config::from_toml_str`] accepts, so a
//! provisioned box always has a configuration the agent can load.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use toml::{Table, Value};

use crate::config::{Config, ConfigError};

/// The identity and hub settings given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Organization (`gateway.org`, CSR `O`).
    pub org: String,
    /// Site (`gateway.site`, CSR `OU`).
    pub site: String,
    /// Gateway id (`gateway.id`, CSR `CN`).
    pub gateway: String,
}

/// Where the files of a provisioned box go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The configuration file.
    pub config: PathBuf,
    /// The device private key.
    pub key: PathBuf,
    /// The certificate signing request.
    pub csr: PathBuf,
    /// Where the signed certificate will be installed.
    pub cert: PathBuf,
    /// The copy of the hub CA.
    pub ca: PathBuf,
    /// The copy of the organization's push key (`--push-key`).
    pub push_key: PathBuf,
}

impl Layout {
    /// `device.key`, `device.csr`, `device.pem` and `hub-ca.pem` in `dir`.
    pub fn new(config: &Path, dir: &Path) -> Layout {
        Layout {
            config: config.to_path_buf(),
            key: dir.join("device.key"),
            csr: dir.join("device.csr"),
            cert: dir.join("device.pem"),
            ca: dir.join("hub-ca.pem"),
            push_key: dir.join("org-push.pub"),
        }
    }
}

/// A listener given as `name=address:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerFlag {
    /// Listener name.
    pub name: String,
    /// Bind address as written.
    pub bind: String,
}

impl ListenerFlag {
    /// Parses `name=address:port`; `None` when there is no `=` or either side is empty.
    pub fn parse(text: &str) -> Option<ListenerFlag> {
        let (name, bind) = text.split_once('=')?;
        let (name, bind) = (name.trim(), bind.trim());
        (!name.is_empty() && !bind.is_empty()).then(|| ListenerFlag {
            name: name.to_owned(),
            bind: bind.to_owned(),
        })
    }
}

/// Everything the configuration is made from.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    /// The gateway's identity.
    pub identity: &'a Identity,
    /// File locations.
    pub layout: &'a Layout,
    /// Hub URL, `mqtts://host:port`.
    pub hub_url: &'a str,
    /// The listeners.
    pub listeners: &'a [ListenerFlag],
    /// Allowed sender networks, for every listener.
    pub allow: &'a [String],
    /// The queue database.
    pub storage: &'a Path,
    /// Pin the organization's push key (copied to [`Layout::push_key`]) as `hub.push_key`.
    pub push_key: bool,
}

/// The configuration file for `settings`, validated as the agent would load it.
pub fn config_text(settings: &Settings<'_>) -> Result<String, ConfigError> {
    let s = settings;
    let path = |p: &Path| Value::String(p.display().to_string());
    let mut gateway = Table::new();
    gateway.insert("org".into(), s.identity.org.clone().into());
    gateway.insert("site".into(), s.identity.site.clone().into());
    gateway.insert("id".into(), s.identity.gateway.clone().into());
    let mut storage = Table::new();
    storage.insert("path".into(), path(s.storage));
    let allow: Vec<Value> = s.allow.iter().map(|a| a.clone().into()).collect();
    let listeners = s.listeners.iter().map(|l| {
        let mut t = Table::new();
        t.insert("name".into(), l.name.clone().into());
        t.insert("bind".into(), l.bind.clone().into());
        t.insert("allow".into(), Value::Array(allow.clone()));
        Value::Table(t)
    });
    let mut hub = Table::new();
    hub.insert("url".into(), s.hub_url.into());
    hub.insert("ca".into(), path(&s.layout.ca));
    hub.insert("cert".into(), path(&s.layout.cert));
    hub.insert("key".into(), path(&s.layout.key));
    if s.push_key {
        hub.insert("push_key".into(), path(&s.layout.push_key));
    }
    let mut root = Table::new();
    root.insert("gateway".into(), Value::Table(gateway));
    root.insert("storage".into(), Value::Table(storage));
    root.insert("listener".into(), Value::Array(listeners.collect()));
    root.insert("hub".into(), Value::Table(hub));
    let body = toml::to_string(&root).map_err(|e| ConfigError::Syntax {
        file: s.layout.config.clone(),
        position: None,
        message: e.to_string(),
    })?;
    let text = format!(
        "# hl7edge configuration written by `hl7edge provision`.\n\
         # Every key and its default: docs/configuration.md. Check with `hl7edge doctor`.\n\n{}\n",
        body.trim_end()
    );
    Config::from_toml_str(&text, &s.layout.config)?;
    Ok(text)
}

/// A new device key (P-256) and a CSR for it with subject `O=org, OU=site, CN=org/site/gateway`,
/// both as PEM: `(key, csr)`. The common name names the gateway globally because brokers take
/// it as the MQTT user name (mosquitto `use_identity_as_username`) and the ACL puts that name
/// into the topic (`hl7edge/v1/%u/records/#`): a gateway may then publish only under its own
/// `{org}/{site}/{gateway}` subtree.
pub fn key_and_csr(identity: &Identity) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let csr = csr_for(identity, &key)?;
    Ok((key.serialize_pem(), csr))
}

/// A CSR (PEM) for `key` with subject `O=org, OU=site, CN=org/site/gateway`: the one request
/// every `provision` writes, for a new key and for a renewal of an existing one.
pub fn csr_for(identity: &Identity, key: &KeyPair) -> Result<String, rcgen::Error> {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, identity.org.as_str());
    subject.push(DnType::OrganizationalUnitName, identity.site.as_str());
    subject.push(DnType::CommonName, common_name(identity));
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.serialize_request(key)?.pem()
}

/// The device certificate's common name: the gateway's global name `org/site/gateway`, as in
/// its topics.
pub fn common_name(identity: &Identity) -> String {
    format!("{}/{}/{}", identity.org, identity.site, identity.gateway)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubTransport;

    fn identity() -> Identity {
        Identity {
            org: "acme-health".into(),
            site: "clinic-12".into(),
            gateway: "gw-0001".into(),
        }
    }

    fn settings<'a>(
        identity: &'a Identity,
        layout: &'a Layout,
        listeners: &'a [ListenerFlag],
        allow: &'a [String],
    ) -> Settings<'a> {
        Settings {
            identity,
            layout,
            hub_url: "mqtts://hub.example.org:8883",
            listeners,
            allow,
            storage: Path::new("/var/lib/hl7edge/queue.db"),
            push_key: false,
        }
    }

    #[test]
    fn the_written_configuration_loads_with_the_given_values() {
        let layout = Layout::new(
            Path::new("/etc/hl7edge/hl7edge.toml"),
            Path::new("/etc/hl7edge"),
        );
        let listeners = [
            ListenerFlag::parse("lab=0.0.0.0:2575").unwrap(),
            ListenerFlag::parse("icu=0.0.0.0:2576").unwrap(),
        ];
        let allow = ["10.0.0.0/24".to_owned()];
        let id = identity();
        let text = config_text(&settings(&id, &layout, &listeners, &allow)).unwrap();
        assert!(text.ends_with("\"\n"), "one final newline");
        let config = Config::from_toml_str(&text, &layout.config).unwrap();
        assert_eq!(config.gateway.id, "gw-0001");
        assert_eq!(config.listeners[1].name, "icu");
        assert_eq!(config.hub.client_id, "acme-health-clinic-12-gw-0001");
        let HubTransport::Tls(tls) = config.hub.transport else {
            panic!("TLS expected")
        };
        assert_eq!(tls.key, Path::new("/etc/hl7edge/device.key"));
        assert_eq!(tls.ca, Path::new("/etc/hl7edge/hub-ca.pem"));
    }

    /// The error of a configuration for `id` with one listener.
    fn refused(id: &Identity) -> ConfigError {
        let layout = Layout::new(
            Path::new("/etc/hl7edge/hl7edge.toml"),
            Path::new("/etc/hl7edge"),
        );
        let listeners = [ListenerFlag::parse("lab=0.0.0.0:2575").unwrap()];
        let allow = ["10.0.0.0/24".to_owned()];
        config_text(&settings(id, &layout, &listeners, &allow)).unwrap_err()
    }

    #[test]
    fn an_invalid_gateway_name_is_refused_with_its_key() {
        let err = refused(&Identity {
            gateway: "GW 1".into(),
            ..identity()
        });
        assert_eq!(err.key(), Some("gateway.id"), "{err}");
    }

    #[test]
    fn the_organization_reserved_for_enrollment_is_refused() {
        let err = refused(&Identity {
            org: "enroll".into(),
            ..identity()
        });
        assert_eq!(err.key(), Some("gateway.org"), "{err}");
        assert!(err.to_string().contains("is reserved"), "{err}");
    }

    #[test]
    fn listener_flags_need_a_name_and_an_address() {
        assert_eq!(
            ListenerFlag::parse("lab=0.0.0.0:2575").map(|l| l.name),
            Some("lab".into())
        );
        assert_eq!(ListenerFlag::parse("0.0.0.0:2575"), None);
        assert_eq!(ListenerFlag::parse("lab="), None);
    }

    #[test]
    fn the_csr_names_org_site_and_gateway() {
        use rustls_pki_types::pem::PemObject;
        use x509_parser::prelude::FromDer;
        let (key, csr) = key_and_csr(&identity()).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let der =
            rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(csr.as_bytes()).unwrap();
        let (_, parsed) =
            x509_parser::certification_request::X509CertificationRequest::from_der(der.as_ref())
                .unwrap();
        let subject = parsed.certification_request_info.subject.to_string();
        assert_eq!(
            subject,
            "O=acme-health, OU=clinic-12, CN=acme-health/clinic-12/gw-0001"
        );
    }
}
