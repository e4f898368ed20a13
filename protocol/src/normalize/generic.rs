//! Any message type without a dedicated normalizer to [`GenericMessage`]:
//! its segments as text, so nothing is lost and the hub can still route it.
//!
//! This never fails: the segments are the parser's segments (MSH excluded,
//! its delimiters kept in `delimiters`), decoded from the message's
//! character set to UTF-8 with escape sequences left as sent.

use crate::hl7::Message;
use crate::record::GenericMessage;

/// Keeps every segment after MSH as text.
pub(crate) fn generic(msg: &Message<'_>) -> GenericMessage {
    let msh = msg.msh();
    let mut delimiters = String::with_capacity(6);
    for n in [1, 2] {
        if let Some(field) = msh.field(n) {
            delimiters.push_str(&field.text());
        }
    }
    let mut segments = Vec::with_capacity(msg.segment_count().saturating_sub(1));
    segments.extend(msg.segments().skip(1).map(|s| s.text().into_owned()));
    GenericMessage {
        delimiters,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_after_msh_is_kept_as_sent() {
        let m = Message::parse(
            b"MSH#!@%*#A#B#C#D#2024##SIU!S12#1#P#2.5\rSCH#1##x%T%y\rZXY#M\xfcller#\r",
        )
        .unwrap();
        let g = generic(&m);
        assert_eq!(g.delimiters, "#!@%*");
        assert_eq!(g.segments, ["SCH#1##x%T%y", "ZXY#Müller#"]);
    }
}
