//! The janitor: tombstones for sessions that can be forgotten, so a
//! compacted topic shrinks to about one record per session still needed.
//!
//! It replays the topic (as a projection with the same maximum session
//! lifetime as the serving ones), takes the time once, and publishes a null
//! record for each session whose [`SessionState::forgettable_at`] plus a
//! grace period has passed. Tombstones only ever remove sessions that
//! already answer "not live" (expired, or revoked a lifetime ago), so two
//! janitors at once, or a janitor racing a revocation, change no answer; the
//! argument is in `docs/lifecycle.md`.
//!
//! [`SessionState::forgettable_at`]: revocation_core::SessionState::forgettable_at

use std::sync::Arc;
use std::time::{Duration, Instant};

use revocation_core::{Clock, EventJson, FreshnessState, RecordFormat, SystemClock};
use thiserror::Error;

use crate::config::KafkaConfig;
use crate::feed::FeedError;
use crate::publisher::{EventPublisher, PublishError};
use crate::source::{KafkaSource, SourceOptions};

/// What the janitor removes, and how it reads the topic.
#[derive(Debug, Clone)]
pub struct JanitorOptions {
    /// The maximum session lifetime every serving projection enforces
    /// (`--max-session-lifetime`): the janitor is safe only with it.
    pub max_session_lifetime: Duration,
    /// Extra time before a forgettable session is tombstoned: covers clock
    /// differences between producers, projections and the janitor.
    /// Default: [`Self::DEFAULT_GRACE`].
    pub grace: Duration,
    /// Count what would be tombstoned; publish nothing.
    pub dry_run: bool,
    /// Give up when the replay has not caught up after this long.
    pub timeout: Duration,
    /// How the topic's records are read.
    pub format: Arc<dyn RecordFormat>,
}

impl JanitorOptions {
    /// Default of [`Self::grace`].
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

    /// Defaults, with the projections' maximum session lifetime.
    pub fn new(max_session_lifetime: Duration) -> Self {
        Self {
            max_session_lifetime,
            grace: Self::DEFAULT_GRACE,
            dry_run: false,
            timeout: Duration::from_secs(600),
            format: Arc::new(EventJson),
        }
    }
}

/// What a janitor run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JanitorReport {
    /// Records replayed.
    pub records: u64,
    /// Sessions held after the replay.
    pub sessions: u64,
    /// Sessions tombstoned (or, in a dry run, that would have been).
    pub tombstoned: u64,
    /// Time taken.
    pub took: Duration,
}

/// A janitor run failed; what was published before stays published (each
/// tombstone is safe on its own).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JanitorError {
    /// The replay could not start.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The replay did not catch up in time.
    #[error("the topic's replay did not catch up within {0:?}")]
    Timeout(Duration),
    /// A tombstone was not acknowledged.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The header on each janitor tombstone: the maximum session lifetime, in
/// seconds, it was judged by. A serving projection whose own lifetime
/// differs logs it and reports it (`janitor_lifetime_mismatches`): with a
/// longer lifetime than the janitor's, a late `created` of a session the
/// janitor forgot could be live again.
pub const JANITOR_LIFETIME_HEADER: &str = "revocation-janitor-max-session-lifetime-secs";

/// Tombstones in flight at once.
const IN_FLIGHT: usize = 1024;

/// Replays the topic and tombstones every session that can be forgotten.
///
/// ```no_run
/// use std::time::Duration;
/// use revocation_kafka::{JanitorOptions, KafkaConfig, run_janitor};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = KafkaConfig::new("127.0.0.1:9092", "session-events");
/// let report = run_janitor(&config, JanitorOptions::new(Duration::from_secs(30 * 86_400))).await?;
/// println!("{} tombstones", report.tombstoned);
/// # Ok(()) }
/// ```
pub async fn run_janitor(config: &KafkaConfig, options: JanitorOptions) -> Result<JanitorReport, JanitorError> {
    let started = Instant::now();
    let projection = KafkaSource::start(
        config.clone(),
        SourceOptions {
            max_session_lifetime: Some(options.max_session_lifetime),
            format: options.format.clone(),
            ..SourceOptions::default()
        },
    )?;
    let liveness = projection.liveness();
    let live = liveness.projection();
    while live.freshness().state(SystemClock.now()) != FreshnessState::Live {
        if started.elapsed() > options.timeout {
            projection.shutdown().await;
            return Err(JanitorError::Timeout(options.timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = projection.feed_stats().map_or(0, |s| s.records);
    // One instant for the whole run: a session is judged once.
    let now = SystemClock.now();
    let lifetime = Some(options.max_session_lifetime);
    let mut forgettable: Vec<String> = Vec::new();
    live.store().for_each(|sid, state| {
        if state.forgettable_at(lifetime).is_some_and(|at| at.saturating_add(options.grace) <= now) {
            forgettable.push(sid.as_str().to_owned());
        }
    });
    let sessions = live.store().len() as u64;
    projection.shutdown().await;
    tracing::info!(
        topic = %config.topic,
        records,
        sessions,
        forgettable = forgettable.len(),
        dry_run = options.dry_run,
        "janitor: topic replayed"
    );
    if !options.dry_run {
        let publisher = EventPublisher::new(config).map_err(JanitorError::Publish)?;
        // Each tombstone says which lifetime it was judged by, so a serving
        // projection with another one can say so (see `JANITOR_LIFETIME_HEADER`).
        let lifetime = options.max_session_lifetime.as_secs().to_string();
        let headers = [(JANITOR_LIFETIME_HEADER, lifetime.as_bytes())];
        for chunk in forgettable.chunks(IN_FLIGHT) {
            let sends = chunk.iter().map(|sid| publisher.publish_with_headers(Some(sid.as_bytes()), None, &headers));
            for result in futures::future::join_all(sends).await {
                result?;
            }
        }
    }
    let report = JanitorReport { records, sessions, tombstoned: forgettable.len() as u64, took: started.elapsed() };
    tracing::info!(
        topic = %config.topic,
        tombstoned = report.tombstoned,
        dry_run = options.dry_run,
        seconds = report.took.as_secs_f64(),
        "janitor done"
    );
    Ok(report)
}
