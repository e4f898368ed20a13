//! `inspect`'s report for people: what the message is, whether the gateway takes it, the
//! patient as the record holds it, the record's content as tables (observations with code,
//! standard code, value, unit, range, flags and time), what has no standard coding, every
//! problem located as the ACK's ERR-2 locates it, and the ACK itself. `--json` is the machine
//! form; this one is meant to be read.
//!
//! The report is built over the record's types: one function per part of the record, each
//! writing its section and noting what it found unmapped in [`Findings`]; the body's parts are
//! matched exhaustively, so a new kind of body cannot be left out silently.
//!
//! Invariants: everything from the message goes through `printable` (no control character
//! reaches the terminal); times are ISO 8601 with the offset they were sent in (or read in);
//! locations are ERL (`OBX^1^5`), numbered by occurrence as in the ERR segment the sender got.

use std::io::{self, Write};

use hl7edge_protocol::hl7::{Issue, Severity};
use hl7edge_protocol::record::{
    Body, Coded, Encounter, GenericMessage, Header, Identifier, ImmunizationReport,
    ObservationGroup, ObservationReport, OrderMessage, Patient, PatientEvent, PersonName,
    Practitioner, Processing, Standard, Timestamp, Unit, Value,
};

use super::Report;
use crate::cli::text::{self, Align, printable};
use crate::record_text;

/// Writes the report of one message.
pub(super) fn write(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let mut f = Findings::default();
    let mut body = String::new();
    writeln!(out, "== {}, message {} ==", r.source, r.index)?;
    match r.record.as_ref().map(|s| &s.record) {
        Some(record) => {
            let mut content = String::new();
            if let Some(patient) = &record.patient {
                patient_section(&mut content, patient, &mut f);
            }
            body_section(&mut content, &record.body, &mut f);
            if let Some(visit) = &record.encounter {
                encounter(&mut content, visit, &mut f);
            }
            header(&mut body, &record.header, &mut f);
            verdict(&mut body, r, f.unmapped.len());
            body.push_str(&content);
        }
        None => unparsed_header(&mut body, r),
    }
    out.write_all(body.as_bytes())?;
    unmapped_section(out, &f)?;
    problems(out, r)?;
    ack(out, r)?;
    footer(out, r, &f)
}

/// What the sections found on the way: codes without a standard coding, and whether a time
/// was read in the interface's zone (marked `*`).
#[derive(Debug, Default)]
struct Findings {
    /// Where, the code as sent, its text.
    unmapped: Vec<[String; 3]>,
    zone_assumed: bool,
}

impl Findings {
    /// A time as ISO 8601, noting a zone that was assumed.
    fn time(&mut self, t: &Timestamp) -> String {
        let text = record_text::iso(t);
        self.zone_assumed |= text.ends_with('*');
        text
    }

    /// Notes `c` at `place` when it has no standard coding.
    fn coded(&mut self, place: &str, c: &Coded) {
        if matches!(c.standard, Standard::Unmapped) && !c.original.code.is_empty() {
            self.unmapped.push([
                place.to_owned(),
                record_text::sent_code(c),
                record_text::display(c),
            ]);
        }
    }

    /// Notes a unit without a UCUM form at `place`.
    fn unit(&mut self, place: &str, unit: Option<&Unit>) {
        if let Some(Unit {
            ucum: None,
            original: Some(sent),
        }) = unit
        {
            self.unmapped.push([
                place.to_owned(),
                format!("{} (unit)", printable(sent.as_bytes())),
                String::new(),
            ]);
        }
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

fn line(out: &mut String, label: &str, value: &str) {
    if !value.is_empty() {
        out.push_str(&format!("  {label:<12} {value}\n"));
    }
}

fn header(out: &mut String, h: &Header, f: &mut Findings) {
    let kind = if h.trigger_event.is_empty() {
        printable(h.message_code.as_bytes())
    } else {
        format!(
            "{}^{}",
            printable(h.message_code.as_bytes()),
            printable(h.trigger_event.as_bytes())
        )
    };
    let processing = match h.processing {
        Processing::Production => "production",
        Processing::Training => "training",
        Processing::Debugging => "debugging",
        Processing::Unknown => "processing id not given",
    };
    out.push_str("Message\n");
    line(
        out,
        "type",
        &format!(
            "{kind}, HL7 {}, {processing}",
            printable(h.version.as_bytes())
        ),
    );
    line(out, "control id", &printable(h.control_id.as_bytes()));
    let from = match (
        h.sending_application.is_empty(),
        h.sending_facility.is_empty(),
    ) {
        (false, false) => format!(
            "{} at {}",
            printable(h.sending_application.as_bytes()),
            printable(h.sending_facility.as_bytes())
        ),
        (false, true) => printable(h.sending_application.as_bytes()),
        (true, false) => printable(h.sending_facility.as_bytes()),
        (true, true) => String::new(),
    };
    line(out, "from", &from);
    if let Some(t) = &h.message_time {
        let sent = f.time(t);
        line(out, "sent", &format!("{sent} (MSH-7)"));
    }
}

fn unparsed_header(out: &mut String, r: &Report) {
    out.push_str("Message\n");
    line(out, "type", r.message_type.as_deref().unwrap_or("not HL7"));
    line(out, "control id", r.control_id.as_deref().unwrap_or("-"));
    out.push_str(&format!(
        "\nREJECTED: answered AE and kept in quarantine, not sent to the hub ({} error{})\n",
        r.count(Severity::Error),
        plural(r.count(Severity::Error))
    ));
}

fn verdict(out: &mut String, r: &Report, unmapped: usize) {
    let warnings = r.count(Severity::Warning);
    let answer = match (&r.no_ack, answer_codes(&r.ack).as_slice()) {
        (Some(_), _) | (None, []) => "stored, not answered (see below)".to_owned(),
        (None, codes) => format!("stored and answered {}", codes.join(", then ")),
    };
    let coded = match unmapped {
        0 => String::new(),
        n => format!(
            ", {n} code{} or unit{} without a standard coding",
            plural(n),
            plural(n)
        ),
    };
    out.push_str(&format!(
        "\nAccepted: {answer}; {warnings} warning{}{coded}\n",
        plural(warnings)
    ));
}

/// MSA-1 of each ACK in `acks` (one segment per line): `["CA", "AA"]` in enhanced mode.
fn answer_codes(acks: &str) -> Vec<String> {
    acks.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("MSA")?;
            let separator = rest.chars().next()?;
            rest.split(separator).nth(1).map(str::to_owned)
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn patient_section(out: &mut String, p: &Patient, f: &mut Findings) {
    out.push_str("\nPatient (PID, as the record holds it)\n");
    let ids: Vec<String> = p.identifiers.iter().map(identifier).collect();
    line(out, "identifiers", &ids.join("; "));
    if let Some(name) = &p.name {
        line(out, "name", &person_name(name));
    }
    if let Some(born) = &p.birth_date {
        let born = f.time(born);
        line(out, "born", &born);
    }
    if let Some(sex) = &p.sex {
        line(out, "sex", &printable(sex.as_bytes()));
    }
}

/// `12345 (MR, HOSP)`: the value, its type and assigning authority.
fn identifier(id: &Identifier) -> String {
    let qualifiers: Vec<String> = [&id.kind, &id.authority]
        .into_iter()
        .flatten()
        .map(|q| printable(q.as_bytes()))
        .collect();
    let value = printable(id.value.as_bytes());
    if qualifiers.is_empty() {
        value
    } else {
        format!("{value} ({})", qualifiers.join(", "))
    }
}

/// `DOE, JOHN A`.
fn person_name(n: &PersonName) -> String {
    let given: Vec<String> = [&n.given, &n.middle]
        .into_iter()
        .flatten()
        .map(|g| printable(g.as_bytes()))
        .collect();
    let family = n
        .family
        .as_deref()
        .map(|f| printable(f.as_bytes()))
        .unwrap_or_default();
    match (family.is_empty(), given.is_empty()) {
        (false, false) => format!("{family}, {}", given.join(" ")),
        (false, true) => family,
        (true, _) => given.join(" "),
    }
}

fn practitioner(p: &Practitioner) -> String {
    let name = p.name.as_ref().map(person_name).unwrap_or_default();
    match (&p.id, name.is_empty()) {
        (Some(id), false) => format!("{name} ({})", printable(id.as_bytes())),
        (Some(id), true) => printable(id.as_bytes()),
        (None, _) => name,
    }
}

fn body_section(out: &mut String, body: &Body, f: &mut Findings) {
    match body {
        Body::Observations(report) => observations(out, report, f),
        Body::Patient(event) => patient_event(out, event, f),
        Body::Orders(orders) => order_table(out, orders, f),
        Body::Immunizations(report) => immunizations(out, report, f),
        Body::Generic(generic) => generic_section(out, generic),
    }
}

fn observations(out: &mut String, report: &ObservationReport, f: &mut Findings) {
    let mut number = 0;
    for (i, group) in report.orders.iter().enumerate() {
        order_heading(out, i + 1, group, f);
        let mut rows = vec![
            [
                "#", "code", "name", "standard", "value", "unit", "range", "flags", "time",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        let mut from_order = false;
        for o in &group.observations {
            number += 1;
            let place = format!("result {number}");
            f.coded(&format!("{place} code"), &o.code);
            if let Value::Coded(answer) = &o.value {
                f.coded(&format!("{place} value"), answer);
            }
            f.unit(
                &format!("{place} unit"),
                match &o.value {
                    Value::Quantity(q) => q.unit.as_ref(),
                    Value::Structured(sn) => sn.unit.as_ref(),
                    _ => None,
                },
            );
            let time = match (&o.observed_at, &group.observed_at) {
                (Some(t), _) => f.time(t),
                (None, Some(t)) => {
                    from_order = true;
                    format!("{} (OBR-7)", f.time(t))
                }
                (None, None) => "-".to_owned(),
            };
            rows.push(vec![
                number.to_string(),
                or_dash(record_text::sent_code(&o.code)),
                record_text::one_line(&record_text::display(&o.code), 28),
                record_text::standard_code(&o.code),
                record_text::value(&o.value),
                record_text::unit(&o.value),
                o.reference_range
                    .as_ref()
                    .map(record_text::range)
                    .unwrap_or_default(),
                o.flags
                    .iter()
                    .map(|flag| printable(flag.as_bytes()))
                    .collect::<Vec<_>>()
                    .join(","),
                time,
            ]);
        }
        if group.observations.is_empty() {
            out.push_str("  no results (OBX) under this order\n");
            continue;
        }
        let aligns = [
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Left,
        ];
        out.push_str(&text::table("  ", &aligns, &rows));
        if from_order {
            out.push_str("  (OBR-7): the result has no time of its own (OBX-14); the order's observation time applies\n");
        }
    }
}

fn order_heading(out: &mut String, n: usize, group: &ObservationGroup, f: &mut Findings) {
    let service = group.service.as_ref().map_or_else(
        || "no service (OBR-4)".to_owned(),
        |s| {
            f.coded(&format!("order {n} service"), s);
            coded_cell(s)
        },
    );
    out.push_str(&format!("\nOrder {n}: {service}\n"));
    let numbers: Vec<String> = [
        ("placer", &group.placer_order),
        ("filler", &group.filler_order),
    ]
    .into_iter()
    .filter_map(|(what, v)| {
        v.as_ref()
            .map(|v| format!("{what} {}", printable(v.as_bytes())))
    })
    .collect();
    line(out, "order number", &numbers.join(", "));
    if let Some(t) = &group.observed_at {
        let t = f.time(t);
        line(out, "observed", &format!("{t} (OBR-7)"));
    }
    if let Some(t) = &group.reported_at {
        let t = f.time(t);
        line(out, "reported", &format!("{t} (OBR-22)"));
    }
    if let Some(status) = &group.status {
        line(out, "status", &printable(status.as_bytes()));
    }
}

/// A coded element in one cell: `Lipid panel [LOINC 24331-1]`, or the code as sent when it has
/// no standard coding.
fn coded_cell(c: &Coded) -> String {
    let name = record_text::display(c);
    let code = match c.standard_coding() {
        Some(_) => record_text::standard_code(c),
        None => format!("{}, no standard code", record_text::sent_code(c)),
    };
    if name.is_empty() {
        format!("[{code}]")
    } else {
        format!("{name} [{code}]")
    }
}

fn patient_event(out: &mut String, e: &PatientEvent, f: &mut Findings) {
    out.push_str("\nEvent\n");
    if let Some(t) = &e.recorded_at {
        let t = f.time(t);
        line(out, "recorded", &format!("{t} (EVN-2)"));
    }
    if let Some(t) = &e.occurred_at {
        let t = f.time(t);
        line(out, "occurred", &format!("{t} (EVN-6)"));
    }
    let merged: Vec<String> = e.merged_from.iter().map(identifier).collect();
    line(out, "merged from", &merged.join("; "));
}

fn encounter(out: &mut String, v: &Encounter, f: &mut Findings) {
    out.push_str("\nVisit (PV1)\n");
    let text = |s: &Option<hl7edge_protocol::record::CompactString>| {
        s.as_deref()
            .map(|s| printable(s.as_bytes()))
            .unwrap_or_default()
    };
    line(out, "class", &text(&v.class));
    line(out, "location", &text(&v.location));
    line(out, "facility", &text(&v.facility));
    line(
        out,
        "visit number",
        &v.visit_number.as_ref().map(identifier).unwrap_or_default(),
    );
    line(
        out,
        "attending",
        &v.attending.as_ref().map(practitioner).unwrap_or_default(),
    );
    if let Some(t) = &v.admitted_at {
        let t = f.time(t);
        line(out, "admitted", &t);
    }
    if let Some(t) = &v.discharged_at {
        let t = f.time(t);
        line(out, "discharged", &t);
    }
}

fn order_table(out: &mut String, orders: &OrderMessage, f: &mut Findings) {
    out.push_str("\nOrders\n");
    let mut rows = vec![
        [
            "#", "control", "service", "placer", "filler", "status", "ordered", "priority",
            "specimen", "orderer",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let opt = |s: &Option<hl7edge_protocol::record::CompactString>| {
        s.as_deref()
            .map(|s| printable(s.as_bytes()))
            .unwrap_or_default()
    };
    for (i, o) in orders.orders.iter().enumerate() {
        let n = i + 1;
        if let Some(s) = &o.service {
            f.coded(&format!("order {n} service"), s);
        }
        if let Some(s) = &o.specimen {
            f.coded(&format!("order {n} specimen"), s);
        }
        rows.push(vec![
            n.to_string(),
            printable(o.control.as_bytes()),
            o.service.as_ref().map(coded_cell).unwrap_or_default(),
            opt(&o.placer_order),
            opt(&o.filler_order),
            opt(&o.status),
            o.ordered_at.as_ref().map(|t| f.time(t)).unwrap_or_default(),
            opt(&o.priority),
            o.specimen.as_ref().map(coded_cell).unwrap_or_default(),
            o.orderer.as_ref().map(practitioner).unwrap_or_default(),
        ]);
    }
    let mut aligns = vec![Align::Left; 10];
    aligns[0] = Align::Right;
    out.push_str(&text::table("  ", &aligns, &rows));
}

fn immunizations(out: &mut String, report: &ImmunizationReport, f: &mut Findings) {
    out.push_str("\nImmunizations (RXA)\n");
    let mut rows = vec![
        [
            "#",
            "vaccine",
            "given",
            "dose",
            "lot",
            "manufacturer",
            "completion",
            "route",
            "site",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for (i, x) in report.immunizations.iter().enumerate() {
        let n = i + 1;
        f.coded(&format!("immunization {n} vaccine"), &x.vaccine);
        for (what, c) in [
            ("manufacturer", &x.manufacturer),
            ("route", &x.route),
            ("site", &x.site),
        ] {
            if let Some(c) = c {
                f.coded(&format!("immunization {n} {what}"), c);
            }
        }
        f.unit(
            &format!("immunization {n} dose unit"),
            x.dose.as_ref().and_then(|d| d.unit.as_ref()),
        );
        let dose = x.dose.as_ref().map_or_else(String::new, |d| {
            let unit = d
                .unit
                .as_ref()
                .map(record_text::unit_text)
                .unwrap_or_default();
            format!("{} {unit}", d.value).trim_end().to_owned()
        });
        let cell = |c: &Option<Coded>| c.as_ref().map(coded_cell).unwrap_or_default();
        rows.push(vec![
            n.to_string(),
            coded_cell(&x.vaccine),
            x.administered_at
                .as_ref()
                .map(|t| f.time(t))
                .unwrap_or_default(),
            dose,
            x.lot
                .as_deref()
                .map(|l| printable(l.as_bytes()))
                .unwrap_or_default(),
            cell(&x.manufacturer),
            x.completion
                .as_deref()
                .map(|c| printable(c.as_bytes()))
                .unwrap_or_default(),
            cell(&x.route),
            cell(&x.site),
        ]);
    }
    let mut aligns = vec![Align::Left; 9];
    aligns[0] = Align::Right;
    out.push_str(&text::table("  ", &aligns, &rows));
}

fn generic_section(out: &mut String, g: &GenericMessage) {
    let ids: Vec<String> = g
        .segments
        .iter()
        .map(|s| printable(s.get(..3).unwrap_or(s).as_bytes()))
        .collect();
    out.push_str(&format!(
        "\nContent: no typed form for this message type; its {} segment{} after MSH travel as text: {}\n",
        ids.len(),
        plural(ids.len()),
        ids.join(" ")
    ));
}

fn unmapped_section(out: &mut impl Write, f: &Findings) -> io::Result<()> {
    if f.unmapped.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nNot mapped: no standard code (flagged on the record, counted, never guessed)"
    )?;
    let mut rows = vec![["where", "sent", "text"].map(str::to_owned).to_vec()];
    rows.extend(f.unmapped.iter().map(|row| row.to_vec()));
    write!(out, "{}", text::table("  ", &[Align::Left; 3], &rows))?;
    writeln!(
        out,
        "  Map them in the interface's mapping table; a skeleton of the table: hl7edge inspect --unmapped FILE"
    )
}

fn problems(out: &mut impl Write, r: &Report) -> io::Result<()> {
    if r.located.is_empty() {
        return writeln!(out, "\nProblems: none");
    }
    writeln!(
        out,
        "\nProblems, located as in the ACK's ERR-2 (segment^occurrence^field^repetition^component)"
    )?;
    let mut rows = vec![["", "code", "where", "problem"].map(str::to_owned).to_vec()];
    rows.extend(r.located.iter().map(problem_row));
    let aligns = [Align::Left, Align::Right, Align::Left, Align::Left];
    write!(out, "{}", text::table("  ", &aligns, &rows))
}

fn problem_row(i: &Issue) -> Vec<String> {
    let severity = match i.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Information => "info",
    };
    vec![
        severity.to_owned(),
        i.code.code().to_string(),
        i.location.erl(),
        format!("{} ({})", i.message, i.code.description()),
    ]
}

fn ack(out: &mut impl Write, r: &Report) -> io::Result<()> {
    match &r.no_ack {
        Some(why) => writeln!(out, "\nACK the gateway sends: none: {why}")?,
        None => writeln!(out, "\nACK the gateway sends")?,
    }
    for line in r.ack.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

fn footer(out: &mut impl Write, r: &Report, f: &Findings) -> io::Result<()> {
    if f.zone_assumed {
        writeln!(
            out,
            "\n* sent without a UTC offset: read in the interface's time zone (--time-zone; the listener's time_zone)"
        )?;
    }
    if let Some(bytes) = r.encoded_bytes {
        writeln!(
            out,
            "\nRecord: {bytes} bytes on the wire for {} bytes of HL7 ({:.0} %); all of it as JSON: hl7edge inspect --json",
            r.raw_bytes,
            100.0 * bytes as f64 / r.raw_bytes.max(1) as f64
        )?;
    }
    writeln!(out)
}
