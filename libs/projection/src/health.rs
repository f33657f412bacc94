//! [`ProjectionHealth`]: the lag report of a running projection, with what
//! only the composition knows — why the feed cannot read the topic, and
//! whether the fallback answers — and readiness that counts on both.

use std::sync::Arc;

use revocation_core::ProjectedLiveness;
use revocation_http::{FallbackReport, FeedErrorReport, Health, LagReport};
use revocation_kafka::{FeedFault, KafkaProjection};

use crate::fallback_probe::{FallbackProbe, FallbackStatus};

/// `/health/lag` and `/readyz` of a Kafka-fed projection.
#[derive(Debug)]
pub(crate) struct ProjectionHealth {
    pub(crate) liveness: Arc<ProjectedLiveness>,
    pub(crate) kafka: Arc<KafkaProjection>,
    pub(crate) fallback: Option<FallbackProbe>,
}

impl Health for ProjectionHealth {
    fn report(&self) -> LagReport {
        let mut report = self.liveness.report();
        report.feed_error = self.kafka.feed_stats().and_then(|stats| stats.fault).map(feed_error_report);
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
