//! HL7 v2: parsing, escapes, validation, ACK/NAK building and MLLP framing.

pub mod ack;
pub mod batch;
pub mod charset;
pub mod datetime;
pub mod delimiters;
pub mod element;
pub mod error;
pub mod escape;
pub(crate) mod fields;
pub mod issue;
pub mod limits;
pub mod message;
pub(crate) mod message_type;
pub mod mllp;
pub mod path;
pub(crate) mod scan;
pub mod validate;

pub use charset::{DeclaredCharset, Encoding};
pub use delimiters::Delimiters;
pub use element::{Element, Level};
pub use error::{ParseError, PathError};
pub use issue::{ErrorCode, Issue, Location, Severity};
pub use message::{Message, MessageType, Segment};
pub use path::Path;
