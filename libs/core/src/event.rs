//! Session events: the wire contract of the topic, and the one decoder.
//!
//! Records are keyed by the session id (UTF-8); values are JSON objects with a
//! `type` field (see `docs/events.md` and `docs/session-event.schema.json`).
//! A null value (tombstone) forgets the key. [`decode`] classifies *any* pair
//! of bytes — it never panics and never fails: what it cannot read is
//! [`Decoded::Malformed`], which the store turns into a revocation of the key
//! (fail closed).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::port::{SessionId, SidRef};

/// The `type` of a session-created event.
pub const CREATED: &str = "session.created";
/// The `type` of a session-revoked event.
pub const REVOKED: &str = "session.revoked";

/// One fact about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session was created and is live until `expires_at` (if given).
    Created {
        /// The session.
        sid: SessionId,
        /// Its owner; carried on the wire, not kept by the projection.
        user_id: String,
        /// When it was created.
        created_at: OffsetDateTime,
        /// When it stops being live on its own, if ever.
        expires_at: Option<OffsetDateTime>,
    },
    /// A session was revoked; it is never live again.
    Revoked {
        /// The session.
        sid: SessionId,
        /// When it was revoked.
        revoked_at: OffsetDateTime,
        /// Why (`logout`, `logout_all`, `admin`, …), if given.
        reason: Option<String>,
    },
    /// The key is forgotten (a null record value). Only producers that know
    /// the session has expired write one: absence already means revoked.
    Tombstone {
        /// The session.
        sid: SessionId,
    },
}

impl SessionEvent {
    /// The session this event is about.
    pub fn sid(&self) -> &SessionId {
        match self {
            Self::Created { sid, .. } | Self::Revoked { sid, .. } | Self::Tombstone { sid } => sid,
        }
    }

    /// The record key: the session id's bytes.
    pub fn key(&self) -> &[u8] {
        self.sid().as_str().as_bytes()
    }

    /// The record value: JSON for created and revoked, `None` for a tombstone.
    ///
    /// ```
    /// use revocation_core::{decode, Decoded, SessionEvent, SessionId};
    /// let event = SessionEvent::Revoked {
    ///     sid: SessionId::new("s-1").unwrap(),
    ///     revoked_at: time::macros::datetime!(2026-11-27 11:00 UTC),
    ///     reason: Some("logout".into()),
    /// };
    /// let value = event.to_value();
    /// assert_eq!(decode(Some(event.key()), value.as_deref()), Decoded::Event(event));
    /// ```
    pub fn to_value(&self) -> Option<Vec<u8>> {
        let wire = match self {
            Self::Created { sid, user_id, created_at, expires_at } => Wire::Created {
                sid: Cow::Borrowed(sid.as_str()),
                user_id: Cow::Borrowed(user_id),
                created_at: *created_at,
                expires_at: *expires_at,
            },
            Self::Revoked { sid, revoked_at, reason } => Wire::Revoked {
                sid: Cow::Borrowed(sid.as_str()),
                revoked_at: *revoked_at,
                reason: reason.as_deref().map(Cow::Borrowed),
            },
            Self::Tombstone { .. } => return None,
        };
        // Serializing these plain fields cannot fail.
        serde_json::to_vec(&wire).ok()
    }
}

/// The JSON shape of a record value, for writing.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Wire<'a> {
    #[serde(rename = "session.created")]
    Created {
        sid: Cow<'a, str>,
        user_id: Cow<'a, str>,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
        expires_at: Option<OffsetDateTime>,
    },
    #[serde(rename = "session.revoked")]
    Revoked {
        sid: Cow<'a, str>,
        #[serde(with = "time::serde::rfc3339")]
        revoked_at: OffsetDateTime,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
    },
}

/// The JSON shape of a record value, for reading: every field of every type
/// at once, so one pass over the bytes reads it (an internally tagged enum
/// would buffer the whole object first and read it twice — measured at a
/// third of replay time). Which fields are required is checked per type.
///
/// Generic over how strings are held: [`Flat::read`] tries `&str` first —
/// borrowed from the bytes, ~60 ns faster per record than `Cow` (a quarter of
/// the decode), but unable to hold a string with an escape in it — and reads
/// the record again with owned `Cow`s whenever that fails. The fields and
/// types are otherwise the same, so both read any record identically.
#[derive(Debug, PartialEq, Deserialize)]
struct Flat<S> {
    #[serde(rename = "type")]
    kind: S,
    sid: Option<S>,
    #[serde(default)]
    user_id: Option<S>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    #[serde(default)]
    reason: Option<S>,
}

impl<'a> Flat<Cow<'a, str>> {
    /// Reads a record value: the canonical encoding directly, else with
    /// borrowed strings, else with owned ones.
    fn read(value: &'a [u8]) -> serde_json::Result<Self> {
        if let Some(canonical) = Flat::canonical(value) {
            return Ok(canonical.map(Cow::Borrowed));
        }
        match serde_json::from_slice::<Flat<&'a str>>(value) {
            Ok(fast) => Ok(fast.map(Cow::Borrowed)),
            Err(_) => serde_json::from_slice(value),
        }
    }
}

impl<'a> Flat<&'a str> {
    /// Reads the value if it is in the *canonical encoding* — exactly what
    /// [`SessionEvent::to_value`] writes: compact JSON, the fields in the
    /// order of `docs/events.md`, no escapes in strings — and returns `None`
    /// for anything else, which the general reader then reads.
    ///
    /// Replay spends most of its CPU decoding, and nearly every record comes
    /// from our publisher, so this path is the common one: it compares the
    /// fixed parts of the layout instead of running serde's field matching,
    /// which halves the cost of decoding and applying a record
    /// (`decode_apply` group of the `check` bench).
    ///
    /// It accepts nothing serde_json would read differently: every string it
    /// returns is valid UTF-8 (the whole value is checked), holds no `\` and
    /// no control character, the times are parsed by the same `time`
    /// function the serde reader calls, and a time that does not parse falls
    /// through to the general reader for its error message. A property test
    /// holds the two readers equal on every value this one accepts.
    fn canonical(value: &'a [u8]) -> Option<Self> {
        let mut at = Canonical(std::str::from_utf8(value).ok()?);
        at.literal(r#"{"type":""#)?;
        let kind = at.string()?;
        let sid = Some(at.field("sid")?);
        let mut flat =
            Flat { kind, sid, user_id: None, created_at: None, expires_at: None, revoked_at: None, reason: None };
        match kind {
            CREATED => {
                flat.user_id = Some(at.field("user_id")?);
                flat.created_at = Some(at.time("created_at")?);
                if !at.end() {
                    flat.expires_at = Some(at.time("expires_at")?);
                }
            }
            REVOKED => {
                flat.revoked_at = Some(at.time("revoked_at")?);
                if !at.end() {
                    flat.reason = Some(at.field("reason")?);
                }
            }
            _ => return None,
        }
        at.end().then_some(flat)
    }
}

/// A cursor over a value being read by [`Flat::canonical`].
struct Canonical<'a>(&'a str);

impl<'a> Canonical<'a> {
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

impl<S> Flat<S> {
    fn map<T>(self, f: impl Fn(S) -> T) -> Flat<T> {
        Flat {
            kind: f(self.kind),
            sid: self.sid.map(&f),
            user_id: self.user_id.map(&f),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            reason: self.reason.map(&f),
        }
    }
}

/// What a record turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A well-formed event.
    Event(SessionEvent),
    /// A JSON object with a `type` this version does not know: counted and
    /// skipped, so producers can add types before consumers learn them.
    Unknown {
        /// The record's key.
        sid: SessionId,
        /// The unknown `type` (at most 64 characters of it).
        kind: String,
    },
    /// A record that cannot be read. When `key` is a valid session id it is
    /// revoked (fail closed); otherwise the record is only counted.
    Malformed {
        /// The record key, when it is a valid session id.
        key: Option<SessionId>,
        /// What is wrong, for logs (never contains the whole sid).
        reason: String,
    },
}

/// Classifies one record: its key and value bytes (`None` value = tombstone).
///
/// Never panics, whatever the bytes.
///
/// ```
/// use revocation_core::{decode, Decoded};
/// assert!(matches!(decode(Some(b"s-1"), None), Decoded::Event(_)));
/// assert!(matches!(decode(Some(b"s-1"), Some(b"not json")), Decoded::Malformed { key: Some(_), .. }));
/// assert!(matches!(
///     decode(Some(b"s-1"), Some(br#"{"type":"session.renamed","sid":"s-1"}"#)),
///     Decoded::Unknown { .. }
/// ));
/// ```
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Decoded {
    match classify(key, value) {
        Record::Tombstone(sid) => Decoded::Event(SessionEvent::Tombstone { sid: sid.to_owned() }),
        Record::Created { sid, user_id, created_at, expires_at } => Decoded::Event(SessionEvent::Created {
            sid: sid.to_owned(),
            user_id: user_id.into_owned(),
            created_at,
            expires_at,
        }),
        Record::Revoked { sid, revoked_at, reason } => Decoded::Event(SessionEvent::Revoked {
            sid: sid.to_owned(),
            revoked_at,
            reason: reason.map(Cow::into_owned),
        }),
        Record::Unknown { sid, kind } => {
            Decoded::Unknown { kind: kind.chars().take(64).collect(), sid: sid.to_owned() }
        }
        Record::Malformed { key, reason } => Decoded::Malformed { key: key.map(|sid| sid.to_owned()), reason },
    }
}

/// One record, classified, borrowing from its bytes: the single decoding
/// logic behind [`decode`] (which copies it out into owned events) and
/// [`crate::SessionStore::apply_record`] (which applies it in place).
pub(crate) enum Record<'a> {
    Tombstone(SidRef<'a>),
    Created { sid: SidRef<'a>, user_id: Cow<'a, str>, created_at: OffsetDateTime, expires_at: Option<OffsetDateTime> },
    Revoked { sid: SidRef<'a>, revoked_at: OffsetDateTime, reason: Option<Cow<'a, str>> },
    Unknown { sid: SidRef<'a>, kind: Cow<'a, str> },
    Malformed { key: Option<SidRef<'a>>, reason: String },
}

pub(crate) fn classify<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Record<'a> {
    let malformed = |key, reason| Record::Malformed { key, reason };
    let sid = match key.map(SidRef::from_bytes) {
        Some(Ok(sid)) => sid,
        Some(Err(why)) => return malformed(None, format!("record key is not a session id: {why}")),
        None => return malformed(None, "record has no key; the key must be the session id".into()),
    };
    let Some(value) = value else {
        return Record::Tombstone(sid);
    };
    let flat = match Flat::read(value) {
        Ok(flat) => flat,
        Err(why) => return malformed(Some(sid), format!("value is not a session event: {why}")),
    };
    let missing = |field: &str| format!("value is not a session event: {} lacks `{field}`", flat.kind);
    if flat.kind != CREATED && flat.kind != REVOKED {
        return Record::Unknown { sid, kind: flat.kind };
    }
    match flat.sid.as_deref() {
        None => return malformed(Some(sid), missing("sid")),
        Some(value_sid) if value_sid != sid.as_str() => {
            return malformed(Some(sid), "the value's sid differs from the record key".into());
        }
        Some(_) => {}
    }
    if flat.kind == CREATED {
        let (Some(user_id), Some(created_at)) = (flat.user_id, flat.created_at) else {
            let field = if flat.created_at.is_none() { "created_at" } else { "user_id" };
            return malformed(Some(sid), missing(field));
        };
        Record::Created { sid, user_id, created_at, expires_at: flat.expires_at }
    } else {
        let Some(revoked_at) = flat.revoked_at else {
            return malformed(Some(sid), missing("revoked_at"));
        };
        Record::Revoked { sid, revoked_at, reason: flat.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sid(s: &str) -> SessionId {
        SessionId::new(s).unwrap()
    }

    #[test]
    fn created_and_revoked_round_trip_through_json() {
        let events = [
            SessionEvent::Created {
                sid: sid("s-1"),
                user_id: "u-1".into(),
                created_at: datetime!(2026-11-27 10:00 UTC),
                expires_at: Some(datetime!(2026-11-28 10:00 UTC)),
            },
            SessionEvent::Created {
                sid: sid("s-2"),
                user_id: "u-1".into(),
                created_at: datetime!(2026-11-27 10:00 UTC),
                expires_at: None,
            },
            SessionEvent::Revoked { sid: sid("s-1"), revoked_at: datetime!(2026-11-27 11:00 UTC), reason: None },
        ];
        for event in events {
            let value = event.to_value();
            assert_eq!(decode(Some(event.key()), value.as_deref()), Decoded::Event(event));
        }
    }

    #[test]
    fn the_documented_examples_decode() {
        let created = br#"{"type":"session.created","sid":"abc","user_id":"u","created_at":"2026-11-27T10:00:00Z","expires_at":"2026-11-28T10:00:00Z"}"#;
        let revoked =
            br#"{"type":"session.revoked","sid":"abc","revoked_at":"2026-11-27T11:00:00+01:00","reason":"logout"}"#;
        assert!(matches!(decode(Some(b"abc"), Some(created)), Decoded::Event(SessionEvent::Created { .. })));
        assert!(matches!(decode(Some(b"abc"), Some(revoked)), Decoded::Event(SessionEvent::Revoked { .. })));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let value = br#"{"type":"session.revoked","sid":"abc","revoked_at":"2026-11-27T11:00:00Z","by":"admin"}"#;
        assert!(matches!(decode(Some(b"abc"), Some(value)), Decoded::Event(SessionEvent::Revoked { .. })));
    }

    #[test]
    fn unknown_types_are_classified_with_their_name() {
        let value = br#"{"type":"session.refreshed","sid":"abc"}"#;
        assert_eq!(
            decode(Some(b"abc"), Some(value)),
            Decoded::Unknown { sid: sid("abc"), kind: "session.refreshed".into() }
        );
    }

    #[test]
    fn bad_values_are_malformed_and_keep_a_valid_key() {
        let cases: [&[u8]; 8] = [
            b"",
            b"not json",
            b"[1,2,3]",
            br#"{"sid":"abc"}"#,
            br#"{"type":"session.revoked","sid":"abc"}"#,
            br#"{"type":"session.revoked","sid":"abc","revoked_at":"yesterday"}"#,
            br#"{"type":"session.created","sid":"abc","created_at":"2026-11-27T10:00:00Z"}"#,
            br#"{"type":7,"sid":"abc"}"#,
        ];
        for value in cases {
            match decode(Some(b"abc"), Some(value)) {
                Decoded::Malformed { key, .. } => assert_eq!(key, Some(sid("abc")), "{value:?}"),
                other => panic!("{value:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn a_key_that_disagrees_with_the_sid_is_malformed() {
        let value = br#"{"type":"session.created","sid":"other","user_id":"u","created_at":"2026-11-27T10:00:00Z"}"#;
        assert!(
            matches!(decode(Some(b"abc"), Some(value)), Decoded::Malformed { key: Some(k), .. } if k == sid("abc"))
        );
    }

    #[test]
    fn a_bad_key_is_malformed_without_a_key() {
        for key in [None, Some(&b""[..]), Some(&b"\xff\xfe"[..]), Some(&b"a\nb"[..])] {
            assert!(matches!(decode(key, Some(b"{}")), Decoded::Malformed { key: None, .. }), "{key:?}");
        }
    }

    #[test]
    fn deeply_nested_json_is_malformed_not_a_crash() {
        let value = "[".repeat(100_000);
        assert!(matches!(decode(Some(b"abc"), Some(value.as_bytes())), Decoded::Malformed { .. }));
    }

    #[test]
    fn sids_with_escapes_decode() {
        let value = br#"{"type":"session.revoked","sid":"a\"b\u00e9","revoked_at":"2026-11-27T11:00:00Z"}"#;
        let key = "a\"bé".as_bytes();
        assert!(matches!(decode(Some(key), Some(value)), Decoded::Event(SessionEvent::Revoked { .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// Any bytes at all: a classification, never a panic.
        #[test]
        fn the_decoder_never_panics_on_arbitrary_bytes(
            key in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
            value in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..256)),
        ) {
            let _ = decode(key.as_deref(), value.as_deref());
        }

        /// The borrowed fast path reads exactly what the escape-aware shape
        /// reads, or defers to it.
        #[test]
        fn the_fast_read_agrees_with_the_full_one(
            value in r#"\{("(type|sid|user_id|created_at|expires_at|revoked_at|reason)":("session\.(created|revoked)"|"s"|"a\\"b"|"\\u00e9x"|"2026-11-27T10:00:00Z"|"[^"\\]{0,8}"|[0-9]{1,3}|null),?){0,8}\}?"#,
        ) {
            type Fields = (String, Option<String>, Option<String>, Option<OffsetDateTime>, Option<OffsetDateTime>, Option<OffsetDateTime>, Option<String>);
            let fields = |f: Flat<Cow<'_, str>>| -> Fields {
                let own = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
                (f.kind.into_owned(), own(f.sid), own(f.user_id), f.created_at, f.expires_at, f.revoked_at, own(f.reason))
            };
            let fast = Flat::read(value.as_bytes()).map(fields).map_err(|e| e.to_string());
            let full = serde_json::from_slice::<Flat<Cow<'_, str>>>(value.as_bytes()).map(fields).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(fast, full);
        }

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
                let serde = serde_json::from_slice::<Flat<&str>>(&bytes).map_err(|e| e.to_string());
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
            proptest::prop_assert_eq!(decode(Some(event.key()), Some(&value)), Decoded::Event(event));
        }

        /// JSON-shaped noise around the real field names reaches deeper code paths.
        #[test]
        fn the_decoder_never_panics_on_json_like_input(
            value in r#"\{("(type|sid|user_id|created_at|expires_at|revoked_at|reason)":("session\.(created|revoked)"|"s"|"2026-11-27T10:00:00Z"|"[^"]{0,8}"|[0-9]{1,3}|null|true|\[|\{),?){0,8}\}?"#,
        ) {
            let _ = decode(Some(b"s"), Some(value.as_bytes()));
        }
    }

    #[test]
    fn a_null_value_is_a_tombstone() {
        assert_eq!(decode(Some(b"abc"), None), Decoded::Event(SessionEvent::Tombstone { sid: sid("abc") }));
    }
}
