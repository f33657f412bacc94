//! [`RecordQueue`]: the topic's records taken from librdkafka a batch at a
//! time.
//!
//! `BaseConsumer::poll` hands over one record per call, each an event of
//! its own: ~380 ns of the consumer thread a record, ~4 s of a 10M-session
//! cold start (`docs/benchmarks-notes.md`, "Stop 29"). The `rdkafka` crate
//! wraps no batch call, so this module does, in the few unsafe lines below:
//! every assigned partition's records are forwarded to one queue of ours,
//! read with `rd_kafka_consume_batch_queue`. The consumer's own queue keeps
//! everything else (client errors, logs, statistics) and is still served by
//! the crate's `poll`.
//!
//! A partition is forwarded *before* it is assigned, so all its records and
//! its end-of-partition events reach this queue, in order, and none reach
//! the consumer's queue.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[cfg(test)]
mod tests;

/// Most records one [`RecordQueue::take`] hands over.
pub(super) const TAKE_AT_MOST: usize = 4096;

/// A queue of ours that assigned partitions' records are forwarded to.
pub(super) struct RecordQueue {
    queue: NonNull<rd::rd_kafka_queue_t>,
}

// SAFETY: librdkafka locks its queues itself; any thread may forward into,
// read from or destroy one.
unsafe impl Send for RecordQueue {}
// SAFETY: as above; `&self` methods only call librdkafka's locked functions.
unsafe impl Sync for RecordQueue {}

/// What a partition's queue handed over.
pub(super) enum Fetched<'a> {
    /// A record (or a tombstone).
    Record(Record<'a>),
    /// The partition's end: every record before `position` was handed over.
    End { partition: i32, position: i64 },
    /// Fetching or reading the partition failed (librdkafka retries).
    Error(KafkaError),
}

/// One record, borrowed from librdkafka until the next [`RecordQueue::take`].
pub(super) struct Record<'a> {
    message: &'a rd::rd_kafka_message_t,
}

impl RecordQueue {
    /// A new queue on `consumer`'s client; `None` if librdkafka has no
    /// memory for one. It must be dropped before the consumer.
    pub(super) fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<Self> {
        // SAFETY: the client is live; the queue is destroyed in `drop`,
        // before the consumer (`Shared` declares it first).
        NonNull::new(unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) }).map(|queue| Self { queue })
    }

    /// Sends `partition`'s records here from now on; false if librdkafka
    /// knows no such partition queue (the consumer's queue then gets them,
    /// which the consumer thread also reads).
    pub(super) fn forward<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else { return false };
        // SAFETY: the client and our queue are live; the partition queue
        // handle is a reference librdkafka counts, released right after.
        unsafe {
            let source = rd::rd_kafka_queue_get_partition(consumer.client().native_ptr(), topic.as_ptr(), partition);
            if source.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(source, self.queue.as_ptr());
            rd::rd_kafka_queue_destroy(source);
        }
        true
    }

    /// Waits up to `wait` for something to arrive (returning as soon as it
    /// does), then takes whatever else is there, up to [`TAKE_AT_MOST`],
    /// and hands each to `each` in order. Returns how many it handed over.
    pub(super) fn take(&self, wait: Duration, mut each: impl FnMut(Fetched<'_>)) -> usize {
        let mut taken = Taken { slots: [std::ptr::null_mut(); TAKE_AT_MOST], len: 0 };
        // SAFETY: our queue is live; librdkafka writes at most the slots
        // it is given; each message it returns is valid until `taken`
        // destroys it (even if `each` panics), after `each` saw it (the
        // borrow it was given ends with the call).
        unsafe {
            if !wait.is_zero() {
                // A batch call waits its whole timeout for a full batch;
                // this one returns with the first message.
                let first = rd::rd_kafka_consume_queue(self.queue.as_ptr(), millis(wait));
                if first.is_null() {
                    return 0;
                }
                taken.slots[0] = first;
                taken.len = 1;
            }
            let more = rd::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                0,
                taken.slots.as_mut_ptr().add(taken.len),
                TAKE_AT_MOST - taken.len,
            );
            taken.len += usize::try_from(more).unwrap_or(0);
            for &message in &taken.slots[..taken.len] {
                each(Fetched::of(&*message));
            }
        }
        taken.len
    }
}

/// Messages librdkafka handed over, destroyed when dropped.
struct Taken {
    slots: [*mut rd::rd_kafka_message_t; TAKE_AT_MOST],
    len: usize,
}

impl Drop for Taken {
    fn drop(&mut self) {
        for &message in &self.slots[..self.len] {
            // SAFETY: each was returned by librdkafka and is destroyed once, here.
            unsafe { rd::rd_kafka_message_destroy(message) }
        }
    }
}

impl Drop for RecordQueue {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_queue_new`, destroyed once; the
        // partition queues forwarded here hold references of their own.
        unsafe { rd::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}

fn millis(wait: Duration) -> i32 {
    i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1)
}

impl<'a> Fetched<'a> {
    fn of(message: &'a rd::rd_kafka_message_t) -> Self {
        use rd::rd_kafka_resp_err_t as Err;
        match message.err {
            Err::RD_KAFKA_RESP_ERR_NO_ERROR => Fetched::Record(Record { message }),
            Err::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                Fetched::End { partition: message.partition, position: message.offset }
            }
            code => Fetched::Error(KafkaError::MessageConsumption(RDKafkaErrorCode::from(code))),
        }
    }
}

impl<'a> Record<'a> {
    pub(super) fn partition(&self) -> i32 {
        self.message.partition
    }

    pub(super) fn offset(&self) -> i64 {
        self.message.offset
    }

    pub(super) fn key(&self) -> Option<&'a [u8]> {
        // SAFETY: librdkafka keeps `key_len` bytes at `key` while the message lives.
        unsafe { bytes(self.message.key, self.message.key_len) }
    }

    pub(super) fn payload(&self) -> Option<&'a [u8]> {
        // SAFETY: librdkafka keeps `len` bytes at `payload` while the message lives.
        unsafe { bytes(self.message.payload, self.message.len) }
    }

    /// The record's timestamp in milliseconds since the epoch, if it has one.
    pub(super) fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: reads the live message; `kind` is ours.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.message, &mut kind) };
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ms >= 0).then_some(ms)
    }

    /// Each header's name and value, in order (a name that is not UTF-8 reads as "").
    pub(super) fn headers(&self, mut each: impl FnMut(&str, Option<&[u8]>)) {
        let mut headers = std::ptr::null_mut();
        // SAFETY: the message is live and `headers` is ours to fill; the
        // header list it points to belongs to the message (not destroyed
        // here), and each name and value stays valid while it lives.
        unsafe {
            let message = std::ptr::from_ref(self.message).cast_mut();
            if rd::rd_kafka_message_headers(message, &mut headers)
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                return;
            }
            for index in 0.. {
                let (mut name, mut value, mut size): (*const c_char, *const c_void, usize) =
                    (std::ptr::null(), std::ptr::null(), 0);
                if rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    return;
                }
                let name = if name.is_null() { "" } else { CStr::from_ptr(name).to_str().unwrap_or("") };
                each(name, bytes(value, size));
            }
        }
    }
}

/// `len` bytes at `at`, or `None` for a null pointer (an absent key or value).
///
/// # Safety
/// A non-null `at` points to `len` readable bytes for `'a`.
unsafe fn bytes<'a>(at: *const c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: the caller vouches for `at` and `len`.
    (!at.is_null()).then(|| unsafe { std::slice::from_raw_parts(at.cast::<u8>(), len) })
}
