use super::*;
use crate::normalize::coding_system::CodingSystem;
use crate::record::{
    Body, Coded, Coding, Converted, Decimal, Header, Observation, ObservationGroup,
    ObservationReport, Quantity, ReferenceRange, ResultStatus, Standard, StructuredNumeric,
    Timestamp, Unit, Value,
};

fn ts(utc_ms: i64, precision: Precision, offset_minutes: i16) -> Timestamp {
    Timestamp {
        utc_ms,
        precision,
        offset_minutes,
        zone_assumed: offset_minutes == 0,
    }
}

fn coded(code: &str, display: &str, system: CodingSystem) -> Coded {
    Coded {
        original: Coding {
            code: code.into(),
            display: Some(display.into()),
            system,
        },
        alternate: None,
        standard: Standard::Unmapped,
        text: None,
    }
}

fn observation(value: Value, observed_at: Option<Timestamp>) -> Observation {
    Observation {
        code: coded("GLU", "Glucose", CodingSystem::Local("99LAB".into())),
        sub_id: None,
        value,
        reference_range: Some(ReferenceRange {
            low: Decimal::parse("70"),
            high: Decimal::parse("99"),
            text: None,
        }),
        flags: vec!["H".into()],
        status: ResultStatus::Corrected,
        observed_at,
        equipment: vec!["COBAS-8000".into(), "COBAS-8000".into()],
        method: None,
        ..Observation::default()
    }
}

fn record(observations: Vec<Observation>) -> Record {
    let order_time = ts(1_795_341_000_000, Precision::Second, 60);
    Record {
        header: Header {
            message_code: "ORU".into(),
            trigger_event: "R01".into(),
            control_id: "MSG1".into(),
            version: "2.5.1".into(),
            sending_application: "COBAS".into(),
            sending_facility: "MAINLAB".into(),
            message_time: Some(ts(1_795_345_300_000, Precision::Second, 60)),
            processing: crate::record::Processing::Training,
            ..Header::default()
        },
        patient: None,
        body: Body::Observations(ObservationReport {
            orders: vec![ObservationGroup {
                placer_order: Some("ORD-1".into()),
                filler_order: None,
                service: None,
                observed_at: Some(order_time),
                reported_at: None,
                status: Some("F".into()),
                observations,
                ..ObservationGroup::default()
            }],
        }),
        ..Record::default()
    }
}

fn every_value_kind() -> Vec<Observation> {
    let mut mapped = coded("POS", "Positive", CodingSystem::Other("XYZ".into()));
    mapped.standard = Standard::Mapped(Coding {
        code: "10828004".into(),
        display: Some("Positive".into()),
        system: CodingSystem::SnomedCt,
    });
    mapped.alternate = Some(Coding {
        code: "P".into(),
        display: None,
        system: CodingSystem::Local("L".into()),
    });
    let unit = Unit {
        ucum: Some("mg/dL".into()),
        original: Some("MG/DL".into()),
    };
    let order_time = ts(1_795_341_000_000, Precision::Second, 60);
    vec![
        observation(Value::None, None),
        observation(
            Value::Quantity(Quantity {
                value: Decimal {
                    mantissa: -123_456_789_012,
                    scale: 11,
                },
                unit: Some(unit.clone()),
                converted: Some(Converted {
                    value: Decimal {
                        mantissa: -1_234_567_890,
                        scale: 9,
                    },
                    unit: "g/L".into(),
                    exact: true,
                }),
            }),
            Some(order_time),
        ),
        observation(
            Value::Quantity(Quantity {
                value: Decimal {
                    mantissa: 112,
                    scale: 0,
                },
                unit: None,
                converted: None,
            }),
            Some(ts(1_795_341_000_123, Precision::Fraction, -300)),
        ),
        observation(
            Value::Structured(StructuredNumeric {
                comparator: Some(">".into()),
                low: Decimal::parse("100"),
                separator: None,
                high: None,
                unit: Some(unit),
            }),
            Some(ts(1_795_340_940_000, Precision::Minute, 60)),
        ),
        observation(Value::Coded(mapped), None),
        observation(
            Value::Time(ts(-170_000_000_000, Precision::Day, 0)),
            Some(ts(i64::MIN, Precision::Fraction, i16::MAX)),
        ),
        observation(Value::Text("two\nlines".into()), None),
        observation(
            Value::Series(crate::record::Series {
                values: vec![Decimal {
                    mantissa: i64::MAX,
                    scale: 3,
                }],
                channels: 1,
                unit: None,
            }),
            None,
        ),
    ]
}

#[test]
fn every_value_kind_and_time_form_round_trips() {
    let r = record(every_value_kind());
    let bytes = encode(&r).unwrap();
    assert_eq!(decode(&bytes).unwrap(), r);
}

#[test]
fn a_result_taken_at_the_order_time_costs_no_time_bytes() {
    let order_time = ts(1_795_341_000_000, Precision::Second, 60);
    let with = encode(&record(vec![observation(Value::None, Some(order_time))])).unwrap();
    let without = encode(&record(vec![observation(Value::None, None)])).unwrap();
    assert_eq!(with.len(), without.len());
}

#[test]
fn a_repeated_string_is_written_once() {
    let one = encode(&record(vec![observation(Value::None, None)])).unwrap();
    let two = encode(&record(vec![
        observation(Value::None, None),
        observation(Value::None, None),
    ]))
    .unwrap();
    // Header 2, code tag and three references 4, range 5, flags 2,
    // equipment 3: the second result costs 16 bytes, not its texts again.
    assert_eq!(two.len() - one.len(), 16, "{one:?}\n{two:?}");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = encode(&record(every_value_kind())).unwrap();
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode(&longer), Err(CompactError::Trailing(1)));
}

#[test]
fn a_string_reference_past_the_table_is_refused() {
    // flags, then the message code as reference 200 of the header pool.
    let bytes = [0x00, 0x91, 0x03];
    assert_eq!(decode(&bytes), Err(CompactError::BadStringIndex(200)));
}

#[test]
fn zigzag_round_trips_the_extremes() {
    for v in [
        0,
        1,
        -1,
        i128::from(i64::MIN),
        i128::from(i64::MAX),
        i128::MIN,
        i128::MAX,
    ] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
    assert_eq!(zigzag(-1), 1);
    assert_eq!(zigzag(1), 2);
}

#[test]
fn numeric_codes_and_ids_take_their_number_form_and_come_back_exactly() {
    for s in ["2345-7", "15545", "1", "999999999999999999", "17861-6"] {
        let n = number_form(s).unwrap();
        assert_eq!(number_text(n).unwrap(), s);
    }
    for s in [
        "0",
        "012",
        "2345-",
        "2345-77",
        "-5",
        "1.5",
        "",
        "1234567890123456789",
    ] {
        assert_eq!(number_form(s), None, "{s}");
    }
    assert!(number_text(0).is_err(), "zero would read back as \"0\"");
}

proptest::proptest! {
    #[test]
    fn a_string_has_a_number_form_exactly_when_it_reads_back_the_same(
        s in "[0-9]{0,20}(-[0-9]{0,2})?[a ]?"
    ) {
        // A number form, if any, must stand for the very same string; and
        // every plain number with a check digit or none (no leading zero,
        // at most 18 digits) has one.
        let digits = s.split('-').next().unwrap_or_default();
        let check = s.split_once('-').map(|(_, c)| c);
        let expected = !digits.is_empty()
            && digits.len() <= 18
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
            && check.is_none_or(|c| c.len() == 1 && c.bytes().all(|b| b.is_ascii_digit()));
        match number_form(&s) {
            Some(n) => proptest::prop_assert_eq!(number_text(n).unwrap(), s),
            None => proptest::prop_assert!(!expected, "{s} has no form"),
        }
    }
}

#[test]
fn a_text_string_of_no_known_form_is_refused() {
    // 4·n+2 is none of the text pool's forms; found by fuzzing the decoder
    // (it used to underflow when reading a length).
    for v in [0x02u8, 0x06, 0x0a] {
        let bytes = [v];
        let mut reader = reader::Reader::new(&bytes);
        assert_eq!(
            reader.str(Pool::Text),
            Err(CompactError::BadTag {
                what: "string",
                tag: u64::from(v)
            })
        );
    }
}

#[test]
fn a_long_message_past_the_scan_limit_round_trips_and_still_shares_strings() {
    // 300 results over 100 distinct tests: each pool's table grows past the
    // point where the writer switches from scanning to a map.
    let result = |i: usize| {
        let mut o = observation(Value::None, None);
        o.code = coded(
            &format!("T{}", i % 100),
            &format!("Test number {}", i % 100),
            CodingSystem::Local("99LAB".into()),
        );
        o
    };
    let first: Vec<_> = (0..100).map(result).collect();
    let all: Vec<_> = (0..300).map(result).collect();
    let r = record(all);
    let bytes = encode(&r).unwrap();
    assert_eq!(decode(&bytes).unwrap(), r);
    // The last 200 results repeat the first 100 tests: each costs its
    // fixed bytes and references (about 18 bytes), not its texts again
    // (about 33 bytes for a new one).
    let first_len = encode(&record(first)).unwrap().len();
    let per_new = first_len as f64 / 100.0;
    let per_repeat = (bytes.len() - first_len) as f64 / 200.0;
    assert!(
        per_repeat < 0.6 * per_new,
        "a repeated result costs {per_repeat:.1} bytes, a new one {per_new:.1}"
    );
}
