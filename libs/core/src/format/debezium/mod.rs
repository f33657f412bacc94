//! [`Debezium`]: change events of the `user_sessions` table, as Debezium's
//! Postgres connector writes them with Kafka Connect's JSON converter — with
//! or without the converter's schema wrapper (`schemas.enable`).
//!
//! The key is the row's primary key, `{"id": "<sid>"}`. The value is the
//! change-event envelope: `op` `c` (insert), `r` (snapshot read), `u`
//! (update) carry the row as it is now in `after`; `d` (delete) means the row
//! is gone; a null value is the tombstone that follows a delete. Columns read:
//! `id`, `created_at`, `expires_at`, `revoked_at`; others are ignored. A row
//! without one of them (a column the connector does not capture) is
//! malformed: its key is revoked, never read as live.
//!
//! What a row says: `revoked_at` set → revoked (as of it); otherwise created,
//! expiring at `expires_at` (or never). A deleted row is forgotten — absent,
//! answered revoked. An update that clears `revoked_at` does **not** make the
//! session live again: revocation is forever in the projection (fail closed),
//! while Postgres would say live (see `docs/cdc.md`).
//!
//! Timestamps: `timestamptz` columns always arrive as ISO-8601 strings
//! (`io.debezium.time.ZonedTimestamp`) whatever `time.precision.mode` is. A
//! `timestamp` column arrives as a number whose unit only the schema names
//! (`io.debezium.time.MicroTimestamp`, `…Timestamp`, `…NanoTimestamp`,
//! `org.apache.kafka.connect.data.Timestamp`): read when the schema wrapper
//! is on, a malformed record (its key revoked) when it is not.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Timestamp;
use crate::format::{Change, Decoded, RawRecord, RecordFormat};
use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::user::UserTag;

/// Ids of the heartbeat rows in `user_sessions` (`__heartbeat__0`, …): the
/// connector's `heartbeat.action.query` updates them all in one transaction,
/// and their change events, spread over every partition, carry the commit
/// instant (`source.ts_us`) through the pipeline (`docs/cdc.md`).
pub const HEARTBEAT_PREFIX: &str = "__heartbeat__";

/// Id of the row the `user_sessions_truncated` trigger writes when the table
/// is truncated (`migrations/`): a truncate has no change event per row,
/// so this row's streamed change is how the projection learns that the
/// topic no longer says which sessions exist (`docs/cdc.md`).
pub const TRUNCATE_MARKER_ID: &str = "__truncated__";

/// The columns a row must carry (each may be null, none may be missing).
const READ_COLUMNS: [&str; 4] = ["created_at", "expires_at", "revoked_at", "user_id"];

mod cutoffs;
mod scan;
mod streamed;

/// Debezium change events of `user_sessions` (JSON converter), and of
/// `user_session_cutoffs` routed into the same topic (`cutoffs.rs`).
///
/// ```
/// use revocation_core::{Debezium, Decoded, RawRecord, RecordFormat};
/// let key = br#"{"id":"s-1"}"#;
/// let value = br#"{"before":null,"after":{"id":"s-1","user_id":"u","created_at":"2026-12-01T10:00:00Z",
///   "expires_at":"2026-12-02T10:00:00Z","revoked_at":"2026-12-01T11:00:00Z"},"op":"u","ts_ms":1}"#;
/// match Debezium.decode(&RawRecord::new(Some(key), Some(value))) {
///     Decoded::Change { sid, .. } => assert_eq!(sid.as_str(), "s-1"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Debezium;

impl RecordFormat for Debezium {
    fn name(&self) -> &'static str {
        "debezium"
    }

    fn deletes_live_sessions(&self) -> bool {
        true
    }

    fn mirrors_source_table(&self) -> bool {
        true
    }

    fn decode<'a>(&self, record: &RawRecord<'a>) -> Decoded<'a> {
        if let (Some(key), Some(value)) = (record.key, record.value)
            && let Some(decoded) = streamed::read(key, value)
        {
            return decoded;
        }
        read_any(record)
    }
}

/// Any record, through a JSON tree: the reference reader, used for
/// everything `streamed` does not answer.
fn read_any<'a>(record: &RawRecord<'a>) -> Decoded<'a> {
    let malformed = |key, reason: String| Decoded::Malformed { key, reason };
    let Some(key_bytes) = record.key else {
        return malformed(None, "record has no key; Debezium keys are the row's primary key".into());
    };
    match cutoffs::key_user(key_bytes) {
        Some(Ok(user)) => return cutoffs::decode(&user, record.value),
        Some(Err(why)) => return malformed(None, why),
        None => {}
    }
    let sid = match key_sid(key_bytes) {
        Ok(sid) => sid,
        Err(why) => return malformed(None, why),
    };
    let Some(value) = record.value else {
        // The tombstone after a delete.
        return Decoded::Change { sid, change: Change::Forget };
    };
    let value: Value = match serde_json::from_slice(value) {
        Ok(value) => value,
        Err(e) => return malformed(Some(sid), format!("value is not JSON: {e}")),
    };
    if sid.as_str().starts_with(HEARTBEAT_PREFIX) {
        return heartbeat(&value, sid);
    }
    if sid.as_str() == TRUNCATE_MARKER_ID {
        return truncate_marker(&value, sid);
    }
    match change(&value, sid.as_str()) {
        Ok(Some(change)) => Decoded::Change { sid, change },
        Ok(None) => {
            let op = unwrap(&value).get("op").and_then(Value::as_str).unwrap_or("?");
            Decoded::Unknown { sid, kind: Cow::Owned(format!("op {}", truncate(op, 16))) }
        }
        Err(why) => malformed(Some(sid), why),
    }
}

/// The session id in a Debezium key: `{"id": …}`, or the same in the schema
/// wrapper's `payload`. Borrowed from the key (an id with JSON escapes is
/// refused: session ids never need them).
fn key_sid(key: &[u8]) -> Result<SidRef<'_>, String> {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        id: Option<&'a str>,
        #[serde(borrow)]
        payload: Option<Inner<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Inner<'a> {
        #[serde(borrow)]
        id: Option<&'a str>,
    }
    let parsed: Key<'_> = serde_json::from_slice(key).map_err(|e| format!("record key is not a Debezium key: {e}"))?;
    let id = parsed.id.or(parsed.payload.and_then(|p| p.id)).ok_or("record key has no `id`")?;
    SidRef::new(id).map_err(|e| format!("record key's id is not a session id: {e}"))
}

/// A heartbeat row's change: the commit instant of its transaction. Only
/// streamed changes count (`c`, `u`): a snapshot read (`r`) is stamped with
/// the snapshot's time, not a commit's, and proves nothing about order.
fn heartbeat<'a>(value: &Value, sid: SidRef<'a>) -> Decoded<'a> {
    let envelope = unwrap(value);
    let op = envelope.get("op").and_then(Value::as_str).unwrap_or("");
    let source = envelope.get("source");
    let micros = source
        .and_then(|s| s.get("ts_us"))
        .and_then(Value::as_i64)
        .or_else(|| source.and_then(|s| s.get("ts_ms")).and_then(Value::as_i64).map(|ms| ms.saturating_mul(1000)));
    match (op, micros) {
        ("c" | "u", Some(micros)) => Decoded::Heartbeat { committed_at: Timestamp::from_unix_micros(micros) },
        _ => Decoded::Unknown { sid, kind: Cow::Borrowed("heartbeat without a commit time") },
    }
}

/// The truncate marker's change: the instant the table was truncated (the
/// row's `created_at`, which the trigger sets in the truncating
/// transaction). Only a streamed change counts: a snapshot read (`r`) of the
/// marker is of a table whose truncate came before the snapshot, which the
/// snapshot already reflects.
fn truncate_marker<'a>(value: &Value, sid: SidRef<'a>) -> Decoded<'a> {
    let envelope = unwrap(value);
    let op = envelope.get("op").and_then(Value::as_str).unwrap_or("");
    if !matches!(op, "c" | "u") {
        return Decoded::Unknown { sid, kind: Cow::Borrowed("truncate marker, not streamed") };
    }
    let units = time_units(value);
    let created_at = envelope.get("after").and_then(|row| row.get("created_at"));
    match read_time(created_at, units.get("created_at").copied(), "created_at") {
        Ok(Some(at)) => Decoded::SourceTruncated { truncated_at: Timestamp::from_datetime(at) },
        // Unreadable, the truncate still happened: as of the epoch, which
        // keeps the projection from ever being fresh on this topic.
        _ => Decoded::SourceTruncated { truncated_at: Timestamp::from_unix_micros(0) },
    }
}

/// The envelope itself: the value, or its `payload` under the schema wrapper.
fn unwrap(value: &Value) -> &Value {
    match (value.get("schema"), value.get("payload")) {
        (Some(_), Some(payload)) => payload,
        _ => value,
    }
}

/// What the change event does to the session; `None` for an operation this
/// format does not apply (truncate, a logical decoding message).
fn change(value: &Value, sid: &str) -> Result<Option<Change>, String> {
    let envelope = unwrap(value);
    if envelope.is_null() {
        return Ok(Some(Change::Forget));
    }
    let op = envelope.get("op").and_then(Value::as_str).ok_or("value has no `op`; not a change event")?;
    match op {
        "c" | "r" | "u" => {}
        "d" => return Ok(Some(Change::Forget)),
        _ => return Ok(None),
    }
    let row = envelope.get("after").filter(|a| a.is_object()).ok_or_else(|| format!("op {op} without `after`"))?;
    if row.get("id").and_then(Value::as_str) != Some(sid) {
        return Err("the row's id differs from the record key".into());
    }
    // A column missing from the row was not captured: it is not a NULL, and
    // reading it as one would admit a revoked session.
    if let Some(column) = READ_COLUMNS.iter().find(|c| row.get(**c).is_none()) {
        return Err(format!(
            "the row has no `{column}` column: the connector does not capture it (check column.exclude.list, \
             column.include.list, the publication's column list, or a renamed column); the session is treated \
             as revoked, for good (revocation is sticky)"
        ));
    }
    let units = time_units(value);
    let time = |column: &str| read_time(row.get(column), units.get(column).copied(), column);
    let created_at = time("created_at")?.ok_or("the row's created_at is null")?;
    // The owner, for "log out everywhere": a row without one is unreadable
    // (the column is NOT NULL in the migration).
    let user = row.get("user_id").and_then(Value::as_str).ok_or("the row's user_id is null or not text")?;
    let mut state = SessionState::created(UserTag::of(user), created_at, time("expires_at")?);
    if let Some(revoked_at) = time("revoked_at")? {
        state = state.merge(SessionState::revoked(revoked_at));
    }
    Ok(Some(Change::Create { state, created_at: Timestamp::from_datetime(created_at) }))
}

/// The unit of a numeric time column, from its schema's logical name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Millis,
    Micros,
    Nanos,
}

/// Logical names of the `after` row's columns, from the schema wrapper.
fn time_units(value: &Value) -> HashMap<&str, Unit> {
    let Some(fields) = value.pointer("/schema/fields").and_then(Value::as_array) else { return HashMap::new() };
    let after = fields.iter().find(|f| f.get("field").and_then(Value::as_str) == Some("after"));
    let columns = after.and_then(|a| a.get("fields")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    columns
        .iter()
        .filter_map(|c| {
            let unit = match c.get("name").and_then(Value::as_str)? {
                "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => Unit::Millis,
                "io.debezium.time.MicroTimestamp" => Unit::Micros,
                "io.debezium.time.NanoTimestamp" => Unit::Nanos,
                _ => return None,
            };
            Some((c.get("field").and_then(Value::as_str)?, unit))
        })
        .collect()
}

/// A time column: null → `None`; an ISO-8601 string; a number in the unit
/// its schema names.
fn read_time(value: Option<&Value>, unit: Option<Unit>, column: &str) -> Result<Option<OffsetDateTime>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339)
            .map(Some)
            .map_err(|e| format!("{column} is not an ISO-8601 time: {e}")),
        Some(Value::Number(n)) => {
            let n = n.as_i64().ok_or_else(|| format!("{column} is not an integer time"))?;
            let nanos = match unit {
                Some(Unit::Millis) => i128::from(n) * 1_000_000,
                Some(Unit::Micros) => i128::from(n) * 1_000,
                Some(Unit::Nanos) => i128::from(n),
                None => {
                    return Err(format!(
                        "{column} is a number without a schema naming its unit; use timestamptz columns or turn the converter's schemas on"
                    ));
                }
            };
            OffsetDateTime::from_unix_timestamp_nanos(nanos).map(Some).map_err(|e| format!("{column}: {e}"))
        }
        Some(_) => Err(format!("{column} is neither a time nor null")),
    }
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(end, _)| &text[..end])
}
