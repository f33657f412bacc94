//! The ingest pipeline: take → copy into a batch → decode → apply → publish
//! positions.
//!
//! The consumer thread takes records from librdkafka thousands at a time
//! (the [`RecordQueue`](super::record_queue::RecordQueue), no async wrapper
//! on the ingest path) and copies each record's bytes into one reused
//! buffer per batch of up to [`POSITION_FLUSH_EVERY`] records; while the
//! apply thread is behind, it decodes changes to UUID sessions itself
//! (`batch`), so the two threads share the decoding. The apply thread
//! decodes every other record with the topic's [`RecordFormat`], applies
//! them all, and reports positions once per batch.
//!
//! Positions: a record at offset `o` moves the position to `o + 1`; reaching
//! the end of a partition (EOF) moves it to the offset librdkafka fetched up
//! to, which also covers offsets that hold no record (compaction,
//! transaction markers).
//!
//! [`RecordFormat`]: revocation_core::RecordFormat

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use revocation_core::{Applied, ChangeBatch, Clock, Header, RawRecord, SystemClock, Timestamp, log_tag};

use super::Shared;
use super::batch::{Batch, slice};
use super::faults::{FaultSource, is_connection, kind_of};
use super::log_bridge::LogLimiter;
use super::record_queue::{Fetched, Record, TAKE_AT_MOST};
use crate::partitioner::default_partition;

/// How long the consumer thread waits for records when none are pending.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Positions are published at least this often while records flow.
pub(super) const POSITION_FLUSH_EVERY: usize = 4096;
/// Batches in flight from the consumer to the apply thread; the consumer
/// waits when the apply thread is this far behind.
pub(super) const BATCHES_IN_FLIGHT: usize = 16;
/// Emptied batches kept for reuse; any more are freed.
pub(super) const BATCHES_KEPT: usize = 2;
/// Batches the consumer thread copies whole, without trying to decode,
/// after one where most records were not changes to UUID sessions (they
/// are decoded again by the apply thread).
const COPY_AFTER_MISSES: u32 = 16;
/// Batches in flight from which the apply thread counts as behind.
const BEHIND: usize = BATCHES_IN_FLIGHT / 2;

/// Tests make the consumer thread decode whatever the apply thread's pace,
/// and count what it decoded (`order_tests`).
#[cfg(test)]
pub(super) static ALWAYS_DECODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
#[cfg(test)]
pub(super) static DECODED_HERE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether the apply thread is behind (the consumer thread then decodes).
fn apply_behind(shared: &Shared) -> bool {
    #[cfg(test)]
    if ALWAYS_DECODE.load(Ordering::Relaxed) {
        return true;
    }
    shared.in_flight.load(Ordering::Relaxed) >= BEHIND
}

/// What the consumer thread sends the apply thread, in order.
pub(super) enum Work {
    /// Records to apply.
    Records(Batch),
    /// librdkafka's positions when a partition reached its end: every record
    /// before them is in an earlier [`Work::Records`], so they hold once
    /// those are applied.
    Positions(Vec<(i32, i64)>),
}

/// The consumer thread: takes records from librdkafka a batch at a time
/// (the [`RecordQueue`]) and hands them, in batches, to the apply thread;
/// serves the consumer's own queue (client errors and other events) between.
pub(super) fn consume(shared: &Shared, to_apply: mpsc::SyncSender<Work>, recycled: mpsc::Receiver<Batch>) {
    let with_headers = shared.format.reads_headers();
    let check_placement = shared.format.deletes_live_sessions();
    let mut batch = Batch::default();
    // Decoded into changes vs copied whole, since the last batch was sent;
    // and how many batches to copy whole before trying to decode again.
    let (mut decoded, mut copied, mut copy_only) = (0usize, 0usize, 0u32);
    // Whether the apply thread is behind: then this thread decodes what it
    // can, else it only copies (decoding here slows the taking, and a full
    // librdkafka queue stops the fetching).
    let mut behind = false;
    // Only this thread records consumer faults, so it knows whether one
    // stands without taking the faults' lock for every record.
    let mut fault_standing = false;
    let progressed = |fault_standing: &mut bool| {
        if std::mem::take(fault_standing) {
            shared.stats.faults.cleared(FaultSource::Consumer);
        }
    };
    // Sends the batch, if it holds anything; false once the apply thread is gone.
    let send = |batch: &mut Batch| {
        if batch.is_empty() {
            return true;
        }
        let next = recycled.try_recv().unwrap_or_default();
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        to_apply.send(Work::Records(std::mem::replace(batch, next))).is_ok()
    };
    let failed = |e: &KafkaError, fault_standing: &mut bool| {
        shared.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
        // A failing connection is the client's fault (the error callback
        // has it); anything else is about the records.
        let kind = kind_of(e);
        if !is_connection(kind) {
            shared.stats.faults.record(FaultSource::Consumer, kind, &e.to_string());
            *fault_standing = true;
        }
    };
    let mut sent = true;
    while sent && !shared.stop.load(Ordering::Relaxed) {
        // The consumer's own queue: events. A record or an end of partition
        // here would be a partition assigned without being forwarded (the
        // controller refuses to), read as before the record queue.
        for _ in 0..TAKE_AT_MOST {
            sent = match shared.consumer.poll(Duration::ZERO) {
                Some(Ok(message)) => {
                    progressed(&mut fault_standing);
                    batch.push(&message, with_headers);
                    batch.len() < POSITION_FLUSH_EVERY || send(&mut batch)
                }
                // Its own partition only: librdkafka's position of a
                // forwarded partition also counts errors a batch call returned.
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    progressed(&mut fault_standing);
                    send(&mut batch) && to_apply.send(Work::Positions(position(shared, partition))).is_ok()
                }
                Some(Err(e)) => {
                    failed(&e, &mut fault_standing);
                    true
                }
                None => break,
            };
            if !sent {
                return;
            }
        }
        let taken = shared.records.take(POLL_WAIT, |fetched| {
            sent = sent
                && match fetched {
                    Fetched::Record(record) => {
                        progressed(&mut fault_standing);
                        if with_headers || copy_only > 0 || !behind {
                            batch.push_record(&record, with_headers);
                        } else if decode_or_copy(shared, &mut batch, &record, check_placement) {
                            decoded += 1;
                        } else {
                            copied += 1;
                        }
                        batch.len() < POSITION_FLUSH_EVERY || {
                            (copy_only, decoded, copied) = next_mode(copy_only, decoded, copied);
                            behind = apply_behind(shared);
                            send(&mut batch)
                        }
                    }
                    // The partition's own end: exact even while other
                    // partitions' records wait in this batch.
                    Fetched::End { partition, position } => {
                        progressed(&mut fault_standing);
                        send(&mut batch) && to_apply.send(Work::Positions(vec![(partition, position)])).is_ok()
                    }
                    Fetched::Error(e) => {
                        failed(&e, &mut fault_standing);
                        true
                    }
                };
        });
        // Fewer than a full take: the queue was empty, so what came is
        // applied now rather than when more comes.
        if taken < TAKE_AT_MOST && !batch.is_empty() {
            (copy_only, decoded, copied) = next_mode(copy_only, decoded, copied);
            behind = apply_behind(shared);
            sent = sent && send(&mut batch);
        }
    }
    send(&mut batch);
}

/// Whether the next batch is copied whole: (batches left to copy whole,
/// decoded, copied), counts reset for the next batch.
fn next_mode(copy_only: u32, decoded: usize, copied: usize) -> (u32, usize, usize) {
    let copy_only = if copy_only > 0 {
        copy_only - 1
    } else if copied > decoded {
        COPY_AFTER_MISSES
    } else {
        0
    };
    (copy_only, 0, 0)
}

/// Decodes `record` into the batch's changes when it is a change to a UUID
/// session (a record with a value: a tombstone's headers are the apply
/// thread's to read); copies it whole otherwise. Whether it was decoded.
fn decode_or_copy(shared: &Shared, batch: &mut Batch, record: &Record<'_>, check_placement: bool) -> bool {
    let (key, Some(value)) = (record.key(), record.payload()) else {
        batch.push_record(record, false);
        return false;
    };
    if check_placement {
        check_placed(shared, key, record.partition(), record.offset());
    }
    let decoded = shared.format.decode(&RawRecord::new(key, Some(value)));
    match batch.changes.add(shared.projection.store(), decoded) {
        Ok(()) => {
            batch.decoded(record.partition(), record.offset());
            #[cfg(test)]
            DECODED_HERE.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => {
            batch.push_record(record, false);
            false
        }
    }
}

/// The apply thread: decodes and applies each record, then publishes the
/// positions and the record count once per batch (no shared write per record).
pub(super) fn apply(shared: &Shared, from_consumer: mpsc::Receiver<Work>, recycle: mpsc::SyncSender<Batch>) {
    let store = shared.projection.store();
    let freshness = shared.projection.freshness();
    let format = &*shared.format;
    let mut rejects = LogLimiter::new("malformed session record");
    // Under a format whose deletes forget live sessions, a key on a
    // partition the default partitioner would not choose today was written
    // before partitions were added: its delete may sit elsewhere.
    let check_placement = format.deletes_live_sessions();
    let mut lifetime_mismatches = LogLimiter::new("janitor lifetime mismatch");
    // Changes to UUID sessions wait here and are applied together (under
    // one lock per shard); any other record applies them first, so records
    // still take effect in their order.
    let mut changes = ChangeBatch::default();
    // Ends when the consumer thread drops its sender (it has stopped).
    for work in from_consumer {
        match work {
            Work::Records(mut batch) => {
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                let mut headers: Vec<Header<'_>> = Vec::new();
                for record in &batch.records {
                    // The changes the consumer thread decoded before this record take effect first.
                    if batch.changes.waiting_before(record.changes_before) {
                        store.apply_batch(&mut changes);
                        store.apply_batch_upto(&mut batch.changes, record.changes_before);
                    }
                    let (key, value) = (slice(&batch.bytes, &record.key), slice(&batch.bytes, &record.value));
                    headers.clear();
                    headers.extend(batch.headers[record.headers.clone()].iter().map(|(name, value)| Header {
                        name: std::str::from_utf8(&batch.bytes[name.clone()]).unwrap_or(""),
                        value: slice(&batch.bytes, value),
                    }));
                    if check_placement {
                        check_placed(shared, key, record.partition, record.offset);
                    }
                    if value.is_none() && !headers.is_empty() {
                        check_janitor_lifetime(shared, &headers, &mut lifetime_mismatches);
                    }
                    let decoded = format.decode(&RawRecord { key, value, headers: &headers });
                    let applied = match changes.add(store, decoded) {
                        Ok(()) => Applied::Event,
                        Err(decoded) => {
                            store.apply_batch(&mut changes);
                            // The record's own time stamps the revocation of a malformed record.
                            let at = record
                                .timestamp_ms
                                .map(|ms| Timestamp::from_unix_micros(ms.saturating_mul(1_000)))
                                .unwrap_or_else(|| SystemClock.now());
                            store.apply(decoded, at)
                        }
                    };
                    match applied {
                        Applied::UserCutoff { rejected: Some(reason), .. } => {
                            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut last) = shared.stats.last_rejected.lock() {
                                *last =
                                    Some(format!("partition {} offset {}: {reason}", record.partition, record.offset));
                            }
                            rejects.warn(|| {
                                format!(
                                    "partition {} offset {}: {reason}; the user cutoff its key holds is applied",
                                    record.partition, record.offset,
                                )
                            });
                        }
                        Applied::Malformed { revoked, reason } => {
                            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut last) = shared.stats.last_rejected.lock() {
                                *last =
                                    Some(format!("partition {} offset {}: {reason}", record.partition, record.offset));
                            }
                            rejects.warn(|| {
                                format!(
                                    "partition {} offset {} key {}: {reason}; {}",
                                    record.partition,
                                    record.offset,
                                    key.map_or_else(|| "(none)".into(), log_tag),
                                    if revoked { "the session is treated as revoked" } else { "skipped" },
                                )
                            });
                        }
                        // Every earlier record of this partition is applied.
                        Applied::Heartbeat { committed_at } => {
                            freshness.record_source_heartbeat(record.partition, committed_at, SystemClock.now());
                        }
                        Applied::CutoffsHeartbeat { committed_at } => {
                            freshness.record_cutoffs_heartbeat(committed_at, SystemClock.now());
                        }
                        Applied::SourceTruncated { truncated_at } => {
                            if freshness.distrusted_after().is_none() {
                                tracing::error!(
                                    topic = %shared.config.topic,
                                    partition = record.partition,
                                    offset = record.offset,
                                    truncated_at = %truncated_at.to_rfc3339(),
                                    "the source table was truncated: this topic still holds rows that are gone, so \
                                     the projection is never fresh on it again; follow docs/cdc.md#truncate (a new topic)"
                                );
                            }
                            freshness.distrust_after(truncated_at, SystemClock.now());
                        }
                        Applied::Event | Applied::Unknown | Applied::UserCutoff { rejected: None, .. } => {}
                    }
                }
                drop(headers);
                // Positions vouch for every record before them: all applied first.
                store.apply_batch(&mut changes);
                store.apply_batch(&mut batch.changes);
                shared.stats.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
                for (p, position) in batch.positions.iter().enumerate() {
                    if let Some(position) = *position {
                        freshness.record_position(p as i32, position);
                    }
                }
                batch.clear();
                // Kept for reuse unless enough are (then freed): a replay's
                // batches in flight would otherwise stay allocated after it.
                let _ = recycle.try_send(batch);
            }
            Work::Positions(positions) => {
                for (partition, position) in positions {
                    freshness.record_position(partition, position);
                }
            }
        }
    }
}

/// librdkafka's position of `partition` (the next offset it will hand us).
fn position(shared: &Shared, partition: i32) -> Vec<(i32, i64)> {
    let Ok(positions) = shared.consumer.position() else { return Vec::new() };
    let Some(element) = positions.find_partition(&shared.config.topic, partition) else { return Vec::new() };
    match element.offset() {
        Offset::Offset(position) => vec![(partition, position)],
        _ => Vec::new(),
    }
}

/// A janitor tombstone judged by another maximum session lifetime than this
/// projection's: counted, reported and logged (a janitor with a shorter
/// lifetime than ours may forget sessions a late `created` could revive).
fn check_janitor_lifetime(shared: &Shared, headers: &[Header<'_>], log: &mut LogLimiter) {
    let Some(janitor) = headers.iter().find(|h| h.name == crate::janitor::JANITOR_LIFETIME_HEADER) else { return };
    let janitor_secs = janitor.value.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<u64>().ok());
    let ours = shared.projection.store().max_session_lifetime().map(|d| d.as_secs());
    if janitor_secs.is_some() && janitor_secs == ours {
        return;
    }
    shared.stats.janitor_lifetime_mismatches.fetch_add(1, Ordering::Relaxed);
    log.warn(|| {
        format!(
            "a janitor tombstone was judged by --max-session-lifetime {} s, this projection has {}: run the janitor \
             with the same lifetime every serve has",
            janitor_secs.map_or_else(|| "(unreadable)".to_owned(), |s| s.to_string()),
            ours.map_or_else(|| "none".to_owned(), |s| format!("{s} s")),
        )
    });
}

/// Distrusts the topic for good when `key` sits on a partition Kafka's
/// default partitioner would not put it on with today's partition count.
fn check_placed(shared: &Shared, key: Option<&[u8]>, partition: i32, offset: i64) {
    let count = shared.partition_count.load(Ordering::Relaxed);
    let Some(key) = key else { return };
    if count == 0 || default_partition(key, count) as i32 == partition {
        return;
    }
    let freshness = shared.projection.freshness();
    if freshness.distrusted_after().is_none() {
        tracing::error!(
            topic = %shared.config.topic,
            partition,
            offset,
            key = %log_tag(key),
            partitions = count,
            "a key sits on another partition than Kafka's default partitioner puts it on today: the topic was \
             repartitioned (or its producer uses another partitioner), so a row's delete may sit on another \
             partition than its insert and this topic can no longer prove a session gone; the projection fails \
             closed on it for good. Move to a new topic (docs/cdc.md#repartitioning)"
        );
    }
    freshness.distrust_after(Timestamp::from_unix_micros(0), SystemClock.now());
}
