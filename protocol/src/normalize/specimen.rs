//! SPM specimens (and OBR-15, the specimen source of versions before 2.5)
//! to [`Specimen`]s, and which specimens are quality-control material.
//!
//! SPM-11 (specimen role, HL7 table 0369) tells a patient's specimen (`P`,
//! or none) from control material: `Q` control, `C` calibrator, `E`
//! electronic QC, `F` and `O` proficiency testing, `R` replicate, `V`
//! verifying calibrator, `B` blind sample (IHE LAW). Results on those are
//! about the material, never about the patient ([`is_quality_control`]).

use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, coded, coded_private, component_time, decimal, each_coded, entity_id, field_time,
    first, identifier, string, text, unit_in,
};
use crate::normalize::fields::Fields;
use crate::record::{Quantity, Specimen};

/// SPM-11 codes of control material.
const QC_ROLES: [&str; 8] = ["Q", "C", "E", "F", "O", "R", "V", "B"];

/// One SPM.
pub(crate) fn specimen(work: &mut Work<'_>, spm: &Fields<'_>) -> Specimen {
    let ids = spm.field(2);
    let id = |n| ids.and_then(|f| f.component(n));
    Specimen {
        placer_id: entity_id(spm.parts(id(1))),
        filler_id: entity_id(spm.parts(id(2))),
        parent_ids: parents(spm),
        kind: coded(work, spm.parts(spm.field(4)), Accept::GENERAL, spm.at(4)),
        additives: each_coded(work, spm, 6, Accept::GENERAL),
        collection_method: coded_private(work, spm.parts(spm.field(7)), Accept::GENERAL, spm.at(7))
            .map(Box::new),
        source_site: coded_private(work, spm.parts(spm.field(8)), Accept::GENERAL, spm.at(8)),
        collection_site: coded_private(work, spm.parts(spm.field(10)), Accept::GENERAL, spm.at(10))
            .map(Box::new),
        role: coded_private(work, spm.parts(spm.field(11)), Accept::GENERAL, spm.at(11)),
        amount: amount(work, spm, 12).map(Box::new),
        description: string(spm.field(14)),
        collected_at: component_time(work, spm.field(17).and_then(|f| f.component(1)), spm.at(17)),
        collected_until: component_time(
            work,
            spm.field(17).and_then(|f| f.component(2)),
            spm.at(17).component(2),
        ),
        received_at: field_time(work, spm, 18),
        reject_reasons: each_coded(work, spm, 21, Accept::GENERAL),
        conditions: each_coded(work, spm, 24, Accept::GENERAL),
        container: coded_private(work, spm.parts(spm.field(27)), Accept::GENERAL, spm.at(27))
            .map(Box::new),
        accession_id: first(spm, 30, identifier).map(Box::new),
        notes: Vec::new(),
    }
}

/// SPM-3: each repetition's placer and filler ids.
fn parents(spm: &Fields<'_>) -> Vec<crate::record::EntityId> {
    let mut out = Vec::new();
    let Some(field) = spm.field(3) else {
        return out;
    };
    for rep in field.repetitions() {
        for n in [1, 2] {
            if let Some(id) = entity_id(spm.parts(rep.component(n))) {
                out.push(id);
            }
        }
    }
    out
}

/// A CQ quantity (amount^units) in field `n`.
fn amount(work: &mut Work<'_>, fields: &Fields<'_>, n: usize) -> Option<Quantity> {
    let field = fields.field(n)?;
    let value = decimal(&text(field.component(1))?)?;
    let unit = unit_in(
        work,
        fields.parts(field.component(2)),
        fields.at(n).component(2),
    );
    Some(Quantity {
        value,
        unit,
        converted: None,
    })
}

/// OBR-15 (SPS, before v2.5: source^additives^collection method^body
/// site^site modifier^method modifier^role) as a specimen, when it holds
/// one.
pub(crate) fn from_obr15(work: &mut Work<'_>, obr: &Fields<'_>) -> Option<Specimen> {
    let sps = obr.field(15)?;
    let part = |n| obr.parts(sps.component(n));
    let at = |n| obr.at(15).repetition(1).component(n);
    let specimen = Specimen {
        kind: coded(work, part(1), Accept::GENERAL, at(1)),
        additives: coded_private(work, part(2), Accept::GENERAL, at(2))
            .into_iter()
            .collect(),
        description: string(sps.component(3)),
        source_site: coded_private(work, part(4), Accept::GENERAL, at(4)),
        role: coded_private(work, part(7), Accept::GENERAL, at(7)),
        ..Specimen::default()
    };
    (specimen != Specimen::default()).then_some(specimen)
}

/// True when the specimen is control material (see the module doc).
pub(crate) fn is_quality_control(s: &Specimen) -> bool {
    s.role.as_ref().is_some_and(|role| {
        QC_ROLES
            .iter()
            .any(|qc| role.original.code.eq_ignore_ascii_case(qc))
    })
}
