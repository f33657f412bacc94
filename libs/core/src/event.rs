//! [`SessionEvent`]: the facts our own event format carries, and how they
//! are written.
//!
//! Records are keyed by the session id (UTF-8); values are JSON objects with a
//! `type` field (see `docs/events.md` and `docs/session-event.schema.json`).
//! A null value (tombstone) forgets the key. Reading them is the
//! [`EventJson`](crate::EventJson) record format's job.

use std::borrow::Cow;

use serde::Serialize;
use time::OffsetDateTime;

use crate::session_id::SessionId;

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
    /// use revocation_core::{Decoded, EventJson, RawRecord, RecordFormat, SessionEvent, SessionId};
    /// let event = SessionEvent::Revoked {
    ///     sid: SessionId::new("s-1").unwrap(),
    ///     revoked_at: time::macros::datetime!(2026-11-27 11:00 UTC),
    ///     reason: Some("logout".into()),
    /// };
    /// let value = event.to_value();
    /// let record = RawRecord::new(Some(event.key()), value.as_deref());
    /// assert_eq!(EventJson.decode(&record), Decoded::from(&event));
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
