//! The Postgres-only mode: every check asks Postgres, as verifiers do today.
//! The baseline the projection is measured against, and a step for
//! deployments switching over gradually. Everything that mode means — its
//! health report, that there is nothing to rebuild — lives here.

use revocation_http::{Health, LagReport, ServingState};

use crate::fallback_probe::FallbackProbe;
use crate::health::fallback_report;

/// Health of the Postgres-only mode: no lag, nothing held; ready while
/// Postgres answers.
#[derive(Debug)]
pub(crate) struct PostgresOnlyHealth {
    pub(crate) probe: FallbackProbe,
}

impl Health for PostgresOnlyHealth {
    fn report(&self) -> LagReport {
        let status = self.probe.status();
        LagReport {
            state: ServingState::PostgresOnly,
            ready: status.reachable,
            live: true,
            staleness_ms: Some(0),
            max_staleness_ms: 0,
            broker_staleness_ms: None,
            source_staleness_ms: None,
            fresh_as_of: None,
            offset_lag: 0,
            partitions_without_source_heartbeat: Vec::new(),
            cutoffs_heartbeat_missing: false,
            distrusted_after: None,
            last_rejected: None,
            janitor_lifetime_mismatches: 0,
            partitions: Vec::new(),
            sessions: 0,
            revoked_sessions: 0,
            records_applied: 0,
            records_rejected: 0,
            records_unknown: 0,
            checks: Vec::new(),
            barrier_waits: 0,
            barrier_timeouts: 0,
            feed_error: None,
            start: None,
            snapshot: None,
            fallback: Some(fallback_report(status)),
        }
    }
}
