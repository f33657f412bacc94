//! What the lag health endpoint reports about freshness: the projection's
//! and each partition's, as [`super::Freshness::report`] reads them.

use std::time::Duration;

use super::FreshnessState;
use crate::clock::Timestamp;

/// A per-partition line of a [`FreshnessReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// Partition number.
    pub partition: i32,
    /// Next offset to read, if known.
    pub position: Option<i64>,
    /// Latest sampled high watermark, if any.
    pub high_watermark: Option<i64>,
    /// Records between position and high watermark.
    pub offset_lag: Option<i64>,
    /// Instant of the latest sample the position has reached.
    pub fresh_as_of: Option<Timestamp>,
    /// Commit instant of the newest source heartbeat read (change data capture).
    pub source_fresh_as_of: Option<Timestamp>,
}

/// Everything the lag health endpoint reports about freshness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessReport {
    /// The state at the report's instant.
    pub state: FreshnessState,
    /// `now - fresh_as_of`, if every partition has been reached once.
    pub staleness: Option<Duration>,
    /// The configured limit.
    pub max_staleness: Duration,
    /// The projection's `fresh_as_of`.
    pub fresh_as_of: Option<Timestamp>,
    /// Sum of the partitions' offset lags.
    pub offset_lag: i64,
    /// Staleness by the broker's watermarks alone, once every partition has
    /// reached a sample.
    pub broker_staleness: Option<Duration>,
    /// Staleness by the source's heartbeats alone, when they bound freshness
    /// and every partition has read one.
    pub source_staleness: Option<Duration>,
    /// Per partition, in partition order.
    pub partitions: Vec<PartitionReport>,
    /// Partitions no source heartbeat has been read on yet, when heartbeats
    /// bound freshness: until each has one, the projection cannot be Live.
    pub partitions_without_source_heartbeat: Vec<i32>,
    /// Since when the topic is distrusted (see [`Freshness::distrust_after`]).
    pub distrusted_after: Option<Timestamp>,
}
