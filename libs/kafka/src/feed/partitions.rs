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
use super::errors::DiscoveryError;
use super::faults::{FaultSource, kind_of};

/// Replay progress is logged this often until the projection is Live.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The smallest budget for a metadata query, whatever `sample_timeout` is.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The controller thread: metadata, assignment, watermark samples, progress.
///
/// Each round reads the topic's partition set *before* sampling, and stamps
/// the samples with an instant taken before both: a sample proves
/// freshness only for the partitions it saw, so a partition added while we
/// run must be known (and read) before any sample can vouch for the
/// instant it was added. A round whose metadata query fails samples
/// nothing, and freshness waits.
pub(super) fn control(shared: &Shared) {
    let freshness = shared.projection.freshness();
    let mut served = shared.trigger.generation();
    let mut progress = Progress::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let sampled_at = SystemClock.now();
        let partitions = match discover(shared) {
            Ok(()) => shared.assigned.lock().map(|a| a.clone()).unwrap_or_default(),
            Err(why) => {
                shared.stats.faults.record(FaultSource::Sampler, None, &why.to_string());
                Vec::new()
            }
        };
        for p in partitions {
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
        distrust_a_position_compaction_may_have_passed(shared);
        progress.log(shared);
        served = shared.trigger.wait(served, shared.config.sample_interval);
    }
}

/// A feed that stalled (paused, partitioned from the broker) for more than
/// half the topic's `delete.retention.ms` may have missed tombstones, and the
/// records they erased, to compaction: reading on from its positions would
/// never learn of those deletes. It fails closed for good; a rebuild or a
/// restart replays the topic afresh.
fn distrust_a_position_compaction_may_have_passed(shared: &Shared) {
    let Some(Ok(Some(retention))) = shared.stats.tombstone_retention.get() else { return };
    let freshness = shared.projection.freshness();
    if !freshness.has_caught_up() || freshness.distrusted_after().is_some() {
        return;
    }
    let now = SystemClock.now();
    // The positions' age is what compaction can outrun: the broker bound,
    // not the source's (a paused connector leaves the positions current).
    let report = freshness.report(now);
    let Some(fresh_as_of) = report.partitions.iter().map(|p| p.fresh_as_of).min().flatten() else { return };
    if now.saturating_since(fresh_as_of) <= *retention / 2 {
        return;
    }
    freshness.distrust_after(fresh_as_of, now);
    tracing::error!(
        topic = %shared.config.topic,
        stalled_secs = now.saturating_since(fresh_as_of).as_secs(),
        delete_retention_ms = retention.as_millis() as u64,
        "the feed was stalled for more than half the topic's delete.retention.ms: compaction may have removed \
         tombstones it never read, so it fails closed for good; rebuild (POST /admin/rebuild) or restart"
    );
}

/// Learns the partition count and assigns partitions not yet assigned.
fn discover(shared: &Shared) -> Result<(), DiscoveryError> {
    let topic = &shared.config.topic;
    let metadata = shared
        .sampler
        .fetch_metadata(Some(topic), shared.config.sample_timeout.max(METADATA_TIMEOUT))
        .map_err(|source| DiscoveryError::Metadata {
            topic: topic.clone(),
            brokers: shared.config.bootstrap_servers.clone(),
            source: Box::new(source),
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(DiscoveryError::NotFound(topic.clone()));
    };
    if let Some(error) = found.error() {
        return Err(DiscoveryError::Unavailable { topic: topic.clone(), code: RDKafkaErrorCode::from(error) });
    }
    let mut assigned = shared.assigned.lock().map_err(|_| DiscoveryError::Poisoned("assignment"))?;
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
    // Chosen once: a snapshot's positions, once taken, are the store's, so
    // a retry after a failed assignment must start where they say.
    let offsets: Vec<(i32, Offset)> = if assigned.is_empty() {
        let mut first = shared.first_offsets.lock().map_err(|_| DiscoveryError::Poisoned("first offsets"))?;
        if first.is_none() {
            *first = Some(super::start::first_offsets(shared, &new)?);
        }
        let chosen = first.as_deref().unwrap_or_default();
        new.iter().map(|&p| chosen.iter().find(|(q, _)| *q == p).copied().unwrap_or((p, Offset::Beginning))).collect()
    } else {
        new.iter().map(|&p| (p, Offset::Beginning)).collect()
    };
    // Their records go to the record queue, from their first: forwarded
    // before they are assigned, so none reach the consumer's own queue.
    for &p in &new {
        if !shared.records.forward(&shared.consumer, topic, p) {
            return Err(DiscoveryError::Forward { topic: topic.clone(), partition: p });
        }
    }
    let mut list = TopicPartitionList::new();
    for (p, offset) in offsets {
        list.add_partition_offset(topic, p, offset).map_err(|source| DiscoveryError::Assign {
            topic: topic.clone(),
            partitions: new.clone(),
            source: Box::new(source),
        })?;
    }
    let result =
        if assigned.is_empty() { shared.consumer.assign(&list) } else { shared.consumer.incremental_assign(&list) };
    result.map_err(|source| DiscoveryError::Assign {
        topic: topic.clone(),
        partitions: new.clone(),
        source: Box::new(source),
    })?;
    if !assigned.is_empty() {
        tracing::info!(topic = %topic, partitions = ?new, "new partitions found; reading them from the beginning");
        if shared.format.deletes_live_sessions() {
            // A key's later records (its delete, its tombstone) may now land
            // on a new partition while its insert stays on the old one; a
            // replay could apply them in either order and resurrect it.
            shared.projection.freshness().distrust_after(SystemClock.now(), SystemClock.now());
            tracing::error!(
                topic = %topic,
                format = shared.format.name(),
                "partitions were added to a topic whose deletes forget live sessions: a row's delete may now sit \
                 on another partition than its insert, so this topic can no longer prove a session gone; the \
                 projection fails closed on it for good. Move to a new topic created with the partitions you \
                 need (docs/cdc.md#repartitioning)"
            );
        }
    }
    shared.partition_count.store(found.partitions().len() as u32, Ordering::Relaxed);
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
            // The replay's peak (fetch buffers, outgrown tables) is freed now.
            let before = crate::memory::resident_kb();
            if crate::memory::release_freed() {
                tracing::info!(
                    resident_mb_before = before.map(|kb| kb / 1024),
                    resident_mb = crate::memory::resident_kb().map(|kb| kb / 1024),
                    "memory the replay freed returned to the system"
                );
            }
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
        if !report.partitions_without_source_heartbeat.is_empty() {
            tracing::warn!(
                topic = %shared.config.topic,
                partitions = ?report.partitions_without_source_heartbeat,
                of = report.partitions.len(),
                "waiting for source heartbeats on these partitions: the connector's heartbeat rows do not reach \
                 them, so the projection cannot be Live; set the connector's heartbeat.action.query to the output \
                 of `projector cdc-heartbeat-query --partitions N` (docs/cdc.md)"
            );
        }
        if report.cutoffs_heartbeat_missing {
            tracing::warn!(
                topic = %shared.config.topic,
                "waiting for the heartbeat of user_session_cutoffs: the connector does not capture that table or \
                 does not route it into this topic, so a log-out-everywhere would be missed and the projection \
                 cannot be Live; add it to table.include.list with the transforms.cutoffs.* router and set \
                 heartbeat.action.query from `projector cdc-heartbeat-query` (docs/cdc.md)"
            );
        }
        if let Some(since) = report.distrusted_after {
            tracing::warn!(
                topic = %shared.config.topic,
                distrusted_after = %since.to_rfc3339(),
                "this topic is distrusted for good (see the error logged when it happened): the fallback answers"
            );
        }
        self.last = Instant::now();
        self.last_records = records;
    }
}
