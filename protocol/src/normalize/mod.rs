//! Normalization: turning what a sender wrote into coded, typed values.
//!
//! The terminology layer lives here: [`coding_system`] identifies HL7 coding
//! systems, [`ucum`] translates unit spellings to UCUM, and [`mapping`] holds
//! per-interface tables from local codes and units to standard ones.
//! Everything is sans-IO: tables arrive as text, lookups return borrowed data.

pub mod coding_system;
pub mod mapping;
pub mod ucum;
