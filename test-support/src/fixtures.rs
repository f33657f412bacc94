//! Session fixtures: ids and events, so tests say what happens to which
//! session and nothing else.

use revocation_core::{SessionEvent, SessionId};
use time::OffsetDateTime;

/// A valid session id.
///
/// # Panics
/// When `s` is not a valid session id (a test's own mistake).
pub fn sid(s: &str) -> SessionId {
    SessionId::new(s).unwrap_or_else(|e| panic!("fixture sid {s:?}: {e}"))
}

/// A session created now, expiring at `expires_at` (or never).
pub fn created(s: &str, expires_at: Option<OffsetDateTime>) -> SessionEvent {
    SessionEvent::Created { sid: sid(s), user_id: "u".into(), created_at: OffsetDateTime::now_utc(), expires_at }
}

/// A session revoked now, at logout.
pub fn revoked(s: &str) -> SessionEvent {
    SessionEvent::Revoked { sid: sid(s), revoked_at: OffsetDateTime::now_utc(), reason: Some("logout".into()) }
}
