//! `doctor` hub checks, one stage at a time so the failing stage is named: TCP connect, TLS
//! handshake with the client certificate, MQTT CONNACK.
//!
//! The MQTT probe connects with the client id `{hub.client_id}-doctor` and a clean session, so
//! the running agent's own session on the broker is neither kicked off nor changed. A later
//! stage runs only if the earlier one passed. The wording of TLS failures ([`tls_failure`]) is
//! pure and tested; the probes are small async functions with timeouts.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Transport};
use rustls::{AlertDescription, CertificateError, ClientConfig};
use rustls_pki_types::ServerName;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::config::{Hub, HubTransport};
use crate::device_cert::{self, CertDates};

use super::check::Check;

/// How long to wait after the handshake for the broker to reject the client certificate (TLS
/// 1.3 reports that only after the client considers the handshake done).
const REJECT_WAIT: Duration = Duration::from_millis(700);

/// What the hub probe found.
#[derive(Debug, Default)]
pub struct HubProbe {
    /// One check per stage that ran.
    pub checks: Vec<Check>,
    /// The broker's certificate, if the TLS handshake got that far.
    pub server_cert: Option<CertDates>,
}

/// Probes the hub: TCP, then TLS (unless plaintext), then MQTT.
pub async fn probe(hub: &Hub) -> HubProbe {
    let mut out = HubProbe::default();
    let addr = format!("{}:{}", hub.host, hub.port);
    let wait = hub.connect_timeout;
    let tcp = match timeout(wait, TcpStream::connect((hub.host.as_str(), hub.port))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return out.unreachable(hub, tcp_failure(&addr, &hub.host, &e)),
        Err(_) => {
            let check = tcp_timeout(&addr, wait);
            return out.unreachable(hub, check);
        }
    };
    out.checks.push(Check::ok(
        "hub reachable",
        format!("TCP connection to {addr}"),
    ));
    let transport = match &hub.transport {
        HubTransport::Plaintext => Transport::Tcp,
        HubTransport::Tls(tls) => {
            let config = match crate::tls::client_config(&tls.ca, &tls.cert, &tls.key) {
                Ok(config) => config,
                Err(e) => {
                    out.checks.push(Check::fail(
                        "hub TLS handshake",
                        e.to_string(),
                        "fix the certificate files first (see the checks above)",
                    ));
                    return out;
                }
            };
            let (check, server_cert) = tls_stage(hub, tcp, config.clone()).await;
            let passed = check.outcome == super::check::Outcome::Ok;
            out.checks.push(check);
            out.server_cert = server_cert;
            if !passed {
                out.checks.push(Check::skipped(
                    MQTT,
                    "the TLS handshake with the hub failed (above)",
                ));
                return out;
            }
            Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(config))
        }
    };
    out.checks.push(mqtt_stage(hub, transport).await);
    out
}

impl HubProbe {
    /// The TCP stage failed with `check`: the later stages are listed as not run.
    fn unreachable(mut self, hub: &Hub, check: Check) -> HubProbe {
        self.checks.push(check);
        let cause = "the hub is not reachable (above)";
        if let HubTransport::Tls(_) = hub.transport {
            self.checks.push(Check::skipped(TLS, cause));
        }
        self.checks.push(Check::skipped(MQTT, cause));
        self
    }
}

/// The check names of the three stages.
const TCP: &str = "hub reachable";
const TLS: &str = "hub TLS handshake";
const MQTT: &str = "hub MQTT login";

/// A TCP connection that failed with `e`, in words that say what the failure means.
pub fn tcp_failure(addr: &str, host: &str, e: &io::Error) -> Check {
    use io::ErrorKind as K;
    let (detail, fix) = match e.kind() {
        K::ConnectionRefused => (
            format!("nothing listens on {addr}: the connection was refused ({e})"),
            "the host answered, so the network is fine: the broker is not running there, or listens on another port. Ask central IT whether the broker is up, and check the port in hub.url (mqtts:// brokers usually use 8883)".to_owned(),
        ),
        K::HostUnreachable | K::NetworkUnreachable => (
            format!("no route to {addr} ({e})"),
            "check this box's network (cable, address, default gateway: ip route) and that the hub's network is reachable from the clinic".to_owned(),
        ),
        K::PermissionDenied => (
            format!("the connection to {addr} was blocked on this box ({e})"),
            "a local firewall (nftables/iptables) blocks outgoing connections: allow TCP to the hub's port".to_owned(),
        ),
        _ if is_lookup_failure(e) => (
            format!("the hub's host name {host} cannot be resolved ({e})"),
            format!(
                "check the host name in hub.url, and this box's DNS (resolvectl status; try: getent hosts {host})"
            ),
        ),
        _ => (
            format!("cannot open a TCP connection to {addr}: {e}"),
            format!(
                "check the network and that the firewall lets this box connect to {addr}; check hub.url in the configuration"
            ),
        ),
    };
    Check::fail(TCP, detail, fix)
}

/// No answer to the TCP connection attempt within `wait`.
pub fn tcp_timeout(addr: &str, wait: Duration) -> Check {
    Check::fail(
        TCP,
        format!(
            "no answer from {addr} within {}s: the packets are dropped on the way",
            wait.as_secs()
        ),
        format!(
            "a firewall between this box and the hub drops the connection, or the host is down: ask the clinic's network admin to allow TCP from this box to {addr}, and central IT whether the host is up"
        ),
    )
}

/// Whether `e` came from resolving a host name (the standard library reports lookup failures
/// as uncategorized errors whose text names the lookup).
fn is_lookup_failure(e: &io::Error) -> bool {
    let text = e.to_string();
    text.contains("lookup address") || text.contains("Name or service not known")
}

/// Handshakes over `tcp` and waits briefly for a late rejection of the client certificate.
async fn tls_stage(
    hub: &Hub,
    tcp: TcpStream,
    config: Arc<ClientConfig>,
) -> (Check, Option<CertDates>) {
    const NAME: &str = "hub TLS handshake";
    let name = match ServerName::try_from(hub.host.clone()) {
        Ok(name) => name,
        Err(e) => return (Check::fail(NAME, e.to_string(), "correct hub.url"), None),
    };
    let connector = TlsConnector::from(config);
    let mut stream = match timeout(hub.connect_timeout, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return (io_failure(&e), None),
        Err(_) => {
            let fix = "check that hub.url names the broker's TLS port (usually 8883)";
            return (Check::fail(NAME, "no TLS answer in time", fix), None);
        }
    };
    let server_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| device_cert::dates(c).ok());
    let mut byte = [0_u8; 1];
    let check = match timeout(REJECT_WAIT, stream.read(&mut byte)).await {
        Err(_) | Ok(Ok(1..)) => Check::ok(
            NAME,
            "the hub's certificate is trusted and it accepted this gateway's certificate",
        ),
        Ok(Ok(0)) => Check::fail(
            NAME,
            "the hub closed the connection right after the handshake",
            "the hub probably refused this gateway's certificate: install the certificate central IT signed (hl7edge provision --install-cert FILE)",
        ),
        Ok(Err(e)) => io_failure(&e),
    };
    (check, server_cert)
}

fn io_failure(e: &io::Error) -> Check {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(err) => tls_failure(err),
        None => Check::fail(
            "hub TLS handshake",
            format!("the connection failed during TLS: {e}"),
            "check that hub.url names the broker's TLS port (usually 8883)",
        ),
    }
}

/// The check for a TLS error, worded for the technician.
pub fn tls_failure(err: &rustls::Error) -> Check {
    const NAME: &str = TLS;
    let (detail, fix) = match err {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => (
            "the hub's certificate is not issued by the configured hub CA".to_owned(),
            "get the hub CA file from central IT and put it at the path in hub.ca".to_owned(),
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => (
            "the hub's certificate is not valid yet by the local clock".to_owned(),
            "set the clock: timedatectl set-ntp true".to_owned(),
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => (
            "the hub's certificate has expired (or the local clock is far ahead)".to_owned(),
            "check the clock; if it is right, tell central IT that the hub certificate expired"
                .to_owned(),
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
            "the hub's certificate is not valid for the host name in hub.url".to_owned(),
            "use the host name the hub's certificate names (ask central IT) in hub.url".to_owned(),
        ),
        rustls::Error::AlertReceived(alert) => (
            format!("the hub refused this gateway's certificate (TLS alert {alert:?})"),
            client_cert_fix(*alert).to_owned(),
        ),
        other => (
            format!("TLS failed: {other}"),
            "check hub.url, hub.ca, hub.cert and hub.key".to_owned(),
        ),
    };
    Check::fail(NAME, detail, fix)
}

fn client_cert_fix(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::CertificateExpired => {
            "renew the certificate: provision a new CSR, have it signed, install it with --install-cert"
        }
        _ => {
            "install the certificate central IT signed from this gateway's CSR (hl7edge provision --install-cert FILE)"
        }
    }
}

/// Connects over MQTT with a separate client id and waits for CONNACK.
async fn mqtt_stage(hub: &Hub, transport: Transport) -> Check {
    const NAME: &str = MQTT;
    let client_id = format!("{}-doctor", hub.client_id);
    let mut options = MqttOptions::new(client_id.clone(), hub.host.clone(), hub.port);
    options.set_clean_session(true);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_transport(transport);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 4);
    let connack = timeout(hub.connect_timeout, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let check = match connack {
        Ok(Ok(_)) => Check::ok(NAME, format!("CONNACK accepted (client id {client_id})")),
        Ok(Err(ConnectionError::ConnectionRefused(code))) => refused(code),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("MQTT failed: {e}"),
            "check hub.url and that the broker speaks MQTT 3.1.1 on that port",
        ),
        Err(_) => Check::fail(
            NAME,
            "no CONNACK in time",
            "check hub.url; the broker may be overloaded",
        ),
    };
    if check.outcome == super::check::Outcome::Ok {
        let _ = client.disconnect().await;
        let _ = timeout(Duration::from_secs(1), events.poll()).await;
    }
    check
}

fn refused(code: ConnectReturnCode) -> Check {
    Check::fail(
        "hub MQTT login",
        format!("the broker refused the connection: {code:?}"),
        match code {
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword => {
                "ask central IT to allow this gateway's certificate on the broker"
            }
            ConnectReturnCode::BadClientId => "set hub.client_id to a value the broker accepts",
            _ => "ask central IT whether the broker is in service",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    #[test]
    fn an_unknown_hub_issuer_points_at_the_hub_ca_file() {
        let check = tls_failure(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(check.outcome, Outcome::Fail);
        assert!(check.fix.contains("hub.ca"), "{}", check.fix);
    }

    #[test]
    fn a_refused_client_certificate_points_at_install_cert() {
        let check = tls_failure(&rustls::Error::AlertReceived(AlertDescription::UnknownCA));
        assert!(check.detail.contains("refused this gateway's certificate"));
        assert!(check.fix.contains("--install-cert"), "{}", check.fix);
    }

    #[test]
    fn a_refused_connection_says_nothing_listens_not_firewall() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let check = tcp_failure("hub.example.org:8883", "hub.example.org", &refused);
        assert!(
            check
                .detail
                .starts_with("nothing listens on hub.example.org:8883"),
            "{}",
            check.detail
        );
        assert!(check.fix.contains("broker is not running"), "{}", check.fix);
        assert!(!check.fix.contains("firewall"), "{}", check.fix);
        let timeout = tcp_timeout("hub.example.org:8883", Duration::from_secs(10));
        assert!(timeout.fix.contains("firewall"), "{}", timeout.fix);
    }

    #[tokio::test]
    async fn an_unreachable_hub_lists_the_tls_and_mqtt_checks_as_not_run() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let config = crate::config::Config::from_toml_str(
            &crate::config::Config::example().replace(
                "mqtts://hub.example.org:8883",
                &format!("mqtts://127.0.0.1:{port}"),
            ),
            std::path::Path::new("/etc/hl7edge/hl7edge.toml"),
        )
        .unwrap();
        let probe = probe(&config.hub).await;
        let outcomes: Vec<(&str, Outcome)> = probe
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                (TCP, Outcome::Fail),
                (TLS, Outcome::Skipped),
                (MQTT, Outcome::Skipped)
            ]
        );
        assert!(probe.checks[1].detail.contains("not reachable"));
    }

    #[test]
    fn a_refused_login_says_who_to_ask() {
        let check = refused(ConnectReturnCode::NotAuthorized);
        assert!(check.fix.contains("central IT"), "{}", check.fix);
    }
}
