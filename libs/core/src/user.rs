//! Per-user cutoffs ("log out everywhere"): every session a user created,
//! and every token issued to them, before the user's cutoff is revoked.
//!
//! A cutoff only moves forward (the store keeps the maximum), so it joins
//! the semilattice: replays, duplicates and any order give the same answer.
//! Times are whole seconds and compared fail-closed: a cutoff is rounded
//! *up* and a creation or issue time *down*, so a session created or a
//! token issued in the cutoff's own second is refused (as JWT `iat`, which
//! is whole seconds, requires).
//!
//! The store knows a session's user by a 32-bit [`UserTag`] (a stable hash
//! of the user id), so two users may share a tag: a cutoff then also revokes
//! the other user's older sessions — fail closed, never an admission — with
//! probability users / 2³² per cutoff (docs/events.md, "log out everywhere").

use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use thiserror::Error;

use crate::clock::Timestamp;
use crate::session_id::MAX_SESSION_ID_LEN;

/// A user id as verifiers and producers name it (the `user_id` of a
/// session, the `sub` of a token), validated once, with its [`UserTag`].
///
/// ```
/// use revocation_core::UserId;
/// let user = UserId::new("u-42").unwrap();
/// assert_eq!(user.as_str(), "u-42");
/// assert_eq!(user.tag(), UserId::new("u-42").unwrap().tag());
/// assert!(UserId::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId {
    text: String,
    tag: UserTag,
}

/// Why a string is not a [`UserId`]: the rules of a session id (non-empty,
/// at most 255 bytes, no control characters).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidUserId {
    /// Empty.
    #[error("user id is empty")]
    Empty,
    /// Longer than 255 bytes.
    #[error("user id is {0} bytes long; at most {MAX_SESSION_ID_LEN} are allowed")]
    TooLong(usize),
    /// Holds a control character.
    #[error("user id contains a control character")]
    ControlCharacter,
}

impl UserId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidUserId> {
        let text = id.into();
        validate(&text)?;
        let tag = UserTag::of(&text);
        Ok(Self { text, tag })
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its tag, as the store keeps it.
    pub fn tag(&self) -> UserTag {
        self.tag
    }
}

/// Checks a user id without keeping it.
pub(crate) fn validate(text: &str) -> Result<(), InvalidUserId> {
    if text.is_empty() {
        return Err(InvalidUserId::Empty);
    }
    if text.len() > MAX_SESSION_ID_LEN {
        return Err(InvalidUserId::TooLong(text.len()));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidUserId::ControlCharacter);
    }
    Ok(())
}

/// A user, as the store keeps it beside each session: 32 bits of the
/// user id's XXH3-64 (a fixed, versioned hash, so snapshots and replicas
/// agree), never 0 (0 means "not known") nor `u32::MAX` (the state's
/// revocation mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserTag(pub(crate) u32);

impl UserTag {
    /// The tag of `user_id`.
    pub fn of(user_id: &str) -> Self {
        let hash = xxhash_rust::xxh3::xxh3_64(user_id.as_bytes());
        Self((hash as u32).clamp(1, u32::MAX - 1))
    }

    /// The tag as a number (for snapshots and tests).
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A cutoff instant as the store keeps it: whole seconds, rounded up.
pub(crate) fn cutoff_secs(not_before: Timestamp) -> u32 {
    let micros = not_before.as_unix_micros();
    let secs = micros.div_euclid(1_000_000) + i64::from(micros.rem_euclid(1_000_000) != 0);
    secs.clamp(1, i64::from(u32::MAX)) as u32
}

/// Whether something of a user at `at_secs` (whole seconds, rounded down)
/// falls before the user's cutoff.
#[inline]
pub(crate) fn before(at_secs: i64, cutoff: u32) -> bool {
    at_secs < i64::from(cutoff)
}

/// The cutoffs by user tag; each only moves forward.
#[derive(Debug, Default)]
pub struct UserCutoffs {
    map: DashMap<u32, u32, crate::store::Hasher>,
    /// Users with a cutoff: lets a check skip the map while there are none.
    len: AtomicUsize,
}

impl UserCutoffs {
    /// Raises `user`'s cutoff to `not_before` unless it is already there or
    /// later; returns whether it moved.
    pub fn raise(&self, user: UserTag, not_before: Timestamp) -> bool {
        self.raise_secs(user.0, cutoff_secs(not_before))
    }

    pub(crate) fn raise_secs(&self, user: u32, secs: u32) -> bool {
        let mut moved = false;
        self.map
            .entry(user)
            .and_modify(|held| {
                if secs > *held {
                    *held = secs;
                    moved = true;
                }
            })
            .or_insert_with(|| {
                self.len.fetch_add(1, Ordering::Relaxed);
                moved = true;
                secs
            });
        moved
    }

    /// `user`'s cutoff (whole seconds, rounded up), if any.
    #[inline]
    pub fn get(&self, user: UserTag) -> Option<Timestamp> {
        self.secs(user.0).map(|s| Timestamp::from_unix_secs(i64::from(s)))
    }

    #[inline]
    pub(crate) fn secs(&self, user: u32) -> Option<u32> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.map.get(&user).map(|s| *s)
    }

    /// Whether a token of `user` issued at `issued_at` is refused.
    #[inline]
    pub fn refuses(&self, user: UserTag, issued_at: Timestamp) -> bool {
        self.secs(user.0).is_some_and(|cutoff| before(issued_at.as_unix_secs(), cutoff))
    }

    /// Users with a cutoff.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no user has a cutoff.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every (tag, seconds) pair, for a snapshot.
    pub(crate) fn entries(&self) -> Vec<(u32, u32)> {
        self.map.iter().map(|e| (*e.key(), *e.value())).collect()
    }

    /// Forgets every cutoff (a store emptied for a full replay).
    pub(crate) fn clear(&self) {
        self.map.clear();
        self.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cutoff_only_moves_forward_and_rounds_up() {
        let cutoffs = UserCutoffs::default();
        let user = UserTag::of("u-42");
        assert!(cutoffs.is_empty() && cutoffs.get(user).is_none());
        assert!(cutoffs.raise(user, Timestamp::from_unix_micros(1_000_500_000)));
        assert_eq!(cutoffs.get(user), Some(Timestamp::from_unix_secs(1_001)), "rounded up");
        assert!(!cutoffs.raise(user, Timestamp::from_unix_secs(900)), "backwards is ignored");
        assert_eq!(cutoffs.get(user), Some(Timestamp::from_unix_secs(1_001)));
        assert!(cutoffs.raise(user, Timestamp::from_unix_secs(2_000)));
        assert_eq!(cutoffs.len(), 1);
        // A token issued in the cutoff's second is refused; one after is not.
        assert!(cutoffs.refuses(user, Timestamp::from_unix_micros(1_999_999_999)));
        assert!(!cutoffs.refuses(user, Timestamp::from_unix_secs(2_000)));
        assert!(!cutoffs.refuses(UserTag::of("someone else"), Timestamp::from_unix_secs(1)));
    }

    #[test]
    fn a_fractional_cutoff_refuses_its_whole_second() {
        let cutoffs = UserCutoffs::default();
        let user = UserTag::of("u");
        cutoffs.raise(user, Timestamp::from_unix_micros(5_000_300_000)); // 5000.3 s
        assert!(cutoffs.refuses(user, Timestamp::from_unix_micros(5_000_200_000)), "before");
        assert!(cutoffs.refuses(user, Timestamp::from_unix_micros(5_000_900_000)), "same second: fail closed");
        assert!(!cutoffs.refuses(user, Timestamp::from_unix_secs(5_001)), "the next second");
    }

    #[test]
    fn tags_are_stable_and_never_zero() {
        // Pinned: snapshots and replicas depend on the hash never changing.
        assert_eq!(UserTag::of("u-42").get(), 3_199_659_292);
        assert_ne!(UserTag::of("").get(), 0);
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("x".repeat(256)).is_err());
    }
}
