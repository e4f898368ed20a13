//! `hl7edge send`: sends HL7 messages over MLLP the way a lab system does and says what each
//! one was answered. For a technician checking a listener end to end (this gateway's or any
//! other MLLP receiver), and for trying the gateway out.
//!
//! Invariants:
//! - One connection, one message at a time: the next message is sent only after the answer to
//!   the previous one (or its timeout), as the MLLP standard's senders do.
//! - How long to wait is decided by [`Expect`], a pure function of the message's MSH-15/16 and
//!   the answers so far: an application ACK (AA/AE/AR) or a commit error (CE/CR) ends the wait;
//!   a commit accept (CA) ends it only when MSH-16 asks for no application ACK on success; an
//!   incoming ACK is not waited for at all (an ACK is never acknowledged).
//! - Output names files, message numbers, control ids, ACK codes and HL7 table 0357 error codes:
//!   no field values.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hl7edge_protocol::hl7::ack::{
    AckCode, AckHeader, AckMode, AckSummary, Outcome, ack_code_of, plan_acks,
};
use hl7edge_protocol::hl7::batch::messages_in_file;
use hl7edge_protocol::hl7::mllp::{self, Decoder, Event};

/// The largest answer frame read (an ACK with ten ERR segments is a few KiB).
const MAX_ANSWER: usize = 1 << 20;

/// Arguments of `hl7edge send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The MLLP receiver, HOST:PORT (e.g. 127.0.0.1:2575).
    #[arg(long)]
    pub to: String,
    /// Files with HL7 messages (several per file, batches and MLLP captures are fine).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How long to wait for each answer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What the sender still waits for after the answers read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing more: the exchange is complete.
    Done,
    /// Another acknowledgement.
    More,
}

/// Whether to wait for another answer to a message with `header`, given the answers so far.
pub fn expect(header: &AckHeader, answers: &[AckSummary]) -> Expect {
    if header.is_acknowledgment() {
        return Expect::Done;
    }
    let Some(last) = answers.last() else {
        return Expect::More;
    };
    match last.code {
        AckCode::CommitAccept => {
            let accepted = Outcome::Accepted { issues: Vec::new() };
            let application_asked = plan_acks(header, &accepted, AckMode::AsRequested)
                .contains(&AckCode::ApplicationAccept);
            if application_asked {
                Expect::More
            } else {
                Expect::Done
            }
        }
        _ => Expect::Done,
    }
}

/// Runs `hl7edge send`; exit code 0 when every message was accepted (AA or CA), 1 otherwise.
pub fn run(args: &SendArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.to)?;
    let mut stream = TcpStream::connect_timeout(&addr, args.timeout).with_context(|| {
        format!("cannot connect to {addr}: is the receiver running and listening there?")
    })?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut decoder = Decoder::new(MAX_ANSWER);
    let (mut sent, mut accepted) = (0usize, 0usize);
    for path in &args.files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (i, message) in messages_in_file(&bytes).iter().enumerate() {
            let label = format!("{}#{}", path.display(), i + 1);
            let answers = exchange(&mut stream, &mut decoder, message, args.timeout)?;
            sent += 1;
            accepted += usize::from(is_accepted(&answers));
            println!("{}", describe(&label, message, &answers));
        }
    }
    println!("{sent} sent, {accepted} accepted, {} not", sent - accepted);
    Ok(if accepted == sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn resolve(to: &str) -> anyhow::Result<SocketAddr> {
    to.to_socket_addrs()
        .with_context(|| format!("--to {to:?} is not HOST:PORT"))?
        .next()
        .with_context(|| format!("--to {to:?} resolves to no address"))
}

/// Sends one framed message and reads its answers until [`expect`] says done or `timeout`
/// passes with nothing more.
fn exchange(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    message: &[u8],
    timeout: Duration,
) -> anyhow::Result<Vec<AckSummary>> {
    let header = AckHeader::scrape(message);
    let mut framed = Vec::with_capacity(message.len() + 3);
    mllp::encode(message, &mut framed).context("the message contains an MLLP framing byte")?;
    stream.write_all(&framed).context("sending")?;
    let mut answers = Vec::new();
    let mut deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while expect(&header, &answers) == Expect::More && Instant::now() < deadline {
        let n = match stream.read(&mut buf) {
            Ok(0) => anyhow::bail!("the receiver closed the connection"),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e).context("reading the answer"),
        };
        let mut input = &buf[..n];
        while let Some(event) = decoder.decode(&mut input) {
            if let Event::Frame(frame) = event
                && let Some(summary) = ack_code_of(&frame)
            {
                answers.push(summary);
                deadline = Instant::now() + timeout;
            }
        }
    }
    Ok(answers)
}

fn is_accepted(answers: &[AckSummary]) -> bool {
    !answers.is_empty()
        && answers
            .iter()
            .all(|a| matches!(a.code, AckCode::ApplicationAccept | AckCode::CommitAccept))
}

/// One line for one message: where it came from, its control id and how it was answered.
fn describe(label: &str, message: &[u8], answers: &[AckSummary]) -> String {
    let header = AckHeader::scrape(message);
    let control_id = String::from_utf8_lossy(&header.control_id).into_owned();
    let control_id = if control_id.is_empty() {
        "-".to_owned()
    } else {
        control_id
    };
    let answered = if header.is_acknowledgment() {
        "an ACK: not answered by rule".to_owned()
    } else if answers.is_empty() {
        "no answer".to_owned()
    } else {
        answers
            .iter()
            .map(|a| {
                if a.error_codes.is_empty() {
                    a.code.to_string()
                } else {
                    let codes: Vec<String> = a.error_codes.iter().map(u16::to_string).collect();
                    format!("{} (error {})", a.code, codes.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(" then ")
    };
    format!("{label}  {control_id}  {answered}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &str = "MSH|^~\\&|LAB|HOSP|GW|ORG|20240102030405||ORU^R01|C1|P|2.5.1";

    fn answer(code: AckCode) -> AckSummary {
        AckSummary {
            code,
            acknowledged_id: "C1".into(),
            control_id: "A1".into(),
            error_codes: Vec::new(),
        }
    }

    fn header(text: &str) -> AckHeader {
        AckHeader::scrape(text.as_bytes())
    }

    #[test]
    fn an_original_mode_message_is_done_after_one_answer() {
        let h = header(ORU);
        assert_eq!(expect(&h, &[]), Expect::More);
        assert_eq!(
            expect(&h, &[answer(AckCode::ApplicationAccept)]),
            Expect::Done
        );
        assert_eq!(
            expect(&h, &[answer(AckCode::ApplicationError)]),
            Expect::Done
        );
    }

    #[test]
    fn a_commit_accept_is_followed_by_the_application_ack_msh_16_asks_for() {
        let al = header(&format!("{ORU}|||AL|AL"));
        assert_eq!(expect(&al, &[answer(AckCode::CommitAccept)]), Expect::More);
        let ne = header(&format!("{ORU}|||AL|NE"));
        assert_eq!(expect(&ne, &[answer(AckCode::CommitAccept)]), Expect::Done);
        assert_eq!(expect(&al, &[answer(AckCode::CommitError)]), Expect::Done);
    }

    #[test]
    fn an_incoming_ack_is_not_waited_for() {
        let ack = header("MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102||ACK^R01|A1|P|2.5.1");
        assert_eq!(expect(&ack, &[]), Expect::Done);
    }

    #[test]
    fn the_summary_names_codes_and_errors_but_no_values() {
        let mut ae = answer(AckCode::ApplicationError);
        ae.error_codes = vec![101];
        let line = describe("f.hl7#1", ORU.as_bytes(), &[ae]);
        assert_eq!(line, "f.hl7#1  C1  AE (error 101)");
        assert!(is_accepted(&[
            answer(AckCode::CommitAccept),
            answer(AckCode::ApplicationAccept)
        ]));
        assert!(!is_accepted(&[]));
    }
}
