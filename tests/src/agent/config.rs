//! The agent configuration a test runs with, and the one function that writes it as TOML.
//!
//! The keys follow the agent's configuration reference (`docs/configuration.md`); if the format
//! changes, [`write_config`] is the only place to adjust. Anything a test needs beyond the fields
//! here goes into [`AgentConfig::set`], which overrides any key by its dotted path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::pki::{CertPaths, Pki};

/// One MLLP listener of the agent under test.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Listener name (the record's source).
    pub name: String,
    /// Allowed source networks; default `["127.0.0.1"]`.
    pub allow: Vec<String>,
    /// MLLP over TLS: server certificate, and the CA required of clients if any.
    pub tls: Option<(CertPaths, Option<PathBuf>)>,
    /// Further keys of this `[[listener]]` table (e.g. `max_frame`, `idle_timeout`).
    pub extra: Table,
}

impl ListenerSpec {
    /// A plain TCP listener that allows 127.0.0.1.
    pub fn new(name: &str) -> ListenerSpec {
        ListenerSpec {
            name: name.to_owned(),
            allow: vec!["127.0.0.1".into()],
            tls: None,
            extra: Table::new(),
        }
    }
}

/// Everything the harness writes into the agent's configuration file.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `[gateway]` org, site and id.
    pub gateway: (String, String, String),
    /// The listeners; ports are chosen by the harness.
    pub listeners: Vec<ListenerSpec>,
    /// The broker URL, e.g. from [`crate::broker::Broker::url`].
    pub hub_url: String,
    /// CA the agent trusts for the broker.
    pub hub_ca: PathBuf,
    /// The agent's client certificate and key.
    pub hub_identity: CertPaths,
    /// `[log] level`; default `debug`.
    pub log_level: String,
    /// Overrides by dotted path (`storage.max_bytes`), applied last.
    pub overrides: BTreeMap<String, Value>,
}

impl AgentConfig {
    /// A gateway `acme-health/clinic-12/gw-0001` with one listener `lab`, trusting `pki.ca` for
    /// the broker at `hub_url` and authenticating with `pki.agent`.
    pub fn new(pki: &Pki, hub_url: &str) -> AgentConfig {
        AgentConfig {
            gateway: ("acme-health".into(), "clinic-12".into(), "gw-0001".into()),
            listeners: vec![ListenerSpec::new("lab")],
            hub_url: hub_url.to_owned(),
            hub_ca: pki.ca.clone(),
            hub_identity: pki.agent.clone(),
            log_level: "debug".into(),
            overrides: BTreeMap::new(),
        }
    }

    /// Adds a plain listener named `name`.
    pub fn with_listener(mut self, name: &str) -> AgentConfig {
        self.listeners.push(ListenerSpec::new(name));
        self
    }

    /// Sets any key by its dotted path, e.g. `set("storage.max_bytes", "1 MiB")` or
    /// `set("hub.keep_alive", "2s")`. Listener keys are set through [`ListenerSpec::extra`].
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> AgentConfig {
        self.overrides.insert(path.to_owned(), value.into());
        self
    }
}

/// Writes `config` as the agent's TOML configuration to `path`, with the database at `database`
/// and each listener on `127.0.0.1:{ports[name]}`.
pub fn write_config(
    path: &Path,
    config: &AgentConfig,
    database: &Path,
    ports: &BTreeMap<String, u16>,
) -> std::io::Result<()> {
    let mut root = Table::new();
    let (org, site, id) = &config.gateway;
    root.insert(
        "gateway".into(),
        table([
            ("org", org.as_str().into()),
            ("site", site.as_str().into()),
            ("id", id.as_str().into()),
        ]),
    );
    root.insert("storage".into(), table([("path", path_value(database))]));
    let listeners = config
        .listeners
        .iter()
        .map(|l| Value::Table(listener_table(l, ports)))
        .collect();
    root.insert("listener".into(), Value::Array(listeners));
    root.insert(
        "hub".into(),
        table([
            ("url", config.hub_url.as_str().into()),
            ("ca", path_value(&config.hub_ca)),
            ("cert", path_value(&config.hub_identity.cert)),
            ("key", path_value(&config.hub_identity.key)),
            // Tests want reconnects noticed quickly.
            ("keep_alive", "5s".into()),
            ("connect_timeout", "5s".into()),
        ]),
    );
    root.insert("telemetry".into(), table([("interval", "60s".into())]));
    root.insert(
        "log".into(),
        table([("level", config.log_level.as_str().into())]),
    );
    for (dotted, value) in &config.overrides {
        set_dotted(&mut root, dotted, value.clone());
    }
    let text = toml::to_string(&root).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

fn listener_table(listener: &ListenerSpec, ports: &BTreeMap<String, u16>) -> Table {
    let port = ports.get(&listener.name).copied().unwrap_or_default();
    let allow = listener
        .allow
        .iter()
        .map(|a| Value::from(a.as_str()))
        .collect::<Vec<_>>();
    let mut table = Table::new();
    table.insert("name".into(), listener.name.as_str().into());
    table.insert("bind".into(), format!("127.0.0.1:{port}").into());
    table.insert("allow".into(), Value::Array(allow));
    if let Some((server, client_ca)) = &listener.tls {
        let mut tls = Table::new();
        tls.insert("cert".into(), path_value(&server.cert));
        tls.insert("key".into(), path_value(&server.key));
        if let Some(ca) = client_ca {
            tls.insert("client_ca".into(), path_value(ca));
        }
        table.insert("tls".into(), Value::Table(tls));
    }
    table.extend(listener.extra.clone());
    table
}

/// Sets `value` at a dotted path, creating tables on the way (a non-table on the way is
/// replaced).
fn set_dotted(root: &mut Table, dotted: &str, value: Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = root;
    for part in parts {
        let entry = current
            .entry(part)
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

fn table<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Table(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn path_value(path: &Path) -> Value {
    Value::String(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_has_every_section_and_the_chosen_ports() {
        let pki = Pki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hl7edge.toml");
        let mut config = AgentConfig::new(&pki, "mqtts://127.0.0.1:8883").with_listener("icu");
        config.listeners[1].tls = Some((pki.mllp_server.clone(), Some(pki.ca.clone())));
        config.listeners[1]
            .extra
            .insert("max_frame".into(), "64 KiB".into());
        let ports = BTreeMap::from([("lab".to_owned(), 2575), ("icu".to_owned(), 2576)]);
        write_config(
            &path,
            &config.set("storage.max_bytes", "1 MiB"),
            Path::new("/tmp/q.db"),
            &ports,
        )
        .unwrap();
        let written: Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written["gateway"]["id"].as_str(), Some("gw-0001"));
        assert_eq!(written["storage"]["path"].as_str(), Some("/tmp/q.db"));
        assert_eq!(written["storage"]["max_bytes"].as_str(), Some("1 MiB"));
        let listeners = written["listener"].as_array().unwrap();
        assert_eq!(listeners[0]["bind"].as_str(), Some("127.0.0.1:2575"));
        assert_eq!(listeners[1]["bind"].as_str(), Some("127.0.0.1:2576"));
        assert_eq!(listeners[1]["max_frame"].as_str(), Some("64 KiB"));
        assert_eq!(listeners[1]["tls"]["client_ca"].as_str(), pki.ca.to_str());
        assert_eq!(
            written["hub"]["url"].as_str(),
            Some("mqtts://127.0.0.1:8883")
        );
        assert_eq!(written["hub"]["key"].as_str(), pki.agent.key.to_str());
    }

    #[test]
    fn a_dotted_override_creates_missing_tables_and_replaces_values() {
        let mut root = Table::new();
        set_dotted(&mut root, "hub.inflight", Value::Integer(4));
        set_dotted(&mut root, "hub.inflight", Value::Integer(8));
        set_dotted(&mut root, "a.b.c", Value::Boolean(true));
        assert_eq!(root["hub"]["inflight"].as_integer(), Some(8));
        assert_eq!(root["a"]["b"]["c"].as_bool(), Some(true));
    }
}
