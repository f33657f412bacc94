//! The controller thread: which partitions exist (and assigning new ones),
//! how far the broker has written (watermark samples), and replay progress.
//!
//! It learns the partitions from metadata and assigns new ones from the
//! beginning; samples every partition's high watermark each
//! `sample_interval`, or at once when a barrier pulls the [`SampleTrigger`];
//! and logs replay progress until the projection is Live. An empty partition
//! (low watermark = high watermark) is at its high watermark by definition.
//!
//! [`SampleTrigger`]: crate::SampleTrigger

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use revocation_core::{Clock, FreshnessState, SystemClock};

use super::Shared;
use super::faults::{FaultSource, kind_of};

/// Replay progress is logged this often until the projection is Live.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The controller thread: metadata, assignment, watermark samples, progress.
pub(super) fn control(shared: &Shared) {
    let freshness = shared.projection.freshness();
    let mut next_metadata = Instant::now();
    let mut served = shared.trigger.generation();
    let mut progress = Progress::new();
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_metadata {
            match discover(shared) {
                Ok(()) => next_metadata = Instant::now() + shared.config.metadata_interval,
                Err(why) => {
                    shared.stats.faults.record(FaultSource::Sampler, None, &why);
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
                    shared.stats.faults.cleared(FaultSource::Sampler);
                    shared.stats.faults.cleared(FaultSource::Client);
                }
                Err(e) => {
                    shared.stats.sample_failures.fetch_add(1, Ordering::Relaxed);
                    let message = format!("watermark query of partition {p}: {e}");
                    shared.stats.faults.record(FaultSource::Sampler, kind_of(&e), &message);
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
    // The first partitions start where a snapshot left off, when it can be
    // used; partitions added later hold nothing a snapshot could cover.
    let offsets = if assigned.is_empty() {
        super::start::first_offsets(shared, &new)?
    } else {
        new.iter().map(|&p| (p, Offset::Beginning)).collect()
    };
    let mut list = TopicPartitionList::new();
    for (p, offset) in offsets {
        list.add_partition_offset(topic, p, offset).map_err(|e| e.to_string())?;
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
        if freshness.state(SystemClock.now()) == FreshnessState::Live {
            let secs = self.started.elapsed().as_secs_f64();
            let rate = (records as f64 / secs.max(1e-9)) as u64;
            let warm = shared.stats.start_info().warm;
            shared.stats.start.update(|info| {
                info.records_per_sec = rate;
                info.caught_up_after = Some(self.started.elapsed());
            });
            tracing::info!(
                topic = %shared.config.topic,
                start = if warm { "warm" } else { "cold" },
                records,
                sessions = shared.projection.store().len(),
                seconds = format!("{secs:.2}"),
                records_per_sec = rate,
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
        let warm = shared.stats.start_info().warm;
        shared.stats.start.update(|info| info.records_per_sec = rate as u64);
        tracing::info!(
            topic = %shared.config.topic,
            start = if warm { "warm" } else { "cold" },
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
