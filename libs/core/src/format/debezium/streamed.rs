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

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::scan::{pick, pick_nested, text};
use super::{HEARTBEAT_PREFIX, TRUNCATE_MARKER_ID};
use crate::clock::Timestamp;
use crate::format::{Change, Decoded};
use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::user::UserTag;

/// The record as the general reader would read it, when it is the common
/// case; `None` otherwise.
pub(super) fn read<'a>(key: &'a [u8], value: &[u8]) -> Option<Decoded<'a>> {
    // A session row's key is `{"id": …}`; a cutoff's `user_id` or the schema
    // wrapper's members, even null, are for the general reader.
    let [id, user_id, payload, schema] = pick(key, ["id", "user_id", "payload", "schema"])?;
    if user_id.is_some() || payload.is_some() || schema.is_some() {
        return None;
    }
    let id: &'a str = text(id?)??;
    if id.starts_with(HEARTBEAT_PREFIX) || id == TRUNCATE_MARKER_ID {
        return None;
    }
    let sid = SidRef::new(id).ok()?;
    let columns = ["id", "user_id", "created_at", "expires_at", "revoked_at"];
    // `after` is picked for its columns, read in the same pass.
    let ([op, _, schema, payload], row) = pick_nested(value, ["op", "after", "schema", "payload"], "after", columns)?;
    if schema.is_some() || payload.is_some() {
        return None;
    }
    match text(op?)?? {
        "d" => return Some(Decoded::Change { sid, change: Change::Forget }),
        "c" | "r" | "u" => {}
        _ => return None,
    }
    let [row_id, user, created_at, expires_at, revoked_at] = row?;
    if text(row_id?)?? != id {
        return None;
    }
    let created_at = time(text(created_at?)?)??;
    let expires_at = time(text(expires_at?)?)?;
    let revoked_at = time(text(revoked_at?)?)?;
    let user = text(user?)??;
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
            format!(r#"{{"id":"{SID}","user_id":null}}"#),
            format!(r#"{{"id":"{SID}","schema":null}}"#),
            format!(r#"{{"id":"{SID}","n":1e999}}"#),
            format!(r#"{{"id":"{SID}"}} x"#),
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

    /// The connector's record with one member replaced (or given twice):
    /// the readers agree on every such neighbour of the common case.
    fn one_member_changed() -> impl Strategy<Value = String> {
        let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
        let odd = proptest::sample::select(vec![
            "null".to_owned(),
            "1e400".to_owned(),
            "-0".to_owned(),
            "1e999".to_owned(),
            r#""\udc00""#.to_owned(),
            r#""\ud800x""#.to_owned(),
            r#""a\"b""#.to_owned(),
            "[]".to_owned(),
            "{}".to_owned(),
            r#"{"a":[1,{"b":null}]}"#.to_owned(),
            "true".to_owned(),
            r#""c""#.to_owned(),
            r#""d""#.to_owned(),
            r#""2026-12-01T10:00:00Z""#.to_owned(),
            r#""u-2""#.to_owned(),
            deep,
        ]);
        let members = proptest::sample::select(vec![
            "before",
            "op",
            "schema",
            "payload",
            "source",
            "transaction",
            "ts_ms",
            "extra",
            "after",
            "after.id",
            "after.user_id",
            "after.created_at",
            "after.expires_at",
            "after.revoked_at",
            "after.device",
        ]);
        (members, odd, proptest::bool::ANY).prop_map(|(member, odd, twice)| {
            let mut row = vec![
                ("id", format!(r#""{SID}""#)),
                ("user_id", r#""u-1""#.to_owned()),
                ("created_at", r#""2026-12-01T10:00:00.123456Z""#.to_owned()),
                ("expires_at", r#""2026-12-08T10:00:00Z""#.to_owned()),
                ("revoked_at", "null".to_owned()),
            ];
            let mut envelope = vec![
                ("before", "null".to_owned()),
                ("source", r#"{"version":"3.0.7.Final","ts_ms":1796148458487,"sequence":"[\"1\",\"2\"]"}"#.to_owned()),
                ("transaction", "null".to_owned()),
                ("op", r#""c""#.to_owned()),
                ("ts_ms", "1796148458533".to_owned()),
            ];
            let set = |members: &mut Vec<(&str, String)>, name: &'static str| match members
                .iter_mut()
                .find(|(n, _)| *n == name)
            {
                Some(slot) if !twice => slot.1 = odd.clone(),
                _ => members.push((name, odd.clone())),
            };
            let object = |members: &[(&str, String)]| {
                let members: Vec<String> = members.iter().map(|(n, v)| format!(r#""{n}":{v}"#)).collect();
                format!("{{{}}}", members.join(","))
            };
            match member.strip_prefix("after.") {
                Some(column) => set(&mut row, column),
                None if member == "after" => {}
                None => set(&mut envelope, member),
            }
            envelope.insert(1, ("after", object(&row)));
            if member == "after" {
                set(&mut envelope, "after");
            }
            object(&envelope)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn next_to_the_common_case_it_answers_as_the_general_reader(key in key(), value in one_member_changed()) {
            if let Some(fast) = read(key.as_bytes(), value.as_bytes()) {
                let general = super::super::read_any(&RawRecord::new(Some(key.as_bytes()), Some(value.as_bytes())));
                prop_assert_eq!(fast, general, "key {} value {}", key, value);
            }
        }
    }

    /// Found by review: each was read live here, and not by the general
    /// reader (forgotten, or malformed: revoked).
    #[test]
    fn what_the_general_reader_refuses_is_not_read_here() {
        let key = format!(r#"{{"id":"{SID}"}}"#);
        let row = format!(
            r#"{{"id":"{SID}","user_id":"u-1","created_at":"2026-12-01T10:00:00Z","expires_at":null,"revoked_at":null"#
        );
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let cases = [
            (key.clone(), format!(r#"{{"schema":null,"payload":null,"op":"c","after":{row}}}}}"#)),
            (format!(r#"{{"id":"{SID}","user_id":null}}"#), format!(r#"{{"op":"c","after":{row}}}}}"#)),
            (key.clone(), format!(r#"{{"op":"c","after":{row}}},"source":{{"ts_ms":1e400}}}}"#)),
            (key.clone(), format!(r#"{{"op":"c","after":{row}}},"source":{{"x":"\udc00"}}}}"#)),
            (key.clone(), format!(r#"{{"op":"c","after":{row}}},"before":{deep}}}"#)),
            (key.clone(), format!(r#"{{"op":"c","after":{row},"device":1e999}}}}"#)),
        ];
        for (key, value) in &cases {
            let general = super::super::read_any(&RawRecord::new(Some(key.as_bytes()), Some(value.as_bytes())));
            assert!(!matches!(general, Decoded::Change { change: Change::Create { .. }, .. }), "{value}: {general:?}");
            assert_eq!(read(key.as_bytes(), value.as_bytes()), None, "{key} {value}");
        }
        let mut bad_utf8 = format!(r#"{{"op":"c","after":{row}}},"source":{{"x":"ab"}}}}"#).into_bytes();
        let at = bad_utf8.len() - 4;
        bad_utf8[at] = 0xff;
        assert_eq!(read(key.as_bytes(), &bad_utf8), None);
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
