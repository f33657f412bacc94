use proptest::prelude::*;

use super::*;
use crate::format::Header;

const CREATED_JSON: &[u8] =
    br#"{"type":"session.created","sid":"s-1","user_id":"u","created_at":"2018-04-05T03:56:24Z","expires_at":"2018-04-06T03:56:24Z"}"#;
const REVOKED_JSON: &[u8] = br#"{"type":"session.revoked","sid":"s-1","revoked_at":"2018-04-05T03:56:24Z"}"#;

/// The binding's binary-mode example, with our attributes.
fn binary(kind: &'static str, version: &'static str) -> Vec<Header<'static>> {
    vec![
        Header { name: "ce_specversion", value: Some(version.as_bytes()) },
        Header { name: "ce_type", value: Some(kind.as_bytes()) },
        Header { name: "ce_source", value: Some(b"/mycontext/subcontext") },
        Header { name: "ce_id", value: Some(b"1234-1234-1234") },
        Header { name: "ce_time", value: Some(b"2018-04-05T03:56:24Z") },
        Header { name: "content-type", value: Some(b"application/json") },
    ]
}

fn decode<'a>(value: Option<&'a [u8]>, headers: &'a [Header<'a>]) -> Decoded<'a> {
    CloudEvents.decode(&RawRecord { key: Some(b"s-1"), value, headers })
}

fn structured(kind: &str, data: &str) -> Vec<u8> {
    format!(
        r#"{{"specversion":"1.0","type":"{kind}","source":"/mycontext/subcontext","id":"1234-1234-1234","time":"2018-04-05T03:56:24Z","datacontenttype":"application/json"{data}}}"#
    )
    .into_bytes()
}

const STRUCTURED_HEADERS: &[Header<'static>] =
    &[Header { name: "Content-Type", value: Some(b"application/cloudevents+json; charset=UTF-8") }];

#[test]
fn binary_mode_carries_our_event_as_the_data() {
    let headers = binary("session.created", "1.0");
    assert!(matches!(decode(Some(CREATED_JSON), &headers), Decoded::Change { change: Change::Create { .. }, .. }));
    let headers = binary("session.revoked", "1.0");
    assert!(
        matches!(decode(Some(REVOKED_JSON), &headers), Decoded::Change { change: Change::Merge(s), .. } if s.is_revoked())
    );
    // A tombstone stays a tombstone; one that says it is a revocation
    // revokes (forgetting is not sticky).
    assert!(matches!(decode(None, &[]), Decoded::Change { change: Change::Forget, .. }));
    assert!(matches!(decode(None, &headers), Decoded::Malformed { key: Some(_), .. }));
}

#[test]
fn structured_mode_carries_our_event_in_data() {
    let value = structured("session.revoked", &format!(r#","data":{}"#, std::str::from_utf8(REVOKED_JSON).unwrap()));
    assert!(
        matches!(decode(Some(&value), STRUCTURED_HEADERS), Decoded::Change { change: Change::Merge(s), .. } if s.is_revoked())
    );
    let value = structured("session.created", &format!(r#","data":{}"#, std::str::from_utf8(CREATED_JSON).unwrap()));
    assert!(matches!(decode(Some(&value), STRUCTURED_HEADERS), Decoded::Change { change: Change::Create { .. }, .. }));
}

#[test]
fn other_types_are_unknown_and_unreadable_events_revoke_their_key() {
    let other = binary("com.example.someevent", "1.0");
    assert!(matches!(decode(Some(b"{}"), &other), Decoded::Unknown { .. }));
    let value = structured("com.example.someevent", r#","data":{}"#);
    assert!(matches!(decode(Some(&value), STRUCTURED_HEADERS), Decoded::Unknown { .. }));

    let revoked_key = |d: Decoded<'_>| matches!(d, Decoded::Malformed { key: Some(_), .. });
    // ce_type and the data disagree.
    assert!(revoked_key(decode(Some(CREATED_JSON), &binary("session.revoked", "1.0"))));
    let mismatched =
        structured("session.created", &format!(r#","data":{}"#, std::str::from_utf8(REVOKED_JSON).unwrap()));
    assert!(revoked_key(decode(Some(&mismatched), STRUCTURED_HEADERS)));
    // Not CloudEvents 1.0, no data, not JSON.
    assert!(revoked_key(decode(Some(REVOKED_JSON), &binary("session.revoked", "0.3"))));
    assert!(revoked_key(decode(Some(&structured("session.revoked", "")), STRUCTURED_HEADERS)));
    assert!(revoked_key(decode(Some(b"{oops"), STRUCTURED_HEADERS)));
}

#[test]
fn a_record_without_cloud_event_attributes_is_plain_event_json() {
    assert!(matches!(decode(Some(REVOKED_JSON), &[]), Decoded::Change { change: Change::Merge(_), .. }));
}

proptest! {
    #[test]
    fn never_panics(value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)), kind in "[a-z.]{0,20}", mode in 0u8..3) {
        let headers = match mode {
            0 => vec![],
            1 => vec![Header { name: "ce_specversion", value: Some(b"1.0") }, Header { name: "ce_type", value: Some(kind.as_bytes()) }],
            _ => STRUCTURED_HEADERS.to_vec(),
        };
        let _ = CloudEvents.decode(&RawRecord { key: Some(b"s-1"), value: value.as_deref(), headers: &headers });
    }
}

#[test]
fn an_envelope_that_says_revoked_revokes_its_key_whatever_its_data() {
    let revokes = |decoded: Decoded<'_>| match decoded {
        Decoded::Malformed { key: Some(sid), .. } => sid.as_str() == "s-1",
        Decoded::Change { change: Change::Merge(state), .. } => state.is_revoked(),
        _ => false,
    };
    let headers = binary("session.revoked", "1.0");
    for data in [
        &b"{oops"[..],
        b"null",
        b"{}",
        br#"{"type":"session.revoked"}"#,
        br#"{"type":"session.revoked","sid":"s-2","revoked_at":"2018-04-05T03:56:24Z"}"#,
        br#"{"type":"session.renamed","sid":"s-1"}"#,
        CREATED_JSON,
    ] {
        assert!(revokes(decode(Some(data), &headers)), "binary {}", String::from_utf8_lossy(data));
        let value = structured("session.revoked", &format!(r#","data":{}"#, String::from_utf8_lossy(data)));
        if serde_json::from_slice::<serde_json::Value>(&value).is_ok() {
            let value = Box::leak(value.into_boxed_slice());
            assert!(revokes(decode(Some(value), STRUCTURED_HEADERS)), "structured {}", String::from_utf8_lossy(data));
        }
    }
    let no_data = structured("session.revoked", "");
    assert!(revokes(decode(Some(&no_data), STRUCTURED_HEADERS)));
    // A null value with ce_type revoked revokes (a tombstone would only
    // forget, and a late created could then make the session live again).
    assert!(matches!(decode(None, &headers), Decoded::Malformed { key: Some(_), .. }));
}

#[test]
fn a_user_cutoff_travels_in_either_mode_and_a_mismatch_is_still_applied_or_malformed() {
    use crate::Timestamp;
    use crate::event::UserRevokedBefore;
    use crate::user::{UserId, UserTag};
    let cutoff = UserRevokedBefore {
        user_id: UserId::new("u-42").unwrap(),
        not_before: time::macros::datetime!(2026-12-03 10:00 UTC),
        reason: None,
    };
    let (key, value) = (cutoff.key(), cutoff.to_value());
    let expected = Decoded::UserCutoff {
        user: UserTag::of("u-42"),
        not_before: Timestamp::from_datetime(cutoff.not_before),
        rejected: None,
    };
    fn decode_with<'a>(key: &'a [u8], value: Option<&'a [u8]>, headers: &'a [Header<'a>]) -> Decoded<'a> {
        CloudEvents.decode(&RawRecord { key: Some(key), value, headers })
    }
    let read = |value, headers| decode_with(&key, value, headers);
    let headers = binary("user.revoked_before", "1.0");
    assert_eq!(read(Some(&value), &headers), expected, "binary mode");
    let envelope =
        structured("user.revoked_before", &format!(r#","data":{}"#, String::from_utf8(value.clone()).unwrap()));
    assert_eq!(read(Some(&envelope), STRUCTURED_HEADERS), expected, "structured mode");
    // The data is a session's event: the envelope's type disagrees.
    let on_session_key =
        CloudEvents.decode(&RawRecord { key: Some(b"s-1"), value: Some(CREATED_JSON), headers: &headers });
    assert!(matches!(on_session_key, Decoded::Malformed { key: Some(_), .. }), "{on_session_key:?}");
    // Unreadable data under a cutoff's key: the key still holds the cutoff.
    assert!(matches!(read(Some(b"{oops"), &headers), Decoded::UserCutoff { rejected: Some(_), .. }));
    // Whatever is wrong with the envelope, too.
    let old_spec = binary("user.revoked_before", "0.3");
    assert!(matches!(read(Some(&value), &old_spec), Decoded::UserCutoff { rejected: Some(_), .. }));
    let foreign = binary("com.example.user.revoked_before", "1.0");
    assert!(matches!(read(Some(&value), &foreign), Decoded::UserCutoff { rejected: Some(_), .. }));
    // An envelope that says revoked revokes its key, whatever its data is.
    let revoked = binary("session.revoked", "1.0");
    let said_revoked = CloudEvents.decode(&RawRecord { key: Some(b"s-1"), value: Some(&value), headers: &revoked });
    assert!(matches!(said_revoked, Decoded::Malformed { key: Some(_), .. }), "{said_revoked:?}");
}
