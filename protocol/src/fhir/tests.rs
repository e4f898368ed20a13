//! Tests of the FHIR rendering.
