use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::wire::{Entry, StoredRecord};
use uuid::Uuid;

use super::*;

const ORU: &str = "MSH|^~\\&|LIS|LAB|HUB|CLINIC|20260301101500||ORU^R01^ORU_R01|MSG-1|P|2.5.1\r\
PID|1||MRN0001^^^CLINIC^MR~4711^^^NATION^SS||Doe^Jo\r\
OBR|1|ORD1|ACC1|24323-8^Panel^LN|||20260301100000\r\
OBX|1|NM|2345-7^Glucose^LN||5.40|mmol/L^mmol/L^UCUM|3.9-5.5|N~H|||F|||20260301100500\r\
OBX|2|SN|XGLU^Local glucose^99LAB||>^100|mg/dl|||||P\r\
OBX|3|ST|NOTE^Note^99LAB||hemolysed||||||C\r";

fn entry(text: &str, id: u128) -> Entry {
    let msg = Message::parse(text.as_bytes()).unwrap();
    let mapping = MappingTable::empty();
    let tz = jiff::tz::TimeZone::UTC;
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    StoredRecord {
        mapping_version: mapping.version().clone(),
        record: normalize(&msg, Vec::new(), &ctx).record,
    }
    .into_entry(Uuid::from_u128(id), id as u64, 1_795_345_301_234, None)
}

#[test]
fn an_oru_becomes_one_record_row_with_its_identifiers_and_observations() {
    let e = entry(ORU, 1);
    let mut rows = Rows::default();
    assert!(rows.push("o/s/g", "lab", &e));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.records.message_type, ["ORU_R01"]);
    assert_eq!(rows.records.control_id, ["MSG-1"]);
    assert_eq!(rows.records.sequence, [Some(1)]);
    let id = Uuid::from_u128(1);
    let p: Vec<IdentifierRow> = identifiers(id, &e.record).collect();
    let values: Vec<&str> = p.iter().map(|r| r.value).collect();
    assert_eq!(values, ["MRN0001", "4711"]);
    assert_eq!(p[1].kind, Some("SS"));
    assert_eq!(p[1].ordinal, 1);
    let o: Vec<ObservationRow> = observations(id, &e.record).collect();
    let column = |f: fn(&ObservationRow) -> String| o.iter().map(f).collect::<Vec<_>>();
    assert_eq!(column(|r| r.ordinal.to_string()), ["0", "1", "2"]);
    assert_eq!(o[0].code_system.as_deref(), Some("LN"));
    assert_eq!(o[0].code, "2345-7");
    assert_eq!(
        column(|r| r.standard.to_owned()),
        ["original", "unmapped", "unmapped"]
    );
    assert_eq!(o[1].code_system, None, "unmapped: no standard system");
    assert_eq!(o[1].local_system, "99LAB");
    assert_eq!(o[1].local_code, "XGLU");
    assert_eq!(
        column(|r| r.value_type.to_owned()),
        ["quantity", "structured", "text"]
    );
    assert_eq!(
        o[0].value_num.map(|n| n.0.to_string()).as_deref(),
        Some("5.40"),
        "exact decimal"
    );
    assert_eq!(o[0].unit, Some("mmol/L"));
    assert_eq!(o[1].value_text.as_deref(), Some(">100"));
    assert_eq!(o[1].value_num, None, "a comparator is not a plain number");
    assert_eq!(o[2].value_text.as_deref(), Some("hemolysed"));
    assert_eq!(o[0].flags.0, ["N", "H"]);
    assert_eq!(column(|r| r.status.to_owned()), ["F", "P", "C"]);
    assert!(o[0].observed_at.is_some(), "OBX-14");
    assert_eq!(
        o[1].observed_at,
        timestamp(1_772_359_200_000),
        "OBR-7 when OBX-14 is empty"
    );
    assert!(o.iter().all(|r| r.record_id == id && r.order_ordinal == 0));
}

#[test]
fn a_row_type_has_one_column_type_per_column_of_its_copy_statement() {
    // The trait ties values to types by their length N; this ties N to the statement.
    let columns = |copy: &str| copy.split('(').nth(1).unwrap().split(',').count();
    assert_eq!(ObservationRow::TYPES.len(), columns(ObservationRow::COPY));
    assert_eq!(IdentifierRow::TYPES.len(), columns(IdentifierRow::COPY));
}

#[test]
fn a_record_id_already_in_the_batch_adds_no_rows() {
    let e = entry(ORU, 1);
    let again = entry(ORU, 1);
    let mut rows = Rows::default();
    assert!(rows.push("o/s/g", "lab", &e));
    assert!(!rows.push("o/s/g", "lab", &again));
    assert_eq!(rows.len(), 1);
}

#[test]
fn typed_rows_come_only_from_the_records_the_insert_returned() {
    let (a, b, c) = (entry(ORU, 1), entry(ORU, 2), entry(ORU, 3));
    let mut rows = Rows::default();
    for e in [&a, &b, &c] {
        assert!(rows.push("o/s/g", "lab", e));
    }
    let new: HashSet<Uuid> = [Uuid::from_u128(3), Uuid::from_u128(1)].into();
    let ids: Vec<u128> = rows.inserted(&new).map(|(id, _)| id.as_u128()).collect();
    assert_eq!(
        ids,
        [1, 3],
        "in row order, without the record already present"
    );
    assert_eq!(rows.inserted(&HashSet::new()).count(), 0);
}

#[test]
fn times_outside_what_postgresql_holds_are_refused() {
    assert!(timestamp(0).is_some());
    assert!(timestamp(i64::MAX).is_none());
    assert!(timestamp(i64::MIN).is_none());
}
