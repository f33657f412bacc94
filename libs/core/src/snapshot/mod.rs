//! The snapshot format: a store and the positions it is complete up to, as
//! bytes (the file around them is the feed's business).
//!
//! Positions are taken *before* the store is read. Applying records is an
//! idempotent, order-free merge (see [`crate::state`]), so a store copied
//! while records keep arriving holds everything before those positions and
//! maybe some of what follows; replaying the topic from the positions then
//! gives the same store as a full replay (property-tested in `tests.rs`).
//!
//! Layout (little-endian): the magic `RVPSNAP\n`, a `u32` version, a `u32`
//! length and that much JSON ([`SnapshotMeta`]); the store's `u64` hash
//! seed (see [`SessionStore::with_layout`]); then the packed-UUID
//! sessions in chunks (`u32` count, then 16-byte key + 12-byte state each),
//! ended by a zero count; then the text sessions in chunks (`u32` count,
//! then `u16` length, the id, 12-byte state each), ended by a zero count;
//! then the per-user cutoffs in chunks (`u32` count, then a `u32` user tag
//! and `u32` seconds each), ended by a zero count; then the CRC-32 of
//! everything before it. Chunks let the writer stream a
//! map whose size it cannot know in advance. Sessions are written in the
//! map's memory order, so a store made by [`Snapshot::new_store`] is filled
//! front to back.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod error;

pub use error::SnapshotError;

use crate::session_id::SidRef;
use crate::state::SessionState;
use crate::store::SessionStore;

const MAGIC: &[u8; 8] = b"RVPSNAP\n";
/// The layout version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 3;
/// Entries per chunk when writing.
const CHUNK: usize = 4096;
/// Bytes of a session's state.
const STATE: usize = 12;
/// Bytes of a packed-UUID session: its key and its state.
const UUID_ENTRY: usize = 16 + STATE;
/// A JSON header longer than this is not ours.
const MAX_META: u32 = 1 << 20;

/// What a snapshot is of: the topic, its format and partitions, and the
/// positions its store is complete up to. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The topic the store was read from.
    pub topic: String,
    /// The record format it was read with ([`crate::RecordFormat::name`]).
    pub format: String,
    /// How many partitions the topic had.
    pub partitions: u32,
    /// Per partition, the next offset to read: every record before it is in
    /// the store.
    pub positions: BTreeMap<i32, i64>,
    /// The store's maximum session lifetime in seconds, if it had one: a
    /// store capped differently must not be reused.
    pub max_session_lifetime_secs: Option<u64>,
    /// When the snapshot was taken, microseconds since the epoch (before
    /// its positions were read, so the positions are at least this fresh).
    pub written_at_micros: i64,
    /// The id of the Kafka cluster the topic is on, when known: a
    /// same-named topic on another cluster (a disaster-recovery copy) has
    /// other offsets, and a snapshot of it must not be resumed.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// The projection's `fresh_as_of` when the positions were read
    /// (microseconds since the epoch): how old the positions really are. A
    /// feed that had stalled writes recent snapshots of old positions, and
    /// compaction may since have removed tombstones it never read.
    #[serde(default)]
    pub fresh_as_of_micros: Option<i64>,
    /// Sessions held when the positions were taken (the store may have
    /// grown while it was written): room to reserve before restoring.
    pub sessions: u64,
}

impl SnapshotMeta {
    /// The maximum session lifetime as the store expresses it.
    pub fn lifetime_of(store: &SessionStore) -> Option<u64> {
        store.max_session_lifetime().map(|d: Duration| d.as_secs())
    }
}

/// How many sessions a snapshot held, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotCounts {
    /// Sessions written or read.
    pub sessions: u64,
    /// Bytes written or read.
    pub bytes: u64,
}

/// Writes `store` with `meta` to `out`. Take `meta.positions` before calling
/// (see the module docs); the store may change while it is written.
///
/// ```
/// use revocation_core::{SessionStore, SnapshotMeta, read_snapshot, write_snapshot};
/// let store = SessionStore::new();
/// let meta = SnapshotMeta {
///     topic: "session-events".into(),
///     format: "events".into(),
///     partitions: 1,
///     positions: [(0, 42)].into(),
///     max_session_lifetime_secs: None,
///     written_at_micros: 0,
///     cluster_id: None,
///     fresh_as_of_micros: None,
///     sessions: 0,
/// };
/// let mut bytes = Vec::new();
/// write_snapshot(&store, &meta, &mut bytes).unwrap();
/// let restored = SessionStore::new();
/// let (read, counts) = read_snapshot(bytes.as_slice(), &restored).unwrap();
/// assert_eq!((read, counts.sessions), (meta, 0));
/// ```
pub fn write_snapshot(store: &SessionStore, meta: &SnapshotMeta, out: impl Write) -> io::Result<SnapshotCounts> {
    let mut out = Checksummed::new(out);
    out.write_all(MAGIC)?;
    out.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    out.write_all(&(json.len() as u32).to_le_bytes())?;
    out.write_all(&json)?;
    out.write_all(&store.hash_seed().to_le_bytes())?;
    let (uuids, texts) = store.maps();
    let mut sessions = write_section(&mut out, uuids.iter(), |chunk, entry| {
        chunk.extend_from_slice(entry.key());
        chunk.extend_from_slice(&entry.value().to_bits().to_le_bytes()[..STATE]);
    })?;
    sessions += write_section(&mut out, texts.iter(), |chunk, entry| {
        let key = entry.key().as_bytes();
        // Session ids are at most MAX_SESSION_ID_LEN bytes, well within u16.
        chunk.extend_from_slice(&(key.len() as u16).to_le_bytes());
        chunk.extend_from_slice(key);
        chunk.extend_from_slice(&entry.value().to_bits().to_le_bytes()[..STATE]);
    })?;
    write_section(&mut out, store.cutoffs().entries().into_iter(), |chunk, (user, secs)| {
        chunk.extend_from_slice(&user.to_le_bytes());
        chunk.extend_from_slice(&secs.to_le_bytes());
    })?;
    let crc = out.hasher.clone().finalize();
    out.write_all(&crc.to_le_bytes())?;
    out.inner.flush()?;
    Ok(SnapshotCounts { sessions, bytes: out.bytes })
}

/// Writes `entries` as chunks of up to [`CHUNK`] (a `u32` count, then each
/// entry as `encode` writes it), then a zero count; returns how many.
fn write_section<T>(
    out: &mut impl Write,
    entries: impl Iterator<Item = T>,
    encode: impl Fn(&mut Vec<u8>, &T),
) -> io::Result<u64> {
    let mut chunk = Vec::with_capacity(CHUNK * UUID_ENTRY);
    let (mut in_chunk, mut written) = (0u32, 0u64);
    let mut flush = |chunk: &mut Vec<u8>, n: &mut u32| -> io::Result<()> {
        if *n > 0 {
            out.write_all(&n.to_le_bytes())?;
            out.write_all(chunk)?;
            written += u64::from(*n);
            chunk.clear();
            *n = 0;
        }
        Ok(())
    };
    for entry in entries {
        encode(&mut chunk, &entry);
        in_chunk += 1;
        if in_chunk as usize == CHUNK {
            flush(&mut chunk, &mut in_chunk)?;
        }
    }
    flush(&mut chunk, &mut in_chunk)?;
    out.write_all(&0u32.to_le_bytes())?;
    Ok(written)
}

/// A snapshot read into memory and checked (magic, version, checksum,
/// header), ready to be restored into a store.
#[derive(Debug)]
pub struct Snapshot {
    bytes: Vec<u8>,
    meta: SnapshotMeta,
    /// The written store's hash seed.
    hash_seed: u64,
    /// Where the sessions begin.
    body: usize,
}

impl Snapshot {
    /// Reads and checks a whole snapshot. The checksum is verified before
    /// anything is parsed past the header, so a corrupt or truncated file is
    /// refused before any session is restored.
    pub fn read(input: impl Read) -> Result<Self, SnapshotError> {
        Self::read_sized(input, 0)
    }

    /// [`Self::read`], reserving room for `size` bytes up front (the file's
    /// length) so a large snapshot is not copied as its buffer grows.
    pub fn read_sized(mut input: impl Read, size: usize) -> Result<Self, SnapshotError> {
        let mut bytes = Vec::with_capacity(size);
        input.read_to_end(&mut bytes)?;
        Self::from_bytes(bytes)
    }

    /// [`Self::read`] of a snapshot already in memory (one streamed from a
    /// peer), without copying it.
    ///
    /// ```
    /// use revocation_core::{Snapshot, SnapshotError};
    /// assert!(matches!(Snapshot::from_bytes(b"not a snapshot".to_vec()), Err(SnapshotError::NotASnapshot)));
    /// ```
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        let mut at = 0usize;
        if take(&bytes, &mut at, 8)? != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let found = u32_at(&bytes, &mut at)?;
        if found != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version { found });
        }
        if bytes.len() < at + 4 {
            return Err(SnapshotError::Truncated);
        }
        let (content, stored) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(stored.try_into().map_err(|_| SnapshotError::Truncated)?);
        let computed = crc32fast::hash(content);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let meta_len = u32_at(&bytes, &mut at)?;
        if meta_len > MAX_META {
            return Err(SnapshotError::Meta(format!("header of {meta_len} bytes")));
        }
        let json = take(&bytes, &mut at, meta_len as usize)?;
        let meta: SnapshotMeta = serde_json::from_slice(json).map_err(|e| SnapshotError::Meta(e.to_string()))?;
        let seed = take(&bytes, &mut at, 8)?;
        let hash_seed = u64::from_le_bytes(seed.try_into().map_err(|_| SnapshotError::Truncated)?);
        bytes.truncate(bytes.len() - 4);
        Ok(Self { bytes, meta, hash_seed, body: at })
    }

    /// The header.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The written store's hash seed (see [`SessionStore::with_layout`]).
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// An empty store laid out as the written one was (its hash seed, room
    /// for its sessions): [`Self::restore`] fills it front to back, about
    /// four times as fast at 10M sessions as a store of another seed
    /// (BENCHMARKS.md).
    ///
    /// ```
    /// use revocation_core::{SessionEvent, SessionId, SessionStore, Snapshot, SnapshotMeta, Timestamp, write_snapshot};
    /// let store = SessionStore::new();
    /// let sid = SessionId::new("0b6e1f5e-5d4c-4e7a-9a41-2f3c9d1e8a77").unwrap();
    /// let revoked_at = time::macros::datetime!(2026-12-01 10:00 UTC);
    /// store.apply(&SessionEvent::Revoked { sid, revoked_at, reason: None }, Timestamp::EPOCH);
    /// let meta = SnapshotMeta {
    ///     topic: "session-events".into(),
    ///     format: "events".into(),
    ///     partitions: 1,
    ///     positions: [(0, 1)].into(),
    ///     max_session_lifetime_secs: None,
    ///     written_at_micros: 0,
    ///     cluster_id: None,
    ///     fresh_as_of_micros: None,
    ///     sessions: store.len() as u64,
    /// };
    /// let mut bytes = Vec::new();
    /// write_snapshot(&store, &meta, &mut bytes).unwrap();
    /// let snapshot = Snapshot::read(bytes.as_slice()).unwrap();
    /// let restored = snapshot.new_store();
    /// assert_eq!(restored.hash_seed(), store.hash_seed());
    /// snapshot.restore(&restored).unwrap();
    /// assert_eq!(restored.len(), 1);
    /// ```
    pub fn new_store(&self) -> SessionStore {
        SessionStore::with_layout(usize::try_from(self.meta.sessions).unwrap_or(0), self.hash_seed)
    }

    /// Merges every session into `into` (normally empty, made by
    /// [`Self::new_store`]); the packed-UUID sessions on two threads, each
    /// taking half of the file in its order.
    /// On an error `into` may hold part of the snapshot: clear or drop it.
    pub fn restore(&self, into: &SessionStore) -> Result<SnapshotCounts, SnapshotError> {
        let bytes = &self.bytes[..];
        let mut at = self.body;
        // Find the chunks first (a few thousand), then fill the map from two threads.
        let mut chunks = Vec::new();
        loop {
            let n = u32_at(bytes, &mut at)? as usize;
            if n == 0 {
                break;
            }
            chunks.push(take(bytes, &mut at, n * UUID_ENTRY)?);
        }
        restore_uuids(&chunks, into);
        let mut sessions: u64 = chunks.iter().map(|c| (c.len() / UUID_ENTRY) as u64).sum();
        loop {
            let n = u32_at(bytes, &mut at)?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                let len = take(bytes, &mut at, 2)?;
                let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
                let text = take(bytes, &mut at, len)?;
                let sid =
                    std::str::from_utf8(text).ok().and_then(|t| SidRef::new(t).ok()).ok_or(SnapshotError::BadEntry)?;
                let bits = state_bits(take(bytes, &mut at, STATE)?);
                into.restore_text(sid.as_str(), SessionState::from_bits(bits));
            }
            sessions += u64::from(n);
        }
        loop {
            let n = u32_at(bytes, &mut at)?;
            if n == 0 {
                break;
            }
            for _ in 0..n {
                let (user, secs) = (u32_at(bytes, &mut at)?, u32_at(bytes, &mut at)?);
                into.cutoffs().raise_secs(user, secs);
            }
        }
        if at != bytes.len() {
            return Err(SnapshotError::Truncated);
        }
        Ok(SnapshotCounts { sessions, bytes: bytes.len() as u64 + 4 })
    }
}

/// Merges the packed-UUID sessions of `chunks` (28-byte entries) into
/// `into`, half on each of two threads. The file is in the written map's
/// memory order (shard by shard, bucket by bucket), so each thread walks its
/// half of a store of the same layout front to back.
fn restore_uuids(chunks: &[&[u8]], into: &SessionStore) {
    let fill = |chunks: &[&[u8]]| {
        for (key, bits) in entries(chunks) {
            into.restore_uuid(key, SessionState::from_bits(bits));
        }
    };
    let (first, second) = chunks.split_at(chunks.len() / 2);
    std::thread::scope(|s| {
        s.spawn(|| fill(second));
        fill(first);
    });
}

/// The packed-UUID entries of `chunks`: key and state bits.
fn entries<'a>(chunks: &'a [&'a [u8]]) -> impl Iterator<Item = ([u8; 16], u128)> + 'a {
    chunks.iter().flat_map(|chunk| chunk.chunks_exact(UUID_ENTRY)).map(|entry| {
        let key: [u8; 16] = entry[..16].try_into().unwrap_or_default();
        (key, state_bits(&entry[16..]))
    })
}

/// A state's bits from its `STATE` little-endian bytes.
fn state_bits(bytes: &[u8]) -> u128 {
    let mut all = [0u8; 16];
    all[..STATE].copy_from_slice(&bytes[..STATE]);
    u128::from_le_bytes(all)
}

/// Reads a snapshot into `into` (normally empty) and returns its header:
/// [`Snapshot::read`] then [`Snapshot::restore`].
pub fn read_snapshot(input: impl Read, into: &SessionStore) -> Result<(SnapshotMeta, SnapshotCounts), SnapshotError> {
    let snapshot = Snapshot::read(input)?;
    let counts = snapshot.restore(into)?;
    Ok((snapshot.meta, counts))
}

/// The next `n` bytes at `*at`, advancing it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], SnapshotError> {
    let end = at.checked_add(n).filter(|&end| end <= bytes.len()).ok_or(SnapshotError::Truncated)?;
    let taken = &bytes[*at..end];
    *at = end;
    Ok(taken)
}

fn u32_at(bytes: &[u8], at: &mut usize) -> Result<u32, SnapshotError> {
    let b = take(bytes, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A writer that checksums and counts what passes through it.
struct Checksummed<T> {
    inner: T,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<T> Checksummed<T> {
    fn new(inner: T) -> Self {
        Self { inner, hasher: crc32fast::Hasher::new(), bytes: 0 }
    }
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
