//! Signed pushes as the tests make and read them: the rig (broker with the ACL template, the
//! hub's tools, a records subscriber), the organization's key made with the README's two
//! `openssl` commands, and the push reports `fleet --json` shows.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::broker::{Broker, BrokerOptions};
use crate::hub::HubTools;
use crate::ingest::ACL_TEMPLATE;
use crate::mqtt::{ClientOptions, Subscriber};
use crate::pki::Pki;

/// Every gateway's records.
const RECORDS: &str = "hl7edge/v1/+/+/+/records/#";

/// An Ed25519 key pair as central IT makes one, with the README's two `openssl` commands, in
/// `dir` as `{name}.key` and `{name}.pub`: (private PKCS#8 PEM, public SPKI PEM).
pub fn org_key(dir: &Path, name: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let openssl = |args: &[&str]| -> std::io::Result<()> {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .status()
            .map_err(|e| {
                std::io::Error::other(format!("running openssl (Debian's openssl package): {e}"))
            })?;
        if !status.success() {
            return Err(std::io::Error::other(format!("openssl {args:?}: {status}")));
        }
        Ok(())
    };
    let (key, pubkey) = (format!("{name}.key"), format!("{name}.pub"));
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", &key])?;
    openssl(&["pkey", "-in", &key, "-pubout", "-out", &pubkey])?;
    Ok((dir.join(key), dir.join(pubkey)))
}

/// The first push report in a `fleet --json` snapshot that `which` picks.
pub fn report(fleet: &Value, which: impl Fn(&Value) -> bool) -> Option<Value> {
    fn find(v: &Value) -> Option<&Value> {
        match v {
            Value::Object(map) => map.get("pushes").or_else(|| map.values().find_map(find)),
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    find(fleet)?.as_array()?.iter().find(|p| which(p)).cloned()
}

/// What every push test starts from: mosquitto with mutual TLS and the ACL template, the hub's
/// tools as `hl7edge-admin` (pushes) and `hl7edge-monitor` (fleet), a subscriber to every
/// gateway's records, and two organization keys (the right one and a rogue one).
pub struct PushRig {
    /// The test CA and certificates (its directory holds the keys and tables).
    pub pki: Pki,
    /// The broker.
    pub broker: Broker,
    /// `hl7edge-hub push` as central IT runs it.
    pub admin: HubTools,
    /// `hl7edge-hub fleet` as a monitor runs it.
    pub fleet: HubTools,
    /// Every record the gateways publish.
    pub hub: Subscriber,
    /// The organization's signing key and the public key the boxes pin.
    pub org: (PathBuf, PathBuf),
    /// Another Ed25519 key, whose pushes every box refuses.
    pub rogue: PathBuf,
}

/// Why the rig did not start.
pub type RigError = Box<dyn std::error::Error + Send + Sync>;

impl PushRig {
    /// Starts the broker and the hub's side; `name` names the records subscriber.
    pub async fn start(name: &str) -> Result<PushRig, RigError> {
        let pki = Pki::generate()?;
        let acl = pki.dir().join("mosquitto-acl");
        std::fs::write(&acl, ACL_TEMPLATE)?;
        let options = BrokerOptions {
            extra_config: vec![format!("acl_file {}", acl.display())],
            ..BrokerOptions::default()
        };
        let broker = Broker::start_with(&pki, options).await?;
        let monitor = pki.client("hl7edge-monitor")?;
        let admin = HubTools::with_identity(&pki, &broker.url(), &pki.client("hl7edge-admin")?)?;
        let fleet = HubTools::with_identity(&pki, &broker.url(), &monitor)?;
        let client = ClientOptions::new(name, &pki.ca, Some(&monitor));
        let hub = Subscriber::connect(broker.addr(), &client, RECORDS).await?;
        let org = org_key(pki.dir(), "org-push")?;
        let (rogue, _) = org_key(pki.dir(), "rogue")?;
        Ok(PushRig {
            pki,
            broker,
            admin,
            fleet,
            hub,
            org,
            rogue,
        })
    }
}
