//! The canonical reader: values laid out exactly as our publisher writes them.
//!
//! Canonical means compact JSON, the fields in the order of `docs/events.md`,
//! no escapes in strings. Nearly every record comes from our publisher, so
//! this is the common path of a replay; it compares the fixed parts of the
//! layout instead of running serde's field matching (the `decode_apply` group
//! of the `check` bench; history in `docs/benchmarks-notes.md`).
//!
//! It returns `None` for anything else, which serde then reads, and it
//! accepts nothing serde_json would read differently: every string it returns
//! is valid UTF-8 (the whole value is checked), holds no `\` and no control
//! character, and the times are parsed by the same `time` function the serde
//! reader calls; a time that does not parse falls through to serde for its
//! error message. The property tests below hold the two readers equal.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::{Flat, Text};
use crate::event::{CREATED, REVOKED};

impl<'a> Flat<'a> {
    /// Reads `value` if it is in the canonical encoding.
    pub(super) fn canonical(value: &'a [u8]) -> Option<Self> {
        let mut at = Cursor(std::str::from_utf8(value).ok()?);
        at.literal(r#"{"type":""#)?;
        let kind = at.string()?;
        let sid = Some(text(at.field("sid")?));
        let mut flat = Flat {
            kind: text(kind),
            sid,
            user_id: None,
            created_at: None,
            expires_at: None,
            revoked_at: None,
            not_before: None,
            reason: None,
        };
        match kind {
            CREATED => {
                flat.user_id = Some(text(at.field("user_id")?));
                flat.created_at = Some(at.time("created_at")?);
                if !at.end() {
                    flat.expires_at = Some(at.time("expires_at")?);
                }
            }
            REVOKED => {
                flat.revoked_at = Some(at.time("revoked_at")?);
                if !at.end() {
                    flat.reason = Some(text(at.field("reason")?));
                }
            }
            _ => return None,
        }
        at.end().then_some(flat)
    }
}

fn text(s: &str) -> Text<'_> {
    Text(Cow::Borrowed(s))
}

/// A cursor over the rest of a value being read.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn literal(&mut self, expected: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(expected)?;
        Some(())
    }

    /// The rest of a string whose opening quote was read: up to the closing
    /// quote, refusing escapes and control characters.
    fn string(&mut self) -> Option<&'a str> {
        let end = memchr::memchr(b'"', self.0.as_bytes())?;
        let (string, rest) = self.0.split_at(end);
        // No early exit, so the check runs over whole vectors of bytes.
        if string.bytes().fold(false, |refused, b| refused | (b < 0x20) | (b == b'\\')) {
            return None;
        }
        self.0 = &rest[1..];
        Some(string)
    }

    /// `,"name":"…"`: the next field, which must be `name`, holding a string.
    fn field(&mut self, name: &str) -> Option<&'a str> {
        self.literal(",\"")?;
        self.literal(name)?;
        self.literal("\":\"")?;
        self.string()
    }

    fn time(&mut self, name: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(self.field(name)?, &time::format_description::well_known::Rfc3339).ok()
    }

    /// Whether only the closing brace is left.
    fn end(&self) -> bool {
        self.0 == "}"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Decoded, RawRecord, RecordFormat};
    use crate::{EventJson, SessionEvent, SessionId};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The canonical reader returns nothing that serde_json reads
        /// differently: values laid out canonically, with awkward strings
        /// (escapes, control characters, quotes, non-ASCII), good and bad
        /// times, the wrong field order, and cut or padded ends.
        #[test]
        fn the_canonical_read_agrees_with_serde(
            kind in r#"session\.(created|revoked)|session\.other"#,
            strings in proptest::collection::vec(r#"[a-z0-9-]{0,12}|[^"]{0,6}|a\\"b|\\u00e9|é"#, 3),
            times in proptest::collection::vec(
                r#"2026-11-27T10:00:00Z|2026-11-27T10:00:00\.123456\+01:00|2026-13-27T10:00:00Z|[0-9T:Z.+-]{0,22}"#, 2),
            order in 0..3usize,
            optional in proptest::bool::ANY,
            cut in proptest::option::of(0..200usize),
            padding in r#"|\}| |,"x":1\}|[^a]{0,2}"#,
        ) {
            let [sid, user, reason] = [&strings[0], &strings[1], &strings[2]];
            let [t1, t2] = [&times[0], &times[1]];
            let mut value = match order {
                0 => format!(r#"{{"type":"{kind}","sid":"{sid}","user_id":"{user}","created_at":"{t1}""#),
                1 => format!(r#"{{"type":"{kind}","sid":"{sid}","revoked_at":"{t1}""#),
                _ => format!(r#"{{"sid":"{sid}","type":"{kind}","created_at":"{t1}","user_id":"{user}""#),
            };
            if optional {
                value += &if order == 1 { format!(r#","reason":"{reason}""#) } else { format!(r#","expires_at":"{t2}""#) };
            }
            value.push('}');
            value += &padding;
            let mut bytes = value.into_bytes();
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            if let Some(canonical) = Flat::canonical(&bytes) {
                let serde = serde_json::from_slice::<Flat<'_>>(&bytes).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(Ok(canonical), serde);
            }
        }

        /// What our publisher writes always takes the canonical path (when
        /// its strings need no escapes), and reads back as written.
        #[test]
        fn published_values_are_canonical(
            sid in "[a-z0-9-]{1,36}",
            text in "[a-zA-Z0-9 ._@-]{0,20}",
            micros in 0i64..4_000_000_000_000_000,
            offset_minutes in -900i32..900,
            revoked in proptest::bool::ANY,
            optional in proptest::bool::ANY,
        ) {
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let at = (OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(micros)).to_offset(offset);
            let sid = SessionId::new(sid).unwrap();
            let event = if revoked {
                SessionEvent::Revoked { sid, revoked_at: at, reason: optional.then(|| text.clone()) }
            } else {
                SessionEvent::Created { sid, user_id: text.clone(), created_at: at, expires_at: optional.then_some(at) }
            };
            let value = event.to_value().unwrap();
            proptest::prop_assert!(Flat::canonical(&value).is_some(), "{}", String::from_utf8_lossy(&value));
            let decoded = EventJson.decode(&RawRecord::new(Some(event.key()), Some(&value)));
            proptest::prop_assert_eq!(decoded, Decoded::from(&event));
        }
    }
}
