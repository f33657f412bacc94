use proptest::prelude::*;

use super::*;
use crate::store::{Lookup, SessionStore};
use crate::{SessionId, Timestamp};

fn read(key: &[u8], value: Option<&[u8]>) -> Decoded<'static> {
    let key: &'static [u8] = Box::leak(key.to_vec().into_boxed_slice());
    let value: Option<&'static [u8]> = value.map(|v| &*Box::leak(v.to_vec().into_boxed_slice()));
    Debezium.decode(&RawRecord::new(Some(key), value))
}

fn row(op: &str, revoked_at: &str) -> Vec<u8> {
    format!(
        r#"{{"before":null,"after":{{"id":"s-1","user_id":"u1","created_at":"2026-12-01T10:00:00.123456Z","expires_at":"2026-12-02T10:00:00Z","revoked_at":{revoked_at},"device":"phone"}},"source":{{"ts_ms":1796148458487,"lsn":1}},"op":"{op}","ts_ms":1796148458533}}"#
    )
    .into_bytes()
}

const KEY: &[u8] = br#"{"id":"s-1"}"#;
const NOW: Timestamp = Timestamp::from_unix_secs(1_796_150_000); // 2026-12-01T19:53Z

fn state(decoded: Decoded<'_>) -> SessionState {
    match decoded {
        Decoded::Change { change: Change::Create { state, .. }, .. } => state,
        other => panic!("{other:?}"),
    }
}

#[test]
fn inserts_snapshot_reads_and_updates_carry_the_row_as_it_is() {
    for op in ["c", "r", "u"] {
        let live = state(read(KEY, Some(&row(op, "null"))));
        assert!(live.is_created() && !live.is_revoked(), "{op}");
        assert_eq!(live.expires_at(), Some(Timestamp::from_unix_secs(1_796_205_600)));
        let revoked = state(read(KEY, Some(&row(op, r#""2026-12-01T11:00:00Z""#))));
        assert!(revoked.is_revoked(), "{op}");
    }
}

#[test]
fn a_delete_and_its_tombstone_forget_the_session() {
    let delete = br#"{"before":{"id":"s-1","user_id":"","created_at":"1970-01-01T00:00:00.000000Z","expires_at":null,"revoked_at":null},"after":null,"op":"d","ts_ms":1}"#;
    for value in [Some(&delete[..]), None] {
        assert_eq!(read(KEY, value), Decoded::Change { sid: SidRef::new("s-1").unwrap(), change: Change::Forget });
    }
}

#[test]
fn clearing_revoked_at_does_not_make_the_session_live_again() {
    let store = SessionStore::new();
    store.apply(read(KEY, Some(&row("c", "null"))), NOW);
    store.apply(read(KEY, Some(&row("u", r#""2026-12-01T11:00:00Z""#))), NOW);
    store.apply(read(KEY, Some(&row("u", "null"))), NOW);
    assert_eq!(store.lookup(&SessionId::new("s-1").unwrap(), NOW), Lookup::Revoked);
}

#[test]
fn the_schema_wrapper_is_read_with_its_time_units() {
    let wrapped_key =
        br#"{"schema":{"type":"struct","fields":[{"type":"string","field":"id"}]},"payload":{"id":"s-1"}}"#;
    let zoned = br#"{"schema":{"type":"struct","fields":[{"field":"after","fields":[{"field":"created_at","name":"io.debezium.time.ZonedTimestamp"}]}]},
        "payload":{"after":{"id":"s-1","user_id":"u","created_at":"2026-12-01T10:00:00Z","expires_at":null,"revoked_at":"2026-12-01T11:00:00+01:00"},"op":"u"}}"#;
    assert!(state(read(wrapped_key, Some(zoned))).is_revoked());
    // `timestamp` (without time zone) columns under each time.precision.mode.
    for (name, expires) in [
        ("io.debezium.time.MicroTimestamp", "1796205600000000"),
        ("io.debezium.time.Timestamp", "1796205600000"),
        ("org.apache.kafka.connect.data.Timestamp", "1796205600000"),
        ("io.debezium.time.NanoTimestamp", "1796205600000000000"),
    ] {
        let value = format!(
            r#"{{"schema":{{"fields":[{{"field":"after","fields":[{{"field":"created_at","name":"{name}"}},{{"field":"expires_at","name":"{name}"}}]}}]}},
            "payload":{{"after":{{"id":"s-1","user_id":"u","created_at":{expires},"expires_at":{expires},"revoked_at":null}},"op":"c"}}}}"#
        );
        let s = state(read(KEY, Some(value.as_bytes())));
        assert_eq!(s.expires_at(), Some(Timestamp::from_unix_secs(1_796_205_600)), "{name}");
    }
}

#[test]
fn what_cannot_be_read_revokes_its_key_and_says_why() {
    let malformed = |value: &[u8]| match read(KEY, Some(value)) {
        Decoded::Malformed { key: Some(_), reason } => reason,
        other => panic!("{other:?}"),
    };
    assert!(malformed(b"{oops").contains("not JSON"));
    assert!(malformed(br#"{"after":{"id":"s-1"}}"#).contains("no `op`"));
    assert!(malformed(br#"{"op":"c","after":null}"#).contains("without `after`"));
    assert!(malformed(br#"{"op":"c","after":{"id":"s-2","created_at":"2026-12-01T10:00:00Z"}}"#).contains("differs"));
    let with = |created_at: &str| {
        format!(
            r#"{{"op":"c","after":{{"id":"s-1","user_id":"u","created_at":{created_at},"expires_at":null,"revoked_at":null}}}}"#
        )
    };
    assert!(malformed(with("1796205600000").as_bytes()).contains("without a schema"));
    assert!(malformed(with(r#""yesterday""#).as_bytes()).contains("ISO-8601"));
    assert!(malformed(with("null").as_bytes()).contains("created_at"));
    assert!(malformed(br#"{"op":"c","after":{"id":"s-1"}}"#).contains("created_at"));
    let no_key = |key: &[u8]| matches!(read(key, Some(&row("c", "null"))), Decoded::Malformed { key: None, .. });
    assert!(
        no_key(b"s-1") && no_key(br#"{"user":"s-1"}"#) && no_key(br#"{"id":""}"#) && no_key(br#"{"id":"a\u0041"}"#)
    );
}

#[test]
fn a_row_without_a_column_the_format_reads_is_not_a_live_row() {
    // The connector left `revoked_at` out (column.exclude.list, a publication
    // column list, a renamed column): the update that revoked the session
    // arrives without it.
    for column in ["revoked_at", "expires_at", "created_at", "user_id"] {
        let mut value: serde_json::Value = serde_json::from_slice(&row("u", r#""2026-12-01T11:00:00Z""#)).unwrap();
        value["after"].as_object_mut().unwrap().remove(column);
        match read(KEY, Some(value.to_string().as_bytes())) {
            Decoded::Malformed { key: Some(sid), reason } => {
                assert_eq!(sid.as_str(), "s-1");
                assert!(reason.contains(&format!("no `{column}` column")), "{reason}");
                assert!(reason.contains("column.exclude.list"), "{reason}");
            }
            other => panic!("{column}: {other:?}"),
        }
    }
    // The store revokes the key.
    let store = SessionStore::new();
    let sid = SessionId::new("s-1").unwrap();
    store.apply(read(KEY, Some(&row("c", "null"))), NOW);
    assert!(matches!(store.lookup(&sid, NOW), Lookup::Live));
    store.apply(
        read(KEY, Some(br#"{"op":"u","after":{"id":"s-1","created_at":"2026-12-01T10:00:00Z","expires_at":null}}"#)),
        NOW,
    );
    assert!(matches!(store.lookup(&sid, NOW), Lookup::Revoked));
}

#[test]
fn a_truncate_or_a_message_is_counted_as_unknown() {
    assert!(matches!(read(KEY, Some(br#"{"op":"t","ts_ms":1}"#)), Decoded::Unknown { .. }));
    assert!(matches!(read(KEY, Some(br#"{"op":"m","ts_ms":1}"#)), Decoded::Unknown { .. }));
}

proptest! {
    #[test]
    fn never_panics(key in proptest::collection::vec(any::<u8>(), 0..64), value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256))) {
        let _ = Debezium.decode(&RawRecord::new(Some(&key), value.as_deref()));
    }

    #[test]
    fn never_reads_a_malformed_row_as_live(op in "[cru]", id in "[a-z0-9-]{1,12}", junk in "[a-z\":{}0-9]{0,20}") {
        let value = format!(r#"{{"op":"{op}","after":{{"id":"{id}","user_id":"u","created_at":{junk},"expires_at":null,"revoked_at":null}}}}"#);
        let key = format!(r#"{{"id":"{id}"}}"#);
        if let Decoded::Change { change: Change::Create { .. }, .. } =
            Debezium.decode(&RawRecord::new(Some(key.as_bytes()), Some(value.as_bytes())))
        {
            // Only a readable created_at makes a session.
            prop_assert!(OffsetDateTime::parse(junk.trim_matches('"'), &Rfc3339).is_ok());
        }
    }
}

#[test]
fn heartbeat_rows_carry_their_commit_instant_and_are_not_sessions() {
    let key = br#"{"id":"__heartbeat__3"}"#;
    let update = br#"{"after":{"id":"__heartbeat__3","created_at":"2026-12-01T10:00:00Z","revoked_at":"2026-12-01T10:00:00Z"},"source":{"ts_ms":1796148458487,"ts_us":1796148458487302},"op":"u"}"#;
    assert_eq!(
        read(key, Some(update)),
        Decoded::Heartbeat { committed_at: Timestamp::from_unix_micros(1_796_148_458_487_302) }
    );
    let millis_only = br#"{"after":{"id":"__heartbeat__3"},"source":{"ts_ms":1796148458487},"op":"c"}"#;
    assert_eq!(
        read(key, Some(millis_only)),
        Decoded::Heartbeat { committed_at: Timestamp::from_unix_micros(1_796_148_458_487_000) }
    );
    // A snapshot read is not a commit.
    let snapshot = br#"{"after":{"id":"__heartbeat__3"},"source":{"ts_ms":1796148458487},"op":"r"}"#;
    assert!(matches!(read(key, Some(snapshot)), Decoded::Unknown { .. }));
}

#[test]
fn a_streamed_truncate_marker_says_when_the_table_was_truncated() {
    let key = br#"{"id":"__truncated__"}"#;
    let marker = |op: &str| {
        format!(
            r#"{{"after":{{"id":"__truncated__","user_id":"__truncated__","created_at":"2026-12-01T10:00:00Z","expires_at":null,"revoked_at":"2026-12-01T10:00:00Z"}},"source":{{"ts_ms":1796148458487}},"op":"{op}"}}"#
        )
    };
    for op in ["c", "u"] {
        assert_eq!(
            read(key, Some(marker(op).as_bytes())),
            Decoded::SourceTruncated { truncated_at: Timestamp::from_unix_secs(1_796_119_200) }
        );
    }
    // A snapshot of a table truncated before it is that table as it is.
    assert!(matches!(read(key, Some(marker("r").as_bytes())), Decoded::Unknown { .. }));
}

#[test]
fn a_cutoff_row_raises_its_users_cutoff_and_its_delete_changes_nothing() {
    let key = br#"{"user_id":"u-42"}"#;
    let row = |op: &str, not_before: &str| {
        format!(
            r#"{{"after":{{"user_id":"u-42","not_before":{not_before}}},"source":{{"ts_ms":1796148458487}},"op":"{op}"}}"#
        )
    };
    let at = Timestamp::from_datetime(time::macros::datetime!(2026-12-01 10:00 UTC));
    for op in ["c", "u", "r"] {
        assert_eq!(
            read(key, Some(row(op, r#""2026-12-01T10:00:00Z""#).as_bytes())),
            Decoded::UserCutoff { user: crate::user::UserTag::of("u-42"), not_before: at, rejected: None }
        );
    }
    assert_eq!(read(key, Some(br#"{"before":{"user_id":"u-42"},"after":null,"op":"d"}"#)), Decoded::Skipped);
    assert_eq!(read(key, None), Decoded::Skipped);
    // Unreadable: still a cutoff, as of the commit (fail closed), and said.
    match read(key, Some(row("u", r#""yesterday""#).as_bytes())) {
        Decoded::UserCutoff { not_before, rejected: Some(why), .. } => {
            assert_eq!(not_before, Timestamp::from_unix_micros(1_796_148_458_487_000));
            assert!(why.contains("not_before"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let other_user =
        br#"{"after":{"user_id":"u-7","not_before":"2026-12-01T10:00:00Z"},"source":{"ts_ms":1},"op":"c"}"#;
    assert!(matches!(read(key, Some(other_user)), Decoded::UserCutoff { rejected: Some(_), .. }));
    // Any text is a user (the sessions' owners are tagged as the table holds them).
    assert_eq!(read(br#"{"user_id":""}"#, None), Decoded::Skipped);
    assert!(matches!(read(br#"{"user_id":7}"#, None), Decoded::Malformed { key: None, .. }));
    // A change without an op is not skipped: the user is cut off as of its commit.
    let no_op = br#"{"after":{"user_id":"u-42","not_before":"2026-12-01T10:00:00Z"},"source":{"ts_ms":1}}"#;
    assert!(matches!(read(key, Some(no_op)), Decoded::UserCutoff { rejected: Some(_), .. }));
}
