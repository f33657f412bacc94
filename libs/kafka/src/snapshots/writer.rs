//! The thread that writes the serving projection's snapshot every interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use revocation_core::{Clock, ProjectedLiveness, SystemClock, Timestamp};

use super::SnapshotFile;

/// The last snapshot written, for `/health/lag` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSnapshot {
    /// When it was finished.
    pub written_at: Timestamp,
    /// Sessions it holds.
    pub sessions: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long writing it took.
    pub took: Duration,
}

/// What the writer has done so far.
#[derive(Debug, Default)]
pub(crate) struct WriterStatus {
    last: Mutex<Option<LastSnapshot>>,
    failures: AtomicU64,
}

impl WriterStatus {
    pub(crate) fn last(&self) -> Option<LastSnapshot> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Writes snapshots of whichever projection is serving (a rebuild swaps it).
#[derive(Debug)]
pub(crate) struct SnapshotWriter {
    file: SnapshotFile,
    topic: String,
    format: &'static str,
    liveness: Arc<ProjectedLiveness>,
    /// The Kafka cluster's id, once the feed has learned it.
    cluster_id: Arc<OnceLock<String>>,
    pub(crate) status: Arc<WriterStatus>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SnapshotWriter {
    pub(crate) fn new(
        file: SnapshotFile,
        topic: &str,
        format: &'static str,
        liveness: Arc<ProjectedLiveness>,
        cluster_id: Arc<OnceLock<String>>,
    ) -> Self {
        Self {
            file,
            topic: topic.to_owned(),
            format,
            liveness,
            cluster_id,
            status: Arc::default(),
            stop: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Starts writing every `interval`.
    pub(crate) fn start(self: &Arc<Self>, interval: Duration) -> std::io::Result<()> {
        let writer = self.clone();
        let thread = std::thread::Builder::new().name("projection-snapshot".into()).spawn(move || {
            let (stopped, wake) = &*writer.stop;
            let Ok(mut stop) = stopped.lock() else { return };
            loop {
                let Ok((guard, _)) = wake.wait_timeout_while(stop, interval, |stop| !*stop) else { return };
                stop = guard;
                if *stop {
                    return;
                }
                drop(stop);
                writer.write_now("periodic");
                let Ok(guard) = stopped.lock() else { return };
                stop = guard;
            }
        })?;
        if let Ok(mut slot) = self.thread.lock() {
            *slot = Some(thread);
        }
        Ok(())
    }

    /// Stops the periodic writes (a write under way finishes first).
    pub(crate) fn stop(&self) {
        let (stopped, wake) = &*self.stop;
        if let Ok(mut stop) = stopped.lock() {
            *stop = true;
        }
        wake.notify_all();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Writes a snapshot now, if the projection has been Live: a store still
    /// replaying would replace a more useful snapshot with a less useful one.
    pub(crate) fn write_now(&self, why: &str) {
        let projection = self.liveness.projection();
        if !projection.freshness().has_caught_up() {
            tracing::info!(why, "snapshot not written: the projection has not caught up since it started");
            return;
        }
        // A distrusted topic (truncated, grown under CDC) is distrusted
        // because of records a snapshot's positions would skip on the next
        // start: the snapshot on disk, from before, keeps them in the tail.
        if projection.freshness().distrusted_after().is_some() {
            tracing::warn!(why, "snapshot not written: the topic is distrusted (see /health/lag distrusted_after)");
            return;
        }
        match self.file.save(&projection, &self.topic, self.format, self.cluster_id.get().cloned()) {
            // Distrusted while writing: the header may hold positions past the
            // record that distrusts the topic, which a warm start would skip.
            Ok(_) if projection.freshness().distrusted_after().is_some() => {
                let _ = std::fs::remove_file(self.file.path());
                tracing::warn!(why, "snapshot removed: the topic became distrusted while it was written");
            }
            Ok(written) => {
                tracing::info!(
                    why,
                    path = %self.file.path().display(),
                    sessions = written.counts.sessions,
                    bytes = written.counts.bytes,
                    millis = written.took.as_millis() as u64,
                    "snapshot written"
                );
                if let Ok(mut last) = self.status.last.lock() {
                    *last = Some(LastSnapshot {
                        written_at: SystemClock.now(),
                        sessions: written.counts.sessions,
                        bytes: written.counts.bytes,
                        took: written.took,
                    });
                }
            }
            Err(e) => {
                self.status.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(why, path = %self.file.path().display(), error = %e, "snapshot not written");
            }
        }
    }
}
