//! What the store answers: what an apply did ([`Applied`]), what it says of
//! a session ([`Lookup`]), and its counters ([`StoreCounts`]).

use crate::clock::Timestamp;
use crate::state::{SessionState, Standing};

/// What [`SessionStore::apply`](crate::SessionStore::apply) did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// An event (created, revoked, tombstone), merged.
    Event,
    /// A JSON object of an unknown `type`: counted, skipped.
    Unknown,
    /// A source heartbeat: nothing stored; the caller records it with the
    /// freshness of the record's partition.
    Heartbeat {
        /// When the heartbeat was committed, by the source's clock.
        committed_at: Timestamp,
    },
    /// The cutoffs table's heartbeat: nothing stored; the caller records it
    /// with the freshness.
    CutoffsHeartbeat {
        /// When the heartbeat was committed, by the source's clock.
        committed_at: Timestamp,
    },
    /// A truncate of the source's table: nothing stored; the caller caps the
    /// freshness at it.
    SourceTruncated {
        /// When the table was truncated, by the source's clock.
        truncated_at: Timestamp,
    },
    /// A user's cutoff, applied (even when its value was unreadable: the
    /// key holds the cutoff).
    UserCutoff {
        /// Whether the user's cutoff moved (it only moves forward).
        raised: bool,
        /// What was wrong with the value, if anything (counted rejected).
        rejected: Option<String>,
    },
    /// A record that cannot be read: counted; its key revoked when valid.
    Malformed {
        /// Whether the key was a valid sid (and is now revoked).
        revoked: bool,
        /// What is wrong, for logs (never the whole sid).
        reason: String,
    },
}

/// What the store says about one session at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Created, not revoked, not expired.
    Live,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Not in the store: never seen, forgotten by a tombstone, or swept.
    Absent,
}

impl Lookup {
    /// What a session's state (`None`: not in the store) says at `now`.
    #[inline]
    pub fn of(state: Option<SessionState>, now: Timestamp) -> Self {
        match state.map(|s| s.standing(now)) {
            Some(Standing::Live) => Lookup::Live,
            Some(Standing::Revoked) => Lookup::Revoked,
            Some(Standing::Expired) => Lookup::Expired,
            None => Lookup::Absent,
        }
    }
}

/// Counters of a store, for health reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    /// Sessions held (live, revoked or expired-but-not-yet-swept).
    pub sessions: u64,
    /// Sessions held that are revoked.
    pub revoked: u64,
    /// Records applied as events (created, revoked, tombstone).
    pub applied: u64,
    /// Records rejected as malformed (their key, if valid, was revoked).
    pub rejected: u64,
    /// Records skipped for an unknown event type.
    pub unknown: u64,
}
