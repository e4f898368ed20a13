//! IEEE 11073-10101 (MDC) unit codes, as device monitors send them in OBX-6
//! (`266016^MDC_DIM_MMHG^MDC`), and their UCUM equivalents.
//!
//! MDC units live in partition 4 (`MDC_PART_DIM`); the context-free code in
//! OBX-6 is `4 * 65536 + term code` (so `MDC_DIM_MMHG`, term 3872, is
//! 266016). Term codes below were checked against several independent
//! IEEE 11073 implementations; where a term carries a decimal prefix it is
//! the base term plus the prefix offset (kilo +3, centi +17, milli +18,
//! micro +19), e.g. `MDC_DIM_KILO_G` = `MDC_DIM_X_G` 1728 + 3.
//!
//! Invariant: [`UNITS`] is strictly ascending by term code (checked at
//! compile time), so numeric lookups can binary search.

/// The partition offset of `MDC_PART_DIM` (4 << 16).
const DIM_PARTITION_BASE: u32 = 4 << 16;

/// One MDC unit.
#[derive(Debug, Clone, Copy)]
struct MdcUnit {
    /// Term code within partition 4.
    term: u32,
    /// Reference id, e.g. `MDC_DIM_MMHG`.
    reference_id: &'static str,
    /// An older or shorter reference id some devices send, e.g. `MDC_DIM_L`
    /// for `MDC_DIM_X_L`.
    alias: Option<&'static str>,
    /// The UCUM code.
    ucum: &'static str,
}

/// Shorthand constructor used by [`UNITS`].
const fn unit(
    term: u32,
    reference_id: &'static str,
    alias: Option<&'static str>,
    ucum: &'static str,
) -> MdcUnit {
    MdcUnit {
        term,
        reference_id,
        alias,
        ucum,
    }
}

/// Vital-sign and common device units, sorted by term code.
const UNITS: &[MdcUnit] = &[
    unit(512, "MDC_DIM_DIMLESS", None, "1"),
    unit(544, "MDC_DIM_PERCENT", None, "%"),
    unit(736, "MDC_DIM_ANG_DEG", None, "deg"),
    unit(992, "MDC_DIM_PH", None, "[pH]"),
    unit(1280, "MDC_DIM_X_M", Some("MDC_DIM_M"), "m"),
    unit(1297, "MDC_DIM_CENTI_M", None, "cm"),
    unit(1298, "MDC_DIM_MILLI_M", None, "mm"),
    unit(1344, "MDC_DIM_X_FOOT", Some("MDC_DIM_FOOT"), "[ft_i]"),
    unit(1376, "MDC_DIM_X_INCH", Some("MDC_DIM_INCH"), "[in_i]"),
    unit(1600, "MDC_DIM_X_L", Some("MDC_DIM_L"), "L"),
    unit(1618, "MDC_DIM_MILLI_L", None, "mL"),
    unit(1728, "MDC_DIM_X_G", Some("MDC_DIM_G"), "g"),
    unit(1731, "MDC_DIM_KILO_G", None, "kg"),
    unit(1746, "MDC_DIM_MILLI_G", None, "mg"),
    unit(1760, "MDC_DIM_LB", None, "[lb_av]"),
    unit(1952, "MDC_DIM_KG_PER_M_SQ", None, "kg/m2"),
    unit(2130, "MDC_DIM_MILLI_G_PER_DL", None, "mg/dL"),
    unit(2176, "MDC_DIM_SEC", None, "s"),
    unit(2194, "MDC_DIM_MILLI_SEC", None, "ms"),
    unit(2208, "MDC_DIM_MIN", None, "min"),
    unit(2240, "MDC_DIM_HR", None, "h"),
    unit(2272, "MDC_DIM_DAY", None, "d"),
    unit(2368, "MDC_DIM_YR", None, "a"),
    unit(2720, "MDC_DIM_BEAT_PER_MIN", None, "/min"),
    unit(2784, "MDC_DIM_RESP_PER_MIN", None, "/min"),
    unit(
        3072,
        "MDC_DIM_X_L_PER_MIN",
        Some("MDC_DIM_L_PER_MIN"),
        "L/min",
    ),
    unit(3090, "MDC_DIM_MILLI_L_PER_MIN", None, "mL/min"),
    unit(3843, "MDC_DIM_KILO_PASCAL", None, "kPa"),
    unit(3872, "MDC_DIM_MMHG", None, "mm[Hg]"),
    unit(3904, "MDC_DIM_CM_H2O", None, "cm[H2O]"),
    unit(4274, "MDC_DIM_MILLI_VOLT", None, "mV"),
    unit(4416, "MDC_DIM_FAHR", None, "[degF]"),
    unit(4722, "MDC_DIM_MILLI_MOLE_PER_L", None, "mmol/L"),
    unit(4723, "MDC_DIM_MICRO_MOLE_PER_L", None, "umol/L"),
    unit(5472, "MDC_DIM_INTL_UNIT", None, "[IU]"),
    unit(6048, "MDC_DIM_DEGC", None, "Cel"),
];

const _: () = check_sorted(UNITS);

/// Panics (at compile time) unless `units` is strictly ascending by term.
const fn check_sorted(units: &[MdcUnit]) {
    let mut i = 1;
    while i < units.len() {
        assert!(units[i - 1].term < units[i].term, "MDC units not sorted");
        i += 1;
    }
}

/// UCUM for an MDC unit given as its context-free numeric code (`266016`).
pub(super) fn by_code(code: &str) -> Option<&'static str> {
    let code: u32 = code.trim().parse().ok()?;
    let term = code.checked_sub(DIM_PARTITION_BASE)?;
    if term >= 1 << 16 {
        return None;
    }
    let index = UNITS.binary_search_by_key(&term, |u| u.term).ok()?;
    UNITS.get(index).map(|u| u.ucum)
}

/// UCUM for an MDC unit given as its reference id (`MDC_DIM_MMHG`),
/// compared ASCII case-insensitively.
pub(super) fn by_reference_id(reference_id: &str) -> Option<&'static str> {
    let id = reference_id.trim();
    UNITS
        .iter()
        .find(|u| {
            u.reference_id.eq_ignore_ascii_case(id)
                || u.alias.is_some_and(|alias| alias.eq_ignore_ascii_case(id))
        })
        .map(|u| u.ucum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vital_sign_codes_map_by_number() {
        assert_eq!(by_code("262688"), Some("%"));
        assert_eq!(by_code("264864"), Some("/min"));
        assert_eq!(by_code("264928"), Some("/min"));
        assert_eq!(by_code("266016"), Some("mm[Hg]"));
        assert_eq!(by_code("268192"), Some("Cel"));
        assert_eq!(by_code("266560"), Some("[degF]"));
        assert_eq!(by_code("263875"), Some("kg"));
        assert_eq!(by_code("263441"), Some("cm"));
        assert_eq!(by_code("265216"), Some("L/min"));
        assert_eq!(by_code("266048"), Some("cm[H2O]"));
        assert_eq!(by_code("263488"), Some("[ft_i]"));
    }

    #[test]
    fn codes_outside_the_units_partition_are_unknown() {
        assert_eq!(by_code("3872"), None);
        assert_eq!(by_code("150021"), None);
        assert_eq!(by_code(&(266016 + 65536).to_string()), None);
        assert_eq!(by_code("266017"), None);
        assert_eq!(by_code("mmHg"), None);
        assert_eq!(by_code(""), None);
    }

    #[test]
    fn reference_ids_and_aliases_map() {
        assert_eq!(by_reference_id("MDC_DIM_PERCENT"), Some("%"));
        assert_eq!(by_reference_id("MDC_DIM_X_L_PER_MIN"), Some("L/min"));
        assert_eq!(by_reference_id("MDC_DIM_L_PER_MIN"), Some("L/min"));
        assert_eq!(by_reference_id("mdc_dim_kilo_g"), Some("kg"));
        assert_eq!(by_reference_id("MDC_DIM_CENTI_M"), Some("cm"));
        assert_eq!(by_reference_id("MDC_DIM_NOPE"), None);
    }

    #[test]
    fn reference_ids_are_unique() {
        for (i, a) in UNITS.iter().enumerate() {
            for b in &UNITS[i + 1..] {
                assert_ne!(a.reference_id, b.reference_id);
                assert_ne!(Some(a.reference_id), b.alias);
                assert!(a.alias.is_none() || a.alias != b.alias);
            }
        }
    }
}
