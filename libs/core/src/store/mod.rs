//! The projection's memory: session id → [`SessionState`], in a concurrent map.
//!
//! Ids that are canonical UUIDs (36 characters, lowercase, hyphenated) are
//! stored as their 16 bytes in one map; any other id is stored as a boxed
//! string in a second map. Splitting keeps the common case at 24 bytes per
//! entry (16-byte key + 8-byte state) instead of paying an enum tag and a
//! pointer's alignment on every session. Only the canonical spelling is
//! packed, so the mapping back to the original string is exact.
//!
//! Writers ([`SessionStore::apply`]) merge under the shard's lock, so
//! concurrent and repeated applies are safe in any order (see [`crate::state`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::clock::Timestamp;
use crate::format::{Change, Decoded};
use crate::session_id::{SessionId, SidRef};
use crate::state::SessionState;
use crate::user::UserCutoffs;

mod answers;
mod batch;

pub use answers::{Applied, Lookup, StoreCounts};
pub use batch::ChangeBatch;

/// foldhash with a per-store random seed. The seed is kept (not drawn by the
/// hasher) so a snapshot can record it and a restart can lay its sessions out
/// in memory as they were (see [`SessionStore::with_layout`]).
pub(crate) type Hasher = foldhash::fast::FixedState;
/// Sessions whose id is a canonical UUID, by its 16 bytes.
pub(crate) type UuidMap = DashMap<[u8; 16], SessionState, Hasher>;
/// Sessions with any other id.
pub(crate) type TextMap = DashMap<Box<str>, SessionState, Hasher>;

/// A session id as the store keys it.
enum Key<'a> {
    Uuid(&'a [u8; 16]),
    Text(&'a str),
}

impl<'a> Key<'a> {
    /// The id was parsed once, when the `SessionId` was made; the bytes are
    /// borrowed in place.
    #[inline]
    fn of(sid: &'a SessionId) -> Self {
        match sid.packed_uuid() {
            Some(bytes) => Key::Uuid(bytes),
            None => Key::Text(sid.as_str()),
        }
    }

    #[inline]
    fn of_ref(sid: &'a SidRef<'a>) -> Self {
        match sid.packed_uuid() {
            Some(bytes) => Key::Uuid(bytes),
            None => Key::Text(sid.as_str()),
        }
    }
}

/// The in-memory projection of every session's state.
///
/// ```
/// use revocation_core::{Lookup, SessionEvent, SessionId, SessionStore, Timestamp};
/// let store = SessionStore::new();
/// let sid = SessionId::new("s-1").unwrap();
/// let now = Timestamp::from_unix_secs(1_800_000_000);
/// let created = SessionEvent::Created {
///     sid: sid.clone(),
///     user_id: "u-1".into(),
///     created_at: time::macros::datetime!(2026-11-27 10:00 UTC),
///     expires_at: None,
/// };
/// store.apply(&created, now);
/// assert_eq!(store.lookup(&sid, now), Lookup::Live);
/// let revoked = SessionEvent::Revoked {
///     sid: sid.clone(),
///     revoked_at: time::macros::datetime!(2026-11-27 11:00 UTC),
///     reason: None,
/// };
/// store.apply(&revoked, now);
/// assert_eq!(store.lookup(&sid, now), Lookup::Revoked);
/// ```
#[derive(Debug)]
pub struct SessionStore {
    uuids: UuidMap,
    texts: TextMap,
    /// The maps' hash seed, random per store unless restored.
    hash_seed: u64,
    /// Maintained on every state transition, so reading it costs nothing.
    revoked: AtomicI64,
    applied: AtomicU64,
    rejected: AtomicU64,
    unknown: AtomicU64,
    /// Caps every created session's expiry at its creation plus this much,
    /// so a late `created` can never outlive it (see `docs/lifecycle.md`).
    max_session_lifetime: Option<Duration>,
    /// Per-user cutoffs ("log out everywhere", `cutoffs.rs`).
    cutoffs: UserCutoffs,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// A seed no one outside the process can guess: std's `RandomState` is keyed
/// from the OS's randomness.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(0u64)
}

impl SessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with room for `sessions` canonical-UUID sessions, so a
    /// replay does not pause to grow the map.
    pub fn with_capacity(sessions: usize) -> Self {
        Self::with_layout(sessions, random_seed())
    }

    /// An empty store with room for `sessions` canonical-UUID sessions whose
    /// maps hash with `hash_seed`. A snapshot is written in its map's memory
    /// order; restored into a store of the same seed and size, its sessions
    /// fill memory front to back instead of at random, which measured about
    /// four times as fast at 10M sessions (`docs/benchmarks-notes.md`). Any seed
    /// gives the same answers; only that speed depends on it.
    ///
    /// ```
    /// use revocation_core::SessionStore;
    /// let store = SessionStore::with_capacity(1000);
    /// let twin = SessionStore::with_layout(1000, store.hash_seed());
    /// assert_eq!(twin.hash_seed(), store.hash_seed());
    /// ```
    pub fn with_layout(sessions: usize, hash_seed: u64) -> Self {
        Self {
            uuids: DashMap::with_capacity_and_hasher(sessions, Hasher::with_seed(hash_seed)),
            texts: DashMap::with_hasher(Hasher::with_seed(hash_seed)),
            hash_seed,
            revoked: AtomicI64::new(0),
            applied: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            max_session_lifetime: None,
            cutoffs: UserCutoffs::default(),
        }
    }

    /// The seed the store's maps hash with (see [`Self::with_layout`]).
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// This store, capping every created session's expiry at its
    /// `created_at` plus `lifetime` (a session without an expiry expires
    /// then too). What makes tombstoning expired sessions safe against a
    /// late `created` that carries a later expiry (`docs/lifecycle.md`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use revocation_core::{Lookup, SessionEvent, SessionId, SessionStore, Timestamp};
    /// let store = SessionStore::new().with_max_session_lifetime(Duration::from_secs(3600));
    /// let sid = SessionId::new("s-1").unwrap();
    /// let created_at = time::macros::datetime!(2026-11-27 10:00 UTC);
    /// store.apply(&SessionEvent::Created { sid: sid.clone(), user_id: "u".into(), created_at, expires_at: None }, Timestamp::EPOCH);
    /// let after = |secs| Timestamp::from_datetime(created_at + time::Duration::seconds(secs));
    /// assert_eq!(store.lookup(&sid, after(3599)), Lookup::Live);
    /// assert_eq!(store.lookup(&sid, after(3600)), Lookup::Expired);
    /// ```
    #[must_use]
    pub fn with_max_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_session_lifetime = Some(lifetime);
        self
    }

    /// The maximum session lifetime this store enforces, if any.
    pub fn max_session_lifetime(&self) -> Option<Duration> {
        self.max_session_lifetime
    }

    /// Applies one record, whatever its format: a change is merged (or, for
    /// a tombstone, the session forgotten), an unknown kind counted and
    /// skipped, a malformed record counted and its key — when a valid
    /// session id — revoked as of `at` (fail closed; the feed passes the
    /// record's timestamp). Allocates nothing for a session whose id is a
    /// canonical UUID.
    ///
    /// ```
    /// use revocation_core::{Applied, Decoded, EventJson, Lookup, RawRecord, RecordFormat, SessionId, SessionStore, Timestamp};
    /// let store = SessionStore::new();
    /// let now = Timestamp::from_unix_secs(1_800_000_000);
    /// let sid = SessionId::new("s-1").unwrap();
    /// let value = br#"{"type":"session.created","sid":"s-1","user_id":"u","created_at":"2026-11-27T10:00:00Z"}"#;
    /// let read = |value| EventJson.decode(&RawRecord::new(Some(b"s-1"), Some(value)));
    /// assert_eq!(store.apply(read(value), now), Applied::Event);
    /// assert_eq!(store.lookup(&sid, now), Lookup::Live);
    /// assert!(matches!(store.apply(read(b"{oops"), now), Applied::Malformed { revoked: true, .. }));
    /// assert_eq!(store.lookup(&sid, now), Lookup::Revoked);
    /// ```
    #[inline]
    pub fn apply<'a>(&self, record: impl Into<Decoded<'a>>, at: Timestamp) -> Applied {
        self.apply_decoded(record.into(), at)
    }

    /// [`Self::apply`], compiled once here (where the merge inlines) rather
    /// than in every caller's crate.
    fn apply_decoded(&self, record: Decoded<'_>, at: Timestamp) -> Applied {
        match record {
            Decoded::Change { sid, change } => {
                self.applied.fetch_add(1, Ordering::Relaxed);
                match change {
                    Change::Merge(state) => self.merge(Key::of_ref(&sid), state),
                    Change::Create { state, created_at } => {
                        self.merge(Key::of_ref(&sid), self.within_lifetime(state, created_at))
                    }
                    Change::Forget => self.forget(Key::of_ref(&sid)),
                }
                Applied::Event
            }
            Decoded::Unknown { .. } => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
                Applied::Unknown
            }
            Decoded::Heartbeat { committed_at } => Applied::Heartbeat { committed_at },
            Decoded::CutoffsHeartbeat { committed_at } => Applied::CutoffsHeartbeat { committed_at },
            Decoded::SourceTruncated { truncated_at } => Applied::SourceTruncated { truncated_at },
            Decoded::UserCutoff { user, not_before, rejected } => {
                let counter = if rejected.is_some() { &self.rejected } else { &self.applied };
                counter.fetch_add(1, Ordering::Relaxed);
                let raised = self.cutoffs.raise(user, not_before);
                Applied::UserCutoff { raised, rejected }
            }
            Decoded::Skipped => {
                self.applied.fetch_add(1, Ordering::Relaxed);
                Applied::Event
            }
            Decoded::Malformed { key, reason } => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(sid) = &key {
                    self.merge(Key::of_ref(sid), SessionState::revoked_as_of(at));
                }
                Applied::Malformed { revoked: key.is_some(), reason }
            }
        }
    }

    #[inline]
    fn merge(&self, key: Key<'_>, state: SessionState) {
        let transition = match key {
            Key::Uuid(bytes) => merge_entry(self.uuids.entry(*bytes), state),
            Key::Text(text) => match self.texts.get_mut(text) {
                Some(mut held) => {
                    let old = *held;
                    *held = old.merge(state);
                    (old, *held)
                }
                None => merge_entry(self.texts.entry(text.into()), state),
            },
        };
        if let (old, new) = transition
            && !old.is_revoked()
            && new.is_revoked()
        {
            self.revoked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A created session's state with its expiry capped at its creation
    /// plus the maximum session lifetime, when the store has one.
    #[inline]
    fn within_lifetime(&self, state: SessionState, created_at: Timestamp) -> SessionState {
        match self.max_session_lifetime {
            Some(lifetime) => state.expiring_by(created_at.saturating_add(lifetime)),
            None => state,
        }
    }

    fn forget(&self, key: Key<'_>) {
        let removed = match key {
            Key::Uuid(bytes) => self.uuids.remove(bytes).map(|(_, s)| s),
            Key::Text(text) => self.texts.remove(text).map(|(_, s)| s),
        };
        if removed.is_some_and(SessionState::is_revoked) {
            self.revoked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The state held for `sid`, if any.
    #[inline]
    pub fn state(&self, sid: &SessionId) -> Option<SessionState> {
        match Key::of(sid) {
            Key::Uuid(bytes) => self.uuids.get(bytes).map(|s| *s),
            Key::Text(text) => self.texts.get(text).map(|s| *s),
        }
    }

    /// What the store says about `sid` at `now`, its user's cutoff
    /// included.
    #[inline]
    pub fn lookup(&self, sid: &SessionId, now: Timestamp) -> Lookup {
        self.judge(self.state(sid), now)
    }

    /// Removes every session that can be forgotten at `now` (see
    /// [`SessionState::forgettable_at`]: expired, or for a revoked session
    /// with a maximum lifetime, revoked that long ago) and returns how many
    /// were removed. Such a session and an absent one get the same answer,
    /// so sweeping changes no answer; it frees memory. Each shard is locked
    /// while it is scanned.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let mut removed = 0usize;
        let mut removed_revoked = 0i64;
        let lifetime = self.max_session_lifetime;
        let mut keep = |s: &SessionState| {
            if s.forgettable_at(lifetime).is_some_and(|at| at <= now) {
                removed += 1;
                removed_revoked += i64::from(s.is_revoked());
                false
            } else {
                true
            }
        };
        self.uuids.retain(|_, s| keep(s));
        self.texts.retain(|_, s| keep(s));
        self.revoked.fetch_sub(removed_revoked, Ordering::Relaxed);
        removed
    }

    /// Calls `f` with every session held and its state. Each shard is
    /// read-locked while it is visited, so applies wait on one shard at a
    /// time and checks (readers) not at all. Sessions applied while the visit
    /// runs may or may not be seen.
    ///
    /// ```
    /// use revocation_core::{SessionEvent, SessionId, SessionStore, Timestamp};
    /// let store = SessionStore::new();
    /// store.apply(&SessionEvent::Tombstone { sid: SessionId::new("s-1").unwrap() }, Timestamp::EPOCH);
    /// let mut held = 0;
    /// store.for_each(|_sid, _state| held += 1);
    /// assert_eq!(held, 0);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(SidRef<'_>, SessionState)) {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        for entry in self.uuids.iter() {
            let spelled = uuid::Uuid::from_bytes(*entry.key()).hyphenated().encode_lower(&mut text);
            // The canonical spelling is always a valid session id.
            if let Ok(sid) = SidRef::new(spelled) {
                f(sid, *entry.value());
            }
        }
        for entry in self.texts.iter() {
            if let Ok(sid) = SidRef::new(entry.key()) {
                f(sid, *entry.value());
            }
        }
    }

    /// The packed-UUID and the text sessions, for the snapshot writer.
    pub(crate) fn maps(&self) -> (&UuidMap, &TextMap) {
        (&self.uuids, &self.texts)
    }

    /// Merges a state read from a snapshot.
    pub(crate) fn restore_uuid(&self, key: [u8; 16], state: SessionState) {
        self.merge(Key::Uuid(&key), state);
    }

    /// Merges a state read from a snapshot.
    pub(crate) fn restore_text(&self, key: &str, state: SessionState) {
        self.merge(Key::Text(key), state);
    }

    /// Forgets every session and zeroes the counters: a warm start whose
    /// snapshot turned out unusable starts over from an empty store.
    pub fn clear(&self) {
        self.uuids.clear();
        self.texts.clear();
        self.cutoffs.clear();
        for counter in [&self.applied, &self.rejected, &self.unknown] {
            counter.store(0, Ordering::Relaxed);
        }
        self.revoked.store(0, Ordering::Relaxed);
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.uuids.len() + self.texts.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store's counters.
    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            sessions: self.len() as u64,
            revoked: self.revoked.load(Ordering::Relaxed).max(0) as u64,
            applied: self.applied.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
        }
    }
}

fn merge_entry<K: Eq + std::hash::Hash>(
    entry: Entry<'_, K, SessionState>,
    state: SessionState,
) -> (SessionState, SessionState) {
    match entry {
        Entry::Occupied(mut held) => {
            let old = *held.get();
            let new = old.merge(state);
            if new != old {
                held.insert(new);
            }
            (old, new)
        }
        Entry::Vacant(slot) => {
            slot.insert(state);
            (SessionState::default(), state)
        }
    }
}

mod cutoffs;

#[cfg(test)]
mod tests;
