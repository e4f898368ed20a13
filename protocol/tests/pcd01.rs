//! IHE PCD-01 device observations (`tests/data/pcd01`): MDC codes, the
//! OBX-4 containment hierarchy, OBX-18 equipment, UCUM units from MDC unit
//! codes, and times in the site zone when the device sends no offset.

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::normalize::coding_system::CodingSystem;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, Normalized, normalize};
use hl7edge_protocol::record::{
    Body, Decimal, Observation, ObservationGroup, ResultStatus, Standard, Value,
};

const MONITOR: &[u8] = include_bytes!("data/pcd01/vital-signs-monitor.hl7");
const SPOT_CHECK: &[u8] = include_bytes!("data/pcd01/spot-check.hl7");
const MONITOR_EUI64: &str = "0123456789ABCDEF^^0123456789ABCDEF^EUI-64";

fn run(raw: &[u8], tz: &jiff::tz::TimeZone) -> Normalized {
    let msg = Message::parse(raw).unwrap();
    let mapping = MappingTable::empty();
    normalize(
        &msg,
        Vec::new(),
        &Context {
            time_zone: tz,
            mapping: &mapping,
        },
    )
}

fn group(n: &Normalized) -> &ObservationGroup {
    let Body::Observations(report) = &n.record.body else {
        panic!("not an observation report: {:?}", n.record.body);
    };
    assert_eq!(report.orders.len(), 1);
    &report.orders[0]
}

fn by_code<'a>(g: &'a ObservationGroup, code: &str) -> &'a Observation {
    g.observations
        .iter()
        .find(|o| o.code.original.code == code)
        .unwrap_or_else(|| panic!("no observation {code}"))
}

fn quantity(o: &Observation) -> (Decimal, Option<&str>) {
    let Value::Quantity(q) = &o.value else {
        panic!("not a quantity: {:?}", o.value);
    };
    (q.value, q.unit.as_ref().and_then(|u| u.ucum.as_deref()))
}

#[test]
fn monitor_metrics_carry_mdc_codes_and_ucum_units() {
    let n = run(MONITOR, &jiff::tz::TimeZone::UTC);
    let g = group(&n);
    assert_eq!(g.observations.len(), 10);
    for (code, value, ucum) in [
        ("150456", "97", "%"),
        ("149530", "112", "/min"),
        ("150021", "128", "mm[Hg]"),
        ("150022", "84", "mm[Hg]"),
    ] {
        let o = by_code(g, code);
        assert_eq!(o.code.original.system, CodingSystem::Mdc);
        assert_eq!(o.code.standard, Standard::Original);
        let (v, u) = quantity(o);
        assert_eq!(
            (v, u),
            (Decimal::parse(value).unwrap(), Some(ucum)),
            "{code}"
        );
        assert_eq!(o.status, ResultStatus::NotVerified);
    }
    assert!(n.unmapped.is_empty(), "{:?}", n.unmapped);
}

#[test]
fn monitor_hierarchy_and_equipment_are_kept() {
    let n = run(MONITOR, &jiff::tz::TimeZone::UTC);
    let g = group(&n);
    let ids: Vec<_> = g
        .observations
        .iter()
        .map(|o| o.sub_id.as_deref().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "1.0.0.0", "1.1.0.0", "1.1.1.0", "1.1.1.1", "1.1.1.2", "1.2.0.0", "1.2.1.0", "1.2.1.1",
            "1.2.1.2", "1.2.1.3"
        ]
    );
    let mds = by_code(g, "69965");
    assert_eq!(mds.value, Value::None);
    assert_eq!(mds.status, ResultStatus::Cancelled);
    assert_eq!(mds.equipment, [MONITOR_EUI64]);
    let spo2 = by_code(g, "150456");
    assert_eq!(
        spo2.equipment,
        [MONITOR_EUI64, "FEDCBA9876543210^^FEDCBA9876543210^EUI-64"]
    );
    assert_eq!(spo2.method.as_ref().unwrap().original.code, "AMEAS");
    assert_eq!(by_code(g, "149530").flags, ["H"]);
}

#[test]
fn monitor_times_with_an_offset_become_utc() {
    let n = run(MONITOR, &jiff::tz::TimeZone::UTC);
    let g = group(&n);
    let obr7 = g.observed_at.unwrap();
    assert_eq!(obr7.offset_minutes, 120);
    assert!(!obr7.zone_assumed);
    assert_eq!(
        jiff::Timestamp::from_millisecond(obr7.utc_ms)
            .unwrap()
            .to_string(),
        "2024-06-15T08:14:58Z"
    );
    // OBX-14 equal to OBR-7 is not repeated; the blood pressure was taken earlier.
    assert_eq!(by_code(g, "150456").observed_at, None);
    let nibp = by_code(g, "150021").observed_at.unwrap();
    assert_eq!(obr7.utc_ms - nibp.utc_ms, 106_000);
}

#[test]
fn spot_check_times_without_offset_use_the_site_zone_through_the_dst_fold() {
    let eastern = jiff::tz::TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
    let n = run(SPOT_CHECK, &eastern);
    let g = group(&n);
    let obr7 = g.observed_at.unwrap();
    assert!(obr7.zone_assumed);
    // 01:30 on 3 November 2024 happened twice; the earlier (EDT) one is taken.
    assert_eq!(obr7.offset_minutes, -240);
    assert_eq!(
        jiff::Timestamp::from_millisecond(obr7.utc_ms)
            .unwrap()
            .to_string(),
        "2024-11-03T05:30:00Z"
    );
    let temp = by_code(g, "150364");
    let (value, unit) = quantity(temp);
    assert_eq!((value.to_string(), unit), ("36.8".to_string(), Some("Cel")));
    assert_eq!(
        temp.observed_at.unwrap().utc_ms,
        obr7.utc_ms - 3 * 60 * 1000
    );
}

#[test]
fn spot_check_waveform_is_a_series() {
    let n = run(SPOT_CHECK, &jiff::tz::TimeZone::UTC);
    let pleth = by_code(group(&n), "150452");
    let Value::Series(samples) = &pleth.value else {
        panic!("not a series: {:?}", pleth.value);
    };
    let text: Vec<_> = samples.values.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["12", "15", "21", "30", "26", "18"]);
}
