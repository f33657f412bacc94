//! The common Debezium record — a row change of `user_sessions` without the
//! schema wrapper, as `deploy/debezium-connector.json` writes it — read
//! into typed, borrowed fields instead of a JSON tree.
//!
//! The tree ([`serde_json::Value`]) allocates a map and a string for every
//! field of the ~600-byte envelope, which made a cold start on CDC several
//! times slower than on our own events. This reader skips what it does not
//! need and answers only when the record is the plain common case; for
//! anything else (the schema wrapper, a heartbeat row, the truncate marker,
//! a cutoff's key, a number where a time should be, an escape in a string,
//! any error) it answers `None` and the general reader in `mod.rs` decides,
//! with its messages. A property test holds the two readers equal wherever
//! this one answers.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{HEARTBEAT_PREFIX, TRUNCATE_MARKER_ID};
use crate::clock::Timestamp;
use crate::format::{Change, Decoded};
use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::user::UserTag;

/// A session row's key, `{"id": …}`; any other member sends the record to
/// the general reader (a cutoff's `user_id`, the schema wrapper's).
#[derive(Deserialize)]
struct Key<'a> {
    #[serde(borrow)]
    id: &'a str,
    user_id: Option<IgnoredAny>,
    payload: Option<IgnoredAny>,
    schema: Option<IgnoredAny>,
}

/// The change-event envelope, only the members read; the rest
/// (`source`, `transaction`, `ts_*`, `before`) is skipped unparsed. `after`
/// is kept raw to check it is an object before reading it (serde would read
/// a struct from an array too, which the general reader refuses).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    op: &'a str,
    #[serde(borrow)]
    after: Option<&'a RawValue>,
    schema: Option<IgnoredAny>,
    payload: Option<IgnoredAny>,
}

/// The columns of the row that are read. Each is `None` when missing,
/// `Some(None)` when null.
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    #[serde(borrow, default, deserialize_with = "present")]
    user_id: Option<Option<&'a str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    created_at: Option<Option<&'a str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    expires_at: Option<Option<&'a str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    revoked_at: Option<Option<&'a str>>,
}

/// A member that is there, null or text (missing is the `default`).
fn present<'de, D: Deserializer<'de>>(column: D) -> Result<Option<Option<&'de str>>, D::Error> {
    Option::<&'de str>::deserialize(column).map(Some)
}

/// The record as the general reader would read it, when it is the common
/// case; `None` otherwise.
pub(super) fn read<'a>(key: &'a [u8], value: &[u8]) -> Option<Decoded<'a>> {
    if !is_object(key) || !is_object(value) {
        return None;
    }
    let key: Key<'a> = serde_json::from_slice(key).ok()?;
    if key.user_id.is_some() || key.payload.is_some() || key.schema.is_some() {
        return None;
    }
    if key.id.starts_with(HEARTBEAT_PREFIX) || key.id == TRUNCATE_MARKER_ID {
        return None;
    }
    let sid = SidRef::new(key.id).ok()?;
    let envelope: Envelope<'_> = serde_json::from_slice(value).ok()?;
    if envelope.schema.is_some() || envelope.payload.is_some() {
        return None;
    }
    match envelope.op {
        "d" => return Some(Decoded::Change { sid, change: Change::Forget }),
        "c" | "r" | "u" => {}
        _ => return None,
    }
    let after = envelope.after?.get();
    if !is_object(after.as_bytes()) {
        return None;
    }
    let row: Row<'_> = serde_json::from_str(after).ok()?;
    if row.id != Some(key.id) {
        return None;
    }
    let created_at = time(row.created_at?)??;
    let expires_at = time(row.expires_at?)?;
    let revoked_at = time(row.revoked_at?)?;
    let user = row.user_id??;
    let mut state = SessionState::created(UserTag::of(user), created_at, expires_at);
    if let Some(revoked_at) = revoked_at {
        state = state.merge(SessionState::revoked(revoked_at));
    }
    Some(Decoded::Change { sid, change: Change::Create { state, created_at: Timestamp::from_datetime(created_at) } })
}

/// A time column: `Some(None)` for null, `None` when it cannot be read here.
fn time(column: Option<&str>) -> Option<Option<OffsetDateTime>> {
    match column {
        None => Some(None),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).ok().map(Some),
    }
}

/// Whether JSON text is an object (its first non-blank byte opens one).
fn is_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::format::RawRecord;

    const SID: &str = "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b";

    /// A member of a row or envelope, as JSON text (`None`: left out).
    fn pick(options: &[&str]) -> impl Strategy<Value = Option<String>> + use<> {
        let options: Vec<Option<String>> =
            options.iter().map(|o| Some((*o).to_owned())).chain(std::iter::once(None)).collect();
        proptest::sample::select(options)
    }

    fn time() -> impl Strategy<Value = Option<String>> {
        pick(&[
            "null",
            r#""2026-12-01T10:00:00.123456Z""#,
            r#""2026-12-01T10:00:00+02:00""#,
            r#""2026-13-01T10:00:00Z""#,
            r#""2026-12-01T10:00:00\u005a""#,
            "1796148458487",
            "true",
        ])
    }

    fn object(members: Vec<(&str, Option<String>)>) -> String {
        let members: Vec<String> =
            members.into_iter().filter_map(|(name, value)| value.map(|v| format!(r#""{name}":{v}"#))).collect();
        format!("{{{}}}", members.join(","))
    }

    prop_compose! {
        fn row()(
            id in pick(&[r#""8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b""#, r#""other""#, "null", "7"]),
            user in pick(&[r#""u-1""#, "null", r#""u\n1""#, "3"]),
            created in time(), expires in time(), revoked in time(),
            extra in pick(&[r#""phone""#, "{}", "[1]"]),
            shape in 0..8u8,
        ) -> String {
            let row = object(vec![("id", id), ("user_id", user), ("created_at", created), ("expires_at", expires),
                ("revoked_at", revoked), ("device", extra)]);
            match shape {
                0 => format!("[{row}]"),
                1 => format!(r#"["{SID}","u-1","2026-12-01T10:00:00Z",null,null]"#),
                _ => row,
            }
        }
    }

    prop_compose! {
        fn envelope()(
            op in pick(&[r#""c""#, r#""r""#, r#""u""#, r#""d""#, r#""t""#, r#""m""#, "null", "1"]),
            after in proptest::option::of(prop_oneof![row(), Just("null".to_owned()), Just("5".to_owned())]),
            before in pick(&["null", r#"{"id":"x"}"#]),
            schema in pick(&["null", r#"{"type":"struct"}"#]),
            payload in pick(&["null", r#"{"op":"c"}"#]),
            shape in 0..10u8,
        ) -> String {
            let source = Some(r#"{"version":"3.0.7.Final","ts_ms":1796148458487,"ts_us":1796148458487000,"lsn":1}"#.to_owned());
            let value = object(vec![("before", before), ("after", after), ("source", source), ("op", op),
                ("schema", schema), ("payload", payload), ("ts_ms", Some("1796148458533".to_owned()))]);
            match shape {
                0 => format!("[{value}]"),
                1 => "null".to_owned(),
                2 => format!("  {value}"),
                3 => value[..value.len() / 2].to_owned(),
                _ => value,
            }
        }
    }

    fn key() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            format!(r#"{{"id":"{SID}"}}"#),
            format!(r#"{{"id":"{SID}"}}"#),
            format!(r#"{{"id":"{SID}","user_id":"u-1"}}"#),
            format!(r#"{{"payload":{{"id":"{SID}"}}}}"#),
            format!(r#"["{SID}"]"#),
            r#"{"id":"__heartbeat__0"}"#.to_owned(),
            r#"{"id":"__truncated__"}"#.to_owned(),
            r#"{"id":""}"#.to_owned(),
            r#"{"id":"s\u002d1"}"#.to_owned(),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn wherever_it_answers_it_answers_as_the_general_reader(key in key(), value in envelope()) {
            if let Some(fast) = read(key.as_bytes(), value.as_bytes()) {
                let general = super::super::read_any(&RawRecord::new(Some(key.as_bytes()), Some(value.as_bytes())));
                prop_assert_eq!(fast, general, "key {} value {}", key, value);
            }
        }
    }

    #[test]
    fn it_answers_for_the_records_the_connector_writes() {
        let key = format!(r#"{{"id":"{SID}"}}"#);
        let row = |op: &str, revoked: &str| {
            format!(
                r#"{{"before":null,"after":{{"id":"{SID}","user_id":"u-1","created_at":"2026-12-01T10:00:00.123456Z","expires_at":"2026-12-08T10:00:00.123456Z","revoked_at":{revoked}}},"source":{{"version":"3.0.7.Final","connector":"postgresql","ts_ms":1796148458487,"sequence":"[\"1\",\"2\"]","lsn":2,"xmin":null}},"transaction":null,"op":"{op}","ts_ms":1796148458533}}"#
            )
        };
        for value in [row("c", "null"), row("r", "null"), row("u", r#""2026-12-01T11:00:00Z""#), row("d", "null")] {
            let fast = read(key.as_bytes(), value.as_bytes());
            let general = super::super::read_any(&RawRecord::new(Some(key.as_bytes()), Some(value.as_bytes())));
            assert_eq!(fast, Some(general), "{value}");
        }
    }
}
