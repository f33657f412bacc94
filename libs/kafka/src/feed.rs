//! [`Feed`]: keeps one [`Projection`] up to date from the topic.
//!
//! Two threads per feed:
//!
//! - the **consumer** polls a `BaseConsumer` (librdkafka's own queue, no
//!   async wrapper on the ingest path), decodes and applies each record, and
//!   reports positions to the projection's freshness;
//! - the **controller** owns everything else: it learns the partitions from
//!   metadata (and assigns new ones, from the beginning), samples every
//!   partition's high watermark each `sample_interval` — or at once when a
//!   barrier pulls the [`SampleTrigger`] — and logs replay progress.
//!
//! Neither thread ever stops on a bad record or an unreachable broker: bad
//! records are counted and (when their key is a valid sid) revoked; broker
//! errors are counted, logged at a bounded rate, and retried. While samples
//! fail, freshness stops advancing and the projection turns Lagging by itself.
//!
//! Positions: a record at offset `o` moves the position to `o + 1`; reaching
//! the end of a partition (EOF) moves it to librdkafka's position, which
//! also covers offsets that hold no record (compaction, transaction markers);
//! an empty partition (low watermark = high watermark) is at its high
//! watermark by definition.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use revocation_core::{Applied, Clock, Projection, SystemClock, Timestamp, port::log_tag};
use thiserror::Error;

use crate::config::{ConfigError, KafkaConfig};
use crate::trigger::SampleTrigger;

/// How long one consumer poll blocks when nothing is pending.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Positions are published at least this often while records flow.
const POSITION_FLUSH_EVERY: u64 = 1024;
/// Replay progress is logged this often until the projection is Live.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The feed could not be started.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// librdkafka refused the client configuration (a bad pass-through option, say).
    #[error("could not create the Kafka consumer (check the librdkafka options): {0}")]
    Client(#[source] KafkaError),
    /// A thread could not be spawned.
    #[error("could not start the feed's threads: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Counters of one feed.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Records read (every kind); published with the positions, every
    /// 1024 records and whenever the consumer catches up.
    pub records: AtomicU64,
    /// Records that were malformed.
    pub malformed: AtomicU64,
    /// Errors the consumer reported (broker down, …), all retried.
    pub consumer_errors: AtomicU64,
    /// Watermark samples recorded.
    pub samples: AtomicU64,
    /// Watermark queries that failed or timed out.
    pub sample_failures: AtomicU64,
    /// Partitions assigned.
    pub partitions: AtomicU64,
}

/// A running feed; dropping it stops it.
#[derive(Debug)]
pub struct Feed {
    projection: Arc<Projection>,
    stats: Arc<FeedStats>,
    /// Set to stop both threads; they check it at least every `POLL_WAIT`.
    stop: Arc<AtomicBool>,
    trigger: Arc<SampleTrigger>,
    threads: Vec<JoinHandle<()>>,
}

/// Routes librdkafka's logs and global errors to `tracing`. Reaching the end
/// of a partition is reported to librdkafka's global error callback too; it
/// is how the feed knows it caught up, not an error, so it is not logged.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedContext;

impl ClientContext for FeedContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{facility}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            tracing::trace!(target: "librdkafka", "{reason}");
        } else {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for FeedContext {}

type FeedConsumer = BaseConsumer<FeedContext>;

struct Shared {
    consumer: FeedConsumer,
    /// A second client for watermark and metadata queries. On the consumer's
    /// own connection they would queue behind its long-polling fetch (the
    /// broker answers one request per connection at a time), which delayed
    /// every sample by up to `fetch.wait.max.ms`.
    sampler: FeedConsumer,
    config: KafkaConfig,
    projection: Arc<Projection>,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
    trigger: Arc<SampleTrigger>,
    /// Partitions assigned, in order (only the controller writes it).
    assigned: std::sync::Mutex<Vec<i32>>,
}

impl Feed {
    /// Starts feeding `projection` from the topic. Returns at once: the broker
    /// need not be reachable; the feed keeps trying and the projection stays
    /// Cold until it has caught up. `purpose` names the client in broker logs.
    pub fn start(
        config: &KafkaConfig,
        projection: Arc<Projection>,
        trigger: Arc<SampleTrigger>,
        purpose: &str,
    ) -> Result<Feed, FeedError> {
        config.validate()?;
        let consumer: FeedConsumer =
            config.consumer(purpose).create_with_context(FeedContext).map_err(FeedError::Client)?;
        let sampler: FeedConsumer = config
            .consumer(&format!("{purpose}-sampler"))
            .create_with_context(FeedContext)
            .map_err(FeedError::Client)?;
        let stats = Arc::new(FeedStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            consumer,
            sampler,
            config: config.clone(),
            projection: projection.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
            trigger: trigger.clone(),
            assigned: std::sync::Mutex::new(Vec::new()),
        });
        let spawn = |name: &str, body: fn(&Shared)| {
            let shared = shared.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || body(&shared)).map_err(FeedError::Spawn)
        };
        let threads = vec![spawn("projection-consumer", consume)?, spawn("projection-control", control)?];
        Ok(Feed { projection, stats, stop, trigger, threads })
    }

    /// The projection this feed fills.
    pub fn projection(&self) -> &Arc<Projection> {
        &self.projection
    }

    /// This feed's counters.
    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// Stops both threads and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.trigger.wake_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The consumer thread.
fn consume(shared: &Shared) {
    let store = shared.projection.store();
    let freshness = shared.projection.freshness();
    let mut pending: Vec<Option<i64>> = Vec::new();
    let mut since_flush = 0u64;
    let mut errors = LogLimiter::new("Kafka consumer error");
    let mut rejects = LogLimiter::new("malformed session record");
    // Positions and the record count are published together, every
    // POSITION_FLUSH_EVERY records and whenever the consumer idles or reaches
    // an end: no shared write per record.
    let flush = |pending: &mut Vec<Option<i64>>, since_flush: &mut u64| {
        shared.stats.records.fetch_add(*since_flush, Ordering::Relaxed);
        *since_flush = 0;
        for (p, pos) in pending.iter_mut().enumerate() {
            if let Some(pos) = pos.take() {
                freshness.record_position(p as i32, pos);
            }
        }
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = if since_flush > 0 { Duration::ZERO } else { POLL_WAIT };
        match shared.consumer.poll(wait) {
            Some(Ok(message)) => {
                // The record's own time stamps the revocation of a malformed record.
                let applied = store.apply_record(message.key(), message.payload(), || {
                    message
                        .timestamp()
                        .to_millis()
                        .map(|ms| Timestamp::from_unix_micros(ms.saturating_mul(1_000)))
                        .unwrap_or_else(|| SystemClock.now())
                });
                if let Applied::Malformed { revoked, reason } = &applied {
                    shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    rejects.warn(|| {
                        format!(
                            "partition {} offset {} key {}: {reason}; {}",
                            message.partition(),
                            message.offset(),
                            message.key().map_or_else(|| "(none)".into(), log_tag),
                            if *revoked { "the session is treated as revoked" } else { "skipped" },
                        )
                    });
                }
                let p = message.partition() as usize;
                if pending.len() <= p {
                    pending.resize(p + 1, None);
                }
                pending[p] = Some(message.offset() + 1);
                since_flush += 1;
                if since_flush >= POSITION_FLUSH_EVERY {
                    flush(&mut pending, &mut since_flush);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                flush(&mut pending, &mut since_flush);
                record_positions(shared);
            }
            Some(Err(e)) => {
                shared.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                errors.warn(|| e.to_string());
            }
            None => flush(&mut pending, &mut since_flush),
        }
    }
    flush(&mut pending, &mut since_flush);
}

/// librdkafka's positions (the next offset it will hand us) into freshness.
fn record_positions(shared: &Shared) {
    let Ok(positions) = shared.consumer.position() else { return };
    for element in positions.elements_for_topic(&shared.config.topic) {
        if let Offset::Offset(position) = element.offset() {
            shared.projection.freshness().record_position(element.partition(), position);
        }
    }
}

/// The controller thread: metadata, assignment, watermark samples, progress.
fn control(shared: &Shared) {
    let freshness = shared.projection.freshness();
    let mut next_metadata = Instant::now();
    let mut served = shared.trigger.generation();
    let mut metadata_errors = LogLimiter::new("Kafka metadata");
    let mut sample_errors = LogLimiter::new("Kafka watermark query");
    let mut progress = Progress::new();
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_metadata {
            match discover(shared) {
                Ok(()) => next_metadata = Instant::now() + shared.config.metadata_interval,
                Err(why) => {
                    metadata_errors.warn(|| why);
                    // Until the topic is known, look again soon.
                    next_metadata = Instant::now() + shared.config.sample_interval.max(Duration::from_millis(500));
                }
            }
        }
        let partitions = shared.assigned.lock().map(|a| a.clone()).unwrap_or_default();
        for p in partitions {
            let sampled_at = SystemClock.now();
            match shared.sampler.fetch_watermarks(&shared.config.topic, p, shared.config.sample_timeout) {
                Ok((low, high)) => {
                    freshness.record_high_watermark(p, high, sampled_at);
                    if low == high {
                        // An empty partition: no record exists below `high`,
                        // so there is nothing to have read. (librdkafka has
                        // no position for a partition it never read from.)
                        freshness.record_position(p, high);
                    }
                    shared.stats.samples.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    shared.stats.sample_failures.fetch_add(1, Ordering::Relaxed);
                    sample_errors.warn(|| format!("partition {p}: {e}"));
                }
            }
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
        }
        progress.log(shared);
        served = shared.trigger.wait(served, shared.config.sample_interval);
    }
}

/// Learns the partition count and assigns partitions not yet assigned.
fn discover(shared: &Shared) -> Result<(), String> {
    let topic = &shared.config.topic;
    let metadata =
        shared.sampler.fetch_metadata(Some(topic), shared.config.sample_timeout.max(Duration::from_secs(2))).map_err(
            |e| format!("cannot read metadata of topic {topic:?} from {}: {e}", shared.config.bootstrap_servers),
        )?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(format!("topic {topic:?} not found in metadata"));
    };
    if let Some(error) = found.error() {
        let code = RDKafkaErrorCode::from(error);
        return Err(format!(
            "topic {topic:?} is not available ({code}); create it, e.g. with `projector create-topic`"
        ));
    }
    let mut assigned = shared.assigned.lock().map_err(|_| "assignment lock poisoned".to_string())?;
    let new: Vec<i32> =
        found.partitions().iter().map(|p| p.id()).filter(|id| !assigned.contains(id)).collect::<Vec<_>>();
    if new.is_empty() {
        return Ok(());
    }
    // Track before assigning, so freshness can never be judged without them.
    shared.projection.freshness().track_partitions(new.iter().copied());
    // Let the consumer's own client learn the partitions' leaders first:
    // assigned without a known leader, librdkafka retries the start-offset
    // query on a fixed 500 ms timer, which was most of a replay's start-up.
    let _ = shared.consumer.fetch_metadata(Some(topic), shared.config.sample_timeout);
    let mut list = TopicPartitionList::new();
    for &p in &new {
        list.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    let result =
        if assigned.is_empty() { shared.consumer.assign(&list) } else { shared.consumer.incremental_assign(&list) };
    result.map_err(|e| format!("cannot assign partitions {new:?} of {topic:?}: {e}"))?;
    if !assigned.is_empty() {
        tracing::info!(topic = %topic, partitions = ?new, "new partitions found; reading them from the beginning");
    }
    assigned.extend(new);
    assigned.sort_unstable();
    shared.stats.partitions.store(assigned.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Logs replay progress while Cold, and once when the projection is Live.
struct Progress {
    started: Instant,
    last: Instant,
    last_records: u64,
    announced: bool,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self { started: now, last: now, last_records: 0, announced: false }
    }

    fn log(&mut self, shared: &Shared) {
        if self.announced {
            return;
        }
        let records = shared.stats.records.load(Ordering::Relaxed);
        let freshness = shared.projection.freshness();
        if freshness.state(SystemClock.now()) == revocation_core::FreshnessState::Live {
            let secs = self.started.elapsed().as_secs_f64();
            tracing::info!(
                topic = %shared.config.topic,
                records,
                sessions = shared.projection.store().len(),
                seconds = format!("{secs:.2}"),
                records_per_sec = (records as f64 / secs.max(1e-9)) as u64,
                "caught up: the projection is live"
            );
            self.announced = true;
            return;
        }
        if self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        let report = freshness.report(SystemClock.now());
        let target: i64 = report.partitions.iter().filter_map(|p| p.high_watermark).sum();
        let done: i64 = report.partitions.iter().filter_map(|p| p.position).sum();
        let rate = (records - self.last_records) as f64 / self.last.elapsed().as_secs_f64().max(1e-9);
        tracing::info!(
            topic = %shared.config.topic,
            records,
            records_per_sec = rate as u64,
            caught_up_percent = format!("{:.1}", if target > 0 { 100.0 * done as f64 / target as f64 } else { 0.0 }),
            offset_lag = report.offset_lag,
            "replaying"
        );
        self.last = Instant::now();
        self.last_records = records;
    }
}

/// At most `BURST` warnings per `WINDOW` for one kind of event; the number
/// suppressed is reported when the window rolls over. A flood of bad records
/// must not become a flood of logs.
struct LogLimiter {
    what: &'static str,
    window: Instant,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    const BURST: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(10);

    fn new(what: &'static str) -> Self {
        Self { what, window: Instant::now(), logged: 0, suppressed: 0 }
    }

    fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.window.elapsed() >= Self::WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(suppressed = self.suppressed, "{}: more occurrences were not logged", self.what);
            }
            self.window = Instant::now();
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < Self::BURST {
            self.logged += 1;
            tracing::warn!("{}: {}", self.what, message());
        } else {
            self.suppressed += 1;
        }
    }
}
