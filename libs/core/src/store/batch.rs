//! [`ChangeBatch`]: changes to sessions whose ids are canonical UUIDs,
//! applied together under one lock per shard of the map.
//!
//! A replay applies millions of records, and each insert into a map of
//! millions misses the CPU's caches. Applied one by one, every insert takes
//! and releases its shard's lock; the release is an atomic write, which
//! waits for the insert's missing cache line, so no two misses overlap.
//! Grouped by shard under one lock, consecutive inserts' misses overlap
//! (`docs/benchmarks-notes.md`, "Stop 28"). A stable sort keeps
//! each session's changes in their order.

use std::sync::atomic::Ordering;

// DashMap hashes keys to 64 bits; `hash_usize` (all it offers) would cut
// them to 32 on a 32-bit target, and batched keys would land elsewhere.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("ChangeBatch needs 64-bit hashes (a 64-bit target)");

use dashmap::SharedValue;

use super::SessionStore;
use crate::format::{Change, Decoded};
use crate::state::SessionState;

/// Changes waiting to be applied by [`SessionStore::apply_batch`].
///
/// ```
/// use revocation_core::{ChangeBatch, EventJson, Lookup, RawRecord, RecordFormat, SessionId, SessionStore, Timestamp};
/// let store = SessionStore::new();
/// let mut batch = ChangeBatch::default();
/// let sid = "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b";
/// let value = format!(r#"{{"type":"session.revoked","sid":"{sid}","revoked_at":"2026-11-27T11:00:00Z"}}"#);
/// let decoded = EventJson.decode(&RawRecord::new(Some(sid.as_bytes()), Some(value.as_bytes())));
/// assert!(batch.add(&store, decoded).is_ok(), "a change to a UUID session waits in the batch");
/// store.apply_batch(&mut batch);
/// assert_eq!(store.lookup(&SessionId::new(sid).unwrap(), Timestamp::EPOCH), Lookup::Revoked);
/// ```
#[derive(Debug, Default)]
pub struct ChangeBatch {
    items: Vec<Item>,
    /// Items before this one are applied ([`SessionStore::apply_batch_upto`]).
    applied: usize,
}

#[derive(Debug)]
struct Item {
    shard: usize,
    hash: u64,
    key: [u8; 16],
    change: Change,
}

impl ChangeBatch {
    /// Takes `record` into the batch when it is a change to a session whose
    /// id is a canonical UUID; gives it back otherwise (apply the batch
    /// first, then the record, to keep the records' order).
    #[inline]
    pub fn add<'a>(&mut self, store: &SessionStore, record: Decoded<'a>) -> Result<(), Decoded<'a>> {
        let Decoded::Change { sid, change } = &record else { return Err(record) };
        let Some(key) = sid.packed_uuid() else { return Err(record) };
        let hash = store.uuids.hash_usize(key) as u64;
        self.items.push(Item { shard: store.uuids.determine_shard(hash as usize), hash, key: *key, change: *change });
        Ok(())
    }

    /// Changes taken since the batch was last emptied (applied or not):
    /// the index the next change gets, for [`SessionStore::apply_batch_upto`].
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether changes taken before the `upto`-th wait to be applied.
    pub fn waiting_before(&self, upto: usize) -> bool {
        self.applied < upto.min(self.items.len())
    }

    /// Whether no change was taken since the batch was last emptied.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl SessionStore {
    /// Applies every change of `batch`, each as [`Self::apply`] would, and
    /// empties it. Each shard is locked once; checks wait on one shard at a
    /// time.
    pub fn apply_batch(&self, batch: &mut ChangeBatch) {
        self.apply_batch_upto(batch, batch.items.len());
        batch.items.clear();
        batch.applied = 0;
    }

    /// Applies the changes of `batch` taken before its `upto`-th
    /// ([`ChangeBatch::len`] then) that are not applied yet, so records
    /// read between changes can be applied in their place.
    ///
    /// ```
    /// use revocation_core::{ChangeBatch, EventJson, Lookup, RawRecord, RecordFormat, SessionId, SessionStore, Timestamp};
    /// let store = SessionStore::new();
    /// let mut batch = ChangeBatch::default();
    /// let sid = "8a3f6c1e-2b4d-4e5f-9a7b-1c2d3e4f5a6b";
    /// let value = format!(r#"{{"type":"session.revoked","sid":"{sid}","revoked_at":"2026-11-27T11:00:00Z"}}"#);
    /// batch.add(&store, EventJson.decode(&RawRecord::new(Some(sid.as_bytes()), Some(value.as_bytes())))).unwrap();
    /// store.apply_batch_upto(&mut batch, 0);
    /// assert_eq!(store.lookup(&SessionId::new(sid).unwrap(), Timestamp::EPOCH), Lookup::Absent);
    /// store.apply_batch_upto(&mut batch, 1);
    /// assert_eq!(store.lookup(&SessionId::new(sid).unwrap(), Timestamp::EPOCH), Lookup::Revoked);
    /// ```
    pub fn apply_batch_upto(&self, batch: &mut ChangeBatch, upto: usize) {
        let upto = upto.min(batch.items.len());
        if batch.applied >= upto {
            return;
        }
        let items = &mut batch.items[batch.applied..upto];
        batch.applied = upto;
        self.apply_items(items);
    }

    fn apply_items(&self, items: &mut [Item]) {
        items.sort_by_key(|item| item.shard);
        let rehash = |(key, _): &([u8; 16], SharedValue<SessionState>)| self.uuids.hash_usize(key) as u64;
        let mut revoked_delta = 0i64;
        for group in items.chunk_by(|a, b| a.shard == b.shard) {
            let mut table = self.uuids.shards()[group[0].shard].write();
            for item in group {
                let state = match item.change {
                    Change::Merge(state) => state,
                    Change::Create { state, created_at } => self.within_lifetime(state, created_at),
                    Change::Forget => {
                        let removed = table.remove_entry(item.hash, |(key, _)| *key == item.key);
                        revoked_delta -= i64::from(removed.is_some_and(|(_, held)| held.into_inner().is_revoked()));
                        continue;
                    }
                };
                let old = match table.get_mut(item.hash, |(key, _)| *key == item.key) {
                    Some((_, held)) => {
                        let old = *held.get();
                        let new = old.merge(state);
                        if new != old {
                            *held.get_mut() = new;
                        }
                        old
                    }
                    None => {
                        table.insert(item.hash, (item.key, SharedValue::new(state)), rehash);
                        SessionState::default()
                    }
                };
                revoked_delta += i64::from(!old.is_revoked() && old.merge(state).is_revoked());
            }
        }
        self.applied.fetch_add(items.len() as u64, Ordering::Relaxed);
        self.revoked.fetch_add(revoked_delta, Ordering::Relaxed);
    }
}
