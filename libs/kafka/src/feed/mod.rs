//! [`Feed`]: keeps one [`Projection`] up to date from the topic — starting
//! and stopping its threads.
//!
//! Three threads per feed, each in a module of its own:
//!
//! - `pipeline`: the **consumer** takes records from librdkafka (through
//!   `record_queue`, a batch at a time) and hands them in batches to the
//!   **apply** thread, which decodes them with the topic's
//!   [`RecordFormat`], applies them, and reports positions;
//! - `partitions`: the **controller** discovers and assigns partitions,
//!   samples high watermarks, and logs replay progress;
//! - `log_bridge`: librdkafka's logs into `tracing`, rate-limited warnings.
//!
//! No thread ever stops on a bad record or an unreachable broker: bad
//! records are counted and (when their key is a valid sid) revoked; broker
//! errors are counted, logged at a bounded rate, and retried. While samples
//! fail, freshness stops advancing and the projection turns Lagging by itself.

mod batch;
mod errors;
mod faults;
mod log_bridge;
#[cfg(test)]
mod order_tests;
mod partitions;
mod pipeline;
mod record_queue;
mod start;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use rdkafka::consumer::BaseConsumer;
use revocation_core::{Projection, RecordFormat};
use thiserror::Error;

use crate::config::{KafkaConfig, KafkaConfigError};
use crate::refused::ClientRefused;
use crate::trigger::SampleTrigger;

pub(crate) use errors::SnapshotRefusal;
use faults::FeedFaults;
pub use faults::{FaultSource, FeedFault};
use log_bridge::FeedContext;
use record_queue::RecordQueue;
pub use start::{StartInfo, WarmStart};
pub(crate) use start::{TopicNow, usable_positions};

/// The feed could not be started.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] KafkaConfigError),
    /// librdkafka refused the client configuration (a bad pass-through option, say).
    #[error("could not create the Kafka consumer (check the librdkafka options, -X)")]
    Client(#[source] ClientRefused),
    /// A thread could not be spawned.
    #[error("could not start the feed's threads")]
    Spawn(#[source] std::io::Error),
}

/// Counters of one feed.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Records read (every kind); published with the positions, every
    /// 4096 records and whenever the consumer catches up.
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
    /// Janitor tombstones judged by another maximum session lifetime than
    /// this projection's (see `JANITOR_LIFETIME_HEADER`).
    pub janitor_lifetime_mismatches: AtomicU64,
    /// What keeps the feed from reading the topic now, if anything.
    faults: Arc<FeedFaults>,
    /// How the feed started, and its replay's progress.
    start: start::Start,
    /// Why the last malformed record was rejected, with its partition and
    /// offset (never its key).
    last_rejected: std::sync::Mutex<Option<String>>,
    /// The Kafka cluster's id, once learned (snapshots record it).
    pub(crate) cluster_id: Arc<std::sync::OnceLock<String>>,
    /// How long the topic keeps tombstones (`delete.retention.ms`) when it
    /// is compacted, once learned: positions older than half of it are
    /// not trusted (see `start`).
    pub(crate) tombstone_retention: std::sync::OnceLock<Result<Option<std::time::Duration>, String>>,
}

impl FeedStats {
    /// How the feed started (warm or cold, and why), and its replay rate.
    pub fn start_info(&self) -> StartInfo {
        self.start.info.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// What keeps the feed from reading the topic now, if anything.
    pub fn fault(&self) -> Option<FeedFault> {
        self.faults.current()
    }

    /// Why the last malformed record was rejected, if one was.
    pub fn last_rejected(&self) -> Option<String> {
        self.last_rejected.lock().ok().and_then(|l| l.clone())
    }
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

type FeedConsumer = BaseConsumer<FeedContext>;

struct Shared {
    /// Where the assigned partitions' records go; declared before the
    /// consumer so it is destroyed first.
    records: RecordQueue,
    consumer: FeedConsumer,
    /// A second client for watermark and metadata queries. On the consumer's
    /// own connection they would queue behind its long-polling fetch (the
    /// broker answers one request per connection at a time), which delayed
    /// every sample by up to `fetch.wait.max.ms`.
    sampler: FeedConsumer,
    config: KafkaConfig,
    /// How the topic's records are read.
    format: Arc<dyn RecordFormat>,
    projection: Arc<Projection>,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
    trigger: Arc<SampleTrigger>,
    /// Partitions assigned, in order (only the controller writes it).
    assigned: std::sync::Mutex<Vec<i32>>,
    /// The topic's partition count as last read from metadata (0 until
    /// known): where the default partitioner puts each key today.
    partition_count: AtomicU32,
    /// Batches sent to the apply thread and not yet taken by it.
    in_flight: AtomicUsize,
    /// Where the first partitions start, once chosen (`start::first_offsets`).
    first_offsets: std::sync::Mutex<Option<Vec<(i32, rdkafka::Offset)>>>,
}

impl Feed {
    /// Starts feeding `projection` from the topic, reading its records as
    /// `format`. Returns at once: the broker need not be reachable; the feed
    /// keeps trying and the projection stays Cold until it has caught up.
    /// `purpose` names the client in broker logs.
    pub fn start(
        config: &KafkaConfig,
        format: Arc<dyn RecordFormat>,
        projection: Arc<Projection>,
        trigger: Arc<SampleTrigger>,
        purpose: &str,
    ) -> Result<Feed, FeedError> {
        Self::start_from(config, format, projection, trigger, purpose, None, None)
    }

    /// [`Self::start`], resuming from a snapshot already loaded into the
    /// projection's store: once the broker confirms it still holds every
    /// record after `warm`'s positions, the feed reads on from them;
    /// otherwise it empties the store and replays from the beginning. The
    /// projection is Cold until it reaches the watermarks either way.
    /// `cold_reason` says why a snapshot that was looked for is not used.
    pub fn start_from(
        config: &KafkaConfig,
        format: Arc<dyn RecordFormat>,
        projection: Arc<Projection>,
        trigger: Arc<SampleTrigger>,
        purpose: &str,
        warm: Option<WarmStart>,
        cold_reason: Option<String>,
    ) -> Result<Feed, FeedError> {
        config.validate()?;
        let stats = Arc::new(FeedStats { start: start::Start::new(warm, cold_reason), ..FeedStats::default() });
        let context = FeedContext::new(stats.faults.clone());
        let consumer: FeedConsumer = config
            .consumer(purpose)
            .create_with_context(context.clone())
            .map_err(|e| FeedError::Client(ClientRefused(e)))?;
        let sampler: FeedConsumer = config
            .consumer(&format!("{purpose}-sampler"))
            .create_with_context(context)
            .map_err(|e| FeedError::Client(ClientRefused(e)))?;
        let records = RecordQueue::new(&consumer).ok_or_else(|| {
            FeedError::Client(ClientRefused(rdkafka::error::KafkaError::ClientCreation(
                "librdkafka could not create a queue for the records".into(),
            )))
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            records,
            consumer,
            sampler,
            config: config.clone(),
            format,
            projection: projection.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
            trigger: trigger.clone(),
            assigned: std::sync::Mutex::new(Vec::new()),
            partition_count: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            first_offsets: std::sync::Mutex::new(None),
        });
        let spawn = |name: &str, body: Box<dyn FnOnce(&Shared) + Send>| {
            let shared = shared.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || body(&shared)).map_err(FeedError::Spawn)
        };
        let (to_apply, from_consumer) = mpsc::sync_channel(pipeline::BATCHES_IN_FLIGHT);
        let (recycle, recycled) = mpsc::sync_channel(pipeline::BATCHES_KEPT);
        let spawned = (|| {
            Ok(vec![
                spawn("projection-apply", Box::new(move |shared| pipeline::apply(shared, from_consumer, recycle)))?,
                spawn("projection-consumer", Box::new(move |shared| pipeline::consume(shared, to_apply, recycled)))?,
                spawn("projection-control", Box::new(partitions::control))?,
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
