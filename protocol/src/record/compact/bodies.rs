//! The compact form (schema 3) of the record bodies: which body it is (a
//! number in the record flags) and each body's parts. Observation reports
//! are in `oru`; the others are written here.

use super::parts::{Compact, compact_struct};
use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool, oru};
use crate::record::limits;
use crate::record::{
    Body, GenericMessage, Immunization, ImmunizationReport, Order, OrderMessage, PatientEvent,
    PatientGroup, Prior,
};

/// Body kind: generic segments.
const GENERIC: u64 = 0;
/// Body kind: an observation report.
const OBSERVATIONS: u64 = 1;
/// Body kind: an ADT event.
const PATIENT: u64 = 2;
/// Body kind: orders.
const ORDERS: u64 = 3;
/// Body kind: immunizations.
const IMMUNIZATIONS: u64 = 4;

/// The number of `body`'s kind (three bits of the record flags).
pub(super) fn kind(body: &Body) -> u64 {
    match body {
        Body::Generic(_) => GENERIC,
        Body::Observations(_) => OBSERVATIONS,
        Body::Patient(_) => PATIENT,
        Body::Orders(_) => ORDERS,
        Body::Immunizations(_) => IMMUNIZATIONS,
    }
}

/// The body's parts (its kind is in the record flags).
pub(super) fn write_body<'a>(w: &mut Writer<'a>, body: &'a Body) {
    match body {
        Body::Observations(report) => oru::write_report(w, report),
        Body::Patient(event) => event.write(w),
        Body::Orders(orders) => {
            w.count(orders.orders.len());
            for o in &orders.orders {
                o.write(w);
            }
        }
        Body::Immunizations(report) => {
            w.count(report.immunizations.len());
            for i in &report.immunizations {
                i.write(w);
            }
            super::parts::kind::observations::write(&report.observations, w);
        }
        Body::Generic(g) => {
            w.str(Pool::Text, Some(&g.delimiters));
            w.count(g.segments.len());
            for s in &g.segments {
                w.str(Pool::Text, Some(s));
            }
        }
    }
}

/// What [`write_body`] wrote for a body of kind `kind`.
pub(super) fn read_body(r: &mut Reader<'_>, kind: u64) -> Result<Body, CompactError> {
    Ok(match kind {
        OBSERVATIONS => Body::Observations(oru::read_report(r)?),
        PATIENT => Body::Patient(PatientEvent::read(r)?),
        ORDERS => Body::Orders(OrderMessage {
            orders: orders(r, "orders")?,
        }),
        IMMUNIZATIONS => Body::Immunizations(ImmunizationReport {
            immunizations: orders(r, "immunizations")?,
            observations: super::parts::kind::observations::read(r)?,
        }),
        GENERIC => {
            let delimiters = r.req_str(Pool::Text)?.into_string();
            let n = r.count(limits::MAX_GENERIC_SEGMENTS, "segments")?;
            let mut segments = Vec::with_capacity(limits::capacity::<String>(n));
            for _ in 0..n {
                segments.push(r.req_str(Pool::Text)?.into_string());
            }
            Body::Generic(GenericMessage {
                delimiters,
                segments,
            })
        }
        other => {
            return Err(CompactError::BadTag {
                what: "body kind",
                tag: other,
            });
        }
    })
}

/// A count, then each part.
/// Orders or doses: at most [`limits::MAX_ORDERS`].
fn orders<T: Compact>(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<T>, CompactError> {
    let n = r.count(limits::MAX_ORDERS, what)?;
    let mut out = Vec::with_capacity(limits::capacity::<T>(n));
    for _ in 0..n {
        out.push(T::read(r)?);
    }
    Ok(out)
}

compact_struct!(PatientEvent {
    recorded_at: time,
    occurred_at: time,
    merged_from: items,
    reason: code,
    prior: items,
    observations: observations,
    more_patients: items,
});

compact_struct!(PatientGroup {
    patient: patient,
    encounter: item,
    merged_from: items,
    prior: items,
    observations: observations,
});

compact_struct!(Prior {
    identifiers: items,
    alternate_id: item,
    account: item,
    visit: item,
    alternate_visit: item,
    name: item,
    encounter: item,
});

compact_struct!(Order {
    control: code_string,
    placer_order: text,
    filler_order: text,
    status: code,
    service: item,
    ordered_at: time,
    orderer: item,
    priority: code,
    specimen: item,
    observed_at: time,
    observations: observations,
    reported_at: time,
    result_status: code,
    detail: detail,
});

compact_struct!(Immunization {
    administered_at: time,
    vaccine: coded,
    dose: item,
    lot: text,
    manufacturer: item,
    completion: code,
    route: item,
    site: item,
    action: code,
    refusal_reasons: items,
    administered_until: time,
    administration_notes: items,
    performers: items,
    more_lots: texts,
    expires_at: time,
    indications: items,
    order_control: code,
    placer_order: text,
    filler_order: text,
    observations: observations,
    detail: detail,
});
