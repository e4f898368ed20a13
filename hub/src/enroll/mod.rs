//! `hl7edge-hub enroll`: answers the enrollment requests of boxes that hold a claim credential
//! (topics and messages: `hl7edge_protocol::enroll`).
//!
//! For each request on `{prefix}/enroll/{claim}/{nonce}/request`: decode it (an undecodable
//! one is answered `bad_request`), verify the request's signature and that the nonce is its
//! key's, check the claim and gateway against the allowlist (read again for every request) and
//! the ledger ([`allowlist`]), sign with the device CA ([`sign`]), append the ledger line
//! (fsynced) and answer on `{prefix}/enroll/{claim}/{nonce}/answer`. Every refusal is answered
//! too, with a reason word, and logged with the claim, gateway and word (no PHI exists here).
//! The request is acknowledged to the broker only after its answer is queued, on a kept
//! session, so a request that arrives while the command is stopped is answered when it starts.

pub mod allowlist;
pub mod sign;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use hl7edge_protocol::enroll::{
    self, EnrollAnswer, EnrollRequest, Outcome, Refusal, all_requests_filter, parse_request_topic,
};
use jiff::Timestamp;
use tracing::{info, warn};

use crate::cli::BrokerArgs;
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};

use allowlist::{Allowlist, Asked, Ledger};
use sign::DeviceCa;

/// `hl7edge-hub enroll`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// Broker connection (a certificate the broker's ACL lets read enroll requests and write
    /// enroll answers: CN hl7edge-enroll in hub/broker/mosquitto-acl).
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The organization's device CA certificate (PEM): the CA the boxes' `hub.ca` and the
    /// broker's `cafile` trust for device certificates.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: PathBuf,
    /// The device CA's private key (PEM).
    #[arg(long = "ca-key", value_name = "FILE")]
    pub ca_key: PathBuf,
    /// Who may enroll: lines of `CLAIM org/site/gateway` (CLAIM: the claim certificate's
    /// common name is enroll/CLAIM; * for any claim); read again for every request.
    #[arg(long, value_name = "FILE")]
    pub allowlist: PathBuf,
    /// The gateways signed so far (`gateway nonce` per line, appended); a gateway is signed
    /// for one key only. Default: the allowlist's path with `.enrolled` appended.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Days a device certificate is valid.
    #[arg(long, default_value_t = 397, value_name = "DAYS")]
    pub days: u16,
    /// MQTT client id (the broker keeps this session, so requests wait while it is stopped).
    #[arg(long, default_value = "hl7edge-enroll", value_name = "ID")]
    pub client_id: String,
}

/// Runs until `stop` resolves or the broker connection fails for good.
pub async fn run(
    args: EnrollArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), CommandError> {
    let ca = DeviceCa::load(&args.ca_cert, &args.ca_key)
        .map_err(|e| CommandError::Usage(format!("--ca-cert/--ca-key: {e}")))?;
    let ledger_path = args.ledger.clone().unwrap_or_else(|| {
        let mut p = args.allowlist.clone().into_os_string();
        p.push(".enrolled");
        PathBuf::from(p)
    });
    read_allowlist(&args.allowlist)?;
    let mut ledger = match std::fs::read_to_string(&ledger_path) {
        Ok(text) => Ledger::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
        Err(e) => {
            return Err(CommandError::Usage(format!(
                "--ledger {}: {e}",
                ledger_path.display()
            )));
        }
    };
    let prefix = args.broker.prefix.trim_end_matches('/').to_owned();
    let broker = args.broker.broker(args.client_id.clone())?;
    let mut session = Subscription::start(
        &broker,
        SessionSpec {
            persistent: true,
            manual_acks: true,
            filters: vec![all_requests_filter(&prefix)],
        },
    )?;
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = session.next() => event,
            () = &mut stop => break,
        };
        match event {
            Some(SessionEvent::Connected { .. }) => {
                info!(broker = %broker.url, "waiting for enrollment requests");
            }
            Some(SessionEvent::Publish(p)) => {
                let Some((claim, nonce)) = parse_request_topic(&prefix, &p.topic) else {
                    let _ = session.ack(&p).await;
                    continue;
                };
                let topics = enroll::EnrollTopics::new(&prefix, claim, nonce);
                let work = Work {
                    ca: &ca,
                    allowlist: &args.allowlist,
                    ledger_path: &ledger_path,
                    days: args.days,
                };
                let answer = work.answer(&mut ledger, claim, nonce, &p.payload);
                match &answer.outcome {
                    Outcome::Issued { .. } => {
                        info!(claim, gateway = %answer.gateway, "enrolled: certificate signed");
                    }
                    Outcome::Refused(reason) => {
                        warn!(claim, gateway = %answer.gateway, reason = reason.word(), "enrollment refused");
                    }
                }
                session
                    .publish(&topics.answer(), answer.encode())
                    .await
                    .map_err(|e| CommandError::Broker(format!("cannot answer: {e}")))?;
                let _ = session.ack(&p).await;
            }
            Some(SessionEvent::Lost(why)) => warn!(%why, "broker connection lost; reconnecting"),
            Some(SessionEvent::Fatal(e)) => return Err(CommandError::Broker(e)),
            None => return Err(CommandError::ConnectionEnded),
        }
    }
    session.close().await;
    Ok(())
}

fn read_allowlist(path: &std::path::Path) -> Result<Allowlist, CommandError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError::Usage(format!("--allowlist {}: {e}", path.display())))?;
    Allowlist::parse(&text)
        .map_err(|e| CommandError::Usage(format!("--allowlist {}: {e}", path.display())))
}

struct Work<'a> {
    ca: &'a DeviceCa,
    allowlist: &'a std::path::Path,
    ledger_path: &'a std::path::Path,
    days: u16,
}

impl Work<'_> {
    /// The answer to one request (signing and the ledger line included).
    fn answer(
        &self,
        ledger: &mut Ledger,
        claim: &str,
        nonce: &str,
        payload: &[u8],
    ) -> EnrollAnswer {
        let request = match EnrollRequest::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(claim, error = %e, "an enrollment request cannot be decoded");
                return EnrollAnswer::new("", Outcome::Refused(Refusal::BadRequest));
            }
        };
        let refuse = |reason| EnrollAnswer::new(&request.gateway, Outcome::Refused(reason));
        let Ok(csr) = DeviceCa::request_key(&request.csr_der) else {
            return refuse(Refusal::BadRequest);
        };
        let key_nonce = enroll::key_nonce(sign::raw_key(&csr));
        let allowlist = match read_allowlist(self.allowlist) {
            Ok(list) => list,
            Err(e) => {
                warn!(error = %e, "the allowlist cannot be read; refusing as hub_error");
                return refuse(Refusal::HubError);
            }
        };
        let asked = Asked {
            claim,
            topic_nonce: nonce,
            key_nonce: &key_nonce,
            gateway: &request.gateway,
        };
        if let Err(reason) = allowlist::decide(&allowlist, ledger, asked) {
            return refuse(reason);
        }
        let chain_pem = match self.ca.sign(
            &csr,
            &request.gateway,
            self.days,
            Timestamp::now(),
            serial(),
        ) {
            Ok(pem) => pem,
            Err(e) => {
                warn!(error = %e, "signing failed; refusing as hub_error");
                return refuse(Refusal::HubError);
            }
        };
        if !ledger.is_repeat(&request.gateway, &key_nonce) {
            if let Err(e) = append_line(
                self.ledger_path,
                &Ledger::line(&request.gateway, &key_nonce),
            ) {
                warn!(ledger = %self.ledger_path.display(), error = %e, "the ledger cannot be written; refusing as hub_error");
                return refuse(Refusal::HubError);
            }
            ledger.record(&request.gateway, &key_nonce);
        }
        EnrollAnswer::new(&request.gateway, Outcome::Issued { chain_pem })
    }
}

fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

fn serial() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // ring's system random; on the (theoretical) failure, a time-derived serial still differs.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        bytes = nanos.to_be_bytes();
    }
    bytes
}
