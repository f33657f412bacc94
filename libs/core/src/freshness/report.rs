//! What the lag health endpoint reports about freshness: the projection's
//! and each partition's, as [`super::Freshness::report`] reads them.

use std::time::Duration;

use super::{Freshness, FreshnessState};
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
    /// Whether the cutoffs table's heartbeat is expected and none has been
    /// read: until one is, the projection cannot be Live (is the table
    /// captured, and routed into this topic? `docs/cdc.md`).
    pub cutoffs_heartbeat_missing: bool,
}

impl Freshness {
    /// The full picture, for `/health/lag`.
    pub fn report(&self, now: Timestamp) -> FreshnessReport {
        let state = self.state(now);
        let map = self.lock();
        let cutoffs_heartbeat = self.cutoffs_bound();
        let partitions: Vec<_> = map
            .iter()
            .map(|(&partition, p)| PartitionReport {
                partition,
                position: p.position,
                high_watermark: p.high_watermark,
                offset_lag: p.high_watermark.map(|h| (h - p.position.unwrap_or(0)).max(0)),
                fresh_as_of: p.fresh_as_of,
                source_fresh_as_of: p.source_fresh_as_of,
            })
            .collect();
        let oldest = |f: fn(&PartitionReport) -> Option<Timestamp>| {
            if partitions.is_empty() { None } else { partitions.iter().map(f).min().flatten() }
        };
        let broker_staleness = oldest(|p| p.fresh_as_of).map(|f| now.saturating_since(f));
        // The source bound: the partitions' heartbeats and, when expected,
        // the cutoffs table's (the older of them bounds freshness).
        let source_staleness = self
            .config
            .source_heartbeats
            .then(|| {
                let partitions = oldest(|p| p.source_fresh_as_of)?;
                let oldest = match cutoffs_heartbeat {
                    Some(cutoffs) => partitions.min(cutoffs?),
                    None => partitions,
                };
                Some(now.saturating_since(oldest))
            })
            .flatten();
        let partitions_without_source_heartbeat = if self.config.source_heartbeats {
            partitions.iter().filter(|p| p.source_fresh_as_of.is_none()).map(|p| p.partition).collect()
        } else {
            Vec::new()
        };
        FreshnessReport {
            partitions_without_source_heartbeat,
            cutoffs_heartbeat_missing: cutoffs_heartbeat.is_some_and(|seen| seen.is_none()),
            distrusted_after: self.distrusted_after(),
            state,
            staleness: self.staleness(now),
            max_staleness: self.config.max_staleness,
            fresh_as_of: self.fresh_as_of(),
            offset_lag: partitions.iter().filter_map(|p| p.offset_lag).sum(),
            broker_staleness,
            source_staleness,
            partitions,
        }
    }
}
