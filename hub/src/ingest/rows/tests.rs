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
    assert_eq!(rows.identifiers.value, ["MRN0001", "4711"]);
    assert_eq!(rows.identifiers.kind, [Some("MR"), Some("SS")]);
    let o = &rows.observations;
    assert_eq!(o.ordinal, [0, 1, 2]);
    assert_eq!(o.code_system[0].as_deref(), Some("LN"));
    assert_eq!(o.code[0], "2345-7");
    assert_eq!(o.standard, ["original", "unmapped", "unmapped"]);
    assert_eq!(o.code_system[1], None, "unmapped: no standard system");
    assert_eq!(o.local_system[1], "99LAB");
    assert_eq!(o.local_code[1], "XGLU");
    assert_eq!(o.value_type, ["quantity", "structured", "text"]);
    assert_eq!(o.value_num[0].as_deref(), Some("5.40"), "exact decimal");
    assert_eq!(o.unit[0], Some("mmol/L"));
    assert_eq!(o.value_text[1].as_deref(), Some(">100"));
    assert_eq!(o.value_num[1], None, "a comparator is not a plain number");
    assert_eq!(o.value_text[2].as_deref(), Some("hemolysed"));
    assert_eq!(o.flags[0], format!("N{FLAG_SEPARATOR}H"));
    assert_eq!(o.status, ["F", "P", "C"]);
    assert!(o.observed_at[0].is_some(), "OBX-14");
    assert_eq!(
        o.observed_at[1],
        timestamp(1_772_359_200_000),
        "OBR-7 when OBX-14 is empty"
    );
    // Every column of a table has one element per row.
    assert_eq!(o.record_id.len(), 3);
    assert_eq!(o.observed_at.len(), 3);
}

#[test]
fn a_record_id_already_in_the_batch_adds_no_rows() {
    let e = entry(ORU, 1);
    let again = entry(ORU, 1);
    let mut rows = Rows::default();
    assert!(rows.push("o/s/g", "lab", &e));
    assert!(!rows.push("o/s/g", "lab", &again));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.observations.ordinal.len(), 3);
}

#[test]
fn times_outside_what_postgresql_holds_are_refused() {
    assert!(timestamp(0).is_some());
    assert!(timestamp(i64::MAX).is_none());
    assert!(timestamp(i64::MIN).is_none());
}
