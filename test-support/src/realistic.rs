//! The records the benches measure on, as production writes them: UUID
//! sessions and owners (three sessions a user), RFC 3339 times, expiries.

use revocation_core::{SessionEvent, SessionId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A `session.created` of our own format for session `i` (~180 B as JSON).
pub fn realistic_event(i: usize, now: OffsetDateTime) -> SessionEvent {
    let sid = SessionId::new(uuid::Uuid::new_v4().to_string()).expect("a UUID is a session id");
    SessionEvent::Created {
        sid,
        user_id: uuid::Uuid::from_u128(i as u128 / 3).to_string(),
        created_at: now,
        expires_at: Some(now + time::Duration::days(7)),
    }
}

/// Row `i` of `user_sessions` as the connector of
/// `deploy/debezium-connector.json` streams it (JSON converter, schemas
/// off, ~650 B values): key and value; 1 in 10 rows is a revocation (`u`).
pub fn debezium_row(i: usize, now: OffsetDateTime) -> (Vec<u8>, Option<Vec<u8>>) {
    let id = uuid::Uuid::new_v4();
    let user = uuid::Uuid::from_u128(i as u128 / 3);
    let time = |at: OffsetDateTime| at.format(&Rfc3339).expect("a time formats");
    let created = now - time::Duration::seconds((i % 3600) as i64);
    let revoked = i % 10 == 9;
    let revoked_at = if revoked { format!("\"{}\"", time(now)) } else { "null".into() };
    let ms = now.unix_timestamp() * 1000 + (i % 1000) as i64;
    let lsn = 24_000_000 + i * 120;
    let value = format!(
        concat!(
            r#"{{"before":null,"after":{{"id":"{id}","user_id":"{user}","created_at":"{created}","expires_at":"{expires}","revoked_at":{revoked_at}}},"#,
            r#""source":{{"version":"3.0.7.Final","connector":"postgresql","name":"revocation","ts_ms":{ms},"snapshot":"false","db":"revocation","sequence":"[\"{prev}\",\"{lsn}\"]","ts_us":{ms}000,"ts_ns":{ms}000000,"schema":"public","table":"user_sessions","txId":{tx},"lsn":{lsn},"xmin":null}},"#,
            r#""transaction":null,"op":"{op}","ts_ms":{ms},"ts_us":{ms}123,"ts_ns":{ms}123456}}"#
        ),
        id = id,
        user = user,
        created = time(created),
        expires = time(created + time::Duration::days(7)),
        revoked_at = revoked_at,
        ms = ms,
        prev = lsn - 120,
        lsn = lsn,
        tx = 700 + i,
        op = if revoked { "u" } else { "c" },
    );
    (format!(r#"{{"id":"{id}"}}"#).into_bytes(), Some(value.into_bytes()))
}
