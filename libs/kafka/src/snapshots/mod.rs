//! Warm restarts: the projection's snapshot file — where it lives, how it is
//! written safely, and whether one found on start may be used.
//!
//! The bytes are [`revocation_core::write_snapshot`]'s; this module adds the
//! file around them: `<dir>/<topic>.snapshot`, written to a temporary file
//! (mode 0600), fsynced, renamed over the old one, and the directory fsynced,
//! so a crash leaves either the old snapshot or the new one, never half of
//! one. Checks are not stalled: the store is read shard by shard under read
//! locks (see [`revocation_core::SessionStore::for_each`]), and the file is
//! written by a thread of its own, never under those locks (`decoupled`).
//!
//! A snapshot found on start is checked twice: here, against what this
//! process is configured for (version, checksum, topic, format, maximum
//! session lifetime); then by the feed, against the broker (partition count,
//! and every position between the partition's log start and its high
//! watermark). Any failure means a full replay, with one log line saying why.

mod decoupled;
mod peer;
mod resumable;
mod serve;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use revocation_core::{
    Clock, Projection, SessionStore, Snapshot, SnapshotCounts, SnapshotMeta, SystemClock, write_snapshot,
};

pub use peer::{FetchedSnapshot, PeerBootstrap, PeerFetch, fetch_peer_snapshot};
pub(crate) use serve::{refusal as peer_refusal, stream as stream_snapshot};
pub use writer::LastSnapshot;
pub(crate) use writer::SnapshotWriter;

/// Where and how often the projection writes its snapshot.
///
/// ```
/// use revocation_kafka::SnapshotOptions;
/// let options = SnapshotOptions::new("/var/lib/projector");
/// assert_eq!(options.interval, SnapshotOptions::DEFAULT_INTERVAL);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// The directory holding `<topic>.snapshot` (created if missing).
    pub dir: PathBuf,
    /// How often a snapshot is written while the projection runs (one is
    /// also written at a graceful shutdown).
    pub interval: Duration,
}

impl SnapshotOptions {
    /// Default of [`Self::interval`].
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

    /// Snapshots in `dir`, every [`Self::DEFAULT_INTERVAL`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), interval: Self::DEFAULT_INTERVAL }
    }
}

/// What a projection's snapshot must match to be used.
#[derive(Debug, Clone)]
pub(crate) struct Expected<'a> {
    pub(crate) topic: &'a str,
    pub(crate) format: &'a str,
    pub(crate) max_session_lifetime_secs: Option<u64>,
}

impl Expected<'_> {
    /// Whether a snapshot's header is of what this projection reads.
    pub(crate) fn check(&self, meta: &SnapshotMeta) -> Result<(), String> {
        if meta.topic != self.topic {
            return Err(format!("it is of topic {:?}, not {:?}", meta.topic, self.topic));
        }
        if meta.format != self.format {
            return Err(format!("it was read as format {:?}, this projection reads {:?}", meta.format, self.format));
        }
        if meta.max_session_lifetime_secs != self.max_session_lifetime_secs {
            return Err(format!(
                "it was built with maximum session lifetime {:?} s, this projection has {:?} s",
                meta.max_session_lifetime_secs, self.max_session_lifetime_secs
            ));
        }
        Ok(())
    }
}

/// A snapshot loaded into a store, still to be checked against the broker.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) meta: SnapshotMeta,
    pub(crate) counts: SnapshotCounts,
    pub(crate) took: Duration,
}

/// One topic's snapshot file.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile {
    path: PathBuf,
}

impl SnapshotFile {
    /// `<dir>/<topic>.snapshot` (topic names are `[a-zA-Z0-9._-]`).
    pub(crate) fn in_dir(dir: &Path, topic: &str) -> Self {
        Self { path: dir.join(format!("{topic}.snapshot")) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the snapshot, checks it is of what this projection reads, and
    /// restores it into a store from `new_store` (given the room to reserve
    /// and the written store's hash seed, so it can be laid out the same).
    /// `Ok(None)`: there is none. `Err`: why it cannot be used.
    /// `fetched`: the same file's content, already in memory (a peer's).
    pub(crate) fn load(
        &self,
        expected: &Expected<'_>,
        new_store: impl FnOnce(usize, u64) -> SessionStore,
        fetched: Option<(Snapshot, usize)>,
    ) -> Result<Option<(SessionStore, Loaded)>, String> {
        let started = Instant::now();
        let (snapshot, size) = match fetched {
            Some(fetched) => fetched,
            None => {
                let file = match File::open(&self.path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("cannot open {}: {e}", self.path.display())),
                };
                let size = file.metadata().map_or(0, |m| m.len() as usize);
                let read = Snapshot::read_sized(file, size).map_err(|e| format!("{}: {e}", self.path.display()))?;
                (read, size)
            }
        };
        let meta = snapshot.meta();
        expected.check(meta)?;
        // The header's count sizes the map, but no entry takes under 13 bytes
        // (12 of state and a sid): a checksum-valid header from a hostile peer
        // cannot make the map reserve more than the file could hold.
        let room = usize::try_from(meta.sessions).unwrap_or(0).min(size / 13);
        let store = new_store(room, snapshot.hash_seed());
        let counts = snapshot.restore(&store).map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(Some((store, Loaded { meta: meta.clone(), counts, took: started.elapsed() })))
    }

    /// Writes `projection`'s snapshot, positions first (see the module docs).
    pub(crate) fn save(
        &self,
        projection: &Projection,
        topic: &str,
        format: &str,
        cluster_id: Option<String>,
    ) -> io::Result<Written> {
        let started = Instant::now();
        let meta = snapshot_meta(projection, topic, format, cluster_id);
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let temporary = self.path.with_extension("snapshot.tmp");
        let file = private_file(&temporary)?;
        let out = BufWriter::with_capacity(1 << 20, file);
        // No file I/O under a shard's read lock (see `decoupled`).
        let (counts, out) = decoupled::write_through(out, |queue| write_snapshot(projection.store(), &meta, queue))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename is durable once the directory is.
            File::open(dir)?.sync_all()?;
        }
        Ok(Written { counts, took: started.elapsed() })
    }
}

/// The header of `projection`'s snapshot now: positions and freshness read
/// before the sessions are (so the sessions hold at least what they say).
pub(crate) fn snapshot_meta(
    projection: &Projection,
    topic: &str,
    format: &str,
    cluster_id: Option<String>,
) -> SnapshotMeta {
    let now = SystemClock.now();
    let report = projection.freshness().report(now);
    SnapshotMeta {
        topic: topic.to_owned(),
        format: format.to_owned(),
        partitions: report.partitions.len() as u32,
        positions: report.partitions.iter().filter_map(|p| Some((p.partition, p.position?))).collect(),
        max_session_lifetime_secs: SnapshotMeta::lifetime_of(projection.store()),
        written_at_micros: now.as_unix_micros(),
        cluster_id,
        fresh_as_of_micros: report.fresh_as_of.map(|f| f.as_unix_micros()),
        sessions: projection.store().len() as u64,
    }
}

/// A snapshot written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) counts: SnapshotCounts,
    pub(crate) took: Duration,
}

/// Creates (or truncates) a file only this process's user can read.
fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use revocation_core::{FreshnessConfig, SessionEvent, SessionId, Timestamp};

    fn projection() -> Projection {
        let projection = Projection::new(FreshnessConfig::default());
        projection.freshness().track_partitions([0, 1]);
        projection.freshness().record_position(0, 7);
        let sid = SessionId::new("s-1").unwrap();
        projection.store().apply(
            &SessionEvent::Revoked { sid, revoked_at: time::macros::datetime!(2026-12-01 0:00 UTC), reason: None },
            Timestamp::EPOCH,
        );
        projection
    }

    fn expected() -> Expected<'static> {
        Expected { topic: "t", format: "events", max_session_lifetime_secs: None }
    }

    #[test]
    fn a_snapshot_is_written_privately_and_read_back() {
        let dir = std::env::temp_dir().join(format!("snapshot-test-{}", std::process::id()));
        let file = SnapshotFile::in_dir(&dir, "t");
        let written = file.save(&projection(), "t", "events", Some("cluster-a".into())).unwrap();
        assert_eq!(written.counts.sessions, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (store, loaded) = file.load(&expected(), |_, _| SessionStore::new(), None).unwrap().unwrap();
        assert_eq!(loaded.meta.positions, [(0, 7)].into());
        assert_eq!(loaded.meta.partitions, 2);
        assert_eq!(store.len(), 1);

        let other_topic = Expected { topic: "u", ..expected() };
        assert!(file.load(&other_topic, |_, _| SessionStore::new(), None).unwrap_err().contains("topic"));
        let other_format = Expected { format: "debezium", ..expected() };
        assert!(file.load(&other_format, |_, _| SessionStore::new(), None).unwrap_err().contains("format"));
        let capped = Expected { max_session_lifetime_secs: Some(60), ..expected() };
        assert!(file.load(&capped, |_, _| SessionStore::new(), None).unwrap_err().contains("lifetime"));

        // A peer's snapshot kept in memory goes through the same checks, and
        // is what is restored (the file is not read).
        let bytes = fs::read(file.path()).unwrap();
        let fetched = || Some((Snapshot::from_bytes(bytes.clone()).unwrap(), bytes.len()));
        assert!(file.load(&other_topic, |_, _| SessionStore::new(), fetched()).unwrap_err().contains("topic"));
        assert!(file.load(&capped, |_, _| SessionStore::new(), fetched()).unwrap_err().contains("lifetime"));
        fs::write(file.path(), b"not read").unwrap();
        let (store, _) = file.load(&expected(), |_, _| SessionStore::new(), fetched()).unwrap().unwrap();
        assert_eq!(store.len(), 1);

        fs::write(file.path(), &bytes[..bytes.len() / 2]).unwrap();
        assert!(file.load(&expected(), |_, _| SessionStore::new(), None).is_err());
        fs::remove_dir_all(&dir).unwrap();
        assert!(file.load(&expected(), |_, _| SessionStore::new(), None).unwrap().is_none());
    }
}
