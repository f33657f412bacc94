//! [`FeedStatsSnapshot`]: a copy of the serving feed's counters, for reports.

use crate::feed::{FeedFault, StartInfo};

/// A copy of a feed's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedStatsSnapshot {
    /// Records read.
    pub records: u64,
    /// Malformed records.
    pub malformed: u64,
    /// Consumer errors.
    pub consumer_errors: u64,
    /// Watermark samples recorded.
    pub samples: u64,
    /// Watermark queries failed.
    pub sample_failures: u64,
    /// Partitions assigned.
    pub partitions: u64,
    /// What keeps the feed from reading the topic now, if anything.
    pub fault: Option<FeedFault>,
    /// How the feed started, and its replay rate.
    pub start: StartInfo,
    /// Why the last malformed record was rejected (never its key).
    pub last_rejected: Option<String>,
    /// Janitor tombstones judged by another maximum session lifetime.
    pub janitor_lifetime_mismatches: u64,
}

impl FeedStatsSnapshot {
    pub(super) fn of(stats: &crate::feed::FeedStats) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        Self {
            records: stats.records.load(Relaxed),
            malformed: stats.malformed.load(Relaxed),
            consumer_errors: stats.consumer_errors.load(Relaxed),
            samples: stats.samples.load(Relaxed),
            sample_failures: stats.sample_failures.load(Relaxed),
            partitions: stats.partitions.load(Relaxed),
            fault: stats.fault(),
            start: stats.start_info(),
            last_rejected: stats.last_rejected(),
            janitor_lifetime_mismatches: stats.janitor_lifetime_mismatches.load(Relaxed),
        }
    }
}
