//! [`Batch`]: what the consumer thread hands the apply thread — changes to
//! UUID sessions it already decoded, and every other record copied whole.
//!
//! Decoding is most of a record's cost, and the apply thread, which also
//! inserts into the map, was the cold start's bottleneck while the consumer
//! thread had time to spare (`docs/benchmarks-notes.md`, "Stop 30"). So
//! while the apply thread is behind, the consumer thread decodes what
//! becomes a [`ChangeBatch`] item (owned, ~48 B, no copy of the record);
//! anything else (a tombstone, a heartbeat, a cutoff, a malformed record, a
//! non-UUID session, a format that reads headers) is copied and decoded by
//! the apply thread as before. Each copied record knows how many decoded
//! changes precede it, so the apply thread applies both in the records'
//! order.

use std::ops::Range;

use rdkafka::message::{BorrowedMessage, Headers, Message};
use revocation_core::ChangeBatch;

use super::record_queue::Record;

/// Records handed from the consumer thread to the apply thread: their bytes
/// copied into one buffer, so a batch is a few allocations, all reused.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    /// Records copied whole, in order.
    pub(super) records: Vec<BatchedRecord>,
    /// Header name and value ranges, for formats that read headers.
    pub(super) headers: Vec<(Range<usize>, Option<Range<usize>>)>,
    /// Changes to UUID sessions, decoded by the consumer thread, in order.
    pub(super) changes: ChangeBatch,
    /// Per partition, the position after the batch's last record there.
    pub(super) positions: Vec<Option<i64>>,
    /// Records in the batch, decoded or copied.
    count: usize,
}

/// A record's parts, borrowed from librdkafka while it is copied.
struct Parts<'a> {
    partition: i32,
    offset: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    timestamp_ms: Option<i64>,
}

/// One copied record of a [`Batch`]: where its parts sit in the batch's buffers.
pub(super) struct BatchedRecord {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Option<Range<usize>>,
    pub(super) headers: Range<usize>,
    pub(super) timestamp_ms: Option<i64>,
    /// How many of the batch's decoded [`changes`](Batch::changes) precede it.
    pub(super) changes_before: usize,
}

impl Batch {
    /// Records in the batch, decoded or copied.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A record the consumer thread decoded into [`Self::changes`].
    pub(super) fn decoded(&mut self, partition: i32, offset: i64) {
        self.count += 1;
        self.moved(partition, offset);
    }

    /// A record the crate's `poll` handed over (from the consumer's own queue).
    pub(super) fn push(&mut self, message: &BorrowedMessage<'_>, with_headers: bool) {
        let parts = Parts {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            value: message.payload(),
            timestamp_ms: message.timestamp().to_millis(),
        };
        self.push_parts(parts, with_headers, |each| {
            if let Some(headers) = message.headers() {
                for header in headers.iter() {
                    each(header.key, header.value);
                }
            }
        });
    }

    /// A record taken from the [`RecordQueue`](super::record_queue::RecordQueue).
    pub(super) fn push_record(&mut self, record: &Record<'_>, with_headers: bool) {
        let parts = Parts {
            partition: record.partition(),
            offset: record.offset(),
            key: record.key(),
            value: record.payload(),
            timestamp_ms: record.timestamp_ms(),
        };
        self.push_parts(parts, with_headers, |each| record.headers(each));
    }

    fn push_parts(
        &mut self,
        parts: Parts<'_>,
        with_headers: bool,
        headers: impl FnOnce(&mut dyn FnMut(&str, Option<&[u8]>)),
    ) {
        let bytes = &mut self.bytes;
        let mut copy = |part: &[u8]| {
            let start = bytes.len();
            bytes.extend_from_slice(part);
            start..bytes.len()
        };
        let key = parts.key.map(&mut copy);
        let value = parts.value.map(&mut copy);
        let first_header = self.headers.len();
        // A tombstone's headers are always kept: the janitor's say which
        // lifetime it judged by (they are rare, so this costs nothing).
        if with_headers || value.is_none() {
            let kept = &mut self.headers;
            headers(&mut |name, value| {
                let name = copy(name.as_bytes());
                let value = value.map(&mut copy);
                kept.push((name, value));
            });
        }
        self.records.push(BatchedRecord {
            partition: parts.partition,
            offset: parts.offset,
            key,
            value,
            headers: first_header..self.headers.len(),
            timestamp_ms: parts.timestamp_ms,
            changes_before: self.changes.len(),
        });
        self.count += 1;
        self.moved(parts.partition, parts.offset);
    }

    /// A record at `offset` moves its partition's position to `offset + 1`.
    fn moved(&mut self, partition: i32, offset: i64) {
        let p = partition.max(0) as usize;
        if self.positions.len() <= p {
            self.positions.resize(p + 1, None);
        }
        self.positions[p] = Some(offset + 1);
    }

    /// Empties the batch for reuse (its decoded changes must be applied).
    pub(super) fn clear(&mut self) {
        debug_assert!(self.changes.is_empty(), "a batch is cleared after its changes are applied");
        self.bytes.clear();
        self.records.clear();
        self.headers.clear();
        self.positions.clear();
        self.count = 0;
    }
}

/// The bytes at `range` of a batch's buffer.
pub(super) fn slice<'a>(bytes: &'a [u8], range: &Option<Range<usize>>) -> Option<&'a [u8]> {
    range.clone().map(|range| &bytes[range])
}
