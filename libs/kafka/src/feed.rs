//! [`Feed`]: keeps one [`Projection`] up to date from the topic.
//!
//! Three threads per feed:
//!
//! - the **consumer** polls a `BaseConsumer` (librdkafka's own queue, no
//!   async wrapper on the ingest path) and hands the records, their bytes
//!   copied into one reused buffer per batch of up to 1024, to
//! - the **apply** thread, which decodes and applies each record and reports
//!   positions to the projection's freshness once per batch. Decoding is most
//!   of a record's cost; on its own thread it overlaps librdkafka's polling
//!   (replay went from ~45 % to ~65 % of a no-op consumer's rate on two cores);
//! - the **controller** owns everything else: it learns the partitions from
//!   metadata (and assigns new ones, from the beginning), samples every
//!   partition's high watermark each `sample_interval` — or at once when a
//!   barrier pulls the [`SampleTrigger`] — and logs replay progress.
//!
//! No thread ever stops on a bad record or an unreachable broker: bad
//! records are counted and (when their key is a valid sid) revoked; broker
//! errors are counted, logged at a bounded rate, and retried. While samples
//! fail, freshness stops advancing and the projection turns Lagging by itself.
//!
//! Positions: a record at offset `o` moves the position to `o + 1`; reaching
//! the end of a partition (EOF) moves it to librdkafka's position, which
//! also covers offsets that hold no record (compaction, transaction markers);
//! an empty partition (low watermark = high watermark) is at its high
//! watermark by definition.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
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
    /// Set to stop the threads; the consumer and controller check it at least
    /// every `POLL_WAIT`, the apply thread ends when the consumer does.
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
        let spawn = |name: &str, body: Box<dyn FnOnce(&Shared) + Send>| {
            let shared = shared.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || body(&shared)).map_err(FeedError::Spawn)
        };
        let (to_apply, from_consumer) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let (recycle, recycled) = mpsc::channel();
        let spawned = (|| {
            Ok(vec![
                spawn("projection-apply", Box::new(move |shared| apply(shared, from_consumer, recycle)))?,
                spawn("projection-consumer", Box::new(move |shared| consume(shared, to_apply, recycled)))?,
                spawn("projection-control", Box::new(control))?,
            ])
        })();
        let threads = match spawned {
            Ok(threads) => threads,
            Err(e) => {
                // Whatever did start stops (and is not waited for).
                stop.store(true, Ordering::SeqCst);
                trigger.wake_all();
                return Err(e);
            }
        };
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

    /// Stops the threads and waits for them.
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

/// Records handed from the consumer thread to the apply thread: their bytes
/// copied into one buffer, so a batch is two allocations (both reused).
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: Vec<Record>,
}

/// One record of a [`Batch`]: where its key and value sit in the buffer.
struct Record {
    partition: i32,
    offset: i64,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    timestamp_ms: Option<i64>,
}

impl Batch {
    fn push(&mut self, message: &BorrowedMessage<'_>) {
        let mut copy = |bytes: Option<&[u8]>| {
            bytes.map(|b| {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                (start, self.bytes.len())
            })
        };
        let key = copy(message.key());
        let value = copy(message.payload());
        self.records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key,
            value,
            timestamp_ms: message.timestamp().to_millis(),
        });
    }

    fn slice(&self, range: Option<(usize, usize)>) -> Option<&[u8]> {
        range.map(|(start, end)| &self.bytes[start..end])
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }
}

/// What the consumer thread sends the apply thread, in order.
enum Work {
    /// Records to apply.
    Records(Batch),
    /// librdkafka's positions when a partition reached its end: every record
    /// before them is in an earlier [`Work::Records`], so they hold once
    /// those are applied.
    Positions(Vec<(i32, i64)>),
}

/// Batches in flight from the consumer to the apply thread; the consumer waits when the
/// apply thread is this far behind.
const BATCHES_IN_FLIGHT: usize = 4;

/// The consumer thread: polls librdkafka and hands records, in batches, to
/// the apply thread. Decoding (most of a record's cost) runs there, so on a
/// machine with a spare core the two overlap.
fn consume(shared: &Shared, to_apply: mpsc::SyncSender<Work>, recycled: mpsc::Receiver<Batch>) {
    let mut errors = LogLimiter::new("Kafka consumer error");
    let mut batch = Batch::default();
    // Sends the batch, if it holds anything; false once the apply thread is gone.
    let send = |batch: &mut Batch| {
        if batch.records.is_empty() {
            return true;
        }
        let next = recycled.try_recv().unwrap_or_default();
        to_apply.send(Work::Records(std::mem::replace(batch, next))).is_ok()
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = if batch.records.is_empty() { POLL_WAIT } else { Duration::ZERO };
        let sent = match shared.consumer.poll(wait) {
            Some(Ok(message)) => {
                batch.push(&message);
                batch.records.len() < POSITION_FLUSH_EVERY as usize || send(&mut batch)
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                send(&mut batch) && to_apply.send(Work::Positions(positions(shared))).is_ok()
            }
            Some(Err(e)) => {
                shared.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                errors.warn(|| e.to_string());
                true
            }
            None => send(&mut batch),
        };
        if !sent {
            return;
        }
    }
    send(&mut batch);
}

/// The apply thread: decodes and applies each record, then publishes the
/// positions and the record count once per batch (no shared write per record).
fn apply(shared: &Shared, from_consumer: mpsc::Receiver<Work>, recycle: mpsc::Sender<Batch>) {
    let store = shared.projection.store();
    let freshness = shared.projection.freshness();
    let mut rejects = LogLimiter::new("malformed session record");
    let mut pending: Vec<Option<i64>> = Vec::new();
    // Ends when the consumer thread drops its sender (it has stopped).
    for work in from_consumer {
        match work {
            Work::Records(mut batch) => {
                for record in &batch.records {
                    let (key, value) = (batch.slice(record.key), batch.slice(record.value));
                    // The record's own time stamps the revocation of a malformed record.
                    let applied = store.apply_record(key, value, || {
                        record
                            .timestamp_ms
                            .map(|ms| Timestamp::from_unix_micros(ms.saturating_mul(1_000)))
                            .unwrap_or_else(|| SystemClock.now())
                    });
                    if let Applied::Malformed { revoked, reason } = &applied {
                        shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                        rejects.warn(|| {
                            format!(
                                "partition {} offset {} key {}: {reason}; {}",
                                record.partition,
                                record.offset,
                                key.map_or_else(|| "(none)".into(), log_tag),
                                if *revoked { "the session is treated as revoked" } else { "skipped" },
                            )
                        });
                    }
                    let p = record.partition.max(0) as usize;
                    if pending.len() <= p {
                        pending.resize(p + 1, None);
                    }
                    pending[p] = Some(record.offset + 1);
                }
                shared.stats.records.fetch_add(batch.records.len() as u64, Ordering::Relaxed);
                for (p, pos) in pending.iter_mut().enumerate() {
                    if let Some(pos) = pos.take() {
                        freshness.record_position(p as i32, pos);
                    }
                }
                batch.clear();
                let _ = recycle.send(batch);
            }
            Work::Positions(positions) => {
                for (partition, position) in positions {
                    freshness.record_position(partition, position);
                }
            }
        }
    }
}

/// librdkafka's positions (the next offset it will hand us), per partition.
fn positions(shared: &Shared) -> Vec<(i32, i64)> {
    let Ok(positions) = shared.consumer.position() else { return Vec::new() };
    positions
        .elements_for_topic(&shared.config.topic)
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(position) => Some((element.partition(), position)),
            _ => None,
        })
        .collect()
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
