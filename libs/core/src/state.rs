//! One session's state, as a join-semilattice.
//!
//! Events arrive at least once, replays repeat them, and a session's events
//! may be observed in any order across restarts. So applying an event is a
//! *merge* (a least upper bound): idempotent, commutative, associative and
//! monotone. Revocation absorbs: once merged in, no merge can remove it.
//!
//! The state is packed into 12 bytes (three `u32`s) because the projection
//! holds tens of millions of them: times are whole seconds since the Unix
//! epoch, clamped to 1..=`u32::MAX` (year 2106), with 0 meaning "not known".
//! Expiry is rounded *down*, so a session can only expire early, never late;
//! so is the creation time, which only a user's cutoff reads (a session
//! created in the cutoff's second is cut off).
//!
//! One field is the owner's [`UserTag`] while the session is not revoked,
//! and a revocation mark once it is; another is the creation time while not
//! revoked, and the revocation time once it is. A revoked session's owner
//! and creation no longer matter (revocation absorbs), so this packing is a
//! join-preserving image of the full state and merging stays a semilattice.
//! Owner and creation cost 4 bytes a session: "log out everywhere"
//! (`docs/events.md`).

use crate::clock::Timestamp;
use time::OffsetDateTime;

use crate::event::SessionEvent;
use crate::user::{UserTag, before};

const NONE: u32 = 0;
const NEVER: u32 = u32::MAX;

/// What the projection knows about one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionState {
    /// Seconds since the epoch at which the session expires; `NEVER` when the
    /// created event gave no expiry; `NONE` when no created event was seen.
    expires_at: u32,
    /// [`REVOKED`] once revoked; else the owner's tag, `NONE` when no
    /// created event was seen.
    user: u32,
    /// Revoked: seconds since the epoch of the earliest revocation seen.
    /// Not revoked: of the earliest creation seen (rounded down), `NONE`
    /// when no created event was seen.
    at: u32,
}

/// The `user` field of a revoked state ([`UserTag`]s are never this).
const REVOKED: u32 = u32::MAX;

/// The liveness of a session's state at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Created, not revoked, not expired.
    Live,
    /// Revoked (whether or not it was ever seen created).
    Revoked,
    /// Created and past its expiry.
    Expired,
}

fn clamp_secs(secs: i64) -> u32 {
    secs.clamp(1, i64::from(NEVER)) as u32
}

impl SessionState {
    /// The state a single event contributes (a tombstone contributes nothing:
    /// it is not part of the lattice, the store forgets the key instead).
    pub fn of(event: &SessionEvent) -> Self {
        match event {
            SessionEvent::Created { user_id, created_at, expires_at, .. } => {
                Self::created(UserTag::of(user_id), *created_at, *expires_at)
            }
            SessionEvent::Revoked { revoked_at, .. } => Self::revoked(*revoked_at),
            SessionEvent::Tombstone { .. } => Self::default(),
        }
    }

    /// What a created event contributes: its owner, when it was created,
    /// and its expiry (`None`: none of its own).
    pub fn created(user: UserTag, created_at: OffsetDateTime, expires_at: Option<OffsetDateTime>) -> Self {
        Self {
            expires_at: expires_at.map(|at| clamp_secs(at.unix_timestamp())).unwrap_or(NEVER),
            user: user.0,
            at: clamp_secs(created_at.unix_timestamp()),
        }
    }

    /// What a revoked event at this instant contributes.
    pub fn revoked(revoked_at: OffsetDateTime) -> Self {
        Self::revoked_as_of(Timestamp::from_datetime(revoked_at))
    }

    /// A revocation at `at`: what a malformed record contributes to its key.
    pub fn revoked_as_of(at: Timestamp) -> Self {
        Self { expires_at: NONE, user: REVOKED, at: clamp_secs(at.as_unix_secs()) }
    }

    /// This state with its expiry brought forward to `latest` if it was later
    /// (or never): how a maximum session lifetime bounds a created event.
    /// A state without a created event is returned as it is.
    #[must_use]
    pub fn expiring_by(self, latest: Timestamp) -> Self {
        if !self.is_created() {
            return self;
        }
        Self { expires_at: self.expires_at.min(clamp_secs(latest.as_unix_secs())), ..self }
    }

    /// The state as one number, for snapshots ([`Self::from_bits`] reads it).
    pub(crate) fn to_bits(self) -> u128 {
        (u128::from(self.expires_at) << 64) | (u128::from(self.user) << 32) | u128::from(self.at)
    }

    /// A state from [`Self::to_bits`] (its low 96 bits).
    pub(crate) fn from_bits(bits: u128) -> Self {
        Self { expires_at: (bits >> 64) as u32, user: (bits >> 32) as u32, at: bits as u32 }
    }

    /// The least upper bound of two states. For two created events of one
    /// session (a producer bug) the earlier expiry and creation win, and
    /// the lower user tag (any fixed choice keeps the merge a semilattice);
    /// of two revocations, the earlier instant is kept.
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        let expires_at = min_known(self.expires_at, other.expires_at);
        match (self.is_revoked(), other.is_revoked()) {
            (true, true) => Self { expires_at, user: REVOKED, at: min_known(self.at, other.at) },
            (true, false) => Self { expires_at, ..self },
            (false, true) => Self { expires_at, ..other },
            (false, false) => {
                Self { expires_at, user: min_known(self.user, other.user), at: min_known(self.at, other.at) }
            }
        }
    }

    /// The owner, when a created event has been merged in and the session
    /// is not revoked (a revoked session's owner no longer matters).
    pub fn user(self) -> Option<UserTag> {
        (self.user != NONE && !self.is_revoked()).then_some(UserTag(self.user))
    }

    /// Whether the session was created before a user cutoff of `cutoff`
    /// seconds (see [`UserCutoffs`](crate::UserCutoffs)). A state without a
    /// creation time is never cut off here: it is revoked-only (already
    /// dead) or has no created event to be cut off.
    #[inline]
    pub(crate) fn created_before(self, cutoff: u32) -> bool {
        !self.is_revoked() && self.at != NONE && before(i64::from(self.at), cutoff)
    }

    /// Whether a revocation has been merged in.
    #[inline]
    pub fn is_revoked(self) -> bool {
        self.user == REVOKED
    }

    /// Whether a created event has been merged in.
    #[inline]
    pub fn is_created(self) -> bool {
        self.expires_at != NONE
    }

    /// When the session was revoked (to the second), if it was.
    pub fn revoked_at(self) -> Option<Timestamp> {
        self.is_revoked().then(|| Timestamp::from_unix_secs(i64::from(self.at)))
    }

    /// When the session expires (to the second, rounded down), if it was
    /// created with an expiry.
    pub fn expires_at(self) -> Option<Timestamp> {
        (self.is_created() && self.expires_at != NEVER).then(|| Timestamp::from_unix_secs(i64::from(self.expires_at)))
    }

    /// Whether the session has expired at `now`.
    #[inline]
    pub fn is_expired(self, now: Timestamp) -> bool {
        self.is_created() && self.expires_at != NEVER && i64::from(self.expires_at) <= now.as_unix_secs()
    }

    /// From when forgetting this session (the sweeper, a tombstone) can no
    /// longer change an answer, if ever:
    ///
    /// - not revoked: its expiry. Absent and expired answer alike.
    /// - revoked, with a maximum session lifetime `L`: the earlier of its
    ///   expiry and its revocation, plus `L`. A `created` arriving after the
    ///   session is forgotten (a duplicate, or one with a later expiry) is
    ///   capped at its `created_at + L`, and a session is created before it
    ///   expires or is revoked, so by then any such `created` is expired too.
    /// - revoked, without a maximum lifetime: its expiry, if it has one (a
    ///   late `created` with a later expiry could then revive it: set a
    ///   lifetime to rule that out).
    ///
    /// ```
    /// use std::time::Duration;
    /// use revocation_core::{SessionState, Timestamp, UserTag};
    /// let at = |secs| time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    /// let created = SessionState::created(UserTag::of("u"), at(0), Some(at(1_000)));
    /// assert_eq!(created.forgettable_at(None), Some(Timestamp::from_unix_secs(1_000)));
    /// let revoked = created.merge(SessionState::revoked(at(500)));
    /// let day = Duration::from_secs(86_400);
    /// assert_eq!(revoked.forgettable_at(Some(day)), Some(Timestamp::from_unix_secs(500 + 86_400)));
    /// assert_eq!(SessionState::revoked(at(500)).forgettable_at(None), None);
    /// ```
    pub fn forgettable_at(self, max_lifetime: Option<std::time::Duration>) -> Option<Timestamp> {
        let expiry = self.expires_at();
        match (self.revoked_at(), max_lifetime) {
            (None, _) | (Some(_), None) => expiry,
            (Some(revoked), Some(lifetime)) => {
                Some(expiry.map_or(revoked, |e| e.min(revoked)).saturating_add(lifetime))
            }
        }
    }

    /// The session's standing at `now`. A state only ever holds merged events,
    /// so it is either created or revoked (or both).
    #[inline]
    pub fn standing(self, now: Timestamp) -> Standing {
        if self.is_revoked() {
            Standing::Revoked
        } else if self.is_expired(now) {
            Standing::Expired
        } else {
            Standing::Live
        }
    }
}

/// Minimum, where `NONE` (0) means "unknown" and loses to any known value.
fn min_known(a: u32, b: u32) -> u32 {
    match (a, b) {
        (NONE, x) | (x, NONE) => x,
        (a, b) => a.min(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_id::SessionId;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn event_strategy() -> impl Strategy<Value = SessionEvent> {
        let sid = SessionId::new("s").unwrap();
        let created = (0i64..5_000_000_000, proptest::option::of(0i64..5_000_000_000), proptest::bool::weighted(0.2))
            .prop_map({
                let sid = sid.clone();
                // Now and then a second owner: the session is then revoked.
                move |(c, e, other)| SessionEvent::Created {
                    sid: sid.clone(),
                    user_id: if other { "v" } else { "u" }.into(),
                    created_at: at(c),
                    expires_at: e.map(at),
                }
            });
        let revoked = (-10i64..5_000_000_000).prop_map(move |r| SessionEvent::Revoked {
            sid: sid.clone(),
            revoked_at: at(r),
            reason: None,
        });
        prop_oneof![created, revoked]
    }

    fn fold(events: &[SessionEvent]) -> SessionState {
        events.iter().map(SessionState::of).fold(SessionState::default(), SessionState::merge)
    }

    proptest! {
        #[test]
        fn any_permutation_and_duplication_yields_the_same_state(
            (events, shuffled) in proptest::collection::vec(event_strategy(), 1..12).prop_flat_map(|events| {
                let len = events.len();
                (Just(events), proptest::collection::vec(0..len, 0..12))
            }).prop_flat_map(|(events, dups)| {
                let mut all = events.clone();
                all.extend(dups.iter().map(|&i| events[i].clone()));
                (Just(events), Just(all).prop_shuffle())
            })
        ) {
            prop_assert_eq!(fold(&shuffled), fold(&events));
        }

        #[test]
        fn a_revocation_is_never_undone(
            before in proptest::collection::vec(event_strategy(), 0..8),
            after in proptest::collection::vec(event_strategy(), 0..8),
            revoked_at in 0i64..5_000_000_000,
            now in 0i64..5_000_000_000,
        ) {
            let revoke = SessionEvent::Revoked { sid: SessionId::new("s").unwrap(), revoked_at: at(revoked_at), reason: None };
            let mut events = before;
            events.push(revoke);
            events.extend(after);
            let state = fold(&events);
            prop_assert!(state.is_revoked());
            prop_assert_eq!(state.standing(Timestamp::from_unix_secs(now)), Standing::Revoked);
        }

        #[test]
        fn merge_is_a_semilattice(a in event_strategy(), b in event_strategy(), c in event_strategy()) {
            let (a, b, c) = (SessionState::of(&a), SessionState::of(&b), SessionState::of(&c));
            prop_assert_eq!(a.merge(a), a);
            prop_assert_eq!(a.merge(b), b.merge(a));
            prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
        }
    }

    #[test]
    fn standing_follows_the_decision_table() {
        let sid = SessionId::new("s").unwrap();
        let now = Timestamp::from_unix_secs(1_000);
        let created = |exp: Option<i64>| {
            SessionState::of(&SessionEvent::Created {
                sid: sid.clone(),
                user_id: "u".into(),
                created_at: at(0),
                expires_at: exp.map(at),
            })
        };
        let revoked = SessionState::of(&SessionEvent::Revoked { sid: sid.clone(), revoked_at: at(500), reason: None });
        assert_eq!(created(None).standing(now), Standing::Live);
        assert_eq!(created(Some(1_001)).standing(now), Standing::Live);
        assert_eq!(created(Some(1_000)).standing(now), Standing::Expired);
        assert_eq!(created(Some(10)).standing(now), Standing::Expired);
        assert_eq!(revoked.standing(now), Standing::Revoked);
        assert_eq!(created(None).merge(revoked).standing(now), Standing::Revoked);
        assert_eq!(revoked.revoked_at(), Some(Timestamp::from_unix_secs(500)));
    }

    #[test]
    fn times_before_the_epoch_still_revoke_and_expire() {
        let sid = SessionId::new("s").unwrap();
        let revoked = SessionState::of(&SessionEvent::Revoked { sid: sid.clone(), revoked_at: at(-5), reason: None });
        assert!(revoked.is_revoked());
        let created = SessionState::of(&SessionEvent::Created {
            sid,
            user_id: "u".into(),
            created_at: at(-10),
            expires_at: Some(at(-5)),
        });
        assert_eq!(created.standing(Timestamp::from_unix_secs(10)), Standing::Expired);
    }

    #[test]
    fn the_state_is_twelve_bytes() {
        // Expiry, owner-or-revoked, creation-or-revocation time.
        assert_eq!(std::mem::size_of::<SessionState>(), 12);
    }
}
