//! [`ProjectionHealth`]: the lag report of a running projection, with what
//! only the composition knows — why the feed cannot read the topic, and
//! whether the fallback answers — and readiness that counts on both.

use std::sync::Arc;

use revocation_core::ProjectedLiveness;
use revocation_http::{FallbackReport, FeedErrorReport, Health, LagReport, SnapshotReport, StartReport};
use revocation_kafka::{FaultSource, FeedFault, KafkaSource, StartInfo};

use crate::fallback_probe::{FallbackProbe, FallbackStatus};

/// `/health/lag` and `/readyz` of a Kafka-fed projection.
#[derive(Debug)]
pub(crate) struct ProjectionHealth {
    pub(crate) liveness: Arc<ProjectedLiveness>,
    pub(crate) kafka: Arc<KafkaSource>,
    pub(crate) fallback: Option<FallbackProbe>,
}

impl Health for ProjectionHealth {
    fn fault_sources(&self) -> &'static [&'static str] {
        FaultSource::NAMES
    }

    fn report(&self) -> LagReport {
        let mut report = self.liveness.report();
        if let Some(stats) = self.kafka.feed_stats() {
            report.feed_error = stats.fault.map(feed_error_report);
            report.start = Some(start_report(stats.start));
            report.last_rejected = stats.last_rejected;
            report.janitor_lifetime_mismatches = stats.janitor_lifetime_mismatches;
        }
        report.snapshot = self.kafka.snapshot_status().map(|(last, failures)| SnapshotReport {
            written_at: last.as_ref().map(|l| l.written_at.to_rfc3339()),
            sessions: last.as_ref().map_or(0, |l| l.sessions),
            bytes: last.as_ref().map_or(0, |l| l.bytes),
            took_ms: last.as_ref().map_or(0, |l| l.took.as_millis() as u64),
            failures,
        });
        if let Some(probe) = &self.fallback {
            let status = probe.status();
            // Not Live: checks go to the fallback, so it must answer.
            if !report.live {
                report.ready &= status.reachable;
            }
            report.fallback = Some(fallback_report(status));
        }
        report
    }
}

fn start_report(start: StartInfo) -> StartReport {
    StartReport {
        kind: if start.warm { "warm" } else { "cold" },
        reason: start.reason,
        snapshot_sessions: start.snapshot_sessions,
        records_to_replay: start.records_to_replay,
        records_per_sec: start.records_per_sec,
        caught_up_after_ms: start.caught_up_after.map(|d| d.as_millis() as u64),
    }
}

fn feed_error_report(fault: FeedFault) -> FeedErrorReport {
    FeedErrorReport {
        source: fault.source.as_str(),
        message: fault.message,
        first_seen: fault.first_seen.to_rfc3339(),
        last_seen: fault.last_seen.to_rfc3339(),
        occurrences: fault.occurrences,
    }
}

pub(crate) fn fallback_report(status: FallbackStatus) -> FallbackReport {
    FallbackReport {
        reachable: status.reachable,
        error: status.error,
        checked_at: status.checked_at.map(|t| t.to_rfc3339()),
    }
}
