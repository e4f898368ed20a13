//! Turns a broker connection error into one sentence that says what failed
//! and what to do: `cannot connect to mqtts://hub:8883: certificate verify
//! failed (the broker's certificate is not signed by --ca) — check --ca`.
//!
//! The advice follows the em dash; a connection that worked and was lost
//! later is reported without it (the settings were evidently right).

use std::io;

use rumqttc::{ConnectReturnCode, ConnectionError, StateError};
use rustls::{AlertDescription, CertificateError};

/// The message for a connection to `url` that could not be established.
pub fn explain(url: &str, err: &ConnectionError) -> String {
    format!("cannot connect to {url}: {}", cause(err))
}

/// The message for an established connection that was lost.
pub fn explain_lost(url: &str, err: &ConnectionError) -> String {
    let cause = cause(err);
    let what = cause.split(" — ").next().unwrap_or_default();
    format!("lost the connection to {url}: {what}")
}

fn cause(err: &ConnectionError) -> String {
    if let Some(tls) = rustls_error(err) {
        return tls_cause(tls);
    }
    match err {
        ConnectionError::ConnectionRefused(code) => refused(*code),
        ConnectionError::NetworkTimeout => {
            "timed out — check the host, the port and any firewall in between".into()
        }
        ConnectionError::Tls(rumqttc::TlsError::DNSName(_)) => {
            "the host is not a valid TLS server name — use the name in the broker's certificate"
                .into()
        }
        ConnectionError::MqttState(StateError::ConnectionAborted) => closed(),
        ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::Error::PayloadSizeLimitExceeded(size),
        )) => format!(
            "the broker sent a packet of {size} bytes, more than --max-packet allows; the hub cannot read it, and with a persistent session the broker sends it again on every reconnect: set the broker's largest packet (mosquitto max_packet_size) to at most --max-packet, so such a message is refused when it is published, or raise --max-packet"
        ),
        _ => match io_error(err) {
            Some(e) => io_cause(e),
            None => format!("{err}"),
        },
    }
}

fn refused(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword => {
            "the broker refused this client (not authorized) — check that the broker maps the --cert identity to a user allowed to subscribe".into()
        }
        ConnectReturnCode::BadClientId => {
            "the broker refused the client id — pass another --client-id".into()
        }
        ConnectReturnCode::ServiceUnavailable => {
            "the broker says it is unavailable — retry later or check the broker's logs".into()
        }
        ConnectReturnCode::RefusedProtocolVersion => {
            "the broker does not speak MQTT 3.1.1 on this port".into()
        }
        ConnectReturnCode::Success => "the broker answered oddly (success code on a refusal)".into(),
    }
}

fn tls_cause(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(cert) => server_cert_cause(cert),
        rustls::Error::AlertReceived(alert) if client_cert_alert(*alert) => format!(
            "the broker rejected our client certificate ({alert:?}) — check --cert and --key, and that the broker trusts the CA that issued them"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "TLS handshake failed ({e}) — is this port a TLS listener? For a plaintext lab broker use mqtt:// with --insecure-plaintext"
        ),
        other => format!("TLS handshake failed: {other}"),
    }
}

fn server_cert_cause(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "certificate verify failed (the broker's certificate is not signed by --ca) — check --ca".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate verify failed (the broker's certificate does not name this host) — connect with the host name in its certificate".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate verify failed (the broker's certificate has expired) — renew it on the broker, or check this machine's clock".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate verify failed (the broker's certificate is not valid yet) — check this machine's clock".into()
        }
        other => format!("certificate verify failed ({other:?}) — check --ca"),
    }
}

fn client_cert_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError
    )
}

fn io_cause(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused — is the broker running, and is the port right?".into()
        }
        io::ErrorKind::TimedOut => {
            "timed out — check the host, the port and any firewall in between".into()
        }
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => closed(),
        _ if e.to_string().contains("lookup") => {
            format!("cannot resolve the host name ({e}) — check the host in --url")
        }
        _ => e.to_string(),
    }
}

fn closed() -> String {
    "the broker closed the connection — check the scheme (mqtts:// for a TLS listener, mqtt:// for plaintext) and that the broker accepts the client certificate".into()
}

/// The io::Error inside a connection error, wherever rumqttc put it.
fn io_error(err: &ConnectionError) -> Option<&io::Error> {
    match err {
        ConnectionError::Io(e)
        | ConnectionError::Tls(rumqttc::TlsError::Io(e))
        | ConnectionError::MqttState(StateError::Io(e))
        | ConnectionError::MqttState(StateError::Deserialization(rumqttc::Error::Io(e))) => Some(e),
        _ => None,
    }
}

/// The rustls error, either direct or wrapped in an io::Error by tokio-rustls.
fn rustls_error(err: &ConnectionError) -> Option<&rustls::Error> {
    if let ConnectionError::Tls(rumqttc::TlsError::TLS(e)) = err {
        return Some(e);
    }
    io_error(err)?
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: rustls::Error) -> ConnectionError {
        ConnectionError::Tls(rumqttc::TlsError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            e,
        )))
    }

    #[test]
    fn an_unknown_issuer_points_at_the_ca_flag() {
        let err = wrapped(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let text = explain("mqtts://hub:8883", &err);
        assert!(
            text.starts_with("cannot connect to mqtts://hub:8883: certificate verify failed")
                && text.ends_with("check --ca"),
            "{text}"
        );
    }

    #[test]
    fn a_rejected_client_certificate_points_at_cert_and_key() {
        let err = ConnectionError::MqttState(StateError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        )));
        let text = explain("mqtts://hub:8883", &err);
        assert!(text.contains("rejected our client certificate"), "{text}");
        assert!(text.contains("--cert and --key"), "{text}");
    }

    #[test]
    fn a_rejection_while_reading_the_connack_is_found_too() {
        let err = ConnectionError::MqttState(StateError::Deserialization(rumqttc::Error::Io(
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
            ),
        )));
        assert!(explain("u", &err).contains("rejected our client certificate"));
        let reset = ConnectionError::MqttState(StateError::Deserialization(rumqttc::Error::Io(
            io::Error::from(io::ErrorKind::ConnectionReset),
        )));
        assert!(explain("u", &reset).contains("check the scheme"));
    }

    #[test]
    fn a_lost_connection_is_reported_without_setup_advice() {
        let err = ConnectionError::MqttState(StateError::ConnectionAborted);
        assert_eq!(
            explain_lost("mqtt://b:1883", &err),
            "lost the connection to mqtt://b:1883: the broker closed the connection"
        );
    }

    #[test]
    fn a_packet_over_the_limit_is_named_with_its_fix_also_on_a_lost_connection() {
        let err = ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::Error::PayloadSizeLimitExceeded(20 << 20),
        ));
        let text = explain_lost("mqtts://b:8883", &err);
        assert!(text.contains("20971520 bytes"), "{text}");
        assert!(text.contains("max_packet_size"), "{text}");
    }

    #[test]
    fn a_refused_tcp_connection_asks_whether_the_broker_runs() {
        let err = ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let text = explain("mqtt://127.0.0.1:1", &err);
        assert!(text.contains("is the broker running"), "{text}");
    }

    #[test]
    fn a_not_authorized_refusal_points_at_the_broker_acl() {
        let err = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert!(explain("u", &err).contains("not authorized"));
    }

    #[test]
    fn a_closed_connection_suggests_checking_the_scheme() {
        let err = ConnectionError::MqttState(StateError::ConnectionAborted);
        assert!(explain("u", &err).contains("check the scheme"));
    }
}
