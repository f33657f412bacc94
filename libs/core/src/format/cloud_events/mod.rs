//! [`CloudEvents`]: our event JSON carried in the CloudEvents Kafka protocol
//! binding (CloudEvents 1.0), in either mode:
//!
//! - **binary**: the attributes are headers (`ce_specversion`, `ce_type`,
//!   `ce_id`, `ce_source`, …) and the record value is the event's data — our
//!   event JSON, whose `type` must agree with `ce_type`;
//! - **structured**: `content-type: application/cloudevents+json` and the
//!   value is the whole CloudEvent, our event JSON in its `data`.
//!
//! The record key is the session id in both (the binding's `partitionkey`).
//! A record with neither (no `ce_` headers, another content type) is read as
//! plain event JSON, so a topic can move to CloudEvents one producer at a
//! time. A CloudEvent of another `type` is counted as unknown; a CloudEvent
//! that cannot be read revokes its key, as any malformed record does.

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{CREATED, REVOKED, USER_REVOKED_BEFORE, cutoff_key};
use crate::format::{Change, Decoded, EventJson, RawRecord, RecordFormat};
use crate::session_id::SidRef;
use crate::user::UserTag;

/// The content type of a structured-mode CloudEvent.
const STRUCTURED: &str = "application/cloudevents+json";

/// Our event JSON in CloudEvents, binary or structured mode.
///
/// ```
/// use revocation_core::{CloudEvents, Decoded, Header, RawRecord, RecordFormat};
/// let headers = [
///     Header { name: "ce_specversion", value: Some(b"1.0") },
///     Header { name: "ce_type", value: Some(b"session.revoked") },
///     Header { name: "ce_id", value: Some(b"42") },
///     Header { name: "ce_source", value: Some(b"/auth") },
/// ];
/// let value = br#"{"type":"session.revoked","sid":"s-1","revoked_at":"2026-12-01T11:00:00Z"}"#;
/// let record = RawRecord { key: Some(b"s-1"), value: Some(value), headers: &headers };
/// assert!(matches!(CloudEvents.decode(&record), Decoded::Change { .. }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudEvents;

impl RecordFormat for CloudEvents {
    fn name(&self) -> &'static str {
        "cloudevents"
    }

    fn reads_headers(&self) -> bool {
        true
    }

    fn decode<'a>(&self, record: &RawRecord<'a>) -> Decoded<'a> {
        // A cutoff's key holds the cutoff: whatever is wrong with the
        // envelope around it, it is applied (fail closed) and counted rejected.
        match (record.key.and_then(cutoff_key), decode_envelope(record)) {
            (Some(Ok((user, not_before))), Decoded::Malformed { reason, .. }) => {
                Decoded::UserCutoff { user: UserTag::of(user), not_before, rejected: Some(reason) }
            }
            (Some(Ok((user, not_before))), Decoded::Unknown { kind, .. }) => Decoded::UserCutoff {
                user: UserTag::of(user),
                not_before,
                rejected: Some(format!("a CloudEvent of type {kind} under a user cutoff's key")),
            },
            (_, decoded) => decoded,
        }
    }
}

/// [`CloudEvents::decode`], before a cutoff's key is given its due.
fn decode_envelope<'a>(record: &RawRecord<'a>) -> Decoded<'a> {
    {
        let header =
            |name: &str| record.headers.iter().rev().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| h.value);
        let structured = header("content-type")
            .and_then(|v| std::str::from_utf8(v).ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with(STRUCTURED));
        if structured {
            return structured_event(record);
        }
        match header("ce_type") {
            Some(kind) => binary_event(record, kind, header("ce_specversion")),
            None => EventJson.decode(record),
        }
    }
}

/// The key as a session id, for the errors that come before the data is read.
fn key_of<'a>(record: &RawRecord<'a>) -> Option<SidRef<'a>> {
    record.key.and_then(|k| SidRef::from_bytes(k).ok())
}

fn binary_event<'a>(record: &RawRecord<'a>, kind: &'a [u8], version: Option<&'a [u8]>) -> Decoded<'a> {
    let malformed = |reason: String| Decoded::Malformed { key: key_of(record), reason };
    if version != Some(b"1.0".as_slice()) {
        return malformed("binary-mode CloudEvent without ce_specversion 1.0".into());
    }
    let Ok(kind) = std::str::from_utf8(kind) else { return malformed("ce_type is not UTF-8".into()) };
    if kind != CREATED && kind != REVOKED && kind != USER_REVOKED_BEFORE {
        return match key_of(record) {
            Some(sid) => Decoded::Unknown { sid, kind: Cow::Owned(kind.chars().take(64).collect()) },
            None => malformed("record key is not a session id".into()),
        };
    }
    if kind == USER_REVOKED_BEFORE {
        return only_cutoff(EventJson.decode(record), key_of(record));
    }
    if kind == REVOKED && record.value.is_none() {
        // Not a tombstone: forgetting is not sticky, a revocation is.
        return malformed("a session.revoked CloudEvent without data".into());
    }
    agreeing(EventJson.decode(record), kind, key_of(record))
}

fn structured_event<'a>(record: &RawRecord<'a>) -> Decoded<'a> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        specversion: Option<Cow<'a, str>>,
        #[serde(rename = "type")]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
    }
    let malformed = |reason: String| Decoded::Malformed { key: key_of(record), reason };
    let Some(value) = record.value else {
        return EventJson.decode(record);
    };
    let envelope: Envelope<'a> = match serde_json::from_slice(value) {
        Ok(envelope) => envelope,
        Err(e) => return malformed(format!("structured CloudEvent is not JSON: {e}")),
    };
    if envelope.specversion.as_deref() != Some("1.0") {
        return malformed("structured CloudEvent without specversion 1.0".into());
    }
    let kind = envelope.kind.unwrap_or_default();
    if kind != CREATED && kind != REVOKED && kind != USER_REVOKED_BEFORE {
        return match key_of(record) {
            Some(sid) => Decoded::Unknown { sid, kind: Cow::Owned(kind.chars().take(64).collect()) },
            None => malformed("record key is not a session id".into()),
        };
    }
    let Some(data) = envelope.data else { return malformed(format!("CloudEvent {kind} has no data")) };
    let data = RawRecord { key: record.key, value: Some(data.get().as_bytes()), headers: &[] };
    if kind == USER_REVOKED_BEFORE {
        return only_cutoff(EventJson.decode(&data), key_of(record));
    }
    agreeing(EventJson.decode(&data), &kind, key_of(record))
}

/// The data of a `user.revoked_before` CloudEvent: a cutoff (applied even
/// when its data disagrees, fail closed) or malformed, never a session's
/// change.
fn only_cutoff<'a>(decoded: Decoded<'a>, key: Option<SidRef<'a>>) -> Decoded<'a> {
    match decoded {
        cutoff @ (Decoded::UserCutoff { .. } | Decoded::Skipped | Decoded::Malformed { .. }) => cutoff,
        _ => Decoded::Malformed {
            key,
            reason: format!("the CloudEvent's type {USER_REVOKED_BEFORE} differs from its data's"),
        },
    }
}

/// The decoded data, if its kind is the CloudEvent's `type`. An envelope that
/// says revoked revokes the record's key whatever its data says: data that
/// cannot be read, or reads as something else, is malformed with that key.
fn agreeing<'a>(decoded: Decoded<'a>, kind: &str, key: Option<SidRef<'a>>) -> Decoded<'a> {
    let data_kind = match &decoded {
        Decoded::Change { change: Change::Create { .. }, .. } => CREATED,
        Decoded::Change { change: Change::Merge(_) | Change::Forget, .. } => REVOKED,
        Decoded::Malformed { key: None, reason } if kind == REVOKED && key.is_some() => {
            return Decoded::Malformed { key, reason: reason.clone() };
        }
        // An envelope that says revoked revokes its key, whatever else its
        // data would do.
        Decoded::UserCutoff { .. } | Decoded::Skipped if kind == REVOKED && key.is_some() => {
            let reason = format!("the CloudEvent's type {kind} differs from its data's");
            return Decoded::Malformed { key, reason };
        }
        Decoded::Unknown { kind: data_kind, .. } if kind == REVOKED => {
            let reason = format!("the CloudEvent's type {kind} differs from its data's {data_kind}");
            return Decoded::Malformed { key, reason };
        }
        _ => return decoded,
    };
    match decoded {
        Decoded::Change { sid, .. } if data_kind != kind => Decoded::Malformed {
            key: Some(sid),
            reason: format!("the CloudEvent's type {kind} differs from its data's {data_kind}"),
        },
        decoded => decoded,
    }
}
