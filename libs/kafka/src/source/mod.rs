//! [`KafkaSource`]: a [`ProjectedLiveness`] kept fed from the topic, with
//! rebuild.

use std::sync::Arc;
use std::time::{Duration, Instant};

use revocation_core::{
    AbsentConfirmation, FreshnessBarrier, FreshnessState, ProjectedLiveness, Projection, RebuildReport, SessionStore,
};
use thiserror::Error;

use crate::config::KafkaConfig;
use crate::feed::{Feed, FeedError, WarmStart};
use crate::snapshots::{Expected, FetchedSnapshot, LastSnapshot, SnapshotFile, SnapshotOptions, SnapshotWriter};
use crate::trigger::SampleTrigger;

mod options;
mod stats;

pub use options::SourceOptions;
pub use stats::FeedStatsSnapshot;

/// A rebuild did not complete; the projection that was serving still serves.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KafkaRebuildError {
    /// Another rebuild is under way.
    #[error("a rebuild is already under way")]
    Busy,
    /// The new projection did not catch up in time.
    #[error("the rebuilt projection did not catch up within {0:?}; the current one keeps serving")]
    Timeout(Duration),
    /// The new feed could not start.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// A session projection fed from Kafka.
///
/// ```no_run
/// use std::sync::Arc;
/// use revocation_core::{SessionId, SessionLiveness};
/// use revocation_kafka::{KafkaConfig, KafkaSource, SourceOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let projection = KafkaSource::start(KafkaConfig::default(), SourceOptions::default())?;
/// let liveness: Arc<dyn SessionLiveness> = projection.liveness();
/// let answer = liveness.check(&SessionId::new("s-1")?).await;
/// projection.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KafkaSource {
    config: KafkaConfig,
    options: SourceOptions,
    liveness: Arc<ProjectedLiveness>,
    trigger: Arc<SampleTrigger>,
    /// The feed of the installed projection. `None` once shut down.
    feed: std::sync::Mutex<Option<Feed>>,
    /// Held for the length of a rebuild.
    rebuilding: tokio::sync::Mutex<()>,
    /// Writes snapshots, when configured.
    snapshots: Option<Arc<SnapshotWriter>>,
    /// The Kafka cluster's id, once the feed has learned it.
    cluster_id: Arc<std::sync::OnceLock<String>>,
}

impl KafkaSource {
    /// Starts replaying the topic into a new projection — from the snapshot
    /// in [`SourceOptions::snapshot`] when there is a usable one (it is
    /// read before this returns), else from the beginning. Returns without
    /// waiting for the broker (Cold until caught up), even when it is
    /// unreachable.
    ///
    /// Under glibc it sets the process's mmap threshold to 4 MiB, once
    /// (unless `MALLOC_MMAP_THRESHOLD_` is set): the map's tables are then
    /// mappings of their own, returned when outgrown, so memory after a
    /// cold start is what it is after a warm one (`docs/operations.md`).
    pub fn start(config: KafkaConfig, options: SourceOptions) -> Result<Self, FeedError> {
        if crate::memory::map_large_allocations() {
            tracing::debug!(
                bytes = crate::memory::LARGE,
                "blocks this large are mapped on their own (M_MMAP_THRESHOLD)"
            );
        }
        let trigger = Arc::new(SampleTrigger::new());
        let (store, warm, cold_reason) = match &options.snapshot {
            Some(snapshot) => load_snapshot(&config, &options, snapshot),
            None => (new_store(&options, options.expected_sessions), None, None),
        };
        let freshness = options.freshness();
        let projection = Arc::new(Projection::with_store(store, freshness));
        let feed = Feed::start_from(
            &config,
            options.format.clone(),
            projection.clone(),
            trigger.clone(),
            "live",
            warm,
            cold_reason,
        )?;
        let mut builder = ProjectedLiveness::builder(projection).lag_policy(options.lag_policy);
        // Bounded by source heartbeats, freshness advances once per
        // heartbeat, too seldom for a barrier's wait; an absent session is
        // confirmed with the source instead (`confirm_unknown_per_sec`).
        if !freshness.source_heartbeats {
            builder = builder.barrier(Arc::new(FreshnessBarrier::new(trigger.clone(), options.barrier_timeout)));
        }
        if let Some(tokens) = &options.token_fallback {
            builder = builder.token_fallback(tokens.clone());
        }
        if let Some(fallback) = &options.fallback {
            builder = builder.fallback(fallback.clone());
            if let Some(rate) = options.confirm_unknown_rate() {
                builder = builder.confirm_absent(AbsentConfirmation::per_second(rate));
            }
        }
        let liveness = Arc::new(builder.build());
        let snapshots = match &options.snapshot {
            Some(snapshot) => {
                let file = SnapshotFile::in_dir(&snapshot.dir, &config.topic);
                let writer = Arc::new(SnapshotWriter::new(
                    file,
                    &config.topic,
                    options.format.name(),
                    liveness.clone(),
                    feed.stats().cluster_id.clone(),
                ));
                writer.start(snapshot.interval).map_err(FeedError::Spawn)?;
                Some(writer)
            }
            None => None,
        };
        let cluster_id = feed.stats().cluster_id.clone();
        Ok(Self {
            cluster_id,
            config,
            liveness,
            options,
            trigger,
            feed: std::sync::Mutex::new(Some(feed)),
            rebuilding: tokio::sync::Mutex::new(()),
            snapshots,
        })
    }

    /// The last snapshot written and the failed attempts, when snapshots
    /// are configured.
    pub fn snapshot_status(&self) -> Option<(Option<LastSnapshot>, u64)> {
        self.snapshots.as_ref().map(|w| (w.status.last(), w.status.failures()))
    }

    /// Why this replica cannot serve its snapshot to a new replica now
    /// (`None`: it can): only a Live projection that has caught up and
    /// trusts its topic serves one.
    pub fn peer_snapshot_refusal(&self) -> Option<String> {
        crate::snapshots::peer_refusal(&self.liveness)
    }

    /// Writes the snapshot of the live map to `out` for a new replica
    /// ([`crate::fetch_peer_snapshot`] reads it), whether or not snapshots
    /// are written to disk here. Checks go on meanwhile.
    pub fn write_peer_snapshot(&self, out: impl std::io::Write + Send + 'static) -> std::io::Result<u64> {
        if let Some(why) = self.peer_snapshot_refusal() {
            return Err(std::io::Error::other(why));
        }
        let cluster_id = self.cluster_id.get().cloned();
        crate::snapshots::stream_snapshot(
            &self.liveness,
            &self.config.topic,
            self.options.format.name(),
            cluster_id,
            out,
        )
        .map(|counts| counts.bytes)
    }

    /// Writes a snapshot now (when configured and the projection has been
    /// Live), as the periodic writer and a graceful shutdown do.
    pub async fn write_snapshot(&self) {
        if let Some(writer) = self.snapshots.clone() {
            tokio::task::spawn_blocking(move || writer.write_now("requested")).await.ok();
        }
    }

    /// The port, to hand to a verifier.
    pub fn liveness(&self) -> Arc<ProjectedLiveness> {
        self.liveness.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Whether a rebuild is under way.
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.try_lock().is_err()
    }

    /// Counters of the feed serving now: records, malformed, errors, samples.
    pub fn feed_stats(&self) -> Option<FeedStatsSnapshot> {
        let feed = self.feed.lock().ok()?;
        feed.as_ref().map(|f| FeedStatsSnapshot::of(f.stats()))
    }

    /// Replays the topic into a fresh projection while the current one keeps
    /// serving, and swaps it in once it is Live. Never answers from a
    /// half-built projection.
    pub async fn rebuild(&self, timeout: Duration) -> Result<RebuildReport, KafkaRebuildError> {
        let _guard = self.rebuilding.try_lock().map_err(|_| KafkaRebuildError::Busy)?;
        let started = Instant::now();
        let current = self.liveness.projection().store().len();
        let projection = new_projection(&self.options, current);
        let feed = Feed::start(
            &self.config,
            self.options.format.clone(),
            projection.clone(),
            self.trigger.clone(),
            "rebuild",
        )?;
        tracing::info!(topic = %self.config.topic, "rebuild started; the current projection keeps serving");
        loop {
            if projection.freshness().state(revocation_core::Clock::now(&revocation_core::SystemClock))
                == FreshnessState::Live
            {
                break;
            }
            if started.elapsed() > timeout {
                tokio::task::spawn_blocking(move || feed.stop()).await.ok();
                return Err(KafkaRebuildError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let report = RebuildReport {
            sessions: projection.store().len(),
            records: feed.stats().records.load(std::sync::atomic::Ordering::Relaxed),
            took: started.elapsed(),
        };
        self.liveness.install(projection);
        let old = self.feed.lock().ok().and_then(|mut f| f.replace(feed));
        if let Some(old) = old {
            tokio::task::spawn_blocking(move || old.stop()).await.ok();
        }
        tracing::info!(
            sessions = report.sessions,
            records = report.records,
            seconds = report.took.as_secs_f64(),
            "rebuild done; the new projection is serving"
        );
        Ok(report)
    }

    /// Stops the feed (the liveness keeps answering from the last state,
    /// turning Lagging as it ages) and, when snapshots are configured,
    /// writes a last one.
    pub async fn shutdown(&self) {
        let feed = self.feed.lock().ok().and_then(|mut f| f.take());
        let snapshots = self.snapshots.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(writer) = &snapshots {
                writer.stop();
            }
            if let Some(feed) = feed {
                feed.stop();
            }
            if let Some(writer) = &snapshots {
                writer.write_now("shutdown");
            }
        })
        .await
        .ok();
    }
}

fn new_projection(options: &SourceOptions, capacity: usize) -> Arc<Projection> {
    Arc::new(Projection::with_store(new_store(options, capacity), options.freshness()))
}

fn new_store(options: &SourceOptions, capacity: usize) -> SessionStore {
    configured(options, SessionStore::with_capacity(capacity))
}

fn configured(options: &SourceOptions, store: SessionStore) -> SessionStore {
    match options.max_session_lifetime {
        Some(lifetime) => store.with_max_session_lifetime(lifetime),
        None => store,
    }
}

/// Reads the snapshot into a new store: the store and the warm start to
/// check against the broker, or an empty store and why there is none
/// (logged here, once).
fn load_snapshot(
    config: &KafkaConfig,
    options: &SourceOptions,
    snapshot: &SnapshotOptions,
) -> (SessionStore, Option<WarmStart>, Option<String>) {
    let file = SnapshotFile::in_dir(&snapshot.dir, &config.topic);
    let expected = Expected {
        topic: &config.topic,
        format: options.format.name(),
        max_session_lifetime_secs: options.max_session_lifetime.map(|d| d.as_secs()),
    };
    // The written store's seed: its sessions then fill the map front to back.
    let room = |sessions: usize, seed| {
        configured(options, SessionStore::with_layout(sessions.max(options.expected_sessions), seed))
    };
    let fetched = options.peer_snapshot.as_ref().and_then(FetchedSnapshot::take);
    match file.load(&expected, room, fetched) {
        Ok(Some((store, loaded))) => {
            tracing::info!(
                path = %file.path().display(),
                sessions = loaded.counts.sessions,
                bytes = loaded.counts.bytes,
                millis = loaded.took.as_millis() as u64,
                written_at = %revocation_core::Timestamp::from_unix_micros(loaded.meta.written_at_micros).to_rfc3339(),
                "snapshot loaded; checking its positions against the broker"
            );
            (store, Some(WarmStart { meta: loaded.meta, sessions: loaded.counts.sessions }), None)
        }
        Ok(None) => {
            let why = match &options.cold_start_note {
                Some(note) => format!("{note}; no snapshot at {}", file.path().display()),
                None => format!("no snapshot at {}", file.path().display()),
            };
            tracing::info!(reason = %why, "cold start: replaying the topic in full");
            (new_store(options, options.expected_sessions), None, Some(why))
        }
        Err(why) => {
            let why = match &options.cold_start_note {
                Some(note) => format!("{note}: {why}"),
                None => why,
            };
            tracing::warn!(reason = %why, "snapshot not used: replaying the topic in full");
            (new_store(options, options.expected_sessions), None, Some(why))
        }
    }
}
