//! The listener and store in-process, with the hub unreachable (broker
//! down at start): what senders are answered, and what is kept.
//!
//! These tests need no broker: records simply stay queued. The promises
//! across a real broker are tested end to end in the `tests/` crate.

use std::net::SocketAddr;
use std::time::Duration;

use hl7edge::config::Config;
use hl7edge::daemon::{self, RunningAgent};
use hl7edge::store::StoreReader;
use hl7edge_protocol::hl7::ack::{AckCode, ack_code_of};
use hl7edge_protocol::hl7::mllp::{Decoder, Event, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn oru(control_id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
OBR|1|P1|F1|24323-8^Panel^LN|||20260102020000\r\
OBX|1|NM|2345-7^Glucose^LN||112|mg/dL|70-99|H|||F\r"
    )
    .into_bytes()
}

struct Fixture {
    agent: Option<RunningAgent>,
    addr: SocketAddr,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(extra_listener: &str, storage: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let toml = format!(
        r#"
[gateway]
org = "acme"
site = "clinic"
id = "gw-test"

[storage]
path = "{db}"
{storage}

[[listener]]
name = "lab"
bind = "127.0.0.1:0"
{extra_listener}

[hub]
url = "mqtt://127.0.0.1:9"
insecure_plaintext = true
"#,
        db = db.display()
    );
    let config = Config::from_toml_str(&toml, &dir.path().join("hl7edge.toml")).unwrap();
    let agent = daemon::start(config, "test").await.unwrap();
    let addr = agent.listener_addrs()[0].1;
    Fixture {
        agent: Some(agent),
        addr,
        db,
        _dir: dir,
    }
}

impl Fixture {
    /// Stops the agent; the reader comes with the temp dir that holds
    /// its database (dropping the dir deletes the file).
    async fn stop(mut self) -> (StoreReader, tempfile::TempDir) {
        self.agent.take().unwrap().shutdown().await.unwrap();
        (StoreReader::open(&self.db).unwrap(), self._dir)
    }
}

/// Sends one frame and reads one answer frame.
async fn exchange(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    encode(payload, &mut framed).unwrap();
    stream.write_all(&framed).await.unwrap();
    read_frame(stream).await.expect("an answer")
}

async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut decoder = Decoder::new(1 << 20);
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let mut input = &buf[..n];
        while let Some(ev) = decoder.decode(&mut input) {
            if let Event::Frame(f) = ev {
                return Some(f);
            }
        }
    }
}

#[tokio::test]
async fn a_stored_message_is_acknowledged_and_queued_while_the_hub_is_down() {
    let f = start(r#"allow = ["127.0.0.1"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    for i in 0..5 {
        let ack = ack_code_of(&exchange(&mut s, &oru(&format!("C{i}"))).await).unwrap();
        assert_eq!(ack.code, AckCode::ApplicationAccept);
        assert_eq!(ack.acknowledged_id, format!("C{i}"));
    }
    let (reader, _dir) = f.stop().await;
    let stats = reader.stats().unwrap();
    assert_eq!(
        stats.queue_depth, 5,
        "every ACKed message is queued on disk"
    );
}

#[tokio::test]
async fn a_resend_gets_the_stored_ack_and_is_stored_once() {
    let f = start(r#"allow = ["127.0.0.1"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let first = exchange(&mut s, &oru("R1")).await;
    let again = exchange(&mut s, &oru("R1")).await;
    assert_eq!(first, again, "the stored ACK is replayed byte for byte");
    let mut changed = oru("R1");
    changed.extend_from_slice(b"NTE|1||different content\r");
    let reused = ack_code_of(&exchange(&mut s, &changed).await).unwrap();
    assert_eq!(reused.code, AckCode::ApplicationAccept);
    let (reader, _dir) = f.stop().await;
    assert_eq!(
        reader.stats().unwrap().queue_depth,
        2,
        "a reused control id with new content is a new record"
    );
}

#[tokio::test]
async fn malformed_input_is_answered_ae_and_kept_in_quarantine() {
    let f = start(r#"allow = ["127.0.0.1"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let nak = ack_code_of(
        &exchange(
            &mut s,
            b"MSH|^~\\&|LAB|HOSP|GW|ORG|2026||ORU^R01||P|2.5\rPIDX|1\r",
        )
        .await,
    )
    .unwrap();
    assert_eq!(nak.code, AckCode::ApplicationError);
    assert!(
        nak.error_codes.contains(&101),
        "missing MSH-10 is named: {:?}",
        nak.error_codes
    );
    let (reader, _dir) = f.stop().await;
    let q = reader.quarantine_list(10).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        reader.stats().unwrap().queue_depth,
        0,
        "nothing stored as valid"
    );
}

#[tokio::test]
async fn garbage_between_frames_is_skipped_and_the_next_frame_answered() {
    let f = start(r#"allow = ["127.0.0.1"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let ack = ack_code_of(&exchange(&mut s, &oru("G1")).await).unwrap();
    assert_eq!(ack.code, AckCode::ApplicationAccept);
    drop(f.stop().await);
}

#[tokio::test]
async fn an_oversize_frame_is_refused_without_buffering_it() {
    let f = start("allow = [\"127.0.0.1\"]\nmax_frame = \"1 KiB\"", "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut big = oru("BIG");
    big.extend(std::iter::repeat_n(b'A', 512 * 1024));
    let nak = ack_code_of(&exchange(&mut s, &big).await).unwrap();
    assert_eq!(nak.code, AckCode::ApplicationError);
    assert_eq!(
        nak.acknowledged_id, "BIG",
        "the NAK is built from the frame's first bytes"
    );
    let ok = ack_code_of(&exchange(&mut s, &oru("SMALL")).await).unwrap();
    assert_eq!(
        ok.code,
        AckCode::ApplicationAccept,
        "the connection stays usable"
    );
    drop(f.stop().await);
}

#[tokio::test]
async fn a_source_outside_the_allow_list_is_refused_before_reading() {
    let f = start(r#"allow = ["10.0.0.0/8"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut framed = Vec::new();
    encode(&oru("X1"), &mut framed).unwrap();
    let _ = s.write_all(&framed).await;
    assert_eq!(read_frame(&mut s).await, None, "closed without an answer");
    let (reader, _dir) = f.stop().await;
    assert_eq!(reader.stats().unwrap().queue_depth, 0);
}

#[tokio::test]
async fn past_the_size_limit_messages_get_ar_and_nothing_is_stored() {
    let f = start(r#"allow = ["127.0.0.1"]"#, r#"max_bytes = "1 MiB""#).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut padded = oru("P0");
    padded.extend_from_slice(format!("NTE|1||{}\r", "x".repeat(60_000)).as_bytes());
    let mut codes = Vec::new();
    for i in 0..40 {
        let msg = String::from_utf8(padded.clone())
            .unwrap()
            .replace("|P0|", &format!("|P{i}|"));
        codes.push(
            ack_code_of(&exchange(&mut s, msg.as_bytes()).await)
                .unwrap()
                .code,
        );
    }
    let accepted = codes
        .iter()
        .filter(|c| **c == AckCode::ApplicationAccept)
        .count();
    assert!(codes.contains(&AckCode::ApplicationReject), "{codes:?}");
    assert!(accepted > 0 && accepted < 40, "{codes:?}");
    let (reader, _dir) = f.stop().await;
    assert_eq!(
        reader.stats().unwrap().queue_depth,
        accepted as u64,
        "exactly the AA'd messages are stored"
    );
}

#[tokio::test]
async fn a_slow_sender_is_cut_off_by_the_idle_timeout() {
    let f = start("allow = [\"127.0.0.1\"]\nidle_timeout = \"1s\"", "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    s.write_all(b"\x0bMSH|^~\\&|").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(f.stop().await);
}

#[tokio::test]
async fn a_sender_streaming_frames_back_to_back_is_not_cut_off_by_the_idle_timeout() {
    let f = start("allow = [\"127.0.0.1\"]\nidle_timeout = \"1s\"", "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let frames: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            let mut framed = Vec::new();
            encode(&oru(&format!("S{i}")), &mut framed).unwrap();
            framed
        })
        .collect();
    let stream: Vec<u8> = frames.concat();
    // Every write ends partway into the next frame, so a frame is always in
    // progress; writes come 250 ms apart for 3 s, three idle timeouts.
    let cuts: Vec<usize> = (1..12)
        .map(|i| frames[..i].iter().map(Vec::len).sum::<usize>() + 10)
        .chain([stream.len()])
        .collect();
    let mut from = 0;
    let mut answers = 0;
    for to in cuts {
        s.write_all(&stream[from..to]).await.unwrap();
        from = to;
        answers += 1;
        let ack = read_frame(&mut s)
            .await
            .expect("an ACK, connection still open");
        assert_eq!(ack_code_of(&ack).unwrap().code, AckCode::ApplicationAccept);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(answers, 12);
    drop(f.stop().await);
}

#[tokio::test]
async fn a_sender_that_never_reads_its_acks_loses_the_connection() {
    let f = start("allow = [\"127.0.0.1\"]\nidle_timeout = \"1s\"", "").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let s = socket.connect(f.addr).await.unwrap();
    // The read half is kept open and never read.
    let (_rx, mut tx) = s.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..1_000_000 {
            let mut framed = Vec::new();
            encode(&oru(&format!("N{i}")), &mut framed).unwrap();
            if tx.write_all(&framed).await.is_err() {
                return Some(i);
            }
        }
        None
    });
    // Once the ACKs fill the socket buffers the agent's answer is stuck,
    // it stops reading, and the sender's writes block too; only the agent
    // closing the connection ends that.
    let ended = tokio::time::timeout(Duration::from_secs(60), writer).await;
    let sent = ended
        .expect("the agent kept a connection whose sender never reads")
        .unwrap();
    assert!(sent.is_some(), "the connection was closed under the sender");
    drop(f.stop().await);
}

/// `oru` with MSH-15 and MSH-16 set to `NE`: "never acknowledge", as some
/// senders copy it from a message profile while still waiting for an
/// answer.
fn oru_asking_for_no_ack(control_id: &str) -> Vec<u8> {
    let text = String::from_utf8(oru(control_id)).unwrap();
    text.replacen("|P|2.5.1\r", "|P|2.5.1|||NE|NE\r", 1)
        .into_bytes()
}

#[tokio::test]
async fn by_default_a_message_that_asks_for_no_ack_is_answered_and_counted() {
    let f = start(r#"allow = ["127.0.0.1"]"#, "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let answer = exchange(&mut s, &oru_asking_for_no_ack("NE1")).await;
    let ack = ack_code_of(&answer).unwrap();
    assert_eq!(
        (ack.code, ack.acknowledged_id.as_str()),
        (AckCode::ApplicationAccept, "NE1"),
        "NE/NE still gets the original-mode AA"
    );
    let ack = ack_code_of(&exchange(&mut s, &oru("AL1")).await).unwrap();
    assert_eq!(ack.acknowledged_id, "AL1");
    let (reader, _dir) = f.stop().await;
    let stats = reader.stats().unwrap();
    assert_eq!(stats.queue_depth, 2);
    let lab = &stats.sources[0];
    assert_eq!((lab.received, lab.no_ack_requested), (2, 1));
}

#[tokio::test]
async fn as_requested_a_message_that_asks_for_no_ack_gets_none_and_the_next_is_answered() {
    let f = start("allow = [\"127.0.0.1\"]\nack_mode = \"as_requested\"", "").await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut framed = Vec::new();
    encode(&oru_asking_for_no_ack("NE1"), &mut framed).unwrap();
    s.write_all(&framed).await.unwrap();
    // The next message's answer is the first frame on the wire: NE1 got none.
    let ack = ack_code_of(&exchange(&mut s, &oru("AL1")).await).unwrap();
    assert_eq!(ack.acknowledged_id, "AL1");
    let (reader, _dir) = f.stop().await;
    let stats = reader.stats().unwrap();
    assert_eq!(
        stats.queue_depth, 2,
        "the NE message is stored all the same"
    );
    assert_eq!(stats.sources[0].no_ack_requested, 1);
}
