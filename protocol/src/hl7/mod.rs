//! HL7 v2: parsing, escapes, validation, ACK/NAK building and MLLP framing.

pub mod mllp;
