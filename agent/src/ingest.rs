//! What the gateway does with one received frame, before any IO: parse,
//! validate, normalize, encode, and prepare the ACKs to send once the store
//! has committed (or the NAK for quarantine).
//!
//! Pure apart from the clock and id values passed in, so every decision the
//! listener takes is unit-tested here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hl7edge_protocol::hl7::ack::{self, AckHeader, AckMode, Outcome, erl};
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::hl7::{ErrorCode, Issue, Message, Severity};
use hl7edge_protocol::hl7::{batch, mllp};
use hl7edge_protocol::normalize::mapping::{MappingTable, UnmappedCounter};
use hl7edge_protocol::normalize::{self, Context};
use hl7edge_protocol::wire::{self, StoredRecord};
use sha2::{Digest, Sha256};

use crate::store::{NewMessage, Quarantined};
use crate::telemetry::drift::DriftWatch;

/// One interface (listener) as the ingest step sees it.
#[derive(Debug)]
pub struct Interface {
    /// Listener name (the record's source).
    pub name: String,
    /// ACK mode from the config.
    pub ack_mode: AckMode,
    /// Site time zone for timestamps without offset.
    pub time_zone: jiff::tz::TimeZone,
    /// The interface's mapping table (empty when none is configured); a signed push replaces
    /// it between two messages.
    pub mapping: MappingSlot,
    /// Unmapped-code counts, for telemetry.
    pub unmapped: Mutex<UnmappedCounter>,
    /// What this interface sends and how that changed, for telemetry.
    pub drift: Mutex<DriftWatch>,
    /// What the hub takes in one payload, for the size check.
    pub payload: PayloadLimit,
    /// A message with a code the mapping table does not map goes to quarantine (AE, ERR 103)
    /// instead of being stored (`unmapped = "quarantine"`).
    pub quarantine_unmapped: bool,
}

/// The mapping table an interface codes with. Each message takes the table current when its
/// processing starts and keeps it to the end, so one record is coded by one table and carries
/// that table's version; a replacement (`crate::push`) takes effect from the next message.
#[derive(Debug)]
pub struct MappingSlot(std::sync::RwLock<std::sync::Arc<MappingTable>>);

impl MappingSlot {
    /// A slot holding `table`.
    pub fn new(table: MappingTable) -> MappingSlot {
        MappingSlot(std::sync::RwLock::new(std::sync::Arc::new(table)))
    }

    /// The table messages starting now are coded with.
    pub fn current(&self) -> std::sync::Arc<MappingTable> {
        match self.0.read() {
            Ok(t) => std::sync::Arc::clone(&t),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the table for every message that starts after this call.
    pub fn replace(&self, table: MappingTable) {
        let table = std::sync::Arc::new(table);
        match self.0.write() {
            Ok(mut t) => *t = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

/// The hub's payload limit as one interface meets it: a record whose
/// envelope alone (with the raw message, when the interface forwards it)
/// is over `max_payload` could never be sent, so it is refused at ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadLimit {
    /// `hub.max_payload`.
    pub max_payload: usize,
    /// `org/site/id`, written into every envelope.
    pub gateway: String,
    /// The interface forwards the raw HL7 with each record.
    pub include_raw: bool,
}

impl PayloadLimit {
    /// Bytes of the one-record envelope for a stored record of
    /// `record_len` bytes (and `raw_len` raw bytes) received at
    /// `received_at_ms` on `source`: what the forwarder would publish, at
    /// most (the record's sequence number, assigned at commit, is counted
    /// at its longest).
    pub fn needs(
        &self,
        source: &str,
        received_at_ms: i64,
        record_len: usize,
        raw_len: usize,
    ) -> usize {
        let raw = self.include_raw.then_some(raw_len);
        let entry = wire::entry_len(u64::MAX, received_at_ms, record_len, raw);
        wire::envelope_len(&self.gateway, source, 1, entry)
    }
}

/// The clock and id source of one processing step (sans-IO).
#[derive(Debug, Clone)]
pub struct Stamp {
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// Now as an HL7 DTM for the ACK's MSH-7.
    pub dtm: String,
}

impl Stamp {
    /// The current time.
    pub fn now() -> Stamp {
        let now = jiff::Timestamp::now();
        Stamp {
            now_ms: now.as_millisecond(),
            dtm: now.strftime("%Y%m%d%H%M%S%z").to_string(),
        }
    }
}

/// Unique ACK control ids (MSH-10 of every ACK): milliseconds since the
/// epoch and a counter, in hex, at most 20 characters (the v2.3 limit).
#[derive(Debug, Default)]
pub struct AckIds {
    counter: AtomicU64,
}

impl AckIds {
    /// The next id.
    pub fn next(&self, now_ms: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) & 0xFFFF;
        format!("HE{:X}{:04X}", now_ms.max(0), n)
    }
}

/// What to do with a frame.
#[derive(Debug)]
pub enum Prepared {
    /// Store it; `message.ack` holds the framed ACK(s) to send after commit.
    Store {
        /// The row to insert.
        message: Box<NewMessage>,
        /// Warnings the record carries (for logs and counters).
        warnings: usize,
    },
    /// Cannot be accepted: keep it in quarantine, then send `entry.ack`.
    Quarantine(Box<Quarantined>),
}

impl Prepared {
    /// True when the frame is itself an acknowledgment (MSH-9.1 `ACK`): it
    /// is kept like any message, but never answered (no ACK loops), so its
    /// ACK bytes are empty.
    pub fn is_incoming_ack(&self) -> bool {
        match self {
            Prepared::Store { message, .. } => {
                message.message_type == "ACK" || message.message_type.starts_with("ACK^")
            }
            Prepared::Quarantine(entry) => AckHeader::scrape(&entry.raw).is_acknowledgment(),
        }
    }

    /// True when the message's MSH-15/MSH-16 asked for no acknowledgement.
    pub fn no_ack_requested(&self) -> bool {
        match self {
            Prepared::Store { message, .. } => message.no_ack_requested,
            Prepared::Quarantine(entry) => entry.no_ack_requested,
        }
    }
}

/// Parses, validates and normalizes one frame.
pub fn prepare(iface: &Interface, raw: &[u8], peer: &str, stamp: &Stamp, ids: &AckIds) -> Prepared {
    let msg = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => {
            let refused = batch::refuse_unparsed(raw, &e);
            return quarantine(
                iface,
                raw,
                peer,
                stamp,
                ids,
                Answering::Unparsed(&refused.header),
                vec![refused.issue],
            );
        }
    };
    let refuse = |issues| {
        quarantine(
            iface,
            raw,
            peer,
            stamp,
            ids,
            Answering::Parsed(&msg),
            issues,
        )
    };
    let validation = Validation::of(&msg);
    if !validation.is_acceptable() {
        return refuse(validation.issues);
    }
    let mapping = iface.mapping.current();
    let ctx = Context {
        time_zone: &iface.time_zone,
        mapping: &mapping,
    };
    let normalized = normalize::normalize(&msg, validation.issues.clone(), &ctx);
    count_unmapped(iface, &normalized);
    if iface.quarantine_unmapped
        && let Some((system, code)) = normalized.unmapped.first()
    {
        let issue = Issue::error(
            ErrorCode::TableValueNotFound,
            hl7edge_protocol::hl7::Location::default(),
            format!(
                "code {code} of system {} is not in the mapping table {} ({} unmapped code(s)); \
                 the listener quarantines unmapped codes",
                system.hl7_code(),
                mapping.version(),
                normalized.unmapped.len()
            ),
        );
        return refuse(vec![issue]);
    }
    let stored = StoredRecord {
        mapping_version: mapping.version().clone(),
        record: normalized.record,
    };
    let record = match stored.encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            let issue = Issue::error(
                ErrorCode::InternalError,
                hl7edge_protocol::hl7::Location::default(),
                format!("the normalized record could not be encoded: {e}"),
            );
            return refuse(vec![issue]);
        }
    };
    let needs = iface
        .payload
        .needs(&iface.name, stamp.now_ms, record.len(), raw.len());
    if needs > iface.payload.max_payload {
        return refuse(vec![too_big_for_the_hub(needs, iface.payload.max_payload)]);
    }
    let warnings = validation
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Warning)
        .count();
    observe_drift(iface, &msg);
    let header = AckHeader::from_message(&msg);
    let outcome = Outcome::Accepted {
        issues: erl::by_occurrence(&msg, validation.issues),
    };
    let message_type = msg.message_type();
    Prepared::Store {
        message: Box::new(NewMessage {
            source: iface.name.clone(),
            control_id: msg.control_id().map(|c| c.into_owned()).unwrap_or_default(),
            content_hash: content_hash(&msg, raw),
            message_type: if message_type.event.is_empty() {
                message_type.code.clone()
            } else {
                format!("{}^{}", message_type.code, message_type.event)
            },
            received_at_ms: stamp.now_ms,
            // Patient data kept only where it is needed: the raw message is stored with the
            // record only when it will be forwarded with it.
            raw: iface.payload.include_raw.then(|| raw.to_vec()),
            record,
            no_ack_requested: ack::requests_no_ack(&header, &outcome),
            ack: framed_acks(&header, &outcome, iface.ack_mode, stamp, ids),
        }),
        warnings,
    }
}

/// The refusal of a message whose record can never be sent: AE, not AR,
/// because sending it again unchanged can never succeed (AR here means
/// "not stored, try again later", and senders resend an AR, holding up
/// their queue); 207 because HL7 table 0357 has no code for "too large"
/// and the limit is this application's, not an error in the content (the
/// listener's `max_frame` refusal is answered the same way). The raw bytes
/// go to quarantine, from where a replay stores them once the limit is
/// raised.
fn too_big_for_the_hub(needs: usize, max_payload: usize) -> Issue {
    Issue::error(
        ErrorCode::InternalError,
        hl7edge_protocol::hl7::Location::default(),
        format!(
            "the record made from this message needs {needs} bytes in one message to the hub, \
             more than it accepts (hub.max_payload {max_payload} bytes); not stored, kept in \
             quarantine"
        ),
    )
}

/// The hash that tells a resend from a new message with the same control
/// id: every byte of the frame except MSH-7, the message time, which some
/// interface engines stamp again when they resend.
fn content_hash(msg: &Message<'_>, raw: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    match msh7_span(msg, raw) {
        Some((start, end)) => {
            hasher.update(raw.get(..start).unwrap_or_default());
            hasher.update(raw.get(end..).unwrap_or_default());
        }
        None => hasher.update(raw),
    }
    hasher.finalize().into()
}

/// Where MSH-7's bytes are in `raw`, when the parsed message borrows them
/// from it.
fn msh7_span(msg: &Message<'_>, raw: &[u8]) -> Option<(usize, usize)> {
    let field = msg.msh().field(7)?.raw();
    let start = (field.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let end = start.checked_add(field.len())?;
    (end <= raw.len()).then_some((start, end))
}

/// What a NAK answers.
enum Answering<'a, 'm> {
    /// A parsed message: its header, and ERR numbering segments by
    /// occurrence (see [`erl`]).
    Parsed(&'a Message<'m>),
    /// Bytes that did not parse: the header read from them.
    Unparsed(&'a AckHeader),
}

/// Keeps `raw` in quarantine with `issues` and the NAK for them.
fn quarantine(
    iface: &Interface,
    raw: &[u8],
    peer: &str,
    stamp: &Stamp,
    ids: &AckIds,
    answering: Answering<'_, '_>,
    issues: Vec<Issue>,
) -> Prepared {
    let first = issues
        .iter()
        .find(|i| i.severity == Severity::Error)
        .or(issues.first());
    let error = first.map(ToString::to_string).unwrap_or_default();
    let error_code = first.map_or(207, |i| i.code.code());
    let (header, issues) = match answering {
        Answering::Parsed(msg) => (
            AckHeader::from_message(msg),
            erl::by_occurrence(msg, issues),
        ),
        Answering::Unparsed(header) => (header.clone(), issues),
    };
    let outcome = Outcome::Error { issues };
    Prepared::Quarantine(Box::new(Quarantined {
        source: iface.name.clone(),
        peer: peer.to_string(),
        received_at_ms: stamp.now_ms,
        raw: raw.to_vec(),
        error,
        error_code,
        no_ack_requested: ack::requests_no_ack(&header, &outcome),
        ack: framed_acks(&header, &outcome, iface.ack_mode, stamp, ids),
    }))
}

/// The framed AR/CR for a message that could not be stored through no
/// fault of its own (store full, shutting down): the sender keeps it.
pub fn rejection(
    iface: &Interface,
    raw_head: &[u8],
    code: ErrorCode,
    reason: &str,
    stamp: &Stamp,
    ids: &AckIds,
) -> Vec<u8> {
    let outcome = Outcome::Rejected {
        code,
        reason: reason.to_string(),
    };
    framed_acks(
        &AckHeader::scrape(raw_head),
        &outcome,
        iface.ack_mode,
        stamp,
        ids,
    )
}

/// The framed AE for a frame larger than the listener accepts; built from
/// its first bytes, which hold the MSH.
pub fn oversize_nak(
    iface: &Interface,
    head: &[u8],
    limit: usize,
    stamp: &Stamp,
    ids: &AckIds,
) -> Vec<u8> {
    let issue = Issue::error(
        ErrorCode::InternalError,
        hl7edge_protocol::hl7::Location::default(),
        format!("message larger than this interface accepts ({limit} bytes); not stored"),
    );
    let outcome = Outcome::Error {
        issues: vec![issue],
    };
    framed_acks(
        &AckHeader::scrape(head),
        &outcome,
        iface.ack_mode,
        stamp,
        ids,
    )
}

/// Builds every ACK the sender asked for and frames each for MLLP.
fn framed_acks(
    header: &AckHeader,
    outcome: &Outcome,
    mode: AckMode,
    stamp: &Stamp,
    ids: &AckIds,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, ack) in ack::build_acks(header, outcome, mode, &stamp.dtm, || ids.next(stamp.now_ms)) {
        // ACKs are built from escaped text and echoed header bytes; a
        // framing byte could only come from a hostile MSH: drop that ACK
        // (the sender times out and resends) rather than corrupt the stream.
        if mllp::encode(&ack, &mut out).is_err() {
            tracing::warn!("an ACK contained an MLLP framing byte and was not sent");
        }
    }
    out
}

/// Shows an accepted message to the interface's drift profile (resends
/// included: they add no new facts).
fn observe_drift(iface: &Interface, msg: &Message<'_>) {
    // A poisoned lock means a panic elsewhere; drift is then not tracked.
    if let Ok(mut watch) = iface.drift.lock() {
        watch.observe(&iface.name, msg);
    }
}

/// Counts the message's unmapped codes for telemetry: identifiers by name, coded answers by
/// number only (they are patient data); and its results in a unit the mapping table does not
/// expect (also logged: counts only).
fn count_unmapped(iface: &Interface, normalized: &normalize::Normalized) {
    let unit_mismatches = normalized.unit_mismatches;
    if unit_mismatches > 0 {
        tracing::warn!(
            interface = %iface.name,
            results = unit_mismatches,
            "results in a unit not commensurable with the unit the mapping table expects; not converted, flagged on the record"
        );
    }
    let (unmapped, answers) = (&normalized.unmapped, normalized.unmapped_answers);
    let Ok(mut counter) = iface.unmapped.lock() else {
        return;
    };
    counter.record_unit_mismatches(unit_mismatches);
    // Every coded element counts, once per occurrence: those with a standard code (sent in a
    // standard system or mapped) as mapped, the rest as unmapped: the named codes once per
    // message, coded answers by number only, and the further occurrences of named codes.
    let tally = normalized.coded;
    counter.record_standard(tally.standard);
    let answers = u64::try_from(answers).unwrap_or(u64::MAX);
    counter.record_unnamed(answers);
    for (system, code) in unmapped {
        counter.record_unmapped(&system.hl7_code(), code);
    }
    let named = u64::try_from(unmapped.len()).unwrap_or(u64::MAX);
    counter.record_repeats(tally.unmapped.saturating_sub(answers).saturating_sub(named));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An HL7 batch of one ORU in one frame; its batch control id is
    /// `BATCH1`, the message's `B1`.
    pub(crate) const BATCH_FRAME: &[u8] = b"FHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||FILE1\r\
BHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||BATCH1\r\
MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|B1|P|2.3.1\rPID|1||1^^^H^MR||A^B\r\
BTS|1\rFTS|1\r";

    fn interface() -> Interface {
        Interface {
            name: "lab".to_string(),
            ack_mode: AckMode::Always,
            time_zone: jiff::tz::TimeZone::UTC,
            mapping: MappingSlot::new(MappingTable::empty()),
            unmapped: Mutex::default(),
            drift: Mutex::default(),
            payload: PayloadLimit {
                max_payload: 128_000,
                gateway: "acme/clinic-12/gw-1".to_string(),
                include_raw: false,
            },
            quarantine_unmapped: false,
        }
    }

    fn prepare_frame(raw: &[u8]) -> Prepared {
        let stamp = Stamp {
            now_ms: 1_700_000_000_000,
            dtm: "20231114221320+0000".to_string(),
        };
        prepare(
            &interface(),
            raw,
            "127.0.0.1:5000",
            &stamp,
            &AckIds::default(),
        )
    }

    /// The unframed ACK segments, as text.
    fn answer(framed: &[u8]) -> String {
        String::from_utf8_lossy(framed).replace(['\x0b', '\x1c'], "")
    }

    fn hash_of(raw: &str) -> [u8; 32] {
        let Prepared::Store { message, .. } = prepare_frame(raw.as_bytes()) else {
            panic!("stored");
        };
        message.content_hash
    }

    #[test]
    fn a_resend_stamped_with_a_new_message_time_hashes_like_the_first_send() {
        let first = "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|R1|P|2.5.1\r\
                     PID|1||1^^^H^MR\rOBR|1\rOBX|1|NM|GLU^Glucose^L||5.4|mmol/L\r";
        let restamped = first.replace("20240102123045", "20240102123112");
        let other_value = first.replace("5.4", "5.5");
        let other_sender = first.replace("|LIS|", "|LIS2|");
        assert_eq!(hash_of(first), hash_of(&restamped));
        assert_ne!(hash_of(first), hash_of(&other_value));
        assert_ne!(hash_of(first), hash_of(&other_sender));
        let msg = Message::parse(first.as_bytes()).unwrap();
        let (start, end) = msh7_span(&msg, first.as_bytes()).unwrap();
        assert_eq!(&first[start..end], "20240102123045");
    }

    #[test]
    fn a_listener_that_quarantines_unmapped_codes_answers_ae_103_until_its_table_maps_the_code() {
        let raw = b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|U1|P|2.5.1\r\
PID|1||1^^^H^MR\rOBR|1\rOBX|1|NM|GLU^Glucose^99LAB||5.4|mmol/L|||||F\r";
        let stamp = Stamp {
            now_ms: 1_700_000_000_000,
            dtm: "20231114221320+0000".to_string(),
        };
        let strict = Interface {
            quarantine_unmapped: true,
            ..interface()
        };
        let at = |iface: &Interface| prepare(iface, raw, "peer", &stamp, &AckIds::default());
        let Prepared::Quarantine(entry) = at(&strict) else {
            panic!("an unmapped code is quarantined");
        };
        assert_eq!(entry.error_code, 103, "{}", entry.error);
        assert!(entry.error.contains("GLU"), "{}", entry.error);
        assert!(
            answer(&entry.ack).contains("|103^"),
            "{}",
            answer(&entry.ack)
        );
        assert!(
            matches!(at(&interface()), Prepared::Store { .. }),
            "accepted by default"
        );
        let table = MappingTable::parse(
            "kind,local_system,local_code,target_system,target_code\ncode,99LAB,GLU,LN,2345-7\n",
        )
        .unwrap();
        strict.mapping.replace(table);
        assert!(matches!(at(&strict), Prepared::Store { .. }), "mapped now");
    }

    #[test]
    fn an_incoming_ack_is_stored_but_never_answered() {
        let raw =
            b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ACK^R01^ACK|A1|P|2.5.1\rMSA|AA|MSG001\r";
        let prepared = prepare_frame(raw);
        assert!(prepared.is_incoming_ack());
        let Prepared::Store { message, .. } = prepared else {
            panic!("an ACK is kept as a generic record");
        };
        assert_eq!(message.control_id, "A1");
        assert!(message.ack.is_empty(), "{}", answer(&message.ack));
        let broken =
            b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ACK|A2|P|2.5.1\rMSA|AA|M\rPIDX|1\r";
        let prepared = prepare_frame(broken);
        assert!(prepared.is_incoming_ack());
        let Prepared::Quarantine(entry) = prepared else {
            panic!("a bad segment id is still refused");
        };
        assert!(entry.ack.is_empty(), "{}", answer(&entry.ack));
        assert!(!prepare_frame(b"MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5.1\r").is_incoming_ack());
    }

    #[test]
    fn err_segments_number_a_segment_by_its_occurrence_among_its_type() {
        let raw = b"MSH|^~\\&|LAB|HOSP|GW|CLINIC|20240102123045||ORU^R01|C1|P|2.5.1\r\
PID|1||1^^^H^MR||A^B\rOBR|1||F|X^Y^L\rOBX|1|NM|1^a^LN||1|mmol/L|||||F\r\
OBX|2|NM|1^a^LN||x|mmol/L|||||F\r";
        let Prepared::Store { message, .. } = prepare_frame(raw) else {
            panic!("a warning does not refuse the message");
        };
        let ack = answer(&message.ack);
        assert!(ack.contains("ERR||OBX^2^5^1|102^"), "the second OBX: {ack}");
        let refused = b"MSH|^~\\&|LAB|HOSP|GW|CLINIC|20240102123045||ORU^R01|C2|P|2.5.1\r\
PID|1||1^^^H^MR||A^B\rOBR|1||F|X^Y^L\rPID|2||2^^^H^MR||C^D\r";
        let Prepared::Quarantine(entry) = prepare_frame(refused) else {
            panic!("two patients are refused");
        };
        let nak = answer(&entry.ack);
        assert!(nak.contains("ERR||PID^2|207^"), "the second PID: {nak}");
        assert!(entry.error.contains("PID(segment 4)"), "{}", entry.error);
    }

    #[test]
    fn the_raw_message_is_stored_only_when_the_interface_forwards_it() {
        let raw = b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|R9|P|2.5.1\r\
PID|1||1^^^H^MR||A^B\rOBR|1\rOBX|1|NM|GLU^Glucose^L||5.4|mmol/L|||||F\r";
        let Prepared::Store { message, .. } = prepare_frame(raw) else {
            panic!("stored");
        };
        assert_eq!(message.raw, None, "include_raw = false: not kept");
        assert!(!message.record.is_empty());
        let mut iface = interface();
        iface.payload.include_raw = true;
        let stamp = Stamp {
            now_ms: 1_700_000_000_000,
            dtm: "20231114221320+0000".to_string(),
        };
        let Prepared::Store { message, .. } = prepare(&iface, raw, "p", &stamp, &AckIds::default())
        else {
            panic!("stored");
        };
        assert_eq!(
            message.raw.as_deref(),
            Some(&raw[..]),
            "include_raw = true: kept"
        );
        let Prepared::Quarantine(entry) = prepare_frame(b"PID|1||1\r") else {
            panic!("refused");
        };
        assert_eq!(
            entry.raw, b"PID|1||1\r",
            "a quarantined message is always kept"
        );
    }

    /// An ORU whose one OBX-5 holds `text_len` bytes (an embedded report).
    fn report_of(text_len: usize) -> Vec<u8> {
        let mut raw = b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|BIG1|P|2.5.1\r\
PID|1||1^^^H^MR||A^B\rOBR|1\rOBX|1|ED|PDF^Report^L||^AP^PDF^Base64^"
            .to_vec();
        raw.extend(std::iter::repeat_n(b'A', text_len));
        raw.extend_from_slice(b"||||||F\r");
        raw
    }

    #[test]
    fn a_record_that_cannot_fit_the_hub_payload_is_refused_with_ae_and_quarantined() {
        let raw = report_of(200_000);
        let Prepared::Quarantine(entry) = prepare_frame(&raw) else {
            panic!("a record over hub.max_payload must not be stored");
        };
        assert_eq!(entry.raw, raw);
        assert_eq!(entry.error_code, 207);
        assert!(
            entry.error.contains("hub.max_payload 128000"),
            "{}",
            entry.error
        );
        let ack = answer(&entry.ack);
        assert!(ack.contains("MSA|AE|BIG1"), "{ack}");
        assert!(ack.contains("ERR|"), "{ack}");
        assert!(ack.contains("hub.max_payload"), "{ack}");
    }

    #[test]
    fn the_size_check_counts_the_envelope_exactly_and_the_raw_message_when_it_travels() {
        let raw = report_of(100_000);
        let Prepared::Store { message, .. } = prepare_frame(&raw) else {
            panic!("fits 128,000 bytes");
        };
        let mut iface = interface();
        let needs = iface
            .payload
            .needs("lab", 1_700_000_000_000, message.record.len(), raw.len());
        let mut writer = wire::EnvelopeWriter::new("acme/clinic-12/gw-1", "lab").unwrap();
        writer
            .push(
                uuid::Uuid::now_v7(),
                u64::MAX,
                1_700_000_000_000,
                &message.record,
                None,
            )
            .unwrap();
        assert_eq!(writer.finish().unwrap().len(), needs, "byte-exact");
        let stamp = Stamp {
            now_ms: 1_700_000_000_000,
            dtm: "20231114221320+0000".to_string(),
        };
        iface.payload.max_payload = needs;
        let exact = prepare(&iface, &raw, "p", &stamp, &AckIds::default());
        assert!(
            matches!(exact, Prepared::Store { .. }),
            "exactly at the limit fits"
        );
        iface.payload.max_payload = needs - 1;
        let over = prepare(&iface, &raw, "p", &stamp, &AckIds::default());
        assert!(
            matches!(over, Prepared::Quarantine(_)),
            "one byte over does not"
        );
        iface.payload.max_payload = needs;
        iface.payload.include_raw = true;
        let with_raw = prepare(&iface, &raw, "p", &stamp, &AckIds::default());
        assert!(
            matches!(with_raw, Prepared::Quarantine(_)),
            "the raw message travels too, so it counts"
        );
    }

    #[test]
    fn an_absurdly_long_message_type_is_refused_with_ae_at_msh_9() {
        let long = "X".repeat(70_000);
        let raw = format!(
            "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^{long}|T1|P|2.5.1\rPID|1||1^^^H^MR\r"
        );
        let Prepared::Quarantine(entry) = prepare_frame(raw.as_bytes()) else {
            panic!("refused");
        };
        assert_eq!(entry.error_code, 104);
        let ack = answer(&entry.ack);
        assert!(ack.contains("MSA|AE|T1"), "{ack}");
        assert!(
            ack.contains("ERR||MSH^1^9^1^2|104^"),
            "located at MSH-9.2: {ack}"
        );
        assert!(ack.len() < 2_000, "the NAK does not echo the value");
    }

    #[test]
    fn a_batch_in_one_frame_is_quarantined_and_answered_with_its_batch_control_id() {
        let raw = BATCH_FRAME;
        let Prepared::Quarantine(entry) = prepare_frame(raw) else {
            panic!("a batch must not be stored");
        };
        assert_eq!(entry.raw, raw.to_vec());
        assert_eq!(entry.error_code, 100);
        let ack = answer(&entry.ack);
        assert!(ack.contains("MSA|AE|BATCH1|"), "{ack}");
        assert!(!ack.contains("B1"), "{ack}");
        assert!(ack.contains("batch"), "{ack}");
        assert!(ack.contains("one message per MLLP frame"), "{ack}");
    }

    /// An ORU of 20 LOINC-coded results in UCUM units, plus `local` results coded `99LAB`.
    fn lab_result(local: usize) -> String {
        let mut text = String::from(
            "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|U1|P|2.5.1\r\
             PID|1||1^^^H^MR\rOBR|1|P1|F1|24323-8^Panel^LN\r",
        );
        for i in 0..20 {
            text.push_str(&format!("OBX|{i}|NM|2345-7^Glucose^LN||{i}|mg/dL|||||F\r"));
        }
        for i in 0..local {
            text.push_str(&format!("OBX|{i}|NM|GLU^Glucose^99LAB||{i}|mg/dL|||||F\r"));
        }
        text
    }

    fn unmapped_after(raw: &str) -> (u64, u64) {
        let iface = interface();
        let stamp = Stamp {
            now_ms: 1_700_000_000_000,
            dtm: "20231114221320+0000".to_string(),
        };
        let prepared = prepare(&iface, raw.as_bytes(), "peer", &stamp, &AckIds::default());
        assert!(matches!(prepared, Prepared::Store { .. }));
        let counter = iface.unmapped.lock().unwrap();
        (counter.mapped_total(), counter.unmapped_total())
    }

    #[test]
    fn codes_already_standard_count_as_mapped_so_a_loinc_only_sender_is_zero_percent_unmapped() {
        // The panel code, 20 LOINC codes and 20 UCUM units: all standard.
        assert_eq!(unmapped_after(&lab_result(0)), (41, 0));
    }

    #[test]
    fn every_coded_element_counts_once_per_occurrence() {
        // One local code on two results: two unmapped codes, their two units standard.
        assert_eq!(unmapped_after(&lab_result(2)), (43, 2));
    }
}
