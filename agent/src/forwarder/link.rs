//! The hub connection as people need to know it: connected or not, why not in plain words,
//! what to do, and whether waiting helps. Sans-IO: [`Link`] is told what happened and when
//! (`now` for pacing, `now_ms` for the times it records) and answers the row to persist
//! (`store/hub_link.rs`), which `hl7edge status` and the heartbeat read.
//!
//! Invariants:
//! - Every failure gets a [`Cause`] from a fixed list; [`Cause::heals_by_waiting`] is false for
//!   refusals that a retry can never get past (an untrusted hub certificate, this gateway's
//!   certificate refused, not authorized, a receipts subscription refused): nothing is sent
//!   until someone fixes them, and nothing may say otherwise.
//! - The row is handed out when the state or the error changes, and otherwise at most every
//!   [`WRITE_EVERY`] while publishes, PUBACKs and receipts move, never per message.
//! - No PHI: error texts come from the TLS and MQTT stacks (certificate problems, addresses).

use std::error::Error as StdError;
use std::io;
use std::time::{Duration, Instant};

use rumqttc::{ConnectReturnCode, ConnectionError};
use rustls::{AlertDescription, CertificateError};

use crate::store::HubLinkRow;

/// The longest a change of the last publish, PUBACK or receipt time waits to be written.
pub const WRITE_EVERY: Duration = Duration::from_secs(5);

/// Why the hub connection failed, from a fixed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The broker's certificate is not issued by the CA in `hub.ca`.
    HubCertificateUntrusted,
    /// The broker's certificate has expired, or is not valid yet, by this box's clock.
    HubCertificateDates,
    /// The broker's certificate does not name the host in `hub.url`.
    HubCertificateName,
    /// The broker refused this gateway's certificate during the TLS handshake.
    ClientCertificateRefused,
    /// The broker says this gateway's certificate has expired.
    ClientCertificateExpired,
    /// The broker refused the MQTT login (not authorized).
    NotAuthorized,
    /// The broker refused the client id.
    ClientIdRefused,
    /// The broker refused the subscription to this gateway's receipts topic.
    ReceiptsRefused,
    /// Nothing listens at the host and port of `hub.url`.
    NotListening,
    /// The host name of `hub.url` does not resolve.
    Dns,
    /// No answer within `hub.connect_timeout`, or the link went silent.
    Timeout,
    /// The broker or the network closed the connection.
    Closed,
    /// The broker refused a publish or the bookkeeping broke; the connection was rebuilt.
    Rebuilt,
    /// Anything else.
    Other,
}

impl Cause {
    /// Every cause, for documentation and tests.
    pub const ALL: [Cause; 14] = [
        Cause::HubCertificateUntrusted,
        Cause::HubCertificateDates,
        Cause::HubCertificateName,
        Cause::ClientCertificateRefused,
        Cause::ClientCertificateExpired,
        Cause::NotAuthorized,
        Cause::ClientIdRefused,
        Cause::ReceiptsRefused,
        Cause::NotListening,
        Cause::Dns,
        Cause::Timeout,
        Cause::Closed,
        Cause::Rebuilt,
        Cause::Other,
    ];

    /// The stable name written to the database, `status --json` and the heartbeat.
    pub fn kind(self) -> &'static str {
        match self {
            Cause::HubCertificateUntrusted => "hub_certificate_untrusted",
            Cause::HubCertificateDates => "hub_certificate_dates",
            Cause::HubCertificateName => "hub_certificate_name",
            Cause::ClientCertificateRefused => "client_certificate_refused",
            Cause::ClientCertificateExpired => "client_certificate_expired",
            Cause::NotAuthorized => "not_authorized",
            Cause::ClientIdRefused => "client_id_refused",
            Cause::ReceiptsRefused => "receipts_refused",
            Cause::NotListening => "not_listening",
            Cause::Dns => "dns",
            Cause::Timeout => "timeout",
            Cause::Closed => "closed",
            Cause::Rebuilt => "rebuilt",
            Cause::Other => "other",
        }
    }

    /// The cause of a stored kind (`Other` for one this build does not know).
    pub fn from_kind(kind: &str) -> Cause {
        Cause::ALL
            .into_iter()
            .find(|c| c.kind() == kind)
            .unwrap_or(Cause::Other)
    }

    /// False for a refusal that no retry gets past: records wait until someone fixes it.
    pub fn heals_by_waiting(self) -> bool {
        !matches!(
            self,
            Cause::HubCertificateUntrusted
                | Cause::HubCertificateDates
                | Cause::HubCertificateName
                | Cause::ClientCertificateRefused
                | Cause::ClientCertificateExpired
                | Cause::NotAuthorized
                | Cause::ClientIdRefused
                | Cause::ReceiptsRefused
                | Cause::Dns
        )
    }

    /// The cause in plain words.
    pub fn words(self) -> &'static str {
        match self {
            Cause::HubCertificateUntrusted => {
                "the hub's certificate is not issued by the CA in hub.ca, so this gateway does not trust the hub"
            }
            Cause::HubCertificateDates => {
                "the hub's certificate has expired or is not valid yet by this gateway's clock"
            }
            Cause::HubCertificateName => "the hub's certificate does not name the host in hub.url",
            Cause::ClientCertificateRefused => "the hub refused this gateway's certificate",
            Cause::ClientCertificateExpired => {
                "the hub says this gateway's certificate has expired"
            }
            Cause::NotAuthorized => {
                "the hub's broker refused this gateway's login (not authorized)"
            }
            Cause::ClientIdRefused => "the hub's broker refused the client id (hub.client_id)",
            Cause::ReceiptsRefused => {
                "the hub's broker refused this gateway's subscription to its custody receipts, so no record can ever be confirmed in receipt mode"
            }
            Cause::NotListening => {
                "nothing listens at the hub's address (the broker is down, or hub.url names the wrong port)"
            }
            Cause::Dns => "the hub's host name does not resolve",
            Cause::Timeout => {
                "the hub did not answer in time (network, firewall, or an overloaded broker)"
            }
            Cause::Closed => "the connection to the hub was closed",
            Cause::Rebuilt => {
                "the connection was rebuilt after the broker refused a publish or stopped answering"
            }
            Cause::Other => "the connection to the hub failed",
        }
    }

    /// What to do, naming the command to run. `ca` is `hub.ca`'s path, when known.
    pub fn fix(self, ca: Option<&str>) -> String {
        let ca = ca.unwrap_or("the path in hub.ca");
        match self {
            Cause::HubCertificateUntrusted => format!(
                "Get the CA certificate that issued the hub's certificate from central IT and put it at {ca}, then: systemctl restart hl7edge; check with: hl7edge doctor"
            ),
            Cause::HubCertificateDates => "Check the clock (timedatectl; timedatectl set-ntp true); if it is right, tell central IT that the hub's certificate is out of date. Check with: hl7edge doctor".to_owned(),
            Cause::HubCertificateName => "Set hub.url to the host name the hub's certificate names (ask central IT), then: systemctl restart hl7edge; check with: hl7edge doctor".to_owned(),
            Cause::ClientCertificateRefused => "Install the certificate central IT signed for this gateway's key: hl7edge provision --install-cert FILE, then: systemctl restart hl7edge; check with: hl7edge doctor".to_owned(),
            Cause::ClientCertificateExpired => "Renew the certificate: have central IT sign a new one, install it with hl7edge provision --install-cert FILE, then: systemctl restart hl7edge".to_owned(),
            Cause::NotAuthorized => "Ask central IT to allow this gateway's certificate (its CN is org/site/id) on the broker (hub/broker/mosquitto-acl); check with: hl7edge doctor".to_owned(),
            Cause::ClientIdRefused => "Set hub.client_id to a value the broker accepts, then: systemctl restart hl7edge".to_owned(),
            Cause::ReceiptsRefused => "Ask central IT to let this gateway read its own receipts topic (the broker ACL, hub/broker/mosquitto-acl), or set hub.custody = \"puback\" if the hub runs no hl7edge-hub ingest; then: systemctl restart hl7edge".to_owned(),
            Cause::NotListening => "Check that the hub's broker runs and that hub.url names its TLS port: hl7edge doctor".to_owned(),
            Cause::Dns => "Check the host name in hub.url and this box's DNS (/etc/resolv.conf): hl7edge doctor".to_owned(),
            Cause::Timeout => "Check the network and any firewall between this box and the hub: hl7edge doctor".to_owned(),
            Cause::Closed | Cause::Rebuilt | Cause::Other => {
                "Check the hub connection: hl7edge doctor; the agent's log (journalctl -u hl7edge) has the details".to_owned()
            }
        }
    }
}

/// The cause of a connection error: the TLS error inside it, if any, else what the socket
/// or the broker said.
pub fn classify(err: &ConnectionError) -> Cause {
    if let Some(tls) = find::<rustls::Error>(err) {
        return tls_cause(tls);
    }
    match err {
        ConnectionError::ConnectionRefused(code) => match code {
            ConnectReturnCode::BadClientId => Cause::ClientIdRefused,
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword => {
                Cause::NotAuthorized
            }
            _ => Cause::Other,
        },
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => Cause::Timeout,
        ConnectionError::MqttState(rumqttc::StateError::AwaitPingResp) => Cause::Timeout,
        ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted) => Cause::Closed,
        _ => find::<io::Error>(err).map_or(Cause::Other, io_cause),
    }
}

fn tls_cause(err: &rustls::Error) -> Cause {
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                Cause::HubCertificateUntrusted
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Cause::HubCertificateDates,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Cause::HubCertificateName
            }
            _ => Cause::HubCertificateUntrusted,
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateExpired) => {
            Cause::ClientCertificateExpired
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError,
        ) => Cause::ClientCertificateRefused,
        _ => Cause::Other,
    }
}

fn io_cause(e: &io::Error) -> Cause {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Cause::NotListening,
        io::ErrorKind::TimedOut => Cause::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Cause::Closed,
        _ if e.to_string().contains("lookup") => Cause::Dns,
        _ => Cause::Other,
    }
}

/// The first error of type `T` in `err`'s source chain, looking inside `io::Error`s too
/// (TLS errors travel inside them).
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<T>())
        {
            return Some(inner);
        }
        current = e.source();
    }
    None
}

/// The connection's state as the forwarder last saw it, and when to persist it.
#[derive(Debug, Clone)]
pub struct Link {
    row: HubLinkRow,
    /// The state or the error changed: write at once.
    changed: bool,
    /// Only times moved: write within [`WRITE_EVERY`].
    moved: bool,
    written_at: Option<Instant>,
}

impl Link {
    /// Not connected yet, in custody mode `custody` (`puback` or `receipt`).
    pub fn new(custody: &str, now_ms: i64) -> Link {
        Link {
            row: HubLinkRow {
                state: "connecting".to_owned(),
                since_ms: now_ms,
                custody: custody.to_owned(),
                updated_at_ms: now_ms,
                ..HubLinkRow::default()
            },
            changed: true,
            moved: false,
            written_at: None,
        }
    }

    /// What is known now.
    pub fn row(&self) -> &HubLinkRow {
        &self.row
    }

    /// The broker accepted the connection.
    pub fn on_connected(&mut self, now_ms: i64) {
        self.set_connected(true, now_ms);
        self.row.connected_at_ms = Some(now_ms);
        self.row.failures = 0;
        self.row.cause = None;
        self.changed = true;
    }

    /// The connection failed or was given up, for `cause` (`error` as the stack said it).
    pub fn on_failed(&mut self, cause: Cause, error: &str, now_ms: i64) {
        self.set_connected(false, now_ms);
        self.row.cause = Some(cause.kind().to_owned());
        self.row.error = Some(error.to_owned());
        self.row.error_at_ms = Some(now_ms);
        self.row.failures = self.row.failures.saturating_add(1);
        self.changed = true;
    }

    /// The broker refused the subscription to the receipts topic: the connection stays up,
    /// but no receipt can arrive.
    pub fn on_receipts_refused(&mut self, now_ms: i64) {
        let kind = Cause::ReceiptsRefused.kind();
        if self.row.cause.as_deref() != Some(kind) {
            self.row.cause = Some(kind.to_owned());
            self.row.error = Some("SUBACK refused the receipts topic".to_owned());
            self.row.error_at_ms = Some(now_ms);
            self.changed = true;
        }
    }

    /// Records were handed to the client.
    pub fn on_publish(&mut self, now_ms: i64) {
        self.row.publish_at_ms = Some(now_ms);
        self.moved = true;
    }

    /// The broker acknowledged records.
    pub fn on_puback(&mut self, now_ms: i64) {
        self.row.puback_at_ms = Some(now_ms);
        self.moved = true;
    }

    /// A receipt named records this gateway held.
    pub fn on_receipt(&mut self, now_ms: i64) {
        self.row.receipt_at_ms = Some(now_ms);
        self.moved = true;
    }

    /// The row to write now, if any: at once after a change, within [`WRITE_EVERY`] after
    /// only times moved.
    pub fn take_update(&mut self, now: Instant, now_ms: i64) -> Option<HubLinkRow> {
        let paced = self
            .written_at
            .is_none_or(|at| now.saturating_duration_since(at) >= WRITE_EVERY);
        if !(self.changed || (self.moved && paced)) {
            return None;
        }
        self.changed = false;
        self.moved = false;
        self.written_at = Some(now);
        self.row.updated_at_ms = now_ms;
        Some(self.row.clone())
    }

    /// `since_ms` moves only when the link goes up or down: retries of a link that is down
    /// keep the time it went down (or the start, if it was never up).
    fn set_connected(&mut self, connected: bool, now_ms: i64) {
        if (self.row.state == "connected") != connected {
            self.row.since_ms = now_ms;
        }
        self.row.state = if connected {
            "connected"
        } else {
            "disconnected"
        }
        .to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_io(err: rustls::Error) -> ConnectionError {
        ConnectionError::Tls(rumqttc::TlsError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            err,
        )))
    }

    #[test]
    fn a_hub_certificate_from_another_ca_is_untrusted_and_never_heals() {
        for e in [
            CertificateError::BadSignature,
            CertificateError::UnknownIssuer,
        ] {
            let cause = classify(&tls_io(rustls::Error::InvalidCertificate(e)));
            assert_eq!(cause, Cause::HubCertificateUntrusted);
            assert!(!cause.heals_by_waiting());
            assert!(
                cause
                    .fix(Some("/etc/hl7edge/hub-ca.pem"))
                    .contains("/etc/hl7edge/hub-ca.pem")
            );
        }
    }

    #[test]
    fn a_refused_client_certificate_is_named_also_when_it_comes_as_an_io_error() {
        let alert = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        let io = ConnectionError::Io(io::Error::new(io::ErrorKind::InvalidData, alert));
        assert_eq!(classify(&io), Cause::ClientCertificateRefused);
        let expired = tls_io(rustls::Error::AlertReceived(
            AlertDescription::CertificateExpired,
        ));
        assert_eq!(classify(&expired), Cause::ClientCertificateExpired);
    }

    #[test]
    fn sockets_and_brokers_say_what_they_say() {
        let io = |kind| ConnectionError::Io(io::Error::from(kind));
        assert_eq!(
            classify(&io(io::ErrorKind::ConnectionRefused)),
            Cause::NotListening
        );
        assert!(Cause::NotListening.heals_by_waiting());
        assert_eq!(classify(&io(io::ErrorKind::ConnectionReset)), Cause::Closed);
        assert_eq!(classify(&ConnectionError::NetworkTimeout), Cause::Timeout);
        let lookup =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(classify(&ConnectionError::Io(lookup)), Cause::Dns);
        let refused = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert_eq!(classify(&refused), Cause::NotAuthorized);
        assert!(!Cause::NotAuthorized.heals_by_waiting());
    }

    #[test]
    fn every_cause_round_trips_by_its_kind_and_has_words_and_a_command() {
        for cause in Cause::ALL {
            assert_eq!(Cause::from_kind(cause.kind()), cause);
            assert!(!cause.words().is_empty());
            assert!(cause.fix(None).contains("hl7edge") || cause.fix(None).contains("systemctl"));
        }
        assert_eq!(Cause::from_kind("from a newer build"), Cause::Other);
    }

    #[test]
    fn changes_are_written_at_once_and_progress_at_most_every_few_seconds() {
        let t0 = Instant::now();
        let mut link = Link::new("receipt", 1_000);
        assert_eq!(
            link.take_update(t0, 1_000).map(|r| r.state),
            Some("connecting".into())
        );
        assert_eq!(link.take_update(t0, 1_000), None, "nothing new");
        link.on_connected(2_000);
        let row = link
            .take_update(t0, 2_000)
            .expect("a change is written at once");
        assert_eq!((row.state.as_str(), row.since_ms), ("connected", 2_000));
        link.on_publish(2_100);
        link.on_puback(2_200);
        assert_eq!(link.take_update(t0 + Duration::from_secs(1), 2_300), None);
        let row = link
            .take_update(t0 + WRITE_EVERY, 7_000)
            .expect("progress is written within WRITE_EVERY");
        assert_eq!(
            (row.publish_at_ms, row.puback_at_ms),
            (Some(2_100), Some(2_200))
        );
        let refused = "invalid peer certificate: BadSignature";
        link.on_failed(Cause::HubCertificateUntrusted, refused, 8_000);
        let row = link.take_update(t0 + WRITE_EVERY, 8_000).expect("at once");
        assert_eq!(row.cause.as_deref(), Some("hub_certificate_untrusted"));
        assert_eq!((row.state.as_str(), row.failures), ("disconnected", 1));
        assert_eq!(row.connected_at_ms, Some(2_000), "the last success is kept");
        link.on_failed(Cause::HubCertificateUntrusted, refused, 9_000);
        let row = link.take_update(t0 + WRITE_EVERY, 9_000).expect("counted");
        assert_eq!(
            (row.since_ms, row.failures),
            (8_000, 2),
            "down since the first failure"
        );
    }
}
