//! Change events of `user_session_cutoffs` (the per-user cutoffs table the
//! same connector captures, routed into the sessions' topic): a row's
//! `not_before` raises its user's cutoff. Keys are `{"user_id": …}`, which no
//! session's key is. A cutoff only moves forward, so a delete (and its
//! tombstone) changes nothing; the cleanup deletes only rows nothing they
//! cover can outlive (`docs/lifecycle.md`).

use serde_json::Value;

use super::{read_time, time_units, unwrap};
use crate::clock::Timestamp;
use crate::event::CUTOFFS_HEARTBEAT_USER;
use crate::format::Decoded;
use crate::user::UserTag;

/// The user of a cutoff row's key (`{"user_id": …}`, or in the schema
/// wrapper's `payload`), when the key is one.
pub(super) fn key_user(key: &[u8]) -> Option<Result<String, String>> {
    let parsed: Value = serde_json::from_slice(key).ok()?;
    let inner = parsed.get("payload").filter(|p| p.is_object()).unwrap_or(&parsed);
    let user = inner.get("user_id")?;
    // Any text: the sessions' owners are tagged as the table holds them, so
    // a cutoff must be too (a user id our `UserId` would refuse included).
    Some(match user.as_str() {
        Some(user) => Ok(user.to_owned()),
        None => Err("a cutoff's key has a user_id that is not text".into()),
    })
}

/// One change event of a cutoff row. An unreadable `not_before` still cuts
/// the user off, as of the change's commit (fail closed: nothing the user
/// had before then stays live), and is counted rejected.
pub(super) fn decode<'a>(user: &str, value: Option<&[u8]>) -> Decoded<'a> {
    let Some(value) = value else { return Decoded::Skipped };
    let value: Value = match serde_json::from_slice(value) {
        Ok(value) => value,
        Err(e) => return Decoded::Malformed { key: None, reason: format!("a cutoff's value is not JSON: {e}") },
    };
    let envelope = unwrap(&value);
    let op = envelope.get("op").and_then(Value::as_str).unwrap_or("");
    if op == "d" {
        // A delete: the cutoff stays (it only moves forward).
        return Decoded::Skipped;
    }
    let committed = || {
        let source = envelope.get("source")?;
        source
            .get("ts_us")
            .and_then(Value::as_i64)
            .or_else(|| source.get("ts_ms").and_then(Value::as_i64).map(|ms| ms.saturating_mul(1000)))
            .map(Timestamp::from_unix_micros)
    };
    if user == CUTOFFS_HEARTBEAT_USER {
        // Only a streamed change carries a commit's instant (as for the
        // sessions' heartbeat rows); a snapshot read proves nothing.
        return match (op, committed()) {
            ("c" | "u", Some(committed_at)) => Decoded::CutoffsHeartbeat { committed_at },
            _ => Decoded::Skipped,
        };
    }
    let tag = UserTag::of(user);
    let row = envelope.get("after");
    let read = match row {
        _ if !matches!(op, "c" | "r" | "u") => Err(format!("a cutoff's change with op {op:?}")),
        Some(row) if row.get("user_id").and_then(Value::as_str) != Some(user) => {
            Err("the cutoff row's user_id differs from the record key".to_owned())
        }
        Some(row) => {
            match read_time(row.get("not_before"), time_units(&value).get("not_before").copied(), "not_before") {
                Ok(Some(at)) => Ok(Timestamp::from_datetime(at)),
                Ok(None) => Err("the cutoff row has no not_before (not captured, or null)".to_owned()),
                Err(why) => Err(why),
            }
        }
        None => Err(format!("op {op} without `after`")),
    };
    match (read, committed()) {
        (Ok(not_before), _) => Decoded::UserCutoff { user: tag, not_before, rejected: None },
        (Err(why), Some(at)) => Decoded::UserCutoff {
            user: tag,
            not_before: at,
            rejected: Some(format!("{why}; cut off as of the commit")),
        },
        (Err(why), None) => {
            Decoded::Malformed { key: None, reason: format!("{why}, and no commit time to cut off at") }
        }
    }
}
