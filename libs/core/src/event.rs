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

use crate::clock::Timestamp;
use crate::session_id::SessionId;
use crate::user::UserId;

/// The `type` of a session-created event.
pub const CREATED: &str = "session.created";
/// The `type` of a session-revoked event.
pub const REVOKED: &str = "session.revoked";
/// The `type` of a per-user cutoff ("log out everywhere").
pub const USER_REVOKED_BEFORE: &str = "user.revoked_before";

/// The user id of the cutoffs table's heartbeat row (change data capture):
/// the connector's heartbeat query upserts it with every heartbeat, so the
/// projection can tell that the table's changes reach its topic. Ids
/// starting `__` are reserved.
pub const CUTOFFS_HEARTBEAT_USER: &str = "__heartbeat__";

/// What starts the record key of a [`UserRevokedBefore`]: a control
/// character, which no session id may hold, so a cutoff's key can never be
/// a session's (and compaction never merges the two).
const CUTOFF_KEY_MARK: char = '\u{1}';

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

/// "Log out everywhere": every session `user_id` created, and every token
/// issued to them, before `not_before` is revoked. A cutoff only moves
/// forward: one earlier than the user's current cutoff changes nothing.
///
/// Its record key holds the user and the instant
/// (`\u{1}user.revoked_before\u{1}<micros>\u{1}<user_id>`), so each cutoff
/// is a key of its own: compaction never replaces a later cutoff by an
/// earlier one. Nothing of ours tombstones a cutoff's key (the janitor keeps
/// them; `docs/lifecycle.md` says when one could be forgotten).
///
/// ```
/// use revocation_core::{Decoded, EventJson, RawRecord, RecordFormat, UserId, UserRevokedBefore};
/// let cutoff = UserRevokedBefore {
///     user_id: UserId::new("u-42").unwrap(),
///     not_before: time::macros::datetime!(2026-12-03 10:00 UTC),
///     reason: Some("password_changed".into()),
/// };
/// let (key, value) = (cutoff.key(), cutoff.to_value());
/// let decoded = EventJson.decode(&RawRecord::new(Some(&key), Some(&value)));
/// assert!(matches!(decoded, Decoded::UserCutoff { rejected: None, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRevokedBefore {
    /// The user.
    pub user_id: UserId,
    /// Sessions created and tokens issued before this instant are revoked.
    pub not_before: OffsetDateTime,
    /// Why (`logout_all`, `password_changed`, …), if given.
    pub reason: Option<String>,
}

impl UserRevokedBefore {
    /// The record key.
    pub fn key(&self) -> Vec<u8> {
        let micros = Timestamp::from_datetime(self.not_before).as_unix_micros();
        format!(
            "{CUTOFF_KEY_MARK}{USER_REVOKED_BEFORE}{CUTOFF_KEY_MARK}{micros}{CUTOFF_KEY_MARK}{}",
            self.user_id.as_str()
        )
        .into_bytes()
    }

    /// The record value (JSON).
    pub fn to_value(&self) -> Vec<u8> {
        let wire = Wire::UserRevokedBefore {
            user_id: Cow::Borrowed(self.user_id.as_str()),
            not_before: self.not_before,
            reason: self.reason.as_deref().map(Cow::Borrowed),
        };
        // Serializing these plain fields cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// The user and instant a cutoff's record key holds, when `key` is one
/// (`None`: not a cutoff's key; `Some(Err)`: marked as one but unreadable).
pub(crate) fn cutoff_key(key: &[u8]) -> Option<Result<(&str, Timestamp), &'static str>> {
    let text = std::str::from_utf8(key).ok()?;
    let rest = text.strip_prefix(CUTOFF_KEY_MARK)?;
    let parsed = (|| {
        let rest = rest.strip_prefix(USER_REVOKED_BEFORE)?.strip_prefix(CUTOFF_KEY_MARK)?;
        let (micros, user) = rest.split_once(CUTOFF_KEY_MARK)?;
        crate::user::validate(user).ok()?;
        Some((user, Timestamp::from_unix_micros(micros.parse().ok()?)))
    })();
    Some(parsed.ok_or("the key is marked as a user cutoff's but does not read as `<mark>user.revoked_before<mark><micros><mark><user_id>`"))
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
    #[serde(rename = "user.revoked_before")]
    UserRevokedBefore {
        user_id: Cow<'a, str>,
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
    },
}
