//! Record formats: how the bytes of one record become a change to one session.
//!
//! The feed reads one [`RecordFormat`] per topic. A format sees a record's key,
//! value and headers ([`RawRecord`]) and says what it is ([`Decoded`]): a
//! change to a session, a kind of record this version does not know, or a
//! record it cannot read. The store applies that answer the same way whatever
//! the format, so a new format (Debezium change events, CloudEvents) is one
//! new module here and one line where the format is chosen; the hot path does
//! not change.
//!
//! A format never panics and never fails: what it cannot read is
//! [`Decoded::Malformed`], which the store turns into a revocation of the key
//! when the key is a valid session id (fail closed).

mod cloud_events;
mod debezium;
mod event_json;

use std::borrow::Cow;
use std::fmt;

pub use cloud_events::CloudEvents;
pub use debezium::{Debezium, HEARTBEAT_PREFIX, TRUNCATE_MARKER_ID};
pub use event_json::EventJson;

use crate::clock::Timestamp;
use crate::event::SessionEvent;
use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::user::UserTag;

/// One record as the broker holds it, borrowed.
///
/// ```
/// use revocation_core::{Decoded, EventJson, RawRecord, RecordFormat};
/// let record = RawRecord::new(Some(b"s-1"), None);
/// assert!(matches!(EventJson.decode(&record), Decoded::Change { .. }));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRecord<'a> {
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The record headers, in order (empty unless the format asks for them,
    /// see [`RecordFormat::reads_headers`]).
    pub headers: &'a [Header<'a>],
}

impl<'a> RawRecord<'a> {
    /// A record without headers.
    pub fn new(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
        Self { key, value, headers: &[] }
    }
}

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header's name.
    pub name: &'a str,
    /// The header's value; `None` for a null header.
    pub value: Option<&'a [u8]>,
}

/// What a record does to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Merge this state into the session's (see [`SessionState::merge`]).
    Merge(SessionState),
    /// A session's creation at `created_at`: merged like [`Change::Merge`],
    /// its expiry first capped at `created_at` plus the store's maximum
    /// session lifetime when the store has one (see
    /// [`SessionStore::with_max_session_lifetime`](crate::SessionStore::with_max_session_lifetime)).
    Create {
        /// What the created event says (`SessionState::created`: owner,
        /// creation, expiry).
        state: SessionState,
        /// When the session was created, as the event says.
        created_at: Timestamp,
    },
    /// Forget the session (a tombstone; absence already means revoked).
    Forget,
}

/// What a [`RecordFormat`] made of one record, borrowing from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A change to one session.
    Change {
        /// The session.
        sid: SidRef<'a>,
        /// What to do to it.
        change: Change,
    },
    /// A well-formed record of a kind this version does not know: counted
    /// and skipped, so producers can add kinds before consumers learn them.
    Unknown {
        /// The record's session.
        sid: SidRef<'a>,
        /// The unknown kind, as the record names it.
        kind: Cow<'a, str>,
    },
    /// A source heartbeat (change data capture): every change the source
    /// committed before `committed_at` and sent to this record's partition
    /// precedes it there. Not a session; the feed hands it to the freshness.
    Heartbeat {
        /// When the heartbeat was committed, by the source's clock.
        committed_at: Timestamp,
    },
    /// The source's table was truncated (change data capture): the stream
    /// no longer says which sessions exist. Not a session; the feed caps the
    /// projection's freshness at `truncated_at` for good.
    SourceTruncated {
        /// When the table was truncated, by the source's clock.
        truncated_at: Timestamp,
    },
    /// A user's cutoff ("log out everywhere"): the store raises the user's
    /// cutoff to `not_before`. Read from the record key, which holds both,
    /// so a cutoff whose value cannot be read is still applied (fail closed)
    /// and counted rejected with `rejected` saying why.
    UserCutoff {
        /// The user.
        user: UserTag,
        /// Sessions created and tokens issued before this are revoked.
        not_before: Timestamp,
        /// What is wrong with the value, if anything.
        rejected: Option<String>,
    },
    /// A record with no effect: a tombstone of a user cutoff's key (a
    /// cutoff only moves forward, so forgetting an old one changes no
    /// answer), a delete of a cutoff row, a snapshot read of the cutoffs'
    /// heartbeat row. Counted applied.
    Skipped,
    /// The heartbeat row of the cutoffs table (change data capture): the
    /// cutoffs table's changes reach this topic, committed at
    /// `committed_at`. Not a session; the feed hands it to the freshness,
    /// which is never fresh past the latest one (a cutoffs table the
    /// connector does not capture, or does not route here, fails closed).
    CutoffsHeartbeat {
        /// When the heartbeat was committed, by the source's clock.
        committed_at: Timestamp,
    },
    /// A record that cannot be read. When `key` is a valid session id, the
    /// store revokes it (fail closed); otherwise the record is only counted.
    Malformed {
        /// The record key, when it is a valid session id.
        key: Option<SidRef<'a>>,
        /// What is wrong, for logs (never contains the whole sid).
        reason: String,
    },
}

/// An event of our own, as the change it makes: how tests, benchmarks and
/// tools that hold events apply them to a store.
impl<'a> From<&'a SessionEvent> for Decoded<'a> {
    #[inline]
    fn from(event: &'a SessionEvent) -> Self {
        let change = match event {
            SessionEvent::Tombstone { .. } => Change::Forget,
            SessionEvent::Created { created_at, .. } => {
                Change::Create { state: SessionState::of(event), created_at: Timestamp::from_datetime(*created_at) }
            }
            SessionEvent::Revoked { .. } => Change::Merge(SessionState::of(event)),
        };
        Decoded::Change { sid: event.sid().as_sid_ref(), change }
    }
}

/// A way of reading records: bytes in, a [`Decoded`] out.
///
/// Implementations must be total (every input gets an answer, none panics)
/// and must classify a record they cannot fully read as
/// [`Decoded::Malformed`], never as a live session.
///
/// ```
/// use revocation_core::{Decoded, EventJson, RawRecord, RecordFormat};
/// let value = br#"{"type":"session.revoked","sid":"s-1","revoked_at":"2026-11-27T11:00:00Z"}"#;
/// let decoded = EventJson.decode(&RawRecord::new(Some(b"s-1"), Some(value)));
/// assert!(matches!(decoded, Decoded::Change { .. }));
/// ```
pub trait RecordFormat: fmt::Debug + Send + Sync {
    /// A short name for logs and configuration (`events`, …).
    fn name(&self) -> &'static str;

    /// Whether [`RawRecord::headers`] must be filled. The feed copies headers
    /// only for formats that read them.
    fn reads_headers(&self) -> bool {
        false
    }

    /// Whether a delete in this format can forget a session that is still
    /// live (a Debezium delete of a row), rather than only one that is dead
    /// for good (our tombstones, by contract). Such deletes are not monotone:
    /// the order of a key's records matters, so the feed refuses to trust a
    /// topic where a key's records may sit on two partitions (partitions
    /// were added).
    fn deletes_live_sessions(&self) -> bool {
        false
    }

    /// Whether the records mirror the rows of a source table committed
    /// elsewhere (change data capture). Two defaults follow from it (see
    /// the Kafka source's options): freshness is bounded by the source's
    /// heartbeat rows, and a session unknown after the barrier is confirmed
    /// with the source, since a row committed before the check may still be
    /// in flight.
    fn mirrors_source_table(&self) -> bool {
        false
    }

    /// Classifies one record.
    fn decode<'a>(&self, record: &RawRecord<'a>) -> Decoded<'a>;
}
