//! What a normalization run is given and what it collects on the way.
//!
//! [`Context`] is the caller's input: the site's time zone and the
//! interface's mapping table. [`Normalized`] is the output: the record plus
//! the codes that had no standard mapping. Inside, a `Work` value gathers
//! warnings and unmapped codes while the normalizers walk the message, and
//! an `At` names the place a value came from, so a warning carries an exact
//! [`Location`] (built only when a warning is actually raised).
//!
//! Invariants: warnings never contain message values (no PHI), and each
//! unmapped `(system, code)` pair is reported once per message. Both are
//! deduplicated through hash sets, so a run stays linear in the message
//! however many warnings or distinct codes it holds; warnings are listed
//! while the record holds fewer than [`MAX_ISSUES`] issues and summarized
//! past that (see `crate::hl7::limits`).

use std::collections::{HashMap, HashSet};

use compact_str::CompactString;
use foldhash::fast::RandomState;
use jiff::tz::TimeZone;

use crate::hl7::limits::{MAX_ISSUES, Omitted};
use crate::hl7::{ErrorCode, Issue, Location, Segment};
use crate::normalize::coding_system::CodingSystem;
use crate::normalize::mapping::MappingTable;
use crate::record::{Coded, Organization, Practitioner, Record, Timestamp, Unit};

/// What a normalization run needs from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The site's time zone: HL7 times sent without a UTC offset are read in
    /// it.
    pub time_zone: &'a TimeZone,
    /// The interface's mapping table (local codes to standard codes, local
    /// units to UCUM).
    pub mapping: &'a MappingTable,
}

/// The result of normalizing one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The normalized record, warnings included.
    pub record: Record,
    /// Codes that had no standard mapping, once per distinct
    /// `(system, code)` in this message, in order of first appearance, so
    /// the agent can count them per interface. A unit that could not be
    /// translated to UCUM is listed as `(CodingSystem::Ucum, unit as sent)`.
    pub unmapped: Vec<(CodingSystem, String)>,
    /// Results whose unit is not commensurable with the unit the mapping
    /// table expects for their code (each also a warning on the record).
    pub unit_mismatches: u32,
    /// Coded observation values (OBX-5 answers) that had no standard mapping. Only their
    /// number is reported: an answer is about the patient, so it is never named in telemetry.
    pub unmapped_answers: usize,
}

/// The state of one run: the context, and the warnings and unmapped codes
/// found so far.
pub(crate) struct Work<'c> {
    /// The caller's context.
    pub(crate) ctx: Context<'c>,
    /// Warnings raised while normalizing (validation issues come first).
    pub(crate) issues: Vec<Issue>,
    /// The place of every issue raised so far (listed or omitted), as
    /// `warn` compares them, once there are more than [`FEW`] (fewer are
    /// searched in `issues`: cheaper than hashing, and a bounded cost).
    places: Option<HashSet<Place, RandomState>>,
    /// Warnings past [`MAX_ISSUES`].
    omitted: Omitted,
    /// Distinct unmapped codes, in order of first appearance.
    pub(crate) unmapped: Vec<(CodingSystem, String)>,
    /// The same codes by system, to find one without searching the list,
    /// once there are more than [`FEW`].
    unmapped_seen: Option<HashMap<CodingSystem, HashSet<String, RandomState>, RandomState>>,
    /// Unmapped coded observation values (answers), counted, never listed.
    pub(crate) unmapped_answers: usize,
    /// Units already resolved, by the raw bytes sent.
    pub(crate) units: Memo<Option<Unit>>,
    /// Times already converted, by the raw bytes sent.
    pub(crate) times: Memo<Timestamp>,
    /// Coded values of fields that repeat on every segment (OBX-15,
    /// OBX-17), by the raw bytes sent.
    pub(crate) codes: Memo<Option<Coded>>,
    /// Performing organizations (OBX-23/24), by the raw bytes sent.
    pub(crate) organizations: Memo<Option<Organization>>,
    /// People of fields that repeat on every OBX (OBX-16, OBX-25), by the
    /// raw bytes sent.
    pub(crate) people: Memo<Vec<Practitioner>>,
    /// True once a time of hour precision or finer was sent without an
    /// offset (and so read in the zone of [`Work::zone`]).
    pub(crate) read_without_offset: bool,
    /// The sender's own offset (from MSH-7), when it disagrees with the
    /// site zone: times without an offset are read in it instead.
    pub(crate) sender_zone: Option<TimeZone>,
    /// Per segment (by index), whether a normalizer read it into the record
    /// (see `carried`).
    pub(crate) consumed: Vec<bool>,
    /// Results in a unit incommensurable with the one their code expects.
    pub(crate) unit_mismatches: u32,
}

/// Most entries a [`Memo`] keeps.
const MEMO_ENTRIES: usize = 16;

/// Key bytes a [`Memo`] reserves on first use (timestamps and units are
/// short).
const MEMO_KEY_BYTES: usize = 256;

/// A few values computed from raw message bytes, kept for the rest of the
/// message: the same unit and the same time repeat on many OBX segments.
/// The keys share one buffer, so keeping a value costs no allocation of
/// its own.
#[derive(Debug)]
pub(crate) struct Memo<T> {
    /// Every kept key, one after the other.
    keys: Vec<u8>,
    /// Per entry, where its key ends in `keys`, and its value.
    entries: Vec<(usize, T)>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            keys: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl<T> Memo<T> {
    /// The value computed for `key`, if kept.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&T> {
        let mut start = 0;
        for (end, value) in &self.entries {
            if self.keys.get(start..*end) == Some(key) {
                return Some(value);
            }
            start = *end;
        }
        None
    }

    /// Keeps `value` for `key` while there is room.
    pub(crate) fn put(&mut self, key: &[u8], value: T) {
        if self.entries.len() >= MEMO_ENTRIES {
            return;
        }
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(MEMO_ENTRIES);
            self.keys.reserve(MEMO_KEY_BYTES);
        }
        self.keys.extend_from_slice(key);
        self.entries.push((self.keys.len(), value));
    }
}

/// Up to how many issues or unmapped codes are searched in their list
/// rather than through a hash set.
const FEW: usize = 16;

/// What makes two issues the same problem for [`Work::warn`]: code,
/// segment position, field and segment id.
type Place = (ErrorCode, u32, u16, CompactString);

fn place(code: ErrorCode, location: &Location) -> Place {
    (
        code,
        location.segment_sequence,
        location.field,
        CompactString::from(location.segment.as_str()),
    )
}

impl<'c> Work<'c> {
    /// Starts a run that carries the validation issues along.
    pub(crate) fn new(ctx: Context<'c>, issues: Vec<Issue>) -> Self {
        let places = (issues.len() > FEW)
            .then(|| issues.iter().map(|i| place(i.code, &i.location)).collect());
        Work {
            ctx,
            issues,
            places,
            omitted: Omitted::default(),
            unmapped: Vec::new(),
            unmapped_seen: None,
            unmapped_answers: 0,
            units: Memo::default(),
            times: Memo::default(),
            codes: Memo::default(),
            organizations: Memo::default(),
            people: Memo::default(),
            read_without_offset: false,
            sender_zone: None,
            consumed: Vec::new(),
            unit_mismatches: 0,
        }
    }

    /// The zone times sent without an offset are read in: the sender's
    /// offset when MSH-7 showed one the site zone disagrees with, else the
    /// site zone.
    pub(crate) fn zone(&self) -> &TimeZone {
        self.sender_zone.as_ref().unwrap_or(self.ctx.time_zone)
    }

    /// True when `segment` was read into the record.
    pub(crate) fn is_consumed(&self, segment: &Segment<'_>) -> bool {
        self.consumed.get(segment.index()).copied().unwrap_or(false)
    }

    /// Notes that `segment` is read into the record: its fields are
    /// carried as the `carried` table says.
    pub(crate) fn consume(&mut self, segment: &Segment<'_>) {
        let i = segment.index();
        if self.consumed.len() <= i {
            self.consumed.resize(i + 1, false);
        }
        if let Some(slot) = self.consumed.get_mut(i) {
            *slot = true;
        }
    }

    /// Records a warning at `at`, unless an issue with the same code is
    /// already there for the same field (validation may have found it
    /// first, perhaps narrowed to a component). `message` must not contain
    /// message values.
    pub(crate) fn warn(&mut self, code: ErrorCode, at: At<'_>, message: &'static str) {
        let location = at.location();
        if !self.is_new_place(code, &location) {
            return;
        }
        let issue = Issue::warning(code, location, message);
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(issue);
        } else {
            self.omitted.add(&issue);
        }
    }

    /// True when no issue was raised at `location` with `code` yet (and
    /// notes the place).
    fn is_new_place(&mut self, code: ErrorCode, location: &Location) -> bool {
        if let Some(places) = &mut self.places {
            return places.insert(place(code, location));
        }
        let known = self.issues.iter().any(|i| {
            i.code == code
                && i.location.segment_sequence == location.segment_sequence
                && i.location.field == location.field
                && i.location.segment == location.segment
        });
        if !known && self.issues.len() >= FEW {
            let mut places: HashSet<Place, RandomState> = self
                .issues
                .iter()
                .map(|i| place(i.code, &i.location))
                .collect();
            places.insert(place(code, location));
            self.places = Some(places);
        }
        !known
    }

    /// Notes a code without a standard mapping (once per message).
    pub(crate) fn unmapped(&mut self, system: &CodingSystem, code: &str) {
        let seen = match &self.unmapped_seen {
            Some(by_system) => by_system
                .get(system)
                .is_some_and(|codes| codes.contains(code)),
            None => self.unmapped.iter().any(|(s, c)| s == system && c == code),
        };
        if seen {
            return;
        }
        self.unmapped.push((system.clone(), code.to_owned()));
        if let Some(by_system) = &mut self.unmapped_seen {
            by_system
                .entry(system.clone())
                .or_default()
                .insert(code.to_owned());
        } else if self.unmapped.len() > FEW {
            let mut by_system: HashMap<_, HashSet<_, RandomState>, RandomState> =
                HashMap::default();
            for (s, c) in &self.unmapped {
                by_system.entry(s.clone()).or_default().insert(c.clone());
            }
            self.unmapped_seen = Some(by_system);
        }
    }

    /// The record's issues (a summary of the omitted warnings last) and
    /// the unmapped codes.
    pub(crate) fn finish(self) -> (Vec<Issue>, Vec<(CodingSystem, String)>) {
        let mut issues = self.issues;
        issues.extend(self.omitted.summary(MAX_ISSUES));
        (issues, self.unmapped)
    }
}

/// A place in the message: segment, field, repetition and component
/// (0 = not narrowed to that level).
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    segment: Segment<'a>,
    field: usize,
    repetition: usize,
    component: usize,
}

impl<'a> At<'a> {
    /// Field `field` of `segment`.
    pub(crate) fn new(segment: Segment<'a>, field: usize) -> Self {
        At {
            segment,
            field,
            repetition: 0,
            component: 0,
        }
    }

    /// The same place narrowed to a repetition (1-based).
    pub(crate) fn repetition(self, repetition: usize) -> Self {
        At { repetition, ..self }
    }

    /// The same place narrowed to a component (1-based).
    pub(crate) fn component(self, component: usize) -> Self {
        At { component, ..self }
    }

    /// The HL7 location (ERL) of this place.
    pub(crate) fn location(&self) -> Location {
        Location::segment(&self.segment.id(), self.segment.index() + 1)
            .field(self.field)
            .repetition(self.repetition)
            .component(self.component)
    }
}

/// Runs `read` on message `text` with a fresh run (site zone UTC, no
/// mapping table): for normalizer tests. Gives what `read` returned and
/// the warnings raised.
#[cfg(test)]
pub(crate) fn work_for<R>(
    text: &str,
    read: impl FnOnce(&mut Work<'_>, &crate::hl7::Message<'_>) -> R,
) -> (R, Vec<Issue>) {
    let message = crate::hl7::Message::parse(text.as_bytes()).expect("test message parses");
    let tz = TimeZone::UTC;
    let mapping = MappingTable::empty();
    let mut work = Work::new(
        Context {
            time_zone: &tz,
            mapping: &mapping,
        },
        Vec::new(),
    );
    let out = read(&mut work, &message);
    (out, work.issues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::{Message, Severity};

    #[test]
    fn a_warning_names_segment_position_field_and_repetition() {
        let m = Message::parse(b"MSH|^~\\&|A\rPID|1\rOBX|1|NM").unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping: &mapping,
            },
            Vec::new(),
        );
        let obx = m.segment("OBX").unwrap();
        work.warn(
            ErrorCode::DataType,
            At::new(obx, 5).repetition(2),
            "not a number",
        );
        let issue = &work.issues[0];
        assert_eq!(issue.severity, Severity::Warning);
        assert_eq!(issue.location.to_string(), "OBX(segment 3)-5[2]");
    }

    #[test]
    fn a_problem_validation_already_found_is_not_repeated() {
        let m = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM").unwrap();
        let obx = m.segment("OBX").unwrap();
        let known = Issue::warning(
            ErrorCode::DataType,
            At::new(obx, 5).location(),
            "bad number",
        );
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        let mut work = Work::new(ctx, vec![known]);
        work.warn(
            ErrorCode::DataType,
            At::new(obx, 5).repetition(1),
            "not a number",
        );
        work.warn(ErrorCode::DataType, At::new(obx, 6), "not a unit");
        assert_eq!(work.issues.len(), 2);
        assert_eq!(work.issues[0].message, "bad number");
    }

    #[test]
    fn warnings_past_the_cap_end_in_one_summary_and_each_place_is_warned_once() {
        let mut text = String::from("MSH|^~\\&|A|B|C|D|2024||ORU^R01|1|P|2.5.1");
        for n in 0..MAX_ISSUES + 44 {
            text.push_str(&format!("\rOBX|{n}|NM|1^a^LN||x"));
        }
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        let mut work = Work::new(ctx, Vec::new());
        for obx in m.segments_named("OBX") {
            work.warn(ErrorCode::DataType, At::new(obx, 5), "not a number");
            work.warn(
                ErrorCode::DataType,
                At::new(obx, 5).repetition(1),
                "not a number",
            );
        }
        let (issues, _) = work.finish();
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        let summary = issues.last().unwrap();
        assert!(
            summary.message.starts_with("44 more issues not listed"),
            "{}",
            summary.message
        );
        assert_eq!(
            summary.location.to_string(),
            format!("OBX(segment {})-5", MAX_ISSUES + 2)
        );
    }

    #[test]
    fn a_memo_gives_back_each_kept_value_by_its_exact_key_while_it_has_room() {
        let mut memo = Memo::default();
        assert_eq!(memo.get(b""), None);
        memo.put(b"mg", 1);
        memo.put(b"", 2);
        memo.put(b"mg/dL", 3);
        assert_eq!(memo.get(b"mg"), Some(&1));
        assert_eq!(memo.get(b""), Some(&2));
        assert_eq!(memo.get(b"mg/dL"), Some(&3));
        assert_eq!(memo.get(b"mg/d"), None);
        assert_eq!(memo.get(b"gmg"), None);
        for n in 0..MEMO_ENTRIES {
            memo.put(format!("k{n}").as_bytes(), 10 + n);
        }
        assert_eq!(memo.get(b"k0"), Some(&10));
        assert_eq!(
            memo.get(format!("k{}", MEMO_ENTRIES - 4).as_bytes()),
            Some(&(6 + MEMO_ENTRIES))
        );
        assert_eq!(
            memo.get(format!("k{}", MEMO_ENTRIES - 3).as_bytes()),
            None,
            "full"
        );
    }

    #[test]
    fn an_unmapped_code_is_listed_once() {
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        let mut work = Work::new(ctx, Vec::new());
        let local = CodingSystem::Local("L".into());
        work.unmapped(&local, "GLU");
        work.unmapped(&local, "GLU");
        work.unmapped(&local, "K");
        assert_eq!(
            work.unmapped,
            [(local.clone(), "GLU".into()), (local, "K".into())]
        );
    }
}
