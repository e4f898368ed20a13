//! Configuration errors, worded for the person fixing the file.
//!
//! Every error carries the file, the position (line:column, 1-based) where it can be found, the
//! key path (`listener[1].allow[0]`) and a [`Problem`] that says what was expected. Positions come
//! from toml's spans: of the error itself for TOML and type errors, or of the offending value
//! (or, for a missing key, its enclosing table) for validation errors.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::values::{human_duration, human_size};

/// A line and column in the configuration file, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number, from 1, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read the configuration file", .path.display())]
    Read {
        /// The file that was tried.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}{}: invalid TOML: {message}", .file.display(), at(.position))]
    Syntax {
        /// The configuration file.
        file: PathBuf,
        /// Where the parser stopped, if known.
        position: Option<Position>,
        /// The parser's description of the mistake.
        message: String,
    },
    /// A key is missing, unknown, of the wrong type or has an invalid value.
    #[error("{}{}: {key}: {problem}", .file.display(), at(.position))]
    Key {
        /// The configuration file.
        file: PathBuf,
        /// Where the key or its table is, if known.
        position: Option<Position>,
        /// The key path, e.g. `listener[1].allow[0]` or `hub.keep_alive`.
        key: String,
        /// What is wrong with it (boxed to keep the error small).
        problem: Box<Problem>,
    },
}

impl ConfigError {
    /// The key path the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    /// What is wrong, if the error is about one key.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Key { problem, .. } => Some(problem),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    /// The position in the file, if known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ConfigError::Syntax { position, .. } | ConfigError::Key { position, .. } => *position,
            ConfigError::Read { .. } => None,
        }
    }
}

/// `":line:column"` or nothing.
fn at(position: &Option<Position>) -> String {
    position.map(|p| format!(":{p}")).unwrap_or_default()
}

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A required key is absent.
    #[error("required key is missing (add e.g. {example})")]
    Missing {
        /// A line that would fix it.
        example: &'static str,
    },
    /// Rejected while reading the TOML into the expected shape: unknown key, wrong type or
    /// unknown choice. The message is toml's/serde's and lists the expected keys or choices.
    #[error("{message}")]
    Shape {
        /// The deserializer's message.
        message: String,
    },
    /// An identifier contains characters that are not allowed (or is empty or too long).
    #[error(
        "{value:?} is not a valid name (expected 1 to 64 of {allowed}; it becomes part of MQTT topics)"
    )]
    Name {
        /// The value as written.
        value: String,
        /// The allowed characters.
        allowed: &'static str,
    },
    /// A name reserved by the topic layout (`gateway.org = "enroll"`).
    #[error(
        "{value:?} is reserved: the topics under this organization level are the enrollment topics, where claim certificates publish (choose another organization name)"
    )]
    Reserved {
        /// The value as written.
        value: String,
    },
    /// A size could not be parsed.
    #[error(
        "{value:?} is not a size (expected e.g. \"512 MiB\" or \"2 GiB\"; KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000)"
    )]
    Size {
        /// The value as written.
        value: String,
    },
    /// A size is outside the allowed range.
    #[error("{value:?} is out of range (allowed: {} to {})", human_size(*.min), human_size(*.max))]
    SizeRange {
        /// The value as written.
        value: String,
        /// Smallest allowed, in bytes.
        min: u64,
        /// Largest allowed, in bytes.
        max: u64,
    },
    /// A duration could not be parsed.
    #[error("{value:?} is not a duration (expected e.g. \"30s\", \"5m\", \"12h\" or \"7d\")")]
    Duration {
        /// The value as written.
        value: String,
    },
    /// A duration was written as a bare number.
    #[error("{value} has no unit (write e.g. \"{value}s\" for seconds)")]
    DurationUnit {
        /// The number as written.
        value: i64,
    },
    /// A duration is outside the allowed range.
    #[error("{value:?} is out of range (allowed: {} to {})", human_duration(*.min), human_duration(*.max))]
    DurationRange {
        /// The value as written.
        value: String,
        /// Shortest allowed.
        min: Duration,
        /// Longest allowed.
        max: Duration,
    },
    /// A duration must be shorter than another key's.
    #[error(
        "{} must be shorter than {other_key} ({}): the alarm comes that long before the entry expires",
        human_duration(*.value), human_duration(*.other)
    )]
    NotShorterThan {
        /// The value given.
        value: Duration,
        /// The key it must be shorter than.
        other_key: &'static str,
        /// That key's value.
        other: Duration,
    },
    /// An integer is outside the allowed range.
    #[error("{value} is out of range (allowed: {min} to {max})")]
    IntegerRange {
        /// The value as written.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// An allowlist entry is not an address or network.
    #[error(
        "{value:?} is not an IP address or network (expected e.g. \"10.0.0.0/24\" or \"192.0.2.7\")"
    )]
    Network {
        /// The value as written.
        value: String,
    },
    /// An allowlist is empty, so nothing could connect.
    #[error(
        "is empty, so no device could connect (list the senders' networks, e.g. [\"10.0.0.0/24\"]; to allow any source write [\"0.0.0.0/0\", \"::/0\"])"
    )]
    EmptyAllowList,
    /// A bind address is not `address:port`.
    #[error(
        "{value:?} is not an address and port (expected e.g. \"0.0.0.0:2575\" or \"[::]:2575\")"
    )]
    SocketAddr {
        /// The value as written.
        value: String,
    },
    /// Two listeners share a name.
    #[error("name {name:?} is already used by listener[{first}] (names must be unique)")]
    DuplicateName {
        /// The repeated name.
        name: String,
        /// Index of the listener that has it first.
        first: usize,
    },
    /// Two listeners would bind the same port on overlapping addresses.
    #[error(
        "{bind} conflicts with listener[{first}] bound to {other} (same port, overlapping addresses)"
    )]
    DuplicateBind {
        /// This listener's address.
        bind: String,
        /// The other listener's address.
        other: String,
        /// Index of the other listener.
        first: usize,
    },
    /// The hub URL is malformed.
    #[error(
        "{value:?} is not a hub URL: {reason} (expected e.g. \"mqtts://hub.example.org:8883\")"
    )]
    Url {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The hub URL is plaintext MQTT without the explicit opt-in.
    #[error(
        "{value:?} is unencrypted MQTT and is refused (use mqtts://; only for a lab test, set hub.insecure_plaintext = true)"
    )]
    PlaintextRefused {
        /// The value as written.
        value: String,
    },
    /// A TLS setting is given for a plaintext hub connection, where it would be ignored.
    #[error(
        "is set, but hub.url is plaintext mqtt:// so it would be ignored (remove it or use mqtts://)"
    )]
    TlsWithPlaintext,
    /// The time zone is not in the time zone database.
    #[error(
        "{value:?} is not a known time zone ({reason}; expected an IANA name such as \"Europe/Berlin\")"
    )]
    TimeZone {
        /// The value as written.
        value: String,
        /// The lookup error.
        reason: String,
    },
    /// A path is empty or uses `~`.
    #[error(
        "{value:?} is not a usable path: {reason} (expected an absolute path, or one relative to the directory of the config file)"
    )]
    Path {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The topic prefix is not a valid MQTT topic.
    #[error("{value:?} is not a usable topic prefix: {reason} (expected e.g. \"hl7edge/v1\")")]
    TopicPrefix {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A pushed listener setting that only the configuration file (or a mapping push) changes.
    #[error(
        "a listener push changes bind, allow, max_frame, idle_timeout, max_connections and tls only; {key} stays as the configuration file says (remove it from the pushed settings{hint})"
    )]
    NotPushable {
        /// The key.
        key: &'static str,
        /// What to do instead, if anything.
        hint: &'static str,
    },
    /// The MQTT client id is empty or contains spaces or control characters.
    #[error(
        "{value:?} is not a usable MQTT client id (expected 1 to 256 visible characters, no spaces)"
    )]
    ClientId {
        /// The value as written.
        value: String,
    },
}

/// A problem at a key, before the file name and position are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    pub key: String,
    pub problem: Problem,
}

/// `map_err(at_key("hub.url"))`: attaches a key path to a [`Problem`].
pub(super) fn at_key(key: impl Into<String>) -> impl FnOnce(Problem) -> Invalid {
    let key = key.into();
    move |problem| Invalid { key, problem }
}

/// The 1-based line and column of byte `offset` in `text`.
pub(super) fn position_of(text: &str, offset: usize) -> Option<Position> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..)?.chars().count() + 1;
    Some(Position { line, column })
}

/// The position of the value at `key` (e.g. `listener[1].allow[0]`) in the parsed document, or
/// of its deepest existing parent table; `None` when not even the first segment exists.
pub(super) fn locate(text: &str, root: &Spanned<DeTable<'_>>, key: &str) -> Option<Position> {
    let mut found: Option<&Spanned<DeValue<'_>>> = None;
    for segment in segments(key) {
        let next = match (found, &segment) {
            (None, Segment::Key(name)) => root.get_ref().get(*name),
            (None, Segment::Index(_)) => None,
            (Some(value), Segment::Key(name)) => value.get_ref().get(*name),
            (Some(value), Segment::Index(i)) => value.get_ref().get(*i),
        };
        match next {
            Some(value) => found = Some(value),
            None => break,
        }
    }
    found.and_then(|value| position_of(text, value.span().start))
}

#[derive(Debug, PartialEq)]
enum Segment<'k> {
    Key(&'k str),
    Index(usize),
}

/// Splits `a.b[1].c[0]` into `a`, `b`, `1`, `c`, `0`.
fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            out.push(Segment::Key(name));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_lines_and_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position_of(text, 0), Some(Position { line: 1, column: 1 }));
        let offset = text.find('"').unwrap();
        assert_eq!(
            position_of(text, offset),
            Some(Position { line: 2, column: 6 })
        );
    }

    #[test]
    fn position_outside_the_text_is_none() {
        assert_eq!(position_of("abc", 10), None);
    }

    #[test]
    fn key_paths_split_into_names_and_indices() {
        assert_eq!(
            segments("listener[1].allow[0]"),
            vec![
                Segment::Key("listener"),
                Segment::Index(1),
                Segment::Key("allow"),
                Segment::Index(0)
            ]
        );
    }

    #[test]
    fn locate_finds_an_array_element_of_an_array_of_tables() {
        let text = "[[listener]]\nname = \"a\"\n[[listener]]\nallow = [\"x\", \"10.0.0.0/33\"]\n";
        let root = DeTable::parse(text).unwrap();
        let pos = locate(text, &root, "listener[1].allow[1]").unwrap();
        assert_eq!(
            pos,
            Position {
                line: 4,
                column: 15
            }
        );
    }

    #[test]
    fn locate_falls_back_to_the_enclosing_table_for_a_missing_key() {
        let text = "[gateway]\norg = \"a\"\n\n[hub]\nurl = \"x\"\n";
        let root = DeTable::parse(text).unwrap();
        let pos = locate(text, &root, "hub.keep_alive").unwrap();
        assert_eq!(pos.line, 4);
        assert_eq!(locate(text, &root, "storage.path"), None);
    }

    #[test]
    fn key_errors_show_file_position_key_and_expectation() {
        let err = ConfigError::Key {
            file: PathBuf::from("/etc/hl7edge/hl7edge.toml"),
            position: Some(Position {
                line: 14,
                column: 10,
            }),
            key: "listener[1].allow[0]".into(),
            problem: Box::new(Problem::Network {
                value: "10.0.0.0/33".into(),
            }),
        };
        assert_eq!(
            err.to_string(),
            "/etc/hl7edge/hl7edge.toml:14:10: listener[1].allow[0]: \"10.0.0.0/33\" is not an IP \
             address or network (expected e.g. \"10.0.0.0/24\" or \"192.0.2.7\")"
        );
    }
}
