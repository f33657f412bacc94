//! [`EventJson`]: our own event format (`docs/events.md`), the first
//! [`RecordFormat`].
//!
//! A value is read in one of two ways. What our publisher writes — compact
//! JSON, fields in the documented order, no escapes — is read by the
//! [`canonical`] reader, which compares the fixed parts of the layout instead
//! of running serde's field matching (replay spends most of its CPU here).
//! Anything else goes through serde, borrowing strings from the bytes where
//! it can. A property test holds the two readers equal wherever the first
//! one answers.

mod canonical;

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use time::OffsetDateTime;

use crate::clock::Timestamp;
use crate::event::{CREATED, REVOKED, USER_REVOKED_BEFORE, cutoff_key};
use crate::format::{Change, Decoded, RawRecord, RecordFormat};
use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::user::UserTag;

/// Session events as JSON values keyed by the session id: our own format,
/// what [`SessionEvent::to_value`](crate::SessionEvent::to_value) writes.
///
/// ```
/// use revocation_core::{Decoded, EventJson, RawRecord, RecordFormat};
/// let read = |value: &'static [u8]| EventJson.decode(&RawRecord::new(Some(b"s-1"), Some(value)));
/// assert!(matches!(read(b"not json"), Decoded::Malformed { key: Some(_), .. }));
/// assert!(matches!(read(br#"{"type":"session.renamed","sid":"s-1"}"#), Decoded::Unknown { .. }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventJson;

impl RecordFormat for EventJson {
    fn name(&self) -> &'static str {
        "events"
    }

    fn decode<'a>(&self, record: &RawRecord<'a>) -> Decoded<'a> {
        let malformed = |key, reason| Decoded::Malformed { key, reason };
        if let Some(cutoff) = record.key.and_then(cutoff_key) {
            return decode_cutoff(cutoff, record.value);
        }
        let sid = match record.key.map(SidRef::from_bytes) {
            Some(Ok(sid)) => sid,
            Some(Err(why)) => return malformed(None, format!("record key is not a session id: {why}")),
            None => return malformed(None, "record has no key; the key must be the session id".into()),
        };
        let Some(value) = record.value else {
            return Decoded::Change { sid, change: Change::Forget };
        };
        let flat = match Flat::read(value) {
            Ok(flat) => flat,
            Err(why) => return malformed(Some(sid), format!("value is not a session event: {why}")),
        };
        let missing = |field: &str| format!("value is not a session event: {} lacks `{field}`", flat.kind.0);
        if flat.kind.0 == USER_REVOKED_BEFORE {
            // Under a session's key by a producer's mistake: applied from the
            // value all the same (fail closed), and counted rejected.
            return match (&flat.user_id, flat.not_before) {
                (Some(user), Some(not_before)) if crate::user::validate(&user.0).is_ok() => Decoded::UserCutoff {
                    user: UserTag::of(&user.0),
                    not_before: Timestamp::from_datetime(not_before),
                    rejected: Some("a user cutoff under a session's key; publish it under its own key".into()),
                },
                _ => malformed(
                    Some(sid),
                    "value is not a user cutoff: it lacks a valid `user_id` or `not_before`".into(),
                ),
            };
        }
        if flat.kind.0 != CREATED && flat.kind.0 != REVOKED {
            let kind = match flat.kind.0 {
                Cow::Borrowed(kind) => Cow::Borrowed(truncate(kind, 64)),
                Cow::Owned(kind) => Cow::Owned(truncate(&kind, 64).to_owned()),
            };
            return Decoded::Unknown { sid, kind };
        }
        match flat.sid.as_ref() {
            None => return malformed(Some(sid), missing("sid")),
            Some(value_sid) if value_sid.0 != sid.as_str() => {
                return malformed(Some(sid), "the value's sid differs from the record key".into());
            }
            Some(_) => {}
        }
        let change = if flat.kind.0 == CREATED {
            let (Some(user_id), Some(created_at)) = (&flat.user_id, flat.created_at) else {
                let field = if flat.created_at.is_none() { "created_at" } else { "user_id" };
                return malformed(Some(sid), missing(field));
            };
            Change::Create {
                state: SessionState::created(UserTag::of(&user_id.0), created_at, flat.expires_at),
                created_at: Timestamp::from_datetime(created_at),
            }
        } else {
            let Some(revoked_at) = flat.revoked_at else {
                return malformed(Some(sid), missing("revoked_at"));
            };
            Change::Merge(SessionState::revoked(revoked_at))
        };
        Decoded::Change { sid, change }
    }
}

/// A record whose key is a user cutoff's: the key says whose and when (so
/// even an unreadable value is applied, fail closed); the value must agree.
pub(crate) fn decode_cutoff<'a>(key: Result<(&str, Timestamp), &'static str>, value: Option<&[u8]>) -> Decoded<'a> {
    let (user, not_before) = match key {
        Ok(parts) => parts,
        Err(why) => return Decoded::Malformed { key: None, reason: why.into() },
    };
    let Some(value) = value else {
        // No producer of ours writes one: compaction would then drop the
        // cutoff's record, and a cold replay would never see it.
        return Decoded::UserCutoff {
            user: UserTag::of(user),
            not_before,
            rejected: Some("a tombstone of a user cutoff's key: after compaction a replay loses the cutoff".into()),
        };
    };
    let (not_before, rejected) = match serde_json::from_slice::<Flat<'_>>(value) {
        Err(why) => (not_before, Some(format!("value is not a user cutoff: {why}"))),
        Ok(flat) if flat.kind.0 != USER_REVOKED_BEFORE => {
            (not_before, Some(format!("a user cutoff's key holds a value of type {:?}", truncate(&flat.kind.0, 64))))
        }
        Ok(flat) if flat.user_id.as_ref().map(|u| u.0.as_ref()) != Some(user) => {
            (not_before, Some("the value's user_id differs from the record key".into()))
        }
        Ok(flat) => match flat.not_before.map(Timestamp::from_datetime) {
            Some(value_at) if value_at == not_before => (not_before, None),
            // Disagreeing instants: the later one (fail closed).
            Some(value_at) => {
                (value_at.max(not_before), Some("the value's not_before differs from the record key".into()))
            }
            None => (not_before, Some("the value lacks not_before".into())),
        },
    };
    Decoded::UserCutoff { user: UserTag::of(user), not_before, rejected }
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(end, _)| &text[..end])
}

/// The JSON shape of a record value, for reading: every field of every type
/// at once, so one pass over the bytes reads it (an internally tagged enum
/// would buffer the object and read it twice). Which fields are required is
/// checked per type, in [`EventJson::decode`].
#[derive(Debug, PartialEq, Deserialize)]
struct Flat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    sid: Option<Text<'a>>,
    #[serde(default, borrow)]
    user_id: Option<Text<'a>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    not_before: Option<OffsetDateTime>,
    #[serde(default, borrow)]
    reason: Option<Text<'a>>,
}

impl<'a> Flat<'a> {
    /// Reads a record value: the canonical encoding directly, anything else
    /// with serde.
    fn read(value: &'a [u8]) -> serde_json::Result<Self> {
        match Flat::canonical(value) {
            Some(canonical) => Ok(canonical),
            None => serde_json::from_slice(value),
        }
    }
}

/// A JSON string borrowed from the value when it holds no escape, owned when
/// it does. (`Option<Cow<str>>` cannot borrow through serde's derive, which
/// only borrows a bare `Cow<str>`.)
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SessionEvent, SessionId};
    use time::macros::datetime;

    fn read<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Decoded<'a> {
        EventJson.decode(&RawRecord::new(key, value))
    }

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
            SessionEvent::Tombstone { sid: sid("s-1") },
        ];
        for event in &events {
            let value = event.to_value();
            assert_eq!(read(Some(event.key()), value.as_deref()), Decoded::from(event));
        }
    }

    #[test]
    fn the_documented_examples_decode() {
        let created = br#"{"type":"session.created","sid":"abc","user_id":"u","created_at":"2026-11-27T10:00:00Z","expires_at":"2026-11-28T10:00:00Z"}"#;
        let revoked =
            br#"{"type":"session.revoked","sid":"abc","revoked_at":"2026-11-27T11:00:00+01:00","reason":"logout"}"#;
        let change = |value| match read(Some(b"abc"), Some(value)) {
            Decoded::Change { change: Change::Merge(state) | Change::Create { state, .. }, .. } => state,
            other => panic!("{other:?}"),
        };
        assert!(change(created).is_created());
        assert!(change(revoked).is_revoked());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let value = br#"{"type":"session.revoked","sid":"abc","revoked_at":"2026-11-27T11:00:00Z","by":"admin"}"#;
        assert!(
            matches!(read(Some(b"abc"), Some(value)), Decoded::Change { change: Change::Merge(s), .. } if s.is_revoked())
        );
    }

    #[test]
    fn unknown_types_are_classified_with_their_name() {
        let value = br#"{"type":"session.refreshed","sid":"abc"}"#;
        assert_eq!(
            read(Some(b"abc"), Some(value)),
            Decoded::Unknown { sid: SidRef::new("abc").unwrap(), kind: "session.refreshed".into() }
        );
        let long = format!(r#"{{"type":"{}","sid":"abc"}}"#, "é".repeat(100));
        match read(Some(b"abc"), Some(long.as_bytes())) {
            Decoded::Unknown { kind, .. } => assert_eq!(kind.chars().count(), 64),
            other => panic!("{other:?}"),
        }
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
            match read(Some(b"abc"), Some(value)) {
                Decoded::Malformed { key, .. } => assert_eq!(key, Some(SidRef::new("abc").unwrap()), "{value:?}"),
                other => panic!("{value:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn a_key_that_disagrees_with_the_sid_is_malformed() {
        let value = br#"{"type":"session.created","sid":"other","user_id":"u","created_at":"2026-11-27T10:00:00Z"}"#;
        assert!(
            matches!(read(Some(b"abc"), Some(value)), Decoded::Malformed { key: Some(k), .. } if k.as_str() == "abc")
        );
    }

    #[test]
    fn a_bad_key_is_malformed_without_a_key() {
        for key in [None, Some(&b""[..]), Some(&b"\xff\xfe"[..]), Some(&b"a\nb"[..])] {
            assert!(matches!(read(key, Some(b"{}")), Decoded::Malformed { key: None, .. }), "{key:?}");
        }
    }

    #[test]
    fn deeply_nested_json_is_malformed_not_a_crash() {
        let value = "[".repeat(100_000);
        assert!(matches!(read(Some(b"abc"), Some(value.as_bytes())), Decoded::Malformed { .. }));
    }

    #[test]
    fn sids_with_escapes_decode() {
        let value = br#"{"type":"session.revoked","sid":"a\"b\u00e9","revoked_at":"2026-11-27T11:00:00Z"}"#;
        let key = "a\"bé".as_bytes();
        assert!(matches!(read(Some(key), Some(value)), Decoded::Change { .. }));
    }

    #[test]
    fn a_null_value_is_a_tombstone() {
        assert_eq!(
            read(Some(b"abc"), None),
            Decoded::Change { sid: SidRef::new("abc").unwrap(), change: Change::Forget }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// Any bytes at all: a classification, never a panic.
        #[test]
        fn the_decoder_never_panics_on_arbitrary_bytes(
            key in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
            value in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..256)),
        ) {
            let _ = read(key.as_deref(), value.as_deref());
        }

        /// JSON-shaped noise around the real field names reaches deeper code paths.
        #[test]
        fn the_decoder_never_panics_on_json_like_input(
            value in r#"\{("(type|sid|user_id|created_at|expires_at|revoked_at|reason)":("session\.(created|revoked)"|"s"|"2026-11-27T10:00:00Z"|"[^"]{0,8}"|[0-9]{1,3}|null|true|\[|\{),?){0,8}\}?"#,
        ) {
            let _ = read(Some(b"s"), Some(value.as_bytes()));
        }

        /// Strings with and without escapes read the same as through
        /// `serde_json::Value`: the borrowing reader loses nothing.
        #[test]
        fn borrowed_and_escaped_strings_read_like_serde_values(
            value in r#"\{("(type|sid|user_id|reason)":("session\.(created|revoked)"|"s"|"a\\"b"|"\\u00e9x"|"[^"\\]{0,8}"),?){0,5}\}"#,
        ) {
            let ours = serde_json::from_slice::<Flat<'_>>(value.as_bytes()).ok();
            let theirs = serde_json::from_slice::<serde_json::Value>(value.as_bytes()).ok();
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                let field = |name: &str| theirs.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                proptest::prop_assert_eq!(Some(ours.kind.0.into_owned()), field("type"));
                proptest::prop_assert_eq!(ours.sid.map(|t| t.0.into_owned()), field("sid"));
                proptest::prop_assert_eq!(ours.user_id.map(|t| t.0.into_owned()), field("user_id"));
                proptest::prop_assert_eq!(ours.reason.map(|t| t.0.into_owned()), field("reason"));
            }
        }
    }

    #[test]
    fn a_cutoffs_key_holds_it_against_a_disagreeing_value_or_a_tombstone() {
        let cutoff = crate::UserRevokedBefore {
            user_id: crate::UserId::new("u-42").unwrap(),
            not_before: datetime!(2026-12-03 10:00 UTC),
            reason: None,
        };
        let key = cutoff.key();
        let at = Timestamp::from_datetime(cutoff.not_before);
        let user = UserTag::of("u-42");
        assert_eq!(
            read(Some(&key), Some(&cutoff.to_value())),
            Decoded::UserCutoff { user, not_before: at, rejected: None }
        );
        // A later instant in the value wins (fail closed); an earlier one loses.
        let later = crate::UserRevokedBefore { not_before: datetime!(2026-12-03 11:00 UTC), ..cutoff.clone() };
        match read(Some(&key), Some(&later.to_value())) {
            Decoded::UserCutoff { not_before, rejected: Some(_), .. } => {
                assert_eq!(not_before, Timestamp::from_datetime(later.not_before));
            }
            other => panic!("{other:?}"),
        }
        let earlier = crate::UserRevokedBefore { not_before: datetime!(2026-12-03 09:00 UTC), ..cutoff.clone() };
        assert!(
            matches!(read(Some(&key), Some(&earlier.to_value())), Decoded::UserCutoff { not_before, rejected: Some(_), .. } if not_before == at)
        );
        // A tombstone of a cutoff's key: applied and counted rejected.
        assert!(matches!(read(Some(&key), None), Decoded::UserCutoff { rejected: Some(_), .. }));
    }
}
